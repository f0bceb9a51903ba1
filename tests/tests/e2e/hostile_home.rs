//! What a hostile home, registry or argument cannot bend (SECURITY.md §4):
//! a home of another user, or anything of theirs in it, is refused and
//! left as it was; a link where drop keeps a file is never followed; a
//! time that does not read fails closed; a registry another program writes
//! in place is read whole; a description has a length.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use drop_tests::http::get;
use drop_tests::{DropEnv, stderr, wait_for, wait_until_polling};

/// The uid of `nobody`: a user other than the one running the tests.
const OTHER_USER: u32 = 65534;
/// A page id no record has.
const NEVER: &str = "/p/aaaaaaaaaaaaaaaaaaaa/";

/// Whether files can be given to another user here (only root can).
fn can_give_files_away() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!("skipped: giving a home to another user needs root");
    }
    root
}

/// Every entry under `dir` with its mode, owner and content: what must not
/// change.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, Vec<u8>)> {
    let mut seen = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let content = match meta.is_file() {
            true => std::fs::read(&path).unwrap(),
            false => Vec::new(),
        };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
        seen.push((path, meta.mode(), meta.uid(), content));
    }
    seen.sort();
    seen
}

/// Runs `drop serve` in `env`'s home and returns how it ended; a daemon
/// still serving after ten seconds is killed and fails the test.
fn serve(env: &DropEnv) -> Output {
    run_within(env, &["serve", "--port", "0"], "the daemon took the home")
}

/// Runs `drop args` in `env`'s home and returns how it ended; one still
/// running after ten seconds is killed and fails the test with `hung`.
fn run_within(env: &DropEnv, args: &[&str], hung: &str) -> Output {
    let mut child = env
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("drop {args:?}: {hung}: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A home another user owns, with their registry naming a root-only file
/// in it, is refused by every command that would write in it or serve it,
/// with an `Error:` that says why and what to do (and a code for scripts);
/// nothing in it is changed, its loose mode included.
#[test]
fn a_home_of_another_user_is_refused_and_left_as_it_was() {
    if !can_give_files_away() {
        return;
    }
    let env = DropEnv::new();
    let home = env.home.path();
    let planted =
        r#"{"aaaaaaaaaaaaaaaaaaaa": {"type": "static", "source": "/etc/shadow", "is_dir": false}}"#;
    std::fs::write(home.join("pages.json"), planted).unwrap();
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o777)).unwrap();
    for path in [home.to_owned(), home.join("pages.json")] {
        chown(&path, Some(OTHER_USER), Some(OTHER_USER)).unwrap();
    }
    let before = snapshot(home);
    let page = env.write("a.html", "a");
    let page = page.to_str().unwrap();
    for args in [
        &["add", page][..],
        &["start", "--port", "0", "--no-tunnel"],
        &["remove", "aaaaaaaaaaaaaaaaaaaa"],
    ] {
        let out = env.run(args);
        assert!(!out.status.success(), "drop {args:?} took the home");
        let said = stderr(&out);
        assert!(
            said.starts_with(&format!(
                "Error: `{}` belongs to user {OTHER_USER}, not to you (user 0)",
                home.display()
            )) && said.contains("home of your own"),
            "drop {args:?}: {said}"
        );
        let json = env.run(&[args, &["--json"]].concat());
        let doc: serde_json::Value =
            serde_json::from_str(stderr(&json).lines().last().unwrap()).unwrap();
        assert_eq!(doc["error"]["code"], "home_not_owned", "drop {args:?}");
    }
    let daemon = serve(&env);
    assert!(!daemon.status.success());
    assert!(stderr(&daemon).contains("belongs to user 65534"));
    assert_eq!(snapshot(home), before, "nothing in the home changed");

    // A home of one's own, loose, is tightened; a log of the other
    // user's in it is refused, and left as it was.
    let env = DropEnv::new();
    let home = env.home.path();
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ok(&["add", env.write("a.html", "a").to_str().unwrap()]);
    assert_eq!(std::fs::metadata(home).unwrap().mode() & 0o7777, 0o700);
    let log = home.join("logs/server.log");
    std::fs::write(&log, "theirs\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    chown(&log, Some(OTHER_USER), None).unwrap();
    let out = env.run(&["start", "--port", "0", "--no-tunnel"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).starts_with(&format!("Error: `{}` belongs to user", log.display())),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "theirs\n");
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o7777, 0o666);
}

/// A process of the test's own, in a group of its own, that a planted
/// record names: it must outlive every command. Killed when dropped.
struct Bystander {
    child: std::process::Child,
    start_time: u64,
}

impl Bystander {
    fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new("sleep")
            .arg("1000")
            .process_group(0)
            .spawn()
            .unwrap();
        let start_time = drop_tests::ProcessId::of(child.id()).unwrap().start_time;
        Bystander { child, start_time }
    }

    fn assert_alive(&self, after: &str) {
        assert!(
            drop_tests::alive(self.child.id()),
            "{after} signalled the process a foreign home named"
        );
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Gives `path` and everything under it to [`OTHER_USER`].
fn give_away(path: &Path) {
    for (entry, ..) in snapshot(path) {
        std::os::unix::fs::lchown(&entry, Some(OTHER_USER), Some(OTHER_USER)).unwrap();
    }
}

/// A home of another user is refused by every command, read-only ones
/// included, before any of its files is trusted: its `server.json` and an
/// app record name live processes, and no command signals them; nothing in
/// the home changes. One file of theirs in a home of one's own is refused
/// the same way.
#[test]
fn every_command_refuses_a_home_of_another_user_before_trusting_it() {
    if !can_give_files_away() {
        return;
    }
    let env = DropEnv::new();
    let home = env.home.path();
    let (server, app) = (Bystander::start(), Bystander::start());
    let server_json = serde_json::json!({
        "pid": server.child.id(), "start_time": server.start_time,
        "port": 9, "bind": "127.0.0.1",
    });
    std::fs::write(home.join("server.json"), server_json.to_string()).unwrap();
    let id = "aaaaaaaaaaaaaaaaaaaa";
    let pages = serde_json::json!({ id: {
        "type": "app", "source": env.work.path(), "is_dir": true,
        "run_cmd": "sleep 1000", "port": 9, "status": "running",
        "pid": app.child.id(), "pid_start_time": app.start_time,
    }});
    std::fs::write(home.join("pages.json"), pages.to_string()).unwrap();
    std::fs::create_dir(home.join("logs")).unwrap();
    std::fs::write(home.join(format!("logs/app-{id}.log")), "theirs\n").unwrap();
    give_away(home);
    let before = snapshot(home);
    let page = env.write("a.html", "a");
    let page = page.to_str().unwrap();
    for args in [
        &["stop"][..],
        &["stop", id],
        &["stop", "--all"],
        &["list", "--all"],
        &["status"],
        &["logs", id],
        &["doctor"],
        &["doctor", id],
        &["qr", id],
        &["wait", id, "--timeout", "1s"],
        &["remove", id],
        &["cleanup"],
        &["start", id],
        &["add", page],
        &["tunnel", "status"],
        &["tunnel", "reset"],
        &["tunnel", "setup", "--hostname", "drop.example.com"],
        &["mcp"],
    ] {
        let out = env.run(args);
        assert!(!out.status.success(), "drop {args:?} took the home");
        let said = stderr(&out);
        assert!(
            said.starts_with(&format!(
                "Error: `{}` belongs to user {OTHER_USER}",
                home.display()
            )),
            "drop {args:?}: {said}"
        );
        server.assert_alive(&format!("drop {args:?}"));
        app.assert_alive(&format!("drop {args:?}"));
    }
    let json = env.run(&["stop", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(stderr(&json).trim()).unwrap();
    assert_eq!(doc["error"]["code"], "home_not_owned");
    assert_eq!(snapshot(home), before, "nothing in the home changed");

    // A home of one's own with the other user's `server.json` in it.
    let env = DropEnv::new();
    let planted = env.home.path().join("server.json");
    std::fs::write(&planted, server_json.to_string()).unwrap();
    give_away(&planted);
    let out = env.run(&["stop"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).starts_with(&format!("Error: `{}` belongs to user", planted.display())),
        "{}",
        stderr(&out)
    );
    server.assert_alive("drop stop");
}

/// A file outside the home, and a link to it planted where drop keeps
/// `name`.
struct Planted {
    _outside: tempfile::TempDir,
    victim: PathBuf,
    link: PathBuf,
}

impl Planted {
    fn in_home(env: &DropEnv, name: &str) -> Self {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "victim\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = env.home.path().join(name);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(&victim, &link).unwrap();
        Planted {
            _outside: outside,
            victim,
            link,
        }
    }

    /// Asserts that the file it points at was neither written nor
    /// chmod'ed, and that `said` names the link and what is wrong.
    fn assert_untouched(&self, said: &str) {
        assert_eq!(std::fs::read_to_string(&self.victim).unwrap(), "victim\n");
        let mode = std::fs::metadata(&self.victim).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o644, "{} was chmod'ed", self.victim.display());
        assert!(
            said.contains(&format!(
                "`{}` is a symbolic link: drop never follows links in its home",
                self.link.display()
            )),
            "{said}"
        );
    }
}

/// Links planted where drop keeps its logs and locks are never followed:
/// the file they point at is neither written nor chmod'ed, and the command
/// says which link is wrong.
#[test]
fn links_where_drop_keeps_its_files_are_never_followed() {
    let start = &["start", "--port", "0", "--no-tunnel"][..];
    for (name, args) in [
        ("logs/server.log", start),
        ("start.lock", start),
        ("pages.json.lock", &["add", "a.html"][..]),
    ] {
        let env = DropEnv::new();
        env.write("a.html", "a");
        let planted = Planted::in_home(&env, name);
        let out = env.run(args);
        assert!(!out.status.success(), "drop {args:?} went through {name}");
        planted.assert_untouched(&stderr(&out));
    }

    let env = DropEnv::new();
    let planted = Planted::in_home(&env, "server.lock");
    let daemon = serve(&env);
    assert!(!daemon.status.success());
    planted.assert_untouched(&stderr(&daemon));

    let env = DropEnv::new();
    std::fs::create_dir(env.work.path().join("app")).unwrap();
    let added = env.json(&["add", "app", "--run", "sleep 30", "--port", "9", "--json"]);
    let id = added["id"].as_str().unwrap();
    let planted = Planted::in_home(&env, &format!("logs/app-{id}.log"));
    env.start();
    let out = env.run(&["start", id]);
    assert!(!out.status.success(), "the app started with its log a link");
    planted.assert_untouched(&stderr(&out));
    env.ok(&["stop"]);
}

/// A log planted as a link or a FIFO is refused, never followed nor
/// waited on: `drop logs` (`-f` too) and `drop doctor` say which file is
/// wrong, print nothing of what it points at, and return at once.
#[test]
fn logs_planted_as_links_or_fifos_are_refused_at_once() {
    let env = DropEnv::new();
    std::fs::create_dir(env.work.path().join("app")).unwrap();
    let added = env.json(&["add", "app", "--run", "sleep 30", "--port", "9", "--json"]);
    let id = added["id"].as_str().unwrap().to_owned();
    edit_registry(&env, |_, record| {
        record["crashed"] = true.into();
        record["exit_code"] = 1.into();
    });
    let server_json = r#"{"pid": 4194304, "start_time": 1, "port": 9}"#;
    std::fs::write(env.home.path().join("server.json"), server_json).unwrap();
    let app_log = format!("logs/app-{id}.log");
    let doctor = &["doctor", id.as_str()][..];
    for (name, readers) in [
        (
            app_log.as_str(),
            vec![&["logs", &id][..], &["logs", &id, "-f"], doctor],
        ),
        ("logs/server.log", vec![&["doctor"][..], doctor]),
    ] {
        let planted = Planted::in_home(&env, name);
        for args in readers {
            let out = run_within(&env, args, "followed a link");
            let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
            assert!(!printed.contains("victim"), "drop {args:?}: {printed}");
            planted.assert_untouched(&printed);
            if args[0] == "logs" {
                assert!(!out.status.success(), "drop {args:?}");
            }
        }
        std::fs::remove_file(&planted.link).unwrap();
    }
    let fifo = env.home.path().join(&app_log);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    for args in [&["logs", &id][..], &["logs", &id, "-f"], &["doctor", &id]] {
        let out = run_within(&env, args, "waited on a FIFO");
        if args[0] == "logs" {
            assert!(!out.status.success(), "drop {args:?}");
            assert!(
                stderr(&out).contains(&format!("`{}` is not a regular file", fifo.display())),
                "drop {args:?}: {}",
                stderr(&out)
            );
        }
    }
}

/// Rewrites the registry as another program might, `change` applied to
/// each record.
fn edit_registry(env: &DropEnv, change: impl Fn(&str, &mut serde_json::Value)) {
    let path = env.home.path().join("pages.json");
    let mut pages: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (id, record) in pages.as_object_mut().unwrap() {
        change(id, record);
    }
    std::fs::write(path, serde_json::to_vec_pretty(&pages).unwrap()).unwrap();
}

/// An `expires_at` or `used_at` that is not a time (a number too) fails
/// closed: the page is gone (the same 404 as a page that never existed),
/// its one-time link used; the daemon's log says so, `list` flags it, and
/// the page is kept for the user to fix, neither swept away nor removed
/// by `drop cleanup`; the rest of the registry reads as ever.
#[test]
fn times_that_do_not_read_fail_closed_and_are_flagged() {
    let env = DropEnv::new();
    let (ends, ends_path) = env.add(&env.write("ends.html", "ends"), &[]);
    let (once, once_path) = env.add(&env.write("once.html", "once"), &["--once"]);
    let (number, number_path) = env.add(&env.write("number.html", "number"), &[]);
    let (soon, _) = env.add(&env.write("soon.html", "soon"), &["--expires", "2s"]);
    let (fine, fine_path) = env.add(&env.write("fine.html", "fine"), &[]);
    edit_registry(&env, |id, record| {
        if id == ends {
            record["expires_at"] = "tomorrow at noon".into();
        }
        if id == once {
            record["used_at"] = "2026-13-45T99:00:00Z".into();
        }
        if id == number {
            record["expires_at"] = 12345.into();
            record["created_at"] = serde_json::json!({"when": "today"});
            record["last_opened_at"] = true.into();
        }
    });
    let port = env.start();
    let never = get(port, NEVER);
    for path in [&ends_path, &once_path, &number_path] {
        let answer = get(port, path);
        assert_eq!((answer.status, answer.text()), (never.status, never.text()));
    }
    assert_eq!(get(port, &fine_path).text(), "fine");
    let listed = env.ok(&["list", "--all"]);
    let line = |id: &str| listed.lines().find(|l| l.contains(id)).unwrap().to_owned();
    assert!(line(&ends).contains("[bad expires_at]"), "{listed}");
    assert!(line(&once).contains("[bad used_at]"), "{listed}");
    assert!(line(&number).contains("[bad expires_at]"), "{listed}");
    assert!(line(&fine).contains(&fine), "{listed}");
    assert_eq!(
        env.listed(&ends).unwrap()["bad_times"],
        serde_json::json!(["expires_at"])
    );
    let log = env.server_log();
    assert!(
        log.contains(&format!(
            "page {ends}: its expires_at \"tomorrow at noon\" is not a time"
        )),
        "{log}"
    );
    // The sweep removes the page that expired, and keeps the flagged one.
    wait_for("the expired page removed", Duration::from_secs(10), || {
        env.listed(&soon).is_none().then_some(())
    });
    assert!(env.listed(&ends).is_some());
    let cleaned = env.ok(&["cleanup"]);
    assert_eq!(cleaned.trim(), "Nothing to clean up.");
    for id in [&ends, &number] {
        assert!(env.listed(id).is_some(), "cleanup removed {id}");
    }
    env.ok(&["stop"]);
}

/// A registry another program writes in place (truncated, half written,
/// a pause, the rest), as the Python drop does, is read again once its
/// writer is done: a command reading it meanwhile waits and sees the whole
/// new registry, the daemon serves the page it adds, and nothing is called
/// corrupt or copied aside.
#[test]
fn a_registry_written_in_place_slowly_is_read_whole() {
    let env = DropEnv::new();
    let port = env.start();
    let (_, first_path) = env.add(&env.write("first.html", "first"), &[]);
    let source = env.write("second.html", "second");
    let path = env.home.path().join("pages.json");
    let mut pages: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let new_id = "bbbbbbbbbbbbbbbbbbbb";
    pages[new_id] = serde_json::json!({
        "type": "static", "source": source, "is_dir": false,
        "created_at": "2026-01-01T00:00:00+00:00",
    });
    let json = serde_json::to_vec_pretty(&pages).unwrap();
    let (first, second) = json.split_at(json.len() / 2);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    file.write_all(first).unwrap();
    let new_path = format!("/p/{new_id}/");
    assert_eq!(get(port, &new_path).status, 404, "not yet whole");
    let list = env
        .command(&["list", "--all", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_polling("the list waiting for the writer", list.id());
    file.write_all(second).unwrap();
    drop(file);
    let listed = list.wait_with_output().unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains(new_id));
    let served = wait_for("the new page served", Duration::from_secs(10), || {
        let answer = get(port, &new_path);
        (answer.status == 200).then_some(answer)
    });
    assert_eq!(served.text(), "second");
    assert_eq!(get(port, &first_path).status, 200);
    let copies: Vec<_> = std::fs::read_dir(env.home.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .map(|e| e.file_name())
        .collect();
    assert!(copies.is_empty(), "called corrupt: {copies:?}");
    let log = env.server_log();
    assert!(!log.contains("not a valid drop registry"), "{log}");
    env.ok(&["stop"]);
}

/// `--desc` is a line in listings: past 500 characters it is refused with
/// an `Error:` (and a code), and nothing is stored.
#[test]
fn a_description_has_a_length() {
    let env = DropEnv::new();
    let page = env.write("a.html", "a");
    let page = page.to_str().unwrap();
    let long = "é".repeat(501);
    let out = env.run(&["add", page, "--desc", &long]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).starts_with("Error: --desc is 501 characters long; keep it to 500"),
        "{}",
        stderr(&out)
    );
    let json = env.run(&["add", page, "--desc", &long, "--json"]);
    let doc: serde_json::Value =
        serde_json::from_str(stderr(&json).lines().last().unwrap()).unwrap();
    assert_eq!(doc["error"]["code"], "description_too_long");
    assert!(
        !env.home.path().join("pages.json").exists(),
        "nothing stored"
    );
    let fits = "é".repeat(500);
    let (id, _) = env.add(Path::new(page), &["--desc", &fits]);
    assert_eq!(env.listed(&id).unwrap()["description"], fits.as_str());
}

/// A file whose name carries terminal escapes, a bell, a carriage return
/// and a right-to-left override: no command prints any of them raw, in
/// its lines, its notes or its errors, and the command it suggests quotes
/// the path.
#[test]
fn a_hostile_file_name_is_printed_escaped_everywhere() {
    let env = DropEnv::new();
    let port = env.start();
    let name = "a\u{1b}[31mRED\u{1b}[0m\u{7}\u{202e}txt.exe\rFAKE b.txt";
    let file = env.write(name, "hi\n");
    let (id, path) = env.add(&file, &["--once"]);
    assert_eq!(get(port, &path).status, 200, "the one-time link is used");
    wait_for("the use is recorded", Duration::from_secs(10), || {
        env.listed(&id)
            .and_then(|p| p["used_at"].as_str().map(drop))
    });
    let raw = |c: char| (c.is_control() && c != '\n') || c == '\u{202e}';
    for args in [
        &["list", "--all"][..],
        &["status"],
        &["doctor", &id],
        &["wait", &id, "--timeout", "1s"],
        &["add", file.to_str().unwrap(), "--name", "n\u{1b}[31m"],
    ] {
        let out = env.run(args);
        for text in [String::from_utf8_lossy(&out.stdout), stderr(&out).into()] {
            assert!(!text.contains(raw), "{args:?} printed it raw: {text:?}");
        }
    }
    let doctor = String::from_utf8(env.run(&["doctor", &id]).stdout).unwrap();
    assert!(
        doctor.contains("'drop add \"") && doctor.contains("b.txt\" --once'"),
        "the path is quoted for the shell: {doctor}"
    );
}
