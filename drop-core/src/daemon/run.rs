//! The daemon: the page server, the app supervisor, the tunnel keeper and
//! the control socket of one drop home, run together until shutdown. The
//! caller hands it the outside world (the tunnel provider, the app runner,
//! a bound listener), so tests run the very same daemon in-process.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use drop_registry::{
    FileUse, Home, Record, RegistryError, ServerState, TunnelPhase, open_home_file,
};
use tokio::net::TcpListener;

use super::control::{ControlReply, ControlRequest, ControlServer};
use crate::auth::SessionKey;
use crate::blocking::blocking;
use crate::http::{ServerConfig, Site, serve};
use crate::page::Catalog;
use crate::supervise::verify::{self, LinkReport, Origin};
use crate::supervise::{
    AppLimits, AppReach, AppRunner, LinkCheck, ProcessId, Started, Supervisor, TunnelKeeper,
    TunnelSource,
};
use tracing::{info, warn};

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
    /// The folder of the `--config` file every tunnel process of this home
    /// carries (quick or named), by which leftovers of a killed daemon are
    /// found.
    pub tunnel_config_dir: PathBuf,
    /// The network this machine is on (the address it goes out from), under
    /// which what is learned of it is noted: that QUIC is blocked there.
    pub network: Option<String>,
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

/// How long a new daemon waits for the lock of one that is ending.
const LOCK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// `server.lock`, held by the daemon for its whole life: one home has at
/// most one daemon.
#[derive(Debug)]
pub struct ServerLock(std::fs::File);

impl Drop for ServerLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl ServerLock {
    /// Takes the lock of `home`, or says another daemon has it.
    pub fn take(home: &Home) -> Result<Self, DaemonError> {
        home.ensure()?;
        let file = open_home_file(&home.server_lock_path(), FileUse::Lock)?;
        // A daemon killed a moment ago may still be closing its files (its
        // threads end one by one): its lock is let go of within moments.
        let deadline = std::time::Instant::now() + LOCK_RELEASE_WAIT;
        while file.try_lock().is_err() {
            if std::time::Instant::now() >= deadline {
                return Err(DaemonError::AlreadyServing {
                    home: home.root().to_owned(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(ServerLock(file))
    }
}

/// Removes expired pages and apps (an app is stopped first) when the next
/// one expires; an expired page already answers 404 before that. Sleeps
/// while no page expires (woken when the pages change).
async fn sweep_expired(home: Home, catalog: Arc<Catalog>, supervisor: Arc<Supervisor>) {
    let mut reloads = catalog.reloads();
    loop {
        let due = catalog.next_expiry().map(|at| {
            let wait = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            tokio::time::Instant::now() + wait
        });
        tokio::select! {
            changed = reloads.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = async {
                match due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        remove_expired(&home, &supervisor).await;
        let catalog = catalog.clone();
        blocking(move || catalog.refresh()).await;
    }
}

/// Removes every page and app that has expired.
async fn remove_expired(home: &Home, supervisor: &Arc<Supervisor>) {
    let registry = home.registry();
    let now = std::time::SystemTime::now();
    let Ok(pages) = blocking(move || registry.load()).await else {
        return;
    };
    let due = move |r: &Record| r.end_reached(now);
    let expired: Vec<(String, bool)> = pages
        .iter()
        .filter(|(_, r)| due(r))
        .map(|(id, r)| (id.to_owned(), r.is_app()))
        .collect();
    for (id, app) in expired {
        info!("page {id} expired: removed");
        if app {
            let grace = supervisor.limits().stop_grace;
            if let Err(e) = supervisor.remove_app(&id, grace).await {
                warn!("could not remove expired app {id}: {e}");
            }
            continue;
        }
        let registry = home.registry();
        let removed = blocking(move || {
            registry.update(|pages| {
                // Only if it is still expired: changed meanwhile, it stays.
                if pages.get(&id).is_some_and(due) {
                    pages.remove(&id);
                }
                Ok::<_, RegistryError>(())
            })
        })
        .await;
        if let Err(e) = removed {
            warn!("could not remove an expired page: {e}");
        }
    }
}

/// The host put in URLs of this machine (pages while not tunneled, apps
/// on their ports): the one the user chose, else the address this machine
/// goes out from, else loopback. The daemon and every command build URLs
/// with it.
pub fn url_host(chosen: Option<&str>, outward: Option<&str>) -> String {
    chosen.or(outward).unwrap_or("127.0.0.1").to_owned()
}

/// One drop home's daemon.
pub struct Daemon {
    config: DaemonConfig,
    tunnels: TunnelSource,
    runner: Arc<dyn AppRunner>,
    links: LinkCheck,
}

impl Daemon {
    /// A daemon that opens tunnels from `tunnels`, checks their URLs from
    /// outside with `links` (its page server answers the probes), and runs
    /// apps with `runner`.
    pub fn new(
        config: DaemonConfig,
        tunnels: TunnelSource,
        runner: Arc<dyn AppRunner>,
        links: LinkCheck,
    ) -> Self {
        Daemon {
            config,
            tunnels,
            runner,
            links,
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
        // A registry that does not parse would leave a server serving
        // nothing: refuse, naming the file (a copy of it is kept).
        let registry = home.registry();
        blocking(move || registry.load()).await?;
        let port = listener
            .local_addr()
            .map_err(DaemonError::io("read the bound address"))?
            .port();
        let state = {
            let (config, home) = (self.config.clone(), home.clone());
            blocking(move || record_serving(&home, &config, port)).await?
        };
        info!("serving {} on port {port}", home.root().display());
        let key_path = home.session_key_path();
        let key = SessionKey::load_or_create(&key_path).map_err(DaemonError::io(format!(
            "read or create the session key `{}`",
            key_path.display()
        )))?;
        let catalog = Arc::new(Catalog::new(home.registry()));
        let tunnels = TunnelKeeper::new(
            home.clone(),
            self.tunnels.clone(),
            self.config.tunnel_config_dir.clone(),
            self.config.network.clone(),
            self.links.clone(),
        );
        tunnels.end_leftovers().await;
        let supervisor = Supervisor::new(
            home.clone(),
            self.config.apps.clone(),
            self.runner.clone(),
            tunnels.clone(),
            AppReach::new(
                state.tunnel,
                &url_host(
                    state.host.as_deref().or(self.config.host.as_deref()),
                    self.config.network.as_deref(),
                ),
            ),
        );
        if state.tunnel {
            // A named tunnel starts with the routes of the apps adopted below.
            supervisor.preroute().await;
            tunnels.open_server(port).await;
        }
        supervisor.adopt().await;
        let control = ControlServer::bind(&home.control_socket_path()).map_err(DaemonError::io(
            format!("listen on `{}`", home.control_socket_path().display()),
        ))?;
        let (stop_control, control_stopped) = tokio::sync::oneshot::channel::<()>();
        let answers_supervisor = supervisor.clone();
        let answers = Answers {
            home: home.clone(),
            catalog: catalog.clone(),
            supervisor,
            tunnels: tunnels.clone(),
            links: self.links.clone(),
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
        let sweeper = tokio::spawn(sweep_expired(
            home.clone(),
            catalog.clone(),
            answers_supervisor.clone(),
        ));
        let log_keeper = tokio::spawn(answers_supervisor.clone().keep_logs_bounded());
        let site = Arc::new(Site::with_probes(catalog, key, self.links.probes.clone()));
        serve(listener, site, self.config.server.clone(), shutdown).await;
        sweeper.abort();
        log_keeper.abort();
        let _ = stop_control.send(());
        let _ = control.await;
        tunnels.close_all().await;
        let pid = ProcessId::current().pid;
        let gone = home.clone();
        blocking(move || forget_pid(&gone, pid)).await?;
        info!("server stopped");
        drop(lock);
        Ok(())
    }
}

/// Writes who serves and where into `server.json`, keeping the tunnel
/// decision `drop start` recorded there (a daemon restarted by systemd
/// finds the same decision).
fn record_serving(
    home: &Home,
    config: &DaemonConfig,
    port: u16,
) -> Result<ServerState, DaemonError> {
    let me = ProcessId::current();
    let mut state = home
        .load_server_state()?
        .unwrap_or_else(|| ServerState::new(DEFAULT_PORT));
    state.pid = Some(me.pid);
    state.start_time = Some(me.start_time);
    state.port = port;
    state.host = config.host.clone().or(state.host);
    state.bind.clone_from(&config.bind);
    state.started_at = drop_registry::now_rfc3339();
    home.save_server_state(&state)?;
    Ok(state)
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
    pub(crate) home: Home,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) supervisor: Arc<Supervisor>,
    pub(crate) tunnels: Arc<TunnelKeeper>,
    pub(crate) links: LinkCheck,
}

impl Answers {
    /// Carries out one request.
    pub(crate) async fn answer(&self, request: ControlRequest) -> ControlReply {
        match request {
            ControlRequest::Reload => {
                let catalog = self.catalog.clone();
                blocking(move || catalog.refresh()).await;
                ControlReply::Reloaded
            }
            ControlRequest::StartApp {
                id,
                env,
                start_timeout_ms,
                stop_grace_ms,
            } => {
                let limits = self
                    .supervisor
                    .limits()
                    .overridden(millis(start_timeout_ms), millis(stop_grace_ms));
                match self.supervisor.start_app_with(&id, env, &limits).await {
                    Ok(Started::Now(tunnel)) => ControlReply::Started { tunnel },
                    Ok(Started::Already) => ControlReply::AlreadyRunning,
                    Err(e) => ControlReply::failed(e.code(), &e),
                }
            }
            ControlRequest::StopApp { id, stop_grace_ms } => {
                let grace = millis(stop_grace_ms).unwrap_or(self.supervisor.limits().stop_grace);
                match self.supervisor.stop_app_with(&id, grace).await {
                    Ok(true) => ControlReply::Stopped,
                    Ok(false) => ControlReply::NotRunning,
                    Err(e) => ControlReply::failed(e.code(), &e),
                }
            }
            ControlRequest::ReopenTunnel => ControlReply::Reopened {
                tunneled: self.tunnels.reopen_server().await,
            },
            ControlRequest::CheckLink { id } => match self.check_link(id).await {
                Ok(report) => ControlReply::LinkChecked { report },
                Err(error) => ControlReply::Failed {
                    code: "link_check_failed".into(),
                    error,
                },
            },
            ControlRequest::RemoveApp { id, stop_grace_ms } => {
                let grace = millis(stop_grace_ms).unwrap_or(self.supervisor.limits().stop_grace);
                match self.supervisor.remove_app(&id, grace).await {
                    Ok(stopped) => {
                        let catalog = self.catalog.clone();
                        blocking(move || catalog.refresh()).await;
                        ControlReply::Removed { stopped }
                    }
                    Err(e) => ControlReply::failed(e.code(), &e),
                }
            }
        }
    }
}

impl Answers {
    /// Checks the server's tunnel URL (`id` is `None`) or an app's from
    /// outside, now: what `drop doctor` shows.
    async fn check_link(&self, id: Option<String>) -> Result<LinkReport, String> {
        let home = self.home.clone();
        let recorded = blocking(move || -> Result<_, RegistryError> {
            let (tunnel, app) = match &id {
                None => (home.load_tunnel_state()?, None),
                Some(id) => {
                    let record = home.registry().load()?.get(id).cloned();
                    let app = record.as_ref().and_then(|r| Some((r.port?, r.keep_host)));
                    (record.as_ref().and_then(Record::tunnel), app)
                }
            };
            Ok(tunnel
                .filter(|t| !t.url.is_empty())
                .map(|t| (t.url, t.state, app)))
        })
        .await
        .map_err(|e| e.to_string())?;
        let Some((url, phase, app)) = recorded else {
            return Err("no tunnel URL is recorded to check".into());
        };
        // A new URL is the keeper's to check while it settles.
        let ask_dns = phase != TunnelPhase::Verifying;
        let nonce = self.links.probes.issue();
        let origin = match app {
            None => Origin::Daemon { nonce },
            Some((port, keep_host)) => Origin::App {
                nonce,
                local: self.supervisor.local_address(port),
                keep_host,
            },
        };
        Ok(verify::diagnose(self.links.checker.as_ref(), &url, &origin, ask_dns).await)
    }
}

fn millis(ms: Option<u64>) -> Option<std::time::Duration> {
    ms.map(std::time::Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use drop_tunnel::MockTunnelProvider;

    use super::*;
    use crate::supervise::fakes::Outside;
    use crate::supervise::fakes::{APP, AppEnd, PORT, TestHome, fake_pid, verify};
    use crate::supervise::verify::{LinkError, StepResult};
    use crate::supervise::{MockAppRunner, StopOutcome, app_log_path};

    fn app_process() -> ProcessId {
        ProcessId {
            pid: fake_pid(1),
            start_time: 77,
        }
    }

    /// The daemon's answers for `t`'s home, its apps run by `runner`, no
    /// tunnels.
    fn answers(t: &TestHome, runner: &Arc<MockAppRunner>) -> Answers {
        answers_seen_by(t, runner, &Outside::new())
    }

    /// [`answers`] whose link checks see `outside`.
    fn answers_seen_by(t: &TestHome, runner: &Arc<MockAppRunner>, outside: &Outside) -> Answers {
        let mut provider = MockTunnelProvider::new();
        provider.expect_open().never();
        let tunnels = t.keeper(provider);
        Answers {
            home: t.home.clone(),
            links: outside.links(),
            catalog: Arc::new(Catalog::new(t.home.registry())),
            supervisor: Supervisor::new(
                t.home.clone(),
                AppLimits::default(),
                runner.clone(),
                tunnels.clone(),
                AppReach::ThisMachine,
            ),
            tunnels,
        }
    }

    fn start(id: &str) -> ControlRequest {
        ControlRequest::StartApp {
            id: id.into(),
            env: vec![("PATH".into(), "/usr/bin".into())],
            start_timeout_ms: None,
            stop_grace_ms: None,
        }
    }

    fn stop(id: &str) -> ControlRequest {
        ControlRequest::StopApp {
            id: id.into(),
            stop_grace_ms: None,
        }
    }

    fn failed(reply: ControlReply) -> String {
        match reply {
            ControlReply::Failed { error, .. } => error,
            other => panic!("not a failure: {other:?}"),
        }
    }

    /// A reload re-reads `pages.json`: the catalog, which otherwise keeps
    /// what it loaded, then sees changed and added pages.
    #[tokio::test]
    async fn reload_makes_the_catalog_see_the_registry_as_it_is_now() {
        let t = TestHome::new();
        t.add_page("page1", "old");
        let runner = Arc::new(MockAppRunner::new());
        let answers = answers(&t, &runner);
        t.change("page1", |r| r.name = "new".into());
        t.add_page("page2", "two");
        assert_eq!(answers.catalog.page("page1").unwrap().name, "old");

        assert_eq!(
            answers.answer(ControlRequest::Reload).await,
            ControlReply::Reloaded
        );

        assert_eq!(answers.catalog.page("page1").unwrap().name, "new");
        assert_eq!(answers.catalog.page("page2").unwrap().name, "two");
    }

    /// An app process that runs from its launch (once) until it is
    /// stopped (once, with the default grace), as the runner sees it; the
    /// flag says whether it runs now.
    fn app_until_stopped() -> (MockAppRunner, Arc<AtomicBool>) {
        let end = AppEnd::new();
        let alive = Arc::new(AtomicBool::new(false));
        let mut runner = MockAppRunner::new();
        let (launched, ended) = (alive.clone(), end.clone());
        runner.expect_launch().times(1).returning(move |_| {
            launched.store(true, Ordering::SeqCst);
            Ok(ended.process(app_process()))
        });
        let listening = alive.clone();
        runner
            .expect_is_listening()
            .returning(move |_| listening.load(Ordering::SeqCst));
        let running = alive.clone();
        runner
            .expect_is_running()
            .withf(|id| *id == app_process())
            .returning(move |_| running.load(Ordering::SeqCst));
        let stopped = alive.clone();
        runner
            .expect_end_group()
            .withf(|id, grace| *id == app_process() && *grace == AppLimits::default().stop_grace)
            .times(1)
            .returning(move |_, _| {
                stopped.store(false, Ordering::SeqCst);
                end.exit(Some(143));
                StopOutcome::Stopped
            });
        (runner, alive)
    }

    /// Starts and stops are answered with what happened: started, already
    /// running, stopped, not running.
    #[tokio::test(start_paused = true)]
    async fn start_and_stop_are_answered_with_what_happened() {
        let t = TestHome::new();
        t.add_app(APP, PORT);
        let (runner, _) = app_until_stopped();
        let runner = Arc::new(runner);
        let answers = answers(&t, &runner);

        assert_eq!(
            answers.answer(start(APP)).await,
            ControlReply::Started { tunnel: None }
        );
        assert_eq!(
            answers.answer(start(APP)).await,
            ControlReply::AlreadyRunning
        );
        assert_eq!(answers.answer(stop(APP)).await, ControlReply::Stopped);
        assert_eq!(answers.answer(stop(APP)).await, ControlReply::NotRunning);

        assert_eq!(t.record(APP).pid, None);
        drop(answers);
        verify(runner);
    }

    /// Removing a running app stops it and removes its record holding its lock:
    /// a start asked at the same moment waits, then finds no app, so
    /// nothing runs that no record knows.
    #[tokio::test(start_paused = true)]
    async fn removing_a_running_app_leaves_nothing_a_racing_start_could_orphan() {
        let t = TestHome::new();
        t.add_app(APP, PORT);
        let (runner, alive) = app_until_stopped();
        let runner = Arc::new(runner);
        let answers = answers(&t, &runner);
        assert_eq!(
            answers.answer(start(APP)).await,
            ControlReply::Started { tunnel: None }
        );

        let remove = ControlRequest::RemoveApp {
            id: APP.into(),
            stop_grace_ms: None,
        };
        let (removed, restarted) = tokio::join!(answers.answer(remove), answers.answer(start(APP)));

        assert_eq!(removed, ControlReply::Removed { stopped: true });
        assert_eq!(failed(restarted), format!("no app has the id {APP}"));
        assert!(t.home.registry().load().unwrap().get(APP).is_none());
        assert!(!alive.load(Ordering::SeqCst), "nothing left running");
        drop(answers);
        verify(runner);
    }

    /// Requests that cannot be carried out are answered with the error's
    /// whole message, causes included.
    #[tokio::test(start_paused = true)]
    async fn failures_are_answered_with_their_message() {
        let t = TestHome::new();
        t.add_page("page1", "a page");
        t.add_app(APP, PORT);
        t.add_app("app2", PORT + 1);
        let mut runner = MockAppRunner::new();
        runner.expect_is_listening().returning(|port| port == PORT);
        runner
            .expect_launch()
            .times(1)
            .returning(|_| Err(std::io::Error::other("sh: not found")));
        let runner = Arc::new(runner);
        let answers = answers(&t, &runner);

        assert_eq!(
            failed(answers.answer(start("nope")).await),
            "no app has the id nope"
        );
        assert_eq!(
            failed(answers.answer(stop("nope")).await),
            "no app has the id nope"
        );
        assert_eq!(
            failed(answers.answer(start("page1")).await),
            "page page1 is not an app: add it with --run CMD --port N"
        );
        assert_eq!(
            failed(answers.answer(start(APP)).await),
            format!(
                "app {APP} cannot start: port 4321 is already in use by another process; stop it or give the app another port"
            )
        );
        assert_eq!(
            failed(answers.answer(start("app2")).await),
            "could not launch the app: sh: not found"
        );
        assert_eq!(t.record("app2").pid, None);
        drop(answers);
        verify(runner);
    }

    /// A start that fails after launching says why, with the app's log.
    #[tokio::test(start_paused = true)]
    async fn an_app_that_exits_at_once_is_answered_with_its_log() {
        let t = TestHome::new();
        t.add_app(APP, PORT);
        let end = AppEnd::new();
        let mut runner = MockAppRunner::new();
        let (home, ended) = (t.home.clone(), end.clone());
        runner.expect_launch().times(1).returning(move |spec| {
            assert_eq!(spec.log, app_log_path(&home, APP));
            std::fs::write(&spec.log, "Error: address family not supported\n").unwrap();
            ended.exit(Some(1));
            Ok(ended.process(app_process()))
        });
        runner.expect_is_listening().return_const(false);
        runner.expect_end_leftovers().times(1).return_const(());
        let runner = Arc::new(runner);
        let answers = answers(&t, &runner);

        let error = failed(answers.answer(start(APP)).await);

        let log = t.home.logs_dir().join("app-app1.log");
        assert_eq!(
            error,
            format!(
                "app app1 exited with code 1 before listening on port 4321; last lines of `{}`:\n  Error: address family not supported",
                log.display()
            )
        );
        assert!(t.record(APP).crashed);
        drop(answers);
        verify(runner);
    }

    /// `DROP_APP_START_TIMEOUT_MS` and `DROP_STOP_GRACE_MS` given to the
    /// command that asks (carried in its request) hold for that request,
    /// whatever the daemon was started with.
    #[tokio::test(start_paused = true)]
    async fn a_start_takes_the_limits_of_the_command_that_asked() {
        let t = TestHome::new();
        t.add_app(APP, PORT);
        let end = AppEnd::new();
        let mut runner = MockAppRunner::new();
        let ended = end.clone();
        runner
            .expect_launch()
            .times(1)
            .returning(move |_| Ok(ended.process(app_process())));
        runner.expect_is_listening().return_const(false);
        runner.expect_is_running().return_const(true);
        let ended = end.clone();
        runner
            .expect_end_group()
            .withf(|_, grace| *grace == std::time::Duration::from_millis(700))
            .times(1)
            .returning(move |_, _| {
                ended.exit(Some(143));
                StopOutcome::Stopped
            });
        let runner = Arc::new(runner);
        let answers = answers(&t, &runner);
        let started = tokio::time::Instant::now();

        let error = failed(
            answers
                .answer(ControlRequest::StartApp {
                    id: APP.into(),
                    env: Vec::new(),
                    start_timeout_ms: Some(1500),
                    stop_grace_ms: Some(700),
                })
                .await,
        );

        assert!(
            error.contains("did not listen on port 4321 within 1.5 s"),
            "{error}"
        );
        assert!(started.elapsed() < AppLimits::default().start_timeout);
        drop(answers);
        verify(runner);
    }

    /// `drop doctor`'s question: the server's tunnel URL checked now, step
    /// by step, with a nonce the page server accepts; public DNS is not
    /// asked while the edge does not reach the daemon.
    #[tokio::test]
    async fn a_link_check_reports_each_step() {
        let t = TestHome::new();
        let runner = Arc::new(MockAppRunner::new());
        let outside = Outside::new();
        let answers = answers_seen_by(&t, &runner, &outside);
        let reply = answers.answer(ControlRequest::CheckLink { id: None }).await;
        assert_eq!(
            reply,
            ControlReply::Failed {
                code: "link_check_failed".into(),
                error: "no tunnel URL is recorded to check".into()
            }
        );
        let url = "https://tunnel-1.trycloudflare.com".to_owned();
        t.home
            .save_tunnel_state(&drop_registry::TunnelState {
                url: url.clone(),
                ..Default::default()
            })
            .unwrap();

        outside.fail_with(Some(LinkError::NotPublished {
            host: "tunnel-1.trycloudflare.com".into(),
        }));
        let ControlReply::LinkChecked { report } =
            answers.answer(ControlRequest::CheckLink { id: None }).await
        else {
            panic!("no report");
        };
        assert_eq!(report.url, url);
        assert_eq!(report.edge, StepResult::Passed);
        assert_eq!(
            report.dns,
            StepResult::Failed {
                error: "tunnel-1.trycloudflare.com does not resolve at public DNS yet".into(),
                detail: None,
                fix: None,
                kind: verify::FailureKind::NotThere,
            }
        );
        let (_, origin, _) = outside.checks().pop().unwrap();
        let Origin::Daemon { nonce } = origin else {
            panic!("the server's link is probed at the daemon");
        };
        assert!(outside.probes().accepts(&nonce));

        outside.fail_with(Some(LinkError::EdgeNotConnected {
            host: "tunnel-1.trycloudflare.com".into(),
            status: 530,
        }));
        let questions = outside.dns_questions().len();
        let ControlReply::LinkChecked { report } =
            answers.answer(ControlRequest::CheckLink { id: None }).await
        else {
            panic!("no report");
        };
        assert!(matches!(report.edge, StepResult::Failed { .. }));
        assert!(matches!(report.dns, StepResult::NotAsked { .. }));
        assert_eq!(outside.dns_questions().len(), questions, "DNS not asked");

        // A URL the keeper still verifies is its to ask DNS about.
        outside.fail_with(None);
        t.home
            .save_tunnel_state(&drop_registry::TunnelState {
                url: url.clone(),
                state: TunnelPhase::Verifying,
                ..Default::default()
            })
            .unwrap();
        let ControlReply::LinkChecked { report } =
            answers.answer(ControlRequest::CheckLink { id: None }).await
        else {
            panic!("no report");
        };
        assert_eq!(report.edge, StepResult::Passed);
        assert!(matches!(report.dns, StepResult::NotAsked { .. }));
        assert_eq!(outside.dns_questions().len(), questions, "DNS not asked");
    }
}
