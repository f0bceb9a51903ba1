//! Turns the raw path of a request into an open file inside a published
//! folder, or a refusal. The rules of SECURITY.md ("Paths"): decode once,
//! work on components, check what was opened (after symlinks), regular
//! files only.

use std::fs::{File, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::OFlags;

use super::manifest::Manifest;
use super::never_served::{is_never_served, never_served_in_folder};

/// A request path after `/p/<id>/`, decoded exactly once into plain segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// Non-empty segments, none of them `.`, `..`, or holding `/`, `\` or NUL.
    pub segments: Vec<String>,
    /// Whether the path ended with `/`.
    pub trailing_slash: bool,
}

/// What a path resolves to.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per request, never stored
pub enum Resolved {
    /// A regular file that may be served.
    File {
        /// The open file: what is served is what was checked.
        file: File,
        /// Its metadata, from the open file.
        meta: Metadata,
        /// Its real path, for the content type.
        path: PathBuf,
    },
    /// A folder asked for without its `/`: redirect to the same name plus `/`.
    AddSlash,
    /// A folder without `index.html`: no listing.
    Forbidden,
    /// Missing or refused; the two are never told apart.
    NotFound,
}

impl RequestPath {
    /// Decodes the raw (still percent-encoded) rest of a URL path. `None`
    /// for anything that is not a plain relative path: bad escapes, invalid
    /// UTF-8, empty segments (`//`), dot segments, `/`, `\`, NUL or control
    /// characters inside a segment.
    pub fn parse(raw: &str) -> Option<Self> {
        let (body, trailing_slash) = match raw.strip_suffix('/') {
            Some(body) => (body, true),
            None => (raw, false),
        };
        if body.is_empty() {
            // `/p/<id>/` itself: the page's root, always asked for as a folder.
            return Some(RequestPath {
                segments: Vec::new(),
                trailing_slash: true,
            });
        }
        let segments = body
            .split('/')
            .map(decode_segment)
            .collect::<Option<Vec<_>>>()?;
        Some(RequestPath {
            segments,
            trailing_slash,
        })
    }

    /// The segments joined by `/`.
    pub fn joined(&self) -> String {
        self.segments.join("/")
    }
}

fn decode_segment(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let segment = String::from_utf8(out).ok()?;
    let plain = !segment.is_empty()
        && segment != "."
        && segment != ".."
        && !segment
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    plain.then_some(segment)
}

/// Resolves a request inside a published folder. `root` must be canonical.
pub fn resolve_in_folder(root: &Path, manifest: &Manifest, request: &RequestPath) -> Resolved {
    let rel = request.joined();
    // Refuse before touching the disk what the manifest can never allow:
    // neither the path nor an index under it. Then timing tells nothing of
    // which unlisted files exist.
    if !manifest.allows(&rel) && !manifest.allows(&join_rel(&rel, "index.html")) {
        return Resolved::NotFound;
    }
    let Some(opened) = open_inside(root, &root.join(&rel)) else {
        return Resolved::NotFound;
    };
    let Ok(Opened {
        file,
        meta,
        path,
        rel: real_rel,
    }) = opened
    else {
        return Resolved::NotFound;
    };
    if meta.is_dir() {
        return resolve_folder(root, manifest, request, &rel, &real_rel);
    }
    let allowed = manifest.allows(&rel) && manifest.allows(&real_rel);
    if !meta.is_file() || request.trailing_slash || !allowed {
        return Resolved::NotFound;
    }
    Resolved::File { file, meta, path }
}

fn resolve_folder(
    root: &Path,
    manifest: &Manifest,
    request: &RequestPath,
    rel: &str,
    real_rel: &str,
) -> Resolved {
    let index_rel = join_rel(rel, "index.html");
    let may_have_index =
        manifest.allows(&index_rel) && manifest.allows(&join_rel(real_rel, "index.html"));
    if !may_have_index {
        return Resolved::NotFound;
    }
    if !request.trailing_slash {
        return Resolved::AddSlash;
    }
    match open_inside(root, &root.join(&index_rel)) {
        None => Resolved::Forbidden,
        Some(Err(())) => Resolved::NotFound,
        Some(Ok(Opened {
            file,
            meta,
            path,
            rel: real_index,
        })) => {
            if meta.is_file() && manifest.allows(&real_index) {
                Resolved::File { file, meta, path }
            } else {
                Resolved::NotFound
            }
        }
    }
}

/// Resolves the single file of a file page. `source` must be canonical.
pub fn resolve_file_page(source: &Path) -> Resolved {
    // The source was canonical when published: refusing a symlink as the
    // last component is enough, and spares a lookup of the real path.
    let Ok((file, meta)) = open_checked(source, false) else {
        return Resolved::NotFound;
    };
    let name_ok = source
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !is_never_served(n));
    if !meta.is_file() || !name_ok {
        return Resolved::NotFound;
    }
    Resolved::File {
        file,
        meta,
        path: source.to_owned(),
    }
}

struct Opened {
    file: File,
    meta: Metadata,
    path: PathBuf,
    rel: String,
}

/// Opens `path` and checks where it really is. `None`: it does not exist;
/// `Some(Err)`: it exists but is refused (outside `root`, a never-served
/// name, not UTF-8); `Some(Ok)`: allowed so far.
fn open_inside(root: &Path, path: &Path) -> Option<Result<Opened, ()>> {
    let (file, meta) = match open_checked(path, true) {
        Ok(opened) => opened,
        Err(ErrorKind::NotFound) => return None,
        Err(_) => return Some(Err(())),
    };
    let Ok(real) = real_path(&file, path) else {
        return Some(Err(()));
    };
    let rel = real
        .strip_prefix(root)
        .ok()
        .and_then(relative_utf8)
        .filter(|rel| !rel.split('/').any(never_served_in_folder));
    Some(match rel {
        Some(rel) => Ok(Opened {
            file,
            meta,
            path: real,
            rel,
        }),
        None => Err(()),
    })
}

/// Opens without blocking (a FIFO must not hang the server) and without
/// becoming a controlling terminal; with `follow` false, a symlink as the
/// last component is refused.
fn open_checked(path: &Path, follow: bool) -> Result<(File, Metadata), ErrorKind> {
    let mut flags = OFlags::NONBLOCK | OFlags::NOCTTY;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| e.kind())?;
    let meta = file.metadata().map_err(|e| e.kind())?;
    Ok((file, meta))
}

/// Where the open file really is, after every symlink.
#[cfg(target_os = "linux")]
fn real_path(file: &File, _path: &Path) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

#[cfg(not(target_os = "linux"))]
fn real_path(_file: &File, path: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(path)
}

fn relative_utf8(rel: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Percent-encodes what could change a segment's meaning in a `Location`.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Option<Vec<String>> {
        RequestPath::parse(raw).map(|p| p.segments)
    }

    #[test]
    fn decodes_exactly_once() {
        assert_eq!(parse("a%20b/c.txt").unwrap(), ["a b", "c.txt"]);
        assert_eq!(parse("%252e%252e").unwrap(), ["%2e%2e"]);
    }

    #[test]
    fn refuses_everything_that_is_not_a_plain_relative_path() {
        for raw in [
            "..",
            "a/../b",
            "%2e%2e/x",
            ".%2e/x",
            "a%2fb",
            "a%5cb",
            "a\\b",
            "a//b",
            "/etc",
            "%00",
            "a.txt%00.png",
            "%",
            "%4",
            "%zz",
            "%u002e",
            "%ff",
            ".",
            "a/./b",
            "%0a",
        ] {
            assert_eq!(parse(raw), None, "{raw}");
        }
    }

    #[test]
    fn keeps_the_trailing_slash() {
        let p = RequestPath::parse("sub/").unwrap();
        assert!(p.trailing_slash);
        assert_eq!(p.segments, ["sub"]);
        assert!(!RequestPath::parse("sub").unwrap().trailing_slash);
        let root = RequestPath::parse("").unwrap();
        assert!(root.segments.is_empty() && root.trailing_slash);
    }

    #[test]
    fn never_serves_env_manifest_or_git_in_any_case() {
        for name in [
            ".env",
            ".ENV",
            ".Env",
            ".env.local",
            ".env.",
            ".envrc",
            ".drop-publish",
            ".DROP-PUBLISH",
            ".git",
        ] {
            assert!(is_never_served(name), "{name}");
        }
        for name in [".env.example", "env", "a.env", ".envrc2x", "index.html"] {
            assert!(!is_never_served(name), "{name}");
        }
    }

    /// Editors leave copies of the files they edit: backups, autosaves,
    /// locks and swap files of a never-served name are never served either.
    #[test]
    fn editor_backups_and_swap_files_of_blocked_names_are_never_served() {
        for name in [
            ".env~",
            ".ENV~",
            ".envrc~",
            "#.env#",
            ".#.env",
            "..env.swp",
            "..env.swo",
            "..envrc.swx",
            ".envrc.bak",
            ".envrc.orig",
            ".drop-publish~",
            "..drop-publish.swp",
            ".git.bak",
            ".env.example~",
        ] {
            assert!(is_never_served(name), "{name}");
        }
        for name in [
            "index.html~",
            "#notes#",
            ".#page.html",
            ".app.js.swp",
            "a.bak",
            "~",
            "#",
            ".sw",
        ] {
            assert!(!is_never_served(name), "{name}");
        }
    }

    #[test]
    fn redirect_locations_are_encoded_and_relative() {
        assert_eq!(encode_segment("a b"), "a%20b");
        assert_eq!(encode_segment("x?y#z"), "x%3Fy%23z");
    }
}
