//! `server.json` and `tunnel.json`: what a running server and its tunnel are.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    /// Fields of other drop versions, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The server's tunnel, as the seed stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelState {
    /// The public URL, `https://….trycloudflare.com`.
    pub url: String,
    /// The tunnel process.
    pub pid: u32,
    /// Fields of other drop versions, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
