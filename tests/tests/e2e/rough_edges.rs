//! The rough edges a new user hit, each end to end with the real binary:
//! the Python drop's leftovers (a live pid that is not provably its app,
//! its `host` and `port` files), app limits given to one command, names and
//! hosts in listings, `drop stop` and its apps, a registry that does not
//! parse, a writer killed mid-write, lock modes and an idle daemon's
//! wakeups.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use drop_tests::http::get;
use drop_tests::{DropEnv, alive, free_port, stderr};

const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");

/// Waits until something answers on `port`.
fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child this test started, killed when the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Registers an app that runs the test app on `port`, in its own folder.
fn add_app(env: &DropEnv, name: &str, port: u16) -> String {
    env.add_app(name, &format!("exec {TEST_APP} {port}"), port, &[])
}

/// A record the Python drop wrote for a running app whose pid now belongs
/// to a process that is not provably the app (here: another folder): it
/// is listed with its pid, neither `stop` nor `start` signals or forgets
/// it, and both say what holds the port and how to end it.
#[test]
fn a_live_python_pid_that_is_not_provably_the_app_is_reported_and_kept() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "500");
    let port = free_port();
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = Guard(
        Command::new(TEST_APP)
            .arg(port.to_string())
            .current_dir(elsewhere.path())
            .spawn()
            .unwrap(),
    );
    let pid = stranger.0.id();
    wait_for_port(port);
    let app_dir = env.work.path().join("api");
    std::fs::create_dir_all(&app_dir).unwrap();
    let record = serde_json::json!({
        "abcdefghjkmnpqrs": {
            "source": app_dir, "is_dir": true, "password_hash": "",
            "created_at": "2026-02-03T10:00:00.000000+00:00", "description": "",
            "name": "api", "type": "app", "run_cmd": format!("{TEST_APP} {port}"),
            "port": port, "pid": pid
        }
    });
    std::fs::write(env.home.path().join("pages.json"), record.to_string()).unwrap();

    let list = env.ok(&["list", "--all"]);
    assert!(
        list.contains(&format!("[old process {pid}, left alone]")),
        "{list}"
    );
    let expected = format!("Error: the app's old process (pid {pid}) still holds port {port};");
    let stop = env.run(&["stop", "api"]);
    assert!(!stop.status.success());
    assert!(stderr(&stop).starts_with(&expected), "{}", stderr(&stop));
    assert!(
        stderr(&stop).contains(&format!("`kill {pid}`")),
        "{}",
        stderr(&stop)
    );
    env.start();
    let start = env.run(&["start", "api"]);
    assert!(!start.status.success());
    assert!(stderr(&start).starts_with(&expected), "{}", stderr(&start));
    let all = env.run(&["stop", "--all"]);
    assert!(
        !all.status.success(),
        "an app it could not stop is an error"
    );
    assert!(String::from_utf8_lossy(&all.stdout).contains("Server stopped."));
    assert!(alive(pid), "never signalled");
    let pages = std::fs::read_to_string(env.home.path().join("pages.json")).unwrap();
    let pages: serde_json::Value = serde_json::from_str(&pages).unwrap();
    assert_eq!(pages["abcdefghjkmnpqrs"]["pid"], pid, "never forgotten");
}

/// In a home the Python drop used, its `host` and `port` files are the
/// defaults of the first start, and of URLs printed before it; a start
/// that moves the URLs says so.
#[test]
fn the_python_drops_host_and_port_are_the_first_defaults_and_a_change_is_told() {
    let env = DropEnv::new();
    let port = free_port();
    std::fs::write(env.home.path().join("host"), "127.0.0.1").unwrap();
    std::fs::write(env.home.path().join("port"), port.to_string()).unwrap();
    let file = env.write("a.html", "kept");
    let (_, path) = env.add(&file, &[]);
    let added = env.json(&["list", "--all", "--json"]);
    let url = added["pages"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("http://127.0.0.1:{port}{path}"));
    let start = env.ok(&["start", "--no-tunnel"]);
    assert_eq!(
        start.lines().next().unwrap(),
        format!("Server started: http://127.0.0.1:{port} (local)")
    );
    assert!(!start.contains("URLs changed"), "{start}");
    assert_eq!(get(port, &path).text(), "kept");
    env.ok(&["stop"]);
    let other = free_port();
    let moved = env.ok(&["start", "--no-tunnel", "--port", &other.to_string()]);
    assert!(
        moved.contains(&format!(
            "Note: page URLs changed from http://127.0.0.1:{port} to http://127.0.0.1:{other};"
        )),
        "{moved}"
    );
}

/// `DROP_APP_START_TIMEOUT_MS` given to `drop start <app>` holds for that
/// start, though the server was started without it.
#[test]
fn an_app_start_timeout_given_to_the_command_holds_for_it() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "300");
    env.start();
    let dir = env.work.path().join("mute");
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port().to_string();
    env.ok(&[
        "add",
        dir.to_str().unwrap(),
        "--run",
        "sleep 60",
        "--port",
        &port,
        "--name",
        "mute",
    ]);
    let started = Instant::now();
    let out = env
        .command(&["start", "mute"])
        .env("DROP_APP_START_TIMEOUT_MS", "700")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("did not listen on port"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("within 0.7 s"), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// Listings show every page's and app's name; `status --json` shows the
/// host of the URLs, chosen or not; `logs` of an app that never ran says so.
#[test]
fn listings_show_names_status_shows_the_host_and_logs_of_a_new_app_say_it_never_ran() {
    let env = DropEnv::new();
    let status = env.json(&["status", "--json"]);
    let host = status["server"]["host"].as_str().unwrap().to_owned();
    assert!(!host.is_empty(), "the outward address when none was chosen");
    assert!(status["server"]["url"].as_str().unwrap().contains(&host));
    env.start();
    assert_eq!(
        env.json(&["status", "--json"])["server"]["host"],
        "127.0.0.1"
    );
    add_app(&env, "api", free_port());
    env.add(&env.write("r.html", "r"), &["--name", "report"]);
    let list = env.ok(&["list", "--all"]);
    let app_line = list.lines().find(|l| l.contains("[app]")).unwrap();
    assert!(app_line.contains(" api "), "{list}");
    assert!(list.lines().any(|l| l.contains(" report ")), "{list}");
    let logs = env.ok(&["logs", "api"]);
    assert_eq!(
        logs.trim(),
        "No output: app api has never run. Start it with 'drop start api'."
    );
}

/// `drop stop` says how many apps keep running; `drop stop --all` stops
/// them too.
#[test]
fn stop_counts_the_apps_that_keep_running_and_all_stops_them() {
    let env = DropEnv::new().env("DROP_STOP_GRACE_MS", "500");
    env.start();
    let (a, b) = (free_port(), free_port());
    add_app(&env, "one", a);
    add_app(&env, "two", b);
    env.ok(&["start", "one"]);
    env.ok(&["start", "two"]);
    let stop = env.ok(&["stop"]);
    let running = stop
        .lines()
        .find(|l| l.starts_with("2 apps keep running: "));
    let running = running.unwrap_or_else(|| panic!("{stop}"));
    assert!(running.contains("one") && running.contains("two"), "{stop}");
    env.start();
    let all = env.ok(&["stop", "--all"]);
    assert!(
        all.contains("App stopped: one") && all.contains("App stopped: two"),
        "{all}"
    );
    assert!(all.contains("Server stopped."), "{all}");
    assert!(!all.contains("keep running"), "{all}");
    for port in [a, b] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}

/// A registry that does not parse stops `drop start` with the error, and
/// no server is left serving nothing.
#[test]
fn start_with_a_registry_that_does_not_parse_fails_with_the_error() {
    let env = DropEnv::new();
    std::fs::write(env.home.path().join("pages.json"), "{\"broken\": ").unwrap();
    let port = free_port();
    let out = env.run(&[
        "start",
        "--port",
        &port.to_string(),
        "--no-tunnel",
        "--host",
        "127.0.0.1",
    ]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr(&out).contains("is not a valid drop registry"),
        "{}",
        stderr(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Server started"));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(env.server_pid(), None);
}

/// A writer killed mid-write leaves `.pages.json.tmp-*`, a copy of the
/// registry with its hashes; the next `drop add` removes it.
#[test]
fn temp_copies_of_the_registry_left_by_a_killed_writer_are_removed() {
    let env = DropEnv::new();
    let stale = env.home.path().join(".pages.json.tmp-99999-0");
    std::fs::write(&stale, "{\"x\": {\"password_hash\": \"sha256:00\"}}").unwrap();
    env.add(&env.write("a.txt", "a"), &[]);
    assert!(!stale.exists());
}

/// `start.lock` is owner-only, even when an older drop left it 0666.
#[test]
fn the_start_lock_is_owner_only() {
    let env = DropEnv::new();
    let lock = env.home.path().join("start.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    env.start();
    let mode = std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

/// An idle daemon does not wake up to poll: over 3 s its threads switch
/// context a handful of times at most (a 0.5 s registry poll made it about
/// 13 a second).
#[test]
fn an_idle_daemon_hardly_wakes_up() {
    let env = DropEnv::new();
    env.start();
    let pid = env.server_pid().unwrap();
    // About time itself: wakeups are a rate, counted over 3 s once the
    // start-up's last work has had a second to end.
    std::thread::sleep(Duration::from_secs(1));
    let before = context_switches(pid);
    std::thread::sleep(Duration::from_secs(3));
    let woke = context_switches(pid).saturating_sub(before);
    assert!(woke <= 9, "{woke} context switches in 3 s");
}

/// Voluntary and involuntary context switches of every thread of `pid`.
fn context_switches(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}
