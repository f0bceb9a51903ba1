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

use crate::TunnelError;
use crate::launch::origin;

/// The service of the last rule: every hostname not routed gets a 404.
pub(crate) const CATCH_ALL: &str = "http_status:404";

/// One ingress rule: requests for `hostname` go to `service`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedRoute {
    hostname: String,
    service: String,
}

impl NamedRoute {
    /// Requests for `hostname` (lower-cased; a first label `*` matches any
    /// subdomain) go to `service`: `http://host:port`, `https://…`, or
    /// `http_status:CODE`.
    pub fn new(hostname: &str, service: &str) -> Result<Self, TunnelError> {
        Ok(NamedRoute {
            hostname: checked_hostname(hostname)?,
            service: checked_service(service)?,
        })
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
/// credentials, the routes in order, then `fallback` (else the 404) for
/// everything else. Strings are written as JSON strings, which YAML reads
/// the same.
pub(crate) fn config_text(
    tunnel_id: &str,
    credentials_file: &Path,
    routes: &[NamedRoute],
    fallback: Option<&str>,
) -> String {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
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
        text += &format!(
            "  - hostname: {}\n    service: {}\n",
            quoted(&route.hostname),
            quoted(&route.service)
        );
    }
    text += &format!("  - service: {}\n", quoted(fallback.unwrap_or(CATCH_ALL)));
    text
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
        let caught = config_text("x", Path::new("/c"), &routes, Some("http://127.0.0.1:8080"));
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
