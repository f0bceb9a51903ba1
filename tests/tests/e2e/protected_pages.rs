//! The page server in-process, over password-protected pages: the login
//! form, sessions, login CSRF, body limits, rate limits and the Python
//! drop's hashes (SECURITY.md §2–3).

use std::time::{Duration, Instant, SystemTime};

use drop_tests::engine::{Page, PageServer};
use drop_tests::http::{Response, get, request, request_from, send_raw_from};
use drop_tests::login::{
    FORM, LOCAL, NOT_TUNNEL, form_token, is_form, login, login_from, session_cookie,
};

const LOGIN_CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CROSS_SITE: &str = "Cross-site login refused.\n";
const STALE_FORM: &str = "Login form expired or not ours: reload the page.\n";
const TOO_LARGE: &str = "Login form too large.\n";
/// `sha256:` of "secret", as the Python drop stored it.
const PYTHON_HASH: &str = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

/// A server with one protected file, `inside` behind `password`.
fn protected(password: &str) -> (PageServer, Page) {
    let server = PageServer::start();
    let page = server.publish_protected(&server.write("s.html", "inside"), password);
    (server, page)
}

/// A response without its `Date` header and with its form token blanked,
/// the two parts that change with the clock.
fn timeless(res: &Response) -> (u16, Vec<(String, String)>, String) {
    let headers = res
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("date"))
        .cloned()
        .collect();
    let text = res.text();
    let body = match text.find("name=\"token\" value=\"") {
        Some(_) => text.replace(&form_token(res), "TOKEN"),
        None => text,
    };
    (res.status, headers, body)
}

/// A protected page answers its login form, never its content, under the
/// login page's own CSP and never cached.
#[test]
fn a_protected_page_answers_its_login_form() {
    let (server, page) = protected("correct horse");
    let form = get(server.port(), &page.path);
    assert_eq!(form.status, 200);
    assert!(is_form(&form));
    assert!(!form.text().contains("inside"));
    assert_eq!(
        form.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(form.header("cache-control"), Some("no-store"));
    assert_eq!(form.header("content-security-policy"), Some(LOGIN_CSP));
    assert_eq!(form.header("referrer-policy"), Some("no-referrer"));
    assert!(form.header("set-cookie").is_none());
}

/// Without a session, every path of a protected folder (a file, a missing
/// file, a refused one, a range, a HEAD) gets the same login answer, so
/// nothing tells which files exist.
#[test]
fn every_path_of_a_protected_folder_gets_the_same_login_form() {
    let server = PageServer::start();
    let port = server.port();
    server.write("site/index.html", "home");
    server.write("site/docs/a.txt", "sub file");
    server.write("site/.env", "ENV-SECRET");
    server.write("site/.drop-publish", "index.html\ndocs/**\n");
    let root = server
        .publish_protected(&server.work.path().join("site"), "pw-123")
        .path;
    let exists = get(port, &format!("{root}docs/a.txt"));
    assert!(is_form(&exists));
    let expected = timeless(&exists);
    for tail in [
        "",
        "docs/nope.txt",
        "docs/",
        "docs",
        ".env",
        "../../etc/passwd",
        "%2e%2e/%2e%2e/etc/passwd",
        "%00",
    ] {
        let res = get(port, &format!("{root}{tail}"));
        assert_eq!(timeless(&res), expected, "{tail:?}");
    }
    let ranged = request(
        port,
        "GET",
        &format!("{root}docs/a.txt"),
        &[("Range", "bytes=0-1")],
    );
    assert_eq!(timeless(&ranged), expected, "a range");
    let head = request(port, "HEAD", &format!("{root}docs/nope.txt"), &[]);
    let (status, headers, body) = timeless(&head);
    assert_eq!((status, headers), (expected.0, expected.1), "HEAD");
    assert!(body.is_empty(), "HEAD sent a body");
}

/// A wrong password gets 401 and the form again with a message, and no
/// cookie.
#[test]
fn a_wrong_password_gets_401_and_the_form_again() {
    let (server, page) = protected("correct horse");
    let wrong = login(server.port(), &page.path, "wrong horse");
    assert_eq!(wrong.status, 401);
    assert!(is_form(&wrong) && wrong.text().contains("Wrong password. Try again."));
    assert!(!wrong.text().contains("inside"));
    assert_eq!(wrong.header("cache-control"), Some("no-store"));
    assert!(wrong.header("set-cookie").is_none());
}

/// The right password gets 303 back to the page asked for, with an
/// HttpOnly, SameSite=Lax session cookie scoped to `/p/<id>/` that holds no
/// hash and has no Domain or Secure.
#[test]
fn the_right_password_gets_303_and_a_page_scoped_session_cookie() {
    let (server, page) = protected("correct horse");
    let right = login(server.port(), &page.path, "correct horse");
    assert_eq!(right.status, 303);
    assert_eq!(right.header("location"), Some(page.path.as_str()));
    assert!(right.body.is_empty());
    assert_eq!(right.header("cache-control"), Some("no-store"));
    let set = right.header("set-cookie").unwrap();
    let (value, attributes) = set
        .strip_prefix(&format!("drop_{}=", page.id))
        .and_then(|rest| rest.split_once(';'))
        .unwrap_or_else(|| panic!("{set}"));
    assert_eq!(
        attributes,
        format!(" Path=/p/{}/; Max-Age=900; HttpOnly; SameSite=Lax", page.id)
    );
    let (expires, mac) = value.split_once('.').unwrap();
    assert!(expires.bytes().all(|b| b.is_ascii_digit()), "{value}");
    assert_eq!(mac.len(), 64, "an HMAC-SHA256 in hex: {value}");
    assert!(!set.contains("argon2"), "the cookie holds no hash");
}

/// The session cookie opens every path of its page, never cached; a file
/// the folder lacks is then the plain 404.
#[test]
fn the_session_cookie_opens_every_path_of_its_page() {
    let server = PageServer::start();
    let port = server.port();
    server.write("site/index.html", "home");
    server.write("site/docs/a.txt", "sub file");
    server.write("site/.drop-publish", "index.html\ndocs/**\n");
    let root = server
        .publish_protected(&server.work.path().join("site"), "pw-123")
        .path;
    let cookie = session_cookie(&login(port, &format!("{root}docs/a.txt"), "pw-123"));
    let with = [("Cookie", cookie.as_str())];
    for (tail, body) in [("", "home"), ("docs/a.txt", "sub file")] {
        let res = request(port, "GET", &format!("{root}{tail}"), &with);
        assert_eq!((res.status, res.text().as_str()), (200, body), "{tail}");
        assert_eq!(res.header("cache-control"), Some("no-store"), "{tail}");
    }
    let missing = request(port, "GET", &format!("{root}docs/nope.txt"), &with);
    assert_eq!(missing.status, 404);
    assert!(!is_form(&missing));
}

/// Page A's session opens A and nothing of page B, whether sent under A's
/// cookie name or renamed to B's.
#[test]
fn a_session_of_page_a_does_not_open_page_b() {
    let server = PageServer::start();
    let port = server.port();
    let a = server.publish_protected(&server.write("a.html", "page a"), "same");
    let b = server.publish_protected(&server.write("b.html", "page b"), "same");
    let cookie = session_cookie(&login(port, &a.path, "same"));
    assert_eq!(
        request(port, "GET", &a.path, &[("Cookie", &cookie)]).text(),
        "page a"
    );
    let renamed = cookie.replace(&a.id, &b.id);
    for sent in [&cookie, &renamed] {
        let res = request(port, "GET", &b.path, &[("Cookie", sent)]);
        assert!(is_form(&res), "{sent}");
        assert!(!res.text().contains("page b"), "{sent}");
    }
}

/// A tampered cookie and an expired one open nothing; a live one signed
/// with the server's key does.
#[test]
fn tampered_and_expired_cookies_open_nothing() {
    let (server, page) = protected("pa");
    let port = server.port();
    let cookie = session_cookie(&login(port, &page.path, "pa"));
    let (name, value) = cookie.split_once('=').unwrap();
    let mut flipped = value.as_bytes().to_vec();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
    let tampered = format!("{name}={}", String::from_utf8(flipped).unwrap());
    assert!(is_form(&request(
        port,
        "GET",
        &page.path,
        &[("Cookie", &tampered)]
    )));

    let key = server.session_key();
    let hash = server.record(&page.id).password_hash;
    let long_ago = SystemTime::now() - Duration::from_secs(16 * 60);
    let expired = format!("{name}={}", key.issue(&page.id, &hash, long_ago));
    assert!(is_form(&request(
        port,
        "GET",
        &page.path,
        &[("Cookie", &expired)]
    )));
    let fresh = format!("{name}={}", key.issue(&page.id, &hash, SystemTime::now()));
    assert_eq!(
        request(port, "GET", &page.path, &[("Cookie", &fresh)]).text(),
        "inside",
        "control: a live one opens"
    );
}

/// A new password ends the sessions opened with the old one.
#[test]
fn a_password_change_ends_the_old_sessions() {
    let (server, page) = protected("old");
    let port = server.port();
    let cookie = session_cookie(&login(port, &page.path, "old"));
    let with = [("Cookie", cookie.as_str())];
    assert_eq!(request(port, "GET", &page.path, &with).text(), "inside");
    let new_hash = drop_core::auth::hash_password("new");
    server
        .home()
        .registry()
        .update(|pages| {
            pages.get_mut(&page.id).unwrap().password_hash = new_hash;
            Ok::<_, drop_registry::RegistryError>(())
        })
        .unwrap();
    // The server notices a registry it was not told about within a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_form(&request(port, "GET", &page.path, &with)) {
        assert!(Instant::now() < deadline, "the old session still opens");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(login(port, &page.path, "new").status, 303);
}

/// Login CSRF: a foreign `Origin` or `Sec-Fetch-Site: cross-site` gets 403
/// even with the right password; the page's own origin and `Origin: null`
/// log in.
#[test]
fn cross_site_logins_get_403() {
    let (server, page) = protected("right");
    let port = server.port();
    for header in [
        ("Origin", "https://evil.example"),
        ("Origin", "http://127.0.0.1:1"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let res = login_from(LOCAL, port, &page.path, "right", &[header]);
        assert_eq!(
            (res.status, res.text().as_str()),
            (403, CROSS_SITE),
            "{header:?}"
        );
        assert!(res.header("set-cookie").is_none(), "{header:?}");
    }
    let own = format!("http://127.0.0.1:{port}");
    for origin in [own.as_str(), "null"] {
        let res = login_from(LOCAL, port, &page.path, "right", &[("Origin", origin)]);
        assert_eq!(res.status, 303, "{origin}");
    }
}

/// A login POST without the form's token, with a forged one, or with
/// another page's gets 403 even with the right password.
#[test]
fn a_login_without_a_valid_form_token_gets_403() {
    let server = PageServer::start();
    let port = server.port();
    let page = server.publish_protected(&server.write("a.html", "a"), "right");
    let other = server.publish_protected(&server.write("b.html", "b"), "right");
    let others_token = form_token(&get(port, &other.path));
    let outsiders_token =
        drop_core::auth::SessionKey::from_bytes([7; 32]).form_token(&page.id, SystemTime::now());
    let bodies = [
        "password=right".to_owned(),
        "token=&password=right".to_owned(),
        "token=1.ab&password=right".to_owned(),
        format!("token={others_token}&password=right"),
        format!("token={outsiders_token}&password=right"),
    ];
    for body in &bodies {
        let res = request_from(LOCAL, port, "POST", &page.path, &[FORM], body.as_bytes());
        assert_eq!(
            (res.status, res.text().as_str()),
            (403, STALE_FORM),
            "{body}"
        );
        assert!(res.header("set-cookie").is_none(), "{body}");
    }
}

/// Login bodies over 4 KiB get 413, whether their length is declared or
/// they arrive chunked; one of exactly 4 KiB is read and checked.
#[test]
fn login_bodies_over_4_kib_get_413() {
    let (server, page) = protected("right");
    let port = server.port();
    let token = form_token(&get(port, &page.path));
    let declared = vec![b'a'; 4097];
    let res = request_from(LOCAL, port, "POST", &page.path, &[FORM], &declared);
    assert_eq!((res.status, res.text().as_str()), (413, TOO_LARGE));
    let huge = format!("token={token}&password={}", "x".repeat(1 << 20));
    let res = request_from(LOCAL, port, "POST", &page.path, &[FORM], huge.as_bytes());
    assert_eq!((res.status, res.text().as_str()), (413, TOO_LARGE));

    let chunk = "a".repeat(2500);
    let chunked = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
         9c4\r\n{chunk}\r\n9c4\r\n{chunk}\r\n0\r\n\r\n",
        page.path
    );
    let res = send_raw_from(LOCAL, port, chunked.as_bytes());
    assert_eq!(res.status, 413, "{}", res.text());

    let mut exact = format!("token={token}&password=wrong&pad=");
    exact.push_str(&"p".repeat(4096 - exact.len()));
    assert_eq!(exact.len(), 4096);
    let res = request_from(LOCAL, port, "POST", &page.path, &[FORM], exact.as_bytes());
    assert_eq!(res.status, 401, "a 4 KiB body is checked");
}

/// A login form without a password field gets 400.
#[test]
fn a_login_without_a_password_field_gets_400() {
    let (server, page) = protected("right");
    let port = server.port();
    let body = format!("token={}", form_token(&get(port, &page.path)));
    let res = request_from(LOCAL, port, "POST", &page.path, &[FORM], body.as_bytes());
    assert_eq!(
        (res.status, res.text().as_str()),
        (400, "The form has no password field.\n")
    );
}

/// Methods other than GET, HEAD and POST on a protected page get 405.
#[test]
fn other_methods_on_a_protected_page_get_405() {
    let (server, page) = protected("right");
    for method in ["PUT", "DELETE", "PATCH"] {
        let res = request_from(LOCAL, server.port(), method, &page.path, &[FORM], b"");
        assert_eq!(res.status, 405, "{method}");
        assert_eq!(res.header("allow"), Some("GET, HEAD"), "{method}");
    }
}

/// From a peer that is not the tunnel, the 4th attempt in a minute gets 429
/// with Retry-After, even with the right password and forged
/// `X-Forwarded-For` and `CF-Connecting-IP`; another client is unaffected.
#[test]
fn the_fourth_attempt_in_a_minute_gets_429_with_retry_after() {
    let (server, page) = protected("right");
    let port = server.port();
    for i in 0..3 {
        let forged = format!("198.51.100.{i}");
        let headers = [
            ("X-Forwarded-For", &*forged),
            ("CF-Connecting-IP", &*forged),
        ];
        let res = login_from(NOT_TUNNEL, port, &page.path, "wrong", &headers);
        assert_eq!(res.status, 401, "attempt {i}");
    }
    let headers = [("CF-Connecting-IP", "198.51.100.99")];
    let fourth = login_from(NOT_TUNNEL, port, &page.path, "right", &headers);
    assert_eq!(fourth.status, 429);
    assert!(is_form(&fourth) && fourth.text().contains("Too many attempts"));
    assert!(fourth.header("set-cookie").is_none());
    let retry: u64 = fourth.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(fourth.header("cache-control"), Some("no-store"));
    assert_eq!(
        login_from(LOCAL, port, &page.path, "wrong", &[]).status,
        401
    );
}

/// Through the tunnel's address every `CF-Connecting-IP` is its own client
/// with its own three attempts.
#[test]
fn tunnel_clients_each_get_their_own_budget() {
    let (server, page) = protected("right");
    let port = server.port();
    let from = |client: &str, password: &str| {
        login_from(
            LOCAL,
            port,
            &page.path,
            password,
            &[("CF-Connecting-IP", client)],
        )
        .status
    };
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..3 {
            assert_eq!(from(client, "wrong"), 401, "{client}");
        }
    }
    assert_eq!(from("203.0.113.1", "wrong"), 429);
    assert_eq!(from("203.0.113.3", "right"), 303);
}

/// Clients that rotate their `CF-Connecting-IP` through the tunnel share
/// the page's budget: after 100 wrong attempts even a new client gets 429.
#[test]
fn rotating_clients_run_out_of_the_page_budget_after_100_wrong_attempts() {
    let (server, page) = protected("right");
    let port = server.port();
    let token = form_token(&get(port, &page.path));
    let body = format!("token={token}&password=wrong");
    let post = |client: &str| {
        let headers = [FORM, ("CF-Connecting-IP", client)];
        request_from(LOCAL, port, "POST", &page.path, &headers, body.as_bytes()).status
    };
    for i in 0..100 {
        assert_eq!(post(&format!("198.51.100.{i}")), 401, "attempt {i}");
    }
    assert_eq!(post("203.0.113.200"), 429);
}

/// A login POST to an id that is no page gets the one 404, like a GET.
#[test]
fn a_login_to_an_unknown_page_gets_the_one_404() {
    let (server, _) = protected("right");
    let port = server.port();
    let path = "/p/zzzzzzzzzzzzzzzzzzzz/";
    let res = request_from(
        LOCAL,
        port,
        "POST",
        path,
        &[FORM],
        b"token=1.ab&password=right",
    );
    assert_eq!((res.status, res.body), (404, get(port, path).body));
}

/// The cookie is `Secure` only when the login came through the tunnel
/// (loopback peer) over HTTPS.
#[test]
fn the_cookie_is_secure_only_behind_the_tunnel_over_https() {
    let (server, page) = protected("right");
    let port = server.port();
    let https = [("X-Forwarded-Proto", "https")];
    let tunneled = login_from(LOCAL, port, &page.path, "right", &https);
    assert!(
        tunneled
            .header("set-cookie")
            .unwrap()
            .ends_with("; SameSite=Lax; Secure")
    );
    let plain = login_from(LOCAL, port, &page.path, "right", &[]);
    assert!(
        plain
            .header("set-cookie")
            .unwrap()
            .ends_with("; SameSite=Lax")
    );
}

/// A Python drop's `sha256:` hash opens its page with the right password
/// only, and is rewritten to argon2id in the registry at that first login,
/// keeping the rest of the record.
#[test]
fn a_python_sha256_password_opens_the_page_and_is_rewritten_to_argon2id() {
    let server = PageServer::start();
    let port = server.port();
    let mut record = drop_registry::Record::static_page(
        std::fs::canonicalize(server.write("old.html", "legacy secret page")).unwrap(),
        false,
    );
    record.password_hash = PYTHON_HASH.to_owned();
    record.name = "sec".to_owned();
    record.created_at = "2025-06-01T10:00:00".to_owned();
    let page = server.insert(record);

    assert_eq!(login(port, &page.path, "Secret").status, 401);
    assert_eq!(server.record(&page.id).password_hash, PYTHON_HASH);
    let right = login(port, &page.path, "secret");
    assert_eq!(right.status, 303);
    let cookie = session_cookie(&right);
    assert_eq!(
        request(port, "GET", &page.path, &[("Cookie", &cookie)]).text(),
        "legacy secret page"
    );
    let stored = server.record(&page.id);
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        stored.password_hash
    );
    assert_eq!(stored.created_at, "2025-06-01T10:00:00");
    assert_eq!(stored.name, "sec");
    assert_eq!(
        login(port, &page.path, "secret").status,
        303,
        "the new hash verifies"
    );
}

/// Every answer about a protected page, from the form to the page itself,
/// carries the security headers and `Cache-Control: no-store`.
#[test]
fn every_login_answer_carries_the_security_headers_and_no_store() {
    let (server, page) = protected("right");
    let port = server.port();
    let path = page.path.as_str();
    let token = form_token(&get(port, path));
    let post = |body: &str| request_from(LOCAL, port, "POST", path, &[FORM], body.as_bytes());
    let right = login(port, path, "right");
    let cookie = session_cookie(&right);
    let mut cases = vec![
        ("form", get(port, path), 200),
        ("wrong", post(&format!("token={token}&password=no")), 401),
        ("right", right, 303),
        (
            "page",
            request(port, "GET", path, &[("Cookie", &cookie)]),
            200,
        ),
        ("no password", post(&format!("token={token}")), 400),
        ("stale form", post("token=1.ab&password=x"), 403),
        ("too large", post(&"a".repeat(5000)), 413),
        (
            "cross-site",
            login_from(LOCAL, port, path, "x", &[("Sec-Fetch-Site", "cross-site")]),
            403,
        ),
        (
            "method",
            request_from(LOCAL, port, "PUT", path, &[], b""),
            405,
        ),
    ];
    for _ in 0..3 {
        login_from(NOT_TUNNEL, port, path, "no", &[]);
    }
    cases.push((
        "limited",
        login_from(NOT_TUNNEL, port, path, "no", &[]),
        429,
    ));
    for (what, res, status) in &cases {
        assert_eq!(res.status, *status, "{what}");
        res.assert_security_headers(what, "no-store");
    }
}
