//! Fakes shared by the daemon's unit tests: a drop home in a temp dir,
//! app processes whose end the test decides, and scripted tunnels. Nothing
//! here starts a process or touches the network.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drop_registry::{Home, Record, RegistryError};
use drop_tunnel::{MockTunnelProvider, Tunnel, TunnelError, TunnelExit, TunnelProcess};
use tokio::sync::watch;
use tokio::time::Instant;

use super::apps::{AppProcess, MockAppRunner};
use super::process::ProcessId;
use super::tunnels::{TunnelKeeper, TunnelSource};
use super::verify::{DNS_SETTLE, LinkCheck, LinkChecker, LinkError, Origin, Probes};

/// The id of the app most tests run.
pub(crate) const APP: &str = "app1";
/// The port it listens on.
pub(crate) const PORT: u16 = 4321;

/// A pid no process can have: Linux pids stop at 2^22 (`PID_MAX_LIMIT`).
pub(crate) fn fake_pid(n: u32) -> u32 {
    4_200_000 + n
}

/// A drop home in a temp dir, removed with it.
pub(crate) struct TestHome {
    dir: tempfile::TempDir,
    pub(crate) home: Home,
}

impl TestHome {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let home = Home::new(dir.path().join("home"));
        home.ensure().expect("the home is created");
        TestHome { dir, home }
    }

    /// Adds the stopped app `id` (folder `<tmp>/<id>`, command `serve`).
    pub(crate) fn add_app(&self, id: &str, port: u16) {
        let source = self.dir.path().join(id);
        std::fs::create_dir_all(&source).expect("the app's folder");
        self.put(id, Record::app(source, true, "serve".into(), port));
    }

    /// Adds the static folder page `id`, named `name`.
    pub(crate) fn add_page(&self, id: &str, name: &str) {
        let source = self.dir.path().join(id);
        std::fs::create_dir_all(&source).expect("the page's folder");
        let mut page = Record::static_page(source, true);
        page.name = name.to_owned();
        self.put(id, page);
    }

    /// Writes `record` as `id`.
    pub(crate) fn put(&self, id: &str, record: Record) {
        self.home
            .registry()
            .update(|pages| {
                pages.insert(id.to_owned(), record);
                Ok::<_, RegistryError>(())
            })
            .expect("the registry is written");
    }

    /// Changes the record `id` in place.
    pub(crate) fn change(&self, id: &str, change: impl FnOnce(&mut Record)) {
        let mut record = self.record(id);
        change(&mut record);
        self.put(id, record);
    }

    /// The record `id` as it is on disk now.
    pub(crate) fn record(&self, id: &str) -> Record {
        let pages = self.home.registry().load().expect("the registry reads");
        pages.get(id).expect("the record exists").clone()
    }

    /// A folder of tunnels' `--config` files that no real process carries.
    pub(crate) fn tunnel_config_dir(&self) -> PathBuf {
        self.dir.path().join("tunnel-configs")
    }

    /// A tunnel keeper of this home opening tunnels through `provider`,
    /// whose URLs all work from outside at once.
    pub(crate) fn keeper(&self, provider: MockTunnelProvider) -> Arc<TunnelKeeper> {
        self.keeper_seen_by(provider, &Outside::new())
    }

    /// A tunnel keeper whose URLs work from outside as `outside` says.
    pub(crate) fn keeper_seen_by(
        &self,
        provider: MockTunnelProvider,
        outside: &Outside,
    ) -> Arc<TunnelKeeper> {
        TunnelKeeper::new(
            self.home.clone(),
            TunnelSource::quick(Arc::new(provider)),
            self.tunnel_config_dir(),
            None,
            outside.links(),
        )
    }
}

/// Drops what is left of the mock runner and checks its expectations
/// (`times`), in the test's own task rather than in some task's drop.
pub(crate) fn verify(runner: Arc<MockAppRunner>) {
    match Arc::try_unwrap(runner) {
        Ok(mut runner) => runner.checkpoint(),
        Err(_) => panic!("something still holds the app runner"),
    }
}

/// Polls `check` every 10 ms of (paused) time, up to `within`.
pub(crate) async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The end of a fake app process, decided by the test: `exit` ends every
/// process made by [`AppEnd::process`].
#[derive(Clone)]
pub(crate) struct AppEnd(Arc<watch::Sender<Option<Option<i32>>>>);

impl AppEnd {
    pub(crate) fn new() -> Self {
        AppEnd(Arc::new(watch::Sender::new(None)))
    }

    /// The process exits now with `code`.
    pub(crate) fn exit(&self, code: Option<i32>) {
        self.0.send_replace(Some(code));
    }

    /// The process exits with `code` after `after`.
    pub(crate) fn exit_after(&self, after: Duration, code: Option<i32>) {
        let end = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            end.exit(code);
        });
    }

    /// A process `id` that runs until [`exit`](AppEnd::exit).
    pub(crate) fn process(&self, id: ProcessId) -> Box<dyn AppProcess> {
        Box::new(FakeApp {
            id,
            end: self.0.subscribe(),
        })
    }
}

struct FakeApp {
    id: ProcessId,
    end: watch::Receiver<Option<Option<i32>>>,
}

#[async_trait::async_trait]
impl AppProcess for FakeApp {
    fn id(&self) -> ProcessId {
        self.id
    }

    async fn wait(&mut self) -> Option<i32> {
        let ended = self.end.wait_for(Option::is_some).await.map(|end| *end);
        match ended {
            Ok(Some(code)) => code,
            // Nobody can end it any more: it runs forever.
            _ => std::future::pending().await,
        }
    }
}

/// Scripted tunnels and what they record: when each opening was asked
/// for, and how many tunnels were closed.
#[derive(Clone, Default)]
pub(crate) struct Tunnels {
    opens: Arc<Mutex<Vec<Instant>>>,
    locals: Arc<Mutex<Vec<std::net::SocketAddr>>>,
    closes: Arc<AtomicUsize>,
    /// Every tunnel has lost its edge connection (and reconnects).
    edge_lost: Arc<std::sync::atomic::AtomicBool>,
}

impl Tunnels {
    pub(crate) fn new() -> Self {
        Tunnels::default()
    }

    /// A provider that follows `script` on its `n`th opening (from 1): a
    /// tunnel that lives for `Some(lifetime)` or forever (`None`), or an
    /// error. The `n`th tunnel is at
    /// [`Tunnels::url`]`(n)`, with the pid [`fake_pid`]`(n)`.
    pub(crate) fn provider(
        &self,
        script: impl Fn(usize) -> Result<Option<Duration>, TunnelError> + Send + Sync + 'static,
    ) -> MockTunnelProvider {
        let tunnels = self.clone();
        let mut provider = MockTunnelProvider::new();
        provider.expect_open().returning(move |local| {
            assert!(local.ip().is_loopback(), "tunnels expose local ports");
            tunnels.locals.lock().expect("locals lock").push(local);
            let n = {
                let mut opens = tunnels.opens.lock().expect("opens lock");
                opens.push(Instant::now());
                opens.len()
            };
            let lifetime = script(n)?;
            let process = ScriptedTunnel {
                death: lifetime.map(|l| Instant::now() + l),
                closes: tunnels.closes.clone(),
                edge_lost: tunnels.edge_lost.clone(),
            };
            Ok(Tunnel::new(
                Self::url(n),
                Some(fake_pid(n as u32)),
                Box::new(process),
            ))
        });
        provider
    }

    /// A provider whose tunnels come up and stay up.
    pub(crate) fn always_up(&self) -> MockTunnelProvider {
        self.provider(|_| Ok(None))
    }

    /// The URL of the `n`th tunnel.
    pub(crate) fn url(n: usize) -> String {
        format!("https://tunnel-{n}.trycloudflare.com")
    }

    /// How many openings were asked for.
    pub(crate) fn opens(&self) -> usize {
        self.opens.lock().expect("opens lock").len()
    }

    /// The local address of each opening.
    pub(crate) fn locals(&self) -> Vec<std::net::SocketAddr> {
        self.locals.lock().expect("locals lock").clone()
    }

    /// When each opening was asked for.
    pub(crate) fn open_times(&self) -> Vec<Instant> {
        self.opens.lock().expect("opens lock").clone()
    }

    /// The gaps between consecutive openings.
    pub(crate) fn gaps(&self) -> Vec<Duration> {
        let opens = self.open_times();
        opens.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// How many tunnels were closed.
    pub(crate) fn closes(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }

    /// Every tunnel loses its edge connection (`true`) or has it back.
    pub(crate) fn lose_edge(&self, lost: bool) {
        self.edge_lost.store(lost, Ordering::SeqCst);
    }
}

/// A tunnel process that dies at `death` (or never), is healthy while the
/// edge is not lost, and counts its closes.
struct ScriptedTunnel {
    death: Option<Instant>,
    closes: Arc<AtomicUsize>,
    edge_lost: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl TunnelProcess for ScriptedTunnel {
    async fn wait(&mut self) -> TunnelExit {
        match self.death {
            Some(death) => tokio::time::sleep_until(death).await,
            None => std::future::pending().await,
        }
        TunnelExit {
            code: Some(1),
            log_tail: "connection lost".into(),
        }
    }

    async fn healthy(&self) -> bool {
        !self.edge_lost.load(Ordering::SeqCst)
    }

    async fn close(&mut self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

/// The error of a machine without network.
pub(crate) fn no_network() -> TunnelError {
    TunnelError::NoNetwork {
        detail: "no such host".into(),
    }
}

/// The outside world as link checks see it, scripted: every tunnel URL
/// reaches its origin through the edge and resolves at public DNS unless
/// the test says otherwise (`NotPublished`: the edge works, DNS does not
/// know the name; any other failure: the edge fails).
#[derive(Clone)]
pub(crate) struct Outside {
    failure: Arc<Mutex<Option<LinkError>>>,
    checks: Arc<Mutex<Vec<(String, Origin, Instant)>>>,
    dns_questions: Arc<Mutex<Vec<(String, Instant)>>>,
    probes: Arc<Probes>,
}

/// How long [`Outside::links`] waits before handing out an unconfirmed URL.
pub(crate) const BOUND: Duration = Duration::from_secs(30);

impl Outside {
    pub(crate) fn new() -> Self {
        Outside {
            failure: Arc::default(),
            checks: Arc::default(),
            dns_questions: Arc::default(),
            probes: Arc::default(),
        }
    }

    /// From now on every check fails with `failure` (`None`: succeeds).
    pub(crate) fn fail_with(&self, failure: Option<LinkError>) {
        *self.failure.lock().expect("failure lock") = failure;
    }

    /// The nonces the daemon's page server would accept.
    pub(crate) fn probes(&self) -> &Probes {
        &self.probes
    }

    /// Every request through the edge so far: the URL, what it expected
    /// behind it, and when.
    pub(crate) fn checks(&self) -> Vec<(String, Origin, Instant)> {
        self.checks.lock().expect("checks lock").clone()
    }

    /// Every question to public DNS so far: the hostname, and when.
    pub(crate) fn dns_questions(&self) -> Vec<(String, Instant)> {
        self.dns_questions.lock().expect("questions lock").clone()
    }

    /// Link checks through this outside world, with a [`BOUND`] of 30 s.
    pub(crate) fn links(&self) -> LinkCheck {
        LinkCheck {
            checker: Arc::new(self.clone()),
            probes: self.probes.clone(),
            bound: BOUND,
            dns_settle: DNS_SETTLE,
        }
    }
}

#[async_trait::async_trait]
impl LinkChecker for Outside {
    async fn resolve(&self, host: &str) -> Result<Vec<std::net::IpAddr>, LinkError> {
        assert!(
            host.ends_with(".trycloudflare.com"),
            "a tunnel host: {host}"
        );
        let asked = (host.to_owned(), Instant::now());
        self.dns_questions
            .lock()
            .expect("questions lock")
            .push(asked);
        match self.failure.lock().expect("failure lock").clone() {
            Some(e @ LinkError::NotPublished { .. }) => Err(e),
            _ => Ok(vec![std::net::Ipv4Addr::new(104, 16, 0, 1).into()]),
        }
    }

    async fn reach(&self, url: &str, origin: &Origin) -> Result<(), LinkError> {
        let reached = (url.to_owned(), origin.clone(), Instant::now());
        self.checks.lock().expect("checks lock").push(reached);
        match self.failure.lock().expect("failure lock").clone() {
            Some(LinkError::NotPublished { .. }) | None => Ok(()),
            Some(e) => Err(e),
        }
    }
}
