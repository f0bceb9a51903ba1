//! Apps: drop runs a web app, knows its state, and never leaves an orphan.

use std::process::Command;
use std::time::{Duration, Instant};

use drop_tests::http::get;
use drop_tests::{DropEnv, alive, free_port, group_members};

const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");

/// A home whose server runs on a free port, URLs on 127.0.0.1.
fn app_env() -> DropEnv {
    started(DropEnv::new())
}

fn started(env: DropEnv) -> DropEnv {
    let env = env.env("DROP_STOP_GRACE_MS", "1000");
    env.start();
    env
}

/// Registers an app in its own folder of the work dir; returns its id.
fn add_app(env: &DropEnv, name: &str, command: &str, port: u16) -> String {
    env.add_app(name, command, port, &[])
}

/// Adds an app on a free port, with the command `command` makes for that
/// port; its id and port.
fn new_app(env: &DropEnv, name: &str, command: impl FnOnce(u16) -> String) -> (String, u16) {
    let port = free_port();
    (add_app(env, name, &command(port), port), port)
}

/// [`new_app`], started: its id, port and pid.
fn running_app(
    env: &DropEnv,
    name: &str,
    command: impl FnOnce(u16) -> String,
) -> (String, u16, u32) {
    let (id, port) = new_app(env, name, command);
    env.ok(&["start", name]);
    let pid = env.app_pid(&id);
    (id, port, pid)
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// add → start → a real GET on the app's port → stop → port closed and
/// nothing of the group alive.
#[test]
fn app_runs_answers_and_stops_completely() {
    let env = app_env();
    let port = free_port();
    let add = env.add_app_text("web", &format!("exec {TEST_APP} {port}"), port, &[]);
    let lines: Vec<&str> = add.lines().collect();
    assert_eq!(
        lines[0],
        format!("App registered: http://127.0.0.1:{port}/")
    );
    assert_eq!(
        lines[1], "Run 'drop start web'",
        "named as the user named it"
    );
    let listing = env.json(&["list", "--all", "--json"]);
    let id = listing["pages"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(env.listed(&id).expect("listed")["status"], "stopped");

    assert_eq!(
        env.ok(&["start", "web"]).trim(),
        format!("App started: http://127.0.0.1:{port}/")
    );
    assert_eq!(
        get(port, "/").text(),
        format!("hello from test-app on {port}")
    );
    let running = env.listed(&id).expect("listed");
    assert_eq!(running["status"], "running");
    let pid = running["pid"].as_u64().unwrap() as u32;
    assert!(env.ok(&["status"]).contains(&format!(
        "[app] [running]  http://127.0.0.1:{port}/ (public)"
    )));
    assert_eq!(
        env.ok(&["start", "web"]).trim(),
        format!("App already running: http://127.0.0.1:{port}/")
    );

    assert_eq!(env.ok(&["stop", "web"]).trim(), "App stopped: web");
    assert!(!port_open(port), "the port is closed");
    assert!(
        group_members(pid).is_empty(),
        "no process of the group lives"
    );
    assert_eq!(env.listed(&id).expect("listed")["status"], "stopped");
    assert_eq!(env.ok(&["stop", "web"]).trim(), "App web is not running.");
}

/// Two `drop start <app>` at once launch it once: the second finds it running.
#[test]
fn concurrent_starts_launch_an_app_once() {
    let env = app_env();
    let (id, _) = new_app(&env, "twice", |port| {
        format!("sleep 0.5; exec {TEST_APP} {port}")
    });
    let children: Vec<_> = (0..2)
        .map(|_| {
            env.command(&["start", "twice"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    let started = outputs
        .iter()
        .filter(|o| o.starts_with("App started: "))
        .count();
    let already = outputs
        .iter()
        .filter(|o| o.starts_with("App already running: "))
        .count();
    assert_eq!((started, already), (1, 1), "{outputs:?}");
    let launches = env
        .server_log()
        .matches(&format!("app {id} launched as pid"))
        .count();
    assert_eq!(launches, 1, "{}", env.server_log());
    assert_eq!(env.listed(&id).expect("listed")["status"], "running");
    env.ok(&["stop", "twice"]);
}

/// `sh -c "sleep 1000 & exec server"`: stop ends the server and the sleep.
#[test]
fn stop_ends_the_children_of_an_app_too() {
    let env = app_env();
    let (_, _, pid) = running_app(&env, "forky", |port| {
        format!("sleep 1000 & exec {TEST_APP} {port}")
    });
    let members = group_members(pid);
    assert_eq!(members.len(), 2, "the server and its sleep: {members:?}");
    env.ok(&["stop", "forky"]);
    for member in members {
        assert!(!alive(member), "{member} survived");
    }
}

/// An app that ignores SIGTERM is killed after the grace period.
#[test]
fn an_app_ignoring_sigterm_is_killed_after_the_grace_period() {
    let env = app_env();
    let (_, _, pid) = running_app(&env, "stubborn", |port| {
        format!("trap '' TERM; exec {TEST_APP} {port}")
    });
    let started = Instant::now();
    assert_eq!(
        env.ok(&["stop", "stubborn"]).trim(),
        "App stopped: stubborn"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "SIGTERM was ignored, so it waited"
    );
    assert!(group_members(pid).is_empty());
}

/// An app that exits 3 at once: `start` fails with the code and the log
/// tail, and listings show it crashed with exit code 3.
#[test]
fn an_app_that_exits_at_once_is_reported_crashed() {
    let env = app_env();
    let port = free_port();
    let id = add_app(
        &env,
        "broken",
        "echo 'config missing: DATABASE_URL' >&2; exit 3",
        port,
    );
    let err = env.fails(&["start", "broken"]);
    assert!(
        err.starts_with(&format!(
            "Error: app broken exited with code 3 before listening on port {port}"
        )),
        "{err}"
    );
    assert!(
        err.contains("config missing: DATABASE_URL"),
        "the log tail is shown: {err}"
    );
    let listed = env.listed(&id).expect("listed");
    assert_eq!(
        (listed["status"].as_str(), listed["exit_code"].as_i64()),
        (Some("crashed"), Some(3))
    );
    assert!(
        env.ok(&["list", "--all"])
            .contains("[app] [crashed (exit 3)]")
    );
    // The daemon's reason travels over its control socket with its code.
    let out = env.run(&["start", "broken", "--json"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let error: serde_json::Value =
        serde_json::from_str(stderr.lines().last().expect("an error line")).unwrap();
    assert_eq!(error["error"]["code"], "app_exited", "{error}");
}

/// An app that never listens: `start` fails within its timeout and leaves
/// no process behind.
#[test]
fn an_app_that_never_listens_fails_within_the_timeout() {
    let env = started(DropEnv::new().env("DROP_APP_START_TIMEOUT_MS", "1500"));
    let port = free_port();
    let id = add_app(&env, "mute", "echo warming up; sleep 1000", port);
    let started = Instant::now();
    let err = env.fails(&["start", "mute"]);
    let took = started.elapsed();
    assert!(
        err.contains(&format!(
            "did not listen on port {port} within 1.5 s and was stopped"
        )),
        "{err}"
    );
    assert!(err.contains("warming up"), "{err}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(env.listed(&id).expect("listed")["status"], "stopped");
    assert!(env.app_pids().is_empty(), "no pid stays recorded");
    let log = env.server_log();
    let pid: u32 = log
        .lines()
        .find_map(|l| {
            l.split_once(&format!("app {id} launched as pid "))
                .map(|(_, pid)| pid)
        })
        .and_then(|p| p.trim().parse().ok())
        .expect("the launch is logged");
    assert!(
        group_members(pid).is_empty(),
        "nothing of the group is left"
    );
}

/// A recorded pid that now belongs to an unrelated process is never signalled.
#[test]
fn a_reused_pid_is_never_signalled() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "1000");
    let (id, _) = new_app(&env, "old", |port| format!("exec {TEST_APP} {port}"));
    let mut stranger = Command::new("sleep").arg("1000").spawn().unwrap();
    let pages_path = env.home.path().join("pages.json");
    let mut pages: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pages_path).unwrap()).unwrap();
    pages[&id]["pid"] = stranger.id().into();
    pages[&id]["pid_start_time"] = 1.into(); // the app drop started long ago
    std::fs::write(&pages_path, serde_json::to_string(&pages).unwrap()).unwrap();

    // Without a daemon, then with one.
    assert_eq!(env.ok(&["stop", "old"]).trim(), "App old is not running.");
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the unrelated process lives"
    );
    std::fs::write(&pages_path, serde_json::to_string(&pages).unwrap()).unwrap();
    env.start();
    assert_eq!(env.ok(&["stop", "old"]).trim(), "App old is not running.");
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the unrelated process lives"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

/// The daemon stops and starts again while an app runs: the app keeps
/// running, is listed running, and `stop` still ends it.
#[test]
fn a_new_daemon_adopts_running_apps() {
    let env = app_env();
    let (id, port, pid) = running_app(&env, "steady", |port| format!("exec {TEST_APP} {port}"));
    assert_eq!(
        env.ok(&["stop"]).trim(),
        "Server stopped.\n1 app keeps running: steady. 'drop stop --all' stops apps too; the next 'drop start' adopts them."
    );
    assert_eq!(get(port, "/").status, 200, "the app outlives the daemon");
    assert_eq!(env.listed(&id).expect("listed")["status"], "running");
    env.start();
    assert!(
        env.server_log()
            .contains(&format!("adopted app {id} (pid {pid})"))
    );
    assert_eq!(env.listed(&id).expect("listed")["status"], "running");
    assert_eq!(env.ok(&["stop", "steady"]).trim(), "App stopped: steady");
    assert!(!port_open(port) && group_members(pid).is_empty());
}

/// A crash is recorded by the daemon when it happens, not when someone asks.
#[test]
fn a_crash_is_recorded_when_it_happens() {
    let env = app_env();
    let (id, _) = new_app(&env, "flaky", |port| {
        format!("exec {TEST_APP} {port} --exit-after 0.5")
    });
    env.ok(&["start", "flaky"]);
    let pages_path = env.home.path().join("pages.json");
    wait_until("the registry records the crash", || {
        let pages: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&pages_path).unwrap()).unwrap();
        pages[&id]["crashed"] == true && pages[&id]["exit_code"] == 7
    });
    assert!(
        env.server_log()
            .contains(&format!("app {id} exited with code 7"))
    );
}

/// The app runs in its folder with the environment of the `drop start` that asked.
#[test]
fn an_app_gets_the_callers_environment_and_folder() {
    let env = app_env();
    let (id, _) = new_app(&env, "envy", |port| {
        format!("echo \"$GREETING\" > seen.txt; pwd >> seen.txt; exec {TEST_APP} {port}")
    });
    let out = env
        .command(&["start", "envy"])
        .env("GREETING", "hello from the caller")
        .output()
        .unwrap();
    assert!(out.status.success());
    let seen = std::fs::read_to_string(env.work.path().join("envy/seen.txt")).unwrap();
    let dir = std::fs::canonicalize(env.work.path().join("envy")).unwrap();
    assert_eq!(seen, format!("hello from the caller\n{}\n", dir.display()));
    assert_eq!(env.listed(&id).expect("listed")["status"], "running");
}

/// `drop logs` shows the app's output; `-n` limits it.
#[test]
fn logs_show_the_apps_output() {
    let env = app_env();
    let (_, port) = new_app(&env, "chatty", |port| {
        format!("echo one; echo two; echo three; exec {TEST_APP} {port}")
    });
    env.ok(&["start", "chatty"]);
    let all = env.ok(&["logs", "chatty"]);
    assert!(all.starts_with("one\ntwo\nthree\n"), "{all}");
    assert!(all.contains(&format!("test-app: listening on {port}")));
    assert_eq!(
        env.ok(&["logs", "chatty", "-n", "1"]).trim(),
        format!("test-app: listening on {port}")
    );
}

/// `--run` and `--port` go together; ports are not shared, drop's own
/// server's included; a command has a length; app commands refuse pages.
#[test]
fn app_options_are_checked() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "1000");
    let server_port = env.start();
    let dir = env.work.path().join("a");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.to_str().unwrap();
    assert_eq!(
        env.run(&["add", path, "--run", "serve"]).status.code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["add", path, "--port", "5000"]).status.code(),
        Some(2)
    );
    add_app(&env, "first", "serve", 5000);
    let other = env.work.path().join("b");
    std::fs::create_dir_all(&other).unwrap();
    let out = env.run(&[
        "add",
        other.to_str().unwrap(),
        "--run",
        "serve",
        "--port",
        "5000",
    ]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.trim(),
        "Error: port 5000 is already used by app first; give this app another port"
    );
    let own = server_port.to_string();
    let out = env.run(&[
        "add",
        other.to_str().unwrap(),
        "--run",
        "serve",
        "--port",
        &own,
        "--json",
    ]);
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "port_taken", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "port {own} is the port drop's server serves pages on"
            )),
        "{err}"
    );
    let long = "x".repeat(4097);
    let out = env.run(&[
        "add",
        other.to_str().unwrap(),
        "--run",
        &long,
        "--port",
        "5001",
    ]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("Error: the app's command is 4097 bytes long; keep it to 4096"),
        "{err}"
    );
    let apps = env.json(&["list", "--all", "--json"]);
    assert_eq!(apps["pages"].as_array().unwrap().len(), 1, "{apps}");
    let (page, _) = env.add(&env.write("p.txt", "p"), &["--name", "page"]);
    let out = env.run(&["start", "page"]);
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("is a page, not an app"),
        "{page}"
    );
}

/// Removing a running app stops it first; cleanup stops apps whose source is gone.
#[test]
fn remove_and_cleanup_stop_running_apps() {
    let env = app_env();
    let (p1, p2) = (free_port(), free_port());
    let a = add_app(&env, "one", &format!("exec {TEST_APP} {p1}"), p1);
    let b = add_app(&env, "two", &format!("exec {TEST_APP} {p2}"), p2);
    env.ok(&["start", "one"]);
    env.ok(&["start", "two"]);
    let (pa, pb) = (env.app_pid(&a), env.app_pid(&b));
    env.ok(&["remove", "one"]);
    assert!(group_members(pa).is_empty() && !port_open(p1));
    std::fs::remove_dir(env.work.path().join("two")).unwrap();
    assert!(env.ok(&["cleanup"]).contains(&b));
    assert!(group_members(pb).is_empty() && !port_open(p2));
}

/// A running app's record never lies: re-adding it with another port is
/// refused with what to do, and nothing changes; `--restart` applies the
/// change, and the new URL is the one that answers, said with the old
/// one's end.
#[test]
fn a_running_apps_port_changes_only_with_restart() {
    let env = app_env();
    let (old, new) = (free_port(), free_port());
    let dir = env.work.path().join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let id = add_app(&env, "svc", &format!("exec {TEST_APP} {old}"), old);
    env.ok(&["start", "svc"]);
    let pid = env.app_pid(&id);

    let command = format!("exec {TEST_APP} {new}");
    let new_arg = new.to_string();
    let again = [
        "add",
        dir.to_str().unwrap(),
        "--run",
        &command,
        "--port",
        &new_arg,
    ];
    let refused = env.run(&again);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "Error: app svc is running with port {old}; changing it to port {new} now would make its URL lie. Stop it first ('drop stop svc'), or add it again with --restart to apply the change (drop stops the app and starts it again)"
        )
    );
    let listed = env.listed(&id).expect("listed");
    assert_eq!(listed["port"], old, "the record is unchanged");
    assert_eq!(listed["pid"], pid);
    assert!(alive(pid));

    let mut restart = again.to_vec();
    restart.push("--restart");
    let out = env.ok(&restart);
    assert!(
        out.contains(&format!("App started: http://127.0.0.1:{new}/")),
        "{out}"
    );
    // It is started here: no `Run 'drop start'`, and the URL the human
    // had is said to be dead.
    assert!(!out.contains("Run 'drop start"), "{out}");
    assert!(
        out.contains(&format!(
            "  (its old URL http://127.0.0.1:{old}/ no longer opens: give the human the one above)"
        )),
        "{out}"
    );
    wait_until("the old process is gone", || !alive(pid));
    assert!(!port_open(old));
    assert_eq!(get(new, "/").status, 200);
    let listed = env.listed(&id).expect("listed");
    assert_eq!(listed["port"], new);
    assert_eq!(listed["status"], "running");
}

/// Renaming a page says the new URL, and that the old name is gone.
#[test]
fn renaming_says_the_old_name_no_longer_works() {
    let env = app_env();
    let file = env.write("r.html", "r");
    env.ok(&["add", file.to_str().unwrap(), "--name", "first"]);
    let out = env.ok(&["add", file.to_str().unwrap(), "--name", "second"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Published: http://127.0.0.1:") && lines[0].ends_with("/second/"),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "  (renamed from `first`: URLs with `first` no longer open and 'first' no longer finds it; share this URL)"
    );
    let doc = env.json(&["add", file.to_str().unwrap(), "--name", "third", "--json"]);
    assert_eq!(doc["renamed_from"], "second");
}

/// A `--restart` that would be refused (the port is another app's) is
/// refused before anything is stopped: the app keeps running.
#[test]
fn a_refused_restart_leaves_the_app_running() {
    let env = app_env();
    let (mine, theirs) = (free_port(), free_port());
    let dir = env.work.path().join("svc");
    std::fs::create_dir_all(&dir).unwrap();
    let id = add_app(&env, "svc", &format!("exec {TEST_APP} {mine}"), mine);
    add_app(&env, "other", &format!("exec {TEST_APP} {theirs}"), theirs);
    env.ok(&["start", "svc"]);
    let pid = env.app_pid(&id);

    let command = format!("exec {TEST_APP} {theirs}");
    let theirs_arg = theirs.to_string();
    let dir_arg = dir.to_str().unwrap();
    let args = [
        "add",
        dir_arg,
        "--run",
        &command,
        "--port",
        &theirs_arg,
        "--restart",
    ];
    let refused = env.run(&args);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("port {theirs} is already used by app")),
        "{stderr}"
    );
    assert!(alive(pid), "still running");
    assert_eq!(env.listed(&id).expect("listed")["status"], "running");
    assert_eq!(env.listed(&id).expect("listed")["port"], mine);
}

/// `drop logs -f` shows what the app writes and ends, saying so, once the
/// app stops, as `docker logs -f` does.
#[test]
fn following_a_log_ends_when_the_app_stops() {
    let env = app_env();
    new_app(&env, "tick", |port| {
        format!("echo first line; exec {TEST_APP} {port}")
    });
    env.ok(&["start", "tick"]);
    let mut follower = env
        .command(&["logs", "tick", "-f"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop_tests::wait_until_polling("the follower", follower.id());
    env.ok(&["stop", "tick"]);
    let ended = drop_tests::wait_for("the follower to end", Duration::from_secs(10), || {
        follower.try_wait().unwrap()
    });
    let out = follower.wait_with_output().unwrap();
    assert!(ended.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("first line\n"),
        "{out:?}"
    );
    assert_eq!(drop_tests::stderr(&out), "App tick stopped.\n");
}

/// An app that writes more than its log may hold: the log is cut, its
/// end kept in `app-<id>.log.1`, `logs` reads across both, and `remove`
/// takes both files.
#[test]
fn a_loud_apps_log_stays_bounded_and_goes_with_it() {
    const MAX: u64 = 8 * 1024 * 1024;
    let env = app_env();
    let (id, _) = new_app(&env, "loud", |port| {
        format!(
            "yes 'a loud line' | head -c 20000000; echo; echo last words; exec {TEST_APP} {port}"
        )
    });
    env.ok(&["start", "loud"]);
    let log = env.home.path().join("logs").join(format!("app-{id}.log"));
    let previous = log.with_extension("log.1");
    let size = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
    wait_until("the log is cut below its bound", || {
        previous.exists() && size(&log) < MAX
    });
    assert!(size(&previous) <= 1024 * 1024, "{}", size(&previous));
    let tail = env.ok(&["logs", "loud", "-n", "3"]);
    assert!(tail.contains("last words\n"), "{tail}");
    assert!(
        env.server_log()
            .contains(&format!("log app-{id}.log passed")),
        "{}",
        env.server_log()
    );
    env.ok(&["remove", "loud"]);
    assert!(!log.exists() && !previous.exists(), "remove takes both");
}

/// A log deleted while its app runs is said to be deleted, with the way to
/// have one again, not blamed on an earlier drop.
#[test]
fn a_log_deleted_while_the_app_runs_is_said_deleted() {
    let env = app_env();
    let (id, _, _) = running_app(&env, "quiet", |port| format!("exec {TEST_APP} {port}"));
    std::fs::remove_file(env.home.path().join("logs").join(format!("app-{id}.log"))).unwrap();
    let said = env.ok(&["logs", "quiet"]);
    assert!(
        said.starts_with("No output: the log of app quiet (pid ")
            && said
                .contains("was deleted while it runs; 'drop stop quiet' then 'drop start quiet'"),
        "{said}"
    );
}
