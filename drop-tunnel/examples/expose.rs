//! Exposes a local port through a cloudflared quick tunnel and prints each
//! URL as the watchdog reports it, until Ctrl-C. With `--named HOSTNAME`,
//! through a named tunnel at that hostname instead (after a one-time
//! `cloudflared tunnel login`): the tunnel is created (or found again) and
//! the hostname routed to it first.
//!
//! ```sh
//! cargo run -p drop-tunnel --example expose -- 8080 [path/to/cloudflared]
//! cargo run -p drop-tunnel --example expose -- 8080 --named app.example.com
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use drop_tunnel::{
    CertificateSearch, Cloudflared, CloudflaredConfig, DnsRoute, NamedTunnels, TunnelError,
    TunnelEvent, TunnelEvents, Watchdog, WatchdogConfig,
};

const USAGE: &str = "usage: expose PORT [CLOUDFLARED] [--named HOSTNAME]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let named = match args.iter().position(|a| a == "--named") {
        Some(at) if at + 1 < args.len() => Some(args.drain(at..=at + 1).nth(1).unwrap()),
        Some(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let mut args = args.into_iter();
    let Some(port) = args.next().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut config = CloudflaredConfig::new(std::env::temp_dir().join("drop-tunnel-expose"));
    config.binary = args.next().map(PathBuf::from);
    config.not_found_hint = Some("install cloudflared or give its path".into());
    // If this program is killed, its tunnel goes with it (Linux).
    config.die_with_parent = true;

    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let spawned = match named {
        None => Ok(Watchdog::spawn(
            Cloudflared::new(config),
            local,
            WatchdogConfig::default(),
        )),
        Some(hostname) => named_watchdog(config, &hostname, local).await,
    };
    let (watchdog, mut events) = match spawned {
        Ok(spawned) => spawned,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("exposing {local}; Ctrl-C to stop");
    let code = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => print_event(&event),
                None => break ExitCode::FAILURE,
            },
            _ = tokio::signal::ctrl_c() => break ExitCode::SUCCESS,
        }
    };
    watchdog.stop().await;
    code
}

/// A watchdog running a named tunnel for `hostname`, set up first: the
/// tunnel `expose-<hostname>` created or found, the hostname routed to it.
async fn named_watchdog(
    config: CloudflaredConfig,
    hostname: &str,
    local: SocketAddr,
) -> Result<(Watchdog, TunnelEvents), TunnelError> {
    let tunnels = NamedTunnels::new(config, CertificateSearch::for_this_user());
    let name = format!("expose-{}", hostname.replace(['.', '*'], "-"));
    let tunnel = tunnels.create(&name).await?;
    println!("tunnel {} ({})", tunnel.name(), tunnel.id());
    let routed = tunnels.route_dns(&tunnel, hostname).await?;
    match routed {
        DnsRoute::Added => println!("{hostname}: DNS record added"),
        _ => println!("{hostname}: already routed to this tunnel"),
    }
    let provider = tunnels.provider(tunnel, hostname)?;
    Ok(Watchdog::spawn(provider, local, WatchdogConfig::default()))
}

fn print_event(event: &TunnelEvent) {
    match event {
        TunnelEvent::Opening { attempt } => println!("opening (attempt {attempt})..."),
        TunnelEvent::Up {
            url, pid, protocol, ..
        } => {
            let pid = pid.map_or("no process".into(), |pid| format!("pid {pid}"));
            let protocol = protocol.map_or("protocol unknown".into(), |p| p.to_string());
            println!("up: {url} ({pid}, {protocol})")
        }
        TunnelEvent::Reconnecting { url } => println!("reconnecting; {url} stays"),
        TunnelEvent::Down { reason, retry_in } => {
            println!(
                "down: {reason}; retrying in {:.1} s",
                retry_in.as_secs_f64()
            )
        }
        TunnelEvent::GaveUp { reason } => println!("gave up: {reason}"),
        // Events a newer drop-tunnel may add.
        _ => {}
    }
}
