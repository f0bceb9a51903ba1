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
    let folder = record.working_dir();
    let (runs_command, moved_to) = match (cmdline(id.pid), &record.run_cmd) {
        (Some(argv), Some(command)) => (
            runs(&argv, command),
            SimpleCommand::of(command)
                .and_then(|c| c.cd)
                .map(|dir| folder.join(dir)),
        ),
        _ => (false, None),
    };
    let in_folder = cwd(id.pid).is_some_and(|dir| {
        same_dir(&dir, &folder) || moved_to.is_some_and(|moved| same_dir(&dir, &moved))
    });
    leads_its_group && started_after && runs_command && in_folder
}

/// Whether `argv` is `command` as a shell runs it: `sh -c COMMAND`, or, for
/// a shell that replaced itself with its last simple command, that
/// command's words (after the interpreter of a script, such as `python3
/// /venv/bin/flask`).
fn runs(argv: &[String], command: &str) -> bool {
    let is_shell = |arg: &String| matches!(file_name(arg), "sh" | "bash" | "dash");
    if argv.len() == 3 && is_shell(&argv[0]) && argv[1] == "-c" && argv[2] == command {
        return true;
    }
    let Some(simple) = SimpleCommand::of(command) else {
        return false;
    };
    let words = simple.words;
    let same = |args: &[String], words: &[&str]| {
        args.len() == words.len() && args.iter().zip(words).all(|(a, w)| a == w)
    };
    same(argv, &words)
        || (argv.len() == words.len() + 1
            && file_name(&argv[1]) == file_name(words[0])
            && same(&argv[2..], &words[1..]))
}

/// The program a shell ends up running for a command, when it is one
/// simple command in the forms `sh -c` takes and replaces itself with:
/// after a leading `cd DIR &&`, variable assignments (`PORT=5000 …`) and
/// `exec`.
#[derive(Debug, PartialEq)]
struct SimpleCommand<'a> {
    /// The program and its arguments.
    words: Vec<&'a str>,
    /// The folder a leading `cd DIR &&` moves to.
    cd: Option<&'a str>,
}

impl<'a> SimpleCommand<'a> {
    fn of(command: &'a str) -> Option<Self> {
        let special = |c: char| ";&|<>$`'\"(){}*?[]#~=\\".contains(c);
        let mut words: Vec<&str> = command.split_whitespace().collect();
        let mut cd = None;
        if let ["cd", dir, "&&", ..] = words.as_slice()
            && !dir.contains(special)
        {
            cd = Some(*dir);
            words.drain(..3);
        }
        let assignment = |word: &str| {
            word.split_once('=').is_some_and(|(name, value)| {
                let mut chars = name.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !value.contains(special)
            })
        };
        let assignments = words.iter().take_while(|w| assignment(w)).count();
        words.drain(..assignments);
        if words.first() == Some(&"exec") {
            words.remove(0);
        }
        match words.is_empty() || words.iter().any(|w| w.contains(special)) {
            true => None,
            false => Some(SimpleCommand { words, cd }),
        }
    }
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

    /// What `sh -c` accepts and replaces itself with: `exec`, variables set
    /// for the command, a leading `cd DIR &&`.
    #[test]
    fn commands_a_shell_rewrites_are_recognised() {
        let flask = argv(&["python3", "-m", "flask", "run"]);
        for command in [
            "exec python3 -m flask run",
            "FLASK_APP=app.py PORT=5000 python3 -m flask run",
            "cd api && python3 -m flask run",
            "cd api && FLASK_DEBUG=1 exec python3 -m flask run",
        ] {
            assert!(runs(&flask, command), "{command}");
        }
        assert_eq!(
            SimpleCommand::of("cd api && exec npm run dev").map(|c| c.cd),
            Some(Some("api"))
        );
        for other in [
            "cd api; python3 -m flask run",
            "X=$(id) python3 -m flask run",
            "exec",
            "cd api && python3 app.py && echo done",
        ] {
            assert!(!runs(&flask, other), "{other}");
        }
    }

    fn python_app(dir: &Path, command: &str, pid: u32) -> Record {
        let mut record = Record::app(dir.join("app.py"), false, command.into(), 5000);
        record.created_at = "2000-01-01T00:00:00.000001+00:00".into();
        record.pid = Some(pid);
        record
    }

    /// Runs `sh -c command` in `dir`, in a group of its own, as the Python
    /// drop ran apps; returns once the first word of its command line
    /// passes `ran` (until the child has exec'd, it is the test's).
    fn run_as_python_drop(
        dir: &Path,
        command: &str,
        ran: impl Fn(&str) -> bool,
    ) -> (std::process::Child, u32) {
        let child = Command::new("/bin/sh")
            .args(["-c", command])
            .current_dir(dir)
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !cmdline(pid)
            .and_then(|a| a.first().cloned())
            .is_some_and(|first| ran(&first))
        {
            assert!(std::time::Instant::now() < deadline, "{command}: never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        (child, pid)
    }

    /// A process the Python drop would have started (`sh -c CMD` in the
    /// app's folder, a session of its own) is the app; the same pid with
    /// another command, folder or an older record is not, and is left
    /// alone; pid 0 was never started.
    #[test]
    fn a_python_drop_app_is_proven_by_group_command_folder_and_start_time() {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, pid) =
            run_as_python_drop(dir.path(), "sleep 30", |first| first == "/bin/sh");
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

    /// The Python drop ran commands with `sh -c` in the app's folder; the
    /// shell replaces itself with `exec`'s command, one with variables set,
    /// and one after `cd DIR &&`, which then runs in DIR: each is still
    /// proven to be the app.
    #[test]
    fn an_app_whose_command_the_shell_rewrote_is_proven() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("api")).unwrap();
        for command in [
            "exec sleep 29",
            "PORT=5000 sleep 29",
            "cd api && exec sleep 29",
        ] {
            // The shell's command line (`sh -c COMMAND`) or, once the
            // shell replaced itself, the command's: either is the app.
            let ran = |first: &str| first == "/bin/sh" || first == "sleep";
            let (mut child, pid) = run_as_python_drop(dir.path(), command, ran);
            let id = ProcessId::of(pid).unwrap();
            let judged = LegacyApp::judge(&python_app(dir.path(), command, pid));
            child.kill().unwrap();
            child.wait().unwrap();
            assert_eq!(judged, LegacyApp::Proven(id), "{command}");
        }
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
