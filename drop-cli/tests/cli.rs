//! The `drop` binary's command line, without a server.

use std::process::Command;

fn drop_cmd(home: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drop"));
    command.env("DROP_HOME", home);
    command
}

/// `--help` names every command users rely on.
#[test]
fn help_lists_every_command() {
    let home = tempfile::tempdir().unwrap();
    let out = drop_cmd(home.path()).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for command in [
        "start", "stop", "status", "add", "list", "remove", "cleanup", "mcp",
    ] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
    assert!(!text.contains("serve "), "the daemon command stays hidden");
}

/// A usage error starts `Error:` like every error of drop's and exits 2;
/// `drop` alone shows the help as clap does, not as an error.
#[test]
fn usage_errors_say_error_and_drop_alone_shows_help() {
    let home = tempfile::tempdir().unwrap();
    let out = drop_cmd(home.path())
        .args(["start", "--port", "99999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("Error: invalid value '99999'"), "{err}");
    let alone = drop_cmd(home.path()).output().unwrap();
    let help = String::from_utf8(alone.stderr).unwrap();
    assert!(help.starts_with("drop: one command"), "{help}");
    assert!(!help.contains("serve "), "{help}");
    let json = drop_cmd(home.path()).arg("--json").output().unwrap();
    let error: serde_json::Value = serde_json::from_slice(&json.stderr).unwrap();
    assert_eq!(error["error"]["code"], "usage", "{error}");
    assert!(!error.to_string().contains("serve"), "{error}");
}

/// A missing path is one `Error:` line on stderr and a non-zero exit, and
/// nothing is written to the home.
#[test]
fn adding_a_missing_path_fails_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let out = drop_cmd(home.path())
        .args(["add", "/no/such/file.html"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("Error: `/no/such/file.html` does not exist"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(!home.path().join("pages.json").exists());
}

/// Usage mistakes are clap's exit code 2.
#[test]
fn unknown_flags_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let out = drop_cmd(home.path())
        .args(["list", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
