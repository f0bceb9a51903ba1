//! Phase 3 through the real binary: NAT detection against a local IP-echo
//! server, tunnels through the fake cloudflared first on `PATH`.

use std::time::{Duration, Instant};

use crate::common::{NAT_ADDRESS, Phase3, is_quick_tunnel, wait_for};
use drop_tests::{alive, free_port, group_members, kill};

/// The line `start` adds when no systemd unit restarts the server.
fn is_restart_note(line: &str) -> bool {
    line.starts_with("  (") && line.ends_with("auto-restart is off)")
}

/// Behind NAT: the README's three lines, `tunnel.json` with the URL and a live
/// pid, and page URLs built on the tunnel.
#[test]
fn behind_nat_start_tunnels_the_server() {
    let p = Phase3::behind_nat();
    let out = p.start(&[]);
    let lines: Vec<&str> = out.lines().collect();
    let noted = lines.last().is_some_and(|l| is_restart_note(l));
    assert_eq!(lines.len(), 3 + usize::from(noted), "{out}");
    assert_eq!(lines[0], "Detected NAT, starting tunnel...");
    let url = lines[1].strip_prefix("Server started: ").unwrap();
    assert!(is_quick_tunnel(url), "{url}");
    assert_eq!(lines[2], "  (tunneled via cloudflared)");

    let tunnel = p.tunnel_json().unwrap();
    assert_eq!(tunnel["url"], url);
    let pid = tunnel["pid"].as_u64().unwrap() as u32;
    assert_eq!(p.spawned(), vec![pid]);
    assert!(alive(pid));

    let (id, _) = p.env.add(&p.env.write("a.html", "a"), &[]);
    let listed = p.env.ok(&["list", "--all"]);
    assert!(
        listed.contains(&format!("{url}/p/{id}/ (public)")),
        "{listed}"
    );
    let status = p.env.ok(&["status"]);
    assert!(
        status.starts_with(&format!("Server: {url} (running, tunneled)\n")),
        "{status}"
    );
    let doc = p.env.json(&["status", "--json"]);
    assert_eq!(doc["server"]["tunnel"]["url"], url);
    assert_eq!(doc["server"]["tunnel"]["state"], "up");
}

/// With a public IP there is no tunnel process at all.
#[test]
fn public_ip_means_no_tunnel() {
    let ip = drop_nat::outward_ip()
        .expect("this machine has an outward address")
        .to_string();
    assert!(
        drop_nat::could_be_public(ip.parse().unwrap()),
        "this test needs a routable-looking address"
    );
    let p = Phase3::new(&ip, true, &[]);
    let out = p.start(&[]);
    let port = p.env.json(&["status", "--json"])["server"]["port"]
        .as_u64()
        .unwrap();
    assert_eq!(
        out.lines().next(),
        Some(format!("Server started: http://{ip}:{port}").as_str())
    );
    // The daemon opens its tunnel (writing tunnel.json) before it serves.
    assert!(p.tunnel_json().is_none());
    // Its whole life over, nothing it did can start one any more.
    p.env.ok(&["stop"]);
    assert!(p.spawned().is_empty(), "no cloudflared ran");
}

/// `--no-tunnel` behind NAT: `(local)` and no tunnel process.
#[test]
fn no_tunnel_flag_stays_local_behind_nat() {
    let p = Phase3::behind_nat();
    let out = p.start(&["--no-tunnel", "--host", "127.0.0.1"]);
    let line = out.lines().next().unwrap();
    assert!(
        line.starts_with("Server started: http://127.0.0.1:") && line.ends_with(" (local)"),
        "{out}"
    );
    // Until the next start: a plain `drop start` detects NAT again.
    p.env.ok(&["stop"]);
    assert!(p.spawned().is_empty(), "no cloudflared ran while it served");
    assert_eq!(
        p.start(&[]).lines().next(),
        Some("Detected NAT, starting tunnel...")
    );
    assert_eq!(p.spawned().len(), 1);
}

/// `drop start <app>` with the server down starts it with the last
/// `--no-tunnel`: behind NAT it neither detects again nor opens a tunnel
/// the user declined.
#[test]
fn an_app_start_that_starts_the_server_keeps_the_last_no_tunnel() {
    let p = Phase3::behind_nat();
    p.start(&["--no-tunnel", "--host", "127.0.0.1"]);
    p.add_app("web");
    p.env.ok(&["stop"]);
    let out = p.env.ok(&["start", "web"]);
    assert!(!out.contains("Detected NAT"), "{out}");
    assert!(out.lines().next().unwrap().ends_with(" (local)"), "{out}");
    assert!(out.contains("App started: http://127.0.0.1:"), "{out}");
    p.env.ok(&["stop", "--all"]);
    assert!(p.spawned().is_empty(), "no cloudflared ran");
}

/// After the daemon is killed, `drop stop` ends the tunnel processes it
/// left, and listings stop showing their dead URLs.
#[test]
fn stop_after_a_killed_daemon_ends_its_tunnels() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    let id = p.add_app("app");
    p.env.ok(&["start", &id]);
    let (page, _) = p.env.add(&p.env.write("p.html", "p"), &[]);
    let daemon = p.env.server_pid().unwrap();
    kill(daemon);
    wait_for("the daemon dead", Duration::from_secs(10), || {
        (!alive(daemon)).then_some(())
    });
    let listed = p.env.ok(&["list", "--all"]);
    assert!(
        !listed.contains("trycloudflare.com/p/"),
        "no dead tunnel URL for pages: {listed}"
    );
    let stopped = p.env.run(&["stop"]);
    let out = String::from_utf8_lossy(&stopped.stdout);
    assert!(out.contains("Ended 2 tunnel processes"), "{out}");
    assert!(
        stopped.stderr.is_empty(),
        "said once, not also in the daemon's log words: {}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    for pid in p.spawned() {
        assert!(!alive(pid), "cloudflared {pid} survived");
    }
    assert!(p.record_of(&id).get("tunnel_url").is_none());
    assert!(p.record_of(&page).get("tunnel_url").is_none());
    p.env.ok(&["stop", &id]);
}

/// A daemon killed while its tunnel was still starting: the next daemon
/// ends that process, so the page has one tunnel, not two.
#[test]
fn a_tunnel_left_while_starting_is_ended_by_the_next_daemon() {
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[("FAKE_CLOUDFLARED_REQUEST_MS", "2500")],
    );
    let mut first = p.env.command(&["start", "--port", "0"]).spawn().unwrap();
    wait_for("the first tunnel process", Duration::from_secs(10), || {
        p.spawned().first().copied()
    });
    let daemon = wait_for("the first daemon", Duration::from_secs(10), || {
        p.env.server_pid()
    });
    kill(daemon);
    first.wait().unwrap();
    let orphan = p.spawned()[0];
    p.start(&[]);
    assert!(!alive(orphan), "the orphan was ended");
    let live: Vec<u32> = p.spawned().into_iter().filter(|&pid| alive(pid)).collect();
    assert_eq!(live.len(), 1, "one tunnel for the server: {live:?}");
    assert_eq!(
        p.tunnel_json().unwrap()["pid"].as_u64(),
        Some(u64::from(live[0]))
    );
}

/// An app behind NAT gets its own tunnel, in its record and in `status`.
#[test]
fn an_app_behind_nat_gets_its_own_tunnel() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    let id = p.add_app("api");
    let out = p.env.ok(&["start", "api"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Detected NAT, starting tunnel...");
    let url = lines[1].strip_prefix("App started: ").unwrap();
    assert!(is_quick_tunnel(url), "{out}");
    assert_eq!(lines[2], "  (tunneled via cloudflared)");
    let record = p.record_of(&id);
    assert_eq!(record["tunnel_url"], url);
    assert!(alive(record["tunnel_pid"].as_u64().unwrap() as u32));
    let server_url = p.tunnel_json().unwrap()["url"].as_str().unwrap().to_owned();
    assert_ne!(url, server_url, "its own tunnel");
    let status = p.env.ok(&["status"]);
    assert!(
        status.contains(&format!("[app] [running]  {url} (public)")),
        "{status}"
    );
}

/// Killing the server's tunnel, then an app's: each new URL appears in
/// `tunnel.json` / the record and in `status`.
#[test]
fn killed_tunnels_come_back_with_new_urls() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    let id = p.add_app("web");
    p.env.ok(&["start", &id]);

    let old = p.tunnel_json().unwrap();
    // The new URL reaches public DNS 2 s after it is printed: until then
    // it is checked, not handed out.
    p.dns.set_delay(Some(Duration::from_secs(2)));
    let killed = Instant::now();
    kill(old["pid"].as_u64().unwrap() as u32);
    let verifying = wait_for("the new tunnel checked", Duration::from_secs(10), || {
        let now = p.tunnel_json()?;
        (now["state"] == "verifying" && now["url"] != old["url"])
            .then(|| now["url"].as_str().unwrap().to_owned())
    });
    let status = p.env.ok(&["status"]);
    assert!(
        !status.contains(&verifying),
        "handed out unchecked: {status}"
    );
    assert!(
        !status.contains(old["url"].as_str().unwrap()),
        "the dead URL: {status}"
    );
    let new_url = wait_for("a new server tunnel", Duration::from_secs(10), || {
        let now = p.tunnel_json()?;
        (now["state"] == "up" && now["url"] != old["url"])
            .then(|| now["url"].as_str().unwrap().to_owned())
    });
    println!("server tunnel replaced in {:?}", killed.elapsed());
    assert_eq!(new_url, verifying);
    assert!(
        p.env
            .ok(&["status"])
            .starts_with(&format!("Server: {new_url} (running, tunneled)"))
    );

    let old_app = p.record_of(&id);
    let killed = Instant::now();
    kill(old_app["tunnel_pid"].as_u64().unwrap() as u32);
    wait_for(
        "the new app tunnel checked",
        Duration::from_secs(10),
        || {
            let now = p.record_of(&id);
            (now["tunnel_state"] == "verifying" && now["tunnel_url"] != old_app["tunnel_url"])
                .then_some(())
        },
    );
    let new_app_url = wait_for("a new app tunnel", Duration::from_secs(10), || {
        let now = p.record_of(&id);
        (now["tunnel_state"] == "up" && now["tunnel_url"] != old_app["tunnel_url"])
            .then(|| now["tunnel_url"].as_str().unwrap().to_owned())
    });
    println!("app tunnel replaced in {:?}", killed.elapsed());
    assert!(p.env.ok(&["status"]).contains(&new_app_url));
}

/// `drop stop`: no cloudflared, no daemon, no tunnel fields left.
#[test]
fn stop_leaves_no_tunnel_behind() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    let id = p.add_app("svc");
    p.env.ok(&["start", &id]);
    let daemon = p.env.server_pid().unwrap();
    let app_pid = p.record_of(&id)["pid"].as_u64().unwrap() as u32;
    p.env.ok(&["stop", &id]);
    assert!(group_members(app_pid).is_empty());
    p.env.ok(&["stop"]);
    for pid in p.spawned() {
        assert!(!alive(pid), "cloudflared {pid} survived");
    }
    assert!(!alive(daemon));
    assert!(p.tunnel_json().is_none(), "tunnel.json is gone");
    let record = p.record_of(&id);
    for field in ["tunnel_url", "tunnel_pid", "tunnel_state"] {
        assert!(record.get(field).is_none(), "{field} left: {record}");
    }
}

/// No cloudflared anywhere: the message, a local server, exit 0.
#[test]
fn without_cloudflared_the_server_still_starts_locally() {
    let p = Phase3::new(NAT_ADDRESS, false, &[]);
    let out = p.start(&["--host", "127.0.0.1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Detected NAT, starting tunnel...");
    assert_eq!(
        lines[1],
        format!(
            "cloudflared not found. Run ./install.sh (looked on PATH, then at {})",
            p.env.home.path().join("bin/cloudflared").display()
        ),
        "where drop looked, so the user can check"
    );
    assert!(
        lines[2].starts_with("Server started: http://127.0.0.1:")
            && lines[2].ends_with(" (local, not tunneled)"),
        "{out}"
    );
    assert!(p.env.server_pid().is_some_and(alive));
    let port = drop_tests::started_port(lines[2]).expect("a port");
    assert_eq!(drop_tests::http::get(port, "/robots.txt").status, 200);
}

/// Rate limited by the quick-tunnel service: `start` says so, the server
/// runs locally, and the watchdog keeps trying with a long backoff.
#[test]
fn rate_limited_tunnels_back_off_and_the_server_runs_locally() {
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[("FAKE_CLOUDFLARED_MODE", "rate-limit")],
    );
    let out = p.start(&["--host", "127.0.0.1"]);
    assert!(
        out.contains("rate limited by the quick-tunnel service"),
        "{out}"
    );
    assert!(out.contains("keeps trying with backoff"), "{out}");
    assert!(
        out.lines().any(|l| l.ends_with("(local, not tunneled)")),
        "{out}"
    );
    let doc = p.env.json(&["status", "--json"]);
    assert_eq!(doc["server"]["running"], true);
    assert_eq!(doc["server"]["tunnel"]["state"], "rate_limited");
    let error = doc["server"]["tunnel"]["error"].as_str().unwrap();
    let retry: u64 = error
        .rsplit("retrying in ")
        .next()
        .unwrap()
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!(
        retry >= 60,
        "a rate limit backs off for at least a minute: {error}"
    );
    // Said once, in plain words.
    let status = p.env.ok(&["status"]);
    let server = status.lines().next().unwrap();
    assert_eq!(server.matches("rate limit").count(), 1, "{server}");
    let doctor = p.env.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let tunnel = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "tunnel")
        .unwrap();
    let detail = tunnel["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the server's tunnel is not open yet: rate limited"),
        "{detail}"
    );
    assert!(
        tunnel["fix"]
            .as_str()
            .unwrap()
            .contains("from a minute up to 30 minutes"),
        "{tunnel}"
    );
    // About time itself: the backoff is a duration (timed exactly on a
    // paused clock in drop-tunnel's watchdog tests); here, half a second
    // passes without a second cloudflared.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(p.spawned().len(), 1, "no hammering");
}

/// With no IP-echo service reachable, `start` finishes promptly, says the
/// external address is unknown, and does not tunnel.
#[test]
fn unknown_external_address_means_no_tunnel() {
    let p = Phase3::behind_nat();
    let closed = free_port();
    let started = Instant::now();
    let out = p
        .env
        .command(&["start", "--port", "0", "--host", "127.0.0.1"])
        .env("DROP_IP_ECHO_URLS", format!("http://127.0.0.1:{closed}/"))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("External address unknown ("), "{text}");
    let started = text
        .lines()
        .find(|l| l.starts_with("Server started: "))
        .unwrap_or_default();
    assert!(started.ends_with(" (local)"), "{text}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(p.spawned().is_empty());
}

/// `TUNNEL_*` variables in the user's environment (a named tunnel, the
/// hello-world page, JSON logs, another protocol) do not reach cloudflared:
/// the tunnel is still a quick tunnel to drop's own port.
#[test]
fn the_users_tunnel_variables_cannot_take_the_tunnel_over() {
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[
            ("TUNNEL_NAME", "my-named-tunnel"),
            ("TUNNEL_HELLO_WORLD", "true"),
            ("TUNNEL_LOG_OUTPUT", "json"),
            ("TUNNEL_TRANSPORT_PROTOCOL", "http2"),
            ("TUNNEL_GRACE_PERIOD", "not-a-duration"),
        ],
    );
    let out = p.start(&["--host", "127.0.0.1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("Server started: https://") && is_quick_tunnel(&lines[1][16..]),
        "{out}"
    );
    let port = p.env.json(&["status", "--json"])["server"]["port"]
        .as_u64()
        .unwrap();
    let records = p.records();
    let started: Vec<&serde_json::Value> =
        records.iter().filter(|r| r.get("args").is_some()).collect();
    assert_eq!(
        started.len(),
        1,
        "one start, not a named tunnel that failed"
    );
    assert_eq!(
        started[0]["tunnel_env"],
        serde_json::json!([]),
        "none reached it"
    );
    let origin = records.iter().find_map(|r| r["origin"].as_str()).unwrap();
    assert_eq!(
        origin,
        format!("http://127.0.0.1:{port}"),
        "drop's port, not hello-world"
    );
}

/// Where UDP is blocked, the tunnel comes up over HTTP/2, `status` says
/// so, and the next server on this network starts with HTTP/2 at once.
#[test]
fn blocked_udp_tunnels_over_http2_and_is_remembered_for_this_network() {
    let p = Phase3::new(NAT_ADDRESS, true, &[("FAKE_CLOUDFLARED_UDP", "blocked")]);
    let out = p.start(&["--host", "127.0.0.1"]);
    assert!(out.contains("(tunneled via cloudflared)"), "{out}");
    let status = p.env.ok(&["status"]);
    let server_line = status.lines().next().unwrap();
    assert!(
        server_line
            .ends_with("(running, tunneled over HTTP/2: UDP port 7844 is blocked on this network)"),
        "{status}"
    );
    let doc = p.env.json(&["status", "--json"]);
    assert_eq!(doc["server"]["tunnel"]["protocol"], "http2");
    let args = p.started_args();
    assert_eq!(args.len(), 2, "QUIC first, then HTTP/2: {args:?}");
    assert!(args[1].ends_with(&["--protocol".into(), "http2".into()]));
    let notes = std::fs::read_to_string(p.env.home.path().join("networks.json")).unwrap();
    let notes: serde_json::Value = serde_json::from_str(&notes).unwrap();
    let noted: Vec<&serde_json::Value> = notes.as_object().unwrap().values().collect();
    assert_eq!(noted.len(), 1, "{notes}");
    assert_eq!(noted[0]["tunnel_protocol"], "http2");

    p.env.ok(&["stop"]);
    p.start(&["--host", "127.0.0.1"]);
    let args = p.started_args();
    assert_eq!(args.len(), 3, "no QUIC try on a network known to block it");
    assert!(args[2].ends_with(&["--protocol".into(), "http2".into()]));
}

/// `drop stop` lets cloudflared drain for the grace period drop gives it
/// (a fake that honours `--grace-period`, 30 s when none is given), which
/// ends before drop's SIGKILL: a graceful exit, quickly, nothing left.
#[test]
fn stop_lets_tunnels_drain_gracefully_without_waiting_thirty_seconds() {
    let p = Phase3::behind_nat();
    p.start(&["--host", "127.0.0.1"]);
    let tunnel_pid = p.tunnel_json().unwrap()["pid"].as_u64().unwrap() as u32;
    let stopping = Instant::now();
    p.env.ok(&["stop"]);
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    let exit = p
        .records()
        .into_iter()
        .find(|r| r["pid"] == tunnel_pid && r.get("exit").is_some())
        .expect("the tunnel recorded how it ended");
    assert_eq!(
        exit["exit"], 0,
        "drained and exited by itself, not killed: {exit}"
    );
    for pid in p.spawned() {
        assert!(!alive(pid), "cloudflared {pid} survived");
    }
}

/// The milliseconds since the epoch, as the fake records `at_ms`.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The time the fake printed `url`, ms since the epoch.
fn printed_at(p: &Phase3, url: &str) -> u64 {
    p.records()
        .iter()
        .find(|r| r["url"] == url)
        .and_then(|r| r["at_ms"].as_u64())
        .expect("the fake printed the URL")
}

/// The tunnel URL is printed only once public DNS knows its hostname and a
/// probe through the edge reached this daemon: with DNS publishing 3 s
/// after cloudflared prints the URL, `start` answers after those 3 s, with
/// the URL `up` and verified. Without a settling time DNS is asked until
/// it knows the name; with drop's default one it is asked once, after the
/// record was published, so no resolver ever caches "no such name".
#[test]
fn the_url_is_printed_only_once_public_dns_publishes_it() {
    for (settle_ms, questions) in [("1", 2..=20), ("5000", 1..=1)] {
        let p = Phase3::new(
            NAT_ADDRESS,
            true,
            &[("DROP_TUNNEL_DNS_SETTLE_MS", settle_ms)],
        );
        p.dns.set_delay(Some(Duration::from_secs(3)));
        let started = now_ms();
        let out = p.start(&[]);
        let answered = now_ms();

        let lines: Vec<&str> = out.lines().collect();
        let url = lines[1].strip_prefix("Server started: ").unwrap();
        assert!(is_quick_tunnel(url), "{out}");
        assert_eq!(lines[2], "  (tunneled via cloudflared)");
        assert!(!out.contains("not confirmed"), "{out}");
        let printed = printed_at(&p, url);
        assert!(
            answered >= printed + 3000,
            "answered {} ms after cloudflared printed the URL",
            answered - printed
        );
        assert!(
            questions.contains(&p.dns.queries()),
            "settling {settle_ms} ms: {} questions to DNS",
            p.dns.queries()
        );
        let tunnel = p.tunnel_json().unwrap();
        assert_eq!(tunnel["state"], "up");
        assert!(tunnel["verified_at"].is_string(), "{tunnel}");
        let status = p.env.json(&["status", "--json"]);
        assert_eq!(status["server"]["tunnel"]["state"], "up");
        assert_eq!(status["server"]["tunnel"]["url"], url);
        assert!(status["server"]["tunnel"]["verified_at"].is_string());
        // For the closing note: what the checks cost on top of the DNS delay.
        println!(
            "settling {settle_ms} ms: start to verified URL {} ms; cloudflared printed the URL at {} ms; after publication {} ms",
            answered - started,
            printed - started,
            answered.saturating_sub(printed + 3000)
        );
    }
}

/// A hostname that never resolves: past the bound the URL is printed with
/// the note that it is not confirmed, `start` succeeds, and the daemon
/// keeps checking (the phase is `unconfirmed`; once DNS knows the name, it
/// is `up`).
#[test]
fn a_url_that_never_resolves_is_printed_with_a_note_and_checked_on() {
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "2000")],
    );
    p.dns.set_delay(None);
    let out = p.start(&[]);

    let lines: Vec<&str> = out.lines().collect();
    let url = lines[1].strip_prefix("Server started: ").unwrap();
    assert!(is_quick_tunnel(url), "{out}");
    let note = lines[3];
    assert!(
        note.starts_with("Note: this link is not confirmed to work from outside yet (")
            && note.contains("does not resolve at public DNS yet")
            && note.contains("drop keeps checking"),
        "{out}"
    );
    let tunnel = p.tunnel_json().unwrap();
    assert_eq!(tunnel["state"], "unconfirmed");
    let status = p.env.ok(&["status"]);
    assert!(
        status.starts_with(&format!("Server: {url} (running, tunneled; not confirmed")),
        "{status}"
    );

    p.dns.set_delay(Some(Duration::ZERO));
    wait_for("the URL confirmed", Duration::from_secs(15), || {
        (p.tunnel_json()?["state"] == "up").then_some(())
    });
}

/// A tunnel that loses the edge for longer than a health check and gets it
/// back with the same URL keeps that URL handed out all along: `status`
/// says `reconnecting` while the edge is away, then `up`, never the local
/// URL in its place.
#[test]
fn a_reconnect_with_the_same_url_keeps_it_handed_out() {
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[
            ("FAKE_CLOUDFLARED_DROP_AFTER_MS", "5000"),
            ("FAKE_CLOUDFLARED_RECONNECT_MS", "12000"),
            // Long enough to be seen if the URL were checked anew.
            ("DROP_TUNNEL_DNS_SETTLE_MS", "2000"),
        ],
    );
    let out = p.start(&[]);
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("Server started: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let since = Instant::now();
    let mut states: Vec<String> = Vec::new();
    loop {
        let server = p.env.json(&["status", "--json"])["server"].clone();
        let state = server["tunnel"]["state"].as_str().unwrap_or_default();
        assert!(
            server["url"] == url.as_str()
                && server["tunnel"]["url"] == url.as_str()
                && ["up", "reconnecting"].contains(&state),
            "{:.1} s after start, {url} is withdrawn: {server}",
            since.elapsed().as_secs_f64()
        );
        if state == "up" && states.iter().any(|s| s == "reconnecting") {
            break;
        }
        states.push(state.to_owned());
        assert!(since.elapsed() < Duration::from_secs(40), "{states:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// With QUIC blocked and cloudflared's real timings (QUIC is found blocked
/// only seconds in), one bound covers the whole start, the fallback to
/// HTTP/2 included: a URL that cannot be confirmed is printed when
/// `DROP_TUNNEL_VERIFY_TIMEOUT_MS` has passed since the start, not that
/// long again after the fallback.
#[test]
fn one_bound_covers_the_whole_start_fallback_to_http2_included() {
    let bound = Duration::from_secs(8);
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[
            ("FAKE_CLOUDFLARED_UDP", "blocked"),
            ("FAKE_CLOUDFLARED_TIMING", "real"),
            ("FAKE_CLOUDFLARED_PRECHECKS_MS", "6000"),
            ("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "8000"),
        ],
    );
    p.dns.set_delay(None);
    let started = Instant::now();
    let out = p.start(&["--host", "127.0.0.1"]);
    let took = started.elapsed();
    let args = p.started_args();
    assert!(
        args.last()
            .is_some_and(|a| a.ends_with(&["--protocol".into(), "http2".into()])),
        "it fell back: {args:?}"
    );
    assert!(
        took < bound + Duration::from_secs(3),
        "start took {took:?} with a bound of {bound:?}: {out}\n{}",
        p.env.server_log()
    );
}

/// An edge that answers 530 (no tunnel connected there) keeps the phase at
/// `verifying`, the URL withheld and `start` waiting; once the edge reaches
/// the daemon, `start` prints the URL.
#[test]
fn an_edge_answering_530_keeps_the_tunnel_verifying() {
    let p = Phase3::behind_nat();
    p.edge.refuse(true);
    let mut start = p
        .env
        .command(&["start", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = wait_for("the tunnel verifying", Duration::from_secs(10), || {
        let now = p.tunnel_json()?;
        (now["state"] == "verifying").then(|| now["url"].as_str().unwrap().to_owned())
    });
    // The daemon asks the edge again, gets 530 and asks once more: it has
    // seen the refusal and kept the tunnel verifying.
    let refused = p.edge.refusals();
    wait_for("two more refusals", Duration::from_secs(10), || {
        (p.edge.refusals() >= refused + 2).then_some(())
    });
    assert_eq!(p.tunnel_json().unwrap()["state"], "verifying");
    assert!(start.try_wait().unwrap().is_none(), "start still waits");
    let status = p.env.json(&["status", "--json"]);
    assert_eq!(status["server"]["tunnel"]["state"], "verifying");
    assert_eq!(status["server"]["tunnel"]["url"], serde_json::Value::Null);
    assert!(!p.env.ok(&["status"]).contains(&url));

    p.edge.refuse(false);
    let out = start.wait_with_output().unwrap();
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.contains(&format!("Server started: {url}\n")), "{out}");
    assert!(!out.contains("not confirmed"), "{out}");
}

/// The README's point about app URLs: on a public-IP server an app's URL is
/// `http://IP:PORT/`, so an app listening on 127.0.0.1 alone (flask's
/// default) cannot be opened by anyone else. It fails to start with the
/// fix, leaving nothing running; through a tunnel the same app starts.
#[test]
fn an_app_on_loopback_only_fails_on_a_public_ip_and_starts_through_a_tunnel() {
    let ip = drop_nat::outward_ip()
        .expect("this machine has an outward address")
        .to_string();
    let p = Phase3::new(&ip, true, &[]);
    p.start(&[]);
    let id = p.add_app("flaskish");

    let out = p.env.run(&["start", "flaskish"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Error: app flaskish listens only on 127.0.0.1 (this machine alone)"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("http://{ip}:")), "{stderr}");
    assert!(stderr.contains("--host 0.0.0.0"), "{stderr}");
    assert!(stderr.contains("'drop start --tunnel'"), "{stderr}");
    let record = p.record_of(&id);
    assert_eq!(record["pid"], serde_json::Value::Null, "stopped: {record}");
    assert_eq!(
        p.env.json(&["status", "--json"])["pages"][0]["status"],
        "stopped"
    );

    p.env.ok(&["stop"]);
    p.start(&["--tunnel"]);
    let out = p.env.ok(&["start", "flaskish"]);
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("App started: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(is_quick_tunnel(url), "{out}");
}

/// While the server's tunnel is down or being verified, the local URL that
/// stands in is not called public: `drop add` says the tunnel is not up,
/// and `--json` says `local-network`.
#[test]
fn a_local_url_standing_in_for_the_tunnel_is_not_called_public() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    p.dns.set_delay(None);
    kill(p.tunnel_json().unwrap()["pid"].as_u64().unwrap() as u32);
    wait_for("the tunnel not up", Duration::from_secs(10), || {
        (p.tunnel_json()?["state"] != "up").then_some(())
    });
    let file = p.env.write("gap.html", "gap");
    let out = p.env.ok(&["add", file.to_str().unwrap()]);
    assert!(out.starts_with("Published: http://"), "{out}");
    assert!(
        out.contains("this local URL stands in until it is up"),
        "{out}"
    );
    let doc = p.env.json(&["add", file.to_str().unwrap(), "--json"]);
    assert_eq!(doc["reach"], "local-network", "{doc}");
    let status = p.env.json(&["status", "--json"]);
    assert_eq!(status["server"]["reach"], "local-network");
}

/// An app that listens on this machine's outward address itself (not on
/// loopback) is found listening and starts.
#[test]
fn an_app_on_the_address_of_its_url_starts() {
    let ip = drop_nat::outward_ip().unwrap().to_string();
    let p = Phase3::new(&ip, true, &[]);
    p.start(&[]);
    let port = free_port();
    let command = format!("exec {} {port} --bind {ip}", crate::common::TEST_APP);
    p.env.add_app_text("lan", &command, port, &[]);
    let out = p.env.ok(&["start", "lan"]);
    assert!(
        out.contains(&format!("App started: http://{ip}:{port}/")),
        "{out}"
    );
}
