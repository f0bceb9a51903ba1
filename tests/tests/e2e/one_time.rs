//! One-time links against the page server in-process: no byte of the
//! document goes out without the use, a preview bot gets a card and never
//! the document, the grace after the use belongs to the browser that got
//! the document, the use is on disk before the answer, and racers get one
//! winner.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use drop_registry::Record;
use drop_tests::engine::{Page, PageServer};
use drop_tests::http::{Response, request_from};
use drop_tests::wait_for;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
const SECRET: &str = "<p>the secret minutes of the meeting</p>";

/// A one-time page of `source`.
fn publish_once(server: &PageServer, source: &std::path::Path) -> Page {
    let mut record = Record::static_page(std::fs::canonicalize(source).unwrap(), source.is_dir());
    record.once = true;
    server.insert(record)
}

/// `GET path` from `127.0.0.<last>` as `agent`, with more `headers`.
fn get_from(
    server: &PageServer,
    last: u8,
    path: &str,
    agent: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut all = vec![("User-Agent", agent)];
    all.extend_from_slice(headers);
    request_from([127, 0, 0, last], server.port(), "GET", path, &all, b"")
}

/// The 404 of a page that never existed.
fn never(server: &PageServer) -> Response {
    get_from(server, 99, "/p/aaaaaaaaaaaaaaaaaaaa/", FIREFOX, &[])
}

/// The `name=value` of the one-time cookie a response sets, if any.
fn once_cookie(res: &Response) -> Option<String> {
    res.headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("drop_once_"))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// A `Range` that does not start at the first byte, or that cannot be
/// satisfied, gets an unused one-time page whole, and that uses it: no
/// byte of the document goes out without the use.
#[test]
fn a_range_on_an_unused_one_time_page_gets_it_whole_and_uses_it() {
    let server = PageServer::start();
    for (n, range) in ["bytes=5-", "bytes=3-9", "bytes=999999-", "bytes=-4"]
        .iter()
        .enumerate()
    {
        let page = publish_once(&server, &server.write(&format!("r{n}.html"), SECRET));
        let first = get_from(&server, 5, &page.path, FIREFOX, &[("Range", range)]);
        assert_eq!(first.status, 200, "{range}: the whole document");
        assert_eq!(first.text(), SECRET, "{range}");
        assert_eq!(first.header("content-range"), None, "{range}");
        let other = get_from(&server, 6, &page.path, FIREFOX, &[]);
        assert_eq!(other.status, 404, "{range} used the link up");
        // The holder's viewer may then ask for ranges.
        let cookie = once_cookie(&first).expect("the holder's cookie");
        let headers = [("Range", "bytes=5-"), ("Cookie", cookie.as_str())];
        let part = get_from(&server, 5, &page.path, FIREFOX, &headers);
        assert_eq!((part.status, part.text()), (206, SECRET[5..].to_owned()));
        wait_for("the view counted", Duration::from_secs(10), || {
            (server.record(&page.id).views == 1).then_some(())
        });
    }
}

/// A preview bot (anyone can send its `User-Agent`) gets a card with the
/// page's file name and nothing of its content, for every path, and does
/// not use the link; after the use it gets the 404 of a page that never
/// existed, as everyone does.
#[test]
fn a_preview_bot_gets_a_card_without_the_document() {
    let server = PageServer::start();
    server.write("site/index.html", SECRET);
    server.write("site/style.css", "body{color:secret}");
    server.write("site/.drop-publish", "index.html\nstyle.css\n");
    let file = publish_once(&server, &server.write("minutes.html", SECRET));
    let mut record = Record::static_page(
        std::fs::canonicalize(server.work.path().join("site")).unwrap(),
        true,
    );
    record.once = true;
    record.name = "board".into();
    let folder = server.insert(record);
    for (page, title, tails) in [
        (&file, "minutes.html", &[""][..]),
        (&folder, "board", &["", "index.html", "style.css"][..]),
    ] {
        for tail in tails {
            let card = get_from(&server, 7, &format!("{}{tail}", page.path), SLACK, &[]);
            assert_eq!(card.status, 200, "{tail}");
            let text = card.text();
            assert!(text.contains(title), "{tail}: {text}");
            assert!(!text.contains("secret"), "{tail}: {text}");
            assert_eq!(card.header("cache-control"), Some("no-store"));
            assert_eq!(once_cookie(&card), None);
        }
        let head = request_from(
            [127, 0, 0, 7],
            server.port(),
            "HEAD",
            &page.path,
            &[("User-Agent", SLACK)],
            b"",
        );
        assert_eq!((head.status, head.body.len()), (200, 0));
        assert_eq!(server.record(&page.id).used_at, None, "a bot uses nothing");
        let human = get_from(&server, 7, &page.path, FIREFOX, &[]);
        assert_eq!((human.status, human.text().as_str()), (200, SECRET));
        let cookie = once_cookie(&human).unwrap();
        let never = never(&server);
        for (last, headers) in [
            (7, vec![]),
            (8, vec![]),
            (7, vec![("Cookie", cookie.as_str())]),
        ] {
            let after = get_from(&server, last, &page.path, SLACK, &headers);
            assert_eq!(
                (after.status, after.body),
                (404, never.body.clone()),
                "a bot after the use, from 127.0.0.{last}"
            );
        }
    }
    wait_for("the bots counted apart", Duration::from_secs(10), || {
        let record = server.record(&file.id);
        (record.bot_views == 1 && record.views == 1).then_some(())
    });
}

/// The minute of grace after the use belongs to the browser that got the
/// document (its cookie), not to its address: another browser behind the
/// same address gets the 404, a forged or another page's cookie too, and
/// the holder's own cookie only for the minute.
#[test]
fn the_grace_after_a_use_is_the_first_browsers_alone() {
    let server = PageServer::start();
    let page = publish_once(&server, &server.write("g.html", SECRET));
    let other = publish_once(&server, &server.write("h.html", SECRET));
    let first = get_from(&server, 5, &page.path, FIREFOX, &[]);
    assert_eq!(first.status, 200);
    let set = first
        .headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("drop_once_"))
        .expect("the first delivery sets the holder's cookie")
        .to_owned();
    assert!(set.contains(&format!("Path=/p/{}/", page.id)), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("Max-Age=60"),
        "{set}"
    );
    let cookie = once_cookie(&first).unwrap();
    let never = never(&server);

    let same_address = get_from(&server, 5, &page.path, FIREFOX, &[]);
    assert_eq!(
        (same_address.status, same_address.body.clone()),
        (404, never.body.clone()),
        "another browser on the same address"
    );
    let (name, value) = cookie.split_once('=').unwrap();
    let (kept, last) = value.split_at(value.len() - 1);
    let forged = format!("{name}={kept}{}", if last == "0" { "1" } else { "0" });
    let other_cookie = {
        let res = get_from(&server, 6, &other.path, FIREFOX, &[]);
        let theirs = once_cookie(&res).unwrap();
        format!("{name}={}", theirs.split_once('=').unwrap().1)
    };
    for bad in [forged, other_cookie] {
        let res = get_from(&server, 5, &page.path, FIREFOX, &[("Cookie", &bad)]);
        assert_eq!(res.status, 404, "{bad}");
    }
    let held = get_from(&server, 5, &page.path, FIREFOX, &[("Cookie", &cookie)]);
    assert_eq!((held.status, held.text().as_str()), (200, SECRET));
    let moved = get_from(&server, 9, &page.path, FIREFOX, &[("Cookie", &cookie)]);
    assert_eq!(moved.status, 200, "the same browser on another address");
    server.clock().advance(Duration::from_secs(61));
    let late = get_from(&server, 5, &page.path, FIREFOX, &[("Cookie", &cookie)]);
    assert_eq!(late.status, 404, "the grace is a minute");
}

/// The use is in `pages.json` before the answer goes out: a server killed
/// the moment its visitor has the document still knows it.
#[test]
fn a_one_time_use_is_on_disk_before_the_answer() {
    let server = PageServer::start();
    for n in 0..10 {
        let page = publish_once(&server, &server.write(&format!("d{n}.html"), SECRET));
        let res = get_from(&server, 5, &page.path, FIREFOX, &[]);
        assert_eq!(res.status, 200);
        let record = server.record(&page.id);
        assert!(
            record.used_at.is_some(),
            "try {n}: the answer came before the use was written"
        );
    }
}

/// Fifty visitors at once on an unused one-time link: exactly one gets the
/// document, the others the 404 of a page that never existed, and one view
/// is counted.
#[test]
fn fifty_racers_get_one_winner() {
    let server = Arc::new(PageServer::start());
    let page = publish_once(&server, &server.write("race.html", SECRET));
    let start = Arc::new(Barrier::new(50));
    let racers: Vec<_> = (0..50u8)
        .map(|n| {
            let (server, start, path) = (server.clone(), start.clone(), page.path.clone());
            std::thread::spawn(move || {
                start.wait();
                get_from(&server, 10 + n, &path, FIREFOX, &[])
            })
        })
        .collect();
    let answers: Vec<Response> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let never = never(&server);
    let winners = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(winners, 1, "one winner");
    for loser in answers.iter().filter(|a| a.status != 200) {
        assert_eq!((loser.status, &loser.body), (404, &never.body));
    }
    assert!(server.record(&page.id).used_at.is_some());
    wait_for("one view", Duration::from_secs(10), || {
        (server.record(&page.id).views == 1).then_some(())
    });
}
