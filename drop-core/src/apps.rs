//! Apps drop runs: `sh -c CMD` in the app's folder, in a process group of
//! its own (so a daemon restart does not kill it, and a stop reaches every
//! process it started), output appended to a log file.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use drop_registry::Record;

use crate::process;

/// Everything needed to launch an app.
#[derive(Debug, Clone)]
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

/// A launched app: the child, and who it is beyond its pid.
#[derive(Debug)]
pub struct LaunchedApp {
    /// The `sh` process, leader of the app's process group.
    pub child: tokio::process::Child,
    /// Its pid, which is also the process group id.
    pub pid: u32,
    /// Its start time, for identity checks.
    pub start_time: u64,
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
}

impl AppStatus {
    /// The status of an app record now. A recorded process that is gone
    /// (or whose pid now names another process) crashed unseen.
    pub fn of(record: &Record) -> Self {
        match (record.pid, record.pid_start_time) {
            (Some(pid), Some(start)) if process::is_same_process(pid, start) => {
                AppStatus::Running { pid }
            }
            (Some(_), _) => AppStatus::Crashed { exit_code: None },
            _ if record.crashed => AppStatus::Crashed {
                exit_code: record.exit_code,
            },
            _ => AppStatus::Stopped,
        }
    }

    /// `running`, `stopped` or `crashed`.
    pub fn word(&self) -> &'static str {
        match self {
            AppStatus::Running { .. } => "running",
            AppStatus::Stopped => "stopped",
            AppStatus::Crashed { .. } => "crashed",
        }
    }
}

/// Launches `sh -c COMMAND` in a new process group. Nothing of the app is
/// tied to the caller: no pipes, no kill on drop.
pub fn launch(spec: &AppLaunch) -> std::io::Result<LaunchedApp> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&spec.log)?;
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
    // An app that already exited has no start time left to read; its exit
    // is reported by waiting on the child, and no identity check will match.
    let start_time = process::start_time(pid).unwrap_or(0);
    Ok(LaunchedApp {
        child,
        pid,
        start_time,
    })
}

/// The exit code of a status, 128 + n for a death by signal n.
pub fn exit_code_of(status: ExitStatus) -> Option<i32> {
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// Whether something accepts connections on `port` of this machine.
pub async fn is_listening(port: u16) -> bool {
    let v4 = tokio::net::TcpStream::connect(("127.0.0.1", port));
    match tokio::time::timeout(Duration::from_millis(500), v4).await {
        Ok(Ok(_)) => true,
        _ => {
            let v6 = tokio::net::TcpStream::connect(("::1", port));
            matches!(
                tokio::time::timeout(Duration::from_millis(500), v6).await,
                Ok(Ok(_))
            )
        }
    }
}

/// How [`stop_group`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// The group was ended.
    Stopped,
    /// Nothing of it was running.
    NotRunning,
    /// The pid now belongs to another process, which was left alone.
    PidReused,
}

/// Ends the process group of an app: SIGTERM, up to `grace` to exit, then
/// SIGKILL. A recorded pid that now names another process is never
/// signalled; a group whose leader is gone but whose members live on is
/// still ended (its id cannot be reused while they live).
pub fn stop_group(pid: u32, start_time: u64, grace: Duration) -> StopOutcome {
    let leader_is_ours = process::is_same_process(pid, start_time);
    if !leader_is_ours && process::start_time(pid).is_some() {
        return StopOutcome::PidReused;
    }
    if !leader_is_ours && !process::group_exists(pid) {
        return StopOutcome::NotRunning;
    }
    process::signal_group(pid, libc::SIGTERM);
    if !wait_for_group_end(pid, grace) {
        process::signal_group(pid, libc::SIGKILL);
        wait_for_group_end(pid, Duration::from_secs(5));
    }
    StopOutcome::Stopped
}

/// Waits until no live process is left in the group (zombies waiting to be
/// reaped do not count).
fn wait_for_group_end(pgid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !group_has_live_members(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process of group `pgid` is alive, from `/proc` (a zombie has
/// ended; it only waits for its parent).
pub fn group_has_live_members(pgid: u32) -> bool {
    if !process::group_exists(pgid) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
        state != "Z" && group == Some(pgid)
    })
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The folder an app runs in: its source folder, or the folder of its source file.
pub fn working_dir(record: &Record) -> PathBuf {
    if record.is_dir {
        record.source.clone()
    } else {
        record
            .source
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_record_and_the_process() {
        let mut app = Record::app("/x".into(), true, "true".into(), 9);
        assert_eq!(AppStatus::of(&app), AppStatus::Stopped);
        let me = std::process::id();
        app.mark_running(me, process::start_time(me).unwrap());
        assert_eq!(AppStatus::of(&app), AppStatus::Running { pid: me });
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

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(
            &log,
            (1..=10).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .unwrap();
        assert_eq!(log_tail(&log, 2), "line 9\nline 10");
        assert_eq!(log_tail(&dir.path().join("missing"), 5), "");
    }

    #[tokio::test]
    async fn stop_group_ends_children_that_ignore_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let spec = AppLaunch {
            command: "trap '' TERM; sleep 1000 & sleep 1000; wait".into(),
            dir: dir.path().to_owned(),
            env: vec![("PATH".into(), std::env::var("PATH").unwrap())],
            log: dir.path().join("log"),
        };
        let mut app = launch(&spec).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(group_has_live_members(app.pid));
        let outcome = tokio::task::spawn_blocking(move || {
            stop_group(app.pid, app.start_time, Duration::from_millis(300))
        });
        let status = app.child.wait().await.unwrap();
        assert_eq!(outcome.await.unwrap(), StopOutcome::Stopped);
        assert_eq!(exit_code_of(status), Some(128 + libc::SIGKILL));
        assert!(
            !group_has_live_members(app.pid),
            "nothing of the group is left"
        );
    }
}
