//! The page server's life, from the command line: `start` decides whether
//! to tunnel, launches `drop serve` detached (or through drop.service) and
//! waits until it answers (and its tunnel has a first outcome); `stop` ends
//! it after checking that the recorded pid is still the server.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drop_core::daemon::forget_pid;
use drop_core::supervise::{
    AppStatus, FIRST_OUTCOME_TIMEOUT, LegacyServer, ProcessId, end_leftovers,
};
use drop_registry::{
    FileUse, Home, ServerState, TunnelChoice, TunnelPhase, TunnelReason, TunnelState,
    open_home_file,
};

use crate::context::Context;
use crate::error::CliError;
use crate::nat;
use crate::output::{Output, label, note, say};
use crate::running::{ServerCondition, answers_http, launch_error, running_server};
use crate::systemd;
use crate::urls::{Reach, Urls, legacy_state};

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

/// `drop start [--port] [--host] [--tunnel|--no-tunnel]`; under `--json`,
/// then the server as `status --json` shows it.
pub fn start(ctx: &Context, options: StartOptions) -> Result<(), CliError> {
    let already_running = start_server(ctx, options)?;
    if ctx.out.is_json() {
        let home = &ctx.home;
        let seen = crate::server_view::ServerSeen::load(home)?;
        let mut doc = crate::server_view::server_document(home, &seen)?;
        doc["was_running"] = serde_json::Value::Bool(already_running);
        ctx.out.document(serde_json::json!({ "server": doc }));
    }
    Ok(())
}

/// Starts the server; whether it was already running.
fn start_server(ctx: &Context, options: StartOptions) -> Result<bool, CliError> {
    let home = &ctx.home;
    home.ensure()?;
    let _one_start = StartLock::take(home)?;
    let saved = home.load_server_state()?;
    if running_server(saved.as_ref()).is_none() {
        before_launch(home)?;
    }
    if running_server(saved.as_ref()).is_some() {
        say!(
            ctx.out,
            "Server already running: {}",
            Urls::load(home)?.base()
        );
        if options.port.is_some() || options.host.is_some() || options.tunnel.is_some() {
            say!(
                ctx.out,
                "  (its settings are kept: run 'drop stop' first to change them)"
            );
        }
        return Ok(true);
    }
    launch_and_report(ctx, saved, options)?;
    Ok(false)
}

/// The running server's state, starting the server first (and saying so)
/// when it is not running, for commands that need the daemon such as
/// `start <app>`. The flag tells whether it was started now.
pub fn ensure_running(ctx: &Context) -> Result<(ServerState, bool), CliError> {
    let home = &ctx.home;
    home.ensure()?;
    let _one_start = StartLock::take(home)?;
    let saved = home.load_server_state()?;
    if let Some(state) = running_server(saved.as_ref()) {
        return Ok((state.clone(), false));
    }
    before_launch(home)?;
    // The last `--tunnel`/`--no-tunnel` holds; after a plain start, detect again.
    let tunnel = match saved.as_ref().and_then(|s| s.tunnel_choice.as_ref()) {
        Some(TunnelChoice::On) => Some(true),
        Some(TunnelChoice::Off) => Some(false),
        _ => None,
    };
    let options = StartOptions {
        tunnel,
        ..StartOptions::default()
    };
    launch_and_report(ctx, saved, options)?;
    let state = home
        .load_server_state()?
        .ok_or_else(|| CliError::ServerFailed("the server left no state".into()))?;
    Ok((state, true))
}

/// What must hold before a server is launched: a registry that parses (a
/// server of a broken one would serve nothing), and no Python drop server
/// on the home.
fn before_launch(home: &Home) -> Result<(), CliError> {
    home.registry().load()?;
    match LegacyServer::find(home) {
        Some(old) => Err(CliError::LegacyServer {
            pid: old.id.pid,
            port: old.port,
        }),
        None => Ok(()),
    }
}

fn launch_and_report(
    ctx: &Context,
    saved: Option<ServerState>,
    options: StartOptions,
) -> Result<(), CliError> {
    let home = &ctx.home;
    let any_port = options.port == Some(0);
    let before = previous_base(home, saved.as_ref());
    let launched = prepare_and_launch(ctx, saved, options)?;
    report_start(ctx, &launched.state)?;
    if let Some(note) = launched.note {
        note!(ctx.out, "{note}");
    }
    let after = Urls::new(Some(&launched.state), None)
        .local_base()
        .to_owned();
    let pages = home.registry().load()?;
    if let Some(before) = before.filter(|b| *b != after && !any_port && !pages.is_empty()) {
        note!(
            ctx.out,
            "Note: page URLs changed from {before} to {after}; links handed out before no longer work (start with --host and --port to keep the old ones)."
        );
    }
    Ok(())
}

/// Where pages were before this start: the address in `server.json`, or,
/// in a home the Python drop used, its `host` and `port` files.
fn previous_base(home: &Home, saved: Option<&ServerState>) -> Option<String> {
    if let Some(state) = saved {
        return Some(Urls::new(Some(state), None).local_base().to_owned());
    }
    let legacy = home.legacy_files();
    legacy.any().then(|| {
        Urls::new(Some(&legacy_state(home)), None)
            .local_base()
            .to_owned()
    })
}

/// Serialises `drop start`s of one home: a second one waits, then finds the
/// server the first one started.
struct StartLock(File);

impl StartLock {
    fn take(home: &Home) -> Result<Self, CliError> {
        let path = home.root().join("start.lock");
        let file = open_home_file(&path, FileUse::Lock)?;
        // Held at most for one start: the server's own start timeout and
        // its tunnel's first outcome.
        file.lock()
            .map_err(CliError::io(format!("lock `{}`", path.display())))?;
        Ok(StartLock(file))
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Decides whether to tunnel, records the decision for the daemon (and for
/// later restarts), and launches it.
fn prepare_and_launch(
    ctx: &Context,
    saved: Option<ServerState>,
    options: StartOptions,
) -> Result<Launched, CliError> {
    let home = &ctx.home;
    let mut state = saved.unwrap_or_else(|| legacy_state(home));
    let decision = nat::decide(options.tunnel, &ctx.settings.nat)?;
    if let Some(note) = &decision.note {
        note!(ctx.out, "{note}");
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
    launch(ctx, &state).inspect_err(|_| {
        // A start that failed changes nothing: not even the port of later URLs.
        let _ = match &before {
            Some(before) => home.save_server_state(before),
            None => std::fs::remove_file(home.server_state_path()).or(Ok(())),
        };
    })
}

/// Prints how the server started, waiting for its tunnel's first outcome.
fn report_start(ctx: &Context, state: &ServerState) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let urls = Urls::new(Some(state), None);
    if !state.tunnel {
        let local = state.tunnel_reason != Some(TunnelReason::PublicIp);
        let suffix = if local { " (local)" } else { "" };
        say!(out, "Server started: {}{suffix}", urls.local_base());
        let reach = loopback_bind_note(state, &urls).or_else(|| urls.reach_note(urls.reach()));
        if let Some(note) = reach {
            note!(out, "{note}");
        }
        return Ok(());
    }
    let tunnel = wait_for_tunnel(ctx)?;
    if running_server(home.load_server_state()?.as_ref()).is_none() {
        return Err(CliError::ServerFailed(
            "the server stopped while its tunnel was opening (a 'drop stop', or see its log, logs/server.log in the drop home)".into(),
        ));
    }
    match tunnel.filter(|t| t.current_url().is_some()) {
        Some(up) => {
            say!(out, "Server started: {}", up.url);
            say!(out, "  (tunneled via cloudflared)");
            if !up.is_up() {
                note!(
                    out,
                    "{}",
                    unconfirmed_line(up.error.as_deref().unwrap_or_default())
                );
            }
        }
        None => {
            let why = tunnel_failure(home)?;
            say!(out, "{why}");
            say!(
                out,
                "Server started: {} (local, not tunneled)",
                urls.local_base()
            );
            if let Some(note) = loopback_bind_note(state, &urls) {
                note!(out, "{note}");
            }
        }
    }
    Ok(())
}

/// The note under a local URL that names another address while the
/// server listens on loopback alone (`DROP_BIND=127.0.0.1`): no other
/// machine can open it.
fn loopback_bind_note(state: &ServerState, urls: &Urls) -> Option<String> {
    let loopback = Reach::of_host(&state.bind) == Reach::ThisMachine;
    let elsewhere = Reach::of_host(&urls.host()) != Reach::ThisMachine;
    (loopback && elsewhere).then(|| {
        format!(
            "  (this machine only: the server listens on {} alone (DROP_BIND), so {} opens on no other machine; unset DROP_BIND, or set it to 0.0.0.0, then 'drop stop' and 'drop start')",
            state.bind,
            urls.local_base()
        )
    })
}

/// Waits until the daemon's first attempt at the server's tunnel is decided:
/// its URL confirmed from outside, handed out unconfirmed past the bound,
/// or down (or the server is gone: a `drop stop` may have come in between).
fn wait_for_tunnel(ctx: &Context) -> Result<Option<TunnelState>, CliError> {
    let home = &ctx.home;
    let deadline = Instant::now() + FIRST_OUTCOME_TIMEOUT + ctx.settings.verify_bound;
    loop {
        let tunnel = home.load_tunnel_state()?;
        let decided = tunnel.as_ref().is_some_and(|t| !t.state.undecided());
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

/// The note under a tunnel URL that was not seen to work from outside
/// within the bound: what the last check found, and that checks go on.
pub fn unconfirmed_line(error: &str) -> String {
    format!(
        "Note: this link is not confirmed to work from outside yet ({error}). drop keeps checking; 'drop status' says when it is, and 'drop doctor' tells what is wrong if it does not open."
    )
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
fn launch(ctx: &Context, state: &ServerState) -> Result<Launched, CliError> {
    let home = &ctx.home;
    let (port, host) = (state.port, state.host.clone());
    let bind = &ctx.settings.bind;
    let log_path = home.logs_dir().join("server.log");
    let mut log = open_home_file(&log_path, FileUse::Append)?;
    let log_start = log.seek(SeekFrom::End(0)).unwrap_or(0);
    let exe = std::env::current_exe().map_err(CliError::io("find the drop executable"))?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .args(["--port", &port.to_string(), "--bind", bind])
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
    // In the daemon's own log format: its time, its level, the line.
    let launched = drop_registry::rfc3339_millis(std::time::SystemTime::now());
    let _ = writeln!(
        log,
        "{launched}  INFO server launched as pid {}",
        child.id()
    );
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
            return Err(launch_error(log_path, log_start));
        }
        let state = home.load_server_state()?;
        if let Some(state) = state.filter(|s| s.pid == Some(child.id()))
            && answers_http(&state)
        {
            return Ok(state);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not left running where nothing knows of it: it is our own child.
    if let Some(server) = ProcessId::of(child.id()) {
        server.terminate_group(Duration::from_secs(2));
    }
    let _ = child.wait();
    Err(CliError::ServerTimeout {
        secs: START_TIMEOUT.as_secs(),
        log: log_path.to_owned(),
    })
}

/// What `drop stop` did.
pub struct Stopped {
    /// A server (this drop's, or the Python drop's) was running.
    pub was_running: bool,
    /// The apps that keep running, by name or id.
    pub apps_running: Vec<String>,
}

/// `drop stop`: the server and every tunnel, and the Python drop's server
/// if it still serves the home; then how many apps keep running.
pub fn stop(ctx: &Context) -> Result<Stopped, CliError> {
    let legacy = stop_legacy_server(ctx);
    let own = stop_own_server(ctx)?;
    if !own && !legacy {
        say!(ctx.out, "Server is not running.");
    }
    Ok(Stopped {
        was_running: own || legacy,
        apps_running: report_running_apps(ctx)?,
    })
}

/// Stops this drop's server; whether one ran.
fn stop_own_server(ctx: &Context) -> Result<bool, CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    if let Some(unit) = systemd::active_unit(home) {
        unit.stop()?;
        say!(out, "Server stopped.");
        return Ok(true);
    }
    let saved = home.load_server_state()?;
    let server = running_server(saved.as_ref())
        .and_then(|state| ProcessId::recorded(state.pid, state.start_time));
    let leftovers = || end_leftovers(home, &ctx.tunnel_config_dir()).len();
    let Some(server) = server else {
        // A crashed server is stopped now: `status` no longer calls it crashed.
        if let ServerCondition::Crashed { pid } = ServerCondition::of(saved.as_ref()) {
            forget_pid(home, pid)?;
        }
        report_leftovers(out, leftovers());
        return Ok(false);
    };
    server.terminate_group(STOP_GRACE);
    forget_pid(home, server.pid)?;
    // A server killed after the grace period could not close its tunnels.
    report_leftovers(out, leftovers());
    say!(out, "Server stopped.");
    Ok(true)
}

/// Stops the Python drop's server of this home, once its pid is shown to
/// be that server; whether one ran.
fn stop_legacy_server(ctx: &Context) -> bool {
    let Some(old) = LegacyServer::find(&ctx.home) else {
        return false;
    };
    old.id.terminate_group(STOP_GRACE);
    ctx.home.forget_legacy_server_pid();
    let port = old.port.map_or(String::new(), |p| format!(", port {p}"));
    say!(
        ctx.out,
        "Stopped the Python drop's server (pid {}{port}).",
        old.id.pid
    );
    true
}

/// Says which apps keep running once the server is stopped, and returns them.
fn report_running_apps(ctx: &Context) -> Result<Vec<String>, CliError> {
    let pages = ctx.home.registry().load()?;
    let running: Vec<String> = pages
        .iter()
        .filter(|(_, r)| r.is_app())
        .filter(|(_, r)| {
            matches!(
                AppStatus::of(r),
                AppStatus::Running { .. } | AppStatus::Unverified { .. }
            )
        })
        .map(|(id, r)| label(id, r))
        .collect();
    if !running.is_empty() {
        let (count, verb) = match running.len() {
            1 => ("1 app".to_owned(), "keeps"),
            n => (format!("{n} apps"), "keep"),
        };
        say!(
            ctx.out,
            "{count} {verb} running: {}. 'drop stop --all' stops apps too; the next 'drop start' adopts them.",
            running.join(", ")
        );
    }
    Ok(running)
}

fn report_leftovers(out: &Output, count: usize) {
    if count > 0 {
        say!(
            out,
            "Ended {} left by a server that was killed.",
            crate::plural::count(count, "tunnel process", "tunnel processes")
        );
    }
}
