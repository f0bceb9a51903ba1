//! What the security review left, against the page server in-process:
//! hyper's own refusals carry drop's headers, `Host` is required once,
//! editor backups of secret files are never served, and idle sockets at
//! the connection cap do not make a visitor wait.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use drop_core::http::ServerConfig;
use drop_tests::engine::PageServer;
use drop_tests::http::{get, send_raw};

/// Requests hyper refuses before drop sees them (a head over the 16 KiB
/// cap, a request line it cannot parse) still get drop's headers.
#[test]
fn hypers_own_refusals_carry_the_security_headers() {
    let server = PageServer::start();
    let port = server.port();
    let huge = format!(
        "GET /robots.txt HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let res = send_raw(port, huge.as_bytes());
    assert_eq!(res.status, 431);
    res.assert_security_headers("431", "no-store");
    let res = send_raw(port, b"GET /robots.txt HTTP/1.1\r\nHost x\r\n\r\n");
    assert_eq!(res.status, 400);
    res.assert_security_headers("a broken header line", "no-store");
    let res = send_raw(port, b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(res.status, 400);
    res.assert_security_headers("a broken method", "no-store");
}

/// RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request with
/// two, is answered 400 (with drop's headers); HTTP/1.0 may omit it.
#[test]
fn a_request_needs_exactly_one_host_header() {
    let server = PageServer::start();
    let port = server.port();
    let res = send_raw(
        port,
        b"GET /robots.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(res.status, 400, "no Host");
    res.assert_security_headers("no Host", "no-store");
    let two = b"GET /robots.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n";
    let res = send_raw(port, two);
    assert_eq!(res.status, 400, "two Host headers");
    res.assert_security_headers("two Host headers", "no-store");
    let res = send_raw(port, b"GET /robots.txt HTTP/1.0\r\n\r\n");
    assert_eq!(res.status, 200, "HTTP/1.0 without Host");
    assert_eq!(get(port, "/robots.txt").status, 200);
}

/// A folder that publishes everything (`**`) still never serves the
/// backups and swap files editors leave of `.env`, `.envrc` or the
/// manifest.
#[test]
fn editor_backups_of_secret_files_are_never_served() {
    let server = PageServer::start();
    let port = server.port();
    server.write("site/.drop-publish", "**\n");
    server.write("site/index.html", "home");
    let secrets = [
        ".env~",
        "#.env#",
        ".#.env",
        "..env.swp",
        ".envrc~",
        ".envrc.bak",
        ".drop-publish~",
    ];
    for name in secrets {
        server.write(&format!("site/{name}"), "SECRET=1");
    }
    server.write("site/notes.txt~", "an ordinary backup");
    let site = server.publish(&server.work.path().join("site"));
    for name in secrets {
        let encoded = name.replace('#', "%23");
        let res = get(port, &format!("{}{encoded}", site.path));
        assert_eq!(res.status, 404, "{name}");
        assert!(!res.text().contains("SECRET"), "{name}");
    }
    assert_eq!(get(port, &format!("{}notes.txt~", site.path)).status, 200);
}

/// With every connection slot held by sockets that send nothing, a fresh
/// visitor is answered at once: the connection idle for longest makes
/// room, rather than the visitor waiting out the 10 s header timeout.
#[test]
fn idle_sockets_at_the_connection_cap_do_not_make_a_visitor_wait() {
    let server = PageServer::with_config(ServerConfig {
        max_connections: 4,
        ..ServerConfig::default()
    });
    let port = server.port();
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for socket in idle.iter_mut().step_by(2) {
        // Half a request head, then nothing.
        socket.write_all(b"GET /robots.txt HTTP/1.1\r\nHo").unwrap();
    }
    // The server took all eight: each past the cap closed the one idle for
    // longest, so the first four are closed and the last four fill the cap.
    drop_tests::wait_for("four closed to make room", Duration::from_secs(10), || {
        (idle.iter().filter(|s| closed_by_server(s)).count() == 4).then_some(())
    });
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(get(port, "/robots.txt").status, 200);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(2),
            "a visitor waited {waited:?}"
        );
    }
    drop(idle);
}

/// At the cap, room is made in a batch: a connection past it closes
/// several of the connections idle for longest at once, not one for each
/// newcomer, so a fresh visitor behind a flood of idle sockets does not
/// wait while the backlog drains one eviction at a time (figures in
/// README.md, Benchmarks). The fresh visitor is served.
#[test]
fn at_the_cap_idle_connections_make_room_in_a_batch() {
    let server = PageServer::with_config(ServerConfig {
        max_connections: 64,
        ..ServerConfig::default()
    });
    let port = server.port();
    // Accepted in order: the 64 fill the cap, the fresh request comes next.
    let idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert_eq!(get(port, "/robots.txt").status, 200, "the fresh visitor");
    // The batch closes while the test looks: polled until more than one
    // is closed, and the closed ones are the oldest.
    let closed = drop_tests::wait_for(
        "several of the oldest idle connections closed at once",
        Duration::from_secs(10),
        || {
            let closed: Vec<bool> = idle.iter().map(closed_by_server).collect();
            let count = closed.iter().filter(|c| **c).count();
            let oldest_first = closed[..count].iter().all(|c| *c);
            (count > 1 && oldest_first).then_some(count)
        },
    );
    assert!(closed < idle.len(), "not every idle connection: {closed}");
}

/// Whether the server closed `socket` (it sent nothing before closing).
fn closed_by_server(socket: &TcpStream) -> bool {
    socket.set_nonblocking(true).unwrap();
    let closed = match socket.peek(&mut [0u8; 1]) {
        Ok(read) => read == 0,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    socket.set_nonblocking(false).unwrap();
    closed
}
