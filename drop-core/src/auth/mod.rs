//! Protected pages: password hashes, signed sessions, login rate limits,
//! the login page, and the gate that puts them together for the page
//! server. Nothing here speaks HTTP: the page server asks the gate and
//! answers.

pub(crate) mod form;
pub(crate) mod gate;
pub(crate) mod limiter;
mod password;
mod session;

pub use password::{Verdict, generate_password, hash_password, verify_password};
pub use session::SessionKey;
