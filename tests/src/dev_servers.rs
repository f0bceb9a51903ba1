//! Real dev servers for end-to-end tests: Vite from the npm registry,
//! Django and Flask from PyPI, installed once per machine in a folder kept
//! between runs ([`FOLDER_VAR`], else `dev-servers/` in Cargo's target
//! folder), and a minimal project of each made in a test's own folder,
//! served by the framework's ordinary dev command with no setting changed.
//!
//! Node.js, npm and python3 with venv must be on the machine (`.ci/run`
//! installs them): where they are not, a test that needs them fails saying
//! so, rather than being skipped.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{ProcessId, free_port, wait_for};

/// The variable naming the folder the dev servers are installed in.
pub const FOLDER_VAR: &str = "DROP_TEST_DEV_SERVERS";
/// What npm installs: Vite 8, the one agents run today.
const NPM_PACKAGES: &[&str] = &["vite@8"];
/// What pip installs. Django 6 needs Python 3.12; 5.2 is the LTS before it.
const PIP_PACKAGES: &[&str] = &["Django>=5.2,<6", "Flask>=3.1,<4"];
/// The oldest Node.js Vite 8 runs on.
const NODE_AT_LEAST: (u32, u32) = (20, 19);
/// How long a dev server may take to serve its first page.
pub const COME_UP_LIMIT: Duration = Duration::from_secs(60);

/// A web framework whose dev server the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// `npx vite`: refuses a `Host` it does not know (403).
    Vite,
    /// `python manage.py runserver`: refuses a `Host` not in
    /// `ALLOWED_HOSTS` (400, DisallowedHost).
    Django,
    /// `flask run`: accepts any `Host`.
    Flask,
}

impl Framework {
    /// Every framework, in the order the tests report them.
    pub const ALL: [Framework; 3] = [Framework::Vite, Framework::Django, Framework::Flask];

    /// Its name, which the tests also give its app.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Vite => "vite",
            Framework::Django => "django",
            Framework::Flask => "flask",
        }
    }

    /// Makes a minimal project in `dir` (which must exist) and returns the
    /// framework's own command serving it on 127.0.0.1:`port`.
    pub fn project(self, dir: &Path, port: u16) -> String {
        let installed = Installed::get();
        match self {
            Framework::Vite => {
                write(dir, "package.json", VITE_PACKAGE);
                write(dir, "index.html", VITE_INDEX);
                write(dir, "main.js", VITE_MAIN);
                link_tree(&installed.node_modules(), &dir.join("node_modules"));
                format!("npx vite --host 127.0.0.1 --port {port} --strictPort")
            }
            Framework::Django => {
                let admin = installed.venv_bin().join("django-admin");
                run(Command::new(admin)
                    .args(["startproject", "mysite"])
                    .arg(dir));
                let python = installed.venv_bin().join("python");
                format!("{} manage.py runserver 127.0.0.1:{port}", python.display())
            }
            Framework::Flask => {
                write(dir, "app.py", FLASK_APP);
                let flask = installed.venv_bin().join("flask");
                format!(
                    "{} --app app run --host 127.0.0.1 --port {port}",
                    flask.display()
                )
            }
        }
    }

    /// Words of the page its project shows at `/`, which nothing else
    /// answers: Vite's own client script in the page, Django's welcome page,
    /// Flask's view.
    pub fn page_words(self) -> &'static [&'static str] {
        match self {
            Framework::Vite => &["/@vite/client", "drop-vite-page"],
            Framework::Django => &["The install worked successfully!"],
            Framework::Flask => &["hello from Flask"],
        }
    }

    /// Whether `body` is its page.
    pub fn is_its_page(self, body: &str) -> bool {
        self.page_words().iter().all(|words| body.contains(words))
    }

    /// The status and words of its refusal of an unknown `Host`, and the
    /// setting that lets a host in; `None` for a framework that checks no
    /// host.
    pub fn refusal(self) -> Option<(u16, &'static str, &'static str)> {
        match self {
            Framework::Vite => Some((403, "Blocked request", "allowedHosts")),
            Framework::Django => Some((400, "DisallowedHost", "ALLOWED_HOSTS")),
            Framework::Flask => None,
        }
    }
}

const VITE_PACKAGE: &str = r#"{ "name": "drop-vite-app", "private": true, "type": "module", "scripts": { "dev": "vite" } }
"#;
const VITE_INDEX: &str = r#"<!doctype html>
<html lang="en">
  <head><meta charset="UTF-8"><title>Vite app</title></head>
  <body>
    <div id="app">drop-vite-page</div>
    <script type="module" src="/main.js"></script>
  </body>
</html>
"#;
const VITE_MAIN: &str = "document.querySelector('#app').dataset.ran = 'yes'\n";
const FLASK_APP: &str = r#"from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello from Flask"
"#;

/// The dev servers, installed: Vite's `node_modules`, and a venv with
/// Django and Flask.
pub struct Installed {
    folder: PathBuf,
}

impl Installed {
    /// The installation, made on first use (once per machine: a later run
    /// finds it complete and installs nothing).
    pub fn get() -> &'static Installed {
        static INSTALLED: OnceLock<Installed> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let installed = Installed { folder: folder() };
            installed.install();
            installed
        })
    }

    fn node_modules(&self) -> PathBuf {
        self.folder.join("node/node_modules")
    }

    fn venv_bin(&self) -> PathBuf {
        self.folder.join("venv/bin")
    }

    /// Installs what is missing, under a lock: test processes run side by
    /// side, and one of them installs while the others wait.
    fn install(&self) {
        std::fs::create_dir_all(&self.folder).expect("a folder for the dev servers");
        let lock = File::create(self.folder.join("install.lock")).expect("the install lock");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .expect("lock the install");
        let node = self.folder.join("node");
        require_node();
        complete(&node, &NPM_PACKAGES.join(" "), |dir| {
            write(dir, "package.json", "{ \"private\": true }\n");
            run(Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .args(NPM_PACKAGES)
                .current_dir(dir));
        });
        let venv = self.folder.join("venv");
        complete(&venv, &PIP_PACKAGES.join(" "), |dir| {
            run(Command::new("python3").arg("-m").arg("venv").arg(dir));
            run(Command::new(dir.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(PIP_PACKAGES));
        });
    }
}

/// `DROP_TEST_DEV_SERVERS`, else `dev-servers/` in the target folder this
/// test binary was built in.
fn folder() -> PathBuf {
    if let Some(folder) = std::env::var_os(FOLDER_VAR) {
        return PathBuf::from(folder);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/dev-servers
    let target = exe.ancestors().nth(3).expect("the target folder");
    target.join("dev-servers")
}

/// Makes `dir` with `make` unless it holds a complete install of `what`:
/// a stamp written last says so, and an install of something else, or one
/// cut short, is made again from scratch.
fn complete(dir: &Path, what: &str, make: impl FnOnce(&Path)) {
    let stamp = dir.join(".installed");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == what) {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("the install folder");
    let started = Instant::now();
    make(dir);
    std::fs::write(&stamp, what).expect("the install stamp");
    eprintln!(
        "figure: installed {what} in {} in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
}

/// Fails the test unless Node.js and npm are here, and new enough for Vite.
fn require_node() {
    let fix = "the real dev server tests need Node.js (20.19 or later) and npm to install and run Vite; .ci/run installs them";
    let version = Command::new("node").arg("--version").output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => panic!("`node` is not on PATH: {fix}"),
    };
    let number = |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    let mut parts = version.trim_start_matches('v').split('.');
    let (major, minor) = (number(parts.next()), number(parts.next()));
    assert!(
        (major, minor) >= NODE_AT_LEAST,
        "Node.js {version} is too old: {fix}"
    );
    let npm = Command::new("npm").arg("--version").output();
    assert!(
        npm.is_ok_and(|out| out.status.success()),
        "`npm` is not on PATH: {fix}"
    );
}

/// A copy of the folder `from` at `to` made of hard links (symbolic links
/// stay symbolic links), so that each project has `node_modules` of its own
/// for Vite to write its cache in, without copying a byte; a plain copy
/// where hard links cannot be made.
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("read the installed packages") {
        let entry = entry.expect("an entry");
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().expect("its type");
        if kind.is_dir() {
            link_tree(&source, &target);
        } else if kind.is_symlink() {
            let points_to = std::fs::read_link(&source).expect("read a link");
            std::os::unix::fs::symlink(points_to, &target).expect("copy a link");
        } else if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).expect("copy a file");
        }
    }
}

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).expect("write a project file");
}

/// Runs an install step, which must succeed.
fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| {
        panic!(
            "{command:?} does not run: {e} (.ci/run installs Node.js, npm and python3 with venv)"
        )
    });
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dev server run by the test itself (not through drop), in its own
/// process group, ended with its group when dropped.
pub struct DevServerProcess {
    child: std::process::Child,
    process: ProcessId,
    started: Instant,
    log: PathBuf,
    /// The port it serves on.
    pub port: u16,
}

impl DevServerProcess {
    /// Starts `framework`'s project in `dir` on a free port.
    pub fn start(framework: Framework, dir: &Path) -> DevServerProcess {
        let port = free_port();
        let command = framework.project(dir, port);
        let log = dir.join("dev-server.log");
        let output = File::create(&log).expect("a log file");
        let child = Command::new("sh")
            .args(["-c", &command])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("the log again"))
            .stderr(output)
            .process_group(0)
            .spawn()
            .expect("the dev server starts");
        let started = Instant::now();
        let process = ProcessId::of(child.id()).expect("the dev server runs");
        DevServerProcess {
            child,
            process,
            started,
            log,
            port,
        }
    }

    /// Waits until it serves `/` to a browser on this machine, and returns
    /// what it answered and how long after its start that was.
    pub fn first_page(&self) -> (crate::http::Response, Duration) {
        let head = format!(
            "GET / HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        let page = wait_for("the dev server's first page", COME_UP_LIMIT, || {
            let log = || std::fs::read_to_string(&self.log).unwrap_or_default();
            assert!(self.process.is_alive(), "the dev server exited: {}", log());
            std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
            Some(crate::http::send_raw(self.port, head.as_bytes()))
        });
        (page, self.started.elapsed())
    }
}

impl Drop for DevServerProcess {
    fn drop(&mut self) {
        self.process.terminate_group(Duration::from_secs(2));
        let _ = self.child.wait();
    }
}
