//! The server's life and the registry's safety, through the real binary:
//! the daemon's process, its state files, its settings and the registry
//! commands write. How the page server treats slow clients and a broken
//! registry is tested in-process (`page_server.rs`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use drop_tests::http::get;
use drop_tests::{DropEnv, alive};

/// `start` returns once the server answers; a second `start` says it already
/// runs; `stop` ends the process; `status` follows along.
#[test]
fn start_twice_then_stop() {
    let env = DropEnv::new();
    let port = env.start();
    assert_eq!(get(port, "/robots.txt").status, 200);
    let pid = env.server_pid().expect("pid recorded");
    assert!(alive(pid));
    let again = env.ok(&["start"]);
    assert_eq!(
        again.trim(),
        format!("Server already running: http://127.0.0.1:{port}")
    );
    assert_eq!(env.server_pid(), Some(pid), "no second server");

    let status = env.json(&["status", "--json"]);
    assert_eq!(status["server"]["running"], true);
    assert_eq!(status["server"]["url"], format!("http://127.0.0.1:{port}"));
    assert!(
        env.ok(&["status"])
            .starts_with(&format!("Server: http://127.0.0.1:{port} (running)\n"))
    );

    assert_eq!(env.ok(&["stop"]).trim(), "Server stopped.");
    assert!(!alive(pid), "server process is gone");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port is closed"
    );
    assert_eq!(env.ok(&["stop"]).trim(), "Server is not running.");
    assert_eq!(env.json(&["status", "--json"])["server"]["running"], false);
}

/// A server bound to another loopback address (`DROP_BIND`) is found there:
/// `start` waits for it and reports it, `stop` ends it.
#[test]
fn a_server_bound_to_another_address_is_found_there() {
    let env = DropEnv::new().env("DROP_BIND", "127.0.0.2");
    let out = env.ok(&["start", "--port", "0", "--host", "127.0.0.2", "--no-tunnel"]);
    let port = drop_tests::started_port(out.lines().next().unwrap()).expect("a port");
    let pid = env.server_pid().expect("pid recorded");
    assert!(TcpStream::connect(("127.0.0.2", port)).is_ok());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "it binds 127.0.0.2 only, so start had to ask there"
    );
    assert_eq!(env.json(&["status", "--json"])["server"]["running"], true);
    assert_eq!(env.ok(&["stop"]).trim(), "Server stopped.");
    assert!(!alive(pid));
}

/// The server keeps running after the command that started it exits, with
/// its output in a log file rather than the caller's pipes.
#[test]
fn server_outlives_start_and_logs_to_a_file() {
    let env = DropEnv::new();
    let mut child = env
        .command(&["start", "--port", "0", "--host", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let pid = env.server_pid().unwrap();
    assert!(alive(pid));
    let log = std::fs::read_to_string(env.home.path().join("logs/server.log")).unwrap();
    // Each line of the daemon's log begins with its time and level.
    let serving = log
        .lines()
        .find(|l| l.contains("INFO serving"))
        .unwrap_or_default();
    let at = serving.split_whitespace().next().unwrap_or_default();
    assert!(
        drop_registry::parse_rfc3339(at).is_some(),
        "a time first: {log}"
    );
}

/// A busy port is a clear error, and nothing is left running.
#[test]
fn busy_port_is_a_clear_error() {
    let env = DropEnv::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = env.fails(&["start", "--port", &port.to_string()]);
    assert_eq!(
        err.lines().next().unwrap(),
        format!(
            "Error: port {port} is already in use; stop what uses it or choose another with `drop start --port N`"
        )
    );
    assert_eq!(env.json(&["status", "--json"])["server"]["running"], false);
}

/// The state files are owner-only, whatever the umask.
#[test]
fn state_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let env = DropEnv::new();
    env.start();
    env.add(&env.write("a.txt", "a"), &[]);
    let mode = |rel: &str| {
        std::fs::metadata(env.home.path().join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("logs"), 0o700);
    for file in [
        "pages.json",
        "pages.json.lock",
        "server.json",
        "server.lock",
        "session.key",
        "control.sock",
        "logs/server.log",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

/// 32 `drop add` processes at once: 32 records, none lost, file still valid.
#[test]
fn concurrent_adds_lose_nothing() {
    let env = DropEnv::new();
    let files: Vec<_> = (0..32)
        .map(|i| env.write(&format!("f{i}.txt"), &i.to_string()))
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            env.command(&["add", f.to_str().unwrap(), "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.push(doc["id"].as_str().unwrap().to_owned());
    }
    let text = std::fs::read_to_string(env.home.path().join("pages.json")).unwrap();
    let pages: serde_json::Value = serde_json::from_str(&text).unwrap();
    let map = pages.as_object().unwrap();
    assert_eq!(map.len(), 32);
    for id in &ids {
        assert!(map.contains_key(id), "{id} lost");
    }
}

/// A corrupt `pages.json` stops every command with an error naming it; its
/// bytes stay, a copy is kept, and no command writes over it.
#[test]
fn corrupt_registry_is_never_reset() {
    let env = DropEnv::new();
    let pages = env.home.path().join("pages.json");
    let file = env.write("a.txt", "a");
    for bytes in [
        &b"{\"abc\": {\"source\": \"/x\", "[..],
        b"",
        b"\0\0\0\0",
        b"[1, 2, 3]",
    ] {
        std::fs::write(&pages, bytes).unwrap();
        for args in [
            vec!["add", file.to_str().unwrap()],
            vec!["list", "--all"],
            vec!["status"],
            vec!["remove", "abc"],
            vec!["cleanup"],
        ] {
            let out = env.run(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let err = String::from_utf8(out.stderr).unwrap();
            let expected = format!("Error: `{}` is not a valid drop registry", pages.display());
            assert!(err.starts_with(&expected), "{args:?}: {err}");
            assert_eq!(std::fs::read(&pages).unwrap(), bytes, "{args:?} rewrote it");
        }
        let copies: Vec<_> = std::fs::read_dir(env.home.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("pages.json.corrupt-")
            })
            .filter(|p| std::fs::read(p).unwrap() == bytes)
            .collect();
        assert_eq!(copies.len(), 1, "one copy of these bytes is kept");
    }
}

/// `DROP_HEADER_TIMEOUT_MS` reaches the daemon's server: a client that
/// never finishes its headers is cut off after that long, not after the
/// default 10 s.
#[test]
fn the_header_timeout_setting_reaches_the_server() {
    let env = DropEnv::new().env("DROP_HEADER_TIMEOUT_MS", "1000");
    let port = env.start();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    slow.write_all(b"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 512];
    // Until the server closes; an error answer (such as 408) may come first.
    let closed = loop {
        match slow.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) => break e.kind() != std::io::ErrorKind::WouldBlock,
        }
    };
    let after = opened.elapsed();
    assert!(closed, "the connection was still open after {after:?}");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&after),
        "closed after {after:?}"
    );
}

/// Visitors who leave in the middle of a large download end only their
/// own downloads: the daemon, whose SIGPIPE keeps its default action for
/// the sake of its command line, lives on and serves the next visitor.
#[test]
fn visitors_leaving_mid_download_do_not_end_the_server() {
    let env = DropEnv::new();
    let port = env.start();
    let big = env.write("big.bin", &"x".repeat(16 * 1024 * 1024));
    let (_, path) = env.add(&big, &[]);
    let pid = env.server_pid().expect("pid recorded");
    for _ in 0..20 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = [0u8; 64 * 1024];
        stream.read_exact(&mut first).unwrap();
        // Gone with bytes unread: the close is a reset, and the server's
        // next writes to this connection fail.
        drop(stream);
    }
    assert_eq!(get(port, &path).body.len(), 16 * 1024 * 1024);
    assert!(alive(pid), "the server ended");
}

/// A bad `DROP_*` value stops only the commands that start or configure
/// something with it; the others (stop included) say once, on stderr,
/// which value is bad and how to fix it, and run with its default.
#[test]
fn a_bad_setting_stops_only_commands_that_start_something() {
    let env = DropEnv::new();
    env.start();
    let pid = env.server_pid().expect("pid recorded");
    let (id, _) = env.add(&env.write("a.html", "a"), &[]);
    let bad = |args: &[&str]| {
        env.command(args)
            .env("DROP_WORKERS", "0")
            .env("DROP_NAT_DEADLINE_MS", "abc")
            .output()
            .unwrap()
    };
    for args in [
        &["list", "--all"][..],
        &["status"],
        &["status", "--json"],
        &["qr", &id],
        &["logs", &id],
        &["add", "a.html"],
        &["tunnel", "status"],
        &["stop"],
    ] {
        let out = bad(args);
        let said = String::from_utf8_lossy(&out.stderr);
        let notes = said
            .lines()
            .filter(|l| l.starts_with("Note: DROP_WORKERS is `0`; set it to a whole number"))
            .count();
        assert_eq!(notes, 1, "drop {args:?}: {said}");
        assert!(
            said.contains("Note: DROP_NAT_DEADLINE_MS is `abc`"),
            "drop {args:?}: {said}"
        );
        assert!(!said.contains("Error: DROP_"), "drop {args:?}: {said}");
    }
    assert!(!alive(pid), "drop stop stopped the server");
    let out = bad(&["start", "--port", "0", "--no-tunnel"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("Error: DROP_WORKERS is `0`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.server_pid(), None, "no server started");
}

/// A server bound to loopback alone (`DROP_BIND=127.0.0.1`) whose URLs
/// name another address is said, as it starts, to open on this machine
/// only; one whose URLs are loopback's is not.
#[test]
fn a_loopback_server_with_urls_for_other_machines_says_so() {
    let env = DropEnv::new();
    let out = env.run(&["start", "--port", "0", "--no-tunnel", "--host", "10.1.2.3"]);
    assert!(out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("(this machine only: the server listens on 127.0.0.1 alone (DROP_BIND)"),
        "{said}"
    );
    env.ok(&["stop"]);
    let out = env.run(&["start", "--port", "0", "--no-tunnel", "--host", "127.0.0.1"]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("this machine only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
