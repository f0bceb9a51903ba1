//! Publishing files and folders through the real binary and its server:
//! what `drop add`, `list`, `remove` and `cleanup` say and store, and that
//! the daemon serves what they change. How pages are served is tested
//! in-process (`page_server.rs`).

use drop_tests::DropEnv;
use drop_tests::http::get;

/// A page `drop add` registers while the daemon runs is served on the next
/// request.
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

/// A folder without a manifest is refused, and the error shows how to write one.
#[test]
fn folder_without_manifest_is_refused_with_a_hint() {
    let env = DropEnv::new();
    env.write("site/index.html", "x");
    let err = env.fails(&["add", "site"]);
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

/// What looks like a secret (a key in `.ssh`, a `.pem`, a credentials
/// file) is refused with the way to insist, nothing written; with
/// `--allow-secret` it is published.
#[test]
fn secrets_are_refused_unless_allowed() {
    let env = DropEnv::new();
    env.ok(&["add", env.write("first.txt", "x").to_str().unwrap()]);
    let before = std::fs::read(env.home.path().join("pages.json")).unwrap();
    for secret in [
        ".ssh/id_ed25519",
        "certs/site.pem",
        "deploy/.git-credentials",
    ] {
        let path = env.write(secret, "secret");
        let err = env.fails(&["add", path.to_str().unwrap()]);
        assert!(err.contains("looks like a secret"), "{secret}: {err}");
        assert!(err.contains("--allow-secret"), "{err}");
    }
    let after = std::fs::read(env.home.path().join("pages.json")).unwrap();
    assert_eq!(before, after, "the registry is untouched");
    let pem = env.work.path().join("certs/site.pem");
    let allowed = env.json(&["add", pem.to_str().unwrap(), "--allow-secret", "--json"]);
    assert_eq!(allowed["source"], pem.to_str().unwrap(), "{allowed}");
}

/// Inside a published folder, keys and credentials are never served, even
/// when the manifest lists everything (`**`), and are not counted as served.
#[test]
fn a_folder_never_serves_the_secrets_its_manifest_lists() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("site/index.html", "<p>hi</p>");
    env.write("site/.drop-publish", "**\n");
    for secret in [
        ".ssh/id_ed25519",
        "deploy/server.pem",
        "keys/id_rsa.bak",
        "credentials.json",
    ] {
        env.write(&format!("site/{secret}"), "secret");
    }
    let added = env.ok(&["add", env.work.path().join("site").to_str().unwrap()]);
    assert!(added.contains("serves 1 file"), "{added}");
    let url = added
        .lines()
        .find_map(|l| l.strip_prefix("Published: "))
        .unwrap();
    let path = url.split_once(&format!(":{port}")).unwrap().1;
    assert_eq!(get(port, path).status, 200);
    for secret in [
        ".ssh/id_ed25519",
        "deploy/server.pem",
        "keys/id_rsa.bak",
        "credentials.json",
    ] {
        assert_eq!(
            get(port, &format!("{path}{secret}")).status,
            404,
            "{secret}"
        );
    }
}

/// drop's own files (the session key that signs every login, the registry
/// with every secret id) are refused at `add` time, and nothing is written.
#[test]
fn drops_own_files_cannot_be_published() {
    let env = DropEnv::new();
    env.ok(&["add", env.write("first.txt", "x").to_str().unwrap()]);
    let before = std::fs::read(env.home.path().join("pages.json")).unwrap();
    std::fs::write(env.home.path().join("session.key"), [7u8; 32]).unwrap();
    for own in ["session.key", "pages.json", "logs"] {
        let path = env.home.path().join(own);
        let out = env.run(&["add", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{own}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("Error: `"), "{err}");
        assert!(err.contains("is inside drop's own folder"), "{err}");
    }
    let after = std::fs::read(env.home.path().join("pages.json")).unwrap();
    assert_eq!(before, after, "the registry is untouched");
}

/// `drop add --name` prints the slug URL, and the running server opens it.
#[test]
fn add_with_a_name_prints_the_slug_url_that_opens_the_page() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("docs/index.html", "docs home");
    env.write("docs/.drop-publish", "index.html\n");
    let (id, path) = env.add(&env.work.path().join("docs"), &["--name", "docs"]);
    assert_eq!(path, format!("/p/{id}/docs/"));
    let res = get(port, &path);
    assert_eq!((res.status, res.text().as_str()), (200, "docs home"));
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
    let err = env.fails(&["remove", "aa"]);
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
    assert!(out.starts_with("Removed 1 page:\n"), "{out}");
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
