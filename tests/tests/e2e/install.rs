//! `install.sh` and `uninstall.sh` on a throwaway machine: a temporary
//! `HOME`, a `PATH` holding only the tools the scripts need (never cargo or
//! cloudflared), a fake `systemctl`, and a local HTTP server standing in for
//! cloudflared's release downloads. The drop binary Cargo built is installed
//! in place of a release build, so no test compiles anything.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use drop_tests::http::get;
use drop_tests::{alive, drop_bin, kill};
use tempfile::TempDir;

/// What the scripts run, found on the test's own `PATH`.
const TOOLS: &[&str] = &[
    "bash", "basename", "cat", "chmod", "cmp", "cp", "curl", "dirname", "gzip", "mkdir", "mktemp",
    "mv", "rm", "rmdir", "sed", "seq", "setsid", "sleep", "tar", "tr", "uname",
];
const FAKE_CLOUDFLARED: &str = env!("CARGO_BIN_EXE_fake-cloudflared");
const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");
const NO_SESSION_NOTE: &str = "  (no systemd user session: auto-restart is off)";

/// How `systemctl` behaves on the fake machine.
#[derive(Clone, Copy, PartialEq)]
enum Systemd {
    /// `systemctl` exists but reaches no user manager, as in containers.
    NoSession,
    /// A user manager that runs drop.service's `ExecStart` (see `FAKE_SYSTEMCTL`).
    Working,
}

/// A stand-in for `systemctl --user` that keeps drop.service's state in its
/// own folder: `start` runs the unit's `ExecStart` as systemd would (its
/// environment lines and file, `$VAR` split at whitespace, output appended
/// to `StandardOutput`), `stop` sends SIGTERM to that process and waits.
/// Every call is appended to `systemctl.calls`.
const FAKE_SYSTEMCTL: &str = r#"#!/bin/bash
set -u
state=__STATE__
echo "$*" >> "$state/systemctl.calls"
[ "${1:-}" = --user ] || { echo "fake systemctl: only --user" >&2; exit 1; }
shift
unit="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/drop.service"
pidfile="$state/drop.service.pid"
alive() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
running() { [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; }
value() { sed -n "s/^$1=//p" "$unit"; }
stop_unit() {
    if running; then
        pid=$(cat "$pidfile"); kill -TERM "$pid"
        for _ in $(seq 200); do alive "$pid" || break; sleep 0.05; done
    fi
    rm -f "$pidfile"
}
case "${1:-}" in
    show-environment) echo "HOME=$HOME" ;;
    daemon-reload | reset-failed | enable) ;;
    disable) [ "${2:-}" = --now ] && stop_unit ;;
    is-active) running ;;
    stop) stop_unit ;;
    start)
        running && exit 0
        [ -f "$unit" ] || { echo "Failed to start drop.service: Unit drop.service not found." >&2; exit 5; }
        home=$(sed -n 's/^Environment="DROP_HOME=\(.*\)"$/\1/p' "$unit")
        envfile=$(value EnvironmentFile); envfile=${envfile#-}
        log=$(value StandardOutput); log=${log#append:}
        exec_start=$(value ExecStart)
        (
            set -a
            if [ -f "$envfile" ]; then . "$envfile"; fi
            DROP_HOME=$home
            eval "set -- $exec_start"
            exec setsid "$@" </dev/null >>"$log" 2>&1
        ) &
        echo $! > "$pidfile"
        ;;
    *) echo "fake systemctl: unsupported: $*" >&2; exit 1 ;;
esac
"#;

/// A temporary machine: `HOME`, a `PATH` of chosen tools, and a fake `systemctl`.
struct Machine {
    home: TempDir,
    tools: TempDir,
    envs: Vec<(String, String)>,
}

impl Machine {
    fn new(systemd: Systemd) -> Self {
        let machine = Machine {
            home: tempfile::tempdir().unwrap(),
            tools: tempfile::tempdir().unwrap(),
            envs: Vec::new(),
        };
        for tool in TOOLS {
            let found = which(tool).unwrap_or_else(|| panic!("{tool} is not installed"));
            std::os::unix::fs::symlink(found, machine.tools.path().join(tool)).unwrap();
        }
        let systemctl = match systemd {
            Systemd::NoSession => {
                "#!/bin/bash\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n".into()
            }
            Systemd::Working => {
                FAKE_SYSTEMCTL.replace("__STATE__", &machine.tools.path().display().to_string())
            }
        };
        write_executable(
            &machine.tools.path().join("systemctl"),
            systemctl.as_bytes(),
        );
        machine
    }

    /// Adds an environment variable to every script run from now on.
    fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    /// A command with this machine's environment only.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", self.tools.path())
            .env("XDG_CONFIG_HOME", self.path(".config"))
            .env("DROP_BIND", "127.0.0.1")
            // Never the internet: NAT detection asks a closed local port.
            .env("DROP_IP_ECHO_URLS", "http://127.0.0.1:9/")
            .current_dir(self.home.path());
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        command
    }

    /// Runs one of the repository's scripts as the README does (`./install.sh`),
    /// installing the drop binary Cargo built rather than building a release.
    fn script(&self, name: &str) -> Output {
        self.command(repo().join(name))
            .env("DROP_INSTALL_BINARY", drop_bin())
            .output()
            .unwrap()
    }

    /// Runs a script and asserts it succeeds; returns stdout.
    fn script_ok(&self, name: &str) -> String {
        let out = self.script(name);
        let text = String::from_utf8(out.stdout).unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name} failed:\n{text}\n{err}");
        text
    }

    /// The installed `drop`, run as a user would.
    fn drop_cmd(&self, args: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.path(".local/bin").display(),
            self.tools.path().display()
        );
        self.command(self.tools.path().join("bash"))
            .args(["-c", &format!("drop {args}")])
            .env("PATH", path)
            .output()
            .unwrap()
    }

    /// Every file and folder under `HOME` with its modification time.
    fn snapshot(&self) -> BTreeMap<PathBuf, SystemTime> {
        let mut all = BTreeMap::new();
        let mut todo = vec![self.home.path().to_owned()];
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let meta = std::fs::symlink_metadata(entry.path()).unwrap();
                if meta.is_dir() {
                    todo.push(entry.path());
                }
                all.insert(entry.path(), meta.modified().unwrap());
            }
        }
        all
    }

    fn server_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.path(".drop/server.json")).ok()?;
        let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
        doc["pid"].as_u64().map(|p| p as u32)
    }
}

impl Drop for Machine {
    /// Stops whatever server a test started here, through drop first, then
    /// by the pids this machine recorded.
    fn drop(&mut self) {
        let pids = [
            self.server_pid(),
            std::fs::read_to_string(self.tools.path().join("drop.service.pid"))
                .ok()
                .and_then(|p| p.trim().parse().ok()),
        ];
        let _ = self.command(drop_bin()).arg("stop").output();
        for pid in pids.into_iter().flatten() {
            kill(pid);
        }
    }
}

/// Serves release assets by path on 127.0.0.1 and records what was asked.
struct Downloads {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Downloads {
    fn serve(assets: Vec<(&str, Vec<u8>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let assets: BTreeMap<String, Vec<u8>> = assets
            .into_iter()
            .map(|(path, body)| (format!("/{path}"), body))
            .collect();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &assets, &seen);
            }
        });
        Downloads { url, requests }
    }

    /// A base URL where nothing listens: the machine is offline.
    fn offline() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(stream: TcpStream, assets: &BTreeMap<String, Vec<u8>>, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    seen.lock().unwrap().push(path.clone());
    let mut stream = &stream;
    let _ = match assets.get(&path) {
        Some(body) => write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| stream.write_all(body)),
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

fn write_executable(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn fake_cloudflared() -> Vec<u8> {
    std::fs::read(FAKE_CLOUDFLARED).unwrap()
}

/// A `.tgz` holding one top-level `cloudflared`, as the darwin releases are.
fn fake_cloudflared_tgz() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    write_executable(&dir.path().join("cloudflared"), &fake_cloudflared());
    let tgz = dir.path().join("asset.tgz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(dir.path())
        .arg("cloudflared")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(tgz).unwrap()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_version(path: &Path) -> String {
    let out = Command::new(path).arg("--version").output().unwrap();
    assert!(out.status.success(), "{} --version failed", path.display());
    stdout_of(&out)
}

/// A fresh install puts a drop that runs in `~/.local/bin`, the skill in
/// `~/.claude/skills/drop/SKILL.md` and an executable cloudflared in
/// `~/.drop/bin`, says `~/.local/bin` is not on PATH; a second run downloads
/// nothing, says everything is already installed and touches no file.
#[test]
fn install_puts_everything_in_place_and_a_second_run_changes_nothing() {
    let downloads = Downloads::serve(vec![("cloudflared-linux-amd64", fake_cloudflared())]);
    let machine = Machine::new(Systemd::NoSession)
        .env("DROP_CLOUDFLARED_URL", &downloads.url)
        .env("DROP_INSTALL_OS", "Linux")
        .env("DROP_INSTALL_ARCH", "x86_64");
    let out = machine.script_ok("install.sh");

    let drop = machine.path(".local/bin/drop");
    assert!(run_version(&drop).starts_with("drop "), "{out}");
    let skill = std::fs::read_to_string(machine.path(".claude/skills/drop/SKILL.md")).unwrap();
    assert!(
        skill.starts_with("---\nname: drop\ndescription: "),
        "{skill}"
    );
    let cloudflared = machine.path(".drop/bin/cloudflared");
    assert!(is_executable(&cloudflared));
    assert!(run_version(&cloudflared).starts_with("cloudflared version "));
    assert_eq!(downloads.requests(), ["/cloudflared-linux-amd64"]);
    assert!(
        out.contains(&format!("drop: installed {}", drop.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "warning: {} is not on PATH",
            machine.path(".local/bin").display()
        )),
        "{out}"
    );

    let before = machine.snapshot();
    let again = machine.script_ok("install.sh");
    assert_eq!(
        machine.snapshot(),
        before,
        "the second run changed files:\n{again}"
    );
    assert_eq!(downloads.requests().len(), 1, "nothing downloaded again");
    for line in [
        "drop: already installed at ",
        "skill: already installed at ",
        "cloudflared: already installed at ",
    ] {
        assert!(again.contains(line), "no `{line}` in:\n{again}");
    }
}

/// Offline, install still succeeds, installs drop, says how to get
/// cloudflared by hand, and leaves no partial download in `~/.drop/bin`.
#[test]
fn install_without_network_installs_drop_and_explains_cloudflared() {
    let machine = Machine::new(Systemd::NoSession)
        .env("DROP_CLOUDFLARED_URL", &Downloads::offline())
        .env("DROP_INSTALL_OS", "linux")
        .env("DROP_INSTALL_ARCH", "amd64");
    let out = machine.script_ok("install.sh");
    assert!(is_executable(&machine.path(".local/bin/drop")));
    assert!(out.contains("cloudflared: could not download it"), "{out}");
    assert!(out.contains("To install it by hand:"), "{out}");
    assert!(out.contains("/cloudflared-linux-amd64"), "{out}");
    let dest = machine.path(".drop/bin/cloudflared");
    assert!(
        out.contains(&format!(
            "drop looks for cloudflared on PATH, then at {}.",
            dest.display()
        )),
        "{out}"
    );
    // `~/.local/bin` is not on this machine's PATH: the last line must not
    // suggest a bare `drop`.
    let bin = machine.path(".local/bin");
    assert_eq!(
        out.trim_end().lines().last().unwrap(),
        format!(
            "Done. Try: {0}/drop start && {0}/drop add <file>",
            bin.display()
        )
    );
    let left: Vec<_> = std::fs::read_dir(machine.path(".drop/bin"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Offline, install says so plainly, once: not curl's own error once per
/// retry, but that this machine looks offline, and where it could not
/// connect.
#[test]
fn install_offline_says_plainly_that_it_is_offline() {
    let offline = Downloads::offline();
    let machine = Machine::new(Systemd::NoSession)
        .env("DROP_CLOUDFLARED_URL", &offline)
        .env("DROP_INSTALL_OS", "linux")
        .env("DROP_INSTALL_ARCH", "amd64");
    let out = machine.script("install.sh");
    assert!(out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!said.contains("curl:"), "{said}");
    let host = offline.trim_start_matches("http://");
    let line = format!(
        "cloudflared: could not download it: this machine looks offline (no connection to {host})"
    );
    assert_eq!(said.matches(&line).count(), 1, "{said}");
}

/// A download that does not run as cloudflared (an error page, say) is
/// refused and removed; a broken `~/.drop/bin/cloudflared` is replaced by
/// the next good download.
#[test]
fn a_cloudflared_that_does_not_run_is_never_kept() {
    let bad = Downloads::serve(vec![(
        "cloudflared-linux-arm64",
        b"<html>rate limited</html>".to_vec(),
    )]);
    let machine = Machine::new(Systemd::NoSession)
        .env("DROP_CLOUDFLARED_URL", &bad.url)
        .env("DROP_INSTALL_OS", "linux")
        .env("DROP_INSTALL_ARCH", "aarch64");
    let out = machine.script_ok("install.sh");
    assert_eq!(
        bad.requests(),
        ["/cloudflared-linux-arm64"],
        "aarch64 is arm64"
    );
    assert!(out.contains("what arrived does not run"), "{out}");
    assert_eq!(
        std::fs::read_dir(machine.path(".drop/bin"))
            .unwrap()
            .count(),
        0
    );

    let cloudflared = machine.path(".drop/bin/cloudflared");
    write_executable(&cloudflared, b"<html>half a download");
    let good = Downloads::serve(vec![("cloudflared-linux-arm64", fake_cloudflared())]);
    let machine = machine.env("DROP_CLOUDFLARED_URL", &good.url);
    let out = machine.script_ok("install.sh");
    assert!(out.contains("does not run; downloading it again"), "{out}");
    assert!(run_version(&cloudflared).starts_with("cloudflared version "));
}

/// On macOS the asset is `cloudflared-darwin-<arch>.tgz`; the `cloudflared`
/// inside it is what lands in `~/.drop/bin`, and nothing else does.
#[test]
fn darwin_release_is_unpacked_from_its_tgz() {
    let downloads = Downloads::serve(vec![(
        "cloudflared-darwin-arm64.tgz",
        fake_cloudflared_tgz(),
    )]);
    let machine = Machine::new(Systemd::Working)
        .env("DROP_CLOUDFLARED_URL", &downloads.url)
        .env("DROP_INSTALL_OS", "Darwin")
        .env("DROP_INSTALL_ARCH", "arm64");
    let out = machine.script_ok("install.sh");
    assert_eq!(downloads.requests(), ["/cloudflared-darwin-arm64.tgz"]);
    let cloudflared = machine.path(".drop/bin/cloudflared");
    assert!(is_executable(&cloudflared), "{out}");
    assert_eq!(std::fs::read(&cloudflared).unwrap(), fake_cloudflared());
    assert_eq!(
        std::fs::read_dir(machine.path(".drop/bin"))
            .unwrap()
            .count(),
        1
    );
    assert!(
        !machine.path(".config/systemd").exists(),
        "no systemd unit outside Linux, even with a systemctl around"
    );
}

/// Without cargo, install stops at once and says how to get it.
#[test]
fn install_without_cargo_says_how_to_get_it() {
    let machine = Machine::new(Systemd::NoSession);
    let out = machine.command(repo().join("install.sh")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Error: cargo (the Rust toolchain) is needed"),
        "{err}"
    );
    assert!(err.contains("https://sh.rustup.rs"), "{err}");
    assert!(!machine.path(".local/bin/drop").exists());
}

/// rustup installed but no toolchain chosen: cargo does not run, and install
/// says the one command that fixes it (not `rustup update`).
#[test]
fn install_with_rustup_but_no_toolchain_says_rustup_default_stable() {
    let machine = Machine::new(Systemd::NoSession);
    let no_default = b"#!/bin/sh\necho 'error: rustup could not choose a version of cargo to run, because one was not specified explicitly, and no default is configured.' >&2\nexit 1\n";
    write_executable(&machine.tools.path().join("cargo"), no_default);
    write_executable(&machine.tools.path().join("rustup"), no_default);
    let out = machine.command(repo().join("install.sh")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run 'rustup default stable'"), "{err}");
    assert!(!err.contains("rustup update"), "{err}");
    assert!(!machine.path(".local/bin/drop").exists());
}

/// Uninstall stops every app as well as the server: with drop gone, nothing
/// could stop an app left serving. It names each app it stops.
#[test]
fn uninstall_stops_every_app_it_would_otherwise_orphan() {
    let machine = Machine::new(Systemd::NoSession)
        .env("DROP_CLOUDFLARED_URL", &Downloads::offline())
        .env("DROP_INSTALL_OS", "linux")
        .env("DROP_INSTALL_ARCH", "amd64");
    machine.script_ok("install.sh");
    // drop runs apps with `sh -c`.
    std::os::unix::fs::symlink(which("sh").unwrap(), machine.tools.path().join("sh")).unwrap();
    let app_dir = machine.path("api");
    std::fs::create_dir_all(&app_dir).unwrap();
    let port = drop_tests::free_port();
    let add = format!(
        "add {} --run 'exec {TEST_APP} {port}' --port {port} --name api",
        app_dir.display()
    );
    assert!(machine.drop_cmd(&add).status.success());
    let started = machine.drop_cmd("start --port 0 --host 127.0.0.1 --no-tunnel");
    assert!(started.status.success(), "{started:?}");
    let app = machine.drop_cmd("start api");
    assert!(app.status.success(), "{app:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    let out = machine.script_ok("uninstall.sh");
    assert!(out.contains("App stopped: api"), "{out}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the app is left serving"
    );
}

/// With cargo but no C compiler (which the TLS library needs), install
/// stops before building and says how to get one.
#[test]
fn install_without_a_c_compiler_says_how_to_get_one() {
    let machine = Machine::new(Systemd::NoSession);
    write_executable(&machine.tools.path().join("cargo"), b"#!/bin/sh\nexit 0\n");
    let out = machine.command(repo().join("install.sh")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Error: a C compiler (cc) is needed"),
        "{err}"
    );
    assert!(err.contains("build-essential"), "{err}");
}

/// Uninstall stops the server, removes the binary and the skill, keeps
/// `~/.drop` as it was and says so; run again, it still succeeds.
#[test]
fn uninstall_removes_what_install_added_and_keeps_the_drop_home() {
    let downloads = Downloads::serve(vec![("cloudflared-linux-amd64", fake_cloudflared())]);
    let machine = Machine::new(Systemd::NoSession)
        .env("DROP_CLOUDFLARED_URL", &downloads.url)
        .env("DROP_INSTALL_OS", "linux")
        .env("DROP_INSTALL_ARCH", "x86_64");
    machine.script_ok("install.sh");
    let pages = r#"{"abc123": {"type": "static", "source": "/tmp/x.html", "is_dir": false}}"#;
    std::fs::write(machine.path(".drop/pages.json"), pages).unwrap();
    let kept = machine.snapshot();
    let started = machine.drop_cmd("start --port 0 --host 127.0.0.1 --no-tunnel");
    assert!(started.status.success(), "{started:?}");
    let server = machine.server_pid().expect("server running");

    let out = machine.script_ok("uninstall.sh");
    assert!(!machine.path(".local/bin/drop").exists());
    assert!(!machine.path(".claude/skills/drop").exists());
    assert!(!alive(server), "server stopped");
    assert_eq!(
        std::fs::read_to_string(machine.path(".drop/pages.json")).unwrap(),
        pages
    );
    assert!(is_executable(&machine.path(".drop/bin/cloudflared")));
    let gone: Vec<_> = kept
        .keys()
        .filter(|p| p.starts_with(machine.path(".drop")) && !p.exists())
        .collect();
    assert!(gone.is_empty(), "removed from ~/.drop: {gone:?}");
    assert!(
        out.contains(&format!("Kept {}", machine.path(".drop").display())),
        "{out}"
    );

    let again = machine.script_ok("uninstall.sh");
    assert!(again.contains("drop: not installed at "), "{again}");
}

/// Without a user manager, install writes no unit and says auto-restart is
/// off; the drop it put on PATH starts the server itself and says so too.
#[test]
fn without_a_user_session_drop_on_path_starts_the_server_itself() {
    let machine = Machine::new(Systemd::NoSession)
        .env("DROP_CLOUDFLARED_URL", &Downloads::offline())
        .env("DROP_INSTALL_OS", "linux");
    let out = machine.script_ok("install.sh");
    assert!(out.contains("systemd: no user session here"), "{out}");
    assert!(!machine.path(".config/systemd/user/drop.service").exists());

    let started = machine.drop_cmd("start --port 0 --host 127.0.0.1 --no-tunnel");
    let text = stdout_of(&started);
    let mut lines = text.lines();
    let url = lines.next().unwrap_or_default();
    assert!(
        url.starts_with("Server started: http://127.0.0.1:"),
        "{started:?}"
    );
    assert_eq!(lines.next(), Some(NO_SESSION_NOTE));
    let port = drop_tests::started_port(url).expect("a port");
    assert_eq!(get(port, "/robots.txt").status, 200);
    assert_eq!(
        stdout_of(&machine.drop_cmd("stop")).trim(),
        "Server stopped."
    );
}

/// With a user manager, install writes drop.service (restart on failure,
/// only the server's process killed, the drop home named); `drop start`
/// then starts the unit, which runs the installed drop, and `drop stop`
/// stops it; uninstall removes the unit.
#[test]
fn with_a_user_session_start_and_stop_go_through_the_unit() {
    let machine = Machine::new(Systemd::Working)
        .env("DROP_CLOUDFLARED_URL", &Downloads::offline())
        .env("DROP_INSTALL_OS", "linux");
    let out = machine.script_ok("install.sh");
    let unit_path = machine.path(".config/systemd/user/drop.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap_or_else(|_| panic!("no unit:\n{out}"));
    let home = machine.path(".drop");
    let bin = machine.path(".local/bin/drop");
    for line in [
        format!("Environment=\"DROP_HOME={}\"", home.display()),
        format!("EnvironmentFile=-{}/server.env", home.display()),
        format!("ExecStart=\"{}\" serve $DROP_SERVE_ARGS", bin.display()),
        format!("StandardOutput=append:{}/logs/server.log", home.display()),
        "Restart=on-failure".into(),
        "KillMode=process".into(),
    ] {
        assert!(unit.lines().any(|l| l == line), "no `{line}` in:\n{unit}");
    }
    let calls = || std::fs::read_to_string(machine.tools.path().join("systemctl.calls")).unwrap();
    assert!(calls().contains("--user daemon-reload"));
    let again = machine.script_ok("install.sh");
    assert!(again.contains("systemd: already installed at "), "{again}");

    let started = machine.drop_cmd("start --port 0 --host 127.0.0.1 --no-tunnel");
    let text = stdout_of(&started);
    assert_eq!(text.lines().count(), 1, "no auto-restart note: {started:?}");
    let port = drop_tests::started_port(&text).expect("a port");
    assert_eq!(get(port, "/robots.txt").status, 200);
    let unit_pid = std::fs::read_to_string(machine.tools.path().join("drop.service.pid")).unwrap();
    assert_eq!(
        machine.server_pid(),
        unit_pid.trim().parse().ok(),
        "the unit runs the server"
    );
    assert!(calls().contains("--user start drop.service"));

    assert_eq!(
        stdout_of(&machine.drop_cmd("stop")).trim(),
        "Server stopped."
    );
    assert!(calls().contains("--user stop drop.service"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port closed"
    );

    let removed = machine.script_ok("uninstall.sh");
    assert!(!unit_path.exists(), "{removed}");
}

/// A server that fails under the unit is reported with its own error and
/// the unit is stopped, so that systemd does not restart it over and over.
#[test]
fn a_server_failing_under_the_unit_is_reported_and_stopped() {
    let machine = Machine::new(Systemd::Working)
        .env("DROP_CLOUDFLARED_URL", &Downloads::offline())
        .env("DROP_INSTALL_OS", "linux");
    machine.script_ok("install.sh");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = machine.drop_cmd(&format!("start --port {port}"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("Error: port {port} is already in use")),
        "{err}"
    );
    let calls = std::fs::read_to_string(machine.tools.path().join("systemctl.calls")).unwrap();
    assert_eq!(calls.lines().next_back(), Some("--user stop drop.service"));
}
