//! What looks like a secret is not published unless the person at the
//! terminal says so (`--allow-secret`; `drop mcp` has no such argument):
//! private keys, credential files and the folders that keep them, and the
//! system's password files. A page is a URL anyone holding it can open, and
//! an agent told by a hostile text to publish `~/.ssh/id_ed25519` must not
//! be able to (SECURITY.md §1).

use std::path::Path;

/// Folders whose every file is a secret (any component of the real path).
const SECRET_FOLDERS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".cloudflared",
    ".password-store",
    ".docker",
];

/// Files that hold credentials, by their whole name.
const SECRET_FILES: &[&str] = &[
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    "credentials.json",
    "application_default_credentials.json",
    "service-account.json",
];

/// Extensions of keys, certificates' private parts and key stores.
const SECRET_EXTENSIONS: &[&str] = &["pem", "key", "p12", "pfx", "jks", "keystore", "kdbx", "ppk"];

/// System files of secrets, by their real path.
const SECRET_SYSTEM_PATHS: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/ssl/private",
];

/// What `source` (canonical) looks like when it looks like a secret.
pub(super) fn looks_secret(source: &Path) -> Option<&'static str> {
    if SECRET_SYSTEM_PATHS
        .iter()
        .any(|secret| source.starts_with(secret))
    {
        return Some("a system file of passwords or keys");
    }
    let names: Vec<String> = source
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_ascii_lowercase())
        .collect();
    if names
        .iter()
        .any(|name| SECRET_FOLDERS.contains(&name.as_str()))
    {
        return Some("in a folder of keys or credentials");
    }
    let name = names.last()?;
    if SECRET_FILES.contains(&name.as_str()) {
        return Some("a file of keys or credentials");
    }
    let extension = Path::new(name).extension()?.to_str()?;
    SECRET_EXTENSIONS
        .contains(&extension)
        .then_some("a private key or key store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_credentials_and_their_folders_look_secret() {
        for secret in [
            "/home/me/.ssh/id_ed25519",
            "/home/me/.ssh/config",
            "/home/me/.ssh",
            "/root/.aws/credentials",
            "/home/me/.cloudflared/cert.pem",
            "/etc/shadow",
            "/etc/ssl/private/server.key",
            "/home/me/proj/ID_RSA",
            "/home/me/.netrc",
            "/srv/tls/site.KEY",
            "/home/me/vault.kdbx",
        ] {
            assert!(looks_secret(Path::new(secret)).is_some(), "{secret}");
        }
    }

    #[test]
    fn ordinary_pages_do_not() {
        for page in [
            "/home/me/report.html",
            "/home/me/site",
            "/home/me/.ssh-notes.md",
            "/home/me/id_rsa.pub",
            "/home/me/keys.md",
            "/etc/hostname",
            "/",
        ] {
            assert_eq!(looks_secret(Path::new(page)), None, "{page}");
        }
    }
}
