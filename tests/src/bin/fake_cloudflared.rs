//! A fake `cloudflared` that behaves like the real one (ARCHITECTURE.md,
//! "cloudflared, as drop relies on it"), without a network:
//! the same arguments, the same lines on stderr with the URL box, a
//! metrics server with `/quicktunnel` and `/ready` on `--metrics`, and a
//! graceful exit on SIGTERM or SIGINT. It forwards nothing: its URL is for
//! parsing and bookkeeping only.
//!
//! Knobs, all environment variables:
//! - `FAKE_CLOUDFLARED_MODE`: `ok` (default); `rate-limit` (the 429
//!   unmarshal lines, exit 1); `no-network` (`failed to request quick
//!   Tunnel … no such host`, exit 1); `uuid` (`invalid UUID length: 0`,
//!   exit 1); `hang` (never gets past the quick-tunnel request, so no URL);
//!   `quic-retry` (prints a URL, never registers, retries forever).
//! - `FAKE_CLOUDFLARED_REQUEST_MS`: how long the quick-tunnel request takes
//!   (default 100).
//! - `FAKE_CLOUDFLARED_REGISTER_DELAY_MS`: from the URL box to
//!   `Registered tunnel connection` (default 300; the real one takes ~1 s).
//! - `FAKE_CLOUDFLARED_EXIT_AFTER_SECS`: exit this long after starting
//!   (fractions allowed), with `FAKE_CLOUDFLARED_EXIT_CODE` (default 1).
//! - `FAKE_CLOUDFLARED_UNREADY_AFTER_MS`: this long after registering, lose
//!   the edge connection for good: `/ready` answers 503, the process lives.
//! - `FAKE_CLOUDFLARED_NO_METRICS=1`: no metrics server (the URL is then
//!   only in the log).
//! - `FAKE_CLOUDFLARED_OLD_BOX=1`: the box text from before 2021.8.4.
//! - `FAKE_CLOUDFLARED_PRECHECKS=1`: the connectivity pre-checks box of
//!   2026.5+ after registering (its wording is made up: no transcript of it was at hand).
//! - `FAKE_CLOUDFLARED_IGNORE_TERM=1`: log the signal but keep running, so
//!   only SIGKILL ends it.
//! - `FAKE_CLOUDFLARED_CHILD=1`: start a `sleep` child in its process group,
//!   as if cloudflared had started something.
//! - `FAKE_CLOUDFLARED_RECORD=path`: append JSON lines to `path`:
//!   `{"pid":…,"args":[…]}` at start, `{"pid":…,"child":…}`, `{"pid":…,"url":…}`.

use std::hash::BuildHasher;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

const VERSION_LINE: &str = "cloudflared version 2026.8.2 (built 2026-08-14T11:40 UTC)";
const DISCLAIMER: &str = "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps";
const NEW_HEADING: &str =
    "Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):";
const OLD_HEADING: &str = "Your Quick Tunnel has been created! Visit it at:";
const EDGE_IP: &str = "198.41.192.107";
const WORDS: [&str; 32] = [
    "seasonal",
    "deck",
    "organisms",
    "oklahoma",
    "solo",
    "younger",
    "truck",
    "river",
    "quiet",
    "amber",
    "lunar",
    "pixel",
    "harbor",
    "meadow",
    "copper",
    "violet",
    "canyon",
    "signal",
    "ticket",
    "marble",
    "orbit",
    "willow",
    "garnet",
    "falcon",
    "summit",
    "lemon",
    "bridge",
    "cotton",
    "ember",
    "glacier",
    "tango",
    "velvet",
];

/// The flags of `cloudflared tunnel` this fake understands.
#[derive(Debug, Default)]
struct Flags {
    url: Option<String>,
    metrics: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        args.first().map(String::as_str),
        Some("--version" | "-v" | "-V" | "version")
    ) {
        println!("{VERSION_LINE}");
        return ExitCode::SUCCESS;
    }
    record(&serde_json::json!({ "pid": std::process::id(), "args": args }));
    let Some(flags) = parse_flags(&args) else {
        eprintln!(
            "You did not specify any valid additional argument to the cloudflared tunnel command."
        );
        eprintln!();
        eprintln!(
            "If you are trying to run a Quick Tunnel then you need to explicitly pass the --url flag."
        );
        return ExitCode::from(1);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    ExitCode::from(runtime.block_on(run(flags)))
}

/// `tunnel` followed by flags, `--url` among them; `--flag value` or `--flag=value`.
fn parse_flags(args: &[String]) -> Option<Flags> {
    let mut rest = args.iter();
    if rest.next()? != "tunnel" {
        return None;
    }
    let mut flags = Flags::default();
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let takes_value =
            ["--url", "--metrics", "--config", "--loglevel", "--protocol"].contains(&name);
        let value = if takes_value {
            inline.or_else(|| rest.next().cloned())
        } else {
            None
        };
        match name {
            "--url" => flags.url = value,
            "--metrics" => flags.metrics = value,
            _ => {}
        }
    }
    flags.url.is_some().then_some(flags)
}

async fn run(flags: Flags) -> u8 {
    if knob("FAKE_CLOUDFLARED_CHILD").is_some() {
        start_child();
    }
    if let Some(secs) = knob("FAKE_CLOUDFLARED_EXIT_AFTER_SECS").and_then(|s| s.parse::<f64>().ok())
    {
        tokio::spawn(exit_after(Duration::from_secs_f64(secs)));
    }
    log("INF", DISCLAIMER);
    log("INF", "Requesting new quick Tunnel on trycloudflare.com...");
    sleep_ms(knob_ms("FAKE_CLOUDFLARED_REQUEST_MS", 100)).await;
    let mode = knob("FAKE_CLOUDFLARED_MODE").unwrap_or_else(|| "ok".into());
    match mode.as_str() {
        "rate-limit" => {
            log(
                "ERR",
                "Error unmarshaling QuickTunnel response: error code: 1015 error=\"invalid character 'e' looking for beginning of value\" status_code=\"429 Too Many Requests\"",
            );
            bare(
                "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value",
            )
        }
        "no-network" => bare(
            "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com on 127.0.0.53:53: no such host",
        ),
        "uuid" => bare("failed to parse quick Tunnel ID: invalid UUID length: 0"),
        // Still inside the request: no signal handler yet, as in the real
        // one, so SIGTERM kills at once.
        "hang" => std::future::pending().await,
        "quic-retry" => tunnel(&flags, false).await,
        _ => tunnel(&flags, true).await,
    }
}

/// What the metrics server serves.
struct State {
    hostname: String,
    connector: String,
    ready: AtomicBool,
}

/// The tunnel exists: print the box, serve metrics, register (or retry
/// forever), and wait for a signal.
async fn tunnel(flags: &Flags, registers: bool) -> u8 {
    let hostname = random_hostname();
    let url = format!("https://{hostname}");
    let heading = if knob("FAKE_CLOUDFLARED_OLD_BOX").is_some() {
        OLD_HEADING
    } else {
        NEW_HEADING
    };
    print_box(&[heading, &url]);
    record(&serde_json::json!({ "pid": std::process::id(), "url": url }));
    let state = Arc::new(State {
        hostname,
        connector: uuid(),
        ready: AtomicBool::new(false),
    });
    print_settings(flags, &state);
    if knob("FAKE_CLOUDFLARED_NO_METRICS").is_none() {
        let Some(listener) = bind_metrics(flags.metrics.as_deref()).await else {
            log(
                "ERR",
                "Error opening metrics server listener error=\"listen tcp: address already in use\"",
            );
            return 1;
        };
        let addr = listener.local_addr().expect("bound address");
        log("INF", &format!("Starting metrics server on {addr}/metrics"));
        tokio::spawn(serve_metrics(listener, state.clone()));
    }
    log(
        "INF",
        &format!(
            "Tunnel connection curve preferences: [X25519MLKEM768 CurveP256] connIndex=0 event=0 ip={EDGE_IP}"
        ),
    );
    let timeline = async {
        if registers {
            connect(&state).await
        } else {
            retry_quic_forever().await
        }
    };
    tokio::select! {
        _ = timeline => unreachable!("the timeline never ends"),
        code = until_signalled(&state) => code,
    }
}

fn print_settings(flags: &Flags, state: &State) {
    let url = flags.url.as_deref().unwrap_or_default();
    for line in [
        "Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]".to_owned(),
        "Version 2026.8.2 (Checksum 4f1c9a0e5b7d)".to_owned(),
        "GOOS: linux, GOVersion: go1.24.6, GoArch: amd64".to_owned(),
        format!("Settings: map[ha-connections:1 no-autoupdate:true protocol:quic url:{url}]"),
        format!("Generated Connector ID: {}", state.connector),
        "Initial protocol quic".to_owned(),
        "ICMP proxy will use 10.0.0.5 as source for IPv4".to_owned(),
    ] {
        log("INF", &line);
    }
}

/// Registers after the delay; then maybe the pre-checks box, maybe a lost
/// connection. Never ends.
async fn connect(state: &State) {
    sleep_ms(knob_ms("FAKE_CLOUDFLARED_REGISTER_DELAY_MS", 300)).await;
    log(
        "INF",
        &format!(
            "Registered tunnel connection connIndex=0 connection={} event=0 ip={EDGE_IP} location=sjc08 protocol=quic",
            uuid()
        ),
    );
    state.ready.store(true, Ordering::SeqCst);
    if knob("FAKE_CLOUDFLARED_PRECHECKS").is_some() {
        sleep_ms(100).await;
        print_box(&[
            "CONNECTIVITY PRE-CHECKS",
            "https://api.trycloudflare.com/tunnel ........ reachable",
            "region1.v2.argotunnel.com:7844 (UDP) ......... reachable",
        ]);
    }
    if let Some(ms) = knob("FAKE_CLOUDFLARED_UNREADY_AFTER_MS").and_then(|s| s.parse().ok()) {
        sleep_ms(ms).await;
        state.ready.store(false, Ordering::SeqCst);
        log("ERR", "Connection terminated connIndex=0");
        retry_quic_forever().await;
    }
    std::future::pending().await
}

/// What cloudflared does when UDP 7844 is blocked: retry, forever.
async fn retry_quic_forever() {
    loop {
        log(
            "ERR",
            "Failed to dial a quic connection error=\"failed to dial to edge with quic: timeout: no recent network activity\" connIndex=0 event=0 ip=198.41.192.107",
        );
        log(
            "INF",
            "Retrying connection in up to 2s connIndex=0 event=0 ip=198.41.192.107",
        );
        sleep_ms(1000).await;
    }
}

/// Waits for SIGTERM or SIGINT and shuts down gracefully (exit 0), unless
/// told to ignore them.
async fn until_signalled(state: &State) -> u8 {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    loop {
        let name = tokio::select! {
            _ = term.recv() => "terminated",
            _ = int.recv() => "interrupt",
        };
        log(
            "INF",
            &format!("Initiating graceful shutdown due to signal {name} ..."),
        );
        if knob("FAKE_CLOUDFLARED_IGNORE_TERM").is_some() {
            continue;
        }
        if state.ready.swap(false, Ordering::SeqCst) {
            log(
                "INF",
                &format!("Unregistered tunnel connection connIndex=0 event=0 ip={EDGE_IP}"),
            );
        }
        log("INF", "Tunnel server stopped");
        log("INF", "Metrics server stopped");
        return 0;
    }
}

/// `--metrics` if given, else the real default: 20241–20245, then any port.
async fn bind_metrics(requested: Option<&str>) -> Option<TcpListener> {
    if let Some(addr) = requested {
        return TcpListener::bind(addr).await.ok();
    }
    for port in (20241..=20245).chain([0]) {
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return Some(listener);
        }
    }
    None
}

async fn serve_metrics(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(answer(stream, state.clone()));
    }
}

async fn answer(mut stream: TcpStream, state: Arc<State>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let path = String::from_utf8_lossy(&request)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let (status, body) = route(&path, &state);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

fn route(path: &str, state: &State) -> (&'static str, String) {
    match path {
        "/quicktunnel" => ("200 OK", format!("{{\"hostname\":\"{}\"}}", state.hostname)),
        "/ready" if state.ready.load(Ordering::SeqCst) => (
            "200 OK",
            format!(
                "{{\"status\":200,\"readyConnections\":1,\"connectorId\":\"{}\"}}",
                state.connector
            ),
        ),
        "/ready" => (
            "503 Service Unavailable",
            format!(
                "{{\"status\":503,\"readyConnections\":0,\"connectorId\":\"{}\"}}",
                state.connector
            ),
        ),
        "/healthcheck" => ("200 OK", "OK\n".to_owned()),
        _ => ("404 Not Found", "404 page not found\n".to_owned()),
    }
}

async fn exit_after(delay: Duration) {
    tokio::time::sleep(delay).await;
    let code = knob("FAKE_CLOUDFLARED_EXIT_CODE")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    bare(&format!(
        "fake cloudflared: exiting with code {code} as FAKE_CLOUDFLARED_EXIT_AFTER_SECS asks"
    ));
    std::process::exit(code);
}

/// A `sleep` in our process group, as a helper cloudflared started would be.
/// Never waited for: it is meant to outlive us unless our group is killed.
#[allow(clippy::zombie_processes)]
fn start_child() {
    let child = std::process::Command::new("sleep")
        .arg("300")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("sleep starts");
    record(&serde_json::json!({ "pid": std::process::id(), "child": child.id() }));
}

/// The four (or more) INF lines of cloudflared's `asciiBox`, padding 2.
fn print_box(rows: &[&str]) {
    let width = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0);
    let border = format!("+{}+", "-".repeat(width + 4));
    log("INF", &border);
    for row in rows {
        let pad = width - row.chars().count();
        log("INF", &format!("|  {row}{}  |", " ".repeat(pad)));
    }
    log("INF", &border);
}

/// A log line as zerolog's console writer prints it without a TTY.
fn log(level: &str, message: &str) {
    eprintln!("{} {level} {message}", drop_registry::now_rfc3339());
}

/// An error as cloudflared prints it before exiting: no timestamp, exit 1.
fn bare(message: &str) -> u8 {
    eprintln!("{message}");
    1
}

fn record(value: &serde_json::Value) {
    let Some(path) = knob("FAKE_CLOUDFLARED_RECORD") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("record file");
    writeln!(file, "{value}").expect("record written");
}

fn knob(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn knob_ms(name: &str, default: u64) -> u64 {
    knob(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// `<w1>-<w2>-<w3>-<w4>.trycloudflare.com`, as the quick-tunnel service picks.
fn random_hostname() -> String {
    let words: Vec<&str> = (0..4)
        .map(|_| WORDS[random() as usize % WORDS.len()])
        .collect();
    format!("{}.trycloudflare.com", words.join("-"))
}

fn uuid() -> String {
    let hex = format!("{:016x}{:016x}", random(), random());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A random number: std's hasher keys are random per process.
fn random() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::hash::RandomState::new().hash_one((n, SystemTime::now()))
}
