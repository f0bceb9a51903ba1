//! `drop serve`: runs the daemon of one drop home in the foreground (what
//! `drop start` launches, and what drop.service runs). It takes the server
//! lock, binds the port, and hands the engine's daemon the outside world
//! that `main` built.

use std::net::ToSocketAddrs;
use std::sync::Arc;

use drop_core::daemon::{Daemon, DaemonConfig, ServerLock};
use drop_core::supervise::{AppRunner, LinkCheck, LinkChecker, TunnelSource};

use crate::context::Context;
use crate::error::CliError;

/// What the daemon reaches the outside world through.
pub struct DaemonParts {
    /// Where tunnels come from: quick tunnels, or the user's named tunnel.
    pub tunnels: TunnelSource,
    /// Runs apps.
    pub runner: Arc<dyn AppRunner>,
    /// The network this machine is on (see [`DaemonConfig::network`]).
    pub network: Option<String>,
    /// Checks tunnel URLs from outside.
    pub links: Arc<dyn LinkChecker>,
}

/// `drop serve --port N [--host H] [--bind ADDR]`.
pub fn serve(
    ctx: &Context,
    port: u16,
    host: Option<String>,
    bind: String,
    parts: DaemonParts,
) -> Result<(), CliError> {
    let (home, settings) = (&ctx.home, &ctx.settings);
    start_log();
    raise_fd_limit();
    // Before binding: a second daemon is told the home is taken, not that
    // the port is.
    let lock = ServerLock::take(home)?;
    let addr = (bind.as_str(), port)
        .to_socket_addrs()
        .map_err(CliError::io(format!("resolve the bind address `{bind}`")))?
        .next()
        .ok_or_else(|| {
            CliError::ServerFailed(format!("bind address `{bind}` resolves to nothing"))
        })?;
    let listener = drop_core::http::bind_listener(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => CliError::PortInUse { port },
        _ => CliError::io(format!("listen on {addr}"))(e),
    })?;
    let config = DaemonConfig {
        home: home.clone(),
        host,
        bind,
        server: settings.server.clone(),
        apps: settings.apps.clone(),
        tunnel_config_dir: ctx.tunnel_config_dir(),
        network: parts.network,
    };
    let links = LinkCheck {
        checker: parts.links,
        probes: Arc::default(),
        bound: settings.verify_bound,
        dns_settle: settings.dns_settle,
    };
    let daemon = Daemon::new(config, parts.tunnels, parts.runner, links);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = settings.workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(CliError::io("start the async runtime"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(CliError::io("register the listener"))?;
        daemon.run(lock, listener, shutdown_signal()).await?;
        Ok(())
    })
}

/// The daemon's log: one line an event on standard error (which `drop
/// start` points at `logs/server.log`), its time in UTC and its level
/// first. A line that cannot be written is lost, never the daemon.
fn start_log() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// Raises this process's open-file limit to its hard limit (at most 65,536),
/// so the server's connection cap, not `EMFILE`, is what limits it.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let target = limit.maximum.map_or(65_536, |max| max.min(65_536));
    if limit.current.is_some_and(|current| current < target) {
        limit.current = Some(target);
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
