//! drop.service: when `install.sh` wrote a systemd user unit for this drop
//! home and a user manager answers, `start` and `stop` go through systemd,
//! which restarts the server when it fails.
//!
//! The unit runs `drop serve $DROP_SERVE_ARGS` with `server.env` (in the
//! drop home) as its environment file; `start` writes that file from the
//! command it would otherwise launch itself, so both ways run the same server.

use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drop_registry::{Home, ServerState};

use crate::error::CliError;
use crate::running::{answers_http, launch_error, running_server};

/// The unit `install.sh` writes.
const UNIT_NAME: &str = "drop.service";
/// The line of the unit that names the drop home it serves.
const HOME_LINE_PREFIX: &str = "Environment=\"DROP_HOME=";
/// The variable the unit's `ExecStart` expands into `serve`'s arguments.
const ARGS_VARIABLE: &str = "DROP_SERVE_ARGS";
/// How long `start` waits for the unit's server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `start` asks systemd whether the unit is still up.
const ACTIVE_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Why the server runs without systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoUnit {
    /// Not Linux, no `systemctl`, or it reaches no user manager.
    NoSession,
    /// A manager answers, but no drop.service serves this home.
    NotInstalled,
}

impl fmt::Display for NoUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoUnit::NoSession => "no systemd user session",
            NoUnit::NotInstalled => "drop.service is not installed for this drop home",
        })
    }
}

/// drop.service, installed for this home, under a user manager that answers.
#[derive(Debug)]
pub struct Unit;

/// The unit that serves `home`, or why there is none.
pub fn detect(home: &Home) -> Result<Unit, NoUnit> {
    let installed = serves_home(home);
    if !manager_answers() {
        Err(NoUnit::NoSession)
    } else if !installed {
        Err(NoUnit::NotInstalled)
    } else {
        Ok(Unit)
    }
}

/// The unit serving `home`, when it is running.
pub fn active_unit(home: &Home) -> Option<Unit> {
    (serves_home(home) && manager_answers() && Unit.is_active()).then_some(Unit)
}

impl Unit {
    /// Starts the unit with the arguments and settings of `command` (the
    /// `drop serve` that `start` would launch itself) and waits until the
    /// server answers. A server that fails is stopped, so that systemd does
    /// not keep restarting it, and its error reported.
    pub fn start(
        &self,
        home: &Home,
        command: &Command,
        log_path: &Path,
        log_start: u64,
    ) -> Result<ServerState, CliError> {
        let env_path = home.root().join("server.env");
        drop_registry::write_atomic(&env_path, environment_file(command)?.as_bytes())?;
        let _ = systemctl(&["reset-failed", UNIT_NAME]);
        systemctl_checked(&["start", UNIT_NAME])?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut next_check = Instant::now() + ACTIVE_CHECK_INTERVAL;
        while Instant::now() < deadline {
            let state = home.load_server_state()?;
            if let Some(state) = running_server(state.as_ref())
                && answers_http(state)
            {
                return Ok(state.clone());
            }
            if Instant::now() >= next_check {
                if !self.is_active() {
                    let _ = self.stop();
                    return Err(launch_error(log_path, log_start));
                }
                next_check = Instant::now() + ACTIVE_CHECK_INTERVAL;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.stop();
        Err(CliError::ServerTimeout {
            secs: START_TIMEOUT.as_secs(),
            log: log_path.to_owned(),
        })
    }

    /// Stops the unit: systemd sends the server SIGTERM and waits for it.
    pub fn stop(&self) -> Result<(), CliError> {
        systemctl_checked(&["stop", UNIT_NAME])
    }

    fn is_active(&self) -> bool {
        systemctl(&["is-active", "--quiet", UNIT_NAME]).is_ok_and(|out| out.status.success())
    }
}

/// Where `install.sh` writes the unit: the user's systemd configuration folder.
fn unit_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("systemd/user").join(UNIT_NAME))
}

/// Whether the installed unit serves `home` (the same folder, however named).
fn serves_home(home: &Home) -> bool {
    let Some(text) = unit_path().and_then(|p| std::fs::read_to_string(p).ok()) else {
        return false;
    };
    let Some(unit_home) = unit_home(&text) else {
        return false;
    };
    match (
        std::fs::canonicalize(unit_home),
        std::fs::canonicalize(home.root()),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The drop home a unit file names. `install.sh` writes no unit for a path
/// that would need escaping, so the value is the path as it is.
fn unit_home(unit: &str) -> Option<&str> {
    unit.lines()
        .find_map(|line| line.strip_prefix(HOME_LINE_PREFIX)?.strip_suffix('"'))
}

/// Whether `systemctl --user` reaches a manager: the command existing is not
/// enough (containers, WSL and `sudo` shells have it without a session).
fn manager_answers() -> bool {
    cfg!(target_os = "linux")
        && systemctl(&["show-environment"]).is_ok_and(|out| out.status.success())
}

fn systemctl(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("systemctl")
        .arg("--user")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
}

/// Runs `systemctl --user ARGS`; a failure becomes an error with its message.
fn systemctl_checked(args: &[&str]) -> Result<(), CliError> {
    let action = format!("run `systemctl --user {}`", args.join(" "));
    let out = systemctl(args).map_err(CliError::io(action.clone()))?;
    if out.status.success() {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Err(CliError::ServerFailed(format!(
        "could not {action}: {message}; see `journalctl --user -u {UNIT_NAME}`"
    )))
}

/// `server.env`: `serve`'s arguments (but `--home`: the unit names the
/// home), and `PATH` and the `DROP_*` settings of the command, which a
/// server launched directly would inherit.
fn environment_file(command: &Command) -> Result<String, CliError> {
    let mut args = Vec::new();
    let mut given = command
        .get_args()
        .skip_while(|arg| *arg == OsStr::new("serve"));
    while let Some(arg) = given.next() {
        if arg == OsStr::new("--home") {
            given.next();
            continue;
        }
        args.push(unit_word(arg)?);
    }
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| passed_to_unit(k))
        .collect();
    for (key, value) in command.get_envs() {
        let Some(key) = key.to_str().filter(|k| passed_to_unit(k)) else {
            continue;
        };
        vars.retain(|(k, _)| k != key);
        if let Some(value) = value.and_then(OsStr::to_str) {
            vars.push((key.to_owned(), value.to_owned()));
        }
    }
    vars.sort();
    let mut text = Vec::new();
    let _ = writeln!(
        text,
        "# Written by `drop start` for {UNIT_NAME}: the server's arguments and settings."
    );
    let _ = writeln!(text, "{ARGS_VARIABLE}=\"{}\"", args.join(" "));
    for (key, value) in vars.iter().filter(|(_, v)| !v.contains('\n')) {
        let _ = writeln!(text, "{key}=\"{}\"", quote_value(value));
    }
    Ok(String::from_utf8(text).expect("written from strings"))
}

fn passed_to_unit(key: &str) -> bool {
    key == "PATH" || (key.starts_with("DROP_") && key != "DROP_HOME" && key != ARGS_VARIABLE)
}

/// One of `serve`'s arguments: systemd splits `$DROP_SERVE_ARGS` at
/// whitespace, so a word may hold no whitespace and no quoting.
fn unit_word(arg: &OsStr) -> Result<&str, CliError> {
    arg.to_str()
        .filter(|w| {
            !w.is_empty()
                && !w
                    .chars()
                    .any(|c| c.is_whitespace() || "\"'\\$`".contains(c))
        })
        .ok_or_else(|| {
            CliError::ServerFailed(format!(
                "`{}` cannot be passed to {UNIT_NAME}: use a value without spaces or quotes",
                arg.to_string_lossy()
            ))
        })
}

/// A value for a double-quoted assignment, as systemd's environment files
/// (and the shell) read them.
fn quote_value(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len());
    for c in value.chars() {
        if "\"\\$`".contains(c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_home_is_read_from_its_environment_line() {
        let unit = "[Service]\nEnvironment=\"DROP_HOME=/home/a b/.drop\"\nExecStart=x\n";
        assert_eq!(unit_home(unit), Some("/home/a b/.drop"));
        assert_eq!(unit_home("[Service]\nExecStart=x\n"), None);
    }

    #[test]
    fn environment_file_holds_serve_arguments_without_home() {
        let mut command = Command::new("drop");
        command
            .arg("serve")
            .args(["--port", "9000", "--bind", "0.0.0.0"])
            .arg("--home")
            .arg("/home/a b/.drop")
            .args(["--host", "example.org"])
            .env("DROP_WORKERS", "2")
            .env("DROP_HOME", "/elsewhere")
            .env("PATH", "/opt/$x/bin:/usr/bin");
        let text = environment_file(&command).unwrap();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines[0],
            "DROP_SERVE_ARGS=\"--port 9000 --bind 0.0.0.0 --host example.org\""
        );
        assert!(lines.contains(&"DROP_WORKERS=\"2\""), "{text}");
        assert!(lines.contains(&"PATH=\"/opt/\\$x/bin:/usr/bin\""), "{text}");
        assert!(!text.contains("DROP_HOME"), "{text}");
    }

    #[test]
    fn arguments_systemd_would_split_are_refused() {
        let mut command = Command::new("drop");
        command.args(["serve", "--host", "a host"]);
        let err = environment_file(&command).unwrap_err();
        assert!(
            err.to_string().contains("`a host` cannot be passed"),
            "{err}"
        );
    }

    #[test]
    fn values_are_quoted_as_systemd_reads_them() {
        assert_eq!(quote_value(r#"a"b\c$d`e"#), r#"a\"b\\c\$d\`e"#);
    }
}
