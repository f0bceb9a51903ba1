//! The daemon's probe of its own tunnel: a path only this daemon answers,
//! with a nonce it issued a moment ago (see `supervise::verify`). Any
//! other nonce gets the ordinary 404, so the path tells outsiders nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The path prefix of probes: `/_drop/probe/<nonce>`.
pub const PROBE_PREFIX: &str = "/_drop/probe/";
/// The header that carries a nonce when an app's tunnel is checked at `/`:
/// drop's page server answers it as a probe (the tunnel reached drop, not
/// the app), and an app ignores it.
pub const PROBE_HEADER: &str = "x-drop-probe";
/// The body a probe with an issued nonce is answered with.
pub const PROBE_ANSWER: &str = "drop\n";
/// How long an issued nonce is accepted.
const NONCE_LIFETIME: Duration = Duration::from_secs(120);

/// The nonces the daemon issued for probes of its own tunnel, answered by
/// the page server and by nobody else.
#[derive(Debug, Default)]
pub struct Probes {
    issued: Mutex<HashMap<String, Instant>>,
}

impl Probes {
    /// A new nonce, accepted for a couple of minutes.
    pub fn issue(&self) -> String {
        let nonce = crate::page::new_page_id();
        let mut issued = self.issued.lock().expect("probes lock");
        issued.retain(|_, at| at.elapsed() < NONCE_LIFETIME);
        issued.insert(nonce.clone(), Instant::now());
        nonce
    }

    /// Whether `nonce` is one this daemon issued, recently.
    pub fn accepts(&self, nonce: &str) -> bool {
        let issued = self.issued.lock().expect("probes lock");
        issued
            .get(nonce)
            .is_some_and(|at| at.elapsed() < NONCE_LIFETIME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_accept_only_the_nonces_issued() {
        let probes = Probes::default();
        let nonce = probes.issue();
        assert!(probes.accepts(&nonce));
        assert!(!probes.accepts("abc"));
        assert!(!probes.accepts(""));
    }
}
