//! An upgrade from the Python drop 0.2, on a home it really wrote: the
//! Python drop is installed in a venv, publishes a file, a folder, a
//! password page and two apps (one running, one never started) and runs
//! its server; then this drop takes over the same home.

use std::time::{Duration, Instant};

use drop_tests::http::get;
use drop_tests::login::{is_form, login, session_cookie};
use drop_tests::python_drop::PythonDrop;
use drop_tests::{DropEnv, ProcessId, alive, free_port};

const TEST_APP: &str = env!("CARGO_BIN_EXE_test-app");

/// Waits until something answers on `port`, or panics after `within`.
fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The path of the URL on a `Published: URL` or `App registered: URL` line.
fn url_path(output: &str) -> String {
    let url = output
        .lines()
        .find_map(|l| l.strip_prefix("Published: "))
        .expect("a Published line");
    format!("/{}", url.splitn(4, '/').nth(3).expect("a path"))
}

/// Processes the Python drop started, ended when the test ends whatever
/// happened (this test started them, and checks each is still what it was).
struct Started(Vec<ProcessId>);

impl Drop for Started {
    fn drop(&mut self) {
        for process in &self.0 {
            process.terminate_group(Duration::ZERO);
        }
    }
}

/// Every old URL works unchanged, the old password logs in (and the hash
/// upgrade is noted once), the Python server is recognised and stopped,
/// its running app adopted and stopped by `drop stop <app>`, its
/// never-started app is stopped (not crashed), and the Python drop still
/// reads the home afterwards.
#[test]
fn an_upgrade_from_the_python_drop_keeps_urls_passwords_apps_and_stops_its_server() {
    let env = DropEnv::new();
    let python_home = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(env.home.path(), python_home.path().join(".drop")).unwrap();
    let py = PythonDrop {
        home: python_home.path().to_owned(),
        work: env.work.path().to_owned(),
    };
    let mut started = Started(Vec::new());

    // The Python drop at work.
    let port = free_port();
    let start = py.ok(&["start", "--port", &port.to_string(), "--host", "127.0.0.1"]);
    assert!(
        start.contains(&format!("Server started: http://127.0.0.1:{port}")),
        "{start}"
    );
    wait_for_port(port, Duration::from_secs(20));
    let server_pid: u32 = std::fs::read_to_string(env.home.path().join("server.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    started.0.push(ProcessId::of(server_pid).unwrap());
    let report = env.write("report.html", "<h1>report</h1>");
    env.write("site/index.html", "<p>site</p>");
    env.write("site/style.css", "p {}");
    env.write("site/.drop-publish", "index.html\n*.css\n");
    let secret = env.write("secret.html", "the secret");
    let file_url = url_path(&py.ok(&["add", report.to_str().unwrap()]));
    let site_url = url_path(&py.ok(&["add", "site", "--name", "demo"]));
    let secret_url = url_path(&py.ok(&["add", secret.to_str().unwrap(), "--password", "hunter22"]));
    let (live_port, idle_port) = (free_port(), free_port());
    for (name, app_port) in [("live", live_port), ("idle", idle_port)] {
        std::fs::create_dir_all(env.work.path().join(name)).unwrap();
        let command = format!("{TEST_APP} {app_port}");
        py.ok(&[
            "add",
            name,
            "--run",
            &command,
            "--port",
            &app_port.to_string(),
            "--name",
            name,
        ]);
    }
    assert!(py.ok(&["start", "live"]).contains("App started"));
    wait_for_port(live_port, Duration::from_secs(10));
    let pages: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.home.path().join("pages.json")).unwrap())
            .unwrap();
    let app_pid = |name: &str| {
        pages
            .as_object()
            .unwrap()
            .values()
            .find(|r| r["name"] == name)
            .unwrap()["pid"]
            .as_u64()
            .unwrap() as u32
    };
    let live_pid = app_pid("live");
    assert_eq!(app_pid("idle"), 0, "the Python drop's never-started app");
    started.0.push(ProcessId::of(live_pid).unwrap());
    for path in [&file_url, &site_url] {
        assert_eq!(
            get(port, path).status,
            200,
            "the Python server serves {path}"
        );
    }

    // This drop on the same home, the Python server still running.
    let status = env.ok(&["status"]);
    assert!(
        status.contains(&format!(
            "Server: http://127.0.0.1:{port} (running: the Python drop's server, pid {server_pid};"
        )),
        "{status}"
    );
    let list = env.json(&["list", "--all", "--json"]);
    let app = |name: &str| {
        list["pages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(app("idle")["status"], "stopped");
    assert_eq!(app("live")["status"], "running");
    assert_eq!(app("live")["pid"], live_pid);
    let refused = env.run(&["start"]);
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(
        error.contains(&format!(
            "Error: the Python drop's server (pid {server_pid}) still serves this home on port {port}: run 'drop stop'"
        )),
        "{error}"
    );
    let stop = env.ok(&["stop"]);
    assert!(
        stop.contains(&format!(
            "Stopped the Python drop's server (pid {server_pid}, port {port})."
        )),
        "{stop}"
    );
    assert!(stop.contains("1 app keeps running: live."), "{stop}");
    assert!(!alive(server_pid), "the Python server is gone");

    // Started with no flags: the Python drop's host and port hold.
    let start = env.ok(&["start", "--no-tunnel"]);
    assert_eq!(
        start.lines().next().unwrap(),
        format!("Server started: http://127.0.0.1:{port} (local)")
    );
    assert!(!start.contains("URLs changed"), "{start}");
    assert!(
        env.server_log().contains("adopted app"),
        "{}",
        env.server_log()
    );
    let res = get(port, &file_url);
    assert_eq!((res.status, res.text().as_str()), (200, "<h1>report</h1>"));
    assert_eq!(get(port, &site_url).text(), "<p>site</p>");
    assert_eq!(get(port, &format!("{site_url}style.css")).text(), "p {}");
    assert!(
        is_form(&get(port, &secret_url)),
        "the password page asks for it"
    );
    let logged_in = login(port, &secret_url, "hunter22");
    assert_eq!(logged_in.status, 303, "the old password logs in");
    let cookie = session_cookie(&logged_in);
    let page = drop_tests::http::request(port, "GET", &secret_url, &[("Cookie", &cookie)]);
    assert_eq!(page.text(), "the secret");
    let noted = env.run(&["list", "--all"]);
    let notes = String::from_utf8_lossy(&noted.stderr);
    assert!(notes.contains("Note: the password of page"), "{notes}");
    assert!(
        notes.contains("the Python drop can no longer check it"),
        "{notes}"
    );
    assert!(
        env.run(&["list", "--all"]).stderr.is_empty(),
        "the note is said once"
    );

    // Its running app was adopted: this drop stops it.
    assert_eq!(app_after(&env, "live")["status"], "running");
    assert_eq!(env.ok(&["stop", "live"]).trim(), "App stopped: live");
    assert!(!alive(live_pid), "the adopted app is ended");
    assert!(std::net::TcpStream::connect(("127.0.0.1", live_port)).is_err());
    assert_eq!(app_after(&env, "idle")["status"], "stopped");
    let logs = env.ok(&["logs", "idle"]);
    assert!(logs.contains("app idle has never run"), "{logs}");

    // Going back: the Python drop still reads what this drop wrote, and
    // starts an app this drop then recognises as running.
    let back = py.ok(&["list", "--all"]);
    assert!(back.contains(&file_url[3..11]), "{back}");
    assert!(py.ok(&["status"]).contains("Pages:"));
    assert!(py.ok(&["start", "idle"]).contains("App started"));
    wait_for_port(idle_port, Duration::from_secs(10));
    let idle = app_after(&env, "idle");
    assert_eq!(idle["status"], "running", "{idle}");
    started
        .0
        .push(ProcessId::of(idle["pid"].as_u64().unwrap() as u32).unwrap());
    assert_eq!(env.ok(&["stop", "idle"]).trim(), "App stopped: idle");
}

fn app_after(env: &DropEnv, name: &str) -> serde_json::Value {
    let list = env.json(&["list", "--all", "--json"]);
    list["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
        .clone()
}
