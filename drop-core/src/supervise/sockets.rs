//! Which addresses a port is listened on, read from the kernel's socket
//! tables (`/proc/net/tcp` and `/proc/net/tcp6`), and what that means for
//! who can reach it: other machines, or this one alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The state of a listening socket in `/proc/net/tcp*` (`TCP_LISTEN`).
const LISTEN: &str = "0A";

/// The addresses TCP sockets listen on at `port`, IPv4 and IPv6; empty when
/// none does, or the tables cannot be read (not Linux).
pub fn listeners(port: u16) -> Vec<SocketAddr> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| parse_listeners(&text, port))
        .collect()
}

/// The listening addresses at `port` in one socket table's text.
fn parse_listeners(table: &str, port: u16) -> Vec<SocketAddr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            (state == LISTEN).then_some(())?;
            let address = parse_address(local)?;
            (address.port() == port).then_some(address)
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6): the address as
/// the kernel prints it, each 32-bit word in the machine's byte order
/// (little-endian on every platform drop runs on), the port big-endian.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [v4] => IpAddr::V4(Ipv4Addr::from(v4.swap_bytes())),
        [a, b, c, d] => {
            let bytes: Vec<u8> = [a, b, c, d]
                .iter()
                .flat_map(|w| w.swap_bytes().to_be_bytes())
                .collect();
            let bytes: [u8; 16] = bytes.try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether only this machine can connect to a port listened on at
/// `listeners`: every one is a loopback address. Nothing known is not
/// "loopback only".
pub fn loopback_only(listeners: &[SocketAddr]) -> bool {
    // `::ffff:127.0.0.1` is loopback too.
    !listeners.is_empty()
        && listeners
            .iter()
            .all(|a| a.ip().to_canonical().is_loopback())
}

/// Where a tunnel on this machine reaches a port listened on at
/// `listeners`: IPv4 loopback when it is listened on over IPv4 (there or on
/// every address), else IPv6 loopback when over IPv6 (`::` may be IPv6
/// only, `::1` always answers for it), else the one address it is
/// listened on.
pub fn local_target(listeners: &[SocketAddr], port: u16) -> SocketAddr {
    let v4_loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6_loopback = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let ip_of = |a: &SocketAddr| a.ip().to_canonical();
    let on_v4 =
        |ip: IpAddr| matches!(ip, IpAddr::V4(v4) if v4.is_unspecified() || v4.is_loopback());
    let on_v6 =
        |ip: IpAddr| matches!(ip, IpAddr::V6(v6) if v6.is_unspecified() || v6.is_loopback());
    if listeners.is_empty() || listeners.iter().any(|a| on_v4(ip_of(a))) {
        v4_loopback
    } else if listeners.iter().any(|a| on_v6(ip_of(a))) {
        v6_loopback
    } else {
        listeners[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1389 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1389 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 3201A8C0:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1389 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0000000000000000 100 0 0 10 0
";

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn listening_sockets_are_read_from_the_kernel_tables() {
        assert_eq!(
            parse_listeners(TCP, 5001),
            [addr("127.0.0.1:5001")],
            "not the connection"
        );
        assert_eq!(parse_listeners(TCP, 8080), [addr("0.0.0.0:8080")]);
        assert_eq!(parse_listeners(TCP, 8081), [addr("192.168.1.50:8081")]);
        assert_eq!(parse_listeners(TCP6, 5001), [addr("[::1]:5001")]);
        assert_eq!(parse_listeners(TCP6, 8082), [addr("[::]:8082")]);
        assert!(parse_listeners(TCP, 9).is_empty());
        assert!(parse_listeners("garbage\n0: zz:zz 0A", 1).is_empty());
    }

    #[test]
    fn loopback_only_means_no_other_machine_gets_in() {
        assert!(loopback_only(&[addr("127.0.0.1:1"), addr("[::1]:1")]));
        assert!(!loopback_only(&[addr("127.0.0.1:1"), addr("[::]:1")]));
        assert!(!loopback_only(&[addr("0.0.0.0:1")]));
        assert!(!loopback_only(&[addr("192.168.1.50:1")]));
        assert!(!loopback_only(&[]), "unknown is not loopback-only");
        assert!(loopback_only(&[addr("[::ffff:127.0.0.1]:1")]), "mapped");
    }

    #[test]
    fn a_tunnel_reaches_the_address_the_app_listens_on() {
        let target = |listeners: &[&str]| {
            let listeners: Vec<SocketAddr> = listeners.iter().map(|a| addr(a)).collect();
            local_target(&listeners, 1)
        };
        assert_eq!(target(&["127.0.0.1:1"]), addr("127.0.0.1:1"));
        assert_eq!(target(&["0.0.0.0:1"]), addr("127.0.0.1:1"));
        assert_eq!(target(&["[::]:1"]), addr("[::1]:1"), "IPv6 only, maybe");
        assert_eq!(target(&["[::]:1", "0.0.0.0:1"]), addr("127.0.0.1:1"));
        assert_eq!(target(&["[::1]:1"]), addr("[::1]:1"), "IPv6 loopback only");
        assert_eq!(target(&["192.168.1.50:1"]), addr("192.168.1.50:1"));
        assert_eq!(target(&[]), addr("127.0.0.1:1"));
    }

    /// The real tables, with a listener of this test's own.
    #[test]
    fn a_listener_of_this_process_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listeners(port), [addr(&format!("127.0.0.1:{port}"))]);
    }
}
