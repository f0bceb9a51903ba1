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

mod public;
mod refusal;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use self::public::PublicChecker;
pub use self::refusal::DevServer;
pub use crate::http::probe::{PROBE_ANSWER, PROBE_HEADER, PROBE_PREFIX, Probes};

/// Public DNS-over-HTTPS resolvers with the JSON API.
pub const DEFAULT_DOH_URLS: &[&str] = &[
    "https://cloudflare-dns.com/dns-query",
    "https://dns.google/resolve",
];
/// How long one question to a resolver, the edge or an app may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer read: a DNS JSON answer is a few KiB, the probe's
/// five bytes; anything longer is not what was asked for.
const MAX_ANSWER: usize = 64 * 1024;
/// How often a URL not confirmed yet is checked during the bound…
const RETRY_EARLY: Duration = Duration::from_secs(1);
/// …and after it.
const RETRY_LATE: Duration = Duration::from_secs(10);
/// How often an app whose host check refuses the human is asked again: it
/// refuses until its settings change, and each refusal can put a traceback
/// in the app's log (Django's, with `DEBUG`).
const RETRY_REFUSED: Duration = Duration::from_secs(60);
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
    /// An app listening at `local`: its page `/` through the edge must be
    /// what the human can use, and no refusal the app does not also give
    /// on its own port (a dev server refusing the public hostname). The
    /// request carries this nonce in [`PROBE_HEADER`], which drop's page
    /// server answers with the probe's answer: a named tunnel that hands
    /// the hostname to drop rather than the app is told apart.
    App {
        /// A nonce from [`Probes::issue`].
        nonce: String,
        /// Where the tunnel reaches the app.
        local: SocketAddr,
        /// The app is sent the public hostname (`--keep-host`), not
        /// `localhost:PORT`: for the fix of a refusal.
        keep_host: bool,
    },
}

/// Why a link is not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The edge reaches the origin, and public DNS is not asked yet: the
    /// name is too new (asking now could make resolvers remember "no such
    /// name").
    #[error("the edge reaches it, and public DNS is not asked about {host} yet: the name is new")]
    DnsNotAskedYet {
        /// The hostname.
        host: String,
    },
    /// Public DNS does not know the hostname yet (NXDOMAIN, or no address).
    #[error("{host} does not resolve at public DNS yet")]
    NotPublished {
        /// The hostname.
        host: String,
    },
    /// No DNS-over-HTTPS resolver answered.
    #[error("no public DNS resolver could be reached")]
    DnsUnreachable {
        /// Why, from the last one asked (for logs and `--json`).
        detail: String,
    },
    /// The edge answered, but not with the origin: the tunnel is not
    /// connected there (yet).
    #[error("the edge answers {status} for {host}: the tunnel does not reach its origin there")]
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
    #[error("{host} does not answer through the edge")]
    EdgeUnreachable {
        /// The hostname.
        host: String,
        /// Why, in the words of the HTTP client (for logs and `--json`).
        detail: String,
    },
    /// The app answers the human with a refusal it does not give on its own
    /// port: a dev server that checks the `Host` it is sent.
    #[error(
        "the app refuses {host}: it answers {status} through the tunnel and {local} on its own port{}",
        dev_server.map_or(String::new(), |d| format!("; {}", d.refusal())),
        local = local_status.map_or("nothing".to_owned(), |s| s.to_string())
    )]
    Refused {
        /// The hostname.
        host: String,
        /// What the app answered through the tunnel.
        status: u16,
        /// What it answers on its own port, when it answered.
        local_status: Option<u16>,
        /// The dev server whose host check it is, when its answer tells.
        dev_server: Option<DevServer>,
        /// The app is sent the public hostname (`--keep-host`).
        keep_host: bool,
    },
    /// The app sends the human to an address of this machine (it built the
    /// redirect from the `Host` it was sent, or from its own settings).
    #[error("the app sends whoever opens {host} to {location}, an address on this machine")]
    RedirectsToLocal {
        /// The hostname.
        host: String,
        /// Where it redirects.
        location: String,
        /// The app is sent the public hostname (`--keep-host`).
        keep_host: bool,
    },
    /// The app answers on neither side: it does not serve `/` at all.
    #[error("the app does not answer {host}, nor on its own port")]
    AppNotAnswering {
        /// The hostname.
        host: String,
    },
    /// The app's own failure, the same on its own port.
    #[error("the app answers {status} for {host}, and on its own port too: it fails by itself")]
    AppFails {
        /// The hostname.
        host: String,
        /// What it answers.
        status: u16,
    },
}

impl LinkError {
    /// What the user does about it, when it is theirs to mend.
    pub fn fix(&self) -> Option<String> {
        match self {
            LinkError::Refused {
                dev_server,
                keep_host,
                ..
            } => Some(refusal::fix(*dev_server, *keep_host)),
            LinkError::RedirectsToLocal { keep_host, .. } => Some(refusal::redirect_fix(*keep_host)),
            LinkError::AppNotAnswering { .. } | LinkError::AppFails { .. } => Some(
                "the app itself fails: 'drop logs <app>' shows its output; fix it, then 'drop stop <app>' and 'drop start <app>'"
                    .into(),
            ),
            _ => None,
        }
    }

    /// The cause in the words of the HTTP client or resolver, when there is
    /// more to it than the message says.
    pub fn detail(&self) -> Option<&str> {
        match self {
            LinkError::EdgeUnreachable { detail, .. } | LinkError::DnsUnreachable { detail } => {
                Some(detail)
            }
            _ => None,
        }
    }

    /// Whether the app answered, and what it answered is the trouble: the
    /// tunnel and the edge work.
    pub fn is_the_apps(&self) -> bool {
        matches!(
            self,
            LinkError::Refused { .. }
                | LinkError::RedirectsToLocal { .. }
                | LinkError::AppNotAnswering { .. }
                | LinkError::AppFails { .. }
        )
    }

    /// Whether waiting does not mend it: a dev server's host check, a
    /// redirect to this machine. Said at once rather than at the bound.
    fn is_settled(&self) -> bool {
        matches!(
            self,
            LinkError::Refused {
                dev_server: Some(_),
                ..
            } | LinkError::RedirectsToLocal { .. }
        )
    }
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
/// public DNS (see the module docs for why in this order). When an answer
/// is due by `answer_by`, before DNS may be asked, the check ends then,
/// with [`LinkError::DnsNotAskedYet`].
pub async fn check(
    checker: &dyn LinkChecker,
    url: &str,
    origin: &Origin,
    dns_from: tokio::time::Instant,
    answer_by: Option<tokio::time::Instant>,
) -> Result<(), LinkError> {
    checker.reach(url, origin).await?;
    if let Some(due) = answer_by.filter(|due| *due < dns_from) {
        tokio::time::sleep_until(due).await;
        return Err(LinkError::DnsNotAskedYet {
            host: host_of(url).to_owned(),
        });
    }
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
        /// The cause in the HTTP client's or resolver's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// What to do, when the failure says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fix: Option<String>,
        /// The failure's kind, for the fix a command gives otherwise.
        #[serde(default)]
        kind: FailureKind,
    },
    /// It was not tried.
    NotAsked {
        /// Why not.
        why: String,
    },
}

/// What kind of failure a step met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The tunnel or its name is not there (yet).
    #[default]
    NotThere,
    /// Public DNS could not be asked at all: this machine's way out.
    ResolversUnreachable,
    /// The app answers, and that is the trouble: it refuses the human,
    /// sends them to this machine, or fails by itself.
    Refused,
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
        detail: e.detail().map(str::to_owned),
        fix: e.fix(),
        kind: match e {
            LinkError::DnsUnreachable { .. } => FailureKind::ResolversUnreachable,
            ref e if e.is_the_apps() => FailureKind::Refused,
            _ => FailureKind::NotThere,
        },
    };
    let edge = match checker.reach(url, origin).await {
        Ok(()) => StepResult::Passed,
        Err(e) => failed(e),
    };
    let dns = match edge {
        // Asking now could make resolvers remember "no such name". (The
        // app's own failure means the edge reached it.)
        StepResult::Failed {
            kind: FailureKind::NotThere | FailureKind::ResolversUnreachable,
            ..
        } => StepResult::NotAsked {
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

/// The hostname of an `https://host[/…]` URL.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', ':']).next().unwrap_or(rest)
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
    /// Checks of a new `url`, the first one now, its bound counted from
    /// `since`; public DNS is asked about its host from `dns_from` on (it
    /// takes a moment to publish it).
    pub(crate) fn new(
        url: String,
        since: tokio::time::Instant,
        dns_from: tokio::time::Instant,
    ) -> Self {
        Confirmation {
            url,
            since,
            next: since,
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

    /// When the bound passes, while the URL is not handed out yet.
    pub(crate) fn answer_by(&self, bound: Duration) -> Option<tokio::time::Instant> {
        (self.stage == Stage::Pending).then_some(self.since + bound)
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
        let settled = result.as_ref().is_err_and(LinkError::is_settled);
        // Each check of an app that fails by itself may fill its log.
        let asks_app = result.as_ref().is_err_and(LinkError::is_the_apps);
        let (stage, verdict) = match (self.stage, result) {
            (Stage::Confirmed, Ok(())) => (Stage::Confirmed, Some(Verdict::Rechecked)),
            (_, Ok(())) => (Stage::Confirmed, Some(Verdict::Confirmed)),
            (Stage::Confirmed, Err(e)) => (Stage::Unconfirmed, Some(Verdict::Lost(e))),
            // A dev server's host check does not pass by waiting: said at
            // once, as when the bound has passed.
            (Stage::Pending, Err(e)) if settled || now.duration_since(self.since) >= bound => {
                (Stage::Unconfirmed, Some(Verdict::Unconfirmed(e)))
            }
            (stage, Err(_)) => (stage, None),
        };
        self.stage = stage;
        self.next = match (stage, asks_app) {
            (Stage::Confirmed, _) => now + RECHECK,
            (Stage::Pending, _) => now + RETRY_EARLY,
            // Asked rarely: each refusal may fill the app's log.
            (Stage::Unconfirmed, true) => now + RETRY_REFUSED,
            (Stage::Unconfirmed, false) => now + RETRY_LATE,
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

    /// An app whose host check refuses the human is said to at once (it
    /// does not pass by waiting, and the start need not wait out the
    /// bound), then asked once a minute, not every ten seconds.
    #[test]
    fn a_refusing_app_is_handed_out_unconfirmed_at_once_then_asked_rarely() {
        let bound = Duration::from_secs(30);
        let t0 = tokio::time::Instant::now();
        let refused = || LinkError::Refused {
            host: "h".into(),
            status: 400,
            local_status: Some(200),
            dev_server: Some(DevServer::Django),
            keep_host: true,
        };
        let mut c = Confirmation::new("https://h".into(), t0, t0);
        let first = t0 + RETRY_EARLY;
        assert_eq!(
            c.after(Err(refused()), first, bound),
            Some(Verdict::Unconfirmed(refused()))
        );
        assert_eq!(c.next_check(), first + RETRY_REFUSED);
        assert_eq!(c.after(Err(refused()), first + RETRY_REFUSED, bound), None);
        let later = first + 2 * RETRY_REFUSED;
        assert_eq!(c.after(Ok(()), later, bound), Some(Verdict::Confirmed));
        assert_eq!(c.next_check(), later + RECHECK, "the fixed app: as any");
    }

    /// A refusal drop does not know may pass (the app was still starting):
    /// it waits out the bound like any failure, but once the URL is handed
    /// out the app is asked only once a minute, not every ten seconds.
    #[test]
    fn an_unknown_refusal_waits_for_the_bound_then_is_asked_rarely() {
        let bound = Duration::from_secs(30);
        let t0 = tokio::time::Instant::now();
        let refused = || LinkError::Refused {
            host: "h".into(),
            status: 403,
            local_status: Some(200),
            dev_server: None,
            keep_host: false,
        };
        let mut c = Confirmation::new("https://h".into(), t0, t0);
        assert_eq!(c.after(Err(refused()), t0 + RETRY_EARLY, bound), None);
        assert_eq!(c.next_check(), t0 + 2 * RETRY_EARLY);
        let at_bound = t0 + bound;
        assert_eq!(
            c.after(Err(refused()), at_bound, bound),
            Some(Verdict::Unconfirmed(refused()))
        );
        assert_eq!(c.next_check(), at_bound + RETRY_REFUSED);
    }
}
