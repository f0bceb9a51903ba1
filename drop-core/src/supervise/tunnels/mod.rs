//! The daemon's tunnels: the server's and one per running app, each kept
//! alive by a drop-tunnel watchdog whose events are written where the
//! README says (`tunnel.json`, the app's record) by a follower of its own
//! ([`follow`]): a new URL is handed out once it is seen to work from
//! outside. Apps get quick tunnels of their own, or are routes of the
//! user's named tunnel ([`routes`]). New tunnels are spaced out globally, so
//! many dying at once do not trip the quick-tunnel service's rate limit
//! themselves.

mod follow;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drop_registry::{Home, Record, RegistryError, TunnelPhase, TunnelProtocol, TunnelState};
use drop_tunnel::{
    Protocol, Tunnel, TunnelError, TunnelEvent, TunnelEvents, TunnelProvider, Watchdog,
    WatchdogConfig,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::follow::{Follower, TunnelNews, log_event, whose};
use self::routes::NamedRoutes;
pub use self::routes::NamedTunnelAccess;
use super::process;
use super::records::{update_record, update_server_tunnel};
use super::verify::LinkCheck;
use crate::blocking::blocking;
use tracing::{info, warn};

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

/// Where the daemon's tunnels come from.
#[derive(Clone)]
pub enum TunnelSource {
    /// A tunnel of its own for the server and for each app (quick tunnels).
    Quick(QuickTunnels),
    /// The user's named tunnel: the server's tunnel runs it, and each app
    /// is a route of it with a hostname of its own that never changes.
    Named(NamedTunnelAccess),
}

/// Where an app's tunnel goes: the app's address, and whether the app is
/// sent the public hostname as `Host` (`keep_host`) or `localhost:PORT`,
/// which dev servers that check `Host` (Vite, webpack, Django) accept; the
/// public one goes along as `X-Forwarded-Host` either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppTarget {
    /// Where the app listens, as the tunnel reaches it.
    pub local: SocketAddr,
    /// Send the app the public hostname as `Host`.
    pub keep_host: bool,
}

/// Quick tunnels through one provider, configured twice: giving the local
/// server the public hostname as `Host` (drop's page server, whose login
/// checks it, and apps added with `--keep-host`), or `localhost:PORT`
/// (other apps).
#[derive(Clone)]
pub struct QuickTunnels {
    /// Sends the public hostname.
    pub public_host: Arc<dyn TunnelProvider>,
    /// Sends `localhost:PORT`.
    pub localhost: Arc<dyn TunnelProvider>,
}

impl TunnelSource {
    /// Quick tunnels all from `provider`, whatever `Host` they would send
    /// (for tests and embedders that do not care).
    pub fn quick(provider: Arc<dyn TunnelProvider>) -> Self {
        TunnelSource::Quick(QuickTunnels {
            public_host: provider.clone(),
            localhost: provider,
        })
    }
}

/// How apps get their tunnels: the strategy of the [`TunnelSource`].
enum AppTunnels {
    /// A watchdog and a tunnel of its own each.
    Own,
    /// A route each of the server's named tunnel.
    Routed(NamedRoutes),
}

/// The tunnels of one daemon, opened through the provider it was given.
pub struct TunnelKeeper {
    home: Home,
    /// Opens the server's tunnel (and apps' that keep their `Host`), one
    /// at a time and spaced out, as every provider here.
    provider: Arc<SpacedProvider>,
    /// Opens quick tunnels that send apps `localhost:PORT`.
    localhost_provider: Arc<SpacedProvider>,
    /// The folder of the `--config` file every tunnel process of this home
    /// carries, by which leftovers of a killed daemon are found.
    config_dir: PathBuf,
    /// The network this machine is on, under which what is learned of it
    /// (QUIC blocked) is noted.
    network: Option<String>,
    /// How new URLs are checked from outside.
    links: LinkCheck,
    /// Own tunnels for apps, or routes of the named tunnel.
    apps_via: AppTunnels,
    /// The server's tunnel, while it is kept.
    server: Mutex<Option<TunnelTasks>>,
    /// Each app's tunnel (or route), by app id.
    apps: Mutex<HashMap<String, TunnelTasks>>,
    /// Where the server's tunnel goes, once it was opened.
    server_local: std::sync::Mutex<Option<SocketAddr>>,
}

/// The tasks of one kept tunnel: its watchdog and the task that passes its
/// events on (none for a route of the named tunnel), and its follower.
struct TunnelTasks {
    watchdog: Option<Watchdog>,
    pump: Option<JoinHandle<()>>,
    follower: JoinHandle<()>,
}

impl TunnelTasks {
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

/// A provider that spaces out openings: one at a time, `OPEN_SPACING`
/// apart, across every provider sharing its `next`.
struct SpacedProvider {
    inner: Arc<dyn TunnelProvider>,
    next: Arc<Mutex<Instant>>,
}

#[async_trait::async_trait]
impl TunnelProvider for SpacedProvider {
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
    /// `--config` file in the folder `config_dir` (see [`end_leftovers`]),
    /// on `network`, their URLs checked by `links`.
    pub fn new(
        home: Home,
        source: TunnelSource,
        config_dir: PathBuf,
        network: Option<String>,
        links: LinkCheck,
    ) -> Arc<Self> {
        let (public_host, localhost, apps_via): (
            Arc<dyn TunnelProvider>,
            Arc<dyn TunnelProvider>,
            _,
        ) = match source {
            TunnelSource::Quick(quick) => (quick.public_host, quick.localhost, AppTunnels::Own),
            TunnelSource::Named(access) => (
                access.provider.clone(),
                access.provider.clone(),
                AppTunnels::Routed(NamedRoutes::new(access)),
            ),
        };
        let next = Arc::new(Mutex::new(Instant::now()));
        let spaced = |inner| {
            Arc::new(SpacedProvider {
                inner,
                next: next.clone(),
            })
        };
        Arc::new(TunnelKeeper {
            home,
            provider: spaced(public_host),
            localhost_provider: spaced(localhost),
            config_dir,
            network,
            links,
            apps_via,
            server: Mutex::new(None),
            apps: Mutex::new(HashMap::new()),
            server_local: std::sync::Mutex::new(None),
        })
    }

    /// Ends tunnel processes a previous daemon left behind (it was killed
    /// before it could close them), so no page ever has two.
    pub async fn end_leftovers(&self) {
        let (home, dir) = (self.home.clone(), self.config_dir.clone());
        for pid in blocking(move || end_leftovers(&home, &dir)).await {
            info!("ended tunnel process {pid}, left by a server that was killed");
        }
    }

    /// Opens the server's tunnel to `port`; its state goes to `tunnel.json`.
    pub async fn open_server(self: &Arc<Self>, port: u16) {
        update_server_tunnel(&self.home, |_| TunnelState::default()).await;
        let local = SocketAddr::from(([127, 0, 0, 1], port));
        *self.server_local.lock().expect("server address lock") = Some(local);
        let kept = self.keep(local, None, None);
        let old = self.server.lock().await.replace(kept);
        if let Some(old) = old {
            old.close().await;
        }
    }

    /// Opens the server's tunnel again from scratch (one that gave up
    /// too); whether there is one to open (the server is tunneled).
    pub async fn reopen_server(self: &Arc<Self>) -> bool {
        let local = *self.server_local.lock().expect("server address lock");
        let Some(local) = local else {
            return false;
        };
        self.open_server(local.port()).await;
        true
    }

    /// Opens an app's tunnel to `local` (closing one it had) and waits for
    /// its first outcome: up and confirmed, up but not confirmed within the
    /// bound, or down.
    pub async fn open_app(self: &Arc<Self>, id: &str, target: AppTarget) -> TunnelOutcome {
        self.close_app_tunnel(id).await;
        update_record(&self.home, id, "the tunnel of app", |r| {
            r.clear_tunnel();
            r.tunnel_state = Some(TunnelPhase::Starting);
        })
        .await;
        let (first, outcome) = oneshot::channel();
        let kept = match &self.apps_via {
            AppTunnels::Own => self.keep(target.local, Some((id, target)), Some(first)),
            AppTunnels::Routed(routes) => match self.route_app(routes, id, target, first).await {
                Ok(kept) => kept,
                Err(error) => return self.routing_failed(id, error).await,
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
        if let AppTunnels::Routed(routes) = &self.apps_via
            && routes.remove(id)
        {
            self.reopen_with_routes(routes).await;
        }
        let kept = self.apps.lock().await.remove(id);
        if let Some(kept) = kept {
            kept.close().await;
        }
    }

    /// Routes app `id` through the named tunnel, with a follower that
    /// checks its URL; the tunnel restarts with the new route, every URL
    /// staying.
    async fn route_app(
        self: &Arc<Self>,
        routes: &NamedRoutes,
        id: &str,
        target: AppTarget,
        first: oneshot::Sender<TunnelOutcome>,
    ) -> Result<TunnelTasks, String> {
        let (news, restart) = routes.add(&self.home, id, target).await?;
        let follower = self.follower(Some((id.to_owned(), target)), Some(first));
        let follower = tokio::spawn(follower.run(news));
        if restart {
            self.reopen_with_routes(routes).await;
        }
        Ok(TunnelTasks {
            watchdog: None,
            pump: None,
            follower,
        })
    }

    /// An app that cannot be routed through the named tunnel: recorded
    /// failed, and said so.
    async fn routing_failed(&self, id: &str, error: String) -> TunnelOutcome {
        warn!("app {id} cannot be routed through the named tunnel: {error}");
        let recorded = error.clone();
        update_record(&self.home, id, "the tunnel of app", move |r| {
            r.tunnel_state = Some(TunnelPhase::Failed);
            r.tunnel_error = Some(recorded);
        })
        .await;
        TunnelOutcome::Down {
            phase: TunnelPhase::Failed,
            error,
        }
    }

    /// Routes app `id` through the named tunnel under the hostname it was
    /// given before, ahead of its tunnel's start (see
    /// `Supervisor::preroute`); `open_app` then finds it routed.
    pub async fn preroute(&self, id: &str, target: AppTarget) {
        if let AppTunnels::Routed(routes) = &self.apps_via
            && routes.preroute(&self.home, id, target).await
        {
            self.reopen_with_routes(routes).await;
        }
    }

    /// Gives the named tunnel the routes of now; it restarts with them
    /// (the new process first, so every URL stays).
    async fn reopen_with_routes(&self, routes: &NamedRoutes) {
        if !routes.apply() {
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
        if let AppTunnels::Routed(routes) = &self.apps_via {
            routes.clear();
        }
        let server = self.server.lock().await.take();
        let apps: Vec<(String, TunnelTasks)> = self.apps.lock().await.drain().collect();
        // All at once: `drop stop` waits for the whole daemon, not one tunnel after another.
        let ids: Vec<String> = apps.iter().map(|(id, _)| id.clone()).collect();
        let closes = server
            .into_iter()
            .chain(apps.into_iter().map(|(_, kept)| kept))
            .map(TunnelTasks::close);
        futures_util::future::join_all(closes).await;
        for id in ids {
            update_record(&self.home, &id, "the tunnel of app", Record::clear_tunnel).await;
        }
        let home = self.home.clone();
        let _ = blocking(move || home.clear_tunnel_state()).await;
    }

    /// Starts a watchdog for a tunnel to `local`, the task that passes its
    /// events on, and its follower (the server's when `app` is `None`).
    fn keep(
        self: &Arc<Self>,
        local: SocketAddr,
        app: Option<(&str, AppTarget)>,
        first: Option<oneshot::Sender<TunnelOutcome>>,
    ) -> TunnelTasks {
        // The provider that sends the origin the Host it is to get.
        let provider = match app {
            Some((_, target)) if !target.keep_host => self.localhost_provider.clone(),
            _ => self.provider.clone(),
        };
        let (watchdog, events) = Watchdog::spawn(provider, local, WatchdogConfig::default());
        let (news, heard) = mpsc::unbounded_channel();
        let whose = whose(app.map(|(id, _)| id));
        let server = app.is_none();
        let pump = tokio::spawn(self.clone().pump(events, whose, news, server));
        let app = app.map(|(id, target)| (id.to_owned(), target));
        let follower = tokio::spawn(self.follower(app, first).run(heard));
        TunnelTasks {
            watchdog: Some(watchdog),
            pump: Some(pump),
            follower,
        }
    }

    /// A follower that records the tunnel of `app`, reached at its address
    /// (the server's when `None`).
    fn follower(
        &self,
        app: Option<(String, AppTarget)>,
        first: Option<oneshot::Sender<TunnelOutcome>>,
    ) -> Follower {
        Follower {
            home: self.home.clone(),
            links: self.links.clone(),
            app,
            first,
            asked_at: Some(Instant::now()),
        }
    }

    /// Logs each event of one watchdog and passes what it tells on to its
    /// follower; the server's also to every app routed through it.
    async fn pump(
        self: Arc<Self>,
        mut events: TunnelEvents,
        whose: String,
        follower: mpsc::UnboundedSender<TunnelNews>,
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
            let Some(news) = TunnelNews::of(&event) else {
                continue;
            };
            if server && let AppTunnels::Routed(routes) = &self.apps_via {
                routes.tell(&news);
            }
            let _ = follower.send(news);
        }
    }

    /// Remembers that tunnels on this network go over HTTP/2 (QUIC was
    /// found blocked), so the next daemon here starts with it.
    async fn note_http2(&self) {
        let Some(network) = self.network.clone() else {
            return;
        };
        let home = self.home.clone();
        let noted = blocking(move || home.note_network_protocol(&network, TunnelProtocol::Http2));
        if let Err(e) = noted.await {
            warn!("could not note that this network needs HTTP/2 tunnels: {e}");
        }
    }
}

/// Ends every tunnel process of this drop home that no daemon owns (found
/// by a `--config` file in the folder `config_dir`, whether or not its pid was
/// recorded), and forgets every recorded tunnel. Call it only when no daemon runs (a new
/// daemon before it opens any, or a command after the daemon died): then
/// every such process is a leftover. Returns the pids it ended, for the
/// caller to tell in its own words (a daemon's log, a command's line).
pub fn end_leftovers(home: &Home, config_dir: &Path) -> Vec<u32> {
    let strays = process::started_with_file_in("--config", config_dir);
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
