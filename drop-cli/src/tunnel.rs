//! `drop tunnel setup|status|reset`: the user's own named Cloudflare tunnel,
//! for links that outlive restarts. Setup uses the `cloudflared tunnel
//! login` certificate to create the tunnel (once), route the hostname to it
//! and record both in `named_tunnel.json`; from then on the daemon runs it
//! instead of quick tunnels (see `named_tunnel_access`).

use std::sync::Arc;

use drop_core::daemon::{ControlReply, ControlRequest};
use drop_core::supervise::NamedTunnelAccess;
use drop_registry::{NamedTunnelSetup, TunnelPhase, TunnelState};
use drop_tunnel::{
    CertificateSearch, CloudflaredConfig, DnsRoute, NamedTunnel, NamedTunnels, TunnelError,
};
use serde_json::json;

use crate::context::Context;
use crate::error::CliError;
use crate::output::say;
use crate::running::running_server;

/// Where the login certificate is: `TUNNEL_ORIGIN_CERT` when set (as
/// cloudflared reads it), else where cloudflared looks in this user's home.
fn certificate_search(ctx: &Context) -> CertificateSearch {
    match &ctx.settings.origin_cert {
        Some(path) => CertificateSearch::at(path),
        None => CertificateSearch::for_this_user(),
    }
}

/// The named tunnel the daemon runs, when one is set up.
pub fn named_tunnel_access(
    ctx: &Context,
    config: CloudflaredConfig,
) -> Result<Option<NamedTunnelAccess>, CliError> {
    let Some(setup) = ctx.home.load_named_tunnel()? else {
        return Ok(None);
    };
    let manage = NamedTunnels::new(config, certificate_search(ctx));
    let tunnel = NamedTunnel::new(
        setup.tunnel_id.clone(),
        setup.tunnel_name.clone(),
        setup.credentials_file.clone(),
    );
    // Hostnames not routed to an app reach the page server, whose answer
    // to a probe tells drop so.
    let provider = manage.provider(tunnel, &setup.hostname)?.main_catches_all();
    Ok(Some(NamedTunnelAccess {
        provider: Arc::new(provider),
        manage: Arc::new(manage),
    }))
}

/// `drop tunnel setup --hostname H [--name N] [--replace-dns]`: creates the
/// tunnel if the account has none of that name, routes `hostname` to it,
/// and records it. Running it again changes nothing that is already right,
/// and mends what is not (credentials gone from this machine), at once.
/// Everything that can be checked is checked before anything is created;
/// a setup that fails after it created the tunnel deletes it again.
pub fn setup(
    ctx: &Context,
    hostname: &str,
    name: Option<&str>,
    replace_dns: bool,
) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let hostname = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    check_hostname(&hostname)?;
    // cloudflared's config and logs go in the home's `logs/`: made and
    // checked as for every command that writes the home.
    home.ensure()?;
    // Named after its hostname unless told: two machines of one account
    // setting up different hostnames never share (and split) one tunnel.
    let name = name.unwrap_or(&hostname).to_owned();
    let before = home.load_named_tunnel()?;
    if let Some((app, _)) = before
        .iter()
        .flat_map(|b| b.app_hostnames.iter())
        .find(|(_, host)| **host == hostname)
    {
        return Err(CliError::NamedTunnelBroken(format!(
            "{hostname} is the hostname of app {app}; choose another hostname for the page server"
        )));
    }
    let manage = NamedTunnels::new(ctx.cloudflared(), certificate_search(ctx));
    // Before any command: a missing login is said plainly, with its fix.
    manage.login_certificate()?;
    // Apps keep their hostnames while the server's hostname stays; on
    // another tunnel, they are routed to it too.
    let app_hostnames = before
        .as_ref()
        .filter(|b| b.hostname == hostname)
        .map(|b| b.app_hostnames.clone())
        .unwrap_or_default();
    let had_credentials = before
        .as_ref()
        .is_some_and(|b| b.credentials_file.is_file());
    let (tunnel, route) = create_and_route(&manage, &name, &hostname, replace_dns, &before)?;
    let same = before.as_ref().is_some_and(|b| {
        b.tunnel_id == tunnel.id()
            && b.hostname == hostname
            && b.credentials_file == tunnel.credentials_file()
    });
    // The same setup, whose credentials had gone: fetched again by create.
    let mended = same && !had_credentials;
    let running = running_server(home.load_server_state()?.as_ref()).is_some();
    let changed = !(same && route == DnsRoute::AlreadyRouted);
    if changed || mended {
        home.save_named_tunnel(&NamedTunnelSetup {
            tunnel_id: tunnel.id().to_owned(),
            tunnel_name: tunnel.name().to_owned(),
            credentials_file: tunnel.credentials_file().to_owned(),
            hostname: hostname.clone(),
            app_hostnames,
            set_up_at: drop_registry::now_rfc3339(),
            extra: Default::default(),
        })?;
    }
    // Mended in place: the running server's tunnel, which had given up,
    // opens again now rather than at the next start.
    let reopened = mended && running && reopen_server_tunnel(ctx);
    if out.is_json() {
        out.document(json!({
            "tunnel_id": tunnel.id(),
            "tunnel_name": tunnel.name(),
            "hostname": hostname,
            "url": format!("https://{hostname}"),
            "dns": match route {
                DnsRoute::AlreadyRouted => "already_routed",
                _ => "routed",
            },
            "changed": changed,
            "mended": mended,
            "restart_needed": changed && running && !reopened,
        }));
    }
    if mended {
        say!(
            out,
            "Named tunnel \"{}\" for https://{hostname}: its credentials were missing on this machine and are fetched again ({}).",
            tunnel.name(),
            tunnel.credentials_file().display()
        );
        match (running, reopened) {
            (true, true) => say!(out, "  (the server's tunnel opens with them now)"),
            (true, false) => say!(
                out,
                "Run 'drop stop' then 'drop start' to serve through it again."
            ),
            (false, _) => {}
        }
        return Ok(());
    }
    if !changed {
        say!(
            out,
            "Named tunnel \"{}\" is already set up for https://{hostname}: nothing changed.",
            tunnel.name()
        );
        return Ok(());
    }
    say!(
        out,
        "Named tunnel \"{}\" ({}) is set up: pages will be at https://{hostname}/p/<id>/, and each app at a hostname of its own beside it.",
        tunnel.name(),
        tunnel.id()
    );
    match route {
        DnsRoute::AlreadyRouted => say!(out, "  (DNS: {hostname} already routes to it)"),
        _ => say!(out, "  (DNS: {hostname} now routes to it)"),
    }
    if running {
        say!(
            out,
            "Run 'drop stop' then 'drop start' to serve through it."
        );
    }
    say!(
        out,
        "  (it is used whenever drop tunnels: behind NAT, or with 'drop start --tunnel')"
    );
    Ok(())
}

/// A hostname Cloudflare can route: DNS labels of letters, digits and
/// inner hyphens, at least two of them, within DNS's lengths.
fn check_hostname(hostname: &str) -> Result<(), CliError> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = hostname.split('.').collect();
    match hostname.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) {
        true => Ok(()),
        false => Err(CliError::BadHostname {
            hostname: hostname.to_owned(),
        }),
    }
}

/// Creates (or finds) the tunnel and routes the hostnames to it. A tunnel
/// this call created is deleted again when routing fails, so a failed
/// setup leaves none behind.
fn create_and_route(
    manage: &NamedTunnels,
    name: &str,
    hostname: &str,
    replace_dns: bool,
    before: &Option<NamedTunnelSetup>,
) -> Result<(NamedTunnel, DnsRoute), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::io("start the async runtime"))?;
    runtime.block_on(async {
        let existed = manage.find(name).await.map_err(setup_error)?.is_some();
        let tunnel = manage.create(name).await.map_err(setup_error)?;
        let routed = async {
            let route = match replace_dns {
                true => manage.replace_dns(&tunnel, hostname).await?,
                false => manage.route_dns(&tunnel, hostname).await?,
            };
            if let Some(before) = before.as_ref().filter(|b| b.tunnel_id != tunnel.id()) {
                let apps = before
                    .app_hostnames
                    .values()
                    .filter(|_| before.hostname == hostname);
                for app_host in apps {
                    manage.replace_dns(&tunnel, app_host).await?;
                }
            }
            Ok::<_, TunnelError>(route)
        };
        match routed.await {
            Ok(route) => Ok((tunnel, route)),
            Err(e) if existed => Err(setup_error(e)),
            Err(e) => {
                let deleted = manage.delete(&tunnel).await.is_ok();
                Err(CliError::SetupUndone {
                    error: Box::new(setup_error(e)),
                    tunnel: tunnel.name().to_owned(),
                    deleted,
                })
            }
        }
    })
}

/// A failure of the Cloudflare side of a setup, as the user reads it.
fn setup_error(e: TunnelError) -> CliError {
    match e {
        TunnelError::DnsRecordExists { ref hostname, .. } => CliError::DnsTaken {
            hostname: hostname.clone(),
            refusal: e,
        },
        e => e.into(),
    }
}

/// Asks the running server to open its tunnel again; whether it did.
fn reopen_server_tunnel(ctx: &Context) -> bool {
    matches!(
        crate::control::send(&ctx.home, &ControlRequest::ReopenTunnel),
        Ok(ControlReply::Reopened { tunneled: true })
    )
}

/// `drop tunnel status [--json]`: which kind of tunnel drop uses, and the
/// named tunnel's details.
pub fn status(ctx: &Context) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let setup = home.load_named_tunnel()?;
    let running = running_server(home.load_server_state()?.as_ref()).is_some();
    let state = home.load_tunnel_state()?.filter(|_| running);
    let now = state.as_ref().map(|t| t.state.as_str().to_owned());
    let Some(setup) = setup else {
        if out.is_json() {
            out.document(json!({ "kind": "quick", "state": now }));
        } else {
            say!(
                out,
                "Tunnel: quick tunnels (a new https://….trycloudflare.com URL at each start); 'drop tunnel setup --hostname <name on your domain>' gives links that stay"
            );
        }
        return Ok(());
    };
    let present = setup.credentials_file.is_file();
    let problem = broken(&setup, state.as_ref()).err().map(|e| e.to_string());
    // The server still serves through what was set up before (another
    // hostname, or quick tunnels): the setup holds from its next start.
    let serving_else = state
        .as_ref()
        .and_then(TunnelState::current_url)
        .filter(|url| url.trim_end_matches('/') != format!("https://{}", setup.hostname))
        .map(str::to_owned);
    if out.is_json() {
        let apps: serde_json::Map<String, serde_json::Value> = setup
            .app_hostnames
            .iter()
            .map(|(id, host)| (id.clone(), json!(format!("https://{host}"))))
            .collect();
        out.document(json!({
            "kind": "named",
            "tunnel_id": setup.tunnel_id,
            "tunnel_name": setup.tunnel_name,
            "url": format!("https://{}", setup.hostname),
            "credentials_file": setup.credentials_file,
            "credentials_present": present,
            "apps": apps,
            "state": now,
            "error": problem,
            "serving": serving_else.clone().or(state.as_ref().and_then(|t| t.current_url().map(str::to_owned))),
            "restart_needed": serving_else.is_some(),
        }));
        return broken(&setup, state.as_ref());
    }
    say!(
        out,
        "Tunnel: named \"{}\" ({}) at https://{}",
        setup.tunnel_name,
        setup.tunnel_id,
        setup.hostname
    );
    let credentials = setup.credentials_file.display();
    match (present, &problem) {
        (true, None) => say!(out, "  credentials: {credentials}"),
        (true, Some(_)) => say!(
            out,
            "  credentials: {credentials} cannot be used (see below)"
        ),
        (false, _) => say!(
            out,
            "  credentials: {credentials} is missing: run 'drop tunnel setup --hostname {}' again to fetch them",
            setup.hostname
        ),
    }
    let pages = home.registry().load()?;
    for (id, host) in &setup.app_hostnames {
        let app = pages.get(id).map_or(id.as_str(), |r| r.label(id));
        say!(out, "  app {app}: https://{host}");
    }
    match (&now, &serving_else) {
        (_, Some(old)) => say!(
            out,
            "  now: the server still serves at {old}, as set up before: run 'drop stop' then 'drop start' to serve through this tunnel"
        ),
        (Some(now), None) => say!(out, "  now: {}", now.replace('_', " ")),
        (None, None) => say!(
            out,
            "  now: not running (the server is stopped, or not tunneled)"
        ),
    }
    broken(&setup, state.as_ref())
}

/// Why the named tunnel cannot serve, when it cannot: its credentials are
/// gone or unreadable (as cloudflared would read them), or the daemon gave
/// it up (deleted from the dashboard…).
fn broken(setup: &NamedTunnelSetup, state: Option<&TunnelState>) -> Result<(), CliError> {
    let tunnel = NamedTunnel::new(
        setup.tunnel_id.clone(),
        setup.tunnel_name.clone(),
        setup.credentials_file.clone(),
    );
    if let Err(problem) = tunnel.check_credentials() {
        return Err(CliError::NamedTunnelBroken(format!(
            "{problem}; run 'drop tunnel setup --hostname {}' again to fetch them",
            setup.hostname
        )));
    }
    match state {
        Some(t) if t.state == TunnelPhase::Failed => Err(CliError::NamedTunnelBroken(
            t.error
                .clone()
                .unwrap_or_else(|| "the tunnel failed".into()),
        )),
        _ => Ok(()),
    }
}

/// `drop tunnel reset`: back to quick tunnels from the next start. The
/// tunnel stays in the Cloudflare account; the note says how to delete it.
pub fn reset(ctx: &Context) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let setup = home.load_named_tunnel()?;
    let cleared = home.clear_named_tunnel()?;
    // Only a server that tunnels serves through the named tunnel now.
    let state = home.load_server_state()?;
    let tunneled = running_server(state.as_ref()).is_some_and(|s| s.tunnel);
    if out.is_json() {
        out.document(json!({
            "was_set_up": cleared,
            "tunnel_name": setup.as_ref().map(|s| s.tunnel_name.clone()),
            "restart_needed": cleared && tunneled,
        }));
    }
    if !cleared {
        say!(out, "No named tunnel is set up: drop uses quick tunnels.");
        return Ok(());
    }
    say!(out, "Back to quick tunnels from the next 'drop start'.");
    if tunneled {
        say!(out, "Run 'drop stop' then 'drop start' to switch now.");
    }
    if let Some(setup) = setup {
        say!(
            out,
            "  (the tunnel \"{}\" stays in your Cloudflare account: `cloudflared tunnel delete {}` deletes it, and its DNS records are in the dashboard)",
            setup.tunnel_name,
            setup.tunnel_name
        );
    }
    Ok(())
}
