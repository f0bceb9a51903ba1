//! The page server's life: `start` launches `drop serve` detached and waits
//! until it answers, `serve` is the daemon, `stop` ends it after checking
//! that the recorded pid is still the server.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drop_core::process;
use drop_core::{ServerConfig, SessionKey, Site};
use drop_registry::{Home, ServerState};

use crate::control::ControlServer;
use crate::error::CliError;
use crate::systemd;
use crate::urls::{DEFAULT_PORT, server_base};

/// How long `start` waits for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The address bound when `DROP_BIND` is not set: every interface, so the
/// human on another machine can reach the page.
pub const DEFAULT_BIND: &str = "0.0.0.0";

/// The saved state, if its pid is still the server that wrote it.
pub fn running_server(state: Option<&ServerState>) -> Option<&ServerState> {
    let state = state?;
    match (state.pid, state.start_time) {
        (Some(pid), Some(start)) if process::is_same_process(pid, start) => Some(state),
        _ => None,
    }
}

/// `drop start [--port] [--host]`.
pub fn start(home: &Home, port: Option<u16>, host: Option<String>) -> Result<(), CliError> {
    home.ensure()?;
    let saved = home.load_server_state()?;
    if let Some(state) = running_server(saved.as_ref()) {
        println!("Server already running: {}", server_base(Some(state)));
        return Ok(());
    }
    let port = port
        .or(saved.as_ref().map(|s| s.port))
        .unwrap_or(DEFAULT_PORT);
    let host = host.or_else(|| saved.as_ref().and_then(|s| s.host.clone()));
    let bind = std::env::var("DROP_BIND").unwrap_or_else(|_| DEFAULT_BIND.to_owned());
    let log_path = home.logs_dir().join("server.log");
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(CliError::io(format!(
            "open the server log `{}`",
            log_path.display()
        )))?;
    let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
    let exe = std::env::current_exe().map_err(CliError::io("find the drop executable"))?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .args(["--port", &port.to_string(), "--bind", &bind])
        .arg("--home")
        .arg(home.root())
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(CliError::io("share the server log"))?,
        )
        .stderr(
            log.try_clone()
                .map_err(CliError::io("share the server log"))?,
        );
    if let Some(host) = &host {
        command.args(["--host", host]);
    }
    let supervisor = systemd::detect(home);
    if let Ok(unit) = &supervisor {
        let state = unit.start(home, &command, &log_path, log_start)?;
        println!("Server started: {}", server_base(Some(&state)));
        return Ok(());
    }
    detach(&mut command);
    let mut child = command.spawn().map_err(CliError::io("launch the server"))?;
    let _ = writeln!(log, "drop: server launched as pid {}", child.id());
    let state = wait_until_serving(home, &mut child, &log_path, log_start)?;
    println!("Server started: {}", server_base(Some(&state)));
    if let Err(why) = supervisor {
        println!("  ({why}: auto-restart is off)");
    }
    Ok(())
}

/// A new session: the server outlives the terminal and the command that started it.
#[allow(unsafe_code)]
fn detach(command: &mut Command) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Waits until the child has written its state and answers HTTP, or reports
/// why it exited.
fn wait_until_serving(
    home: &Home,
    child: &mut std::process::Child,
    log_path: &Path,
    log_start: u64,
) -> Result<ServerState, CliError> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return Err(CliError::ServerFailed(launch_error(log_path, log_start)));
        }
        let state = home.load_server_state()?;
        if let Some(state) = state.filter(|s| s.pid == Some(child.id()))
            && answers_http(state.port)
        {
            return Ok(state);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(CliError::ServerTimeout {
        secs: START_TIMEOUT.as_secs(),
        log: log_path.to_owned(),
    })
}

/// The server's own `Error:` line from its log, without the prefix `main` adds again.
pub fn launch_error(log_path: &Path, log_start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut log) = File::open(log_path) {
        let _ = log.seek(SeekFrom::Start(log_start));
        let _ = log.read_to_string(&mut text);
    }
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("Error: "))
        .map_or_else(
            || {
                format!(
                    "the server exited at once; see its log `{}`",
                    log_path.display()
                )
            },
            str::to_owned,
        )
}

pub fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = b"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

/// `drop stop`.
pub fn stop(home: &Home) -> Result<(), CliError> {
    if let Some(unit) = systemd::active_unit(home) {
        unit.stop()?;
        println!("Server stopped.");
        return Ok(());
    }
    let saved = home.load_server_state()?;
    let Some(state) = running_server(saved.as_ref()).cloned() else {
        println!("Server is not running.");
        return Ok(());
    };
    let (pid, start) = (
        state.pid.unwrap_or_default(),
        state.start_time.unwrap_or_default(),
    );
    process::terminate(pid, start, STOP_GRACE);
    clear_pid(home, pid)?;
    println!("Server stopped.");
    Ok(())
}

/// Forgets the server's pid, keeping its address for URLs.
fn clear_pid(home: &Home, pid: u32) -> Result<(), CliError> {
    if let Some(mut state) = home.load_server_state()?
        && state.pid == Some(pid)
    {
        state.pid = None;
        state.start_time = None;
        home.save_server_state(&state)?;
    }
    Ok(())
}

/// `drop serve`: the daemon. Holds `server.lock` for its whole life, so a
/// second server for the same home cannot start.
pub fn serve(home: &Home, port: u16, host: Option<String>, bind: String) -> Result<(), CliError> {
    home.ensure()?;
    process::raise_fd_limit();
    let lock =
        File::create(home.server_lock_path()).map_err(CliError::io("create the server lock"))?;
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
    let state = ServerState {
        pid: Some(pid),
        start_time: process::start_time(pid),
        port: bound.port(),
        host,
        bind,
        started_at: drop_registry::now_rfc3339(),
        extra: Default::default(),
    };
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
        let control = tokio::spawn(ControlServer::bind(home, site.clone())?.run());
        drop_core::serve(listener, site, server_config(), shutdown_signal()).await;
        control.abort();
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
    config
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
