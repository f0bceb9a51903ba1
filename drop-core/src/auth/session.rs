//! Signed login sessions and login-form tokens. A cookie carries only an
//! expiry and a MAC over (page id, expiry, password-hash version): an edited
//! or forged cookie, one of another page, or one from before a password
//! change opens nothing.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drop_registry::{FileUse, RegistryError, open_home_file};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// How long a login form may be submitted after it was served.
const FORM_LIFETIME: Duration = Duration::from_secs(60 * 60);
const KEY_LEN: usize = 32;

/// The server's secret for signing cookies, kept owner-only in the drop home.
#[derive(Clone)]
pub struct SessionKey([u8; KEY_LEN]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// Reads the key at `path`, creating it (0600) with fresh random bytes
    /// the first time. It is written whole to a temporary file first and
    /// then linked into place, so a crash or a full disk never leaves half
    /// a key. A file of the wrong size is an error that says what to do,
    /// never silently replaced.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match open_key(path) {
            Ok(file) => return read_key(file, path),
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let written = write_new(&tmp, &key).and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok(SessionKey(key)),
            // Another process made it first: theirs is the key.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => read_key(open_key(path)?, path),
            Err(e) => Err(e),
        }
    }

    /// A key from bytes, for tests.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SessionKey(bytes)
    }

    /// The cookie value for a login to `page` with the current `password_hash`.
    pub fn issue(&self, page: &str, password_hash: &str, now: SystemTime) -> String {
        let expires = unix(now) + SESSION_LIFETIME.as_secs();
        let mac = self.mac(&[
            "session",
            page,
            &expires.to_string(),
            &hash_version(password_hash),
        ]);
        format!("{expires}.{}", hex(&mac))
    }

    /// Whether `cookie` is a live session for `page` and its current hash.
    pub fn accepts(&self, page: &str, password_hash: &str, cookie: &str, now: SystemTime) -> bool {
        let Some((expires, mac)) = cookie.split_once('.') else {
            return false;
        };
        let Ok(expires_at) = expires.parse::<u64>() else {
            return false;
        };
        let now = unix(now);
        let live = expires_at > now && expires_at <= now + SESSION_LIFETIME.as_secs();
        live && self.check(
            &["session", page, expires, &hash_version(password_hash)],
            mac,
        )
    }

    /// A token for the login form of `page`, so a login POST proves it came
    /// from a form this server served (login CSRF).
    pub fn form_token(&self, page: &str, now: SystemTime) -> String {
        let issued = unix(now).to_string();
        let mac = self.mac(&["form", page, &issued]);
        format!("{issued}.{}", hex(&mac))
    }

    /// Whether `token` is a recent form token of `page`.
    pub fn accepts_form_token(&self, page: &str, token: &str, now: SystemTime) -> bool {
        let Some((issued, mac)) = token.split_once('.') else {
            return false;
        };
        let Ok(issued_at) = issued.parse::<u64>() else {
            return false;
        };
        let now = unix(now);
        let fresh = issued_at <= now && now - issued_at < FORM_LIFETIME.as_secs();
        fresh && self.check(&["form", page, issued], mac)
    }

    /// The pass the browser that used a one-time page gets: a MAC over
    /// the page, its `--once` round and the second of the use, so it holds
    /// that one use alone, also after a restart (the registry keeps the
    /// use to the second).
    pub fn once_pass(&self, page: &str, round: u64, used_at: SystemTime) -> String {
        hex(&self.mac(&once_parts(
            page,
            &round.to_string(),
            &unix(used_at).to_string(),
        )))
    }

    /// Whether `pass` is the pass of that use of `page`.
    pub fn accepts_once_pass(
        &self,
        page: &str,
        round: u64,
        used_at: SystemTime,
        pass: &str,
    ) -> bool {
        let (round, second) = (round.to_string(), unix(used_at).to_string());
        self.check(&once_parts(page, &round, &second), pass)
    }

    /// A visitor's address as receipts keep it: salted with this key, so
    /// the registry holds no address, and cut short (it only needs to tell
    /// visitors apart).
    pub fn visitor_tag(&self, client: &str) -> String {
        hex(&self.mac(&["visitor", client])[..8])
    }

    fn hmac(&self, parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length works");
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn mac(&self, parts: &[&str]) -> Vec<u8> {
        self.hmac(parts).finalize().into_bytes().to_vec()
    }

    /// Constant-time check of a hex MAC.
    fn check(&self, parts: &[&str], mac_hex: &str) -> bool {
        let Some(mac) = unhex(mac_hex) else {
            return false;
        };
        self.hmac(parts).verify_slice(&mac).is_ok()
    }
}

/// Opens the key file, never through a link nor one of another user.
fn open_key(path: &Path) -> std::io::Result<std::fs::File> {
    open_home_file(path, FileUse::Read).map_err(|e| match e {
        RegistryError::Read { source, .. } => source,
        refused => std::io::Error::other(refused),
    })
}

/// The key in `file`, which must be exactly a key's length.
fn read_key(mut file: std::fs::File, path: &Path) -> std::io::Result<SessionKey> {
    let len = file.metadata()?.len();
    if len != KEY_LEN as u64 {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!(
                "`{}` is {len} bytes, not a session key ({KEY_LEN} bytes): remove it and start again (visitors of protected pages then log in again)",
                path.display()
            ),
        ));
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key)?;
    Ok(SessionKey(key))
}

/// Writes `bytes` to a new owner-only file and makes them durable.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What a one-time pass signs.
fn once_parts<'a>(page: &'a str, round: &'a str, second: &'a str) -> [&'a str; 4] {
    ["once", page, round, second]
}

/// Changes whenever the stored hash changes (password change or rehash).
fn hash_version(password_hash: &str) -> String {
    hex(&Sha256::digest(password_hash.as_bytes())[..8])
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_bytes([7; KEY_LEN])
    }

    #[test]
    fn a_session_opens_its_page_until_it_expires() {
        let now = SystemTime::now();
        let cookie = key().issue("page1", "hash", now);
        assert!(key().accepts("page1", "hash", &cookie, now));
        assert!(key().accepts("page1", "hash", &cookie, now + Duration::from_secs(14 * 60)));
        assert!(!key().accepts("page1", "hash", &cookie, now + Duration::from_secs(15 * 60)));
    }

    #[test]
    fn a_session_does_not_open_another_page_key_or_password() {
        let now = SystemTime::now();
        let cookie = key().issue("page1", "hash", now);
        assert!(!key().accepts("page2", "hash", &cookie, now));
        assert!(!key().accepts("page1", "new-hash", &cookie, now));
        assert!(!SessionKey::from_bytes([8; KEY_LEN]).accepts("page1", "hash", &cookie, now));
    }

    #[test]
    fn tampered_cookies_open_nothing() {
        let now = SystemTime::now();
        let cookie = key().issue("page1", "hash", now);
        let (expires, mac) = cookie.split_once('.').unwrap();
        let later = format!("{}.{mac}", expires.parse::<u64>().unwrap() + 60);
        let mut flipped = cookie.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        for bad in [
            later,
            String::from_utf8(flipped).unwrap(),
            String::new(),
            "1.zz".into(),
            mac.into(),
        ] {
            assert!(!key().accepts("page1", "hash", &bad, now), "{bad}");
        }
    }

    #[test]
    fn a_once_pass_holds_its_page_round_and_second_alone() {
        let at = UNIX_EPOCH + Duration::from_millis(1_000_500);
        let pass = key().once_pass("page1", 2, at);
        let same_second = UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(key().accepts_once_pass("page1", 2, same_second, &pass));
        assert!(!key().accepts_once_pass("page2", 2, at, &pass));
        assert!(!key().accepts_once_pass("page1", 3, at, &pass));
        let next_second = at + Duration::from_secs(1);
        assert!(!key().accepts_once_pass("page1", 2, next_second, &pass));
        let other = SessionKey::from_bytes([8; KEY_LEN]);
        assert!(!other.accepts_once_pass("page1", 2, at, &pass));
    }

    #[test]
    fn form_tokens_are_bound_to_their_page_and_expire() {
        let now = SystemTime::now();
        let token = key().form_token("page1", now);
        assert!(key().accepts_form_token("page1", &token, now));
        assert!(!key().accepts_form_token("page2", &token, now));
        assert!(!key().accepts_form_token("page1", &token, now + Duration::from_secs(3601)));
        assert!(!key().accepts_form_token("page1", "123.abcd", now));
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        std::fs::write(&path, [1u8; 5]).unwrap();
        let err = SessionKey::load_or_create(&path).unwrap_err();
        assert!(
            err.to_string().contains("is 5 bytes, not a session key"),
            "{err}"
        );
        assert!(err.to_string().contains("remove it"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), [1u8; 5], "never replaced");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left");
    }

    #[test]
    fn the_key_file_is_created_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.key");
        let a = SessionKey::load_or_create(&path).unwrap();
        let b = SessionKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
