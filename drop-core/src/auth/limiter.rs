//! Login rate limits: 3 wrong attempts a minute per client and page, and a
//! per-page budget that holds against clients that rotate addresses. The
//! table is capped, so a flood of new keys cannot grow memory without bound.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts one client may make on one page per window.
pub const CLIENT_ATTEMPTS: usize = 3;
/// The client window.
pub const CLIENT_WINDOW: Duration = Duration::from_secs(60);
/// Failed attempts one page takes from everyone per page window.
pub const PAGE_ATTEMPTS: u32 = 100;
/// The page window.
pub const PAGE_WINDOW: Duration = Duration::from_secs(60 * 60);
/// Most (page, client) keys remembered at once.
pub const MAX_KEYS: usize = 100_000;

/// Whether a request came through the tunnel: its TCP peer is exactly
/// 127.0.0.1 or ::1, where cloudflared connects from (drop points it at
/// 127.0.0.1). Only then are the tunnel's headers (`CF-Connecting-IP`,
/// `X-Forwarded-Proto`) believed.
pub fn through_tunnel(peer: SocketAddr) -> bool {
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
    let ip = peer.ip().to_canonical();
    ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// Who is logging in, for rate limiting: `CF-Connecting-IP` when the
/// request came [through the tunnel](through_tunnel), else the peer. Never
/// `X-Forwarded-For`. IPv6 counts per /64.
pub fn client_of(peer: SocketAddr, cf_connecting_ip: Option<&str>) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    let ip = cf_connecting_ip
        .filter(|_| through_tunnel(peer))
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .unwrap_or(peer_ip);
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Whether a login attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password.
    Allowed,
    /// Refuse without checking; try again after this long.
    Limited {
        /// When a new attempt can succeed.
        retry_after: Duration,
    },
}

/// Counts login attempts per (page, client) and per page.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<(String, IpAddr), ClientLog>,
    order: VecDeque<((String, IpAddr), u64)>,
    pages: HashMap<String, Bucket>,
    next_seq: u64,
}

/// A page's budget of wrong attempts: `PAGE_ATTEMPTS` at most, refilled at
/// `PAGE_ATTEMPTS` per `PAGE_WINDOW`. A token bucket rather than a fixed
/// window, so one patient client cannot lock the owner out for an hour.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let per_second = f64::from(PAGE_ATTEMPTS) / PAGE_WINDOW.as_secs_f64();
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * per_second;
        self.tokens = (self.tokens + earned).min(f64::from(PAGE_ATTEMPTS));
        self.at = now;
    }

    /// How long until one attempt is allowed again.
    fn wait(&self) -> Duration {
        let per_second = f64::from(PAGE_ATTEMPTS) / PAGE_WINDOW.as_secs_f64();
        Duration::from_secs_f64(((1.0 - self.tokens) / per_second).max(0.0))
    }
}

#[derive(Debug)]
struct ClientLog {
    attempts: VecDeque<Instant>,
    seq: u64,
}

impl LoginLimiter {
    /// Records an attempt, or refuses it. Attempts are counted before the
    /// password is checked, so parallel requests cannot slip past the limit.
    pub fn admit(&self, page: &str, client: IpAddr, now: Instant) -> Admission {
        let mut state = self.state.lock().expect("limiter lock");
        if let Some(retry_after) = state.page_limited(page, now) {
            return Admission::Limited { retry_after };
        }
        let key = (page.to_owned(), client);
        if !state.clients.contains_key(&key) {
            state.insert(key.clone());
        }
        let log = state.clients.get_mut(&key).expect("inserted");
        while log
            .attempts
            .front()
            .is_some_and(|&t| now.duration_since(t) >= CLIENT_WINDOW)
        {
            log.attempts.pop_front();
        }
        if log.attempts.len() >= CLIENT_ATTEMPTS {
            let oldest = log.attempts[0];
            return Admission::Limited {
                retry_after: CLIENT_WINDOW.saturating_sub(now.duration_since(oldest)),
            };
        }
        log.attempts.push_back(now);
        let bucket = state.pages.entry(page.to_owned()).or_insert(Bucket {
            tokens: f64::from(PAGE_ATTEMPTS),
            at: now,
        });
        bucket.tokens -= 1.0;
        Admission::Allowed
    }

    /// A right password: that client's attempts on that page are forgiven.
    pub fn succeeded(&self, page: &str, client: IpAddr) {
        let mut state = self.state.lock().expect("limiter lock");
        state.clients.remove(&(page.to_owned(), client));
        if let Some(bucket) = state.pages.get_mut(page) {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(PAGE_ATTEMPTS));
        }
    }

    /// How many (page, client) keys are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state.lock().expect("limiter lock").clients.len()
    }
}

impl State {
    fn page_limited(&mut self, page: &str, now: Instant) -> Option<Duration> {
        let bucket = self.pages.get_mut(page)?;
        bucket.refill(now);
        (bucket.tokens < 1.0).then(|| bucket.wait())
    }

    /// Adds a key, evicting the oldest when full.
    fn insert(&mut self, key: (String, IpAddr)) {
        while self.clients.len() >= MAX_KEYS {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.clients.get(&old).is_some_and(|log| log.seq == seq) {
                self.clients.remove(&old);
            }
        }
        if self.order.len() > 2 * MAX_KEYS {
            let clients = &self.clients;
            self.order
                .retain(|(k, seq)| clients.get(k).is_some_and(|log| log.seq == *seq));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back((key.clone(), seq));
        self.clients.insert(
            key,
            ClientLog {
                attempts: VecDeque::new(),
                seq,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn fourth_attempt_in_a_minute_is_refused_then_allowed_again() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(
                limiter.admit("p", ip("198.51.100.1"), t0),
                Admission::Allowed
            );
        }
        let Admission::Limited { retry_after } =
            limiter.admit("p", ip("198.51.100.1"), t0 + Duration::from_secs(10))
        else {
            panic!("fourth attempt must be limited");
        };
        assert_eq!(retry_after, Duration::from_secs(50));
        assert_eq!(
            limiter.admit("p", ip("198.51.100.2"), t0),
            Admission::Allowed,
            "other clients unaffected"
        );
        assert_eq!(
            limiter.admit("q", ip("198.51.100.1"), t0),
            Admission::Allowed,
            "other pages unaffected"
        );
        assert_eq!(
            limiter.admit("p", ip("198.51.100.1"), t0 + CLIENT_WINDOW),
            Admission::Allowed
        );
    }

    #[test]
    fn success_forgives_the_client() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.admit("p", ip("198.51.100.1"), t0);
        }
        limiter.succeeded("p", ip("198.51.100.1"));
        assert_eq!(
            limiter.admit("p", ip("198.51.100.1"), t0),
            Admission::Allowed
        );
    }

    #[test]
    fn page_budget_holds_against_rotating_clients() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..PAGE_ATTEMPTS {
            let client = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            assert_eq!(limiter.admit("p", client, t0), Admission::Allowed);
        }
        let Admission::Limited { retry_after } = limiter.admit("p", ip("203.0.113.9"), t0) else {
            panic!("the page budget is spent");
        };
        assert_eq!(
            retry_after,
            Duration::from_secs(36),
            "one attempt comes back every 36 s"
        );
        assert_eq!(
            limiter.admit("p", ip("203.0.113.9"), t0 + Duration::from_secs(36)),
            Admission::Allowed
        );
        let other = limiter.admit("p", ip("203.0.113.10"), t0 + Duration::from_secs(36));
        assert!(matches!(other, Admission::Limited { .. }));
        assert_eq!(
            limiter.admit("other", ip("203.0.113.9"), t0),
            Admission::Allowed
        );
        assert_eq!(
            limiter.admit("p", ip("203.0.113.9"), t0 + PAGE_WINDOW),
            Admission::Allowed
        );
    }

    #[test]
    fn memory_is_bounded_by_the_key_cap() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 5_000) {
            let page = format!("p{}", i % 1000);
            limiter.admit(&page, IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(limiter.len(), MAX_KEYS);
    }

    #[test]
    fn tunnel_header_is_trusted_only_from_loopback() {
        let tunnel: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let other: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        assert_eq!(client_of(tunnel, Some("203.0.113.5")), ip("203.0.113.5"));
        assert_eq!(client_of(other, Some("203.0.113.5")), ip("127.0.0.2"));
        assert_eq!(client_of(tunnel, Some("garbage")), ip("127.0.0.1"));
        assert_eq!(client_of(tunnel, None), ip("127.0.0.1"));
        let v6 = client_of("[::1]:1".parse().unwrap(), Some("2001:db8:1:2:3:4:5:6"));
        assert_eq!(v6, ip("2001:db8:1:2::"));
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(
            client_of(mapped, Some("203.0.113.5")),
            ip("203.0.113.5"),
            "a dual-stack tunnel peer"
        );
        let mapped_other: SocketAddr = "[::ffff:198.51.100.4]:5000".parse().unwrap();
        assert_eq!(
            client_of(mapped_other, None),
            ip("198.51.100.4"),
            "keyed as IPv4, not ::/64"
        );
    }
}
