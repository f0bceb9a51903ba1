//! Exposes a local port through a cloudflared quick tunnel and prints each
//! URL as the watchdog reports it, until Ctrl-C.
//!
//! ```sh
//! cargo run -p drop-tunnel --example expose -- 8080 [path/to/cloudflared]
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use drop_tunnel::{Cloudflared, CloudflaredConfig, TunnelEvent, Watchdog, WatchdogConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(port) = args.next().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: expose PORT [CLOUDFLARED]");
        return ExitCode::from(2);
    };
    let mut config = CloudflaredConfig::new(std::env::temp_dir().join("drop-tunnel-expose"));
    config.binary = args.next().map(PathBuf::from);
    config.not_found_hint = Some("install cloudflared or give its path".into());
    // If this program is killed, its tunnel goes with it (Linux).
    config.die_with_parent = true;

    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (watchdog, mut events) =
        Watchdog::spawn(Cloudflared::new(config), local, WatchdogConfig::default());
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

fn print_event(event: &TunnelEvent) {
    match event {
        TunnelEvent::Opening { attempt } => println!("opening (attempt {attempt})..."),
        TunnelEvent::Up {
            url, pid, protocol, ..
        } => println!("up: {url} (pid {pid:?}, {protocol:?})"),
        TunnelEvent::Reconnecting { url } => println!("reconnecting; {url} stays"),
        TunnelEvent::Down { reason, retry_in } => {
            println!("down: {reason}; retrying in {retry_in:.1?}")
        }
        TunnelEvent::GaveUp { reason } => println!("gave up: {reason}"),
        // Events a newer drop-tunnel may add.
        _ => {}
    }
}
