//! The cloudflared quick-tunnel provider: finds the binary, runs it the
//! way cloudflared's own documentation recommends, and reports "up" only once the
//! URL answers.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::Instant;

use crate::logfile::LogFollower;
use crate::metrics::Metrics;
use crate::parse::{self, Failure};
use crate::process::CloudflaredProcess;
use crate::{Tunnel, TunnelError, TunnelExit, TunnelProvider};

/// The config file drop-tunnel writes for cloudflared, in the state dir.
const CONFIG_FILE: &str = "cloudflared-empty.yml";
/// How often a starting cloudflared is asked whether it is up.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Where and how to run cloudflared.
#[derive(Debug, Clone)]
pub struct CloudflaredConfig {
    /// A binary to use before any other, if it exists.
    pub binary: Option<PathBuf>,
    /// The `PATH` to search for `cloudflared`; `None` means this process's.
    pub search_path: Option<OsString>,
    /// The last place to look, where drop's installer puts it:
    /// `~/.drop/bin/cloudflared` by default.
    pub home_binary: Option<PathBuf>,
    /// A directory of the caller's for cloudflared's empty config file and
    /// its logs (`cloudflared-<local port>.log`, rewritten at each open).
    pub state_dir: PathBuf,
    /// How long cloudflared may take to print a URL and register a
    /// connection. The quick-tunnel request alone may take 15 s.
    pub start_timeout: Duration,
    /// How long cloudflared may take to end after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// More arguments after drop's own, e.g. `--protocol http2` where UDP
    /// is blocked.
    pub extra_args: Vec<OsString>,
    /// More environment variables for cloudflared.
    pub env: Vec<(OsString, OsString)>,
}

impl CloudflaredConfig {
    /// The defaults, keeping files in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        CloudflaredConfig {
            binary: None,
            search_path: None,
            home_binary: home.map(|home| home.join(".drop/bin/cloudflared")),
            state_dir: state_dir.into(),
            start_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// Opens cloudflared quick tunnels (`https://<words>.trycloudflare.com`).
#[derive(Debug, Clone)]
pub struct Cloudflared {
    config: CloudflaredConfig,
}

#[async_trait::async_trait]
impl TunnelProvider for Cloudflared {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        let binary = self.find_binary()?;
        let (config_file, log) = self.prepare_files(local.port())?;
        let metrics = free_loopback_addr().map_err(|source| TunnelError::Spawn {
            path: binary.clone(),
            source,
        })?;
        let mut command = Command::new(&binary);
        command.args(self.args(local, &config_file, metrics));
        let process = self.spawn(command, &binary, &log, metrics)?;
        self.wait_until_up(process, &log).await
    }
}

impl Cloudflared {
    /// A provider with `config`.
    pub fn new(config: CloudflaredConfig) -> Self {
        Cloudflared { config }
    }

    /// The binary to run: the explicit one, else `cloudflared` on the
    /// search path, else the home binary; the first that is an executable
    /// file.
    pub fn find_binary(&self) -> Result<PathBuf, TunnelError> {
        let search_path = (self.config.search_path.clone())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        let on_path = std::env::split_paths(&search_path).map(|dir| dir.join("cloudflared"));
        (self.config.binary.iter().cloned())
            .chain(on_path)
            .chain(self.config.home_binary.iter().cloned())
            .find(|path| is_executable(path))
            .ok_or(TunnelError::NotFound)
    }

    /// The config file every cloudflared of this provider is given with
    /// `--config`: a process running with it was started by a provider of
    /// this state directory, which is how leftovers of a killed caller are
    /// found.
    pub fn config_file(&self) -> PathBuf {
        self.config.state_dir.join(CONFIG_FILE)
    }

    /// cloudflared's arguments, as recommended: the origin on
    /// 127.0.0.1 rather than `localhost` (which it tries on `[::1]` first),
    /// no self-update, an empty config of ours so a user's `config.yml`
    /// cannot reroute the tunnel, metrics where we chose, and the log level
    /// that prints the URL box and the `Registered` line.
    fn args(&self, local: SocketAddr, config_file: &Path, metrics: SocketAddr) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "tunnel".into(),
            "--url".into(),
            format!("http://{}", origin(local)).into(),
            "--no-autoupdate".into(),
            "--config".into(),
            config_file.into(),
            "--metrics".into(),
            metrics.to_string().into(),
            "--loglevel".into(),
            "info".into(),
        ];
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    /// Writes the empty config file and truncates this port's log.
    fn prepare_files(&self, port: u16) -> Result<(PathBuf, PathBuf), TunnelError> {
        let dir = &self.config.state_dir;
        std::fs::create_dir_all(dir).map_err(|source| TunnelError::Write {
            path: dir.clone(),
            source,
        })?;
        let config = self.config_file();
        let log = dir.join(format!("cloudflared-{port}.log"));
        for path in [&config, &log] {
            private_file(path).map_err(|source| TunnelError::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok((config, log))
    }

    /// Starts cloudflared in its own process group, its output in `log`:
    /// a file outlives us, where a pipe would close with us and kill it.
    fn spawn(
        &self,
        mut command: Command,
        binary: &Path,
        log: &Path,
        metrics: SocketAddr,
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
        command
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        let child = command.spawn().map_err(spawn_error)?;
        let pid = child.id().expect("a just-spawned child has a pid");
        let (log, metrics, grace) = (
            log.to_owned(),
            Metrics::new(metrics),
            self.config.stop_grace,
        );
        Ok(CloudflaredProcess::new(child, pid, log, metrics, grace))
    }

    /// Watches the starting process until its URL answers, it fails, or
    /// the deadline passes; on failure the process is ended.
    async fn wait_until_up(
        &self,
        mut process: CloudflaredProcess,
        log: &Path,
    ) -> Result<Tunnel, TunnelError> {
        let timeout = self.config.start_timeout;
        let deadline = Instant::now() + timeout;
        let mut startup = Startup::default();
        let outcome =
            tokio::time::timeout_at(deadline, poll_until_up(&mut process, log, &mut startup)).await;
        match outcome {
            Ok(Ok(url)) => {
                let pid = process.pid();
                Ok(Tunnel::new(url, Some(pid), Box::new(process)))
            }
            Ok(Err(exit)) => Err(exit_error(exit)),
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
    url: Option<String>,
    registered: bool,
}

impl Startup {
    fn scan(&mut self, line: &str) {
        if self.url.is_none() {
            self.url = parse::quick_tunnel_url(line);
        }
        self.registered |= parse::is_registered(line);
    }

    fn timeout_error(self, timeout: Duration, log_tail: String) -> TunnelError {
        match self.url {
            None => TunnelError::NoUrl { timeout, log_tail },
            Some(url) => TunnelError::NotReady {
                url,
                timeout,
                log_tail,
            },
        }
    }
}

/// Polls the log and the metrics server until the tunnel is up (its URL)
/// or the process ends (how).
async fn poll_until_up(
    process: &mut CloudflaredProcess,
    log: &Path,
    startup: &mut Startup,
) -> Result<String, TunnelExit> {
    let mut follower = LogFollower::open(log).await.ok();
    loop {
        if let Some(follower) = follower.as_mut() {
            follower
                .new_lines()
                .await
                .iter()
                .for_each(|l| startup.scan(l));
        }
        ask_metrics(process, startup).await;
        if let Some(exit) = process.try_exit().await {
            return Err(exit);
        }
        if let (Some(url), true) = (&startup.url, startup.registered) {
            return Ok(url.clone());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Asks `/quicktunnel` (until it gives a URL) and `/ready`. Either source
/// may be missing: older versions, or a metrics port taken by then.
async fn ask_metrics(process: &mut CloudflaredProcess, startup: &mut Startup) {
    let metrics = process.metrics();
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
        None => TunnelError::ExitedEarly {
            code: exit.code,
            log_tail: exit.log_tail,
        },
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

/// A loopback address with a port free right now. cloudflared binds it a
/// moment later; if someone else got there first it exits, and the caller
/// retries.
fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

/// Creates or truncates `path`, readable by its owner only.
fn private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> CloudflaredConfig {
        CloudflaredConfig {
            search_path: Some(OsString::new()),
            home_binary: None,
            ..CloudflaredConfig::new(dir)
        }
    }

    fn executable(path: &Path) -> PathBuf {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_owned()
    }

    #[test]
    fn nothing_anywhere_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Cloudflared::new(CloudflaredConfig {
            binary: Some(dir.path().join("missing")),
            home_binary: Some(dir.path().join("also-missing")),
            ..config_in(dir.path())
        });
        let err = provider.find_binary().unwrap_err();
        assert_eq!(err.to_string(), "cloudflared not found. Run ./install.sh");
    }

    #[test]
    fn the_explicit_binary_comes_first_then_path_then_home() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = executable(&dir.path().join("explicit/cf"));
        let on_path = executable(&dir.path().join("path/cloudflared"));
        let home = executable(&dir.path().join("home/cloudflared"));
        let mut config = CloudflaredConfig {
            binary: Some(explicit.clone()),
            search_path: Some(
                std::env::join_paths([dir.path().join("none"), dir.path().join("path")]).unwrap(),
            ),
            home_binary: Some(home.clone()),
            ..config_in(dir.path())
        };
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
        assert_eq!(Cloudflared::new(config).find_binary().unwrap(), home);
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
        let provider = Cloudflared::new(CloudflaredConfig {
            extra_args: vec!["--protocol".into(), "http2".into()],
            ..config_in(dir.path())
        });
        let metrics: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let args = provider.args(
            "0.0.0.0:8080".parse().unwrap(),
            Path::new("/s/empty.yml"),
            metrics,
        );
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "tunnel",
                "--url",
                "http://127.0.0.1:8080",
                "--no-autoupdate",
                "--config",
                "/s/empty.yml",
                "--metrics",
                "127.0.0.1:40001",
                "--loglevel",
                "info",
                "--protocol",
                "http2",
            ]
        );
    }

    #[test]
    fn an_ipv6_origin_keeps_its_brackets() {
        let local: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(format!("http://{}", origin(local)), "http://[::1]:9000");
    }

    #[test]
    fn the_config_is_empty_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let provider = Cloudflared::new(config_in(&state));
        let (config, log) = provider.prepare_files(8080).unwrap();
        assert_eq!(std::fs::read(&config).unwrap(), b"");
        assert!(log.ends_with("cloudflared-8080.log"));
        for path in [config, log] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
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
            exit_error(exit("something else")),
            TunnelError::ExitedEarly { code: Some(1), .. }
        ));
    }
}
