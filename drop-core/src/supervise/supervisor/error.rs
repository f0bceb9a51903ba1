//! Why an app could not be started or stopped, in words that say what to
//! do, each with a stable code.

use std::path::PathBuf;
use std::time::Duration;

use drop_registry::RegistryError;

/// Why an app could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No record has this id.
    #[error("no app has the id {id}")]
    NoSuchApp {
        /// The id asked for.
        id: String,
    },
    /// The record is a page, not an app.
    #[error("page {id} is not an app: add it with --run CMD --port N")]
    NotAnApp {
        /// The page's id.
        id: String,
    },
    /// Something else listens on the app's port already.
    #[error(
        "app {app} cannot start: port {port} is already in use by another process; stop it or give the app another port"
    )]
    PortInUse {
        /// The app, as messages name it: its name, else its id.
        app: String,
        /// The app's port.
        port: u16,
    },
    /// The Python drop's process of this app lives on, and cannot be shown
    /// to be the app: drop leaves it alone.
    #[error(
        "the app's old process (pid {pid}) {}; it was started by an earlier drop and cannot be shown to be this app, so drop leaves it alone: end it with `kill {pid}` (or `kill -- -{pid}` for its whole process group), then run 'drop start {app}'",
        match port { Some(port) => format!("still holds port {port}"), None => "still runs".to_owned() }
    )]
    OldProcess {
        /// The app, as messages name it: its name, else its id.
        app: String,
        /// The old process.
        pid: u32,
        /// The app's port, when something listens on it.
        port: Option<u16>,
    },
    /// `sh` could not be started.
    #[error("could not launch the app")]
    Launch {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The app ended before it listened on its port.
    #[error(
        "app {app} exited with {} before listening on port {port}; last lines of `{}`:\n{}",
        describe_code(*code), log.display(), indent(tail)
    )]
    ExitedBeforeListening {
        /// The app, as messages name it: its name, else its id.
        app: String,
        /// Its port.
        port: u16,
        /// How it ended.
        code: Option<i32>,
        /// Its log.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// The app ran but never listened; it was stopped.
    #[error(
        "app {app} did not listen on port {port} within {} s and was stopped; last lines of `{}`:\n{}",
        timeout.as_secs_f32(), log.display(), indent(tail)
    )]
    NotListening {
        /// The app, as messages name it: its name, else its id.
        app: String,
        /// Its port.
        port: u16,
        /// How long it was given.
        timeout: Duration,
        /// Its log.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// The app ended right after it started listening.
    #[error(
        "app {app} exited with {} right after it started listening; last lines of `{}`:\n{}",
        describe_code(*code), log.display(), indent(tail)
    )]
    ExitedAfterListening {
        /// The app, as messages name it: its name, else its id.
        app: String,
        /// How it ended.
        code: Option<i32>,
        /// Its log.
        log: PathBuf,
        /// The last lines of its log.
        tail: String,
    },
    /// The app listens only on loopback, and its URL is for other
    /// machines; it was stopped.
    #[error(
        "app {app} listens only on {} (this machine alone), so its URL http://{host}:{port}/ would not open for anyone else; it was stopped. Make its command listen on every address (for example `--host 0.0.0.0` for flask, `--bind 0.0.0.0` for gunicorn, `--host` for vite), then run 'drop start {app}'; or reach it through a tunnel: 'drop stop', 'drop start --tunnel', then 'drop start {app}'",
        list_addresses(listeners)
    )]
    LoopbackOnly {
        /// The app, as messages name it: its name, else its id.
        app: String,
        /// The host in its URL.
        host: String,
        /// Its port.
        port: u16,
        /// Where it listens.
        listeners: Vec<std::net::SocketAddr>,
    },
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl AppError {
    /// A stable name for this kind of failure, for scripts (`--json`).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NoSuchApp { .. } => "not_found",
            AppError::NotAnApp { .. } => "not_an_app",
            AppError::PortInUse { .. } => "port_in_use",
            AppError::OldProcess { .. } => "old_process",
            AppError::Launch { .. } => "app_launch_failed",
            AppError::ExitedBeforeListening { .. } | AppError::ExitedAfterListening { .. } => {
                "app_exited"
            }
            AppError::NotListening { .. } => "app_not_listening",
            AppError::LoopbackOnly { .. } => "loopback_only",
            AppError::Registry(e) => e.code(),
        }
    }
}

fn list_addresses(listeners: &[std::net::SocketAddr]) -> String {
    let names: Vec<String> = listeners.iter().map(|a| a.ip().to_string()).collect();
    names.join(" and ")
}

pub(super) fn describe_code(code: Option<i32>) -> String {
    code.map_or("an unknown code".to_owned(), |c| format!("code {c}"))
}

fn indent(text: &str) -> String {
    if text.is_empty() {
        return "  (the log is empty)".to_owned();
    }
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
