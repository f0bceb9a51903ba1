//! Managing the named tunnels of the account the login certificate is for:
//! list, create (or find again), route a hostname, delete. Each is one
//! short `cloudflared tunnel` command, run with the same clean environment
//! as a tunnel, a config file of ours (so a `~/.cloudflared/config.yml`
//! changes nothing) and `--origincert` naming the certificate found here.
//!
//! What cloudflared does, from its source: `tunnel create NAME` refuses a
//! name in use and writes the credentials as `<id>.json` beside the
//! certificate (`cmd/cloudflared/tunnel/subcommand_context.go`);
//! `tunnel token --cred-file PATH ID` writes them again for a tunnel made
//! elsewhere (`subcommands.go`); `tunnel route dns ID HOST` adds a CNAME
//! in the certificate's zone, appending the zone to a hostname outside it,
//! and refuses a name that has a record already (API code 1003) unless
//! `--overwrite-dns` (`cfapi/hostname.go`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::launch::{self, CommandOutput};
use crate::named::ingress::checked_hostname;
use crate::named::output;
use crate::named::{CertificateSearch, NamedCloudflared, NamedTunnel};
use crate::{CloudflaredConfig, TunnelError};

/// The config file the management commands get, in the state dir.
const CONFIG_FILE: &str = "cloudflared-manage.yml";
/// Its content: it parses and changes nothing (an empty file would log an
/// error; none at all would let `~/.cloudflared/config.yml` in).
const CONFIG_TEXT: &str = "# Written by drop-tunnel for the commands that manage named tunnels,\n\
# so the user's ~/.cloudflared/config.yml is not read.\nno-autoupdate: true\n";

/// What [`NamedTunnels::route_dns`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsRoute {
    /// A CNAME record to the tunnel was added (or replaced another).
    Added,
    /// The hostname already routed to this tunnel.
    AlreadyRouted,
}

/// The named tunnels of the Cloudflare account that `cloudflared tunnel
/// login` logged this machine in to.
#[derive(Debug, Clone)]
pub struct NamedTunnels {
    config: CloudflaredConfig,
    certificates: CertificateSearch,
}

impl NamedTunnels {
    /// Manages tunnels with cloudflared as `config` says (binary, state
    /// dir, environment), logged in with the certificate `certificates`
    /// finds.
    pub fn new(config: CloudflaredConfig, certificates: CertificateSearch) -> Self {
        NamedTunnels {
            config,
            certificates,
        }
    }

    /// The login certificate, or [`TunnelError::NotLoggedIn`] naming where
    /// it was looked for.
    pub fn login_certificate(&self) -> Result<PathBuf, TunnelError> {
        self.certificates.find()
    }

    /// The account's tunnels (not the deleted ones).
    pub async fn list(&self) -> Result<Vec<NamedTunnel>, TunnelError> {
        let certificate = self.login_certificate()?;
        self.list_with(&certificate).await
    }

    /// The account's tunnel called `name`, if there is one.
    pub async fn find(&self, name: &str) -> Result<Option<NamedTunnel>, TunnelError> {
        let tunnels = self.list().await?;
        Ok(tunnels.into_iter().find(|t| t.name() == name))
    }

    /// The tunnel called `name`, created unless the account has it already;
    /// either way with its credentials on this machine (fetched with
    /// `cloudflared tunnel token` when it was created elsewhere).
    pub async fn create(&self, name: &str) -> Result<NamedTunnel, TunnelError> {
        let certificate = self.login_certificate()?;
        if let Some(tunnel) = self.named(&certificate, name).await? {
            return self.with_credentials(&certificate, tunnel).await;
        }
        let output = self
            .command(&certificate, &["create", "--output", "json", name])
            .await?;
        if !succeeded(&output) {
            // Created meanwhile by someone else: the same tunnel.
            if output.stderr.contains("tunnel with name already exists")
                && let Some(tunnel) = self.named(&certificate, name).await?
            {
                return self.with_credentials(&certificate, tunnel).await;
            }
            return Err(output::failure("create", &output, &certificate));
        }
        let created =
            output::created_tunnel(&output.stdout).ok_or_else(|| TunnelError::CommandFailed {
                command: "create".into(),
                code: output.code,
                detail: "it printed no tunnel".into(),
            })?;
        let tunnel = tunnel_of(&certificate, created.id, created.name);
        match tunnel.has_credentials() {
            true => Ok(tunnel),
            false => Err(credentials_missing(&tunnel)),
        }
    }

    /// Routes `hostname` to `tunnel` with a CNAME record in the login's
    /// zone. Refuses a hostname outside that zone (cloudflared would have
    /// added `<hostname>.<zone>`, and says so; the error names it) and one
    /// that has another record already.
    pub async fn route_dns(
        &self,
        tunnel: &NamedTunnel,
        hostname: &str,
    ) -> Result<DnsRoute, TunnelError> {
        self.route(tunnel, hostname, false).await
    }

    /// Like [`route_dns`](Self::route_dns), but replaces a record the
    /// hostname already has (cloudflared's `--overwrite-dns`): another
    /// tunnel's, or a server's.
    pub async fn replace_dns(
        &self,
        tunnel: &NamedTunnel,
        hostname: &str,
    ) -> Result<DnsRoute, TunnelError> {
        self.route(tunnel, hostname, true).await
    }

    /// Deletes `tunnel` from the account, and its credentials file. Its
    /// DNS records stay (delete them in the Cloudflare dashboard).
    pub async fn delete(&self, tunnel: &NamedTunnel) -> Result<(), TunnelError> {
        let certificate = self.login_certificate()?;
        let credentials = tunnel.credentials_file().to_string_lossy().into_owned();
        let output = self
            .command(
                &certificate,
                &["delete", "--credentials-file", &credentials, tunnel.id()],
            )
            .await?;
        match succeeded(&output) {
            true => Ok(()),
            false => Err(output::failure("delete", &output, &certificate)),
        }
    }

    /// A provider that runs `tunnel` with this configuration, `hostname`
    /// going to the local address each open is given.
    pub fn provider(
        &self,
        tunnel: NamedTunnel,
        hostname: &str,
    ) -> Result<NamedCloudflared, TunnelError> {
        NamedCloudflared::new(self.config.clone(), tunnel, hostname)
    }

    async fn route(
        &self,
        tunnel: &NamedTunnel,
        hostname: &str,
        overwrite: bool,
    ) -> Result<DnsRoute, TunnelError> {
        let hostname = checked_hostname(hostname)?;
        let certificate = self.login_certificate()?;
        let mut args = vec!["route", "dns"];
        if overwrite {
            args.push("--overwrite-dns");
        }
        args.extend([tunnel.id(), hostname.as_str()]);
        let output = self.command(&certificate, &args).await?;
        if !succeeded(&output) {
            if output::record_exists(&output) {
                let detail = output.stderr.trim().lines().last().unwrap_or_default();
                return Err(TunnelError::DnsRecordExists {
                    hostname,
                    detail: detail.to_owned(),
                });
            }
            return Err(output::failure("route dns", &output, &certificate));
        }
        let printed = format!("{}\n{}", output.stderr, output.stdout);
        let Some(routed) = output::routed(&printed) else {
            return Err(TunnelError::CommandFailed {
                command: "route dns".into(),
                code: output.code,
                detail: "it did not say which DNS record it made".into(),
            });
        };
        if !output::same_name(&routed.name, &hostname) {
            let zone = zone_of(&routed.name, &hostname);
            return Err(TunnelError::OutsideZone {
                hostname,
                added: routed.name,
                zone,
            });
        }
        Ok(match routed.added {
            true => DnsRoute::Added,
            false => DnsRoute::AlreadyRouted,
        })
    }

    async fn list_with(&self, certificate: &Path) -> Result<Vec<NamedTunnel>, TunnelError> {
        let output = self
            .command(certificate, &["list", "--output", "json"])
            .await?;
        if !succeeded(&output) {
            return Err(output::failure("list", &output, certificate));
        }
        let listed =
            output::tunnel_list(&output.stdout).ok_or_else(|| TunnelError::CommandFailed {
                command: "list".into(),
                code: output.code,
                detail: "its output is not a list of tunnels".into(),
            })?;
        Ok(listed
            .into_iter()
            .filter(|t| !t.deleted)
            .map(|t| tunnel_of(certificate, t.id, t.name))
            .collect())
    }

    async fn named(
        &self,
        certificate: &Path,
        name: &str,
    ) -> Result<Option<NamedTunnel>, TunnelError> {
        let tunnels = self.list_with(certificate).await?;
        Ok(tunnels.into_iter().find(|t| t.name() == name))
    }

    /// `tunnel`, its credentials written here if they were not.
    async fn with_credentials(
        &self,
        certificate: &Path,
        tunnel: NamedTunnel,
    ) -> Result<NamedTunnel, TunnelError> {
        if tunnel.has_credentials() {
            return Ok(tunnel);
        }
        let path = tunnel.credentials_file().to_string_lossy().into_owned();
        let output = self
            .command(certificate, &["token", "--cred-file", &path, tunnel.id()])
            .await?;
        if succeeded(&output) && tunnel.has_credentials() {
            return Ok(tunnel);
        }
        match output::failure("token", &output, certificate) {
            unreachable @ TunnelError::ApiUnreachable { .. } => Err(unreachable),
            _ => Err(credentials_missing(&tunnel)),
        }
    }

    /// Runs `cloudflared tunnel <ours> <args>`; `Err` when it could not
    /// run or did not end in time.
    async fn command(
        &self,
        certificate: &Path,
        args: &[&str],
    ) -> Result<CommandOutput, TunnelError> {
        let binary = launch::find_binary(&self.config)?;
        let config_file = launch::write_config(&self.config, CONFIG_FILE, CONFIG_TEXT)?;
        let mut full: Vec<OsString> = vec![
            "tunnel".into(),
            "--config".into(),
            config_file.into(),
            "--origincert".into(),
            certificate.into(),
            "--loglevel".into(),
            "info".into(),
        ];
        full.extend(args.iter().map(OsString::from));
        let timeout = self.config.start_timeout * 2;
        let output = launch::run_to_end(&self.config, &binary, full, timeout).await?;
        output.ok_or_else(|| TunnelError::ApiUnreachable {
            detail: format!(
                "`cloudflared tunnel {}` had no answer within {}",
                args[0],
                crate::error::seconds(timeout)
            ),
        })
    }
}

/// A tunnel of the account, its credentials beside the certificate.
fn tunnel_of(certificate: &Path, id: String, name: String) -> NamedTunnel {
    let folder = certificate.parent().unwrap_or(Path::new("."));
    let credentials_file = folder.join(format!("{id}.json"));
    NamedTunnel::new(id, name, credentials_file)
}

fn credentials_missing(tunnel: &NamedTunnel) -> TunnelError {
    TunnelError::CredentialsMissing {
        id: tunnel.id().to_owned(),
        path: tunnel.credentials_file().to_owned(),
    }
}

/// Whether a command did what it was asked: exit 0, and no usage error
/// (which cloudflared prints with exit 0).
fn succeeded(output: &CommandOutput) -> bool {
    output.code == Some(0) && !output.stdout.contains("Incorrect Usage")
}

/// The zone of the login, from the record added for a hostname outside it
/// (`<hostname>.<zone>`).
fn zone_of(added: &str, hostname: &str) -> String {
    let lower = added.trim_end_matches('.').to_ascii_lowercase();
    lower
        .strip_prefix(&format!("{hostname}."))
        .unwrap_or(&lower)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials of a tunnel are beside the certificate, named
    /// after its id.
    #[test]
    fn credentials_sit_beside_the_certificate() {
        let tunnel = tunnel_of(
            Path::new("/home/u/.cloudflared/cert.pem"),
            "6ff42ae2-765d-4adf-8112-31c55c1551ef".into(),
            "drop".into(),
        );
        assert_eq!(
            tunnel.credentials_file(),
            Path::new("/home/u/.cloudflared/6ff42ae2-765d-4adf-8112-31c55c1551ef.json")
        );
        assert!(!tunnel.has_credentials());
    }

    /// The zone is what cloudflared appended to the hostname.
    #[test]
    fn the_zone_is_what_cloudflared_appended() {
        assert_eq!(
            zone_of("drop.other.org.example.com", "drop.other.org"),
            "example.com"
        );
        assert_eq!(zone_of("Odd.Example.com.", "x.y"), "odd.example.com");
    }
}
