//! The files the Python drop (0.2) kept beside `pages.json`: `host` and
//! `port` (the address in the URLs it handed out) and `server.pid` (its
//! server's pid). This drop reads them so that an upgrade keeps every URL
//! and finds a Python server that still runs; it never writes them.

use std::fs;
use std::path::Path;

/// What the Python drop's own files say. Missing or unreadable files are
/// `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyFiles {
    /// `host`: the host it put in URLs (`drop start --host`).
    pub host: Option<String>,
    /// `port`: its server's port.
    pub port: Option<u16>,
    /// `server.pid`: its server's pid, while it thought one ran.
    pub server_pid: Option<u32>,
}

impl LegacyFiles {
    /// The Python drop's files in the home folder `root`.
    pub fn read(root: &Path) -> Self {
        let text = |name: &str| {
            fs::read_to_string(root.join(name))
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        };
        LegacyFiles {
            host: text(LEGACY_HOST),
            port: text(LEGACY_PORT)
                .and_then(|p| p.parse().ok())
                .filter(|&p| p > 0),
            server_pid: text(LEGACY_SERVER_PID)
                .and_then(|p| p.parse().ok())
                .filter(|&p| p > 1),
        }
    }

    /// Whether any of them is there: the home was used by the Python drop.
    pub fn any(&self) -> bool {
        self.host.is_some() || self.port.is_some() || self.server_pid.is_some()
    }
}

/// The Python drop's file names.
pub(crate) const LEGACY_HOST: &str = "host";
pub(crate) const LEGACY_PORT: &str = "port";
pub(crate) const LEGACY_SERVER_PID: &str = "server.pid";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_python_drop_wrote_and_ignores_junk() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LegacyFiles::read(dir.path()), LegacyFiles::default());
        assert!(!LegacyFiles::read(dir.path()).any());
        fs::write(dir.path().join("host"), "203.0.113.7").unwrap();
        fs::write(dir.path().join("port"), "9000").unwrap();
        fs::write(dir.path().join("server.pid"), "4242\n").unwrap();
        let files = LegacyFiles::read(dir.path());
        assert_eq!(files.host.as_deref(), Some("203.0.113.7"));
        assert_eq!(files.port, Some(9000));
        assert_eq!(files.server_pid, Some(4242));
        fs::write(dir.path().join("port"), "ninety").unwrap();
        fs::write(dir.path().join("server.pid"), "1").unwrap();
        let files = LegacyFiles::read(dir.path());
        assert_eq!((files.port, files.server_pid), (None, None));
    }
}
