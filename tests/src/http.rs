//! A deliberately simple HTTP/1.1 client over a raw socket: it sends the
//! request line byte for byte, so paths reach the server unnormalised.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Asserts the headers every answer of drop's page server carries, as
    /// README.md promises, with `cache` as its `Cache-Control`; `what`
    /// names the request in a failure.
    pub fn assert_security_headers(&self, what: &str, cache: &str) {
        assert_eq!(
            self.header("referrer-policy"),
            Some("no-referrer"),
            "{what}"
        );
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            self.header("x-robots-tag"),
            Some("noindex, nofollow"),
            "{what}"
        );
        assert_eq!(self.header("cache-control"), Some(cache), "{what}");
        assert_eq!(self.header("server"), None, "{what}");
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header (case-insensitive name).
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET` with no extra headers.
pub fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, &[])
}

/// Sends one request with `Connection: close` and reads the whole answer.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
        .into_bytes();
    for (k, v) in headers {
        raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    send_raw(port, &raw)
}

/// Sends one request with a body from the local address `from`
/// (any 127.x.y.z works on loopback), with `Connection: close`.
pub fn request_from(
    from: [u8; 4],
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    for (k, v) in headers {
        raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    send_raw_from(from, port, &raw)
}

/// Sends raw bytes and parses the answer.
pub fn send_raw(port: u16, raw: &[u8]) -> Response {
    send_raw_from([127, 0, 0, 1], port, raw)
}

/// Sends raw bytes from the local address `from` and parses the answer.
pub fn send_raw_from(from: [u8; 4], port: u16, raw: &[u8]) -> Response {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind the client address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect to drop");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(raw).expect("send request");
    let is_head = raw.starts_with(b"HEAD ");
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    // Until the server closes, or the body its Content-Length announced is
    // in (some servers keep the connection open despite `Connection: close`).
    while is_head || !body_complete(&bytes) {
        match stream.read(&mut chunk).expect("read response") {
            0 => break,
            n => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    parse(&bytes)
}

fn body_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|len| bytes.len() >= end + 4 + len)
}

fn parse(bytes: &[u8]) -> Response {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}
