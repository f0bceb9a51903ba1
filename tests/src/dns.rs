//! Stand-ins for the public internet a tunnel URL goes through, on
//! loopback: a DNS-over-HTTPS resolver that publishes the fake
//! cloudflared's hostnames only after a delay, as Cloudflare's DNS does a
//! few seconds after the URL is printed; and an "edge" that forwards a
//! request by its `Host` to the origin the fake cloudflared was given, or
//! answers 530 as Cloudflare does when no tunnel is connected.
//!
//! Both read the fake's record files (`FAKE_CLOUDFLARED_RECORD`), where it
//! notes each URL it printed and the origin it serves, or for a named
//! tunnel its ingress rules and when it connected.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the fake cloudflared processes printed and serve.
#[derive(Debug, Clone, Default)]
pub struct FakeRecords {
    paths: Arc<Mutex<Vec<PathBuf>>>,
}

/// One tunnel a fake cloudflared opened.
#[derive(Debug, Clone)]
pub struct Opened {
    /// Its hostname.
    pub host: String,
    /// Its process.
    pub pid: u32,
    /// When it printed the URL, ms since the epoch.
    pub at_ms: u64,
    /// The origin it forwards to (`http://127.0.0.1:PORT`).
    pub origin: Option<String>,
    /// The `Host` it sends the origin instead of the hostname
    /// (`--http-host-header`, or a rule's `httpHostHeader`).
    pub host_header: Option<String>,
}

impl FakeRecords {
    /// Records read from these files (more can be added later).
    pub fn new(paths: &[PathBuf]) -> Self {
        let records = FakeRecords::default();
        records.paths.lock().unwrap().extend(paths.iter().cloned());
        records
    }

    /// Reads `path` too.
    pub fn add(&self, path: PathBuf) {
        self.paths.lock().unwrap().push(path);
    }

    /// Every line of every record file, oldest first within each file.
    fn lines(&self) -> Vec<serde_json::Value> {
        self.paths
            .lock()
            .unwrap()
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect::<Vec<serde_json::Value>>()
            })
            .collect()
    }

    /// The tunnel serving this hostname, if a fake opened one: the quick
    /// tunnel that printed it, or the newest named tunnel whose ingress
    /// routes it and that connected (its origin is that rule's service).
    pub fn find(&self, host: &str) -> Option<Opened> {
        let lines = self.lines();
        let connected = |pid: &serde_json::Value| {
            lines
                .iter()
                .find(|r| r["pid"] == *pid && r.get("connected").is_some())
                .and_then(|r| r["at_ms"].as_u64())
        };
        let quick = lines.iter().rev().find(|r| {
            r["url"]
                .as_str()
                .is_some_and(|u| u.trim_start_matches("https://") == host)
        });
        if let Some(url) = quick {
            let pid = url["pid"].as_u64()? as u32;
            let served = lines
                .iter()
                .find(|r| r["pid"] == pid && r.get("origin").is_some());
            let text = |key: &str| served.and_then(|r| r[key].as_str().map(str::to_owned));
            return Some(Opened {
                host: host.to_owned(),
                pid,
                at_ms: url["at_ms"].as_u64().unwrap_or(0),
                origin: text("origin"),
                host_header: text("host_header"),
            });
        }
        lines.iter().rev().find_map(|r| {
            let rule = r["ingress"]
                .as_array()?
                .iter()
                .find(|rule| rule["hostname"] == host)?;
            let at_ms = connected(&r["pid"])?;
            Some(Opened {
                host: host.to_owned(),
                pid: r["pid"].as_u64()? as u32,
                at_ms,
                origin: rule["service"].as_str().map(str::to_owned),
                host_header: rule["httpHostHeader"].as_str().map(str::to_owned),
            })
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A DNS-over-HTTPS resolver (the JSON API) on loopback.
pub struct PublicDns {
    /// Its port.
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
    queries: Arc<AtomicU64>,
}

impl PublicDns {
    /// A resolver that knows the fakes' hostnames `delay` after they were
    /// printed, and answers NXDOMAIN before.
    pub fn start(records: FakeRecords, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a DNS port");
        let port = listener.local_addr().expect("address").port();
        let delay_ms = Arc::new(AtomicU64::new(delay.as_millis() as u64));
        let queries = Arc::new(AtomicU64::new(0));
        let (delay, count) = (delay_ms.clone(), queries.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (records, delay, count) = (records.clone(), delay.clone(), count.clone());
                std::thread::spawn(move || {
                    answer_dns(stream, &records, delay.load(Ordering::SeqCst), &count)
                });
            }
        });
        PublicDns {
            port,
            delay_ms,
            queries,
        }
    }

    /// The URL to give `DROP_DOH_URLS`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/dns-query", self.port)
    }

    /// Publishes names only this long after they were printed; `None`: never.
    pub fn set_delay(&self, delay: Option<Duration>) {
        let ms = delay.map_or(u64::MAX, |d| d.as_millis() as u64);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// How many questions it answered.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }
}

fn answer_dns(mut stream: TcpStream, records: &FakeRecords, delay_ms: u64, count: &AtomicU64) {
    let Some((target, _)) = read_head(&mut stream) else {
        return;
    };
    count.fetch_add(1, Ordering::SeqCst);
    let name = target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("name="))
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_owned();
    let published = records
        .find(&name)
        .is_some_and(|o| now_ms() >= o.at_ms.saturating_add(delay_ms));
    let body = if published {
        serde_json::json!({
            "Status": 0,
            "Answer": [{"name": format!("{name}."), "type": 1, "TTL": 300, "data": "127.0.0.1"}],
        })
    } else {
        serde_json::json!({ "Status": 3, "Authority": [] })
    };
    respond(&mut stream, 200, "application/dns-json", &body.to_string());
}

/// Cloudflare's edge as a tunnel's visitors meet it, on loopback.
pub struct Edge {
    /// Its port.
    pub port: u16,
    refusing: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
}

impl Edge {
    /// An edge that forwards each request to the origin of the tunnel named
    /// by its `Host`, while that tunnel's process lives.
    pub fn start(records: FakeRecords) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an edge port");
        let port = listener.local_addr().expect("address").port();
        let refusing = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let (refuse, count) = (refusing.clone(), refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (records, refuse, count) = (records.clone(), refuse.clone(), count.clone());
                std::thread::spawn(move || {
                    forward(stream, &records, refuse.load(Ordering::SeqCst), &count)
                });
            }
        });
        Edge {
            port,
            refusing,
            refused,
        }
    }

    /// The URL to give `DROP_TUNNEL_EDGE`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers 530 to everything (no tunnel connected) while `true`.
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// How many requests it answered 530 so far.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

fn forward(mut stream: TcpStream, records: &FakeRecords, refusing: bool, refused: &AtomicU64) {
    let Some((target, head)) = read_head(&mut stream) else {
        return;
    };
    let host = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("host").then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let opened = records
        .find(&host)
        .filter(|o| !refusing && crate::alive(o.pid));
    let host_header = opened.as_ref().and_then(|o| o.host_header.clone());
    let Some(origin) = opened.and_then(|o| o.origin) else {
        let page = "error code: 1033";
        respond(&mut stream, 530, "text/plain; charset=UTF-8", page);
        refused.fetch_add(1, Ordering::SeqCst);
        return;
    };
    let addr = origin.trim_start_matches("http://").trim_end_matches('/');
    let Ok(mut upstream) = TcpStream::connect(addr) else {
        return respond(&mut stream, 502, "text/plain", "bad gateway");
    };
    let _ = upstream.set_read_timeout(Some(Duration::from_secs(5)));
    // As cloudflared does: the visitor's headers go along; a Host of the
    // tunnel's choice replaces the visitor's, which goes as
    // X-Forwarded-Host.
    let passed: String = head
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let name = l.split(':').next().unwrap_or_default().trim();
            !["host", "connection"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    let sent_host = match &host_header {
        Some(rewritten) => format!("Host: {rewritten}\r\nX-Forwarded-Host: {host}"),
        None => format!("Host: {host}"),
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\n{sent_host}\r\n{passed}CF-Connecting-IP: 203.0.113.50\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
    );
    if upstream.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = upstream.read_to_end(&mut answer);
    let _ = stream.write_all(&answer);
}

/// The request target and the whole head of one HTTP request.
fn read_head(stream: &mut TcpStream) -> Option<(String, String)> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split_whitespace().nth(1)?.to_owned();
    Some((target, head))
}

fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        502 => "Bad Gateway",
        _ => "Unknown",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}
