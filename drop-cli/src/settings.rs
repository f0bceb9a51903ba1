//! drop's settings from the environment (`DROP_*`), read in one place, once
//! per command (into its [`crate::context::Context`]), as the plain structs
//! the engine and drop-nat take.

use std::path::PathBuf;
use std::time::Duration;

use drop_core::http::ServerConfig;
use drop_core::supervise::verify::{DNS_SETTLE, usable_url};
use drop_core::supervise::{AppLimits, LinkConfig};
use drop_nat::NatConfig;

use crate::error::CliError;

/// The address bound when `DROP_BIND` is not set: every interface, so the
/// human on another machine can reach the page.
pub const DEFAULT_BIND: &str = "0.0.0.0";

/// The longest time a `*_MS` setting may give: a day.
const MAX_MILLIS: u64 = 24 * 60 * 60 * 1000;
/// The most connections `DROP_MAX_CONNECTIONS` may allow.
const MAX_COUNT: u64 = 1_000_000;
/// The most threads `DROP_WORKERS` may ask for.
const MAX_WORKERS: u64 = 1024;

/// Every setting the server and its apps take from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DROP_BIND`: the address the page server binds.
    pub bind: String,
    /// `DROP_WORKERS`: threads serving requests; `None` is one per core.
    pub workers: Option<usize>,
    /// `DROP_HEADER_TIMEOUT_MS`, `DROP_MAX_CONNECTIONS`,
    /// `DROP_WRITE_STALL_TIMEOUT_MS`.
    pub server: ServerConfig,
    /// `DROP_APP_START_TIMEOUT_MS`, `DROP_STOP_GRACE_MS`.
    pub apps: AppLimits,
    /// The app limits this command was given (set variables only): a
    /// running daemon applies them to this command's request.
    pub apps_given: AppOverrides,
    /// `DROP_DOH_URLS`, `DROP_TUNNEL_EDGE`: where tunnel URLs are checked
    /// from outside.
    pub links: LinkConfig,
    /// `DROP_TUNNEL_VERIFY_TIMEOUT_MS`: how long a start waits for a tunnel
    /// URL to be confirmed before it prints it with a note.
    pub verify_bound: Duration,
    /// `DROP_TUNNEL_DNS_SETTLE_MS`: how long after a tunnel comes up public
    /// DNS is first asked about its hostname.
    pub dns_settle: Duration,
    /// `DROP_IP_ECHO_URLS`, `DROP_NAT_DEADLINE_MS`: how `drop start` asks
    /// whether this machine is behind NAT.
    pub nat: NatConfig,
    /// `TUNNEL_ORIGIN_CERT` (cloudflared's own variable): where the login
    /// certificate of named tunnels is, when not in cloudflared's places.
    pub origin_cert: Option<PathBuf>,
    /// `HOME`: the user's home folder, which `add` never publishes whole.
    pub user_home: Option<PathBuf>,
}

/// How long a start waits for a tunnel URL to be seen working from outside.
pub const DEFAULT_VERIFY_BOUND: Duration = Duration::from_secs(30);

/// App limits a command was given, to hand to the daemon with its request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppOverrides {
    /// `DROP_APP_START_TIMEOUT_MS`, when set.
    pub start_timeout: Option<Duration>,
    /// `DROP_STOP_GRACE_MS`, when set.
    pub stop_grace: Option<Duration>,
}

impl AppOverrides {
    /// Milliseconds, as the control protocol carries them.
    pub fn start_timeout_ms(&self) -> Option<u64> {
        self.start_timeout.map(|d| d.as_millis() as u64)
    }

    /// Milliseconds, as the control protocol carries them.
    pub fn stop_grace_ms(&self) -> Option<u64> {
        self.stop_grace.map(|d| d.as_millis() as u64)
    }
}

impl Settings {
    /// The settings of this process's environment.
    pub fn from_env() -> Result<Self, CliError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings `lookup` gives; unset or blank means the default, and
    /// a value that is not a whole number in its range is an error naming
    /// it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CliError> {
        let bounded = |name: &'static str, max: u64| -> Result<Option<u64>, CliError> {
            let Some(value) = lookup(name).filter(|v| !v.trim().is_empty()) else {
                return Ok(None);
            };
            match value.trim().parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(CliError::BadSetting { name, value, max }),
            }
        };
        let number = |name: &'static str| bounded(name, MAX_COUNT);
        let millis = |name, default: Duration| -> Result<Duration, CliError> {
            Ok(bounded(name, MAX_MILLIS)?.map_or(default, Duration::from_millis))
        };
        let given = |name| -> Result<Option<Duration>, CliError> {
            Ok(bounded(name, MAX_MILLIS)?.map(Duration::from_millis))
        };
        let apps_given = AppOverrides {
            start_timeout: given("DROP_APP_START_TIMEOUT_MS")?,
            stop_grace: given("DROP_STOP_GRACE_MS")?,
        };
        let server_defaults = ServerConfig::default();
        let app_defaults = AppLimits::default();
        let links = link_config(&lookup)?;
        let verify_bound = millis("DROP_TUNNEL_VERIFY_TIMEOUT_MS", DEFAULT_VERIFY_BOUND)?;
        let dns_settle = millis("DROP_TUNNEL_DNS_SETTLE_MS", DNS_SETTLE)?;
        if dns_settle >= verify_bound {
            return Err(CliError::SettingsClash {
                first: "DROP_TUNNEL_DNS_SETTLE_MS",
                second: "DROP_TUNNEL_VERIFY_TIMEOUT_MS",
            });
        }
        let mut nat =
            match lookup("DROP_IP_ECHO_URLS") {
                Some(list) => NatConfig::default().with_services(&list).map_err(|_| {
                    CliError::BadUrlSetting {
                        name: "DROP_IP_ECHO_URLS",
                        value: list.clone(),
                        expected: "give comma- or space-separated http(s) URLs of IP-echo services",
                    }
                })?,
                None => NatConfig::default(),
            };
        nat.deadline = millis("DROP_NAT_DEADLINE_MS", nat.deadline)?;
        Ok(Settings {
            bind: lookup("DROP_BIND")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_BIND.to_owned()),
            workers: bounded("DROP_WORKERS", MAX_WORKERS)?.map(|n| n as usize),
            server: ServerConfig {
                header_read_timeout: millis(
                    "DROP_HEADER_TIMEOUT_MS",
                    server_defaults.header_read_timeout,
                )?,
                max_connections: number("DROP_MAX_CONNECTIONS")?
                    .map_or(server_defaults.max_connections, |n| n as usize),
                write_stall_timeout: millis(
                    "DROP_WRITE_STALL_TIMEOUT_MS",
                    server_defaults.write_stall_timeout,
                )?,
                ..server_defaults
            },
            apps: AppLimits {
                start_timeout: millis("DROP_APP_START_TIMEOUT_MS", app_defaults.start_timeout)?,
                stop_grace: millis("DROP_STOP_GRACE_MS", app_defaults.stop_grace)?,
            },
            apps_given,
            links,
            verify_bound,
            dns_settle,
            nat,
            origin_cert: lookup("TUNNEL_ORIGIN_CERT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            user_home: lookup("HOME").filter(|v| !v.is_empty()).map(PathBuf::from),
        })
    }
}

/// `DROP_DOH_URLS` (a comma-separated list of DNS-over-HTTPS JSON
/// endpoints) and `DROP_TUNNEL_EDGE` (one `http://host:port`); unset or
/// blank means the public resolvers and the real edge.
fn link_config(lookup: &impl Fn(&str) -> Option<String>) -> Result<LinkConfig, CliError> {
    let mut config = LinkConfig::default();
    if let Some(value) = lookup("DROP_DOH_URLS").filter(|v| !v.trim().is_empty()) {
        let urls: Vec<String> = value.split(',').map(|u| u.trim().to_owned()).collect();
        if !urls.iter().all(|u| usable_url(u, false)) {
            return Err(CliError::BadUrlSetting {
                name: "DROP_DOH_URLS",
                value,
                expected: "give comma-separated http(s) URLs of DNS-over-HTTPS JSON endpoints",
            });
        }
        config.doh_urls = urls;
    }
    if let Some(value) = lookup("DROP_TUNNEL_EDGE").filter(|v| !v.trim().is_empty()) {
        if !usable_url(value.trim(), true) {
            return Err(CliError::BadUrlSetting {
                name: "DROP_TUNNEL_EDGE",
                value,
                expected: "give one http(s)://host:port URL",
            });
        }
        config.edge = Some(value.trim().to_owned());
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, CliError> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind, DEFAULT_BIND);
        assert_eq!(s.workers, None);
        assert_eq!(s.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(s.apps, AppLimits::default());
    }

    #[test]
    fn variables_override_the_defaults() {
        let s = settings(&[
            ("DROP_BIND", "127.0.0.1"),
            ("DROP_WORKERS", "1"),
            ("DROP_HEADER_TIMEOUT_MS", "250"),
            ("DROP_MAX_CONNECTIONS", "8"),
            ("DROP_STOP_GRACE_MS", " 700 "),
        ])
        .unwrap();
        assert_eq!(s.bind, "127.0.0.1");
        assert_eq!(s.workers, Some(1));
        assert_eq!(s.server.header_read_timeout, Duration::from_millis(250));
        assert_eq!(s.server.max_connections, 8);
        assert_eq!(s.apps.stop_grace, Duration::from_millis(700));
        assert_eq!(s.apps_given.stop_grace_ms(), Some(700));
        assert_eq!(
            s.apps_given.start_timeout, None,
            "unset: the daemon's own holds"
        );
    }

    #[test]
    fn a_value_out_of_its_range_is_named_in_the_error() {
        for bad in ["abc", "0", "-5", "1.5", "86400001", "18446744073709551615"] {
            let err = settings(&[("DROP_STOP_GRACE_MS", bad)]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "DROP_STOP_GRACE_MS is `{bad}`; set it to a whole number from 1 to 86400000, or unset it"
                )
            );
        }
        let huge = settings(&[("DROP_MAX_CONNECTIONS", "18446744073709551615")]).unwrap_err();
        assert!(huge.to_string().contains("from 1 to 1000000"), "{huge}");
        let threads = settings(&[("DROP_WORKERS", "100000")]).unwrap_err();
        assert!(threads.to_string().contains("from 1 to 1024"), "{threads}");
    }

    #[test]
    fn nat_detection_asks_where_the_settings_say() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.nat, NatConfig::default());
        let s = settings(&[
            ("DROP_IP_ECHO_URLS", "http://127.0.0.1:1/ip http://[::1]:2"),
            ("DROP_NAT_DEADLINE_MS", "250"),
        ])
        .unwrap();
        assert_eq!(s.nat.services, ["http://127.0.0.1:1/ip", "http://[::1]:2"]);
        assert_eq!(s.nat.deadline, Duration::from_millis(250));
        let err = settings(&[("DROP_IP_ECHO_URLS", "ifconfig.me")]).unwrap_err();
        assert!(err.to_string().starts_with("DROP_IP_ECHO_URLS is"), "{err}");
        let err = settings(&[("DROP_NAT_DEADLINE_MS", "0")]).unwrap_err();
        assert!(
            err.to_string().starts_with("DROP_NAT_DEADLINE_MS is `0`"),
            "{err}"
        );
    }

    #[test]
    fn link_checks_go_where_the_settings_say() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.links, LinkConfig::default());
        assert_eq!(s.verify_bound, DEFAULT_VERIFY_BOUND);
        assert_eq!(s.dns_settle, DNS_SETTLE);
        let s = settings(&[
            (
                "DROP_DOH_URLS",
                "http://127.0.0.1:1/dns-query, https://dns.example/resolve",
            ),
            ("DROP_TUNNEL_EDGE", "http://127.0.0.1:2"),
            ("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "1500"),
            ("DROP_TUNNEL_DNS_SETTLE_MS", "1"),
        ])
        .unwrap();
        assert_eq!(s.dns_settle, Duration::from_millis(1));
        assert_eq!(
            s.links.doh_urls,
            [
                "http://127.0.0.1:1/dns-query",
                "https://dns.example/resolve"
            ]
        );
        assert_eq!(s.links.edge.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(s.verify_bound, Duration::from_millis(1500));
    }

    /// A DNS settling time as long as the bound would hand every URL out
    /// unconfirmed.
    #[test]
    fn the_dns_settling_time_must_be_shorter_than_the_bound() {
        let err = settings(&[
            ("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "3000"),
            ("DROP_TUNNEL_DNS_SETTLE_MS", "15000"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "DROP_TUNNEL_DNS_SETTLE_MS must be less than DROP_TUNNEL_VERIFY_TIMEOUT_MS"
            ),
            "{err}"
        );
    }

    /// A list that names no resolver is an error, never a silent fall back
    /// to the public ones.
    #[test]
    fn link_settings_that_are_not_urls_are_refused() {
        for bad in [",", "dns.google", "http://a, ", "ftp://x"] {
            let err = settings(&[("DROP_DOH_URLS", bad)]).unwrap_err();
            assert!(err.to_string().starts_with("DROP_DOH_URLS is"), "{err}");
        }
        for bad in [
            "127.0.0.1:9",
            "http://a,http://b",
            "http://",
            "http://127.0.0.1:9/p?q=1",
        ] {
            let err = settings(&[("DROP_TUNNEL_EDGE", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("one http(s)://host:port URL"),
                "{err}"
            );
        }
    }
}
