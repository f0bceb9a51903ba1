//! The page server: `serve` answers `/p/<id>/…` from a [`Site`] on a
//! listener the caller binds, until the caller's shutdown future completes.
//! Paths are resolved by [`crate::page`], logins decided by
//! [`crate::auth`]; this module speaks HTTP.

mod answer;
mod cache;
pub mod clock;
mod login;
mod pages;
mod parse_errors;
pub mod probe;
pub mod receipts;
mod request;
mod routes;
mod sendfile;
mod server;
mod site;
mod slots;
mod stall;

pub use clock::{Clock, SystemClock};
pub use pages::NOT_FOUND_PAGE;
pub use probe::Probes;
pub use receipts::Receipts;
pub use server::{ServerConfig, bind_listener, serve};
pub use site::Site;
