//! Publishing files and folders through the real binary and server.

use std::process::Command;

use drop_tests::DropEnv;
use drop_tests::http::{get, request};

const NOT_FOUND: &str = "<!doctype html>\n<title>Not found</title>\n<h1>Not found</h1>\n";

fn curl(port: u16, path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{content_type}",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, ctype) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), ctype.to_owned())
}

/// A published file reaches curl with its content type, and an edit shows
/// on the very next request.
#[test]
fn added_file_is_served_with_its_type_and_edits_show_at_once() {
    let env = DropEnv::new();
    let port = env.start();
    let file = env.write("report.html", "<h1>v1</h1>");
    let (_, path) = env.add(&file, &[]);
    assert_eq!(
        curl(port, &path),
        ("<h1>v1</h1>".into(), "text/html; charset=utf-8".into())
    );
    std::fs::write(&file, "<h1>v2, longer</h1>").unwrap();
    assert_eq!(curl(port, &path).0, "<h1>v2, longer</h1>");
    // Same length, same second: still the new bytes.
    std::fs::write(&file, "<h1>v3, longer</h1>").unwrap();
    assert_eq!(curl(port, &path).0, "<h1>v3, longer</h1>");

    let data = env.write("data.json", "{\"a\":1}");
    let (_, path) = env.add(&data, &[]);
    assert_eq!(curl(port, &path).1, "application/json; charset=utf-8");
}

/// A page added while the server runs is served on the next request.
#[test]
fn page_added_after_start_is_served_immediately() {
    let env = DropEnv::new();
    let port = env.start();
    for i in 0..5 {
        let file = env.write(&format!("f{i}.txt"), &format!("file {i}"));
        let (_, path) = env.add(&file, &[]);
        let res = get(port, &path);
        assert_eq!((res.status, res.text()), (200, format!("file {i}")));
    }
}

/// Only what `.drop-publish` lists is served; the rest is the one 404.
#[test]
fn folder_serves_only_what_its_manifest_lists() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("site/index.html", "<p>home</p>");
    env.write("site/style.css", "p{}");
    env.write("site/assets/logo.svg", "<svg/>");
    env.write("site/notes.md", "private notes");
    env.write("site/drafts/x.html", "draft");
    env.write(
        "site/.drop-publish",
        "# public part\nindex.html\n*.css\nassets/**\n",
    );
    let (_, root) = env.add(&env.work.path().join("site"), &[]);

    let home = get(port, &root);
    assert_eq!((home.status, home.text().as_str()), (200, "<p>home</p>"));
    assert_eq!(
        get(port, &format!("{root}style.css")).header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(get(port, &format!("{root}assets/logo.svg")).status, 200);
    for hidden in ["notes.md", "drafts/x.html", ".drop-publish", "missing.css"] {
        let res = get(port, &format!("{root}{hidden}"));
        assert_eq!(
            (res.status, res.text().as_str()),
            (404, NOT_FOUND),
            "{hidden}"
        );
    }
}

/// A folder without a manifest is refused, and the error shows how to write one.
#[test]
fn folder_without_manifest_is_refused_with_a_hint() {
    let env = DropEnv::new();
    env.write("site/index.html", "x");
    let out = env.run(&["add", "site"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("Error: folder `"), "{err}");
    assert!(err.contains("has no .drop-publish manifest"), "{err}");
    assert!(err.contains("printf 'index.html"), "{err}");
    assert!(
        !env.home.path().join("pages.json").exists(),
        "nothing was registered"
    );

    env.write("site/.drop-publish", "# nothing yet\n");
    let err = String::from_utf8(env.run(&["add", "site"]).stderr).unwrap();
    assert!(err.contains("lists no pattern"), "{err}");
}

/// `.env` files are refused at `add` time too.
#[test]
fn env_files_cannot_be_published() {
    let env = DropEnv::new();
    let secret = env.write(".env", "TOKEN=1");
    let out = env.run(&["add", secret.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("is never published")
    );
}

/// `/`, `/p/` and unknown paths say nothing about which pages exist.
#[test]
fn root_reveals_no_page_id() {
    let env = DropEnv::new();
    let port = env.start();
    let (id, _) = env.add(&env.write("a.txt", "a"), &[]);
    for path in ["/", "/p/", "/p", "/index.html", "/favicon.ico"] {
        let res = get(port, path);
        assert_eq!(res.status, 404, "{path}");
        assert!(!res.text().contains(&id), "{path} leaks the id");
        assert_eq!(res.text(), NOT_FOUND);
    }
    let robots = get(port, "/robots.txt");
    assert_eq!(
        (robots.status, robots.text().as_str()),
        (200, "User-agent: *\nDisallow: /\n")
    );
}

/// Every answer carries the security headers, and caching is private.
#[test]
fn every_response_carries_the_security_headers() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, path) = env.add(&env.write("a.txt", "a"), &[]);
    let cases = [
        (path.as_str(), "private, no-cache"),
        ("/p/nope/x", "no-store"),
        ("/", "no-store"),
        ("/robots.txt", "no-store"),
    ];
    for (path, cache) in cases {
        let res = get(port, path);
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            res.header("x-robots-tag"),
            Some("noindex, nofollow"),
            "{path}"
        );
        assert_eq!(res.header("cache-control"), Some(cache), "{path}");
        assert_eq!(res.header("server"), None, "{path}");
    }
}

/// HEAD, ranges and conditional requests behave as a good static server's.
#[test]
fn head_ranges_and_conditional_requests() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, path) = env.add(&env.write("digits.txt", "0123456789"), &[]);

    let full = get(port, &path);
    let head = request(port, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("10"));
    assert_eq!(head.header("etag"), full.header("etag"));

    let part = request(port, "GET", &path, &[("Range", "bytes=2-4")]);
    assert_eq!((part.status, part.text().as_str()), (206, "234"));
    assert_eq!(part.header("content-range"), Some("bytes 2-4/10"));
    let first = request(port, "GET", &path, &[("Range", "bytes=0-0")]);
    assert_eq!((first.status, first.text().as_str()), (206, "0"));
    let past = request(port, "GET", &path, &[("Range", "bytes=999999-")]);
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */10"));

    let etag = full.header("etag").unwrap();
    let cached = request(port, "GET", &path, &[("If-None-Match", etag)]);
    assert_eq!((cached.status, cached.body.len()), (304, 0));
    let modified = full.header("last-modified").unwrap();
    assert_eq!(
        request(port, "GET", &path, &[("If-Modified-Since", modified)]).status,
        304
    );
    let stale = request(
        port,
        "GET",
        &path,
        &[("Range", "bytes=0-1"), ("If-Range", "\"old\"")],
    );
    assert_eq!((stale.status, stale.text().as_str()), (200, "0123456789"));

    for method in ["POST", "PUT", "DELETE", "TRACE"] {
        let res = request(port, method, &path, &[("Content-Length", "0")]);
        assert_eq!(res.status, 405, "{method}");
        assert_eq!(res.header("allow"), Some("GET, HEAD"));
    }
}

/// A large file streams whole and in ranges.
#[test]
fn large_files_stream_completely() {
    let env = DropEnv::new();
    let port = env.start();
    let content: String = (0..200_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect::<String>()
        .repeat(5);
    let (_, path) = env.add(&env.write("big.txt", &content), &[]);
    let res = get(port, &path);
    assert_eq!(res.status, 200);
    assert_eq!(res.body.len(), content.len());
    assert!(res.body == content.as_bytes());
    let tail = request(port, "GET", &path, &[("Range", "bytes=-300000")]);
    assert_eq!(tail.body, content.as_bytes()[content.len() - 300_000..]);
}

/// The slug URL, the bare id URL and folder redirects all reach the page.
#[test]
fn slug_and_folder_redirects() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("docs/index.html", "docs home");
    env.write("docs/guide/index.html", "guide");
    env.write("docs/.drop-publish", "**/*.html\nindex.html\n");
    let (id, path) = env.add(&env.work.path().join("docs"), &["--name", "docs"]);
    assert_eq!(path, format!("/p/{id}/docs/"));
    assert_eq!(get(port, &path).text(), "docs home");
    assert_eq!(get(port, &format!("/p/{id}/")).text(), "docs home");
    assert_eq!(get(port, &format!("/p/{id}/docs/guide/")).text(), "guide");
    for (asked, location) in [
        (format!("/p/{id}"), format!("{id}/")),
        (format!("/p/{id}/docs"), "docs/".into()),
        (format!("{path}guide"), "guide/".into()),
    ] {
        let res = get(port, &asked);
        assert_eq!(res.status, 301, "{asked}");
        assert_eq!(res.header("location"), Some(location.as_str()), "{asked}");
    }
}

/// Removing a page takes it off the server at once; ids, prefixes and names all work.
#[test]
fn remove_by_id_prefix_or_name() {
    let env = DropEnv::new();
    let port = env.start();
    let (a, path_a) = env.add(&env.write("a.txt", "a"), &["--name", "alpha"]);
    let (b, path_b) = env.add(&env.write("b.txt", "b"), &[]);
    assert!(
        env.ok(&["remove", "alpha"])
            .starts_with(&format!("Removed: {a}"))
    );
    assert_eq!(get(port, &path_a).status, 404);
    assert!(
        env.ok(&["remove", &b[..8]])
            .starts_with(&format!("Removed: {b}"))
    );
    assert_eq!(get(port, &path_b).status, 404);
    let out = env.run(&["remove", "alpha"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("Error: no page matches `alpha`")
    );
}

/// An ambiguous prefix is an error that lists the candidates.
#[test]
fn ambiguous_prefix_lists_candidates() {
    let env = DropEnv::new();
    let pages = r#"{"aa1111": {"type": "static", "source": "/x", "is_dir": false},
                    "aa2222": {"type": "static", "source": "/y", "is_dir": false}}"#;
    std::fs::write(env.home.path().join("pages.json"), pages).unwrap();
    let out = env.run(&["remove", "aa"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("aa1111") && err.contains("aa2222"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.home.path().join("pages.json")).unwrap(),
        pages
    );
}

/// Adding the same source twice gives the same page; `--name` and `--desc` update it.
#[test]
fn adding_a_source_again_returns_the_same_page() {
    let env = DropEnv::new();
    let file = env.write("a.txt", "a");
    let (first, _) = env.add(&file, &[]);
    let again = env.json(&[
        "add",
        file.to_str().unwrap(),
        "--json",
        "--name",
        "a",
        "--desc",
        "notes",
    ]);
    assert_eq!(again["id"], first.as_str());
    assert_eq!(again["already_published"], true);
    assert_eq!(again["name"], "a");
    assert_eq!(again["description"], "notes");
    env.write("site/docs/x.html", "x");
    env.write("site/.drop-publish", "docs/**\n");
    let site = env.work.path().join("site");
    let out = env.run(&["add", site.to_str().unwrap(), "--name", "docs"]);
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("which its URL would hide")
    );
    let other = env.write("b.txt", "b");
    let out = env.run(&["add", other.to_str().unwrap(), "--name", "a"]);
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("already used by page")
    );
}

/// `list` shows this folder's pages, `--all` every page, and flags deleted sources;
/// `cleanup` then removes those.
#[test]
fn list_filters_by_folder_flags_deleted_sources_and_cleanup_removes_them() {
    let env = DropEnv::new();
    let here = env.write("here.txt", "h");
    let elsewhere_dir = tempfile::tempdir().unwrap();
    let elsewhere = elsewhere_dir.path().join("there.txt");
    std::fs::write(&elsewhere, "t").unwrap();
    let (here_id, _) = env.add(&here, &[]);
    let (there_id, _) = env.add(&elsewhere, &[]);

    let local = env.ok(&["list"]);
    assert!(
        local.contains(&here_id) && !local.contains(&there_id),
        "{local}"
    );
    let all = env.ok(&["list", "--all"]);
    assert!(all.contains(&here_id) && all.contains(&there_id), "{all}");

    std::fs::remove_file(&elsewhere).unwrap();
    let all = env.ok(&["list", "--all"]);
    let flagged = all.lines().find(|l| l.contains(&there_id)).unwrap();
    assert!(flagged.contains("[source missing]"), "{all}");
    let doc = env.json(&["list", "--all", "--json"]);
    let missing: Vec<_> = doc["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source_exists"] == false)
        .collect();
    assert_eq!(missing.len(), 1);

    let out = env.ok(&["cleanup"]);
    assert!(out.contains(&there_id), "{out}");
    let all = env.ok(&["list", "--all"]);
    assert!(all.contains(&here_id) && !all.contains(&there_id));
}

/// A `pages.json` written by the Python drop 0.2 loads, lists and serves;
/// its password-protected page asks for the password.
#[test]
fn registry_of_the_python_drop_is_served() {
    let env = DropEnv::new();
    let file = env.write("old.html", "from python");
    let secret = env.write("secret.html", "SECRET-CONTENT");
    let pages = serde_json::json!({
        "abc123": {"type": "file", "source": file, "is_dir": false, "name": null,
                   "description": "old page", "password_hash": "", "created_at": "2025-06-01T10:00:00",
                   "views": 3},
        "def456": {"type": "file", "source": secret, "is_dir": false, "name": "sec",
                   "description": "", "password_hash": "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
                   "created_at": "2025-06-01T10:00:00"}
    });
    std::fs::write(
        env.home.path().join("pages.json"),
        serde_json::to_string_pretty(&pages).unwrap(),
    )
    .unwrap();
    let port = env.start();
    let res = get(port, "/p/abc123/");
    assert_eq!((res.status, res.text().as_str()), (200, "from python"));
    let guarded = get(port, "/p/def456/sec/");
    assert!(
        guarded.text().contains("Password required"),
        "the protected page asks for its password"
    );
    assert!(!guarded.text().contains("SECRET-CONTENT"));

    let all = env.ok(&["list", "--all"]);
    assert!(
        all.contains("abc123") && all.contains("(password)") && all.contains("old page"),
        "{all}"
    );
    // A write keeps the fields this version does not know.
    env.add(&env.write("new.txt", "n"), &[]);
    let text = std::fs::read_to_string(env.home.path().join("pages.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["abc123"]["views"], 3);
    assert_eq!(doc["abc123"]["type"], "file");
}
