//! Exposes a local port on a public URL, and keeps it exposed.
//!
//! Behind NAT, a program can still hand out a URL that works from anywhere:
//! this crate runs a cloudflared quick tunnel (`https://<words>.trycloudflare.com`),
//! says "up" only once the edge has registered a connection, and keeps it
//! alive: a lost connection is left to cloudflared's own reconnects (the
//! URL stays), a tunnel that dies or stays unreachable is replaced with
//! backoff, and every new URL is reported.
//!
//! It is not a tunnel server, does not forward traffic itself, and knows
//! nothing of custom domains or of where the caller records URLs. Quick
//! tunnels get a new URL at every start; nothing here tries to keep one.
//!
//! **Runtime.** Everything runs on Tokio (a runtime with I/O, time and
//! process support, such as `#[tokio::main]`). Unix only: tunnel processes
//! are ended as process groups.
//!
//! The main types:
//! - [`TunnelProvider`]: opens a [`Tunnel`] (URL, process id, protocol,
//!   `wait`, `healthy`, `close`). `MockTunnelProvider` comes with the
//!   `mocks` feature.
//! - [`Cloudflared`] with [`CloudflaredConfig`]: the real provider. It
//!   gives cloudflared a clean environment (no `TUNNEL_*` variable of the
//!   caller's can turn the quick tunnel into something else), a config file
//!   of its own, a log and a metrics port per process, and falls back to
//!   HTTP/2 where UDP is blocked. Its failures are typed in [`TunnelError`]:
//!   not found, rate limited, no network, refused arguments, exited early,
//!   no URL in time, UDP blocked.
//! - [`Watchdog`]: keeps one tunnel open and sends a [`TunnelEvent`] for
//!   each change; [`Watchdog::current_url`] says where it is now;
//!   [`Backoff`] decides the pauses.
//!
//! If the program is killed, its tunnel outlives it unless
//! [`CloudflaredConfig::die_with_parent`] is set (Linux only); callers that
//! restart can find leftovers by [`Cloudflared::config_file`], which every
//! process of a provider carries as `--config`.
//!
//! ```no_run
//! use drop_tunnel::{Cloudflared, CloudflaredConfig, TunnelEvent, Watchdog, WatchdogConfig};
//!
//! # async fn run() {
//! let mut config = CloudflaredConfig::new("/tmp/my-app-tunnel");
//! config.die_with_parent = true;
//! let local = "127.0.0.1:8080".parse().unwrap();
//! let (watchdog, mut events) =
//!     Watchdog::spawn(Cloudflared::new(config), local, WatchdogConfig::default());
//! while let Some(event) = events.recv().await {
//!     match event {
//!         TunnelEvent::Up { url, .. } => println!("public at {url}"),
//!         TunnelEvent::Down { reason, retry_in } => eprintln!("down: {reason}; retry in {retry_in:?}"),
//!         TunnelEvent::GaveUp { reason } => { eprintln!("gave up: {reason}"); break }
//!         _ => {}
//!     }
//! }
//! watchdog.stop().await;
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod cloudflared;
mod config;
mod error;
mod launch;
mod logfile;
mod metrics;
mod parse;
mod process;
mod provider;
mod watchdog;

pub use backoff::{Backoff, BackoffPolicy};
pub use cloudflared::Cloudflared;
pub use config::CloudflaredConfig;
pub use error::TunnelError;
#[cfg(any(test, feature = "mocks"))]
pub use provider::{MockTunnelProcess, MockTunnelProvider};
pub use provider::{Protocol, Tunnel, TunnelExit, TunnelProcess, TunnelProvider};
pub use watchdog::{DownReason, TunnelEvent, Watchdog, WatchdogConfig};
