//! The crate's one error type: why a tunnel could not be opened.

use std::path::PathBuf;
use std::time::Duration;

/// Why a tunnel could not be opened.
///
/// The variants a caller acts on differently are separate: a rate limit
/// calls for a long pause, a missing binary for an install, the rest for a
/// retry with backoff.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// No cloudflared binary at the explicit path, on `PATH` or in the
    /// fallback location.
    #[error("cloudflared not found. Run ./install.sh")]
    NotFound,
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
    #[error(
        "cloudflared printed {url} but registered no connection within {timeout:?} \
         (UDP port 7844 may be blocked: try `--protocol http2`)"
    )]
    NotReady {
        /// The URL that was printed.
        url: String,
        /// The deadline that passed.
        timeout: Duration,
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
    /// The last lines of cloudflared's log, for failures that have them.
    /// Kept out of the message, which is one line for the user.
    pub fn log_tail(&self) -> Option<&str> {
        match self {
            TunnelError::ExitedEarly { log_tail, .. }
            | TunnelError::NoUrl { log_tail, .. }
            | TunnelError::NotReady { log_tail, .. } => Some(log_tail),
            _ => None,
        }
    }

    /// Whether retrying cannot help until someone changes the machine
    /// (installs cloudflared, for example).
    pub fn is_permanent(&self) -> bool {
        matches!(self, TunnelError::NotFound)
    }
}

pub(crate) fn describe_code(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message_tells_how_to_install() {
        assert_eq!(
            TunnelError::NotFound.to_string(),
            "cloudflared not found. Run ./install.sh"
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
    fn only_a_missing_binary_is_permanent() {
        assert!(TunnelError::NotFound.is_permanent());
        assert!(!TunnelError::RateLimited.is_permanent());
    }
}
