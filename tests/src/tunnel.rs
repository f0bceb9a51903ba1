//! Helpers for tests of `drop-tunnel` against the fake cloudflared: a temp
//! directory for its state and records, its knobs, and the processes it
//! started.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drop_tunnel::{Cloudflared, CloudflaredConfig};
use tempfile::TempDir;

/// The origin the tunnels point at; the fake forwards nothing, so nothing
/// needs to listen there.
pub const LOCAL: &str = "127.0.0.1:8080";

/// [`LOCAL`] as an address.
pub fn local() -> SocketAddr {
    LOCAL.parse().expect("a socket address")
}

/// The fake `cloudflared` Cargo built beside this test.
pub fn fake_cloudflared_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/fake-cloudflared
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("fake-cloudflared"))
        .expect("target directory");
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

pub use crate::alive;

/// Waits up to `limit` for `pid` to be gone.
pub fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// The newest `cloudflared-<pid>.log` in `dir`: each tunnel process has a
/// log of its own.
pub fn newest_log(dir: &Path) -> String {
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("cloudflared-") && name.ends_with(".log")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    newest
        .and_then(|e| std::fs::read_to_string(e.path()).ok())
        .unwrap_or_default()
}

/// One test's fake cloudflared: its knobs, state directory and records.
pub struct FakeCloudflared {
    pub dir: TempDir,
    env: Vec<(String, String)>,
}

impl Default for FakeCloudflared {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCloudflared {
    pub fn new() -> Self {
        FakeCloudflared {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    /// Sets a knob (`FAKE_CLOUDFLARED_*`) for every start.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A configuration that runs the fake, finds nothing else, and records.
    pub fn config(&self) -> CloudflaredConfig {
        let mut env: Vec<_> = self.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        env.push(("FAKE_CLOUDFLARED_RECORD".into(), self.record_path().into()));
        let mut config = CloudflaredConfig::new(self.state_dir());
        config.binary = Some(fake_cloudflared_bin());
        config.search_path = Some("".into());
        config.start_timeout = Duration::from_secs(10);
        config.stop_grace = Duration::from_secs(2);
        config.env = env;
        config
    }

    pub fn provider(&self) -> Cloudflared {
        Cloudflared::new(self.config())
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The log of the newest tunnel process (`cloudflared-<pid>.log`).
    pub fn log(&self) -> String {
        newest_log(&self.state_dir())
    }

    /// The file the fake records its processes in (`FAKE_CLOUDFLARED_RECORD`).
    pub fn record_path(&self) -> PathBuf {
        self.dir.path().join("record.jsonl")
    }

    /// Every line the fake recorded, oldest first.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.record_path()).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).expect("a JSON record"))
            .collect()
    }

    /// The arguments of each start.
    pub fn starts(&self) -> Vec<Vec<String>> {
        self.records()
            .iter()
            .filter_map(|r| r["args"].as_array().cloned())
            .map(|args| {
                args.iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    /// The URL the fake process `pid` printed.
    pub fn url_of(&self, pid: u32) -> Option<String> {
        self.records()
            .iter()
            .find(|r| r["pid"] == pid && r.get("url").is_some())
            .and_then(|r| r["url"].as_str().map(str::to_owned))
    }

    /// How the fake process `pid` ended by itself or by a signal it
    /// handled: its exit code (`-9`: killed by a second signal).
    pub fn exit_of(&self, pid: u32) -> Option<i64> {
        self.records()
            .iter()
            .find(|r| r["pid"] == pid && r.get("exit").is_some())
            .and_then(|r| r["exit"].as_i64())
    }

    /// The URLs the fake printed, oldest first.
    pub fn urls(&self) -> Vec<String> {
        self.field("url")
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect()
    }

    /// Every process the fake ran: itself at each start, and its children.
    pub fn pids(&self) -> Vec<u32> {
        let records = self.records();
        let own = records
            .iter()
            .filter(|r| r.get("args").is_some())
            .map(|r| &r["pid"]);
        let children = records.iter().filter_map(|r| r.get("child"));
        own.chain(children)
            .map(|p| p.as_u64().expect("a pid") as u32)
            .collect()
    }

    fn field(&self, name: &str) -> impl Iterator<Item = serde_json::Value> {
        let name = name.to_owned();
        self.records()
            .into_iter()
            .filter_map(move |r| r.get(&name).cloned())
    }

    /// Asserts that no process the fake ran is left, allowing a moment for
    /// SIGKILLed ones to go.
    pub fn assert_no_process_left(&self) {
        for pid in self.pids() {
            assert!(
                gone_within(pid, Duration::from_secs(2)),
                "process {pid} is still running"
            );
        }
    }
}
