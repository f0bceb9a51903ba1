//! The long-running drop of one home: [`Daemon`] composes the page server,
//! the app supervisor, the tunnel keeper and the control socket, whose
//! typed protocol ([`ControlRequest`], [`ControlReply`]) lives here too.

pub mod control;
mod run;

pub use control::{ControlError, ControlReply, ControlRequest, ControlServer};
pub use run::{DEFAULT_PORT, Daemon, DaemonConfig, DaemonError, ServerLock, forget_pid, url_host};
