//! The cloudflared quick-tunnel provider: finds the binary, runs it with
//! the flags and environment that keep it a quick tunnel to the given port,
//! and reports "up" only once the edge has registered a connection.
//!
//! Each open gets its own log file (`cloudflared-<pid>.log`) and its own
//! metrics port (cloudflared picks it for `--metrics 127.0.0.1:0` and logs
//! it), so two tunnels never read each other's URL. Where QUIC (UDP port
//! 7844) is blocked, an open falls back to `--protocol http2` by itself,
//! and later opens of the same provider start there.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::Command;
use tokio::time::Instant;

use crate::logfile::LogFollower;
use crate::metrics::Metrics;
use crate::parse::{self, Failure};
use crate::process::CloudflaredProcess;
use crate::{Protocol, Tunnel, TunnelError, TunnelExit, TunnelProvider};

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
/// Dead tunnels' logs kept in the state dir, for whoever investigates.
const LOGS_KEPT: usize = 8;
/// Environment variables cloudflared reads as flags, or that change how it
/// runs, besides every `TUNNEL_*` and `QUIC_GO_*` one: from the caller's
/// environment, any of them could turn the quick tunnel into something else
/// (a named tunnel, the hello-world page, JSON logs…).
const CLOUDFLARED_VARIABLES: &[&str] = &[
    "NO_AUTOUPDATE",
    "NO_TLS_VERIFY",
    "LOCAL_SSH_PORT",
    "SSH_IDLE_TIMEOUT",
    "SSH_MAX_TIMEOUT",
    "BUCKET_ID",
    "REGION_ID",
    "SECRET_ID",
    "ACCESS_CLIENT_ID",
    "SESSION_TOKEN_ID",
    "S3_URL",
    "HOST_KEY_PATH",
    "DIAL_EDGE_TIMEOUT",
    "STDIN_CONTROL",
    "QLOGDIR",
];

/// Where and how to run cloudflared. Build it with
/// [`CloudflaredConfig::new`] and change the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CloudflaredConfig {
    /// A binary to use before any other, if it exists.
    pub binary: Option<PathBuf>,
    /// The `PATH` to search for `cloudflared`; `None` means this process's.
    pub search_path: Option<OsString>,
    /// Where to look after the search path, in order (where your installer
    /// puts it, for example).
    pub fallback_paths: Vec<PathBuf>,
    /// What [`TunnelError::NotFound`] tells the user to do.
    pub not_found_hint: Option<String>,
    /// A directory of the caller's for cloudflared's config file and its
    /// logs.
    pub state_dir: PathBuf,
    /// How long cloudflared may take to print a URL and register a
    /// connection. The quick-tunnel request alone may take 15 s.
    pub start_timeout: Duration,
    /// How long cloudflared may take to end after SIGTERM before SIGKILL.
    /// It is told to finish its graceful shutdown a second before that.
    pub stop_grace: Duration,
    /// How to reach the edge. `None`: QUIC, cloudflared's choice, falling
    /// back to HTTP/2 when UDP port 7844 turns out blocked.
    pub protocol: Option<Protocol>,
    /// Linux: end cloudflared (SIGKILL) if the thread that started it dies,
    /// so a killed caller does not leave the port public. drop-tunnel
    /// starts it from the task that calls [`TunnelProvider::open`], that is
    /// from a Tokio worker thread, which lives as long as the runtime. No
    /// effect on other systems.
    pub die_with_parent: bool,
    /// More arguments after drop-tunnel's own.
    pub extra_args: Vec<OsString>,
    /// More environment variables for cloudflared, set after the ones
    /// cloudflared would read from the caller's environment are removed.
    pub env: Vec<(OsString, OsString)>,
}

impl CloudflaredConfig {
    /// The defaults, keeping files in `state_dir`: cloudflared from `PATH`,
    /// QUIC with a fallback to HTTP/2, 30 s to come up, 5 s to stop.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        CloudflaredConfig {
            binary: None,
            search_path: None,
            fallback_paths: Vec::new(),
            not_found_hint: None,
            state_dir: state_dir.into(),
            start_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            protocol: None,
            die_with_parent: false,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// Opens cloudflared quick tunnels (`https://<words>.trycloudflare.com`).
#[derive(Debug)]
pub struct Cloudflared {
    config: CloudflaredConfig,
    /// Set once QUIC was found blocked: later opens go straight to HTTP/2.
    http2_learned: AtomicBool,
    /// Numbers each open's log file until its process id is known.
    opens: AtomicU64,
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
            opens: AtomicU64::new(0),
        }
    }

    /// The binary to run: the explicit one, else `cloudflared` on the
    /// search path, else the fallback paths; the first that is an
    /// executable file.
    pub fn find_binary(&self) -> Result<PathBuf, TunnelError> {
        let search_path = (self.config.search_path.clone())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let on_path = std::env::split_paths(&search_path).map(|dir| dir.join("cloudflared"));
        (self.config.binary.iter().cloned())
            .chain(on_path)
            .chain(self.config.fallback_paths.iter().cloned())
            .find(|path| is_executable(path))
            .ok_or_else(|| TunnelError::NotFound {
                searched: self.config.fallback_paths.clone(),
                hint: self.config.not_found_hint.clone(),
            })
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
        let starting_log = self.starting_log()?;
        let mut command = Command::new(binary);
        command.args(self.args(local, protocol));
        let spawned = self.spawn(command, binary, &starting_log);
        let process = spawned.inspect_err(|_| {
            let _ = std::fs::remove_file(&starting_log);
        })?;
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
        let grace = self
            .config
            .stop_grace
            .saturating_sub(Duration::from_secs(1));
        let mut args: Vec<OsString> = vec![
            "tunnel".into(),
            "--url".into(),
            format!("http://{}", origin(local)).into(),
            "--no-autoupdate".into(),
            "--config".into(),
            self.config_file().into(),
            "--metrics".into(),
            "127.0.0.1:0".into(),
            "--loglevel".into(),
            "info".into(),
            "--grace-period".into(),
            format!("{}ms", grace.as_millis()).into(),
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
        let dir = &self.config.state_dir;
        std::fs::create_dir_all(dir).map_err(|source| TunnelError::Write {
            path: dir.clone(),
            source,
        })?;
        let path = self.config_file();
        write_private(&path, CONFIG_TEXT.as_bytes())
            .map_err(|source| TunnelError::Write { path, source })
    }

    /// A new, private log file for the next process; renamed after its pid
    /// once it runs.
    fn starting_log(&self) -> Result<PathBuf, TunnelError> {
        let n = self.opens.fetch_add(1, Ordering::SeqCst);
        let name = format!("cloudflared-starting-{}-{n}.log", std::process::id());
        let path = self.config.state_dir.join(name);
        write_private(&path, b"").map_err(|source| TunnelError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Starts cloudflared in its own process group with a clean
    /// environment, its output in `log` (a file outlives us, where a pipe
    /// would close with us and kill it), then names the log after it.
    fn spawn(
        &self,
        mut command: Command,
        binary: &Path,
        log: &Path,
    ) -> Result<CloudflaredProcess, TunnelError> {
        let spawn_error = |source| TunnelError::Spawn {
            path: binary.to_owned(),
            source,
        };
        let stderr = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .map_err(spawn_error)?;
        let stdout = stderr.try_clone().map_err(spawn_error)?;
        for (name, _) in std::env::vars_os().filter(|(name, _)| read_by_cloudflared(name)) {
            command.env_remove(name);
        }
        command
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        let child = self.start(command).map_err(spawn_error)?;
        let pid = child.id().expect("a just-spawned child has a pid");
        let named = self.config.state_dir.join(format!("cloudflared-{pid}.log"));
        let log = match std::fs::rename(log, &named) {
            Ok(()) => named,
            Err(_) => log.to_owned(),
        };
        prune_logs(&self.config.state_dir, &log);
        Ok(CloudflaredProcess::new(
            child,
            pid,
            log,
            self.config.stop_grace,
        ))
    }

    #[cfg(target_os = "linux")]
    fn start(&self, command: Command) -> std::io::Result<tokio::process::Child> {
        if self.config.die_with_parent {
            ur_taking_me_with_you::spawn_dying_with_parent_async(command)
        } else {
            let mut command = command;
            command.spawn()
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn start(&self, mut command: Command) -> std::io::Result<tokio::process::Child> {
        command.spawn()
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

/// Whether cloudflared would read this variable of the caller's
/// environment as one of its flags or settings.
fn read_by_cloudflared(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name.starts_with("TUNNEL_")
        || name.starts_with("QUIC_GO_")
        || CLOUDFLARED_VARIABLES.contains(&name)
}

/// Removes the logs of tunnels that ended, but the newest few.
fn prune_logs(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dead: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let pid: u32 = path
                .file_name()?
                .to_str()?
                .strip_prefix("cloudflared-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            let alive = rustix::process::Pid::from_raw(pid as i32)
                .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
            let modified = entry.metadata().ok()?.modified().ok()?;
            (!alive && path != keep).then_some((modified, path))
        })
        .collect();
    dead.sort();
    let excess = dead.len().saturating_sub(LOGS_KEPT);
    for (_, path) in dead.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}

/// The address cloudflared should forward to: loopback when `local` is a
/// wildcard, since cloudflared runs on this machine.
fn origin(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

/// Writes `bytes` to `path`, readable by its owner only whatever the umask.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> CloudflaredConfig {
        let mut config = CloudflaredConfig::new(dir);
        config.search_path = Some(OsString::new());
        config
    }

    fn executable(path: &Path) -> PathBuf {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_owned()
    }

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn nothing_anywhere_is_not_found_with_the_places_and_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.binary = Some(dir.path().join("missing"));
        config.fallback_paths = vec![dir.path().join("also-missing")];
        config.not_found_hint = Some("Run ./install.sh".into());
        let err = Cloudflared::new(config).find_binary().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cloudflared not found. Run ./install.sh (looked on PATH, then at {})",
                dir.path().join("also-missing").display()
            )
        );
        assert!(err.is_permanent());
    }

    #[test]
    fn the_explicit_binary_comes_first_then_path_then_the_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = executable(&dir.path().join("explicit/cf"));
        let on_path = executable(&dir.path().join("path/cloudflared"));
        let fallback = executable(&dir.path().join("home/cloudflared"));
        let mut config = config_in(dir.path());
        config.binary = Some(explicit.clone());
        config.search_path =
            Some(std::env::join_paths([dir.path().join("none"), dir.path().join("path")]).unwrap());
        config.fallback_paths = vec![dir.path().join("nowhere"), fallback.clone()];
        assert_eq!(
            Cloudflared::new(config.clone()).find_binary().unwrap(),
            explicit
        );
        config.binary = None;
        assert_eq!(
            Cloudflared::new(config.clone()).find_binary().unwrap(),
            on_path
        );
        config.search_path = Some(OsString::new());
        assert_eq!(Cloudflared::new(config).find_binary().unwrap(), fallback);
    }

    #[test]
    fn a_file_that_cannot_run_is_not_a_binary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloudflared");
        std::fs::write(&path, "").unwrap();
        assert!(!is_executable(&path));
        assert!(!is_executable(dir.path()));
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
    fn an_ipv6_origin_keeps_its_brackets() {
        let local: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(format!("http://{}", origin(local)), "http://[::1]:9000");
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
        let log = provider.starting_log().unwrap();
        for path in [provider.config_file(), log] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_callers_tunnel_settings_never_reach_cloudflared() {
        for name in [
            "TUNNEL_NAME",
            "TUNNEL_HELLO_WORLD",
            "TUNNEL_TRANSPORT_PROTOCOL",
            "TUNNEL_LOG_OUTPUT",
            "NO_AUTOUPDATE",
            "QUIC_GO_DISABLE_GSO",
            "STDIN_CONTROL",
        ] {
            assert!(read_by_cloudflared(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "DROP_HOME", "TUNNELS", "MY_TUNNEL_NAME"] {
            assert!(!read_by_cloudflared(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn only_a_few_logs_of_ended_tunnels_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Pids above the kernel's limit: processes that cannot be running.
        for n in 0..12u32 {
            std::fs::write(
                dir.path()
                    .join(format!("cloudflared-{}.log", 4_200_000 + n)),
                "x",
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let me = std::process::id();
        let live = dir.path().join(format!("cloudflared-{me}.log"));
        std::fs::write(&live, "mine").unwrap();
        std::fs::write(dir.path().join("unrelated.log"), "x").unwrap();
        let keep = dir.path().join("cloudflared-4200000.log");
        prune_logs(dir.path(), &keep);
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            left.contains(&format!("cloudflared-{me}.log")),
            "a live process's log stays"
        );
        assert!(
            left.contains(&"cloudflared-4200000.log".to_owned()),
            "the one asked to keep"
        );
        assert!(left.contains(&"unrelated.log".to_owned()));
        assert!(
            left.contains(&"cloudflared-4200011.log".to_owned()),
            "the newest stay"
        );
        assert!(
            !left.contains(&"cloudflared-4200001.log".to_owned()),
            "the oldest go"
        );
        assert_eq!(left.len(), 3 + LOGS_KEPT, "{left:?}");
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
