//! The daemon's side of apps: it launches them, learns of each exit at once
//! (its own children through `wait`, apps adopted from an earlier daemon by
//! polling their identity), records every change in the registry, gives
//! each running app its tunnel when apps are tunneled, and stops them on
//! request. Apps outlive the daemon: they are never killed with it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drop_core::apps::{self, AppLaunch, AppStatus, StopOutcome};
use drop_core::process;
use drop_registry::{Home, Record, RegistryError};
use tokio::sync::watch;

use crate::tunnels::{FirstOutcome, Tunnels};

/// How often an adopted app (not this daemon's child) is checked.
const ADOPTED_POLL: Duration = Duration::from_millis(250);
/// Lines of the app's log put in a failure message.
const TAIL_LINES: usize = 15;

/// Limits for apps, from the daemon's environment.
#[derive(Debug, Clone)]
pub struct AppLimits {
    /// How long an app has to listen on its port.
    pub start_timeout: Duration,
    /// How long a stopped app has between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

/// What `start_app` did.
pub enum Started {
    /// Launched, and it listens; with its tunnel's first outcome when apps
    /// are tunneled.
    Now(Option<FirstOutcome>),
    /// It was running already; nothing changed.
    Already,
}

/// Every app the daemon watches, by id.
pub struct Supervisor {
    home: Home,
    limits: AppLimits,
    running: Mutex<HashMap<String, Arc<Watched>>>,
    /// One start or stop of an app at a time: a second waits for the first.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    tunnels: Arc<Tunnels>,
    /// Whether each running app gets a tunnel of its own.
    tunneled: bool,
}

/// One running app.
struct Watched {
    pid: u32,
    start_time: u64,
    stopping: AtomicBool,
    /// `Some(exit code)` once it ended (the inner `None`: code unknown).
    ended: watch::Sender<Option<Option<i32>>>,
}

impl Supervisor {
    pub fn new(home: Home, limits: AppLimits, tunnels: Arc<Tunnels>, tunneled: bool) -> Arc<Self> {
        Arc::new(Supervisor {
            home,
            limits,
            running: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            tunnels,
            tunneled,
        })
    }

    /// Takes over apps a previous daemon started: live ones are watched
    /// (and tunneled again when apps are tunneled), dead ones are recorded
    /// as crashed.
    pub fn adopt(self: &Arc<Self>) {
        let Ok(pages) = self.home.registry().load() else {
            return;
        };
        for (id, record) in pages.iter().filter(|(_, r)| r.is_app() && r.pid.is_some()) {
            let AppStatus::Running { pid } = AppStatus::of(record) else {
                self.record_end(id, None, true);
                continue;
            };
            let watched = self.watch(id, pid, record.pid_start_time.unwrap_or_default());
            tokio::spawn(self.clone().follow_adopted(id.to_owned(), watched.clone()));
            eprintln!("drop: adopted app {id} (pid {pid})");
            if let (true, Some(port)) = (self.tunneled, record.port) {
                let (supervisor, id) = (self.clone(), id.to_owned());
                tokio::spawn(async move { supervisor.tunnel_for(&id, port, &watched).await });
            }
        }
    }

    /// Starts an app and waits until it listens on its port (and its tunnel
    /// has a first outcome), or reports why not.
    pub async fn start_app(
        self: &Arc<Self>,
        id: &str,
        env: Vec<(String, String)>,
    ) -> Result<Started, String> {
        let turn = self.turn(id);
        let _turn = turn.lock().await;
        let record = self.record(id)?;
        if matches!(AppStatus::of(&record), AppStatus::Running { .. }) {
            return Ok(Started::Already);
        }
        let (command, port) = match (&record.run_cmd, record.port) {
            (Some(command), Some(port)) => (command.clone(), port),
            _ => {
                return Err(format!(
                    "page {id} is not an app: add it with --run CMD --port N"
                ));
            }
        };
        if apps::is_listening(port).await {
            return Err(format!(
                "port {port} is already in use by another process; stop it or give the app another port"
            ));
        }
        let log = self.home.logs_dir().join(format!("app-{id}.log"));
        let launch = AppLaunch {
            command,
            dir: apps::working_dir(&record),
            env,
            log: log.clone(),
        };
        let app = apps::launch(&launch).map_err(|e| format!("could not launch the app: {e}"))?;
        eprintln!("drop: app {id} launched as pid {}", app.pid);
        self.update(id, |r| r.mark_running(app.pid, app.start_time));
        let watched = self.watch(id, app.pid, app.start_time);
        let ended = watched.ended.subscribe();
        tokio::spawn(
            self.clone()
                .follow_child(id.to_owned(), watched.clone(), app.child),
        );
        self.wait_until_listening(id, port, &watched, ended, &log)
            .await?;
        let tunnel = if self.tunneled {
            Some(self.tunnel_for(id, port, &watched).await)
        } else {
            None
        };
        if let Some(code) = *watched.ended.borrow() {
            let code = code.map_or("an unknown code".to_owned(), |c| format!("code {c}"));
            return Err(format!(
                "app {id} exited with {code} right after it started listening; last lines of `{}`:\n{}",
                log.display(),
                indent(&apps::log_tail(&log, TAIL_LINES))
            ));
        }
        Ok(Started::Now(tunnel))
    }

    /// Opens an app's tunnel; if the app ended meanwhile, closes it again,
    /// so no tunnel outlives its app.
    async fn tunnel_for(&self, id: &str, port: u16, watched: &Arc<Watched>) -> FirstOutcome {
        let outcome = self.tunnels.open_app(id, port).await;
        if watched.ended.borrow().is_some() {
            self.tunnels.close_app(id).await;
        }
        outcome
    }

    /// The turn of one app: starts and stops of it take turns.
    fn turn(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().expect("turns lock");
        turns.entry(id.to_owned()).or_default().clone()
    }

    async fn wait_until_listening(
        &self,
        id: &str,
        port: u16,
        watched: &Arc<Watched>,
        mut ended: watch::Receiver<Option<Option<i32>>>,
        log: &Path,
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.limits.start_timeout;
        loop {
            if let Some(code) = *ended.borrow() {
                let code = code.map_or("an unknown code".to_owned(), |c| format!("code {c}"));
                return Err(format!(
                    "app {id} exited with {code} before listening on port {port}; last lines of `{}`:\n{}",
                    log.display(),
                    indent(&apps::log_tail(log, TAIL_LINES))
                ));
            }
            if apps::is_listening(port).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop_watched(watched).await;
                return Err(format!(
                    "app {id} did not listen on port {port} within {} s and was stopped; last lines of `{}`:\n{}",
                    self.limits.start_timeout.as_secs_f32(),
                    log.display(),
                    indent(&apps::log_tail(log, TAIL_LINES))
                ));
            }
            tokio::select! {
                _ = ended.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Stops an app and its tunnel; `Ok(false)` when it was not running.
    pub async fn stop_app(self: &Arc<Self>, id: &str) -> Result<bool, String> {
        let turn = self.turn(id);
        let _turn = turn.lock().await;
        let watched = self.running.lock().expect("apps lock").get(id).cloned();
        if let Some(watched) = watched {
            self.stop_watched(&watched).await;
            return Ok(true);
        }
        let record = self.record(id)?;
        let outcome = match (record.pid, record.pid_start_time) {
            (Some(pid), Some(start)) => {
                let grace = self.limits.stop_grace;
                tokio::task::spawn_blocking(move || apps::stop_group(pid, start, grace))
                    .await
                    .unwrap_or(StopOutcome::NotRunning)
            }
            _ => StopOutcome::NotRunning,
        };
        self.tunnels.close_app(id).await;
        self.record_end(id, None, false);
        Ok(outcome == StopOutcome::Stopped)
    }

    /// Marks the app as being stopped, ends its group, and waits until its
    /// end is recorded.
    async fn stop_watched(&self, watched: &Arc<Watched>) {
        watched.stopping.store(true, Ordering::SeqCst);
        let mut ended = watched.ended.subscribe();
        let (pid, start, grace) = (watched.pid, watched.start_time, self.limits.stop_grace);
        let _ = tokio::task::spawn_blocking(move || apps::stop_group(pid, start, grace)).await;
        let _ =
            tokio::time::timeout(Duration::from_secs(10), ended.wait_for(Option::is_some)).await;
    }

    fn watch(&self, id: &str, pid: u32, start_time: u64) -> Arc<Watched> {
        let watched = Arc::new(Watched {
            pid,
            start_time,
            stopping: AtomicBool::new(false),
            ended: watch::channel(None).0,
        });
        self.running
            .lock()
            .expect("apps lock")
            .insert(id.to_owned(), watched.clone());
        watched
    }

    /// Reaps this daemon's own child the moment it exits.
    async fn follow_child(
        self: Arc<Self>,
        id: String,
        watched: Arc<Watched>,
        mut child: tokio::process::Child,
    ) {
        let code = child.wait().await.ok().and_then(apps::exit_code_of);
        self.ended(&id, &watched, code).await;
    }

    /// Polls an app an earlier daemon started: it is not our child.
    async fn follow_adopted(self: Arc<Self>, id: String, watched: Arc<Watched>) {
        while process::is_same_process(watched.pid, watched.start_time) {
            tokio::time::sleep(ADOPTED_POLL).await;
        }
        self.ended(&id, &watched, None).await;
    }

    /// An app's leader ended: end what is left of its group and its tunnel,
    /// record how it ended, and wake whoever waits.
    async fn ended(&self, id: &str, watched: &Arc<Watched>, code: Option<i32>) {
        let asked = watched.stopping.load(Ordering::SeqCst);
        if !asked {
            let pid = watched.pid;
            let _ = tokio::task::spawn_blocking(move || {
                if apps::group_has_live_members(pid) {
                    process::signal_group(pid, libc::SIGKILL);
                }
            })
            .await;
            let how = code.map_or("an unknown code".to_owned(), |c| format!("code {c}"));
            eprintln!("drop: app {id} exited with {how}");
        }
        {
            // A newer start of the same app may have replaced this entry.
            let mut running = self.running.lock().expect("apps lock");
            if running.get(id).is_some_and(|w| Arc::ptr_eq(w, watched)) {
                running.remove(id);
            }
        }
        self.tunnels.close_app(id).await;
        self.record_end(id, code, !asked);
        let _ = watched.ended.send(Some(code));
    }

    fn record_end(&self, id: &str, code: Option<i32>, crashed: bool) {
        self.update(id, |r| r.mark_ended(crashed, code));
    }

    fn record(&self, id: &str) -> Result<Record, String> {
        let pages = self.home.registry().load().map_err(|e| e.to_string())?;
        pages
            .get(id)
            .filter(|r| r.is_app())
            .cloned()
            .ok_or_else(|| format!("no app has the id {id}"))
    }

    /// Writes under the registry lock; the lock may be held by a `drop`
    /// command for a moment, so this leaves the async thread while it waits.
    fn update(&self, id: &str, change: impl FnOnce(&mut Record)) {
        let registry = self.home.registry();
        let result = tokio::task::block_in_place(|| {
            registry.update(|pages| {
                if let Some(record) = pages.get_mut(id) {
                    change(record);
                }
                Ok::<_, RegistryError>(())
            })
        });
        if let Err(e) = result {
            eprintln!("drop: could not record the state of app {id}: {e}");
        }
    }
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "  (the log is empty)".to_owned();
    }
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
