//! The login page: its HTML, its stylesheet (which drop's other pages
//! share) and the policy that keeps it from loading anything else.

/// Where the stylesheet is served.
pub const LOGIN_CSS_PATH: &str = "/_drop/login.css";

/// The login form's stylesheet, served from [`LOGIN_CSS_PATH`] so the
/// form's CSP can forbid inline styles.
pub const LOGIN_CSS: &str = "\
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2129}\
main{width:min(22rem,92vw);background:#fff;padding:2rem 1.75rem;border-radius:12px;box-shadow:0 4px 24px #0001}\
h1{font-size:1.25rem;margin:0 0 .25rem}p{margin:0 0 1.25rem;color:#5b6270}\
label{display:block;font-weight:600;margin-bottom:.35rem}\
input{width:100%;font:inherit;padding:.65rem .75rem;border:1px solid #c9ced6;border-radius:8px}\
input:focus{outline:2px solid #3b6ef5;border-color:#3b6ef5}\
button{margin-top:1rem;width:100%;font:inherit;font-weight:600;padding:.7rem;border:0;border-radius:8px;background:#3b6ef5;color:#fff;cursor:pointer}\
.error{color:#b3261e;background:#fdecea;padding:.5rem .75rem;border-radius:8px;margin-bottom:1rem}\
main>p:last-child{margin-bottom:0}\n";

/// The login page's Content-Security-Policy: nothing but its stylesheet
/// and a post to itself.
pub const LOGIN_CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The login page, with a form token and an optional message (always one of
/// drop's own, never text from the request).
pub fn login_page(token: &str, message: Option<&str>) -> String {
    let error = message.map_or(String::new(), |m| {
        format!("<div class=\"error\" role=\"alert\">{m}</div>")
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>Password required</title>\
<link rel=\"stylesheet\" href=\"{LOGIN_CSS_PATH}\"></head><body><main>\
<h1>Password required</h1><p>This page is protected.</p>{error}\
<form method=\"post\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
<button type=\"submit\">Open</button></form></main></body></html>\n"
    )
}
