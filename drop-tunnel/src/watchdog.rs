//! The watchdog: keeps one tunnel open, reopening it with backoff, and
//! reports every change.
//!
//! A tunnel whose process runs but has lost its edge connection is first
//! left to reconnect by itself (cloudflared does, keeping its URL): the
//! watchdog reports [`TunnelEvent::Reconnecting`] and replaces the tunnel,
//! which gives it a new URL, only when it stays unhealthy for
//! [`WatchdogConfig::replace_after`].
//!
//! [`Watchdog::reopen`] replaces a healthy tunnel on request, once the
//! provider's configuration changed (a named tunnel's ingress rules): the
//! new tunnel is opened first and the old one closed once it is up.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{Backoff, BackoffPolicy, Protocol, Tunnel, TunnelError, TunnelExit, TunnelProvider};

/// How the watchdog watches. Build it with [`WatchdogConfig::default`] and
/// change the fields you need.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WatchdogConfig {
    /// The delays between attempts.
    pub backoff: BackoffPolicy,
    /// How often a live tunnel is asked whether it can carry traffic.
    pub health_interval: Duration,
    /// How long a live tunnel may stay without an edge connection before it
    /// is replaced (with a new URL). cloudflared reconnects by itself with
    /// a backoff of up to about half a minute; this leaves it room for a
    /// few tries.
    pub replace_after: Duration,
    /// Give up after this many failures in a row; `None` never gives up
    /// (unless the failure is permanent, such as a missing binary).
    pub max_failures: Option<u32>,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            backoff: BackoffPolicy::default(),
            health_interval: Duration::from_secs(10),
            replace_after: Duration::from_secs(120),
            max_failures: None,
        }
    }
}

/// What happened to the watched tunnel.
#[derive(Debug)]
#[non_exhaustive]
pub enum TunnelEvent {
    /// A tunnel is being opened (`attempt` counts from 1 since the last
    /// tunnel that came up); opening can take half a minute.
    Opening {
        /// Which attempt in a row this is.
        attempt: u32,
    },
    /// A tunnel is up at `url`. Each reopening brings a new URL; after
    /// [`TunnelEvent::Reconnecting`] it is the same URL again.
    #[non_exhaustive]
    Up {
        /// The public URL.
        url: String,
        /// The process that keeps it open.
        pid: Option<u32>,
        /// How it reaches the edge, when the provider says.
        protocol: Option<Protocol>,
    },
    /// The tunnel's process runs but has lost its edge connection; it is
    /// reconnecting by itself and keeps `url`.
    Reconnecting {
        /// The URL it keeps.
        url: String,
    },
    /// The tunnel is down, or could not be opened; the next attempt comes
    /// after `retry_in`.
    Down {
        /// Why.
        reason: DownReason,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// The watchdog stopped trying; no event follows.
    GaveUp {
        /// The last failure.
        reason: DownReason,
    },
}

/// Why a tunnel is down.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownReason {
    /// The tunnel process ended.
    #[error("the tunnel process ended ({})", crate::error::describe_code(.0.code))]
    Exited(TunnelExit),
    /// The process ran without an edge connection for too long.
    #[error(
        "the tunnel process ran without a connection to the edge for {}",
        crate::error::seconds(*.0)
    )]
    Unhealthy(Duration),
    /// A new tunnel could not be opened.
    #[error(transparent)]
    OpenFailed(TunnelError),
}

impl DownReason {
    /// Whether the quick-tunnel service refused us for asking too often.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, DownReason::OpenFailed(TunnelError::RateLimited))
    }

    /// Whether this machine's network is at fault (see
    /// [`TunnelError::is_network`]).
    pub fn is_network(&self) -> bool {
        matches!(self, DownReason::OpenFailed(err) if err.is_network())
    }

    /// The last lines of the tunnel's log, when there are any.
    pub fn log_tail(&self) -> Option<&str> {
        match self {
            DownReason::Exited(exit) => Some(&exit.log_tail),
            DownReason::Unhealthy(_) => None,
            DownReason::OpenFailed(err) => err.log_tail(),
        }
    }

    /// Whether no retry can mend it (see [`TunnelError::is_permanent`]).
    pub fn is_permanent(&self) -> bool {
        matches!(self, DownReason::OpenFailed(err) if err.is_permanent())
    }
}

/// A running watchdog. Dropping it stops it too, without waiting.
#[derive(Debug)]
pub struct Watchdog {
    stop: watch::Sender<bool>,
    /// Counts the calls to [`Watchdog::reopen`].
    reopen: watch::Sender<u64>,
    url: watch::Receiver<Option<String>>,
    task: JoinHandle<()>,
}

impl Watchdog {
    /// Starts keeping a tunnel to `local` open through `provider`, and
    /// returns the watchdog with the stream of its events. Must be called
    /// within a Tokio runtime.
    pub fn spawn<P: TunnelProvider + 'static>(
        provider: P,
        local: SocketAddr,
        config: WatchdogConfig,
    ) -> (Watchdog, TunnelEvents) {
        let (stop, stop_rx) = watch::channel(false);
        let (reopen, reopen_rx) = watch::channel(0);
        let (url, url_rx) = watch::channel(None);
        let (events, events_rx) = mpsc::unbounded_channel();
        let keeper = Keeper {
            backoff: Backoff::new(config.backoff.clone()),
            provider,
            local,
            config,
            events,
            url,
            stop: stop_rx,
            reopen: reopen_rx,
        };
        let task = tokio::spawn(keeper.run());
        let watchdog = Watchdog {
            stop,
            reopen,
            url: url_rx,
            task,
        };
        let events = TunnelEvents {
            receiver: events_rx,
        };
        (watchdog, events)
    }

    /// The URL of the tunnel now, while one is up (also while it
    /// reconnects); `None` between tunnels.
    pub fn current_url(&self) -> Option<String> {
        self.url.borrow().clone()
    }

    /// Replaces the tunnel with a new one from the provider, which reads
    /// its configuration again (for a named tunnel: new ingress rules, the
    /// same URL). The new tunnel is opened while the old one still serves,
    /// and the old one is closed once the new one is up: events
    /// [`TunnelEvent::Opening`], then [`TunnelEvent::Up`] with the new
    /// process. If the new one cannot be opened, the old one is closed too
    /// and the watchdog carries on as after any failure (down, backoff,
    /// retries), so the new configuration is what comes up next.
    ///
    /// Between tunnels (while one opens, or during a pause) nothing is
    /// interrupted: the next tunnel to come up has been opened with the
    /// configuration of the time, and one whose opening began before this
    /// call is replaced as soon as it is up. Returns at once.
    pub fn reopen(&self) {
        self.reopen.send_modify(|calls| *calls += 1);
    }

    /// Stops reopening, closes the current tunnel and waits until its
    /// process is gone.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Whether the watchdog has ended (it gave up, or was stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// The events of one [`Watchdog`], in the order they happened.
///
/// Events are few (one per open or failure), so they are queued without
/// bound: nobody reading them does not stall the watchdog.
#[derive(Debug)]
pub struct TunnelEvents {
    receiver: mpsc::UnboundedReceiver<TunnelEvent>,
}

impl TunnelEvents {
    /// The next event; `None` once the watchdog has ended (it gave up, was
    /// stopped or dropped) and every event before was read. Cancel-safe.
    pub async fn recv(&mut self) -> Option<TunnelEvent> {
        self.receiver.recv().await
    }
}

/// The watchdog's task and everything it owns.
struct Keeper<P> {
    provider: P,
    local: SocketAddr,
    config: WatchdogConfig,
    backoff: Backoff,
    events: mpsc::UnboundedSender<TunnelEvent>,
    url: watch::Sender<Option<String>>,
    stop: watch::Receiver<bool>,
    reopen: watch::Receiver<u64>,
}

/// How watching a live tunnel ended.
enum Watched {
    /// It went down.
    Down(DownReason),
    /// [`Watchdog::reopen`] asked for a new one.
    Reopen,
}

impl<P: TunnelProvider> Keeper<P> {
    async fn run(mut self) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.emit(TunnelEvent::Opening { attempt });
            // What was asked before this open is in it; what is asked
            // while it opens replaces it once up.
            self.reopen.borrow_and_update();
            let Some(opened) = until_stopped(&mut self.stop, self.provider.open(self.local)).await
            else {
                return;
            };
            let (reason, up_for) = match opened {
                Ok(tunnel) => {
                    attempt = 0;
                    match self.supervise(tunnel).await {
                        Some(down) => down,
                        None => return,
                    }
                }
                Err(err) => (DownReason::OpenFailed(err), Duration::ZERO),
            };
            if up_for >= self.config.backoff.reset_after {
                self.backoff.reset();
            }
            let Some(delay) = self.report_down(reason) else {
                return;
            };
            let pause = tokio::time::sleep(delay);
            if until_stopped(&mut self.stop, pause).await.is_none() {
                return;
            }
        }
    }

    /// Reports `tunnel` up and watches it until it goes down (why, and
    /// after how long) or the watchdog stops (`None`), replacing it when
    /// asked to. Closes it either way.
    async fn supervise(&mut self, mut tunnel: Tunnel) -> Option<(DownReason, Duration)> {
        let since = Instant::now();
        loop {
            self.url.send_replace(Some(tunnel.url().to_owned()));
            self.emit(up_event(&tunnel));
            let Keeper {
                config,
                events,
                stop,
                reopen,
                ..
            } = self;
            let watched = watch_tunnel(&mut tunnel, config, events, reopen);
            let reason = match until_stopped(stop, watched).await {
                Some(Watched::Reopen) => match self.open_replacement().await {
                    Some(Ok(new)) => {
                        let mut old = std::mem::replace(&mut tunnel, new);
                        old.close().await;
                        continue;
                    }
                    Some(Err(err)) => Some(DownReason::OpenFailed(err)),
                    None => None,
                },
                Some(Watched::Down(reason)) => Some(reason),
                None => None,
            };
            // Even a dead process may have left something in its group.
            tunnel.close().await;
            self.url.send_replace(None);
            return reason.map(|reason| (reason, since.elapsed()));
        }
    }

    /// Opens the replacement of the live tunnel, which keeps serving
    /// meanwhile; `None` if the watchdog stops first.
    async fn open_replacement(&mut self) -> Option<Result<Tunnel, TunnelError>> {
        self.emit(TunnelEvent::Opening { attempt: 1 });
        self.reopen.borrow_and_update();
        until_stopped(&mut self.stop, self.provider.open(self.local)).await
    }

    /// Reports the failure; returns the wait before the next attempt, or
    /// `None` after giving up.
    fn report_down(&mut self, reason: DownReason) -> Option<Duration> {
        let exhausted =
            (self.config.max_failures).is_some_and(|max| self.backoff.failures() + 1 >= max);
        if exhausted || reason.is_permanent() {
            self.emit(TunnelEvent::GaveUp { reason });
            return None;
        }
        let retry_in = self.backoff.next_delay(reason.is_rate_limited());
        self.emit(TunnelEvent::Down { reason, retry_in });
        Some(retry_in)
    }

    fn emit(&self, event: TunnelEvent) {
        emit(&self.events, event);
    }
}

fn up_event(tunnel: &Tunnel) -> TunnelEvent {
    TunnelEvent::Up {
        url: tunnel.url().to_owned(),
        pid: tunnel.pid(),
        protocol: tunnel.protocol(),
    }
}

fn emit(events: &mpsc::UnboundedSender<TunnelEvent>, event: TunnelEvent) {
    // A caller that stopped listening still wants the tunnel kept up.
    let _ = events.send(event);
}

/// Waits until the tunnel ends, stays unhealthy for `replace_after`, or a
/// reopen is asked for. A lost connection is reported once as
/// reconnecting, its return as up.
async fn watch_tunnel(
    tunnel: &mut Tunnel,
    config: &WatchdogConfig,
    events: &mpsc::UnboundedSender<TunnelEvent>,
    reopen: &mut watch::Receiver<u64>,
) -> Watched {
    let first = Instant::now() + config.health_interval;
    let mut checks = tokio::time::interval_at(first, config.health_interval);
    checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut unhealthy_since: Option<Instant> = None;
    loop {
        tokio::select! {
            exit = tunnel.wait() => return Watched::Down(DownReason::Exited(exit)),
            () = asked(reopen) => return Watched::Reopen,
            _ = checks.tick() => {}
        }
        let healthy = tunnel.healthy().await;
        match (healthy, unhealthy_since) {
            (true, None) => {}
            (true, Some(_)) => {
                unhealthy_since = None;
                emit(events, up_event(tunnel));
            }
            (false, None) => {
                unhealthy_since = Some(Instant::now());
                let url = tunnel.url().to_owned();
                emit(events, TunnelEvent::Reconnecting { url });
            }
            (false, Some(since)) if since.elapsed() >= config.replace_after => {
                return Watched::Down(DownReason::Unhealthy(since.elapsed()));
            }
            (false, Some(_)) => {}
        }
    }
}

/// Waits for a call to [`Watchdog::reopen`] not seen yet; forever once the
/// watchdog is gone (its stop signal ends the wait then).
async fn asked(reopen: &mut watch::Receiver<u64>) {
    if reopen.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs `work` unless the stop signal comes first (`None`). A dropped
/// [`Watchdog`] counts as a stop.
async fn until_stopped<F: Future>(stop: &mut watch::Receiver<bool>, work: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = stop.wait_for(|stopped| *stopped) => None,
        output = work => Some(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MockTunnelProvider, TunnelProcess};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    const LOCAL: &str = "127.0.0.1:8080";

    /// A tunnel process driven by the test: it dies after `lifetime` (if
    /// any), answers health from a flag, and counts its closes.
    struct ScriptedProcess {
        lifetime: Option<Duration>,
        born: Instant,
        healthy: Arc<AtomicBool>,
        closes: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl TunnelProcess for ScriptedProcess {
        async fn wait(&mut self) -> TunnelExit {
            match self.lifetime {
                Some(lifetime) => tokio::time::sleep_until(self.born + lifetime).await,
                None => std::future::pending().await,
            }
            TunnelExit {
                code: Some(1),
                log_tail: "crashed".into(),
            }
        }
        async fn healthy(&self) -> bool {
            self.healthy.load(Ordering::SeqCst)
        }
        async fn close(&mut self) {
            self.closes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// What the scripted tunnels share with the test.
    #[derive(Clone, Default)]
    struct Script {
        healthy: Arc<AtomicBool>,
        closes: Arc<AtomicUsize>,
        opens: Arc<Mutex<Vec<Instant>>>,
    }

    impl Script {
        /// Tunnels start healthy.
        fn new() -> Self {
            let script = Script::default();
            script.healthy.store(true, Ordering::SeqCst);
            script
        }

        fn tunnel(&self, n: usize, lifetime: Option<Duration>) -> Tunnel {
            let process = ScriptedProcess {
                lifetime,
                born: Instant::now(),
                healthy: self.healthy.clone(),
                closes: self.closes.clone(),
            };
            let url = format!("https://tunnel-{n}.trycloudflare.com");
            Tunnel::new(url, Some(1000 + n as u32), Box::new(process))
        }

        fn record_open(&self) -> usize {
            let mut opens = self.opens.lock().unwrap();
            opens.push(Instant::now());
            opens.len()
        }

        /// The gaps between consecutive opens, in whole seconds.
        fn gaps(&self) -> Vec<u64> {
            let opens = self.opens.lock().unwrap();
            opens.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect()
        }
    }

    fn config() -> WatchdogConfig {
        let mut config = WatchdogConfig::default();
        config.backoff.jitter = 0.0;
        config
    }

    fn failing_provider(script: &Script, error: fn() -> TunnelError) -> MockTunnelProvider {
        let script = script.clone();
        let mut provider = MockTunnelProvider::new();
        provider.expect_open().returning(move |_| {
            script.record_open();
            Err(error())
        });
        provider
    }

    fn no_network() -> TunnelError {
        TunnelError::NoNetwork {
            detail: "no such host".into(),
        }
    }

    /// The next event that is not an `Opening`.
    async fn next(events: &mut TunnelEvents) -> TunnelEvent {
        loop {
            match events.recv().await.expect("the watchdog reports") {
                TunnelEvent::Opening { .. } => continue,
                event => return event,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reopens_after_failures_at_one_two_then_four_seconds() {
        let script = Script::new();
        let provider = failing_provider(&script, no_network);
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let mut waits = Vec::new();
        for _ in 0..4 {
            match next(&mut events).await {
                TunnelEvent::Down { retry_in, reason } => {
                    assert!(matches!(
                        reason,
                        DownReason::OpenFailed(TunnelError::NoNetwork { .. })
                    ));
                    waits.push(retry_in.as_secs());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(script.gaps(), [1, 2, 4]);
        watchdog.stop().await;
    }

    /// Cloudflare's edge not found after the URL came is the network's
    /// fault: retried with the same backoff as no network at all, never
    /// given up.
    #[tokio::test(start_paused = true)]
    async fn an_unreachable_edge_backs_off_as_no_network_does() {
        let script = Script::new();
        let provider = failing_provider(&script, || TunnelError::EdgeUnreachable {
            detail: "lookup _v2-origintunneld._tcp.argotunnel.com: no such host".into(),
            log_tail: String::new(),
        });
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let mut waits = Vec::new();
        for _ in 0..4 {
            let TunnelEvent::Down { retry_in, reason } = next(&mut events).await else {
                panic!("down, and retried");
            };
            assert!(reason.is_network() && !reason.is_rate_limited(), "{reason}");
            waits.push(retry_in.as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8]);
        watchdog.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_waits_at_least_a_minute_before_the_next_open() {
        let script = Script::new();
        let provider = failing_provider(&script, || TunnelError::RateLimited);
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let TunnelEvent::Down { retry_in, reason } = next(&mut events).await else {
            panic!("down first");
        };
        assert!(reason.is_rate_limited());
        assert_eq!(retry_in, Duration::from_secs(60));
        next(&mut events).await;
        assert_eq!(script.gaps(), [60]);
        watchdog.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_during_backoff_opens_nothing_more() {
        let script = Script::new();
        let provider = failing_provider(&script, no_network);
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        next(&mut events).await;
        watchdog.stop().await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(script.opens.lock().unwrap().len(), 1);
        assert!(events.recv().await.is_none(), "no event after stop");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_tunnel_is_closed_and_reopened_with_a_new_url() {
        let script = Script::new();
        let shared = script.clone();
        let mut provider = MockTunnelProvider::new();
        provider.expect_open().times(2).returning(move |_| {
            let n = shared.record_open();
            Ok(shared.tunnel(n, (n == 1).then_some(Duration::from_secs(30))))
        });
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let TunnelEvent::Up { url: first, .. } = next(&mut events).await else {
            panic!("up first");
        };
        let TunnelEvent::Down { reason, retry_in } = next(&mut events).await else {
            panic!("then down");
        };
        assert!(matches!(
            reason,
            DownReason::Exited(TunnelExit { code: Some(1), .. })
        ));
        assert_eq!(retry_in, Duration::from_secs(1));
        assert_eq!(
            script.closes.load(Ordering::SeqCst),
            1,
            "the dead one is closed"
        );
        let TunnelEvent::Up {
            url: second, pid, ..
        } = next(&mut events).await
        else {
            panic!("then up again");
        };
        assert_ne!(first, second);
        assert_eq!(pid, Some(1002));
        assert_eq!(script.gaps(), [31]);
        watchdog.stop().await;
        assert_eq!(
            script.closes.load(Ordering::SeqCst),
            2,
            "stop closes the live one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_connection_is_left_to_reconnect_before_the_tunnel_is_replaced() {
        let script = Script::new();
        let shared = script.clone();
        let mut provider = MockTunnelProvider::new();
        provider.expect_open().returning(move |_| {
            let n = shared.record_open();
            Ok(shared.tunnel(n, None))
        });
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let TunnelEvent::Up { url, .. } = next(&mut events).await else {
            panic!("up");
        };
        assert_eq!(watchdog.current_url().as_deref(), Some(url.as_str()));
        tokio::time::sleep(Duration::from_secs(25)).await;
        let opened_at = *script.opens.lock().unwrap().last().unwrap();

        // Lost at 25 s, seen at the 30 s check, back by the 40 s one.
        script.healthy.store(false, Ordering::SeqCst);
        let TunnelEvent::Reconnecting { url: kept } = next(&mut events).await else {
            panic!("reconnecting");
        };
        assert_eq!(kept, url);
        assert_eq!((Instant::now() - opened_at).as_secs(), 30);
        assert_eq!(watchdog.current_url().as_deref(), Some(url.as_str()));
        script.healthy.store(true, Ordering::SeqCst);
        let TunnelEvent::Up { url: again, .. } = next(&mut events).await else {
            panic!("up again");
        };
        assert_eq!(again, url, "the same URL: cloudflared reconnected");
        assert_eq!(script.opens.lock().unwrap().len(), 1);

        // Lost for good: replaced once it has been unhealthy for two minutes.
        script.healthy.store(false, Ordering::SeqCst);
        let lost_at = Instant::now();
        assert!(matches!(
            next(&mut events).await,
            TunnelEvent::Reconnecting { .. }
        ));
        let TunnelEvent::Down { reason, .. } = next(&mut events).await else {
            panic!("down");
        };
        assert!(matches!(reason, DownReason::Unhealthy(_)), "{reason:?}");
        assert_eq!((Instant::now() - lost_at).as_secs(), 130);
        script.healthy.store(true, Ordering::SeqCst);
        let TunnelEvent::Up { url: new, .. } = next(&mut events).await else {
            panic!("replaced");
        };
        assert_ne!(new, url);
        watchdog.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn every_attempt_is_announced_and_the_url_is_known_only_while_up() {
        let script = Script::new();
        let shared = script.clone();
        let mut provider = MockTunnelProvider::new();
        provider
            .expect_open()
            .returning(move |_| match shared.record_open() {
                1 => Err(no_network()),
                n => Ok(shared.tunnel(n, Some(Duration::from_secs(5)))),
            });
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let event = events.recv().await.unwrap();
            seen.push(match event {
                TunnelEvent::Opening { attempt } => format!("opening {attempt}"),
                TunnelEvent::Up { .. } => {
                    assert!(watchdog.current_url().is_some());
                    "up".into()
                }
                TunnelEvent::Down { .. } => "down".into(),
                other => panic!("unexpected {other:?}"),
            });
        }
        assert_eq!(seen, ["opening 1", "down", "opening 2", "up", "down"]);
        assert_eq!(watchdog.current_url(), None, "between tunnels");
        watchdog.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_stable_run_resets_the_backoff() {
        let script = Script::new();
        let shared = script.clone();
        let mut provider = MockTunnelProvider::new();
        provider.expect_open().returning(move |_| {
            let n = shared.record_open();
            match n {
                // Three quick failures, then eleven minutes up.
                1..=3 => Err(no_network()),
                4 => Ok(shared.tunnel(n, Some(Duration::from_secs(11 * 60)))),
                _ => Ok(shared.tunnel(n, None)),
            }
        });
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let mut waits = Vec::new();
        while waits.len() < 4 {
            if let TunnelEvent::Down { retry_in, .. } = next(&mut events).await {
                waits.push(retry_in.as_secs());
            }
        }
        assert_eq!(waits, [1, 2, 4, 1]);
        watchdog.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_once_when_the_binary_is_missing() {
        let script = Script::new();
        let provider = failing_provider(&script, || TunnelError::NotFound {
            searched: Vec::new(),
            hint: None,
        });
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let TunnelEvent::GaveUp { reason } = next(&mut events).await else {
            panic!("gave up");
        };
        assert!(reason.is_permanent());
        assert!(
            reason.to_string().starts_with("cloudflared not found"),
            "{reason}"
        );
        assert!(events.recv().await.is_none());
        assert!(watchdog.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_allowed_failures_in_a_row() {
        let script = Script::new();
        let provider = failing_provider(&script, no_network);
        let mut config = config();
        config.max_failures = Some(3);
        let (_watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config);
        assert!(matches!(next(&mut events).await, TunnelEvent::Down { .. }));
        assert!(matches!(next(&mut events).await, TunnelEvent::Down { .. }));
        assert!(matches!(
            next(&mut events).await,
            TunnelEvent::GaveUp { .. }
        ));
        assert!(events.recv().await.is_none());
        assert_eq!(script.opens.lock().unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_watchdog_closes_the_tunnel() {
        let script = Script::new();
        let shared = script.clone();
        let mut provider = MockTunnelProvider::new();
        provider
            .expect_open()
            .times(1)
            .returning(move |_| Ok(shared.tunnel(shared.record_open(), None)));
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        assert!(matches!(next(&mut events).await, TunnelEvent::Up { .. }));
        drop(watchdog);
        assert!(events.recv().await.is_none(), "the task ends");
        assert_eq!(script.closes.load(Ordering::SeqCst), 1);
    }

    /// A provider whose opens take `delay`, each giving the next scripted
    /// tunnel (never dying), and failing where `fails` says.
    struct SlowProvider {
        script: Script,
        delay: Duration,
        fails: fn(usize) -> bool,
        /// How many tunnels were closed when each open began.
        closed_at_open: Arc<Mutex<Vec<usize>>>,
    }

    #[async_trait::async_trait]
    impl TunnelProvider for SlowProvider {
        async fn open(&self, _local: SocketAddr) -> Result<Tunnel, TunnelError> {
            let closed = self.script.closes.load(Ordering::SeqCst);
            self.closed_at_open.lock().unwrap().push(closed);
            let n = self.script.record_open();
            tokio::time::sleep(self.delay).await;
            match (self.fails)(n) {
                true => Err(no_network()),
                false => Ok(self.script.tunnel(n, None)),
            }
        }
    }

    fn slow(script: &Script, delay: Duration, fails: fn(usize) -> bool) -> SlowProvider {
        SlowProvider {
            script: script.clone(),
            delay,
            fails,
            closed_at_open: Arc::default(),
        }
    }

    /// A reopen opens the new tunnel while the old one still serves, and
    /// closes the old one once the new one is up.
    #[tokio::test(start_paused = true)]
    async fn a_reopen_opens_the_new_tunnel_before_closing_the_old_one() {
        let script = Script::new();
        let provider = slow(&script, Duration::from_secs(2), |_| false);
        let closed_at_open = provider.closed_at_open.clone();
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        let TunnelEvent::Up { pid: first, .. } = next(&mut events).await else {
            panic!("up");
        };
        watchdog.reopen();
        assert!(matches!(
            events.recv().await,
            Some(TunnelEvent::Opening { attempt: 1 })
        ));
        let TunnelEvent::Up { pid: second, .. } = next(&mut events).await else {
            panic!("up again");
        };
        assert_eq!((first, second), (Some(1001), Some(1002)));
        assert_eq!(
            *closed_at_open.lock().unwrap(),
            [0, 0],
            "the old one served while the new one opened"
        );
        assert_eq!(
            script.closes.load(Ordering::SeqCst),
            1,
            "then it was closed"
        );
        assert_eq!(
            watchdog.current_url().as_deref(),
            Some("https://tunnel-2.trycloudflare.com")
        );
        watchdog.stop().await;
        assert_eq!(script.closes.load(Ordering::SeqCst), 2);
    }

    /// A reopen asked while a tunnel is opening replaces that tunnel as
    /// soon as it is up: it may have been opened with the old
    /// configuration.
    #[tokio::test(start_paused = true)]
    async fn a_reopen_asked_while_opening_replaces_the_tunnel_once_up() {
        let script = Script::new();
        let provider = slow(&script, Duration::from_secs(5), |_| false);
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        tokio::time::sleep(Duration::from_secs(1)).await;
        watchdog.reopen();
        assert!(matches!(
            next(&mut events).await,
            TunnelEvent::Up {
                pid: Some(1001),
                ..
            }
        ));
        assert!(matches!(
            next(&mut events).await,
            TunnelEvent::Up {
                pid: Some(1002),
                ..
            }
        ));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(script.opens.lock().unwrap().len(), 2, "once, not again");
        watchdog.stop().await;
    }

    /// A replacement that cannot be opened takes the old tunnel down with
    /// it, and the watchdog carries on with its backoff.
    #[tokio::test(start_paused = true)]
    async fn a_failed_replacement_closes_the_old_tunnel_and_retries_with_backoff() {
        let script = Script::new();
        let provider = slow(&script, Duration::ZERO, |n| n == 2);
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        assert!(matches!(next(&mut events).await, TunnelEvent::Up { .. }));
        watchdog.reopen();
        let TunnelEvent::Down { reason, retry_in } = next(&mut events).await else {
            panic!("down");
        };
        assert!(matches!(
            reason,
            DownReason::OpenFailed(TunnelError::NoNetwork { .. })
        ));
        assert_eq!(retry_in, Duration::from_secs(1));
        assert_eq!(script.closes.load(Ordering::SeqCst), 1);
        assert_eq!(watchdog.current_url(), None);
        assert!(matches!(
            next(&mut events).await,
            TunnelEvent::Up {
                pid: Some(1003),
                ..
            }
        ));
        watchdog.stop().await;
    }

    /// Between tunnels a reopen interrupts nothing: the pause is kept, and
    /// the tunnel that comes up next is not replaced again.
    #[tokio::test(start_paused = true)]
    async fn a_reopen_between_tunnels_keeps_the_pause_and_opens_once() {
        let script = Script::new();
        let provider = slow(&script, Duration::ZERO, |n| n == 1);
        let (watchdog, mut events) = Watchdog::spawn(provider, LOCAL.parse().unwrap(), config());
        assert!(matches!(next(&mut events).await, TunnelEvent::Down { .. }));
        watchdog.reopen();
        assert!(matches!(next(&mut events).await, TunnelEvent::Up { .. }));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(script.gaps(), [1], "after the pause, and only once");
        watchdog.stop().await;
    }
}
