//! The page server in-process, over public pages: files and folders, HEAD,
//! ranges, conditional requests, methods, the headers of every answer, and
//! the limits that keep slow clients from holding it (SECURITY.md §1, §3).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use drop_core::http::{Clock, ServerConfig};
use drop_registry::Record;
use drop_tests::engine::PageServer;
use drop_tests::http::{Response, get, request, request_from};
use drop_tests::login::LOCAL;
use drop_tests::wait_for;

use drop_core::http::NOT_FOUND_PAGE as NOT_FOUND;
const METHOD_NOT_ALLOWED: &str =
    "<!doctype html>\n<title>Method not allowed</title>\n<h1>Method not allowed</h1>\n";
const ROBOTS: &str = "User-agent: *\nDisallow: /\n";
const DIGITS: &str = "0123456789";

/// A server with one public ten-byte file; returns its URL path.
fn digits() -> (PageServer, String) {
    let server = PageServer::start();
    let path = server.publish(&server.write("digits.txt", DIGITS)).path;
    (server, path)
}

/// A response's status, headers and body, without the `Date` header.
fn without_date(res: Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = res
        .headers
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("date"))
        .collect();
    (res.status, headers, res.body)
}

/// A published file is served with its content type, and an edit shows on
/// the very next request, even one of the same length in the same second.
#[test]
fn a_published_file_is_served_with_its_type_and_edits_show_at_once() {
    let server = PageServer::start();
    let port = server.port();
    let file = server.write("report.html", "<h1>v1</h1>");
    let path = server.publish(&file).path;
    let res = get(port, &path);
    assert_eq!((res.status, res.text().as_str()), (200, "<h1>v1</h1>"));
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    std::fs::write(&file, "<h1>v2, longer</h1>").unwrap();
    assert_eq!(get(port, &path).text(), "<h1>v2, longer</h1>");
    std::fs::write(&file, "<h1>v3, longer</h1>").unwrap();
    assert_eq!(get(port, &path).text(), "<h1>v3, longer</h1>");

    let data = server.publish(&server.write("data.json", "{\"a\":1}")).path;
    assert_eq!(
        get(port, &data).header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

/// A page whose time is up answers the 404 of a page that never existed,
/// from the second it expires: the server's clock is moved on, not waited
/// for.
#[test]
fn an_expired_page_is_the_404_of_a_page_that_never_existed() {
    let server = PageServer::start();
    let port = server.port();
    let ends = server.clock().now() + Duration::from_secs(3600);
    let path = server
        .publish_expiring(&server.write("e.html", "e"), ends)
        .path;
    assert_eq!(get(port, &path).status, 200);
    server.clock().advance(Duration::from_secs(3600 - 5));
    assert_eq!(get(port, &path).status, 200, "five seconds before its end");
    server.clock().advance(Duration::from_secs(5));
    let gone = get(port, &path);
    let never = get(port, "/p/aaaaaaaaaaaaaaaaaaaa/");
    assert_eq!((gone.status, gone.text()), (never.status, never.text()));
    assert_eq!(gone.text(), NOT_FOUND);
}

/// A page written to the registry while the server runs is served on the
/// next request, with no reload asked for.
#[test]
fn a_page_published_while_serving_is_served_on_the_next_request() {
    let server = PageServer::start();
    let port = server.port();
    assert_eq!(get(port, "/robots.txt").status, 200);
    for i in 0..5 {
        let file = server.write(&format!("f{i}.txt"), &format!("file {i}"));
        let res = get(port, &server.publish(&file).path);
        assert_eq!((res.status, res.text()), (200, format!("file {i}")));
    }
}

/// Only what `.drop-publish` lists is served; the rest is the one 404.
#[test]
fn a_folder_serves_only_what_its_manifest_lists() {
    let server = PageServer::start();
    let port = server.port();
    server.write("site/index.html", "<p>home</p>");
    server.write("site/style.css", "p{}");
    server.write("site/assets/logo.svg", "<svg/>");
    server.write("site/notes.md", "private notes");
    server.write("site/drafts/x.html", "draft");
    server.write(
        "site/.drop-publish",
        "# public part\nindex.html\n*.css\nassets/**\n",
    );
    let root = server.publish(&server.work.path().join("site")).path;

    let home = get(port, &root);
    assert_eq!((home.status, home.text().as_str()), (200, "<p>home</p>"));
    assert_eq!(
        get(port, &format!("{root}style.css")).header("content-type"),
        Some("text/css; charset=utf-8")
    );
    let logo = get(port, &format!("{root}assets/logo.svg"));
    assert_eq!((logo.status, logo.text().as_str()), (200, "<svg/>"));
    for hidden in ["notes.md", "drafts/x.html", ".drop-publish", "missing.css"] {
        let res = get(port, &format!("{root}{hidden}"));
        assert_eq!(
            (res.status, res.text().as_str()),
            (404, NOT_FOUND),
            "{hidden}"
        );
    }
}

/// A folder whose manifest disappears serves nothing, not even its index.
#[test]
fn a_folder_whose_manifest_is_removed_serves_nothing() {
    let server = PageServer::start();
    let port = server.port();
    server.write("site/index.html", "home");
    let manifest = server.write("site/.drop-publish", "index.html\n");
    let root = server.publish(&server.work.path().join("site")).path;
    assert_eq!(get(port, &root).text(), "home");
    std::fs::remove_file(manifest).unwrap();
    let res = get(port, &root);
    assert_eq!((res.status, res.text().as_str()), (404, NOT_FOUND));
}

/// Every dead link (an id that never existed, an expired page, a used
/// one-time link, a file not there) answers the same bytes for every
/// method: a 404 page fit for a phone, in the login page's style, that
/// says the link does not exist, expired or was used, and not which.
#[test]
fn every_dead_link_answers_one_page_fit_for_a_phone() {
    let server = PageServer::start();
    let port = server.port();
    let expiring = server.clock().now() + Duration::from_secs(60);
    let expired = server.publish_expiring(&server.write("e.html", "e"), expiring);
    let mut once = Record::static_page(
        std::fs::canonicalize(server.write("o.html", "o")).unwrap(),
        false,
    );
    once.once = true;
    let used = server.insert(once);
    assert_eq!(
        request_from([127, 0, 0, 5], port, "GET", &used.path, &[], b"").status,
        200
    );
    server.clock().advance(Duration::from_secs(61));
    let folder = server.write("site/index.html", "home");
    server.write("site/.drop-publish", "index.html\n");
    let site = server.publish(folder.parent().unwrap());
    let dead = [
        "/p/aaaaaaaaaaaaaaaaaaaa/".to_owned(),
        expired.path,
        used.path,
        "/".to_owned(),
    ];
    let never = request(port, "GET", &dead[0], &[]);
    let page = never.text();
    for quality in [
        "<html lang=\"en\">",
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
        "<link rel=\"stylesheet\" href=\"/_drop/login.css\">",
        "does not exist",
        "expired",
        "already used",
    ] {
        assert!(page.contains(quality), "{quality} in {page}");
    }
    let csp = never.header("content-security-policy").unwrap();
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert_eq!(get(port, "/_drop/login.css").status, 200);
    // A missing file of a live public page: other methods get its 405.
    let missing = format!("{}missing.html", site.path);
    let asked = dead
        .iter()
        .flat_map(|path| ["GET", "HEAD", "POST", "OPTIONS", "DELETE"].map(|m| (m, path)))
        .chain(["GET", "HEAD"].map(|m| (m, &missing)));
    let (_, want_headers, want_body) = without_date(request(port, "GET", &dead[0], &[]));
    for (method, path) in asked {
        let (status, headers, body) = without_date(request(port, method, path, &[]));
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(headers, want_headers, "{method} {path}");
        match method {
            "HEAD" => assert!(body.is_empty(), "{path}"),
            _ => assert_eq!(body, want_body, "{method} {path}"),
        }
    }
}

/// `/`, `/p/` and other paths outside a page get the one 404, which names
/// no page.
#[test]
fn root_and_unknown_paths_reveal_no_page_id() {
    let server = PageServer::start();
    let port = server.port();
    let id = server.publish(&server.write("a.txt", "a")).id;
    for path in ["/", "/p/", "/p", "/index.html", "/favicon.ico", "/p//"] {
        let res = get(port, path);
        assert_eq!(
            (res.status, res.text().as_str()),
            (404, NOT_FOUND),
            "{path}"
        );
        assert!(!res.text().contains(&id), "{path} leaks the id");
    }
}

/// The daemon's tunnel probe path answers `drop` for a nonce the daemon
/// issued and the one 404 for anything else (a guess, a page id, the bare
/// prefix), so it tells an outsider nothing.
#[test]
fn the_tunnel_probe_answers_only_issued_nonces() {
    let server = PageServer::start();
    let port = server.port();
    let id = server.publish(&server.write("a.txt", "a")).id;
    let nonce = server.probes().issue();

    let probe = get(port, &format!("/_drop/probe/{nonce}"));
    assert_eq!((probe.status, probe.text().as_str()), (200, "drop\n"));
    assert_eq!(probe.header("cache-control"), Some("no-store"));
    let guess = "a".repeat(nonce.len());
    for path in [
        format!("/_drop/probe/{guess}"),
        format!("/_drop/probe/{id}"),
        format!("/_drop/probe/{nonce}x"),
        "/_drop/probe/".to_owned(),
        "/_drop/probe".to_owned(),
    ] {
        let res = get(port, &path);
        assert_eq!(
            (res.status, res.text().as_str()),
            (404, NOT_FOUND),
            "{path}"
        );
    }
}

/// `/robots.txt` tells every crawler to keep out.
#[test]
fn robots_txt_disallows_everything() {
    let server = PageServer::start();
    let robots = get(server.port(), "/robots.txt");
    assert_eq!((robots.status, robots.text().as_str()), (200, ROBOTS));
    assert_eq!(
        robots.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

/// Every kind of answer carries Referrer-Policy, nosniff and X-Robots-Tag
/// and no Server header; public files are `private, no-cache`, everything
/// else of drop's own `no-store`.
#[test]
fn every_response_carries_the_security_headers() {
    let server = PageServer::start();
    let port = server.port();
    let file = server.publish(&server.write("a.txt", "abc")).path;
    server.write("site/sub/x.txt", "x");
    server.write("site/.drop-publish", "sub/**\n");
    let site = server.publish(&server.work.path().join("site")).path;
    let etag = get(port, &file).header("etag").unwrap().to_owned();
    let public = "private, no-cache";
    let cases = [
        ("file", request(port, "GET", &file, &[]), public),
        ("HEAD", request(port, "HEAD", &file, &[]), public),
        (
            "range",
            request(port, "GET", &file, &[("Range", "bytes=0-0")]),
            public,
        ),
        (
            "not modified",
            request(port, "GET", &file, &[("If-None-Match", &etag)]),
            public,
        ),
        (
            "unsatisfiable",
            request(port, "GET", &file, &[("Range", "bytes=9-")]),
            public,
        ),
        ("missing page", get(port, "/p/nope/x"), "no-store"),
        (
            "missing file",
            get(port, &format!("{site}nope")),
            "no-store",
        ),
        ("folder", get(port, &format!("{site}sub/")), "no-store"),
        ("redirect", get(port, &format!("{site}sub")), "no-store"),
        ("method", request(port, "DELETE", &file, &[]), "no-store"),
        ("root", get(port, "/"), "no-store"),
        ("robots", get(port, "/robots.txt"), "no-store"),
        (
            "login css",
            get(port, "/_drop/login.css"),
            "private, max-age=3600",
        ),
    ];
    let expected = [
        200, 200, 206, 304, 416, 404, 404, 403, 301, 405, 404, 200, 200,
    ];
    for ((what, res, cache), status) in cases.iter().zip(expected) {
        assert_eq!(res.status, status, "{what}");
        res.assert_security_headers(what, cache);
    }
}

/// HEAD answers exactly the headers GET does, with no body: for a small
/// file, a streamed one, a range and a 404; a redirect's differ only by the
/// `Content-Length: 0` of its empty body, which RFC 9110 §9.3.2 lets HEAD
/// omit.
#[test]
fn head_answers_the_headers_of_get_without_a_body() {
    let server = PageServer::start();
    let port = server.port();
    let small = server.publish(&server.write("small.txt", DIGITS)).path;
    let big = server
        .publish(&server.write("big.txt", &"b".repeat(600 * 1024)))
        .path;
    let range = [("Range", "bytes=2-4")];
    for (path, headers) in [
        (small.as_str(), &[][..]),
        (&big, &[]),
        (&big, &range),
        ("/p/nope/x", &[]),
    ] {
        let (get_status, get_headers, get_body) = without_date(request(port, "GET", path, headers));
        let (head_status, head_headers, head_body) =
            without_date(request(port, "HEAD", path, headers));
        assert_eq!(head_status, get_status, "{path}");
        assert_eq!(head_headers, get_headers, "{path}");
        assert!(!get_body.is_empty(), "{path}");
        assert!(head_body.is_empty(), "{path}: HEAD sent a body");
    }
    let head = request(port, "HEAD", &small, &[]);
    assert_eq!(head.header("content-length"), Some("10"));
    assert_eq!(head.header("accept-ranges"), Some("bytes"));

    let bare_id = small.trim_end_matches('/');
    let no_length = |res: Response| {
        let (status, headers, body) = without_date(res);
        let headers: Vec<_> = headers
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
            .collect();
        (status, headers, body)
    };
    assert_eq!(
        no_length(request(port, "HEAD", bare_id, &[])),
        no_length(get(port, bare_id))
    );
}

/// One byte range gets 206 with exactly those bytes and their Content-Range.
#[test]
fn a_single_range_gets_206_with_its_content_range() {
    let (server, path) = digits();
    let port = server.port();
    for (range, body, content_range) in [
        ("bytes=2-4", "234", "bytes 2-4/10"),
        ("bytes=0-0", "0", "bytes 0-0/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-3", "789", "bytes 7-9/10"),
        ("bytes=5-999", "56789", "bytes 5-9/10"),
        ("bytes=-30", DIGITS, "bytes 0-9/10"),
    ] {
        let res = request(port, "GET", &path, &[("Range", range)]);
        assert_eq!((res.status, res.text().as_str()), (206, body), "{range}");
        assert_eq!(res.header("content-range"), Some(content_range), "{range}");
        let len = body.len().to_string();
        assert_eq!(res.header("content-length"), Some(len.as_str()), "{range}");
    }
}

/// A range that starts past the end gets 416, no body, and
/// `Content-Range: bytes */<size>`.
#[test]
fn an_unsatisfiable_range_gets_416_with_the_size() {
    let (server, path) = digits();
    for range in ["bytes=999999-", "bytes=10-12", "bytes=-0"] {
        let res = request(server.port(), "GET", &path, &[("Range", range)]);
        assert_eq!(res.status, 416, "{range}");
        assert_eq!(res.header("content-range"), Some("bytes */10"), "{range}");
        assert!(res.body.is_empty(), "{range}");
    }
}

/// Several ranges, another unit or a backwards range get the whole file
/// with 200, as RFC 9110 allows.
#[test]
fn several_ranges_or_odd_ranges_get_the_whole_file() {
    let (server, path) = digits();
    for range in ["bytes=0-1,3-4", "bytes=0-0, 5-5", "items=0-1", "bytes=5-2"] {
        let res = request(server.port(), "GET", &path, &[("Range", range)]);
        assert_eq!((res.status, res.text().as_str()), (200, DIGITS), "{range}");
        assert_eq!(res.header("content-range"), None, "{range}");
    }
}

/// `If-Range` with the current ETag or date gets the range; with a stale
/// one, the whole file.
#[test]
fn if_range_gets_the_range_only_while_the_file_is_unchanged() {
    let (server, path) = digits();
    let port = server.port();
    let full = get(port, &path);
    let etag = full.header("etag").unwrap();
    let date = full.header("last-modified").unwrap();
    for (if_range, status, body) in [
        (etag, 206, "01"),
        (date, 206, "01"),
        ("\"old\"", 200, DIGITS),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200, DIGITS),
    ] {
        let headers = [("Range", "bytes=0-1"), ("If-Range", if_range)];
        let res = request(port, "GET", &path, &headers);
        assert_eq!(
            (res.status, res.text().as_str()),
            (status, body),
            "{if_range}"
        );
    }
}

/// `If-None-Match` with the file's ETag (strong, weak, in a list, or `*`)
/// gets 304 with no body; another ETag gets the file.
#[test]
fn a_matching_etag_gets_304_without_a_body() {
    let (server, path) = digits();
    let port = server.port();
    let etag = get(port, &path).header("etag").unwrap().to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    for tag in [etag.as_str(), &weak, &listed, "*"] {
        let res = request(port, "GET", &path, &[("If-None-Match", tag)]);
        assert_eq!((res.status, res.body.len()), (304, 0), "{tag}");
        assert_eq!(res.header("etag"), Some(etag.as_str()), "{tag}");
    }
    let other = request(port, "GET", &path, &[("If-None-Match", "\"other\"")]);
    assert_eq!((other.status, other.text().as_str()), (200, DIGITS));
}

/// `If-Match` with another ETag, or `If-Unmodified-Since` before the
/// file's date, gets 412 and no body (a download resumed after an edit
/// must not splice two versions); the file's own ETag gets the file.
#[test]
fn a_failed_precondition_gets_412() {
    let (server, path) = digits();
    let port = server.port();
    let etag = get(port, &path).header("etag").unwrap().to_owned();
    for (name, value) in [
        ("If-Match", "\"nope\""),
        ("If-Unmodified-Since", "Wed, 06 Dec 2000 21:11:53 GMT"),
    ] {
        let res = request(port, "GET", &path, &[(name, value)]);
        assert_eq!((res.status, res.body.len()), (412, 0), "{name}");
    }
    let res = request(port, "GET", &path, &[("If-Match", &etag)]);
    assert_eq!((res.status, res.text().as_str()), (200, DIGITS));
}

/// An edit changes the ETag, so the old one gets the new bytes.
#[test]
fn an_edit_changes_the_etag() {
    let server = PageServer::start();
    let port = server.port();
    let file = server.write("a.txt", "one");
    let path = server.publish(&file).path;
    let etag = get(port, &path).header("etag").unwrap().to_owned();
    std::fs::write(&file, "two").unwrap();
    let res = request(port, "GET", &path, &[("If-None-Match", &etag)]);
    assert_eq!((res.status, res.text().as_str()), (200, "two"));
    assert_ne!(res.header("etag"), Some(etag.as_str()));
}

/// `If-Modified-Since` at or after the file's date gets 304; an older date
/// gets the file.
#[test]
fn if_modified_since_gets_304_unless_the_file_is_newer() {
    let (server, path) = digits();
    let port = server.port();
    let modified = get(port, &path).header("last-modified").unwrap().to_owned();
    let res = request(port, "GET", &path, &[("If-Modified-Since", &modified)]);
    assert_eq!((res.status, res.body.len()), (304, 0));
    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    let res = request(port, "GET", &path, &[("If-Modified-Since", old)]);
    assert_eq!((res.status, res.text().as_str()), (200, DIGITS));
}

/// A date in the future is not a valid `If-Modified-Since`: it is ignored
/// and the file sent.
#[test]
fn a_future_if_modified_since_is_ignored() {
    let (server, path) = digits();
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let res = request(
        server.port(),
        "GET",
        &path,
        &[("If-Modified-Since", future)],
    );
    assert_eq!((res.status, res.text().as_str()), (200, DIGITS));
}

/// When both are sent, a non-matching `If-None-Match` wins over a matching
/// `If-Modified-Since` (RFC 9110 §13.2.2).
#[test]
fn if_none_match_wins_over_if_modified_since() {
    let (server, path) = digits();
    let port = server.port();
    let modified = get(port, &path).header("last-modified").unwrap().to_owned();
    let headers = [
        ("If-None-Match", "\"other\""),
        ("If-Modified-Since", modified.as_str()),
    ];
    let res = request(port, "GET", &path, &headers);
    assert_eq!((res.status, res.text().as_str()), (200, DIGITS));
}

/// Anything but GET and HEAD on a public page gets 405 with
/// `Allow: GET, HEAD`, and changes nothing.
#[test]
fn writing_methods_on_a_public_page_get_405() {
    let server = PageServer::start();
    let port = server.port();
    let file = server.write("a.txt", "original");
    let path = server.publish(&file).path;
    for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE", "OPTIONS"] {
        let res = request_from(LOCAL, port, method, &path, &[], b"overwritten");
        assert_eq!(
            (res.status, res.text().as_str()),
            (405, METHOD_NOT_ALLOWED),
            "{method}"
        );
        assert_eq!(res.header("allow"), Some("GET, HEAD"), "{method}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original");
    assert_eq!(get(port, &path).text(), "original");
}

/// A large file streams whole and in ranges.
#[test]
fn large_files_stream_completely() {
    let server = PageServer::start();
    let port = server.port();
    let content: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect::<String>()
        .repeat(5);
    let path = server.publish(&server.write("big.txt", &content)).path;
    let res = get(port, &path);
    assert_eq!(res.status, 200);
    assert_eq!(res.body.len(), content.len());
    assert!(res.body == content.as_bytes());
    let tail = request(port, "GET", &path, &[("Range", "bytes=-300000")]);
    assert_eq!(tail.status, 206);
    assert!(tail.body == content.as_bytes()[content.len() - 300_000..]);
    let middle = request(port, "GET", &path, &[("Range", "bytes=400000-699999")]);
    assert_eq!(middle.status, 206);
    assert!(middle.body == content.as_bytes()[400_000..700_000]);
}

/// 16 MiB whose every 4 KiB page differs from the next.
fn large_content() -> Vec<u8> {
    (0..16 * 1024 * 1024u32)
        .map(|i| (i / 4096 + i % 7) as u8)
        .collect()
}

/// A download of `path` begun on a slowly read connection: the response's
/// head, and the first 64 KiB of its body read.
fn begin_download(port: u16, path: &str) -> (TcpStream, String, Vec<u8>) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket
        .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the head");
        got.extend_from_slice(&chunk[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let mut body = got.split_off(head_end);
    while body.len() < 64 * 1024 {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early");
        body.extend_from_slice(&chunk[..n]);
    }
    (stream, head, body)
}

/// A large file cut short while it is being sent: the response ends with
/// fewer bytes than its Content-Length, and the connection closes. What it
/// sent is the file: before the cut as it was; past it, what the kernel
/// already held when the file was cut, where a page the cut went through
/// may read as zeros (as from any server that uses sendfile), never as
/// other bytes.
#[test]
fn a_file_cut_short_mid_download_ends_the_response_cleanly() {
    let server = PageServer::start();
    let content = large_content();
    let file = server.work.path().join("big.bin");
    std::fs::write(&file, &content).unwrap();
    let path = server.publish(&file).path;
    let (mut stream, head, mut body) = begin_download(server.port(), &path);
    assert!(head.contains("content-length: 16777216"), "{head}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(1024 * 1024)
        .unwrap();
    stream.read_to_end(&mut body).expect("the connection ends");
    assert!(body.len() < content.len(), "{} bytes", body.len());
    let cut = body.len().min(1024 * 1024);
    assert!(body[..cut] == content[..cut], "the file before the cut");
    let other = body[cut..]
        .iter()
        .zip(&content[cut..])
        .position(|(&sent, &was)| sent != was && sent != 0);
    assert_eq!(
        other, None,
        "bytes past the cut that are neither the file's nor zero"
    );
}

/// A large file replaced (another renamed over it) while it is being sent:
/// the download goes on with the file that was opened, to its last byte.
#[test]
fn a_file_replaced_mid_download_is_sent_whole_as_it_was() {
    let server = PageServer::start();
    let content = large_content();
    let file = server.work.path().join("big.bin");
    std::fs::write(&file, &content).unwrap();
    let path = server.publish(&file).path;
    let (mut stream, _, mut body) = begin_download(server.port(), &path);
    let other = server.work.path().join("other.bin");
    std::fs::write(&other, vec![b'R'; content.len()]).unwrap();
    std::fs::rename(&other, &file).unwrap();
    stream.read_to_end(&mut body).expect("the connection ends");
    assert_eq!(body.len(), content.len());
    assert!(body == content, "the bytes of the file that was opened");
    assert_eq!(get(server.port(), &path).body, vec![b'R'; content.len()]);
}

/// Large files asked for back to back on one connection (pipelined, one a
/// range) arrive whole, each in its own response, in order.
#[test]
fn pipelined_large_files_arrive_whole_and_in_order() {
    let server = PageServer::start();
    let first = large_content();
    let second: Vec<u8> = first.iter().map(|b| b.wrapping_add(100)).collect();
    let write = |name: &str, content: &[u8]| {
        let file = server.work.path().join(name);
        std::fs::write(&file, content).unwrap();
        server.publish(&file).path
    };
    let (a, b) = (write("a.bin", &first), write("b.bin", &second));
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {a} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET {b} HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-\r\n\r\n\
         GET {a} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let mut rest = all.as_slice();
    for want in [&first[..], &second[1000..], &first[..]] {
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        assert!(
            head.contains(&format!("content-length: {}\r\n", want.len())),
            "{head}"
        );
        assert!(&rest[end..end + want.len()] == want, "{head}");
        rest = &rest[end + want.len()..];
    }
    assert!(rest.is_empty());
}

/// A large file keeps its receipts and its one-time link on the way it is
/// sent: a first request with a range from its middle gets the whole file
/// (no byte goes out without the use) and uses the link up; the holder's
/// later ranges and revalidations are hers, and the next visitor gets the
/// 404.
#[test]
fn a_large_one_time_file_is_used_up_by_its_first_download() {
    let server = PageServer::start();
    let port = server.port();
    let content = large_content();
    let file = server.work.path().join("big.bin");
    std::fs::write(&file, &content).unwrap();
    let mut record = Record::static_page(std::fs::canonicalize(&file).unwrap(), false);
    record.once = true;
    let page = server.insert(record);
    let visitor = [127, 0, 0, 5];
    let range = [("Range", "bytes=100-199")];
    let whole = request_from(visitor, port, "GET", &page.path, &range, b"");
    assert_eq!(whole.status, 200);
    assert!(whole.body == content, "the whole file");
    let set = whole.header("set-cookie").expect("the holder's cookie");
    let cookie = set.split(';').next().unwrap().to_owned();
    let etag = whole.header("etag").unwrap().to_owned();
    let other = request_from([127, 0, 0, 6], port, "GET", &page.path, &[], b"");
    assert_eq!(other.status, 404, "the link was used up");
    let hers = [("Range", "bytes=100-199"), ("Cookie", cookie.as_str())];
    let part = request_from(visitor, port, "GET", &page.path, &hers, b"");
    assert_eq!(part.status, 206);
    assert!(part.body == content[100..200]);
    let again = [
        ("If-None-Match", etag.as_str()),
        ("Cookie", cookie.as_str()),
    ];
    let revalidated = request_from(visitor, port, "GET", &page.path, &again, b"");
    assert_eq!(revalidated.status, 304, "its holder revalidates");
    wait_for("the views written", Duration::from_secs(10), || {
        (server.record(&page.id).views == 2).then_some(())
    });
}

/// The slug URL and the bare id URL reach the page, and paths without
/// their slash are redirected with a relative `Location`.
#[test]
fn slugs_bare_ids_and_folders_redirect_relatively() {
    let server = PageServer::start();
    let port = server.port();
    server.write("docs/index.html", "docs home");
    server.write("docs/guide/index.html", "guide");
    server.write("docs/.drop-publish", "**/*.html\nindex.html\n");
    let page = server.publish_named(&server.work.path().join("docs"), "docs");
    let (id, path) = (page.id, page.path);
    assert_eq!(path, format!("/p/{id}/docs/"));
    assert_eq!(get(port, &path).text(), "docs home");
    assert_eq!(get(port, &format!("/p/{id}/")).text(), "docs home");
    assert_eq!(get(port, &format!("/p/{id}/docs/guide/")).text(), "guide");
    assert_eq!(get(port, &format!("/p/{id}/guide/")).text(), "guide");
    for (asked, location) in [
        (format!("/p/{id}"), format!("{id}/")),
        (format!("/p/{id}/docs"), "docs/".into()),
        (format!("{path}guide"), "guide/".into()),
    ] {
        let res = get(port, &asked);
        assert_eq!(res.status, 301, "{asked}");
        assert_eq!(res.header("location"), Some(location.as_str()), "{asked}");
        assert!(res.body.is_empty(), "{asked}");
    }
}

/// When `pages.json` stops parsing, the server keeps serving the pages it
/// loaded last, even after a request that makes it reload.
#[test]
fn the_server_keeps_the_last_good_registry() {
    let server = PageServer::start();
    let port = server.port();
    let path = server.publish(&server.write("a.txt", "still here")).path;
    assert_eq!(get(port, &path).status, 200);
    std::fs::write(server.home().registry().path(), "{broken").unwrap();
    // An unknown id makes the server read the registry again.
    assert_eq!(get(port, "/p/zzzzzzzzzzzzzzzzzzzz/").status, 404);
    let res = get(port, &path);
    assert_eq!((res.status, res.text().as_str()), (200, "still here"));
}

/// Clients that ask for a large file and never read it are cut off once
/// they stall, so they cannot hold every connection slot; meanwhile a
/// fresh client is served.
#[test]
fn clients_that_never_read_do_not_hold_the_server() {
    use socket2::{Domain, Socket, Type};
    let server = PageServer::with_config(ServerConfig {
        max_connections: 2,
        write_stall_timeout: Duration::from_millis(1000),
        ..ServerConfig::default()
    });
    let port = server.port();
    let path = server
        .publish(&server.write("big.bin", &"x".repeat(32 * 1024 * 1024)))
        .path;
    let stalled: Vec<Socket> = (0..2)
        .map(|_| {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket
                .connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
                .unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            socket.send(request.as_bytes()).unwrap();
            socket
        })
        .collect();
    for socket in &stalled {
        // The server answers it, so it holds a slot: the answer has begun.
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut first = [std::mem::MaybeUninit::uninit()];
        assert_eq!(socket.peek(&mut first).unwrap(), 1, "the answer begins");
    }
    let started = Instant::now();
    assert_eq!(get(port, "/robots.txt").status, 200);
    let waited = started.elapsed();
    println!("a fresh request beside two stalled readers took {waited:?}");
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    drop(stalled);
}

/// A slowloris client (one header byte every 300 ms) is cut off by the
/// header timeout while fresh clients are served.
#[test]
fn slowloris_is_cut_off_while_others_are_served() {
    let server = PageServer::with_config(ServerConfig {
        header_read_timeout: Duration::from_millis(2000),
        ..ServerConfig::default()
    });
    let port = server.port();
    let path = server.publish(&server.write("a.txt", "fresh")).path;
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_nonblocking(true).unwrap();
    let opened = Instant::now();
    let header = b"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let mut closed_after = None;
    for byte in header.iter().chain(std::iter::repeat(&b'a')).take(40) {
        if slow.write_all(&[*byte]).is_err() || server_hung_up(&mut slow) {
            closed_after = Some(opened.elapsed());
            break;
        }
        // A fresh client is answered while the slow one dawdles.
        assert_eq!(get(port, &path).text(), "fresh");
        // About time itself: a slowloris is its pace.
        std::thread::sleep(Duration::from_millis(300));
    }
    let closed_after = closed_after.expect("the slow connection was never closed");
    assert!(
        closed_after >= Duration::from_millis(1900),
        "closed too early: {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(6),
        "closed only after {closed_after:?}"
    );
}

/// Whether the server closed (or answered and closed) the connection.
fn server_hung_up(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        // 0: closed; more: an error answer (such as 408) before the close.
        Ok(0 | 1..) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Once its shutdown signal fires, the server stops accepting: the port
/// refuses connections.
#[test]
fn shutdown_stops_the_server_and_frees_its_port() {
    let server = PageServer::start();
    let port = server.port();
    assert_eq!(get(port, "/robots.txt").status, 200);
    drop(server);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts"
    );
}
