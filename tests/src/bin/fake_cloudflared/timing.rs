//! How long the fake takes: compressed by default so tests run fast, or
//! as the real cloudflared takes them with `FAKE_CLOUDFLARED_TIMING=real`
//! (measured with cloudflared 2026.8.2 offline): a QUIC dial gives up
//! after 5 s, the pre-checks table comes 10 s after start-up, the edge
//! registers about 1 s after the URL box, and a lost edge connection is
//! retried after 1 s, 2 s, 4 s … 32 s. A knob that sets one of these
//! (`FAKE_CLOUDFLARED_PRECHECKS_MS`, `…_REGISTER_DELAY_MS`) wins either way.

use std::time::Duration;

use super::{knob, knob_ms};

/// The real cloudflared's ceiling on the wait between reconnections.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(32);

/// Whether the real timings were asked for.
fn real() -> bool {
    knob("FAKE_CLOUDFLARED_TIMING").as_deref() == Some("real")
}

/// `knob` in milliseconds, else the compressed or the real default.
fn knob_or(name: &str, compressed_ms: u64, real_ms: u64) -> Duration {
    let default = if real() { real_ms } else { compressed_ms };
    Duration::from_millis(knob_ms(name, default))
}

/// From the URL box (or the start of a named tunnel) to `Registered tunnel
/// connection`.
pub(super) fn register_delay() -> Duration {
    knob_or("FAKE_CLOUDFLARED_REGISTER_DELAY_MS", 300, 1000)
}

/// From start-up to the connectivity pre-checks table.
pub(super) fn prechecks_after() -> Duration {
    knob_or("FAKE_CLOUDFLARED_PRECHECKS_MS", 500, 10_000)
}

/// How long a QUIC dial runs before it fails where UDP is blocked
/// (`timeout: no recent network activity`).
pub(super) fn quic_dial_timeout() -> Duration {
    knob_or("FAKE_CLOUDFLARED_QUIC_TIMEOUT_MS", 0, 5000)
}

/// The pause after `Retrying connection in up to CEILING`: the ceiling
/// itself (the real wait is random below it), or half a second.
pub(super) fn retry_pause(ceiling: Duration) -> Duration {
    if real() {
        ceiling
    } else {
        Duration::from_millis(500)
    }
}

/// The retries after the edge connection is lost for `outage`: each one's
/// announced ceiling and the time until the next try. The last try finds
/// the edge back. Compressed: one retry, back after the outage. Real: the
/// backoff doubles from 1 s to 32 s, until a try comes after the outage.
pub(super) fn reconnect_tries(outage: Duration) -> Vec<(Duration, Duration)> {
    if !real() {
        return vec![(Duration::from_secs(1), outage)];
    }
    let mut tries = Vec::new();
    let mut waited = Duration::ZERO;
    let mut ceiling = Duration::from_secs(1);
    while waited < outage || tries.is_empty() {
        tries.push((ceiling, ceiling));
        waited += ceiling;
        ceiling = (ceiling * 2).min(MAX_RECONNECT_WAIT);
    }
    tries
}
