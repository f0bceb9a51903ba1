//! The daemon: the page server, the app supervisor, the tunnel keeper and
//! the control socket of one drop home, run together until shutdown. The
//! caller hands it the outside world (the tunnel provider, the app runner,
//! a bound listener), so tests run the very same daemon in-process.

use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use drop_registry::{Home, RegistryError, ServerState};
use drop_tunnel::TunnelProvider;
use tokio::net::TcpListener;

use super::control::{ControlReply, ControlRequest, ControlServer};
use crate::auth::SessionKey;
use crate::http::{ServerConfig, Site, serve};
use crate::page::Catalog;
use crate::supervise::{AppLimits, AppRunner, ProcessId, Started, Supervisor, TunnelKeeper};

/// The port recorded when none was ever chosen.
pub const DEFAULT_PORT: u16 = 8080;

/// Everything the daemon is told, built once by its caller.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The drop home it serves.
    pub home: Home,
    /// The host put in URLs, when the user chose one (recorded in
    /// `server.json` for the commands that print URLs).
    pub host: Option<String>,
    /// The address the listener was bound to, as the user gave it.
    pub bind: String,
    /// Limits of the page server.
    pub server: ServerConfig,
    /// Limits of apps.
    pub apps: AppLimits,
    /// An argument every tunnel process of this home carries (cloudflared's
    /// `--config` file), by which leftovers of a killed daemon are found.
    pub tunnel_marker: PathBuf,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon holds this home.
    #[error("another drop server is already running for `{}`", home.display())]
    AlreadyServing {
        /// The drop home.
        home: PathBuf,
    },
    /// A state file could not be read or written.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Anything else the operating system refused.
    #[error("could not {action}")]
    Io {
        /// What was being done.
        action: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl DaemonError {
    fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
        let action = action.into();
        move |source| DaemonError::Io { action, source }
    }
}

/// `server.lock`, held by the daemon for its whole life: one home has at
/// most one daemon.
#[derive(Debug)]
pub struct ServerLock(std::fs::File);

impl Drop for ServerLock {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.0);
    }
}

impl ServerLock {
    /// Takes the lock of `home`, or says another daemon has it.
    pub fn take(home: &Home) -> Result<Self, DaemonError> {
        home.ensure()?;
        let path = home.server_lock_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(DaemonError::io(format!("create `{}`", path.display())))?;
        // fs2's trait named in full: std's own `File::try_lock` would shadow it.
        if fs2::FileExt::try_lock_exclusive(&file).is_err() {
            return Err(DaemonError::AlreadyServing {
                home: home.root().to_owned(),
            });
        }
        Ok(ServerLock(file))
    }
}

/// One drop home's daemon.
pub struct Daemon {
    config: DaemonConfig,
    provider: Arc<dyn TunnelProvider>,
    runner: Arc<dyn AppRunner>,
}

impl Daemon {
    /// A daemon that opens tunnels with `provider` and runs apps with `runner`.
    pub fn new(
        config: DaemonConfig,
        provider: Arc<dyn TunnelProvider>,
        runner: Arc<dyn AppRunner>,
    ) -> Self {
        Daemon {
            config,
            provider,
            runner,
        }
    }

    /// Records itself in `server.json`, then serves pages on `listener`,
    /// supervises apps, keeps tunnels and answers the control socket until
    /// `shutdown` completes; then closes every tunnel (apps keep running)
    /// and forgets its pid. `lock` is held throughout.
    pub async fn run(
        self,
        lock: ServerLock,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        let home = self.config.home.clone();
        let port = listener
            .local_addr()
            .map_err(DaemonError::io("read the bound address"))?
            .port();
        let state = self.record_serving(port)?;
        eprintln!("drop: serving {} on port {port}", home.root().display());
        let key_path = home.session_key_path();
        let key = SessionKey::load_or_create(&key_path).map_err(DaemonError::io(format!(
            "read or create the session key `{}`",
            key_path.display()
        )))?;
        let catalog = Arc::new(Catalog::new(home.registry()));
        let tunnels = TunnelKeeper::new(
            home.clone(),
            self.provider.clone(),
            self.config.tunnel_marker.clone(),
        );
        tunnels.end_leftovers().await;
        if state.tunnel {
            tunnels.open_server(port).await;
        }
        let supervisor = Supervisor::new(
            home.clone(),
            self.config.apps.clone(),
            self.runner.clone(),
            tunnels.clone(),
            state.tunnel,
        );
        supervisor.adopt().await;
        let control = ControlServer::bind(&home.control_socket_path()).map_err(DaemonError::io(
            format!("listen on `{}`", home.control_socket_path().display()),
        ))?;
        let (stop_control, control_stopped) = tokio::sync::oneshot::channel::<()>();
        let answers = Answers {
            catalog: catalog.clone(),
            supervisor,
        };
        let control = tokio::spawn(control.run(
            move |request| {
                let answers = answers.clone();
                async move { answers.answer(request).await }
            },
            async {
                let _ = control_stopped.await;
            },
        ));
        let site = Arc::new(Site::new(catalog, key));
        serve(listener, site, self.config.server.clone(), shutdown).await;
        let _ = stop_control.send(());
        let _ = control.await;
        tunnels.close_all().await;
        forget_pid(&home, ProcessId::current().pid)?;
        eprintln!("drop: server stopped");
        drop(lock);
        Ok(())
    }

    /// Writes who serves and where into `server.json`, keeping the tunnel
    /// decision `drop start` recorded there (a daemon restarted by systemd
    /// finds the same decision).
    fn record_serving(&self, port: u16) -> Result<ServerState, DaemonError> {
        let home = &self.config.home;
        let me = ProcessId::current();
        let mut state = home
            .load_server_state()?
            .unwrap_or_else(|| ServerState::new(DEFAULT_PORT));
        state.pid = Some(me.pid);
        state.start_time = Some(me.start_time);
        state.port = port;
        state.host = self.config.host.clone().or(state.host);
        state.bind.clone_from(&self.config.bind);
        state.started_at = drop_registry::now_rfc3339();
        home.save_server_state(&state)?;
        Ok(state)
    }
}

/// Forgets the server's pid in `server.json` if it is still `pid`, keeping
/// its address for URLs.
pub fn forget_pid(home: &Home, pid: u32) -> Result<(), RegistryError> {
    if let Some(mut state) = home.load_server_state()?
        && state.pid == Some(pid)
    {
        state.pid = None;
        state.start_time = None;
        home.save_server_state(&state)?;
    }
    Ok(())
}

/// What the daemon answers on its control socket.
#[derive(Clone)]
pub(crate) struct Answers {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) supervisor: Arc<Supervisor>,
}

impl Answers {
    /// Carries out one request.
    pub(crate) async fn answer(&self, request: ControlRequest) -> ControlReply {
        match request {
            ControlRequest::Reload => {
                let catalog = self.catalog.clone();
                let _ = tokio::task::spawn_blocking(move || catalog.refresh()).await;
                ControlReply::Reloaded
            }
            ControlRequest::StartApp { id, env } => {
                match self.supervisor.start_app(&id, env).await {
                    Ok(Started::Now(tunnel)) => ControlReply::Started { tunnel },
                    Ok(Started::Already) => ControlReply::AlreadyRunning,
                    Err(e) => ControlReply::failed(&e),
                }
            }
            ControlRequest::StopApp { id } => match self.supervisor.stop_app(&id).await {
                Ok(true) => ControlReply::Stopped,
                Ok(false) => ControlReply::NotRunning,
                Err(e) => ControlReply::failed(&e),
            },
        }
    }
}
