//! HTTP answers of the page server: files with validators, conditional GETs
//! and ranges, and the fixed refusal pages. Every refusal of a kind has one
//! body, so nothing tells which ids or files exist.

use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use crate::auth::form;

/// Files up to this size are read in one go; larger ones are streamed.
pub(crate) const READ_WHOLE_MAX: u64 = 256 * 1024;

pub(crate) const NOT_FOUND_BODY: &str =
    "<!doctype html>\n<title>Not found</title>\n<h1>Not found</h1>\n";
const FORBIDDEN_BODY: &str = "<!doctype html>\n<title>Forbidden</title>\n<h1>Forbidden</h1>\n";
const METHOD_BODY: &str =
    "<!doctype html>\n<title>Method not allowed</title>\n<h1>Method not allowed</h1>\n";
const ROBOTS_BODY: &str = "User-agent: *\nDisallow: /\n";

/// What the server answers, before it becomes an `http::Response`.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Headers beyond the security headers every answer gets.
    pub headers: HeaderMap,
    /// The body.
    pub body: AnswerBody,
}

/// The body of an [`Answer`].
#[derive(Debug)]
pub enum AnswerBody {
    /// Nothing (HEAD, 304, redirects).
    Empty,
    /// Bytes already in memory.
    Bytes(Bytes),
    /// `len` bytes of an open file from `start`, streamed.
    File {
        /// The open file.
        file: File,
        /// First byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
}

/// The request headers that decide between 200, 206, 304 and 416.
#[derive(Debug, Default, Clone)]
pub struct Conditions {
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<String>,
    /// `Range`.
    pub range: Option<String>,
    /// `If-Range`.
    pub if_range: Option<String>,
}

impl Answer {
    pub(crate) fn fixed(
        status: StatusCode,
        body: &'static str,
        content_type: &'static str,
    ) -> Self {
        let mut headers = HeaderMap::with_capacity(16);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
        Answer {
            status,
            headers,
            body: AnswerBody::Bytes(Bytes::from_static(body.as_bytes())),
        }
    }

    /// A short plain-text refusal (400, 403, 408, 413).
    pub fn fixed_text(status: StatusCode, body: &'static str) -> Self {
        Answer::fixed(status, body, "text/plain; charset=utf-8")
    }

    /// The login form's stylesheet.
    pub fn login_css() -> Self {
        let mut answer = Answer::fixed(StatusCode::OK, form::LOGIN_CSS, "text/css; charset=utf-8");
        answer.headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=3600"),
        );
        answer
    }

    /// The one 404 for missing pages, missing files and refused paths.
    pub fn not_found() -> Self {
        Answer::fixed(
            StatusCode::NOT_FOUND,
            NOT_FOUND_BODY,
            "text/html; charset=utf-8",
        )
    }

    /// A folder without `index.html`.
    pub fn forbidden() -> Self {
        Answer::fixed(
            StatusCode::FORBIDDEN,
            FORBIDDEN_BODY,
            "text/html; charset=utf-8",
        )
    }

    /// Anything but GET and HEAD on a page.
    pub fn method_not_allowed() -> Self {
        let mut answer = Answer::fixed(
            StatusCode::METHOD_NOT_ALLOWED,
            METHOD_BODY,
            "text/html; charset=utf-8",
        );
        answer
            .headers
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        answer
    }

    /// The answer to the daemon's probe of its own tunnel, for a nonce it
    /// issued: it tells nothing but that this is that daemon.
    pub fn probe() -> Self {
        Answer::fixed(
            StatusCode::OK,
            super::probe::PROBE_ANSWER,
            "text/plain; charset=utf-8",
        )
    }

    /// `robots.txt`: nothing here is for search engines.
    pub fn robots() -> Self {
        Answer::fixed(StatusCode::OK, ROBOTS_BODY, "text/plain; charset=utf-8")
    }

    /// A permanent redirect to a relative location.
    pub fn redirect(location: &str) -> Self {
        Answer::redirect_as(StatusCode::MOVED_PERMANENTLY, location)
    }

    /// A redirect with `status` to `location`, never cached.
    pub(crate) fn redirect_as(status: StatusCode, location: &str) -> Self {
        let mut headers = HeaderMap::with_capacity(16);
        if let Ok(value) = HeaderValue::from_str(location) {
            headers.insert(header::LOCATION, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Answer {
            status,
            headers,
            body: AnswerBody::Empty,
        }
    }

    /// A file of a page, honouring conditional and range requests. Small
    /// files are read whole; larger ones are streamed.
    pub fn file(
        method: &Method,
        file: File,
        meta: &Metadata,
        path: &Path,
        cond: &Conditions,
    ) -> Self {
        let facts = FileFacts::of(meta, path);
        let body = if method == Method::HEAD {
            Content::None
        } else if facts.size <= READ_WHOLE_MAX {
            match read_part(&file, 0, facts.size) {
                Some(bytes) => Content::Whole(bytes),
                // Shorter than its size said: cut while being rewritten, or a
                // file whose size lies (sysfs). Never an empty 200.
                None => return Answer::changed_while_read(),
            }
        } else {
            Content::Stream(file)
        };
        Answer::content(method, &facts, body, cond)
    }

    /// The login form of a protected page, with `status` and an optional
    /// message of drop's own.
    pub fn login_form(status: StatusCode, token: &str, message: Option<&str>) -> Self {
        let mut headers = HeaderMap::with_capacity(16);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(form::LOGIN_CSP),
        );
        Answer {
            status,
            headers,
            body: AnswerBody::Bytes(form::login_page(token, message).into()),
        }
    }

    /// A small file already in memory (see the file cache).
    pub fn cached(method: &Method, facts: &FileFacts, bytes: &Bytes, cond: &Conditions) -> Self {
        let body = if method == Method::HEAD {
            Content::None
        } else {
            Content::Whole(bytes.clone())
        };
        Answer::content(method, facts, body, cond)
    }

    /// A file that did not read back as long as it claimed.
    pub fn changed_while_read() -> Self {
        let mut answer = Answer::fixed_text(
            StatusCode::SERVICE_UNAVAILABLE,
            "The file changed while it was read; reload.\n",
        );
        answer
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        answer
    }

    fn content(method: &Method, facts: &FileFacts, body: Content, cond: &Conditions) -> Self {
        let mut headers = HeaderMap::with_capacity(16);
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
        headers.insert(header::ETAG, facts.etag.clone());
        if let Some(date) = &facts.last_modified {
            headers.insert(header::LAST_MODIFIED, date.clone());
        }
        let etag = facts.etag.to_str().unwrap_or_default();
        if not_modified(cond, etag, facts.modified) {
            return Answer {
                status: StatusCode::NOT_MODIFIED,
                headers,
                body: AnswerBody::Empty,
            };
        }
        headers.insert(header::CONTENT_TYPE, facts.content_type.clone());
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let size = facts.size;
        let (status, start, len) = match byte_range(cond, etag, facts.modified, size) {
            RangeChoice::Whole => (StatusCode::OK, 0, size),
            RangeChoice::Part(start, end) => {
                let value = format!("bytes {start}-{end}/{size}");
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&value).expect("ascii"),
                );
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            RangeChoice::Unsatisfiable => {
                let value = format!("bytes */{size}");
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&value).expect("ascii"),
                );
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                return Answer {
                    status: StatusCode::RANGE_NOT_SATISFIABLE,
                    headers,
                    body: AnswerBody::Empty,
                };
            }
        };
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        let body = match body {
            _ if method == Method::HEAD => AnswerBody::Empty,
            Content::Whole(bytes) => {
                AnswerBody::Bytes(bytes.slice(start as usize..(start + len) as usize))
            }
            Content::Stream(file) => AnswerBody::File { file, start, len },
            Content::None => AnswerBody::Empty,
        };
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// Where a file answer's bytes come from.
enum Content {
    None,
    Whole(Bytes),
    Stream(File),
}

/// What a file's answer is built from, besides its bytes: worked out once
/// per version of a file.
#[derive(Debug, Clone)]
pub struct FileFacts {
    /// Its length.
    pub size: u64,
    /// Changes with every edit, rename or replacement.
    pub etag: HeaderValue,
    /// Its modification time, to the second.
    pub modified: Option<SystemTime>,
    /// `Last-Modified`.
    pub last_modified: Option<HeaderValue>,
    /// `Content-Type`, from the file name.
    pub content_type: HeaderValue,
}

impl FileFacts {
    /// The facts of an open file's metadata and its real path.
    pub fn of(meta: &Metadata, path: &Path) -> Self {
        let modified = modified_of(meta);
        let last_modified = modified.map(|m| {
            HeaderValue::from_str(&httpdate::fmt_http_date(m)).expect("http dates are ascii")
        });
        FileFacts {
            size: meta.len(),
            etag: HeaderValue::from_str(&etag_of(meta)).expect("etag is ascii"),
            modified,
            last_modified,
            content_type: content_type(path),
        }
    }
}

/// Reads a small part at once: for pages of a few KiB this is cheaper than
/// handing the file to a blocking thread. `None` when the file reads
/// shorter than it claimed.
pub(super) fn read_part(file: &File, start: u64, len: u64) -> Option<Bytes> {
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, start).ok()?;
    Some(Bytes::from(buf))
}

/// Changes with every edit (ctime, which nobody can set back), rename or
/// replacement of the file.
fn etag_of(meta: &Metadata) -> String {
    format!(
        "\"{:x}-{:x}-{:x}{:08x}-{:x}{:08x}\"",
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

fn modified_of(meta: &Metadata) -> Option<SystemTime> {
    let secs = u64::try_from(meta.mtime()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn content_type(path: &Path) -> HeaderValue {
    // The commonest types without a table lookup; the rest through mime_guess.
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let common = match ext {
        "html" | "htm" => Some("text/html; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "js" => Some("text/javascript; charset=utf-8"),
        "json" => Some("application/json; charset=utf-8"),
        "png" => Some("image/png"),
        "svg" => Some("image/svg+xml"),
        "txt" => Some("text/plain; charset=utf-8"),
        _ => None,
    };
    if let Some(value) = common {
        return HeaderValue::from_static(value);
    }
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || matches!(mime.subtype().as_str(), "javascript" | "json" | "xml");
    let value = if text && mime.get_param("charset").is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// RFC 9110 §13.2.2: `If-None-Match` wins over `If-Modified-Since`.
fn not_modified(cond: &Conditions, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(inm) = &cond.if_none_match {
        return inm.trim() == "*" || inm.split(',').any(|tag| weak_eq(tag.trim(), etag));
    }
    match (&cond.if_modified_since, modified) {
        // A date in the future is invalid (RFC 9110 §13.1.3): ignore it.
        (Some(since), Some(modified)) => httpdate::parse_http_date(since)
            .is_ok_and(|since| modified <= since && since <= SystemTime::now()),
        _ => false,
    }
}

fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

enum RangeChoice {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range, as nearly every client sends. Several ranges, bad
/// syntax or a stale `If-Range` get the whole file, as RFC 9110 allows.
fn byte_range(
    cond: &Conditions,
    etag: &str,
    modified: Option<SystemTime>,
    size: u64,
) -> RangeChoice {
    let Some(range) = cond.range.as_deref() else {
        return RangeChoice::Whole;
    };
    if let Some(if_range) = cond.if_range.as_deref() {
        let fresh = if if_range.starts_with('"') {
            if_range == etag
        } else {
            let date = httpdate::parse_http_date(if_range).ok();
            date.is_some() && date == modified
        };
        if !fresh {
            return RangeChoice::Whole;
        }
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return RangeChoice::Whole;
    };
    if spec.contains(',') {
        return RangeChoice::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeChoice::Whole;
    };
    // Digits only: `parse` would also take `+5`.
    let parse = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim().is_empty(), parse(first), parse(last)) {
        (true, _, Some(0)) => RangeChoice::Unsatisfiable,
        (true, _, Some(suffix)) if size > 0 => {
            RangeChoice::Part(size.saturating_sub(suffix), size - 1)
        }
        (false, Some(start), _) if start >= size => RangeChoice::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => RangeChoice::Part(start, size - 1),
        (false, Some(start), Some(end)) if end >= start => {
            RangeChoice::Part(start, end.min(size - 1))
        }
        (true, _, Some(_)) => RangeChoice::Unsatisfiable,
        _ => RangeChoice::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(spec: &str, size: u64) -> Option<(u64, u64)> {
        let cond = Conditions {
            range: Some(spec.to_owned()),
            ..Conditions::default()
        };
        match byte_range(&cond, "\"e\"", None, size) {
            RangeChoice::Whole => None,
            RangeChoice::Part(a, b) => Some((a, b)),
            RangeChoice::Unsatisfiable => Some((u64::MAX, u64::MAX)),
        }
    }

    const UNSAT: Option<(u64, u64)> = Some((u64::MAX, u64::MAX));

    #[test]
    fn parses_single_byte_ranges() {
        assert_eq!(range("bytes=0-0", 10), Some((0, 0)));
        assert_eq!(range("bytes=2-", 10), Some((2, 9)));
        assert_eq!(range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(range("bytes=-30", 10), Some((0, 9)));
        assert_eq!(range("bytes=5-999", 10), Some((5, 9)));
    }

    #[test]
    fn out_of_bounds_ranges_are_unsatisfiable() {
        assert_eq!(range("bytes=999999-", 10), UNSAT);
        assert_eq!(range("bytes=10-12", 10), UNSAT);
        assert_eq!(range("bytes=-0", 10), UNSAT);
        assert_eq!(range("bytes=0-", 0), UNSAT);
    }

    #[test]
    fn odd_ranges_get_the_whole_file() {
        for spec in [
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=5-2",
            "bytes=a-b",
            "bytes",
            "bytes=+5-+6",
            "bytes=-+3",
        ] {
            assert_eq!(range(spec, 10), None, "{spec}");
        }
    }

    #[test]
    fn a_future_if_modified_since_is_ignored() {
        let modified = SystemTime::now() - Duration::from_secs(60);
        let future = Conditions {
            if_modified_since: Some(httpdate::fmt_http_date(
                SystemTime::now() + Duration::from_secs(3600),
            )),
            ..Conditions::default()
        };
        assert!(!not_modified(&future, "\"e\"", Some(modified)));
        let past = Conditions {
            if_modified_since: Some(httpdate::fmt_http_date(
                SystemTime::now() - Duration::from_secs(1),
            )),
            ..Conditions::default()
        };
        assert!(not_modified(&past, "\"e\"", Some(modified)));
    }

    #[test]
    fn etags_compare_weakly_for_if_none_match() {
        let cond = Conditions {
            if_none_match: Some("\"x\", W/\"e\"".into()),
            ..Conditions::default()
        };
        assert!(not_modified(&cond, "\"e\"", None));
        let star = Conditions {
            if_none_match: Some("*".into()),
            ..Conditions::default()
        };
        assert!(not_modified(&star, "\"e\"", None));
    }

    #[test]
    fn the_fast_path_agrees_with_mime_guess() {
        for ext in ["html", "htm", "css", "js", "json", "png", "svg", "txt"] {
            let mime = mime_guess::from_ext(ext).first_or_octet_stream();
            let fast = content_type(Path::new(&format!("a.{ext}")));
            assert!(
                fast.to_str().unwrap().starts_with(mime.essence_str()),
                "{ext}: {fast:?} vs {mime}"
            );
        }
    }

    #[test]
    fn text_types_carry_a_charset() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
