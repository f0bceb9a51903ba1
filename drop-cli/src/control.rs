//! The private channel between `drop` commands and the daemon: a Unix socket
//! in the drop home (0600), one JSON request line and one JSON reply line
//! per connection. Never a route on the public port: through a tunnel every
//! request arrives from 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use drop_core::Site;
use drop_registry::Home;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::error::CliError;
use crate::supervisor::{Started, Supervisor};
use crate::tunnels::FirstOutcome;

/// How long a command waits for the daemon's reply; starting an app waits
/// for the app, up to its own timeout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the daemon waits for a request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request line the daemon reads (an app's environment included).
const MAX_REQUEST: u64 = 1024 * 1024;

/// What a command asks of the daemon.
#[derive(Debug, Serialize, Deserialize)]
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
    },
    /// Stop an app.
    StopApp {
        /// The app's full id.
        id: String,
    },
}

/// The daemon's answer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ControlReply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What happened: `reloaded`, `started`, `already_running`, `stopped`, `not_running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why not, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A started app's tunnel URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_url: Option<String>,
    /// Why a started app's tunnel is not up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_error: Option<String>,
}

impl ControlReply {
    fn done(outcome: &str) -> Self {
        ControlReply {
            ok: true,
            outcome: Some(outcome.to_owned()),
            ..ControlReply::default()
        }
    }

    fn failed(error: String) -> Self {
        ControlReply {
            error: Some(error),
            ..ControlReply::default()
        }
    }

    fn started(tunnel: Option<FirstOutcome>) -> Self {
        let mut reply = ControlReply::done("started");
        match tunnel {
            Some(FirstOutcome::Up(url)) => reply.tunnel_url = Some(url),
            Some(FirstOutcome::Down(reason)) => reply.tunnel_error = Some(reason),
            None => {}
        }
        reply
    }
}

/// Sends one request to the running daemon and waits for its reply.
pub fn send(home: &Home, request: &ControlRequest) -> Result<ControlReply, CliError> {
    let path = home.control_socket_path();
    let io = |action: &str| {
        CliError::io(format!(
            "{action} the server's control socket `{}`",
            path.display()
        ))
    };
    let mut stream = UnixStream::connect(&path).map_err(io("connect to"))?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(io("configure"))?;
    let mut line = serde_json::to_string(request).expect("requests serialise");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io("write to"))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(io("read from"))?;
    serde_json::from_str(&reply)
        .map_err(|e| CliError::ServerFailed(format!("the server sent an unreadable reply: {e}")))
}

/// Tells a running daemon that the registry changed, so the change is live
/// when the command returns. Without a daemon there is nothing to tell.
pub fn announce_registry_change(home: &Home) {
    if home.control_socket_path().exists() {
        let _ = send(home, &ControlRequest::Reload);
    }
}

/// The daemon's side of the socket.
pub struct ControlServer {
    listener: UnixListener,
    site: Arc<Site>,
    supervisor: Arc<Supervisor>,
}

impl ControlServer {
    /// Binds the socket, replacing a stale one (the caller holds the server lock).
    pub fn bind(
        home: &Home,
        site: Arc<Site>,
        supervisor: Arc<Supervisor>,
    ) -> Result<Self, CliError> {
        let path = home.control_socket_path();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(CliError::io(format!("listen on `{}`", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(CliError::io(format!("restrict `{}`", path.display())))?;
        Ok(ControlServer {
            listener,
            site,
            supervisor,
        })
    }

    /// Answers requests until the task is dropped.
    pub async fn run(self) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (site, supervisor) = (self.site.clone(), self.supervisor.clone());
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &site, &supervisor).await {
                    eprintln!("drop: control request failed: {e}");
                }
            });
        }
    }
}

async fn answer(
    stream: tokio::net::UnixStream,
    site: &Arc<Site>,
    supervisor: &Arc<Supervisor>,
) -> std::io::Result<()> {
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
        Ok(request) => carry_out(request, site, supervisor).await,
        Err(e) => ControlReply::failed(format!("unknown request: {e}")),
    };
    let mut text = serde_json::to_string(&reply).expect("replies serialise");
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

async fn carry_out(
    request: ControlRequest,
    site: &Arc<Site>,
    supervisor: &Arc<Supervisor>,
) -> ControlReply {
    match request {
        ControlRequest::Reload => {
            let site = site.clone();
            let _ = tokio::task::spawn_blocking(move || site.refresh()).await;
            ControlReply::done("reloaded")
        }
        ControlRequest::StartApp { id, env } => match supervisor.start_app(&id, env).await {
            Ok(Started::Now(tunnel)) => ControlReply::started(tunnel),
            Ok(Started::Already) => ControlReply::done("already_running"),
            Err(e) => ControlReply::failed(e),
        },
        ControlRequest::StopApp { id } => match supervisor.stop_app(&id).await {
            Ok(true) => ControlReply::done("stopped"),
            Ok(false) => ControlReply::done("not_running"),
            Err(e) => ControlReply::failed(e),
        },
    }
}
