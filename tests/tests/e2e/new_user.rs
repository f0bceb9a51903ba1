//! What a new user reads, tried as a new user would: each message says
//! what happened and gives a fix that works, names things as the user
//! named them, and scripts find every field they read.

use drop_tests::DropEnv;
use drop_tests::login::login;

/// `--expires` and `--once` are said under the URL, when given and when
/// a re-add changes them, and an end is said honestly (`1 min` for
/// `--expires 1m`, not `59 s`).
#[test]
fn add_says_what_the_link_will_do() {
    let env = DropEnv::new();
    env.write("notes.html", "notes");
    let first = env.ok(&["add", "notes.html", "--expires", "1m"]);
    assert!(
        first.contains("  (the link expires in 1 min (at "),
        "{first}"
    );
    let once = env.ok(&["add", "notes.html", "--once"]);
    assert!(
        once.contains("  (the link opens once, for one human, then answers 404; it expires in "),
        "{once}"
    );
    assert!(once.contains("(already published: same page as before)"));
    let lasting = env.ok(&["add", "notes.html", "--expires", "never", "--no-once"]);
    assert!(
        lasting.contains(
            "  (the link no longer expires, and opens for anyone who has it, as often as they like)"
        ),
        "{lasting}"
    );
    let again = env.ok(&["add", "notes.html"]);
    assert!(!again.contains("(the link"), "nothing changed: {again}");
}

/// The URL path of the `Published:` line of `add`'s output.
fn published_path(out: &str) -> String {
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("Published: "))
        .unwrap_or_else(|| panic!("no Published: line in {out}"));
    format!("/{}", url.splitn(4, '/').nth(3).unwrap())
}

/// The `Password:` line of `add`'s output.
fn printed_password(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Password: "))
        .unwrap_or_else(|| panic!("no Password: line in {out}"))
        .to_owned()
}

/// Adding a protected page again with `--password` alone keeps its
/// password, and says so: the human who has it still gets in.
/// `--new-password` makes a new one; a password of fewer than 8
/// characters is refused.
#[test]
fn password_alone_keeps_the_password_a_page_has() {
    let env = DropEnv::new();
    let port = env.start();
    env.write("notes.html", "notes");
    let first = env.ok(&["add", "notes.html", "--password"]);
    let (path, password) = (published_path(&first), printed_password(&first));

    let again = env.ok(&["add", "notes.html", "--password"]);
    assert!(again.contains("Password kept:"), "{again}");
    assert!(!again.contains("Password: "), "not shown again: {again}");
    assert_eq!(login(port, &path, &password).status, 303, "it still opens");
    let doc = env.json(&["add", "notes.html", "--password", "--json"]);
    assert_eq!(doc["password_kept"], true, "{doc}");
    assert!(doc.get("password").is_none(), "{doc}");

    let rotated = env.ok(&["add", "notes.html", "--new-password"]);
    assert!(rotated.contains("Password changed"), "{rotated}");
    let new = printed_password(&rotated);
    assert_ne!(new, password);
    assert_eq!(login(port, &path, &password).status, 401);
    assert_eq!(login(port, &path, &new).status, 303);

    let short = env.run(&["add", "notes.html", "--password", "x", "--json"]);
    assert!(!short.status.success());
    let error: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&short.stderr).trim()).unwrap();
    assert_eq!(error["error"]["code"], "bad_password", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 8"),
        "{error}"
    );
    assert_eq!(login(port, &path, &new).status, 303, "nothing changed");
}
