//! Password-protected pages through the real binary: what `drop add
//! --password` prints and lists, and the daemon's memory under a storm of
//! logins (SPEC "Passwords", SECURITY.md §2). The login rules themselves are
//! tested in-process (`protected_pages.rs`).

use std::thread;
use std::time::{Duration, Instant};

use drop_tests::DropEnv;
use drop_tests::http::{get, request_from};
use drop_tests::login::{FORM, LOCAL, form_token, login};

/// 200 parallel wrong-password POSTs: the server's memory stays bounded and
/// a public page on it keeps answering.
#[test]
fn a_storm_of_wrong_passwords_stays_bounded() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, secret) = env.add(&env.write("s.html", "s"), &["--password", "right-one"]);
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
                let headers = [FORM, ("CF-Connecting-IP", client.as_str())];
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
