//! Page passwords: generated ones people can read aloud, argon2id hashes for
//! new ones, and the unsalted `sha256:` hashes of the Python drop, which are
//! still accepted and replaced by argon2id after the first right login.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Letters and digits without the look-alikes 0/O, 1/l/I.
const READABLE: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Three groups of four: about 70 bits, and easy to type on a phone.
const GROUPS: usize = 3;
const GROUP_LEN: usize = 4;
/// Prefix of the Python drop's unsalted hashes.
const LEGACY_PREFIX: &str = "sha256:";
/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
/// Stored hashes asking for more memory than this are refused, not run.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// A result of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, or a stored hash drop cannot read.
    Wrong,
    /// Right, and the stored hash is current.
    Right,
    /// Right, and the stored hash should be replaced by this one.
    RightRehashed(String),
}

/// A new random password such as `kq7m-Xa3t-pHn9`.
pub fn generate_password() -> String {
    let limit = 256 - 256 % READABLE.len();
    let mut out = String::new();
    let mut buf = [0u8; 64];
    while out.len() < GROUPS * (GROUP_LEN + 1) - 1 {
        getrandom::fill(&mut buf).expect("the OS random source is available");
        for &b in buf.iter().filter(|&&b| usize::from(b) < limit) {
            if out.len() == GROUPS * (GROUP_LEN + 1) - 1 {
                break;
            }
            if out.len() % (GROUP_LEN + 1) == GROUP_LEN {
                out.push('-');
            }
            out.push(READABLE[usize::from(b) % READABLE.len()] as char);
        }
    }
    out
}

/// An argon2id PHC string with a fresh 16-byte random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source is available");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id with valid parameters cannot fail")
        .to_string()
}

/// Working memory for argon2, kept by a thread that verifies many passwords
/// so that each run reuses it instead of allocating 19 MiB anew.
#[derive(Debug, Default)]
pub struct Scratch(Vec<Block>);

/// Checks `password` against a stored hash, in constant time for the
/// comparison itself. Costs one argon2id run (~20 ms, 19 MiB) for new hashes.
pub fn verify_password(stored: &str, password: &str) -> Verdict {
    verify_password_in(stored, password, &mut Scratch::default())
}

/// [`verify_password`] with reusable working memory.
pub fn verify_password_in(stored: &str, password: &str, scratch: &mut Scratch) -> Verdict {
    if let Some(hex) = stored.strip_prefix(LEGACY_PREFIX) {
        let digest = format!("{:x}", Sha256::digest(password.as_bytes()));
        let equal: bool = digest
            .as_bytes()
            .ct_eq(hex.to_ascii_lowercase().as_bytes())
            .into();
        return if equal {
            Verdict::RightRehashed(hash_password(password))
        } else {
            Verdict::Wrong
        };
    }
    if argon2_matches(stored, password, scratch).unwrap_or(false) {
        Verdict::Right
    } else {
        Verdict::Wrong
    }
}

/// Recomputes a PHC-string argon2 hash in `scratch` and compares it in
/// constant time. `None` for hashes drop cannot read.
fn argon2_matches(stored: &str, password: &str, scratch: &mut Scratch) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::V0x13,
    };
    let params = Params::try_from(&parsed).ok()?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return None;
    }
    let mut salt_buf = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?;
    let expected = parsed.hash?;
    let mut out = vec![0u8; expected.len()];
    scratch.0.resize(params.block_count(), Block::new());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut scratch.0[..])
        .ok()?;
    Some(out.ct_eq(expected.as_bytes()).into())
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_avoid_look_alikes() {
        for _ in 0..200 {
            let p = generate_password();
            assert_eq!(p.len(), 14, "{p}");
            assert_eq!(p.matches('-').count(), 2, "{p}");
            assert!(!p.chars().any(|c| "0O1lI".contains(c)), "{p}");
        }
        assert_ne!(generate_password(), generate_password());
    }

    #[test]
    fn new_hashes_are_salted_argon2id_with_owasp_parameters() {
        let a = hash_password("hunter2");
        let b = hash_password("hunter2");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "same password, different salts");
        assert_eq!(verify_password(&a, "hunter2"), Verdict::Right);
        assert_eq!(verify_password(&a, "hunter3"), Verdict::Wrong);
    }

    #[test]
    fn python_sha256_hashes_verify_and_ask_for_a_rehash() {
        // sha256("secret"), as the Python drop stored it.
        let legacy = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
        let Verdict::RightRehashed(new) = verify_password(legacy, "secret") else {
            panic!("the right password must verify");
        };
        assert_eq!(verify_password(&new, "secret"), Verdict::Right);
        assert_eq!(verify_password(legacy, "Secret"), Verdict::Wrong);
    }

    #[test]
    fn unreadable_hashes_open_nothing() {
        for stored in ["", "plain", "sha256:", "$argon2id$garbage"] {
            assert_eq!(verify_password(stored, ""), Verdict::Wrong, "{stored}");
            assert_eq!(verify_password(stored, "x"), Verdict::Wrong, "{stored}");
        }
    }
}
