//! `drop doctor` through the real binary: each way a link can be dead is
//! found, named on its own line with the fix, and the exit status says
//! whether the link works.

use std::process::Output;
use std::time::Duration;

use crate::common::{NAT_ADDRESS, Phase3, wait_for};
use drop_tests::{DropEnv, kill};

/// `drop doctor ARGS --json`: the report, and whether it exited 0.
fn doctor(env: &DropEnv, args: &[&str]) -> (serde_json::Value, Output) {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = env.run(&all);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (report, out)
}

/// The check named `name` in a report.
fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

/// Asserts the link is found broken at `name`, whose detail has `detail`,
/// with an `Error:` line and a non-zero exit.
fn broken_at(report: &serde_json::Value, out: &Output, name: &str, detail: &str) {
    assert!(!out.status.success(), "{report}");
    assert_eq!(report["works"], false);
    let failed = check(report, name);
    assert_eq!(failed["verdict"], "fail", "{report}");
    let text = failed["detail"].as_str().unwrap();
    assert!(text.contains(detail), "{name}: {text}");
    assert!(failed["fix"].as_str().is_some_and(|f| !f.is_empty()));
    // Under --json, the error is a JSON object on stderr.
    let error: serde_json::Value = serde_json::from_slice(out.stderr.trim_ascii_end())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(error["error"]["code"], "link_broken");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("the link does not work: {name}: ")),
        "{message}"
    );
}

/// A server that was never started, and one that was stopped.
#[test]
fn finds_the_server_down() {
    let env = DropEnv::new();
    let (report, out) = doctor(&env, &[]);
    broken_at(&report, &out, "server", "not running");
    env.start();
    env.ok(&["stop"]);
    let (report, out) = doctor(&env, &[]);
    broken_at(&report, &out, "server", "not running (stopped)");
}

/// A server killed (or crashed) is told apart from a stopped one, with the
/// end of its log.
#[test]
fn finds_the_server_crashed() {
    let env = DropEnv::new();
    env.start();
    let (report, out) = doctor(&env, &[]);
    assert!(out.status.success(), "{report}");
    assert_eq!(report["works"], true);
    let pid = env.server_pid().unwrap();
    kill(pid);
    wait_for("the server to die", Duration::from_secs(5), || {
        (!drop_tests::alive(pid)).then_some(())
    });
    let (report, out) = doctor(&env, &[]);
    broken_at(
        &report,
        &out,
        "server",
        &format!("crashed: pid {pid} is recorded but gone"),
    );
    assert!(
        check(&report, "server")["detail"]
            .as_str()
            .unwrap()
            .contains("serving"),
        "the log's last lines"
    );
}

/// An app that is not running, then one that crashed, with its exit code.
#[test]
fn finds_the_app_down() {
    let p = Phase3::new(NAT_ADDRESS, true, &[]);
    p.start(&["--no-tunnel", "--host", "127.0.0.1"]);
    let id = p.add_app("api");
    let (report, out) = doctor(&p.env, &["api"]);
    broken_at(&report, &out, "app process", "not running");

    p.env.ok(&["start", "api"]);
    let (report, out) = doctor(&p.env, &["api"]);
    assert!(out.status.success(), "{report}");
    assert_eq!(check(&report, "app listens")["verdict"], "ok");
    let pid = p.record_of(&id)["pid"].as_u64().unwrap() as u32;
    kill(pid);
    wait_for("the crash recorded", Duration::from_secs(5), || {
        (p.record_of(&id)["crashed"] == true).then_some(())
    });
    let (report, out) = doctor(&p.env, &["api"]);
    broken_at(&report, &out, "app process", "crashed with exit code 137");
}

/// A stopped app behind a tunnel fails at its process alone, with the fix
/// that works (`drop start api`): its tunnel is not checked, so no second
/// FAIL asks for a restart of the server.
#[test]
fn a_stopped_app_behind_a_tunnel_is_fixed_by_starting_it() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    p.add_app("api");
    let (report, out) = doctor(&p.env, &["api"]);
    broken_at(&report, &out, "app process", "not running");
    assert_eq!(check(&report, "app process")["fix"], "run 'drop start api'");
    assert_eq!(check(&report, "tunnel")["verdict"], "skipped", "{report}");
    let failed: Vec<&serde_json::Value> = (report["checks"].as_array().unwrap().iter())
        .filter(|c| c["verdict"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
}

/// An app on loopback alone whose URL is for other machines: it was
/// started through a tunnel, and the server came back without one (a
/// public IP), so the app is adopted but nobody else can open it.
#[test]
fn finds_an_app_on_loopback_only() {
    let ip = drop_nat::outward_ip().unwrap().to_string();
    let p = Phase3::new(&ip, true, &[]);
    p.start(&["--tunnel"]);
    p.add_app("web");
    p.env.ok(&["start", "web"]);
    p.env.ok(&["stop"]);
    p.start(&[]);
    let (report, out) = doctor(&p.env, &["web"]);
    broken_at(
        &report,
        &out,
        "app listens",
        "127.0.0.1: this machine alone",
    );
    assert!(
        check(&report, "app listens")["fix"]
            .as_str()
            .unwrap()
            .contains("--host 0.0.0.0")
    );
}

/// A tunnel that cannot open (cloudflared missing), and one the
/// quick-tunnel service rate limits.
#[test]
fn finds_the_tunnel_down_and_rate_limited() {
    let p = Phase3::new(NAT_ADDRESS, false, &[]);
    p.start(&["--host", "127.0.0.1"]);
    let (report, out) = doctor(&p.env, &[]);
    broken_at(&report, &out, "tunnel", "failed: cloudflared not found");

    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[("FAKE_CLOUDFLARED_MODE", "rate-limit")],
    );
    p.start(&["--host", "127.0.0.1"]);
    let (report, out) = doctor(&p.env, &[]);
    broken_at(
        &report,
        &out,
        "tunnel",
        "rate limited by the quick-tunnel service",
    );
}

/// The edge's SRV lookup failing after the URL (cloudflared then exits by
/// itself) is the network problem it is: `doctor` and `status` say the
/// edge cannot be reached through DNS, not that cloudflared exited early.
#[test]
fn finds_the_edge_unreachable_through_dns() {
    let p = Phase3::new(NAT_ADDRESS, true, &[("FAKE_CLOUDFLARED_MODE", "no-srv")]);
    p.start(&["--host", "127.0.0.1"]);
    let (report, out) = doctor(&p.env, &[]);
    broken_at(&report, &out, "tunnel", "");
    let status = p.env.json(&["status", "--json"]);
    let said = [
        check(&report, "tunnel")["detail"]
            .as_str()
            .unwrap()
            .to_owned(),
        status["server"]["tunnel"]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ];
    for text in said {
        assert!(
            !text.contains("exited early") && text.to_lowercase().contains("dns"),
            "the edge unreachable through DNS: {text}"
        );
    }
}

/// A tunnel whose hostname public DNS does not know yet: the edge reaches
/// drop, DNS does not; once DNS publishes it, the link works.
#[test]
fn finds_dns_not_yet_published() {
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "1000")],
    );
    p.dns.set_delay(None);
    let out = p.start(&[]);
    assert!(out.contains("not confirmed"), "{out}");
    let (report, out) = doctor(&p.env, &[]);
    assert_eq!(check(&report, "edge")["verdict"], "ok", "{report}");
    broken_at(
        &report,
        &out,
        "public DNS",
        "does not resolve at public DNS yet",
    );

    p.dns.set_delay(Some(Duration::ZERO));
    let (report, out) = doctor(&p.env, &[]);
    assert!(out.status.success(), "{report}");
    assert_eq!(check(&report, "public DNS")["verdict"], "ok");
    let text = p.env.ok(&["doctor"]);
    assert!(text.ends_with("The link works.\n"), "{text}");
}

/// An edge that does not reach drop (530): DNS is not asked, so no
/// resolver caches "no such name".
#[test]
fn an_edge_that_does_not_reach_drop_is_reported_without_asking_dns() {
    let p = Phase3::new(NAT_ADDRESS, true, &[]);
    p.start(&[]);
    p.edge.refuse(true);
    let asked = p.dns.queries();
    let (report, out) = doctor(&p.env, &[]);
    broken_at(&report, &out, "edge", "530");
    assert_eq!(check(&report, "public DNS")["verdict"], "skipped");
    assert_eq!(p.dns.queries(), asked);
}

/// Public DNS that cannot be reached at all (the resolver's port is
/// closed): `doctor` blames this machine's way out, not publication, in
/// one plain sentence, with the HTTP client's own words as `cause` in
/// `--json`.
#[test]
fn resolvers_that_cannot_be_reached_are_not_blamed_on_publication() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let doh = format!("http://{}/resolve", closed.local_addr().unwrap());
    drop(closed);
    let p = Phase3::new(
        NAT_ADDRESS,
        true,
        &[
            ("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "2000"),
            ("DROP_DOH_URLS", &doh),
        ],
    );
    p.start(&[]);
    let (report, out) = doctor(&p.env, &[]);
    broken_at(
        &report,
        &out,
        "public DNS",
        "no public DNS resolver could be reached",
    );
    let dns = check(&report, "public DNS");
    assert!(
        dns["fix"]
            .as_str()
            .unwrap()
            .contains("cannot reach the public DNS-over-HTTPS resolvers"),
        "{dns}"
    );
    assert!(
        !dns["detail"].as_str().unwrap().contains('('),
        "one plain sentence: {dns}"
    );
    assert!(
        dns["cause"].as_str().is_some_and(|c| !c.is_empty()),
        "{dns}"
    );
}

/// Without a tunnel, a page server bound to loopback alone while its URLs
/// name this machine's outward address: nobody else can open them.
#[test]
fn finds_the_server_on_loopback_only() {
    let ip = drop_nat::outward_ip().unwrap().to_string();
    let p = Phase3::new(&ip, true, &[("DROP_BIND", "127.0.0.1")]);
    p.start(&[]);
    let (report, out) = doctor(&p.env, &[]);
    broken_at(&report, &out, "server listens", "on loopback alone");
    assert!(
        check(&report, "server listens")["fix"]
            .as_str()
            .unwrap()
            .contains("DROP_BIND")
    );
}
