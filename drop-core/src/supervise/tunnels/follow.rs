//! One tunnel's follower: what its watchdog reports ([`TunnelNews`]) and
//! what the checks from outside find, turned into its record
//! (`tunnel.json` for the server's, the app's record for an app's) and into
//! the first outcome a start waits for. A new URL is recorded `verifying`
//! and handed out once it is seen to work from outside; a URL that was
//! handed out and comes back unchanged (cloudflared reconnected, or the
//! named tunnel restarted with new routes) stays handed out and is
//! rechecked in the background.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use drop_registry::{Home, TunnelPhase, TunnelProtocol, TunnelState};
use drop_tunnel::{DownReason, Protocol, TunnelEvent};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{AppTarget, TunnelOutcome};
use crate::supervise::process::ProcessId;
use crate::supervise::records::{update_record, update_server_tunnel};
use crate::supervise::verify::{self, Confirmation, LinkCheck, LinkError, Origin, Verdict};
use tracing::{info, warn};

/// What a follower hears of its tunnel: the watchdog's events that change
/// a record, in a form that can be copied to every app routed through the
/// server's named tunnel.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TunnelNews {
    /// Up at `url`: a new one, or the one it had after a reconnection.
    Up {
        url: String,
        pid: Option<u32>,
        protocol: Option<Protocol>,
    },
    /// Lost its edge connection; cloudflared reconnects and keeps the URL.
    Reconnecting,
    /// Down, retried after `retry_in` (`None`: given up, `phase` failed).
    Down {
        phase: TunnelPhase,
        reason: String,
        retry_in: Option<Duration>,
    },
}

impl TunnelNews {
    /// What `event` tells a follower; `None` for events that change
    /// nothing recorded (a new attempt keeps the last failure on show).
    pub(super) fn of(event: &TunnelEvent) -> Option<Self> {
        let down = |reason: &DownReason, retry_in| TunnelNews::Down {
            phase: match (reason.is_rate_limited(), retry_in) {
                (_, None) => TunnelPhase::Failed,
                (true, _) => TunnelPhase::RateLimited,
                (false, _) => TunnelPhase::Down,
            },
            reason: reason.to_string(),
            retry_in,
        };
        match event {
            TunnelEvent::Up {
                url, pid, protocol, ..
            } => Some(TunnelNews::Up {
                url: url.clone(),
                pid: *pid,
                protocol: *protocol,
            }),
            TunnelEvent::Reconnecting { .. } => Some(TunnelNews::Reconnecting),
            TunnelEvent::Down { reason, retry_in } => Some(down(reason, Some(*retry_in))),
            TunnelEvent::GaveUp { reason } => Some(down(reason, None)),
            _ => None,
        }
    }

    /// The same for an app routed through the (named) tunnel at
    /// `hostname`: its URL is `https://<hostname>`.
    pub(super) fn for_route(&self, hostname: &str) -> Self {
        match self {
            TunnelNews::Up { pid, protocol, .. } => TunnelNews::Up {
                url: format!("https://{hostname}"),
                pid: *pid,
                protocol: *protocol,
            },
            other => other.clone(),
        }
    }
}

/// What one piece of news or one check changes in a tunnel's record.
#[derive(Debug, Clone)]
enum Change {
    /// The record becomes this (a new URL, verifying; or down).
    Set(TunnelState),
    /// The URL handed out before is up again, from process `pid`: it stays
    /// handed out as it was (`up`, or `unconfirmed`).
    Resumed {
        pid: Option<u32>,
        protocol: Option<Protocol>,
        confirmed: bool,
    },
    /// Lost its edge connection; reconnects, keeping its URL.
    Reconnecting,
    /// `url` was checked from outside (ignored if the record moved on to
    /// another URL meanwhile).
    Checked { url: String, verdict: Verdict },
}

impl Change {
    fn applied_to(self, now: TunnelState) -> TunnelState {
        match self {
            Change::Set(state) => state,
            Change::Resumed {
                pid,
                protocol,
                confirmed,
            } => TunnelState {
                pid,
                start_time: started(pid),
                protocol: protocol.map(protocol_of),
                state: match confirmed {
                    true => TunnelPhase::Up,
                    false => TunnelPhase::Unconfirmed,
                },
                error: (!confirmed).then(|| {
                    "cloudflared reconnected to the edge; the URL is checked again".to_owned()
                }),
                ..now
            },
            Change::Checked { url, .. } if url != now.url => now,
            Change::Checked { verdict, .. } => match verdict {
                Verdict::Confirmed | Verdict::Rechecked => TunnelState {
                    state: TunnelPhase::Up,
                    error: None,
                    verified_at: Some(drop_registry::now_rfc3339()),
                    ..now
                },
                Verdict::Unconfirmed(e) => TunnelState {
                    state: TunnelPhase::Unconfirmed,
                    error: Some(e.to_string()),
                    ..now
                },
                Verdict::Lost(e) => TunnelState {
                    state: TunnelPhase::Unconfirmed,
                    error: Some(format!("it worked, but a later check failed: {e}")),
                    ..now
                },
            },
            // Its URL was never handed out: it stays unhanded until checked.
            Change::Reconnecting if now.state == TunnelPhase::Verifying => now,
            Change::Reconnecting => TunnelState {
                state: TunnelPhase::Reconnecting,
                error: Some(
                    "lost its connection to the edge; cloudflared is reconnecting and keeps the URL"
                        .into(),
                ),
                ..now
            },
        }
    }
}

/// The start time of tunnel process `pid`, which tells it from a later
/// process of the same pid.
fn started(pid: Option<u32>) -> Option<u64> {
    pid.and_then(ProcessId::of).map(|p| p.start_time)
}

fn protocol_of(protocol: Protocol) -> TunnelProtocol {
    match protocol {
        Protocol::Http2 => TunnelProtocol::Http2,
        _ => TunnelProtocol::Quic,
    }
}

/// Follows one tunnel until its news channel closes.
pub(super) struct Follower {
    pub(super) home: Home,
    pub(super) links: LinkCheck,
    /// The app whose tunnel this is, and where the tunnel reaches it;
    /// `None` for the server's.
    pub(super) app: Option<(String, AppTarget)>,
    /// Whoever waits for the first outcome.
    pub(super) first: Option<oneshot::Sender<TunnelOutcome>>,
    /// When the tunnel was asked for: its first URL's bound counts from
    /// then, so one bound covers the whole start, however long opening
    /// took (a fallback to HTTP/2 included). Later URLs count from their
    /// own coming up.
    pub(super) asked_at: Option<Instant>,
}

/// One check of a URL from outside, waiting for its time.
type Check = Pin<Box<dyn Future<Output = Result<(), LinkError>> + Send>>;

/// The result of the pending check; never, while there is none.
async fn until_checked(check: &mut Option<Check>) -> Result<(), LinkError> {
    match check {
        Some(check) => check.await,
        None => std::future::pending().await,
    }
}

impl Follower {
    /// Records each piece of news and each check's verdict, in order; the
    /// first outcome also goes to whoever waits for it.
    pub(super) async fn run(mut self, mut news: mpsc::UnboundedReceiver<TunnelNews>) {
        let mut confirmation: Option<Confirmation> = None;
        let mut check: Option<Check> = None;
        loop {
            let (change, outcome) = tokio::select! {
                heard = news.recv() => match heard {
                    None => break,
                    Some(heard) => self.hear(heard, &mut confirmation, &mut check),
                },
                result = until_checked(&mut check) => {
                    let Some(checking) = confirmation.as_mut() else { continue };
                    let verdict = checking.after(result, Instant::now(), self.links.bound);
                    check = Some(self.check(checking));
                    let Some(verdict) = verdict else { continue };
                    let url = checking.url().to_owned();
                    self.log_verdict(&url, &verdict);
                    let outcome = match &verdict {
                        Verdict::Confirmed | Verdict::Rechecked => {
                            Some(TunnelOutcome::Up { url: url.clone() })
                        }
                        Verdict::Unconfirmed(e) => Some(TunnelOutcome::Unconfirmed {
                            url: url.clone(),
                            error: e.to_string(),
                        }),
                        Verdict::Lost(_) => None,
                    };
                    (Change::Checked { url, verdict }, outcome)
                }
            };
            // Recorded before anyone is told, so what they read next agrees.
            self.record(change).await;
            if let Some(outcome) = outcome
                && let Some(first) = self.first.take()
            {
                let _ = first.send(outcome);
            }
        }
    }

    /// What `heard` changes, and the outcome it tells (a failure); starts,
    /// pauses, resumes or ends the checks of its URL.
    fn hear(
        &mut self,
        heard: TunnelNews,
        confirmation: &mut Option<Confirmation>,
        check: &mut Option<Check>,
    ) -> (Change, Option<TunnelOutcome>) {
        match heard {
            TunnelNews::Up { url, pid, protocol } => {
                let handed_out = confirmation
                    .as_ref()
                    .filter(|c| c.url() == url)
                    .and_then(Confirmation::handed_out);
                let change = match handed_out {
                    Some(confirmed) => Change::Resumed {
                        pid,
                        protocol,
                        confirmed,
                    },
                    None => {
                        let now = Instant::now();
                        let since = self.asked_at.take().unwrap_or(now);
                        let dns_from = now + self.links.dns_settle;
                        *confirmation = Some(Confirmation::new(url.clone(), since, dns_from));
                        Change::Set(TunnelState {
                            url,
                            pid,
                            start_time: started(pid),
                            // Handed out once it is seen to work from outside.
                            state: TunnelPhase::Verifying,
                            protocol: protocol.map(protocol_of),
                            ..TunnelState::default()
                        })
                    }
                };
                let checking = confirmation.as_mut().expect("set above or kept");
                checking.check_now(Instant::now());
                *check = Some(self.check(checking));
                (change, None)
            }
            TunnelNews::Reconnecting => {
                // Checks would only find the edge without it: paused until
                // it is back.
                *check = None;
                (Change::Reconnecting, None)
            }
            TunnelNews::Down {
                phase,
                reason,
                retry_in,
            } => {
                (*confirmation, *check) = (None, None);
                // The start was told: the next URL's bound is its own.
                self.asked_at = None;
                let error = match retry_in {
                    Some(wait) => format!("{reason}; retrying in {} s", wait.as_secs().max(1)),
                    None => reason.clone(),
                };
                let state = TunnelState {
                    state: phase.clone(),
                    error: Some(error),
                    ..TunnelState::default()
                };
                let outcome = TunnelOutcome::Down {
                    phase,
                    error: reason,
                };
                (Change::Set(state), Some(outcome))
            }
        }
    }

    /// The next check of `confirmation`'s URL, when it is due.
    fn check(&self, confirmation: &Confirmation) -> Check {
        let (checker, probes) = (self.links.checker.clone(), self.links.probes.clone());
        let url = confirmation.url().to_owned();
        let (due, dns_from) = (confirmation.next_check(), confirmation.dns_from());
        let answer_by = confirmation.answer_by(self.links.bound);
        let target = self.app.as_ref().map(|(_, target)| *target);
        Box::pin(async move {
            tokio::time::sleep_until(due).await;
            let nonce = probes.issue();
            let origin = match target {
                None => Origin::Daemon { nonce },
                Some(target) => Origin::App {
                    nonce,
                    local: target.local,
                    keep_host: target.keep_host,
                },
            };
            verify::check(checker.as_ref(), &url, &origin, dns_from, answer_by).await
        })
    }

    /// Writes `change` to the record of this tunnel.
    async fn record(&self, change: Change) {
        match &self.app {
            None => update_server_tunnel(&self.home, move |now| change.applied_to(now)).await,
            Some((id, _)) => {
                update_record(&self.home, id, "the tunnel of app", move |r| {
                    r.set_tunnel(change.applied_to(r.tunnel().unwrap_or_default()));
                })
                .await
            }
        }
    }

    fn log_verdict(&self, url: &str, verdict: &Verdict) {
        let whose = whose(self.app.as_ref().map(|(id, _)| id.as_str()));
        match verdict {
            Verdict::Confirmed => info!("{whose} tunnel {url} works from outside"),
            Verdict::Rechecked => {}
            Verdict::Unconfirmed(e) => {
                let cause = cause(e);
                warn!("{whose} tunnel {url} handed out unconfirmed: {e}{cause}; still checking")
            }
            Verdict::Lost(e) => {
                let cause = cause(e);
                warn!("{whose} tunnel {url} stopped working from outside: {e}{cause}")
            }
        }
    }
}

/// What the log adds to a failed check: the cause in the HTTP client's or
/// resolver's words, when there is more to it than the message.
fn cause(e: &LinkError) -> String {
    e.detail().map_or(String::new(), |d| format!(" [{d}]"))
}

/// How the log names a tunnel: `server`, or `app <id>`.
pub(super) fn whose(app: Option<&str>) -> String {
    app.map_or("server".to_owned(), |id| format!("app {id}"))
}

/// Logs one watchdog event, with the end of the tunnel's log when it went
/// down.
pub(super) fn log_event(whose: &str, event: &TunnelEvent) {
    let (line, reason) = match event {
        TunnelEvent::Opening { attempt } => (format!("tunnel opening (attempt {attempt})"), None),
        TunnelEvent::Up {
            url, pid, protocol, ..
        } => {
            let process = pid.map_or("no process".to_owned(), |pid| format!("pid {pid}"));
            let protocol = protocol.map_or("protocol unknown".to_owned(), |p| p.to_string());
            (format!("tunnel up at {url} ({process}, {protocol})"), None)
        }
        TunnelEvent::Reconnecting { url } => (
            format!("tunnel lost its edge connection; cloudflared reconnects, {url} stays"),
            None,
        ),
        TunnelEvent::Down { reason, retry_in } => (
            format!(
                "tunnel down: {reason}; retrying in {:.1} s",
                retry_in.as_secs_f32()
            ),
            Some(reason),
        ),
        TunnelEvent::GaveUp { reason } => (format!("tunnel given up: {reason}"), Some(reason)),
        other => (format!("tunnel event {other:?}"), None::<&DownReason>),
    };
    match reason {
        Some(_) => warn!("{whose} {line}"),
        None => info!("{whose} {line}"),
    }
    if let Some(tail) = reason
        .and_then(DownReason::log_tail)
        .filter(|t| !t.is_empty())
    {
        warn!("its log ends with:\n{tail}");
    }
}
