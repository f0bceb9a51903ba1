//! The private channel between `drop` commands and the daemon: a Unix socket
//! in the drop home (0600), one JSON request line and one JSON reply line
//! per connection. Never a route on the public port: through a tunnel every
//! request arrives from 127.0.0.1.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::supervise::TunnelOutcome;
use crate::supervise::verify::LinkReport;
use tracing::warn;

/// How long the daemon waits for a request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request line the daemon reads (an app's environment included).
const MAX_REQUEST: u64 = 1024 * 1024;
/// Pause after a failed accept, instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What a command asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Re-read `pages.json` now.
    Reload,
    /// Start an app with the asking command's environment.
    StartApp {
        /// The app's full id.
        id: String,
        /// The environment to run it with.
        env: Vec<(String, String)>,
        /// How long the app may take to listen, when the asking command
        /// was given it (else the daemon's own setting holds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_timeout_ms: Option<u64>,
        /// Between SIGTERM and SIGKILL if it must be stopped, likewise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_grace_ms: Option<u64>,
    },
    /// Stop an app.
    StopApp {
        /// The app's full id.
        id: String,
        /// Between SIGTERM and SIGKILL, when the asking command was given it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_grace_ms: Option<u64>,
    },
    /// Check a tunnel URL from outside now: the server's (`id` is `None`)
    /// or an app's.
    CheckLink {
        /// The app's full id, or none for the server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Open the server's tunnel again from scratch, as at start (its
    /// named tunnel's credentials were fetched again).
    ReopenTunnel,
    /// Stop an app and remove its record, in one turn: a start asked
    /// meanwhile finds no app rather than launching one nobody records.
    RemoveApp {
        /// The app's full id.
        id: String,
        /// Between SIGTERM and SIGKILL, when the asking command was given it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_grace_ms: Option<u64>,
    },
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ControlReply {
    /// The registry was read again.
    Reloaded,
    /// The server's tunnel is opening again (`tunneled`: it had one to
    /// open).
    Reopened {
        /// Whether the server is tunneled.
        tunneled: bool,
    },
    /// The app was launched and listens.
    Started {
        /// Its tunnel's first outcome, when apps are tunneled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tunnel: Option<TunnelOutcome>,
    },
    /// The app was running already; nothing changed.
    AlreadyRunning,
    /// The app was stopped.
    Stopped,
    /// The app was not running.
    NotRunning,
    /// The app's record is gone; `stopped` says whether it was running.
    Removed {
        /// Whether it was running and was stopped first.
        stopped: bool,
    },
    /// What checking a tunnel URL found.
    LinkChecked {
        /// Step by step.
        report: LinkReport,
    },
    /// The request was not carried out.
    Failed {
        /// A stable name for what failed (`port_in_use`, `app_exited`…),
        /// which commands pass on to scripts; `app_failed` from a daemon
        /// that sent none.
        #[serde(default = "unnamed_failure")]
        code: String,
        /// Why, for the user: the error and its causes.
        error: String,
    },
}

fn unnamed_failure() -> String {
    "app_failed".to_owned()
}

impl ControlReply {
    /// A failure named `code`, with the whole chain of causes in one message.
    pub fn failed(code: &str, error: &dyn std::error::Error) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        ControlReply::Failed {
            code: code.to_owned(),
            error: message,
        }
    }
}

/// Why a request could not be put to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be reached, written or read.
    #[error("could not {action} the server's control socket `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reply is not one this version understands.
    #[error(
        "the server sent a reply this drop cannot read (is it another version of drop? run 'drop stop', then 'drop start')"
    )]
    Unreadable {
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon closed the connection without a reply: it stopped (or
    /// died) while on the request.
    #[error(
        "the server stopped before it answered; see its log, logs/server.log in the drop home, and run 'drop start' again"
    )]
    NoReply,
}

/// Sends one request to the daemon listening on `socket` and waits up to
/// `timeout` for its reply.
pub fn request(
    socket: &Path,
    request: &ControlRequest,
    timeout: Duration,
) -> Result<ControlReply, ControlError> {
    let io = |action| {
        move |source| ControlError::Io {
            action,
            path: socket.to_owned(),
            source,
        }
    };
    let mut stream = UnixStream::connect(socket).map_err(io("connect to"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(io("configure"))?;
    let mut line = serde_json::to_string(request).expect("requests serialise");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io("write to"))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(io("read from"))?;
    if reply.is_empty() {
        return Err(ControlError::NoReply);
    }
    serde_json::from_str(&reply).map_err(|source| ControlError::Unreadable { source })
}

/// The daemon's side of the socket.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds the socket at `path`, owner-only, replacing a stale one (the
    /// caller holds the server lock, so no live daemon owns it).
    pub fn bind(path: &Path) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
        })
    }

    /// Answers each request with `answer` until `shutdown` completes, then
    /// removes the socket. Requests are answered concurrently.
    pub async fn run<F, Fut>(self, answer: F, shutdown: impl Future<Output = ()>)
    where
        F: Fn(ControlRequest) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ControlReply> + Send,
    {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                if let Err(e) = serve_one(stream, answer).await {
                    warn!("control request failed: {e}");
                }
            });
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_one<F, Fut>(stream: tokio::net::UnixStream, answer: F) -> std::io::Result<()>
where
    F: Fn(ControlRequest) -> Fut,
    Fut: Future<Output = ControlReply>,
{
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reading = tokio::io::AsyncReadExt::take(tokio::io::BufReader::new(read), MAX_REQUEST);
    // A peer that connects and says nothing does not hold a task forever.
    tokio::time::timeout(REQUEST_TIMEOUT, reading.read_line(&mut line))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no request within 5 s")
        })??;
    let reply = match serde_json::from_str::<ControlRequest>(&line) {
        Ok(request) => answer(request).await,
        Err(e) => ControlReply::failed("bad_request", &e),
    };
    let mut text = serde_json::to_string(&reply).expect("replies serialise");
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use drop_registry::TunnelPhase;

    #[test]
    fn replies_read_back_as_they_were_sent() {
        let replies = [
            ControlReply::Reloaded,
            ControlReply::Started { tunnel: None },
            ControlReply::Started {
                tunnel: Some(TunnelOutcome::Up {
                    url: "https://a-b.trycloudflare.com".into(),
                }),
            },
            ControlReply::Started {
                tunnel: Some(TunnelOutcome::Down {
                    phase: TunnelPhase::RateLimited,
                    error: "rate limited".into(),
                }),
            },
            ControlReply::AlreadyRunning,
            ControlReply::Stopped,
            ControlReply::NotRunning,
            ControlReply::Failed {
                code: "port_in_use".into(),
                error: "port 5000 is already in use".into(),
            },
        ];
        for reply in replies {
            let line = serde_json::to_string(&reply).unwrap();
            assert_eq!(serde_json::from_str::<ControlReply>(&line).unwrap(), reply);
        }
        let line = serde_json::to_string(&ControlReply::AlreadyRunning).unwrap();
        assert_eq!(line, r#"{"outcome":"already_running"}"#);
        // From a daemon of an earlier version, which sent no code.
        let old = r#"{"outcome":"failed","error":"no"}"#;
        assert_eq!(
            serde_json::from_str::<ControlReply>(old).unwrap(),
            ControlReply::Failed {
                code: "app_failed".into(),
                error: "no".into()
            }
        );
    }

    #[tokio::test]
    async fn a_request_over_the_socket_gets_its_answer_and_the_socket_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let server = ControlServer::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(
            |request| async move {
                match request {
                    ControlRequest::StopApp { id, .. } if id == "abc" => ControlReply::Stopped,
                    _ => ControlReply::NotRunning,
                }
            },
            async {
                let _ = stopped.await;
            },
        ));
        let ask = |request: ControlRequest| {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                super::request(&path, &request, Duration::from_secs(5)).unwrap()
            })
        };
        let stop_abc = ControlRequest::StopApp {
            id: "abc".into(),
            stop_grace_ms: None,
        };
        assert_eq!(ask(stop_abc).await.unwrap(), ControlReply::Stopped);
        assert_eq!(
            ask(ControlRequest::Reload).await.unwrap(),
            ControlReply::NotRunning
        );
        let _ = stop.send(());
        running.await.unwrap();
        assert!(!path.exists(), "the socket goes with the server");
    }
}
