//! Lines of the daemon's log a visitor can cause (a refused cross-site
//! login, a broken manifest asked for again and again) go through a
//! [`Throttle`], so nobody can fill the disk with them. The log itself is
//! `tracing`'s: levels and timestamps, on standard error, which `drop
//! start` points at `logs/server.log`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a line of one kind and key is written at most.
const THROTTLE_WINDOW: Duration = Duration::from_secs(60);
/// Most keys remembered; past it the memory starts over.
const THROTTLE_KEYS: usize = 10_000;

/// Writes a line of a given key at most once per minute, and says how many
/// were left out since.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Throttle {
    /// Logs `args` unless a line with `key` was logged in the last minute.
    pub(crate) fn line(&self, key: &str, args: fmt::Arguments<'_>) {
        let now = Instant::now();
        let mut seen = self.seen.lock().expect("throttle lock");
        if seen.len() >= THROTTLE_KEYS && !seen.contains_key(key) {
            seen.clear();
        }
        match seen.get_mut(key) {
            Some((at, dropped)) if now.duration_since(*at) < THROTTLE_WINDOW => {
                *dropped += 1;
            }
            Some((at, dropped)) => {
                let left_out = std::mem::take(dropped);
                *at = now;
                drop(seen);
                match left_out {
                    0 => tracing::warn!("{args}"),
                    n => tracing::warn!("{args} ({n} more like it left out)"),
                }
            }
            None => {
                seen.insert(key.to_owned(), (now, 0));
                drop(seen);
                tracing::warn!("{args}");
            }
        }
    }

    /// How many lines of `key` were left out since it was last written.
    #[cfg(test)]
    fn dropped(&self, key: &str) -> u64 {
        self.seen.lock().unwrap().get(key).map_or(0, |(_, n)| *n)
    }
}

/// Text from outside (a header, a path, a description), safe to print or
/// log: control characters, every format character (Unicode's `Cf`: the
/// marks that reorder text such as `U+202E`, zero-width and invisible ones,
/// the byte-order mark, tags) and the line and paragraph separators are
/// shown escaped, so it cannot clear a terminal, break a line or disguise
/// a name.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match is_hidden(c) {
            true => c.escape_unicode().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// Unicode's format characters (`Cf`, as of Unicode 15), and the line and
/// paragraph separators.
const HIDDEN: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{2028}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

fn is_hidden(c: char) -> bool {
    c.is_control() || HIDDEN.iter().any(|&(from, to)| (from..=to).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_line_is_written_once_a_minute_and_counted() {
        let throttle = Throttle::default();
        for _ in 0..1000 {
            throttle.line("page-a", format_args!("refused a cross-site login"));
        }
        assert_eq!(throttle.dropped("page-a"), 999);
        throttle.line("page-b", format_args!("another page is its own key"));
        assert_eq!(throttle.dropped("page-b"), 0);
    }
}
