//! Is this machine reachable from the internet, or behind NAT?
//!
//! `drop start` asks this before publishing: a public machine gets a direct
//! URL, a machine behind NAT gets a tunnel, and when the answer is unknown
//! (offline, every service failed) it says so. The rule is simple:
//! the address the outside world sees is compared with this machine's own
//! addresses; different means NAT.
//!
//! The crate knows no other drop crate, so any Rust project can embed it.
//! It is *not* a STUN client: it does not tell NAT types apart, open ports
//! or test whether inbound connections actually arrive.
//!
//! - [`detect`] runs the whole thing from a [`NatConfig`] and returns a
//!   [`Reachability`]; [`detect_with`] takes any [`ExternalIpSource`] and a
//!   [`LocalAddrs`], for tests and other sources.
//! - [`EchoRace`] asks several [`HttpEchoSource`]s at once and keeps the
//!   first valid answer, within a total deadline.
//! - [`LocalAddrs`] lists every interface address, not only the default
//!   route's; [`outward_ip`] is that default route's address alone.
//! - [`NatConfig`] says which services to ask and for how long; the crate
//!   reads no environment variable ([`NatConfig::with_services`] takes a
//!   list as a user would write it).
//! - With the `mocks` feature, `MockExternalIpSource` is a mockall fake.
//!
//! ```no_run
//! use drop_nat::{NatConfig, Reachability};
//!
//! # async fn run() -> Result<(), drop_nat::NatError> {
//! let config = NatConfig::default().with_services("https://api.ipify.org")?;
//! match drop_nat::detect(&config).await {
//!     Reachability::Public { ip } => println!("serve at http://{ip}:8080"),
//!     Reachability::BehindNat { external, .. } => println!("behind NAT ({external}): tunnel"),
//!     Reachability::Unknown { reason } => println!("cannot tell: {reason}"),
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod detect;
mod error;
mod interfaces;
mod race;
mod source;
mod verdict;

pub use config::{DEFAULT_DEADLINE, DEFAULT_SERVICES, NatConfig};
pub use detect::{detect, detect_with};
pub use error::NatError;
pub use interfaces::{LocalAddrs, outward_ip};
pub use race::EchoRace;
#[cfg(any(test, feature = "mocks"))]
pub use source::MockExternalIpSource;
pub use source::{ExternalIpSource, HttpEchoSource, parse_echo_body};
pub use verdict::{Reachability, could_be_public};
