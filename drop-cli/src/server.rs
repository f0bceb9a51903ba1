//! The page server's life, from the command line: `start` decides whether
//! to tunnel, launches `drop serve` detached (or through drop.service) and
//! waits until it answers (and its tunnel has a first outcome); `stop` ends
//! it after checking that the recorded pid is still the server.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drop_core::daemon::{DEFAULT_PORT, forget_pid};
use drop_core::supervise::{FIRST_OUTCOME_TIMEOUT, ProcessId, end_leftovers};
use drop_registry::{Home, ServerState, TunnelPhase, TunnelReason, TunnelState};

use crate::error::CliError;
use crate::nat;
use crate::running::{answers_http, launch_error, running_server};
use crate::settings::Settings;
use crate::systemd;
use crate::urls::Urls;

/// How long `start` waits for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `stop` gives the server after SIGTERM before SIGKILL: its own
/// shutdown closes every tunnel, each with a grace period of its own.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// What `drop start` was asked for.
#[derive(Debug, Default)]
pub struct StartOptions {
    pub port: Option<u16>,
    pub host: Option<String>,
    /// `--tunnel` (`Some(true)`) or `--no-tunnel` (`Some(false)`).
    pub tunnel: Option<bool>,
}

/// `drop start [--port] [--host] [--tunnel|--no-tunnel]`.
pub fn start(home: &Home, options: StartOptions) -> Result<(), CliError> {
    home.ensure()?;
    let _one_start = StartLock::take(home)?;
    let saved = home.load_server_state()?;
    if running_server(saved.as_ref()).is_some() {
        println!("Server already running: {}", Urls::load(home)?.base());
        if options.port.is_some() || options.host.is_some() || options.tunnel.is_some() {
            println!("  (its settings are kept: run 'drop stop' first to change them)");
        }
        return Ok(());
    }
    launch_and_report(home, saved, options)
}

/// The running server's state, starting the server first (and saying so)
/// when it is not running, for commands that need the daemon such as
/// `start <app>`. The flag tells whether it was started now.
pub fn ensure_running(home: &Home) -> Result<(ServerState, bool), CliError> {
    home.ensure()?;
    let _one_start = StartLock::take(home)?;
    let saved = home.load_server_state()?;
    if let Some(state) = running_server(saved.as_ref()) {
        return Ok((state.clone(), false));
    }
    launch_and_report(home, saved, StartOptions::default())?;
    let state = home
        .load_server_state()?
        .ok_or_else(|| CliError::ServerFailed("the server left no state".into()))?;
    Ok((state, true))
}

fn launch_and_report(
    home: &Home,
    saved: Option<ServerState>,
    options: StartOptions,
) -> Result<(), CliError> {
    let launched = prepare_and_launch(home, saved, options)?;
    report_start(home, &launched.state)?;
    if let Some(note) = launched.note {
        println!("{note}");
    }
    Ok(())
}

/// Serialises `drop start`s of one home: a second one waits, then finds the
/// server the first one started.
struct StartLock(File);

impl StartLock {
    fn take(home: &Home) -> Result<Self, CliError> {
        let path = home.root().join("start.lock");
        let file =
            File::create(&path).map_err(CliError::io(format!("create `{}`", path.display())))?;
        // Held at most for one start: the server's own start timeout and
        // its tunnel's first outcome.
        fs2::FileExt::lock_exclusive(&file)
            .map_err(CliError::io(format!("lock `{}`", path.display())))?;
        Ok(StartLock(file))
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.0);
    }
}

/// Decides whether to tunnel, records the decision for the daemon (and for
/// later restarts), and launches it.
fn prepare_and_launch(
    home: &Home,
    saved: Option<ServerState>,
    options: StartOptions,
) -> Result<Launched, CliError> {
    let mut state = saved.unwrap_or_else(|| ServerState::new(DEFAULT_PORT));
    let decision = nat::decide(options.tunnel)?;
    if let Some(note) = &decision.note {
        println!("{note}");
    }
    state.tunnel = decision.tunnel;
    state.tunnel_choice = Some(decision.choice.clone());
    state.tunnel_reason = Some(decision.reason.clone());
    if let Some(port) = options.port {
        state.port = port;
    }
    if options.host.is_some() {
        state.host = options.host;
    } else if let Some(ip) = decision.public_ip.filter(|_| state.host.is_none()) {
        state.host = Some(ip.to_string());
    }
    state.pid = None;
    state.start_time = None;
    let before = home.load_server_state()?;
    home.save_server_state(&state)?;
    launch(home, &state).inspect_err(|_| {
        // A start that failed changes nothing: not even the port of later URLs.
        let _ = match &before {
            Some(before) => home.save_server_state(before),
            None => std::fs::remove_file(home.server_state_path()).or(Ok(())),
        };
    })
}

/// Prints how the server started, waiting for its tunnel's first outcome.
fn report_start(home: &Home, state: &ServerState) -> Result<(), CliError> {
    let urls = Urls::new(Some(state), None);
    if !state.tunnel {
        let local = state.tunnel_reason != Some(TunnelReason::PublicIp);
        let suffix = if local { " (local)" } else { "" };
        println!("Server started: {}{suffix}", urls.local_base());
        return Ok(());
    }
    let tunnel = wait_for_tunnel(home)?;
    match tunnel.filter(TunnelState::is_up) {
        Some(up) => {
            println!("Server started: {}", up.url);
            println!("  (tunneled via cloudflared)");
        }
        None => {
            let why = tunnel_failure(home)?;
            println!("{why}");
            println!(
                "Server started: {} (local, not tunneled)",
                urls.local_base()
            );
        }
    }
    Ok(())
}

/// Waits until the daemon's first attempt at the server's tunnel is decided
/// (or the server is gone: a `drop stop` may have come in between).
fn wait_for_tunnel(home: &Home) -> Result<Option<TunnelState>, CliError> {
    let deadline = Instant::now() + FIRST_OUTCOME_TIMEOUT;
    loop {
        let tunnel = home.load_tunnel_state()?;
        let decided = tunnel
            .as_ref()
            .is_some_and(|t| t.state != TunnelPhase::Starting);
        let state = home.load_server_state()?;
        if decided || running_server(state.as_ref()).is_none() || Instant::now() >= deadline {
            return Ok(tunnel);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Why the server's tunnel is not up, as a line for the user.
fn tunnel_failure(home: &Home) -> Result<String, CliError> {
    let tunnel = home.load_tunnel_state()?.unwrap_or_default();
    Ok(not_tunneled_line(&tunnel.state, tunnel.error.as_deref()))
}

/// The line for a tunnel that is not up: a failure retrying cannot mend
/// (cloudflared missing) as it is, anything else with what drop does next.
pub fn not_tunneled_line(phase: &TunnelPhase, error: Option<&str>) -> String {
    let error = error.unwrap_or("the tunnel gave no answer in time");
    match phase {
        TunnelPhase::Failed => error.to_owned(),
        TunnelPhase::RateLimited => format!(
            "Tunnel not up yet: {error}. drop keeps trying with backoff; 'drop status' shows the URL once it is up."
        ),
        _ => format!(
            "Tunnel not up yet: {error}. drop keeps trying; 'drop status' shows the URL once it is up."
        ),
    }
}

/// Launches `drop serve` detached and waits until it answers. The daemon
/// reads the tunnel decision from `server.json`.
fn launch(home: &Home, state: &ServerState) -> Result<Launched, CliError> {
    let (port, host) = (state.port, state.host.clone());
    let bind = Settings::from_env()?.bind;
    let log_path = home.logs_dir().join("server.log");
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(CliError::io(format!(
            "open the server log `{}`",
            log_path.display()
        )))?;
    // Owner-only whatever the umask or an older drop made of it.
    let _ = log.set_permissions(std::fs::Permissions::from_mode(0o600));
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
        return Ok(Launched { state, note: None });
    }
    detach(&mut command);
    let mut child = command.spawn().map_err(CliError::io("launch the server"))?;
    let _ = writeln!(log, "drop: server launched as pid {}", child.id());
    let state = wait_until_serving(home, &mut child, &log_path, log_start)?;
    let note = supervisor
        .err()
        .map(|why| format!("  ({why}: auto-restart is off)"));
    Ok(Launched { state, note })
}

/// A server just launched, and what to say about who restarts it.
struct Launched {
    state: ServerState,
    /// Without a systemd user unit nothing restarts the server if it dies.
    note: Option<String>,
}

/// A new session: the server outlives the terminal and the command that
/// started it. std offers `process_group` safely but no `setsid`, and the
/// daemon cannot call it itself once it runs: a group leader may not.
#[allow(unsafe_code)]
fn detach(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec; it only
    // calls setsid(2), which is async-signal-safe, allocates nothing and
    // touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid()?;
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

/// `drop stop`.
pub fn stop(home: &Home, tunnel_marker: &Path) -> Result<(), CliError> {
    if let Some(unit) = systemd::active_unit(home) {
        unit.stop()?;
        println!("Server stopped.");
        return Ok(());
    }
    let saved = home.load_server_state()?;
    let server = running_server(saved.as_ref())
        .and_then(|state| ProcessId::recorded(state.pid, state.start_time));
    let Some(server) = server else {
        println!("Server is not running.");
        report_leftovers(end_leftovers(home, tunnel_marker));
        return Ok(());
    };
    server.terminate_group(STOP_GRACE);
    forget_pid(home, server.pid)?;
    // A server killed after the grace period could not close its tunnels.
    report_leftovers(end_leftovers(home, tunnel_marker));
    println!("Server stopped.");
    Ok(())
}

fn report_leftovers(count: usize) {
    if count > 0 {
        println!("Ended {count} tunnel process(es) left by a server that was killed.");
    }
}
