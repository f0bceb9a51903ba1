//! Helpers for end-to-end tests of the real `drop` binary: a throwaway drop
//! home, the binary run inside it, and a raw HTTP/1.1 client that sends paths
//! exactly as written, with [`login`] on top; the page server run
//! in-process ([`engine`]); plus what the tunnel tests need around the fake
//! `cloudflared` this package builds, with stand-ins for public DNS and
//! Cloudflare's edge ([`dns`]); the real cloudflared run offline in a
//! network namespace of its own ([`rig`]); the Python drop 0.2
//! installed in a venv for upgrade tests ([`python_drop`]); and real dev
//! servers (Vite, Django, Flask) installed once per machine
//! ([`dev_servers`]).

pub mod dev_servers;
pub mod dns;
pub mod engine;
pub mod http;
pub mod login;
pub mod python_drop;
pub mod rig;
pub mod tunnel;

pub use drop_core::supervise::process::{ProcessId, Signal, group_members};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The `drop` binary Cargo built beside this test.
pub fn drop_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/drop
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("drop"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        bin.display()
    );
    bin
}

/// A temporary drop home and a working folder; stops its server when dropped.
pub struct DropEnv {
    pub home: TempDir,
    pub work: TempDir,
    envs: Vec<(String, String)>,
    /// The command every `drop` runs under (e.g. `ip netns exec NAME`).
    launcher: Vec<String>,
}

impl Default for DropEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl DropEnv {
    pub fn new() -> Self {
        DropEnv {
            home: tempfile::tempdir().expect("temp home"),
            work: tempfile::tempdir().expect("temp work dir"),
            envs: Vec::new(),
            launcher: Vec::new(),
        }
    }

    /// Adds an environment variable to every command run from now on.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Runs every command from now on under `launcher`, which runs the
    /// command line that follows it (`ip netns exec NAME`).
    pub fn within(mut self, launcher: &[&str]) -> Self {
        self.launcher = launcher.iter().map(|&word| word.to_owned()).collect();
        self
    }

    /// A `drop` command in this home, run from the work folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = match self.launcher.split_first() {
            None => Command::new(drop_bin()),
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(drop_bin());
                command
            }
        };
        command
            .args(args)
            .current_dir(self.work.path())
            .env("DROP_HOME", self.home.path())
            .env("DROP_BIND", "127.0.0.1")
            .env_remove("DROP_HEADER_TIMEOUT_MS")
            // Never the internet: NAT detection and tunnel URL checks ask a
            // closed local port unless a test points them at its own
            // stand-ins (`dns`).
            .env("DROP_IP_ECHO_URLS", "http://127.0.0.1:9/")
            .env("DROP_DOH_URLS", "http://127.0.0.1:9/dns-query")
            .env("DROP_TUNNEL_EDGE", "http://127.0.0.1:9");
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        command
    }

    /// Runs `drop` and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("drop runs")
    }

    /// Runs `drop`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "drop {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs `drop`, asserts it failed with exit status 1, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "drop {args:?}: {out:?}");
        stderr(&out)
    }

    /// Runs `drop` with `--json` output and parses it.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("one JSON document")
    }

    /// The command line that registers an app named `name` in a folder of
    /// its own in the work dir, running `command` on `port`, with `flags`.
    pub fn add_app_args(
        &self,
        name: &str,
        command: &str,
        port: u16,
        flags: &[&str],
    ) -> Vec<String> {
        let dir = self.work.path().join(name);
        std::fs::create_dir_all(&dir).expect("the app's folder");
        let mut args: Vec<String> = ["add", dir.to_str().expect("a UTF-8 temp path"), "--run"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend([
            command.to_owned(),
            "--port".into(),
            port.to_string(),
            "--name".into(),
            name.into(),
        ]);
        args.extend(flags.iter().map(|f| f.to_string()));
        args
    }

    /// Registers the app (see [`DropEnv::add_app_args`]); what `add` printed.
    pub fn add_app_text(&self, name: &str, command: &str, port: u16, flags: &[&str]) -> String {
        let args = self.add_app_args(name, command, port, flags);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Registers the app (see [`DropEnv::add_app_args`]); its id.
    pub fn add_app(&self, name: &str, command: &str, port: u16, flags: &[&str]) -> String {
        let mut args = self.add_app_args(name, command, port, flags);
        args.push("--json".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.json(&args)["id"].as_str().expect("an id").to_owned()
    }

    /// Starts the server on a free loopback port and returns the port.
    pub fn start(&self) -> u16 {
        let out = self.ok(&["start", "--port", "0", "--host", "127.0.0.1", "--no-tunnel"]);
        out.lines()
            .next()
            .and_then(started_port)
            .unwrap_or_else(|| panic!("unexpected start output: {out}"))
    }

    /// Publishes `path` and returns the page's `(id, url path)`.
    pub fn add(&self, path: &Path, extra: &[&str]) -> (String, String) {
        let mut args = vec!["add", path.to_str().expect("utf-8 path"), "--json"];
        args.extend_from_slice(extra);
        let doc = self.json(&args);
        let url = doc["url"].as_str().expect("url").to_owned();
        let path = url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .expect("url path");
        (doc["id"].as_str().expect("id").to_owned(), path)
    }

    /// A page's (or app's) entry in `list --all --json`, if it is listed.
    pub fn listed(&self, id: &str) -> Option<serde_json::Value> {
        let doc = self.json(&["list", "--all", "--json"]);
        doc["pages"]
            .as_array()
            .expect("a list of pages")
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
    }

    /// The pid `list --all --json` gives a running app.
    pub fn app_pid(&self, id: &str) -> u32 {
        let listed = self.listed(id).expect("the app is listed");
        listed["pid"].as_u64().expect("a running app has a pid") as u32
    }

    /// The server's pid from `server.json`, if one is recorded.
    pub fn server_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.home.path().join("server.json")).ok()?;
        let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
        doc["pid"].as_u64().map(|p| p as u32)
    }

    /// Whether no process holds the home's `server.lock`. After a kill, a
    /// daemon's main thread shows as a zombie (so [`alive`] is false) while
    /// its other threads are still exiting and holding its files: wait for
    /// this too before starting another daemon.
    pub fn server_lock_free(&self) -> bool {
        let Ok(lock) = std::fs::File::open(self.home.path().join("server.lock")) else {
            return true;
        };
        let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        rustix::fs::flock(&lock, exclusive).is_ok()
    }

    /// The server's log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("logs/server.log")).unwrap_or_default()
    }

    /// Writes a file under the work folder, creating parents.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.work.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }
}

impl DropEnv {
    /// The pids of the apps recorded as running in this home.
    pub fn app_pids(&self) -> Vec<u32> {
        self.app_processes().iter().map(|p| p.pid).collect()
    }

    /// The apps recorded as running in this home.
    pub fn app_processes(&self) -> Vec<ProcessId> {
        let Ok(text) = std::fs::read_to_string(self.home.path().join("pages.json")) else {
            return Vec::new();
        };
        let pages: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let Some(map) = pages.as_object() else {
            return Vec::new();
        };
        map.values()
            .filter(|r| r["type"] == "app")
            .filter_map(|r| {
                let pid = r["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
                ProcessId::recorded(pid, r["pid_start_time"].as_u64())
            })
            .collect()
    }
}

/// Whether `pid` is a live process (a zombie is not).
/// What a finished process wrote to stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn alive(pid: u32) -> bool {
    ProcessId::of(pid).is_some()
}

/// Sends SIGKILL to `pid`, a process this test started or its drop
/// recorded, if it still runs.
pub fn kill(pid: u32) {
    if let Some(process) = ProcessId::of(pid) {
        process.signal(Signal::Kill);
    }
}

/// A local stand-in for the public IP-echo services: every request gets
/// `body`. Point drop at it with `DROP_IP_ECHO_URLS`.
pub struct EchoServer {
    pub port: u16,
}

impl EchoServer {
    /// Serves `body` on a free loopback port until the test process ends.
    pub fn start(body: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an echo port");
        let port = listener.local_addr().expect("address").port();
        let body = body.to_owned();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                use std::io::{Read, Write};
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        EchoServer { port }
    }

    /// The URL to give `DROP_IP_ECHO_URLS`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// The port of a `Server started: http://HOST:PORT[ (…)]` line.
pub fn started_port(line: &str) -> Option<u16> {
    let url = line.trim().strip_prefix("Server started: http://")?;
    url.split(' ').next()?.rsplit(':').next()?.parse().ok()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Drop for DropEnv {
    fn drop(&mut self) {
        let pid = self.server_pid();
        let apps = self.app_processes();
        let _ = self.command(&["stop"]).output();
        // Backstops if `stop` itself is what broke: these are processes this
        // test's drop started and recorded.
        if let Some(pid) = pid {
            kill(pid);
        }
        for app in apps {
            app.terminate_group(std::time::Duration::ZERO);
        }
    }
}

/// Asks `probe` every 20 ms until it finds something, for at most
/// `within`; fails the test naming `what` after that.
pub fn wait_for<T>(
    what: &str,
    within: std::time::Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Waits until `pid`, a command that polls (`drop wait`, `drop logs -f`),
/// sleeps between two looks: then it has done what comes before its first
/// look, such as noting when it began or where the log ended. The kernel
/// names where a process sleeps in `/proc/PID/wchan`.
pub fn wait_until_polling(what: &str, pid: u32) {
    wait_for(what, std::time::Duration::from_secs(10), || {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).ok()?;
        wchan.contains("nanosleep").then_some(())
    });
}
