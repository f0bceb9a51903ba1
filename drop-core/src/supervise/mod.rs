//! What the daemon keeps running: app processes and tunnels, and the one
//! notion of a process drop started ([`ProcessId`]) that every stop goes
//! through.

mod app_logs;
mod apps;
#[cfg(test)]
pub(crate) mod fakes;
pub mod legacy;
pub mod process;
mod records;
pub mod sockets;
mod supervisor;
mod tunnels;
pub mod verify;

pub use app_logs::{
    MAX_APP_LOG_BYTES, app_log_path, log_tail, previous_part, read_log_tail, remove_app_logs,
};
#[cfg(any(test, feature = "mocks"))]
pub use apps::MockAppRunner;
pub use apps::{AppLaunch, AppProcess, AppRunner, AppStatus, SystemRunner, process_to_stop};
pub use legacy::{LegacyApp, LegacyServer};
pub use process::{ProcessId, Signal, StopOutcome};
pub use supervisor::{AppError, AppLimits, AppReach, Started, Supervisor};
pub use tunnels::{
    AppTarget, FIRST_OUTCOME_TIMEOUT, NamedTunnelAccess, QuickTunnels, TunnelKeeper, TunnelOutcome,
    TunnelSource, end_leftovers,
};
#[cfg(any(test, feature = "mocks"))]
pub use verify::MockLinkChecker;
pub use verify::{LinkCheck, LinkChecker, LinkConfig, LinkError, Origin, Probes, PublicChecker};
