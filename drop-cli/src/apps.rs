//! `drop start <app>`, `drop stop <app>` and `drop logs <app>`: the CLI side
//! of apps. Starting and stopping go through the daemon, which owns the app
//! processes; without a daemon, `stop` ends the app itself.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use drop_core::daemon::{ControlReply, ControlRequest};
use drop_core::supervise::{
    AppError, AppStatus, FIRST_OUTCOME_TIMEOUT, StopOutcome, TunnelOutcome, app_log_path,
    end_leftovers, process_to_stop, read_log_tail,
};
use drop_registry::{FileUse, Home, Record, RegistryError, open_home_file};

use crate::context::Context;
use crate::control;
use crate::error::CliError;
use crate::nat;
use crate::output::{Output, label, note, say};
use crate::running::running_server;
use crate::server::{ensure_running, not_tunneled_line, unconfirmed_line};
use crate::urls::Urls;

/// `drop start <app>`: when the server is tunneled (behind NAT) the app
/// gets a tunnel of its own. Starts the server first when it is not running.
/// Under `--json`, then the app as `status --json` shows it.
pub fn start(ctx: &Context, query: &str) -> Result<(), CliError> {
    let (id, already_running) = start_app(ctx, query)?;
    if ctx.out.is_json() {
        let (_, record) = find_app(&ctx.home, &id)?;
        let urls = Urls::load(&ctx.home)?;
        let mut doc = crate::output::PageRow::new(&urls, &id, &record).to_json();
        doc["was_running"] = serde_json::Value::Bool(already_running);
        ctx.out.document(doc);
    }
    Ok(())
}

/// Starts the app; its id, and whether it was already running.
fn start_app(ctx: &Context, query: &str) -> Result<(String, bool), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let (id, record) = find_app(home, query)?;
    let given = &ctx.settings.apps_given;
    let (state, launched) = ensure_running(ctx)?;
    let urls = Urls::new(Some(&state), None);
    let running = matches!(AppStatus::of(&record), AppStatus::Running { .. });
    if state.tunnel && !running && !launched {
        say!(out, "{}", nat::tunnel_note(&state));
    }
    let env = app_environment(out);
    let request = ControlRequest::StartApp {
        id: id.clone(),
        env,
        start_timeout_ms: given.start_timeout_ms(),
        stop_grace_ms: given.stop_grace_ms(),
    };
    let tunnel = match control::send(home, &request)? {
        ControlReply::Started { tunnel } => tunnel,
        ControlReply::AlreadyRunning => {
            let record = settled_record(ctx, &id, state.tunnel)?;
            say!(out, "App already running: {}", urls.app(&record));
            return Ok((id, true));
        }
        other => return Err(failure(other)),
    };
    let (_, record) = find_app(home, &id)?;
    match tunnel {
        Some(TunnelOutcome::Up { url }) => {
            say!(out, "App started: {url}");
            say!(out, "  (tunneled via cloudflared)");
        }
        Some(TunnelOutcome::Unconfirmed { url, error }) => {
            say!(out, "App started: {url}");
            say!(out, "  (tunneled via cloudflared)");
            note!(out, "{}", unconfirmed_line(&error));
        }
        Some(TunnelOutcome::Down { phase, error }) => {
            say!(out, "{}", not_tunneled_line(&phase, Some(&error)));
            say!(
                out,
                "App started: {} (local, not tunneled)",
                urls.app_local(&record)
            );
        }
        None => {
            say!(out, "App started: {}", urls.app_local(&record));
            if let Some(note) = urls.reach_note(urls.reach()) {
                note!(out, "{note}");
            }
        }
    }
    Ok((id, false))
}

/// This command's environment for the app. The control protocol is JSON,
/// so a variable that is not UTF-8 cannot travel: it is left out, and said.
fn app_environment(out: &Output) -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(
            |(key, value)| match (key.into_string(), value.into_string()) {
                (Ok(key), Ok(value)) => Some((key, value)),
                (key, _) => {
                    let name = key.unwrap_or_else(|k| k.to_string_lossy().into_owned());
                    note!(
                        out,
                        "Note: {name} is not valid UTF-8 and is not passed to the app"
                    );
                    None
                }
            },
        )
        .collect()
}

/// The error of a reply that is not the success asked for: the daemon's
/// failure with its code, or a reply that does not fit the request.
pub fn failure(reply: ControlReply) -> CliError {
    match reply {
        ControlReply::Failed { code, error } => CliError::App {
            code,
            message: error,
        },
        other => CliError::App {
            code: "server_reply_unexpected".into(),
            message: format!("the server answered {other:?}, which does not fit the request"),
        },
    }
}

/// The app's record once its tunnel (opened by a new daemon that adopted
/// it) has a first outcome, so the URL printed is the one that works.
fn settled_record(ctx: &Context, id: &str, tunneled: bool) -> Result<Record, CliError> {
    let asked = std::time::Instant::now();
    let deadline = asked + FIRST_OUTCOME_TIMEOUT + ctx.settings.verify_bound;
    loop {
        let (_, record) = find_app(&ctx.home, id)?;
        // No state yet: the daemon may not have begun opening it; give it a moment.
        let starting = match &record.tunnel_state {
            Some(phase) => phase.undecided(),
            None => asked.elapsed() < Duration::from_secs(2),
        };
        if !tunneled || !starting || std::time::Instant::now() >= deadline {
            return Ok(record);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `drop stop <app>`.
pub fn stop(ctx: &Context, query: &str) -> Result<(), CliError> {
    let out = &ctx.out;
    let (id, record) = find_app(&ctx.home, query)?;
    let label = label(&id, &record);
    let was_running = stop_app(ctx, &id, &record)?;
    match was_running {
        true => say!(out, "App stopped: {label}"),
        false => say!(out, "App {label} is not running."),
    }
    out.document(serde_json::json!({
        "id": id, "name": record.name, "was_running": was_running
    }));
    Ok(())
}

/// Stops an app through the daemon, or by itself when no daemon runs (then
/// ending leftover tunnel processes). Returns whether anything was
/// running.
pub fn stop_app(ctx: &Context, id: &str, record: &Record) -> Result<bool, CliError> {
    let (home, settings) = (&ctx.home, &ctx.settings);
    let state = home.load_server_state()?;
    if running_server(state.as_ref()).is_some() {
        let request = ControlRequest::StopApp {
            id: id.to_owned(),
            stop_grace_ms: settings.apps_given.stop_grace_ms(),
        };
        return match control::send(home, &request)? {
            ControlReply::Stopped => Ok(true),
            ControlReply::NotRunning => Ok(false),
            other => Err(failure(other)),
        };
    }
    let grace = settings.apps.stop_grace;
    let outcome = match process_to_stop(record) {
        Ok(Some(app)) => app.terminate_group(grace),
        Ok(None) => StopOutcome::NotRunning,
        Err(pid) => return Err(old_process(id, pid, record)),
    };
    // No daemon: any tunnel process of this home is a leftover of one that was killed.
    end_leftovers(home, &ctx.tunnel_config_dir());
    home.registry().update(|pages| {
        if let Some(r) = pages.get_mut(id) {
            r.mark_ended(false, None);
        }
        Ok::<_, RegistryError>(())
    })?;
    Ok(outcome == StopOutcome::Stopped)
}

/// Why the app whose old process (the Python drop's, not provably the app)
/// lives on is left alone, as the daemon would say it.
fn old_process(id: &str, pid: u32, record: &Record) -> CliError {
    let port = record
        .port
        .filter(|&port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let error = AppError::OldProcess {
        app: label(id, record),
        pid,
        port,
    };
    CliError::App {
        code: error.code().into(),
        message: error.to_string(),
    }
}

/// `drop logs <app> [-n N] [-f]`. Under `--json`, one object a line:
/// `{"id": app id, "line": text}`, also while following.
pub fn logs(ctx: &Context, query: &str, lines: usize, follow: bool) -> Result<(), CliError> {
    let out = &ctx.out;
    let (id, record) = find_app(&ctx.home, query)?;
    let path = app_log_path(&ctx.home, &id);
    // A link planted there is there: refused below, not "no output".
    if std::fs::symlink_metadata(&path).is_err() && !follow {
        say!(out, "{}", never_ran(&id, &record));
        return Ok(());
    }
    let mut lines_out = LogLines::new(&id, out);
    let tail = read_log_tail(&path, lines)?;
    if !tail.is_empty() {
        lines_out.write(format!("{tail}\n").as_bytes());
    } else if !follow && lines > 0 {
        say!(
            out,
            "App {} has written no output yet.",
            label(&id, &record)
        );
    }
    if follow {
        let runs = || {
            let pages = ctx.home.registry().load().ok()?;
            let record = pages.get(&id)?;
            Some(matches!(
                AppStatus::of(record),
                AppStatus::Running { .. } | AppStatus::Unverified { .. }
            ))
        };
        let followed = follow_log(&path, &mut lines_out, runs)?;
        if followed == Followed::AppEnded && lines_out.end() {
            out.aside(format_args!("App {} stopped.", label(&id, &record)));
        }
    }
    Ok(())
}

/// Why following a log ended.
#[derive(Debug, PartialEq, Eq)]
enum Followed {
    /// The reader went away (stdout closed).
    ReaderGone,
    /// The app ran while followed, and then no longer (or was removed).
    AppEnded,
}

/// How many of the follower's looks at the log go by between two looks at
/// whether the app still runs.
const LOOKS_PER_STATUS: u64 = 5;

/// Where `logs` writes an app's output: as it is, or under `--json` as
/// one JSON object for each whole line.
struct LogLines<'a> {
    app: String,
    out: &'a Output,
    /// Under `--json`, the start of a line not yet ended.
    partial: Vec<u8>,
}

impl<'a> LogLines<'a> {
    fn new(app: &str, out: &'a Output) -> Self {
        LogLines {
            app: app.to_owned(),
            out,
            partial: Vec::new(),
        }
    }

    /// Writes `chunk`; false once stdout is closed (the reader went away).
    fn write(&mut self, chunk: &[u8]) -> bool {
        if !self.out.is_json() {
            let mut stdout = std::io::stdout().lock();
            return stdout
                .write_all(chunk)
                .and_then(|()| stdout.flush())
                .is_ok();
        }
        self.partial.extend_from_slice(chunk);
        let end = match self.partial.iter().rposition(|&b| b == b'\n') {
            Some(end) => end + 1,
            // A line that never ends is sent in pieces, not kept whole.
            None if self.partial.len() >= MAX_LINE_BYTES => self.partial.len(),
            None => return true,
        };
        let whole: Vec<u8> = self.partial.drain(..end).collect();
        self.send_lines(&whole)
    }

    /// Sends what is left of an unfinished line, at the end; false once
    /// stdout is closed.
    fn end(&mut self) -> bool {
        if self.partial.is_empty() {
            return true;
        }
        let rest = std::mem::take(&mut self.partial);
        self.send_lines(&rest)
    }

    /// One JSON object a line of `text`.
    fn send_lines(&self, text: &[u8]) -> bool {
        String::from_utf8_lossy(text).lines().all(|line| {
            self.out
                .json_line(serde_json::json!({ "id": self.app, "line": line }))
        })
    }
}

/// The longest line `logs --json` keeps until it ends: an unended line
/// this long is sent as it is, and what follows makes the next piece.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// The most `logs -f` reads of a log at once.
const MAX_READ_BYTES: u64 = 1024 * 1024;

/// What `logs` says of an app that has no log: this drop never ran it (the
/// Python drop kept no output).
fn never_ran(id: &str, record: &Record) -> String {
    let label = label(id, record);
    match AppStatus::of(record) {
        // This drop started it (it records the start time) and so gave it
        // a log: someone deleted it.
        AppStatus::Running { pid } if record.pid_start_time.is_some() => format!(
            "No output: the log of app {label} (pid {pid}) was deleted while it runs; 'drop stop {label}' then 'drop start {label}' to have one again"
        ),
        AppStatus::Running { pid } | AppStatus::Unverified { pid } => format!(
            "No output: app {label} runs as pid {pid}, started by an earlier drop that kept no log; 'drop stop {label}' then 'drop start {label}' to have one"
        ),
        _ => format!("No output: app {label} has never run. Start it with 'drop start {label}'."),
    }
}

/// Prints what is appended to the log, until interrupted, the reader goes
/// or the app ends. `runs` says whether the app runs (`None` once it is removed); the
/// follow ends once an app seen running no longer does, after what it
/// wrote last is shown.
fn follow_log(
    path: &std::path::Path,
    out: &mut LogLines<'_>,
    mut runs: impl FnMut() -> Option<bool>,
) -> Result<Followed, CliError> {
    let mut offset = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
    let mut seen_running = runs() == Some(true);
    let mut stopped_looks = 0;
    let mut ended = false;
    for look in 1u64.. {
        if ended {
            return Ok(Followed::AppEnded);
        }
        std::thread::sleep(Duration::from_millis(200));
        if look % LOOKS_PER_STATUS == 0 {
            // Stopped at two looks in a row, not one: a restart (stop,
            // then start) is not an end. One more look at the log then
            // shows its last lines.
            match runs() {
                Some(true) => (seen_running, stopped_looks) = (true, 0),
                Some(false) if seen_running => {
                    stopped_looks += 1;
                    ended = stopped_looks >= 2;
                }
                None => ended = true,
                Some(false) => {}
            }
        }
        let mut file = match open_home_file(path, FileUse::Read) {
            Ok(file) => file,
            Err(missing) if missing.is_not_found() => continue,
            // A link or a FIFO put in its place is never read.
            Err(refused) => return Err(refused.into()),
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < offset {
            offset = 0; // the log was truncated or replaced
        }
        if len == offset {
            continue;
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(CliError::io("read the app log"))?;
        // Up to the length seen, a piece at a time: a log written faster
        // than it is read never fills memory.
        while offset < len {
            let mut chunk = Vec::new();
            (&mut file)
                .take(MAX_READ_BYTES.min(len - offset))
                .read_to_end(&mut chunk)
                .map_err(CliError::io("read the app log"))?;
            if chunk.is_empty() {
                break; // cut meanwhile
            }
            offset += chunk.len() as u64;
            if !out.write(&chunk) {
                return Ok(Followed::ReaderGone);
            }
        }
    }
    unreachable!("the looks go on until the follow ends")
}

/// The app named by `query`, or an error saying it is not one.
fn find_app(home: &Home, query: &str) -> Result<(String, Record), CliError> {
    let pages = home.registry().load()?;
    let found = crate::names::find_one(&pages, query)?;
    if !found.record.is_app() {
        return Err(CliError::NotAnApp {
            query: query.to_owned(),
        });
    }
    Ok((found.id.to_owned(), found.record.clone()))
}

/// What `drop stop --all` did to apps: the ids it stopped, and why others
/// could not be.
#[derive(Default)]
pub struct AppsStopped {
    pub ids: Vec<String>,
    pub failures: Vec<String>,
}

/// `--all`: every app that runs, through the daemon while it runs.
pub fn stop_every_app(ctx: &Context) -> Result<AppsStopped, CliError> {
    let out = &ctx.out;
    let pages = ctx.home.registry().load()?;
    let mut stopped = AppsStopped::default();
    for (id, record) in pages.iter().filter(|(_, r)| r.is_app()) {
        if !matches!(
            AppStatus::of(record),
            AppStatus::Running { .. } | AppStatus::Unverified { .. }
        ) {
            continue;
        }
        match stop_app(ctx, id, record) {
            Ok(_) => {
                say!(out, "App stopped: {}", label(id, record));
                stopped.ids.push(id.to_owned());
            }
            Err(e) => stopped.failures.push(e.to_string()),
        }
    }
    Ok(stopped)
}

/// `drop stop [--all]`: with `--all` every running app first, while the
/// daemon that watches them still runs; then the server and its tunnels.
pub fn stop_all(ctx: &Context, all: bool) -> Result<(), CliError> {
    let apps = match all {
        true => stop_every_app(ctx)?,
        false => AppsStopped::default(),
    };
    let stopped = crate::server::stop(ctx)?;
    ctx.out.document(serde_json::json!({
        "server_was_running": stopped.was_running,
        "apps_stopped": apps.ids,
        "apps_running": stopped.apps_running,
    }));
    match apps.failures.is_empty() {
        true => Ok(()),
        false => Err(CliError::App {
            code: "app_stop_failed".into(),
            message: apps.failures.join("\n"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under `--json`, lines go out whole; one that never ends goes out in
    /// pieces once 64 KiB are waiting; what is left unfinished goes at the
    /// end.
    #[test]
    fn json_log_lines_are_whole_bounded_and_flushed_at_the_end() {
        let (out, kept) = Output::captured();
        let mut lines = LogLines::new("app", &out);
        assert!(lines.write(b"one\ntw"));
        assert!(lines.write(b"o\n"));
        assert!(lines.write(&vec![b'x'; MAX_LINE_BYTES + 10]));
        assert!(lines.write(b"PARTIAL"));
        assert!(lines.end());
        let kept = kept.lock().unwrap();
        let said: Vec<usize> = kept
            .lines
            .iter()
            .map(|l| l["line"].as_str().unwrap().len())
            .collect();
        assert_eq!(said, [3, 3, MAX_LINE_BYTES + 10, 7]);
        assert_eq!(kept.lines[0]["line"], "one");
        assert_eq!(kept.lines[3]["line"], "PARTIAL");
    }
}
