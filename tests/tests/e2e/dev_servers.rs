//! Apps whose dev server checks the `Host` it is sent, as Vite,
//! webpack-dev-server and Django do, behind quick and named tunnels (the
//! fake cloudflared and the local edge, which sends the origin the `Host`
//! the tunnel was told to, as cloudflared does). By default an app gets
//! `localhost:PORT` and opens for the human; an app added with
//! `--keep-host` gets the public hostname, is refused, and drop says so
//! with the fix, never "works".

use std::time::Duration;

use crate::common::{Phase3, TEST_APP, wait_for};
use drop_tests::free_port;

/// Adds the test app refusing unknown hosts as Vite does, named `name`,
/// with `flags` (such as `--keep-host`); its id.
fn add_checking_app(p: &Phase3, name: &str, flags: &[&str]) -> String {
    let port = free_port();
    let command = format!("exec {TEST_APP} {port} --check-host");
    p.env.add_app(name, &command, port, flags)
}

/// The app's URL once `start` has decided.
fn started_app(p: &Phase3, name: &str) -> (String, String) {
    let out = p.env.run(&["start", name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("App started: "))
        .unwrap_or_else(|| panic!("no URL: {text}"))
        .to_owned();
    (url, text)
}

/// A dev server that refuses hosts it does not know opens for the human
/// through a quick tunnel: it is sent `localhost:PORT`, with the public
/// hostname as `X-Forwarded-Host`, and `doctor` says the link works.
#[test]
fn a_host_checking_dev_server_opens_through_a_quick_tunnel() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    add_checking_app(&p, "vite", &[]);
    let (url, out) = started_app(&p, "vite");
    assert!(!out.contains("not confirmed"), "{out}");
    let page = p.open(&url);
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    let seen = page.header("x-seen-host").unwrap_or_default();
    assert!(seen.starts_with("localhost:"), "the app saw Host {seen}");
    let doctor = p.env.run(&["doctor", "vite"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{report}");
    assert!(report.contains("The link works."), "{report}");
}

/// With `--keep-host` the same dev server refuses the public hostname:
/// `start` prints the URL as not confirmed, with the refusal; `status`
/// says why; `doctor` fails with the framework's fix; nothing calls the
/// link working.
#[test]
fn a_refusing_dev_server_is_never_called_working() {
    let p = Phase3::new(
        crate::common::NAT_ADDRESS,
        true,
        &[("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "3000")],
    );
    p.start(&[]);
    let id = add_checking_app(&p, "vite", &["--keep-host"]);
    let (url, out) = started_app(&p, "vite");
    assert!(
        out.contains("not confirmed to work") && out.contains("Blocked request"),
        "{out}"
    );
    let page = p.open(&url);
    assert_eq!(page.status, 403, "the human is refused, as drop said");
    let record = p.record_of(&id);
    assert_eq!(record["tunnel_state"], "unconfirmed", "{record}");
    let doctor = p.env.run(&["doctor", "vite"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    let error = String::from_utf8_lossy(&doctor.stderr);
    assert!(!doctor.status.success(), "{report}");
    assert!(!report.contains("The link works"), "{report}");
    assert!(report.contains("allowedHosts"), "the fix: {report}");
    assert!(error.starts_with("Error: "), "{error}");
    // Back to the default: the app opens.
    p.env.ok(&["stop", "vite"]);
    let command = record["run_cmd"].as_str().unwrap();
    let port = record["port"].as_u64().unwrap() as u16;
    p.env
        .add_app_text("vite", command, port, &["--no-keep-host"]);
    let (url, out) = started_app(&p, "vite");
    assert!(!out.contains("not confirmed"), "{out}");
    assert_eq!(p.open(&url).status, 200);
}

/// Through the user's named tunnel, an app's route sends it
/// `localhost:PORT` too, and it opens at its own hostname.
#[test]
fn a_host_checking_dev_server_opens_through_a_named_tunnel() {
    let p = Phase3::logged_in("example.com", &[]);
    p.env
        .ok(&["tunnel", "setup", "--hostname", "drop.example.com"]);
    p.start(&[]);
    add_checking_app(&p, "vite", &[]);
    let (url, out) = started_app(&p, "vite");
    assert_eq!(url, "https://vite-drop.example.com", "{out}");
    assert!(!out.contains("not confirmed"), "{out}");
    let page = wait_for(
        "the app through the named tunnel",
        Duration::from_secs(10),
        || {
            let page = p.open(&format!("{url}/"));
            (page.status == 200).then_some(page)
        },
    );
    let seen = page.header("x-seen-host").unwrap_or_default();
    assert!(seen.starts_with("localhost:"), "the app saw Host {seen}");
}
