//! The answer `drop start` acts on: public, behind NAT, or unknown, and the rule that picks it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::LocalAddrs;
use crate::error::describe;

/// Whether the internet can reach this machine at its own address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// The outside world sees an address this machine holds, and that
    /// address can be public: serve on it directly.
    Public {
        /// The address, both external and local.
        ip: IpAddr,
    },
    /// The outside world sees another address than any this machine holds:
    /// something translates in between, so inbound connections need a tunnel.
    BehindNat {
        /// The address the IP-echo services saw.
        external: IpAddr,
        /// This machine's outward address, if it has one besides loopback.
        local: Option<IpAddr>,
    },
    /// No verdict: offline, every service failed, or the answer cannot
    /// come from the internet.
    Unknown {
        /// Why, in one line for a person to read.
        reason: String,
    },
}

impl Reachability {
    /// Applies the rule to the address the outside world saw.
    ///
    /// - Not one of this machine's addresses: [`Reachability::BehindNat`]
    ///   (external ≠ local → NAT).
    /// - One of them, and it [could be public](could_be_public):
    ///   [`Reachability::Public`].
    /// - One of them, but private, CGNAT, loopback or link-local:
    ///   [`Reachability::Unknown`]. The echo service then sits inside the same
    ///   private network, so it cannot tell whether the internet gets in.
    pub fn judge(external: IpAddr, local: &LocalAddrs) -> Self {
        let external = external.to_canonical();
        if !local.contains(external) {
            let local = local.primary();
            return Self::BehindNat { external, local };
        }
        if could_be_public(external) {
            return Self::Public { ip: external };
        }
        let reason = format!(
            "the ip-echo service saw {external}, a non-public address of this machine, so it is not on the internet"
        );
        Self::Unknown { reason }
    }

    /// An unknown verdict explained by `error` and its causes.
    pub fn unknown(error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Unknown {
            reason: describe(error),
        }
    }

    /// Whether inbound connections need a tunnel: true only behind NAT.
    pub fn needs_tunnel(&self) -> bool {
        matches!(self, Self::BehindNat { .. })
    }
}

impl fmt::Display for Reachability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public { ip } => write!(f, "public at {ip}"),
            Self::BehindNat {
                external,
                local: Some(local),
            } => {
                write!(f, "behind NAT (external {external}, local {local})")
            }
            Self::BehindNat {
                external,
                local: None,
            } => write!(f, "behind NAT (external {external})"),
            Self::Unknown { reason } => write!(f, "unknown: {reason}"),
        }
    }
}

/// Whether the internet could route to `ip`.
///
/// Never: private ranges (10/8, 172.16/12, 192.168/16, fc00::/7), CGNAT
/// (100.64/10), loopback, link-local, unspecified, multicast, broadcast,
/// 0/8, benchmarking (198.18/15) and reserved (240/4) addresses.
///
/// The documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24,
/// 2001:db8::/32) deliberately pass: they never appear on the real internet,
/// and test networks use them to stand for public addresses.
pub fn could_be_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => could_be_public_v4(v4),
        IpAddr::V6(v6) => could_be_public_v6(v6),
    }
}

fn could_be_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let cgnat = a == 100 && (64..128).contains(&b);
    let this_network = a == 0;
    let benchmarking = a == 198 && (18..20).contains(&b);
    let reserved = a >= 240;
    let special = ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_multicast();
    !(special || cgnat || this_network || benchmarking || reserved)
}

fn could_be_public_v6(ip: Ipv6Addr) -> bool {
    let special = ip.is_unspecified() || ip.is_loopback() || ip.is_multicast();
    !(special || ip.is_unique_local() || ip.is_unicast_link_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_cgnat_and_local_ranges_are_never_public() {
        let never = [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "0.1.2.3",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fd00::2",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
        ];
        for text in never {
            assert!(!could_be_public(ip(text)), "{text}");
        }
    }

    #[test]
    fn routable_and_documentation_ranges_could_be_public() {
        let ok = [
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "203.0.113.7",
            "192.0.2.2",
            "2606:4700::1111",
            "2001:db8::7",
        ];
        for text in ok {
            assert!(could_be_public(ip(text)), "{text}");
        }
    }

    #[test]
    fn own_public_address_seen_outside_is_public() {
        let local = LocalAddrs::new(Some(ip("198.51.100.9")), [ip("127.0.0.1")]);
        assert_eq!(
            Reachability::judge(ip("198.51.100.9"), &local),
            Reachability::Public {
                ip: ip("198.51.100.9")
            }
        );
    }

    #[test]
    fn foreign_address_seen_outside_is_nat_with_the_outward_address() {
        let local = LocalAddrs::new(Some(ip("192.168.1.5")), [ip("127.0.0.1")]);
        let verdict = Reachability::judge(ip("203.0.113.7"), &local);
        let expected = Reachability::BehindNat {
            external: ip("203.0.113.7"),
            local: Some(ip("192.168.1.5")),
        };
        assert_eq!(verdict, expected);
        assert!(verdict.needs_tunnel());
    }

    #[test]
    fn own_private_address_seen_outside_is_unknown() {
        let local = LocalAddrs::new(Some(ip("100.70.1.2")), [ip("10.0.0.2")]);
        for seen in ["100.70.1.2", "10.0.0.2"] {
            let verdict = Reachability::judge(ip(seen), &local);
            assert!(
                matches!(verdict, Reachability::Unknown { .. }),
                "{seen}: {verdict}"
            );
            assert!(!verdict.needs_tunnel());
        }
    }

    #[test]
    fn verdicts_read_as_one_line() {
        let nat = Reachability::BehindNat {
            external: ip("203.0.113.7"),
            local: None,
        };
        assert_eq!(nat.to_string(), "behind NAT (external 203.0.113.7)");
        assert_eq!(
            Reachability::Public { ip: ip("::1") }.to_string(),
            "public at ::1"
        );
    }
}
