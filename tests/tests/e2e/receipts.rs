//! Did the human open it? Receipts, `drop wait`, link previews counted
//! apart, expiring and one-time links, and cleaning up pages nobody
//! opened, through the real binary and its page server.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use drop_tests::http::{Response, request, request_from};
use drop_tests::{DropEnv, wait_for, wait_until_polling};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

fn open(port: u16, path: &str, agent: &str) -> Response {
    request(port, "GET", path, &[("User-Agent", agent)])
}

/// The `name=value` of the cookie the first delivery of a one-time page
/// gives its browser.
fn once_cookie(res: &Response) -> String {
    let set = res
        .headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("drop_once_"))
        .expect("the holder's cookie");
    set.split(';').next().unwrap().to_owned()
}

/// A browser at `127.0.0.<last>`, another visitor than the others, opens
/// `path`.
fn open_from(last: u8, port: u16, path: &str) -> Response {
    request_from(
        [127, 0, 0, last],
        port,
        "GET",
        path,
        &[("User-Agent", FIREFOX)],
        b"",
    )
}

/// `drop wait` blocks until the human opens the page, then prints the
/// receipt; the listing says it too. A folder's assets are not views.
#[test]
fn a_human_opening_a_page_ends_the_wait_with_a_receipt() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("site/index.html", "<link href=style.css>");
    env.write("site/style.css", "body{}");
    env.write("site/.drop-publish", "index.html\nstyle.css\n");
    let (id, path) = env.add(&env.work.path().join("site"), &[]);
    assert_eq!(env.listed(&id).unwrap()["receipt"], "never opened");

    let waiter = env
        .command(&["wait", &id, "--timeout", "30s", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_polling("the wait begun", waiter.id());
    assert_eq!(open(port, &format!("{path}style.css"), FIREFOX).status, 200);
    let opened = Instant::now();
    assert_eq!(open(port, &path, FIREFOX).status, 200);
    let out = waiter.wait_with_output().unwrap();
    println!(
        "drop wait answered {:?} after the page was opened",
        opened.elapsed()
    );
    assert!(out.status.success());
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(receipt["views"], 1, "the stylesheet is not a view");
    assert_eq!(receipt["visitors"], 1);
    assert!(receipt["last_opened_at"].is_string());

    open(port, &path, FIREFOX);
    let listed = wait_for("two views listed", Duration::from_secs(10), || {
        let listed = env.ok(&["list", "--all"]);
        listed
            .contains("opened 2× by 1 visitor, last just now")
            .then_some(listed)
    });
    assert!(listed.contains(&id), "{listed}");
    let record = std::fs::read_to_string(env.home.path().join("pages.json")).unwrap();
    assert!(
        !record.contains("127.0.0.1\""),
        "no address is stored: {record}"
    );
}

/// A link preview (Slack's bot) is counted apart and does not end a wait;
/// a wait that times out says so with a non-zero exit.
#[test]
fn link_previews_are_not_the_human() {
    let env = DropEnv::new();
    let port = env.start();
    let (id, path) = env.add(&env.write("p.html", "p"), &[]);
    assert_eq!(open(port, &path, SLACK).status, 200);
    let out = env.run(&["wait", &id, "--timeout", "3s"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("Error: page {id} was not opened within 3 s")),
        "{stderr}"
    );
    let listed = env.listed(&id).unwrap();
    assert_eq!(listed["views"], 0);
    assert_eq!(listed["bot_views"], 1);
    assert_eq!(listed["receipt"], "never opened (and 1 link preview)");

    // Opened before the wait began: --since-publish answers at once.
    open(port, &path, FIREFOX);
    let started = Instant::now();
    env.ok(&["wait", &id, "--since-publish", "--timeout", "30s"]);
    assert!(started.elapsed() < Duration::from_secs(10));

    // An opening from before the wait began, not yet written when it
    // begins (the server writes a second later), does not end it.
    open(port, &path, FIREFOX);
    let out = env.run(&["wait", &id, "--timeout", "3s"]);
    assert!(
        !out.status.success(),
        "an earlier opening ended the wait: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `--expires`: the listing says when the page ends, and once its time is
/// up the daemon removes it; its link is then the 404 of a page that never
/// existed. (That the server answers that 404 from the very second a page
/// expires is tested in-process, on a clock moved on, in `page_server`.)
#[test]
fn an_expired_page_is_gone() {
    let env = DropEnv::new();
    let port = env.start();
    let (id, path) = env.add(&env.write("e.html", "e"), &["--expires", "2s"]);
    assert_eq!(open(port, &path, FIREFOX).status, 200);
    let listed = env.ok(&["list", "--all"]);
    assert!(
        listed.contains("expires in 1 s") || listed.contains("expires in 2 s"),
        "{listed}"
    );
    wait_for("the daemon removes it", Duration::from_secs(10), || {
        env.listed(&id).is_none().then_some(())
    });
    let gone = open(port, &path, FIREFOX);
    let never = open(port, "/p/aaaaaaaaaaaaaaaaaaaa/", FIREFOX);
    assert_eq!((gone.status, gone.text()), (never.status, never.text()));
    let bad = env.run(&[
        "add",
        env.write("f.html", "f").to_str().unwrap(),
        "--expires",
        "soon",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).starts_with("Error: --expires `soon` is not a span")
    );
}

/// `--once`: a link preview does not use it up; the first human opens it
/// (and her browser may reload it for a moment); anyone after gets the
/// 404.
#[test]
fn a_one_time_link_opens_for_one_human() {
    let env = DropEnv::new();
    let port = env.start();
    let (id, path) = env.add(&env.write("o.html", "once"), &["--once"]);
    assert_eq!(open(port, &path, SLACK).status, 200, "the preview card");
    let human = open(port, &path, FIREFOX);
    assert_eq!((human.status, human.text().as_str()), (200, "once"));
    let cookie = once_cookie(&human);
    let reload = request(
        port,
        "GET",
        &path,
        &[("User-Agent", FIREFOX), ("Cookie", &cookie)],
    );
    assert_eq!(reload.status, 200, "her own reload");
    let other = open_from(2, port, &path);
    let never = open(port, "/p/aaaaaaaaaaaaaaaaaaaa/", FIREFOX);
    assert_eq!((other.status, other.text()), (never.status, never.text()));
    let listed = wait_for("the use recorded", Duration::from_secs(10), || {
        let listed = env.listed(&id)?;
        listed["used_at"].is_string().then_some(listed)
    });
    assert!(
        listed["receipt"]
            .as_str()
            .unwrap()
            .contains("used (it opened once)")
    );
    // It stays used after a restart of the server.
    env.ok(&["stop"]);
    let port = env.start();
    let later = open_from(3, port, &path);
    assert_eq!(later.status, 404);
}

/// What does not use a one-time link up: a `HEAD` (link checkers), a
/// document that answers 404, an asset. What does: its document, however
/// its path is spelled (`%6c` is an `l`). Once used, every method gets the
/// 404 of a page that never existed; `drop add --once` again gives a fresh
/// link at once, without a restart.
#[test]
fn a_one_time_link_is_used_by_its_document_alone() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("site/index.html", "<p>home</p>");
    env.write("site/other.html", "<p>other</p>");
    env.write("site/style.css", "body{}");
    env.write("site/.drop-publish", "index.html\nother.html\nstyle.css\n");
    let (id, path) = env.add(&env.work.path().join("site"), &["--once", "--name", "s"]);
    let from = |last: u8, method: &str, tail: &str| {
        request_from(
            [127, 0, 0, last],
            port,
            method,
            &format!("{path}{tail}"),
            &[("User-Agent", FIREFOX)],
            b"",
        )
    };
    assert_eq!(from(2, "HEAD", "").status, 200, "a link checker's HEAD");
    assert_eq!(from(3, "GET", "typo.html").status, 404, "a 404 document");
    assert_eq!(from(4, "GET", "style.css").status, 200, "an asset");
    // The human, asking for the index by an encoded name.
    let human = from(5, "GET", "index.htm%6c");
    assert_eq!((human.status, human.text().as_str()), (200, "<p>home</p>"));
    let cookie = once_cookie(&human);
    let asset = request(
        port,
        "GET",
        &format!("{path}style.css"),
        &[("User-Agent", FIREFOX), ("Cookie", &cookie)],
    );
    assert_eq!(asset.status, 200, "her session's assets");
    let never = request(port, "GET", "/p/aaaaaaaaaaaaaaaaaaaa/", &[]);
    for method in ["GET", "HEAD", "POST", "OPTIONS"] {
        let other = from(6, method, "");
        assert_eq!(other.status, 404, "{method} after the use");
        if method == "GET" {
            assert_eq!(other.text(), never.text());
        }
    }
    wait_for("one view, by one visitor", Duration::from_secs(10), || {
        let listed = env.listed(&id)?;
        (listed["views"] == 1 && listed["used_at"].is_string()).then_some(())
    });

    let again = env.json(&["add", "site", "--once", "--json"]);
    assert_eq!(again["used_at"], serde_json::Value::Null);
    let fresh = from(7, "GET", "");
    assert_eq!(fresh.status, 200, "a fresh one-time link opens at once");
    let last_round = request(
        port,
        "GET",
        &path,
        &[("User-Agent", FIREFOX), ("Cookie", &cookie)],
    );
    assert_eq!(last_round.status, 404, "the last round's holder is out");
}

/// `drop cleanup --unopened SPAN` removes pages nobody opened in their
/// first SPAN, and keeps the ones a human opened.
#[test]
fn cleanup_removes_pages_nobody_opened() {
    let env = DropEnv::new();
    let port = env.start();
    let (unopened, _) = env.add(&env.write("u.html", "u"), &[]);
    let (opened, path) = env.add(&env.write("v.html", "v"), &[]);
    open(port, &path, FIREFOX);
    wait_for("the view written", Duration::from_secs(10), || {
        (env.listed(&opened)?["views"] == 1).then_some(())
    });
    // About time itself: the unopened page must be older than the span.
    std::thread::sleep(Duration::from_millis(1100));
    let out = env.ok(&["cleanup", "--unopened", "1s"]);
    assert!(
        out.contains(&format!("{unopened}  ")) && out.contains("(never opened)"),
        "{out}"
    );
    assert!(env.listed(&unopened).is_none());
    assert!(env.listed(&opened).is_some());
}

/// Under load the registry is written lazily: eight clients opening a page
/// as fast as they can for three seconds cause at most a write a second
/// (each write replaces `pages.json`, so a write is a new inode), and not
/// one view is lost.
#[test]
fn under_load_the_registry_is_written_at_most_once_a_second() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let env = DropEnv::new();
    let port = env.start();
    let (id, path) = env.add(&env.write("load.html", "load"), &[]);
    let registry = env.home.path().join("pages.json");
    let inode = || std::fs::metadata(&registry).map(|m| m.ino()).ok();

    let done = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (done, opened, path) = (done.clone(), opened.clone(), path.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    assert_eq!(open(port, &path, FIREFOX).status, 200);
                    opened.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let load = Duration::from_secs(3);
    let began = Instant::now();
    let mut writes = 0;
    let mut seen = inode();
    while began.elapsed() < load {
        // Samples the inode for the load's duration: writes per second.
        std::thread::sleep(Duration::from_millis(2));
        let now = inode();
        if now != seen {
            writes += 1;
            seen = now;
        }
    }
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let opened = opened.load(Ordering::Relaxed);
    println!("{opened} views in {load:?}: {writes} registry writes");
    assert!(opened > 100, "the load was real: {opened} views");
    assert!(
        (1..=4).contains(&writes),
        "{writes} writes of pages.json in {load:?} under load"
    );
    wait_for("every view counted", Duration::from_secs(10), || {
        (env.listed(&id).unwrap()["views"] == opened).then_some(())
    });
}

/// Adding an expired page again (before the server removed it) publishes
/// it again with no end; `--expires never` takes an end away; adding a
/// used one-time page without `--once` says its link stays used.
#[test]
fn an_ended_page_added_again_says_what_it_is() {
    let env = DropEnv::new();
    let file = env.write("r.html", "r");
    let file = file.to_str().unwrap();
    let (id, _) = env.add(std::path::Path::new(file), &["--expires", "1h"]);
    // Its hour is up, as the registry would hold it an hour later.
    drop_registry::Home::new(env.home.path())
        .registry()
        .update(|pages| {
            let record = pages.get_mut(&id).expect("the page is registered");
            record.expires_at = Some(drop_registry::rfc3339(SystemTime::now()));
            Ok::<_, drop_registry::RegistryError>(())
        })
        .unwrap();
    let again = env.ok(&["add", file]);
    assert!(
        again.contains("(it had expired: published again, with no end)"),
        "{again}"
    );
    let doc = env.json(&["add", file, "--expires", "2h", "--json"]);
    assert!(doc["expires_at"].is_string());
    let doc = env.json(&["add", file, "--expires", "never", "--json"]);
    assert_eq!(doc["expires_at"], serde_json::Value::Null);

    let port = env.start();
    let (_, path) = env.add(&env.write("o.html", "o"), &["--once"]);
    assert_eq!(open(port, &path, FIREFOX).status, 200);
    let once = env.work.path().join("o.html");
    let out = wait_for("the use written", Duration::from_secs(10), || {
        let out = env.run(&["add", once.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout
            .contains("its one-time link was used")
            .then_some(stdout)
    });
    assert!(out.contains("add it with --once for a fresh one"), "{out}");
    // --no-once: a lasting link again, for anyone.
    let lasting = env.json(&["add", once.to_str().unwrap(), "--no-once", "--json"]);
    assert_eq!(lasting["once"], false);
    let anyone = open_from(9, port, &path);
    assert_eq!(anyone.status, 200);
}

/// However a range is written, one that starts at the first byte delivers
/// the document and counts as a view; one from its middle does not (a
/// viewer's later ranges are the same view). A one-time page goes out
/// whole with its use whatever the range: see `one_time`.
#[test]
fn a_range_from_the_start_is_an_opening_however_it_is_written() {
    let env = DropEnv::new();
    let port = env.start();
    for (n, range) in ["bytes=00-", "bytes= 0-", "bytes=-99999"]
        .iter()
        .enumerate()
    {
        let (id, path) = env.add(&env.write(&format!("r{n}.html"), "<p>x</p>"), &[]);
        let ranged = |range: &str| {
            let headers = [("User-Agent", FIREFOX), ("Range", range)];
            request_from([127, 0, 0, 5], port, "GET", &path, &headers, b"").status
        };
        assert_eq!(ranged("bytes=3-"), 206, "from its middle");
        assert_eq!(ranged(range), 206, "{range}");
        let views = wait_for("the view counted", Duration::from_secs(10), || {
            let views = env.listed(&id)?["views"].as_u64()?;
            (views > 0).then_some(views)
        });
        assert_eq!(views, 1, "{range}");
    }
}

/// A one-time link's use is on disk before its document goes out: a
/// server killed (SIGKILL) the moment its visitor has the document still
/// knows the use after a restart, and the link stays used. Three tries:
/// a use written just after the answer survived about one in twelve.
#[test]
fn a_one_time_link_stays_used_when_the_server_is_killed_right_after() {
    let env = DropEnv::new();
    let mut port = env.start();
    for n in 0..3 {
        let (_, path) = env.add(&env.write(&format!("k{n}.html"), "k"), &["--once"]);
        assert_eq!(open(port, &path, FIREFOX).status, 200);
        let daemon = env.server_pid().unwrap();
        drop_tests::kill(daemon);
        wait_for("the server dead", Duration::from_secs(10), || {
            (!drop_tests::alive(daemon) && env.server_lock_free()).then_some(())
        });
        port = env.start();
        let later = open_from(3, port, &path);
        assert_eq!(later.status, 404, "try {n}: a second life after a crash");
    }
}

/// `drop wait` does not wait forever on a server that stopped: nobody can
/// open the page then. `drop qr` of a used one-time link refuses too.
#[test]
fn a_wait_ends_when_nobody_can_open_the_page() {
    let env = DropEnv::new();
    env.start();
    let (id, path) = env.add(&env.write("w.html", "w"), &["--once"]);
    let waiter = env
        .command(&["wait", &id, "--json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_polling("the wait begun", waiter.id());
    env.ok(&["stop"]);
    let out = waiter.wait_with_output().unwrap();
    assert!(!out.status.success());
    let error: serde_json::Value = serde_json::from_slice(out.stderr.trim_ascii_end()).unwrap();
    assert_eq!(error["error"]["code"], "nobody_can_open", "{error}");

    let port = env.start();
    assert_eq!(open(port, &path, FIREFOX).status, 200);
    let qr = wait_for("the use written", Duration::from_secs(10), || {
        let qr = env.run(&["qr", &id]);
        (!qr.status.success()).then_some(qr)
    });
    assert!(String::from_utf8_lossy(&qr.stderr).contains("one-time link was used"));
}
