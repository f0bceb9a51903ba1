//! The daemon's tunnels: the server's and one per running app, each kept
//! alive by a drop-tunnel watchdog whose events are written where SPEC.md
//! says (`tunnel.json`, the app's record). New tunnels are spaced out
//! globally, so many dying at once do not trip the quick-tunnel service's
//! rate limit themselves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drop_core::process;
use drop_registry::{Home, Record, RegistryError, TunnelState};
use drop_tunnel::{
    Cloudflared, CloudflaredConfig, DownReason, Tunnel, TunnelError, TunnelEvent, TunnelProvider,
    Watchdog, WatchdogConfig,
};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

/// The empty config file drop-tunnel gives cloudflared, in its state folder.
const CONFIG_FILE: &str = "cloudflared-empty.yml";
/// Least time between two tunnel openings, across all tunnels.
const OPEN_SPACING: Duration = Duration::from_secs(1);
/// How long `start` waits for a first answer from a new tunnel.
pub const FIRST_OUTCOME_TIMEOUT: Duration = Duration::from_secs(45);

/// A provider that spaces out openings: one at a time, `OPEN_SPACING` apart.
struct Paced {
    inner: Cloudflared,
    next: Mutex<Instant>,
}

#[async_trait::async_trait]
impl TunnelProvider for Paced {
    async fn open(&self, local: SocketAddr) -> Result<Tunnel, TunnelError> {
        {
            let mut next = self.next.lock().await;
            tokio::time::sleep_until(*next).await;
            *next = Instant::now() + OPEN_SPACING;
        }
        self.inner.open(local).await
    }
}

/// How a first attempt to open a tunnel went.
pub enum FirstOutcome {
    /// Up at this URL.
    Up(String),
    /// Not up, and why in words; the watchdog keeps trying unless the
    /// failure is one retrying cannot mend (cloudflared missing…).
    Down(String),
}

/// Every tunnel of the daemon.
pub struct Tunnels {
    home: Home,
    provider: Arc<Paced>,
    server: Mutex<Option<Watchdog>>,
    apps: Mutex<HashMap<String, Watchdog>>,
}

impl Tunnels {
    pub fn new(home: Home) -> Arc<Self> {
        let mut config = CloudflaredConfig::new(tunnel_state_dir(&home));
        config.stop_grace = Duration::from_secs(3);
        config.home_binary = Some(home.root().join("bin").join("cloudflared"));
        Arc::new(Tunnels {
            home,
            provider: Arc::new(Paced {
                inner: Cloudflared::new(config),
                next: Mutex::new(Instant::now()),
            }),
            server: Mutex::new(None),
            apps: Mutex::new(HashMap::new()),
        })
    }

    /// Ends tunnel processes a previous daemon left behind (it was killed
    /// before it could close them), so no page ever has two.
    pub fn reap_orphans(&self) {
        end_leftovers(&self.home);
    }

    /// Opens the server's tunnel to `port`; its state goes to `tunnel.json`.
    pub async fn open_server(self: &Arc<Self>, port: u16) {
        self.save_server(TunnelState {
            state: "starting".into(),
            ..TunnelState::default()
        });
        let (watchdog, events) = self.spawn(port);
        *self.server.lock().await = Some(watchdog);
        let tunnels = self.clone();
        tokio::spawn(async move { tunnels.follow(events, None, None).await });
    }

    /// Opens an app's tunnel and waits for its first outcome.
    pub async fn open_app(self: &Arc<Self>, id: &str, port: u16) -> FirstOutcome {
        self.update_record(id, |r| {
            r.clear_tunnel();
            r.tunnel_state = Some("starting".into());
        });
        let (watchdog, events) = self.spawn(port);
        if let Some(old) = self.apps.lock().await.insert(id.to_owned(), watchdog) {
            old.stop().await;
        }
        let (first, outcome) = oneshot::channel();
        let tunnels = self.clone();
        let app = id.to_owned();
        tokio::spawn(async move { tunnels.follow(events, Some(app), Some(first)).await });
        tokio::time::timeout(FIRST_OUTCOME_TIMEOUT, outcome)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| FirstOutcome::Down("the tunnel gave no answer in time".into()))
    }

    /// Closes an app's tunnel: no restart after this.
    pub async fn close_app(&self, id: &str) {
        let watchdog = self.apps.lock().await.remove(id);
        if let Some(watchdog) = watchdog {
            watchdog.stop().await;
        }
        self.update_record(id, Record::clear_tunnel);
    }

    /// Closes every tunnel (the daemon is stopping).
    pub async fn close_all(&self) {
        let server = self.server.lock().await.take();
        let apps: Vec<(String, Watchdog)> = self.apps.lock().await.drain().collect();
        // All at once: `drop stop` waits for the whole daemon, not one tunnel after another.
        let ids: Vec<String> = apps.iter().map(|(id, _)| id.clone()).collect();
        let stops = server
            .into_iter()
            .chain(apps.into_iter().map(|(_, w)| w))
            .map(Watchdog::stop);
        futures_util::future::join_all(stops).await;
        for id in ids {
            self.update_record(&id, Record::clear_tunnel);
        }
        let _ = self.home.clear_tunnel_state();
    }

    fn spawn(&self, port: u16) -> (Watchdog, mpsc::UnboundedReceiver<TunnelEvent>) {
        let local = SocketAddr::from(([127, 0, 0, 1], port));
        Watchdog::spawn(self.provider.clone(), local, WatchdogConfig::default())
    }

    /// Writes every event of one watchdog where it belongs; the first one
    /// also goes to whoever waits for it.
    async fn follow(
        self: Arc<Self>,
        mut events: mpsc::UnboundedReceiver<TunnelEvent>,
        app: Option<String>,
        mut first: Option<oneshot::Sender<FirstOutcome>>,
    ) {
        let whose = app
            .as_deref()
            .map_or("server".to_owned(), |id| format!("app {id}"));
        while let Some(event) = events.recv().await {
            let state = state_of(&event);
            log_event(&whose, &event);
            // Recorded before anyone is told, so what they read next agrees.
            match &app {
                None => self.save_server(state),
                Some(id) => self.update_record(id, |r| {
                    r.tunnel_url = Some(state.url.clone()).filter(|u| !u.is_empty());
                    r.tunnel_pid = state.pid;
                    r.tunnel_start_time = state.start_time;
                    r.tunnel_state = Some(state.state.clone());
                    r.tunnel_error = state.error.clone();
                }),
            }
            if let Some(first) = first.take() {
                let _ = first.send(outcome_of(&event));
            }
        }
    }

    fn save_server(&self, state: TunnelState) {
        if let Err(e) = tokio::task::block_in_place(|| self.home.save_tunnel_state(&state)) {
            eprintln!("drop: could not record the server's tunnel: {e}");
        }
    }

    fn update_record(&self, id: &str, change: impl FnOnce(&mut Record)) {
        let result = tokio::task::block_in_place(|| {
            self.home.registry().update(|pages| {
                if let Some(record) = pages.get_mut(id) {
                    change(record);
                }
                Ok::<_, RegistryError>(())
            })
        });
        if let Err(e) = result {
            eprintln!("drop: could not record the tunnel of app {id}: {e}");
        }
    }
}

/// The record of one watchdog event.
fn state_of(event: &TunnelEvent) -> TunnelState {
    match event {
        TunnelEvent::Up { url, pid } => TunnelState {
            url: url.clone(),
            pid: *pid,
            start_time: pid.and_then(process::start_time),
            state: "up".into(),
            ..TunnelState::default()
        },
        TunnelEvent::Down { reason, retry_in } => TunnelState {
            state: if reason.is_rate_limited() {
                "rate_limited"
            } else {
                "down"
            }
            .into(),
            error: Some(format!(
                "{}; retrying in {} s",
                first_line(reason),
                retry_in.as_secs().max(1)
            )),
            ..TunnelState::default()
        },
        TunnelEvent::GaveUp { reason } => TunnelState {
            state: "failed".into(),
            error: Some(first_line(reason)),
            ..TunnelState::default()
        },
    }
}

fn outcome_of(event: &TunnelEvent) -> FirstOutcome {
    match event {
        TunnelEvent::Up { url, .. } => FirstOutcome::Up(url.clone()),
        TunnelEvent::Down { reason, .. } | TunnelEvent::GaveUp { reason } => {
            FirstOutcome::Down(first_line(reason))
        }
    }
}

fn log_event(whose: &str, event: &TunnelEvent) {
    match event {
        TunnelEvent::Up { url, pid } => eprintln!("drop: {whose} tunnel up at {url} (pid {pid:?})"),
        TunnelEvent::Down { reason, retry_in } => {
            eprintln!("drop: {whose} tunnel down: {reason}; retrying in {retry_in:?}");
        }
        TunnelEvent::GaveUp { reason } => eprintln!("drop: {whose} tunnel given up: {reason}"),
    }
}

/// A reason's first line: the log tail that follows is for the log file.
fn first_line(reason: &DownReason) -> String {
    let text = reason.to_string();
    let line = text.lines().next().unwrap_or_default();
    // "…; its log ends with:" introduces the tail, which stays in the log file.
    let line = line.strip_suffix("; its log ends with:").unwrap_or(line);
    line.trim_end_matches([';', ':']).to_owned()
}

/// Ends every tunnel process of this drop home that no daemon owns, and
/// forgets every recorded tunnel. Call it only when no daemon runs (a new
/// daemon before it opens any, or a command after the daemon died): then
/// every such process is a leftover. Returns how many were ended.
pub fn end_leftovers(home: &Home) -> usize {
    let strays = stray_tunnels(home);
    for &pid in &strays {
        eprintln!("drop: ending tunnel process {pid}, left by a server that was killed");
        process::signal_group(pid, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while strays.iter().any(|&pid| process::start_time(pid).is_some())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &strays {
        if process::start_time(pid).is_some() {
            process::signal_group(pid, libc::SIGKILL);
        }
    }
    let _ = home.clear_tunnel_state();
    let _ = home.registry().update(|pages| {
        for id in pages
            .iter()
            .map(|(id, _)| id.to_owned())
            .collect::<Vec<_>>()
        {
            if let Some(record) = pages.get_mut(&id) {
                record.clear_tunnel();
            }
        }
        Ok::<_, RegistryError>(())
    });
    strays.len()
}

/// Live processes running with this home's cloudflared config file, which
/// only drop's tunnels use: found whether or not their pid was recorded.
fn stray_tunnels(home: &Home) -> Vec<u32> {
    let config = tunnel_state_dir(home).join(CONFIG_FILE);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| process::start_time(pid).is_some())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
                args.windows(2)
                    .any(|w| w[0] == b"--config" && w[1] == config.as_os_str().as_encoded_bytes())
            })
        })
        .collect()
}

/// Where cloudflared's config and logs go.
fn tunnel_state_dir(home: &Home) -> std::path::PathBuf {
    home.logs_dir()
}
