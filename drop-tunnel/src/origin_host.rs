//! The `Host` header the local server gets: the visitor's (the public
//! hostname), or one of the caller's choice.
//!
//! Dev servers that check `Host` (Vite, webpack-dev-server, Django, Rails,
//! Angular's) refuse a public hostname they were not told about, and
//! accept `localhost:PORT`. cloudflared can send another Host: for a quick
//! tunnel `--http-host-header HOST`, for an ingress rule `originRequest:
//! {httpHostHeader: HOST}` (`cmd/cloudflared/tunnel/cmd.go`,
//! `ingress/config.go`), and the visitor's goes along as
//! `X-Forwarded-Host` (`ingress/origin_proxy.go`).

use crate::TunnelError;

/// The `Host` header cloudflared gives the local server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OriginHost {
    /// The visitor's own, the public hostname: cloudflared's default.
    #[default]
    Public,
    /// `localhost:PORT`, with the local server's port: a Host that dev
    /// servers which check it accept without a setting.
    Localhost,
    /// This one: a host name or address, with a port if any
    /// (`myapp.test:3000`).
    Custom(String),
}

impl OriginHost {
    /// The header for a server on `port`; `None` to keep the visitor's.
    /// Refuses a custom value that is not a host with an optional port.
    pub(crate) fn header(&self, port: u16) -> Result<Option<String>, TunnelError> {
        match self {
            OriginHost::Public => Ok(None),
            OriginHost::Localhost => Ok(Some(format!("localhost:{port}"))),
            OriginHost::Custom(host) => checked_host(host).map(Some),
        }
    }
}

/// `value` if it is `host` or `host:port`, the host a name, an IPv4
/// address or a bracketed IPv6 one.
fn checked_host(value: &str) -> Result<String, TunnelError> {
    let refuse = || TunnelError::InvalidRoute {
        route: value.to_owned(),
        reason: "a Host header is a host name or address, with a port if any: localhost:5173"
            .into(),
    };
    let (host, port) = match value.strip_prefix('[') {
        Some(v6) => {
            let (address, rest) = v6.split_once(']').ok_or_else(refuse)?;
            let port = rest.strip_prefix(':');
            if address.parse::<std::net::Ipv6Addr>().is_err()
                || (port.is_none() && !rest.is_empty())
            {
                return Err(refuse());
            }
            (None, port)
        }
        None => match value.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(value), None),
        },
    };
    let name_ok = host.is_none_or(|host| {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    });
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok_and(|p| p > 0));
    match name_ok && port_ok {
        true => Ok(value.to_owned()),
        false => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The visitor's Host is kept unless asked; `localhost` takes the
    /// server's port.
    #[test]
    fn the_header_is_none_localhost_with_the_port_or_the_one_given() {
        assert_eq!(OriginHost::Public.header(5173).unwrap(), None);
        assert_eq!(
            OriginHost::Localhost.header(5173).unwrap().as_deref(),
            Some("localhost:5173")
        );
        assert_eq!(OriginHost::default(), OriginHost::Public);
        for good in [
            "myapp.test",
            "myapp.test:3000",
            "127.0.0.1:8000",
            "[::1]:8000",
            "[::1]",
        ] {
            let custom = OriginHost::Custom(good.into());
            assert_eq!(custom.header(1).unwrap().as_deref(), Some(good));
        }
    }

    /// Anything that is not a host with an optional port is refused,
    /// before cloudflared runs.
    #[test]
    fn a_custom_header_that_is_not_a_host_is_refused() {
        for bad in [
            "",
            "my app.test",
            "a.test/path",
            "a.test:",
            "a.test:99999",
            "a.test:0",
            "user@a.test",
            "[::1",
            "[nonsense]:80",
            "a.test\r\nX-Evil: 1",
        ] {
            let err = OriginHost::Custom(bad.into()).header(1).unwrap_err();
            assert!(err.to_string().contains("a Host header is"), "{bad}: {err}");
            assert!(err.is_permanent(), "{bad}");
        }
    }
}
