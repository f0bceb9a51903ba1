//! How commands ask the running daemon, over its control socket.

use std::time::Duration;

use drop_core::daemon::{ControlReply, ControlRequest, control};
use drop_registry::Home;

use crate::error::CliError;

/// How long a command waits for the daemon's reply; starting an app waits
/// for the app, up to its own timeout, and for its tunnel.
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// Sends one request to the daemon of `home` and waits for its reply.
pub fn send(home: &Home, request: &ControlRequest) -> Result<ControlReply, CliError> {
    Ok(control::request(
        &home.control_socket_path(),
        request,
        REPLY_TIMEOUT,
    )?)
}

/// Tells a running daemon that the registry changed, so the change is live
/// when the command returns. Without a daemon there is nothing to tell.
pub fn announce_registry_change(home: &Home) {
    if home.control_socket_path().exists() {
        let _ = send(home, &ControlRequest::Reload);
    }
}
