//! Which IP-echo services to ask and for how long: a plain struct the
//! caller fills (the crate reads no environment variable).

use std::time::Duration;

use crate::NatError;

/// Public services that answer a GET with the caller's address as plain text.
pub const DEFAULT_SERVICES: &[&str] = &[
    "https://ifconfig.me/ip",
    "https://api.ipify.org",
    "https://icanhazip.com",
    "https://checkip.amazonaws.com",
];

/// The whole detection stays under two seconds, listing interfaces included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(1500);

/// How NAT detection asks the outside world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// IP-echo URLs, all asked at once; each must answer with a bare address.
    pub services: Vec<String>,
    /// Total time for the race; when it passes, the verdict is unknown.
    pub deadline: Duration,
}

impl Default for NatConfig {
    fn default() -> Self {
        Self {
            services: DEFAULT_SERVICES.iter().map(|url| url.to_string()).collect(),
            deadline: DEFAULT_DEADLINE,
        }
    }
}

impl NatConfig {
    /// The services of `list`, split on commas and whitespace, each an
    /// absolute http(s) URL; the defaults when it names none.
    pub fn with_services(mut self, list: &str) -> Result<Self, NatError> {
        let services = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
            .map(|item| check_url(item).map(|()| item.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if !services.is_empty() {
            self.services = services;
        }
        Ok(self)
    }
}

/// Accepts absolute http and https URLs only.
pub(crate) fn check_url(url: &str) -> Result<(), NatError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        _ => Err(NatError::BadUrl {
            url: url.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_from(list: &str) -> Result<NatConfig, NatError> {
        NatConfig::default().with_services(list)
    }

    #[test]
    fn an_empty_list_gives_the_defaults() {
        assert_eq!(config_from("").unwrap(), NatConfig::default());
        assert!(NatConfig::default().deadline <= Duration::from_secs(2));
    }

    #[test]
    fn services_split_on_commas_and_whitespace() {
        let list = "http://127.0.0.1:1/ip, https://[::1]:2\n\thttp://localhost:3";
        let config = config_from(list).unwrap();
        assert_eq!(
            config.services,
            [
                "http://127.0.0.1:1/ip",
                "https://[::1]:2",
                "http://localhost:3"
            ]
        );
    }

    #[test]
    fn blank_services_keep_the_defaults() {
        let config = config_from(" , ").unwrap();
        assert_eq!(config.services, NatConfig::default().services);
    }

    #[test]
    fn a_service_that_is_not_an_http_url_is_rejected() {
        for bad in ["ftp://127.0.0.1/", "127.0.0.1:8080", "http//x"] {
            let err = config_from(bad).unwrap_err();
            assert!(matches!(err, NatError::BadUrl { .. }), "{bad}: {err}");
        }
    }
}
