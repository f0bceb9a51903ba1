//! Opening drop's own files and folders in its home without trusting what
//! else may be there (SECURITY.md §4): never through a symbolic link, only
//! a regular file (or folder) the effective user owns, in a folder they
//! own, and left owner-only whatever it was.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::RegistryError;
use crate::atomic::OWNER_ONLY_FILE;

/// Owner-only mode for drop's folders.
const OWNER_ONLY_DIR: u32 = 0o700;

/// How a file of the home is opened by [`open_home_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileUse {
    /// Created when missing, never emptied: a lock file.
    Lock,
    /// Created when missing, written at its end: a log.
    Append,
    /// Created; anything already there (a dangling link too) is an error.
    CreateNew,
    /// Read as it is; never created, its mode left alone.
    Read,
}

/// Opens the file at `path` of a drop home for `how`. Refuses a symbolic
/// link (it is not followed, so nothing outside is written or chmod'ed), a
/// FIFO or anything else that is not a regular file, a file of another
/// user, and, for a file it may create, a folder of another user. A file
/// opened to write is made owner-only (0600) through its own handle.
pub fn open_home_file(path: &Path, how: FileUse) -> Result<File, RegistryError> {
    if how != FileUse::Read {
        check_folder_of(path)?;
    }
    let mut options = OpenOptions::new();
    match how {
        FileUse::Lock => options.write(true).create(true),
        FileUse::Append => options.append(true).create(true),
        FileUse::CreateNew => options.write(true).create_new(true),
        FileUse::Read => options.read(true),
    };
    // A FIFO in its place would hold the open until some reader came:
    // non-blocking, that is an error at once (the flag is cleared below).
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
    options
        .mode(OWNER_ONLY_FILE)
        .custom_flags(flags.bits() as i32);
    let file = options
        .open(path)
        .map_err(|source| refusal(path, how, source))?;
    let meta = file.metadata().map_err(|e| io_error(path, how, e))?;
    if !meta.is_file() {
        return Err(wrong_type(path, "a regular file"));
    }
    check_owner(path, &meta)?;
    if how != FileUse::Read && meta.mode() & 0o7777 != OWNER_ONLY_FILE {
        file.set_permissions(fs::Permissions::from_mode(OWNER_ONLY_FILE))
            .map_err(|e| io_error(path, how, e))?;
    }
    let status = rustix::fs::fcntl_getfl(&file).map_err(|e| io_error(path, how, e.into()))?;
    rustix::fs::fcntl_setfl(&file, status - OFlags::NONBLOCK)
        .map_err(|e| io_error(path, how, e.into()))?;
    Ok(file)
}

/// Creates the folder `dir` of a drop home when it is missing, refuses it
/// when another user owns it (then it is left exactly as it was), and
/// makes it owner-only (0700). With `follow` false a symbolic link in its
/// place is refused too (the home itself may be a link the user made).
pub(crate) fn ensure_home_folder(dir: &Path, follow: bool) -> Result<(), RegistryError> {
    let write_error = |source| RegistryError::Write {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(write_error)?;
    let mut flags = OFlags::DIRECTORY;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let folder = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(dir)
        .map_err(|source| match refusal(dir, FileUse::Read, source) {
            // A link here is refused as one, whatever the open said.
            RegistryError::Read { source, .. }
                if source.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) =>
            {
                wrong_type(dir, "a folder")
            }
            refused => refused,
        })?;
    let meta = folder.metadata().map_err(write_error)?;
    check_owner(dir, &meta)?;
    if meta.mode() & 0o7777 != OWNER_ONLY_DIR {
        folder
            .set_permissions(fs::Permissions::from_mode(OWNER_ONLY_DIR))
            .map_err(write_error)?;
    }
    Ok(())
}

/// Refuses anything in `dir`, and in the folders in it, that another user
/// owns: they could change it, or have planted it for drop to trust.
pub(crate) fn check_contents(dir: &Path) -> Result<(), RegistryError> {
    for entry in read_folder(dir)? {
        let Some(meta) = entry_metadata(&entry)? else {
            continue;
        };
        check_owner(&entry.path(), &meta)?;
        if meta.is_dir() {
            for inner in read_folder(&entry.path())? {
                if let Some(meta) = entry_metadata(&inner)? {
                    check_owner(&inner.path(), &meta)?;
                }
            }
        }
    }
    Ok(())
}

/// What `entry` is; `None` when it is gone meanwhile (another drop's
/// temporary file, renamed into place).
fn entry_metadata(entry: &fs::DirEntry) -> Result<Option<Metadata>, RegistryError> {
    match entry.metadata() {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RegistryError::Read {
            path: entry.path(),
            source,
        }),
    }
}

/// The entries of `dir`; those that vanish meanwhile are left out.
fn read_folder(dir: &Path) -> Result<Vec<fs::DirEntry>, RegistryError> {
    let entries = fs::read_dir(dir).map_err(|source| RegistryError::Read {
        path: dir.to_owned(),
        source,
    })?;
    Ok(entries.flatten().collect())
}

/// Refuses what the effective user does not own.
pub(crate) fn check_owner(path: &Path, meta: &Metadata) -> Result<(), RegistryError> {
    let user = rustix::process::geteuid().as_raw();
    match meta.uid() == user {
        true => Ok(()),
        false => Err(RegistryError::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            user,
        }),
    }
}

/// Refuses to create a file in a folder of another user. A missing folder
/// is left for the open to report.
fn check_folder_of(path: &Path) -> Result<(), RegistryError> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match fs::metadata(folder) {
        Ok(meta) => check_owner(folder, &meta),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RegistryError::Read {
            path: folder.to_owned(),
            source,
        }),
    }
}

/// What a failed open means: a link that was not followed, a FIFO with no
/// reader, or an ordinary I/O failure.
fn refusal(path: &Path, how: FileUse, source: std::io::Error) -> RegistryError {
    let code = source.raw_os_error();
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    // `O_NOFOLLOW` makes a link ELOOP, or ENOTDIR with `O_DIRECTORY`.
    let refused_link = [Errno::LOOP, Errno::NOTDIR].map(|e| Some(e.raw_os_error()));
    if is_link && refused_link.contains(&code) {
        RegistryError::Symlink {
            path: path.to_owned(),
        }
    } else if code == Some(Errno::NXIO.raw_os_error()) {
        wrong_type(path, "a regular file")
    } else {
        io_error(path, how, source)
    }
}

fn io_error(path: &Path, how: FileUse, source: std::io::Error) -> RegistryError {
    let path = path.to_owned();
    match how {
        FileUse::Read => RegistryError::Read { path, source },
        _ => RegistryError::Write { path, source },
    }
}

fn wrong_type(path: &Path, expected: &'static str) -> RegistryError {
    RegistryError::WrongType {
        path: path.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{chown, symlink};

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    /// A link planted where drop keeps a file is refused for every use: the
    /// file it points at is neither written, created nor chmod'ed.
    #[test]
    fn a_symbolic_link_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("server.log");
        symlink(&victim, &link).unwrap();
        for how in [
            FileUse::Lock,
            FileUse::Append,
            FileUse::CreateNew,
            FileUse::Read,
        ] {
            let err = open_home_file(&link, how).unwrap_err();
            match how {
                // `create_new` refuses anything already there.
                FileUse::CreateNew => assert!(matches!(err, RegistryError::Write { .. })),
                _ => assert!(
                    matches!(err, RegistryError::Symlink { .. }),
                    "{how:?}: {err}"
                ),
            }
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(mode(&victim), 0o644);
        let dangling = dir.path().join("start.lock");
        let target = dir.path().join("created-through-the-link");
        symlink(&target, &dangling).unwrap();
        let err = open_home_file(&dangling, FileUse::Lock).unwrap_err();
        assert!(matches!(err, RegistryError::Symlink { .. }), "{err}");
        assert!(!target.exists(), "nothing is created through a link");
        assert_eq!(err.code(), "home_symlink");
    }

    /// A FIFO in a log's place is refused at once, never waited on.
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("server.log");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = open_home_file(&fifo, FileUse::Append).unwrap_err();
        assert!(matches!(err, RegistryError::WrongType { .. }), "{err}");
    }

    /// A file drop opens to write is made owner-only, and writes as usual.
    #[test]
    fn an_open_file_is_made_owner_only_and_blocks_as_usual() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        fs::write(&path, "before\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let mut file = open_home_file(&path, FileUse::Append).unwrap();
        file.write_all(b"after\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "before\nafter\n");
        assert_eq!(mode(&path), 0o600);
        let status = rustix::fs::fcntl_getfl(&file).unwrap();
        assert!(!status.contains(OFlags::NONBLOCK));
        let fresh = dir.path().join("pages.json.lock");
        open_home_file(&fresh, FileUse::Lock).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }

    /// Another user's file, or a file in another user's folder, is refused
    /// and left as it was (needs root to give a file away; without it the
    /// refusal of one's own files is all that can be shown).
    #[test]
    fn another_users_file_or_folder_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("start.lock");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let other = rustix::process::geteuid().as_raw() + 1;
        if chown(&path, Some(other), None).is_err() {
            eprintln!("skipped: giving a file to another user needs root");
            return;
        }
        let err = open_home_file(&path, FileUse::Lock).unwrap_err();
        assert!(matches!(err, RegistryError::NotOwned { owner, .. } if owner == other));
        assert_eq!(err.code(), "home_not_owned");
        assert_eq!(mode(&path), 0o644);
        let theirs = dir.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        chown(&theirs, Some(other), None).unwrap();
        let err = open_home_file(&theirs.join("pages.json.lock"), FileUse::Lock).unwrap_err();
        assert!(matches!(err, RegistryError::NotOwned { .. }), "{err}");
        assert!(!theirs.join("pages.json.lock").exists());
    }
}
