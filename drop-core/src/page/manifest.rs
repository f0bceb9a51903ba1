//! `.drop-publish`: the list of a folder's files that may be served, read
//! the same way by `drop add` and by the page server.

use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rustix::fs::OFlags;

/// The manifest's file name, inside the published folder.
pub const MANIFEST_NAME: &str = ".drop-publish";
/// Largest manifest read; a real one is a few lines.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// A parsed `.drop-publish`. Patterns are paths relative to the folder:
/// `index.html` names one file, `*` matches within one path segment,
/// `dir/**` (or `dir/`) everything under `dir`, and `#` starts a comment.
#[derive(Debug, Clone)]
pub struct Manifest {
    set: GlobSet,
    patterns: usize,
}

/// Why a folder's manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The folder has no manifest.
    #[error("`{}` does not exist", path.display())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A symlink, a FIFO, a device, a folder, or larger than
    /// [`MAX_MANIFEST_BYTES`].
    #[error("`{}` is not a small regular file of its own (no symlink, at most 64 KiB)", path.display())]
    NotAFile {
        /// The manifest.
        path: PathBuf,
    },
    /// It could not be read.
    #[error("could not read `{}`", path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid pattern.
    #[error("line {line} of {MANIFEST_NAME} is not a valid pattern: `{pattern}`")]
    Pattern {
        /// 1-based line number.
        line: usize,
        /// The offending pattern.
        pattern: String,
        /// Why it does not parse.
        #[source]
        source: globset::Error,
    },
}

impl Manifest {
    /// Reads and parses the manifest of the folder `dir`. It must be a
    /// small regular file of its own: not a symlink (which could point
    /// anywhere), not a FIFO (which would block), not `/dev/zero`.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST_NAME);
        let flags = OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(&path);
        let file = match file {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(ManifestError::Missing { path });
            }
            // O_NOFOLLOW on a symlink.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(ManifestError::NotAFile { path });
            }
            Err(source) => return Err(ManifestError::Read { path, source }),
        };
        let meta = file.metadata().map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() || meta.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::NotAFile { path });
        }
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES)
            .read_to_string(&mut text)
            .map_err(|source| ManifestError::Read { path, source })?;
        Self::parse(&text)
    }

    /// Parses manifest text.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let mut builder = GlobSetBuilder::new();
        let mut patterns = 0;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let glob = normalise(line);
            let compiled = GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|source| ManifestError::Pattern {
                    line: index + 1,
                    pattern: line.to_owned(),
                    source,
                })?;
            builder.add(compiled);
            patterns += 1;
        }
        let set = builder.build().map_err(|source| ManifestError::Pattern {
            line: 0,
            pattern: String::new(),
            source,
        })?;
        Ok(Manifest { set, patterns })
    }

    /// Whether the folder-relative path `rel` (segments joined by `/`) may be served.
    pub fn allows(&self, rel: &str) -> bool {
        self.set.is_match(rel)
    }

    /// How many patterns it has; a manifest without any serves nothing.
    pub fn len(&self) -> usize {
        self.patterns
    }

    /// Whether it has no pattern.
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }
}

/// `/a` and `./a` mean `a`; `dir/` means everything under `dir`.
fn normalise(pattern: &str) -> String {
    let p = pattern.trim_start_matches("./").trim_start_matches('/');
    match p.strip_suffix('/') {
        Some(dir) => format!("{dir}/**"),
        None => p.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_names_globs_and_subtrees() {
        let m =
            Manifest::parse("# site\nindex.html\n*.txt   # notes\nsub/**\nassets/\n\n").unwrap();
        assert_eq!(m.len(), 4);
        for yes in [
            "index.html",
            "a.txt",
            "sub/b.txt",
            "sub/deep/c.png",
            "assets/x.css",
        ] {
            assert!(m.allows(yes), "{yes}");
        }
        for no in [
            "private.key",
            "other/index.html",
            "dir/a.txt",
            "sub",
            "assetsx/y",
        ] {
            assert!(!m.allows(no), "{no}");
        }
    }

    #[test]
    fn leading_slash_and_dot_slash_are_relative() {
        let m = Manifest::parse("/index.html\n./app.js").unwrap();
        assert!(m.allows("index.html") && m.allows("app.js"));
    }

    #[test]
    fn bad_pattern_names_its_line() {
        let err = Manifest::parse("ok.html\n[unclosed").unwrap_err();
        assert!(
            matches!(err, ManifestError::Pattern { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("[unclosed"));
    }

    #[test]
    fn load_reads_only_a_small_regular_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Manifest::load(dir.path()).unwrap_err();
        assert!(
            matches!(missing, ManifestError::Missing { .. }),
            "{missing:?}"
        );

        std::fs::write(dir.path().join("real"), "*.html\n").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join(MANIFEST_NAME)).unwrap();
        let linked = Manifest::load(dir.path()).unwrap_err();
        assert!(
            matches!(linked, ManifestError::NotAFile { .. }),
            "{linked:?}"
        );

        std::fs::remove_file(dir.path().join(MANIFEST_NAME)).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join(MANIFEST_NAME),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let fifo = Manifest::load(dir.path()).unwrap_err();
        assert!(matches!(fifo, ManifestError::NotAFile { .. }), "{fifo:?}");

        std::fs::remove_file(dir.path().join(MANIFEST_NAME)).unwrap();
        let big = "a.html\n".repeat(MAX_MANIFEST_BYTES as usize / 7 + 1);
        std::fs::write(dir.path().join(MANIFEST_NAME), big).unwrap();
        let large = Manifest::load(dir.path()).unwrap_err();
        assert!(matches!(large, ManifestError::NotAFile { .. }), "{large:?}");

        std::fs::write(dir.path().join(MANIFEST_NAME), "*.html\n").unwrap();
        assert!(Manifest::load(dir.path()).unwrap().allows("index.html"));
    }

    #[test]
    fn comments_only_serve_nothing() {
        let m = Manifest::parse("# nothing yet\n").unwrap();
        assert!(m.is_empty() && !m.allows("index.html"));
    }
}
