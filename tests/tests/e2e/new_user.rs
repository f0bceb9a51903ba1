//! What a new user reads, tried as a new user would: each message says
//! what happened and gives a fix that works, names things as the user
//! named them, and scripts find every field they read.

use std::time::Duration;

use crate::common::{Phase3, wait_for};
use drop_tests::login::login;
use drop_tests::{DropEnv, free_port, stderr};

const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");

/// `--expires` and `--once` are said under the URL, when given and when
/// a re-add changes them, and an end is said honestly (`1 min` for
/// `--expires 1m`, not `59 s`).
#[test]
fn add_says_what_the_link_will_do() {
    let env = DropEnv::new();
    env.write("notes.html", "notes");
    let first = env.ok(&["add", "notes.html", "--expires", "1m"]);
    assert!(
        first.contains("  (the link expires in 1 min (at "),
        "{first}"
    );
    let once = env.ok(&["add", "notes.html", "--once"]);
    assert!(
        once.contains("  (the link opens once, for one human, then answers 404; it expires in "),
        "{once}"
    );
    assert!(once.contains("(already published: same page as before)"));
    let lasting = env.ok(&["add", "notes.html", "--expires", "never", "--no-once"]);
    assert!(
        lasting.contains(
            "  (the link no longer expires, and opens for anyone who has it, as often as they like)"
        ),
        "{lasting}"
    );
    let again = env.ok(&["add", "notes.html"]);
    assert!(!again.contains("(the link"), "nothing changed: {again}");
}

/// The URL path of the `Published:` line of `add`'s output.
fn published_path(out: &str) -> String {
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("Published: "))
        .unwrap_or_else(|| panic!("no Published: line in {out}"));
    format!("/{}", url.splitn(4, '/').nth(3).unwrap())
}

/// The `Password:` line of `add`'s output.
fn printed_password(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .unwrap_or_else(|| panic!("no Password: line in {out}"))
        .to_owned()
}

/// Adding a protected page again with `--password` alone keeps its
/// password, and says so: the human who has it still gets in.
/// `--new-password` makes a new one; a password of fewer than 8
/// characters is refused.
#[test]
fn password_alone_keeps_the_password_a_page_has() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("notes.html", "notes");
    let first = env.ok(&["add", "notes.html", "--password"]);
    let (path, password) = (published_path(&first), printed_password(&first));

    let again = env.ok(&["add", "notes.html", "--password"]);
    assert!(again.contains("Password kept:"), "{again}");
    assert!(!again.contains("Password: "), "not shown again: {again}");
    assert_eq!(login(port, &path, &password).status, 303, "it still opens");
    let doc = env.json(&["add", "notes.html", "--password", "--json"]);
    assert_eq!(doc["password_kept"], true, "{doc}");
    assert!(doc.get("password").is_none(), "{doc}");

    let rotated = env.ok(&["add", "notes.html", "--new-password"]);
    assert!(rotated.contains("Password changed"), "{rotated}");
    let new = printed_password(&rotated);
    assert_ne!(new, password);
    assert_eq!(login(port, &path, &password).status, 401);
    assert_eq!(login(port, &path, &new).status, 303);

    let short = env.run(&["add", "notes.html", "--password", "x", "--json"]);
    assert!(!short.status.success());
    let error: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&short.stderr).trim()).unwrap();
    assert_eq!(error["error"]["code"], "bad_password", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 8"),
        "{error}"
    );
    assert_eq!(login(port, &path, &new).status, 303, "nothing changed");
}

/// A server start whose URLs name another machine's address (a
/// documentation one), so that an app on loopback cannot be reached there.
const START_FOR_OTHER_MACHINES: [&str; 6] = [
    "start",
    "--port",
    "0",
    "--host",
    "192.0.2.10",
    "--no-tunnel",
];

/// Registers an app that runs the test app on `port` (on 127.0.0.1), in
/// a folder of its own, named `name`; returns what `add` printed.
fn add_app(env: &DropEnv, name: &str, port: u16) -> String {
    env.add_app_text(name, &format!("exec {TEST_APP} {port}"), port, &[])
}

/// Messages name an app by the name the user gave it: `Run 'drop start
/// api'` after adding it, the app that has a port, and the loopback
/// refusal, whose fix goes through a restart of the server (`drop start
/// --tunnel` alone would find it running).
#[test]
fn messages_name_an_app_by_its_name() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "500");
    let port = free_port();
    let added = add_app(&env, "api", port);
    assert!(added.contains("Run 'drop start api'"), "{added}");
    let other = env.work.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let port_arg = port.to_string();
    let taken = env.run(&[
        "add",
        other.to_str().unwrap(),
        "--run",
        "serve",
        "--port",
        &port_arg,
    ]);
    assert!(
        stderr(&taken).contains(&format!("port {port} is already used by app api;")),
        "{}",
        stderr(&taken)
    );

    // URLs for other machines: an app on loopback alone is refused.
    env.ok(&START_FOR_OTHER_MACHINES);
    let refused = env.run(&["start", "api"]);
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(
        said.contains("Error: app api listens only on 127.0.0.1"),
        "{said}"
    );
    assert!(
        said.contains("then run 'drop start api'; or reach it through a tunnel: 'drop stop', 'drop start --tunnel', then 'drop start api'"),
        "{said}"
    );
}

/// With a named tunnel, `tunnel status` names each app as the user named
/// it; `tunnel reset` asks for a restart only while the server tunnels.
#[test]
fn tunnel_status_names_apps_and_reset_asks_a_restart_only_when_tunneled() {
    let p = Phase3::logged_in("example.com", &[]);
    p.env
        .ok(&["tunnel", "setup", "--hostname", "drop.example.com"]);
    p.start(&[]);
    p.add_app("api");
    p.env.ok(&["start", "api"]);
    let status = p.env.ok(&["tunnel", "status"]);
    assert!(
        status.contains("  app api: https://api-drop.example.com"),
        "{status}"
    );

    p.env.ok(&["stop", "--all"]);
    p.start(&["--no-tunnel"]);
    let reset = p.env.ok(&["tunnel", "reset"]);
    assert!(reset.starts_with("Back to quick tunnels"), "{reset}");
    assert!(
        !reset.contains("'drop stop'"),
        "nothing is tunneled: {reset}"
    );
}

/// `drop add --password notes.html` (the flag first): `--password` took the
/// path as its value, and the error says so and how to write it, with a
/// usage line that shows no `--home` as if it were needed; a value that is
/// no path is not repeated.
#[test]
fn a_path_taken_by_password_is_said() {
    let env = DropEnv::new();
    env.write("notes.html", "notes");
    let out = env.run(&["add", "--password", "notes.html"]);
    assert_eq!(out.status.code(), Some(2));
    let said = stderr(&out);
    assert!(
        said.contains("--password took `notes.html` as the password. Put the path first ('drop add notes.html --password'), or write the password as --password=PASS"),
        "{said}"
    );
    assert!(said.contains("Usage: drop add <PATH> [OPTIONS]"), "{said}");
    assert!(!said.contains("--home"), "{said}");
    // A value that is no path is a password: never printed back.
    let out = env.run(&["add", "--password=Hunter2Secret"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("Hunter2Secret"), "{}", stderr(&out));
    let out = env.run(&["add", "--password", "notes.html", "--json"]);
    let error: serde_json::Value = serde_json::from_slice(out.stderr.trim_ascii_end()).unwrap();
    assert_eq!(error["error"]["code"], "usage", "{error}");
    let listed = env.json(&["list", "--all", "--json"]);
    assert_eq!(listed["pages"], serde_json::json!([]), "nothing published");
}

/// The text of a file of the repository.
fn repository_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// `drop start --json` on a busy port fails with the code the README
/// lists for it, `port_in_use` (the daemon's own), not `server_failed`.
#[test]
fn a_busy_port_has_the_code_the_readme_lists() {
    let env = DropEnv::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = env.run(&["start", "--port", &port, "--no-tunnel", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(out.stderr.trim_ascii_end())
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(error["error"]["code"], "port_in_use", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("port {port} is already in use")),
        "{message}"
    );
    assert!(repository_file("README.md").contains("`port_in_use`"));
}

/// `list --json` gives apps and pages the same fields: a script reading
/// `views` of every row does not crash on an app.
#[test]
fn every_listed_row_has_every_field() {
    let env = DropEnv::new();
    env.write("page.html", "page");
    env.ok(&["add", "page.html"]);
    add_app(&env, "api", free_port());
    let listed = env.json(&["list", "--all", "--json"]);
    let rows = listed["pages"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let keys =
        |row: &serde_json::Value| row.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&rows[0]), keys(&rows[1]));
    for row in rows {
        assert!(row["views"].is_u64(), "{row}");
        assert!(row["visitors"].is_u64(), "{row}");
    }
}

/// A server that was killed is `crashed` in `status`, as in `doctor`
/// (one rule decides), until `drop stop` or `drop start`.
#[test]
fn status_says_a_killed_server_crashed() {
    let env = DropEnv::new();
    env.start();
    let pid = env.server_pid().unwrap();
    drop_tests::kill(pid);
    wait_for("the server to die", Duration::from_secs(5), || {
        (!drop_tests::alive(pid)).then_some(())
    });
    let status = env.ok(&["status"]);
    assert!(
        status.starts_with(&format!("Server: crashed (pid {pid} is recorded but gone")),
        "{status}"
    );
    let doc = env.json(&["status", "--json"]);
    assert_eq!(doc["server"]["status"], "crashed", "{doc}");
    assert_eq!(doc["server"]["running"], false);
    let doctor = env.run(&["doctor"]);
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("FAIL  server: crashed"));

    env.ok(&["stop"]);
    let doc = env.json(&["status", "--json"]);
    assert_eq!(doc["server"]["status"], "stopped", "{doc}");
}

/// An app that listens on 127.0.0.1 alone, started while its URL named
/// loopback and adopted by a server whose URLs are for other machines,
/// is listed with the URL that opens (on this machine) and says so,
/// never at a dead address as if anyone could open it.
#[test]
fn an_adopted_app_on_loopback_says_it_opens_only_here() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "500");
    env.start();
    let port = free_port();
    add_app(&env, "api", port);
    env.ok(&["start", "api"]);
    env.ok(&["stop"]);
    env.ok(&START_FOR_OTHER_MACHINES);
    let status = env.ok(&["status"]);
    let line = status
        .lines()
        .find(|l| l.contains("api"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(!line.contains("192.0.2.10"), "a dead URL: {status}");
    assert!(
        line.contains(&format!("[this machine only]  http://127.0.0.1:{port}/")),
        "{status}"
    );
    let row = env.json(&["list", "--all", "--json"])["pages"][0].clone();
    assert_eq!(row["reach"], "this-machine", "{row}");
    assert_eq!(row["url"], format!("http://127.0.0.1:{port}/"));
    env.ok(&["stop", "--all"]);
}

/// `drop add /` and `drop add ~` are refused, saying what to publish
/// instead: no manifest at `//.drop-publish` is suggested.
#[test]
fn the_whole_filesystem_and_the_home_folder_are_refused() {
    let env = DropEnv::new();
    let me = env.work.path().join("me");
    std::fs::create_dir_all(me.join("site")).unwrap();
    let env = env.env("HOME", me.to_str().unwrap());
    for (path, what) in [
        ("/", "is the whole filesystem"),
        (me.to_str().unwrap(), "is your home folder"),
    ] {
        let out = env.run(&["add", path]);
        assert!(!out.status.success());
        let said = stderr(&out);
        assert!(said.contains(what), "{said}");
        assert!(!said.contains(".drop-publish\n"), "{said}");
        let out = env.run(&["add", path, "--json"]);
        let error: serde_json::Value = serde_json::from_slice(out.stderr.trim_ascii_end()).unwrap();
        assert_eq!(error["error"]["code"], "folder_too_broad", "{error}");
    }
    let site = me.join("site");
    let said = stderr(&env.run(&["add", site.to_str().unwrap()]));
    assert!(
        said.contains(&format!("> {}/.drop-publish\n", site.display())),
        "a folder inside it still can: {said}"
    );
}

/// A reference to a file that is not in the folder is said to be missing,
/// and no manifest line is suggested for it: listing it would not help.
#[test]
fn a_reference_to_a_missing_file_is_said_missing() {
    let env = DropEnv::new();
    env.write(
        "site/index.html",
        r#"<link rel="stylesheet" href="css/gone.css"><img src="img/logo.png">"#,
    );
    env.write("site/img/logo.png", "png");
    env.write("site/.drop-publish", "index.html\n");
    let out = env.ok(&["add", "site"]);
    assert!(
        out.contains("  index.html: css/gone.css is missing: no such file is in the folder"),
        "{out}"
    );
    assert!(!out.contains("css/**"), "no line for a missing file: {out}");
    assert!(out.contains("  img/**"), "{out}");
    let doc = env.json(&["add", "site", "--json"]);
    assert_eq!(
        doc["folder"]["manifest_lines_to_add"],
        serde_json::json!(["img/**"]),
        "{doc}"
    );
}

/// The names of the cloudflared logs in a home's `logs/`.
fn cloudflared_logs(p: &Phase3) -> Vec<String> {
    let logs = p.env.home.path().join("logs");
    let mut names: Vec<String> = std::fs::read_dir(logs)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("cloudflared-") && name.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// Tunnel after tunnel (an app started and stopped, the server restarted),
/// the home keeps the logs of only the last few that ended.
#[test]
fn old_cloudflared_logs_are_pruned() {
    let p = Phase3::behind_nat();
    p.start(&[]);
    p.add_app("api");
    for _ in 0..6 {
        p.env.ok(&["start", "api"]);
        p.env.ok(&["stop", "api"]);
    }
    for _ in 0..4 {
        p.env.ok(&["stop"]);
        p.start(&[]);
    }
    let spawned = p.spawned().len();
    let left = cloudflared_logs(&p);
    println!(
        "{spawned} cloudflared run, {} logs left: {left:?}",
        left.len()
    );
    assert!(spawned > 10, "{spawned}");
    assert!(
        left.len() <= 4 + 1,
        "the last 4 that ended, and the live one: {left:?}"
    );
}

/// A span as the skill writes one (`1m`, `30s`, `2h`), in seconds.
fn seconds_of(span: &str) -> Option<u64> {
    let unit = span.trim_start_matches(|c: char| c.is_ascii_digit());
    let number: u64 = span[..span.len() - unit.len()].parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(number * scale)
}

/// The skill teaches agents short waits in a loop: every wait it shows
/// has a `--timeout` of at most two minutes (about what an agent's tool
/// call may last), it says to wait again on `not_opened` and never to
/// wait without a timeout, names the MCP tool's `timeout_s`, and says
/// that for an app the edge reaches the app.
#[test]
fn the_skill_teaches_short_waits_in_a_loop() {
    let skill = repository_file("skills/drop.md");
    let shown: Vec<&str> = skill
        .lines()
        .filter(|line| line.trim_start().starts_with("drop wait "))
        .collect();
    assert!(!shown.is_empty());
    for line in &shown {
        assert!(line.contains("--timeout "), "a wait for ever: {line}");
    }
    for (_, rest) in skill
        .match_indices("--timeout ")
        .map(|(at, _)| skill.split_at(at + 10))
    {
        let span: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if span == "SPAN" {
            continue;
        }
        let seconds = seconds_of(&span).unwrap_or_else(|| panic!("a span: {span}"));
        assert!(seconds <= 120, "--timeout {span} outlasts a tool call");
    }
    for taught in [
        "run it again",
        "not_opened",
        "timeout_s",
        "Never run it\n  without `--timeout`",
        "for an app's own tunnel the app itself",
    ] {
        assert!(skill.contains(taught), "the skill should say: {taught}");
    }
}
