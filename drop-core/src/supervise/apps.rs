//! Apps drop runs: `sh -c CMD` in the app's folder, in a process group of
//! its own (so a daemon restart does not kill it, and a stop reaches every
//! process it started), output appended to a log file.
//!
//! [`AppRunner`] is the boundary to the operating system that the
//! supervisor talks to; [`SystemRunner`] is the real one, and tests swap in
//! a fake.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use drop_registry::{FileUse, Record, open_home_file};

use super::legacy::LegacyApp;
use super::process::{self, ProcessId, StopOutcome};

/// How long a probe of an app's port waits for a connection.
const LISTEN_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Everything needed to launch an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLaunch {
    /// The shell command.
    pub command: String,
    /// The folder it runs in.
    pub dir: PathBuf,
    /// Its whole environment (that of the `drop` command that asked).
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr go (appended).
    pub log: PathBuf,
}

/// The operating system's side of apps, as the supervisor needs it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)] // must precede async_trait
#[async_trait::async_trait]
pub trait AppRunner: Send + Sync {
    /// Launches the app in a new process group, tied to nothing of the
    /// caller: no pipes, no kill on drop.
    fn launch(&self, spec: &AppLaunch) -> std::io::Result<Box<dyn AppProcess>>;

    /// Whether the recorded process still runs (and is that process, not
    /// another one with its pid).
    fn is_running(&self, id: ProcessId) -> bool;

    /// Whether something listens on `port` of this machine, on any of its
    /// addresses.
    async fn is_listening(&self, port: u16) -> bool;

    /// The addresses `port` is listened on (see [`super::sockets`]).
    fn listeners(&self, port: u16) -> Vec<std::net::SocketAddr>;

    /// Ends the app's process group: SIGTERM, `grace`, then SIGKILL.
    async fn end_group(&self, id: ProcessId, grace: Duration) -> StopOutcome;

    /// Kills what is left of the process group of `leader`, whose end was
    /// just seen (reaped, or found gone by polling): the group id cannot
    /// have been reused while its members live.
    async fn end_leftovers(&self, leader: ProcessId);
}

/// A launched app that its launcher can wait for.
#[async_trait::async_trait]
pub trait AppProcess: Send {
    /// Who it is.
    fn id(&self) -> ProcessId;

    /// Waits until it exits; its exit code when known (128 + n for a death
    /// by signal n, as shells report it).
    async fn wait(&mut self) -> Option<i32>;
}

/// The real [`AppRunner`]: `sh -c`, process groups, `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

#[async_trait::async_trait]
impl AppRunner for SystemRunner {
    fn launch(&self, spec: &AppLaunch) -> std::io::Result<Box<dyn AppProcess>> {
        let log = open_home_file(&spec.log, FileUse::Append).map_err(std::io::Error::other)?;
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&spec.command)
            .current_dir(&spec.dir)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the app exited before it could be recorded"))?;
        // An app that already exited has no start time left to read; its
        // exit is reported by waiting on the child, and no identity check
        // will match.
        let id = ProcessId::of(pid).unwrap_or(ProcessId { pid, start_time: 0 });
        Ok(Box::new(ChildApp { child, id }))
    }

    fn is_running(&self, id: ProcessId) -> bool {
        id.is_alive()
    }

    async fn is_listening(&self, port: u16) -> bool {
        // The kernel's tables see a listener on any address (a LAN one
        // too); connecting is the way where they cannot be read.
        if !super::sockets::listeners(port).is_empty() {
            return true;
        }
        for host in ["127.0.0.1", "::1"] {
            let connect = tokio::net::TcpStream::connect((host, port));
            if let Ok(Ok(_)) = tokio::time::timeout(LISTEN_PROBE_TIMEOUT, connect).await {
                return true;
            }
        }
        false
    }

    fn listeners(&self, port: u16) -> Vec<std::net::SocketAddr> {
        super::sockets::listeners(port)
    }

    async fn end_group(&self, id: ProcessId, grace: Duration) -> StopOutcome {
        crate::blocking::blocking(move || id.terminate_group(grace)).await
    }

    async fn end_leftovers(&self, leader: ProcessId) {
        crate::blocking::blocking(move || process::end_leftovers(leader.pid)).await;
    }
}

/// An app this process launched: its child, reaped by `wait`.
struct ChildApp {
    child: tokio::process::Child,
    id: ProcessId,
}

#[async_trait::async_trait]
impl AppProcess for ChildApp {
    fn id(&self) -> ProcessId {
        self.id
    }

    async fn wait(&mut self) -> Option<i32> {
        self.child.wait().await.ok().and_then(exit_code_of)
    }
}

/// The exit code of a status, 128 + n for a death by signal n.
pub fn exit_code_of(status: ExitStatus) -> Option<i32> {
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// What an app is doing, as listings show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppStatus {
    /// Its recorded process is alive and is the one drop started.
    Running {
        /// The process (and group) id.
        pid: u32,
    },
    /// Not running, and it was stopped (or never started).
    Stopped,
    /// It ended without being asked to.
    Crashed {
        /// The exit code, when known (128 + n for signal n).
        exit_code: Option<i32>,
    },
    /// The Python drop recorded it as `pid`, which is alive but cannot be
    /// shown to be the app: drop neither signals nor forgets it.
    Unverified {
        /// The recorded pid.
        pid: u32,
    },
}

impl AppStatus {
    /// The status of an app record now, from `/proc`.
    pub fn of(record: &Record) -> Self {
        Self::judged(record, |id| id.is_alive())
    }

    /// The status of an app record, asking `is_running` whether its
    /// recorded process still runs. A recorded process that is gone (or
    /// whose pid now names another process) crashed unseen. A pid without a
    /// start time is the Python drop's: 0 is stopped, and a live one counts
    /// as the app only when provably it (see [`LegacyApp`]).
    pub fn judged(record: &Record, is_running: impl Fn(ProcessId) -> bool) -> Self {
        match ProcessId::recorded(record.pid, record.pid_start_time) {
            Some(id) if is_running(id) => AppStatus::Running { pid: id.pid },
            Some(_) => AppStatus::Crashed { exit_code: None },
            None if record.pid.is_some_and(|pid| pid != 0) => match LegacyApp::judge(record) {
                LegacyApp::Proven(id) => AppStatus::Running { pid: id.pid },
                LegacyApp::Unproven { pid } => AppStatus::Unverified { pid },
                LegacyApp::Gone | LegacyApp::NeverStarted => AppStatus::Crashed { exit_code: None },
            },
            None if record.crashed => AppStatus::Crashed {
                exit_code: record.exit_code,
            },
            None => AppStatus::Stopped,
        }
    }

    /// `running`, `stopped` or `crashed`, as listings and JSON say it.
    pub fn word(&self) -> &'static str {
        match self {
            AppStatus::Running { .. } => "running",
            AppStatus::Stopped => "stopped",
            AppStatus::Crashed { .. } => "crashed",
            AppStatus::Unverified { .. } => "unverified",
        }
    }
}

/// The process to end to stop the app of `record`: the one this drop
/// recorded, or one the Python drop recorded that is provably the app.
/// `Err(pid)` for a live Python-drop pid that is not provably the app,
/// which must be neither signalled nor forgotten.
pub fn process_to_stop(record: &Record) -> Result<Option<ProcessId>, u32> {
    if let Some(id) = ProcessId::recorded(record.pid, record.pid_start_time) {
        return Ok(Some(id));
    }
    match LegacyApp::judge(record) {
        LegacyApp::Proven(id) => Ok(Some(id)),
        LegacyApp::Unproven { pid } => Err(pid),
        LegacyApp::Gone | LegacyApp::NeverStarted => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_record_and_the_process() {
        let mut app = Record::app("/x".into(), true, "true".into(), 9);
        assert_eq!(AppStatus::of(&app), AppStatus::Stopped);
        let me = ProcessId::current();
        app.mark_running(me.pid, me.start_time);
        assert_eq!(AppStatus::of(&app), AppStatus::Running { pid: me.pid });
        app.pid_start_time = Some(1);
        assert_eq!(
            AppStatus::of(&app),
            AppStatus::Crashed { exit_code: None },
            "pid reused: not ours"
        );
        app.mark_ended(true, Some(3));
        assert_eq!(
            AppStatus::of(&app),
            AppStatus::Crashed { exit_code: Some(3) }
        );
        app.mark_ended(false, Some(3));
        assert_eq!(AppStatus::of(&app), AppStatus::Stopped);
    }

    /// The Python drop writes `"pid": 0` for an app it never started: that
    /// app is stopped, not crashed.
    #[test]
    fn a_python_drop_app_with_pid_0_is_stopped() {
        let app: Record = serde_json::from_str(
            r#"{"type": "app", "source": "/x", "is_dir": true, "run_cmd": "serve", "port": 9, "pid": 0}"#,
        )
        .unwrap();
        assert_eq!(AppStatus::of(&app), AppStatus::Stopped);
        assert_eq!(process_to_stop(&app), Ok(None));
    }

    #[tokio::test]
    async fn a_launched_app_runs_in_its_folder_and_group_and_is_ended_whole() {
        let dir = tempfile::tempdir().unwrap();
        let spec = AppLaunch {
            command: "pwd; trap '' TERM; sleep 1000 & sleep 1000; wait".into(),
            dir: dir.path().to_owned(),
            env: vec![("PATH".into(), std::env::var("PATH").unwrap())],
            log: dir.path().join("log"),
        };
        let runner: &'static SystemRunner = &SystemRunner;
        let mut app = runner.launch(&spec).unwrap();
        let id = app.id();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(runner.is_running(id));
        assert_eq!(super::super::process::group_members(id.pid).len(), 3);
        let stop = tokio::spawn(runner.end_group(id, Duration::from_millis(300)));
        assert_eq!(
            app.wait().await,
            Some(128 + 9),
            "SIGKILL after the grace period"
        );
        assert_eq!(stop.await.unwrap(), StopOutcome::Stopped);
        assert!(!super::super::process::has_live_members(id.pid));
        let logged = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(logged.trim(), dir.path().to_str().unwrap());
    }
}
