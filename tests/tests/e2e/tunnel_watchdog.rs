//! The watchdog with the real provider and the fake cloudflared: deaths
//! noticed at once, reopening with a new URL, backoff, and a clean stop.

use std::time::{Duration, Instant};

use drop_tests::kill;
use drop_tests::tunnel::{FakeCloudflared, alive, local, lost_for_good, next_event};
use drop_tunnel::{DownReason, TunnelError, TunnelEvent, TunnelEvents, Watchdog, WatchdogConfig};

async fn next_up(events: &mut TunnelEvents) -> (String, u32) {
    match next_event(events).await {
        TunnelEvent::Up { url, pid, .. } => (url, pid.expect("a pid")),
        other => panic!("expected up, got {other:?}"),
    }
}

/// Killing the tunnel process: down at once, then up again with a new URL,
/// all within two seconds, with the default backoff.
#[tokio::test]
async fn a_killed_tunnel_is_back_with_a_new_url_within_two_seconds() {
    let fake = FakeCloudflared::new();
    let (watchdog, mut events) =
        Watchdog::spawn(fake.provider(), local(), WatchdogConfig::default());
    let (first_url, first_pid) = next_up(&mut events).await;

    let killed = Instant::now();
    kill(first_pid);
    let TunnelEvent::Down { reason, retry_in } = next_event(&mut events).await else {
        panic!("down after the kill");
    };
    let down_after = killed.elapsed();
    assert!(
        matches!(reason, DownReason::Exited(ref exit) if exit.code.is_none()),
        "{reason:?}"
    );
    assert!(
        down_after < Duration::from_millis(500),
        "death noticed late: {down_after:?}"
    );
    assert!(retry_in <= Duration::from_millis(1100), "{retry_in:?}");

    let (second_url, second_pid) = next_up(&mut events).await;
    let up_after = killed.elapsed();
    eprintln!("down after {down_after:?}, up after {up_after:?}");
    assert!(
        up_after < Duration::from_secs(2),
        "back up after {up_after:?}"
    );
    assert_ne!(first_url, second_url);
    assert_ne!(first_pid, second_pid);

    watchdog.stop().await;
    assert!(!alive(second_pid));
    fake.assert_no_process_left();
}

/// A cloudflared that fails at every start is retried less and less often.
#[tokio::test]
async fn a_fake_that_keeps_failing_is_retried_with_growing_delays() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "uuid");
    let mut config = WatchdogConfig::default();
    config.backoff.initial = Duration::from_millis(100);
    config.backoff.jitter = 0.0;
    let (watchdog, mut events) = Watchdog::spawn(fake.provider(), local(), config);
    let mut delays = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let TunnelEvent::Down { reason, retry_in } = next_event(&mut events).await else {
            panic!("down");
        };
        assert!(matches!(
            reason,
            DownReason::OpenFailed(TunnelError::ExitedEarly { .. })
        ));
        delays.push(retry_in.as_millis());
        seen.push(Instant::now());
    }
    assert_eq!(delays, [100, 200, 400, 800]);
    let gaps: Vec<_> = seen.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] > g[0]), "gaps grow: {gaps:?}");
    watchdog.stop().await;
    assert_eq!(fake.starts().len(), 4, "no start after stop");
    fake.assert_no_process_left();
}

/// A rate limit backs off a minute or more, where an ordinary failure waits
/// a second; stopping during that wait starts nothing more.
#[tokio::test]
async fn a_rate_limit_backs_off_far_longer_than_a_crash() {
    let crashing = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "uuid");
    let (crash_watchdog, mut crash_events) =
        Watchdog::spawn(crashing.provider(), local(), WatchdogConfig::default());
    let TunnelEvent::Down {
        retry_in: crash_wait,
        ..
    } = next_event(&mut crash_events).await
    else {
        panic!("down");
    };
    crash_watchdog.stop().await;

    let limited = FakeCloudflared::new().env("FAKE_CLOUDFLARED_MODE", "rate-limit");
    let (watchdog, mut events) =
        Watchdog::spawn(limited.provider(), local(), WatchdogConfig::default());
    let TunnelEvent::Down { reason, retry_in } = next_event(&mut events).await else {
        panic!("down");
    };
    assert!(reason.is_rate_limited(), "{reason:?}");
    assert!(retry_in >= Duration::from_secs(60), "{retry_in:?}");
    assert!(crash_wait < Duration::from_secs(2), "{crash_wait:?}");

    let stopping = Instant::now();
    watchdog.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(1),
        "stop does not wait out the backoff"
    );
    assert_eq!(limited.starts().len(), 1);
}

/// A dropped edge connection that cloudflared restores keeps its URL: the
/// watchdog says it is reconnecting, then up again, and opens nothing new.
#[tokio::test]
async fn a_dropped_connection_that_comes_back_keeps_the_url() {
    let fake = FakeCloudflared::new()
        .env("FAKE_CLOUDFLARED_DROP_AFTER_MS", "300")
        .env("FAKE_CLOUDFLARED_RECONNECT_MS", "1200");
    let mut config = WatchdogConfig::default();
    config.health_interval = Duration::from_millis(100);
    config.replace_after = Duration::from_secs(5);
    let (watchdog, mut events) = Watchdog::spawn(fake.provider(), local(), config);
    let (url, pid) = next_up(&mut events).await;
    let TunnelEvent::Reconnecting { url: kept } = next_event(&mut events).await else {
        panic!("reconnecting");
    };
    assert_eq!(kept, url);
    assert_eq!(watchdog.current_url().as_deref(), Some(url.as_str()));
    let (again, same_pid) = next_up(&mut events).await;
    assert_eq!(again, url, "cloudflared kept the hostname");
    assert_eq!(same_pid, pid);
    assert_eq!(fake.starts().len(), 1, "no new tunnel, no new URL");
    assert!(fake.log().matches("Registered tunnel connection").count() >= 2);
    watchdog.stop().await;
    fake.assert_no_process_left();
}

/// A live cloudflared that lost its edge connection for good is replaced
/// once it has been unhealthy past the reconnect allowance.
#[tokio::test]
async fn a_tunnel_without_a_connection_is_replaced() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_UNREADY_AFTER_MS", "200");
    let mut config = WatchdogConfig::default();
    config.health_interval = Duration::from_millis(100);
    config.replace_after = Duration::from_millis(300);
    let (watchdog, mut events) = Watchdog::spawn(fake.provider(), local(), config);
    let (first_url, first_pid) = next_up(&mut events).await;
    lost_for_good(&mut events).await;
    assert!(!alive(first_pid), "the unhealthy process is ended");
    let (second_url, _) = next_up(&mut events).await;
    assert_ne!(first_url, second_url);
    watchdog.stop().await;
    fake.assert_no_process_left();
}

/// Without cloudflared the watchdog gives up at once.
#[tokio::test]
async fn without_cloudflared_the_watchdog_gives_up() {
    let fake = FakeCloudflared::new();
    let mut config = fake.config();
    config.binary = None;
    let provider = drop_tunnel::Cloudflared::new(config);
    let (watchdog, mut events) = Watchdog::spawn(provider, local(), WatchdogConfig::default());
    let TunnelEvent::GaveUp { reason } = next_event(&mut events).await else {
        panic!("gave up");
    };
    assert!(reason.is_permanent());
    assert!(
        reason.to_string().starts_with("cloudflared not found"),
        "{reason}"
    );
    watchdog.stop().await;
}

/// Stopping ends the tunnel and everything it started; nothing restarts.
#[tokio::test]
async fn stop_leaves_no_process_behind() {
    let fake = FakeCloudflared::new().env("FAKE_CLOUDFLARED_CHILD", "1");
    let (watchdog, mut events) =
        Watchdog::spawn(fake.provider(), local(), WatchdogConfig::default());
    next_up(&mut events).await;
    watchdog.stop().await;
    for pid in fake.pids() {
        assert!(!alive(pid), "process {pid} survived stop");
    }
    assert!(events.recv().await.is_none(), "no event after stop");
    assert_eq!(fake.starts().len(), 1);
}
