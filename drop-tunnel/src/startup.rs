//! Watching a cloudflared start, quick and named tunnels alike: its log and
//! its metrics server are polled until a connection registered, the process
//! ended, the edge refused the tunnel, QUIC showed blocked, or the deadline
//! passed.
//!
//! Registration is what counts: a quick tunnel's URL is printed seconds
//! before the edge answers for it. A named tunnel the edge refuses again
//! and again was deleted (cloudflared itself retries that forever, hoping
//! for propagation lag on a new tunnel, `supervisor/supervisor.go`). Where
//! cloudflared tries QUIC with no fallback of its own, UDP port 7844
//! failing ends the start at once.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::logfile::LogFollower;
use crate::metrics::Metrics;
use crate::parse::{self, Failure};
use crate::process::CloudflaredProcess;
use crate::{Protocol, Tunnel, TunnelError, TunnelExit, TunnelProcess};

/// How often a starting cloudflared is asked whether it is up.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Failed QUIC dials, with no connection registered, that show UDP is
/// blocked (the pre-checks table may say so first).
const QUIC_FAILURES_FOR_BLOCKED: usize = 2;
/// Refusals by the edge in a row, with no connection, that mean a named
/// tunnel is gone rather than new (cloudflared waits up to 1, 2, 4, 8 s
/// between them).
const REFUSALS_FOR_DELETED: usize = 4;

/// When a start must be over: one bound for a whole `open`, a fallback to
/// HTTP/2 included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    /// The bound, as errors name it.
    timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Self {
        Deadline {
            at: Instant::now() + timeout,
            timeout,
        }
    }

    /// Whether no time is left.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// A starting cloudflared: what it is expected to be, and what it has told
/// so far.
#[derive(Debug, Default)]
pub(crate) struct Startup {
    /// Known in advance for a named tunnel; for a quick one, read from the
    /// log or the metrics server.
    url: Option<String>,
    /// The protocol cloudflared was told to use, if any.
    asked: Option<Protocol>,
    /// Whether it tries QUIC with no fallback of its own: only then does
    /// UDP failing end the start.
    quic_alone: bool,
    /// The id of the named tunnel, whose refusal by the edge ends the start.
    named: Option<String>,
    /// Set once a connection registered, with its protocol if it said.
    registered: Option<Option<Protocol>>,
    metrics: Option<SocketAddr>,
    /// The edge's refusals so far, and the last one's words.
    refusals: usize,
    refusal: Option<String>,
    quic_failures: usize,
    udp_failed: bool,
}

/// How a start ended other than up, before the deadline.
enum Ended {
    /// The process ended.
    Exited(TunnelExit),
    /// The edge keeps refusing the named tunnel.
    Refused,
    /// QUIC alone was tried, and UDP is blocked.
    UdpBlocked,
}

impl Startup {
    /// A quick tunnel told to use `protocol` (cloudflared never falls back
    /// from QUIC by itself for those).
    pub(crate) fn quick(protocol: Protocol) -> Self {
        Startup {
            asked: Some(protocol),
            quic_alone: protocol == Protocol::Quic,
            ..Startup::default()
        }
    }

    /// The named tunnel `id`, reached at `url`, told to use `asked` if any
    /// (on cloudflared's `auto` it falls back to HTTP/2 by itself).
    pub(crate) fn named(url: String, id: &str, asked: Option<Protocol>) -> Self {
        Startup {
            url: Some(url),
            asked,
            quic_alone: asked == Some(Protocol::Quic),
            named: Some(id.to_owned()),
            ..Startup::default()
        }
    }

    /// Watches `process` until its tunnel is up or `deadline` passes; on
    /// failure the process is ended. `exit_error` says why a process that
    /// ended did, from its log.
    pub(crate) async fn until_up(
        mut self,
        mut process: CloudflaredProcess,
        deadline: Deadline,
        exit_error: impl FnOnce(TunnelExit) -> TunnelError,
    ) -> Result<Tunnel, TunnelError> {
        let ended = match tokio::time::timeout_at(deadline.at, self.poll(&mut process)).await {
            Ok(Ok(protocol)) => return Ok(self.tunnel(process, protocol)),
            Ok(Err(Ended::Exited(exit))) => return Err(exit_error(exit)),
            Ok(Err(ended)) => Some(ended),
            Err(_) => None,
        };
        process.close().await;
        let log_tail = process.log_tail().await;
        Err(self.failure(ended, deadline.timeout, log_tail))
    }

    /// Polls the log and the metrics server until a connection registered
    /// (its protocol, when it said), or the start ended otherwise.
    async fn poll(&mut self, process: &mut CloudflaredProcess) -> Result<Option<Protocol>, Ended> {
        let mut follower = LogFollower::open(process.log_path()).await.ok();
        loop {
            if let Some(follower) = follower.as_mut() {
                for line in follower.new_lines().await {
                    self.scan(&line);
                }
            }
            self.ask_metrics(process).await;
            if let Some(exit) = process.try_exit().await {
                return Err(Ended::Exited(exit));
            }
            if let (Some(_), Some(protocol)) = (&self.url, self.registered) {
                return Ok(protocol);
            }
            if self.refused() {
                return Err(Ended::Refused);
            }
            if self.udp_blocked() {
                return Err(Ended::UdpBlocked);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn scan(&mut self, line: &str) {
        if self.url.is_none() {
            self.url = parse::quick_tunnel_url(line);
        }
        if self.metrics.is_none() {
            self.metrics = parse::metrics_address(line);
        }
        if parse::is_registered(line) {
            self.registered = Some(parse::registered_protocol(line));
        }
        if let Some(refusal) = parse::edge_refusal(line) {
            self.refusals += 1;
            self.refusal = Some(refusal);
        }
        self.quic_failures += usize::from(parse::is_quic_dial_failure(line));
        self.udp_failed |= parse::prechecks_udp_failed(line);
    }

    /// Asks `/quicktunnel` (until it gives a URL) and `/ready`, once the
    /// log has said where the metrics server is.
    async fn ask_metrics(&mut self, process: &mut CloudflaredProcess) {
        if process.metrics().is_none()
            && let Some(addr) = self.metrics
        {
            process.set_metrics(Metrics::new(addr));
        }
        let Some(metrics) = process.metrics() else {
            return;
        };
        if self.url.is_none()
            && let Some(url) = metrics.url().await
        {
            process.saw_metrics();
            self.url = Some(url);
        }
        if let Some(ready) = metrics.ready().await {
            process.saw_metrics();
            if ready && self.registered.is_none() {
                self.registered = Some(None);
            }
        }
    }

    /// Whether the edge keeps refusing a named tunnel that never connected.
    fn refused(&self) -> bool {
        self.named.is_some() && self.registered.is_none() && self.refusals >= REFUSALS_FOR_DELETED
    }

    /// Whether QUIC evidently cannot reach the edge here, and nothing else
    /// will be tried.
    fn udp_blocked(&self) -> bool {
        let evidence = self.udp_failed || self.quic_failures >= QUIC_FAILURES_FOR_BLOCKED;
        self.quic_alone && self.registered.is_none() && evidence
    }

    fn tunnel(self, process: CloudflaredProcess, registered: Option<Protocol>) -> Tunnel {
        let url = self.url.expect("up means a URL");
        let tunnel = Tunnel::new(url, Some(process.pid()), Box::new(process));
        match registered.or(self.asked) {
            Some(protocol) => tunnel.with_protocol(protocol),
            None => tunnel,
        }
    }

    /// The error for a start that ended other than by an exit: `ended`, or
    /// the deadline (`None`) after `timeout`.
    fn failure(self, ended: Option<Ended>, timeout: Duration, log_tail: String) -> TunnelError {
        if let (Some(Ended::Refused), Some(id)) = (ended, &self.named) {
            return TunnelError::TunnelDeleted {
                id: id.clone(),
                detail: self.refusal.unwrap_or_default(),
                log_tail,
            };
        }
        if self.udp_blocked() {
            return TunnelError::UdpBlocked { log_tail };
        }
        match self.url {
            None => TunnelError::NoUrl { timeout, log_tail },
            Some(url) => TunnelError::NotReady {
                url,
                timeout,
                log_tail,
            },
        }
    }
}

/// The error for a process that ended while starting, from what its log
/// says; a provider may know more of its own first.
pub(crate) fn exit_error(exit: TunnelExit) -> TunnelError {
    match parse::failure(&exit.log_tail) {
        Some(Failure::RateLimited) => TunnelError::RateLimited,
        Some(Failure::NoNetwork { detail }) => TunnelError::NoNetwork { detail },
        Some(Failure::EdgeUnreachable { detail }) => TunnelError::EdgeUnreachable {
            detail,
            log_tail: exit.log_tail,
        },
        Some(Failure::Usage { detail }) => TunnelError::Usage { detail },
        None => TunnelError::ExitedEarly {
            code: exit.code,
            log_tail: exit.log_tail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6ff42ae2-765d-4adf-8112-31c55c1551ef";

    fn named(asked: Option<Protocol>) -> Startup {
        Startup::named("https://drop.example.com".into(), ID, asked)
    }

    /// Registration says up and how; a few refusals with none say a named
    /// tunnel is gone.
    #[test]
    fn a_named_tunnel_is_up_when_registered_and_gone_when_refused() {
        let mut startup = named(None);
        for _ in 0..REFUSALS_FOR_DELETED {
            assert!(!startup.refused());
            startup.scan("2026-08-20T10:00:00Z ERR Register tunnel error from server side error=\"Unauthorized: Failed to get tunnel\" connIndex=0 event=0 ip=198.41.192.107");
        }
        assert!(startup.refused());
        assert_eq!(
            startup.refusal.as_deref(),
            Some("Unauthorized: Failed to get tunnel")
        );
        startup.scan("2026-08-20T10:00:09Z INF Registered tunnel connection connIndex=0 connection=x event=0 ip=198.41.192.107 location=sjc08 protocol=http2");
        assert!(!startup.refused(), "it got through after all");
        assert_eq!(startup.registered, Some(Some(Protocol::Http2)));
    }

    /// A refusal means nothing to a quick tunnel, whose start it does not
    /// end.
    #[test]
    fn refusals_end_only_a_named_start() {
        let mut quick = Startup::quick(Protocol::Http2);
        for _ in 0..REFUSALS_FOR_DELETED {
            quick.scan("ERR Register tunnel error from server side error=\"Unauthorized: Failed to get tunnel\" connIndex=0");
        }
        assert!(!quick.refused());
    }

    /// Failed QUIC dials or the pre-checks show UDP blocked only where
    /// cloudflared tries QUIC alone: a quick tunnel over QUIC, or a named
    /// one asked for QUIC.
    #[test]
    fn udp_is_blocked_only_where_quic_alone_is_tried() {
        let dial = "ERR Failed to dial a quic connection error=\"failed to dial to edge with quic: timeout: no recent network activity\" connIndex=0";
        let mut quick = Startup::quick(Protocol::Quic);
        quick.scan(dial);
        assert!(!quick.udp_blocked(), "one failure may be a hiccup");
        quick.scan(dial);
        assert!(quick.udp_blocked());
        quick.scan("INF Registered tunnel connection connIndex=0 protocol=quic");
        assert!(!quick.udp_blocked(), "it got through after all");

        let failed_udp =
            "INF |  UDP Connectivity  region1.v2.argotunnel.com  FAIL    QUIC connection failed  |";
        let mut prechecks = Startup::quick(Protocol::Quic);
        prechecks.scan(failed_udp);
        assert!(prechecks.udp_blocked());
        let mut over_http2 = Startup::quick(Protocol::Http2);
        over_http2.scan(failed_udp);
        assert!(!over_http2.udp_blocked(), "not what stops an HTTP/2 tunnel");

        let mut auto = named(None);
        let mut pinned = named(Some(Protocol::Quic));
        for startup in [&mut auto, &mut pinned] {
            startup.scan(dial);
            startup.scan(dial);
        }
        assert!(!auto.udp_blocked(), "cloudflared falls back by itself");
        assert!(pinned.udp_blocked());
    }

    /// At the deadline: UDP blocked if it showed, else no URL or a URL
    /// with no connection; the edge's refusals name the tunnel.
    #[test]
    fn a_start_that_did_not_come_up_says_why() {
        let timeout = Duration::from_secs(30);
        let failure = |startup: Startup, ended| startup.failure(ended, timeout, "the log".into());
        assert!(matches!(
            failure(Startup::quick(Protocol::Http2), None),
            TunnelError::NoUrl { .. }
        ));
        let mut printed = Startup::quick(Protocol::Http2);
        printed.scan("INF |  https://a-b-c-d.trycloudflare.com  |");
        let TunnelError::NotReady { url, .. } = failure(printed, None) else {
            panic!("not ready");
        };
        assert_eq!(url, "https://a-b-c-d.trycloudflare.com");
        let mut blocked = Startup::quick(Protocol::Quic);
        blocked.scan(
            "INF |  UDP Connectivity  region1.v2.argotunnel.com  FAIL  QUIC connection failed  |",
        );
        assert!(matches!(
            failure(blocked, None),
            TunnelError::UdpBlocked { .. }
        ));
        let mut refused = named(None);
        refused.scan("ERR Register tunnel error from server side error=\"Unauthorized: Failed to get tunnel\" connIndex=0");
        let TunnelError::TunnelDeleted { id, detail, .. } = failure(refused, Some(Ended::Refused))
        else {
            panic!("deleted");
        };
        assert_eq!(
            (id.as_str(), detail.as_str()),
            (ID, "Unauthorized: Failed to get tunnel")
        );
    }

    /// A process that ended is classified by its last words.
    #[test]
    fn a_failing_exit_is_classified_by_its_log() {
        let exit = |log: &str| TunnelExit {
            code: Some(1),
            log_tail: log.into(),
        };
        assert!(matches!(
            exit_error(exit("status_code=\"429 Too Many Requests\"")),
            TunnelError::RateLimited
        ));
        assert!(matches!(
            exit_error(exit(
                "failed to request quick Tunnel: dial tcp: lookup x: no such host"
            )),
            TunnelError::NoNetwork { .. }
        ));
        assert!(matches!(
            exit_error(exit("Incorrect Usage. flag provided but not defined: -x")),
            TunnelError::Usage { .. }
        ));
        assert!(matches!(
            exit_error(exit("something else")),
            TunnelError::ExitedEarly { .. }
        ));
        let srv = "Could not lookup srv records on _v2-origintunneld._tcp.argotunnel.com: lookup _v2-origintunneld._tcp.argotunnel.com on 127.0.0.1:53: no such host";
        let err = exit_error(exit(srv));
        assert!(
            matches!(err, TunnelError::EdgeUnreachable { .. }),
            "{err:?}"
        );
        assert_eq!(err.log_tail(), Some(srv));
    }
}
