//! Protected pages: password hashes, signed sessions, login rate limits,
//! the login page, and the gate that puts them together. Nothing here
//! speaks HTTP: the page server asks the gate and answers.

pub mod form;
pub mod gate;
pub mod limiter;
pub mod password;
pub mod session;

pub use gate::{Gate, LoginOutcome, LoginRequest};
pub use password::{Verdict, generate_password, hash_password, verify_password};
pub use session::SessionKey;
