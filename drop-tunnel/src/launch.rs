//! Starting cloudflared the one way every provider here does: the binary
//! found the same way, an environment cleaned of every variable cloudflared
//! would read as a flag, a process group of its own, and output to a log
//! file per process (a pipe would close with the caller and kill it). Also
//! the short commands that manage named tunnels (`create`, `list`, …),
//! whose output is read whole.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::Command;

use crate::process::CloudflaredProcess;
use crate::{CloudflaredConfig, TunnelError};

/// Dead tunnels' logs kept in the state dir, for whoever investigates.
const LOGS_KEPT: usize = 4;
/// Environment variables cloudflared reads as flags, or that change how it
/// runs, besides every `TUNNEL_*` and `QUIC_GO_*` one: from the caller's
/// environment, any of them could turn a tunnel into something else (a
/// named tunnel, the hello-world page, JSON logs, another certificate…).
const CLOUDFLARED_VARIABLES: &[&str] = &[
    "NO_AUTOUPDATE",
    "NO_TLS_VERIFY",
    "LOCAL_SSH_PORT",
    "SSH_IDLE_TIMEOUT",
    "SSH_MAX_TIMEOUT",
    "BUCKET_ID",
    "REGION_ID",
    "SECRET_ID",
    "ACCESS_CLIENT_ID",
    "SESSION_TOKEN_ID",
    "S3_URL",
    "HOST_KEY_PATH",
    "DIAL_EDGE_TIMEOUT",
    "STDIN_CONTROL",
    "QLOGDIR",
];

/// The binary to run: the explicit one, else `cloudflared` on the search
/// path, else the fallback paths; the first that is an executable file.
pub(crate) fn find_binary(config: &CloudflaredConfig) -> Result<PathBuf, TunnelError> {
    let search_path = (config.search_path.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let on_path = std::env::split_paths(&search_path).map(|dir| dir.join("cloudflared"));
    (config.binary.iter().cloned())
        .chain(on_path)
        .chain(config.fallback_paths.iter().cloned())
        .find(|path| is_executable(path))
        .ok_or_else(|| TunnelError::NotFound {
            searched: config.fallback_paths.clone(),
            hint: config.not_found_hint.clone(),
        })
}

/// Makes the state dir and writes `text` to the config file `name` in it,
/// owner-only, by a rename so a cloudflared starting meanwhile never reads
/// half of it. Returns its path.
pub(crate) fn write_config(
    config: &CloudflaredConfig,
    name: &str,
    text: &str,
) -> Result<PathBuf, TunnelError> {
    let dir = &config.state_dir;
    std::fs::create_dir_all(dir).map_err(|source| TunnelError::Write {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.{}", std::process::id()));
    let written = write_private(&temporary, text.as_bytes())
        .and_then(|()| std::fs::rename(&temporary, &path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&temporary);
        TunnelError::Write {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

/// Starts long-running cloudflared processes for one provider, each with a
/// log file of its own.
#[derive(Debug, Default)]
pub(crate) struct Launcher {
    /// Numbers each process's log file until its process id is known.
    opens: AtomicU64,
}

impl Launcher {
    /// Starts `binary` with `args` in its own process group with a clean
    /// environment, its output in a new log file (a file outlives us, where
    /// a pipe would close with us and kill it), which is then named after
    /// its pid: `cloudflared-<pid>.log` in the state dir.
    pub(crate) fn spawn(
        &self,
        config: &CloudflaredConfig,
        binary: &Path,
        args: Vec<OsString>,
    ) -> Result<CloudflaredProcess, TunnelError> {
        let log = self.starting_log(config)?;
        let spawned = spawn_logged(config, binary, args, &log);
        spawned.inspect_err(|_| {
            let _ = std::fs::remove_file(&log);
        })
    }

    /// A new, private log file for the next process; renamed after its pid
    /// once it runs.
    pub(crate) fn starting_log(&self, config: &CloudflaredConfig) -> Result<PathBuf, TunnelError> {
        let n = self.opens.fetch_add(1, Ordering::SeqCst);
        let name = format!("cloudflared-starting-{}-{n}.log", std::process::id());
        let path = config.state_dir.join(name);
        std::fs::create_dir_all(&config.state_dir)
            .and_then(|()| write_private(&path, b""))
            .map_err(|source| TunnelError::Write {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }
}

fn spawn_logged(
    config: &CloudflaredConfig,
    binary: &Path,
    args: Vec<OsString>,
    log: &Path,
) -> Result<CloudflaredProcess, TunnelError> {
    let spawn_error = |source| TunnelError::Spawn {
        path: binary.to_owned(),
        source,
    };
    let stderr = open_private(log, true).map_err(spawn_error)?;
    let stdout = stderr.try_clone().map_err(spawn_error)?;
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    clean_environment(&mut command, config);
    let child = start(config, command).map_err(spawn_error)?;
    let pid = child.id().expect("a just-spawned child has a pid");
    let named = config.state_dir.join(format!("cloudflared-{pid}.log"));
    let log = match std::fs::rename(log, &named) {
        Ok(()) => named,
        Err(_) => log.to_owned(),
    };
    prune_logs(&config.state_dir, &log);
    Ok(CloudflaredProcess::new(child, pid, log, config.stop_grace))
}

/// What a short cloudflared command printed, and how it ended.
#[derive(Debug)]
pub(crate) struct CommandOutput {
    /// The exit code; `None` when a signal ended it.
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs a cloudflared command that ends by itself (`tunnel list`, …) with
/// the same clean environment, in its own process group, and reads all it
/// prints. Past `timeout` its group is killed and the command counts as
/// unanswered.
pub(crate) async fn run_to_end(
    config: &CloudflaredConfig,
    binary: &Path,
    args: Vec<OsString>,
    timeout: Duration,
) -> Result<Option<CommandOutput>, TunnelError> {
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    clean_environment(&mut command, config);
    let child = start(config, command).map_err(|source| TunnelError::Spawn {
        path: binary.to_owned(),
        source,
    })?;
    let pgid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(Some(CommandOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })),
        Ok(Err(source)) => Err(TunnelError::Spawn {
            path: binary.to_owned(),
            source,
        }),
        Err(_) => {
            // The child was dropped with the future, which killed it;
            // whatever it started goes with its group.
            if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1)
                && let Some(pgid) = rustix::process::Pid::from_raw(pgid)
            {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            Ok(None)
        }
    }
}

/// Removes from `command` every variable of ours that cloudflared would
/// read, then adds the caller's chosen ones.
fn clean_environment(command: &mut Command, config: &CloudflaredConfig) {
    for (name, _) in std::env::vars_os().filter(|(name, _)| read_by_cloudflared(name)) {
        command.env_remove(name);
    }
    command.envs(config.env.iter().map(|(k, v)| (k, v)));
}

#[cfg(target_os = "linux")]
fn start(config: &CloudflaredConfig, command: Command) -> std::io::Result<tokio::process::Child> {
    if config.die_with_parent {
        ur_taking_me_with_you::spawn_dying_with_parent_async(command)
    } else {
        let mut command = command;
        command.spawn()
    }
}

#[cfg(not(target_os = "linux"))]
fn start(
    _config: &CloudflaredConfig,
    mut command: Command,
) -> std::io::Result<tokio::process::Child> {
    command.spawn()
}

/// Whether cloudflared would read this variable of the caller's
/// environment as one of its flags or settings.
pub(crate) fn read_by_cloudflared(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name.starts_with("TUNNEL_")
        || name.starts_with("QUIC_GO_")
        || CLOUDFLARED_VARIABLES.contains(&name)
}

/// Removes the logs of tunnels that ended, but the newest few.
pub(crate) fn prune_logs(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dead: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let pid: u32 = path
                .file_name()?
                .to_str()?
                .strip_prefix("cloudflared-")?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            let meta = entry.metadata().ok()?;
            let modified = meta.modified().ok()?;
            (!written_by(pid, &meta) && path != keep).then_some((modified, path))
        })
        .collect();
    dead.sort();
    let excess = dead.len().saturating_sub(LOGS_KEPT);
    for (_, path) in dead.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether process `pid` is alive and writes to the log `log`. Its pid
/// alone does not tell: once the tunnel ended, the pid (or a thread's id,
/// which `kill` takes too) is soon another process's, and the log would
/// be kept for good. Where `/proc` shows it, the process's standard error
/// must be that very file.
fn written_by(pid: u32, log: &std::fs::Metadata) -> bool {
    let alive = rustix::process::Pid::from_raw(pid as i32)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
    if !alive || !Path::new("/proc/self/fd").exists() {
        return alive;
    }
    // A zombie has no descriptors, and another user's process hides
    // them: neither is a tunnel writing this log.
    std::fs::metadata(format!("/proc/{pid}/fd/2"))
        .is_ok_and(|output| output.dev() == log.dev() && output.ino() == log.ino())
}

/// The address cloudflared should forward to: loopback when `local` is a
/// wildcard, since cloudflared runs on this machine.
pub(crate) fn origin(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

/// The flags every tunnel process of a provider gets, quick or named: no
/// self-update, the provider's own `config_file` (which also finds
/// leftovers), a metrics port of cloudflared's choosing, the log level
/// that logs the URL box and registrations, and a graceful shutdown that
/// ends a second before our SIGKILL backstop.
pub(crate) fn tunnel_flags(config: &CloudflaredConfig, config_file: &Path) -> Vec<OsString> {
    let grace = config.stop_grace.saturating_sub(Duration::from_secs(1));
    vec![
        "--no-autoupdate".into(),
        "--config".into(),
        config_file.into(),
        "--metrics".into(),
        "127.0.0.1:0".into(),
        "--loglevel".into(),
        "info".into(),
        "--grace-period".into(),
        format!("{}ms", grace.as_millis()).into(),
    ]
}

/// Writes `bytes` to `path` (see [`open_private`]), replacing what it held.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = open_private(path, false)?;
    // Emptied only once it is known to be ours: `O_TRUNC` would act first.
    file.set_len(0)?;
    file.write_all(bytes)
}

/// Opens `path` to write (at its end with `append`), creating it, readable
/// by its owner only whatever the umask. Never through a symbolic link, and
/// only a regular file of the effective user: a link or a FIFO planted in
/// the state dir must not make a config or a log land, or a chmod act,
/// anywhere else, nor hang the open.
pub(crate) fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    use rustix::fs::OFlags;
    let refused = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{why}; remove it and try again"),
        )
    };
    let mut options = std::fs::OpenOptions::new();
    match append {
        true => options.append(true),
        false => options.write(true),
    };
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
    options
        .create(true)
        .mode(0o600)
        .custom_flags(flags.bits() as i32);
    let file = options.open(path).map_err(|e| {
        let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        match e.raw_os_error() {
            _ if is_link => refused("it is a symbolic link, which is never followed"),
            Some(code) if code == rustix::io::Errno::NXIO.raw_os_error() => {
                refused("it is not a regular file")
            }
            _ => e,
        }
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused("it is not a regular file"));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(refused("it belongs to another user"));
    }
    if meta.mode() & 0o7777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let status = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, status - OFlags::NONBLOCK)?;
    Ok(file)
}

pub(crate) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// What the providers' tests share: a config that finds no cloudflared of
/// the machine's, and the flags every tunnel process gets.
#[cfg(test)]
pub(crate) mod test_support {
    use std::ffi::OsString;
    use std::path::Path;

    use crate::CloudflaredConfig;

    /// A config for `dir` that searches no `PATH`.
    pub(crate) fn config_in(dir: &Path) -> CloudflaredConfig {
        let mut config = CloudflaredConfig::new(dir);
        config.search_path = Some(OsString::new());
        config
    }

    /// `args` as text.
    pub(crate) fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    /// The flags after `tunnel` that every process gets, with a 3 s stop
    /// grace (cloudflared's own grace is one second less).
    pub(crate) fn common_flags(config_file: &Path) -> Vec<String> {
        [
            "--no-autoupdate",
            "--config",
            config_file.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
            "--loglevel",
            "info",
            "--grace-period",
            "2000ms",
        ]
        .map(String::from)
        .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::config_in;
    use super::*;

    fn executable(path: &Path) -> PathBuf {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_owned()
    }

    #[test]
    fn nothing_anywhere_is_not_found_with_the_places_and_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.binary = Some(dir.path().join("missing"));
        config.fallback_paths = vec![dir.path().join("also-missing")];
        config.not_found_hint = Some("Run ./install.sh".into());
        let err = find_binary(&config).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cloudflared not found. Run ./install.sh (looked on PATH, then at {})",
                dir.path().join("also-missing").display()
            )
        );
        assert!(err.is_permanent());
    }

    #[test]
    fn the_explicit_binary_comes_first_then_path_then_the_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = executable(&dir.path().join("explicit/cf"));
        let on_path = executable(&dir.path().join("path/cloudflared"));
        let fallback = executable(&dir.path().join("home/cloudflared"));
        let mut config = config_in(dir.path());
        config.binary = Some(explicit.clone());
        config.search_path =
            Some(std::env::join_paths([dir.path().join("none"), dir.path().join("path")]).unwrap());
        config.fallback_paths = vec![dir.path().join("nowhere"), fallback.clone()];
        assert_eq!(find_binary(&config).unwrap(), explicit);
        config.binary = None;
        assert_eq!(find_binary(&config).unwrap(), on_path);
        config.search_path = Some(OsString::new());
        assert_eq!(find_binary(&config).unwrap(), fallback);
    }

    #[test]
    fn a_file_that_cannot_run_is_not_a_binary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloudflared");
        std::fs::write(&path, "").unwrap();
        assert!(!is_executable(&path));
        assert!(!is_executable(dir.path()));
    }

    #[test]
    fn an_ipv6_origin_keeps_its_brackets() {
        let local: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(format!("http://{}", origin(local)), "http://[::1]:9000");
    }

    /// A link planted where a config is staged or a log is started is
    /// never followed: the file it points at is neither written nor
    /// chmod'ed, and the write fails saying why.
    #[test]
    fn links_in_the_state_dir_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let config = config_in(&state);
        let staged = state.join(format!(".x.yml.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &staged).unwrap();
        let err = write_config(&config, "x.yml", "a: 1\n").unwrap_err();
        assert!(format!("{err:?}").contains("symbolic link"), "{err:?}");
        let log = state.join(format!("cloudflared-starting-{}-0.log", std::process::id()));
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        assert!(Launcher::default().starting_log(&config).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    /// A config file is written whole, private, and replaces the last one.
    #[test]
    fn config_files_and_logs_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(&dir.path().join("state"));
        let first = write_config(&config, "x.yml", "a: 1\n").unwrap();
        let again = write_config(&config, "x.yml", "a: 2\n").unwrap();
        assert_eq!(first, again);
        assert_eq!(std::fs::read_to_string(&again).unwrap(), "a: 2\n");
        let log = Launcher::default().starting_log(&config).unwrap();
        for path in [again, log] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<String> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn the_callers_tunnel_settings_never_reach_cloudflared() {
        for name in [
            "TUNNEL_NAME",
            "TUNNEL_HELLO_WORLD",
            "TUNNEL_TRANSPORT_PROTOCOL",
            "TUNNEL_LOG_OUTPUT",
            "TUNNEL_ORIGIN_CERT",
            "TUNNEL_CRED_FILE",
            "TUNNEL_TOKEN",
            "NO_AUTOUPDATE",
            "QUIC_GO_DISABLE_GSO",
            "STDIN_CONTROL",
        ] {
            assert!(read_by_cloudflared(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "DROP_HOME", "TUNNELS", "MY_TUNNEL_NAME"] {
            assert!(!read_by_cloudflared(OsStr::new(name)), "{name}");
        }
    }

    /// The logs of ended tunnels go but the newest few; the log a live
    /// process writes stays, and so does the one asked to be kept.
    #[test]
    fn only_a_few_logs_of_ended_tunnels_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Pids above the kernel's limit: processes that cannot be running.
        for n in 0..12u32 {
            std::fs::write(
                dir.path()
                    .join(format!("cloudflared-{}.log", 4_200_000 + n)),
                "x",
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let (mut writer, live) = writing_its_own_log(dir.path());
        std::fs::write(dir.path().join("unrelated.log"), "x").unwrap();
        let keep = dir.path().join("cloudflared-4200000.log");
        prune_logs(dir.path(), &keep);
        let _ = writer.kill();
        let _ = writer.wait();
        let left = names_in(dir.path());
        assert!(left.contains(&live), "a live process's log stays");
        assert!(
            left.contains(&"cloudflared-4200000.log".to_owned()),
            "the one asked to keep"
        );
        assert!(left.contains(&"unrelated.log".to_owned()));
        assert!(
            left.contains(&"cloudflared-4200011.log".to_owned()),
            "the newest stay"
        );
        assert!(
            !left.contains(&"cloudflared-4200001.log".to_owned()),
            "the oldest go"
        );
        assert_eq!(left.len(), 3 + LOGS_KEPT, "{left:?}");
    }

    /// A log whose pid is now another live process's (here: this test's,
    /// which does not write to it) is a dead tunnel's: it is pruned, not
    /// kept for good.
    #[test]
    fn a_log_whose_pid_was_reused_is_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let reused = format!("cloudflared-{me}.log");
        std::fs::write(dir.path().join(&reused), "an ended tunnel's").unwrap();
        for n in 0..LOGS_KEPT as u32 {
            std::thread::sleep(Duration::from_millis(5));
            let newer = format!("cloudflared-{}.log", 4_200_000 + n);
            std::fs::write(dir.path().join(newer), "x").unwrap();
        }
        prune_logs(dir.path(), Path::new("/nothing"));
        let left = names_in(dir.path());
        assert!(!left.contains(&reused), "{left:?}");
        assert_eq!(left.len(), LOGS_KEPT, "{left:?}");
    }

    /// A child whose standard error is `cloudflared-<its pid>.log` in
    /// `dir`, as a tunnel's is; and that log's name.
    fn writing_its_own_log(dir: &Path) -> (std::process::Child, String) {
        let starting = dir.join("starting.log");
        let log = std::fs::File::create(&starting).unwrap();
        let child = std::process::Command::new("sleep")
            .arg("30")
            .stderr(log)
            .spawn()
            .unwrap();
        let name = format!("cloudflared-{}.log", child.id());
        std::fs::rename(&starting, dir.join(&name)).unwrap();
        (child, name)
    }

    fn names_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    /// A command's output is read whole, and one that hangs is killed at
    /// its deadline.
    #[tokio::test]
    async fn short_commands_are_read_whole_or_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let sh = PathBuf::from("/bin/sh");
        let args = |script: &str| vec![OsString::from("-c"), script.into()];
        let output = run_to_end(
            &config,
            &sh,
            args("echo out; echo err >&2; exit 3"),
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .expect("it ended");
        assert_eq!(
            (output.code, output.stdout.as_str(), output.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        let started = std::time::Instant::now();
        let hung = run_to_end(&config, &sh, args("sleep 30"), Duration::from_millis(200))
            .await
            .unwrap();
        assert!(hung.is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
