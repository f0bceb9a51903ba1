//! The supervisor against a fake runner ([`MockAppRunner`] with scripted
//! app processes), scripted tunnels and a real registry in a temp dir, on
//! tokio's paused clock. Each test builds its [`World`], stating only what
//! differs from a stopped app, a runner nothing may call, and no tunnels.

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

/// The process every fake launch gives, and every recorded app runs as.
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

    fn at(&self) -> Option<Instant> {
        self.0.lock().unwrap().as_ref().map(|(at, _)| *at)
    }
}

/// A test's world before it runs: the stopped app [`APP`] on [`PORT`] in a
/// temp home, and what the fake runner and the tunnels will do.
struct WorldBuilder {
    t: TestHome,
    runner: MockAppRunner,
    end: AppEnd,
    launched: Launched,
    /// Whether the app can run (launched, or recorded running): then the
    /// runner says where its port is listened on.
    can_run: bool,
    /// Where its port is listened on.
    listening: Vec<IpAddr>,
    tunnels: Tunnels,
    provider: Option<MockTunnelProvider>,
    reach: AppReach,
}

impl WorldBuilder {
    /// Adds the static page `id`, named `name`.
    fn page(self, id: &str, name: &str) -> Self {
        self.t.add_page(id, name);
        self
    }

    /// Adds another stopped app.
    fn app(self, id: &str, port: u16) -> Self {
        self.t.add_app(id, port);
        self
    }

    /// The app is launched once, as [`app_process`], and runs until the
    /// test ends it; it listens on [`PORT`] `listens_after` its launch
    /// (never when `None`).
    fn launches(mut self, listens_after: Option<Duration>) -> Self {
        let (end, seen) = (self.end.clone(), self.launched.clone());
        self.runner.expect_launch().times(1).returning(move |spec| {
            *seen.0.lock().unwrap() = Some((Instant::now(), spec.clone()));
            Ok(end.process(app_process()))
        });
        let seen = self.launched.clone();
        self.runner
            .expect_is_listening()
            .withf(|port| *port == PORT)
            .returning(move |_| {
                matches!((seen.at(), listens_after), (Some(at), Some(after)) if Instant::now() >= at + after)
            });
        self.can_run = true;
        self
    }

    /// Something else listens on [`PORT`] before anything is launched.
    fn port_in_use(mut self) -> Self {
        self.runner
            .expect_is_listening()
            .withf(|port| *port == PORT)
            .times(1)
            .return_const(true);
        self
    }

    /// The app's port is listened on at `addresses` alone (by default, at
    /// every address).
    fn listening_on(mut self, addresses: &[IpAddr]) -> Self {
        self.listening = addresses.to_vec();
        self
    }

    /// The app is recorded running as [`app_process`], as an earlier
    /// daemon left it.
    fn recorded_running(mut self) -> Self {
        let process = app_process();
        self.t
            .change(APP, |r| r.mark_running(process.pid, process.start_time));
        self.can_run = true;
        self
    }

    /// Asked whether [`app_process`] runs, the runner answers `alive()`.
    fn alive(mut self, alive: impl Fn() -> bool + Send + 'static) -> Self {
        self.runner
            .expect_is_running()
            .withf(|id| *id == app_process())
            .returning(move |_| alive());
        self
    }

    /// The app is recorded running, runs while `flag` holds, and its end
    /// is recorded as a crash.
    fn recorded_running_while(self, flag: &Arc<AtomicBool>) -> Self {
        let flag = flag.clone();
        self.recorded_running()
            .alive(move || flag.load(Ordering::SeqCst))
            .crashes()
    }

    /// The app is stopped once, with the configured grace, and exits on it
    /// (SIGTERM: 128 + 15).
    fn stops(mut self) -> Self {
        let end = self.end.clone();
        self.runner
            .expect_end_group()
            .withf(|id, grace| *id == app_process() && *grace == LIMITS.stop_grace)
            .times(1)
            .returning(move |_, _| {
                end.exit(Some(143));
                StopOutcome::Stopped
            });
        self
    }

    /// The app crashes: what is left of its group is ended at once.
    fn crashes(mut self) -> Self {
        self.runner
            .expect_end_leftovers()
            .withf(|id| *id == app_process())
            .times(1)
            .return_const(());
        self
    }

    /// Apps are tunneled, through the tunnels `provider` opens.
    fn tunneled(mut self, provider: impl FnOnce(&Tunnels) -> MockTunnelProvider) -> Self {
        self.provider = Some(provider(&self.tunnels));
        self.reach = AppReach::Tunnel;
        self
    }

    /// Who app URLs are for (this machine alone by default).
    fn reach(mut self, reach: AppReach) -> Self {
        self.reach = reach;
        self
    }

    fn build(mut self) -> World {
        if self.can_run {
            let addresses = self.listening;
            self.runner.expect_listeners().returning(move |port| {
                addresses
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, port))
                    .collect()
            });
        }
        let provider = self.provider.unwrap_or_else(|| {
            let mut provider = MockTunnelProvider::new();
            provider.expect_open().never();
            provider
        });
        let keeper = self.t.keeper(provider);
        let runner = Arc::new(self.runner);
        let supervisor = Supervisor::new(
            self.t.home.clone(),
            LIMITS,
            runner.clone(),
            keeper.clone(),
            self.reach,
        );
        World {
            supervisor,
            runner,
            keeper,
            tunnels: self.tunnels,
            end: self.end,
            launched: self.launched,
            t: self.t,
        }
    }
}

/// A supervisor in its world, and what a test looks at.
struct World {
    supervisor: Arc<Supervisor>,
    runner: Arc<MockAppRunner>,
    keeper: Arc<TunnelKeeper>,
    tunnels: Tunnels,
    /// Ends the app's process when the test says.
    end: AppEnd,
    launched: Launched,
    t: TestHome,
}

impl World {
    fn builder() -> WorldBuilder {
        let t = TestHome::new();
        t.add_app(APP, PORT);
        WorldBuilder {
            t,
            runner: MockAppRunner::new(),
            end: AppEnd::new(),
            launched: Launched::default(),
            can_run: false,
            listening: vec![Ipv4Addr::UNSPECIFIED.into()],
            tunnels: Tunnels::new(),
            provider: None,
            reach: AppReach::ThisMachine,
        }
    }

    /// The app's record as it is on disk now.
    fn record(&self) -> Record {
        self.t.record(APP)
    }

    /// Ends the supervisor, then checks every expectation of the runner.
    fn verify(self) {
        let World {
            supervisor, runner, ..
        } = self;
        drop(supervisor);
        verify(runner);
    }
}

fn env() -> Vec<(String, String)> {
    vec![("PATH".into(), "/usr/bin".into())]
}

/// A started app is launched as asked, and the start returns as soon as it
/// listens, with its pid and start time recorded.
#[tokio::test(start_paused = true)]
async fn starts_an_app_and_records_it_once_it_listens() {
    let w = World::builder().launches(Some(ms(120))).build();

    let began = Instant::now();
    let started = w.supervisor.start_app(APP, env()).await.unwrap();

    assert_eq!(started, Started::Now(None));
    let waited = began.elapsed();
    assert!(waited >= ms(120) && waited < ms(200), "{waited:?}");
    let spec = w.launched.spec();
    let record = w.record();
    assert_eq!(spec.command, "serve");
    assert_eq!(spec.dir, record.source);
    assert_eq!(spec.env, env());
    assert_eq!(spec.log, w.t.home.logs_dir().join("app-app1.log"));
    assert_eq!(record.pid, Some(fake_pid(1)));
    assert_eq!(record.pid_start_time, Some(77));
    assert!(!record.crashed);
}

/// Starting an app whose recorded process still runs changes nothing.
#[tokio::test(start_paused = true)]
async fn starting_a_running_app_answers_already() {
    let w = World::builder().recorded_running().alive(|| true).build();

    let started = w.supervisor.start_app(APP, env()).await.unwrap();

    assert_eq!(started, Started::Already);
    assert_eq!(w.record().pid, Some(fake_pid(1)));
    w.verify();
}

/// An app whose port something else holds is not launched at all.
#[tokio::test(start_paused = true)]
async fn a_port_in_use_is_refused_before_anything_is_launched() {
    let w = World::builder().port_in_use().build();

    let error = w.supervisor.start_app(APP, env()).await.unwrap_err();

    assert!(
        matches!(error, AppError::PortInUse { port: PORT, .. }),
        "{error:?}"
    );
    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    w.verify();
}

/// An app that dies before it listens is reported with its exit code and
/// the end of its log, and recorded as crashed.
#[tokio::test(start_paused = true)]
async fn an_app_that_exits_before_listening_is_reported_and_recorded_crashed() {
    let w = World::builder().launches(None).crashes().build();
    let log: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    std::fs::write(app_log_path(&w.t.home, APP), log).unwrap();
    w.end.exit_after(ms(100), Some(3));

    let error = w.supervisor.start_app(APP, env()).await.unwrap_err();

    let AppError::ExitedBeforeListening {
        ref app,
        port,
        code,
        ref tail,
        ref log,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!((app.as_str(), port, code), (APP, PORT, Some(3)));
    assert_eq!(*log, app_log_path(&w.t.home, APP));
    let expected: Vec<String> = (6..=20).map(|i| format!("line {i}")).collect();
    assert_eq!(*tail, expected.join("\n"), "the last 15 lines");
    assert!(
        error
            .to_string()
            .starts_with("app app1 exited with code 3 before listening on port 4321"),
        "{error}"
    );
    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(record.crashed);
    assert_eq!(record.exit_code, Some(3));
    w.verify();
}

/// An app that runs but never listens is stopped (with the configured
/// grace) once `start_timeout` has passed, and recorded as stopped.
#[tokio::test(start_paused = true)]
async fn an_app_that_never_listens_is_stopped_after_the_start_timeout() {
    let w = World::builder().launches(None).stops().build();

    let began = Instant::now();
    let error = w.supervisor.start_app(APP, env()).await.unwrap_err();

    let waited = began.elapsed();
    assert!(
        matches!(error, AppError::NotListening { port: PORT, timeout, .. } if timeout == LIMITS.start_timeout),
        "{error:?}"
    );
    assert!(
        waited >= LIMITS.start_timeout && waited < LIMITS.start_timeout + ms(100),
        "{waited:?}"
    );
    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(!record.crashed, "drop stopped it: not a crash");
    assert_eq!(record.exit_code, None);
    w.verify();
}

/// A running app that dies on its own is recorded as crashed with its exit
/// code the moment it ends, what is left of its group is ended, and its
/// tunnel is closed for good.
#[tokio::test(start_paused = true)]
async fn a_running_app_that_crashes_is_recorded_and_its_tunnel_closed() {
    let w = World::builder()
        .launches(Some(Duration::ZERO))
        .crashes()
        .tunneled(Tunnels::always_up)
        .build();
    w.supervisor.start_app(APP, env()).await.unwrap();
    assert_eq!(w.record().tunnel_state, Some(TunnelPhase::Up));

    w.end.exit_after(Duration::from_secs(5), Some(1));
    eventually("the crash is recorded", Duration::from_secs(10), || {
        w.record().crashed
    })
    .await;

    let record = w.record();
    assert_eq!(record.exit_code, Some(1));
    assert_eq!(record.pid, None);
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    assert_eq!(w.tunnels.closes(), 1, "the app's tunnel is closed");
    tokio::time::sleep(HOUR).await;
    assert_eq!(w.tunnels.opens(), 1, "and never reopened");
    w.verify();
}

/// Stopping a running app ends its group with the configured grace, waits
/// for its end, and records it stopped, not crashed.
#[tokio::test(start_paused = true)]
async fn stopping_a_running_app_ends_its_group_and_records_it_stopped() {
    let w = World::builder()
        .launches(Some(Duration::ZERO))
        .stops()
        .build();
    w.supervisor.start_app(APP, env()).await.unwrap();

    assert!(w.supervisor.stop_app(APP).await.unwrap());

    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    assert_eq!(record.exit_code, None);
    w.verify();
}

/// Stopping an app that does not run answers false and signals nothing.
#[tokio::test(start_paused = true)]
async fn stopping_an_app_that_is_not_running_answers_false() {
    let w = World::builder().build(); // any call of the runner fails the test

    assert!(!w.supervisor.stop_app(APP).await.unwrap());

    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    w.verify();
}

/// Stopping an app that is recorded running but not watched (the daemon
/// did not adopt it) still ends its group and forgets its pid.
#[tokio::test(start_paused = true)]
async fn stopping_a_recorded_app_this_daemon_does_not_watch_ends_its_group() {
    let w = World::builder().recorded_running().stops().build();

    assert!(w.supervisor.stop_app(APP).await.unwrap());

    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    w.verify();
}

/// An app an earlier daemon left running is watched: its end is noticed
/// within one poll of `is_running` turning false, and recorded as a crash.
#[tokio::test(start_paused = true)]
async fn an_adopted_app_is_watched_until_it_ends() {
    let alive = Arc::new(AtomicBool::new(true));
    let w = World::builder().recorded_running_while(&alive).build();

    w.supervisor.adopt().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(w.record().pid, Some(fake_pid(1)), "still running");

    alive.store(false, Ordering::SeqCst);
    let ended = Instant::now();
    eventually("the end is recorded", ms(300), || w.record().pid.is_none()).await;

    assert!(
        ended.elapsed() <= ADOPTED_POLL + ms(20),
        "{:?}",
        ended.elapsed()
    );
    let record = w.record();
    assert!(record.crashed);
    assert_eq!(record.exit_code, None, "not our child: no exit code");
    w.verify();
}

/// An app recorded running whose process is gone is recorded as crashed
/// at adoption; nothing is signalled and other records are left alone.
#[tokio::test(start_paused = true)]
async fn adopting_a_dead_app_records_it_crashed() {
    let w = World::builder()
        .app("stopped", PORT + 1)
        .page("page", "a page")
        .recorded_running()
        .alive(|| false)
        .build();

    w.supervisor.adopt().await;

    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(record.crashed);
    assert!(!w.t.record("stopped").crashed);
    assert!(!w.t.record("page").crashed);
    w.verify();
}

/// When apps are tunneled, an adopted app gets a new tunnel, which closes
/// when the app ends.
#[tokio::test(start_paused = true)]
async fn an_adopted_app_gets_a_tunnel_that_closes_with_it() {
    let alive = Arc::new(AtomicBool::new(true));
    let w = World::builder()
        .recorded_running_while(&alive)
        .tunneled(Tunnels::always_up)
        .build();

    w.supervisor.adopt().await;
    eventually("the tunnel is up", Duration::from_secs(1), || {
        w.record().tunnel_url == Some(Tunnels::url(1))
    })
    .await;
    alive.store(false, Ordering::SeqCst);
    eventually("the end is recorded", Duration::from_secs(1), || {
        w.record().pid.is_none()
    })
    .await;

    let record = w.record();
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    assert_eq!(w.tunnels.closes(), 1);
    w.verify();
}

/// An adopted app that dies before its new tunnel is registered does not
/// leave that tunnel running.
#[tokio::test(start_paused = true)]
async fn an_app_that_dies_as_it_is_adopted_keeps_no_tunnel() {
    let checks = AtomicUsize::new(0);
    // Alive when adopted, gone at the first poll.
    let w = World::builder()
        .recorded_running()
        .alive(move || checks.fetch_add(1, Ordering::SeqCst) == 0)
        .crashes()
        .tunneled(Tunnels::always_up)
        .build();

    w.supervisor.adopt().await;
    tokio::time::sleep(HOUR).await;

    let record = w.record();
    assert!(record.crashed);
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    assert_eq!(w.tunnels.opens(), 1);
    assert_eq!(w.tunnels.closes(), 1, "the tunnel opened for it is closed");
    w.verify();
}

/// A tunneled start answers with the tunnel's first outcome, and the
/// record holds the tunnel's URL, pid and state.
#[tokio::test(start_paused = true)]
async fn a_tunneled_start_returns_the_tunnel_and_records_it() {
    let w = World::builder()
        .launches(Some(Duration::ZERO))
        .tunneled(Tunnels::always_up)
        .build();

    let started = w.supervisor.start_app(APP, env()).await.unwrap();

    let url = Tunnels::url(1);
    assert_eq!(
        started,
        Started::Now(Some(TunnelOutcome::Up { url: url.clone() }))
    );
    let record = w.record();
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
    let w = World::builder()
        .launches(Some(Duration::ZERO))
        .tunneled(|tunnels| tunnels.provider(|_| Err(no_network())))
        .build();

    let started = w.supervisor.start_app(APP, env()).await.unwrap();

    let Started::Now(Some(TunnelOutcome::Down { phase, error })) = started else {
        panic!("{started:?}");
    };
    assert_eq!(phase, TunnelPhase::Down);
    assert_eq!(error, no_network().to_string());
    let record = w.record();
    assert_eq!(record.tunnel_state, Some(TunnelPhase::Down));
    assert_eq!(record.pid, Some(fake_pid(1)));
}

/// An app that exits while its tunnel is being opened is reported as such,
/// recorded crashed, and keeps no tunnel.
#[tokio::test(start_paused = true)]
async fn an_app_that_exits_while_its_tunnel_opens_keeps_no_tunnel() {
    let w = World::builder()
        .launches(Some(Duration::ZERO))
        .crashes()
        .tunneled(Tunnels::always_up)
        .build();
    // The server's tunnel opens first: the app's must wait a second.
    w.keeper.open_server(8080).await;
    w.end.exit_after(ms(500), Some(2));

    let error = w.supervisor.start_app(APP, env()).await.unwrap_err();

    assert!(
        matches!(error, AppError::ExitedAfterListening { code: Some(2), .. }),
        "{error:?}"
    );
    let record = w.record();
    assert!(record.crashed);
    assert_eq!(record.exit_code, Some(2));
    assert_eq!(record.tunnel_url, None);
    assert_eq!(record.tunnel_state, None);
    tokio::time::sleep(HOUR).await;
    assert_eq!(w.tunnels.opens(), 1, "only the server's tunnel was opened");
    w.verify();
}

/// Starting an unknown id or a page that is not an app is refused.
#[tokio::test(start_paused = true)]
async fn only_recorded_apps_can_be_started() {
    let w = World::builder().page("page", "a page").build(); // any call of the runner fails the test

    let unknown = w.supervisor.start_app("nope", env()).await.unwrap_err();
    let page = w.supervisor.start_app("page", env()).await.unwrap_err();

    assert!(matches!(unknown, AppError::NoSuchApp { .. }), "{unknown:?}");
    assert!(matches!(page, AppError::NotAnApp { .. }), "{page:?}");
    w.verify();
}

/// A start and a stop of one app asked at the same time take turns: the
/// stop waits until the start has finished, then stops what it started.
#[tokio::test(start_paused = true)]
async fn a_stop_during_a_start_waits_its_turn() {
    let w = World::builder().launches(Some(ms(500))).stops().build();

    let start = tokio::spawn({
        let supervisor = w.supervisor.clone();
        async move { supervisor.start_app(APP, env()).await }
    });
    tokio::time::sleep(ms(100)).await;
    let stopped = w.supervisor.stop_app(APP).await.unwrap();

    assert_eq!(start.await.unwrap().unwrap(), Started::Now(None));
    assert!(stopped);
    let record = w.record();
    assert_eq!(record.pid, None);
    assert!(!record.crashed);
    w.verify();
}

/// The failure messages carry the app's log, indented, or say it is empty.
#[test]
fn failure_messages_show_the_log_tail_indented() {
    let error = AppError::NotListening {
        app: "app1".into(),
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
        app: "app1".into(),
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
    let w = World::builder()
        .launches(Some(Duration::ZERO))
        .listening_on(&[Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()])
        .stops()
        .reach(AppReach::new(false, "203.0.113.7"))
        .build();

    let error = w.supervisor.start_app(APP, env()).await.unwrap_err();

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
    let record = w.record();
    assert_eq!(record.pid, None, "stopped");
    assert!(!record.crashed);
    w.verify();
}

/// The same app is fine when its URL names loopback, or through a tunnel;
/// an app listening on IPv6 loopback alone gets a tunnel to `[::1]`.
#[tokio::test(start_paused = true)]
async fn a_tunnel_reaches_an_app_where_it_listens() {
    assert_eq!(AppReach::new(false, "127.0.0.1"), AppReach::ThisMachine);
    assert_eq!(AppReach::new(false, "[::1]"), AppReach::ThisMachine);
    assert_eq!(AppReach::new(false, "localhost"), AppReach::ThisMachine);
    assert_eq!(AppReach::new(true, "203.0.113.7"), AppReach::Tunnel);

    let w = World::builder()
        .launches(Some(Duration::ZERO))
        .listening_on(&[Ipv6Addr::LOCALHOST.into()])
        .tunneled(Tunnels::always_up)
        .build();

    let started = w.supervisor.start_app(APP, env()).await.unwrap();

    assert!(
        matches!(started, Started::Now(Some(TunnelOutcome::Up { .. }))),
        "{started:?}"
    );
    assert_eq!(
        w.tunnels.locals(),
        [SocketAddr::from((Ipv6Addr::LOCALHOST, PORT))]
    );
}
