//! What a new user reads, tried as a new user would: each message says
//! what happened and gives a fix that works, names things as the user
//! named them, and scripts find every field they read.

use drop_tests::DropEnv;

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
