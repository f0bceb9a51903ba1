//! Where an app's output goes, and how its size is kept bounded.
//!
//! An app writes straight into `logs/app-<id>.log` (opened to append), so
//! that it outlives a daemon restart without a pipe to break. The daemon
//! keeps every app log near [`MAX_APP_LOG_BYTES`]: past it, the log's
//! last [`KEPT_BYTES`] become `app-<id>.log.1` and the log is emptied. The
//! app's descriptor appends, so its next write lands at the new end; what
//! it writes between the copy and the emptying is lost (a few bytes for a
//! normal app). `drop logs` and the tails in messages read the previous
//! part when the live log is short. Removing an app removes both files.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use drop_registry::{FileUse, Home, RegistryError, open_home_file};
use tracing::{info, warn};

/// The size past which an app's log is cut (SECURITY.md §5).
pub const MAX_APP_LOG_BYTES: u64 = 8 * 1024 * 1024;
/// How much of a cut log is kept in its previous part.
pub const KEPT_BYTES: u64 = 1024 * 1024;
/// How often the daemon looks at the sizes while an app runs.
pub const LOG_CHECK_EVERY: Duration = Duration::from_millis(250);
/// How soon it looks again after a cut: an app writing as fast as a disk
/// takes (about 1.5 GB/s) passes the bound by some 30 MB at most.
pub const LOG_CHECK_SOON: Duration = Duration::from_millis(20);
/// How much of a log's end a tail reads.
const TAIL_READ_BYTES: u64 = 64 * 1024;

/// The log file of the app `id`.
pub fn app_log_path(home: &Home, id: &str) -> PathBuf {
    home.logs_dir().join(format!("app-{id}.log"))
}

/// The previous part of the log at `log` (`<log>.1`).
pub fn previous_part(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Cuts the log at `log` when it is past `max` bytes: its last `kept`
/// bytes, from a line's start, become its previous part, and it is
/// emptied, also when its end cannot be kept (the bound comes first).
/// Whether it was cut. A log that is a link, a FIFO or another user's is
/// left alone (it is refused where it is read).
pub fn cut_if_too_long(log: &Path, max: u64, kept: u64) -> Result<bool, RegistryError> {
    let mut live = match open_home_file(log, FileUse::Read) {
        Ok(file) => file,
        Err(missing) if missing.is_not_found() => return Ok(false),
        Err(refused) => return Err(refused),
    };
    let len = live.metadata().map_or(0, |m| m.len());
    if len <= max {
        return Ok(false);
    }
    let end_kept = keep_end(log, &mut live, len, kept);
    open_home_file(log, FileUse::Append)?
        .set_len(0)
        .map_err(write_error(log))?;
    if let Err(e) = end_kept {
        warn!("{e}: the log was emptied all the same");
    }
    Ok(true)
}

/// Writes the last `kept` bytes of `live` (`len` long), from a line's
/// start, as the previous part of `log`.
fn keep_end(log: &Path, live: &mut File, len: u64, kept: u64) -> Result<(), RegistryError> {
    let read = |e| RegistryError::Read {
        path: log.to_owned(),
        source: e,
    };
    let mut end = Vec::new();
    live.seek(SeekFrom::Start(len.saturating_sub(kept)))
        .map_err(read)?;
    live.take(kept).read_to_end(&mut end).map_err(read)?;
    // Start at a whole line when there is one.
    let start = end
        .iter()
        .position(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    let previous = previous_part(log);
    match std::fs::remove_file(&previous) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(write_error(&previous)(e));
        }
        _ => {}
    }
    open_home_file(&previous, FileUse::CreateNew)?
        .write_all(&end[start..])
        .map_err(write_error(&previous))
}

/// The error of a failed write to `path`.
fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Cuts the log of the app `id` of `home`, whose leader is `pid` while it
/// runs, if it is too long; whether it was cut.
pub(super) fn cut_app_log(home: &Home, id: &str, pid: Option<u32>) -> bool {
    let log = app_log_path(home, id);
    match cut_if_too_long(&log, MAX_APP_LOG_BYTES, KEPT_BYTES) {
        Ok(true) => {
            info!(
                "log app-{id}.log passed {MAX_APP_LOG_BYTES} bytes: its end was kept in app-{id}.log.1"
            );
            true
        }
        Ok(false) => {
            let emptied = pid.is_some_and(|pid| empty_deleted_log(&log, pid, MAX_APP_LOG_BYTES));
            if emptied {
                info!(
                    "log app-{id}.log, deleted while the app writes to it, passed {MAX_APP_LOG_BYTES} bytes: emptied"
                );
            }
            emptied
        }
        Err(e) => {
            warn!("could not bound the log of app {id}: {e}");
            false
        }
    }
}

/// An app whose log was deleted while it runs goes on writing to it,
/// unseen. When the app's stdout is that log, deleted (nothing else: a
/// file the app chose itself is never touched), it is emptied past `max`
/// through the app's own descriptor. Whether it was.
fn empty_deleted_log(log: &Path, pid: u32, max: u64) -> bool {
    let stdout = format!("/proc/{pid}/fd/1");
    let Ok(target) = std::fs::read_link(&stdout) else {
        return false;
    };
    let mut deleted = log.as_os_str().to_owned();
    deleted.push(" (deleted)");
    if target.as_os_str() != deleted {
        return false;
    }
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(&stdout) else {
        return false;
    };
    file.metadata().is_ok_and(|m| m.len() > max) && file.set_len(0).is_ok()
}

/// Removes the log of the app `id` and its previous part; what is not
/// there is fine.
pub fn remove_app_logs(home: &Home, id: &str) -> Result<(), RegistryError> {
    let live = app_log_path(home, id);
    for path in [previous_part(&live), live] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(write_error(&path)(e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The last `lines` lines of a log file of the home, its previous part
/// included when the live one has fewer (at most the last 64 KiB of each
/// are read); empty when there is none. Both are opened as every file of
/// the home is (SECURITY.md §4): a link, a FIFO or a file of another user
/// is refused, never followed nor waited on.
pub fn read_log_tail(path: &Path, lines: usize) -> Result<String, RegistryError> {
    let live = read_end(path)?;
    let mut all: Vec<&str> = live.lines().collect();
    let previous;
    if all.len() < lines {
        previous = read_end(&previous_part(path))?;
        let mut older: Vec<&str> = previous.lines().collect();
        older.append(&mut all);
        all = older;
    }
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}

/// The end of a log file, as text; empty when there is none.
fn read_end(path: &Path) -> Result<String, RegistryError> {
    let mut file = match open_home_file(path, FileUse::Read) {
        Ok(file) => file,
        Err(missing) if missing.is_not_found() => return Ok(String::new()),
        Err(refused) => return Err(refused),
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(TAIL_READ_BYTES)));
    let mut bytes = Vec::new();
    // `take`: a log that grows while it is read is not read to its new end.
    let _ = file.take(TAIL_READ_BYTES).read_to_end(&mut bytes);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// [`read_log_tail`] for a message the tail only adds to: a refused log
/// is said in its place.
pub fn log_tail(path: &Path, lines: usize) -> String {
    read_log_tail(path, lines).unwrap_or_else(|refused| format!("(not shown: {refused})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(lines: std::ops::RangeInclusive<u32>) -> String {
        lines.map(|i| format!("line {i}\n")).collect()
    }

    /// A log past its bound keeps its end, from a whole line, in its
    /// previous part and starts again; the tail reads across both.
    #[test]
    fn a_log_past_its_bound_is_cut_and_its_end_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app-x.log");
        std::fs::write(&log, numbered(1..=100)).unwrap();
        assert!(!cut_if_too_long(&log, 10_000, 50).unwrap(), "within bound");
        assert!(cut_if_too_long(&log, 500, 50).unwrap());
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        let previous = std::fs::read_to_string(previous_part(&log)).unwrap();
        assert_eq!(previous, numbered(95..=100), "whole lines only");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"line 101\n")
            .unwrap();
        assert_eq!(
            read_log_tail(&log, 3).unwrap(),
            "line 99\nline 100\nline 101"
        );
        assert_eq!(read_log_tail(&log, 1).unwrap(), "line 101");
    }

    /// A previous part that cannot be written (a folder planted there)
    /// does not hold the bound back: the log is emptied all the same.
    #[test]
    fn a_log_is_emptied_even_when_its_end_cannot_be_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app-x.log");
        std::fs::write(&log, numbered(1..=100)).unwrap();
        std::fs::create_dir(previous_part(&log)).unwrap();
        assert!(cut_if_too_long(&log, 500, 50).unwrap());
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
    }

    /// A log deleted while the app writes to it is emptied through the
    /// app's own stdout, and only when that stdout is the deleted log.
    #[test]
    fn a_log_deleted_while_the_app_writes_is_emptied_through_its_stdout() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app-x.log");
        let mut writer = open_home_file(&log, FileUse::Append).unwrap();
        let mut app = std::process::Command::new("sleep")
            .arg("30")
            .stdout(writer.try_clone().unwrap())
            .spawn()
            .unwrap();
        writer.write_all(&[b'x'; 1000]).unwrap();
        assert!(
            !empty_deleted_log(&log, app.id(), 500),
            "not deleted: the path's own cut is for it"
        );
        std::fs::remove_file(&log).unwrap();
        assert!(!empty_deleted_log(&log, app.id(), 5000), "within the bound");
        assert!(!empty_deleted_log(
            &dir.path().join("other.log"),
            app.id(),
            500
        ));
        assert!(empty_deleted_log(&log, app.id(), 500));
        assert_eq!(writer.metadata().unwrap().len(), 0);
        app.kill().unwrap();
        app.wait().unwrap();
    }

    /// A writer that keeps its descriptor (as an app does) writes at the
    /// new end after a cut, not past a hole.
    #[test]
    fn an_appending_writer_goes_on_at_the_start_after_a_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app-x.log");
        let mut app = open_home_file(&log, FileUse::Append).unwrap();
        app.write_all(numbered(1..=100).as_bytes()).unwrap();
        assert!(cut_if_too_long(&log, 500, 50).unwrap());
        app.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "after\n");
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, numbered(1..=10)).unwrap();
        assert_eq!(log_tail(&log, 2), "line 9\nline 10");
        assert_eq!(log_tail(&dir.path().join("missing"), 5), "");
    }

    /// A log that is a link is neither followed by the tail nor by the
    /// message that shows it.
    #[test]
    fn log_tail_refuses_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "secret\n").unwrap();
        let log = dir.path().join("app.log");
        std::os::unix::fs::symlink(&secret, &log).unwrap();
        let err = read_log_tail(&log, 5).unwrap_err();
        assert!(matches!(err, RegistryError::Symlink { .. }), "{err}");
        let shown = log_tail(&log, 5);
        assert!(
            shown.starts_with("(not shown: `") && !shown.contains("secret\n"),
            "{shown}"
        );
    }

    /// Removing an app's logs removes both parts, and nothing there is fine.
    #[test]
    fn removing_logs_removes_both_parts() {
        let home_dir = tempfile::tempdir().unwrap();
        let home = Home::new(home_dir.path().to_owned());
        std::fs::create_dir_all(home.logs_dir()).unwrap();
        let live = app_log_path(&home, "abc");
        std::fs::write(&live, "x").unwrap();
        std::fs::write(previous_part(&live), "y").unwrap();
        remove_app_logs(&home, "abc").unwrap();
        assert!(!live.exists() && !previous_part(&live).exists());
        remove_app_logs(&home, "abc").unwrap();
    }
}
