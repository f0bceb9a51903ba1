//! Small files kept in memory between requests, each checked against the
//! file on disk at every use: one `stat` instead of open, fstat, read and
//! close. An edit changes the file's ctime (which no one can set back), a
//! replacement its inode, so a stale copy is never served. Entries are
//! trusted only under the manifest they were checked with.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::Manifest;
use crate::respond::FileFacts;

/// Largest file kept.
pub const CACHED_FILE_MAX: u64 = 64 * 1024;
/// Most bytes kept in all; past it the cache starts over.
const CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Most files kept in all.
const CACHE_ENTRIES_MAX: usize = 8192;

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
    /// Its answer's headers.
    pub facts: FileFacts,
    /// Its content.
    pub bytes: Bytes,
}

/// The cache, keyed by the path a request names (before symlinks).
#[derive(Debug, Default)]
pub struct FileCache {
    entries: RwLock<(HashMap<PathBuf, Arc<Cached>>, usize)>,
}

impl FileCache {
    /// The cached file at `path` if it is still the same file, under the
    /// same manifest. `follow`: whether symlinks are followed to reach it
    /// (folder pages) or the path must be the file itself (file pages).
    pub fn get(
        &self,
        path: &Path,
        manifest: Option<&Arc<Manifest>>,
        follow: bool,
    ) -> Option<Arc<Cached>> {
        let cached = self
            .entries
            .read()
            .expect("cache lock")
            .0
            .get(path)
            .cloned()?;
        let same_manifest = match (&cached.manifest, manifest) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same_manifest {
            return None;
        }
        let meta = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        };
        let meta = meta.ok()?;
        (meta.is_file() && Version::of(&meta) == cached.version).then_some(cached)
    }

    /// Keeps a file that was just opened, checked and read whole.
    pub fn put(
        &self,
        path: PathBuf,
        meta: &Metadata,
        manifest: Option<Arc<Manifest>>,
        facts: FileFacts,
        bytes: Bytes,
    ) {
        if bytes.len() as u64 > CACHED_FILE_MAX {
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
            facts,
            bytes,
        };
        if let Some(old) = entries.insert(path, Arc::new(cached)) {
            *total -= old.bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn put(cache: &FileCache, path: &Path, manifest: Option<Arc<Manifest>>) {
        let meta = std::fs::metadata(path).unwrap();
        let bytes = Bytes::from(std::fs::read(path).unwrap());
        cache.put(
            path.to_owned(),
            &meta,
            manifest,
            FileFacts::of(&meta, path),
            bytes,
        );
    }

    #[test]
    fn an_edit_even_of_the_same_size_and_mtime_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "one").unwrap();
        let cache = FileCache::default();
        put(&cache, &path, None);
        assert_eq!(cache.get(&path, None, false).unwrap().bytes, "one");
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, "two").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert!(cache.get(&path, None, false).is_none(), "ctime changed");
    }

    #[test]
    fn a_replaced_file_or_a_symlink_in_its_place_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "one").unwrap();
        std::fs::write(dir.path().join("secret"), "one").unwrap();
        let cache = FileCache::default();
        put(&cache, &path, None);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), &path).unwrap();
        assert!(cache.get(&path, None, false).is_none());
        assert!(cache.get(&path, None, true).is_none(), "another inode");
    }

    #[test]
    fn entries_hold_only_under_their_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "one").unwrap();
        let first = Arc::new(Manifest::parse("*.txt").unwrap());
        let second = Arc::new(Manifest::parse("*.txt").unwrap());
        let cache = FileCache::default();
        put(&cache, &path, Some(first.clone()));
        assert!(cache.get(&path, Some(&first), true).is_some());
        assert!(cache.get(&path, Some(&second), true).is_none());
        assert!(cache.get(&path, None, true).is_none());
    }
}
