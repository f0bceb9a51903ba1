//! The daemon's tunnels: the server's and one per running app, each kept
//! alive by a drop-tunnel watchdog whose events are written where the
//! README says (`tunnel.json`, the app's record). A new URL is recorded as
//! `verifying` and handed out only once it is seen to work from outside
//! (public DNS, then the edge: [`super::verify`]), or past the bound with
//! the note that it is not confirmed yet. New tunnels are spaced out
//! globally, so many dying at once do not trip the quick-tunnel service's
//! rate limit themselves.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use drop_registry::{Home, Record, RegistryError, TunnelPhase, TunnelProtocol, TunnelState};
use drop_tunnel::{
    DownReason, Protocol, Tunnel, TunnelError, TunnelEvent, TunnelProvider, Watchdog,
    WatchdogConfig,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::process::{self, ProcessId};
use super::records::update_record;
use super::verify::{self, Confirmation, LinkCheck, LinkError, Origin, Verdict};
use crate::log::log;

/// Least time between two tunnel openings, across all tunnels.
const OPEN_SPACING: Duration = Duration::from_secs(1);
/// How long a start waits for a new tunnel to come up (its URL is then
/// checked from outside, for up to the verification bound on top).
pub const FIRST_OUTCOME_TIMEOUT: Duration = Duration::from_secs(45);
/// How long leftover tunnel processes get to end after SIGTERM.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);

/// How a first attempt to open a tunnel went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TunnelOutcome {
    /// Up at this URL, seen to work from outside.
    Up {
        /// The public URL.
        url: String,
    },
    /// Up at this URL, but not seen to work from outside within the bound;
    /// the daemon keeps checking.
    Unconfirmed {
        /// The public URL.
        url: String,
        /// What the last check found, in one line.
        error: String,
    },
    /// Not up. The watchdog keeps trying unless `phase` is
    /// [`TunnelPhase::Failed`] (cloudflared missing…).
    Down {
        /// Where the tunnel is now.
        phase: TunnelPhase,
        /// Why, in one line.
        error: String,
    },
}

/// The tunnels of one daemon, opened through the provider it was given.
pub struct TunnelKeeper {
    home: Home,
    provider: Arc<Paced>,
    /// An argument every tunnel process of this home carries, by which
    /// leftovers of a killed daemon are found.
    marker: PathBuf,
    /// The network this machine is on, under which what is learned of it
    /// (QUIC blocked) is noted.
    network: Option<String>,
    /// How new URLs are checked from outside.
    links: LinkCheck,
    server: Mutex<Option<Kept>>,
    apps: Mutex<HashMap<String, Kept>>,
}

/// One kept tunnel: its watchdog, and the task that records its events.
struct Kept {
    watchdog: Watchdog,
    follower: JoinHandle<()>,
}

impl Kept {
    /// Stops the watchdog (its tunnel is closed), then waits until every
    /// event it sent is recorded, so nothing is written after this returns.
    async fn close(self) {
        self.watchdog.stop().await;
        let _ = self.follower.await;
    }
}

/// A provider that spaces out openings: one at a time, `OPEN_SPACING` apart.
struct Paced {
    inner: Arc<dyn TunnelProvider>,
    next: Mutex<Instant>,
}

#[async_trait::async_trait]
impl TunnelProvider for Paced {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        {
            let mut next = self.next.lock().await;
            tokio::time::sleep_until(*next).await;
            *next = Instant::now() + OPEN_SPACING;
        }
        self.inner.open(local).await
    }
}

impl TunnelKeeper {
    /// Tunnels of `home` opened by `provider`, whose processes carry
    /// `--config <marker>` (see [`end_leftovers`]), on `network`, their
    /// URLs checked by `links`.
    pub fn new(
        home: Home,
        provider: Arc<dyn TunnelProvider>,
        marker: PathBuf,
        network: Option<String>,
        links: LinkCheck,
    ) -> Arc<Self> {
        Arc::new(TunnelKeeper {
            home,
            provider: Arc::new(Paced {
                inner: provider,
                next: Mutex::new(Instant::now()),
            }),
            marker,
            network,
            links,
            server: Mutex::new(None),
            apps: Mutex::new(HashMap::new()),
        })
    }

    /// Ends tunnel processes a previous daemon left behind (it was killed
    /// before it could close them), so no page ever has two.
    pub async fn end_leftovers(&self) {
        let (home, marker) = (self.home.clone(), self.marker.clone());
        let _ = tokio::task::spawn_blocking(move || end_leftovers(&home, &marker)).await;
    }

    /// Opens the server's tunnel to `port`; its state goes to `tunnel.json`.
    pub async fn open_server(self: &Arc<Self>, port: u16) {
        self.save_server(TunnelState::default()).await;
        let kept = self.keep(port, None, None);
        let old = self.server.lock().await.replace(kept);
        if let Some(old) = old {
            old.close().await;
        }
    }

    /// Opens an app's tunnel (closing one it had) and waits for its first
    /// outcome: up and confirmed, up but not confirmed within the bound, or
    /// down.
    pub async fn open_app(self: &Arc<Self>, id: &str, port: u16) -> TunnelOutcome {
        let old = self.apps.lock().await.remove(id);
        if let Some(old) = old {
            old.close().await;
        }
        update_record(&self.home, id, "the tunnel of app", |r| {
            r.clear_tunnel();
            r.tunnel_state = Some(TunnelPhase::Starting);
        })
        .await;
        let (first, outcome) = oneshot::channel();
        let kept = self.keep(port, Some(id.to_owned()), Some(first));
        self.apps.lock().await.insert(id.to_owned(), kept);
        let down = |error: &str| TunnelOutcome::Down {
            phase: TunnelPhase::Starting,
            error: error.to_owned(),
        };
        let wait = FIRST_OUTCOME_TIMEOUT + self.links.bound;
        match tokio::time::timeout(wait, outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => down("the tunnel was closed before it opened"),
            Err(_) => down("the tunnel gave no answer in time"),
        }
    }

    /// Closes an app's tunnel: no restart after this, and nothing of it is
    /// recorded after this returns.
    pub async fn close_app(&self, id: &str) {
        let kept = self.apps.lock().await.remove(id);
        if let Some(kept) = kept {
            kept.close().await;
        }
        update_record(&self.home, id, "the tunnel of app", Record::clear_tunnel).await;
    }

    /// Closes every tunnel (the daemon is stopping).
    pub async fn close_all(&self) {
        let server = self.server.lock().await.take();
        let apps: Vec<(String, Kept)> = self.apps.lock().await.drain().collect();
        // All at once: `drop stop` waits for the whole daemon, not one tunnel after another.
        let ids: Vec<String> = apps.iter().map(|(id, _)| id.clone()).collect();
        let closes = server
            .into_iter()
            .chain(apps.into_iter().map(|(_, kept)| kept))
            .map(Kept::close);
        futures_util::future::join_all(closes).await;
        for id in ids {
            update_record(&self.home, &id, "the tunnel of app", Record::clear_tunnel).await;
        }
        let home = self.home.clone();
        let _ = tokio::task::spawn_blocking(move || home.clear_tunnel_state()).await;
    }

    /// Starts a watchdog for a tunnel to `port` and the task that records
    /// its events (the server's when `app` is `None`).
    fn keep(
        self: &Arc<Self>,
        port: u16,
        app: Option<String>,
        first: Option<oneshot::Sender<TunnelOutcome>>,
    ) -> Kept {
        let local = SocketAddr::from(([127, 0, 0, 1], port));
        let (watchdog, events) =
            Watchdog::spawn(self.provider.clone(), local, WatchdogConfig::default());
        let keeper = self.clone();
        let follower = tokio::spawn(async move { keeper.follow(events, app, first).await });
        Kept { watchdog, follower }
    }

    /// Writes every event of one watchdog where it belongs, and checks
    /// each new URL from outside before it is recorded as up; the first
    /// outcome also goes to whoever waits for it.
    async fn follow(
        self: Arc<Self>,
        mut events: mpsc::UnboundedReceiver<TunnelEvent>,
        app: Option<String>,
        mut first: Option<oneshot::Sender<TunnelOutcome>>,
    ) {
        let whose = app
            .as_deref()
            .map_or("server".to_owned(), |id| format!("app {id}"));
        let mut confirmation: Option<Confirmation> = None;
        let mut check: Option<Check> = None;
        loop {
            let (change, outcome) = tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    log_event(&whose, &event);
                    if let TunnelEvent::Up { protocol: Some(Protocol::Http2), .. } = &event {
                        self.note_http2().await;
                    }
                    match &event {
                        TunnelEvent::Up { url, .. } => {
                            let started = Confirmation::new(url.clone(), Instant::now());
                            check = Some(self.check(&started, app.is_none()));
                            confirmation = Some(started);
                        }
                        TunnelEvent::Down { .. } | TunnelEvent::GaveUp { .. } => {
                            (confirmation, check) = (None, None);
                        }
                        _ => {}
                    }
                    let Some(change) = Change::of(&event) else { continue };
                    let outcome = outcome_of(&event, &change);
                    (change, outcome)
                }
                result = until_checked(&mut check) => {
                    let Some(checking) = confirmation.as_mut() else { continue };
                    let verdict = checking.after(result, Instant::now(), self.links.bound);
                    check = Some(self.check(checking, app.is_none()));
                    let Some(verdict) = verdict else { continue };
                    let url = checking.url().to_owned();
                    log_verdict(&whose, &url, &verdict);
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
            self.apply(&app, change).await;
            if let Some(outcome) = outcome
                && let Some(first) = first.take()
            {
                let _ = first.send(outcome);
            }
        }
    }

    /// The next check of `confirmation`'s URL, when it is due.
    fn check(&self, confirmation: &Confirmation, daemon: bool) -> Check {
        let (checker, probes) = (self.links.checker.clone(), self.links.probes.clone());
        let url = confirmation.url().to_owned();
        let due = confirmation.next_check();
        let dns_from = confirmation.since() + self.links.dns_settle;
        Box::pin(async move {
            tokio::time::sleep_until(due).await;
            let origin = match daemon {
                true => Origin::Daemon {
                    nonce: probes.issue(),
                },
                false => Origin::App,
            };
            verify::check(checker.as_ref(), &url, &origin, dns_from).await
        })
    }

    /// Records `change` for the server's tunnel or `app`'s.
    async fn apply(&self, app: &Option<String>, change: Change) {
        match app {
            None => self.change_server(change).await,
            Some(id) => {
                update_record(&self.home, id, "the tunnel of app", move |r| {
                    r.set_tunnel(change.applied_to(r.tunnel().unwrap_or_default()));
                })
                .await
            }
        }
    }

    async fn change_server(&self, change: Change) {
        let home = self.home.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let now = home.load_tunnel_state()?.unwrap_or_default();
            home.save_tunnel_state(&change.applied_to(now))
        })
        .await;
        if let Ok(Err(e)) = saved {
            log!("could not record the server's tunnel: {e}");
        }
    }

    async fn save_server(&self, state: TunnelState) {
        self.change_server(Change::Set(state)).await;
    }

    /// Remembers that tunnels on this network go over HTTP/2 (QUIC was
    /// found blocked), so the next daemon here starts with it.
    async fn note_http2(&self) {
        let Some(network) = self.network.clone() else {
            return;
        };
        let home = self.home.clone();
        let noted = tokio::task::spawn_blocking(move || {
            home.note_network_protocol(&network, TunnelProtocol::Http2)
        })
        .await;
        if let Ok(Err(e)) = noted {
            log!("could not note that this network needs HTTP/2 tunnels: {e}");
        }
    }
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

/// What one watchdog event or check changes in a tunnel's record.
#[derive(Debug, Clone)]
enum Change {
    /// The record becomes this.
    Set(TunnelState),
    /// It lost its edge connection and reconnects, keeping its URL.
    Reconnecting,
    /// `url` was checked from outside (ignored if the record moved on to
    /// another URL meanwhile).
    Checked {
        /// The URL checked.
        url: String,
        /// What the check changed.
        verdict: Verdict,
    },
}

impl Change {
    /// The change an event makes; `None` for events that change nothing
    /// recorded (a new attempt keeps the last failure on show).
    fn of(event: &TunnelEvent) -> Option<Change> {
        let set = |state| Some(Change::Set(state));
        match event {
            TunnelEvent::Up {
                url, pid, protocol, ..
            } => set(TunnelState {
                url: url.clone(),
                pid: *pid,
                start_time: pid.and_then(ProcessId::of).map(|p| p.start_time),
                // Handed out once it is seen to work from outside.
                state: TunnelPhase::Verifying,
                protocol: protocol.map(protocol_of),
                ..TunnelState::default()
            }),
            TunnelEvent::Reconnecting { .. } => Some(Change::Reconnecting),
            TunnelEvent::Down { reason, retry_in } => set(TunnelState {
                state: match reason.is_rate_limited() {
                    true => TunnelPhase::RateLimited,
                    false => TunnelPhase::Down,
                },
                error: Some(format!(
                    "{reason}; retrying in {} s",
                    retry_in.as_secs().max(1)
                )),
                ..TunnelState::default()
            }),
            TunnelEvent::GaveUp { reason } => set(TunnelState {
                state: TunnelPhase::Failed,
                error: Some(reason.to_string()),
                ..TunnelState::default()
            }),
            _ => None,
        }
    }

    fn applied_to(self, now: TunnelState) -> TunnelState {
        match self {
            Change::Set(state) => state,
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
                    error: Some(format!("not confirmed from outside yet: {e}")),
                    ..now
                },
                Verdict::Lost(e) => TunnelState {
                    state: TunnelPhase::Unconfirmed,
                    error: Some(format!("worked, but a later check failed: {e}")),
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

fn protocol_of(protocol: Protocol) -> TunnelProtocol {
    match protocol {
        Protocol::Http2 => TunnelProtocol::Http2,
        _ => TunnelProtocol::Quic,
    }
}

/// What an event tells whoever waits for a tunnel's first outcome: `None`
/// until there is one.
fn outcome_of(event: &TunnelEvent, change: &Change) -> Option<TunnelOutcome> {
    let phase = match change {
        Change::Set(state) => state.state.clone(),
        _ => return None,
    };
    match event {
        TunnelEvent::Down { reason, .. } | TunnelEvent::GaveUp { reason } => {
            Some(TunnelOutcome::Down {
                phase,
                error: reason.to_string(),
            })
        }
        _ => None,
    }
}

fn log_verdict(whose: &str, url: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Confirmed => log!("{whose} tunnel {url} works from outside"),
        Verdict::Rechecked => {}
        Verdict::Unconfirmed(e) => {
            log!("{whose} tunnel {url} handed out unconfirmed: {e}; still checking")
        }
        Verdict::Lost(e) => log!("{whose} tunnel {url} stopped working from outside: {e}"),
    }
}

fn log_event(whose: &str, event: &TunnelEvent) {
    let (line, reason) = match event {
        TunnelEvent::Opening { attempt } => (format!("tunnel opening (attempt {attempt})"), None),
        TunnelEvent::Up {
            url, pid, protocol, ..
        } => (
            format!(
                "tunnel up at {url} (pid {pid:?}, {})",
                protocol.map_or("protocol unknown".into(), |p| p.to_string())
            ),
            None,
        ),
        TunnelEvent::Reconnecting { url } => (
            format!("tunnel lost its edge connection; cloudflared reconnects, {url} stays"),
            None,
        ),
        TunnelEvent::Down { reason, retry_in } => (
            format!("tunnel down: {reason}; retrying in {retry_in:?}"),
            Some(reason),
        ),
        TunnelEvent::GaveUp { reason } => (format!("tunnel given up: {reason}"), Some(reason)),
        other => (format!("tunnel event {other:?}"), None::<&DownReason>),
    };
    log!("{whose} {line}");
    if let Some(tail) = reason
        .and_then(DownReason::log_tail)
        .filter(|t| !t.is_empty())
    {
        log!("its log ends with:\n{tail}");
    }
}

/// Ends every tunnel process of this drop home that no daemon owns (found
/// by `--config <marker>`, whether or not its pid was recorded), and
/// forgets every recorded tunnel. Call it only when no daemon runs (a new
/// daemon before it opens any, or a command after the daemon died): then
/// every such process is a leftover. Returns how many were ended.
pub fn end_leftovers(home: &Home, marker: &Path) -> usize {
    let strays = process::started_with("--config", marker);
    for stray in &strays {
        log!(
            "ending tunnel process {}, left by a server that was killed",
            stray.pid
        );
    }
    process::terminate_groups(&strays, LEFTOVER_GRACE);
    let _ = home.clear_tunnel_state();
    let _ = home.registry().update(|pages| {
        let ids: Vec<String> = pages.iter().map(|(id, _)| id.to_owned()).collect();
        for id in ids {
            if let Some(record) = pages.get_mut(&id) {
                record.clear_tunnel();
            }
        }
        Ok::<_, RegistryError>(())
    });
    strays.len()
}

#[cfg(test)]
mod tests;
