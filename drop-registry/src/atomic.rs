//! Crash-safe file replacement: temp file, fsync, rename, directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::RegistryError;

/// Owner-only mode for every file drop writes.
pub(crate) const OWNER_ONLY_FILE: u32 = 0o600;

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Replaces `path` with `bytes` so that a crash leaves the old or the new
/// content, never a mix. The file ends up owner-only (0600) whatever the umask.
/// On failure the old file is untouched and the temp file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or("state".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_new(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(RegistryError::Write {
            path: path.to_owned(),
            source,
        });
    }
    // The rename is durable only once the directory entry is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| RegistryError::Write {
            path: dir.to_owned(),
            source,
        })
}

fn write_new(temp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(OWNER_ONLY_FILE)
        .open(temp)?;
    // `mode` is filtered by the umask; set the bits we mean explicitly.
    file.set_permissions(fs::Permissions::from_mode(OWNER_ONLY_FILE))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_sets_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn failed_write_keeps_old_file_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be makes the rename fail.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"keep").unwrap();
        let err = write_atomic(&path, b"new").unwrap_err();
        assert!(matches!(err, RegistryError::Write { .. }));
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"keep");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("taken")]);
    }
}
