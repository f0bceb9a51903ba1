//! The server's view of the registry: an in-memory snapshot of the pages and
//! each folder's manifest. Requests never read `pages.json`: the snapshot is
//! refreshed when drop's own commands ask for it, when an unknown id is asked
//! for, and by a periodic check for writers that do not ask.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use drop_registry::{FileStamp, Pages, Registry, RegistryError, parse_rfc3339};

use super::manifest::{MANIFEST_NAME, Manifest};
use crate::log::Throttle;
use tracing::warn;

/// How the Python drop's unsalted password hashes begin.
const LEGACY_HASH_PREFIX: &str = "sha256:";
/// What a recorded time that does not read as one stands for: long past.
/// A page whose end does not read has expired, a one-time link whose use
/// does not read was used (by nobody who could still hold it).
const UNREADABLE_TIME: SystemTime = UNIX_EPOCH;

/// What the server needs to know of one page.
#[derive(Debug, Clone)]
pub struct PageEntry {
    /// The page's id.
    pub id: String,
    /// Its slug, empty when it has none.
    pub name: String,
    /// The published file or folder, canonical when it existed at load time.
    pub root: PathBuf,
    /// Whether `root` is a folder.
    pub is_dir: bool,
    /// Apps are reached on their own port, not through the page server.
    pub is_app: bool,
    /// Empty for public pages, else the stored password hash.
    pub password_hash: String,
    /// When it stops being served.
    pub expires_at: Option<SystemTime>,
    /// It opens for one human once.
    pub once: bool,
    /// Which `--once` round it is in (see `Record::once_round`).
    pub once_round: u64,
    /// When a once-page was used (as recorded).
    pub used_at: Option<SystemTime>,
}

impl PageEntry {
    /// Whether a password guards it.
    pub fn protected(&self) -> bool {
        !self.password_hash.is_empty()
    }

    /// Whether its time is up at `now`.
    pub fn has_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// What it is called where its content must not show: its name, else
    /// the name of its file or folder.
    pub fn title(&self) -> String {
        match self.name.as_str() {
            "" => self
                .root
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            name => name.to_owned(),
        }
    }
}

/// Published pages as the server sees them.
#[derive(Debug)]
pub struct Catalog {
    registry: Registry,
    /// The drop home, canonical: nothing in it is ever served.
    home: PathBuf,
    snapshot: RwLock<Snapshot>,
    reload: Mutex<()>,
    manifests: Mutex<HashMap<PathBuf, (FileStamp, Arc<Manifest>)>>,
    /// Warnings a visitor can repeat (a broken manifest asked for again).
    warnings: Throttle,
    /// The unreadable times already logged (`id field text`): each once.
    unreadable_logged: Mutex<HashSet<String>>,
    /// Counts the snapshots loaded, for whoever waits for a change.
    reloads: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Snapshot {
    stamp: Option<FileStamp>,
    pages: HashMap<String, Arc<PageEntry>>,
}

impl Catalog {
    /// The pages of `registry`, loaded now.
    pub fn new(registry: Registry) -> Self {
        let home = registry
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let catalog = Catalog {
            home: std::fs::canonicalize(&home).unwrap_or(home),
            registry,
            snapshot: RwLock::default(),
            reload: Mutex::new(()),
            manifests: Mutex::default(),
            warnings: Throttle::default(),
            unreadable_logged: Mutex::default(),
            reloads: tokio::sync::watch::Sender::new(0),
        };
        catalog.refresh();
        catalog
    }

    /// The page with this id. An id the snapshot does not know triggers a
    /// refresh first, so a page is served as soon as it is added.
    pub fn page(&self, id: &str) -> Option<Arc<PageEntry>> {
        if let Some(page) = self.cached(id) {
            return Some(page);
        }
        self.refresh();
        self.cached(id)
    }

    /// The page with this id as the page server serves it at `now`: a page
    /// (apps are reached on their own port) whose time is not up. An
    /// expired page is the 404 of a page that never existed, until the
    /// daemon removes it.
    pub fn serving(&self, id: &str, now: SystemTime) -> Option<Arc<PageEntry>> {
        self.page(id).filter(|p| !p.is_app && !p.has_expired(now))
    }

    /// Changes each time the pages are loaded anew.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    /// When the next page expires, if any does. A page whose end does not
    /// read as a time is not served, but never due for removal: it stays
    /// for the user to see in `list` and fix.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        (snapshot.pages.values())
            .filter_map(|p| p.expires_at)
            .filter(|at| *at != UNREADABLE_TIME)
            .min()
    }

    /// The registry it reads.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The `pages.json` this catalog reads.
    pub fn registry_path(&self) -> &Path {
        self.registry.path()
    }

    /// Whether the snapshot holds `id`, without refreshing it.
    pub fn knows(&self, id: &str) -> bool {
        self.cached(id).is_some()
    }

    fn cached(&self, id: &str) -> Option<Arc<PageEntry>> {
        self.snapshot
            .read()
            .expect("snapshot lock")
            .pages
            .get(id)
            .cloned()
    }

    /// Replaces a page's password hash (a legacy hash after its first right
    /// login) if it is still `old`, and returns the hash now in force. When
    /// the upgrade cannot be stored, the session stays bound to `old`.
    pub async fn replace_password_hash(
        self: &Arc<Self>,
        id: &str,
        old: &str,
        new: String,
    ) -> String {
        let catalog = self.clone();
        let (id, expected) = (id.to_owned(), old.to_owned());
        let stored = crate::blocking::blocking(move || {
            let result = catalog.registry.update(|pages| {
                let not_found = || RegistryError::NotFound { query: id.clone() };
                let record = pages.get_mut(&id).ok_or_else(not_found)?;
                if record.password_hash == expected {
                    record.password_hash = new;
                }
                Ok::<_, RegistryError>(record.password_hash.clone())
            });
            if let Ok(hash) = &result
                && *hash != expected
                && expected.starts_with(LEGACY_HASH_PREFIX)
            {
                let label = match catalog.page(&id) {
                    Some(page) if !page.name.is_empty() => format!("{id} ({})", page.name),
                    _ => id.clone(),
                };
                let _ = catalog.registry.add_notice(&format!(
                    "the password of page {label} was upgraded from the Python drop's unsalted sha256 hash to argon2id at its first login; the Python drop can no longer check it (this drop can). Set it again with the Python drop, if you go back, to use it there."
                ));
            }
            catalog.refresh();
            result
        })
        .await;
        match stored {
            Ok(hash) => hash,
            Err(e) => {
                warn!("could not store the upgraded password hash: {e}");
                old.to_owned()
            }
        }
    }

    /// The manifest of a published folder; `None` when it is missing or
    /// invalid, and then nothing of the folder is served.
    pub fn manifest(&self, root: &Path) -> Option<Arc<Manifest>> {
        let path = root.join(MANIFEST_NAME);
        let stamp = FileStamp::read(&path)?;
        let cache = self.manifests.lock().expect("manifest cache lock");
        if let Some((seen, manifest)) = cache.get(&path)
            && *seen == stamp
        {
            return Some(manifest.clone());
        }
        drop(cache);
        let loaded = Manifest::load(root);
        let mut cache = self.manifests.lock().expect("manifest cache lock");
        match loaded {
            Ok(manifest) => {
                let manifest = Arc::new(manifest);
                cache.insert(path, (stamp, manifest.clone()));
                Some(manifest)
            }
            Err(e) => {
                let key = root.to_string_lossy();
                self.warnings.line(
                    &key,
                    format_args!("ignoring the manifest of {}: {e}", root.display()),
                );
                cache.remove(&path);
                None
            }
        }
    }

    /// Whether `real` (a path after every symlink) is one of drop's own
    /// files, which are never served.
    pub fn is_drops_own(&self, real: &Path) -> bool {
        is_in_home(&self.home, real)
    }

    /// Reloads the snapshot if `pages.json` changed since it was read (one
    /// `stat` when it did not). A registry that no longer parses keeps the
    /// last good snapshot. False while another program is writing it in
    /// place (it is half written): then call again shortly, and only a file
    /// that stays invalid is called corrupt.
    pub fn refresh(&self) -> bool {
        let now = self.registry.stamp();
        if self.snapshot.read().expect("snapshot lock").stamp == now && now.is_some() {
            return true;
        }
        let _one_reloader = self.reload.lock().expect("reload lock");
        let current = self.snapshot.read().expect("snapshot lock").stamp;
        if current.is_some() && current == self.registry.stamp() {
            return true;
        }
        match self.registry.load_stamped() {
            Ok((pages, stamp)) => {
                self.log_unreadable_times(&pages);
                let entries = entries_of(&pages);
                *self.snapshot.write().expect("snapshot lock") = Snapshot {
                    stamp,
                    pages: entries,
                };
                self.reloads.send_modify(|n| *n += 1);
            }
            // The stamp stays old, so the next refresh reads it again.
            Err(RegistryError::Torn { .. }) => return false,
            Err(e) => {
                warn!("keeping the pages loaded before: {e}");
                self.snapshot.write().expect("snapshot lock").stamp = now;
            }
        }
        true
    }

    /// Says once, for each, which recorded times do not read as times and
    /// what that makes of the page.
    fn log_unreadable_times(&self, pages: &Pages) {
        let mut logged = self.unreadable_logged.lock().expect("unreadable lock");
        for (id, record) in pages.iter() {
            for (field, text) in record.unreadable_times() {
                if !logged.insert(format!("{id} {field} {text}")) {
                    continue;
                }
                let taken = match field {
                    "expires_at" => "the page is taken as expired and not served",
                    _ => "its one-time link is taken as used",
                };
                warn!(
                    "page {id}: its {field} {text:?} is not a time, so {taken}; 'drop list' flags it, and 'drop add' with --expires or --once sets it anew"
                );
            }
        }
    }
}

/// Whether `real` (a path after every symlink) is one of drop's own files:
/// the registry, the session key, logs. Never served, whatever a manifest
/// or a page says.
pub fn is_in_home(home: &Path, real: &Path) -> bool {
    real.starts_with(home)
}

fn entries_of(pages: &Pages) -> HashMap<String, Arc<PageEntry>> {
    pages
        .iter()
        .map(|(id, record)| {
            let root = root_of(&record.source);
            let entry = PageEntry {
                id: id.to_owned(),
                name: record.name.clone(),
                root,
                is_dir: record.is_dir,
                is_app: record.is_app(),
                password_hash: record.password_hash.clone(),
                expires_at: record.expires_at.as_deref().map(read_time),
                once: record.once,
                once_round: record.once_round,
                // A use is its time: one recorded without a visitor is
                // still a use.
                used_at: record.used_at.as_deref().map(read_time),
            };
            (id.to_owned(), Arc::new(entry))
        })
        .collect()
}

/// A recorded time, or [`UNREADABLE_TIME`] when it does not read as one.
fn read_time(text: &str) -> SystemTime {
    parse_rfc3339(text).unwrap_or(UNREADABLE_TIME)
}

/// A page's root: its folders made canonical, its own name kept as it was
/// published. A file or folder replaced by a symlink since is then caught
/// where it is opened (no symlink as the last component of a file page; a
/// folder's files must lie inside the root), rather than followed here.
fn root_of(source: &Path) -> PathBuf {
    match (source.parent(), source.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(name),
        _ => source.to_path_buf(),
    }
}
