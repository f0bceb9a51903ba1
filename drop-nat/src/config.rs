//! Which IP-echo services to ask and for how long: a plain struct and its environment.

use std::time::Duration;

use crate::NatError;

/// The environment variable listing the IP-echo URLs, separated by commas or
/// whitespace. Unset, blank or only separators means [`DEFAULT_SERVICES`].
pub const SERVICES_VAR: &str = "DROP_IP_ECHO_URLS";

/// The environment variable holding the total deadline in milliseconds.
/// Unset or blank means [`DEFAULT_DEADLINE`].
pub const DEADLINE_VAR: &str = "DROP_NAT_DEADLINE_MS";

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
    /// The defaults, overridden by [`SERVICES_VAR`] and [`DEADLINE_VAR`].
    pub fn from_env() -> Result<Self, NatError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Same as [`NatConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, NatError> {
        let mut config = Self::default();
        let services = lookup(SERVICES_VAR).map(|list| parse_services(&list));
        if let Some(services) = services.transpose()?.filter(|s| !s.is_empty()) {
            config.services = services;
        }
        if let Some(ms) = lookup(DEADLINE_VAR).filter(|v| !v.trim().is_empty()) {
            config.deadline = parse_deadline(&ms)?;
        }
        Ok(config)
    }
}

/// Splits on commas and whitespace; every item must be an http(s) URL.
fn parse_services(list: &str) -> Result<Vec<String>, NatError> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(|item| check_url(item).map(|()| item.to_string()))
        .collect()
}

/// A positive number of milliseconds.
fn parse_deadline(ms: &str) -> Result<Duration, NatError> {
    match ms.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(NatError::BadVar {
            var: DEADLINE_VAR,
            value: ms.to_string(),
            expected: "a positive number of milliseconds",
        }),
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

    fn config_from(vars: &[(&str, &str)]) -> Result<NatConfig, NatError> {
        NatConfig::from_lookup(|name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        assert_eq!(config_from(&[]).unwrap(), NatConfig::default());
        assert!(NatConfig::default().deadline <= Duration::from_secs(2));
    }

    #[test]
    fn services_split_on_commas_and_whitespace() {
        let list = "http://127.0.0.1:1/ip, https://[::1]:2\n\thttp://localhost:3";
        let config = config_from(&[(SERVICES_VAR, list)]).unwrap();
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
        let config = config_from(&[(SERVICES_VAR, " , ")]).unwrap();
        assert_eq!(config.services, NatConfig::default().services);
    }

    #[test]
    fn a_service_that_is_not_an_http_url_is_rejected() {
        for bad in ["ftp://127.0.0.1/", "127.0.0.1:8080", "http//x"] {
            let err = config_from(&[(SERVICES_VAR, bad)]).unwrap_err();
            assert!(matches!(err, NatError::BadUrl { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn deadline_is_read_in_milliseconds() {
        let config = config_from(&[(DEADLINE_VAR, "250")]).unwrap();
        assert_eq!(config.deadline, Duration::from_millis(250));
    }

    #[test]
    fn zero_or_text_deadline_is_rejected() {
        for bad in ["0", "fast", "-5", "1.5"] {
            let err = config_from(&[(DEADLINE_VAR, bad)]).unwrap_err();
            assert!(
                matches!(
                    err,
                    NatError::BadVar {
                        var: DEADLINE_VAR,
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
