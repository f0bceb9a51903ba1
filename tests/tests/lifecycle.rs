//! The server's life and the registry's safety, through the real binary.

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
    assert!(log.contains("drop: serving"), "{log}");
}

/// A busy port is a clear error, and nothing is left running.
#[test]
fn busy_port_is_a_clear_error() {
    let env = DropEnv::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = env.run(&["start", "--port", &port.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
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

/// Clients that ask for a large file and never read it are cut off once
/// they stall, so they cannot hold every connection slot; meanwhile and
/// afterwards a fresh client is served.
#[test]
fn clients_that_never_read_do_not_hold_the_server() {
    use socket2::{Domain, Socket, Type};
    let env = DropEnv::new()
        .env("DROP_MAX_CONNECTIONS", "2")
        .env("DROP_WRITE_STALL_TIMEOUT_MS", "1000");
    let port = env.start();
    let big = env.write("big.bin", &"x".repeat(32 * 1024 * 1024));
    let (_, path) = env.add(&big, &[]);
    let stalled: Vec<Socket> = (0..2)
        .map(|_| {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket
                .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
                .unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            socket.send(request.as_bytes()).unwrap();
            socket
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(port, "/robots.txt").status, 200);
    let waited = started.elapsed();
    println!("a fresh request beside two stalled readers took {waited:?}");
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    drop(stalled);
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
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
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

/// A running server keeps serving the last good registry when `pages.json` breaks.
#[test]
fn server_keeps_the_last_good_registry() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, path) = env.add(&env.write("a.txt", "still here"), &[]);
    assert_eq!(get(port, &path).status, 200);
    std::fs::write(env.home.path().join("pages.json"), "{broken").unwrap();
    let res = get(port, &path);
    assert_eq!((res.status, res.text().as_str()), (200, "still here"));
}

/// A slowloris client (one header byte every 300 ms) is cut off by the
/// header timeout while fresh clients are served.
#[test]
fn slowloris_is_cut_off_while_others_are_served() {
    let env = DropEnv::new().env("DROP_HEADER_TIMEOUT_MS", "2000");
    let port = env.start();
    let (_, path) = env.add(&env.write("a.txt", "fresh"), &[]);
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_nonblocking(true).unwrap();
    let opened = Instant::now();
    let header = b"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let mut closed_after = None;
    for byte in header.iter().chain(std::iter::repeat(&b'a')).take(40) {
        if slow.write_all(&[*byte]).is_err() || server_hung_up(&mut slow) {
            closed_after = Some(opened.elapsed());
            break;
        }
        // A fresh client is answered while the slow one dawdles.
        assert_eq!(get(port, &path).text(), "fresh");
        std::thread::sleep(Duration::from_millis(300));
    }
    let closed_after = closed_after.expect("the slow connection was never closed");
    assert!(
        closed_after >= Duration::from_millis(1900),
        "closed too early: {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(6),
        "closed only after {closed_after:?}"
    );
}

/// Whether the server closed (or answered and closed) the connection.
fn server_hung_up(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        // 0: closed; more: an error answer (such as 408) before the close.
        Ok(0 | 1..) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}
