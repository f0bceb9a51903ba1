//! The drop home (`~/.drop` or `$DROP_HOME`) and the files in it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::home_file::{check_contents, check_owner, ensure_home_folder};
use crate::legacy::LEGACY_SERVER_PID;
use crate::store::read_json;
use crate::{LegacyFiles, Registry, RegistryError, ServerState, TunnelState, write_atomic};

/// A drop home folder. Only names paths; [`Home::ensure`] creates it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the home and its `logs/` folder, owner-only (0700), and
    /// checks that nothing in them belongs to another user. A home of
    /// another user is refused before anything in it is changed: they could
    /// plant a registry naming files only this user may read, or a log that
    /// links elsewhere (SECURITY.md §4). `logs/` must be a real folder.
    pub fn ensure(&self) -> Result<(), RegistryError> {
        ensure_home_folder(&self.root, true)?;
        ensure_home_folder(&self.logs_dir(), false)?;
        check_contents(&self.root)
    }

    /// Refuses a home that is not the effective user's alone: the home, or
    /// anything in it or in its folders, of another user (SECURITY.md §4).
    /// It only looks: nothing is created, changed or read as trusted, so
    /// every command runs it first, before it reads a pid to signal. A home
    /// not made yet passes.
    pub fn check_owned(&self) -> Result<(), RegistryError> {
        let meta = match fs::metadata(&self.root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(RegistryError::Read {
                    path: self.root.clone(),
                    source,
                });
            }
        };
        check_owner(&self.root, &meta)?;
        match meta.is_dir() {
            true => check_contents(&self.root),
            // Not a folder: what uses it says so.
            false => Ok(()),
        }
    }

    /// The page registry, `pages.json`.
    pub fn registry(&self) -> Registry {
        Registry::at(self.root.join("pages.json"))
    }

    /// Where logs go: one file for the server, one per tunnel and app.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The lock a running server holds for its whole life.
    pub fn server_lock_path(&self) -> PathBuf {
        self.root.join("server.lock")
    }

    /// The daemon's control socket: how drop commands talk to the server.
    pub fn control_socket_path(&self) -> PathBuf {
        self.root.join("control.sock")
    }

    /// The key that signs login cookies (created by the server, 0600).
    pub fn session_key_path(&self) -> PathBuf {
        self.root.join("session.key")
    }

    /// `server.json`: the running server's identity and address.
    pub fn server_state_path(&self) -> PathBuf {
        self.root.join("server.json")
    }

    /// `tunnel.json`: the server's tunnel.
    pub fn tunnel_state_path(&self) -> PathBuf {
        self.root.join("tunnel.json")
    }

    /// What the Python drop's own files (`host`, `port`, `server.pid`) say.
    pub fn legacy_files(&self) -> LegacyFiles {
        LegacyFiles::read(&self.root)
    }

    /// Forgets the Python drop's server pid, once that server is stopped.
    pub fn forget_legacy_server_pid(&self) {
        let _ = fs::remove_file(self.root.join(LEGACY_SERVER_PID));
    }

    /// The saved server state, if any.
    pub fn load_server_state(&self) -> Result<Option<ServerState>, RegistryError> {
        read_json(&self.server_state_path())
    }

    /// Saves the server state atomically.
    pub fn save_server_state(&self, state: &ServerState) -> Result<(), RegistryError> {
        let json = serde_json::to_vec_pretty(state).expect("state always serialises");
        write_atomic(&self.server_state_path(), &json)
    }

    /// The server's tunnel, if one is recorded.
    pub fn load_tunnel_state(&self) -> Result<Option<TunnelState>, RegistryError> {
        read_json(&self.tunnel_state_path())
    }

    /// Records the server's tunnel atomically.
    pub fn save_tunnel_state(&self, state: &TunnelState) -> Result<(), RegistryError> {
        let json = serde_json::to_vec_pretty(state).expect("state always serialises");
        write_atomic(&self.tunnel_state_path(), &json)
    }

    /// Forgets the server's tunnel (it is closed).
    pub fn clear_tunnel_state(&self) -> Result<(), RegistryError> {
        match std::fs::remove_file(self.tunnel_state_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RegistryError::Write {
                path: self.tunnel_state_path(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn ensure_makes_owner_only_folders_whatever_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        fs::create_dir(home.root()).unwrap();
        fs::set_permissions(home.root(), fs::Permissions::from_mode(0o755)).unwrap();
        home.ensure().unwrap();
        for d in [home.root().to_owned(), home.logs_dir()] {
            assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }

    /// A home another user owns, or one with anything of another user in
    /// it, is refused and left exactly as it was (giving a file away needs
    /// root; without it this is skipped, saying so).
    #[test]
    fn ensure_refuses_a_home_with_anything_of_another_user_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        fs::create_dir(home.root()).unwrap();
        fs::set_permissions(home.root(), fs::Permissions::from_mode(0o777)).unwrap();
        let other = rustix::process::geteuid().as_raw() + 1;
        if std::os::unix::fs::chown(home.root(), Some(other), None).is_err() {
            eprintln!("skipped: giving a folder to another user needs root");
            return;
        }
        let err = home.ensure().unwrap_err();
        assert!(matches!(err, RegistryError::NotOwned { owner, .. } if owner == other));
        let meta = fs::metadata(home.root()).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o777, "not tightened");
        assert!(!home.logs_dir().exists(), "nothing created in it");
        // Mine again, but for a log of the other user's.
        let me = rustix::process::geteuid().as_raw();
        std::os::unix::fs::chown(home.root(), Some(me), None).unwrap();
        fs::create_dir(home.logs_dir()).unwrap();
        let planted = home.logs_dir().join("server.log");
        fs::write(&planted, "").unwrap();
        std::os::unix::fs::chown(&planted, Some(other), None).unwrap();
        let err = home.ensure().unwrap_err();
        assert!(
            matches!(&err, RegistryError::NotOwned { path, .. } if *path == planted),
            "{err}"
        );
    }

    /// The check every command runs first refuses what `ensure` refuses,
    /// and creates and changes nothing (giving a file away needs root;
    /// without it this is skipped, saying so).
    #[test]
    fn check_owned_refuses_anything_of_another_user_and_only_looks() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        home.check_owned().unwrap();
        assert!(!home.root().exists(), "a missing home is not made");
        fs::create_dir(home.root()).unwrap();
        fs::set_permissions(home.root(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(home.logs_dir()).unwrap();
        let planted = home.logs_dir().join("app-x.log");
        fs::write(&planted, "").unwrap();
        home.check_owned().unwrap();
        let mode = fs::metadata(home.root()).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "not tightened: it only looks");
        let other = rustix::process::geteuid().as_raw() + 1;
        if std::os::unix::fs::chown(&planted, Some(other), None).is_err() {
            eprintln!("skipped: giving a file to another user needs root");
            return;
        }
        let err = home.check_owned().unwrap_err();
        assert!(
            matches!(&err, RegistryError::NotOwned { path, .. } if *path == planted),
            "{err}"
        );
        std::os::unix::fs::chown(home.root(), Some(other), None).unwrap();
        let err = home.check_owned().unwrap_err();
        assert!(
            matches!(&err, RegistryError::NotOwned { path, .. } if path == home.root()),
            "{err}"
        );
    }

    /// `logs/` is a folder of the home, never a link to one elsewhere.
    #[test]
    fn ensure_refuses_a_logs_folder_that_is_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o755)).unwrap();
        let home = Home::new(dir.path().join("home"));
        fs::create_dir(home.root()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, home.logs_dir()).unwrap();
        let err = home.ensure().unwrap_err();
        assert!(matches!(err, RegistryError::Symlink { .. }), "{err}");
        let mode = fs::metadata(&elsewhere).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "the folder it points at is not chmod'ed");
    }

    #[test]
    fn a_tunnel_json_without_a_state_reads_as_up() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::write(
            home.tunnel_state_path(),
            r#"{"url": "https://a-b.trycloudflare.com", "pid": 12345}"#,
        )
        .unwrap();
        let state = home.load_tunnel_state().unwrap().unwrap();
        assert!(state.is_up());
        assert_eq!(state.pid, Some(12345));
        home.clear_tunnel_state().unwrap();
        assert!(home.load_tunnel_state().unwrap().is_none());
        home.clear_tunnel_state().unwrap();
    }

    #[test]
    fn server_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        assert!(home.load_server_state().unwrap().is_none());
        let state = ServerState {
            pid: Some(42),
            start_time: Some(7),
            host: Some("203.0.113.9".into()),
            bind: "0.0.0.0".into(),
            started_at: crate::now_rfc3339(),
            tunnel: true,
            ..ServerState::new(8080)
        };
        home.save_server_state(&state).unwrap();
        assert_eq!(home.load_server_state().unwrap(), Some(state));
    }
}
