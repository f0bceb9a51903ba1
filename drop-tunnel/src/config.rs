//! How to run cloudflared: where to find it, where its files go, how long
//! it may take, and what it is given. Shared by the quick-tunnel provider
//! and the named-tunnel ones.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::{OriginHost, Protocol};
#[cfg(doc)]
use crate::{TunnelError, TunnelProvider};

/// Where and how to run cloudflared. Build it with
/// [`CloudflaredConfig::new`] and change the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CloudflaredConfig {
    /// A binary to use before any other, if it exists.
    pub binary: Option<PathBuf>,
    /// The `PATH` to search for `cloudflared`; `None` means this process's.
    pub search_path: Option<OsString>,
    /// Where to look after the search path, in order (where your installer
    /// puts it, for example).
    pub fallback_paths: Vec<PathBuf>,
    /// What [`TunnelError::NotFound`] tells the user to do.
    pub not_found_hint: Option<String>,
    /// A directory of the caller's for cloudflared's config files and its
    /// logs.
    pub state_dir: PathBuf,
    /// How long an open may take in all: cloudflared printing a URL and
    /// registering a connection, a quick tunnel's fallback from QUIC to
    /// HTTP/2 included (cloudflared needs about 10 s to show QUIC blocked;
    /// the rest is left for HTTP/2). The quick-tunnel request alone may
    /// take 15 s. Commands that manage named tunnels get twice as long
    /// each (each API call may take 15 s).
    pub start_timeout: Duration,
    /// How long cloudflared may take to end after SIGTERM before SIGKILL.
    /// It is told to finish its graceful shutdown a second before that.
    pub stop_grace: Duration,
    /// How to reach the edge. `None`: cloudflared's choice. For quick
    /// tunnels that is QUIC, and drop-tunnel falls back to HTTP/2 when UDP
    /// port 7844 turns out blocked; named tunnels fall back by themselves.
    pub protocol: Option<Protocol>,
    /// The `Host` header the local server at the address `open` is given
    /// gets: the visitor's (the default), `localhost:PORT`, or one of your
    /// choice. For a quick tunnel, every tunnel of the provider; for a
    /// named one, its main hostname ([`NamedRoute::with_origin_host`]
    /// sets it per route). The visitor's Host then comes as
    /// `X-Forwarded-Host`.
    ///
    /// [`NamedRoute::with_origin_host`]: crate::NamedRoute::with_origin_host
    pub origin_host: OriginHost,
    /// Linux: end cloudflared (SIGKILL) if the thread that started it dies,
    /// so a killed caller does not leave the port public. drop-tunnel
    /// starts it from the task that calls [`TunnelProvider::open`], that is
    /// from a Tokio worker thread, which lives as long as the runtime. No
    /// effect on other systems.
    pub die_with_parent: bool,
    /// More arguments after drop-tunnel's own: at the end of a quick
    /// tunnel's command line, before `run` for a named tunnel (so they are
    /// `cloudflared tunnel` flags). Not given to `create`, `list` and the
    /// other commands that manage named tunnels.
    pub extra_args: Vec<OsString>,
    /// More environment variables for cloudflared, set after the ones
    /// cloudflared would read from the caller's environment are removed.
    pub env: Vec<(OsString, OsString)>,
}

impl CloudflaredConfig {
    /// The defaults, keeping files in `state_dir`: cloudflared from `PATH`,
    /// QUIC with a fallback to HTTP/2, 30 s to come up, 5 s to stop, the
    /// visitor's Host.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        CloudflaredConfig {
            binary: None,
            search_path: None,
            fallback_paths: Vec::new(),
            not_found_hint: None,
            state_dir: state_dir.into(),
            start_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            protocol: None,
            origin_host: OriginHost::Public,
            die_with_parent: false,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}
