//! The time the page server goes by when it decides whether a page has
//! expired and whether a one-time link is still held: the system's, or one
//! a test moves.

use std::fmt;
use std::time::SystemTime;

/// Where the page server reads the time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The time now.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
