//! The page server in-process: a throwaway drop home whose registry a test
//! fills directly, served by `drop_core::http::serve` on a loopback port,
//! with no `drop` binary and no daemon (mini-redis's pattern), going by a
//! clock the test can move.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use drop_core::auth::{SessionKey, hash_password};
use drop_core::http::{Clock, Probes, ServerConfig, Site, bind_listener, serve};
use drop_core::page::{Catalog, MANIFEST_NAME, new_page_id};
use drop_registry::{Home, Record, RegistryError};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A page published into the registry.
#[derive(Debug, Clone)]
pub struct Page {
    /// Its id.
    pub id: String,
    /// The path of its URL, as `drop add` prints it: `/p/<id>/`, or
    /// `/p/<id>/<name>/` when it has a name.
    pub path: String,
}

/// The system's clock, plus however far a test moved it on.
#[derive(Debug, Default)]
pub struct MovedClock {
    ahead: Mutex<Duration>,
}

impl MovedClock {
    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        *self.ahead.lock().expect("clock lock") += by;
    }
}

impl Clock for MovedClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + *self.ahead.lock().expect("clock lock")
    }
}

/// A page server over a temp drop home, on `127.0.0.1:<port>`. Dropping it
/// signals shutdown and waits for the server's thread.
pub struct PageServer {
    home: Home,
    port: u16,
    probes: Arc<Probes>,
    clock: Arc<MovedClock>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Where the test writes the files it publishes.
    pub work: TempDir,
    _home_dir: TempDir,
}

impl PageServer {
    /// A server with the daemon's default limits.
    pub fn start() -> Self {
        Self::with_config(ServerConfig::default())
    }

    /// A server with these limits.
    pub fn with_config(config: ServerConfig) -> Self {
        // In a folder of its own, so a test may publish the folder above it.
        let home_dir = tempfile::tempdir().expect("temp home");
        let home = Home::new(home_dir.path().join("drop-home"));
        home.ensure().expect("create the drop home");
        let key = SessionKey::load_or_create(&home.session_key_path()).expect("session key");
        let probes = Arc::new(Probes::default());
        let catalog = Arc::new(Catalog::new(home.registry()));
        let clock = Arc::new(MovedClock::default());
        let site = Site::with_probes(catalog, key, probes.clone()).with_clock(clock.clone());
        let site = Arc::new(site);
        // Bound before the thread starts: connections queue until it accepts.
        let listener =
            bind_listener(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("page-server-{port}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("register the listener");
                    let stopped = async {
                        let _ = stopped.await;
                    };
                    serve(listener, site, config, stopped).await;
                });
            })
            .expect("spawn the server thread");
        PageServer {
            home,
            port,
            probes,
            clock,
            shutdown: Some(shutdown),
            thread: Some(thread),
            work: tempfile::tempdir().expect("temp work dir"),
            _home_dir: home_dir,
        }
    }

    /// The loopback port it serves on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The nonces it answers on its tunnel probe path, as the daemon issues them.
    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// The clock it goes by: the system's until a test moves it on.
    pub fn clock(&self) -> &MovedClock {
        &self.clock
    }

    /// Its drop home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The key it signs sessions and form tokens with.
    pub fn session_key(&self) -> SessionKey {
        SessionKey::load_or_create(&self.home.session_key_path()).expect("session key")
    }

    /// Writes a file under the work folder, creating parents.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.work.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }

    /// Publishes a file, or a folder that holds a `.drop-publish` manifest.
    pub fn publish(&self, source: &Path) -> Page {
        self.insert(page_record(source))
    }

    /// Publishes `source` under the slug `name`.
    pub fn publish_named(&self, source: &Path, name: &str) -> Page {
        let mut record = page_record(source);
        record.name = name.to_owned();
        self.insert(record)
    }

    /// Publishes `source` until `expires_at`.
    pub fn publish_expiring(&self, source: &Path, expires_at: SystemTime) -> Page {
        let mut record = page_record(source);
        record.expires_at = Some(drop_registry::rfc3339(expires_at));
        self.insert(record)
    }

    /// Publishes `source` behind `password`, hashed as `drop add` does.
    pub fn publish_protected(&self, source: &Path, password: &str) -> Page {
        self.publish_with_hash(source, &hash_password(password))
    }

    /// Publishes `source` with this stored hash as it is (say, a Python
    /// drop's `sha256:<hex>`).
    pub fn publish_with_hash(&self, source: &Path, password_hash: &str) -> Page {
        let mut record = page_record(source);
        record.password_hash = password_hash.to_owned();
        self.insert(record)
    }

    /// Adds `record` under a new id.
    pub fn insert(&self, record: Record) -> Page {
        let id = new_page_id();
        let path = match record.name.as_str() {
            "" => format!("/p/{id}/"),
            name => format!("/p/{id}/{name}/"),
        };
        self.home
            .registry()
            .update(|pages| {
                pages.insert(id.clone(), record);
                Ok::<_, RegistryError>(())
            })
            .expect("write the registry");
        Page { id, path }
    }

    /// The stored record of page `id`.
    pub fn record(&self, id: &str) -> Record {
        let pages = self.home.registry().load().expect("read the registry");
        pages.get(id).expect("the page is registered").clone()
    }
}

/// A public page record for `source`, as `drop add` builds it: the
/// canonical path, and a folder only with its manifest.
fn page_record(source: &Path) -> Record {
    let source = std::fs::canonicalize(source).expect("the source exists");
    let is_dir = source.is_dir();
    if is_dir {
        assert!(
            source.join(MANIFEST_NAME).is_file(),
            "{} needs a {MANIFEST_NAME} to be published",
            source.display()
        );
    }
    Record::static_page(source, is_dir)
}

impl Drop for PageServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the page server's thread panicked");
        }
    }
}
