//! HTTP answers of the page server: files with validators, conditional GETs
//! and ranges, and the fixed refusal pages. Every refusal of a kind has one
//! body, so nothing tells which ids or files exist.

use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use headers::{
    AcceptRanges, ContentLength, ContentRange, ETag, HeaderMapExt, IfMatch, IfModifiedSince,
    IfNoneMatch, IfRange, IfUnmodifiedSince, LastModified,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};

use super::pages;
use crate::auth::form;

/// Files up to this size are read in one go; larger ones are sent from the
/// page cache by `sendfile` (`http::sendfile`).
pub(crate) const READ_WHOLE_MAX: u64 = 256 * 1024;

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
    /// `len` bytes of an open file from `start`, sent by the connection
    /// straight from the file.
    File {
        /// The open file.
        file: File,
        /// First byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
}

/// The request headers that decide between 200, 206, 304, 412 and 416;
/// one that does not parse counts as absent.
#[derive(Debug, Default, Clone)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<IfMatch>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<IfUnmodifiedSince>,
    /// `If-None-Match`.
    pub if_none_match: Option<IfNoneMatch>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<IfModifiedSince>,
    /// `Range`, as sent: see [`byte_range`] for why it is read here.
    pub range: Option<HeaderValue>,
    /// `If-Range`.
    pub if_range: Option<IfRange>,
}

impl Conditions {
    /// The conditions among a request's headers.
    pub fn of(headers: &HeaderMap) -> Self {
        Conditions {
            if_match: headers.typed_get(),
            if_unmodified_since: headers.typed_get(),
            if_none_match: headers.typed_get(),
            if_modified_since: headers.typed_get(),
            range: headers.get(header::RANGE).cloned(),
            if_range: headers.typed_get(),
        }
    }
}

impl Answer {
    pub(crate) fn fixed(
        status: StatusCode,
        body: &'static str,
        content_type: &'static str,
    ) -> Self {
        Answer::own(status, Bytes::from_static(body.as_bytes()), content_type)
    }

    /// An answer of drop's own (not a file of a page), never cached.
    fn own(status: StatusCode, body: Bytes, content_type: &'static str) -> Self {
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
            body: AnswerBody::Bytes(body),
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
        let mut answer = Answer::fixed(
            StatusCode::NOT_FOUND,
            pages::NOT_FOUND_PAGE,
            "text/html; charset=utf-8",
        );
        answer.own_page_policy();
        answer
    }

    /// What a link-preview bot gets of a one-time page: a card titled
    /// `title`, nothing of the page.
    pub fn preview_card(title: &str) -> Self {
        let card = pages::preview_card(title).into();
        let mut answer = Answer::own(StatusCode::OK, card, "text/html; charset=utf-8");
        answer.own_page_policy();
        answer
    }

    /// A one-time page's use that could not be written: nothing goes out
    /// that the registry would not know of.
    pub fn use_not_recorded() -> Self {
        let mut answer = Answer::fixed_text(
            StatusCode::SERVICE_UNAVAILABLE,
            "The link could not be opened just now; try again in a moment.\n",
        );
        answer
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        answer
    }

    /// drop's own pages load their stylesheet, and nothing else.
    fn own_page_policy(&mut self) {
        self.headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(pages::OWN_PAGE_CSP),
        );
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
    /// files are read whole; larger ones are sent straight from the file.
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
            Content::Send(file)
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
        facts.insert_validators(&mut headers);
        if !preconditions_hold(cond, facts) {
            return Answer {
                status: StatusCode::PRECONDITION_FAILED,
                headers,
                body: AnswerBody::Empty,
            };
        }
        if not_modified(cond, facts, SystemTime::now()) {
            return Answer {
                status: StatusCode::NOT_MODIFIED,
                headers,
                body: AnswerBody::Empty,
            };
        }
        headers.insert(header::CONTENT_TYPE, facts.content_type.clone());
        headers.typed_insert(AcceptRanges::bytes());
        let size = facts.size;
        let asked = cond
            .range
            .as_ref()
            .filter(|_| range_still_fresh(cond, facts));
        let (status, start, len) = match asked.map_or(RangeChoice::Whole, |r| byte_range(r, size)) {
            RangeChoice::Whole => (StatusCode::OK, 0, size),
            RangeChoice::Part(start, end) => {
                let range = ContentRange::bytes(start..=end, size).expect("a closed range");
                headers.typed_insert(range);
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            RangeChoice::Unsatisfiable => {
                headers.typed_insert(ContentRange::unsatisfied_bytes(size));
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
        headers.typed_insert(ContentLength(len));
        let body = match body {
            _ if method == Method::HEAD => AnswerBody::Empty,
            Content::Whole(bytes) => {
                AnswerBody::Bytes(bytes.slice(start as usize..(start + len) as usize))
            }
            Content::Send(file) => AnswerBody::File { file, start, len },
            Content::None => AnswerBody::Empty,
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Whether this answer holds its file from the first byte on: a whole
    /// file, or a range that starts at 0, as its own `Content-Range` says
    /// (`bytes=00-` and `bytes=-99999` can start there too).
    pub fn starts_at_first_byte(&self) -> bool {
        match self.headers.typed_get::<ContentRange>() {
            Some(range) => range.bytes_range().is_some_and(|(first, _)| first == 0),
            None => true,
        }
    }
}

/// Where a file answer's bytes come from.
enum Content {
    None,
    Whole(Bytes),
    Send(File),
}

/// What a file's answer is built from, besides its bytes: worked out once
/// per version of a file.
#[derive(Debug, Clone)]
pub struct FileFacts {
    /// Its length.
    pub size: u64,
    /// Changes with every edit, rename or replacement.
    pub etag: ETag,
    /// Its modification time, to the second.
    pub last_modified: Option<LastModified>,
    /// `Content-Type`, from the file name.
    pub content_type: HeaderValue,
    /// The `ETag` and `Last-Modified` headers as sent, made once: a cached
    /// file's every answer copies them rather than formatting them again.
    sent: [Option<HeaderValue>; 2],
}

impl FileFacts {
    /// The facts of an open file's metadata and its real path.
    pub fn of(meta: &Metadata, path: &Path) -> Self {
        FileFacts::new(
            meta.len(),
            etag_of(meta).parse().expect("a quoted hex etag"),
            modified_of(meta).map(LastModified::from),
            content_type(path),
        )
    }

    /// Facts from their parts.
    pub fn new(
        size: u64,
        etag: ETag,
        last_modified: Option<LastModified>,
        content_type: HeaderValue,
    ) -> Self {
        let sent = [value_of(&etag), last_modified.as_ref().and_then(value_of)];
        FileFacts {
            size,
            etag,
            last_modified,
            content_type,
            sent,
        }
    }

    /// Adds the `ETag` and `Last-Modified` headers to `headers`.
    fn insert_validators(&self, headers: &mut HeaderMap) {
        let [etag, modified] = &self.sent;
        if let Some(etag) = etag {
            headers.insert(header::ETAG, etag.clone());
        }
        if let Some(modified) = modified {
            headers.insert(header::LAST_MODIFIED, modified.clone());
        }
    }
}

/// The value a typed header is sent as.
fn value_of(typed: &impl headers::Header) -> Option<HeaderValue> {
    let mut values = Vec::with_capacity(1);
    typed.encode(&mut values);
    values.pop()
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

/// RFC 9110 §13.2.2, first steps: `If-Match` (tags compare strongly), or
/// without it `If-Unmodified-Since`; false answers 412.
fn preconditions_hold(cond: &Conditions, facts: &FileFacts) -> bool {
    if let Some(tags) = &cond.if_match {
        return tags.precondition_passes(&facts.etag);
    }
    match (&cond.if_unmodified_since, facts.last_modified) {
        (Some(since), Some(modified)) => since.precondition_passes(modified.into()),
        // No date to compare with: the condition cannot be judged, so it holds.
        _ => true,
    }
}

/// RFC 9110 §13.2.2: `If-None-Match` wins over `If-Modified-Since`; tags
/// compare weakly.
fn not_modified(cond: &Conditions, facts: &FileFacts, now: SystemTime) -> bool {
    if let Some(tags) = &cond.if_none_match {
        return !tags.precondition_passes(&facts.etag);
    }
    match (cond.if_modified_since, facts.last_modified) {
        // A date in the future is invalid (RFC 9110 §13.1.3): ignore it.
        (Some(since), Some(modified)) => {
            !since.is_modified(modified.into()) && SystemTime::from(since) <= now
        }
        _ => false,
    }
}

/// RFC 9110 §13.1.5: a range is honoured under `If-Range` only when it
/// names this very version, by its strong ETag or its exact date.
fn range_still_fresh(cond: &Conditions, facts: &FileFacts) -> bool {
    let Some(if_range) = &cond.if_range else {
        return true;
    };
    *if_range == IfRange::etag(facts.etag.clone())
        || facts
            .last_modified
            .is_some_and(|date| *if_range == IfRange::date(date.into()))
}

enum RangeChoice {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range, as nearly every client sends. Several ranges or bad
/// syntax get the whole file, as RFC 9110 allows. Read here rather than
/// through `headers::Range`, whose `satisfiable_ranges` drops a suffix
/// longer than the file (RFC 9110 §14.1.3 serves the whole file), takes
/// `+5` for a number, and yields nothing alike for `bytes=a-b` and for a
/// range past the end.
fn byte_range(range: &HeaderValue, size: u64) -> RangeChoice {
    let Some(spec) = range
        .to_str()
        .ok()
        .and_then(|r| r.trim().strip_prefix("bytes="))
    else {
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
        match byte_range(&HeaderValue::from_str(spec).unwrap(), size) {
            RangeChoice::Whole => None,
            RangeChoice::Part(a, b) => Some((a, b)),
            RangeChoice::Unsatisfiable => Some((u64::MAX, u64::MAX)),
        }
    }

    const UNSAT: Option<(u64, u64)> = Some((u64::MAX, u64::MAX));

    /// The conditions of a request with these headers.
    fn conditions(headers: &[(header::HeaderName, &str)]) -> Conditions {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        Conditions::of(&map)
    }

    /// A file with ETag `"e"`, last modified at `modified`.
    fn facts(modified: Option<SystemTime>) -> FileFacts {
        FileFacts::new(
            10,
            "\"e\"".parse().unwrap(),
            modified.map(LastModified::from),
            HeaderValue::from_static("text/plain"),
        )
    }

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

    /// `If-Match` names this version by its strong tag, or fails (412);
    /// without it, `If-Unmodified-Since` must not be older than the file.
    #[test]
    fn if_match_and_if_unmodified_since_decide_412() {
        let now = SystemTime::now();
        let file = facts(Some(now - Duration::from_secs(60)));
        let holds = |headers: &[(header::HeaderName, &str)]| {
            preconditions_hold(&conditions(headers), &file)
        };
        assert!(holds(&[]));
        assert!(holds(&[(header::IF_MATCH, "\"e\"")]));
        assert!(holds(&[(header::IF_MATCH, "*")]));
        assert!(!holds(&[(header::IF_MATCH, "\"nope\"")]));
        assert!(
            !holds(&[(header::IF_MATCH, "W/\"e\"")]),
            "weak tags never match"
        );
        let before = httpdate::fmt_http_date(now - Duration::from_secs(3600));
        let after = httpdate::fmt_http_date(now);
        assert!(!holds(&[(header::IF_UNMODIFIED_SINCE, &before)]));
        assert!(holds(&[(header::IF_UNMODIFIED_SINCE, &after)]));
        assert!(
            holds(&[
                (header::IF_MATCH, "\"e\""),
                (header::IF_UNMODIFIED_SINCE, &before)
            ]),
            "If-Match decides alone"
        );
    }

    #[test]
    fn a_future_if_modified_since_is_ignored() {
        let now = SystemTime::now();
        let file = facts(Some(now - Duration::from_secs(60)));
        let future = httpdate::fmt_http_date(now + Duration::from_secs(3600));
        let future = conditions(&[(header::IF_MODIFIED_SINCE, &future)]);
        assert!(!not_modified(&future, &file, now));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(1));
        let past = conditions(&[(header::IF_MODIFIED_SINCE, &past)]);
        assert!(not_modified(&past, &file, now));
    }

    #[test]
    fn etags_compare_weakly_for_if_none_match() {
        let now = SystemTime::now();
        let listed = conditions(&[(header::IF_NONE_MATCH, "\"x\", W/\"e\"")]);
        assert!(not_modified(&listed, &facts(None), now));
        let star = conditions(&[(header::IF_NONE_MATCH, "*")]);
        assert!(not_modified(&star, &facts(None), now));
        let other = conditions(&[(header::IF_NONE_MATCH, "\"x\"")]);
        assert!(!not_modified(&other, &facts(None), now));
    }

    /// Any `If-None-Match`, even one naming no tag of ours, takes the
    /// decision from `If-Modified-Since`.
    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let now = SystemTime::now();
        let file = facts(Some(now - Duration::from_secs(60)));
        let date = httpdate::fmt_http_date(now);
        let both = conditions(&[
            (header::IF_NONE_MATCH, "\"x\""),
            (header::IF_MODIFIED_SINCE, &date),
        ]);
        assert!(!not_modified(&both, &file, now));
    }

    /// `If-Range` holds for this version's strong ETag or exact date only:
    /// a later date may belong to another file put in its place.
    #[test]
    fn if_range_names_this_version_exactly() {
        let modified = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let file = facts(Some(modified));
        let fresh =
            |value: &str| range_still_fresh(&conditions(&[(header::IF_RANGE, value)]), &file);
        assert!(fresh("\"e\""));
        assert!(fresh(&httpdate::fmt_http_date(modified)));
        assert!(!fresh("W/\"e\""), "a weak tag");
        assert!(!fresh("\"old\""));
        assert!(!fresh(&httpdate::fmt_http_date(
            modified + Duration::from_secs(1)
        )));
        assert!(!fresh(&httpdate::fmt_http_date(
            modified - Duration::from_secs(1)
        )));
        assert!(range_still_fresh(&Conditions::default(), &file));
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
