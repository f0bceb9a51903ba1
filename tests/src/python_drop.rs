//! The Python drop 0.2, which users run today, installed for upgrade tests:
//! `pip install` of its source folder into a venv in a temp dir, run with
//! its own `HOME` so its `~/.drop` is the home under test.
//!
//! Its source is expected beside this workspace (the one place that says
//! where); a test that needs it fails with a clear message when it is not
//! there, rather than being skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

/// The Python drop's source folder: the workspace's parent folder, then
/// `shared/seed/python-drop-0.2`.
pub fn source() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace");
    let parent = workspace
        .parent()
        .expect("the workspace has a parent folder");
    let dir = ["shared", "seed", "python-drop-0.2"]
        .iter()
        .fold(parent.to_path_buf(), |dir, part| dir.join(part));
    assert!(
        dir.join("pyproject.toml").is_file(),
        "the Python drop 0.2 is not at {}: upgrade tests install it from there (its `pyproject.toml` is missing)",
        dir.display()
    );
    dir
}

/// A venv with the Python drop (and Flask) installed, made once per test
/// binary and kept until it exits.
pub struct Venv {
    dir: TempDir,
}

impl Venv {
    /// The shared venv, created on first use.
    pub fn get() -> &'static Venv {
        static VENV: OnceLock<Venv> = OnceLock::new();
        VENV.get_or_init(Venv::create)
    }

    fn create() -> Venv {
        let dir = tempfile::tempdir().expect("a temp dir for the venv");
        // pip builds from a copy: the source folder may be read-only.
        let copy = dir.path().join("src");
        copy_dir(&source(), &copy);
        let venv = dir.path().join("venv");
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(&copy));
        Venv { dir }
    }

    /// The venv's `bin/` folder.
    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("venv/bin")
    }
}

/// The Python drop, run with `HOME=home`, so that it uses `home/.drop`.
pub struct PythonDrop {
    /// What it takes for `~`.
    pub home: PathBuf,
    /// The folder commands run in.
    pub work: PathBuf,
}

impl PythonDrop {
    /// `drop ARGS`, as the Python drop. Its `PATH` is the venv alone: no
    /// `systemctl` (so it runs its server itself) and no `curl` (so it
    /// never asks the internet for an address).
    pub fn run(&self, args: &[&str]) -> Output {
        let bin = Venv::get().bin();
        Command::new(bin.join("drop"))
            .args(args)
            .current_dir(&self.work)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", &bin)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("the Python drop runs")
    }

    /// Runs it and asserts success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "python drop {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the source") {
        let entry = entry.expect("a source entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("its type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a source file");
        }
    }
}
