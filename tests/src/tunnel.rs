//! Helpers for tests of `drop-tunnel` against the fake cloudflared: a temp
//! directory for its state and records, its knobs, and the processes it
//! started; for named tunnels, a home with a login certificate and the
//! fake's Cloudflare account (its zone, tunnels and DNS records), which a
//! test can change as the dashboard would.

use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use drop_tunnel::{CertificateSearch, Cloudflared, CloudflaredConfig, NamedTunnels};
use tempfile::TempDir;

/// The zone id in the certificates [`FakeCloudflared::logged_in`] writes.
pub const ZONE_ID: &str = "7b0a4d77dfb881c1a3b7d61ea9443e19";
/// The account id in them.
pub const ACCOUNT_ID: &str = "abcdabcdabcdabcd1234567890abcdef";
/// The API token in them.
pub const API_TOKEN: &str = "test-service-key";

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

    /// The ingress rules the fake process `pid` was started with, as
    /// (hostname, service); the catch-all rule's hostname is `""`.
    pub fn ingress_of(&self, pid: u32) -> Vec<(String, String)> {
        let records = self.records();
        let Some(record) = records
            .iter()
            .find(|r| r["pid"] == pid && r.get("ingress").is_some())
        else {
            return Vec::new();
        };
        record["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|rule| {
                let text = |key: &str| rule[key].as_str().unwrap_or_default().to_owned();
                (text("hostname"), text("service"))
            })
            .collect()
    }

    /// The subcommand each start ran (`create`, `list`, `route`, `run`…),
    /// `None` for a quick tunnel.
    pub fn subcommands(&self) -> Vec<Option<String>> {
        self.starts()
            .iter()
            .map(|args| {
                let known = ["create", "list", "route", "run", "delete", "token", "login"];
                args.iter().find(|a| known.contains(&a.as_str())).cloned()
            })
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

/// Named tunnels: the fake logged in to a Cloudflare account.
impl FakeCloudflared {
    /// The fake logged in to an account whose domain is `zone`: `HOME`
    /// for cloudflared holds `~/.cloudflared/cert.pem` (its zone id,
    /// account id and API token), and the account (`FAKE_CLOUDFLARED_ACCOUNT`)
    /// knows the zone by name.
    pub fn logged_in(zone: &str) -> Self {
        let mut fake = FakeCloudflared::new();
        for (key, value) in log_in(fake.dir.path(), zone) {
            fake = fake.env(key, &value);
        }
        fake
    }

    /// The home cloudflared sees (`HOME`).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Where `cloudflared tunnel login` would have put the certificate.
    pub fn certificate(&self) -> PathBuf {
        self.home().join(".cloudflared/cert.pem")
    }

    /// Writes `text` as the login certificate.
    pub fn write_certificate(&self, text: &str) {
        let path = self.certificate();
        std::fs::create_dir_all(path.parent().unwrap()).expect("~/.cloudflared");
        std::fs::write(path, text).expect("cert.pem written");
    }

    /// Management of named tunnels with this fake, finding the certificate
    /// where cloudflared would in its home.
    pub fn named_tunnels(&self) -> NamedTunnels {
        let search = CertificateSearch::cloudflared_defaults(Some(&self.home()));
        NamedTunnels::new(self.config(), search)
    }

    /// The account as the fake's API holds it.
    pub fn account(&self) -> serde_json::Value {
        let mut seen = serde_json::Value::Null;
        self.edit_account(|account| seen = account.clone());
        seen
    }

    /// Changes the account under the lock the fakes take.
    pub fn edit_account(&self, change: impl FnOnce(&mut serde_json::Value)) {
        edit_account(self.dir.path(), change);
    }

    /// Deletes tunnel `id` as the Cloudflare dashboard would: the account
    /// no longer has it; its credentials stay on this machine.
    pub fn delete_in_dashboard(&self, id: &str) {
        self.edit_account(|account| {
            for tunnel in account["tunnels"].as_array_mut().into_iter().flatten() {
                if tunnel["id"] == id {
                    tunnel["deleted_at"] = serde_json::json!("2026-08-20T12:00:00Z");
                }
            }
        });
    }

    /// Adds a DNS record to the account, as the dashboard would.
    pub fn add_dns_record(&self, name: &str, kind: &str, content: &str) {
        self.edit_account(|account| {
            if !account["dns"].is_array() {
                account["dns"] = serde_json::json!([]);
            }
            let record = serde_json::json!({ "name": name, "type": kind, "content": content });
            account["dns"].as_array_mut().unwrap().push(record);
        });
    }

    /// The account's DNS records, as (name, type, content).
    pub fn dns_records(&self) -> Vec<(String, String, String)> {
        let account = self.account();
        account["dns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
                (text("name"), text("type"), text("content"))
            })
            .collect()
    }
}

/// A login certificate as `cloudflared tunnel login` writes it: a PEM
/// block `ARGO TUNNEL TOKEN` holding the JSON of its zone id, account id
/// and API token.
pub fn certificate_text(zone_id: &str, account_id: &str, api_token: &str) -> String {
    let token = serde_json::json!({
        "zoneID": zone_id,
        "accountID": account_id,
        "apiToken": api_token,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(token.to_string());
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN ARGO TUNNEL TOKEN-----\n{}\n-----END ARGO TUNNEL TOKEN-----\n",
        lines.join("\n")
    )
}

/// Logs the fakes in under `root`, to an account whose domain is `zone`:
/// `<root>/home/.cloudflared/cert.pem` (its zone id, account id and API
/// token) and the account in `<root>/account`. Returns the variables that
/// point cloudflared there (`HOME`, `FAKE_CLOUDFLARED_ACCOUNT`).
pub fn log_in(root: &Path, zone: &str) -> Vec<(&'static str, String)> {
    let home = root.join("home");
    let certificate = home.join(".cloudflared/cert.pem");
    std::fs::create_dir_all(certificate.parent().unwrap()).expect("~/.cloudflared");
    std::fs::write(
        &certificate,
        certificate_text(ZONE_ID, ACCOUNT_ID, API_TOKEN),
    )
    .expect("cert.pem written");
    edit_account(root, |account| {
        *account = serde_json::json!({
            "account_id": ACCOUNT_ID,
            "api_token": API_TOKEN,
            "zones": { ZONE_ID: zone },
        });
    });
    let text = |p: &Path| p.to_str().expect("a UTF-8 temp path").to_owned();
    vec![
        ("HOME", text(&home)),
        ("FAKE_CLOUDFLARED_ACCOUNT", text(&root.join("account"))),
    ]
}

/// Changes the fake account under `<root>/account`, under the lock the
/// fakes take.
pub fn edit_account(root: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    with_account_in(&root.join("account"), change);
}

/// Reads the fake account in `dir` (`{}` when there is none), lets
/// `change` see and change it, and writes it back when it changed, all
/// under an exclusive lock: the one way the fakes and the tests touch it.
pub fn with_account_in<T>(dir: &Path, change: impl FnOnce(&mut serde_json::Value) -> T) -> T {
    std::fs::create_dir_all(dir).expect("account folder");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("account.json"))
        .expect("account file");
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).expect("account lock");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("account read");
    let mut account = serde_json::from_str(&text).unwrap_or(serde_json::json!({}));
    let before = account.clone();
    let outcome = change(&mut account);
    if account != before {
        let text = serde_json::to_string_pretty(&account).expect("account JSON");
        file.set_len(0).expect("account truncated");
        file.rewind().expect("account rewound");
        file.write_all(text.as_bytes()).expect("account written");
    }
    outcome
}

/// Longer than any tunnel event should take to come.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The next event but `Opening`, which comes before every attempt.
pub async fn next_event(events: &mut drop_tunnel::TunnelEvents) -> drop_tunnel::TunnelEvent {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("an event in time")
            .expect("the watchdog runs");
        if !matches!(event, drop_tunnel::TunnelEvent::Opening { .. }) {
            return event;
        }
    }
}

/// The events of a tunnel whose edge connection is lost for good: it is
/// left to reconnect, then replaced as unhealthy.
pub async fn lost_for_good(events: &mut drop_tunnel::TunnelEvents) {
    use drop_tunnel::{DownReason, TunnelEvent};
    let event = next_event(events).await;
    assert!(
        matches!(event, TunnelEvent::Reconnecting { .. }),
        "{event:?}"
    );
    let TunnelEvent::Down { reason, .. } = next_event(events).await else {
        panic!("down");
    };
    assert!(matches!(reason, DownReason::Unhealthy(_)), "{reason:?}");
}
