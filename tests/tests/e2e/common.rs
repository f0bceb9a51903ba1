//! What the end-to-end tunnel tests share: a drop home behind a fake NAT,
//! with the fake cloudflared first on PATH and local stand-ins for public
//! DNS and Cloudflare's edge.

use std::time::Duration;

use drop_tests::dns::{Edge, FakeRecords, PublicDns};
use drop_tests::{DropEnv, EchoServer, free_port};

pub const FAKE: &str = env!("CARGO_BIN_EXE_fake-cloudflared");
pub const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");
/// What the echo says behind NAT: an address this machine does not have.
pub const NAT_ADDRESS: &str = "203.0.113.7";

/// A drop home with the fake cloudflared first on PATH (unless `with_fake`
/// is false), the IP echo answering `echo`, a record of every cloudflared
/// the fake ran, and public DNS (publishing at once unless told otherwise)
/// and an edge that know the fake's tunnels.
pub struct Phase3 {
    pub env: DropEnv,
    _echo: EchoServer,
    _bin: tempfile::TempDir,
    pub record: std::path::PathBuf,
    pub dns: PublicDns,
    pub edge: Edge,
    /// The fake Cloudflare account's folder, when logged in.
    pub account: Option<tempfile::TempDir>,
}

impl Phase3 {
    pub fn new(echo: &str, with_fake: bool, knobs: &[(&str, &str)]) -> Self {
        let bin = tempfile::tempdir().unwrap();
        if with_fake {
            std::os::unix::fs::symlink(FAKE, bin.path().join("cloudflared")).unwrap();
        }
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display());
        let echo = EchoServer::start(echo);
        let record = bin.path().join("spawns.jsonl");
        let fakes = FakeRecords::new(std::slice::from_ref(&record));
        let dns = PublicDns::start(fakes.clone(), Duration::ZERO);
        let edge = Edge::start(fakes);
        let mut env = DropEnv::new()
            .env("PATH", &path)
            .env("DROP_IP_ECHO_URLS", &echo.url())
            .env("FAKE_CLOUDFLARED_RECORD", record.to_str().unwrap())
            .env("DROP_STOP_GRACE_MS", "1000")
            .env("DROP_DOH_URLS", &dns.url())
            .env("DROP_TUNNEL_EDGE", &edge.url())
            // These resolvers serve this test alone: no cache to spare.
            .env("DROP_TUNNEL_DNS_SETTLE_MS", "1");
        for (k, v) in knobs {
            env = env.env(k, v);
        }
        Phase3 {
            env,
            _echo: echo,
            _bin: bin,
            record,
            dns,
            edge,
            account: None,
        }
    }

    /// Behind NAT, with the fakes logged in to a Cloudflare account whose
    /// domain is `zone` (under this world's own folder).
    pub fn logged_in(zone: &str, knobs: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let login = drop_tests::tunnel::log_in(root.path(), zone);
        let mut all: Vec<(&str, &str)> = login.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(knobs);
        let mut world = Phase3::new(NAT_ADDRESS, true, &all);
        world.account = Some(root);
        world
    }

    /// Changes the fake Cloudflare account (as its dashboard would).
    pub fn edit_account(&self, change: impl FnOnce(&mut serde_json::Value)) {
        let root = self.account.as_ref().expect("a logged-in world");
        drop_tests::tunnel::edit_account(root.path(), change);
    }

    /// The fake Cloudflare account's tunnels that are not deleted.
    pub fn live_tunnels(&self) -> Vec<serde_json::Value> {
        let mut live = Vec::new();
        self.edit_account(|account| {
            live = (account["tunnels"].as_array().into_iter().flatten())
                .filter(|t| t["deleted_at"].is_null())
                .cloned()
                .collect();
        });
        live
    }

    /// Opens `url` (`https://host/path`) as the human would: through the
    /// edge, which finds the tunnel by the hostname.
    pub fn open(&self, url: &str) -> drop_tests::http::Response {
        let rest = url.strip_prefix("https://").expect("an https URL");
        let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        let raw = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        drop_tests::http::send_raw(self.edge.port, raw.as_bytes())
    }

    pub fn behind_nat() -> Self {
        Phase3::new(NAT_ADDRESS, true, &[])
    }

    pub fn start(&self, flags: &[&str]) -> String {
        let mut args = vec!["start", "--port", "0"];
        args.extend_from_slice(flags);
        self.env.ok(&args)
    }

    /// Registers a test app in its own folder on a free port, named `name`.
    pub fn add_app(&self, name: &str) -> String {
        let port = free_port();
        self.env
            .add_app(name, &format!("exec {TEST_APP} {port}"), port, &[])
    }

    /// Every line the fake recorded, oldest first.
    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The arguments of every cloudflared the fake ran, oldest first.
    pub fn started_args(&self) -> Vec<Vec<String>> {
        self.records()
            .iter()
            .filter_map(|r| r["args"].as_array().cloned())
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .collect()
    }

    /// Every cloudflared the fake ran, by pid.
    pub fn spawned(&self) -> Vec<u32> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("args").is_some())
            .filter_map(|v| v["pid"].as_u64().map(|p| p as u32))
            .collect()
    }

    pub fn tunnel_json(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.env.home.path().join("tunnel.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn record_of(&self, id: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.env.home.path().join("pages.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()[id].clone()
    }
}

pub fn is_quick_tunnel(url: &str) -> bool {
    url.starts_with("https://") && url.ends_with(".trycloudflare.com") && !url.contains("api.")
}

pub use drop_tests::wait_for;
