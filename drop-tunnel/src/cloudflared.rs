//! The cloudflared quick-tunnel provider: finds the binary, runs it with
//! the flags and environment that keep it a quick tunnel to the given port,
//! and reports "up" only once the edge has registered a connection.
//!
//! Each open gets its own log file (`cloudflared-<pid>.log`) and its own
//! metrics port (cloudflared picks it for `--metrics 127.0.0.1:0` and logs
//! it), so two tunnels never read each other's URL. Where QUIC (UDP port
//! 7844) is blocked, an open falls back to `--protocol http2` by itself,
//! within the same start timeout, and later opens of the same provider
//! start there.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::launch::{self, Launcher};
use crate::startup::{self, Deadline, Startup};
use crate::{CloudflaredConfig, OriginHost, Protocol, Tunnel, TunnelError, TunnelProvider};

/// The config file written for cloudflared, in the state dir.
const CONFIG_FILE: &str = "cloudflared.yml";
/// Its content: a file that parses and sets nothing that matters. An empty
/// file would start every log with `ERR Configuration file … was empty`;
/// no file at all would let `~/.cloudflared/config.yml` reroute the tunnel.
const CONFIG_TEXT: &str = "# Written by drop-tunnel: cloudflared reads this file, not the\n\
# user's ~/.cloudflared/config.yml, whose ingress rules would reroute a\n\
# quick tunnel.\nno-autoupdate: true\n";

/// Opens cloudflared quick tunnels (`https://<words>.trycloudflare.com`).
#[derive(Debug)]
pub struct Cloudflared {
    config: CloudflaredConfig,
    /// Set once QUIC was found blocked: later opens go straight to HTTP/2
    /// (shared with providers made by [`Cloudflared::sending_host`]).
    http2_learned: Arc<AtomicBool>,
    launcher: Arc<Launcher>,
}

#[async_trait::async_trait]
impl TunnelProvider for Cloudflared {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        Cloudflared::open(self, local).await
    }
}

impl Cloudflared {
    /// A provider with `config`.
    pub fn new(config: CloudflaredConfig) -> Self {
        Cloudflared {
            config,
            http2_learned: Arc::default(),
            launcher: Arc::default(),
        }
    }

    /// The same provider, its tunnels giving the local server `host` (see
    /// [`CloudflaredConfig::origin_host`]); what one learns of the network
    /// (QUIC blocked) the other knows at once.
    pub fn sending_host(&self, host: OriginHost) -> Self {
        let mut config = self.config.clone();
        config.origin_host = host;
        Cloudflared {
            config,
            http2_learned: self.http2_learned.clone(),
            launcher: self.launcher.clone(),
        }
    }

    /// Opens a quick tunnel to `local` and returns once the edge has
    /// registered a connection for it. The whole open, a fallback from QUIC
    /// to HTTP/2 included, ends within
    /// [`start_timeout`](CloudflaredConfig::start_timeout).
    ///
    /// The same as [`TunnelProvider::open`], without importing the trait.
    pub async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        let deadline = Deadline::after(self.config.start_timeout);
        let binary = self.find_binary()?;
        self.write_config()?;
        let protocol = self.protocol_now();
        match self.open_with(&binary, local, protocol, deadline).await {
            Err(TunnelError::UdpBlocked { log_tail }) if self.may_fall_back(protocol) => {
                self.http2_learned.store(true, Ordering::SeqCst);
                // Found out as time ran out: the next open starts on HTTP/2.
                if deadline.passed() {
                    return Err(TunnelError::UdpBlocked { log_tail });
                }
                self.open_with(&binary, local, Protocol::Http2, deadline)
                    .await
            }
            outcome => outcome,
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

    /// One cloudflared process, until its tunnel is up or it failed. Where
    /// it tries QUIC, UDP found blocked ends it at once.
    async fn open_with(
        &self,
        binary: &Path,
        local: SocketAddr,
        protocol: Protocol,
        deadline: Deadline,
    ) -> Result<Tunnel, TunnelError> {
        let args = self.args(local, protocol)?;
        let process = self.launcher.spawn(&self.config, binary, args)?;
        Startup::quick(protocol)
            .until_up(process, deadline, startup::exit_error)
            .await
    }

    /// cloudflared's arguments: the origin on 127.0.0.1 rather than
    /// `localhost` (which it tries on `[::1]` first), no self-update, a
    /// config of ours so a user's `config.yml` cannot reroute the tunnel,
    /// a metrics port of its choosing (it logs which), a graceful shutdown
    /// that ends before our SIGKILL, and the log level that prints the URL
    /// box and the `Registered` line; then the Host the local server is to
    /// get, if not the visitor's.
    fn args(&self, local: SocketAddr, protocol: Protocol) -> Result<Vec<OsString>, TunnelError> {
        let mut args: Vec<OsString> = vec![
            "tunnel".into(),
            "--url".into(),
            format!("http://{}", launch::origin(local)).into(),
        ];
        args.extend(launch::tunnel_flags(&self.config, &self.config_file()));
        if let Some(host) = self.config.origin_host.header(local.port())? {
            args.extend(["--http-host-header".into(), host.into()]);
        }
        // cloudflared picks QUIC for quick tunnels when nothing is said.
        if self.config.protocol.is_some() || protocol != Protocol::Quic {
            args.extend(["--protocol".into(), protocol.as_str().into()]);
        }
        args.extend(self.config.extra_args.iter().cloned());
        Ok(args)
    }

    /// Writes the config file (owner-only) and makes the state dir.
    fn write_config(&self) -> Result<(), TunnelError> {
        launch::write_config(&self.config, CONFIG_FILE, CONFIG_TEXT).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OriginHost;
    use crate::launch::test_support::{common_flags, config_in, strings};
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    /// Two providers of one cloudflared, sending different Hosts, learn
    /// together that QUIC is blocked: the second never finds it out again.
    #[test]
    fn a_provider_sending_another_host_shares_what_was_learned() {
        let dir = tempfile::tempdir().unwrap();
        let public = Cloudflared::new(config_in(dir.path()));
        let localhost = public.sending_host(OriginHost::Localhost);
        assert_eq!(localhost.protocol_now(), Protocol::Quic);
        public.http2_learned.store(true, Ordering::SeqCst);
        assert_eq!(localhost.protocol_now(), Protocol::Http2);
        let local = "127.0.0.1:5173".parse().unwrap();
        let args = localhost.args(local, Protocol::Http2).unwrap();
        assert!(
            strings(&args)
                .windows(2)
                .any(|w| w == ["--http-host-header", "localhost:5173"]),
            "{args:?}"
        );
        assert!(
            !strings(&public.args(local, Protocol::Http2).unwrap()).contains(&"--http-host-header")
        );
    }

    #[test]
    fn runs_a_quick_tunnel_to_loopback_with_the_recommended_flags() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.stop_grace = Duration::from_secs(3);
        let provider = Cloudflared::new(config);
        let config_file = provider.config_file();
        let args = provider
            .args("0.0.0.0:8080".parse().unwrap(), Protocol::Quic)
            .unwrap();
        assert_eq!(
            strings(&args[..3]),
            ["tunnel", "--url", "http://127.0.0.1:8080"]
        );
        assert_eq!(strings(&args[3..]), common_flags(&config_file));
        let http2 = provider
            .args("127.0.0.1:8080".parse().unwrap(), Protocol::Http2)
            .unwrap();
        assert_eq!(strings(&http2[12..]), ["--protocol", "http2"]);
    }

    #[test]
    fn a_protocol_set_in_the_config_is_always_given_and_never_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.protocol = Some(Protocol::Quic);
        config.extra_args = vec!["--edge-ip-version".into(), "4".into()];
        let provider = Cloudflared::new(config);
        let args = provider
            .args("127.0.0.1:1".parse().unwrap(), Protocol::Quic)
            .unwrap();
        assert_eq!(
            strings(&args[12..]),
            ["--protocol", "quic", "--edge-ip-version", "4"]
        );
        assert!(!provider.may_fall_back(Protocol::Quic));
        assert_eq!(provider.protocol_now(), Protocol::Quic);
    }

    /// The Host the local server gets follows the config: none by default,
    /// `localhost` with the tunnel's port, or the caller's; a bad one is
    /// refused before anything runs.
    #[test]
    fn the_origin_host_is_given_as_http_host_header() {
        let dir = tempfile::tempdir().unwrap();
        let with = |origin_host: OriginHost| {
            let mut config = config_in(dir.path());
            config.origin_host = origin_host;
            Cloudflared::new(config).args("0.0.0.0:5173".parse().unwrap(), Protocol::Http2)
        };
        let public = with(OriginHost::Public).unwrap();
        assert!(!strings(&public).contains(&"--http-host-header"));
        assert_eq!(
            strings(&with(OriginHost::Localhost).unwrap()[12..]),
            [
                "--http-host-header",
                "localhost:5173",
                "--protocol",
                "http2"
            ]
        );
        let custom = with(OriginHost::Custom("myapp.test:3000".into())).unwrap();
        assert_eq!(
            strings(&custom[12..14]),
            ["--http-host-header", "myapp.test:3000"]
        );
        let bad = with(OriginHost::Custom("my app".into())).unwrap_err();
        assert!(matches!(bad, TunnelError::InvalidRoute { .. }), "{bad:?}");
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
}
