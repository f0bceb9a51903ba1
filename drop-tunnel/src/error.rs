//! The crate's one error type: why a tunnel could not be opened, or a
//! named tunnel set up.

use std::path::PathBuf;
use std::time::Duration;

/// Why a tunnel could not be opened.
///
/// The variants a caller acts on differently are separate: a rate limit
/// calls for a long pause, a missing or unrunnable binary for a fix by
/// someone ([`TunnelError::is_permanent`]), the rest for a retry with
/// backoff. Messages are one line; the end of cloudflared's log, where
/// there is one, is kept apart in [`TunnelError::log_tail`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// No cloudflared binary at the explicit path, on the search path or in
    /// the fallback locations.
    #[error("cloudflared not found{}{}", hint_of(.hint), searched_of(.searched))]
    NotFound {
        /// The places looked in after the search path, in order.
        searched: Vec<PathBuf>,
        /// What the caller says to do about it (e.g. how to install it).
        hint: Option<String>,
    },
    /// The quick-tunnel service answered 429 (cloudflared prints it as an
    /// unmarshal error).
    #[error("rate limited by the quick-tunnel service; wait before opening another tunnel")]
    RateLimited,
    /// cloudflared could not reach the quick-tunnel service.
    #[error("no network: cloudflared could not reach the quick-tunnel service ({detail})")]
    NoNetwork {
        /// cloudflared's own words, e.g. `… no such host`.
        detail: String,
    },
    /// cloudflared got its quick tunnel, then could not find Cloudflare's
    /// edge: the DNS lookup of the edge's addresses failed, so no
    /// connection can be made (it exits about a second after printing the
    /// URL).
    #[error(
        "no network: cloudflared could not look up the address of Cloudflare's edge; check this machine's network and DNS"
    )]
    EdgeUnreachable {
        /// cloudflared's own words, e.g. `lookup
        /// _v2-origintunneld._tcp.argotunnel.com on 127.0.0.53:53: no such host`.
        detail: String,
        /// The last lines of its log.
        log_tail: String,
    },
    /// cloudflared refused its arguments or its environment: a version
    /// that does not know a flag drop-tunnel gives.
    #[error("cloudflared refused its arguments ({detail}); is it too old?")]
    Usage {
        /// cloudflared's own words.
        detail: String,
    },
    /// The tunnel process ended before the tunnel was up.
    #[error("cloudflared exited early ({})", describe_code(*code))]
    ExitedEarly {
        /// The exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// The last lines of its log.
        log_tail: String,
    },
    /// No public URL appeared before the deadline.
    #[error("cloudflared gave no public URL within {}", seconds(*.timeout))]
    NoUrl {
        /// The deadline that passed.
        timeout: Duration,
        /// The last lines of its log.
        log_tail: String,
    },
    /// A URL appeared, but no edge connection registered before the
    /// deadline: the URL would not answer yet.
    #[error(
        "cloudflared printed {url} but registered no connection within {}",
        seconds(*.timeout)
    )]
    NotReady {
        /// The URL that was printed.
        url: String,
        /// The deadline that passed.
        timeout: Duration,
        /// The last lines of its log.
        log_tail: String,
    },
    /// QUIC to the edge (UDP port 7844) fails on this network, and the
    /// configuration asked for QUIC only.
    #[error(
        "cloudflared cannot reach the edge over QUIC: UDP port 7844 is blocked on this network"
    )]
    UdpBlocked {
        /// The last lines of its log.
        log_tail: String,
    },
    /// The tunnel process could not be started.
    #[error("could not start `{}`", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file the provider needs (config, log) could not be written.
    #[error("could not write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No login certificate (`cert.pem`) where cloudflared looks: this
    /// machine never ran `cloudflared tunnel login`.
    #[error(
        "not logged in to Cloudflare: no cert.pem {}; run `cloudflared tunnel login`, which opens a browser once to pick the domain",
        places_of(.searched)
    )]
    NotLoggedIn {
        /// The certificate paths looked at, in order.
        searched: Vec<PathBuf>,
    },
    /// The login certificate is there but cloudflared cannot use it: not a
    /// certificate, from before tunnels had accounts, or revoked.
    #[error(
        "the Cloudflare login certificate {} cannot be used ({detail}); move it away and run `cloudflared tunnel login` again",
        path.display()
    )]
    CertificateRejected {
        /// The certificate.
        path: PathBuf,
        /// cloudflared's own words.
        detail: String,
    },
    /// The hostname is not in the domain (zone) the login certificate is
    /// for: cloudflared then adds a record for `<hostname>.<zone>` instead.
    #[error(
        "{hostname} is not in {zone}, the domain of the Cloudflare login: cloudflared added the DNS record {added} instead (delete it in the Cloudflare dashboard); use a hostname ending in .{zone}, or run `cloudflared tunnel login` again and pick the domain of {hostname}"
    )]
    OutsideZone {
        /// The hostname asked for.
        hostname: String,
        /// The record cloudflared added.
        added: String,
        /// The certificate's domain, as the added record shows it.
        zone: String,
    },
    /// DNS already has an A, AAAA or CNAME record for the hostname that
    /// does not point at this tunnel (another tunnel's, or a server's).
    #[error(
        "DNS already has a record for {hostname} that points elsewhere (cloudflared: {detail}); delete it in the Cloudflare dashboard, or replace it with this tunnel"
    )]
    DnsRecordExists {
        /// The hostname.
        hostname: String,
        /// cloudflared's own words.
        detail: String,
    },
    /// The edge refuses the tunnel: it was deleted (from the dashboard, or
    /// with `cloudflared tunnel delete`) or its credentials are no longer
    /// its own.
    #[error(
        "Cloudflare refuses tunnel {id} ({detail}): it was deleted, perhaps from the Cloudflare dashboard, or its credentials are no longer valid; set the tunnel up again"
    )]
    TunnelDeleted {
        /// The tunnel's id.
        id: String,
        /// cloudflared's own words, e.g. `Unauthorized: Failed to get tunnel`.
        detail: String,
        /// The last lines of its log.
        log_tail: String,
    },
    /// The tunnel's credentials file, written where it was created, is
    /// not on this machine.
    #[error(
        "the credentials of tunnel {id} are missing ({}); set the tunnel up again on this machine, which fetches them with `cloudflared tunnel token`, or delete the tunnel (`cloudflared tunnel delete {id}`) and set it up anew",
        path.display()
    )]
    CredentialsMissing {
        /// The tunnel's id.
        id: String,
        /// Where they should be.
        path: PathBuf,
    },
    /// The tunnel's credentials file is not one: not JSON, or the login
    /// certificate given in its place.
    #[error(
        "the credentials file {} of tunnel {id} is not valid ({detail}); delete it and set the tunnel up again",
        path.display()
    )]
    CredentialsInvalid {
        /// The tunnel's id.
        id: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A hostname or a service cloudflared would refuse, or two routes for
    /// one hostname.
    #[error("cloudflared would refuse the route `{route}`: {reason}")]
    InvalidRoute {
        /// The hostname or service.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
    /// cloudflared could not reach Cloudflare's API (or got no answer in
    /// time) to manage a named tunnel.
    #[error(
        "cloudflared could not reach Cloudflare's API ({detail}); check the network and try again"
    )]
    ApiUnreachable {
        /// cloudflared's own words.
        detail: String,
    },
    /// A command managing named tunnels failed for another reason.
    #[error("`cloudflared tunnel {command}` failed ({detail})")]
    CommandFailed {
        /// The subcommand, e.g. `create`.
        command: String,
        /// The exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// cloudflared's last words.
        detail: String,
    },
}

impl TunnelError {
    /// A stable name for this kind of failure, for scripts (drop's
    /// `--json` errors carry it).
    pub fn code(&self) -> &'static str {
        match self {
            TunnelError::NotFound { .. } => "cloudflared_not_found",
            TunnelError::RateLimited => "tunnel_rate_limited",
            TunnelError::NoNetwork { .. } => "tunnel_no_network",
            TunnelError::EdgeUnreachable { .. } => "tunnel_edge_unreachable",
            TunnelError::Usage { .. } => "cloudflared_usage",
            TunnelError::ExitedEarly { .. } => "cloudflared_exited",
            TunnelError::NoUrl { .. } => "tunnel_no_url",
            TunnelError::NotReady { .. } => "tunnel_not_ready",
            TunnelError::UdpBlocked { .. } => "tunnel_udp_blocked",
            TunnelError::Spawn { .. } => "cloudflared_spawn_failed",
            TunnelError::Write { .. } => "write_failed",
            TunnelError::NotLoggedIn { .. } => "cloudflare_not_logged_in",
            TunnelError::CertificateRejected { .. } => "cloudflare_certificate_rejected",
            TunnelError::OutsideZone { .. } => "hostname_outside_zone",
            TunnelError::DnsRecordExists { .. } => "dns_record_exists",
            TunnelError::TunnelDeleted { .. } => "named_tunnel_deleted",
            TunnelError::CredentialsMissing { .. } => "tunnel_credentials_missing",
            TunnelError::CredentialsInvalid { .. } => "tunnel_credentials_invalid",
            TunnelError::InvalidRoute { .. } => "invalid_route",
            TunnelError::ApiUnreachable { .. } => "cloudflare_api_unreachable",
            TunnelError::CommandFailed { .. } => "cloudflared_failed",
        }
    }

    /// Whether retrying cannot help until someone changes the machine:
    /// cloudflared is missing, cannot run here (another architecture, not
    /// executable), or refuses the arguments it is given.
    ///
    /// For named tunnels, also: no login, a certificate cloudflared
    /// rejects, a hostname outside its domain or already taken, a deleted
    /// tunnel, missing or invalid credentials, a route cloudflared would
    /// refuse.
    pub fn is_permanent(&self) -> bool {
        match self {
            TunnelError::NotFound { .. }
            | TunnelError::Usage { .. }
            | TunnelError::NotLoggedIn { .. }
            | TunnelError::CertificateRejected { .. }
            | TunnelError::OutsideZone { .. }
            | TunnelError::DnsRecordExists { .. }
            | TunnelError::TunnelDeleted { .. }
            | TunnelError::CredentialsMissing { .. }
            | TunnelError::CredentialsInvalid { .. }
            | TunnelError::InvalidRoute { .. } => true,
            TunnelError::Spawn { source, .. } => matches!(
                source
                    .raw_os_error()
                    .map(rustix::io::Errno::from_raw_os_error),
                Some(rustix::io::Errno::NOEXEC | rustix::io::Errno::ACCESS)
            ),
            _ => false,
        }
    }

    /// Whether this machine's network is at fault: cloudflared could not
    /// reach the quick-tunnel service, Cloudflare's edge or its API. Such
    /// failures are retried with the ordinary backoff.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            TunnelError::NoNetwork { .. }
                | TunnelError::EdgeUnreachable { .. }
                | TunnelError::ApiUnreachable { .. }
        )
    }

    /// The last lines of cloudflared's log, for failures that have them.
    /// Kept out of the message, which is one line for the user.
    pub fn log_tail(&self) -> Option<&str> {
        match self {
            TunnelError::ExitedEarly { log_tail, .. }
            | TunnelError::NoUrl { log_tail, .. }
            | TunnelError::NotReady { log_tail, .. }
            | TunnelError::UdpBlocked { log_tail }
            | TunnelError::EdgeUnreachable { log_tail, .. }
            | TunnelError::TunnelDeleted { log_tail, .. } => Some(log_tail),
            _ => None,
        }
    }
}

/// A duration for people, to the tenth of a second: `30 s`, `0.8 s`.
pub(crate) fn seconds(duration: Duration) -> String {
    let tenths = (duration.as_millis() + 50) / 100;
    match tenths % 10 {
        0 => format!("{} s", tenths / 10),
        tenth => format!("{}.{tenth} s", tenths / 10),
    }
}

pub(crate) fn describe_code(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_owned(),
    }
}

fn hint_of(hint: &Option<String>) -> String {
    hint.as_deref().map_or(String::new(), |h| format!(". {h}"))
}

fn places_of(searched: &[PathBuf]) -> String {
    match searched {
        [] => "(no place to look was given)".to_owned(),
        [one] => format!("at {}", one.display()),
        many => {
            let places: Vec<String> = many.iter().map(|p| p.display().to_string()).collect();
            format!("in any of {}", places.join(", "))
        }
    }
}

fn searched_of(searched: &[PathBuf]) -> String {
    if searched.is_empty() {
        return " (looked on PATH)".to_owned();
    }
    let places: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
    format!(" (looked on PATH, then at {})", places.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_where_it_looked_and_the_callers_hint() {
        let bare = TunnelError::NotFound {
            searched: Vec::new(),
            hint: None,
        };
        assert_eq!(bare.to_string(), "cloudflared not found (looked on PATH)");
        let hinted = TunnelError::NotFound {
            searched: vec!["/opt/cf/cloudflared".into()],
            hint: Some("Run ./install.sh".into()),
        };
        assert_eq!(
            hinted.to_string(),
            "cloudflared not found. Run ./install.sh (looked on PATH, then at /opt/cf/cloudflared)"
        );
    }

    /// Durations and routes read as words, not as Rust's debug output.
    #[test]
    fn messages_name_durations_and_routes_plainly() {
        let no_url = TunnelError::NoUrl {
            timeout: Duration::from_millis(800),
            log_tail: String::new(),
        };
        assert_eq!(
            no_url.to_string(),
            "cloudflared gave no public URL within 0.8 s"
        );
        let not_ready = TunnelError::NotReady {
            url: "https://a-b.trycloudflare.com".into(),
            timeout: Duration::from_secs(30),
            log_tail: String::new(),
        };
        assert!(
            not_ready.to_string().ends_with("within 30 s"),
            "{not_ready}"
        );
        let route = TunnelError::InvalidRoute {
            route: "dröp.example.com".into(),
            reason: "not ASCII".into(),
        };
        assert_eq!(
            route.to_string(),
            "cloudflared would refuse the route `dröp.example.com`: not ASCII"
        );
        assert_eq!(seconds(Duration::from_millis(120_049)), "120 s");
        assert_eq!(seconds(Duration::from_millis(1_450)), "1.5 s");
    }

    #[test]
    fn early_exit_names_the_code_and_keeps_the_log_apart() {
        let err = TunnelError::ExitedEarly {
            code: Some(1),
            log_tail: "failed to parse quick Tunnel ID".into(),
        };
        assert_eq!(err.to_string(), "cloudflared exited early (exit code 1)");
        assert_eq!(err.log_tail(), Some("failed to parse quick Tunnel ID"));
    }

    #[test]
    fn what_no_retry_can_mend_is_permanent() {
        let not_found = TunnelError::NotFound {
            searched: Vec::new(),
            hint: None,
        };
        assert!(not_found.is_permanent());
        let spawn = |errno: rustix::io::Errno| TunnelError::Spawn {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(errno.raw_os_error()),
        };
        assert!(
            spawn(rustix::io::Errno::NOEXEC).is_permanent(),
            "another architecture"
        );
        assert!(
            spawn(rustix::io::Errno::ACCESS).is_permanent(),
            "not executable"
        );
        assert!(
            !spawn(rustix::io::Errno::AGAIN).is_permanent(),
            "out of processes for now"
        );
        assert!(!TunnelError::RateLimited.is_permanent());
        let usage = TunnelError::Usage {
            detail: "flag provided but not defined: -x".into(),
        };
        assert!(usage.is_permanent());
    }

    /// Edge discovery failing is the network's fault, in one plain
    /// sentence with a stable code; the lookup's words and the log are
    /// kept apart.
    #[test]
    fn an_unreachable_edge_is_a_network_failure() {
        let err = TunnelError::EdgeUnreachable {
            detail: "lookup _v2-origintunneld._tcp.argotunnel.com on 127.0.0.1:53: no such host"
                .into(),
            log_tail: "Could not lookup srv records on _v2-origintunneld._tcp.argotunnel.com"
                .into(),
        };
        assert_eq!(err.code(), "tunnel_edge_unreachable");
        assert_eq!(
            err.to_string(),
            "no network: cloudflared could not look up the address of Cloudflare's edge; check this machine's network and DNS"
        );
        assert!(err.is_network() && !err.is_permanent());
        assert!(err.log_tail().unwrap().starts_with("Could not lookup srv"));
        assert!(!TunnelError::RateLimited.is_network());
    }

    /// Each failure of a named tunnel says what to do about it, in one
    /// line.
    #[test]
    fn named_tunnel_failures_say_how_to_fix_them() {
        let not_logged_in = TunnelError::NotLoggedIn {
            searched: vec![
                "/h/.cloudflared/cert.pem".into(),
                "/etc/cloudflared/cert.pem".into(),
            ],
        };
        assert_eq!(
            not_logged_in.to_string(),
            "not logged in to Cloudflare: no cert.pem in any of /h/.cloudflared/cert.pem, /etc/cloudflared/cert.pem; run `cloudflared tunnel login`, which opens a browser once to pick the domain"
        );
        let outside = TunnelError::OutsideZone {
            hostname: "drop.other.org".into(),
            added: "drop.other.org.example.com".into(),
            zone: "example.com".into(),
        };
        let message = outside.to_string();
        assert!(
            message.contains("use a hostname ending in .example.com"),
            "{message}"
        );
        assert!(
            message.contains("delete it in the Cloudflare dashboard"),
            "{message}"
        );
        let deleted = TunnelError::TunnelDeleted {
            id: "6ff42ae2-765d-4adf-8112-31c55c1551ef".into(),
            detail: "Unauthorized: Failed to get tunnel".into(),
            log_tail: "ERR Register tunnel error from server side".into(),
        };
        assert!(deleted.to_string().ends_with("set the tunnel up again"));
        assert_eq!(
            deleted.log_tail(),
            Some("ERR Register tunnel error from server side")
        );
        for err in [not_logged_in, outside, deleted] {
            assert!(!err.to_string().contains('\n'), "{err}");
            assert!(err.is_permanent(), "{err}");
        }
        let offline = TunnelError::ApiUnreachable {
            detail: "dial tcp: lookup api.cloudflare.com: no such host".into(),
        };
        assert!(!offline.is_permanent(), "the network comes back");
    }
}
