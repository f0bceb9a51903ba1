//! How commands ask the running daemon, over its control socket.

use std::time::Duration;

use drop_core::daemon::{ControlReply, ControlRequest, control};
use drop_registry::Home;

use crate::error::CliError;

/// How long a command waits for the daemon's reply; starting an app waits
/// for the app, up to its own timeout, and for its tunnel.
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a command waits for the daemon to take a registry change in;
/// past it the daemon still sees the change, by its own watch.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one request to the daemon of `home` and waits for its reply.
pub fn send(home: &Home, request: &ControlRequest) -> Result<ControlReply, CliError> {
    send_within(home, request, REPLY_TIMEOUT)
}

/// [`send`], waiting at most `timeout` for the reply.
pub fn send_within(
    home: &Home,
    request: &ControlRequest,
    timeout: Duration,
) -> Result<ControlReply, CliError> {
    Ok(control::request(
        &home.control_socket_path(),
        request,
        timeout,
    )?)
}

/// Tells a running daemon that the registry changed, so the change is live
/// when the command returns. Without a daemon there is nothing to tell; a
/// daemon that does not answer in time is said to, not waited for.
pub fn announce_registry_change(home: &Home) {
    if !home.control_socket_path().exists() {
        return;
    }
    let asked = control::request(
        &home.control_socket_path(),
        &ControlRequest::Reload,
        RELOAD_TIMEOUT,
    );
    let timed_out = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    };
    if let Err(control::ControlError::Io { source, .. }) = asked
        && timed_out(&source)
    {
        eprintln!(
            "Note: the server did not confirm the change within {} s; it picks it up by itself",
            RELOAD_TIMEOUT.as_secs()
        );
    }
}
