//! What the daemon keeps running: app processes and tunnels, and the one
//! notion of a process drop started ([`ProcessId`]) that every stop goes
//! through.

pub mod apps;
pub mod process;
mod records;
pub mod supervisor;
pub mod tunnels;

pub use apps::{AppLaunch, AppProcess, AppRunner, AppStatus, SystemRunner};
pub use process::{ProcessId, Signal, StopOutcome};
pub use supervisor::{AppError, AppLimits, Started, Supervisor};
pub use tunnels::{TunnelKeeper, TunnelOutcome};
