//! Processes the Python drop (0.2) left running. It recorded an app by its
//! pid alone (`0` when never started) and its server's pid in `server.pid`,
//! without the start time this drop keeps, so a pid of its is trusted only
//! when the process provably is what the record says: for an app, a
//! process started after the record, leading its own process group,
//! running the record's command in the record's folder; for the server, a
//! Python process running drop's `run_server`. Anything else alive under
//! such a pid is left alone and reported, never signalled and never
//! forgotten.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drop_registry::{Home, Record};

use super::process::{ProcStat, ProcessId};

/// How much earlier than its record an app may seem to have started: the
/// boot time the kernel gives is in whole seconds.
const START_SLACK: Duration = Duration::from_secs(2);
/// What the Python drop's server runs: `python -c "from drop.server import
/// run_server; run_server(port=N)"`.
const PYTHON_SERVER_CODE: &str = "from drop.server import run_server";

/// What the pid of an app record without a start time (the Python drop's)
/// turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyApp {
    /// `pid` 0: the app was never started, or was stopped.
    NeverStarted,
    /// No process has the pid any more.
    Gone,
    /// The app itself, still running.
    Proven(ProcessId),
    /// A live process that cannot be shown to be the app: left alone.
    Unproven {
        /// Its pid.
        pid: u32,
    },
}

impl LegacyApp {
    /// Judges the recorded pid of `record`, a record without a start time.
    pub fn judge(record: &Record) -> Self {
        let pid = match record.pid {
            None | Some(0) => return LegacyApp::NeverStarted,
            Some(pid) => pid,
        };
        let Some(id) = ProcessId::of(pid) else {
            return LegacyApp::Gone;
        };
        if is_the_app(id, record) {
            LegacyApp::Proven(id)
        } else {
            LegacyApp::Unproven { pid }
        }
    }
}

/// Whether the live process `id` is provably the app of `record`.
fn is_the_app(id: ProcessId, record: &Record) -> bool {
    let leads_its_group = ProcStat::read(id.pid).is_some_and(|s| s.pgid == id.pid);
    let started_after = match (
        started_at(id),
        drop_registry::parse_rfc3339(&record.created_at),
    ) {
        (Some(process), Some(created)) => process + START_SLACK >= created,
        _ => false,
    };
    let runs_command = match (cmdline(id.pid), &record.run_cmd) {
        (Some(argv), Some(command)) => runs(&argv, command),
        _ => false,
    };
    let in_folder = cwd(id.pid).is_some_and(|dir| same_dir(&dir, &record.working_dir()));
    leads_its_group && started_after && runs_command && in_folder
}

/// Whether `argv` is `command` as a shell runs it: `sh -c COMMAND`, or, for
/// a shell that replaced itself with a simple command, the command's words
/// (after the interpreter of a script, such as `python3 /venv/bin/flask`).
fn runs(argv: &[String], command: &str) -> bool {
    let is_shell = |arg: &String| matches!(file_name(arg), "sh" | "bash" | "dash");
    if argv.len() == 3 && is_shell(&argv[0]) && argv[1] == "-c" && argv[2] == command {
        return true;
    }
    let special = |c: char| ";&|<>$`'\"(){}*?[]#~=\\".contains(c);
    let words: Vec<&str> = command.split_whitespace().collect();
    if words.is_empty() || command.contains(special) {
        return false;
    }
    let same = |args: &[String], words: &[&str]| {
        args.len() == words.len() && args.iter().zip(words).all(|(a, w)| a == w)
    };
    same(argv, &words)
        || (argv.len() == words.len() + 1
            && file_name(&argv[1]) == file_name(words[0])
            && same(&argv[2..], &words[1..]))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    canonical(a) == canonical(b)
}

/// The Python drop's server, found by its `server.pid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyServer {
    /// Its process.
    pub id: ProcessId,
    /// The port it serves, read from its command line.
    pub port: Option<u16>,
}

impl LegacyServer {
    /// The Python drop's server of `home`, when `server.pid` names a live
    /// process that runs it.
    pub fn find(home: &Home) -> Option<Self> {
        let pid = home.legacy_files().server_pid?;
        let id = ProcessId::of(pid)?;
        let argv = cmdline(pid)?;
        let code = argv
            .windows(2)
            .find(|w| w[0] == "-c" && w[1].starts_with(PYTHON_SERVER_CODE))?
            .get(1)?;
        let port = code
            .split("port=")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|digits| digits.parse().ok());
        Some(LegacyServer { id, port })
    }
}

/// The arguments of `pid`.
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args: Vec<String> = bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if args.last().is_some_and(String::is_empty) {
        args.pop();
    }
    Some(args)
}

/// The working folder of `pid`.
fn cwd(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// When `id` started, on the wall clock: the boot time plus its start in
/// clock ticks.
fn started_at(id: ProcessId) -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let boot: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let since_boot = Duration::from_millis(id.start_time.saturating_mul(1000) / ticks);
    Some(UNIX_EPOCH + Duration::from_secs(boot) + since_boot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn a_command_matches_as_a_shell_runs_it() {
        assert!(runs(
            &argv(&["/bin/sh", "-c", "python3 app.py"]),
            "python3 app.py"
        ));
        assert!(runs(&argv(&["python3", "app.py"]), "python3 app.py"));
        assert!(runs(
            &argv(&[
                "/venv/bin/python3",
                "/venv/bin/flask",
                "run",
                "--port",
                "5000"
            ]),
            "flask run --port 5000"
        ));
        assert!(!runs(&argv(&["python3", "other.py"]), "python3 app.py"));
        assert!(!runs(
            &argv(&["/bin/sh", "-c", "python3 app.py &"]),
            "python3 app.py"
        ));
        assert!(
            !runs(&argv(&["a", "b"]), "a b; c"),
            "a compound command only as sh -c"
        );
        assert!(!runs(&argv(&[]), ""));
    }

    fn python_app(dir: &Path, command: &str, pid: u32) -> Record {
        let mut record = Record::app(dir.join("app.py"), false, command.into(), 5000);
        record.created_at = "2000-01-01T00:00:00.000001+00:00".into();
        record.pid = Some(pid);
        record
    }

    /// A process the Python drop would have started (`sh -c CMD` in the
    /// app's folder, a session of its own) is the app; the same pid with
    /// another command, folder or an older record is not, and is left
    /// alone; pid 0 was never started.
    #[test]
    fn a_python_drop_app_is_proven_by_group_command_folder_and_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .current_dir(dir.path())
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // Until the child has exec'd, its command line is the test's.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while cmdline(pid).and_then(|a| a.first().cloned()).as_deref() != Some("/bin/sh") {
            assert!(
                std::time::Instant::now() < deadline,
                "the child never ran sh"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let id = ProcessId::of(pid).unwrap();
        assert_eq!(
            LegacyApp::judge(&python_app(dir.path(), "sleep 30", pid)),
            LegacyApp::Proven(id)
        );
        let other_command = python_app(dir.path(), "sleep 31", pid);
        assert_eq!(
            LegacyApp::judge(&other_command),
            LegacyApp::Unproven { pid }
        );
        let elsewhere = python_app(&dir.path().join("sub"), "sleep 30", pid);
        assert_eq!(LegacyApp::judge(&elsewhere), LegacyApp::Unproven { pid });
        let mut later = python_app(dir.path(), "sleep 30", pid);
        later.created_at = drop_registry::rfc3339(SystemTime::now() + Duration::from_secs(60));
        assert_eq!(LegacyApp::judge(&later), LegacyApp::Unproven { pid });
        assert_eq!(
            LegacyApp::judge(&python_app(dir.path(), "sleep 30", 0)),
            LegacyApp::NeverStarted
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            LegacyApp::judge(&python_app(dir.path(), "sleep 30", pid)),
            LegacyApp::Gone
        );
    }

    /// `server.pid` counts only while it names a process running the
    /// Python drop's server; its port comes from that command line.
    #[test]
    fn the_python_server_is_known_by_its_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let code = "from drop.server import run_server; run_server(port=9123)";
        // `sh -c CODE ignored` stands in for `python -c CODE`.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30", "-c", code])
            .spawn()
            .unwrap();
        std::fs::write(dir.path().join("server.pid"), child.id().to_string()).unwrap();
        // Until the child has exec'd, its command line is the test's.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let found = loop {
            match LegacyServer::find(&home) {
                Some(found) => break found,
                None if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                None => panic!("the stand-in server is not recognised"),
            }
        };
        assert_eq!((found.id.pid, found.port), (child.id(), Some(9123)));
        std::fs::write(
            dir.path().join("server.pid"),
            std::process::id().to_string(),
        )
        .unwrap();
        assert_eq!(LegacyServer::find(&home), None, "another process");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
