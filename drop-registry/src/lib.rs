//! drop's on-disk state: the page registry (`pages.json`), the server's tunnel
//! (`tunnel.json`), the server state (`server.json`) and what was learned of
//! networks (`networks.json`), all in one drop home.
//!
//! Every change to `pages.json` is a read-modify-write under an exclusive
//! lock on `pages.json.lock` (never the data file itself, whose inode the
//! rename replaces), written to a temp file, fsynced, renamed over the old
//! file and followed by a directory fsync. A crash leaves the old or the new
//! file, never half of one. A registry that does not parse is never reset:
//! while it changed moments ago (another program writing it in place) it is
//! read again; one that stays so fails with [`RegistryError::Corrupt`] and
//! a copy is kept.
//!
//! A home belongs to the user drop runs as, and so does everything in it:
//! [`Home::ensure`] refuses any other, and [`open_home_file`] opens its
//! files without following links.
//!
//! This crate stores records; it does not decide what they mean. Serving,
//! passwords and processes live in `drop-core`.
//!
//! ```no_run
//! use drop_registry::{Home, Record};
//! # fn main() -> Result<(), drop_registry::RegistryError> {
//! let home = Home::new("/tmp/drop-home");
//! home.ensure()?;
//! let registry = home.registry();
//! registry.update(|pages| {
//!     pages.insert("abcdefghjkmnpqrs".into(), Record::static_page("/srv/a.txt".into(), false));
//!     Ok::<_, drop_registry::RegistryError>(())
//! })?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod atomic;
mod error;
mod home;
mod home_file;
mod legacy;
mod named;
mod networks;
mod pages;
mod record;
mod server_state;
mod states;
mod store;
mod time;

pub use atomic::write_atomic;
pub use error::RegistryError;
pub use home::Home;
pub use home_file::{FileUse, open_home_file};
pub use legacy::LegacyFiles;
pub use named::NamedTunnelSetup;
pub use networks::{NetworkNote, NetworkNotes};
pub use pages::{Lookup, Pages};
pub use record::{MAX_VISITORS, Record};
pub use server_state::{ServerState, TunnelState};
pub use states::{PageKind, TunnelChoice, TunnelPhase, TunnelProtocol, TunnelReason};
pub use store::{FileStamp, Registry};
pub use time::{now_rfc3339, parse_rfc3339, rfc3339, rfc3339_millis};
