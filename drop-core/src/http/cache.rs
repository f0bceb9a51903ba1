//! Small files kept in memory between requests, each checked against the
//! file on disk at every use: an `lstat` per path component instead of
//! open, fstat, read and close. An edit changes the file's ctime (which no
//! one can set back), a replacement its inode; a path that now goes through
//! a symlink is not the path that was checked; an entry is trusted only
//! under the manifest it was checked with, and only for a couple of seconds
//! (memory-mapped writes may leave the timestamps alone).

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::answer::FileFacts;
use crate::page::Manifest;

/// Largest file kept.
pub const CACHED_FILE_MAX: u64 = 64 * 1024;
/// Most bytes kept in all; past it the cache starts over.
const CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most files kept in all.
const CACHE_ENTRIES_MAX: usize = 8192;
/// A file changed this recently is not kept: its timestamps may not show
/// the next write (coarse clocks, writes within one tick).
pub const RACY_WINDOW: Duration = Duration::from_secs(2);
/// A kept file is read again after this long, whatever its timestamps say:
/// writes through a memory map do not always update them.
pub const MAX_AGE: Duration = Duration::from_secs(2);

/// What identifies one version of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Version {
    fn of(meta: &Metadata) -> Self {
        Version {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// One cached file.
#[derive(Debug)]
pub struct Cached {
    version: Version,
    /// The manifest it was checked against; `None` for file pages.
    manifest: Option<Arc<Manifest>>,
    /// When it was read.
    read_at: Instant,
    /// Its answer's headers.
    pub facts: FileFacts,
    /// Its content.
    pub bytes: Bytes,
}

/// A file the slow path has just opened, checked and read.
#[derive(Debug)]
pub struct Checked<'a> {
    /// Its path after symlinks.
    pub real: &'a Path,
    /// Its metadata, from the open file.
    pub meta: &'a Metadata,
    /// The manifest it was checked against; `None` for file pages.
    pub manifest: Option<Arc<Manifest>>,
    /// Its answer's headers.
    pub facts: FileFacts,
    /// Its content.
    pub bytes: Bytes,
}

/// The cache, keyed by the real path of the file (no symlink on the way).
#[derive(Debug, Default)]
pub struct FileCache {
    entries: RwLock<(HashMap<PathBuf, Arc<Cached>>, usize)>,
}

impl FileCache {
    /// The cached file at `root/rel` if it is still the same file, reached
    /// the same way (no component became a symlink), under the same
    /// manifest, and read recently enough.
    pub fn get(
        &self,
        root: &Path,
        rel: &[String],
        manifest: Option<&Arc<Manifest>>,
    ) -> Option<Arc<Cached>> {
        let path = join(root, rel);
        let cached = self
            .entries
            .read()
            .expect("cache lock")
            .0
            .get(&path)
            .cloned()?;
        let same_manifest = match (&cached.manifest, manifest) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same_manifest || cached.read_at.elapsed() > MAX_AGE {
            return None;
        }
        let meta = plain_path_metadata(root, rel)?;
        (meta.is_file() && Version::of(&meta) == cached.version).then_some(cached)
    }

    /// Keeps a file that was just opened, checked and read whole, if its
    /// real path is `root/rel` itself and it has not changed in the last
    /// moments (see [`RACY_WINDOW`]).
    pub fn put(&self, root: &Path, rel: &[String], file: Checked<'_>) {
        let Checked {
            real,
            meta,
            manifest,
            facts,
            bytes,
        } = file;
        let path = join(root, rel);
        if bytes.len() as u64 > CACHED_FILE_MAX || path != real || recently_changed(meta) {
            return;
        }
        let mut guard = self.entries.write().expect("cache lock");
        let (entries, total) = &mut *guard;
        if *total + bytes.len() > CACHE_BYTES_MAX || entries.len() >= CACHE_ENTRIES_MAX {
            entries.clear();
            *total = 0;
        }
        *total += bytes.len();
        let cached = Cached {
            version: Version::of(meta),
            manifest,
            read_at: Instant::now(),
            facts,
            bytes,
        };
        if let Some(old) = entries.insert(path, Arc::new(cached)) {
            *total -= old.bytes.len();
        }
    }
}

fn join(root: &Path, rel: &[String]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(rel);
    path
}

/// The metadata of `root/rel` if no component of it (the root included) is
/// a symlink: then the path is the file's real path, as when it was checked.
fn plain_path_metadata(root: &Path, rel: &[String]) -> Option<Metadata> {
    let mut path = root.to_path_buf();
    let mut meta = std::fs::symlink_metadata(&path).ok()?;
    for segment in rel {
        if meta.file_type().is_symlink() {
            return None;
        }
        path.push(segment);
        meta = std::fs::symlink_metadata(&path).ok()?;
    }
    (!meta.file_type().is_symlink()).then_some(meta)
}

/// Whether the file changed too recently to trust its timestamps: within
/// one timestamp tick a second write may leave them as they were.
fn recently_changed(meta: &Metadata) -> bool {
    let changed = UNIX_EPOCH
        + Duration::new(
            u64::try_from(meta.ctime()).unwrap_or(0),
            meta.ctime_nsec() as u32,
        );
    SystemTime::now()
        .duration_since(changed)
        .map_or(true, |age| age < RACY_WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A file old enough to be kept: its ctime is pushed back by waiting.
    fn aged(path: &Path, content: &str) {
        std::fs::write(path, content).unwrap();
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(50));
    }

    fn put(cache: &FileCache, root: &Path, rel: &[&str], manifest: Option<Arc<Manifest>>) {
        let rel: Vec<String> = rel.iter().map(|s| s.to_string()).collect();
        let path = join(root, &rel);
        let meta = std::fs::metadata(&path).unwrap();
        let bytes = Bytes::from(std::fs::read(&path).unwrap());
        let real = std::fs::canonicalize(&path).unwrap();
        let facts = FileFacts::of(&meta, &path);
        cache.put(
            root,
            &rel,
            Checked {
                real: &real,
                meta: &meta,
                manifest,
                facts,
                bytes,
            },
        );
    }

    fn get(
        cache: &FileCache,
        root: &Path,
        rel: &[&str],
        manifest: Option<&Arc<Manifest>>,
    ) -> Option<Arc<Cached>> {
        let rel: Vec<String> = rel.iter().map(|s| s.to_string()).collect();
        cache.get(root, &rel, manifest)
    }

    /// All of the cache's rules, in one test: each case needs an aged file.
    #[test]
    fn the_cache_serves_only_the_same_file_by_the_same_path_under_the_same_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("pub")).unwrap();
        aged(&root.join("pub/a.txt"), "one");
        let manifest = Arc::new(Manifest::parse("pub/**").unwrap());
        let cache = FileCache::default();

        put(&cache, &root, &["pub", "a.txt"], Some(manifest.clone()));
        assert_eq!(
            get(&cache, &root, &["pub", "a.txt"], Some(&manifest))
                .unwrap()
                .bytes,
            "one"
        );

        let other = Arc::new(Manifest::parse("pub/**").unwrap());
        assert!(
            get(&cache, &root, &["pub", "a.txt"], Some(&other)).is_none(),
            "another manifest"
        );

        // Same size, mtime set back: ctime still tells.
        let mtime = std::fs::metadata(root.join("pub/a.txt"))
            .unwrap()
            .modified()
            .unwrap();
        std::fs::write(root.join("pub/a.txt"), "two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(root.join("pub/a.txt"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(
            get(&cache, &root, &["pub", "a.txt"], Some(&manifest)).is_none(),
            "edited"
        );

        // A parent moved away and a symlink left in its place.
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(50));
        put(&cache, &root, &["pub", "a.txt"], Some(manifest.clone()));
        assert!(get(&cache, &root, &["pub", "a.txt"], Some(&manifest)).is_some());
        std::fs::rename(root.join("pub"), root.join(".git")).unwrap();
        std::os::unix::fs::symlink(".git", root.join("pub")).unwrap();
        assert!(
            get(&cache, &root, &["pub", "a.txt"], Some(&manifest)).is_none(),
            "path through a symlink"
        );
    }

    #[test]
    fn fresh_files_and_symlinked_paths_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("new.txt"), "new").unwrap();
        let cache = FileCache::default();
        put(&cache, &root, &["new.txt"], None);
        assert!(
            get(&cache, &root, &["new.txt"], None).is_none(),
            "changed moments ago"
        );

        aged(&root.join("target.txt"), "t");
        std::os::unix::fs::symlink("target.txt", root.join("link.txt")).unwrap();
        put(&cache, &root, &["link.txt"], None);
        assert!(
            get(&cache, &root, &["link.txt"], None).is_none(),
            "its real path differs"
        );
    }
}
