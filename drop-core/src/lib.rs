//! drop's engine: everything the long-running drop does, as a library a
//! test can run in-process.
//!
//! - [`page`]: page ids, `.drop-publish` manifests, the safe-path resolver
//!   and the [`Catalog`](page::Catalog) of pages the server keeps in memory.
//! - [`http`]: the page server ([`serve`](http::serve) over a
//!   [`Site`](http::Site)): accept loop, routes, answers, file cache.
//! - [`auth`]: passwords, signed sessions, login limits and the gate of
//!   protected pages.
//! - [`supervise`]: the one notion of a process drop started
//!   ([`ProcessId`](supervise::ProcessId)), the app
//!   [`Supervisor`](supervise::Supervisor) and the
//!   [`TunnelKeeper`](supervise::TunnelKeeper).
//! - [`daemon`]: the [`Daemon`](daemon::Daemon) that runs them together,
//!   and its typed control protocol.
//!
//! It builds behaviour on the records of `drop-registry` and the tunnels of
//! `drop-tunnel`; it reads no argv, prints nothing to stdout and decides no
//! exit code. The outside world comes in through traits the caller fills:
//! [`TunnelProvider`](drop_tunnel::TunnelProvider) for tunnels,
//! [`AppRunner`](supervise::AppRunner) for app processes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use drop_core::auth::SessionKey;
//! use drop_core::http::{ServerConfig, Site, serve};
//! use drop_core::page::Catalog;
//! use drop_registry::Home;
//! # async fn run() -> std::io::Result<()> {
//! let home = Home::new("/tmp/drop-home");
//! let key = SessionKey::load_or_create(&home.session_key_path())?;
//! let site = Arc::new(Site::new(Arc::new(Catalog::new(home.registry())), key));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, site, ServerConfig::default(), async { /* until ctrl-c */ }).await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod blocking;
pub mod daemon;
pub mod http;
mod log;
pub mod page;
pub mod supervise;

pub use log::printable;
