//! Where the external address comes from: the source trait and one HTTP IP-echo service.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::NatError;
use crate::config::check_url;

/// The longest body taken as an answer: an IPv6 address is at most 45
/// characters; anything longer is an HTML or error page, not read further.
const MAX_ECHO_BODY_BYTES: usize = 64;

/// Tells which address this machine's traffic comes from, as seen outside.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)] // must precede async_trait
#[async_trait]
pub trait ExternalIpSource: Send + Sync {
    /// The address the outside world sees, or why it could not be learned.
    async fn external_ip(&self) -> Result<IpAddr, NatError>;
}

/// One IP-echo service: a URL whose GET answers with the caller's address
/// as plain text (`203.0.113.7\n`).
///
/// It does not use HTTP proxies from the environment: a proxy's address
/// says nothing about whether this machine can be reached. It does not
/// follow redirects either, so a captive portal counts as a failure.
#[derive(Debug, Clone)]
pub struct HttpEchoSource {
    client: reqwest::Client,
    url: String,
}

impl HttpEchoSource {
    /// A source asking `url`, giving up on it after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, NatError> {
        Self::with_client(echo_client(Some(timeout))?, url)
    }

    /// Shares `client` (and its connection pool and TLS setup) between sources.
    pub(crate) fn with_client(client: reqwest::Client, url: &str) -> Result<Self, NatError> {
        check_url(url)?;
        let url = url.to_string();
        Ok(Self { client, url })
    }

    /// The URL this source asks.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request_error(&self, source: reqwest::Error) -> NatError {
        let url = self.url.clone();
        NatError::Request { url, source }
    }
}

#[async_trait]
impl ExternalIpSource for HttpEchoSource {
    async fn external_ip(&self) -> Result<IpAddr, NatError> {
        let get = self.client.get(&self.url).send().await;
        let response = get.map_err(|e| self.request_error(e))?;
        let status = response.status();
        if !status.is_success() {
            let url = self.url.clone();
            return Err(NatError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let body = read_small_body(response)
            .await
            .map_err(|e| self.request_error(e))?;
        let garbage = || NatError::Garbage {
            url: self.url.clone(),
        };
        body.as_deref()
            .and_then(parse_echo_body)
            .ok_or_else(garbage)
    }
}

/// The HTTP client every echo source uses: no proxy, no redirects. Without
/// a `timeout`, the caller bounds the time (the race's deadline does).
pub(crate) fn echo_client(timeout: Option<Duration>) -> Result<reqwest::Client, NatError> {
    // Asked over IPv4: a machine behind NAT44 with a global IPv6 address
    // would otherwise look public whenever the IPv6 answer wins the race,
    // and the human's side usually reaches it over IPv4.
    let builder = reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([0, 0, 0, 0]))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("drop-nat/", env!("CARGO_PKG_VERSION")));
    let builder = match timeout {
        Some(timeout) => builder.timeout(timeout),
        None => builder,
    };
    builder
        .build()
        .map_err(|source| NatError::Client { source })
}

/// The body, or `None` as soon as it grows past [`MAX_ECHO_BODY_BYTES`].
async fn read_small_body(
    mut response: reqwest::Response,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ECHO_BODY_BYTES {
            return Ok(None);
        }
    }
    Ok(Some(body))
}

/// The address in an echo body, `None` for anything else.
///
/// Surrounding whitespace is allowed; an IPv4-mapped IPv6 address becomes
/// IPv4. Unspecified, multicast and broadcast addresses cannot be anyone's
/// source address, so they count as garbage.
pub fn parse_echo_body(body: &[u8]) -> Option<IpAddr> {
    if body.len() > MAX_ECHO_BODY_BYTES {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    let ip = text.parse::<IpAddr>().ok()?.to_canonical();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    (!ip.is_unspecified() && !ip.is_multicast() && !broadcast).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_addresses_parse_with_surrounding_whitespace() {
        assert_eq!(
            parse_echo_body(b"203.0.113.7"),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_echo_body(b" 203.0.113.7\r\n"),
            Some("203.0.113.7".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_answers_parse() {
        let expected: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(parse_echo_body(b"2001:db8::7\n"), Some(expected));
        let longest = b"2001:0db8:0000:0000:0000:ffff:192.168.100.200\n";
        assert!(parse_echo_body(longest).is_some());
    }

    #[test]
    fn ipv4_mapped_ipv6_answers_become_ipv4() {
        assert_eq!(
            parse_echo_body(b"::ffff:203.0.113.7"),
            Some("203.0.113.7".parse().unwrap())
        );
    }

    #[test]
    fn garbage_bodies_are_rejected() {
        let bodies: [&[u8]; 9] = [
            b"",
            b"\n",
            b"<html><body>Too many requests</body></html>",
            b"error code: 1015",
            b"203.0.113.7 203.0.113.8",
            b"203.0.113",
            b"\xff\xfe203.0.113.7",
            b"0.0.0.0",
            b"255.255.255.255",
        ];
        for body in bodies {
            assert_eq!(
                parse_echo_body(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn over_long_bodies_are_rejected_even_if_they_end_in_an_address() {
        let mut body = vec![b' '; 100];
        body.extend_from_slice(b"203.0.113.7");
        assert_eq!(parse_echo_body(&body), None);
    }

    #[test]
    fn urls_that_are_not_http_are_refused_up_front() {
        let err = HttpEchoSource::new("file:///etc/passwd", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, NatError::BadUrl { .. }));
    }
}
