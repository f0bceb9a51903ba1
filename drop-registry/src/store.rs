//! `pages.json` on disk: lock-free reads, locked read-modify-write updates.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::{FileUse, Pages, RegistryError, open_home_file, write_atomic};

/// How long a writer waits for another drop process to release the lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest pause between two tries of a held lock.
const LOCK_POLL_MAX: Duration = Duration::from_millis(20);
/// How long a state file that does not parse must have stayed unchanged
/// before it is called corrupt: another program (the Python drop) writes
/// `pages.json` in place, truncating it first, and a reader may see it
/// empty or half written meanwhile.
const WRITER_QUIET: Duration = Duration::from_secs(1);
/// The longest a reader waits for such a writer before it judges the file.
const WRITER_WAIT_MAX: Duration = Duration::from_secs(3);
/// How often a torn file is read again while its writer may be at it.
const TORN_POLL: Duration = Duration::from_millis(25);

/// The page registry of one drop home.
#[derive(Debug, Clone)]
pub struct Registry {
    path: PathBuf,
    lock_path: PathBuf,
}

/// What identifies one version of a file: a new rename gives a new inode,
/// an edit in place a new ctime (and usually mtime or length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    inode: u64,
    len: u64,
    mtime_ns: i128,
    /// Every write changes it, and nobody can set it back (unlike mtime).
    ctime_ns: i128,
}

impl Registry {
    /// The registry stored at `path` (usually `<home>/pages.json`).
    pub fn at(path: PathBuf) -> Self {
        let mut lock_name = path.file_name().unwrap_or_default().to_owned();
        lock_name.push(".lock");
        let lock_path = path.with_file_name(lock_name);
        Registry { path, lock_path }
    }

    /// The `pages.json` path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the registry without locking: drop's writers replace the file
    /// by an atomic rename, so a reader sees a whole old or a whole new
    /// file. A file another program is writing in place is read again
    /// until its writer is done (see [`RegistryError::Torn`]). A missing
    /// file is an empty registry.
    pub fn load(&self) -> Result<Pages, RegistryError> {
        Ok(read_json(&self.path)?.unwrap_or_default())
    }

    /// Like [`Registry::load`], with the stamp of the version read, but
    /// without waiting: a file that does not parse and changed moments ago
    /// is [`RegistryError::Torn`], for the caller to read again shortly.
    pub fn load_stamped(&self) -> Result<(Pages, Option<FileStamp>), RegistryError> {
        match read_state(&self.path, false)? {
            Some((pages, stamp)) => Ok((pages, Some(stamp))),
            None => Ok((Pages::default(), None)),
        }
    }

    /// The stamp of the file now, `None` when there is no file.
    pub fn stamp(&self) -> Option<FileStamp> {
        FileStamp::read(&self.path)
    }

    /// Runs `change` on the current registry under the exclusive lock and
    /// writes the result atomically if it changed anything. An error from
    /// `change` writes nothing.
    pub fn update<T, E>(&self, change: impl FnOnce(&mut Pages) -> Result<T, E>) -> Result<T, E>
    where
        E: From<RegistryError>,
    {
        let lock = self.lock()?;
        self.remove_stale_temps();
        let before = self.load()?;
        let mut pages = before.clone();
        let out = change(&mut pages)?;
        if pages != before {
            let json = serde_json::to_vec_pretty(&pages).expect("pages always serialise");
            write_atomic(&self.path, &json)?;
        }
        fs2::FileExt::unlock(&lock).ok();
        Ok(out)
    }

    /// Removes the temp files of writers that died mid-write (a killed
    /// `drop add`): each is a whole copy of the registry, hashes included.
    /// Only a holder of the lock writes one, so under the lock every one
    /// that exists is stale.
    fn remove_stale_temps(&self) {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".{name}.tmp-");
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Leaves a note for the user, shown once by the next `drop` command
    /// (see [`Registry::take_notices`]): what the daemon did that the user
    /// should know of, such as a password hash it upgraded.
    pub fn add_notice(&self, text: &str) -> Result<(), RegistryError> {
        let lock = self.lock()?;
        let path = self.notices_path();
        let mut notices = read_text(&path);
        notices.push_str(&text.replace('\n', " "));
        notices.push('\n');
        write_atomic(&path, notices.as_bytes())?;
        fs2::FileExt::unlock(&lock).ok();
        Ok(())
    }

    /// The notices left since the last call, oldest first; each is handed
    /// out once.
    pub fn take_notices(&self) -> Result<Vec<String>, RegistryError> {
        let path = self.notices_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let lock = self.lock()?;
        let text = read_text(&path);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => return Err(RegistryError::Write { path, source }),
        }
        fs2::FileExt::unlock(&lock).ok();
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn notices_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".notices");
        self.path.with_file_name(name)
    }

    fn lock(&self) -> Result<File, RegistryError> {
        let file = open_home_file(&self.lock_path, FileUse::Lock)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        // fs2's trait named in full: std's own `File::try_lock` would shadow it.
        while fs2::FileExt::try_lock_exclusive(&file).is_err() {
            if started.elapsed() > LOCK_TIMEOUT {
                return Err(RegistryError::Locked {
                    path: self.lock_path.clone(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(LOCK_POLL_MAX);
        }
        Ok(file)
    }
}

impl FileStamp {
    /// The stamp of the file at `path` now, following symlinks.
    pub fn read(path: &Path) -> Option<Self> {
        fs::metadata(path).ok().map(|m| FileStamp::of(&m))
    }

    /// The stamp of already-read metadata.
    pub fn of(meta: &fs::Metadata) -> Self {
        FileStamp {
            inode: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// Reads a JSON state file; `None` when it does not exist. A file that
/// does not parse is read again while another program may be writing it;
/// one that stays invalid is left in place, copied aside, and reported.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, RegistryError> {
    let started = Instant::now();
    loop {
        let waited_enough = started.elapsed() >= WRITER_WAIT_MAX;
        match read_state(path, waited_enough) {
            Err(RegistryError::Torn { .. }) => std::thread::sleep(TORN_POLL),
            read => return read.map(|state| state.map(|(value, _)| value)),
        }
    }
}

/// One read of a state file, with the stamp of what was read. A file that
/// does not parse is [`RegistryError::Torn`] while it changed within
/// [`WRITER_QUIET`] (unless `judge_now`), else corrupt.
fn read_state<T: DeserializeOwned>(
    path: &Path,
    judge_now: bool,
) -> Result<Option<(T, FileStamp)>, RegistryError> {
    let read_error = |source| RegistryError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let meta = file.metadata().map_err(read_error)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(read_error)?;
    let source = match serde_json::from_slice(&bytes) {
        Ok(value) => return Ok(Some((value, FileStamp::of(&meta)))),
        Err(source) => source,
    };
    // The file as it is now: a writer may have finished since it was read.
    let changed = fs::metadata(path).map_or(UNIX_EPOCH, |m| changed_at(&m));
    let quiet = SystemTime::now()
        .duration_since(changed)
        .is_ok_and(|quiet| quiet >= WRITER_QUIET);
    if !judge_now && !quiet {
        return Err(RegistryError::Torn {
            path: path.to_owned(),
            source,
        });
    }
    Err(RegistryError::Corrupt {
        path: path.to_owned(),
        copy: keep_copy(path, &bytes),
        source,
    })
}

/// When the file's content or metadata last changed (its ctime), which
/// nobody can set back.
fn changed_at(meta: &fs::Metadata) -> SystemTime {
    let secs = u64::try_from(meta.ctime()).unwrap_or(0);
    let nanos = u64::try_from(meta.ctime_nsec()).unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos)
}

/// A small text file of the home, empty when missing or refused.
fn read_text(path: &Path) -> String {
    String::from_utf8(read_bytes(path).unwrap_or_default()).unwrap_or_default()
}

/// A file of the home, never read through a link.
fn read_bytes(path: &Path) -> Option<Vec<u8>> {
    let mut file = open_home_file(path, FileUse::Read).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Saves the bytes of a broken file beside it as `<name>.corrupt-<time>`,
/// reusing an earlier copy with the same bytes so repeated runs do not pile up.
fn keep_copy(path: &Path, bytes: &[u8]) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!("{name}.corrupt-");
    let dir = path.parent().unwrap_or(Path::new("."));
    let earlier = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .find(|entry| {
            entry.file_name().to_string_lossy().starts_with(&prefix)
                && read_bytes(&entry.path()).is_some_and(|old| old == bytes)
        });
    if let Some(entry) = earlier {
        return entry.path();
    }
    let stamp = crate::rfc3339(SystemTime::now()).replace(':', "");
    let mut copy = dir.join(format!("{prefix}{stamp}"));
    // A new name each time: nothing already there, a link least of all, is
    // written through.
    for n in 1.. {
        match open_home_file(&copy, FileUse::CreateNew) {
            Ok(mut file) => {
                let _ = file.write_all(bytes);
                break;
            }
            Err(RegistryError::Write { source, .. })
                if source.kind() == ErrorKind::AlreadyExists =>
            {
                copy = dir.join(format!("{prefix}{stamp}-{n}"));
            }
            Err(_) => break,
        }
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Record;
    use std::os::unix::fs::PermissionsExt;

    fn registry(dir: &Path) -> Registry {
        Registry::at(dir.join("pages.json"))
    }

    #[test]
    fn missing_file_is_an_empty_registry() {
        let dir = tempfile::tempdir().unwrap();
        assert!(registry(dir.path()).load().unwrap().is_empty());
    }

    #[test]
    fn update_writes_owner_only_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        reg.update(|p| {
            p.insert("id1".into(), Record::static_page("/a".into(), false));
            Ok::<_, RegistryError>(())
        })
        .unwrap();
        assert!(reg.load().unwrap().contains("id1"));
        let mode = fs::metadata(reg.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let lock_mode = fs::metadata(&reg.lock_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(lock_mode, 0o600);
    }

    #[test]
    fn failing_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let result: Result<(), RegistryError> = reg.update(|p| {
            p.insert("id1".into(), Record::static_page("/a".into(), false));
            Err(RegistryError::NotFound { query: "x".into() })
        });
        assert!(result.is_err());
        assert!(!reg.path().exists());
    }

    #[test]
    fn corrupt_file_is_reported_kept_and_copied_once() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        for bytes in [&b""[..], b"\0\0\0", b"{\"a\": ", b"[1,2]", b"{\"id\": 3}"] {
            fs::write(reg.path(), bytes).unwrap();
            let first = reg.load().unwrap_err();
            let second = reg.update(|_| Ok::<_, RegistryError>(())).unwrap_err();
            let (RegistryError::Corrupt { copy: a, .. }, RegistryError::Corrupt { copy: b, .. }) =
                (first, second)
            else {
                panic!("expected corrupt errors");
            };
            assert_eq!(a, b, "the same bytes are copied once");
            assert_eq!(fs::read(&a).unwrap(), bytes);
            assert_eq!(fs::read(reg.path()).unwrap(), bytes, "never rewritten");
        }
    }

    /// A registry another program is writing in place (empty, then half
    /// of it) is read again once its writer is done: the reader gets the
    /// whole new registry, and nothing is called corrupt or copied aside.
    #[test]
    fn a_registry_written_in_place_is_read_whole_once_its_writer_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let mut pages = Pages::default();
        pages.insert("old".into(), Record::static_page("/a".into(), false));
        fs::write(reg.path(), serde_json::to_vec(&pages).unwrap()).unwrap();
        pages.insert("new".into(), Record::static_page("/b".into(), false));
        let (torn_tx, torn_rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            // The Python drop's way: truncate, write half, then the rest.
            s.spawn(|| {
                let json = serde_json::to_vec_pretty(&pages).unwrap();
                let (first, second) = json.split_at(json.len() / 2);
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(reg.path())
                    .unwrap();
                file.write_all(first).unwrap();
                torn_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                file.write_all(second).unwrap();
            });
            torn_rx.recv().unwrap();
            assert!(
                matches!(reg.load_stamped(), Err(RegistryError::Torn { .. })),
                "half a file, just written, is torn rather than corrupt"
            );
            let loaded = reg.load().unwrap();
            assert!(loaded.contains("old") && loaded.contains("new"));
        });
        let copies = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .count();
        assert_eq!(copies, 0, "nothing was called corrupt");
    }

    /// A file that stays invalid is judged once its writer is quiet,
    /// however often it is read, and copied aside once.
    #[test]
    fn a_registry_that_stays_invalid_is_called_corrupt_and_copied_once() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        fs::write(reg.path(), b"{\"old\": ").unwrap();
        let started = Instant::now();
        let first = reg.load().unwrap_err();
        assert!(
            started.elapsed() >= WRITER_QUIET,
            "its writer was waited for"
        );
        for _ in 0..3 {
            assert!(matches!(
                reg.load_stamped(),
                Err(RegistryError::Corrupt { .. })
            ));
        }
        assert!(matches!(first, RegistryError::Corrupt { .. }), "{first}");
        let copies: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(copies.len(), 1, "copied aside once");
    }

    /// A writer killed mid-write leaves `.pages.json.tmp-*`, a whole copy
    /// of the registry with its hashes: the next writer removes it under
    /// the lock, and nothing else.
    #[test]
    fn temp_files_of_a_killed_writer_are_removed_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        let stale = dir.path().join(".pages.json.tmp-4242-0");
        fs::write(&stale, b"{\"id\": {\"password_hash\": \"sha256:00\"}}").unwrap();
        let other = dir.path().join(".server.json.tmp-4242-0");
        fs::write(&other, b"{}").unwrap();
        reg.update(|p| {
            p.insert("id1".into(), Record::static_page("/a".into(), false));
            Ok::<_, RegistryError>(())
        })
        .unwrap();
        assert!(!stale.exists(), "the registry's stale temp file is gone");
        assert!(other.exists(), "other files are left alone");
    }

    /// Notices are kept owner-only and handed out once, in order.
    #[test]
    fn notices_are_handed_out_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        assert!(reg.take_notices().unwrap().is_empty());
        reg.add_notice("first").unwrap();
        reg.add_notice("second\nline").unwrap();
        let mode = fs::metadata(reg.notices_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(reg.take_notices().unwrap(), vec!["first", "second line"]);
        assert!(reg.take_notices().unwrap().is_empty());
    }

    #[test]
    fn stamp_changes_with_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        assert_eq!(reg.stamp(), None);
        let mut seen = Vec::new();
        for i in 0..3 {
            reg.update(|p| {
                p.insert(format!("id{i}"), Record::static_page("/a".into(), false));
                Ok::<_, RegistryError>(())
            })
            .unwrap();
            let stamp = reg.stamp().unwrap();
            assert!(!seen.contains(&stamp));
            seen.push(stamp);
        }
        let (pages, stamp) = reg.load_stamped().unwrap();
        assert_eq!(pages.len(), 3);
        assert_eq!(stamp, reg.stamp());
    }

    #[test]
    fn concurrent_writers_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let reg = registry(dir.path());
        std::thread::scope(|s| {
            for t in 0..8 {
                let reg = reg.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        reg.update(|p| {
                            p.insert(format!("t{t}-{i}"), Record::static_page("/a".into(), false));
                            Ok::<_, RegistryError>(())
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(reg.load().unwrap().len(), 200);
    }
}
