//! `.drop-publish`: the list of a folder's files that may be served.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The manifest's file name, inside the published folder.
pub const MANIFEST_NAME: &str = ".drop-publish";

/// A parsed `.drop-publish`. Patterns are paths relative to the folder:
/// `index.html` names one file, `*` matches within one path segment,
/// `dir/**` (or `dir/`) everything under `dir`, and `#` starts a comment.
#[derive(Debug, Clone)]
pub struct Manifest {
    set: GlobSet,
    patterns: usize,
}

/// A line of a manifest that is not a valid pattern.
#[derive(Debug, thiserror::Error)]
#[error("line {line} of {MANIFEST_NAME} is not a valid pattern: `{pattern}`")]
pub struct ManifestError {
    /// 1-based line number.
    pub line: usize,
    /// The offending pattern.
    pub pattern: String,
    /// Why it does not parse.
    #[source]
    pub source: globset::Error,
}

impl Manifest {
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
                .map_err(|source| ManifestError {
                    line: index + 1,
                    pattern: line.to_owned(),
                    source,
                })?;
            builder.add(compiled);
            patterns += 1;
        }
        let set = builder.build().map_err(|source| ManifestError {
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
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("[unclosed"));
    }

    #[test]
    fn comments_only_serve_nothing() {
        let m = Manifest::parse("# nothing yet\n").unwrap();
        assert!(m.is_empty() && !m.allows("index.html"));
    }
}
