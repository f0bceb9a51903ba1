//! `named_tunnel.json`: the user's own named Cloudflare tunnel, when
//! `drop tunnel setup` made one: which tunnel, its credentials, the
//! hostname pages are served on, and the hostname each app was given (kept,
//! so an app's URL never changes once handed out).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::read_json;
use crate::{Home, RegistryError, write_atomic};

/// A named tunnel drop serves through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTunnelSetup {
    /// The tunnel's id (a UUID).
    pub tunnel_id: String,
    /// Its name in the Cloudflare account.
    pub tunnel_name: String,
    /// Its credentials file (`<id>.json`).
    pub credentials_file: PathBuf,
    /// The hostname of the page server: `https://<hostname>/p/<id>/`.
    pub hostname: String,
    /// The hostname each app got, by app id.
    #[serde(default)]
    pub app_hostnames: BTreeMap<String, String>,
    /// When it was set up, RFC 3339.
    #[serde(default)]
    pub set_up_at: String,
    /// Fields of other drop versions, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Home {
    /// `named_tunnel.json`.
    pub fn named_tunnel_path(&self) -> PathBuf {
        self.root().join("named_tunnel.json")
    }

    /// The named tunnel, when one is set up.
    pub fn load_named_tunnel(&self) -> Result<Option<NamedTunnelSetup>, RegistryError> {
        read_json(&self.named_tunnel_path())
    }

    /// Records the named tunnel (owner-only, atomically).
    pub fn save_named_tunnel(&self, setup: &NamedTunnelSetup) -> Result<(), RegistryError> {
        self.ensure()?;
        let json = serde_json::to_vec_pretty(setup).expect("a setup always serialises");
        write_atomic(&self.named_tunnel_path(), &json)
    }

    /// Forgets the named tunnel: quick tunnels from the next start on.
    /// Returns whether one was set up.
    pub fn clear_named_tunnel(&self) -> Result<bool, RegistryError> {
        match std::fs::remove_file(self.named_tunnel_path()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(RegistryError::Write {
                path: self.named_tunnel_path(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_is_saved_read_back_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        assert_eq!(home.load_named_tunnel().unwrap(), None);
        let mut setup = NamedTunnelSetup {
            tunnel_id: "6ff42ae2-765d-4adf-8112-31c55c1551ef".into(),
            tunnel_name: "drop".into(),
            credentials_file: dir.path().join("6ff42ae2.json"),
            hostname: "drop.example.com".into(),
            app_hostnames: BTreeMap::new(),
            set_up_at: crate::now_rfc3339(),
            extra: Map::new(),
        };
        setup
            .app_hostnames
            .insert("abc".into(), "api-drop.example.com".into());
        home.save_named_tunnel(&setup).unwrap();
        assert_eq!(home.load_named_tunnel().unwrap(), Some(setup));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(home.named_tunnel_path())
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(home.clear_named_tunnel().unwrap());
        assert!(!home.clear_named_tunnel().unwrap());
        assert_eq!(home.load_named_tunnel().unwrap(), None);
    }
}
