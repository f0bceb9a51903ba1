//! Names drop never serves: environment files, the manifest and git's
//! folder (and editors' copies of them), and what looks like a secret:
//! private keys, credential files and the folders that keep them, and the
//! system's files of passwords and keys. A
//! page is a URL anyone holding it can open, and an agent told by a
//! hostile text to publish `~/.ssh/id_ed25519` must not be able to
//! (SECURITY.md §1). `drop add` refuses such a path unless the person at
//! the terminal insists; inside a published folder such files are never
//! served, whatever the manifest lists.

use std::path::Path;

use super::manifest::MANIFEST_NAME;

/// Names that are never served, whatever the manifest says: environment
/// files (but `.env.example`), the manifest itself, and git metadata, and
/// the backups and swap files editors leave of them (`.env~`, `#.env#`,
/// `.#.env`, `..env.swp`, `.envrc.bak`…), which hold the same secrets.
/// Compared case-insensitively, on every component of the real path.
pub fn is_never_served(name: &str) -> bool {
    let mut name = name.to_ascii_lowercase();
    // Each round takes off one layer of editor decoration.
    for _ in 0..4 {
        if is_private(&name) {
            return true;
        }
        match editor_copy_of(&name) {
            Some(original) => name = original.to_owned(),
            None => return false,
        }
    }
    false
}

fn is_private(name: &str) -> bool {
    (name == ".env" || name.starts_with(".env.")) && name != ".env.example"
        || name == ".envrc"
        || name == MANIFEST_NAME
        || name == ".git"
}

/// The name an editor's backup, autosave, lock or swap file `name` is a
/// copy of, if it is one.
fn editor_copy_of(name: &str) -> Option<&str> {
    if let Some(original) = name.strip_suffix('~') {
        return Some(original); // emacs, nano, vim backups
    }
    if let Some(original) = name.strip_prefix(".#") {
        return Some(original); // emacs locks
    }
    if let Some(original) = name.strip_prefix('#').and_then(|n| n.strip_suffix('#')) {
        return Some(original); // emacs autosaves
    }
    let swap = name.len() > 5
        && name.starts_with('.')
        && name.is_char_boundary(name.len() - 4)
        && name[name.len() - 4..].starts_with(".sw");
    if swap {
        return Some(&name[1..name.len() - 4]); // vim: .NAME.swp, .swo…
    }
    [".bak", ".orig", ".old", ".save", ".tmp", ".swp"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
}

/// Whether a file or folder of this name, inside a published folder, is
/// never served whatever the manifest says: what [`is_never_served`]
/// names, and what holds secrets ([`is_secret_name`]).
pub fn never_served_in_folder(name: &str) -> bool {
    is_never_served(name) || is_secret_name(name)
}

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
    ".vault-token",
    "kubeconfig",
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
    "/etc/ssh",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/ssl/private",
];

/// What `source` (canonical) looks like when it looks like a secret.
pub fn looks_secret(source: &Path) -> Option<&'static str> {
    if SECRET_SYSTEM_PATHS
        .iter()
        .any(|secret| source.starts_with(secret))
    {
        return Some("a system file of passwords or keys");
    }
    let names: Vec<String> = source
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let (last, folders) = names.split_last()?;
    if folders.iter().any(|name| is_secret_folder(name)) {
        return Some("in a folder of keys or credentials");
    }
    is_secret_name(last).then_some("a key, a key store or a file of credentials")
}

/// Whether a file or folder of this name holds secrets (keys,
/// credentials), also as an editor's backup or copy (`id_rsa.bak`,
/// `server.pem~`).
pub fn is_secret_name(name: &str) -> bool {
    let mut name = name.to_ascii_lowercase();
    for _ in 0..4 {
        if is_secret_folder(&name) || is_secret_file(&name) {
            return true;
        }
        match editor_copy_of(&name) {
            Some(original) => name = original.to_owned(),
            None => return false,
        }
    }
    false
}

fn is_secret_folder(name: &str) -> bool {
    SECRET_FOLDERS.contains(&name.to_ascii_lowercase().as_str())
}

fn is_secret_file(name: &str) -> bool {
    let host_key = name.starts_with("ssh_host_") && name.ends_with("_key");
    host_key
        || SECRET_FILES.contains(&name)
        || Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SECRET_EXTENSIONS.contains(&e))
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
            "/home/me/keys/id_rsa.bak",
            "/home/me/keys/server.pem~",
            "/home/me/backup/ssh_host_ed25519_key",
            "/etc/ssh/ssh_host_rsa_key",
            "/home/me/.vault-token",
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
            "/home/me/monkey.keys.html",
        ] {
            assert_eq!(looks_secret(Path::new(page)), None, "{page}");
        }
    }
}
