//! drop's domain: page ids, `.drop-publish` manifests, the safe-path
//! resolver and the page server.
//!
//! This crate decides what drop does with the records of `drop-registry`;
//! it reads no argv and prints nothing to stdout. The page server
//! ([`serve`]) takes its listener and a shutdown future from the caller, so
//! tests and the `drop` daemon run the very same code.
//!
//! ```no_run
//! use std::sync::Arc;
//! use drop_core::{ServerConfig, Site, serve};
//! use drop_registry::Home;
//! # async fn run() -> std::io::Result<()> {
//! let home = Home::new("/tmp/drop-home");
//! let key = drop_core::SessionKey::load_or_create(&home.session_key_path())?;
//! let site = Arc::new(Site::new(home.registry(), key));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, site, ServerConfig::default(), async { /* until ctrl-c */ }).await;
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod apps;
pub mod cache;
pub mod id;
pub mod limiter;
pub mod login;
pub mod manifest;
pub mod password;
pub mod process;
mod respond;
pub mod safe_path;
mod server;
pub mod session;
mod site;
mod stall;

pub use id::new_page_id;
pub use manifest::{MANIFEST_NAME, Manifest, ManifestError};
pub use password::{Verdict, generate_password, hash_password, verify_password};
pub use respond::{Answer, AnswerBody, Conditions};
pub use server::{PeerAddr, ServerConfig, bind_listener, serve};
pub use session::SessionKey;
pub use site::{PageEntry, Site};
