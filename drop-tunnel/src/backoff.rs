//! How long to wait before reopening a tunnel: exponential, capped,
//! jittered, and much longer after a rate limit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The numbers behind [`Backoff`]. The defaults follow Kubernetes (double,
/// cap 5 min, reset after 10 min up) but start at 1 s, and wait at least
/// 60 s after a rate limit, doubling to 30 min.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackoffPolicy {
    /// The first delay after a failure.
    pub initial: Duration,
    /// The longest delay after ordinary failures.
    pub max: Duration,
    /// The first delay after a rate limit.
    pub rate_limited_initial: Duration,
    /// The longest delay after rate limits.
    pub rate_limited_max: Duration,
    /// A tunnel up at least this long before it failed starts over from
    /// `initial`.
    pub reset_after: Duration,
    /// Each delay is lengthened by up to this fraction (0.1 = 10 %) so that
    /// tunnels failing together do not retry together.
    pub jitter: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5 * 60),
            rate_limited_initial: Duration::from_secs(60),
            rate_limited_max: Duration::from_secs(30 * 60),
            reset_after: Duration::from_secs(10 * 60),
            jitter: 0.1,
        }
    }
}

/// Consecutive failures and the delay they earn.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
    rate_limits: u32,
    rng: u64,
}

impl Backoff {
    /// A backoff with jitter seeded from the clock and the process id.
    pub fn new(policy: BackoffPolicy) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::with_seed(
            policy,
            nanos ^ u64::from(std::process::id()).rotate_left(32),
        )
    }

    /// A backoff whose jitter is the same for the same seed.
    pub(crate) fn with_seed(policy: BackoffPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            failures: 0,
            rate_limits: 0,
            // Spread nearby seeds apart; xorshift must not start at zero.
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// Failures since the last reset, rate limits included.
    pub fn failures(&self) -> u32 {
        self.failures + self.rate_limits
    }

    /// Records one more failure and returns how long to wait before the
    /// next attempt. After a rate limit, every delay until the next reset
    /// is at least the rate-limited one: any new tunnel asks the same
    /// service.
    pub fn next_delay(&mut self, rate_limited: bool) -> Duration {
        if rate_limited {
            self.rate_limits += 1;
        } else {
            self.failures += 1;
        }
        let ordinary = doubled(self.policy.initial, self.failures, self.policy.max);
        let limited = doubled(
            self.policy.rate_limited_initial,
            self.rate_limits,
            self.policy.rate_limited_max,
        );
        let base = if self.rate_limits > 0 {
            ordinary.max(limited)
        } else {
            ordinary
        };
        base.mul_f64(1.0 + self.policy.jitter * self.next_unit())
    }

    /// Forgets past failures: the next delay is `initial` again.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.rate_limits = 0;
    }

    /// A number in `[0, 1)` from xorshift64*: enough to spread retries,
    /// and no dependency.
    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

/// `first × 2^(count−1)`, capped at `cap`; zero when `count` is zero.
fn doubled(first: Duration, count: u32, cap: Duration) -> Duration {
    if count == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(count - 1).unwrap_or(u32::MAX);
    first.checked_mul(factor).unwrap_or(cap).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> Backoff {
        Backoff::with_seed(
            BackoffPolicy {
                jitter: 0.0,
                ..BackoffPolicy::default()
            },
            7,
        )
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn delays_double_from_one_second_up_to_five_minutes() {
        let mut backoff = no_jitter();
        let delays: Vec<_> = (0..12).map(|_| backoff.next_delay(false)).collect();
        let expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map(secs);
        assert_eq!(delays, expected);
        assert_eq!(backoff.failures(), 12);
    }

    #[test]
    fn a_rate_limit_waits_at_least_a_minute_doubling_to_half_an_hour() {
        let mut backoff = no_jitter();
        let delays: Vec<_> = (0..7).map(|_| backoff.next_delay(true)).collect();
        let expected = [60, 120, 240, 480, 960, 1800, 1800].map(secs);
        assert_eq!(delays, expected);
    }

    #[test]
    fn ordinary_failures_after_a_rate_limit_still_wait_long() {
        let mut backoff = no_jitter();
        backoff.next_delay(true);
        assert_eq!(backoff.next_delay(false), secs(60));
    }

    #[test]
    fn reset_starts_over_from_the_first_delay() {
        let mut backoff = no_jitter();
        backoff.next_delay(true);
        backoff.next_delay(false);
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        assert_eq!(backoff.next_delay(false), secs(1));
    }

    #[test]
    fn jitter_only_lengthens_and_by_at_most_its_fraction() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        for _ in 0..200 {
            backoff.reset();
            let delay = backoff.next_delay(false);
            assert!(
                delay >= secs(1) && delay < Duration::from_millis(1100),
                "{delay:?}"
            );
        }
    }

    #[test]
    fn jitter_spreads_delays_and_repeats_with_a_seed() {
        let run = |seed| {
            let mut backoff = Backoff::with_seed(BackoffPolicy::default(), seed);
            (0..5)
                .map(|_| backoff.next_delay(false))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn a_process_failing_at_once_is_started_at_most_eight_times_a_minute() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let mut clock = Duration::ZERO;
        let mut starts = 1;
        loop {
            clock += backoff.next_delay(false);
            if clock > secs(60) {
                break;
            }
            starts += 1;
        }
        assert!(starts <= 8, "{starts} starts");
    }

    #[test]
    fn huge_failure_counts_stay_at_the_cap() {
        assert_eq!(doubled(secs(1), 200, secs(300)), secs(300));
        assert_eq!(doubled(secs(1), 0, secs(300)), Duration::ZERO);
    }
}
