//! Password-protected pages through a real HTTP client (SPEC "Passwords",
//! SECURITY.md §2–3).

use std::thread;
use std::time::{Duration, Instant, SystemTime};

use drop_tests::DropEnv;
use drop_tests::http::{Response, get, request, request_from};

const LOCAL: [u8; 4] = [127, 0, 0, 1];
const NOT_TUNNEL: [u8; 4] = [127, 0, 0, 2];

/// The token of a served login form.
fn form_token(form: &Response) -> String {
    let text = form.text();
    let start = text
        .find("name=\"token\" value=\"")
        .expect("form has a token")
        + 20;
    text[start..].split('"').next().unwrap().to_owned()
}

/// GETs the form at `path`, then POSTs `password` with its token.
fn login_from(
    from: [u8; 4],
    port: u16,
    path: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Response {
    let token = form_token(&get(port, path));
    let body = format!("token={token}&password={}", encode(password));
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    request_from(from, port, "POST", path, &all, body.as_bytes())
}

fn login(port: u16, path: &str, password: &str) -> Response {
    login_from(LOCAL, port, path, password, &[])
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `name=value` of the session cookie a login set.
fn session_cookie(res: &Response) -> String {
    let set = res.header("set-cookie").expect("a cookie is set");
    set.split(';').next().unwrap().to_owned()
}

fn is_form(res: &Response) -> bool {
    res.text().contains("name=\"password\"") && res.text().contains("Password required")
}

/// No cookie → form; wrong → 401 and the form; right → 303 and a cookie
/// that opens the page, never cached.
#[test]
fn protected_page_asks_for_its_password_and_opens_with_a_session() {
    let env = DropEnv::new();
    let port = env.start();
    let (id, path) = env.add(
        &env.write("secret.html", "<h1>inside</h1>"),
        &["--password", "correct horse"],
    );

    let form = get(port, &path);
    assert_eq!(form.status, 200);
    assert!(is_form(&form));
    assert_eq!(form.header("cache-control"), Some("no-store"));
    assert_eq!(
        form.header("content-security-policy"),
        Some(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    );
    assert_eq!(form.header("referrer-policy"), Some("no-referrer"));
    assert!(!form.text().contains("inside"));

    let wrong = login(port, &path, "wrong horse");
    assert_eq!(wrong.status, 401);
    assert!(is_form(&wrong) && wrong.text().contains("Wrong password"));
    assert_eq!(wrong.header("cache-control"), Some("no-store"));
    assert!(wrong.header("set-cookie").is_none());

    let right = login(port, &path, "correct horse");
    assert_eq!(right.status, 303);
    assert_eq!(right.header("location"), Some(path.as_str()));
    let set = right.header("set-cookie").unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        &format!("Path=/p/{id}/"),
        "Max-Age=900",
    ] {
        assert!(set.contains(part), "{set} lacks {part}");
    }
    assert!(!set.contains("Domain") && !set.contains("Secure"), "{set}");
    assert!(!set.contains("argon2"), "the cookie holds no hash");

    let cookie = session_cookie(&right);
    let page = request(port, "GET", &path, &[("Cookie", &cookie)]);
    assert_eq!(
        (page.status, page.text().as_str()),
        (200, "<h1>inside</h1>")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
}

/// Every path of a protected folder needs the session, and without one a
/// file that exists and one that does not get the same answer.
#[test]
fn every_sub_path_of_a_protected_folder_is_guarded() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("site/index.html", "home");
    env.write("site/docs/a.txt", "sub file");
    env.write("site/.drop-publish", "index.html\ndocs/**\n");
    let (_, root) = env.add(&env.work.path().join("site"), &["--password", "pw-123"]);

    let exists = request(port, "GET", &format!("{root}docs/a.txt"), &[]);
    let missing = request(port, "GET", &format!("{root}docs/nope.txt"), &[]);
    let ranged = request(
        port,
        "GET",
        &format!("{root}docs/a.txt"),
        &[("Range", "bytes=0-1")],
    );
    let head = request(port, "HEAD", &format!("{root}docs/a.txt"), &[]);
    for res in [&exists, &missing, &ranged] {
        assert_eq!(res.status, 200);
        assert!(is_form(res));
        assert!(!res.text().contains("sub file"));
    }
    assert_eq!(
        exists.text().len(),
        missing.text().len(),
        "no existence oracle"
    );
    assert!(head.body.is_empty() && head.status == 200);

    let cookie = session_cookie(&login(port, &format!("{root}docs/a.txt"), "pw-123"));
    let file = request(
        port,
        "GET",
        &format!("{root}docs/a.txt"),
        &[("Cookie", &cookie)],
    );
    assert_eq!(file.text(), "sub file");
    assert_eq!(
        request(
            port,
            "GET",
            &format!("{root}docs/nope.txt"),
            &[("Cookie", &cookie)]
        )
        .status,
        404
    );
}

/// A tampered cookie, another page's cookie and an expired one open nothing.
#[test]
fn tampered_foreign_and_expired_cookies_open_nothing() {
    let env = DropEnv::new();
    let port = env.start();
    let (a_id, a) = env.add(&env.write("a.html", "page a"), &["--password", "pa"]);
    let (_, b) = env.add(&env.write("b.html", "page b"), &["--password", "pb"]);
    let cookie = session_cookie(&login(port, &a, "pa"));
    assert_eq!(
        request(port, "GET", &a, &[("Cookie", &cookie)]).text(),
        "page a"
    );

    let (name, value) = cookie.split_once('=').unwrap();
    let mut flipped = value.as_bytes().to_vec();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
    let tampered = format!("{name}={}", String::from_utf8(flipped).unwrap());
    assert!(is_form(&request(port, "GET", &a, &[("Cookie", &tampered)])));

    let b_name = name.replace(&a_id, b.split('/').nth(2).unwrap());
    let foreign = format!("{b_name}={value}");
    assert!(is_form(&request(port, "GET", &b, &[("Cookie", &foreign)])));

    // An expired session signed with the server's own key.
    let key =
        drop_core::auth::SessionKey::load_or_create(&env.home.path().join("session.key")).unwrap();
    let pages: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.home.path().join("pages.json")).unwrap())
            .unwrap();
    let hash = pages[&a_id]["password_hash"].as_str().unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(16 * 60);
    let expired = format!("{name}={}", key.issue(&a_id, hash, long_ago));
    assert!(is_form(&request(port, "GET", &a, &[("Cookie", &expired)])));
    let fresh = format!("{name}={}", key.issue(&a_id, hash, SystemTime::now()));
    assert_eq!(
        request(port, "GET", &a, &[("Cookie", &fresh)]).text(),
        "page a",
        "control: a live one opens"
    );
}

/// From a peer that is not the tunnel, forged `X-Forwarded-For` and
/// `CF-Connecting-IP` do not buy more attempts: the 4th gets 429.
#[test]
fn fourth_wrong_attempt_is_refused_whatever_the_forged_headers() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, path) = env.add(&env.write("s.html", "s"), &["--password", "right"]);
    for i in 0..3 {
        let forged = format!("198.51.100.{i}");
        let res = login_from(
            NOT_TUNNEL,
            port,
            &path,
            "wrong",
            &[("X-Forwarded-For", &forged), ("CF-Connecting-IP", &forged)],
        );
        assert_eq!(res.status, 401, "attempt {i}");
    }
    let fourth = login_from(
        NOT_TUNNEL,
        port,
        &path,
        "right",
        &[("CF-Connecting-IP", "198.51.100.99")],
    );
    assert_eq!(fourth.status, 429);
    assert!(is_form(&fourth) && fourth.text().contains("Too many attempts"));
    let retry: u64 = fourth.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(fourth.header("cache-control"), Some("no-store"));
    // The tunnel's clients are someone else.
    assert_eq!(login_from(LOCAL, port, &path, "wrong", &[]).status, 401);
}

/// Through the tunnel's address every `CF-Connecting-IP` is its own client.
#[test]
fn tunnel_clients_each_get_their_own_budget() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, path) = env.add(&env.write("s.html", "s"), &["--password", "right"]);
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..3 {
            assert_eq!(
                login_from(LOCAL, port, &path, "wrong", &[("CF-Connecting-IP", client)]).status,
                401
            );
        }
    }
    assert_eq!(
        login_from(
            LOCAL,
            port,
            &path,
            "wrong",
            &[("CF-Connecting-IP", "203.0.113.1")]
        )
        .status,
        429
    );
    let third = login_from(
        LOCAL,
        port,
        &path,
        "right",
        &[("CF-Connecting-IP", "203.0.113.3")],
    );
    assert_eq!(third.status, 303);
}

/// 200 parallel wrong-password POSTs: the server's memory stays bounded and
/// a public page on it keeps answering.
#[test]
fn a_storm_of_wrong_passwords_stays_bounded() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, secret) = env.add(&env.write("s.html", "s"), &["--password", "right"]);
    let (_, public) = env.add(&env.write("p.txt", "public"), &[]);
    let pid = env.server_pid().unwrap();
    let token = form_token(&get(port, &secret));
    let rss_before = rss_kib(pid);

    let storm: Vec<_> = (0..200)
        .map(|i| {
            let (secret, token) = (secret.clone(), token.clone());
            thread::spawn(move || {
                let client = format!("198.51.{}.{}", i / 256, i % 256);
                let body = format!("token={token}&password=wrong{i}");
                let headers = [
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("CF-Connecting-IP", client.as_str()),
                ];
                request_from(LOCAL, port, "POST", &secret, &headers, body.as_bytes()).status
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(get(port, &public).text(), "public");
        slowest = slowest.max(started.elapsed());
    }
    let statuses: Vec<u16> = storm.into_iter().map(|t| t.join().unwrap()).collect();
    let rss_after = rss_kib(pid);
    println!(
        "public page during the storm: slowest of 20 GETs {slowest:?}; RSS {rss_before} → {rss_after} KiB"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        100,
        "the page budget stops the rest"
    );
    assert!(
        rss_after < rss_before + 100 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "public page took {slowest:?}"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A Python drop registry's `sha256:` password opens its page, and is
/// replaced by an argon2id hash at that first login.
#[test]
fn python_sha256_password_opens_the_page_and_is_upgraded() {
    let env = DropEnv::new();
    let file = env.write("old.html", "legacy secret page");
    let pages = serde_json::json!({
        "def456": {"type": "file", "source": file, "is_dir": false, "name": "sec", "description": "",
                   "password_hash": "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
                   "created_at": "2025-06-01T10:00:00"}
    });
    let registry = env.home.path().join("pages.json");
    std::fs::write(&registry, serde_json::to_string_pretty(&pages).unwrap()).unwrap();
    let port = env.start();
    assert_eq!(login(port, "/p/def456/sec/", "Secret").status, 401);
    let right = login(port, "/p/def456/sec/", "secret");
    assert_eq!(right.status, 303);
    let page = request(
        port,
        "GET",
        "/p/def456/sec/",
        &[("Cookie", &session_cookie(&right))],
    );
    assert_eq!(page.text(), "legacy secret page");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&registry).unwrap()).unwrap();
    let hash = stored["def456"]["password_hash"].as_str().unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(stored["def456"]["created_at"], "2025-06-01T10:00:00");
    assert_eq!(
        login(port, "/p/def456/sec/", "secret").status,
        303,
        "the new hash verifies"
    );
}

/// Login CSRF: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or a POST
/// without the form's token is refused.
#[test]
fn cross_site_logins_are_refused() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, path) = env.add(&env.write("s.html", "s"), &["--password", "right"]);
    let foreign = login_from(
        LOCAL,
        port,
        &path,
        "right",
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(foreign.status, 403);
    let cross = login_from(
        LOCAL,
        port,
        &path,
        "right",
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(cross.status, 403);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let no_token = request_from(LOCAL, port, "POST", &path, &form, b"password=right");
    assert_eq!(no_token.status, 403);
    let same = login_from(
        LOCAL,
        port,
        &path,
        "right",
        &[("Origin", &format!("http://127.0.0.1:{port}"))],
    );
    assert_eq!(same.status, 303);
}

/// Oversized or malformed login bodies are refused before any hashing.
#[test]
fn oversized_and_malformed_logins_are_refused() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, path) = env.add(&env.write("s.html", "s"), &["--password", "right"]);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let big = vec![b'a'; 5000];
    assert_eq!(
        request_from(LOCAL, port, "POST", &path, &form, &big).status,
        413
    );
    let token = form_token(&get(port, &path));
    let huge = format!("token={token}&password={}", "x".repeat(1 << 20));
    assert_eq!(
        request_from(LOCAL, port, "POST", &path, &form, huge.as_bytes()).status,
        413
    );
    let missing = format!("token={token}");
    assert_eq!(
        request_from(LOCAL, port, "POST", &path, &form, missing.as_bytes()).status,
        400
    );
    assert_eq!(
        request_from(LOCAL, port, "PUT", &path, &form, b"").status,
        405
    );
}

/// `--password` alone generates a readable password, printed once; listings
/// show the page as protected and never show a password or hash.
#[test]
fn generated_password_is_printed_once_and_never_listed() {
    let env = DropEnv::new();
    let port = env.start();
    let file = env.write("g.html", "generated");
    let out = env.ok(&["add", file.to_str().unwrap(), "--password"]);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .expect("password printed")
        .to_owned();
    assert_eq!(password.len(), 14);
    assert!(!password.chars().any(|c| "0O1lI".contains(c)), "{password}");
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("Published: "))
        .unwrap();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    assert_eq!(login(port, &path, &password).status, 303);

    for args in [
        &["status"][..],
        &["status", "--json"],
        &["list", "--all"],
        &["list", "--all", "--json"],
    ] {
        let text = env.ok(args);
        assert!(
            !text.contains(&password) && !text.contains("argon2"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("(password)") || text.contains("\"protected\": true"),
            "{args:?}: {text}"
        );
    }
    let again = env.ok(&["add", file.to_str().unwrap()]);
    assert!(!again.contains("Password:"), "printed once: {again}");
}
