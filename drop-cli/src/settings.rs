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
/// The longest `DROP_NAT_DEADLINE_MS`: `drop start` waits that long for
/// an echo service that does not answer.
const MAX_NAT_DEADLINE_MS: u64 = 10_000;

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

/// The settings of an environment, and what was wrong in it: each bad
/// value is left at its default and said here.
#[derive(Debug)]
pub struct ReadSettings {
    /// The settings, with the default for every bad value.
    pub settings: Settings,
    /// Each bad value, as the error a command that needs it fails with.
    pub problems: Vec<CliError>,
}

impl ReadSettings {
    /// The settings, or the first problem: for a command that starts or
    /// configures something with them.
    pub fn strict(mut self) -> Result<Settings, CliError> {
        match self.problems.is_empty() {
            true => Ok(self.settings),
            false => Err(self.problems.remove(0)),
        }
    }
}

impl Settings {
    /// The settings of this process's environment.
    pub fn from_env() -> ReadSettings {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings `lookup` gives; unset or blank means the default, and
    /// so does a value that is not a whole number in its range, which is
    /// kept as a problem naming it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ReadSettings {
        let mut env = Environment {
            lookup,
            problems: Vec::new(),
        };
        let server_defaults = ServerConfig::default();
        let app_defaults = AppLimits::default();
        let apps_given = AppOverrides {
            start_timeout: env.millis("DROP_APP_START_TIMEOUT_MS"),
            stop_grace: env.millis("DROP_STOP_GRACE_MS"),
        };
        let (verify_bound, dns_settle) = env.link_timing();
        let settings = Settings {
            bind: env
                .text("DROP_BIND")
                .unwrap_or_else(|| DEFAULT_BIND.to_owned()),
            workers: env.bounded("DROP_WORKERS", MAX_WORKERS).map(|n| n as usize),
            server: ServerConfig {
                header_read_timeout: env
                    .millis("DROP_HEADER_TIMEOUT_MS")
                    .unwrap_or(server_defaults.header_read_timeout),
                max_connections: env
                    .bounded("DROP_MAX_CONNECTIONS", MAX_COUNT)
                    .map_or(server_defaults.max_connections, |n| n as usize),
                write_stall_timeout: env
                    .millis("DROP_WRITE_STALL_TIMEOUT_MS")
                    .unwrap_or(server_defaults.write_stall_timeout),
                ..server_defaults
            },
            apps: AppLimits {
                start_timeout: apps_given
                    .start_timeout
                    .unwrap_or(app_defaults.start_timeout),
                stop_grace: apps_given.stop_grace.unwrap_or(app_defaults.stop_grace),
            },
            apps_given,
            links: env.link_config(),
            verify_bound,
            dns_settle,
            nat: env.nat_config(),
            origin_cert: env.raw("TUNNEL_ORIGIN_CERT").map(PathBuf::from),
            user_home: env.raw("HOME").map(PathBuf::from),
        };
        ReadSettings {
            settings,
            problems: env.problems,
        }
    }
}

/// The environment as settings read it, keeping each bad value it met.
struct Environment<L> {
    lookup: L,
    problems: Vec<CliError>,
}

impl<L: Fn(&str) -> Option<String>> Environment<L> {
    /// The value of `name`, unless unset or empty.
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    /// The value of `name`, unless unset or blank.
    fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A whole number from 1 to `max`; `None` when unset or bad.
    fn bounded(&mut self, name: &'static str, max: u64) -> Option<u64> {
        let value = self.text(name)?;
        match value.trim().parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Some(n),
            _ => {
                self.problems
                    .push(CliError::BadSetting { name, value, max });
                None
            }
        }
    }

    /// A span in milliseconds, up to a day; `None` when unset or bad.
    fn millis(&mut self, name: &'static str) -> Option<Duration> {
        self.bounded(name, MAX_MILLIS).map(Duration::from_millis)
    }

    /// `DROP_TUNNEL_VERIFY_TIMEOUT_MS` and `DROP_TUNNEL_DNS_SETTLE_MS`:
    /// DNS must be asked before the bound, or every URL would be handed
    /// out unconfirmed. When they clash both keep their defaults.
    fn link_timing(&mut self) -> (Duration, Duration) {
        let verify_bound = self.millis("DROP_TUNNEL_VERIFY_TIMEOUT_MS");
        let dns_settle = self.millis("DROP_TUNNEL_DNS_SETTLE_MS");
        let verify = SettingValue::of(verify_bound, DEFAULT_VERIFY_BOUND);
        let settle = SettingValue::of(dns_settle, DNS_SETTLE);
        if settle.value < verify.value {
            return (verify.value, settle.value);
        }
        self.problems.push(CliError::SettingsClash {
            first: "DROP_TUNNEL_DNS_SETTLE_MS",
            first_value: settle.to_string(),
            second: "DROP_TUNNEL_VERIFY_TIMEOUT_MS",
            second_value: verify.to_string(),
        });
        (DEFAULT_VERIFY_BOUND, DNS_SETTLE)
    }

    /// `DROP_IP_ECHO_URLS` and `DROP_NAT_DEADLINE_MS`.
    fn nat_config(&mut self) -> NatConfig {
        let mut nat = NatConfig::default();
        if let Some(list) = (self.lookup)("DROP_IP_ECHO_URLS") {
            match NatConfig::default().with_services(&list) {
                Ok(given) => nat = given,
                Err(_) => self.problems.push(CliError::BadUrlSetting {
                    name: "DROP_IP_ECHO_URLS",
                    value: list,
                    expected: "give comma- or space-separated http(s) URLs of IP-echo services",
                }),
            }
        }
        if let Some(ms) = self.bounded("DROP_NAT_DEADLINE_MS", MAX_NAT_DEADLINE_MS) {
            nat.deadline = Duration::from_millis(ms);
        }
        nat
    }

    /// `DROP_DOH_URLS` (a comma-separated list of DNS-over-HTTPS JSON
    /// endpoints) and `DROP_TUNNEL_EDGE` (one `http://host:port`); unset or
    /// blank means the public resolvers and the real edge.
    fn link_config(&mut self) -> LinkConfig {
        let mut config = LinkConfig::default();
        if let Some(value) = self.text("DROP_DOH_URLS") {
            let urls: Vec<String> = value.split(',').map(|u| u.trim().to_owned()).collect();
            match urls.iter().all(|u| usable_url(u, false)) {
                true => config.doh_urls = urls,
                false => self.problems.push(CliError::BadUrlSetting {
                    name: "DROP_DOH_URLS",
                    value,
                    expected: "give comma-separated http(s) URLs of DNS-over-HTTPS JSON endpoints",
                }),
            }
        }
        if let Some(value) = self.text("DROP_TUNNEL_EDGE") {
            match usable_url(value.trim(), true) {
                true => config.edge = Some(value.trim().to_owned()),
                false => self.problems.push(CliError::BadUrlSetting {
                    name: "DROP_TUNNEL_EDGE",
                    value,
                    expected: "give one http(s)://host:port URL",
                }),
            }
        }
        config
    }
}

/// A span setting as a clash names it: its value, and whether that is
/// its default (a variable the user never set).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SettingValue {
    /// The value in force.
    value: Duration,
    /// Whether the variable was unset (or bad), so the default holds.
    default: bool,
}

impl SettingValue {
    fn of(given: Option<Duration>, default: Duration) -> Self {
        SettingValue {
            value: given.unwrap_or(default),
            default: given.is_none(),
        }
    }
}

impl std::fmt::Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.value.as_millis();
        match self.default {
            true => write!(f, "{ms} ms, its default"),
            false => write!(f, "{ms} ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> ReadSettings {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, CliError> {
        read(vars).strict()
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
        // `drop start` waits that long for an echo service that hangs.
        let err = settings(&[("DROP_NAT_DEADLINE_MS", "86400000")]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "DROP_NAT_DEADLINE_MS is `86400000`; set it to a whole number from 1 to 10000"
            ),
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
                "DROP_TUNNEL_DNS_SETTLE_MS (15000 ms) must be less than DROP_TUNNEL_VERIFY_TIMEOUT_MS (3000 ms)"
            ),
            "{err}"
        );
    }

    /// A bound set alone below the settling time's default names that
    /// default: the user never set the variable it blames.
    #[test]
    fn a_clash_with_a_default_says_it_is_the_default() {
        let err = settings(&[("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "3000")]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "DROP_TUNNEL_DNS_SETTLE_MS (5000 ms, its default) must be less than DROP_TUNNEL_VERIFY_TIMEOUT_MS (3000 ms)"
            ),
            "{err}"
        );
    }

    /// Read leniently, each bad value is left at its default and said once,
    /// and the good ones hold.
    #[test]
    fn bad_values_fall_back_to_their_defaults_and_are_each_said() {
        let read = read(&[
            ("DROP_WORKERS", "0"),
            ("DROP_NAT_DEADLINE_MS", "abc"),
            ("DROP_DOH_URLS", "http://a,"),
            ("DROP_TUNNEL_VERIFY_TIMEOUT_MS", "3000"),
            ("DROP_STOP_GRACE_MS", "700"),
        ]);
        let named: Vec<String> = read.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(named.len(), 4, "{named:?}");
        for name in [
            "DROP_WORKERS",
            "DROP_NAT_DEADLINE_MS",
            "DROP_DOH_URLS",
            "DROP_TUNNEL_DNS_SETTLE_MS",
        ] {
            assert!(
                named.iter().any(|p| p.starts_with(name)),
                "{name}: {named:?}"
            );
        }
        let s = read.settings;
        assert_eq!(s.workers, None);
        assert_eq!(s.nat.deadline, NatConfig::default().deadline);
        assert_eq!(s.links, LinkConfig::default());
        assert_eq!(
            (s.verify_bound, s.dns_settle),
            (DEFAULT_VERIFY_BOUND, DNS_SETTLE)
        );
        assert_eq!(s.apps.stop_grace, Duration::from_millis(700));
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
