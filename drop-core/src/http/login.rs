//! A login POST to a protected page, as HTTP: the body is read with a size
//! cap and a deadline, the form decoded once, and the gate's verdict turned
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
        Ok(bytes) => parse_form(&bytes),
        Err(status) => return Answer::fixed_text(status, "Login form could not be read.\n"),
    };
    let token = form_field(&form, "token");
    let password = form_field(&form, "password").map(str::to_owned);
    let outcome = gate
        .attempt(&page.id, &page.password_hash, &login, token, password)
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
            let back = match HeaderValue::from_str(&req.path) {
                Ok(_) => req.path.as_str(),
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

/// `application/x-www-form-urlencoded` pairs; undecodable ones are dropped.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter_map(|pair| {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            let key = form_decode(parts.next()?)?;
            let value = form_decode(parts.next().unwrap_or_default())?;
            Some((key, value))
        })
        .collect()
}

fn form_field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn form_decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode_once() {
        let form = parse_form(b"token=1.ab&password=a%2Bb+c%26d");
        assert_eq!(form_field(&form, "password"), Some("a+b c&d"));
        assert_eq!(form_field(&form, "token"), Some("1.ab"));
        assert_eq!(form_field(&parse_form(b"password"), "password"), Some(""));
        assert!(parse_form(b"password=%zz").is_empty());
    }
}
