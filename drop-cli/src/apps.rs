//! `drop start <app>`, `drop stop <app>` and `drop logs <app>`: the CLI side
//! of apps. Starting and stopping go through the daemon, which owns the app
//! processes; without a daemon, `stop` ends the app itself.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use drop_core::apps::{self, AppStatus, StopOutcome};
use drop_registry::{Home, Record, RegistryError};

use crate::control::{self, ControlRequest};
use crate::daemon::{ensure_running, not_tunneled_line, running_server};
use crate::error::CliError;
use crate::nat;
use crate::tunnels::{FIRST_OUTCOME_TIMEOUT, end_leftovers};
use crate::urls::Urls;

/// How long `stop` gives an app between SIGTERM and SIGKILL when it ends
/// the app itself.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `drop start <app>`: when the server is tunneled (behind NAT) the app
/// gets a tunnel of its own. Starts the server first when it is not running.
pub fn start(home: &Home, query: &str) -> Result<(), CliError> {
    let (id, record) = find_app(home, query)?;
    let (state, launched) = ensure_running(home)?;
    let urls = Urls::new(Some(&state), None);
    let running = matches!(AppStatus::of(&record), AppStatus::Running { .. });
    if state.tunnel && !running && !launched {
        println!("{}", nat::tunnel_note(&state));
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let request = ControlRequest::StartApp {
        id: id.clone(),
        env,
    };
    let reply = control::send(home, &request)?;
    if !reply.ok {
        return Err(CliError::App(reply.error.unwrap_or_default()));
    }
    if reply.outcome.as_deref() == Some("already_running") {
        let record = settled_record(home, &id, state.tunnel)?;
        println!("App already running: {}", urls.app(&record));
        return Ok(());
    }
    let (_, record) = find_app(home, &id)?;
    if let Some(url) = reply.tunnel_url {
        println!("App started: {url}");
        println!("  (tunneled via cloudflared)");
    } else if let Some(error) = reply.tunnel_error {
        let tunnel_state = record.tunnel_state.as_deref().unwrap_or("down");
        println!("{}", not_tunneled_line(tunnel_state, Some(&error)));
        println!(
            "App started: {} (local, not tunneled)",
            urls.app_local(&record)
        );
    } else {
        println!("App started: {}", urls.app_local(&record));
    }
    Ok(())
}

/// The app's record once its tunnel (opened by a new daemon that adopted
/// it) has a first outcome, so the URL printed is the one that works.
fn settled_record(home: &Home, id: &str, tunneled: bool) -> Result<Record, CliError> {
    let asked = std::time::Instant::now();
    let deadline = asked + FIRST_OUTCOME_TIMEOUT;
    loop {
        let (_, record) = find_app(home, id)?;
        // No state yet: the daemon may not have begun opening it; give it a moment.
        let starting = match record.tunnel_state.as_deref() {
            Some(state) => state == "starting",
            None => asked.elapsed() < Duration::from_secs(2),
        };
        if !tunneled || !starting || std::time::Instant::now() >= deadline {
            return Ok(record);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `drop stop <app>`.
pub fn stop(home: &Home, query: &str) -> Result<(), CliError> {
    let (id, record) = find_app(home, query)?;
    let label = label(&id, &record);
    if stop_app(home, &id, &record)? {
        println!("App stopped: {label}");
    } else {
        println!("App {label} is not running.");
    }
    Ok(())
}

/// Stops an app through the daemon, or by itself when no daemon runs.
/// Returns whether anything was running.
pub fn stop_app(home: &Home, id: &str, record: &Record) -> Result<bool, CliError> {
    let state = home.load_server_state()?;
    if running_server(state.as_ref()).is_some() {
        let reply = control::send(home, &ControlRequest::StopApp { id: id.to_owned() })?;
        if !reply.ok {
            return Err(CliError::App(reply.error.unwrap_or_default()));
        }
        return Ok(reply.outcome.as_deref() == Some("stopped"));
    }
    let outcome = match (record.pid, record.pid_start_time) {
        (Some(pid), Some(start)) => apps::stop_group(pid, start, STOP_GRACE),
        _ => StopOutcome::NotRunning,
    };
    // No daemon: any tunnel process of this home is a leftover of one that was killed.
    end_leftovers(home);
    home.registry().update(|pages| {
        if let Some(r) = pages.get_mut(id) {
            r.mark_ended(false, None);
        }
        Ok::<_, RegistryError>(())
    })?;
    Ok(outcome == StopOutcome::Stopped)
}

/// `drop logs <app> [-n N] [-f]`.
pub fn logs(home: &Home, query: &str, lines: usize, follow: bool) -> Result<(), CliError> {
    let (id, _) = find_app(home, query)?;
    let path = log_path(home, &id);
    let tail = apps::log_tail(&path, lines);
    if !tail.is_empty() {
        println!("{tail}");
    }
    if follow {
        follow_log(&path)?;
    }
    Ok(())
}

/// Prints what is appended to the log, until interrupted.
fn follow_log(path: &std::path::Path) -> Result<(), CliError> {
    let mut offset = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut out = std::io::stdout();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(mut file) = std::fs::File::open(path) else {
            continue;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < offset {
            offset = 0; // the log was truncated or replaced
        }
        if len == offset {
            continue;
        }
        let mut chunk = Vec::new();
        file.seek(SeekFrom::Start(offset))
            .map_err(CliError::io("read the app log"))?;
        file.read_to_end(&mut chunk)
            .map_err(CliError::io("read the app log"))?;
        offset += chunk.len() as u64;
        if out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
            return Ok(()); // stdout closed: the reader went away
        }
    }
}

/// An app's log file.
pub fn log_path(home: &Home, id: &str) -> PathBuf {
    home.logs_dir().join(format!("app-{id}.log"))
}

/// The app named by `query`, or an error saying it is not one.
fn find_app(home: &Home, query: &str) -> Result<(String, Record), CliError> {
    let pages = home.registry().load()?;
    let found = pages.lookup(query)?;
    if !found.record.is_app() {
        return Err(CliError::NotAnApp {
            query: query.to_owned(),
        });
    }
    Ok((found.id.to_owned(), found.record.clone()))
}

fn label(id: &str, record: &Record) -> String {
    if record.name.is_empty() {
        id.to_owned()
    } else {
        record.name.clone()
    }
}
