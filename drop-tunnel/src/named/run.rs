//! Running a named tunnel: one `cloudflared tunnel … run <id>` with a
//! config file of ours that routes the main hostname to the local address
//! each open is given, then every other route, then a 404.
//!
//! Its URL is known in advance (`https://<hostname>`), so it is up once
//! the edge has registered a connection (`Registered tunnel connection`,
//! or `/ready` on the metrics port it logs). From cloudflared's source:
//! the run flags go before `run` (`cmd/cloudflared/tunnel/subcommands.go`);
//! a missing credentials file ends it at once (`credential_finder.go`);
//! a tunnel deleted from the dashboard is refused by the edge at
//! registration (`Register tunnel error from server side error="Unauthorized:
//! …"`), and cloudflared retries that forever, hoping for propagation lag
//! on a new tunnel (`supervisor/supervisor.go`), so a few refusals in a
//! row with no connection are taken as final here. Named tunnels fall back
//! from QUIC to HTTP/2 by themselves (`connection/protocol.go`), so
//! nothing here waits on UDP unless QUIC was asked for.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::launch::{self, Launcher};
use crate::logfile::LogFollower;
use crate::metrics::Metrics;
use crate::named::NamedTunnel;
use crate::named::ingress::{self, NamedRoute, checked_hostname};
use crate::parse;
use crate::process::CloudflaredProcess;
use crate::{CloudflaredConfig, Protocol, Tunnel, TunnelError, TunnelExit, TunnelProvider};

/// The config file of the running tunnel, in the state dir; every process
/// of a provider carries it as `--config`.
const CONFIG_FILE: &str = "cloudflared-named.yml";
/// How often a starting cloudflared is asked whether it is up.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Refusals by the edge in a row, with no connection, that mean the
/// tunnel is gone rather than new (cloudflared waits up to 1, 2, 4, 8 s
/// between them).
const REFUSALS_FOR_DELETED: usize = 4;
/// Failed QUIC dials that show UDP blocked, when QUIC alone was asked for.
const QUIC_FAILURES_FOR_BLOCKED: usize = 2;

/// Runs one named tunnel: `https://<hostname>` to the address each open is
/// given, and each route of [`set_routes`](Self::set_routes) to its
/// service. With a [`Watchdog`](crate::Watchdog), share it in an `Arc`,
/// and after changing the routes call [`Watchdog::reopen`](crate::Watchdog::reopen):
/// the tunnel restarts with the new ingress and every URL stays.
#[derive(Debug)]
pub struct NamedCloudflared {
    config: CloudflaredConfig,
    tunnel: NamedTunnel,
    hostname: String,
    routes: Mutex<Vec<NamedRoute>>,
    /// Whether hostnames no route names go to the main address rather
    /// than get cloudflared's 404.
    main_catches_all: bool,
    launcher: Launcher,
}

impl NamedCloudflared {
    /// A provider running `tunnel`, with `hostname` (routed to it with
    /// [`NamedTunnels::route_dns`](crate::NamedTunnels::route_dns)) going
    /// to the local address each open is given.
    pub fn new(
        config: CloudflaredConfig,
        tunnel: NamedTunnel,
        hostname: &str,
    ) -> Result<Self, TunnelError> {
        Ok(NamedCloudflared {
            config,
            tunnel,
            hostname: checked_hostname(hostname)?,
            routes: Mutex::new(Vec::new()),
            main_catches_all: false,
            launcher: Launcher::default(),
        })
    }

    /// Sends requests for hostnames no route names to the main address
    /// instead of cloudflared's 404: whoever answers there can then tell
    /// that a hostname is not routed (yet).
    pub fn main_catches_all(mut self) -> Self {
        self.main_catches_all = true;
        self
    }

    /// The tunnel it runs.
    pub fn tunnel(&self) -> &NamedTunnel {
        &self.tunnel
    }

    /// The main hostname, lower-case.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The URL every open reports: `https://<hostname>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.hostname)
    }

    /// The routes besides the main hostname, used from the next open on.
    /// Refuses a hostname routed twice, or the main one. Each hostname
    /// needs its DNS route too ([`NamedTunnels::route_dns`](crate::NamedTunnels::route_dns),
    /// or one wildcard route).
    pub fn set_routes(&self, routes: Vec<NamedRoute>) -> Result<(), TunnelError> {
        if let Some(main) = routes.iter().find(|r| r.hostname() == self.hostname) {
            return Err(TunnelError::InvalidRoute {
                route: main.hostname().to_owned(),
                reason: "it is the tunnel's main hostname".into(),
            });
        }
        ingress::check_distinct(&routes)?;
        *self.routes.lock().expect("routes lock") = routes;
        Ok(())
    }

    /// The routes besides the main hostname.
    pub fn routes(&self) -> Vec<NamedRoute> {
        self.routes.lock().expect("routes lock").clone()
    }

    /// Every rule an open to `local` gives cloudflared, in order: the main
    /// hostname to `local`, then the other routes (a 404 follows).
    pub fn ingress(&self, local: SocketAddr) -> Result<Vec<NamedRoute>, TunnelError> {
        let main = NamedRoute::to_local(&self.hostname, local)?;
        Ok(std::iter::once(main).chain(self.routes()).collect())
    }

    /// The config file every cloudflared of this provider is given with
    /// `--config`: a process running with it was started by a provider of
    /// this state directory, which is how leftovers of a killed caller are
    /// found.
    pub fn config_file(&self) -> PathBuf {
        self.config.state_dir.join(CONFIG_FILE)
    }

    /// cloudflared's arguments: the tunnel flags (the config, a metrics
    /// port of its choosing, the log level that logs registrations, a
    /// graceful shutdown that ends before our SIGKILL), then `run <id>`.
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "tunnel".into(),
            "--no-autoupdate".into(),
            "--config".into(),
            self.config_file().into(),
            "--metrics".into(),
            "127.0.0.1:0".into(),
            "--loglevel".into(),
            "info".into(),
            "--grace-period".into(),
            launch::grace_period(&self.config),
        ];
        if let Some(protocol) = self.config.protocol {
            args.extend(["--protocol".into(), protocol.as_str().into()]);
        }
        args.extend(self.config.extra_args.iter().cloned());
        args.extend(["run".into(), self.tunnel.id().into()]);
        args
    }

    /// The credentials file as cloudflared will read it: there, and JSON.
    fn check_credentials(&self) -> Result<(), TunnelError> {
        self.tunnel.check_credentials()
    }

    /// Watches the starting process until it is up, fails, or the deadline
    /// passes; on failure the process is ended.
    async fn wait_until_up(&self, mut process: CloudflaredProcess) -> Result<Tunnel, TunnelError> {
        let timeout = self.config.start_timeout;
        let deadline = Instant::now() + timeout;
        let mut startup = Startup {
            quic_only: self.config.protocol == Some(Protocol::Quic),
            ..Startup::default()
        };
        let polled = poll_until_up(&mut process, &mut startup);
        let url = self.url();
        match tokio::time::timeout_at(deadline, polled).await {
            Ok(Ok(protocol)) => {
                let pid = process.pid();
                let tunnel = Tunnel::new(url, Some(pid), Box::new(process));
                Ok(match protocol.or(self.config.protocol) {
                    Some(protocol) => tunnel.with_protocol(protocol),
                    None => tunnel,
                })
            }
            Ok(Err(Ended::Exited(exit))) => Err(self.exit_error(exit)),
            Ok(Err(Ended::Refused)) => {
                crate::TunnelProcess::close(&mut process).await;
                Err(TunnelError::TunnelDeleted {
                    id: self.tunnel.id().to_owned(),
                    detail: startup.refusal.unwrap_or_default(),
                    log_tail: process.log_tail().await,
                })
            }
            Ok(Err(Ended::UdpBlocked)) | Err(_) => {
                crate::TunnelProcess::close(&mut process).await;
                let log_tail = process.log_tail().await;
                Err(match startup.udp_blocked() {
                    true => TunnelError::UdpBlocked { log_tail },
                    false => TunnelError::NotReady {
                        url,
                        timeout,
                        log_tail,
                    },
                })
            }
        }
    }

    /// The error for a process that ended while starting, from its log.
    fn exit_error(&self, exit: TunnelExit) -> TunnelError {
        let id = self.tunnel.id().to_owned();
        let path = self.tunnel.credentials_file().to_owned();
        let log = &exit.log_tail;
        if log.contains("doesn't exist or is not a file")
            || log.contains("tunnel credentials file not found")
        {
            return TunnelError::CredentialsMissing { id, path };
        }
        if log.contains("Invalid JSON when parsing tunnel credentials file")
            || log.contains("The tunnel credentials file should be .json")
        {
            return TunnelError::CredentialsInvalid {
                id,
                path,
                detail: "cloudflared cannot parse it".into(),
            };
        }
        match parse::failure(log) {
            Some(parse::Failure::Usage { detail }) => TunnelError::Usage { detail },
            _ => TunnelError::ExitedEarly {
                code: exit.code,
                log_tail: exit.log_tail,
            },
        }
    }
}

#[async_trait::async_trait]
impl TunnelProvider for NamedCloudflared {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        let binary = launch::find_binary(&self.config)?;
        self.check_credentials()?;
        let rules = self.ingress(local)?;
        let fallback = match self.main_catches_all {
            true => Some(rules[0].service()),
            false => None,
        };
        let text = ingress::config_text(
            self.tunnel.id(),
            self.tunnel.credentials_file(),
            &rules,
            fallback,
        );
        launch::write_config(&self.config, CONFIG_FILE, &text)?;
        let process = self.launcher.spawn(&self.config, &binary, self.args())?;
        self.wait_until_up(process).await
    }
}

/// What a starting cloudflared has told us so far.
#[derive(Debug, Default)]
struct Startup {
    /// Whether QUIC alone was asked for: only then does a UDP failure
    /// stop it (otherwise cloudflared falls back to HTTP/2 itself).
    quic_only: bool,
    /// Set once a connection registered, with its protocol if it said.
    registered: Option<Option<Protocol>>,
    metrics: Option<SocketAddr>,
    /// The edge's refusals in a row, and the last one's words.
    refusals: usize,
    refusal: Option<String>,
    quic_failures: usize,
    udp_failed: bool,
}

impl Startup {
    fn scan(&mut self, line: &str) {
        if self.metrics.is_none() {
            self.metrics = parse::metrics_address(line);
        }
        if parse::is_registered(line) {
            self.registered = Some(parse::registered_protocol(line));
        }
        if let Some(refusal) = parse::edge_refusal(line) {
            self.refusals += 1;
            self.refusal = Some(refusal);
        }
        self.quic_failures += usize::from(parse::is_quic_dial_failure(line));
        self.udp_failed |= parse::prechecks_udp_failed(line);
    }

    fn refused(&self) -> bool {
        self.registered.is_none() && self.refusals >= REFUSALS_FOR_DELETED
    }

    fn udp_blocked(&self) -> bool {
        let evidence = self.udp_failed || self.quic_failures >= QUIC_FAILURES_FOR_BLOCKED;
        self.quic_only && self.registered.is_none() && evidence
    }
}

/// How a start ended other than up.
enum Ended {
    /// The process ended.
    Exited(TunnelExit),
    /// The edge keeps refusing the tunnel.
    Refused,
    /// QUIC alone was asked for, and UDP is blocked.
    UdpBlocked,
}

/// Polls the log and the metrics server until a connection registered
/// (its protocol, when it said), the process ends, or it cannot come up.
async fn poll_until_up(
    process: &mut CloudflaredProcess,
    startup: &mut Startup,
) -> Result<Option<Protocol>, Ended> {
    let mut follower = LogFollower::open(process.log_path()).await.ok();
    loop {
        if let Some(follower) = follower.as_mut() {
            for line in follower.new_lines().await {
                startup.scan(&line);
            }
        }
        ask_metrics(process, startup).await;
        if let Some(exit) = process.try_exit().await {
            return Err(Ended::Exited(exit));
        }
        if let Some(protocol) = startup.registered {
            return Ok(protocol);
        }
        if startup.refused() {
            return Err(Ended::Refused);
        }
        if startup.udp_blocked() {
            return Err(Ended::UdpBlocked);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Asks `/ready`, once the log has said where the metrics server is.
async fn ask_metrics(process: &mut CloudflaredProcess, startup: &mut Startup) {
    if process.metrics().is_none()
        && let Some(addr) = startup.metrics
    {
        process.set_metrics(Metrics::new(addr));
    }
    let Some(metrics) = process.metrics() else {
        return;
    };
    if let Some(ready) = metrics.ready().await {
        process.saw_metrics();
        if ready && startup.registered.is_none() {
            startup.registered = Some(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn provider(dir: &Path) -> NamedCloudflared {
        let mut config = CloudflaredConfig::new(dir.join("state"));
        config.stop_grace = Duration::from_secs(3);
        let tunnel = NamedTunnel::new(
            "6ff42ae2-765d-4adf-8112-31c55c1551ef",
            "drop",
            dir.join("6ff42ae2-765d-4adf-8112-31c55c1551ef.json"),
        );
        NamedCloudflared::new(config, tunnel, "Drop.Example.com").unwrap()
    }

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    /// The tunnel flags come before `run` and the id after it; no
    /// protocol unless one was asked for.
    #[test]
    fn runs_the_tunnel_by_id_with_its_flags_before_run() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let config_file = provider.config_file();
        assert_eq!(
            strings(&provider.args()),
            [
                "tunnel",
                "--no-autoupdate",
                "--config",
                config_file.to_str().unwrap(),
                "--metrics",
                "127.0.0.1:0",
                "--loglevel",
                "info",
                "--grace-period",
                "2000ms",
                "run",
                "6ff42ae2-765d-4adf-8112-31c55c1551ef",
            ]
        );
        assert_eq!(provider.url(), "https://drop.example.com");
    }

    /// The main hostname goes to the local address, the routes follow in
    /// order; the main hostname or a duplicate cannot be routed again.
    #[test]
    fn the_main_hostname_comes_first_and_is_routed_once() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let api = NamedRoute::new("api.drop.example.com", "http://127.0.0.1:5000").unwrap();
        provider.set_routes(vec![api.clone()]).unwrap();
        let ingress = provider.ingress("0.0.0.0:8080".parse().unwrap()).unwrap();
        let pairs: Vec<(&str, &str)> = ingress
            .iter()
            .map(|r| (r.hostname(), r.service()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("drop.example.com", "http://127.0.0.1:8080"),
                ("api.drop.example.com", "http://127.0.0.1:5000"),
            ]
        );
        let main = NamedRoute::new("drop.example.com", "http://127.0.0.1:1").unwrap();
        assert!(provider.set_routes(vec![main]).is_err());
        assert!(provider.set_routes(vec![api.clone(), api]).is_err());
        assert_eq!(
            provider.routes().len(),
            1,
            "a refused change changes nothing"
        );
    }

    /// Missing, unreadable or non-JSON credentials are caught before
    /// cloudflared runs.
    #[test]
    fn credentials_are_checked_before_cloudflared_runs() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let path = provider.tunnel().credentials_file().to_owned();
        assert!(matches!(
            provider.check_credentials(),
            Err(TunnelError::CredentialsMissing { .. })
        ));
        std::fs::write(&path, "-----BEGIN ARGO TUNNEL TOKEN-----\n").unwrap();
        let err = provider.check_credentials().unwrap_err();
        assert!(err.to_string().contains("it is a certificate"), "{err}");
        std::fs::write(
            &path,
            r#"{"AccountTag":"a","TunnelSecret":"cw==","TunnelID":"6ff4"}"#,
        )
        .unwrap();
        provider.check_credentials().unwrap();
    }

    /// Registration says up and how; a few refusals with none say the
    /// tunnel is gone; failed QUIC dials matter only when QUIC alone was
    /// asked for.
    #[test]
    fn the_log_says_up_refused_or_blocked() {
        let mut startup = Startup::default();
        for _ in 0..REFUSALS_FOR_DELETED {
            assert!(!startup.refused());
            startup.scan("2026-08-20T10:00:00Z ERR Register tunnel error from server side error=\"Unauthorized: Failed to get tunnel\" connIndex=0 event=0 ip=198.41.192.107");
        }
        assert!(startup.refused());
        assert_eq!(
            startup.refusal.as_deref(),
            Some("Unauthorized: Failed to get tunnel")
        );
        startup.scan("2026-08-20T10:00:09Z INF Registered tunnel connection connIndex=0 connection=x event=0 ip=198.41.192.107 location=sjc08 protocol=http2");
        assert!(!startup.refused(), "it got through after all");
        assert_eq!(startup.registered, Some(Some(Protocol::Http2)));

        let dial = "ERR Failed to dial a quic connection error=\"timeout: no recent network activity\" connIndex=0";
        let mut auto = Startup::default();
        auto.scan(dial);
        auto.scan(dial);
        assert!(!auto.udp_blocked(), "cloudflared falls back by itself");
        let mut quic = Startup {
            quic_only: true,
            ..Startup::default()
        };
        quic.scan(dial);
        quic.scan(dial);
        assert!(quic.udp_blocked());
    }

    /// A process that ended is classified by its last words.
    #[test]
    fn an_early_exit_is_classified_by_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let exit = |log: &str| TunnelExit {
            code: Some(1),
            log_tail: log.into(),
        };
        assert!(matches!(
            provider.exit_error(exit(
                "Tunnel credentials file '/x/y.json' doesn't exist or is not a file"
            )),
            TunnelError::CredentialsMissing { .. }
        ));
        assert!(matches!(
            provider.exit_error(exit("ERR Invalid JSON when parsing credentials file: x\nInvalid JSON when parsing tunnel credentials file")),
            TunnelError::CredentialsInvalid { .. }
        ));
        assert!(matches!(
            provider.exit_error(exit("Incorrect Usage: flag provided but not defined: -x")),
            TunnelError::Usage { .. }
        ));
        assert!(matches!(
            provider.exit_error(exit("something else")),
            TunnelError::ExitedEarly { code: Some(1), .. }
        ));
    }
}
