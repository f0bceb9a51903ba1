//! Page ids: the secret part of every page URL.

/// Characters of an id: lowercase letters and digits.
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a new id: 20 × log2(36) ≈ 103 bits of entropy.
pub const PAGE_ID_LEN: usize = 20;

/// A new random page id from the operating system's CSPRNG.
///
/// Rejection sampling keeps every character equally likely: bytes of 252
/// and above (252 = 7 × 36) are drawn again instead of biasing `% 36`.
pub fn new_page_id() -> String {
    let mut id = String::with_capacity(PAGE_ID_LEN);
    let mut buf = [0u8; 32];
    while id.len() < PAGE_ID_LEN {
        getrandom::fill(&mut buf).expect("the OS random source is available");
        for &b in buf.iter().filter(|&&b| b < 252) {
            if id.len() == PAGE_ID_LEN {
                break;
            }
            id.push(ALPHABET[usize::from(b % 36)] as char);
        }
    }
    id
}

/// Whether `s` could be a page id of any drop version: ASCII letters,
/// digits, `-` and `_`, at most 64 characters.
pub fn is_plausible_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_long_unique_and_lowercase_alphanumeric() {
        let ids: Vec<String> = (0..100_000).map(|_| new_page_id()).collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), PAGE_ID_LEN);
            assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id}");
        }
    }

    /// Pearson's χ² per position over 100k ids, 35 degrees of freedom.
    /// 66.62 is the 0.001 critical value: a fair source fails 1 time in 1000
    /// per position, so the test allows one position over it.
    #[test]
    fn every_position_is_uniform() {
        const N: usize = 100_000;
        let mut counts = vec![[0u32; 36]; PAGE_ID_LEN];
        for _ in 0..N {
            for (pos, b) in new_page_id().bytes().enumerate() {
                let idx = ALPHABET.iter().position(|&a| a == b).unwrap();
                counts[pos][idx] += 1;
            }
        }
        let expected = N as f64 / 36.0;
        let over = counts
            .iter()
            .filter(|row| {
                let chi2: f64 = row
                    .iter()
                    .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                    .sum();
                chi2 > 66.62
            })
            .count();
        assert!(over <= 1, "{over} positions fail the χ² test");
    }

    #[test]
    fn plausible_ids_accept_old_and_new_forms_only() {
        assert!(is_plausible_id("abc123"));
        assert!(is_plausible_id(&new_page_id()));
        for bad in ["", "..", "a/b", "a%2f", "a b", &"x".repeat(65)] {
            assert!(!is_plausible_id(bad), "{bad}");
        }
    }
}
