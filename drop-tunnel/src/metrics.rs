//! cloudflared's metrics server on loopback: `/quicktunnel` and `/ready`,
//! asked with a few lines of HTTP/1.1 rather than an HTTP client crate.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::parse;

/// How long one question may take; the server is on this machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The answers are tiny; anything longer is not cloudflared.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// The metrics server of one cloudflared process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metrics {
    addr: SocketAddr,
}

impl Metrics {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Metrics { addr }
    }

    /// The public URL from `/quicktunnel`; `None` when the server does not
    /// answer or has no quick tunnel.
    pub(crate) async fn url(&self) -> Option<String> {
        let (status, body) = self.get("/quicktunnel").await.ok()?;
        if status != 200 {
            return None;
        }
        parse::url_from_hostname(&parse::quick_tunnel_hostname(&body)?)
    }

    /// `Some(true)` when `/ready` answers 200 (an edge connection is
    /// registered), `Some(false)` for any other answer, `None` when the
    /// server does not answer at all.
    pub(crate) async fn ready(&self) -> Option<bool> {
        let (status, _) = self.get("/ready").await.ok()?;
        Some(status == 200)
    }

    async fn get(&self, path: &str) -> io::Result<(u16, String)> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(path))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    }

    async fn exchange(&self, path: &str) -> io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(self.addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut response)
            .await?;
        split_response(&String::from_utf8_lossy(&response))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))
    }
}

/// The status code and the body of a raw HTTP/1.x response.
fn split_response(response: &str) -> Option<(u16, String)> {
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status_line = head.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    Some((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers every connection with `response`.
    async fn serve(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_the_url_from_quicktunnel() {
        let addr = serve(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 45\r\n\r\n{\"hostname\":\"a-b-c-d.trycloudflare.com\"}",
        )
        .await;
        let metrics = Metrics::new(addr);
        assert_eq!(
            metrics.url().await.as_deref(),
            Some("https://a-b-c-d.trycloudflare.com")
        );
    }

    #[tokio::test]
    async fn a_503_from_ready_means_not_ready() {
        let addr = serve(
            "HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":503,\"readyConnections\":0}",
        )
        .await;
        assert_eq!(Metrics::new(addr).ready().await, Some(false));
    }

    #[tokio::test]
    async fn no_server_means_no_answer() {
        // Bind and release a port so nothing listens there.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let metrics = Metrics::new(addr);
        assert_eq!(metrics.ready().await, None);
        assert_eq!(metrics.url().await, None);
    }

    #[test]
    fn garbage_is_not_a_response() {
        assert_eq!(split_response("hello\r\n\r\n"), None);
        assert_eq!(
            split_response("HTTP/1.0 200 OK\r\n\r\nOK\n"),
            Some((200, "OK\n".to_owned()))
        );
    }
}
