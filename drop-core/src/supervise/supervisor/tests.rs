//! The supervisor against a fake runner ([`MockAppRunner`] with scripted
//! app processes), scripted tunnels and a real registry in a temp dir, on
//! tokio's paused clock.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drop_registry::TunnelPhase;
use drop_tunnel::MockTunnelProvider;
use tokio::time::Instant;

use super::*;
use crate::supervise::apps::MockAppRunner;
use crate::supervise::fakes::{
    APP, AppEnd, PORT, TestHome, Tunnels, eventually, fake_pid, no_network, verify,
};

const LIMITS: AppLimits = AppLimits {
    start_timeout: Duration::from_secs(2),
    stop_grace: Duration::from_secs(5),
};

const HOUR: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The process every fake launch gives.
fn app_process() -> ProcessId {
    ProcessId {
        pid: fake_pid(1),
        start_time: 77,
    }
}

/// The one launch a runner saw, and when.
#[derive(Clone, Default)]
struct Launched(Arc<Mutex<Option<(Instant, AppLaunch)>>>);

impl Launched {
    fn spec(&self) -> AppLaunch {
        let launched = self.0.lock().unwrap();
        launched.as_ref().expect("the app was launched").1.clone()
    }
}

/// A runner that launches the app once, as a process that runs until
/// `end` says, and that listens on [`PORT`] `listens_after` its launch
/// (never when `None`).
fn runner_for(end: &AppEnd, listens_after: Option<Duration>) -> (MockAppRunner, Launched) {
    runner_listening_on(end, listens_after, &[Ipv4Addr::UNSPECIFIED.into()])
}

/// [`runner_for`] an app that listens on `addresses`.
fn runner_listening_on(
    end: &AppEnd,
    listens_after: Option<Duration>,
    addresses: &[IpAddr],
) -> (MockAppRunner, Launched) {
    let launched = Launched::default();
    let mut runner = MockAppRunner::new();
    let (end, seen) = (end.clone(), launched.clone());
    runner.expect_launch().times(1).returning(move |spec| {
        *seen.0.lock().unwrap() = Some((Instant::now(), spec.clone()));
        Ok(end.process(app_process()))
    });
    let seen = launched.clone();
    runner
        .expect_is_listening()
        .withf(|port| *port == PORT)
        .returning(move |_| {
            let at = seen.0.lock().unwrap().as_ref().map(|(at, _)| *at);
            matches!((at, listens_after), (Some(at), Some(after)) if Instant::now() >= at + after)
        });
    let addresses = addresses.to_vec();
    runner.expect_listeners().returning(move |port| {
        addresses
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect()
    });
    (runner, launched)
}

/// The app's port is listened on at every address.
fn expect_listening_everywhere(runner: &mut MockAppRunner) {
    runner
        .expect_listeners()
        .returning(|port| vec![SocketAddr::from(([0, 0, 0, 0], port))]);
}

/// Expects the stop of an app: `end_group` with the configured grace, once,
/// and the app exits on it (SIGTERM: 128 + 15).
fn expect_stop(runner: &mut MockAppRunner, end: &AppEnd) {
    let end = end.clone();
    runner
        .expect_end_group()
        .withf(|id, grace| *id == app_process() && *grace == LIMITS.stop_grace)
        .times(1)
        .returning(move |_, _| {
            end.exit(Some(143));
            StopOutcome::Stopped
        });
}

/// Expects what is left of a crashed app's group to be ended at once.
fn expect_cleanup_after_crash(runner: &mut MockAppRunner) {
    runner
        .expect_end_leftovers()
        .withf(|id| *id == app_process())
        .times(1)
        .return_const(());
}

/// A keeper whose provider must never be asked for a tunnel.
fn no_tunnels(t: &TestHome) -> Arc<TunnelKeeper> {
    let mut provider = MockTunnelProvider::new();
    provider.expect_open().never();
    t.keeper(provider)
}

fn supervisor(
    t: &TestHome,
    runner: &Arc<MockAppRunner>,
    tunnels: Arc<TunnelKeeper>,
    tunneled: bool,
) -> Arc<Supervisor> {
    let reach = match tunneled {
        true => AppReach::Tunnel,
        false => AppReach::ThisMachine,
    };
    Supervisor::new(t.home.clone(), LIMITS, runner.clone(), tunnels, reach)
}

fn env() -> Vec<(String, String)> {
    vec![("PATH".into(), "/usr/bin".into())]
}

/// Records `APP` as running as [`app_process`], as an earlier daemon left it.
fn recorded_running(t: &TestHome) {
    let process = app_process();
    t.change(APP, |r| r.mark_running(process.pid, process.start_time));
}

/// A started app is launched as asked, and the start returns as soon as it
/// listens, with its pid and start time recorded.
#[tokio::test(start_paused = true)]
async fn starts_an_app_and_records_it_once_it_listens() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (runner, launched) = runner_for(&end, Some(ms(120)));
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    let began = Instant::now();
    let started = supervisor.start_app(APP, env()).await.unwrap();

    assert_eq!(started, Started::Now(None));
    let waited = began.elapsed();
    assert!(waited >= ms(120) && waited < ms(200), "{waited:?}");
    let spec = launched.spec();
    let record = t.record(APP);
    assert_eq!(spec.command, "serve");
    assert_eq!(spec.dir, record.source);
    assert_eq!(spec.env, env());
    assert_eq!(spec.log, t.home.logs_dir().join("app-app1.log"));
    assert_eq!(record.pid, Some(fake_pid(1)));
    assert_eq!(record.pid_start_time, Some(77));
    assert!(!record.crashed);
}

/// Starting an app whose recorded process still runs changes nothing.
#[tokio::test(start_paused = true)]
async fn starting_a_running_app_answers_already() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    recorded_running(&t);
    let mut runner = MockAppRunner::new();
    runner
        .expect_is_running()
        .withf(|id| *id == app_process())
        .times(1)
        .return_const(true);
    runner.expect_launch().never();
    runner.expect_is_listening().never();
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    let started = supervisor.start_app(APP, env()).await.unwrap();

    assert_eq!(started, Started::Already);
    assert_eq!(t.record(APP).pid, Some(fake_pid(1)));
    drop(supervisor);
    verify(runner);
}

/// An app whose port something else holds is not launched at all.
#[tokio::test(start_paused = true)]
async fn a_port_in_use_is_refused_before_anything_is_launched() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let mut runner = MockAppRunner::new();
    runner
        .expect_is_listening()
        .withf(|port| *port == PORT)
        .times(1)
        .return_const(true);
    runner.expect_launch().never();
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    let error = supervisor.start_app(APP, env()).await.unwrap_err();

    assert!(
        matches!(error, AppError::PortInUse { port: PORT }),
        "{error:?}"
    );
    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    drop(supervisor);
    verify(runner);
}

/// An app that dies before it listens is reported with its exit code and
/// the end of its log, and recorded as crashed.
#[tokio::test(start_paused = true)]
async fn an_app_that_exits_before_listening_is_reported_and_recorded_crashed() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let log: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    std::fs::write(app_log_path(&t.home, APP), log).unwrap();
    let end = AppEnd::new();
    let (mut runner, _) = runner_for(&end, None);
    expect_cleanup_after_crash(&mut runner);
    expect_listening_everywhere(&mut runner);
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);
    end.exit_after(ms(100), Some(3));

    let error = supervisor.start_app(APP, env()).await.unwrap_err();

    let AppError::ExitedBeforeListening {
        ref id,
        port,
        code,
        ref tail,
        ref log,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!((id.as_str(), port, code), (APP, PORT, Some(3)));
    assert_eq!(*log, app_log_path(&t.home, APP));
    let expected: Vec<String> = (6..=20).map(|i| format!("line {i}")).collect();
    assert_eq!(*tail, expected.join("\n"), "the last 15 lines");
    assert!(
        error
            .to_string()
            .starts_with("app app1 exited with code 3 before listening on port 4321"),
        "{error}"
    );
    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(record.crashed);
    assert_eq!(record.exit_code, Some(3));
    drop(supervisor);
    verify(runner);
}

/// An app that runs but never listens is stopped (with the configured
/// grace) once `start_timeout` has passed, and recorded as stopped.
#[tokio::test(start_paused = true)]
async fn an_app_that_never_listens_is_stopped_after_the_start_timeout() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (mut runner, _) = runner_for(&end, None);
    expect_stop(&mut runner, &end);
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    let began = Instant::now();
    let error = supervisor.start_app(APP, env()).await.unwrap_err();

    let waited = began.elapsed();
    assert!(
        matches!(error, AppError::NotListening { port: PORT, timeout, .. } if timeout == LIMITS.start_timeout),
        "{error:?}"
    );
    assert!(
        waited >= LIMITS.start_timeout && waited < LIMITS.start_timeout + ms(100),
        "{waited:?}"
    );
    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(!record.crashed, "drop stopped it: not a crash");
    assert_eq!(record.exit_code, None);
    drop(supervisor);
    verify(runner);
}

/// A running app that dies on its own is recorded as crashed with its exit
/// code the moment it ends, what is left of its group is ended, and its
/// tunnel is closed for good.
#[tokio::test(start_paused = true)]
async fn a_running_app_that_crashes_is_recorded_and_its_tunnel_closed() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (mut runner, _) = runner_for(&end, Some(Duration::ZERO));
    expect_cleanup_after_crash(&mut runner);
    expect_listening_everywhere(&mut runner);
    let runner = Arc::new(runner);
    let tunnels = Tunnels::new();
    let supervisor = supervisor(&t, &runner, t.keeper(tunnels.always_up()), true);
    supervisor.start_app(APP, env()).await.unwrap();
    assert_eq!(t.record(APP).tunnel_state, Some(TunnelPhase::Up));

    end.exit_after(Duration::from_secs(5), Some(1));
    eventually("the crash is recorded", Duration::from_secs(10), || {
        t.record(APP).crashed
    })
    .await;

    let record = t.record(APP);
    assert_eq!(record.exit_code, Some(1));
    assert_eq!(record.pid, None);
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    assert_eq!(tunnels.closes(), 1, "the app's tunnel is closed");
    tokio::time::sleep(HOUR).await;
    assert_eq!(tunnels.opens(), 1, "and never reopened");
    drop(supervisor);
    verify(runner);
}

/// Stopping a running app ends its group with the configured grace, waits
/// for its end, and records it stopped, not crashed.
#[tokio::test(start_paused = true)]
async fn stopping_a_running_app_ends_its_group_and_records_it_stopped() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (mut runner, _) = runner_for(&end, Some(Duration::ZERO));
    expect_stop(&mut runner, &end);
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);
    supervisor.start_app(APP, env()).await.unwrap();

    assert!(supervisor.stop_app(APP).await.unwrap());

    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    assert_eq!(record.exit_code, None);
    drop(supervisor);
    verify(runner);
}

/// Stopping an app that does not run answers false and signals nothing.
#[tokio::test(start_paused = true)]
async fn stopping_an_app_that_is_not_running_answers_false() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let runner = Arc::new(MockAppRunner::new()); // any call fails the test
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    assert!(!supervisor.stop_app(APP).await.unwrap());

    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    drop(supervisor);
    verify(runner);
}

/// Stopping an app that is recorded running but not watched (the daemon
/// did not adopt it) still ends its group and forgets its pid.
#[tokio::test(start_paused = true)]
async fn stopping_a_recorded_app_this_daemon_does_not_watch_ends_its_group() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    recorded_running(&t);
    let mut runner = MockAppRunner::new();
    runner
        .expect_end_group()
        .withf(|id, grace| *id == app_process() && *grace == LIMITS.stop_grace)
        .times(1)
        .return_const(StopOutcome::Stopped);
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    assert!(supervisor.stop_app(APP).await.unwrap());

    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    drop(supervisor);
    verify(runner);
}

/// An app an earlier daemon left running is watched: its end is noticed
/// within one poll of `is_running` turning false, and recorded as a crash.
#[tokio::test(start_paused = true)]
async fn an_adopted_app_is_watched_until_it_ends() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    recorded_running(&t);
    let alive = Arc::new(AtomicBool::new(true));
    let mut runner = MockAppRunner::new();
    let running = alive.clone();
    runner
        .expect_is_running()
        .withf(|id| *id == app_process())
        .returning(move |_| running.load(Ordering::SeqCst));
    expect_cleanup_after_crash(&mut runner);
    expect_listening_everywhere(&mut runner);
    runner.expect_launch().never();
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    supervisor.adopt().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(t.record(APP).pid, Some(fake_pid(1)), "still running");

    alive.store(false, Ordering::SeqCst);
    let ended = Instant::now();
    eventually("the end is recorded", ms(300), || {
        t.record(APP).pid.is_none()
    })
    .await;

    assert!(
        ended.elapsed() <= ADOPTED_POLL + ms(20),
        "{:?}",
        ended.elapsed()
    );
    let record = t.record(APP);
    assert!(record.crashed);
    assert_eq!(record.exit_code, None, "not our child: no exit code");
    drop(supervisor);
    verify(runner);
}

/// An app recorded running whose process is gone is recorded as crashed
/// at adoption; nothing is signalled and other records are left alone.
#[tokio::test(start_paused = true)]
async fn adopting_a_dead_app_records_it_crashed() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    recorded_running(&t);
    t.add_app("stopped", PORT + 1);
    t.add_page("page", "a page");
    let mut runner = MockAppRunner::new();
    runner
        .expect_is_running()
        .withf(|id| *id == app_process())
        .times(1)
        .return_const(false);
    runner.expect_end_group().never();
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    supervisor.adopt().await;

    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(record.crashed);
    assert!(!t.record("stopped").crashed);
    assert!(!t.record("page").crashed);
    drop(supervisor);
    verify(runner);
}

/// When apps are tunneled, an adopted app gets a new tunnel, which closes
/// when the app ends.
#[tokio::test(start_paused = true)]
async fn an_adopted_app_gets_a_tunnel_that_closes_with_it() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    recorded_running(&t);
    let alive = Arc::new(AtomicBool::new(true));
    let mut runner = MockAppRunner::new();
    let running = alive.clone();
    runner
        .expect_is_running()
        .returning(move |_| running.load(Ordering::SeqCst));
    expect_cleanup_after_crash(&mut runner);
    expect_listening_everywhere(&mut runner);
    let runner = Arc::new(runner);
    let tunnels = Tunnels::new();
    let supervisor = supervisor(&t, &runner, t.keeper(tunnels.always_up()), true);

    supervisor.adopt().await;
    eventually("the tunnel is up", Duration::from_secs(1), || {
        t.record(APP).tunnel_url == Some(Tunnels::url(1))
    })
    .await;
    alive.store(false, Ordering::SeqCst);
    eventually("the end is recorded", Duration::from_secs(1), || {
        t.record(APP).pid.is_none()
    })
    .await;

    let record = t.record(APP);
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    assert_eq!(tunnels.closes(), 1);
    drop(supervisor);
    verify(runner);
}

/// An adopted app that dies before its new tunnel is registered does not
/// leave that tunnel running.
#[tokio::test(start_paused = true)]
async fn an_app_that_dies_as_it_is_adopted_keeps_no_tunnel() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    recorded_running(&t);
    let checks = Arc::new(AtomicUsize::new(0));
    let mut runner = MockAppRunner::new();
    let counted = checks.clone();
    // Alive when adopted, gone at the first poll.
    runner
        .expect_is_running()
        .returning(move |_| counted.fetch_add(1, Ordering::SeqCst) == 0);
    expect_cleanup_after_crash(&mut runner);
    expect_listening_everywhere(&mut runner);
    let runner = Arc::new(runner);
    let tunnels = Tunnels::new();
    let supervisor = supervisor(&t, &runner, t.keeper(tunnels.always_up()), true);

    supervisor.adopt().await;
    tokio::time::sleep(HOUR).await;

    let record = t.record(APP);
    assert!(record.crashed);
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    assert_eq!(tunnels.opens(), 1);
    assert_eq!(tunnels.closes(), 1, "the tunnel opened for it is closed");
    drop(supervisor);
    verify(runner);
}

/// A tunneled start answers with the tunnel's first outcome, and the
/// record holds the tunnel's URL, pid and state.
#[tokio::test(start_paused = true)]
async fn a_tunneled_start_returns_the_tunnel_and_records_it() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (runner, _) = runner_for(&end, Some(Duration::ZERO));
    let runner = Arc::new(runner);
    let tunnels = Tunnels::new();
    let supervisor = supervisor(&t, &runner, t.keeper(tunnels.always_up()), true);

    let started = supervisor.start_app(APP, env()).await.unwrap();

    let url = Tunnels::url(1);
    assert_eq!(
        started,
        Started::Now(Some(TunnelOutcome::Up { url: url.clone() }))
    );
    let record = t.record(APP);
    assert_eq!(record.tunnel_url, Some(url));
    assert_eq!(record.tunnel_pid, Some(fake_pid(1)));
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Up));
    assert_eq!(record.tunnel_error, None);
    assert_eq!(record.pid, Some(fake_pid(1)));
}

/// A tunneled start whose tunnel cannot open still starts the app, and
/// says why the tunnel is down.
#[tokio::test(start_paused = true)]
async fn a_tunneled_start_reports_a_tunnel_that_is_down() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (runner, _) = runner_for(&end, Some(Duration::ZERO));
    let runner = Arc::new(runner);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.provider(|_| Err(no_network())));
    let supervisor = supervisor(&t, &runner, keeper, true);

    let started = supervisor.start_app(APP, env()).await.unwrap();

    let Started::Now(Some(TunnelOutcome::Down { phase, error })) = started else {
        panic!("{started:?}");
    };
    assert_eq!(phase, TunnelPhase::Down);
    assert_eq!(error, no_network().to_string());
    let record = t.record(APP);
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Down));
    assert_eq!(record.pid, Some(fake_pid(1)));
}

/// An app that exits while its tunnel is being opened is reported as such,
/// recorded crashed, and keeps no tunnel.
#[tokio::test(start_paused = true)]
async fn an_app_that_exits_while_its_tunnel_opens_keeps_no_tunnel() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (mut runner, _) = runner_for(&end, Some(Duration::ZERO));
    expect_cleanup_after_crash(&mut runner);
    expect_listening_everywhere(&mut runner);
    let runner = Arc::new(runner);
    let tunnels = Tunnels::new();
    let keeper = t.keeper(tunnels.always_up());
    // The server's tunnel opens first: the app's must wait a second.
    keeper.open_server(8080).await;
    let supervisor = supervisor(&t, &runner, keeper, true);
    end.exit_after(ms(500), Some(2));

    let error = supervisor.start_app(APP, env()).await.unwrap_err();

    assert!(
        matches!(error, AppError::ExitedAfterListening { code: Some(2), .. }),
        "{error:?}"
    );
    let record = t.record(APP);
    assert!(record.crashed);
    assert_eq!(record.exit_code, Some(2));
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    tokio::time::sleep(HOUR).await;
    assert_eq!(tunnels.opens(), 1, "only the server's tunnel was opened");
    drop(supervisor);
    verify(runner);
}

/// Starting an unknown id or a page that is not an app is refused.
#[tokio::test(start_paused = true)]
async fn only_recorded_apps_can_be_started() {
    let t = TestHome::new();
    t.add_page("page", "a page");
    let runner = Arc::new(MockAppRunner::new()); // any call fails the test
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    let unknown = supervisor.start_app("nope", env()).await.unwrap_err();
    let page = supervisor.start_app("page", env()).await.unwrap_err();

    assert!(matches!(unknown, AppError::NoSuchApp { .. }), "{unknown:?}");
    assert!(matches!(page, AppError::NotAnApp { .. }), "{page:?}");
    drop(supervisor);
    verify(runner);
}

/// A start and a stop of one app asked at the same time take turns: the
/// stop waits until the start has finished, then stops what it started.
#[tokio::test(start_paused = true)]
async fn a_stop_during_a_start_waits_its_turn() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (mut runner, _) = runner_for(&end, Some(ms(500)));
    expect_stop(&mut runner, &end);
    let runner = Arc::new(runner);
    let supervisor = supervisor(&t, &runner, no_tunnels(&t), false);

    let start = tokio::spawn({
        let supervisor = supervisor.clone();
        async move { supervisor.start_app(APP, env()).await }
    });
    tokio::time::sleep(ms(100)).await;
    let stopped = supervisor.stop_app(APP).await.unwrap();

    assert_eq!(start.await.unwrap().unwrap(), Started::Now(None));
    assert!(stopped);
    let record = t.record(APP);
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    drop(supervisor);
    verify(runner);
}

/// The failure messages carry the app's log, indented, or say it is empty.
#[test]
fn failure_messages_show_the_log_tail_indented() {
    let error = AppError::NotListening {
        id: "app1".into(),
        port: PORT,
        timeout: Duration::from_secs(30),
        log: "/home/logs/app-app1.log".into(),
        tail: "one\ntwo".into(),
    };
    assert_eq!(
        error.to_string(),
        "app app1 did not listen on port 4321 within 30 s and was stopped; \
         last lines of `/home/logs/app-app1.log`:\n  one\n  two"
    );
    let error = AppError::ExitedAfterListening {
        id: "app1".into(),
        code: None,
        log: "/l".into(),
        tail: String::new(),
    };
    assert_eq!(
        error.to_string(),
        "app app1 exited with an unknown code right after it started listening; \
         last lines of `/l`:\n  (the log is empty)"
    );
}

/// With URLs for other machines, an app that listens only on loopback is
/// stopped and refused with the fix, not reported started at a URL that
/// refuses connections.
#[tokio::test(start_paused = true)]
async fn an_app_on_loopback_only_is_refused_when_its_url_is_for_other_machines() {
    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let loopback = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
    let (mut runner, _) = runner_listening_on(&end, Some(Duration::ZERO), &loopback);
    expect_stop(&mut runner, &end);
    let runner = Arc::new(runner);
    let reach = AppReach::new(false, "203.0.113.7");
    let supervisor = Supervisor::new(
        t.home.clone(),
        LIMITS,
        runner.clone(),
        no_tunnels(&t),
        reach,
    );

    let error = supervisor.start_app(APP, env()).await.unwrap_err();

    let AppError::LoopbackOnly { host, port, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!((host.as_str(), *port), ("203.0.113.7", PORT));
    let message = error.to_string();
    assert!(
        message.contains("listens only on 127.0.0.1 and ::1"),
        "{message}"
    );
    assert!(message.contains("http://203.0.113.7:4321/"), "{message}");
    assert!(message.contains("--host 0.0.0.0"), "{message}");
    assert!(message.contains("drop start --tunnel"), "{message}");
    let record = t.record(APP);
    assert_eq!(record.pid, None, "stopped");
    assert!(!record.crashed);
    drop(supervisor);
    verify(runner);
}

/// The same app is fine when its URL names loopback, or through a tunnel;
/// an app listening on IPv6 loopback alone gets a tunnel to `[::1]`.
#[tokio::test(start_paused = true)]
async fn a_tunnel_reaches_an_app_where_it_listens() {
    assert_eq!(AppReach::new(false, "127.0.0.1"), AppReach::ThisMachine);
    assert_eq!(AppReach::new(false, "[::1]"), AppReach::ThisMachine);
    assert_eq!(AppReach::new(false, "localhost"), AppReach::ThisMachine);
    assert_eq!(AppReach::new(true, "203.0.113.7"), AppReach::Tunnel);

    let t = TestHome::new();
    t.add_app(APP, PORT);
    let end = AppEnd::new();
    let (runner, _) =
        runner_listening_on(&end, Some(Duration::ZERO), &[Ipv6Addr::LOCALHOST.into()]);
    let runner = Arc::new(runner);
    let tunnels = Tunnels::new();
    let supervisor = supervisor(&t, &runner, t.keeper(tunnels.always_up()), true);

    let started = supervisor.start_app(APP, env()).await.unwrap();

    assert!(
        matches!(started, Started::Now(Some(TunnelOutcome::Up { .. }))),
        "{started:?}"
    );
    assert_eq!(
        tunnels.locals(),
        [SocketAddr::from((Ipv6Addr::LOCALHOST, PORT))]
    );
}
