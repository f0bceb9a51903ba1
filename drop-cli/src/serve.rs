//! `drop serve`: the daemon. It serves pages, supervises apps and keeps
//! every tunnel alive; it holds `server.lock` for its whole life, so one
//! home has at most one daemon.

use std::net::ToSocketAddrs;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Duration;

use drop_core::process;
use drop_core::{ServerConfig, SessionKey, Site};
use drop_registry::{Home, ServerState};

use crate::control::ControlServer;
use crate::daemon::clear_pid;
use crate::error::CliError;
use crate::supervisor::{AppLimits, Supervisor};
use crate::tunnels::Tunnels;

/// `drop serve`: the daemon. Holds `server.lock` for its whole life, so a
/// second server for the same home cannot start.
pub fn serve(home: &Home, port: u16, host: Option<String>, bind: String) -> Result<(), CliError> {
    home.ensure()?;
    process::raise_fd_limit();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(home.server_lock_path())
        .map_err(CliError::io("create the server lock"))?;
    if fs2::FileExt::try_lock_exclusive(&lock).is_err() {
        return Err(CliError::AlreadyServing {
            home: home.root().to_owned(),
        });
    }
    let addr = (bind.as_str(), port)
        .to_socket_addrs()
        .map_err(CliError::io(format!("resolve the bind address `{bind}`")))?
        .next()
        .ok_or_else(|| {
            CliError::ServerFailed(format!("bind address `{bind}` resolves to nothing"))
        })?;
    let listener = drop_core::bind_listener(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => CliError::PortInUse { port },
        _ => CliError::io(format!("listen on {addr}"))(e),
    })?;
    let bound = listener
        .local_addr()
        .map_err(CliError::io("read the bound address"))?;
    let pid = std::process::id();
    // `start` recorded the tunnel decision there; a daemon restarted by
    // systemd finds the same decision.
    let mut state = home
        .load_server_state()?
        .unwrap_or_else(|| ServerState::new(port));
    state.pid = Some(pid);
    state.start_time = process::start_time(pid);
    state.port = bound.port();
    state.host = host.or(state.host);
    state.bind = bind;
    state.started_at = drop_registry::now_rfc3339();
    home.save_server_state(&state)?;
    eprintln!("drop: serving {} on {bound}", home.root().display());
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = env_number("DROP_WORKERS").filter(|&n| n > 0) {
        runtime.worker_threads(workers as usize);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(CliError::io("start the async runtime"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(CliError::io("register the listener"))?;
        let key_path = home.session_key_path();
        let key = SessionKey::load_or_create(&key_path).map_err(CliError::io(format!(
            "read or create the session key `{}`",
            key_path.display()
        )))?;
        let site = Arc::new(Site::new(home.registry(), key));
        let tunnels = Tunnels::new(home.clone());
        tokio::task::block_in_place(|| tunnels.reap_orphans());
        if state.tunnel {
            tunnels.open_server(state.port).await;
        }
        let supervisor = Supervisor::new(home.clone(), app_limits(), tunnels.clone(), state.tunnel);
        supervisor.adopt();
        let control = tokio::spawn(ControlServer::bind(home, site.clone(), supervisor)?.run());
        drop_core::serve(listener, site, server_config(), shutdown_signal()).await;
        control.abort();
        tunnels.close_all().await;
        let _ = std::fs::remove_file(home.control_socket_path());
        Ok::<_, CliError>(())
    })?;
    clear_pid(home, pid)?;
    eprintln!("drop: server stopped");
    drop(lock);
    Ok(())
}

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    if let Some(ms) = env_number("DROP_HEADER_TIMEOUT_MS") {
        config.header_read_timeout = Duration::from_millis(ms);
    }
    if let Some(max) = env_number("DROP_MAX_CONNECTIONS").filter(|&n| n > 0) {
        config.max_connections = max as usize;
    }
    if let Some(ms) = env_number("DROP_WRITE_STALL_TIMEOUT_MS").filter(|&n| n > 0) {
        config.write_stall_timeout = Duration::from_millis(ms);
    }
    config
}

fn app_limits() -> AppLimits {
    let ms = |name, default| Duration::from_millis(env_number(name).unwrap_or(default));
    AppLimits {
        start_timeout: ms("DROP_APP_START_TIMEOUT_MS", 30_000),
        stop_grace: ms("DROP_STOP_GRACE_MS", 10_000),
    }
}

/// A numeric setting from the environment; unset or unreadable means the default.
fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
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
