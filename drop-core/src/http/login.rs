//! A login POST to a protected page, as HTTP: the body is read with a size
//! cap and a deadline, the form decoded (`form_urlencoded`), and the gate's verdict turned
//! into an answer. A legacy hash that verified is replaced in the registry
//! before the session is issued, so the cookie is bound to the hash in force.

use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use http::StatusCode;
use http::header::{self, HeaderValue};

use super::answer::Answer;
use super::request::PageRequest;
use super::site::Site;
use crate::auth::gate::LoginOutcome;
use crate::page::catalog::PageEntry;

/// Largest login body read; a password is never near this.
pub const MAX_LOGIN_BODY: u64 = 4 * 1024;
/// A login body must arrive within this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handles a login POST on any path of a protected page.
pub(super) async fn attempt<S, B>(
    site: &Arc<Site>,
    page: &PageEntry,
    req: &PageRequest,
    body: S,
) -> Answer
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let gate = site.gate();
    let login = req.login_request();
    if gate.is_cross_site(&page.id, &login) {
        return Answer::fixed_text(StatusCode::FORBIDDEN, "Cross-site login refused.\n");
    }
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_LOGIN_BODY) {
        return Answer::fixed_text(StatusCode::PAYLOAD_TOO_LARGE, "Login form too large.\n");
    }
    let form = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(status) => return Answer::fixed_text(status, "Login form could not be read.\n"),
    };
    let token = form_field(&form, "token");
    let password = form_field(&form, "password");
    let outcome = gate
        .attempt(
            &page.id,
            &page.password_hash,
            &login,
            token.as_deref(),
            password,
        )
        .await;
    let form_again =
        |status, message| Answer::login_form(status, &gate.form_token(&page.id), Some(message));
    match outcome {
        LoginOutcome::StaleForm => Answer::fixed_text(
            StatusCode::FORBIDDEN,
            "Login form expired or not ours: reload the page.\n",
        ),
        LoginOutcome::NoPassword => {
            Answer::fixed_text(StatusCode::BAD_REQUEST, "The form has no password field.\n")
        }
        LoginOutcome::Limited { retry_after } => {
            let secs = retry_after.as_secs().max(1);
            let wait = match secs {
                0..90 => format!("{secs} seconds"),
                _ => format!("{} minutes", secs.div_ceil(60)),
            };
            let message = format!("Too many attempts. Try again in {wait}.");
            let mut answer = form_again(StatusCode::TOO_MANY_REQUESTS, &message);
            answer
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            answer
        }
        LoginOutcome::Wrong => form_again(StatusCode::UNAUTHORIZED, "Wrong password. Try again."),
        LoginOutcome::Right { rehashed } => {
            let hash = match rehashed {
                Some(new) => {
                    site.catalog()
                        .replace_password_hash(&page.id, &page.password_hash, new)
                        .await
                }
                None => page.password_hash.clone(),
            };
            let cookie = gate.session_cookie(&page.id, &hash, &login);
            // Back to the page asked for.
            let asked = req.path();
            let back = match HeaderValue::from_str(&asked) {
                Ok(_) => asked.as_str(),
                Err(_) => "./",
            };
            let mut answer = Answer::redirect_as(StatusCode::SEE_OTHER, back);
            let cookie = HeaderValue::from_str(&cookie).expect("cookie is ascii");
            answer.headers.insert(header::SET_COOKIE, cookie);
            answer
        }
    }
}

async fn read_body<S, B>(mut body: S) -> Result<Vec<u8>, StatusCode>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let read = async {
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
            out.extend_from_slice(chunk.chunk());
            if out.len() as u64 > MAX_LOGIN_BODY {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
        }
        Ok(out)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or(Err(StatusCode::REQUEST_TIMEOUT))
}

/// The first value of field `name` in an `application/x-www-form-urlencoded`
/// body, decoded as browsers encode it (`+` is a space, `%XX` a byte).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode_once() {
        let form = b"token=1.ab&password=a%2Bb+c%26d%25";
        assert_eq!(form_field(form, "password").as_deref(), Some("a+b c&d%"));
        assert_eq!(form_field(form, "token").as_deref(), Some("1.ab"));
        assert_eq!(form_field(b"password", "password").as_deref(), Some(""));
        assert_eq!(form_field(b"pass=x", "password"), None);
        // What a browser never sends is kept as it came, as browsers read it.
        assert_eq!(
            form_field(b"password=%zz", "password").as_deref(),
            Some("%zz")
        );
    }
}
