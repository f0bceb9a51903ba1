//! Where this machine can be reached from: its outward address.
//!
//! This crate knows no other drop crate, so any Rust project can embed it.
//! For now it answers one question offline: which local address the
//! machine would use to reach the internet. Detecting NAT by asking public
//! IP-echo services builds on it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

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
