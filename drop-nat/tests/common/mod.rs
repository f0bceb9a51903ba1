//! Tiny HTTP servers on loopback that play IP-echo services.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use drop_nat::NatConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A service answering every GET with `status` and `body`, after `delay`.
/// Returns its URL; the server lives as long as the test's runtime.
pub async fn echo_after(delay: Duration, status: u16, body: &str) -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = url_of(listener.local_addr().unwrap());
    let response = format!(
        "HTTP/1.1 {status} Echo\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(answer(stream, delay, response.clone()));
        }
    });
    url
}

/// A service answering at once.
pub async fn echo(status: u16, body: &str) -> String {
    echo_after(Duration::ZERO, status, body).await
}

/// A service that accepts connections and never says a word.
pub async fn silent() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = url_of(listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            held.push(listener.accept().await.unwrap().0);
        }
    });
    url
}

/// A loopback port nobody listens on: connections are refused.
pub fn refusing() -> String {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    url_of(listener.local_addr().unwrap())
}

/// A configuration pointing only at `services`.
pub fn config(services: &[&str], deadline: Duration) -> NatConfig {
    let services = services.iter().map(|url| url.to_string()).collect();
    NatConfig { services, deadline }
}

fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

async fn answer(mut stream: TcpStream, delay: Duration, response: String) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    tokio::time::sleep(delay).await;
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
