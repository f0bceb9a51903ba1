//! Ingress rules: which hostname goes to which local service, as the config
//! file of one `cloudflared tunnel run` says it, ending with the rule that
//! answers 404 to every other hostname.
//!
//! cloudflared checks rules as `ingress/ingress.go` and
//! `cmd/cloudflared/tunnel/subcommands.go` (`validateHostname`) do: a
//! hostname has no port, at most one `*`, only as a first label `*.`; the
//! last rule must match everything; a service is `http(s)://host[:port]`
//! without a path, or `http_status:CODE`. Routes are checked here first, so
//! a bad one is an error before any process starts.

use std::net::SocketAddr;
use std::path::Path;

use crate::launch::origin;
use crate::{OriginHost, TunnelError};

/// The service of the last rule: every hostname not routed gets a 404.
pub(crate) const CATCH_ALL: &str = "http_status:404";

/// One ingress rule: requests for `hostname` go to `service`, with the
/// visitor's `Host` unless [`with_origin_host`](Self::with_origin_host)
/// says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedRoute {
    hostname: String,
    service: String,
    /// The Host the service gets instead of the visitor's.
    http_host_header: Option<String>,
}

impl NamedRoute {
    /// Requests for `hostname` (lower-cased; a first label `*` matches any
    /// subdomain) go to `service`: `http://host:port`, `https://…`, or
    /// `http_status:CODE`.
    pub fn new(hostname: &str, service: &str) -> Result<Self, TunnelError> {
        Ok(NamedRoute {
            hostname: checked_hostname(hostname)?,
            service: checked_service(service)?,
            http_host_header: None,
        })
    }

    /// The same route, its service getting `host` as the `Host` header
    /// (cloudflared's `originRequest.httpHostHeader`; the visitor's then
    /// comes as `X-Forwarded-Host`). [`OriginHost::Localhost`] takes the
    /// service's port. Refuses a Host that is not one, and any for an
    /// `http_status:` rule, which has no server to send it to.
    pub fn with_origin_host(mut self, host: OriginHost) -> Result<Self, TunnelError> {
        if host == OriginHost::Public {
            self.http_host_header = None;
            return Ok(self);
        }
        let port = service_port(&self.service).ok_or_else(|| TunnelError::InvalidRoute {
            route: self.service.clone(),
            reason: "it names no server port to put in a Host header".into(),
        })?;
        self.http_host_header = host.header(port)?;
        Ok(self)
    }

    /// The Host its service gets, when not the visitor's.
    pub fn http_host_header(&self) -> Option<&str> {
        self.http_host_header.as_deref()
    }

    /// Requests for `hostname` go to a server on this machine at `local`
    /// (loopback when `local` is a wildcard address).
    pub fn to_local(hostname: &str, local: SocketAddr) -> Result<Self, TunnelError> {
        Self::new(hostname, &format!("http://{}", origin(local)))
    }

    /// The hostname, lower-case.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Where its requests go.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Its URL: `https://<hostname>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.hostname)
    }
}

/// Refuses a second route for a hostname already routed.
pub(crate) fn check_distinct(routes: &[NamedRoute]) -> Result<(), TunnelError> {
    for (at, route) in routes.iter().enumerate() {
        if routes[..at].iter().any(|r| r.hostname == route.hostname) {
            return Err(TunnelError::InvalidRoute {
                route: route.hostname.clone(),
                reason: "two routes for one hostname".into(),
            });
        }
    }
    Ok(())
}

/// The config file of a `cloudflared tunnel run`: the tunnel, its
/// credentials, the routes in order, then `fallback`'s service (else the
/// 404) for everything else. Strings are written as JSON strings, which
/// YAML reads the same.
pub(crate) fn config_text(
    tunnel_id: &str,
    credentials_file: &Path,
    routes: &[NamedRoute],
    fallback: Option<&NamedRoute>,
) -> String {
    let mut text = String::from(
        "# Written by drop-tunnel for `cloudflared tunnel run`, at every start:\n\
         # the tunnel, its credentials, and where each hostname goes.\n",
    );
    text += &format!("tunnel: {}\n", quoted(tunnel_id));
    text += &format!(
        "credentials-file: {}\n",
        quoted(&credentials_file.to_string_lossy())
    );
    text += "no-autoupdate: true\ningress:\n";
    for route in routes {
        text += &format!("  - hostname: {}\n", quoted(&route.hostname));
        text += &rule_text("    ", route);
    }
    text += &match fallback {
        Some(route) => rule_text("  - ", route),
        None => format!("  - service: {}\n", quoted(CATCH_ALL)),
    };
    text
}

/// A rule's service and, if any, the Host it gets; `lead` begins the
/// service's line (`  - ` for a new rule, else the indentation of a rule's
/// later keys).
fn rule_text(lead: &str, route: &NamedRoute) -> String {
    let mut text = format!("{lead}service: {}\n", quoted(&route.service));
    if let Some(host) = route.http_host_header() {
        text += &format!(
            "    originRequest:\n      httpHostHeader: {}\n",
            quoted(host)
        );
    }
    text
}

/// `text` as a JSON string, which YAML reads as the same string.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The port a service URL's server listens on: the one it names, else its
/// scheme's; `None` for a fixed status.
fn service_port(service: &str) -> Option<u16> {
    let (default, rest) = match service.split_once("://")? {
        ("http", rest) => (80, rest),
        ("https", rest) => (443, rest),
        _ => return None,
    };
    let authority = rest.trim_end_matches('/');
    // After an IPv6 literal's `]`, or after the last `:` of a name.
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, rest)| rest);
    match after_host.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None => Some(default),
    }
}

/// `hostname` lower-cased, if cloudflared would take it for a DNS route
/// and an ingress rule.
pub(crate) fn checked_hostname(hostname: &str) -> Result<String, TunnelError> {
    let refuse = |reason: &str| TunnelError::InvalidRoute {
        route: hostname.to_owned(),
        reason: reason.to_owned(),
    };
    if !hostname.is_ascii() {
        return Err(refuse("not ASCII: give its punycode form (xn--…)"));
    }
    let lower = hostname.to_ascii_lowercase();
    if lower.contains(':') {
        return Err(refuse("a hostname has no port"));
    }
    if lower.is_empty() || lower.len() > 253 {
        return Err(refuse("a hostname has 1 to 253 characters"));
    }
    let labels: Vec<&str> = lower.split('.').collect();
    if labels.len() < 2 {
        return Err(refuse("a hostname has a domain: name.example.com"));
    }
    for (at, label) in labels.iter().enumerate() {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        match *label {
            "" => return Err(refuse("a hostname has no empty label")),
            "*" if at == 0 => {}
            _ if label.contains('*') => {
                return Err(refuse(
                    "a `*` may only be the whole first label: *.example.com",
                ));
            }
            _ if label.len() > 63 => return Err(refuse("a label has at most 63 characters")),
            _ if label.starts_with('-') || !label.chars().all(allowed) => {
                return Err(refuse(
                    "a label has letters, digits, `-` and `_`, and does not start with `-`",
                ));
            }
            _ => {}
        }
    }
    Ok(lower)
}

/// `service` if cloudflared would take it as a rule's service.
fn checked_service(service: &str) -> Result<String, TunnelError> {
    let refuse = |reason: &str| TunnelError::InvalidRoute {
        route: service.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(code) = service.strip_prefix("http_status:") {
        return match code.parse::<u16>() {
            Ok(100..=599) => Ok(service.to_owned()),
            _ => Err(refuse("an HTTP status is a number from 100 to 599")),
        };
    }
    let Some(rest) = service
        .strip_prefix("http://")
        .or_else(|| service.strip_prefix("https://"))
    else {
        return Err(refuse(
            "a service is http://host:port, https://… or http_status:CODE",
        ));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty()
        || authority.contains(['/', '?', '#'])
        || authority.contains(char::is_whitespace)
    {
        return Err(refuse(
            "a service has a host and no path: cloudflared keeps the request's own path",
        ));
    }
    Ok(service.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostnames are taken as cloudflared takes them, lower-cased.
    #[test]
    fn hostnames_cloudflared_takes_are_taken() {
        for (given, kept) in [
            ("drop.example.com", "drop.example.com"),
            ("API.Drop.Example.com", "api.drop.example.com"),
            ("*.drop.example.com", "*.drop.example.com"),
            ("my_app-2.example.co.uk", "my_app-2.example.co.uk"),
        ] {
            assert_eq!(checked_hostname(given).unwrap(), kept);
        }
    }

    /// Ports, stray wildcards, empty labels, bare words and non-ASCII
    /// names are refused, each with its reason.
    #[test]
    fn hostnames_cloudflared_refuses_are_refused() {
        for (bad, reason) in [
            ("drop.example.com:8080", "port"),
            ("a.*.example.com", "first label"),
            ("*a.example.com", "first label"),
            ("drop..example.com", "empty label"),
            ("drop.example.com.", "empty label"),
            ("localhost", "domain"),
            ("dröp.example.com", "punycode"),
            ("-drop.example.com", "does not start with"),
            ("", "1 to 253"),
        ] {
            let err = checked_hostname(bad).unwrap_err();
            assert!(err.to_string().contains(reason), "{bad}: {err}");
            assert!(err.is_permanent());
        }
    }

    /// Services are local URLs without a path, or a fixed status.
    #[test]
    fn services_are_urls_without_a_path_or_a_status() {
        for good in [
            "http://127.0.0.1:8080",
            "https://localhost:8443/",
            "http_status:404",
        ] {
            assert!(checked_service(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/app",
            "http://",
            "http_status:99",
            "ftp://x",
        ] {
            assert!(checked_service(bad).is_err(), "{bad}");
        }
        let local =
            NamedRoute::to_local("drop.example.com", "0.0.0.0:9000".parse().unwrap()).unwrap();
        assert_eq!(local.service(), "http://127.0.0.1:9000");
        assert_eq!(local.url(), "https://drop.example.com");
    }

    /// A route may give its service another Host: `originRequest:
    /// httpHostHeader` under its rule, `localhost` with the service's
    /// port; the rule that catches all carries it too.
    #[test]
    fn a_route_with_its_own_host_says_so_under_its_rule() {
        let api = NamedRoute::new("api.drop.example.com", "http://127.0.0.1:5173")
            .unwrap()
            .with_origin_host(OriginHost::Localhost)
            .unwrap();
        assert_eq!(api.http_host_header(), Some("localhost:5173"));
        let main = NamedRoute::new("drop.example.com", "http://127.0.0.1:8080").unwrap();
        let text = config_text("x", Path::new("/c"), &[main, api.clone()], Some(&api));
        let settings: Vec<&str> = text.lines().skip_while(|l| *l != "ingress:").collect();
        assert_eq!(
            settings,
            [
                "ingress:",
                "  - hostname: \"drop.example.com\"",
                "    service: \"http://127.0.0.1:8080\"",
                "  - hostname: \"api.drop.example.com\"",
                "    service: \"http://127.0.0.1:5173\"",
                "    originRequest:",
                "      httpHostHeader: \"localhost:5173\"",
                "  - service: \"http://127.0.0.1:5173\"",
                "    originRequest:",
                "      httpHostHeader: \"localhost:5173\"",
            ]
        );
        let kept = api.with_origin_host(OriginHost::Public).unwrap();
        assert_eq!(kept.http_host_header(), None);
    }

    /// `localhost` takes the port the service names, or its scheme's; a
    /// fixed status has no server, and a bad custom Host is refused.
    #[test]
    fn the_host_a_route_gives_follows_its_service() {
        let host = |service: &str, host: OriginHost| {
            NamedRoute::new("a.example.com", service)
                .and_then(|route| route.with_origin_host(host))
                .map(|route| route.http_host_header().map(str::to_owned))
        };
        for (service, expected) in [
            ("http://127.0.0.1:3000", "localhost:3000"),
            ("http://[::1]:8000/", "localhost:8000"),
            ("http://127.0.0.1", "localhost:80"),
            ("https://localhost", "localhost:443"),
        ] {
            let got = host(service, OriginHost::Localhost).unwrap();
            assert_eq!(got.as_deref(), Some(expected), "{service}");
        }
        assert!(host("http_status:404", OriginHost::Localhost).is_err());
        assert!(host("http://127.0.0.1:1", OriginHost::Custom("a b".into())).is_err());
        let custom = host("http://127.0.0.1:1", OriginHost::Custom("app.test".into()));
        assert_eq!(custom.unwrap().as_deref(), Some("app.test"));
    }

    /// A hostname routed twice is refused.
    #[test]
    fn a_hostname_routed_twice_is_refused() {
        let a = NamedRoute::new("a.example.com", "http://127.0.0.1:1").unwrap();
        let b = NamedRoute::new("A.example.com", "http://127.0.0.1:2").unwrap();
        assert!(check_distinct(std::slice::from_ref(&a)).is_ok());
        let err = check_distinct(&[a, b]).unwrap_err();
        assert!(
            err.to_string().contains("two routes for one hostname"),
            "{err}"
        );
    }

    /// The config names the tunnel and its credentials, routes each
    /// hostname in order, and ends with the 404 that cloudflared requires.
    #[test]
    fn the_config_routes_each_hostname_then_answers_404() {
        let routes = [
            NamedRoute::new("drop.example.com", "http://127.0.0.1:8080").unwrap(),
            NamedRoute::new("api.drop.example.com", "http://127.0.0.1:5000").unwrap(),
        ];
        let text = config_text(
            "6ff42ae2-765d-4adf-8112-31c55c1551ef",
            Path::new("/home/u/.cloudflared/6ff42ae2-765d-4adf-8112-31c55c1551ef.json"),
            &routes,
            None,
        );
        let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            settings,
            [
                "tunnel: \"6ff42ae2-765d-4adf-8112-31c55c1551ef\"",
                "credentials-file: \"/home/u/.cloudflared/6ff42ae2-765d-4adf-8112-31c55c1551ef.json\"",
                "no-autoupdate: true",
                "ingress:",
                "  - hostname: \"drop.example.com\"",
                "    service: \"http://127.0.0.1:8080\"",
                "  - hostname: \"api.drop.example.com\"",
                "    service: \"http://127.0.0.1:5000\"",
                "  - service: \"http_status:404\"",
            ]
        );
        let odd = config_text("x", Path::new("/a \"quoted\": path"), &[], None);
        let caught = config_text("x", Path::new("/c"), &routes, Some(&routes[0]));
        assert!(
            caught.ends_with("  - service: \"http://127.0.0.1:8080\"\n"),
            "{caught}"
        );
        assert!(
            odd.contains(r#"credentials-file: "/a \"quoted\": path""#),
            "{odd}"
        );
    }
}
