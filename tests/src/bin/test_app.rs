//! A tiny web app for drop's app tests:
//! `test-app PORT [--bind ADDR] [--exit-after SECS] [--check-host]`.
//! Listens on ADDR (127.0.0.1 unless told), prints a line when it listens,
//! answers every request with `hello from test-app on PORT`, and with
//! `--exit-after` exits with code 7 after that many seconds, as a crashing
//! app would. With `--check-host` it refuses a `Host` other than localhost
//! or an IP address as Vite's dev server does (403, "Blocked request. This
//! host … is not allowed"), for tests on machines without Node.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args
        .get(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: test-app PORT");
    if let Some(secs) = args
        .iter()
        .position(|a| a == "--exit-after")
        .and_then(|i| args.get(i + 1))
    {
        let secs: f64 = secs.parse().expect("seconds");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(secs));
            eprintln!("test-app: giving up after {secs} s");
            std::process::exit(7);
        });
    }
    let bind = args
        .iter()
        .position(|a| a == "--bind")
        .and_then(|i| args.get(i + 1))
        .map_or("127.0.0.1", String::as_str);
    let check_host = args.iter().any(|a| a == "--check-host");
    let listener = TcpListener::bind((bind, port)).expect("bind the app port");
    println!("test-app: listening on {port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let host = header(&head, "host").unwrap_or_default();
            let (status, body) = match check_host && !allowed(&host) {
                true => ("403 Forbidden", blocked(&host)),
                false => ("200 OK", format!("hello from test-app on {port}")),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Seen-Host: {host}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        });
    }
}

/// The value of header `name` in a request head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Vite's default: localhost and its subdomains, and IP addresses.
fn allowed(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost" || name.ends_with(".localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Vite's refusal, in its words.
fn blocked(host: &str) -> String {
    let name = host.split(':').next().unwrap_or(host);
    format!(
        "Blocked request. This host (\"{name}\") is not allowed.\nTo allow this host, add \"{name}\" to `server.allowedHosts` in vite.config.js."
    )
}
