//! The crate's one error type: why a tunnel could not be opened.

use std::path::PathBuf;
use std::time::Duration;

/// Why a tunnel could not be opened.
///
/// The variants a caller acts on differently are separate: a rate limit
/// calls for a long pause, a missing or unrunnable binary for a fix by
/// someone ([`TunnelError::is_permanent`]), the rest for a retry with
/// backoff. Messages are one line; the end of cloudflared's log, where
/// there is one, is kept apart in [`TunnelError::log_tail`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// No cloudflared binary at the explicit path, on the search path or in
    /// the fallback locations.
    #[error("cloudflared not found{}{}", hint_of(.hint), searched_of(.searched))]
    NotFound {
        /// The places looked in after the search path, in order.
        searched: Vec<PathBuf>,
        /// What the caller says to do about it (e.g. how to install it).
        hint: Option<String>,
    },
    /// The quick-tunnel service answered 429 (cloudflared prints it as an
    /// unmarshal error).
    #[error("rate limited by the quick-tunnel service; wait before opening another tunnel")]
    RateLimited,
    /// cloudflared could not reach the quick-tunnel service.
    #[error("no network: cloudflared could not reach the quick-tunnel service ({detail})")]
    NoNetwork {
        /// cloudflared's own words, e.g. `… no such host`.
        detail: String,
    },
    /// cloudflared refused its arguments or its environment: a version
    /// that does not know a flag drop-tunnel gives.
    #[error("cloudflared refused its arguments ({detail}); is it too old?")]
    Usage {
        /// cloudflared's own words.
        detail: String,
    },
    /// The tunnel process ended before the tunnel was up.
    #[error("cloudflared exited early ({})", describe_code(*code))]
    ExitedEarly {
        /// The exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// The last lines of its log.
        log_tail: String,
    },
    /// No public URL appeared before the deadline.
    #[error("cloudflared gave no public URL within {timeout:?}")]
    NoUrl {
        /// The deadline that passed.
        timeout: Duration,
        /// The last lines of its log.
        log_tail: String,
    },
    /// A URL appeared, but no edge connection registered before the
    /// deadline: the URL would not answer yet.
    #[error("cloudflared printed {url} but registered no connection within {timeout:?}")]
    NotReady {
        /// The URL that was printed.
        url: String,
        /// The deadline that passed.
        timeout: Duration,
        /// The last lines of its log.
        log_tail: String,
    },
    /// QUIC to the edge (UDP port 7844) fails on this network, and the
    /// configuration asked for QUIC only.
    #[error(
        "cloudflared cannot reach the edge over QUIC: UDP port 7844 is blocked on this network"
    )]
    UdpBlocked {
        /// The last lines of its log.
        log_tail: String,
    },
    /// The tunnel process could not be started.
    #[error("could not start `{}`", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file the provider needs (config, log) could not be written.
    #[error("could not write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl TunnelError {
    /// Whether retrying cannot help until someone changes the machine:
    /// cloudflared is missing, cannot run here (another architecture, not
    /// executable), or refuses the arguments it is given.
    pub fn is_permanent(&self) -> bool {
        match self {
            TunnelError::NotFound { .. } | TunnelError::Usage { .. } => true,
            TunnelError::Spawn { source, .. } => matches!(
                source
                    .raw_os_error()
                    .map(rustix::io::Errno::from_raw_os_error),
                Some(rustix::io::Errno::NOEXEC | rustix::io::Errno::ACCESS)
            ),
            _ => false,
        }
    }

    /// The last lines of cloudflared's log, for failures that have them.
    /// Kept out of the message, which is one line for the user.
    pub fn log_tail(&self) -> Option<&str> {
        match self {
            TunnelError::ExitedEarly { log_tail, .. }
            | TunnelError::NoUrl { log_tail, .. }
            | TunnelError::NotReady { log_tail, .. }
            | TunnelError::UdpBlocked { log_tail } => Some(log_tail),
            _ => None,
        }
    }
}

pub(crate) fn describe_code(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_owned(),
    }
}

fn hint_of(hint: &Option<String>) -> String {
    hint.as_deref().map_or(String::new(), |h| format!(". {h}"))
}

fn searched_of(searched: &[PathBuf]) -> String {
    if searched.is_empty() {
        return " (looked on PATH)".to_owned();
    }
    let places: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    format!(" (looked on PATH, then at {})", places.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_where_it_looked_and_the_callers_hint() {
        let bare = TunnelError::NotFound {
            searched: Vec::new(),
            hint: None,
        };
        assert_eq!(bare.to_string(), "cloudflared not found (looked on PATH)");
        let hinted = TunnelError::NotFound {
            searched: vec!["/opt/cf/cloudflared".into()],
            hint: Some("Run ./install.sh".into()),
        };
        assert_eq!(
            hinted.to_string(),
            "cloudflared not found. Run ./install.sh (looked on PATH, then at /opt/cf/cloudflared)"
        );
    }

    #[test]
    fn early_exit_names_the_code_and_keeps_the_log_apart() {
        let err = TunnelError::ExitedEarly {
            code: Some(1),
            log_tail: "failed to parse quick Tunnel ID".into(),
        };
        assert_eq!(err.to_string(), "cloudflared exited early (exit code 1)");
        assert_eq!(err.log_tail(), Some("failed to parse quick Tunnel ID"));
    }

    #[test]
    fn what_no_retry_can_mend_is_permanent() {
        let not_found = TunnelError::NotFound {
            searched: Vec::new(),
            hint: None,
        };
        assert!(not_found.is_permanent());
        let spawn = |errno: rustix::io::Errno| TunnelError::Spawn {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(errno.raw_os_error()),
        };
        assert!(
            spawn(rustix::io::Errno::NOEXEC).is_permanent(),
            "another architecture"
        );
        assert!(
            spawn(rustix::io::Errno::ACCESS).is_permanent(),
            "not executable"
        );
        assert!(
            !spawn(rustix::io::Errno::AGAIN).is_permanent(),
            "out of processes for now"
        );
        assert!(!TunnelError::RateLimited.is_permanent());
        let usage = TunnelError::Usage {
            detail: "flag provided but not defined: -x".into(),
        };
        assert!(usage.is_permanent());
    }
}
