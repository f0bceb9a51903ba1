//! The daemon's tunnels: the server's and one per running app, each kept
//! alive by a drop-tunnel watchdog whose events are written where the
//! README says (`tunnel.json`, the app's record). A new URL is recorded as
//! `verifying` and handed out only once it is seen to work from outside
//! (public DNS, then the edge: [`super::verify`]), or past the bound with
//! the note that it is not confirmed yet. New tunnels are spaced out
//! globally, so many dying at once do not trip the quick-tunnel service's
//! rate limit themselves.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use drop_registry::{Home, Record, RegistryError, TunnelPhase, TunnelProtocol, TunnelState};
use drop_tunnel::{
    DownReason, NamedCloudflared, NamedRoute, NamedTunnels, Protocol, Tunnel, TunnelError,
    TunnelEvent, TunnelEvents, TunnelProvider, Watchdog, WatchdogConfig,
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
    /// The folder of the `--config` file every tunnel process of this home
    /// carries, by which leftovers of a killed daemon are found.
    marker: PathBuf,
    /// The network this machine is on, under which what is learned of it
    /// (QUIC blocked) is noted.
    network: Option<String>,
    /// How new URLs are checked from outside.
    links: LinkCheck,
    /// The user's named tunnel, when one is set up: the server's tunnel
    /// runs it, and apps are routes of it rather than tunnels of their own.
    named: Option<NamedWorld>,
    server: Mutex<Option<Kept>>,
    apps: Mutex<HashMap<String, Kept>>,
    /// The apps routed through the named tunnel, and where their followers
    /// hear of it.
    routes: std::sync::Mutex<BTreeMap<String, Route>>,
    /// What was last seen of the server's tunnel (for a route added later).
    server_seen: std::sync::Mutex<Option<Seen>>,
    /// Held while an app's hostname is chosen, routed and recorded.
    naming: Mutex<()>,
}

/// Where the daemon's tunnels come from.
#[derive(Clone)]
pub enum TunnelSource {
    /// A tunnel of its own for the server and for each app (quick tunnels).
    Quick(Arc<dyn TunnelProvider>),
    /// The user's named tunnel: the server's tunnel runs it, and each app
    /// is a route of it with a hostname of its own that never changes.
    Named(NamedWorld),
}

/// A named tunnel as the daemon runs it: the provider the server's tunnel
/// is opened with (whose routes give apps their hostnames), and the
/// management that routes a new app's hostname in DNS.
#[derive(Clone)]
pub struct NamedWorld {
    /// Runs the tunnel; also the keeper's provider.
    pub provider: Arc<NamedCloudflared>,
    /// Routes hostnames to it.
    pub manage: Arc<NamedTunnels>,
}

/// One app routed through the named tunnel.
struct Route {
    route: NamedRoute,
    seen: mpsc::UnboundedSender<Seen>,
}

/// One kept tunnel: its watchdog (none for a route of the named tunnel),
/// and the tasks that record its events.
struct Kept {
    watchdog: Option<Watchdog>,
    pump: Option<JoinHandle<()>>,
    follower: JoinHandle<()>,
}

impl Kept {
    /// Stops the watchdog (its tunnel is closed), then waits until every
    /// event it sent is recorded, so nothing is written after this returns.
    async fn close(self) {
        if let Some(watchdog) = self.watchdog {
            watchdog.stop().await;
        }
        if let Some(pump) = self.pump {
            let _ = pump.await;
        }
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
    /// Tunnels of `home` from `source`, whose processes carry a
    /// `--config` file in the folder `marker` (see [`end_leftovers`]), on
    /// `network`, their URLs checked by `links`.
    pub fn new(
        home: Home,
        source: TunnelSource,
        marker: PathBuf,
        network: Option<String>,
        links: LinkCheck,
    ) -> Arc<Self> {
        match source {
            TunnelSource::Quick(provider) => {
                Self::build(home, provider, marker, network, links, None)
            }
            TunnelSource::Named(named) => {
                let provider = named.provider.clone();
                Self::build(home, provider, marker, network, links, Some(named))
            }
        }
    }

    fn build(
        home: Home,
        provider: Arc<dyn TunnelProvider>,
        marker: PathBuf,
        network: Option<String>,
        links: LinkCheck,
        named: Option<NamedWorld>,
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
            named,
            server: Mutex::new(None),
            apps: Mutex::new(HashMap::new()),
            routes: std::sync::Mutex::default(),
            server_seen: std::sync::Mutex::default(),
            naming: Mutex::new(()),
        })
    }

    /// Ends tunnel processes a previous daemon left behind (it was killed
    /// before it could close them), so no page ever has two.
    pub async fn end_leftovers(&self) {
        let (home, marker) = (self.home.clone(), self.marker.clone());
        let ended = tokio::task::spawn_blocking(move || end_leftovers(&home, &marker)).await;
        for pid in ended.unwrap_or_default() {
            log!("ended tunnel process {pid}, left by a server that was killed");
        }
    }

    /// Opens the server's tunnel to `port`; its state goes to `tunnel.json`.
    pub async fn open_server(self: &Arc<Self>, port: u16) {
        self.save_server(TunnelState::default()).await;
        let kept = self.keep(SocketAddr::from(([127, 0, 0, 1], port)), None, None);
        let old = self.server.lock().await.replace(kept);
        if let Some(old) = old {
            old.close().await;
        }
    }

    /// Opens an app's tunnel to `local` (closing one it had) and waits for
    /// its first outcome: up and confirmed, up but not confirmed within the
    /// bound, or down.
    pub async fn open_app(self: &Arc<Self>, id: &str, local: SocketAddr) -> TunnelOutcome {
        self.close_app_tunnel(id).await;
        update_record(&self.home, id, "the tunnel of app", |r| {
            r.clear_tunnel();
            r.tunnel_state = Some(TunnelPhase::Starting);
        })
        .await;
        let (first, outcome) = oneshot::channel();
        let kept = match &self.named {
            None => self.keep(local, Some(id.to_owned()), Some(first)),
            Some(named) => match self.route_app(named, id, local, first).await {
                Ok(kept) => kept,
                Err(failed) => {
                    if let TunnelOutcome::Down { error, .. } = &failed {
                        log!("app {id} cannot be routed through the named tunnel: {error}");
                        let error = error.clone();
                        update_record(&self.home, id, "the tunnel of app", move |r| {
                            r.tunnel_state = Some(TunnelPhase::Failed);
                            r.tunnel_error = Some(error);
                        })
                        .await;
                    }
                    return failed;
                }
            },
        };
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
        self.close_app_tunnel(id).await;
        update_record(&self.home, id, "the tunnel of app", Record::clear_tunnel).await;
    }

    /// Closes an app's own tunnel, or takes its route off the named tunnel.
    async fn close_app_tunnel(&self, id: &str) {
        let routed = self
            .routes
            .lock()
            .expect("routes lock")
            .remove(id)
            .is_some();
        if routed {
            self.reroute().await;
        }
        let kept = self.apps.lock().await.remove(id);
        if let Some(kept) = kept {
            kept.close().await;
        }
    }

    /// Routes app `id` (listening at `local`) through the named tunnel: its
    /// hostname (kept from before, else made from its name and routed in
    /// DNS), the route added to the tunnel's ingress (the tunnel restarts
    /// with it, every URL staying), and a follower that checks its URL.
    async fn route_app(
        self: &Arc<Self>,
        named: &NamedWorld,
        id: &str,
        local: SocketAddr,
        first: oneshot::Sender<TunnelOutcome>,
    ) -> Result<Kept, TunnelOutcome> {
        let failed = |error: String| TunnelOutcome::Down {
            phase: TunnelPhase::Failed,
            error,
        };
        let hostname = self.app_hostname(named, id).await.map_err(failed)?;
        let route = NamedRoute::to_local(&hostname, local).map_err(|e| failed(e.to_string()))?;
        // Routed already (before the tunnel started): no restart for it.
        let routed = self
            .routes
            .lock()
            .expect("routes lock")
            .get(id)
            .is_some_and(|r| r.route == route);
        let (seen, heard) = mpsc::unbounded_channel();
        let keeper = self.clone();
        let app = Some(id.to_owned());
        let follower = tokio::spawn(async move { keeper.follow(heard, app, Some(first)).await });
        // Where the named tunnel is now: down at once, or the Up of its
        // restart with the new route to come.
        let now = self.server_seen.lock().expect("server seen lock").clone();
        match now {
            // Down: that is the app's state too, at once.
            Some(now) if now.up.is_none() => {
                let _ = seen.send(now.for_route(&hostname));
            }
            // Up with this route already: so is the app.
            Some(now) if routed => {
                let _ = seen.send(now.for_route(&hostname));
            }
            // Else the Up of the restart with the new route, or of the
            // first start, is to come.
            _ => {}
        }
        self.routes
            .lock()
            .expect("routes lock")
            .insert(id.to_owned(), Route { route, seen });
        if !routed {
            self.reroute().await;
        }
        Ok(Kept {
            watchdog: None,
            pump: None,
            follower,
        })
    }

    /// The hostname of app `id` on the named tunnel: the one it was given
    /// before, else a new one under the tunnel's zone, routed in DNS and
    /// recorded so it never changes.
    async fn app_hostname(&self, named: &NamedWorld, id: &str) -> Result<String, String> {
        // One at a time: each new hostname must see every one given before.
        let _one = self.naming.lock().await;
        let (home, app) = (self.home.clone(), id.to_owned());
        let (setup, name) = tokio::task::spawn_blocking(move || {
            let setup = home.load_named_tunnel()?;
            let name = home.registry().load()?.get(&app).map(|r| r.name.clone());
            Ok::<_, RegistryError>((setup, name.unwrap_or_default()))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let Some(mut setup) = setup else {
            return Err(
                "the named tunnel is no longer set up: run 'drop stop' then 'drop start'".into(),
            );
        };
        if let Some(hostname) = setup.app_hostnames.get(id) {
            return Ok(hostname.clone());
        }
        let routed: Vec<String> = self
            .routes
            .lock()
            .expect("routes lock")
            .values()
            .map(|r| r.route.hostname().to_owned())
            .collect();
        let taken: Vec<&String> = setup
            .app_hostnames
            .values()
            .chain(routed.iter())
            .chain(std::iter::once(&setup.hostname))
            .collect();
        let hostname = app_hostname(&setup.hostname, id, &name, &taken)?;
        named
            .manage
            .route_dns(named.provider.tunnel(), &hostname)
            .await
            .map_err(|e| format!("could not route {hostname} to the named tunnel: {e}"))?;
        setup.app_hostnames.insert(id.to_owned(), hostname.clone());
        let home = self.home.clone();
        tokio::task::spawn_blocking(move || home.save_named_tunnel(&setup))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        log!("app {id} routed at {hostname} on the named tunnel");
        Ok(hostname)
    }

    /// Routes app `id`, listening at `local`, through the named tunnel
    /// under the hostname it was given before, ahead of its tunnel's start
    /// (see `Supervisor::preroute`); `open_app` then finds it routed.
    pub async fn preroute(&self, id: &str, local: SocketAddr) {
        if self.named.is_none() {
            return;
        }
        let home = self.home.clone();
        let Ok(Ok(Some(setup))) =
            tokio::task::spawn_blocking(move || home.load_named_tunnel()).await
        else {
            return;
        };
        let Some(route) = setup
            .app_hostnames
            .get(id)
            .and_then(|hostname| NamedRoute::to_local(hostname, local).ok())
        else {
            return;
        };
        // Nobody follows it yet: `open_app` gives it its follower.
        let (seen, _) = mpsc::unbounded_channel();
        self.routes
            .lock()
            .expect("routes lock")
            .insert(id.to_owned(), Route { route, seen });
        self.reroute().await;
    }

    /// Gives the named tunnel the routes of the apps routed now; it
    /// restarts with them (the new process first, so every URL stays).
    async fn reroute(&self) {
        let Some(named) = &self.named else {
            return;
        };
        let routes: Vec<NamedRoute> = self
            .routes
            .lock()
            .expect("routes lock")
            .values()
            .map(|r| r.route.clone())
            .collect();
        if let Err(e) = named.provider.set_routes(routes) {
            log!("could not give the named tunnel its routes: {e}");
            return;
        }
        if let Some(server) = self.server.lock().await.as_ref()
            && let Some(watchdog) = &server.watchdog
        {
            watchdog.reopen();
        }
    }

    /// Closes every tunnel (the daemon is stopping).
    pub async fn close_all(&self) {
        self.routes.lock().expect("routes lock").clear();
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

    /// Starts a watchdog for a tunnel to `local` and the task that records
    /// its events (the server's when `app` is `None`).
    fn keep(
        self: &Arc<Self>,
        local: SocketAddr,
        app: Option<String>,
        first: Option<oneshot::Sender<TunnelOutcome>>,
    ) -> Kept {
        let (watchdog, events) =
            Watchdog::spawn(self.provider.clone(), local, WatchdogConfig::default());
        let (seen, heard) = mpsc::unbounded_channel();
        let keeper = self.clone();
        let server = app.is_none();
        let whose = app
            .as_deref()
            .map_or("server".to_owned(), |id| format!("app {id}"));
        let pump = tokio::spawn(keeper.clone().pump(events, whose, seen, server));
        let follower = tokio::spawn(async move { keeper.follow(heard, app, first).await });
        Kept {
            watchdog: Some(watchdog),
            pump: Some(pump),
            follower,
        }
    }

    /// Logs each event of one watchdog and passes what it means on to its
    /// follower; the server's also to every app routed through it.
    async fn pump(
        self: Arc<Self>,
        mut events: TunnelEvents,
        whose: String,
        follower: mpsc::UnboundedSender<Seen>,
        server: bool,
    ) {
        while let Some(event) = events.recv().await {
            log_event(&whose, &event);
            if let TunnelEvent::Up {
                protocol: Some(Protocol::Http2),
                ..
            } = &event
            {
                self.note_http2().await;
            }
            let Some(seen) = Seen::of(&event) else {
                continue;
            };
            if server {
                *self.server_seen.lock().expect("server seen lock") = Some(seen.clone());
                for route in self.routes.lock().expect("routes lock").values() {
                    let _ = route.seen.send(seen.for_route(route.route.hostname()));
                }
            }
            let _ = follower.send(seen);
        }
    }

    /// Writes every event of one watchdog where it belongs, and checks
    /// each new URL from outside before it is recorded as up; the first
    /// outcome also goes to whoever waits for it.
    async fn follow(
        self: Arc<Self>,
        mut heard: mpsc::UnboundedReceiver<Seen>,
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
                seen = heard.recv() => {
                    let Some(seen) = seen else { break };
                    if let Some(url) = &seen.up {
                        let started = Confirmation::new(url.clone(), Instant::now());
                        check = Some(self.check(&started, app.is_none()));
                        confirmation = Some(started);
                    }
                    if seen.gone {
                        (confirmation, check) = (None, None);
                    }
                    (seen.change, seen.outcome)
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
                false => Origin::App {
                    nonce: probes.issue(),
                },
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

/// What one watchdog event means for a tunnel's follower.
#[derive(Debug, Clone)]
struct Seen {
    /// What it changes in the record.
    change: Change,
    /// What it tells whoever waits for the first outcome (a failure).
    outcome: Option<TunnelOutcome>,
    /// A URL that came up, to check from outside.
    up: Option<String>,
    /// The tunnel is down: stop checking.
    gone: bool,
}

impl Seen {
    /// What `event` means; `None` for events that change nothing recorded.
    fn of(event: &TunnelEvent) -> Option<Seen> {
        let change = Change::of(event)?;
        let (outcome, up, gone) = match event {
            TunnelEvent::Up { url, .. } => (None, Some(url.clone()), false),
            TunnelEvent::Down { reason, .. } | TunnelEvent::GaveUp { reason } => {
                let phase = match &change {
                    Change::Set(state) => state.state.clone(),
                    _ => TunnelPhase::Down,
                };
                let error = reason.to_string();
                (Some(TunnelOutcome::Down { phase, error }), None, true)
            }
            _ => (None, None, false),
        };
        Some(Seen {
            change,
            outcome,
            up,
            gone,
        })
    }

    /// The same for an app routed through this (named) tunnel at
    /// `hostname`: its URL is `https://<hostname>`.
    fn for_route(&self, hostname: &str) -> Seen {
        let url = format!("https://{hostname}");
        let change = match &self.change {
            Change::Set(state) if !state.url.is_empty() => Change::Set(TunnelState {
                url: url.clone(),
                ..state.clone()
            }),
            other => other.clone(),
        };
        Seen {
            change,
            outcome: self.outcome.clone(),
            up: self.up.as_ref().map(|_| url),
            gone: self.gone,
        }
    }
}

/// An app's hostname under the named tunnel's `main` hostname, one label
/// below the same zone (Cloudflare's free certificate covers
/// `*.example.com`, not `*.drop.example.com`): `<label>-drop.example.com`
/// for `drop.example.com`, `<label>.example.com` for `example.com`. The
/// label is the app's name made DNS-safe (letters, digits, single hyphens),
/// else its id's start, cut so the DNS label stays within 63 characters;
/// with the id's start added when the first choice is `taken`.
fn app_hostname(main: &str, id: &str, name: &str, taken: &[&String]) -> Result<String, String> {
    const MAX_LABEL: usize = 63;
    let clean = |text: &str| -> String {
        let mut label = String::new();
        for c in text.chars() {
            match c.is_ascii_alphanumeric() {
                true => label.push(c.to_ascii_lowercase()),
                false if !label.ends_with('-') => label.push('-'),
                false => {}
            }
        }
        label.trim_matches('-').to_owned()
    };
    let (first, zone) = match main.split_once('.') {
        Some((first, zone)) if zone.contains('.') => (Some(first), zone),
        _ => (None, main),
    };
    let room = MAX_LABEL.saturating_sub(first.map_or(0, |f| f.len() + 1));
    if room < 8 {
        return Err(format!(
            "the first label of {main} is too long to give apps hostnames beside it (DNS labels have at most 63 characters): set the tunnel up with a shorter hostname"
        ));
    }
    let short_id = clean(&id[..id.len().min(6)]);
    let build = |label: &str| {
        let label: String = label.chars().take(room).collect();
        let label = label.trim_end_matches('-');
        match first {
            Some(first) => format!("{label}-{first}.{zone}"),
            None => format!("{label}.{zone}"),
        }
    };
    let named = match clean(name) {
        label if label.is_empty() => short_id.clone(),
        label => label,
    };
    let hostname = build(&named);
    if !taken.iter().any(|t| **t == hostname) {
        return Ok(hostname);
    }
    // Room for the id's start at the end, however long the name.
    let keep = room.saturating_sub(short_id.len() + 1);
    let named: String = named.chars().take(keep).collect();
    let hostname = build(&format!("{}-{short_id}", named.trim_end_matches('-')));
    match taken.iter().any(|t| **t == hostname) {
        true => Err(format!("no free hostname for app {id} under {main}")),
        false => Ok(hostname),
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
/// by a `--config` file in the folder `marker`, whether or not its pid was
/// recorded), and forgets every recorded tunnel. Call it only when no daemon runs (a new
/// daemon before it opens any, or a command after the daemon died): then
/// every such process is a leftover. Returns the pids it ended, for the
/// caller to tell in its own words (a daemon's log, a command's line).
pub fn end_leftovers(home: &Home, marker: &Path) -> Vec<u32> {
    let strays = process::started_with_file_in("--config", marker);
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
    strays.iter().map(|stray| stray.pid).collect()
}

#[cfg(test)]
mod tests;
