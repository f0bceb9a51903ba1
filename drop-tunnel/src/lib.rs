//! Exposes a local port on a public URL, and keeps it exposed.
//!
//! Behind NAT, a program can still hand out a URL that works from anywhere:
//! this crate runs a cloudflared quick tunnel (`https://<words>.trycloudflare.com`),
//! says "up" only once the URL answers, and keeps it alive: when the tunnel
//! dies or loses its connection, it opens a new one with backoff and
//! reports the new URL.
//!
//! It is not a tunnel server, does not forward traffic itself, and knows
//! nothing of custom domains or of where the caller records URLs. Quick
//! tunnels get a new URL at every start; nothing here tries to keep one.
//! Unix only: tunnel processes are ended as process groups.
//!
//! The main types:
//! - [`TunnelProvider`]: opens a [`Tunnel`] (URL, process id, `wait`,
//!   `healthy`, `close`). `MockTunnelProvider` comes with the `mocks`
//!   feature.
//! - [`Cloudflared`] with [`CloudflaredConfig`]: the real provider. Its
//!   failures are typed in [`TunnelError`]: not found, rate limited, no
//!   network, exited early, no URL in time.
//! - [`Watchdog`]: keeps one tunnel open and sends a [`TunnelEvent`] for
//!   each change; [`Backoff`] decides the pauses.
//!
//! ```no_run
//! use drop_tunnel::{Cloudflared, CloudflaredConfig, TunnelEvent, Watchdog, WatchdogConfig};
//!
//! # async fn run() {
//! let provider = Cloudflared::new(CloudflaredConfig::new("/tmp/my-app-tunnel"));
//! let local = "127.0.0.1:8080".parse().unwrap();
//! let (watchdog, mut events) = Watchdog::spawn(provider, local, WatchdogConfig::default());
//! while let Some(event) = events.recv().await {
//!     match event {
//!         TunnelEvent::Up { url, .. } => println!("public at {url}"),
//!         TunnelEvent::Down { reason, retry_in } => eprintln!("down: {reason}; retry in {retry_in:?}"),
//!         TunnelEvent::GaveUp { reason } => { eprintln!("gave up: {reason}"); break }
//!     }
//! }
//! watchdog.stop().await;
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod cloudflared;
mod error;
mod logfile;
mod metrics;
mod parse;
mod process;
mod provider;
mod watchdog;

pub use backoff::{Backoff, BackoffPolicy};
pub use cloudflared::{Cloudflared, CloudflaredConfig};
pub use error::TunnelError;
#[cfg(any(test, feature = "mocks"))]
pub use provider::{MockTunnelProcess, MockTunnelProvider};
pub use provider::{Tunnel, TunnelExit, TunnelProcess, TunnelProvider};
pub use watchdog::{DownReason, TunnelEvent, Watchdog, WatchdogConfig};
