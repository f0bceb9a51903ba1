//! A tiny web app for drop's app tests:
//! `test-app PORT [--bind ADDR] [--exit-after SECS]`. Listens on ADDR
//! (127.0.0.1 unless told), prints a line when it listens, answers every
//! request with `hello from test-app on PORT`, and with `--exit-after`
//! exits with code 7 after that many seconds, as a crashing app would.

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
    let listener = TcpListener::bind((bind, port)).expect("bind the app port");
    println!("test-app: listening on {port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = format!("hello from test-app on {port}");
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        });
    }
}
