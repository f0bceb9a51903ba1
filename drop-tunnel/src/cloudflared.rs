//! The cloudflared quick-tunnel provider: finds the binary, runs it with
//! the flags and environment that keep it a quick tunnel to the given port,
//! and reports "up" only once the edge has registered a connection.
//!
//! Each open gets its own log file (`cloudflared-<pid>.log`) and its own
//! metrics port (cloudflared picks it for `--metrics 127.0.0.1:0` and logs
//! it), so two tunnels never read each other's URL. Where QUIC (UDP port
//! 7844) is blocked, an open falls back to `--protocol http2` by itself,
//! and later opens of the same provider start there.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::launch::{self, Launcher};
use crate::logfile::LogFollower;
use crate::metrics::Metrics;
use crate::parse::{self, Failure};
use crate::process::CloudflaredProcess;
use crate::{CloudflaredConfig, Protocol, Tunnel, TunnelError, TunnelExit, TunnelProvider};

/// The config file written for cloudflared, in the state dir.
const CONFIG_FILE: &str = "cloudflared.yml";
/// Its content: a file that parses and sets nothing that matters. An empty
/// file would start every log with `ERR Configuration file … was empty`;
/// no file at all would let `~/.cloudflared/config.yml` reroute the tunnel.
const CONFIG_TEXT: &str = "# Written by drop-tunnel: cloudflared reads this file, not the\n\
# user's ~/.cloudflared/config.yml, whose ingress rules would reroute a\n\
# quick tunnel.\nno-autoupdate: true\n";
/// How often a starting cloudflared is asked whether it is up.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Failed QUIC dials, with no connection registered, that show UDP is
/// blocked (the pre-checks table may say so first).
const QUIC_FAILURES_FOR_BLOCKED: usize = 2;
/// Opens cloudflared quick tunnels (`https://<words>.trycloudflare.com`).
#[derive(Debug)]
pub struct Cloudflared {
    config: CloudflaredConfig,
    /// Set once QUIC was found blocked: later opens go straight to HTTP/2.
    http2_learned: AtomicBool,
    launcher: Launcher,
}

#[async_trait::async_trait]
impl TunnelProvider for Cloudflared {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        let binary = self.find_binary()?;
        self.write_config()?;
        let protocol = self.protocol_now();
        match self.open_with(&binary, local, protocol).await {
            Err(TunnelError::UdpBlocked { .. }) if self.may_fall_back(protocol) => {
                self.http2_learned.store(true, Ordering::SeqCst);
                self.open_with(&binary, local, Protocol::Http2).await
            }
            outcome => outcome,
        }
    }
}

impl Cloudflared {
    /// A provider with `config`.
    pub fn new(config: CloudflaredConfig) -> Self {
        Cloudflared {
            config,
            http2_learned: AtomicBool::new(false),
            launcher: Launcher::default(),
        }
    }

    /// The binary to run: the explicit one, else `cloudflared` on the
    /// search path, else the fallback paths; the first that is an
    /// executable file.
    pub fn find_binary(&self) -> Result<PathBuf, TunnelError> {
        launch::find_binary(&self.config)
    }

    /// The config file every cloudflared of this provider is given with
    /// `--config`: a process running with it was started by a provider of
    /// this state directory, which is how leftovers of a killed caller are
    /// found.
    pub fn config_file(&self) -> PathBuf {
        self.config.state_dir.join(CONFIG_FILE)
    }

    /// The protocol the next open starts with: the configured one, else
    /// HTTP/2 once QUIC was found blocked, else QUIC.
    pub fn protocol_now(&self) -> Protocol {
        match self.config.protocol {
            Some(protocol) => protocol,
            None if self.http2_learned.load(Ordering::SeqCst) => Protocol::Http2,
            None => Protocol::Quic,
        }
    }

    fn may_fall_back(&self, tried: Protocol) -> bool {
        self.config.protocol.is_none() && tried == Protocol::Quic
    }

    /// One cloudflared process, until its tunnel is up or it failed.
    async fn open_with(
        &self,
        binary: &Path,
        local: SocketAddr,
        protocol: Protocol,
    ) -> Result<Tunnel, TunnelError> {
        let args = self.args(local, protocol);
        let process = self.launcher.spawn(&self.config, binary, args)?;
        let tunnel = self.wait_until_up(process, protocol).await?;
        Ok(tunnel.with_protocol(protocol))
    }

    /// cloudflared's arguments: the origin on 127.0.0.1 rather than
    /// `localhost` (which it tries on `[::1]` first), no self-update, a
    /// config of ours so a user's `config.yml` cannot reroute the tunnel,
    /// a metrics port of its choosing (it logs which), a graceful shutdown
    /// that ends before our SIGKILL, and the log level that prints the URL
    /// box and the `Registered` line.
    fn args(&self, local: SocketAddr, protocol: Protocol) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "tunnel".into(),
            "--url".into(),
            format!("http://{}", launch::origin(local)).into(),
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
        // cloudflared picks QUIC for quick tunnels when nothing is said.
        if self.config.protocol.is_some() || protocol != Protocol::Quic {
            args.extend(["--protocol".into(), protocol.as_str().into()]);
        }
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    /// Writes the config file (owner-only) and makes the state dir.
    fn write_config(&self) -> Result<(), TunnelError> {
        launch::write_config(&self.config, CONFIG_FILE, CONFIG_TEXT).map(|_| ())
    }

    /// Watches the starting process until it is up, fails, or the deadline
    /// passes; on failure the process is ended. When a fallback to HTTP/2
    /// is possible, an open that shows QUIC blocked is ended at once.
    async fn wait_until_up(
        &self,
        mut process: CloudflaredProcess,
        protocol: Protocol,
    ) -> Result<Tunnel, TunnelError> {
        let timeout = self.config.start_timeout;
        let deadline = Instant::now() + timeout;
        let udp_fallback = self.may_fall_back(protocol);
        let mut startup = Startup {
            over_quic: protocol == Protocol::Quic,
            ..Startup::default()
        };
        let polled = poll_until_up(&mut process, &mut startup, udp_fallback);
        match tokio::time::timeout_at(deadline, polled).await {
            Ok(Ok(url)) => {
                let pid = process.pid();
                Ok(Tunnel::new(url, Some(pid), Box::new(process)))
            }
            Ok(Err(Ended::Exited(exit))) => Err(exit_error(exit)),
            Ok(Err(Ended::UdpBlocked)) => {
                crate::TunnelProcess::close(&mut process).await;
                let log_tail = process.log_tail().await;
                Err(TunnelError::UdpBlocked { log_tail })
            }
            Err(_) => {
                crate::TunnelProcess::close(&mut process).await;
                Err(startup.timeout_error(timeout, process.log_tail().await))
            }
        }
    }
}

/// What a starting cloudflared has told us so far.
#[derive(Debug, Default)]
struct Startup {
    /// Whether it tries QUIC: only then does a UDP failure stop it.
    over_quic: bool,
    url: Option<String>,
    registered: bool,
    metrics: Option<SocketAddr>,
    quic_failures: usize,
    udp_failed: bool,
}

impl Startup {
    fn scan(&mut self, line: &str) {
        if self.url.is_none() {
            self.url = parse::quick_tunnel_url(line);
        }
        if self.metrics.is_none() {
            self.metrics = parse::metrics_address(line);
        }
        self.registered |= parse::is_registered(line);
        self.quic_failures += usize::from(parse::is_quic_dial_failure(line));
        self.udp_failed |= parse::prechecks_udp_failed(line);
    }

    /// Whether QUIC evidently cannot reach the edge here.
    fn udp_blocked(&self) -> bool {
        let evidence = self.udp_failed || self.quic_failures >= QUIC_FAILURES_FOR_BLOCKED;
        self.over_quic && !self.registered && evidence
    }

    fn timeout_error(self, timeout: Duration, log_tail: String) -> TunnelError {
        match self.url {
            _ if self.udp_blocked() => TunnelError::UdpBlocked { log_tail },
            None => TunnelError::NoUrl { timeout, log_tail },
            Some(url) => TunnelError::NotReady {
                url,
                timeout,
                log_tail,
            },
        }
    }
}

/// How a start ended other than up.
enum Ended {
    /// The process ended.
    Exited(TunnelExit),
    /// QUIC is blocked (only reported when a fallback is possible).
    UdpBlocked,
}

/// Polls the log and the metrics server until the tunnel is up (its URL),
/// the process ends, or QUIC shows blocked when that calls for a fallback.
async fn poll_until_up(
    process: &mut CloudflaredProcess,
    startup: &mut Startup,
    udp_fallback: bool,
) -> Result<String, Ended> {
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
        if let (Some(url), true) = (&startup.url, startup.registered) {
            return Ok(url.clone());
        }
        if udp_fallback && startup.udp_blocked() {
            return Err(Ended::UdpBlocked);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Asks `/quicktunnel` (until it gives a URL) and `/ready`, once the log
/// has said where the metrics server is.
async fn ask_metrics(process: &mut CloudflaredProcess, startup: &mut Startup) {
    if process.metrics().is_none()
        && let Some(addr) = startup.metrics
    {
        process.set_metrics(Metrics::new(addr));
    }
    let Some(metrics) = process.metrics() else {
        return;
    };
    if startup.url.is_none()
        && let Some(url) = metrics.url().await
    {
        process.saw_metrics();
        startup.url = Some(url);
    }
    if let Some(ready) = metrics.ready().await {
        process.saw_metrics();
        startup.registered |= ready;
    }
}

/// The error for a process that ended while starting, from its log.
fn exit_error(exit: TunnelExit) -> TunnelError {
    match parse::failure(&exit.log_tail) {
        Some(Failure::RateLimited) => TunnelError::RateLimited,
        Some(Failure::NoNetwork { detail }) => TunnelError::NoNetwork { detail },
        Some(Failure::Usage { detail }) => TunnelError::Usage { detail },
        None => TunnelError::ExitedEarly {
            code: exit.code,
            log_tail: exit.log_tail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config_in(dir: &Path) -> CloudflaredConfig {
        let mut config = CloudflaredConfig::new(dir);
        config.search_path = Some(OsString::new());
        config
    }

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn runs_a_quick_tunnel_to_loopback_with_the_recommended_flags() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.stop_grace = Duration::from_secs(3);
        let provider = Cloudflared::new(config);
        let config_file = provider.config_file();
        let args = provider.args("0.0.0.0:8080".parse().unwrap(), Protocol::Quic);
        assert_eq!(
            strings(&args),
            [
                "tunnel",
                "--url",
                "http://127.0.0.1:8080",
                "--no-autoupdate",
                "--config",
                config_file.to_str().unwrap(),
                "--metrics",
                "127.0.0.1:0",
                "--loglevel",
                "info",
                "--grace-period",
                "2000ms",
            ]
        );
        let http2 = provider.args("127.0.0.1:8080".parse().unwrap(), Protocol::Http2);
        assert_eq!(strings(&http2[12..]), ["--protocol", "http2"]);
    }

    #[test]
    fn a_protocol_set_in_the_config_is_always_given_and_never_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.protocol = Some(Protocol::Quic);
        config.extra_args = vec!["--edge-ip-version".into(), "4".into()];
        let provider = Cloudflared::new(config);
        let args = provider.args("127.0.0.1:1".parse().unwrap(), Protocol::Quic);
        assert_eq!(
            strings(&args[12..]),
            ["--protocol", "quic", "--edge-ip-version", "4"]
        );
        assert!(!provider.may_fall_back(Protocol::Quic));
        assert_eq!(provider.protocol_now(), Protocol::Quic);
    }

    #[test]
    fn the_config_parses_and_the_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let provider = Cloudflared::new(config_in(&state));
        provider.write_config().unwrap();
        let text = std::fs::read_to_string(provider.config_file()).unwrap();
        let settings: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(
            settings,
            ["no-autoupdate: true"],
            "not empty: cloudflared logs an ERR for that"
        );
        let mode = std::fs::metadata(provider.config_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn quic_is_blocked_when_the_prechecks_or_repeated_dials_say_so() {
        let quic = || Startup {
            over_quic: true,
            ..Startup::default()
        };
        let mut startup = quic();
        startup.scan("ERR Failed to dial a quic connection error=\"timeout\" connIndex=0");
        assert!(!startup.udp_blocked(), "one failure may be a hiccup");
        startup.scan("ERR Failed to dial a quic connection error=\"timeout\" connIndex=0");
        assert!(startup.udp_blocked());
        startup.scan("INF Registered tunnel connection connIndex=0 protocol=quic");
        assert!(!startup.udp_blocked(), "it got through after all");

        let failed_udp =
            "INF |  UDP Connectivity  region1.v2.argotunnel.com  FAIL    QUIC connection failed  |";
        let mut prechecks = quic();
        prechecks.scan(failed_udp);
        assert!(prechecks.udp_blocked());
        let mut over_http2 = Startup::default();
        over_http2.scan(failed_udp);
        assert!(!over_http2.udp_blocked(), "not what stops an HTTP/2 tunnel");
    }

    #[test]
    fn a_failing_exit_is_classified_by_its_log() {
        let exit = |log: &str| TunnelExit {
            code: Some(1),
            log_tail: log.into(),
        };
        assert!(matches!(
            exit_error(exit("status_code=\"429 Too Many Requests\"")),
            TunnelError::RateLimited
        ));
        assert!(matches!(
            exit_error(exit(
                "failed to request quick Tunnel: dial tcp: lookup x: no such host"
            )),
            TunnelError::NoNetwork { .. }
        ));
        assert!(matches!(
            exit_error(exit("Incorrect Usage. flag provided but not defined: -x")),
            TunnelError::Usage { .. }
        ));
        assert!(matches!(
            exit_error(exit("something else")),
            TunnelError::ExitedEarly { .. }
        ));
    }
}
