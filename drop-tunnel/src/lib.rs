//! Exposes a local port on a public URL, and keeps it exposed.
//!
//! Behind NAT, a program can still hand out a URL that works from anywhere:
//! this crate runs a cloudflared quick tunnel (`https://<words>.trycloudflare.com`),
//! says "up" only once the edge has registered a connection, and keeps it
//! alive: a lost connection is left to cloudflared's own reconnects (the
//! URL stays), a tunnel that dies or stays unreachable is replaced with
//! backoff, and every new URL is reported.
//!
//! Quick tunnels get a new URL at every start. For URLs that stay, it also
//! runs **named tunnels** on the user's own domain (see below). It is not a
//! tunnel server, does not forward traffic itself, and knows nothing of
//! where the caller records URLs.
//!
//! **Runtime.** Everything runs on Tokio (a runtime with I/O, time and
//! process support, such as `#[tokio::main]`). Unix only: tunnel processes
//! are ended as process groups.
//!
//! The main types:
//! - [`TunnelProvider`]: opens a [`Tunnel`] (URL, process id, protocol,
//!   `wait`, `healthy`, `close`). `MockTunnelProvider` comes with the
//!   `mocks` feature.
//! - [`Cloudflared`] with [`CloudflaredConfig`]: the real provider
//!   (`Cloudflared::open` needs no trait in scope). It
//!   gives cloudflared a clean environment (no `TUNNEL_*` variable of the
//!   caller's can turn the quick tunnel into something else), a config file
//!   of its own, a log and a metrics port per process, and falls back to
//!   HTTP/2 where UDP is blocked. Its failures are typed in [`TunnelError`]:
//!   not found, rate limited, no network, refused arguments, exited early,
//!   no URL in time, UDP blocked.
//! - [`OriginHost`]: the `Host` the local server gets, the visitor's by
//!   default, or `localhost:PORT` for dev servers that check it.
//! - [`Watchdog`]: keeps one tunnel open and reports each change as a
//!   [`TunnelEvent`] on its [`TunnelEvents`]; [`Watchdog::current_url`]
//!   says where it is now; [`Backoff`] decides the pauses.
//!
//! Named tunnels, once the user ran `cloudflared tunnel login` (which opens
//! a browser once to pick the domain and writes `cert.pem`):
//! - [`NamedTunnels`]: finds that certificate ([`CertificateSearch`],
//!   cloudflared's own places unless told otherwise), lists the account's
//!   tunnels, creates one (or finds it again, fetching its credentials if
//!   they are not on this machine), routes a hostname to it with a DNS
//!   record, deletes it.
//! - [`NamedCloudflared`]: a [`TunnelProvider`] that runs one
//!   [`NamedTunnel`] with ingress rules of its own, the main hostname to
//!   the local address it is given and each [`NamedRoute`] to its service.
//!   Its URL, `https://<hostname>`, is known in advance; it is up once a
//!   connection registered. Change the routes, call
//!   [`Watchdog::reopen`], and the tunnel restarts with them, every URL
//!   the same.
//! - The failures a user meets are typed, each saying what to do: not
//!   logged in, a hostname outside the certificate's domain, a DNS record
//!   already there, a tunnel deleted from the dashboard, credentials
//!   missing or invalid.
//!
//! ```no_run
//! use std::sync::Arc;
//! use drop_tunnel::{
//!     CertificateSearch, CloudflaredConfig, NamedRoute, NamedTunnels, Watchdog, WatchdogConfig,
//! };
//!
//! # async fn run() -> Result<(), drop_tunnel::TunnelError> {
//! let config = CloudflaredConfig::new("/tmp/my-app-tunnel");
//! let tunnels = NamedTunnels::new(config, CertificateSearch::for_this_user());
//! let tunnel = tunnels.create("my-app").await?; // or the one made before
//! tunnels.route_dns(&tunnel, "app.example.com").await?;
//! tunnels.route_dns(&tunnel, "api.app.example.com").await?;
//! let provider = Arc::new(tunnels.provider(tunnel, "app.example.com")?);
//! let local = "127.0.0.1:8080".parse().unwrap();
//! let (watchdog, _events) = Watchdog::spawn(provider.clone(), local, WatchdogConfig::default());
//! // Later: one more hostname, same URLs for the others.
//! let api = NamedRoute::new("api.app.example.com", "http://127.0.0.1:5000")?;
//! provider.set_routes(vec![api])?;
//! watchdog.reopen();
//! # Ok(())
//! # }
//! ```
//!
//! One tunnel, with no watchdog to replace it, is one call:
//!
//! ```no_run
//! use drop_tunnel::{Cloudflared, CloudflaredConfig};
//!
//! # async fn run() -> Result<(), drop_tunnel::TunnelError> {
//! let provider = Cloudflared::new(CloudflaredConfig::new("/tmp/my-app-tunnel"));
//! let mut tunnel = provider.open("127.0.0.1:8080".parse().unwrap()).await?;
//! println!("public at {}", tunnel.url());
//! tunnel.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! If the program is killed, its tunnel outlives it unless
//! [`CloudflaredConfig::die_with_parent`] is set (Linux only); callers that
//! restart can find leftovers by [`Cloudflared::config_file`] (or
//! [`NamedCloudflared::config_file`]), which every process of a provider
//! carries as `--config`.
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
//!         TunnelEvent::Down { reason, retry_in } => {
//!             eprintln!("down: {reason}; retry in {} s", retry_in.as_secs())
//!         }
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
mod named;
mod origin_host;
mod parse;
mod process;
mod provider;
mod startup;
mod watchdog;

pub use backoff::{Backoff, BackoffPolicy};
pub use cloudflared::Cloudflared;
pub use config::CloudflaredConfig;
pub use error::TunnelError;
pub use named::{
    CertificateSearch, DnsRoute, NamedCloudflared, NamedRoute, NamedTunnel, NamedTunnels,
};
pub use origin_host::OriginHost;
#[cfg(any(test, feature = "mocks"))]
pub use provider::{MockTunnelProcess, MockTunnelProvider};
pub use provider::{Protocol, Tunnel, TunnelExit, TunnelProcess, TunnelProvider};
pub use watchdog::{DownReason, TunnelEvent, TunnelEvents, Watchdog, WatchdogConfig};
