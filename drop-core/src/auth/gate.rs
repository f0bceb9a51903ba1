//! The gate of protected pages: who has a session, and what a login attempt
//! comes to. It decides; the HTTP layer reads the form and answers.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::limiter::{Admission, LoginLimiter, client_of, through_tunnel};
use super::password::{Scratch, Verdict, verify_password_in};
use super::session::{SESSION_LIFETIME, SessionKey};
use crate::log::Throttle;

/// argon2id runs at once: each takes ~19 MiB and ~20 ms of a core. They run
/// on threads of their own, so their memory is reused rather than left
/// behind in the malloc arenas of many short-lived blocking threads.
const HASHING_THREADS: usize = 2;
/// Session cookies looked at per request; a browser sends one or two.
const MAX_COOKIES_CHECKED: usize = 8;

/// What checks logins: the cookie key, the rate limits, and the cap on
/// concurrent argon2id runs.
#[derive(Debug)]
pub struct Gate {
    key: SessionKey,
    limiter: LoginLimiter,
    hashing: HashPool,
    warnings: Throttle,
}

/// The parts of a request that the gate looks at.
#[derive(Debug, Default, Clone)]
pub struct LoginRequest {
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
    /// The TCP peer.
    pub peer: Option<SocketAddr>,
}

/// What a login attempt comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The form's token is missing, expired or not this page's.
    StaleForm,
    /// The form has no password field.
    NoPassword,
    /// Too many attempts: refused without checking.
    Limited {
        /// When a new attempt can succeed.
        retry_after: Duration,
    },
    /// The password is wrong.
    Wrong,
    /// The password is right.
    Right {
        /// A new hash to store in place of the page's legacy one.
        rehashed: Option<String>,
    },
}

impl Gate {
    /// A gate signing with `key`.
    pub fn new(key: SessionKey) -> Self {
        Gate {
            key,
            limiter: LoginLimiter::default(),
            hashing: HashPool::new(HASHING_THREADS),
            warnings: Throttle::default(),
        }
    }

    /// Whether the request carries a live session for the page `id`
    /// protected by `password_hash`.
    pub fn has_session(&self, id: &str, password_hash: &str, req: &LoginRequest) -> bool {
        let name = cookie_name(id);
        let now = SystemTime::now();
        cookie_values(req.cookie.as_deref(), &name)
            .take(MAX_COOKIES_CHECKED)
            .any(|value| self.key.accepts(id, password_hash, value, now))
    }

    /// A fresh token for the login form of the page `id`.
    pub fn form_token(&self, id: &str) -> String {
        self.key.form_token(id, SystemTime::now())
    }

    /// Whether a login POST comes from another site (login CSRF): a foreign
    /// `Origin` or `Sec-Fetch-Site: cross-site`. Logged, clipped: the values
    /// come from the client, and the log must not fill the disk: at most one
    /// line a minute per page.
    pub fn is_cross_site(&self, id: &str, req: &LoginRequest) -> bool {
        let cross = is_cross_site(req);
        if cross {
            self.warnings
                .line(id, format_args!("{}", cross_site_line(id, req)));
        }
        cross
    }

    /// Checks a submitted login form (`token`, `password`) for the page
    /// `id` protected by `password_hash`. Attempts are counted before the
    /// password is checked, so parallel requests cannot slip past the limit.
    pub async fn attempt(
        &self,
        id: &str,
        password_hash: &str,
        req: &LoginRequest,
        token: Option<&str>,
        password: Option<String>,
    ) -> LoginOutcome {
        let now = SystemTime::now();
        if !token.is_some_and(|t| self.key.accepts_form_token(id, t, now)) {
            return LoginOutcome::StaleForm;
        }
        let Some(password) = password else {
            return LoginOutcome::NoPassword;
        };
        let client = self.client(req);
        if let Admission::Limited { retry_after } = self.limiter.admit(id, client, Instant::now()) {
            return LoginOutcome::Limited { retry_after };
        }
        match self.hashing.verify(password_hash, password).await {
            Verdict::Wrong => LoginOutcome::Wrong,
            verdict => {
                self.limiter.succeeded(id, client);
                LoginOutcome::Right {
                    rehashed: match verdict {
                        Verdict::RightRehashed(new) => Some(new),
                        _ => None,
                    },
                }
            }
        }
    }

    /// The `Set-Cookie` value of a session for the page `id` under the
    /// hash in force. `Secure` only when the request came through the
    /// tunnel over HTTPS (a plain-HTTP visitor on the LAN must still log in).
    pub fn session_cookie(&self, id: &str, password_hash: &str, req: &LoginRequest) -> String {
        let value = self.key.issue(id, password_hash, SystemTime::now());
        let secure = came_over_https(req);
        page_cookie(&cookie_name(id), &value, id, SESSION_LIFETIME, secure)
    }

    /// Who is logging in, for the rate limits.
    fn client(&self, req: &LoginRequest) -> IpAddr {
        req.peer
            .map(|peer| client_of(peer, req.cf_connecting_ip.as_deref()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }
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

/// A foreign `Origin` or `Sec-Fetch-Site: cross-site` is a login CSRF.
/// `Origin: null` says nothing: browsers send it for every form POST from a
/// page with `Referrer-Policy: no-referrer`, which drop's pages all carry;
/// the form token still has to match.
fn is_cross_site(req: &LoginRequest) -> bool {
    if req
        .fetch_site
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("cross-site"))
    {
        return true;
    }
    match (req.origin.as_deref().filter(|o| *o != "null"), &req.host) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
    }
}

/// Whether `req` came through the tunnel over HTTPS: drop's cookies are
/// `Secure` then, and only then (a plain-HTTP visitor on the LAN must
/// still get them).
pub(crate) fn came_over_https(req: &LoginRequest) -> bool {
    req.peer.is_some_and(through_tunnel)
        && req
            .forwarded_proto
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a cookie of page `id` alone, for `max_age`,
/// out of scripts' reach.
pub(crate) fn page_cookie(
    name: &str,
    value: &str,
    id: &str,
    max_age: Duration,
    secure: bool,
) -> String {
    format!(
        "{name}={value}; Path=/p/{id}/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie of a page; page ids are plain ASCII.
fn cookie_name(id: &str) -> String {
    format!("drop_{id}")
}

/// Every value of the cookie `name`: a browser may send several (from
/// other paths), and any one that verifies opens the page.
pub(crate) fn cookie_values<'a>(
    header: Option<&'a str>,
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    header
        .unwrap_or_default()
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// At most 100 characters of a client-sent value, for the log.
/// A header's value as the log shows it: "none" when absent, else its first
/// 100 characters (and `…` when there were more), with control characters
/// and the marks that reorder text escaped: it comes from the client.
fn shown(value: Option<&str>) -> String {
    const SHOWN_CHARS: usize = 100;
    let Some(value) = value else {
        return "none".to_owned();
    };
    let clipped: String = value.chars().take(SHOWN_CHARS).collect();
    let mut text = crate::log::printable(&clipped);
    if value.chars().nth(SHOWN_CHARS).is_some() {
        text.push('…');
    }
    text
}

/// The log line of a refused cross-site login to the page `id`.
fn cross_site_line(id: &str, req: &LoginRequest) -> String {
    format!(
        "refused a cross-site login to page {id}: Origin {}, Sec-Fetch-Site {}, Host {}",
        shown(req.origin.as_deref()),
        shown(req.fetch_site.as_deref()),
        shown(req.host.as_deref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(SessionKey::from_bytes([7; 32]))
    }

    /// The client's values are shown plainly, escaped and clipped, and
    /// "none" when a header is absent.
    #[test]
    fn a_cross_site_login_is_logged_plainly() {
        let req = LoginRequest {
            origin: Some("https://evil.example".into()),
            host: Some(format!("a\u{1b}[2J{}", "b".repeat(200))),
            ..LoginRequest::default()
        };
        let line = cross_site_line("abc", &req);
        let host = format!("a\\u{{1b}}[2J{}…", "b".repeat(95));
        assert_eq!(
            line,
            format!(
                "refused a cross-site login to page abc: Origin https://evil.example, Sec-Fetch-Site none, Host {host}"
            )
        );
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
        let req = |origin: Option<&str>, site: Option<&str>| LoginRequest {
            origin: origin.map(Into::into),
            fetch_site: site.map(Into::into),
            host: Some("x.trycloudflare.com".into()),
            ..LoginRequest::default()
        };
        assert!(!is_cross_site(&req(None, None)));
        assert!(!is_cross_site(&req(
            Some("https://x.trycloudflare.com"),
            Some("same-origin")
        )));
        assert!(is_cross_site(&req(Some("https://evil.example"), None)));
        assert!(!is_cross_site(&req(Some("null"), Some("same-origin"))));
        assert!(is_cross_site(&req(None, Some("cross-site"))));
    }

    #[tokio::test]
    async fn a_right_password_opens_a_session_bound_to_its_page() {
        let gate = gate();
        let hash = super::super::password::hash_password("open sesame");
        let req = LoginRequest {
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            forwarded_proto: Some("https".into()),
            ..LoginRequest::default()
        };
        let token = gate.form_token("page1");
        let outcome = gate
            .attempt(
                "page1",
                &hash,
                &req,
                Some(&token),
                Some("open sesame".into()),
            )
            .await;
        assert_eq!(outcome, LoginOutcome::Right { rehashed: None });
        let cookie = gate.session_cookie("page1", &hash, &req);
        assert!(cookie.starts_with("drop_page1="), "{cookie}");
        assert!(cookie.ends_with("; Path=/p/page1/; Max-Age=900; HttpOnly; SameSite=Lax; Secure"));
        let value = cookie.split(';').next().unwrap().to_owned();
        let with_cookie = LoginRequest {
            cookie: Some(value),
            ..LoginRequest::default()
        };
        assert!(gate.has_session("page1", &hash, &with_cookie));
        assert!(!gate.has_session("page2", &hash, &with_cookie));
    }

    #[test]
    fn a_cookie_is_secure_only_through_the_tunnel_over_https() {
        let gate = gate();
        let cookie = |peer: &str, proto: Option<&str>| {
            let req = LoginRequest {
                peer: Some(peer.parse().unwrap()),
                forwarded_proto: proto.map(Into::into),
                ..LoginRequest::default()
            };
            gate.session_cookie("p", "h", &req).ends_with("; Secure")
        };
        assert!(cookie("127.0.0.1:9", Some("https")));
        assert!(cookie("[::1]:9", Some("HTTPS")));
        assert!(!cookie("127.0.0.1:9", None), "plain HTTP on this machine");
        assert!(
            !cookie("127.0.0.2:9", Some("https")),
            "not where the tunnel connects from"
        );
        assert!(
            !cookie("192.0.2.7:9", Some("https")),
            "a forged header from the LAN"
        );
    }

    #[tokio::test]
    async fn forms_not_served_by_this_gate_are_refused_before_any_hashing() {
        let gate = gate();
        let req = LoginRequest::default();
        let other = Gate::new(SessionKey::from_bytes([8; 32])).form_token("page1");
        for token in [None, Some("1.ab"), Some(other.as_str())] {
            let outcome = gate
                .attempt("page1", "$argon2id$x", &req, token, Some("pw".into()))
                .await;
            assert_eq!(outcome, LoginOutcome::StaleForm, "{token:?}");
        }
        let token = gate.form_token("page1");
        let outcome = gate
            .attempt("page1", "$argon2id$x", &req, Some(&token), None)
            .await;
        assert_eq!(outcome, LoginOutcome::NoPassword);
    }
}
