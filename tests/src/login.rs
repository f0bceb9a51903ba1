//! Logging in to protected pages through the raw client of [`crate::http`]:
//! fetch the form, post its token with a password, read the session cookie.

use crate::http::{Response, get, request_from};

/// The client address of a direct visitor on loopback (also where the
/// tunnel's cloudflared connects from).
pub const LOCAL: [u8; 4] = [127, 0, 0, 1];
/// A loopback address that is not the tunnel's: its `CF-Connecting-IP` is
/// not trusted.
pub const NOT_TUNNEL: [u8; 4] = [127, 0, 0, 2];
/// The content type of a login POST.
pub const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// The token of a served login form.
pub fn form_token(form: &Response) -> String {
    let text = form.text();
    let start = text
        .find("name=\"token\" value=\"")
        .expect("form has a token")
        + 20;
    text[start..]
        .split('"')
        .next()
        .expect("token ends")
        .to_owned()
}

/// GETs the form at `path`, then POSTs `password` with its token from the
/// local address `from`.
pub fn login_from(
    from: [u8; 4],
    port: u16,
    path: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Response {
    let token = form_token(&get(port, path));
    let body = format!("token={token}&password={}", encode(password));
    let mut all = vec![FORM];
    all.extend_from_slice(headers);
    request_from(from, port, "POST", path, &all, body.as_bytes())
}

/// [`login_from`] the local address with no extra header.
pub fn login(port: u16, path: &str, password: &str) -> Response {
    login_from(LOCAL, port, path, password, &[])
}

/// Percent-encodes everything but ASCII letters and digits.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `name=value` of the session cookie a login set.
pub fn session_cookie(res: &Response) -> String {
    let set = res.header("set-cookie").expect("a cookie is set");
    set.split(';').next().expect("name=value").to_owned()
}

/// Whether `res` is the login form.
pub fn is_form(res: &Response) -> bool {
    res.text().contains("name=\"password\"") && res.text().contains("Password required")
}
