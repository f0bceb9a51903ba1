//! The local references in a folder's served HTML that will answer 404: those
//! its `.drop-publish` does not list, and those written from the server's
//! root, so `drop add` can warn with the fix.

mod html;

use std::collections::HashSet;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use super::manifest::Manifest;
use super::never_served::never_served_in_folder;
use super::safe_path::{RequestPath, Resolved, encode_segment, resolve_in_folder};

/// Most HTML files read in one scan, so a huge folder never stalls `drop add`.
const MAX_SCANNED_PAGES: usize = 2_000;
/// Most bytes read of one HTML file.
const MAX_SCANNED_BYTES: u64 = 2 * 1024 * 1024;
/// Most folder entries looked at while looking for HTML files.
const MAX_WALKED_ENTRIES: usize = 100_000;
/// Read of all HTML files together.
const MAX_SCANNED_TOTAL: u64 = 32 * 1024 * 1024;
/// Distinct references (per page) looked up on disk.
const MAX_CHECKED_REFERENCES: usize = 20_000;
/// The whole scan: `drop add` waits for it.
const MAX_SCAN_TIME: Duration = Duration::from_secs(3);

/// A local reference in a served HTML file that will answer 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    /// The HTML file it is in, relative to the folder, `/`-separated.
    pub from: String,
    /// The attribute value as written, e.g. `css/site.css?v=2` or `/abs.css`.
    pub reference: String,
    /// What it asks for, relative to the folder and `/`-separated:
    /// `dir/index.html` for a folder. When that is a symlink the manifest
    /// lists to a file it does not, the file the link leads to: the server
    /// checks both.
    pub target: String,
    /// Whether `target` is a file in the folder now.
    pub exists: bool,
    /// What makes it load.
    pub fix: Fix,
}

/// What makes an [`Uncovered`] reference load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// `.drop-publish` does not list the target: this line would.
    AddLine(String),
    /// No file of the folder is there: no manifest line makes it load.
    /// The file is to be created, or the reference corrected.
    Missing,
    /// The reference begins with `/`, so the browser asks the server's root
    /// for it, not the page (which lives under `/p/<id>/`). Writing it as
    /// `relative` makes it the same file of the folder; `line` is also needed
    /// when `.drop-publish` does not list that file.
    MakeRelative {
        /// The reference rewritten relative to the HTML file's folder.
        relative: String,
        /// The manifest line the target needs too, if any.
        line: Option<String>,
    },
}

impl Fix {
    /// The line to add to `.drop-publish`, if this fix needs one.
    pub fn manifest_line(&self) -> Option<&str> {
        match self {
            Fix::AddLine(line) => Some(line),
            Fix::MakeRelative { line, .. } => line.as_deref(),
            Fix::Missing => None,
        }
    }
}

/// The local references in the HTML files that `manifest` serves from the
/// folder `root` which will answer 404, in a fixed order: HTML files by
/// path, references in document order.
///
/// Read: `href`, `src`, `poster`, `xlink:href` and each `srcset` URL of
/// every tag, in `.html` and `.htm` files the server would serve (symlinks
/// are not followed out of the folder). A file with `<base href>` is
/// skipped, as its references resolve elsewhere. Left alone: URLs with a
/// scheme (`https:`, `mailto:`, `data:`…), `//host/…`, `#fragment`, `?query`,
/// template placeholders, and references the manifest cannot help: ones
/// that climb out of the folder with `..`, lead out of it through a
/// symlink, name a file drop never serves (`.env`, the manifest), or are
/// not a plain path. A reference the manifest lists is not reported, even
/// if the file is missing; one it does not list, to a file that does not
/// exist, is reported as [`Fix::Missing`], with no line to add.
///
/// A target appears once for the manifest, from the first page that asks
/// for it; a root-absolute reference once per page, as each page needs its
/// own edit. It only warns, so it stops quietly at its bounds: 2,000 HTML
/// files, 100,000 folder entries, 2 MiB read of each file and 32 MiB in
/// all, 20,000 distinct references, and 3 s.
///
/// Beside them, whether the scan saw everything (false when it stopped at
/// one of its bounds: there may be more).
pub fn scan_references(root: &Path, manifest: &Manifest) -> (Vec<Uncovered>, bool) {
    let Ok(root) = std::fs::canonicalize(root) else {
        return (Vec::new(), true);
    };
    let (pages, mut complete) = served_pages(&root, manifest);
    let began = Instant::now();
    let mut found = Found::default();
    let (mut read, mut checked) = (0u64, 0usize);
    for from in pages {
        let spent = began.elapsed() >= MAX_SCAN_TIME;
        if spent || read >= MAX_SCANNED_TOTAL || checked >= MAX_CHECKED_REFERENCES {
            complete = false;
            break;
        }
        let Some(html) = read_page(&root, manifest, &from) else {
            continue;
        };
        read += html.len() as u64;
        // A page that repeats a reference needs it checked once.
        let mut seen = HashSet::new();
        for reference in references_in(&html) {
            if !seen.insert(reference.clone()) {
                continue;
            }
            checked += 1;
            if let Some(uncovered) = check(&root, manifest, &from, reference) {
                found.add(uncovered);
            }
            if checked >= MAX_CHECKED_REFERENCES || began.elapsed() >= MAX_SCAN_TIME {
                complete = false;
                break;
            }
        }
    }
    (found.list, complete)
}

/// The distinct manifest lines that `uncovered` asks for, in its order:
/// several targets under `img/` all need the one `img/**`.
pub fn lines_to_add(uncovered: &[Uncovered]) -> Vec<&str> {
    let mut seen = HashSet::new();
    uncovered
        .iter()
        .filter_map(|u| u.fix.manifest_line())
        .filter(|line| seen.insert(*line))
        .collect()
}

/// The list being built, without repeats.
#[derive(Default)]
struct Found {
    list: Vec<Uncovered>,
    seen: HashSet<(String, String)>,
}

impl Found {
    fn add(&mut self, uncovered: Uncovered) {
        let key = match &uncovered.fix {
            Fix::AddLine(_) | Fix::Missing => (String::new(), uncovered.target.clone()),
            Fix::MakeRelative { .. } => (uncovered.from.clone(), uncovered.reference.clone()),
        };
        if self.seen.insert(key) {
            self.list.push(uncovered);
        }
    }
}

/// What a folder page serves: the files under `root` its manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Their paths, `/`-separated, in name order.
    pub files: Vec<String>,
    /// Whether the whole folder was looked at: false when it is so large
    /// that the walk stopped at its bound.
    pub complete: bool,
}

/// The files under `root` that the manifest lists and the server would
/// serve, by path: regular files, and symlinks to regular files inside the
/// folder (not FIFOs, devices, or links out of it). Symlinked folders are
/// not entered, never-served names not looked into.
pub fn served_files(root: &Path, manifest: &Manifest) -> Served {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let stays_inside = |rel: &str| {
        std::fs::canonicalize(root.join(rel))
            .is_ok_and(|real| real.starts_with(&root) && real.is_file())
    };
    let mut files = Vec::new();
    let mut budget = MAX_WALKED_ENTRIES;
    let mut folders = vec![String::new()];
    while let Some(folder) = folders.pop() {
        let mut subfolders = Vec::new();
        for (name, kind) in entries(&root.join(&folder), &mut budget) {
            let rel = join_rel(&folder, &name);
            match kind {
                Entry::Folder => subfolders.push(rel),
                Entry::File if manifest.allows(&rel) => files.push(rel),
                Entry::Symlink if manifest.allows(&rel) && stays_inside(&rel) => files.push(rel),
                _ => {}
            }
        }
        // Reversed onto the stack, so folders are walked in name order.
        folders.extend(subfolders.into_iter().rev());
        if budget == 0 {
            break;
        }
    }
    files.sort();
    Served {
        files,
        complete: budget > 0,
    }
}

/// The HTML files under `root` that the manifest lists, by path, at most
/// [`MAX_SCANNED_PAGES`] of them.
/// Whether they are all is said beside them.
fn served_pages(root: &Path, manifest: &Manifest) -> (Vec<String>, bool) {
    let served = served_files(root, manifest);
    let mut pages: Vec<String> = served
        .files
        .into_iter()
        .filter(|rel| is_html(rel))
        .collect();
    let all = served.complete && pages.len() <= MAX_SCANNED_PAGES;
    pages.truncate(MAX_SCANNED_PAGES);
    (pages, all)
}

/// What a folder entry is, as the walk sees it (symlinks not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Folder,
    File,
    Symlink,
    /// A FIFO, a socket, a device: never served.
    Other,
}

/// The entries of a folder worth a look, by name, and what each is; each
/// one spends `budget`.
fn entries(dir: &Path, budget: &mut usize) -> Vec<(String, Entry)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<(String, Entry)> = read
        .take(*budget)
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let kind = entry.file_type().ok()?;
            let kind = match () {
                _ if kind.is_dir() => Entry::Folder,
                _ if kind.is_file() => Entry::File,
                _ if kind.is_symlink() => Entry::Symlink,
                _ => Entry::Other,
            };
            Some((name, kind))
        })
        .collect();
    *budget -= entries.len();
    entries.retain(|(name, _)| !never_served_in_folder(name));
    entries.sort();
    entries
}

fn is_html(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".html") || name.ends_with(".htm")
}

/// The start of the page `rel`, opened the way the server opens it, so
/// only what it would serve is read.
fn read_page(root: &Path, manifest: &Manifest, rel: &str) -> Option<String> {
    let request = RequestPath {
        segments: rel.split('/').map(str::to_owned).collect(),
        trailing_slash: false,
    };
    let Resolved::File { file, .. } = resolve_in_folder(root, manifest, &request) else {
        return None;
    };
    let mut bytes = Vec::new();
    file.take(MAX_SCANNED_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The URL values of a page's tags, or none when `<base href>` makes
/// them resolve against something else.
fn references_in(html: &str) -> Vec<String> {
    let attributes = html::attributes(html);
    let has_base = attributes
        .iter()
        .any(|a| a.tag == "base" && a.name == "href");
    if has_base {
        return Vec::new();
    }
    let mut urls = Vec::new();
    for attribute in attributes {
        match attribute.name.as_str() {
            "href" | "src" | "poster" | "xlink:href" => urls.push(attribute.value),
            "srcset" => urls.extend(srcset_urls(&attribute.value)),
            _ => {}
        }
    }
    urls
}

/// The URLs of a `srcset`: comma-separated candidates, each a URL and
/// optional descriptors (`2x`, `480w`). A URL may hold commas; one at
/// its end separates it from the next candidate.
fn srcset_urls(srcset: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut rest = srcset;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return urls;
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let url = &rest[..end];
        match url.strip_suffix(',') {
            Some(_) => rest = &rest[end..],
            // Skip the descriptors, up to the next candidate.
            None => {
                rest = rest[end..]
                    .find(',')
                    .map_or("", |comma| &rest[end + comma..])
            }
        }
        urls.push(url.trim_end_matches(',').to_owned());
    }
}

/// Whether the reference `raw` in the page `from` will answer 404, and why.
fn check(root: &Path, manifest: &Manifest, from: &str, raw: String) -> Option<Uncovered> {
    let (path, root_absolute) = local_path(&raw)?;
    let request = RequestPath::parse(&resolve(parent(from), &path)?)?;
    let asked = locate(root, &request)?;
    let unlisted = [Some(&asked.rel), asked.real.as_ref()]
        .into_iter()
        .flatten()
        .find(|rel| !manifest.allows(rel));
    let exists = asked.real.is_some();
    // A line for a file that is not there would not make it load.
    let line = unlisted.filter(|_| exists).map(|rel| manifest_line(rel));
    let fix = match (root_absolute, exists) {
        (true, _) => Fix::MakeRelative {
            relative: relative_from(from, &raw),
            line,
        },
        (false, true) => Fix::AddLine(line?),
        (false, false) => unlisted.map(|_| Fix::Missing)?,
    };
    Some(Uncovered {
        from: from.to_owned(),
        target: unlisted.unwrap_or(&asked.rel).clone(),
        exists,
        reference: raw,
        fix,
    })
}

/// The path of a reference to a file of the same site, and whether it
/// begins with `/`; `None` for anything that leaves the folder's URLs or
/// stays on the page. Backslashes count as slashes and tabs and newlines
/// are dropped, as browsers do.
fn local_path(raw: &str) -> Option<(String, bool)> {
    let cleaned: String = raw
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect();
    let placeholder = ["{{", "{%", "${", "<%"].iter().any(|p| cleaned.contains(p));
    if placeholder || has_scheme(&cleaned) || cleaned.starts_with("//") {
        return None;
    }
    let path = cleaned.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        return None; // empty, `#fragment` or `?query`: this same page
    }
    Some((path.to_owned(), path.starts_with('/')))
}

/// Whether a URL begins with a scheme: a letter, then letters, digits,
/// `+`, `-` or `.`, then `:`.
fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// The folder of the page `rel`: `""` at the top, else `dir/…` without a
/// trailing `/`.
fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The still-encoded request path, relative to the folder, that the
/// browser asks for when `path` is resolved against the folder `base`
/// (`""` for the top), or against the top when it begins with `/`; `None`
/// when `..` climbs above the folder.
fn resolve(base: &str, path: &str) -> Option<String> {
    let base = if path.starts_with('/') { "" } else { base };
    let mut segments: Vec<String> = base
        .split('/')
        .filter(|s| !s.is_empty())
        .map(encode_segment)
        .collect();
    let parts: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    for (index, part) in parts.iter().enumerate() {
        let last = index + 1 == parts.len();
        match dot_segment(part) {
            Some(up) => {
                if up {
                    segments.pop()?;
                }
                if last {
                    segments.push(String::new()); // `a/..` is the folder `a/..` is in
                }
            }
            None => segments.push((*part).to_owned()),
        }
    }
    Some(segments.join("/"))
}

/// `Some(false)` for `.`, `Some(true)` for `..`, in any of the spellings
/// browsers take for them (`%2e`, `.%2E`…).
fn dot_segment(part: &str) -> Option<bool> {
    match part.to_ascii_lowercase().as_str() {
        "." | "%2e" => Some(false),
        ".." | ".%2e" | "%2e." | "%2e%2e" => Some(true),
        _ => None,
    }
}

/// What a request asks of the folder.
struct Asked {
    /// The path asked for; `dir/index.html` for a folder.
    rel: String,
    /// Where it really is, relative to the folder, when it is a file there.
    real: Option<String>,
}

/// Finds what `request` asks for in the folder; `None` when no manifest
/// line could make it load: it leads out of the folder or to something
/// that is not a file, or it names what drop never serves.
fn locate(root: &Path, request: &RequestPath) -> Option<Asked> {
    let mut rel = request.joined();
    if request.trailing_slash || root.join(&rel).is_dir() {
        rel = join_rel(&rel, "index.html");
    }
    if rel.split('/').any(never_served_in_folder) {
        return None;
    }
    let real = match std::fs::canonicalize(root.join(&rel)) {
        Ok(real) => real,
        Err(e) if e.kind() == ErrorKind::NotFound => return Some(Asked { rel, real: None }),
        Err(_) => return None,
    };
    let real_rel = real.strip_prefix(root).ok()?.to_str()?.to_owned();
    let servable = real.is_file() && !real_rel.split('/').any(never_served_in_folder);
    servable.then_some(Asked {
        rel,
        real: Some(real_rel),
    })
}

/// The manifest line that lists `target`: `dir/**` for anything under the
/// top-level folder `dir`, else the file's own name.
fn manifest_line(target: &str) -> String {
    match target.split_once('/') {
        Some((dir, _)) => format!("{}/**", glob_literal(dir)),
        None => glob_literal(target),
    }
}

/// A name as a manifest pattern that matches it. Glob characters are
/// escaped with `\`; `#`, which starts a comment before any escape is
/// read, and spaces at either end, which are trimmed, become `?`.
fn glob_literal(name: &str) -> String {
    let last = name.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(name.len());
    for (index, c) in name.chars().enumerate() {
        let at_edge = index == 0 || index == last;
        if c == '#' || (at_edge && c.is_whitespace()) {
            out.push('?');
            continue;
        }
        if "*?[]{}\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The root-absolute reference `raw` rewritten relative to the folder of
/// the page `from`, keeping its query and fragment.
fn relative_from(from: &str, raw: &str) -> String {
    let rest = &raw.trim_matches(|c: char| c <= ' ')[1..];
    let depth = from.matches('/').count();
    let first = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // At the top, `?q`, `#f` and `` would stay on the page, and `a:b` would
    // read as a scheme: `./` keeps them paths.
    if depth == 0 && (first.is_empty() || first.contains(':')) {
        return format!("./{rest}");
    }
    format!("{}{rest}", "../".repeat(depth))
}

fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests;
