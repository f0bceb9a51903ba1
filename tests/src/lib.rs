//! Helpers for end-to-end tests of the real `drop` binary: a throwaway drop
//! home, the binary run inside it, and a raw HTTP/1.1 client that sends paths
//! exactly as written; plus what the tunnel tests need around the fake
//! `cloudflared` this package builds.

pub mod http;
pub mod tunnel;

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
        }
    }

    /// Adds an environment variable to every command run from now on.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// A `drop` command in this home, run from the work folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(drop_bin());
        command
            .args(args)
            .current_dir(self.work.path())
            .env("DROP_HOME", self.home.path())
            .env("DROP_BIND", "127.0.0.1")
            .env_remove("DROP_HEADER_TIMEOUT_MS");
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

    /// Runs `drop` with `--json` output and parses it.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("one JSON document")
    }

    /// Starts the server on a free loopback port and returns the port.
    pub fn start(&self) -> u16 {
        let out = self.ok(&["start", "--port", "0", "--host", "127.0.0.1"]);
        let url = out
            .lines()
            .next()
            .unwrap_or_default()
            .strip_prefix("Server started: http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected start output: {out}"));
        url.parse().expect("port")
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

    /// The server's pid from `server.json`, if one is recorded.
    pub fn server_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.home.path().join("server.json")).ok()?;
        let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
        doc["pid"].as_u64().map(|p| p as u32)
    }

    /// Writes a file under the work folder, creating parents.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.work.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }
}

impl Drop for DropEnv {
    fn drop(&mut self) {
        let pid = self.server_pid();
        let _ = self.command(&["stop"]).output();
        // Backstop if `stop` itself is what broke: the test started this pid.
        if let Some(pid) = pid
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) on a pid this test's server wrote; no memory is touched.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}
