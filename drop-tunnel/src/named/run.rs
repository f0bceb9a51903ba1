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
//! …"`), and a few refusals in a row with no connection are taken as
//! final. Named tunnels fall back from QUIC to HTTP/2 by themselves
//! (`connection/protocol.go`), so nothing here waits on UDP unless QUIC
//! was asked for.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::launch::{self, Launcher};
use crate::named::NamedTunnel;
use crate::named::ingress::{self, NamedRoute, checked_hostname};
use crate::startup::{self, Deadline, Startup};
use crate::{CloudflaredConfig, Tunnel, TunnelError, TunnelExit, TunnelProvider};

/// The config file of the running tunnel, in the state dir; every process
/// of a provider carries it as `--config`.
const CONFIG_FILE: &str = "cloudflared-named.yml";

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

    /// Runs the tunnel with the main hostname going to `local`, and returns
    /// once the edge has registered a connection, within
    /// [`start_timeout`](CloudflaredConfig::start_timeout).
    ///
    /// The same as [`TunnelProvider::open`], without importing the trait.
    pub async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        let deadline = Deadline::after(self.config.start_timeout);
        let binary = launch::find_binary(&self.config)?;
        self.check_credentials()?;
        self.write_config(local)?;
        let process = self.launcher.spawn(&self.config, &binary, self.args())?;
        Startup::named(self.url(), self.tunnel.id(), self.config.protocol)
            .until_up(process, deadline, |exit| self.exit_error(exit))
            .await
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
    /// hostname to `local` (with the Host of the config's
    /// [`origin_host`](CloudflaredConfig::origin_host)), then the other
    /// routes (a 404 follows).
    pub fn ingress(&self, local: SocketAddr) -> Result<Vec<NamedRoute>, TunnelError> {
        let main = NamedRoute::to_local(&self.hostname, local)?
            .with_origin_host(self.config.origin_host.clone())?;
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
        let mut args: Vec<OsString> = vec!["tunnel".into()];
        args.extend(launch::tunnel_flags(&self.config, &self.config_file()));
        if let Some(protocol) = self.config.protocol {
            args.extend(["--protocol".into(), protocol.as_str().into()]);
        }
        args.extend(self.config.extra_args.iter().cloned());
        args.extend(["run".into(), self.tunnel.id().into()]);
        args
    }

    /// Writes the config file: the tunnel, its credentials and its ingress
    /// rules for an open to `local`.
    fn write_config(&self, local: SocketAddr) -> Result<(), TunnelError> {
        let rules = self.ingress(local)?;
        let fallback = match self.main_catches_all {
            true => Some(&rules[0]),
            false => None,
        };
        let text = ingress::config_text(
            self.tunnel.id(),
            self.tunnel.credentials_file(),
            &rules,
            fallback,
        );
        launch::write_config(&self.config, CONFIG_FILE, &text).map(|_| ())
    }

    /// The credentials file as cloudflared will read it: there, and JSON.
    fn check_credentials(&self) -> Result<(), TunnelError> {
        self.tunnel.check_credentials()
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
        startup::exit_error(exit)
    }
}

#[async_trait::async_trait]
impl TunnelProvider for NamedCloudflared {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        NamedCloudflared::open(self, local).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OriginHost;
    use crate::launch::test_support::{common_flags, strings};
    use std::path::Path;
    use std::time::Duration;

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

    /// The tunnel flags come before `run` and the id after it; no
    /// protocol unless one was asked for.
    #[test]
    fn runs_the_tunnel_by_id_with_its_flags_before_run() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let config_file = provider.config_file();
        let args = provider.args();
        assert_eq!(strings(&args[..1]), ["tunnel"]);
        assert_eq!(strings(&args[1..10]), common_flags(&config_file));
        assert_eq!(
            strings(&args[10..]),
            ["run", "6ff42ae2-765d-4adf-8112-31c55c1551ef"]
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

    /// The main hostname's rule gives the local server the Host the
    /// config asks for.
    #[test]
    fn the_main_hostname_gets_the_configs_origin_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut provider = provider(dir.path());
        provider.config.origin_host = OriginHost::Localhost;
        let ingress = provider.ingress("0.0.0.0:8080".parse().unwrap()).unwrap();
        assert_eq!(ingress[0].http_host_header(), Some("localhost:8080"));
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
