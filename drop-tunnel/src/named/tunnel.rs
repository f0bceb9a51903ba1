//! A named tunnel as this crate knows it: its id and name in the account,
//! and the file its credentials are in on this machine.

use std::path::{Path, PathBuf};

use crate::TunnelError;

/// A named tunnel of the account, and where this machine keeps (or would
/// keep) its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTunnel {
    id: String,
    name: String,
    credentials_file: PathBuf,
}

impl NamedTunnel {
    /// A tunnel known by its id, name and credentials file (as recorded
    /// after [`NamedTunnels::create`](crate::NamedTunnels::create)).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        credentials_file: impl Into<PathBuf>,
    ) -> Self {
        NamedTunnel {
            id: id.into(),
            name: name.into(),
            credentials_file: credentials_file.into(),
        }
    }

    /// Its id, a UUID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its name in the account.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its credentials: `<id>.json` beside the login certificate, where
    /// `cloudflared tunnel create` writes them.
    pub fn credentials_file(&self) -> &Path {
        &self.credentials_file
    }

    /// Whether its credentials file is on this machine.
    pub fn has_credentials(&self) -> bool {
        self.credentials_file.is_file()
    }

    /// The credentials file as cloudflared will read it: there, and JSON.
    pub fn check_credentials(&self) -> Result<(), TunnelError> {
        let path = self.credentials_file();
        let id = self.id().to_owned();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(_) if !path.is_file() => {
                return Err(TunnelError::CredentialsMissing {
                    id,
                    path: path.to_owned(),
                });
            }
            Err(_) => {
                return Err(TunnelError::CredentialsInvalid {
                    id,
                    path: path.to_owned(),
                    detail: "it cannot be read".into(),
                });
            }
        };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(_)) => Ok(()),
            _ => Err(TunnelError::CredentialsInvalid {
                id,
                path: path.to_owned(),
                detail: match text.contains("-----BEGIN") {
                    true => {
                        "it is a certificate, not the JSON that `cloudflared tunnel create` writes"
                            .into()
                    }
                    false => "it is not JSON".into(),
                },
            }),
        }
    }
}
