//! `server.json` and `tunnel.json`: what a running server and its tunnel are.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{TunnelChoice, TunnelPhase, TunnelProtocol, TunnelReason};

/// The page server: who it is while it runs, and the address it serves on.
/// The address stays after a stop, so URLs keep their host and port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerState {
    /// The server's process id while it runs.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The process's start time (`/proc/<pid>/stat` field 22), so that a
    /// reused pid is never taken for the server.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// The port it listens on.
    pub port: u16,
    /// The host put in URLs, when the user chose one.
    #[serde(default)]
    pub host: Option<String>,
    /// The address it binds.
    #[serde(default)]
    pub bind: String,
    /// When it started, RFC 3339.
    #[serde(default)]
    pub started_at: String,
    /// Whether the server and its apps are tunneled. Kept across restarts,
    /// so a restarted daemon and apps started later behave the same.
    #[serde(default)]
    pub tunnel: bool,
    /// What the user asked for at the last `drop start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_choice: Option<TunnelChoice>,
    /// Why tunnels are on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_reason: Option<TunnelReason>,
    /// Fields of other drop versions, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ServerState {
    /// A state for a server on `port` that has never run.
    pub fn new(port: u16) -> Self {
        ServerState {
            pid: None,
            start_time: None,
            port,
            host: None,
            bind: String::new(),
            started_at: String::new(),
            tunnel: false,
            tunnel_choice: None,
            tunnel_reason: None,
            extra: Map::new(),
        }
    }
}

/// The server's tunnel: the Python drop's `{"url", "pid"}`, plus its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelState {
    /// The public URL, `https://….trycloudflare.com`; empty while down.
    #[serde(default)]
    pub url: String,
    /// The tunnel process while one runs.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The tunnel process's start time, for identity checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// Where the tunnel is in its life; the Python drop's file, which has no
    /// state, is a tunnel that is up.
    #[serde(default = "up_by_default")]
    pub state: TunnelPhase,
    /// Why it is not up, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How it reaches the edge, while it has a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TunnelProtocol>,
    /// When its URL was last seen to work from outside, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// Fields of other drop versions, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for TunnelState {
    /// A tunnel being opened.
    fn default() -> Self {
        TunnelState {
            url: String::new(),
            pid: None,
            start_time: None,
            state: TunnelPhase::Starting,
            error: None,
            protocol: None,
            verified_at: None,
            extra: Map::new(),
        }
    }
}

impl TunnelState {
    /// Whether the tunnel is up, so its URL works.
    pub fn is_up(&self) -> bool {
        self.state == TunnelPhase::Up && !self.url.is_empty()
    }

    /// The URL to hand out: while up, and while reconnecting with it.
    pub fn current_url(&self) -> Option<&str> {
        (self.state.holds_url() && !self.url.is_empty()).then_some(self.url.as_str())
    }
}

fn up_by_default() -> TunnelPhase {
    TunnelPhase::Up
}
