//! Whether a tunnel URL works from outside, before anyone is handed it: a
//! request through the edge to its hostname reaches the origin (for the
//! page server, this very daemon, by a probe path carrying a nonce it
//! issued), and the hostname resolves at public DNS, asked over
//! DNS-over-HTTPS so no resolver on this machine's way caches an answer.
//!
//! The order matters. A quick tunnel's DNS record is published a few
//! seconds after its first edge connection registers, and a resolver that
//! is asked before caches "no such name" for the zone's negative TTL
//! (30 minutes for `trycloudflare.com`), for everyone behind it, the human
//! too. So the edge is asked first, at the address of the hostname's parent
//! zone (the edge routes by name, whichever of its addresses is used), and
//! public DNS only once the edge reaches the origin and the tunnel has
//! been up for a settling time.
//!
//! [`LinkChecker`] is the boundary to the outside world; [`PublicChecker`]
//! is the real one, and tests swap in a fake.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use crate::http::probe::{PROBE_ANSWER, PROBE_PREFIX, Probes};

/// Public DNS-over-HTTPS resolvers with the JSON API.
pub const DEFAULT_DOH_URLS: &[&str] = &[
    "https://cloudflare-dns.com/dns-query",
    "https://dns.google/resolve",
];
/// How long one question to a resolver or the edge may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read: a DNS JSON answer is a few KiB, the probe's
/// five bytes; anything longer is not what was asked for.
const MAX_ANSWER: usize = 64 * 1024;
/// How often a URL not confirmed yet is checked during the bound…
const RETRY_EARLY: Duration = Duration::from_secs(1);
/// …and after it.
const RETRY_LATE: Duration = Duration::from_secs(10);
/// How often a confirmed URL is checked again.
const RECHECK: Duration = Duration::from_secs(5 * 60);
/// How long after a tunnel comes up public DNS is first asked about it:
/// quick tunnels' records are published 0.2–4 s after the first edge
/// connection registers, and an earlier question caches "no such name".
pub const DNS_SETTLE: Duration = Duration::from_secs(5);

/// Where the checks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// DNS-over-HTTPS endpoints with the JSON API (`?name=…&type=A`).
    pub doh_urls: Vec<String>,
    /// Every probe of a tunnel hostname goes to this `http://host:port`
    /// with the hostname as `Host`, instead of to the edge (for tests and
    /// for proxies).
    pub edge: Option<String>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            doh_urls: DEFAULT_DOH_URLS.iter().map(|u| u.to_string()).collect(),
            edge: None,
        }
    }
}

/// What the origin behind a tunnel is expected to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// drop's page server: it must answer the probe path with this nonce.
    Daemon {
        /// A nonce from [`Probes::issue`].
        nonce: String,
    },
    /// An app: any answer from it but the edge's own failures, asked at
    /// drop's probe path with this nonce, so that drop's page server
    /// answering instead (a named tunnel's catch-all: the hostname is not
    /// routed to the app) is told apart.
    App {
        /// A nonce from [`Probes::issue`].
        nonce: String,
    },
}

impl Origin {
    /// The nonce the probe path carries.
    fn nonce(&self) -> &str {
        match self {
            Origin::Daemon { nonce } | Origin::App { nonce } => nonce,
        }
    }
}

/// Why a link is not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Public DNS does not know the hostname yet (NXDOMAIN, or no address).
    #[error("{host} does not resolve at public DNS yet")]
    NotPublished {
        /// The hostname.
        host: String,
    },
    /// No DNS-over-HTTPS resolver answered.
    #[error("no public DNS resolver answered ({detail})")]
    DnsUnreachable {
        /// Why, from the last one asked.
        detail: String,
    },
    /// The edge answered, but not with the origin: the tunnel is not
    /// connected there (yet).
    #[error("the edge answers {status} for {host}: the tunnel does not reach its origin there yet")]
    EdgeNotConnected {
        /// The hostname.
        host: String,
        /// The status it answered.
        status: u16,
    },
    /// The tunnel answers for the hostname, but not with the app: it is
    /// not (yet) routed to it.
    #[error("the tunnel does not route {host} to the app yet")]
    NotRouted {
        /// The hostname.
        host: String,
    },
    /// No answer through the edge at all.
    #[error("{host} does not answer through the edge ({detail})")]
    EdgeUnreachable {
        /// The hostname.
        host: String,
        /// Why.
        detail: String,
    },
}

/// The outside world as link checks see it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)] // must precede async_trait
#[async_trait::async_trait]
pub trait LinkChecker: Send + Sync {
    /// The addresses public DNS gives `host`.
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, LinkError>;

    /// Whether a request for `url` through the edge reaches `origin`,
    /// without asking DNS for the URL's own hostname.
    async fn reach(&self, url: &str, origin: &Origin) -> Result<(), LinkError>;
}

/// Checks a URL end to end: the edge first; then, not before `dns_from`,
/// public DNS (see the module docs for why in this order).
pub async fn check(
    checker: &dyn LinkChecker,
    url: &str,
    origin: &Origin,
    dns_from: tokio::time::Instant,
) -> Result<(), LinkError> {
    checker.reach(url, origin).await?;
    tokio::time::sleep_until(dns_from).await;
    checker.resolve(host_of(url)).await.map(drop)
}

/// Whether `text` is an `http(s)://host[:port]` URL the checks can ask:
/// with a host, and, when `base_only`, nothing after it but `/`.
pub fn usable_url(text: &str, base_only: bool) -> bool {
    let Ok(url) = reqwest::Url::parse(text) else {
        return false;
    };
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && (bare || !base_only)
}

/// What one step of checking a URL found, for `drop doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepResult {
    /// It passed.
    Passed,
    /// It failed.
    Failed {
        /// Why, in one line.
        error: String,
    },
    /// It was not tried.
    NotAsked {
        /// Why not.
        why: String,
    },
}

/// Every step of checking a URL from outside, each tried even when a step
/// before failed (but public DNS only once the edge reaches the origin).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkReport {
    /// The URL checked.
    pub url: String,
    /// A request through the edge.
    pub edge: StepResult,
    /// Public DNS for its hostname.
    pub dns: StepResult,
}

/// Checks `url` now, step by step, for a report rather than a verdict;
/// public DNS only when `ask_dns` (not while the tunnel is new: see the
/// module docs).
pub async fn diagnose(
    checker: &dyn LinkChecker,
    url: &str,
    origin: &Origin,
    ask_dns: bool,
) -> LinkReport {
    let failed = |e: LinkError| StepResult::Failed {
        error: e.to_string(),
    };
    let edge = match checker.reach(url, origin).await {
        Ok(()) => StepResult::Passed,
        Err(e) => failed(e),
    };
    let dns = match edge {
        // Asking now could make resolvers remember "no such name".
        StepResult::Failed { .. } => StepResult::NotAsked {
            why: "the edge does not reach drop yet, so the name may not exist yet".into(),
        },
        _ if !ask_dns => StepResult::NotAsked {
            why: "the tunnel is new and drop is checking it itself; asking before its name is published would make resolvers remember \"no such name\": wait a few seconds".into(),
        },
        _ => match checker.resolve(host_of(url)).await {
            Ok(_) => StepResult::Passed,
            Err(e) => failed(e),
        },
    };
    LinkReport {
        url: url.to_owned(),
        edge,
        dns,
    }
}

/// The zone above `host`: `trycloudflare.com` for `a-b.trycloudflare.com`.
fn parent_of(host: &str) -> Option<&str> {
    let (_, parent) = host.split_once('.')?;
    parent.contains('.').then_some(parent)
}

/// The hostname of an `https://host[/…]` URL.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', ':']).next().unwrap_or(rest)
}

/// The real checks: HTTPS to the edge, then DNS-over-HTTPS resolvers
/// raced (never the local resolver).
#[derive(Debug, Clone)]
pub struct PublicChecker {
    config: LinkConfig,
    client: reqwest::Client,
}

impl PublicChecker {
    /// A checker asking where `config` says.
    pub fn new(config: LinkConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a TLS client with bundled roots");
        PublicChecker { config, client }
    }

    async fn ask_resolver(&self, doh: &str, host: &str) -> Result<Vec<IpAddr>, LinkError> {
        let unreachable = |detail: String| LinkError::DnsUnreachable { detail };
        let response = self
            .client
            .get(doh)
            .query(&[("name", host), ("type", "A")])
            .header("accept", "application/dns-json")
            .send()
            .await
            .map_err(|e| unreachable(format!("{doh}: {}", error_chain(&e))))?;
        if !response.status().is_success() {
            return Err(unreachable(format!(
                "{doh} answered HTTP {}",
                response.status().as_u16()
            )));
        }
        let text = read_capped(response)
            .await
            .map_err(|e| unreachable(format!("{doh}: {e}")))?;
        let body: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| unreachable(format!("{doh}: not a DNS JSON answer ({e})")))?;
        let addrs = answers(&body, host);
        match (body["Status"].as_u64(), addrs.is_empty()) {
            (Some(0), false) => Ok(addrs),
            // NXDOMAIN (3), or a name with no address yet.
            (Some(0 | 3), _) => Err(LinkError::NotPublished {
                host: host.to_owned(),
            }),
            (status, _) => Err(unreachable(format!("{doh}: status {status:?}"))),
        }
    }
}

/// Whether `status` is the edge's own failure rather than the origin's
/// answer: 502 and 504 (bad gateway, timeout to the origin), 520–527
/// (Cloudflare's origin errors) and 530 (no tunnel connected, error 1033).
fn edge_failure(status: u16) -> bool {
    matches!(status, 502 | 504 | 520..=527 | 530)
}

/// An error with its causes, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line
}

/// The usable addresses of `host` in a DNS JSON answer: A records of the
/// name asked, or of a name it is a CNAME of (in the answer's order).
fn answers(body: &serde_json::Value, host: &str) -> Vec<IpAddr> {
    let records: Vec<&serde_json::Value> =
        body["Answer"].as_array().into_iter().flatten().collect();
    let name_of = |r: &serde_json::Value| {
        r["name"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    let mut names = vec![host.trim_end_matches('.').to_ascii_lowercase()];
    for record in &records {
        if record["type"].as_u64() == Some(5) && names.contains(&name_of(record)) {
            let target = record["data"].as_str().unwrap_or_default();
            names.push(target.trim_end_matches('.').to_ascii_lowercase());
        }
    }
    records
        .iter()
        .filter(|r| r["type"].as_u64() == Some(1) && names.contains(&name_of(r)))
        .filter_map(|r| r["data"].as_str()?.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified() && !ip.is_multicast())
        .collect()
}

/// The body of `response`, at most [`MAX_ANSWER`] bytes of it.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("an answer longer than {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait::async_trait]
impl LinkChecker for PublicChecker {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, LinkError> {
        let asks = self
            .config
            .doh_urls
            .iter()
            .map(|doh| Box::pin(self.ask_resolver(doh, host)));
        // The first resolver that knows the name wins; "not yet" from one
        // is kept only if no other knows better.
        let mut pending: Vec<_> = asks.collect();
        let mut last = LinkError::DnsUnreachable {
            detail: "no resolver configured".into(),
        };
        while !pending.is_empty() {
            let (result, _, rest) = futures_util::future::select_all(pending).await;
            pending = rest;
            match result {
                Ok(addrs) => return Ok(addrs),
                Err(e @ LinkError::NotPublished { .. }) => last = e,
                Err(e) if !matches!(last, LinkError::NotPublished { .. }) => last = e,
                Err(_) => {}
            }
        }
        Err(last)
    }

    async fn reach(&self, url: &str, origin: &Origin) -> Result<(), LinkError> {
        let host = host_of(url);
        let unreachable = |detail: String| LinkError::EdgeUnreachable {
            host: host.to_owned(),
            detail,
        };
        let path = format!("{PROBE_PREFIX}{}", origin.nonce());
        let request = match &self.config.edge {
            Some(edge) => self
                .client
                .get(format!("{}{path}", edge.trim_end_matches('/')))
                .header("host", host),
            None => {
                // The edge at its parent zone's address: neither public DNS
                // nor the local resolver is asked for the new name yet.
                let parent = parent_of(host)
                    .ok_or_else(|| unreachable("a hostname without a parent zone".into()))?;
                let addrs = self
                    .resolve(parent)
                    .await
                    .map_err(|e| unreachable(format!("the edge's address: {e}")))?;
                let pinned = reqwest::Client::builder()
                    .timeout(REQUEST_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .resolve(host, SocketAddr::new(addrs[0], 443))
                    .build()
                    .expect("a TLS client with bundled roots");
                pinned.get(format!("https://{host}{path}"))
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = response.status().as_u16();
        let drop_answered = status == 200
            && read_capped(response)
                .await
                .is_ok_and(|b| b == PROBE_ANSWER.as_bytes());
        match origin {
            Origin::Daemon { .. } if drop_answered => Ok(()),
            Origin::App { .. } if drop_answered => Err(LinkError::NotRouted {
                host: host.to_owned(),
            }),
            Origin::App { .. } if !edge_failure(status) => Ok(()),
            _ => Err(LinkError::EdgeNotConnected {
                host: host.to_owned(),
                status,
            }),
        }
    }
}

/// How the daemon checks its tunnels' URLs: the checker, the nonces the
/// page server answers, and how long a start waits for a confirmation.
#[derive(Clone)]
pub struct LinkCheck {
    /// Asks the outside world.
    pub checker: Arc<dyn LinkChecker>,
    /// The nonces issued for the page server's probe path.
    pub probes: Arc<Probes>,
    /// How long a start waits for a confirmation before it prints the URL
    /// with a note that it is not confirmed yet (checks go on).
    pub bound: Duration,
    /// How long after a tunnel comes up public DNS is first asked about it
    /// ([`DNS_SETTLE`] unless told otherwise).
    pub dns_settle: Duration,
}

impl std::fmt::Debug for LinkCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCheck")
            .field("bound", &self.bound)
            .field("dns_settle", &self.dns_settle)
            .finish_non_exhaustive()
    }
}

/// Where checking one tunnel URL stands: when to check next, and what a
/// check's result means for the record and for whoever waits.
#[derive(Debug)]
pub(crate) struct Confirmation {
    url: String,
    since: tokio::time::Instant,
    next: tokio::time::Instant,
    /// Public DNS is not asked about the URL's host before this.
    dns_from: tokio::time::Instant,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Never seen to work; within the bound.
    Pending,
    /// Never seen to work, and the bound has passed: handed out with a note.
    Unconfirmed,
    /// Seen to work.
    Confirmed,
}

/// What a check changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It works from outside, for the first time or again after a failure.
    Confirmed,
    /// It still works, as it did at the check before.
    Rechecked,
    /// Still not seen to work, and the bound has just passed.
    Unconfirmed(LinkError),
    /// It worked, and a later check failed.
    Lost(LinkError),
}

impl Confirmation {
    /// Checks of a new `url`, the first one now; public DNS is asked about
    /// its host from `dns_from` on (it takes a moment to publish it).
    pub(crate) fn new(
        url: String,
        now: tokio::time::Instant,
        dns_from: tokio::time::Instant,
    ) -> Self {
        Confirmation {
            url,
            since: now,
            next: now,
            dns_from,
            stage: Stage::Pending,
        }
    }

    /// The URL checked.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// When public DNS may first be asked about the URL's host.
    pub(crate) fn dns_from(&self) -> tokio::time::Instant {
        self.dns_from
    }

    /// When the next check is due.
    pub(crate) fn next_check(&self) -> tokio::time::Instant {
        self.next
    }

    /// Whether the URL was handed out: `Some(true)` once seen to work,
    /// `Some(false)` past the bound without that, `None` while pending.
    pub(crate) fn handed_out(&self) -> Option<bool> {
        match self.stage {
            Stage::Pending => None,
            Stage::Unconfirmed => Some(false),
            Stage::Confirmed => Some(true),
        }
    }

    /// Brings the next check forward to `now`.
    pub(crate) fn check_now(&mut self, now: tokio::time::Instant) {
        self.next = now;
    }

    /// Takes a check's result; a verdict when it changes what is recorded
    /// (a success always does: when the URL was last seen to work).
    pub(crate) fn after(
        &mut self,
        result: Result<(), LinkError>,
        now: tokio::time::Instant,
        bound: Duration,
    ) -> Option<Verdict> {
        let (stage, verdict) = match (self.stage, result) {
            (Stage::Confirmed, Ok(())) => (Stage::Confirmed, Some(Verdict::Rechecked)),
            (_, Ok(())) => (Stage::Confirmed, Some(Verdict::Confirmed)),
            (Stage::Confirmed, Err(e)) => (Stage::Unconfirmed, Some(Verdict::Lost(e))),
            (Stage::Pending, Err(e)) if now.duration_since(self.since) >= bound => {
                (Stage::Unconfirmed, Some(Verdict::Unconfirmed(e)))
            }
            (stage, Err(_)) => (stage, None),
        };
        self.stage = stage;
        self.next = now
            + match stage {
                Stage::Confirmed => RECHECK,
                Stage::Pending => RETRY_EARLY,
                Stage::Unconfirmed => RETRY_LATE,
            };
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(
            host_of("https://a-b-c-d.trycloudflare.com"),
            "a-b-c-d.trycloudflare.com"
        );
        assert_eq!(host_of("https://x.example.com/p/abc/"), "x.example.com");
        assert_eq!(host_of("http://127.0.0.1:8080/"), "127.0.0.1");
    }

    /// An edge or resolver that answers without end is cut off at
    /// [`MAX_ANSWER`], not read into memory.
    #[tokio::test]
    async fn endless_answers_are_cut_off() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut head = [0u8; 1024];
                let _ = stream.read(&mut head);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-json\r\n\r\n");
                let chunk = vec![b'x'; 64 * 1024];
                while stream.write_all(&chunk).is_ok() {}
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let checker = PublicChecker::new(LinkConfig {
            doh_urls: vec![format!("{base}/dns-query")],
            edge: Some(base),
        });
        let origin = Origin::Daemon { nonce: "n".into() };
        let reached = checker.reach("https://a.trycloudflare.com", &origin).await;
        assert!(
            matches!(
                reached,
                Err(LinkError::EdgeNotConnected { status: 200, .. })
            ),
            "{reached:?}"
        );
        let resolved = checker.resolve("a.trycloudflare.com").await;
        let Err(LinkError::DnsUnreachable { detail }) = resolved else {
            panic!("{resolved:?}");
        };
        assert!(detail.contains("longer than"), "{detail}");
    }

    #[test]
    fn only_urls_the_checks_can_ask_are_usable() {
        assert!(usable_url("https://dns.google/resolve", false));
        assert!(usable_url("http://127.0.0.1:8053/dns-query", false));
        assert!(usable_url("http://127.0.0.1:9", true));
        assert!(usable_url("http://127.0.0.1:9/", true));
        for bad in [
            "http://:0/",
            "http://[::1",
            "http://%zz",
            "ftp://x",
            "dns.google",
            "",
        ] {
            assert!(!usable_url(bad, false), "{bad}");
        }
        assert!(!usable_url("http://127.0.0.1:9/some/path?q=1", true));
    }

    #[test]
    fn the_edge_is_found_at_the_parent_zone() {
        assert_eq!(
            parent_of("a-b-c.trycloudflare.com"),
            Some("trycloudflare.com")
        );
        assert_eq!(parent_of("app.example.co.uk"), Some("example.co.uk"));
        assert_eq!(parent_of("example.com"), None, "no zone above a zone");
        assert_eq!(parent_of("localhost"), None);
    }

    #[test]
    fn only_a_records_of_the_name_asked_count_as_answers() {
        let body = serde_json::json!({
            "Status": 0,
            "Answer": [
                {"name": "x.", "type": 5, "data": "y."},
                {"name": "y.", "type": 1, "data": "104.16.1.2"},
                {"name": "evil.", "type": 1, "data": "203.0.113.9"},
                {"name": "x.", "type": 1, "data": "0.0.0.0"},
            ]
        });
        assert_eq!(
            answers(&body, "x"),
            ["104.16.1.2".parse::<IpAddr>().unwrap()]
        );
        assert!(answers(&body, "other").is_empty());
        assert!(answers(&serde_json::json!({"Status": 3}), "x").is_empty());
    }

    #[test]
    fn the_edges_own_failures_are_told_from_an_apps_answers() {
        for status in [502, 504, 520, 524, 527, 530] {
            assert!(edge_failure(status), "{status}");
        }
        for status in [200, 301, 401, 404, 500, 503] {
            assert!(!edge_failure(status), "{status}");
        }
    }

    #[test]
    fn a_url_is_confirmed_or_handed_out_unconfirmed_at_the_bound() {
        let bound = Duration::from_secs(30);
        let t0 = tokio::time::Instant::now();
        let not_yet = || LinkError::NotPublished { host: "h".into() };
        let mut c = Confirmation::new("https://h".into(), t0, t0);
        assert_eq!(c.next_check(), t0, "checked at once");
        assert_eq!(c.after(Err(not_yet()), t0, bound), None);
        assert_eq!(c.next_check(), t0 + RETRY_EARLY);
        let late = t0 + bound;
        assert_eq!(
            c.after(Err(not_yet()), late, bound),
            Some(Verdict::Unconfirmed(not_yet()))
        );
        assert_eq!(c.after(Err(not_yet()), late, bound), None, "said once");
        assert_eq!(c.next_check(), late + RETRY_LATE);
        assert_eq!(c.after(Ok(()), late, bound), Some(Verdict::Confirmed));
        assert_eq!(c.next_check(), late + RECHECK);
        assert_eq!(c.after(Ok(()), late, bound), Some(Verdict::Rechecked));
        assert_eq!(
            c.after(Err(not_yet()), late, bound),
            Some(Verdict::Lost(not_yet()))
        );
    }
}
