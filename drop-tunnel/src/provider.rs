//! The boundary to the outside world: a provider opens tunnels, a tunnel is
//! a URL backed by a process.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::TunnelError;

/// Opens tunnels that expose a local address on a public URL.
///
/// [`Cloudflared`](crate::Cloudflared) is the real one; tests use
/// `MockTunnelProvider` (feature `mocks`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)] // must precede async_trait
#[async_trait::async_trait]
pub trait TunnelProvider: Send + Sync {
    /// Opens a tunnel to `local` and returns once its public URL answers.
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError>;
}

#[async_trait::async_trait]
impl<P: TunnelProvider + ?Sized> TunnelProvider for Arc<P> {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        (**self).open(local).await
    }
}

/// The process behind an open tunnel, as the provider runs it.
///
/// Implement it for a new provider; users hold a [`Tunnel`] instead.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)] // must precede async_trait
#[async_trait::async_trait]
pub trait TunnelProcess: Send + Sync {
    /// Waits until the tunnel ends by itself. Cancel-safe, and once it has
    /// ended every call returns the same exit at once.
    async fn wait(&mut self) -> TunnelExit;

    /// Whether the tunnel can carry traffic now (an edge connection is up).
    /// A provider that cannot tell says `true` while the process lives.
    async fn healthy(&self) -> bool;

    /// Ends the tunnel and everything its process started. Idempotent.
    async fn close(&mut self);
}

/// How a tunnel process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelExit {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The last lines of its log, for the user.
    pub log_tail: String,
}

/// How a tunnel reaches Cloudflare's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// QUIC over UDP port 7844: cloudflared's choice for quick tunnels.
    Quic,
    /// HTTP/2 over TCP port 7844: the way out where UDP is blocked.
    Http2,
}

impl Protocol {
    /// The value of cloudflared's `--protocol`: `quic` or `http2`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Quic => "quic",
            Protocol::Http2 => "http2",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An open tunnel: its public URL, and the process that keeps it open.
///
/// Dropping it without [`close`](Tunnel::close) still kills the process
/// (providers make sure of it), but only `close` waits for it to end.
pub struct Tunnel {
    url: String,
    pid: Option<u32>,
    protocol: Option<Protocol>,
    process: Box<dyn TunnelProcess>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("url", &self.url)
            .field("pid", &self.pid)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// A tunnel reachable at `url`, kept open by `process` (whose id is
    /// `pid`, when there is an operating-system process).
    pub fn new(url: impl Into<String>, pid: Option<u32>, process: Box<dyn TunnelProcess>) -> Self {
        Tunnel {
            url: url.into(),
            pid,
            protocol: None,
            process,
        }
    }

    /// The same tunnel, saying how it reaches the edge.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The public URL, e.g. `https://a-b-c-d.trycloudflare.com`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The id of the process that keeps the tunnel open.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How it reaches the edge, when the provider says.
    pub fn protocol(&self) -> Option<Protocol> {
        self.protocol
    }

    /// Waits until the tunnel ends by itself. Cancel-safe.
    pub async fn wait(&mut self) -> TunnelExit {
        self.process.wait().await
    }

    /// Whether the tunnel can carry traffic now.
    pub async fn healthy(&self) -> bool {
        self.process.healthy().await
    }

    /// Ends the tunnel and everything its process started. Idempotent.
    pub async fn close(&mut self) {
        self.process.close().await;
    }
}
