//! Scripting drop: every command's `--json` parses, errors under `--json`
//! are objects with a stable code, `remove` takes several pages, paths and
//! `--all`, passwords change and go, and `drop qr` draws the link.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use drop_tests::http::{get, request};
use drop_tests::login::{is_form, login, session_cookie};
use drop_tests::{DropEnv, alive, free_port, wait_until_polling};

const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");

/// Runs `drop` expecting failure; returns the JSON error on stderr.
fn json_error(env: &DropEnv, args: &[&str]) -> serde_json::Value {
    let out = env.run(args);
    assert!(!out.status.success(), "drop {args:?} should fail");
    assert!(out.stdout.is_empty(), "no document on stdout for a failure");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last = stderr.lines().last().expect("an error line");
    let doc: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("stderr's last line is not JSON ({e}): {stderr}"));
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    doc["error"].clone()
}

/// Every command, run with `--json`, prints one document that parses (and
/// `logs` one object a line), and says what happened in fields.
#[test]
fn every_command_speaks_json() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "1000");
    let started = env.json(&[
        "start",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--no-tunnel",
        "--json",
    ]);
    assert_eq!(started["server"]["running"], true, "{started}");
    assert_eq!(started["server"]["was_running"], false);
    let port = started["server"]["port"].as_u64().unwrap() as u16;
    let again = env.json(&["start", "--json"]);
    assert_eq!(again["server"]["was_running"], true);

    env.write("report.html", "<h1>report</h1>");
    let added = env.json(&["add", "report.html", "--name", "report", "--json", "--qr"]);
    let id = added["id"].as_str().unwrap().to_owned();
    assert!(added["qr"].as_str().unwrap().contains('█'));
    let path = added["url"]
        .as_str()
        .unwrap()
        .splitn(4, '/')
        .nth(3)
        .unwrap();
    assert_eq!(get(port, &format!("/{path}")).status, 200);
    let waited = env.json(&[
        "wait",
        "report",
        "--since-publish",
        "--timeout",
        "10s",
        "--json",
    ]);
    assert_eq!(waited["views"], 1);

    let app_port = free_port();
    std::fs::create_dir(env.work.path().join("app")).unwrap();
    let run = format!("echo hello from the app; exec {TEST_APP} {app_port}");
    let app = env.json(&[
        "add",
        "app",
        "--run",
        &run,
        "--port",
        &app_port.to_string(),
        "--name",
        "api",
        "--json",
    ]);
    assert_eq!(app["type"], "app");
    let app_started = env.json(&["start", "api", "--json"]);
    assert_eq!(app_started["status"], "running", "{app_started}");
    assert_eq!(app_started["was_running"], false);
    let logs = env.ok(&["logs", "api", "--json"]);
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["line"], "hello from the app");
    assert_eq!(lines[0]["id"], app["id"]);

    // Following: each new line of the app's output is one object.
    let mut follower = env
        .command(&["logs", "api", "-f", "-n", "0", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_polling("the follower at the end of the log", follower.id());
    let log = env
        .home
        .path()
        .join("logs")
        .join(format!("app-{}.log", app["id"].as_str().unwrap()));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap_or_else(|e| panic!("the app's log is at {}: {e}", log.display()));
    std::io::Write::write_all(&mut file, b"one more line\n").unwrap();
    let mut first = String::new();
    BufReader::new(follower.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    follower.kill().unwrap();
    follower.wait().unwrap();
    let followed: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(followed["line"], "one more line");

    for args in [
        &["status", "--json"][..],
        &["list", "--all", "--json"],
        &["qr", "report", "--json"],
        &["tunnel", "status", "--json"],
    ] {
        env.json(args);
    }
    let doctor = env.run(&["doctor", "report", "--json"]);
    let _: serde_json::Value = serde_json::from_slice(&doctor.stdout).expect("doctor's document");

    // Named by the folder it was added from.
    let app_stopped = env.json(&["stop", "app", "--json"]);
    assert_eq!(app_stopped["was_running"], true);
    let app_pid = env.json(&["start", "api", "--json"])["pid"]
        .as_u64()
        .unwrap() as u32;
    let removed = env.json(&["remove", "api", &id, "--json"]);
    let removed = removed["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(removed[0]["app_stopped"], true, "{removed:?}");
    assert!(
        !alive(app_pid),
        "the app was stopped before its record went"
    );

    env.write("gone.html", "x");
    let gone = env.json(&["add", "gone.html", "--json"])["id"].clone();
    std::fs::remove_file(env.work.path().join("gone.html")).unwrap();
    let cleaned = env.json(&["cleanup", "--json"]);
    assert_eq!(cleaned["removed"][0]["id"], gone);
    assert_eq!(cleaned["removed"][0]["reason"], "source_gone");

    let reset = env.json(&["tunnel", "reset", "--json"]);
    assert_eq!(reset["was_set_up"], false);
    let stopped = env.json(&["stop", "--json"]);
    assert_eq!(stopped["server_was_running"], true);
    assert_eq!(env.json(&["stop", "--json"])["server_was_running"], false);
}

/// Under `--json` a failure is one JSON object on stderr whose `code`
/// scripts can match; a usage error too, with exit code 2.
#[test]
fn errors_under_json_carry_a_stable_code() {
    let env = DropEnv::new();
    assert_eq!(
        json_error(&env, &["remove", "nothing", "--json"])["code"],
        "not_found"
    );
    assert_eq!(
        json_error(&env, &["add", "missing.html", "--json"])["code"],
        "no_such_path"
    );
    env.write("a.html", "a");
    let id = env.json(&["add", "a.html", "--json"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        json_error(&env, &["remove", &id[..3], "--json"])["code"],
        "prefix_too_short"
    );
    assert_eq!(
        json_error(&env, &["wait", &id, "--timeout", "1s", "--json"])["code"],
        "nobody_can_open",
        "no server: nobody can open it"
    );
    assert_eq!(
        json_error(&env, &["add", "a.html", "--expires", "soon", "--json"])["code"],
        "bad_time"
    );
    for untypable in ["  ", "two\nlines"] {
        assert_eq!(
            json_error(&env, &["add", "a.html", "--password", untypable, "--json"])["code"],
            "bad_password"
        );
    }
    std::fs::create_dir(env.work.path().join("app")).unwrap();
    assert_eq!(
        json_error(
            &env,
            &[
                "add", "app", "--run", "x", "--port", "5", "--once", "--json"
            ]
        )["code"],
        "once_on_app"
    );
    let missing = json_error(&env, &["add", "--json"]);
    assert_eq!(missing["code"], "usage");
    assert!(
        missing["message"].as_str().unwrap().contains("<PATH>"),
        "the usage error names what is missing: {missing}"
    );
    let usage = env.run(&["add", "--json", "--bogus"]);
    assert_eq!(usage.status.code(), Some(2));
    let doc: serde_json::Value =
        serde_json::from_slice(usage.stderr.trim_ascii_end()).expect("a JSON usage error");
    assert_eq!(doc["error"]["code"], "usage");
    // Without --json, the same failure is an `Error:` line.
    let plain = env.run(&["remove", "nothing"]);
    assert!(String::from_utf8_lossy(&plain.stderr).starts_with("Error: no page matches"));
}

/// `remove` takes several pages at once, a source path, and `--all`; a
/// name it cannot resolve removes nothing; a short prefix is refused.
#[test]
fn remove_takes_several_pages_paths_and_all() {
    let env = DropEnv::new();
    for name in ["a", "b", "c", "d"] {
        env.write(&format!("{name}.html"), name);
    }
    let ids: Vec<String> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| {
            let doc = env.json(&["add", &format!("{n}.html"), "--name", n, "--json"]);
            doc["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let listed = |env: &DropEnv| {
        env.json(&["list", "--all", "--json"])["pages"]
            .as_array()
            .unwrap()
            .len()
    };

    let typo = env.run(&["remove", "a", "nope"]);
    assert!(!typo.status.success());
    assert_eq!(listed(&env), 4, "a typo among the names removes nothing");
    assert!(
        String::from_utf8_lossy(&env.run(&["remove", &ids[2][..2]]).stderr)
            .contains("at least 4 characters")
    );

    let out = env.ok(&["remove", "a.html", "b", &ids[2][..4]]);
    assert_eq!(out.matches("Removed: ").count(), 3, "{out}");
    assert!(out.contains("a.html; a page)"), "{out}");
    assert_eq!(listed(&env), 1);
    let not_published = env.run(&["remove", "a.html"]);
    assert!(String::from_utf8_lossy(&not_published.stderr).contains("no page is published from"));

    env.write("e.html", "e");
    env.ok(&["add", "e.html"]);
    let out = env.ok(&["remove", "--all"]);
    assert_eq!(out.matches("Removed: ").count(), 2, "{out}");
    assert_eq!(listed(&env), 0);
    assert!(env.ok(&["remove", "--all"]).contains("Nothing to remove"));

    // A name that is also a published path: which one is meant is asked.
    env.write("demo/index.html", "d");
    env.write("demo/.drop-publish", "index.html\n");
    env.ok(&["add", "demo"]);
    env.write("f.html", "f");
    env.ok(&["add", "f.html", "--name", "demo"]);
    let clash = json_error(&env, &["remove", "demo", "--json"]);
    assert_eq!(clash["code"], "ambiguous", "{clash}");
    assert!(
        clash["message"].as_str().unwrap().contains("./demo"),
        "{clash}"
    );
    let out = env.ok(&["remove", "./demo"]);
    assert!(
        out.contains("/demo; a page)"),
        "the folder, by its path: {out}"
    );
}

/// A new password is said and printed once and the old one stops working;
/// the same password changes nothing; `--no-password` makes the page
/// public at the same URL.
#[test]
fn passwords_change_and_go() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("secret.html", "<p>secret</p>");
    let (_, path) = env.add(
        &env.work.path().join("secret.html"),
        &["--password", "first-pass"],
    );
    assert!(is_form(&get(port, &path)));
    let signed_in = login(port, &path, "first-pass");
    assert_eq!(signed_in.status, 303);
    let cookie = session_cookie(&signed_in);
    // Inside (not the login form, which is a 200 too).
    let inside = || {
        let res = request(port, "GET", &path, &[("Cookie", cookie.as_str())]);
        res.status == 200 && !is_form(&res)
    };
    assert!(inside());

    let same = env.ok(&["add", "secret.html", "--password", "first-pass"]);
    assert!(
        !same.contains("Password"),
        "the same password changes nothing: {same}"
    );
    assert!(inside(), "the same password keeps its visitors signed in");

    let changed = env.ok(&["add", "secret.html", "--password", "second-pass"]);
    assert!(changed.contains("Password changed"), "{changed}");
    assert!(
        !changed.contains("second-pass"),
        "a password the user typed is not printed back: {changed}"
    );
    assert!(
        !inside(),
        "a visitor signed in with the old one must sign in again"
    );
    assert_eq!(
        login(port, &path, "first-pass").status,
        401,
        "the old password no longer opens it"
    );
    assert_eq!(login(port, &path, "second-pass").status, 303);

    let public = env.json(&["add", "secret.html", "--no-password", "--json"]);
    assert_eq!(public["password_removed"], true);
    assert_eq!(public["protected"], false);
    let res = get(port, &path);
    assert_eq!(res.status, 200);
    assert!(
        res.text().contains("secret"),
        "public again at the same URL"
    );
    assert!(
        String::from_utf8_lossy(
            &env.run(&["add", "secret.html", "--no-password", "--password", "x"])
                .stderr
        )
        .contains("cannot be used with")
    );
}

/// `drop qr` prints the URL as a QR code followed by the URL itself.
#[test]
fn qr_prints_the_link_as_a_code_then_as_text() {
    let env = DropEnv::new();
    env.write("r.html", "r");
    let url = env.json(&["add", "r.html", "--json"])["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env.ok(&["qr", "r.html"]);
    assert!(!out.contains('\x1b'), "no colour codes into a pipe");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == url)
        .unwrap_or_else(|| panic!("the URL as text: {out}"));
    let (code, notes) = (&lines[..at], &lines[at + 1..]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("the server is not running")),
        "a phone cannot open it now, and that is said: {out}"
    );
    assert!(
        code.len() > 10
            && code
                .iter()
                .all(|l| l.starts_with('█') || l.starts_with('▀'))
    );
    let doc = env.json(&["qr", "r.html", "--json"]);
    assert_eq!(doc["url"], url);
    assert_eq!(doc["qr"].as_str().unwrap().lines().count(), code.len());
}

/// The new user's folder: a manifest that lists only `index.html` serves
/// it while its stylesheet and image answer 404. `add` says how many files
/// are served, names each reference left out, and gives the manifest lines
/// that fix it; with them appended, the same URLs answer 200.
#[test]
fn a_folder_add_warns_of_references_its_manifest_leaves_out() {
    let env = DropEnv::new();
    let port = env.start();
    env.write(
        "site/index.html",
        r#"<link rel="stylesheet" href="css/site.css"><img src="img/logo.png"><a href="https://example.com/">out</a>"#,
    );
    env.write("site/css/site.css", "body{}");
    env.write("site/img/logo.png", "png");
    env.write("site/.drop-publish", "index.html\n");
    let out = env.ok(&["add", "site"]);
    assert!(
        out.contains("(serves 1 file: the one .drop-publish lists)"),
        "{out}"
    );
    assert!(
        out.contains("2 local references in its HTML will answer 404"),
        "{out}"
    );
    assert!(
        out.contains("index.html: css/site.css is not listed"),
        "{out}"
    );
    assert!(!out.contains("example.com"), "{out}");
    let doc = env.json(&["add", "site", "--json"]);
    let lines: Vec<String> = doc["folder"]["manifest_lines_to_add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines, vec!["css/**", "img/**"]);
    let base = doc["url"]
        .as_str()
        .unwrap()
        .splitn(4, '/')
        .nth(3)
        .unwrap()
        .to_owned();
    let css = format!("/{base}css/site.css");
    assert_eq!(get(port, &css).status, 404);

    let manifest = env.work.path().join("site/.drop-publish");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    for line in &lines {
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(&manifest, text).unwrap();
    assert_eq!(get(port, &css).status, 200);
    assert_eq!(get(port, &format!("/{base}img/logo.png")).status, 200);
    let out = env.ok(&["add", "site"]);
    assert!(out.contains("(serves 3 files"), "{out}");
    assert!(!out.contains("Warning"), "{out}");
}
