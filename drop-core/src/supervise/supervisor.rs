//! The daemon's side of apps: it launches them, learns of each exit at once
//! (its own children through `wait`, apps adopted from an earlier daemon by
//! polling their identity), records every change in the registry, gives
//! each running app its tunnel when apps are tunneled, and stops them on
//! request. Apps outlive the daemon: they are never killed with it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drop_registry::{Home, Record, RegistryError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::app_logs::{
    LOG_CHECK_EVERY, LOG_CHECK_SOON, app_log_path, cut_app_log, log_tail, remove_app_logs,
};
use super::apps::{AppLaunch, AppProcess, AppRunner, AppStatus, process_to_stop};
use super::legacy::LegacyApp;
use super::process::{ProcessId, StopOutcome};
use super::records::{load_pages, update_record};
use super::sockets;
use super::tunnels::{AppTarget, TunnelKeeper, TunnelOutcome};

mod error;
use crate::blocking::blocking;
pub use error::AppError;
use error::describe_code;
use tracing::{info, warn};

/// How often an adopted app (not this daemon's child) is checked.
const ADOPTED_POLL: Duration = Duration::from_millis(250);
/// How often a starting app's port is probed.
const LISTEN_POLL: Duration = Duration::from_millis(50);
/// Lines of the app's log put in a failure message.
const TAIL_LINES: usize = 15;
/// How long a stop waits for the app's end to be recorded.
const END_RECORD_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits for apps.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLimits {
    /// How long an app has to listen on its port.
    pub start_timeout: Duration,
    /// How long a stopped app has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            start_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
        }
    }
}

impl AppLimits {
    /// These limits, with what a command gave instead.
    pub fn overridden(
        &self,
        start_timeout: Option<Duration>,
        stop_grace: Option<Duration>,
    ) -> Self {
        AppLimits {
            start_timeout: start_timeout.unwrap_or(self.start_timeout),
            stop_grace: stop_grace.unwrap_or(self.stop_grace),
        }
    }
}

/// How the humans reach apps, which decides what an app must listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppReach {
    /// Each app gets a tunnel of its own, which reaches it on this machine:
    /// listening on loopback is enough.
    Tunnel,
    /// App URLs name a loopback address (`--host 127.0.0.1`): whoever
    /// opens them is on this machine.
    ThisMachine,
    /// App URLs are `http://host:PORT/` for other machines: an app that
    /// listens only on loopback cannot be reached by them.
    Direct {
        /// The host in app URLs.
        host: String,
    },
}

impl AppReach {
    /// How apps are reached when `tunneled`, or else at URLs naming `host`.
    pub fn new(tunneled: bool, host: &str) -> Self {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match (tunneled, loopback) {
            (true, _) => AppReach::Tunnel,
            (false, true) => AppReach::ThisMachine,
            (false, false) => AppReach::Direct {
                host: host.to_owned(),
            },
        }
    }
}

/// What [`Supervisor::start_app`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Launched, and it listens; with its tunnel's first outcome when apps
    /// are tunneled.
    Now(Option<TunnelOutcome>),
    /// It was running already; nothing changed.
    Already,
}

/// Every app the daemon watches, by id.
pub struct Supervisor {
    home: Home,
    limits: AppLimits,
    runner: Arc<dyn AppRunner>,
    tunnels: Arc<TunnelKeeper>,
    /// How apps are reached: through a tunnel each, or directly.
    reach: AppReach,
    running: Mutex<HashMap<String, Arc<Watched>>>,
    /// How many apps are watched, for whoever waits for one to run.
    running_count: watch::Sender<usize>,
    /// One start or stop of an app at a time: a second waits for the first.
    app_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// One running app.
struct Watched {
    id: ProcessId,
    stopping: AtomicBool,
    /// Set the moment its leader is known to have ended, before its tunnel
    /// is closed and its end recorded.
    exited: AtomicBool,
    /// `Some(exit code)` once its end is recorded (the inner `None`: code
    /// unknown).
    ended: watch::Sender<Option<Option<i32>>>,
}

impl Watched {
    /// Waits until its end is recorded (at most `END_RECORD_TIMEOUT`);
    /// its exit code when known.
    async fn recorded_end(&self) -> Option<i32> {
        let mut ended = self.ended.subscribe();
        match tokio::time::timeout(END_RECORD_TIMEOUT, ended.wait_for(Option::is_some)).await {
            Ok(Ok(code)) => code.flatten(),
            _ => None,
        }
    }
}

impl Supervisor {
    /// A supervisor of the apps of `home`, launching them through `runner`
    /// and, when they are reached through tunnels, giving each its tunnel
    /// from `tunnels`.
    pub fn new(
        home: Home,
        limits: AppLimits,
        runner: Arc<dyn AppRunner>,
        tunnels: Arc<TunnelKeeper>,
        reach: AppReach,
    ) -> Arc<Self> {
        Arc::new(Supervisor {
            home,
            limits,
            runner,
            tunnels,
            reach,
            running: Mutex::default(),
            running_count: watch::channel(0).0,
            app_locks: Mutex::default(),
        })
    }

    /// Takes over apps a previous daemon started: live ones are watched
    /// (and tunneled again when apps are tunneled), dead ones are recorded
    /// as crashed.
    pub async fn adopt(self: &Arc<Self>) {
        let Ok(pages) = load_pages(&self.home).await else {
            return;
        };
        for (id, record) in pages.iter().filter(|(_, r)| r.is_app() && r.pid.is_some()) {
            if record.pid_start_time.is_none() {
                self.adopt_legacy(id, record).await;
                continue;
            }
            let Some(process) = self.still_running(record) else {
                self.record_end(id, None, true).await;
                continue;
            };
            let watched = self.watch(id, process);
            tokio::spawn(self.clone().follow_adopted(id.to_owned(), watched.clone()));
            info!("adopted app {id} (pid {})", process.pid);
            if let (AppReach::Tunnel, Some(target)) = (&self.reach, self.tunnel_target(record)) {
                let (supervisor, id) = (self.clone(), id.to_owned());
                tokio::spawn(async move { supervisor.tunnel_for(&id, target, &watched).await });
            }
        }
    }

    /// Before the server's tunnel opens: the routes of the apps [`adopt`]
    /// will tunnel again, so that a named tunnel starts with them once,
    /// rather than again for each app adopted.
    ///
    /// [`adopt`]: Supervisor::adopt
    pub async fn preroute(&self) {
        if self.reach != AppReach::Tunnel {
            return;
        }
        let Ok(pages) = load_pages(&self.home).await else {
            return;
        };
        for (id, record) in pages.iter().filter(|(_, r)| r.is_app()) {
            if let (Some(_), Some(target)) =
                (self.still_running(record), self.tunnel_target(record))
            {
                self.tunnels.preroute(id, target).await;
            }
        }
    }

    /// The process of an app a previous daemon started, while it still
    /// runs (known by pid and start time).
    fn still_running(&self, record: &Record) -> Option<ProcessId> {
        let status = AppStatus::judged(record, |p| self.runner.is_running(p));
        match status {
            AppStatus::Running { .. } => ProcessId::recorded(record.pid, record.pid_start_time),
            _ => None,
        }
    }

    /// Where a tunnel reaches an app that listens on `port` (loopback, or
    /// IPv6 loopback for an app on `[::1]` alone).
    pub fn local_address(&self, port: u16) -> std::net::SocketAddr {
        sockets::local_target(&self.runner.listeners(port), port)
    }

    /// Where the tunnel of the app `record` goes, and the `Host` it sends.
    fn tunnel_target(&self, record: &Record) -> Option<AppTarget> {
        Some(AppTarget {
            local: self.local_address(record.port?),
            keep_host: record.keep_host,
        })
    }

    /// The limits the daemon was started with.
    pub fn limits(&self) -> &AppLimits {
        &self.limits
    }

    /// An app the Python drop recorded by pid alone: pid 0 is stopped, a
    /// live process that provably is the app is watched from now on (with
    /// its start time recorded), a gone one crashed, and any other live
    /// process under that pid is left alone and left recorded.
    async fn adopt_legacy(self: &Arc<Self>, id: &str, record: &Record) {
        match LegacyApp::judge(record) {
            LegacyApp::NeverStarted => self.record_end(id, None, false).await,
            LegacyApp::Gone => self.record_end(id, None, true).await,
            LegacyApp::Unproven { pid } => {
                warn!("app {id}: pid {pid} lives but is not provably the app; left alone");
            }
            LegacyApp::Proven(process) => {
                update_record(&self.home, id, "the state of app", move |r| {
                    r.mark_running(process.pid, process.start_time);
                })
                .await;
                let watched = self.watch(id, process);
                tokio::spawn(self.clone().follow_adopted(id.to_owned(), watched.clone()));
                info!("adopted app {id} of an earlier drop (pid {})", process.pid);
                if let (AppReach::Tunnel, Some(target)) = (&self.reach, self.tunnel_target(record))
                {
                    let (supervisor, id) = (self.clone(), id.to_owned());
                    tokio::spawn(async move { supervisor.tunnel_for(&id, target, &watched).await });
                }
            }
        }
    }

    /// Starts an app and waits until it listens on its port (and its tunnel
    /// has a first outcome), or reports why not.
    pub async fn start_app(
        self: &Arc<Self>,
        id: &str,
        env: Vec<(String, String)>,
    ) -> Result<Started, AppError> {
        let limits = self.limits.clone();
        self.start_app_with(id, env, &limits).await
    }

    /// [`Supervisor::start_app`] with the limits of the command that asked.
    pub async fn start_app_with(
        self: &Arc<Self>,
        id: &str,
        env: Vec<(String, String)>,
        limits: &AppLimits,
    ) -> Result<Started, AppError> {
        let app_lock = self.app_lock(id);
        let _held = app_lock.lock().await;
        let record = self.record(id).await?;
        match AppStatus::judged(&record, |p| self.runner.is_running(p)) {
            AppStatus::Running { .. } => return Ok(Started::Already),
            AppStatus::Unverified { pid } => return Err(self.old_process(id, pid, &record).await),
            _ => {}
        }
        let (Some(command), Some(port)) = (record.run_cmd.clone(), record.port) else {
            return Err(AppError::NotAnApp { id: id.to_owned() });
        };
        let named = record.label(id).to_owned();
        if self.runner.is_listening(port).await {
            return Err(AppError::PortInUse { app: named, port });
        }
        let log = self.log_path(id);
        let launch = AppLaunch {
            command,
            dir: record.working_dir(),
            env,
            log: log.clone(),
        };
        let app = self
            .runner
            .launch(&launch)
            .map_err(|source| AppError::Launch { source })?;
        let process = app.id();
        info!("app {id} launched as pid {}", process.pid);
        update_record(&self.home, id, "the state of app", move |r| {
            r.mark_running(process.pid, process.start_time);
        })
        .await;
        let watched = self.watch(id, process);
        tokio::spawn(
            self.clone()
                .follow_child(id.to_owned(), watched.clone(), app),
        );
        self.wait_until_listening(id, &named, port, &watched, limits)
            .await?;
        if let AppReach::Direct { host } = &self.reach {
            let listeners = self.runner.listeners(port);
            if sockets::loopback_only(&listeners) {
                warn!("app {id} listens only on loopback; stopped, its URL is for other machines");
                self.stop_watched(&watched, limits.stop_grace).await;
                return Err(AppError::LoopbackOnly {
                    app: named,
                    host: host.clone(),
                    port,
                    listeners,
                });
            }
        }
        let tunnel = match self.reach {
            AppReach::Tunnel => {
                let target = AppTarget {
                    local: self.local_address(port),
                    keep_host: record.keep_host,
                };
                Some(self.tunnel_for(id, target, &watched).await)
            }
            _ => None,
        };
        if watched.exited.load(Ordering::SeqCst) {
            // Answer once its end is recorded, so the record agrees.
            let code = watched.recorded_end().await;
            return Err(AppError::ExitedAfterListening {
                app: named,
                code,
                tail: log_tail(&log, TAIL_LINES),
                log,
            });
        }
        Ok(Started::Now(tunnel))
    }

    /// Opens an app's tunnel; if the app ended meanwhile, closes it again,
    /// so no tunnel outlives its app.
    async fn tunnel_for(
        &self,
        id: &str,
        target: AppTarget,
        watched: &Arc<Watched>,
    ) -> TunnelOutcome {
        let outcome = self.tunnels.open_app(id, target).await;
        if watched.exited.load(Ordering::SeqCst) {
            self.tunnels.close_app(id).await;
        }
        outcome
    }

    /// The lock of one app: its starts, stops and removal hold it, one at
    /// a time.
    fn app_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.app_locks.lock().expect("app locks lock");
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// Waits until app `id` (named `app` in messages) listens on `port`.
    async fn wait_until_listening(
        &self,
        id: &str,
        app: &str,
        port: u16,
        watched: &Arc<Watched>,
        limits: &AppLimits,
    ) -> Result<(), AppError> {
        let mut ended = watched.ended.subscribe();
        let deadline = Instant::now() + limits.start_timeout;
        let log = self.log_path(id);
        loop {
            if let Some(code) = *ended.borrow() {
                return Err(AppError::ExitedBeforeListening {
                    app: app.to_owned(),
                    port,
                    code,
                    tail: log_tail(&log, TAIL_LINES),
                    log,
                });
            }
            if self.runner.is_listening(port).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop_watched(watched, limits.stop_grace).await;
                return Err(AppError::NotListening {
                    app: app.to_owned(),
                    port,
                    timeout: limits.start_timeout,
                    tail: log_tail(&log, TAIL_LINES),
                    log,
                });
            }
            tokio::select! {
                _ = ended.changed() => {}
                () = tokio::time::sleep(LISTEN_POLL) => {}
            }
        }
    }

    /// Stops an app and its tunnel; `Ok(false)` when it was not running.
    pub async fn stop_app(self: &Arc<Self>, id: &str) -> Result<bool, AppError> {
        self.stop_app_with(id, self.limits.stop_grace).await
    }

    /// [`Supervisor::stop_app`] with the grace period of the command that
    /// asked.
    pub async fn stop_app_with(
        self: &Arc<Self>,
        id: &str,
        grace: Duration,
    ) -> Result<bool, AppError> {
        let app_lock = self.app_lock(id);
        let _held = app_lock.lock().await;
        self.stop_in_turn(id, grace).await
    }

    /// Stops an app and removes its record, holding its lock: a start asked
    /// meanwhile waits, then finds no app, so nothing runs unrecorded.
    /// Whether it was running.
    pub async fn remove_app(self: &Arc<Self>, id: &str, grace: Duration) -> Result<bool, AppError> {
        let app_lock = self.app_lock(id);
        let _held = app_lock.lock().await;
        let stopped = self.stop_in_turn(id, grace).await?;
        let (home, gone) = (self.home.clone(), id.to_owned());
        blocking(move || {
            home.registry().update(|pages| {
                pages.remove(&gone);
                Ok::<_, RegistryError>(())
            })?;
            remove_app_logs(&home, &gone)
        })
        .await?;
        Ok(stopped)
    }

    /// The body of a stop, with the app's turn held.
    async fn stop_in_turn(&self, id: &str, grace: Duration) -> Result<bool, AppError> {
        let watched = self.running.lock().expect("apps lock").get(id).cloned();
        if let Some(watched) = watched {
            self.stop_watched(&watched, grace).await;
            return Ok(true);
        }
        let record = self.record(id).await?;
        let outcome = match process_to_stop(&record) {
            Ok(Some(process)) => self.runner.end_group(process, grace).await,
            Ok(None) => StopOutcome::NotRunning,
            Err(pid) => return Err(self.old_process(id, pid, &record).await),
        };
        self.tunnels.close_app(id).await;
        self.record_end(id, None, false).await;
        Ok(outcome == StopOutcome::Stopped)
    }

    /// Why an app whose old process lives on cannot be started or stopped.
    async fn old_process(&self, id: &str, pid: u32, record: &Record) -> AppError {
        let port = match record.port {
            Some(port) if self.runner.is_listening(port).await => Some(port),
            _ => None,
        };
        AppError::OldProcess {
            app: record.label(id).to_owned(),
            pid,
            port,
        }
    }

    /// Marks the app as being stopped, ends its group, and waits until its
    /// end is recorded.
    async fn stop_watched(&self, watched: &Arc<Watched>, grace: Duration) {
        watched.stopping.store(true, Ordering::SeqCst);
        let mut ended = watched.ended.subscribe();
        self.runner.end_group(watched.id, grace).await;
        let _ = tokio::time::timeout(END_RECORD_TIMEOUT, ended.wait_for(Option::is_some)).await;
    }

    fn watch(&self, id: &str, process: ProcessId) -> Arc<Watched> {
        let watched = Arc::new(Watched {
            id: process,
            stopping: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            ended: watch::channel(None).0,
        });
        let mut running = self.running.lock().expect("apps lock");
        running.insert(id.to_owned(), watched.clone());
        self.running_count.send_replace(running.len());
        watched
    }

    /// The apps watched now, and their leaders' pids.
    fn running_apps(&self) -> Vec<(String, u32)> {
        let running = self.running.lock().expect("apps lock");
        running
            .iter()
            .map(|(id, w)| (id.clone(), w.id.pid))
            .collect()
    }

    /// Keeps the logs of the apps it watches bounded (see
    /// [`super::app_logs`]), for as long as the daemon runs; while no app
    /// runs it sleeps.
    pub async fn keep_logs_bounded(self: Arc<Self>) {
        let mut running = self.running_count.subscribe();
        let mut pause = LOG_CHECK_EVERY;
        loop {
            if running.wait_for(|count| *count > 0).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
            let (home, apps) = (self.home.clone(), self.running_apps());
            let cut = blocking(move || {
                apps.iter()
                    .filter(|(id, pid)| cut_app_log(&home, id, Some(*pid)))
                    .count()
            })
            .await;
            // A log that had to be cut is written fast: look again soon.
            pause = if cut > 0 {
                LOG_CHECK_SOON
            } else {
                LOG_CHECK_EVERY
            };
        }
    }

    /// Reaps this daemon's own child the moment it exits.
    async fn follow_child(
        self: Arc<Self>,
        id: String,
        watched: Arc<Watched>,
        mut app: Box<dyn AppProcess>,
    ) {
        let code = app.wait().await;
        self.ended(&id, &watched, code).await;
    }

    /// Polls an app an earlier daemon started: it is not our child.
    async fn follow_adopted(self: Arc<Self>, id: String, watched: Arc<Watched>) {
        while self.runner.is_running(watched.id) {
            tokio::time::sleep(ADOPTED_POLL).await;
        }
        self.ended(&id, &watched, None).await;
    }

    /// An app's leader ended: end what is left of its group and its tunnel,
    /// record how it ended, and wake whoever waits.
    async fn ended(&self, id: &str, watched: &Arc<Watched>, code: Option<i32>) {
        // First of all: closing its tunnel below wakes a start waiting for
        // that tunnel, which must then know the app is gone.
        watched.exited.store(true, Ordering::SeqCst);
        let asked = watched.stopping.load(Ordering::SeqCst);
        if !asked {
            // Whatever it left in its group goes too, at once.
            self.runner.end_leftovers(watched.id).await;
            info!("app {id} exited with {}", describe_code(code));
        }
        {
            // A newer start of the same app may have replaced this entry.
            let mut running = self.running.lock().expect("apps lock");
            if running.get(id).is_some_and(|w| Arc::ptr_eq(w, watched)) {
                running.remove(id);
                self.running_count.send_replace(running.len());
            }
        }
        self.tunnels.close_app(id).await;
        self.record_end(id, code, !asked).await;
        // What it wrote last may have passed the bound: one more look.
        let (home, gone) = (self.home.clone(), id.to_owned());
        blocking(move || cut_app_log(&home, &gone, None)).await;
        // `send_replace`: `send` keeps nothing when nobody is subscribed
        // right now, and later readers must still see the end.
        watched.ended.send_replace(Some(code));
    }

    async fn record_end(&self, id: &str, code: Option<i32>, crashed: bool) {
        update_record(&self.home, id, "the state of app", move |r| {
            r.mark_ended(crashed, code);
        })
        .await;
    }

    async fn record(&self, id: &str) -> Result<Record, AppError> {
        let pages = load_pages(&self.home).await?;
        let record = pages
            .get(id)
            .ok_or_else(|| AppError::NoSuchApp { id: id.to_owned() })?;
        match record.is_app() {
            true => Ok(record.clone()),
            false => Err(AppError::NotAnApp { id: id.to_owned() }),
        }
    }

    /// An app's log file.
    fn log_path(&self, id: &str) -> PathBuf {
        app_log_path(&self.home, id)
    }
}

#[cfg(test)]
mod tests;
