//! SECURITY.md §1: hostile paths against a published folder, sent raw to
//! the page server run in-process.

use std::os::unix::fs::symlink;
use std::process::Command;

use drop_tests::engine::PageServer;
use drop_tests::http::{Response, request, send_raw};

use drop_core::http::NOT_FOUND_PAGE as NOT_FOUND;
const FORBIDDEN: &str = "<!doctype html>\n<title>Forbidden</title>\n<h1>Forbidden</h1>\n";
/// Bytes that exist only in files that must never be served.
const SECRETS: [&str; 7] = [
    "OUTSIDE-SECRET",
    "SIBLING-SECRET",
    "ENV-SECRET",
    "SUBENV-SECRET",
    "GIT-SECRET",
    "KEY-SECRET",
    "root:x:0:0",
];

/// The fixture of SECURITY.md §1, returning the folder to publish.
fn fixture(server: &PageServer) -> std::path::PathBuf {
    let base = server.work.path();
    let write = |rel: &str, text: &str| {
        let p = base.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("site/index.html", "<h1>index</h1>");
    write("site/a.txt", "A-PUBLIC");
    write("site/sub/b.txt", "B-PUBLIC");
    write("site/private.key", "KEY-SECRET");
    write("site/.env", "ENV-SECRET");
    write("site/sub/.env", "SUBENV-SECRET");
    write("site/.git/config", "GIT-SECRET");
    write("site/.drop-publish", "*.html\n*.txt\nsub/**\n");
    write("outside.txt", "OUTSIDE-SECRET");
    write("site-secret/x.txt", "SIBLING-SECRET");
    let site = base.join("site");
    symlink("../outside.txt", site.join("out.txt")).unwrap();
    symlink("..", site.join("outdir")).unwrap();
    symlink(".env", site.join("sneaky.txt")).unwrap();
    std::fs::create_dir(site.join("idx")).unwrap();
    symlink("../../outside.txt", site.join("idx/index.html")).unwrap();
    std::fs::hard_link(base.join("outside.txt"), site.join("hard-outside")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(site.join("fifo.txt"))
        .status()
        .unwrap();
    assert!(fifo.success());
    site
}

/// Paths after `/p/<id>/` that must get the generic 404.
const REFUSED: &[&str] = &[
    "../../../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    ".%2e/.%2e/etc/passwd",
    ".%%32%65/etc/passwd",
    "..%5c..%5cetc%5cpasswd",
    "..\\..\\etc\\passwd",
    "%255c..%255c..%255cetc/passwd",
    "%uff0e%uff0e%u2215etc%u2215passwd",
    "....//....//etc/passwd",
    "..././..././etc/passwd",
    "..;/..;/etc/passwd",
    "%00",
    "a.txt%00",
    "a.txt%00.png",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "../site-secret/x.txt",
    "../outside.txt",
    "out.txt",
    "outdir/outside.txt",
    "outdir/site-secret/x.txt",
    "idx/",
    "sneaky.txt",
    ".env",
    "sub/.env",
    "%2eenv",
    ".ENV",
    ".Env",
    ".env.local",
    ".env.",
    ".drop-publish",
    ".git/config",
    "private.key",
    "sub/../private.key",
    "sub/%2e%2e/private.key",
    "a.txt/",
    "fifo.txt",
    "nope.txt",
    "sub/nope.txt",
    "a.txt%2f",
    "%c0%ae%c0%ae/etc/passwd",
    "%e0%80%ae%e0%80%ae/etc/passwd",
    "a.txt%0d%0aSet-Cookie:%20x=1",
];

fn assert_refused(path: &str, res: &Response) {
    assert_eq!(res.status, 404, "{path}: status {}", res.status);
    assert_eq!(res.text(), NOT_FOUND, "{path}");
    assert_no_secret(path, res);
}

fn assert_no_secret(path: &str, res: &Response) {
    let text = res.text();
    for secret in SECRETS {
        assert!(!text.contains(secret), "{path} leaked {secret}");
    }
}

/// Every hostile path of the table gets the one 404 body, no 500, no secret
/// byte, and the server keeps answering.
#[test]
fn hostile_paths_get_the_one_404_and_never_leak() {
    let server = PageServer::start();
    let port = server.port();
    let id = server.publish(&fixture(&server)).id;
    assert!(REFUSED.len() >= 30);
    for path in REFUSED {
        let res = request(port, "GET", &format!("/p/{id}/{path}"), &[]);
        assert_refused(path, &res);
    }
    // `/p/<id>//etc/passwd`: an empty segment.
    assert_refused(
        "//etc/passwd",
        &request(port, "GET", &format!("/p/{id}//etc/passwd"), &[]),
    );
    // A folder without index.html: 403 and no listing; without its slash, a relative 301.
    let folder = request(port, "GET", &format!("/p/{id}/sub/"), &[]);
    assert_eq!((folder.status, folder.text().as_str()), (403, FORBIDDEN));
    let bare = request(port, "GET", &format!("/p/{id}/sub"), &[]);
    assert_eq!((bare.status, bare.header("location")), (301, Some("sub/")));
    // Still serving, and the allowed files are there.
    assert_eq!(
        request(port, "GET", &format!("/p/{id}/a.txt"), &[]).text(),
        "A-PUBLIC"
    );
    assert_eq!(
        request(port, "GET", &format!("/p/{id}/sub/b.txt"), &[]).text(),
        "B-PUBLIC"
    );
}

/// A missing page and a missing file of an existing page answer byte for byte the same.
#[test]
fn missing_page_and_missing_file_are_indistinguishable() {
    let server = PageServer::start();
    let port = server.port();
    let id = server.publish(&fixture(&server)).id;
    let strip_date = |res: Response| {
        let headers: Vec<_> = res
            .headers
            .into_iter()
            .filter(|(k, _)| k != "date")
            .collect();
        (res.status, headers, res.body)
    };
    let bad_id = strip_date(request(port, "GET", "/p/zzzzzzzzzzzzzzzzzzzz/a.txt", &[]));
    let bad_file = strip_date(request(port, "GET", &format!("/p/{id}/nope.txt"), &[]));
    let refused = strip_date(request(port, "GET", &format!("/p/{id}/.env"), &[]));
    assert_eq!(bad_id, bad_file);
    assert_eq!(bad_file, refused);
}

/// Requests that are not valid HTTP targets are refused without a 500.
#[test]
fn malformed_request_lines_never_get_a_500() {
    let server = PageServer::start();
    let port = server.port();
    let id = server.publish(&fixture(&server)).id;
    let raws = [
        format!("GET /p/{id}/a.txt\0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        format!("GET /p/{id}/a b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        "GET http://evil.example/p/x/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
        "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
        "GET //evil.example HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
    ];
    for raw in &raws {
        let res = send_raw(port, raw.as_bytes());
        assert!(
            res.status == 400 || res.status == 404,
            "{raw:?}: {}",
            res.status
        );
        assert_no_secret(raw, &res);
        assert!(res.header("location").is_none(), "{raw:?} redirects");
    }
    assert_eq!(
        request(port, "GET", &format!("/p/{id}/a.txt"), &[]).status,
        200
    );
}

/// Folder symlinks that stay inside the folder keep working.
#[test]
fn symlinks_inside_the_folder_are_served() {
    let server = PageServer::start();
    let port = server.port();
    let site = fixture(&server);
    symlink("a.txt", site.join("alias.txt")).unwrap();
    let id = server.publish(&site).id;
    assert_eq!(
        request(port, "GET", &format!("/p/{id}/alias.txt"), &[]).text(),
        "A-PUBLIC"
    );
}

/// A published file replaced by a symlink (to a secret elsewhere) is not
/// followed, also after the server reloads its pages.
#[test]
fn a_published_file_swapped_for_a_symlink_stays_unserved_after_a_reload() {
    let server = PageServer::start();
    let report = server.write("site/report.html", "REPORT");
    let secret = server.write("elsewhere/secret.txt", "OUTSIDE-SECRET");
    let page = server.publish(&report);
    assert_eq!(
        request(server.port(), "GET", &page.path, &[]).text(),
        "REPORT"
    );
    std::fs::remove_file(&report).unwrap();
    symlink(&secret, &report).unwrap();
    // Any change to the registry makes the server reload every page.
    server.publish(&server.write("other.txt", "other"));
    let answer = request(server.port(), "GET", &page.path, &[]);
    assert_eq!(answer.status, 404);
    assert!(!answer.text().contains("OUTSIDE-SECRET"));
}

/// drop's own files (the registry with every page id and password hash,
/// the key that signs sessions) are never served, even from a folder
/// whose manifest lists everything.
#[test]
fn the_drop_home_is_never_served_from_a_folder_above_it() {
    let server = PageServer::start();
    let home = server.home().root().to_owned();
    let above = home.parent().unwrap().to_owned();
    std::fs::write(above.join(".drop-publish"), "**\n").unwrap();
    std::fs::write(above.join("fine.txt"), "FINE").unwrap();
    let page = server.publish(&above);
    let name = home.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        request(server.port(), "GET", &format!("{}fine.txt", page.path), &[]).text(),
        "FINE"
    );
    for own in ["pages.json", "session.key"] {
        let answer = request(
            server.port(),
            "GET",
            &format!("{}{name}/{own}", page.path),
            &[],
        );
        assert_eq!(answer.status, 404, "{own}");
        assert_eq!(answer.text(), NOT_FOUND);
    }
}
