//! drop against the real cloudflared, offline (`drop_tests::rig`): a
//! verified URL and a page and an app opened through the edge, an edge
//! outage, the edge's DNS failing, no network, a rate limit, QUIC blocked,
//! no cloudflared left behind, and `tunnel setup` without a usable login.
//!
//! Each test brings up a rig of its own, so they run in parallel; each is
//! skipped, saying why, where the rig is not there. QUIC never reaches the
//! rig's edge, so every tunnel comes up the way it does where UDP is
//! blocked: QUIC first, then HTTP/2. The figures the tests print
//! (`figure: …`) are measured, never asserted.

use std::time::{Duration, Instant};

use drop_tests::rig::{Rig, user_home};
use drop_tests::{DropEnv, free_port, kill, wait_for};
use serde_json::Value;

const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");
/// How long the edge is gone in the outage test.
const OUTAGE: Duration = Duration::from_secs(15);
/// cloudflared retries the edge at most 32 s apart and drop looks at its
/// health every 10 s: a tunnel not back by then is not coming back.
const COMEBACK_LIMIT: Duration = Duration::from_secs(120);

/// `drop start --tunnel --port 0`, which must succeed: its output and how
/// long it took.
fn start(env: &DropEnv) -> (String, Duration) {
    let started = Instant::now();
    let out = env.ok(&["start", "--tunnel", "--port", "0"]);
    (out, started.elapsed())
}

/// The public URL a `Server started: …` line gives, if it gives one.
fn public_url(out: &str) -> Option<String> {
    out.lines()
        .find_map(|line| line.strip_prefix("Server started: https://"))
        .map(|rest| format!("https://{}", rest.split(' ').next().unwrap_or(rest)))
}

/// The host of an `https://host` URL.
fn host_of(url: &str) -> &str {
    url.strip_prefix("https://").expect("an https URL")
}

/// The server's part of `status --json`.
fn server_status(env: &DropEnv) -> Value {
    env.json(&["status", "--json"])["server"].clone()
}

/// The `tunnel` check of `doctor --json`.
fn doctor_tunnel_check(env: &DropEnv) -> Value {
    let out = env.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|check| check["check"] == "tunnel")
        .cloned()
        .unwrap_or_else(|| panic!("no tunnel check in {report}"))
}

/// Starts the server through the rig and returns its verified URL.
fn start_verified(env: &DropEnv) -> String {
    let (out, _) = start(env);
    public_url(&out).unwrap_or_else(|| panic!("no public URL: {out}"))
}

/// `drop start` hands out the URL once it is seen to work from outside,
/// and a page published with `drop add` opens through the edge.
#[test]
fn start_hands_out_a_verified_url_and_a_page_opens_through_the_edge() {
    let Some(rig) = Rig::up_or_skip("verified URL and page") else {
        return;
    };
    let env = rig.drop_env();
    let (out, took) = start(&env);
    eprintln!(
        "figure: drop start to a verified URL: {:.1} s (QUIC blocked in the rig: HTTP/2 fallback included)",
        took.as_secs_f64()
    );
    let url = public_url(&out).unwrap_or_else(|| panic!("no public URL: {out}"));
    assert!(url.ends_with(".trycloudflare.com"), "{out}");
    assert!(!out.contains("not confirmed"), "{out}");
    let tunnel = server_status(&env)["tunnel"].clone();
    assert_eq!(tunnel["state"], "up", "{tunnel}");
    assert_eq!(tunnel["url"], url.as_str(), "{tunnel}");
    assert!(tunnel["verified_at"].is_string(), "{tunnel}");

    let page = env.write("hello.html", "<p>hello through the edge</p>");
    let (id, _) = env.add(&page, &[]);
    let visit = rig.open(host_of(&url), &format!("/p/{id}/"));
    assert_eq!(visit.status, 200, "{visit:?}");
    assert_eq!(visit.body, "<p>hello through the edge</p>");
    let doctor = env.run(&["doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{said}");
    assert!(said.contains("The link works"), "{said}");
}

/// An app started with `drop start NAME` gets a tunnel of its own, and
/// opens through the edge.
#[test]
fn an_app_gets_its_own_url_and_opens_through_the_edge() {
    let Some(rig) = Rig::up_or_skip("app through the edge") else {
        return;
    };
    let env = rig.drop_env();
    let server_url = start_verified(&env);
    let port = free_port().to_string();
    let dir = env.work.path().join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let run = format!("exec {TEST_APP} {port}");
    let dir = dir.to_str().unwrap();
    env.ok(&[
        "add", dir, "--run", &run, "--port", &port, "--name", "rigapp",
    ]);

    let started = Instant::now();
    let out = env.ok(&["start", "rigapp"]);
    eprintln!(
        "figure: drop start APP to a verified URL: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let url = out
        .lines()
        .find_map(|line| line.strip_prefix("App started: "))
        .map(|rest| rest.split(' ').next().unwrap_or(rest).trim_end_matches('/'))
        .unwrap_or_else(|| panic!("no app URL: {out}"));
    assert!(url.ends_with(".trycloudflare.com"), "{out}");
    assert_ne!(url, server_url, "a tunnel of its own");
    let visit = rig.open(host_of(url), "/");
    assert_eq!(visit.status, 200, "{visit:?}");
    assert_eq!(visit.body, format!("hello from test-app on {port}"));
}

/// What `status` showed, look after look, of a URL that must stay handed
/// out: the states, and the first look that showed it withdrawn.
struct UrlWatch {
    url: String,
    since: Instant,
    states: Vec<String>,
    withdrawn: Option<String>,
}

impl UrlWatch {
    fn new(url: &str) -> Self {
        UrlWatch {
            url: url.to_owned(),
            since: Instant::now(),
            states: Vec::new(),
            withdrawn: None,
        }
    }

    /// Looks at `status` once: the tunnel's state. The URL is kept when
    /// `status` shows it, `up` or `reconnecting`.
    fn look(&mut self, env: &DropEnv) -> String {
        let server = server_status(env);
        let tunnel = &server["tunnel"];
        let state = tunnel["state"].as_str().unwrap_or_default().to_owned();
        let kept = server["url"] == self.url.as_str()
            && tunnel["url"] == self.url.as_str()
            && ["up", "reconnecting"].contains(&state.as_str());
        if !kept && self.withdrawn.is_none() {
            let at = self.since.elapsed().as_secs_f64();
            self.withdrawn = Some(format!("{at:.1} s after the edge went: {server}"));
        }
        self.states.push(state.clone());
        state
    }

    /// Whether a look since the edge went showed `state`.
    fn saw(&self, state: &str) -> bool {
        self.states.iter().any(|s| s == state)
    }
}

/// The edge gone for 15 s and back: `status` shows the same public URL all
/// along (`reconnecting` while the edge is away, `up` again after), and the
/// page opens through it again.
#[test]
fn an_edge_outage_keeps_the_url_and_it_works_again_after() {
    let Some(rig) = Rig::up_or_skip("edge outage") else {
        return;
    };
    let env = rig.drop_env();
    let url = start_verified(&env);
    let (id, _) = env.add(&env.write("kept.html", "kept"), &[]);
    let path = format!("/p/{id}/");
    assert_eq!(rig.open(host_of(&url), &path).status, 200);

    rig.edge_stop();
    let mut watch = UrlWatch::new(&url);
    while watch.since.elapsed() < OUTAGE {
        watch.look(&env);
        std::thread::sleep(Duration::from_millis(200));
    }
    rig.edge_start();
    let back = Instant::now();
    let (mut opened, mut up) = (None, None);
    while opened.is_none() || up.is_none() {
        let state = watch.look(&env);
        let noticed = watch.states.iter().any(|s| s != "up");
        if up.is_none() && noticed && state == "up" {
            up = Some(back.elapsed());
        }
        if opened.is_none() && rig.open(host_of(&url), &path).status == 200 {
            opened = Some(back.elapsed());
        }
        assert!(
            back.elapsed() < COMEBACK_LIMIT,
            "the tunnel did not come back: {:?}",
            watch.states
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let seconds = |d: Option<Duration>| d.unwrap_or_default().as_secs_f64();
    eprintln!(
        "figure: after a {} s edge outage, the page opened again {:.1} s after the edge was back, and status said up {:.1} s after; withdrawn meanwhile: {}",
        OUTAGE.as_secs(),
        seconds(opened),
        seconds(up),
        watch.withdrawn.as_deref().unwrap_or("never")
    );
    assert_eq!(watch.withdrawn, None, "the URL was withdrawn");
    assert!(watch.saw("reconnecting"), "{:?}", watch.states);
}

/// The edge's SRV lookup failing (cloudflared prints the URL, then exits
/// with code 1) is a network problem: `status` and `doctor` say the edge
/// cannot be reached through DNS, not that cloudflared exited early.
#[test]
fn a_failed_edge_srv_lookup_is_reported_as_a_network_problem() {
    let Some(rig) = Rig::up_or_skip("edge SRV lookup failing") else {
        return;
    };
    rig.dns("nosrv");
    let env = rig.drop_env();
    let (out, _) = start(&env);
    assert!(public_url(&out).is_none(), "{out}");
    let tunnel = server_status(&env)["tunnel"].clone();
    let doctor = doctor_tunnel_check(&env);
    assert_eq!(doctor["verdict"], "fail", "{doctor}");
    let said = [
        ("start", out.as_str()),
        ("status", tunnel["error"].as_str().unwrap_or_default()),
        ("doctor", doctor["detail"].as_str().unwrap_or_default()),
    ];
    for (command, text) in said {
        assert!(
            !text.contains("exited early") && text.to_lowercase().contains("dns"),
            "{command} should call it the edge unreachable through DNS: {text}"
        );
    }
}

/// With no network at all, `drop start` returns at once (long before its
/// bound for a tunnel), and `status` and `doctor` say there is no network.
#[test]
fn with_no_network_start_returns_promptly_and_says_so() {
    let Some(rig) = Rig::up_or_skip("no network") else {
        return;
    };
    let env = rig.offline_drop_env();
    let (out, took) = start(&env);
    eprintln!(
        "figure: drop start with no network: {:.2} s",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(10), "{took:?}: {out}");
    assert!(out.contains("no network"), "{out}");
    assert!(out.contains("(local, not tunneled)"), "{out}");
    let tunnel = server_status(&env)["tunnel"].clone();
    assert_eq!(tunnel["state"], "down", "{tunnel}");
    assert!(
        tunnel["error"].as_str().unwrap().contains("no network"),
        "{tunnel}"
    );
    let doctor = doctor_tunnel_check(&env);
    assert_eq!(doctor["verdict"], "fail", "{doctor}");
    assert!(
        doctor["detail"].as_str().unwrap().contains("no network"),
        "{doctor}"
    );
}

/// The quick-tunnel service answering 429: `status` and `doctor` say the
/// tunnel is rate limited.
#[test]
fn a_rate_limit_is_told_as_one() {
    let Some(rig) = Rig::up_or_skip("rate limit") else {
        return;
    };
    rig.api("ratelimit");
    let env = rig.drop_env();
    let (out, _) = start(&env);
    assert!(out.contains("rate limited"), "{out}");
    let tunnel = server_status(&env)["tunnel"].clone();
    assert_eq!(tunnel["state"], "rate_limited", "{tunnel}");
    let status = env.ok(&["status"]);
    assert!(
        status.contains("tunnel not open yet: rate limited"),
        "{status}"
    );
    let doctor = doctor_tunnel_check(&env);
    assert_eq!(doctor["verdict"], "fail", "{doctor}");
    assert!(
        doctor["detail"].as_str().unwrap().contains("rate limited"),
        "{doctor}"
    );
}

/// The logs of the cloudflared processes a drop home ran, oldest first.
fn cloudflared_logs(env: &DropEnv) -> Vec<String> {
    let logs = env.home.path().join("logs");
    let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cloudflared-"))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).unwrap();
            (modified, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, text)| text).collect()
}

/// With QUIC blocked (the rig's edge has no UDP), the real cloudflared's
/// pre-checks say so, drop reopens the tunnel over HTTP/2, the URL works,
/// and `status` says HTTP/2.
#[test]
fn with_quic_blocked_the_tunnel_falls_back_to_http2_and_works() {
    let Some(rig) = Rig::up_or_skip("QUIC blocked") else {
        return;
    };
    let env = rig.drop_env();
    let (out, took) = start(&env);
    eprintln!(
        "figure: drop start with QUIC blocked: {:.1} s in all",
        took.as_secs_f64()
    );
    let url = public_url(&out).unwrap_or_else(|| panic!("no public URL: {out}"));
    let server = server_status(&env);
    assert_eq!(server["tunnel"]["protocol"], "http2", "{server}");
    let status = env.ok(&["status"]);
    let first = status.lines().next().unwrap_or_default();
    assert!(first.contains(&url) && first.contains("HTTP/2"), "{status}");
    let logs = cloudflared_logs(&env);
    assert!(
        logs[0].contains("protocol:quic") && logs[0].contains("UDP Connectivity"),
        "QUIC first, until the pre-checks: {}",
        logs[0]
    );
    let last = logs.last().unwrap();
    assert!(
        last.contains("protocol:http2") && last.contains("protocol=http2"),
        "then HTTP/2, registered: {last}"
    );
    let (id, _) = env.add(&env.write("h2.html", "over http2"), &[]);
    let visit = rig.open(host_of(&url), &format!("/p/{id}/"));
    assert_eq!((visit.status, visit.body.as_str()), (200, "over http2"));
}

/// `drop stop` ends the server's cloudflared: none is left running.
#[test]
fn stop_leaves_no_cloudflared_running() {
    let Some(rig) = Rig::up_or_skip("stop") else {
        return;
    };
    let env = rig.drop_env();
    start_verified(&env);
    assert_eq!(rig.cloudflared_pids().len(), 1, "the server's tunnel");
    env.ok(&["stop"]);
    assert_eq!(rig.cloudflared_pids(), Vec::<u32>::new());
}

/// SIGKILL the daemon while its tunnel runs.
fn kill_daemon(env: &DropEnv) {
    let pid = env.server_pid().expect("a server pid");
    kill(pid);
    wait_for("the daemon gone", Duration::from_secs(5), || {
        (!drop_tests::alive(pid)).then_some(())
    });
}

/// The cloudflared a killed daemon left running is ended by the next
/// `drop start`, which runs a new one, and by `drop stop`.
#[test]
fn a_killed_daemons_cloudflared_is_ended_by_the_next_start_or_stop() {
    let Some(rig) = Rig::up_or_skip("killed daemon") else {
        return;
    };
    let env = rig.drop_env();
    start_verified(&env);
    let first = rig.cloudflared_pids();
    kill_daemon(&env);
    let left = first.iter().any(|&pid| drop_tests::alive(pid));
    eprintln!("note: the killed daemon's cloudflared was left running: {left}");
    start_verified(&env);
    let second = rig.cloudflared_pids();
    assert_eq!(
        second.len(),
        1,
        "one tunnel, not the old one too: {second:?}"
    );
    assert!(!first.contains(&second[0]), "{first:?} then {second:?}");

    kill_daemon(&env);
    env.ok(&["stop"]);
    assert_eq!(rig.cloudflared_pids(), Vec::<u32>::new());
}

/// `drop tunnel setup … --json` in the rig: its error code and message.
fn setup_error(env: &DropEnv) -> (String, String) {
    let out = env.run(&[
        "tunnel",
        "setup",
        "--hostname",
        "drop.example.com",
        "--json",
    ]);
    assert!(!out.status.success());
    let error: Value = serde_json::from_slice(out.stderr.trim_ascii_end())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let text = |key: &str| error["error"][key].as_str().unwrap_or_default().to_owned();
    (text("code"), text("message"))
}

/// Asserts a failed setup left quick tunnels in place and wrote no
/// credentials.
fn assert_nothing_set_up(env: &DropEnv) {
    assert!(!env.home.path().join("named_tunnel.json").exists());
    let folder = user_home(env).join(".cloudflared");
    let written: Vec<_> = std::fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|name| name != "cert.pem")
        .collect();
    assert!(written.is_empty(), "{written:?}");
    assert_eq!(env.json(&["tunnel", "status", "--json"])["kind"], "quick");
}

/// A login certificate as `cloudflared tunnel login` writes it.
fn well_formed_certificate() -> String {
    drop_tests::tunnel::certificate_text(
        drop_tests::tunnel::ZONE_ID,
        drop_tests::tunnel::ACCOUNT_ID,
        drop_tests::tunnel::API_TOKEN,
    )
}

/// `drop tunnel setup` with no `cert.pem`, a broken one and a well-formed
/// one while Cloudflare's API cannot be reached: each fails with its own
/// error, and nothing is set up.
#[test]
fn tunnel_setup_without_a_usable_login_says_why_and_sets_nothing_up() {
    let Some(rig) = Rig::up_or_skip("tunnel setup") else {
        return;
    };
    let env = rig.drop_env();
    let (code, message) = setup_error(&env);
    assert_eq!(code, "cloudflare_not_logged_in", "{message}");
    assert!(message.contains("cloudflared tunnel login"), "{message}");
    assert_nothing_set_up(&env);

    let certificate = user_home(&env).join(".cloudflared/cert.pem");
    std::fs::create_dir_all(certificate.parent().unwrap()).unwrap();
    std::fs::write(&certificate, "not a certificate\n").unwrap();
    let (code, message) = setup_error(&env);
    assert_eq!(code, "cloudflare_certificate_rejected", "{message}");
    assert!(
        message.contains("Error decoding origin cert: missing token in the certificate"),
        "{message}"
    );
    assert_nothing_set_up(&env);

    std::fs::write(&certificate, well_formed_certificate()).unwrap();
    let (code, message) = setup_error(&env);
    assert_eq!(code, "cloudflare_api_unreachable", "{message}");
    assert!(
        message.contains("lookup api.cloudflare.com") && message.contains("no such host"),
        "{message}"
    );
    assert_nothing_set_up(&env);

    let offline = rig.offline_drop_env();
    let certificate = user_home(&offline).join(".cloudflared/cert.pem");
    std::fs::create_dir_all(certificate.parent().unwrap()).unwrap();
    std::fs::write(&certificate, well_formed_certificate()).unwrap();
    let (code, message) = setup_error(&offline);
    assert_eq!(code, "cloudflare_api_unreachable", "{message}");
    assert!(message.contains("network is unreachable"), "{message}");
    assert_nothing_set_up(&offline);
}
