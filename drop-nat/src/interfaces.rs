//! This machine's own addresses: every interface's, and the outward one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use crate::NatError;

/// A documentation address (TEST-NET-1): connecting a UDP socket to it only
/// asks the kernel for a route; no packet is sent.
const ROUTE_PROBE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 9);

/// The local address of the default route, `None` when there is no route
/// (offline). Sends nothing on the network.
pub fn outward_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect(ROUTE_PROBE).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The addresses this machine holds.
///
/// All interfaces count, not only the default route's: a server can carry
/// its public address on a second interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    outward: Option<IpAddr>,
    all: Vec<IpAddr>,
}

impl LocalAddrs {
    /// A set made of `all` plus `outward`, the default route's address.
    pub fn new(outward: Option<IpAddr>, all: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut all: Vec<IpAddr> = all
            .into_iter()
            .chain(outward)
            .map(|ip| ip.to_canonical())
            .collect();
        all.sort_unstable();
        all.dedup();
        let outward = outward.map(|ip| ip.to_canonical());
        Self { outward, all }
    }

    /// Every interface address of this machine (IPv6 link-local ones left
    /// out) and its outward address. Reads the kernel's tables; sends nothing.
    pub fn of_this_machine() -> Result<Self, NatError> {
        let interfaces =
            if_addrs::get_if_addrs().map_err(|source| NatError::Interfaces { source })?;
        Ok(Self::new(outward_ip(), interfaces.iter().map(|i| i.ip())))
    }

    /// Whether this machine holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.all.contains(&ip.to_canonical())
    }

    /// The default route's address, when there is one.
    pub fn outward(&self) -> Option<IpAddr> {
        self.outward
    }

    /// The address to show as "local": the outward one, else the first that
    /// is neither loopback nor link-local.
    pub fn primary(&self) -> Option<IpAddr> {
        let usable = |ip: &&IpAddr| !ip.is_loopback() && !is_link_local(**ip);
        self.outward
            .or_else(|| self.all.iter().find(usable).copied())
    }

    /// Every address, sorted, without duplicates.
    pub fn all(&self) -> &[IpAddr] {
        &self.all
    }
}

/// 169.254.0.0/16 and fe80::/10.
pub(crate) fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn this_machine_has_at_least_its_loopback_address() {
        let local = LocalAddrs::of_this_machine().unwrap();
        assert!(
            local.contains(ip("127.0.0.1")) || local.contains(ip("::1")),
            "{local:?}"
        );
    }

    #[test]
    fn every_interface_counts_not_only_the_outward_one() {
        let local = LocalAddrs::new(
            Some(ip("192.168.1.5")),
            [ip("198.51.100.9"), ip("127.0.0.1")],
        );
        assert!(local.contains(ip("198.51.100.9")));
        assert!(local.contains(ip("192.168.1.5")));
        assert!(!local.contains(ip("198.51.100.10")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_their_ipv4_form() {
        let local = LocalAddrs::new(None, [ip("::ffff:198.51.100.9")]);
        assert!(local.contains(ip("198.51.100.9")));
    }

    #[test]
    fn primary_prefers_outward_then_skips_loopback_and_link_local() {
        let all = [ip("127.0.0.1"), ip("fe80::1"), ip("10.0.0.2")];
        assert_eq!(
            LocalAddrs::new(Some(ip("192.168.1.5")), all).primary(),
            Some(ip("192.168.1.5"))
        );
        assert_eq!(LocalAddrs::new(None, all).primary(), Some(ip("10.0.0.2")));
        assert_eq!(LocalAddrs::new(None, [ip("127.0.0.1")]).primary(), None);
    }
}
