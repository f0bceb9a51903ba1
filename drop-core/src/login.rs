//! Password-protected pages: the login form, the login POST and sessions.
//! Authentication runs before any file is touched, so a protected page
//! answers the same for files that exist and files that do not.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Buf;
use futures_util::{Stream, StreamExt};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use std::sync::{Mutex, mpsc};
use tokio::sync::oneshot;

use crate::limiter::{Admission, LoginLimiter, client_of};
use crate::password::{Scratch, Verdict, verify_password_in};
use crate::respond::{Answer, AnswerBody};
use crate::session::{SESSION_LIFETIME, SessionKey};
use crate::site::{PageEntry, Site};

/// Largest login body read; a password is never near this.
pub const MAX_LOGIN_BODY: u64 = 4 * 1024;
/// A login body must arrive within this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// argon2id runs at once: each takes ~19 MiB and ~20 ms of a core. They run
/// on threads of their own, so their memory is reused rather than left
/// behind in the malloc arenas of many short-lived blocking threads.
const HASHING_THREADS: usize = 2;

/// The login form's stylesheet, served from `/_drop/login.css` so the
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
.error{color:#b3261e;background:#fdecea;padding:.5rem .75rem;border-radius:8px;margin-bottom:1rem}\n";

const LOGIN_CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What checks logins: the cookie key, the rate limits, and the cap on
/// concurrent argon2id runs.
#[derive(Debug)]
pub struct Gate {
    key: SessionKey,
    limiter: LoginLimiter,
    hashing: HashPool,
}

type HashJob = (String, String, oneshot::Sender<Verdict>);

/// A fixed set of threads that verify passwords, fed through a queue.
#[derive(Debug)]
struct HashPool {
    jobs: Mutex<mpsc::Sender<HashJob>>,
}

impl HashPool {
    fn new(threads: usize) -> Self {
        let (sender, receiver) = mpsc::channel::<HashJob>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("drop-argon2-{n}"))
                .spawn(move || {
                    let mut scratch = Scratch::default();
                    loop {
                        let job = receiver.lock().expect("hash queue lock").recv();
                        let Ok((stored, password, reply)) = job else {
                            return;
                        };
                        let _ = reply.send(verify_password_in(&stored, &password, &mut scratch));
                    }
                })
                .expect("spawn a hashing thread");
        }
        HashPool {
            jobs: Mutex::new(sender),
        }
    }

    async fn verify(&self, stored: &str, password: String) -> Verdict {
        let (reply, verdict) = oneshot::channel();
        let queued =
            self.jobs
                .lock()
                .expect("hash queue lock")
                .send((stored.to_owned(), password, reply));
        if queued.is_err() {
            return Verdict::Wrong;
        }
        verdict.await.unwrap_or(Verdict::Wrong)
    }
}

/// The parts of a request that a login needs.
#[derive(Debug, Default, Clone)]
pub struct LoginContext {
    /// The request path, to redirect back to after a login.
    pub path: String,
    /// `Cookie`.
    pub cookie: Option<String>,
    /// `Origin`.
    pub origin: Option<String>,
    /// `Sec-Fetch-Site`.
    pub fetch_site: Option<String>,
    /// `Host`.
    pub host: Option<String>,
    /// `X-Forwarded-Proto`, trusted only from loopback.
    pub forwarded_proto: Option<String>,
    /// `CF-Connecting-IP`, trusted only from loopback.
    pub cf_connecting_ip: Option<String>,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// The TCP peer.
    pub peer: Option<std::net::SocketAddr>,
}

impl Gate {
    /// A gate signing with `key`.
    pub fn new(key: SessionKey) -> Self {
        Gate {
            key,
            limiter: LoginLimiter::default(),
            hashing: HashPool::new(HASHING_THREADS),
        }
    }

    /// Whether the request carries a live session for `page`.
    pub fn has_session(&self, page: &PageEntry, ctx: &LoginContext) -> bool {
        let name = cookie_name(&page.id);
        let now = SystemTime::now();
        cookie_values(ctx.cookie.as_deref(), &name)
            .take(8)
            .any(|value| self.key.accepts(&page.id, &page.password_hash, value, now))
    }

    /// The login form, as asked for without a session.
    pub fn form(&self, page: &PageEntry, status: StatusCode, message: Option<&str>) -> Answer {
        let token = self.key.form_token(&page.id, SystemTime::now());
        login_form(status, &token, message)
    }
}

/// Handles a login POST on any path of a protected page.
pub async fn attempt<S, B>(
    site: &Arc<Site>,
    page: &PageEntry,
    ctx: &LoginContext,
    body: S,
) -> Answer
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let gate = site.gate();
    if is_cross_site(ctx) {
        // Cut: the values come from the client, and the log must not fill the disk.
        eprintln!(
            "drop: refused a cross-site login to page {}: Origin {:?}, Sec-Fetch-Site {:?}, Host {:?}",
            page.id,
            clip(ctx.origin.as_deref()),
            clip(ctx.fetch_site.as_deref()),
            clip(ctx.host.as_deref())
        );
        return Answer::fixed_text(StatusCode::FORBIDDEN, "Cross-site login refused.\n");
    }
    if ctx.content_length.is_some_and(|len| len > MAX_LOGIN_BODY) {
        return Answer::fixed_text(StatusCode::PAYLOAD_TOO_LARGE, "Login form too large.\n");
    }
    let form = match read_body(body).await {
        Ok(bytes) => parse_form(&bytes),
        Err(status) => return Answer::fixed_text(status, "Login form could not be read.\n"),
    };
    let token_ok = form_field(&form, "token")
        .is_some_and(|t| gate.key.accepts_form_token(&page.id, t, SystemTime::now()));
    if !token_ok {
        return Answer::fixed_text(
            StatusCode::FORBIDDEN,
            "Login form expired or not ours: reload the page.\n",
        );
    }
    let Some(password) = form_field(&form, "password").map(str::to_owned) else {
        return Answer::fixed_text(StatusCode::BAD_REQUEST, "The form has no password field.\n");
    };
    let client = ctx
        .peer
        .map(|peer| client_of(peer, ctx.cf_connecting_ip.as_deref()));
    let client = client.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    if let Admission::Limited { retry_after } = gate.limiter.admit(&page.id, client, Instant::now())
    {
        let secs = retry_after.as_secs().max(1);
        let wait = if secs < 90 {
            format!("{secs} seconds")
        } else {
            format!("{} minutes", secs.div_ceil(60))
        };
        let message = format!("Too many attempts. Try again in {wait}.");
        let mut answer = gate.form(page, StatusCode::TOO_MANY_REQUESTS, Some(&message));
        answer
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return answer;
    }
    match gate.hashing.verify(&page.password_hash, password).await {
        Verdict::Wrong => gate.form(
            page,
            StatusCode::UNAUTHORIZED,
            Some("Wrong password. Try again."),
        ),
        verdict => {
            gate.limiter.succeeded(&page.id, client);
            let hash = match verdict {
                Verdict::RightRehashed(new) => {
                    site.replace_password_hash(&page.id, &page.password_hash, new)
                        .await
                }
                _ => page.password_hash.clone(),
            };
            logged_in(gate, page, ctx, &hash)
        }
    }
}

fn logged_in(gate: &Gate, page: &PageEntry, ctx: &LoginContext, hash: &str) -> Answer {
    let value = gate.key.issue(&page.id, hash, SystemTime::now());
    let secure = ctx
        .peer
        .is_some_and(|p| p.ip().to_canonical().is_loopback())
        && ctx
            .forwarded_proto
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{}={value}; Path=/p/{}/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        cookie_name(&page.id),
        page.id,
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let back = if HeaderValue::from_str(&ctx.path).is_ok() {
        ctx.path.as_str()
    } else {
        "./"
    };
    let mut answer = Answer::redirect_as(StatusCode::SEE_OTHER, back);
    let cookie = HeaderValue::from_str(&cookie).expect("cookie is ascii");
    answer.headers.insert(header::SET_COOKIE, cookie);
    answer
}

/// A foreign `Origin` or `Sec-Fetch-Site: cross-site` is a login CSRF.
/// `Origin: null` says nothing: browsers send it for every form POST from a
/// page with `Referrer-Policy: no-referrer`, which drop's pages all carry;
/// the form token still has to match.
fn is_cross_site(ctx: &LoginContext) -> bool {
    if ctx
        .fetch_site
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("cross-site"))
    {
        return true;
    }
    match (ctx.origin.as_deref().filter(|o| *o != "null"), &ctx.host) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
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

/// The session cookie of a page; page ids are plain ASCII.
fn cookie_name(id: &str) -> String {
    format!("drop_{id}")
}

/// Every value of the cookie `name`: a browser may send several (from
/// other paths), and any one that verifies opens the page.
fn cookie_values<'a>(header: Option<&'a str>, name: &'a str) -> impl Iterator<Item = &'a str> {
    header
        .unwrap_or_default()
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// At most 100 characters of a client-sent value, for the log.
fn clip(value: Option<&str>) -> Option<String> {
    value.map(|v| v.chars().take(100).collect())
}

fn login_form(status: StatusCode, token: &str, message: Option<&str>) -> Answer {
    let error = message.map_or(String::new(), |m| {
        format!("<div class=\"error\" role=\"alert\">{m}</div>")
    });
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>Password required</title>\
<link rel=\"stylesheet\" href=\"/_drop/login.css\"></head><body><main>\
<h1>Password required</h1><p>This page is protected.</p>{error}\
<form method=\"post\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
<button type=\"submit\">Open</button></form></main></body></html>\n"
    );
    let mut headers = HeaderMap::with_capacity(16);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(LOGIN_CSP),
    );
    Answer {
        status,
        headers,
        body: AnswerBody::Bytes(html.into()),
    }
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

    #[test]
    fn cookies_are_found_by_exact_name_every_time() {
        let header = Some("a=1; drop_abc=xyz; drop_abcd=no; drop_abc=second");
        let found: Vec<&str> = cookie_values(header, "drop_abc").collect();
        assert_eq!(found, ["xyz", "second"]);
        assert_eq!(cookie_values(header, "drop_ab").count(), 0);
    }

    #[test]
    fn foreign_origins_and_cross_site_fetches_are_refused() {
        let ctx = |origin: Option<&str>, site: Option<&str>| LoginContext {
            origin: origin.map(Into::into),
            fetch_site: site.map(Into::into),
            host: Some("x.trycloudflare.com".into()),
            ..LoginContext::default()
        };
        assert!(!is_cross_site(&ctx(None, None)));
        assert!(!is_cross_site(&ctx(
            Some("https://x.trycloudflare.com"),
            Some("same-origin")
        )));
        assert!(is_cross_site(&ctx(Some("https://evil.example"), None)));
        assert!(!is_cross_site(&ctx(Some("null"), Some("same-origin"))));
        assert!(is_cross_site(&ctx(None, Some("cross-site"))));
    }
}
