//! The real cloudflared, offline: `rig.sh` runs it in a network namespace
//! of its own, with stand-ins for Cloudflare's side (the quick-tunnel API,
//! DNS with the edge's SRV record, the edge itself, the front that sends a
//! visitor's request through a tunnel by its `Host`, DNS over HTTPS), and
//! drop runs inside that namespace. Nothing leaves the machine.
//!
//! The rig is found beside the cloudflared that `DROP_TEST_CLOUDFLARED`
//! names (`rig.sh` and `fakeedge` in the same folder), else in
//! `shared/real-cloudflared/` beside this repository's folder. Where there
//! is none, [`Rig::up_or_skip`] says why and the test returns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::{DropEnv, ProcessId};

/// The variable naming a cloudflared binary with the rig beside it.
pub const CLOUDFLARED_VAR: &str = "DROP_TEST_CLOUDFLARED";

/// The rig's files: its script, the real cloudflared and the fake edge.
#[derive(Debug, Clone)]
pub struct RigFiles {
    pub script: PathBuf,
    pub cloudflared: PathBuf,
    pub fakeedge: PathBuf,
}

impl RigFiles {
    /// The rig beside `cloudflared`.
    fn beside(cloudflared: PathBuf) -> RigFiles {
        let folder = cloudflared.parent().map(Path::to_owned).unwrap_or_default();
        RigFiles {
            script: folder.join("rig.sh"),
            fakeedge: folder.join("fakeedge"),
            cloudflared,
        }
    }

    /// The first of the rig's files that is not there.
    fn missing(&self) -> Option<&Path> {
        [&self.cloudflared, &self.script, &self.fakeedge]
            .into_iter()
            .find(|path| !path.is_file())
            .map(PathBuf::as_path)
    }

    /// Where the rig is; `Err` says why there is none. A rig asked for by
    /// name with a file missing fails the test: that is a broken setup,
    /// not a machine without the rig.
    pub fn locate() -> Result<RigFiles, String> {
        if let Some(binary) = std::env::var_os(CLOUDFLARED_VAR) {
            let files = RigFiles::beside(PathBuf::from(binary));
            if let Some(missing) = files.missing() {
                panic!(
                    "{CLOUDFLARED_VAR} names a cloudflared, but {} is missing",
                    missing.display()
                );
            }
            return Ok(files);
        }
        let beside_repository = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .and_then(Path::parent)
            .expect("the repository sits in a folder");
        let folder = beside_repository.join("shared").join("real-cloudflared");
        let files = RigFiles::beside(folder.join("cloudflared"));
        match files.missing() {
            None => Ok(files),
            Some(missing) => Err(format!(
                "no real cloudflared: {CLOUDFLARED_VAR} is not set and {} does not exist",
                missing.display()
            )),
        }
    }
}

/// One rig, up from [`Rig::up`] until dropped: then whatever the test left
/// running in its namespaces is killed and the rig is taken down.
pub struct Rig {
    files: RigFiles,
    dir: TempDir,
    /// The namespace with the rig's services.
    pub netns: String,
    /// A namespace with loopback alone and a resolver it cannot reach.
    pub nonet: String,
    /// The front's address inside [`Rig::netns`].
    pub front: String,
    /// What the rig's `env` file sets for the commands run in it.
    vars: Vec<(String, String)>,
}

/// The variables the rig's `env` file sets, in the order read.
const RIG_VARS: [&str; 8] = [
    "RIG_NETNS",
    "RIG_NONET",
    "RIG_FRONT",
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "DROP_TUNNEL_EDGE",
    "DROP_DOH_URLS",
    "PATH",
];

impl Rig {
    /// A rig of its own for `test`, or `None` after saying on stderr why
    /// the test is skipped.
    pub fn up_or_skip(test: &str) -> Option<Rig> {
        match RigFiles::locate() {
            Ok(files) => Some(Rig::up(files)),
            Err(why) => {
                eprintln!("skipped: {test}: {why}");
                None
            }
        }
    }

    /// Brings a rig up in a new temporary folder (`rig.sh up`).
    pub fn up(files: RigFiles) -> Rig {
        let dir = tempfile::tempdir().expect("a folder for the rig");
        let mut rig = Rig {
            files,
            dir,
            netns: String::new(),
            nonet: String::new(),
            front: String::new(),
            vars: Vec::new(),
        };
        rig.script_ok(&["up"]);
        rig.vars = rig.read_env();
        let var = |name: &str| rig.var(name).to_owned();
        (rig.netns, rig.nonet, rig.front) = (var("RIG_NETNS"), var("RIG_NONET"), var("RIG_FRONT"));
        rig
    }

    /// The rig's folder: its `env`, logs (`edge.log`, `dns.log`) and pids.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An edge outage: the API, the edge and the front go away.
    pub fn edge_stop(&self) {
        self.script_ok(&["edge-stop"]);
    }

    /// The edge is back; the hostnames it issued before still route.
    pub fn edge_start(&self) {
        self.script_ok(&["edge-start"]);
    }

    /// How the rig's DNS answers: `map`, `nosrv` (the edge's SRV lookup
    /// fails), `nxdomain`, `servfail`, `drop`.
    pub fn dns(&self, mode: &str) {
        self.script_ok(&["dns", mode]);
    }

    /// How the quick-tunnel API answers: `ok`, `ratelimit`, `garbage`, `hang`.
    pub fn api(&self, mode: &str) {
        self.script_ok(&["api", mode]);
    }

    /// A drop home whose commands run in the rig's namespace, with the
    /// rig's settings: the real cloudflared first on `PATH`, its test CA
    /// trusted, drop's checks pointed at the rig's front and DNS over
    /// HTTPS, and `HOME` at [`user_home`].
    pub fn drop_env(&self) -> DropEnv {
        self.drop_env_in(&self.netns)
    }

    /// The same in the namespace with no network at all.
    pub fn offline_drop_env(&self) -> DropEnv {
        self.drop_env_in(&self.nonet)
    }

    fn drop_env_in(&self, netns: &str) -> DropEnv {
        let mut env = DropEnv::new().within(&["ip", "netns", "exec", netns]);
        let home = user_home(&env);
        std::fs::create_dir_all(&home).expect("a home folder");
        env = env.env("HOME", home.to_str().expect("a UTF-8 temp path"));
        for (name, value) in self.vars.iter().filter(|(n, _)| !n.starts_with("RIG_")) {
            env = env.env(name, value);
        }
        env
    }

    /// Opens `path` on `host` as a visitor would: through the rig's front,
    /// which picks the tunnel by the `Host` header.
    pub fn open(&self, host: &str, path: &str) -> Visit {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "curl", "-s", "-m", "10"])
            .args(["-H", &format!("Host: {host}"), "-w", "\n%{http_code}"])
            .arg(format!("http://{}{path}", self.front))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        Visit {
            status: code.trim().parse().unwrap_or(0),
            body: body.to_owned(),
        }
    }

    /// The live cloudflared processes in the rig's namespaces.
    pub fn cloudflared_pids(&self) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|&pid| command_name(pid).as_deref() == Some("cloudflared"))
            .collect()
    }

    /// Every live process in the rig's namespaces but the rig's own.
    fn processes(&self) -> Vec<u32> {
        let services = self.service_pids();
        [&self.netns, &self.nonet]
            .into_iter()
            .filter(|netns| !netns.is_empty())
            .flat_map(|netns| pids_in(netns))
            .filter(|pid| !services.contains(pid) && ProcessId::of(*pid).is_some())
            .collect()
    }

    /// The rig's services (DNS, the fake edge, DoH), from their pid files.
    fn service_pids(&self) -> Vec<u32> {
        ["dns", "edge", "doh"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.dir().join(format!("{name}.pid"))).ok())
            .filter_map(|text| text.trim().parse().ok())
            .collect()
    }

    /// A value the rig's `env` file set.
    fn var(&self, name: &str) -> &str {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the rig's env file sets no {name}"))
    }

    /// The rig's `env` file as a shell reads it.
    fn read_env(&self) -> Vec<(String, String)> {
        let values: Vec<String> = RIG_VARS.iter().map(|n| format!("\"${n}\"")).collect();
        let script = format!(". \"$1\" && printf '%s\\0' {}", values.join(" "));
        let out = Command::new("bash")
            .args(["-c", &script, "rig-env"])
            .arg(self.dir().join("env"))
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8 settings");
        let values = text.split('\0').map(str::to_owned);
        RIG_VARS
            .iter()
            .map(|n| (*n).to_owned())
            .zip(values)
            .collect()
    }

    /// `rig.sh COMMAND DIR ARGS…`, which must succeed.
    fn script_ok(&self, args: &[&str]) -> Output {
        let out = self.script(args);
        assert!(
            out.status.success(),
            "rig.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn script(&self, args: &[&str]) -> Output {
        let (command, rest) = args.split_first().expect("a rig command");
        Command::new(&self.files.script)
            .arg(command)
            .arg(self.dir())
            .args(rest)
            .env("CLOUDFLARED", &self.files.cloudflared)
            .env("FAKEEDGE", &self.files.fakeedge)
            .output()
            .expect("rig.sh runs")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The backstop after each test's own `drop stop`: what is left in
        // the rig's namespaces (a daemon, its cloudflared, an app) was
        // started by this test. Deleting a namespace does not end them.
        for pid in self.processes() {
            crate::kill(pid);
        }
        let out = self.script(&["down"]);
        if !out.status.success() {
            eprintln!("rig.sh down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// What a visitor got: the status (0 when nothing answered) and the body.
#[derive(Debug)]
pub struct Visit {
    pub status: u16,
    pub body: String,
}

/// The `HOME` of a drop home made by [`Rig::drop_env`]: `~/.cloudflared`
/// lives there.
pub fn user_home(env: &DropEnv) -> PathBuf {
    env.work.path().join("home")
}

/// The pids `ip netns pids` lists for `netns`.
fn pids_in(netns: &str) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// A process's command name (`/proc/PID/comm`).
fn command_name(pid: u32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(name.trim_end().to_owned())
}
