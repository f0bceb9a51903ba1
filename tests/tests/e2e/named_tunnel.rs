//! Stable links through the user's own named tunnel, end to end: the real
//! `drop`, the fake cloudflared logged in to a fake Cloudflare account, and
//! local stand-ins for public DNS and the edge.

use std::time::Duration;

use crate::common::{Phase3, is_quick_tunnel, wait_for};
use drop_tests::{alive, kill};

const ZONE: &str = "example.com";
const HOSTNAME: &str = "drop.example.com";

fn set_up(p: &Phase3) -> String {
    p.env.ok(&["tunnel", "setup", "--hostname", HOSTNAME])
}

/// The URL `start` printed for the server.
fn started_url(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Server started: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned()
}

/// The URL `start <app>` printed.
fn app_url(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("App started: "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned()
}

/// What `status --json` says every page's URL is, by id.
fn urls(p: &Phase3) -> Vec<(String, String)> {
    let status = p.env.json(&["status", "--json"]);
    status["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|page| {
            let id = page["id"].as_str().unwrap().to_owned();
            (id, page["url"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Waits until the server's tunnel and every running app's are `up`.
fn all_up(p: &Phase3, apps: &[&str]) {
    wait_for("every tunnel up", Duration::from_secs(20), || {
        let server = p.tunnel_json()?["state"] == "up";
        let apps = apps
            .iter()
            .all(|id| p.record_of(id)["tunnel_state"] == "up");
        (server && apps).then_some(())
    });
}

/// Setup, a page and two apps on stable hostnames; the URLs survive a
/// killed cloudflared, `drop stop` + `drop start`, and a daemon crash; a
/// second app leaves the first one's URL alone; and each URL opens through
/// the edge to the right origin.
#[test]
fn named_tunnel_urls_stay_the_same_across_every_restart() {
    let p = Phase3::logged_in(ZONE, &[]);
    // For the closing note: a quick tunnel's start in the same run.
    let started = std::time::Instant::now();
    let out = p.start(&[]);
    let quick = started.elapsed();
    assert!(is_quick_tunnel(&started_url(&out)), "{out}");
    p.env.ok(&["stop"]);
    let out = set_up(&p);
    assert!(
        out.starts_with(&format!("Named tunnel \"{HOSTNAME}\" (")) && out.contains("is set up"),
        "{out}"
    );
    assert!(
        out.contains(&format!("(DNS: {HOSTNAME} now routes to it)")),
        "{out}"
    );
    let again = set_up(&p);
    assert_eq!(
        again,
        format!(
            "Named tunnel \"{HOSTNAME}\" is already set up for https://{HOSTNAME}: nothing changed.\n"
        )
    );

    let started = std::time::Instant::now();
    let out = p.start(&[]);
    println!(
        "start to verified URL: named tunnel {:?}, quick tunnel {quick:?}",
        started.elapsed()
    );
    assert_eq!(started_url(&out), format!("https://{HOSTNAME}"), "{out}");
    let (page, path) = p.env.add(&p.env.write("report.html", "the report"), &[]);
    let page_url = format!("https://{HOSTNAME}{path}");
    let api = p.add_app("api");
    let api_url = app_url(&p.env.ok(&["start", "api"]));
    assert_eq!(api_url, format!("https://api-drop.{ZONE}"));
    all_up(&p, &[&api]);
    assert_eq!(p.open(&page_url).text(), "the report");
    assert!(p.open(&api_url).text().starts_with("hello from test-app"));
    let tunnel = p.env.json(&["status", "--json"])["server"]["tunnel"].clone();
    assert_eq!(tunnel["kind"], "named");
    let before = urls(&p);
    assert!(
        before.contains(&(page.clone(), page_url.clone())),
        "{before:?}"
    );
    assert!(
        before.contains(&(api.clone(), api_url.clone())),
        "{before:?}"
    );

    // cloudflared killed: the watchdog brings the same tunnel back.
    let pid = p.tunnel_json().unwrap()["pid"].as_u64().unwrap() as u32;
    kill(pid);
    wait_for("a new cloudflared", Duration::from_secs(20), || {
        let now = p.tunnel_json()?;
        (now["pid"] != pid && now["state"] == "up").then_some(())
    });
    all_up(&p, &[&api]);
    assert_eq!(urls(&p), before, "after cloudflared was killed");

    // A second app: the first keeps its URL.
    let web = p.add_app("web");
    let web_url = app_url(&p.env.ok(&["start", "web"]));
    assert_eq!(web_url, format!("https://web-drop.{ZONE}"));
    all_up(&p, &[&api, &web]);
    assert!(p.open(&api_url).text().starts_with("hello from test-app"));
    assert!(p.open(&web_url).text().starts_with("hello from test-app"));
    let before = urls(&p);

    // drop stop + drop start: apps keep running and come back on their URLs,
    // through one cloudflared that starts with their routes (not again for
    // each app adopted).
    p.env.ok(&["stop"]);
    let spawned_before = p.spawned().len();
    let out = p.start(&[]);
    assert_eq!(started_url(&out), format!("https://{HOSTNAME}"));
    all_up(&p, &[&api, &web]);
    assert_eq!(urls(&p), before, "after drop stop and drop start");
    assert_eq!(
        p.spawned().len() - spawned_before,
        1,
        "one cloudflared for the server and its adopted apps"
    );

    // A daemon crash: the next start ends its cloudflared and serves the same URLs.
    let daemon = p.env.server_pid().unwrap();
    kill(daemon);
    wait_for("the daemon dead", Duration::from_secs(10), || {
        (!alive(daemon) && p.env.server_lock_free()).then_some(())
    });
    let out = p.start(&[]);
    assert_eq!(started_url(&out), format!("https://{HOSTNAME}"));
    all_up(&p, &[&api, &web]);
    assert_eq!(urls(&p), before, "after a daemon crash");
    assert_eq!(p.open(&page_url).text(), "the report");
    // One cloudflared for everything, once the ones it replaced drained.
    wait_for("one cloudflared", Duration::from_secs(10), || {
        let live = p
            .spawned()
            .into_iter()
            .filter(|&pid| drop_tests::alive(pid));
        (live.count() == 1).then_some(())
    });
}

/// `drop tunnel status` says which tunnel drop uses; `reset` goes back to
/// quick tunnels.
#[test]
fn status_and_reset() {
    let p = Phase3::logged_in(ZONE, &[]);
    let quick = p.env.json(&["tunnel", "status", "--json"]);
    assert_eq!(quick["kind"], "quick");
    // Set up while a server serves through a quick tunnel: status says the
    // server still does, until it is started again.
    let quick_url = started_url(&p.start(&[]));
    set_up(&p);
    let before_restart = p.env.json(&["tunnel", "status", "--json"]);
    assert_eq!(before_restart["restart_needed"], true, "{before_restart}");
    assert_eq!(before_restart["serving"], quick_url.as_str());
    let text = p.env.ok(&["tunnel", "status"]);
    assert!(
        text.contains(&format!("the server still serves at {quick_url}")),
        "{text}"
    );
    p.env.ok(&["stop"]);
    let named = p.env.json(&["tunnel", "status", "--json"]);
    assert_eq!(named["restart_needed"], false);
    assert_eq!(named["kind"], "named");
    assert_eq!(named["tunnel_name"], HOSTNAME, "named after its hostname");
    assert_eq!(named["url"], format!("https://{HOSTNAME}"));
    assert_eq!(named["credentials_present"], true);
    let text = p.env.ok(&["tunnel", "status"]);
    assert!(
        text.starts_with(&format!("Tunnel: named \"{HOSTNAME}\" (")),
        "{text}"
    );

    let out = p.env.ok(&["tunnel", "reset"]);
    assert!(out.starts_with("Back to quick tunnels"), "{out}");
    assert!(
        out.contains(&format!("cloudflared tunnel delete {HOSTNAME}")),
        "{out}"
    );
    assert!(!p.env.home.path().join("named_tunnel.json").exists());
    let out = p.start(&[]);
    assert!(is_quick_tunnel(&started_url(&out)), "{out}");
}

/// The errors a user meets at setup, each with its fix and a non-zero
/// exit, leaving quick tunnels working.
#[test]
fn setup_errors_say_what_to_do_and_leave_quick_tunnels_working() {
    // Never logged in.
    let p = Phase3::behind_nat();
    let out = p.env.run(&["tunnel", "setup", "--hostname", HOSTNAME]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Error: not logged in to Cloudflare: no cert.pem")
            && stderr.contains("run `cloudflared tunnel login`, which opens a browser once"),
        "{stderr}"
    );
    assert!(!p.env.home.path().join("named_tunnel.json").exists());
    assert!(is_quick_tunnel(&started_url(&p.start(&[]))));

    // A hostname outside the login's domain.
    let p = Phase3::logged_in(ZONE, &[]);
    let stderr = p
        .env
        .fails(&["tunnel", "setup", "--hostname", "drop.other.org"]);
    assert!(
        stderr.starts_with("Error: drop.other.org is not in example.com"),
        "{stderr}"
    );
    assert!(!p.env.home.path().join("named_tunnel.json").exists());

    // DNS already points elsewhere: refused, then replaced on request.
    p.edit_account(|account| {
        account["dns"] = serde_json::json!([
            { "name": HOSTNAME, "type": "A", "content": "192.0.2.10" }
        ]);
    });
    let out = p.env.run(&["tunnel", "setup", "--hostname", HOSTNAME]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("Error: DNS already has a record for {HOSTNAME}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "'drop tunnel setup --hostname {HOSTNAME} --replace-dns'"
        )),
        "the error names the flag that replaces the record: {stderr}"
    );
    assert!(!p.env.home.path().join("named_tunnel.json").exists());
    assert!(is_quick_tunnel(&started_url(&p.start(&[]))));
    p.env.ok(&["stop"]);
    let out = p
        .env
        .ok(&["tunnel", "setup", "--hostname", HOSTNAME, "--replace-dns"]);
    assert!(out.contains("is set up"), "{out}");
}

/// A tunnel deleted from the dashboard, and one whose credentials are
/// gone: `start` says why it is not tunneled and how to fix it, serves
/// locally, and `drop tunnel reset` brings quick tunnels back.
#[test]
fn a_deleted_tunnel_or_lost_credentials_are_told_at_start() {
    let p = Phase3::logged_in(ZONE, &[("FAKE_CLOUDFLARED_RETRY_MS", "50")]);
    set_up(&p);
    let id = p.env.json(&["tunnel", "status", "--json"])["tunnel_id"]
        .as_str()
        .unwrap()
        .to_owned();
    p.edit_account(|account| {
        for tunnel in account["tunnels"].as_array_mut().unwrap() {
            if tunnel["id"] == id {
                tunnel["deleted_at"] = serde_json::json!("2026-12-01T12:00:00Z");
            }
        }
    });
    let out = p.start(&[]);
    assert!(
        out.contains("it was deleted, perhaps from the Cloudflare dashboard"),
        "{out}"
    );
    assert!(out.contains("(local, not tunneled)"), "{out}");
    p.env.ok(&["stop"]);

    let credentials = p.env.json(&["tunnel", "status", "--json"])["credentials_file"]
        .as_str()
        .unwrap()
        .to_owned();
    // Garbage where the credentials should be: cloudflared could not use
    // them, and status says so as the daemon would.
    let kept = std::fs::read(&credentials).unwrap();
    std::fs::write(&credentials, "not json").unwrap();
    let garbage = p.env.run(&["tunnel", "status"]);
    assert!(!garbage.status.success());
    assert!(
        String::from_utf8_lossy(&garbage.stderr).contains("it is not JSON"),
        "{}",
        String::from_utf8_lossy(&garbage.stderr)
    );
    std::fs::write(&credentials, kept).unwrap();
    p.env.ok(&["tunnel", "status"]);
    std::fs::remove_file(&credentials).unwrap();
    let status = p.env.run(&["tunnel", "status"]);
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("is missing"));
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains("run 'drop tunnel setup --hostname"),
        "{stderr}"
    );
    let out = p.start(&[]);
    assert!(
        out.contains(&format!("the credentials of tunnel {id} are missing")),
        "{out}"
    );
    p.env.ok(&["stop"]);

    p.env.ok(&["tunnel", "reset"]);
    assert!(is_quick_tunnel(&started_url(&p.start(&[]))));
}

/// Setup checks what it can before it creates anything, and a setup that
/// fails after it created the tunnel deletes it again: a hostname that is
/// no hostname runs no cloudflared at all; one outside the login's domain
/// leaves no tunnel in the account (only the DNS record cloudflared made,
/// which the error names).
#[test]
fn a_failed_setup_leaves_no_tunnel_behind() {
    let p = Phase3::logged_in(ZONE, &[]);
    let out = p
        .env
        .run(&["tunnel", "setup", "--hostname", "bad host!", "--json"]);
    assert!(!out.status.success());
    let error: serde_json::Value = serde_json::from_slice(out.stderr.trim_ascii_end()).unwrap();
    assert_eq!(error["error"]["code"], "bad_hostname", "{error}");
    assert!(p.spawned().is_empty(), "cloudflared never ran");

    let stderr = p
        .env
        .fails(&["tunnel", "setup", "--hostname", "drop.other.org"]);
    assert!(
        stderr.starts_with("Error: drop.other.org is not in example.com")
            && stderr.contains("delete it in the Cloudflare dashboard")
            && stderr.contains("is deleted again"),
        "{stderr}"
    );
    assert!(p.live_tunnels().is_empty(), "{:?}", p.live_tunnels());
    assert!(!p.env.home.path().join("named_tunnel.json").exists());
}

/// Credentials lost while the server serves through the named tunnel:
/// its tunnel fails; setting up again fetches them, says so, and the
/// server's tunnel opens with them at once, with no restart.
#[test]
fn setting_up_again_after_lost_credentials_mends_it_at_once() {
    let p = Phase3::logged_in(ZONE, &[("FAKE_CLOUDFLARED_RETRY_MS", "50")]);
    set_up(&p);
    let out = p.start(&[]);
    assert_eq!(started_url(&out), format!("https://{HOSTNAME}"), "{out}");
    let status = p.env.json(&["tunnel", "status", "--json"]);
    let credentials = status["credentials_file"].as_str().unwrap().to_owned();
    std::fs::remove_file(&credentials).unwrap();
    let pid = p.tunnel_json().unwrap()["pid"].as_u64().unwrap() as u32;
    kill(pid);
    wait_for("the tunnel fails", Duration::from_secs(20), || {
        (p.tunnel_json()?["state"] == "failed").then_some(())
    });
    assert!(!p.env.run(&["tunnel", "status"]).status.success());

    let out = set_up(&p);
    assert!(
        out.contains("credentials were missing on this machine and are fetched again")
            && out.contains("the server's tunnel opens with them now"),
        "{out}"
    );
    wait_for("the tunnel up again", Duration::from_secs(20), || {
        (p.tunnel_json()?["state"] == "up").then_some(())
    });
    p.env.ok(&["tunnel", "status"]);
    assert_eq!(
        p.open(&format!("https://{HOSTNAME}/robots.txt")).status,
        200
    );
}

/// A tunnel deleted from the dashboard is mended by setting up again: a
/// new tunnel of the same name takes the hostname over (`--replace-dns`,
/// since DNS still points at the deleted one), and the URL is the same.
#[test]
fn setting_up_again_mends_a_deleted_tunnel() {
    let p = Phase3::logged_in(ZONE, &[("FAKE_CLOUDFLARED_RETRY_MS", "50")]);
    set_up(&p);
    let old = p.env.json(&["tunnel", "status", "--json"])["tunnel_id"].clone();
    p.edit_account(|account| {
        for tunnel in account["tunnels"].as_array_mut().unwrap() {
            tunnel["deleted_at"] = serde_json::json!("2026-12-01T12:00:00Z");
        }
    });
    let out = p
        .env
        .ok(&["tunnel", "setup", "--hostname", HOSTNAME, "--replace-dns"]);
    assert!(out.contains("is set up"), "{out}");
    let new = p.env.json(&["tunnel", "status", "--json"])["tunnel_id"].clone();
    assert_ne!(new, old);
    let out = p.start(&[]);
    assert_eq!(started_url(&out), format!("https://{HOSTNAME}"), "{out}");
}

/// Apps started all at once get distinct hostnames, every one recorded:
/// hostnames are chosen, routed and kept one at a time.
#[test]
fn apps_started_together_get_distinct_recorded_hostnames() {
    let p = Phase3::logged_in(ZONE, &[]);
    set_up(&p);
    p.start(&[]);
    let names = ["same_a", "same.a", "same-a", "same__a"];
    let ids: Vec<String> = names.iter().map(|n| p.add_app(n)).collect();
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            p.env
                .command(&["start", n])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let urls: Vec<String> = children
        .into_iter()
        .map(|c| app_url(&String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()))
        .collect();
    let mut distinct = urls.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), names.len(), "{urls:?}");
    let setup: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.env.home.path().join("named_tunnel.json")).unwrap(),
    )
    .unwrap();
    for id in &ids {
        assert!(
            setup["app_hostnames"][id].is_string(),
            "{id} recorded: {setup}"
        );
    }
    all_up(&p, &ids.iter().map(String::as_str).collect::<Vec<_>>());
}

/// An app whose hostname cannot be routed (DNS has another record for it)
/// is recorded `failed` with why, not left starting.
#[test]
fn an_app_that_cannot_be_routed_is_recorded_failed() {
    let p = Phase3::logged_in(ZONE, &[]);
    set_up(&p);
    p.start(&[]);
    p.edit_account(|account| {
        account["dns"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!(
                { "name": format!("zz-drop.{ZONE}"), "type": "A", "content": "192.0.2.10" }
            ));
    });
    let id = p.add_app("zz");
    let out = p.env.ok(&["start", "zz"]);
    assert!(out.contains("could not route zz-drop.example.com"), "{out}");
    let record = p.record_of(&id);
    assert_eq!(record["tunnel_state"], "failed", "{record}");
    assert!(
        record["tunnel_error"]
            .as_str()
            .unwrap()
            .contains("DNS already has a record")
    );
}

/// `tunnel setup` keeps the home as every command that writes it does,
/// even when it fails after cloudflared ran: a loose home is tightened,
/// and a fresh one is made with its `logs/` owner-only.
#[test]
fn setup_keeps_the_home_owner_only_even_when_it_fails() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |dir: &std::path::Path| std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    let p = Phase3::logged_in(ZONE, &[]);
    let home = p.env.home.path();
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = p
        .env
        .run(&["tunnel", "setup", "--hostname", "drop.other.org"]);
    assert!(!out.status.success(), "outside the login's domain");
    assert_eq!(mode(home), 0o700, "the loose home tightened");
    assert_eq!(mode(&home.join("logs")), 0o700);

    let fresh = p.env.work.path().join("fresh-home");
    let out = p
        .env
        .command(&["tunnel", "setup", "--hostname", "drop.other.org"])
        .env("DROP_HOME", &fresh)
        .output()
        .unwrap();
    assert!(!out.status.success(), "outside the login's domain");
    assert_eq!(mode(&fresh), 0o700, "the fresh home made owner-only");
    assert_eq!(mode(&fresh.join("logs")), 0o700);
}
