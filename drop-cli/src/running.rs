//! What the files of a drop home say about its server: whether it runs (the
//! recorded pid is still the process that wrote it), whether it answers,
//! and why it failed to start.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use drop_core::supervise::ProcessId;
use drop_registry::{FileUse, ServerState, open_home_file};

use crate::error::CliError;

/// The saved state, if its pid is still the server that wrote it.
pub fn running_server(state: Option<&ServerState>) -> Option<&ServerState> {
    let state = state?;
    ProcessId::recorded(state.pid, state.start_time)
        .is_some_and(|id| id.is_alive())
        .then_some(state)
}

/// What the files of a home say of its server: the one answer `status`
/// and `doctor` give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCondition {
    /// Its recorded pid is still the server that wrote it.
    Running,
    /// Its pid is recorded but gone: a stopped server forgets its pid, so
    /// this one was killed, or crashed.
    Crashed {
        /// The pid it had.
        pid: u32,
    },
    /// Stopped.
    Stopped,
    /// Never started in this home.
    NeverStarted,
}

impl ServerCondition {
    /// From the saved state, if any.
    pub fn of(state: Option<&ServerState>) -> Self {
        match (state, running_server(state)) {
            (_, Some(_)) => ServerCondition::Running,
            (None, None) => ServerCondition::NeverStarted,
            (Some(state), None) => match state.pid {
                Some(pid) => ServerCondition::Crashed { pid },
                None => ServerCondition::Stopped,
            },
        }
    }

    /// `running`, `crashed` or `stopped`, as `status --json` says it.
    pub fn word(self) -> &'static str {
        match self {
            ServerCondition::Running => "running",
            ServerCondition::Crashed { .. } => "crashed",
            ServerCondition::Stopped | ServerCondition::NeverStarted => "stopped",
        }
    }
}

/// Whether the page server of `state` answers HTTP, asked where it binds
/// (on loopback when it binds every address).
pub fn answers_http(state: &ServerState) -> bool {
    let Some(addr) = probe_address(&state.bind, state.port) else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = b"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

/// Where to reach a server bound to `bind` (an address or a host name) on
/// `port` from this machine.
fn probe_address(bind: &str, port: u16) -> Option<SocketAddr> {
    let ip = match bind.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Ok(ip) => ip,
        // No address recorded (an older drop): it bound every address.
        Err(_) if bind.is_empty() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Err(_) => return (bind, port).to_socket_addrs().ok()?.next(),
    };
    Some(SocketAddr::new(ip, port))
}

/// Why the server just launched exited, from its log (what it wrote after
/// `log_start`): the error it ended with, with its stable code, read from
/// the JSON line `drop serve` writes after its `Error:` line.
pub fn launch_error(log_path: &Path, log_start: u64) -> CliError {
    let mut text = String::new();
    if let Ok(mut log) = open_home_file(log_path, FileUse::Read) {
        let _ = log.seek(SeekFrom::Start(log_start));
        let _ = log.read_to_string(&mut text);
    }
    let reported = text.lines().rev().find_map(|line| {
        let doc: serde_json::Value = serde_json::from_str(line).ok()?;
        let error = doc.get("error")?;
        Some(CliError::ServerExited {
            code: error["code"].as_str()?.to_owned(),
            message: error["message"].as_str()?.to_owned(),
        })
    });
    reported.unwrap_or_else(|| {
        CliError::ServerFailed(format!(
            "the server exited at once; see its log `{}`",
            log_path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_asked_where_it_binds() {
        let at = |bind: &str| probe_address(bind, 8080).map(|a| a.to_string());
        assert_eq!(at("0.0.0.0").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(at("").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(at("::").as_deref(), Some("[::1]:8080"));
        assert_eq!(at("127.0.0.2").as_deref(), Some("127.0.0.2:8080"));
        assert_eq!(at("::1").as_deref(), Some("[::1]:8080"));
        assert_eq!(at("localhost").map(|a| a.ends_with(":8080")), Some(true));
    }
}
