//! cloudflared's log file: followed line by line while it starts, and its
//! tail quoted in errors.

use std::io::SeekFrom;
use std::path::Path;

use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How many lines of the log an error quotes.
pub(crate) const TAIL_LINES: usize = 20;
/// How far from the end [`tail`] reads: enough for [`TAIL_LINES`] lines of
/// cloudflared's longest (the disclaimer, ~500 bytes).
const TAIL_BYTES: u64 = 16 * 1024;

/// Reads the lines a process appends to its log, as they come.
pub(crate) struct LogFollower {
    file: File,
    partial: Vec<u8>,
}

impl LogFollower {
    /// Follows `path` from its start.
    pub(crate) async fn open(path: &Path) -> std::io::Result<Self> {
        Ok(LogFollower {
            file: open_log(path).await?,
            partial: Vec::new(),
        })
    }

    /// The complete lines written since the last call. A line still being
    /// written waits for its newline.
    pub(crate) async fn new_lines(&mut self) -> Vec<String> {
        let mut fresh = Vec::new();
        // An error reading our own log file only delays what we learn from it.
        let _ = self.file.read_to_end(&mut fresh).await;
        self.partial.extend_from_slice(&fresh);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The last `lines` lines of the file at `path`; empty if it cannot be read.
pub(crate) async fn tail(path: &Path, lines: usize) -> String {
    read_end(path)
        .await
        .map(|text| last_lines(&text, lines))
        .unwrap_or_default()
}

/// Opens a log to read it, never through a symbolic link: what it says
/// (a URL) is believed.
async fn open_log(path: &Path) -> std::io::Result<File> {
    let no_follow = rustix::fs::OFlags::NOFOLLOW.bits() as i32;
    tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(no_follow)
        .open(path)
        .await
}

async fn read_end(path: &Path) -> std::io::Result<String> {
    let mut file = open_log(path).await?;
    let len = file.metadata().await?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn follows_only_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = std::fs::File::create(&path).unwrap();
        let mut follower = LogFollower::open(&path).await.unwrap();

        write!(writer, "one\ntw").unwrap();
        assert_eq!(follower.new_lines().await, ["one"]);
        write!(writer, "o\nthree\n").unwrap();
        assert_eq!(follower.new_lines().await, ["two", "three"]);
        assert!(follower.new_lines().await.is_empty());
    }

    #[tokio::test]
    async fn the_tail_is_the_last_lines_of_a_long_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail(&path, 2).await, "line 4998\nline 4999");
        assert_eq!(tail(&dir.path().join("missing"), 2).await, "");
    }
}
