//! A fake `cloudflared` that behaves like the real one for quick tunnels
//! and named tunnels (ARCHITECTURE.md, "cloudflared, as drop relies on
//! it"), without a network. Named tunnels (`tunnel create`, `list`,
//! `route dns`, `run`, `delete`, `token`) are in `manage.rs` and
//! `named_run.rs`, their account and login certificate in `account.rs`.
//! What it follows, from cloudflared's own source (2026.8 line):
//! - flags as urfave/cli parses them (`cmd/cloudflared/tunnel/cmd.go`): an
//!   unknown flag or a bad value prints `Incorrect Usage. …` and the help on
//!   stdout and exits 0 (`linux_service.go` drops the error); every flag is
//!   also read from its `TUNNEL_*` variable, a command-line value winning;
//!   a variable whose value does not parse ends it silently with exit 0;
//! - `TUNNEL_NAME` makes it a named tunnel (which needs a certificate),
//!   `TUNNEL_HELLO_WORLD` / `TUNNEL_BASTION` replace the `--url` origin
//!   (`ingress/ingress.go`), `TUNNEL_LOG_OUTPUT=json` turns the log into
//!   JSON, `--loglevel warn` hides the URL box (`cliutil/logger.go`);
//! - `--config`: a missing file is fatal, an empty one logs `ERR
//!   Configuration file … was empty` (`config/configuration.go`);
//! - the quick-tunnel request gives up after 15 s (`quick_tunnel.go`); the
//!   URL box, the `Settings: map[…]` line, the metrics server on
//!   `--metrics` (`127.0.0.1:0`: a port of its choosing, logged) with
//!   `/quicktunnel` and `/ready` (`metrics/`);
//! - QUIC by default, `--protocol http2` on request; with UDP blocked QUIC
//!   dials fail forever with a growing backoff, and the connectivity
//!   pre-checks table (`prechecks/result.go`, `cliutil.LogTable`) says so;
//! - a dropped edge connection is restored with the same hostname
//!   (`supervisor/`, `retry/`);
//! - SIGTERM/SIGINT after the tunnel starts: a graceful shutdown that waits
//!   up to `--grace-period` (default 30 s) while connected; a second signal
//!   kills at once (`tunnel/signal.go`, `cmd.go:waitToShutdown`). Before
//!   that, the default disposition: killed at once, no log.
//!
//! It forwards nothing: its URL is for parsing and bookkeeping only.
//!
//! Knobs, all environment variables:
//! - `FAKE_CLOUDFLARED_MODE`: `ok` (default); `rate-limit` (the 429
//!   unmarshal lines, exit 1); `no-network` (`failed to request quick
//!   Tunnel … no such host`, exit 1); `unreachable` (the same ending in
//!   `connect: network is unreachable`, where no route leaves the machine);
//!   `dns-timeout` (the same ending in `i/o timeout`, after the resolver's
//!   10 s, or `FAKE_CLOUDFLARED_DNS_TIMEOUT_MS`); `uuid` (`invalid UUID
//!   length: 0`, exit 1); `hang` (the quick-tunnel request never answers:
//!   it gives up after 15 s, or `FAKE_CLOUDFLARED_REQUEST_TIMEOUT_MS`);
//!   `no-edge` (prints a URL, reaches the edge by no protocol, retries
//!   forever); `no-srv` (prints a URL, then the edge's SRV lookup fails:
//!   `Could not lookup srv records on _v2-origintunneld._tcp.argotunnel.com`,
//!   exit 1, a second after the box or `FAKE_CLOUDFLARED_SRV_EXIT_MS`).
//! - `FAKE_CLOUDFLARED_API=offline`: the commands that manage named
//!   tunnels cannot reach Cloudflare's API: `REST request failed: …`,
//!   worded per command as the real one words it offline (`tunnel list`
//!   doubles the prefix), exit 1.
//! - `FAKE_CLOUDFLARED_TIMING=real`: the real timings instead of compressed
//!   ones (`timing.rs`): a QUIC dial fails after 5 s
//!   (`FAKE_CLOUDFLARED_QUIC_TIMEOUT_MS`, default 0), retries wait the
//!   whole ceiling they announce (else 500 ms), the pre-checks come at
//!   +10 s, registration ~1 s after the box, and a lost edge connection is
//!   retried after 1 s, 2 s, 4 s … 32 s until the edge is back.
//! - `FAKE_CLOUDFLARED_UDP=blocked`: QUIC cannot reach the edge; HTTP/2 can.
//! - `FAKE_CLOUDFLARED_REQUEST_MS`: how long the quick-tunnel request takes
//!   (default 100).
//! - `FAKE_CLOUDFLARED_REGISTER_DELAY_MS`: from the URL box to
//!   `Registered tunnel connection` (default 300; the real one takes ~1 s).
//! - `FAKE_CLOUDFLARED_PRECHECKS_MS`: when the pre-checks table comes, after
//!   start-up (default 500; the real one 10 s).
//! - `FAKE_CLOUDFLARED_EXIT_AFTER_SECS`: exit this long after starting
//!   (fractions allowed), with `FAKE_CLOUDFLARED_EXIT_CODE` (default 1).
//! - `FAKE_CLOUDFLARED_DROP_AFTER_MS`: this long after registering, the edge
//!   connection drops; the edge is back after `FAKE_CLOUDFLARED_RECONNECT_MS`
//!   (default 1000), and the connection with it (with real timings, at the
//!   next retry), same hostname, new connection id.
//! - `FAKE_CLOUDFLARED_UNREADY_AFTER_MS`: this long after registering, lose
//!   the edge connection for good: `/ready` answers 503, the process lives.
//! - `FAKE_CLOUDFLARED_NO_METRICS=1`: no metrics server (the URL is then
//!   only in the log).
//! - `FAKE_CLOUDFLARED_OLD_BOX=1`: the box text from before 2021.8.4.
//! - `FAKE_CLOUDFLARED_IGNORE_TERM=1`: log the signal but keep running, so
//!   only SIGKILL ends it.
//! - `FAKE_CLOUDFLARED_CHILD=1`: start a `sleep` child in its process group,
//!   as if cloudflared had started something.
//! - `FAKE_CLOUDFLARED_ACCOUNT=dir`: the Cloudflare account of named
//!   tunnels, `dir/account.json` (default `~/.fake-cloudflare-account`):
//!   its zones, tunnels and DNS records, shared by every fake process
//!   (`account.rs` says its shape). The login certificate is the test's
//!   `cert.pem`, found where cloudflared looks (`HOME` decides `~`).
//! - `FAKE_CLOUDFLARED_RETRY_MS`: the pause between a named tunnel's
//!   refused registrations (default 200; the real one backs off from 1 s).
//! - `FAKE_CLOUDFLARED_RECORD=path`: append JSON lines to `path`:
//!   `{"pid":…,"args":[…],"tunnel_env":[…]}` at start,
//!   `{"pid":…,"origin":…,"host_header":…}` (`--http-host-header`, or
//!   null), `{"pid":…,"child":…}`, `{"pid":…,"url":…,"protocol":…,"at_ms":…}`,
//!   `{"pid":…,"tunnel":…,"ingress":[…]}` and `{"pid":…,"connected":…,"at_ms":…}` for
//!   a named tunnel, `{"pid":…,"exit":…,"after_ms":…}` when it ends by
//!   itself or by signal.

mod account;
mod manage;
mod named_run;
mod timing;

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

const VERSION_LINE: &str = "cloudflared version 2026.8.2 (built 2026-08-14T11:40 UTC)";
const DISCLAIMER: &str = "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps";
const NEW_HEADING: &str =
    "Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):";
const OLD_HEADING: &str = "Your Quick Tunnel has been created! Visit it at:";
const NO_CONFIG: &str = "Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]";
const HELP: &str = "NAME:
   cloudflared tunnel - Use Cloudflare Tunnel to expose private services to the Internet or to Cloudflare connected private users.

USAGE:
   cloudflared tunnel command [command options]  

COMMANDS:
   login      Generate a configuration file with your login details
   create     Create a new tunnel with given name
   run        Proxy a local web server by running the given tunnel
   help, h    Shows a list of commands or help for one command

OPTIONS:
   --config value    Specifies a config file in YAML format.
   --url URL         Connect to the local webserver at URL. (default: \"http://localhost:8080\") [$TUNNEL_URL]
   --help, -h        show help
";
const EDGE_IP: &str = "198.41.192.107";
const REGIONS: [&str; 2] = ["region1.v2.argotunnel.com", "region2.v2.argotunnel.com"];
const WORDS: [&str; 32] = [
    "seasonal",
    "deck",
    "organisms",
    "oklahoma",
    "solo",
    "younger",
    "truck",
    "river",
    "quiet",
    "amber",
    "lunar",
    "pixel",
    "harbor",
    "meadow",
    "copper",
    "violet",
    "canyon",
    "signal",
    "ticket",
    "marble",
    "orbit",
    "willow",
    "garnet",
    "falcon",
    "summit",
    "lemon",
    "bridge",
    "cotton",
    "ember",
    "glacier",
    "tango",
    "velvet",
];

/// A flag of `cloudflared tunnel`: its names, its variable, its kind.
struct FlagSpec {
    names: &'static [&'static str],
    env: Option<&'static str>,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Bool,
    Duration,
}

/// The flags this fake knows, as cloudflared defines them.
const FLAGS: &[FlagSpec] = &[
    FlagSpec {
        names: &["url"],
        env: Some("TUNNEL_URL"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["hello-world"],
        env: Some("TUNNEL_HELLO_WORLD"),
        kind: Kind::Bool,
    },
    FlagSpec {
        names: &["bastion"],
        env: Some("TUNNEL_BASTION"),
        kind: Kind::Bool,
    },
    FlagSpec {
        names: &["name", "n"],
        env: Some("TUNNEL_NAME"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["protocol", "p"],
        env: Some("TUNNEL_TRANSPORT_PROTOCOL"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["grace-period"],
        env: Some("TUNNEL_GRACE_PERIOD"),
        kind: Kind::Duration,
    },
    FlagSpec {
        names: &["metrics"],
        env: Some("TUNNEL_METRICS"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["config"],
        env: None,
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["loglevel"],
        env: Some("TUNNEL_LOGLEVEL"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["logfile"],
        env: Some("TUNNEL_LOGFILE"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["output"],
        env: Some("TUNNEL_LOG_OUTPUT"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["no-autoupdate"],
        env: Some("NO_AUTOUPDATE"),
        kind: Kind::Bool,
    },
    FlagSpec {
        names: &["no-prechecks"],
        env: Some("TUNNEL_NO_PRECHECKS"),
        kind: Kind::Bool,
    },
    FlagSpec {
        names: &["edge-ip-version"],
        env: Some("TUNNEL_EDGE_IP_VERSION"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["http-host-header"],
        env: Some("TUNNEL_HTTP_HOST_HEADER"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["origincert"],
        env: Some("TUNNEL_ORIGIN_CERT"),
        kind: Kind::Text,
    },
    FlagSpec {
        names: &["credentials-file", "cred-file"],
        env: Some("TUNNEL_CRED_FILE"),
        kind: Kind::Text,
    },
];

/// The flags in force: from the command line (with the name used there),
/// then from the environment.
#[derive(Debug, Default, Clone)]
struct Flags {
    /// Canonical name → value, command line and environment.
    values: BTreeMap<&'static str, String>,
    /// The canonical names the command line set.
    on_command_line: std::collections::BTreeSet<&'static str>,
    /// `Settings: map[…]` entries: what the command line set, as typed.
    settings: BTreeMap<String, String>,
}

impl Flags {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn on_command_line(&self, name: &str) -> bool {
        self.on_command_line.contains(name)
    }

    fn is_true(&self, name: &str) -> bool {
        self.get(name).and_then(parse_bool) == Some(true)
    }
}

/// What the log looks like: zerolog's console writer, or JSON.
struct Logger {
    json: bool,
    /// 0 debug, 1 info, 2 warn, 3 error.
    threshold: u8,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();
static STARTED: OnceLock<Instant> = OnceLock::new();

fn main() -> ExitCode {
    STARTED.get_or_init(Instant::now);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        args.first().map(String::as_str),
        Some("--version" | "-v" | "-V" | "version")
    ) {
        println!("{VERSION_LINE}");
        return ExitCode::SUCCESS;
    }
    let tunnel_env: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("TUNNEL_"))
        .collect();
    record(
        &serde_json::json!({ "pid": std::process::id(), "args": args, "tunnel_env": tunnel_env }),
    );
    let Invocation { flags, subcommand } = match parse_command_line(&args) {
        Ok(invocation) => invocation,
        Err(Usage { message, command }) => {
            // urfave/cli's usage error, on stdout; the exit code is lost.
            match command {
                None => println!("Incorrect Usage. {message}\n\n{HELP}"),
                Some(command) => println!(
                    "Incorrect Usage: {message}\n\nNAME:\n   cloudflared tunnel {command}\n\nUSAGE:\n   cloudflared tunnel [tunnel command options] {command} [subcommand options]"
                ),
            }
            return ExitCode::SUCCESS;
        }
    };
    let environment = with_environment(flags, FLAGS).and_then(|flags| match subcommand {
        Some(mut sub) => {
            sub.flags = with_environment(sub.flags, sub.specs)?;
            Some((flags, Some(sub)))
        }
        None => Some((flags, None)),
    });
    let Some((flags, subcommand)) = environment else {
        // A variable that does not parse: urfave/cli returns the error and
        // cloudflared's entry point discards it. Nothing is printed.
        return ExitCode::SUCCESS;
    };
    let level = flags.get("loglevel").unwrap_or("info");
    let _ = LOGGER.set(Logger {
        json: flags.get("output") == Some("json"),
        threshold: match level {
            "debug" => 0,
            "warn" => 2,
            "error" | "fatal" => 3,
            _ => 1,
        },
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let code = match subcommand {
        None => runtime.block_on(run(flags)),
        Some(sub) => match named_run::read_config_file(&flags) {
            Err(code) => code,
            Ok(config) => {
                let flags = config.applied_to(flags);
                match sub.name {
                    "run" => runtime.block_on(named_run::run(&flags, &sub, config)),
                    _ => manage::run(&flags, &sub),
                }
            }
        },
    };
    record_exit(i32::from(code));
    ExitCode::from(code)
}

/// A refused command line: what urfave/cli says, and the subcommand whose
/// help follows (`None`: `tunnel`'s).
struct Usage {
    message: String,
    command: Option<&'static str>,
}

impl Usage {
    fn of_tunnel(message: String) -> Self {
        Usage {
            message,
            command: None,
        }
    }
}

/// A command line: `tunnel`'s flags, and the subcommand named after them.
struct Invocation {
    flags: Flags,
    subcommand: Option<Subcommand>,
}

/// A subcommand of `tunnel` (`create`, `route dns`, `run`…): its flags,
/// which go before its arguments, and its arguments.
struct Subcommand {
    name: &'static str,
    specs: &'static [FlagSpec],
    flags: Flags,
    args: Vec<String>,
}

/// `tunnel` followed by flags (`--flag value`, `--flag=value`, `-f value`;
/// booleans take no value, or `=value`), then maybe a subcommand with its
/// own flags and arguments. As in urfave/cli, flags end at the first
/// argument that is not one.
fn parse_command_line(args: &[String]) -> Result<Invocation, Usage> {
    let mut rest = args.iter();
    if rest.next().map(String::as_str) != Some("tunnel") {
        return Err(Usage::of_tunnel(
            "this fake knows only `cloudflared tunnel`".into(),
        ));
    }
    let rest: Vec<String> = rest.cloned().collect();
    let (flags, rest) = parse_flags(&rest, FLAGS).map_err(Usage::of_tunnel)?;
    let Some(word) = rest.first() else {
        return Ok(Invocation {
            flags,
            subcommand: None,
        });
    };
    let (name, after) = match (word.as_str(), rest.get(1).map(String::as_str)) {
        ("route", Some("dns")) => ("route dns", &rest[2..]),
        ("route", _) => {
            let message = "this fake knows only `tunnel route dns`".to_owned();
            return Err(Usage::of_tunnel(message));
        }
        (word, _) => match manage::SUBCOMMANDS.iter().find(|(name, _)| *name == word) {
            Some((name, _)) => (*name, &rest[1..]),
            None => {
                let message = format!("this fake takes no argument `{word}`");
                return Err(Usage::of_tunnel(message));
            }
        },
    };
    let specs = manage::flags_of(name);
    let (sub_flags, args) = parse_flags(after, specs).map_err(|message| Usage {
        message,
        command: Some(name),
    })?;
    Ok(Invocation {
        flags,
        subcommand: Some(Subcommand {
            name,
            specs,
            flags: sub_flags,
            args,
        }),
    })
}

/// Flags of `specs` from the start of `args`, and the arguments after them.
fn parse_flags(args: &[String], specs: &[FlagSpec]) -> Result<(Flags, Vec<String>), String> {
    let mut flags = Flags::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            return Ok((flags, rest.cloned().collect()));
        }
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            let mut positional = vec![arg.clone()];
            positional.extend(rest.cloned());
            return Ok((flags, positional));
        };
        let (name, inline) = match stripped.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (stripped, None),
        };
        let Some(spec) = specs.iter().find(|f| f.names.contains(&name)) else {
            return Err(format!("flag provided but not defined: -{name}"));
        };
        let value = match (spec.kind, inline) {
            (Kind::Bool, None) => "true".to_owned(),
            (_, Some(value)) => value,
            (_, None) => rest
                .next()
                .cloned()
                .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
        };
        let shown = check_value(spec, &value).ok_or_else(|| match spec.kind {
            Kind::Bool => format!("invalid boolean value \"{value}\" for -{name}: parse error"),
            _ => format!("invalid value \"{value}\" for flag -{name}: parse error"),
        })?;
        flags.values.insert(spec.names[0], value);
        flags.on_command_line.insert(spec.names[0]);
        for alias in spec.names {
            flags.settings.insert((*alias).to_owned(), shown.clone());
        }
    }
    Ok((flags, Vec::new()))
}

/// The value's String form if it parses for its kind.
fn check_value(spec: &FlagSpec, value: &str) -> Option<String> {
    match spec.kind {
        Kind::Text => Some(value.to_owned()),
        Kind::Bool => parse_bool(value).map(|b| b.to_string()),
        Kind::Duration => parse_duration(value).map(go_duration),
    }
}

/// Flags from their variables where the command line did not set them.
/// `None` when a variable's value does not parse.
fn with_environment(mut flags: Flags, specs: &[FlagSpec]) -> Option<Flags> {
    for spec in specs {
        let Some(var) = spec.env else {
            continue;
        };
        if flags.values.contains_key(spec.names[0]) {
            continue;
        }
        let Ok(value) = std::env::var(var) else {
            continue;
        };
        // Empty booleans and durations are ignored; an empty string counts as set.
        if value.is_empty() && spec.kind != Kind::Text {
            continue;
        }
        check_value(spec, &value)?;
        flags.values.insert(spec.names[0], value);
    }
    Some(flags)
}

async fn run(flags: Flags) -> u8 {
    let config_loaded = match read_config(&flags) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Some(grace) = flags.get("grace-period").and_then(parse_duration)
        && grace > Duration::from_secs(180)
    {
        log(
            "ERR",
            "Couldn't start tunnel error=\"grace-period must be equal or less than 3m0s\"",
        );
        return bare("grace-period must be equal or less than 3m0s");
    }
    if flags.get("name").is_some_and(|n| !n.is_empty()) {
        return named_tunnel_without_certificate();
    }
    let origin = if flags.is_true("hello-world") {
        "hello-world".to_owned()
    } else if flags.is_true("bastion") {
        "bastion".to_owned()
    } else if let Some(url) = flags.get("url") {
        url.to_owned()
    } else {
        eprintln!(
            "You did not specify any valid additional argument to the cloudflared tunnel command."
        );
        eprintln!();
        eprintln!(
            "If you are trying to run a Quick Tunnel then you need to explicitly pass the --url flag."
        );
        return 1;
    };
    record(&serde_json::json!({
        "pid": std::process::id(), "origin": origin, "host_header": flags.get("http-host-header"),
    }));
    if knob("FAKE_CLOUDFLARED_CHILD").is_some() {
        start_child();
    }
    if let Some(secs) = knob("FAKE_CLOUDFLARED_EXIT_AFTER_SECS").and_then(|s| s.parse::<f64>().ok())
    {
        tokio::spawn(exit_after(Duration::from_secs_f64(secs)));
    }
    log("INF", DISCLAIMER);
    log("INF", "Requesting new quick Tunnel on trycloudflare.com...");
    let mode = knob("FAKE_CLOUDFLARED_MODE").unwrap_or_else(|| "ok".into());
    let request = Duration::from_millis(match mode.as_str() {
        "hang" => u64::MAX / 4,
        "dns-timeout" => knob_ms("FAKE_CLOUDFLARED_DNS_TIMEOUT_MS", 10_000),
        _ => knob_ms("FAKE_CLOUDFLARED_REQUEST_MS", 100),
    });
    let timeout = Duration::from_millis(knob_ms("FAKE_CLOUDFLARED_REQUEST_TIMEOUT_MS", 15_000));
    if request >= timeout {
        tokio::time::sleep(timeout).await;
        return bare(
            "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": net/http: timeout awaiting response headers (Client.Timeout exceeded while awaiting headers)",
        );
    }
    tokio::time::sleep(request).await;
    match mode.as_str() {
        "rate-limit" => {
            log(
                "ERR",
                "Error unmarshaling QuickTunnel response: error code: 1015 error=\"invalid character 'e' looking for beginning of value\" status_code=\"429 Too Many Requests\"",
            );
            bare(
                "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value",
            )
        }
        "no-network" => no_network("on 127.0.0.53:53: no such host"),
        "unreachable" => no_network(
            "on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable",
        ),
        "dns-timeout" => {
            no_network("on 127.0.0.1:53: read udp 127.0.0.1:41930->127.0.0.1:53: i/o timeout")
        }
        "uuid" => bare("failed to parse quick Tunnel ID: invalid UUID length: 0"),
        "no-edge" => tunnel(&flags, &origin, config_loaded, Edge::Unreachable).await,
        "no-srv" => tunnel(&flags, &origin, config_loaded, Edge::NoSrv).await,
        _ => tunnel(&flags, &origin, config_loaded, Edge::Reachable).await,
    }
}

/// The quick-tunnel request failing to look up the API's name; `how` is
/// the end of Go's resolver error.
fn no_network(how: &str) -> u8 {
    bare(&format!(
        "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com {how}"
    ))
}

/// Reads `--config`: `Ok(true)` when a non-empty file was loaded. A missing
/// file ends it (exit 1); an empty one is logged and ignored.
fn read_config(flags: &Flags) -> Result<bool, u8> {
    let Some(path) = flags.get("config") else {
        return Ok(false);
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Err(bare(&format!("open {path}: no such file or directory")));
    };
    let content = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if !content {
        log("ERR", &format!("Configuration file {path} was empty"));
    }
    Ok(content)
}

/// `--name`/`TUNNEL_NAME` with no `cert.pem` on this machine.
fn named_tunnel_without_certificate() -> u8 {
    let line = "Cannot determine default origin certificate path. No file cert.pem in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]. You need to specify the origin certificate path by specifying the origincert option in the configuration file, or set TUNNEL_ORIGIN_CERT environment variable originCertPath=";
    log("ERR", line);
    log("ERR", line);
    bare(
        "failed to create tunnel: couldn't create client to talk to Cloudflare Tunnel backend: Error locating origin cert: client didn't specify origincert path",
    )
}

/// What the metrics server serves.
struct State {
    /// The quick tunnel's hostname; empty for a named tunnel.
    hostname: String,
    connector: String,
    /// What `/config` serves: the ingress rules of a named tunnel.
    config: Option<String>,
    ready: AtomicBool,
    /// Whether an edge connection was ever registered (for the shutdown).
    connected: AtomicBool,
}

/// How this process reaches the edge.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Quic,
    Http2,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Http2 => "http2",
        }
    }
}

/// How the edge can be reached, after the URL box.
#[derive(Clone, Copy, PartialEq)]
enum Edge {
    /// By the protocols the network lets through.
    Reachable,
    /// By no protocol: every dial fails, forever.
    Unreachable,
    /// Not even found: its SRV lookup fails, and cloudflared exits.
    NoSrv,
}

/// The tunnel exists: print the box, serve metrics, connect (or retry
/// forever), run the pre-checks, and wait for a signal.
async fn tunnel(flags: &Flags, origin: &str, config_loaded: bool, edge: Edge) -> u8 {
    let hostname = random_hostname();
    let url = format!("https://{hostname}");
    let heading = if knob("FAKE_CLOUDFLARED_OLD_BOX").is_some() {
        OLD_HEADING
    } else {
        NEW_HEADING
    };
    log_table(&[heading, &url], None);
    let transport = match flags.get("protocol") {
        Some("http2") => Transport::Http2,
        _ => Transport::Quic,
    };
    record(&serde_json::json!({
        "pid": std::process::id(), "url": url, "protocol": transport.name(), "at_ms": now_ms(),
    }));
    let state = Arc::new(State {
        hostname,
        connector: uuid(),
        config: None,
        ready: AtomicBool::new(false),
        connected: AtomicBool::new(false),
    });
    print_start_lines(flags, &state, config_loaded, transport, origin);
    if edge == Edge::NoSrv {
        edge_not_found();
    }
    if knob("FAKE_CLOUDFLARED_NO_METRICS").is_none() {
        let requested = flags.get("metrics").unwrap_or("localhost:0");
        let Some(listener) = bind_metrics(requested).await else {
            let why = format!(
                "failed to bind to address ({requested}): listen tcp {requested}: bind: address already in use"
            );
            log(
                "ERR",
                &format!("Error opening metrics server listener error=\"{why}\""),
            );
            return bare(&format!("Error opening metrics server listener: {why}"));
        };
        let addr = listener.local_addr().expect("bound address");
        log("INF", &format!("Starting metrics server on {addr}/metrics"));
        tokio::spawn(serve_metrics(listener, state.clone()));
    }
    if edge == Edge::NoSrv {
        return shut_down_without_edge().await;
    }
    let no_edge = edge == Edge::Unreachable;
    let udp_blocked = knob("FAKE_CLOUDFLARED_UDP").as_deref() == Some("blocked");
    let blocked = no_edge || (udp_blocked && transport == Transport::Quic);
    if !flags.is_true("no-prechecks") {
        let transports_fail = (udp_blocked || no_edge, no_edge);
        tokio::spawn(prechecks(transports_fail, transport));
    }
    let timeline = async {
        if !blocked {
            connect(&state, transport).await
        } else if transport == Transport::Quic {
            retry_quic_forever().await
        } else {
            retry_http2_forever().await
        }
    };
    tokio::select! {
        _ = timeline => unreachable!("the timeline never ends"),
        code = until_signalled(&state, flags) => code,
    }
}

/// The SRV name of the edge, which cloudflared looks up to find it.
const EDGE_SRV: &str = "_v2-origintunneld._tcp.argotunnel.com";
/// Go's resolver failing to find the SRV record, as the real one logs it
/// with a local resolver that knows no such name.
fn srv_lookup_error() -> String {
    format!("lookup {EDGE_SRV} on 127.0.0.1:53: no such host")
}

/// What cloudflared logs when DNS cannot find the edge: the features
/// lookup fails (it reads them from DNS too), then edge discovery, with
/// its advice.
fn edge_not_found() {
    log(
        "ERR",
        "Failed to fetch features, default to disable error=\"lookup cfd-features.argotunnel.com on 127.0.0.1:53: no such host\"",
    );
    log("WRN", "Unable to lookup protocol percentage.");
    let advice = [
        "Please try the following things to diagnose this issue:",
        "  1. ensure that argotunnel.com is returning \"origintunneld\" service records.",
        "     Run your system's equivalent of: dig srv _origintunneld._tcp.argotunnel.com",
        "  2. ensure that your DNS resolver is not returning compressed SRV records.",
        "     See GitHub issue https://github.com/golang/go/issues/27546",
        "     For example, you could use Cloudflare's 1.1.1.1 as your resolver:",
        "     https://developers.cloudflare.com/1.1.1.1/setting-up-1.1.1.1/",
    ];
    log(
        "ERR",
        &format!(
            "edge discovery: error looking up Cloudflare edge IPs: the DNS query failed error=\"{}\" event=0",
            srv_lookup_error()
        ),
    );
    for line in advice {
        log("ERR", &format!("{line} event=0"));
    }
}

/// Without an edge, cloudflared shuts down by itself, about a second after
/// the URL box: exit 1, the reason last.
async fn shut_down_without_edge() -> u8 {
    sleep_ms(knob_ms("FAKE_CLOUDFLARED_SRV_EXIT_MS", 1000)).await;
    let reason = format!(
        "Could not lookup srv records on {EDGE_SRV}: {}",
        srv_lookup_error()
    );
    log("INF", "Tunnel server stopped");
    log("ERR", &format!("Initiating shutdown error=\"{reason}\""));
    log("INF", "Metrics server stopped");
    bare(&reason)
}

/// The lines between the box and the first connection, in cloudflared's order.
fn print_start_lines(
    flags: &Flags,
    state: &State,
    config_loaded: bool,
    transport: Transport,
    origin: &str,
) {
    if !config_loaded {
        log("INF", NO_CONFIG);
    }
    log(
        "INF",
        "Version 2026.8.2 (Checksum 4f1c9a0e5b7d3c2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a)",
    );
    log("INF", "GOOS: linux, GOVersion: go1.26.4, GoArch: amd64");
    let mut settings = flags.settings.clone();
    settings.insert("ha-connections".into(), "1".into());
    settings
        .entry("protocol".into())
        .or_insert_with(|| transport.name().into());
    let map: Vec<String> = settings.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    log("INF", &format!("Settings: map[{}]", map.join(" ")));
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, v)| format!("{k}={v}").contains("TUNNEL_"))
        .collect();
    env.sort();
    if !env.is_empty() {
        let entries: Vec<String> = env.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        log(
            "INF",
            &format!("Environmental variables map[{}]", entries.join(" ")),
        );
    }
    log(
        "INF",
        &format!("Generated Connector ID: {}", state.connector),
    );
    log("INF", &format!("Initial protocol {}", transport.name()));
    if origin == "hello-world" {
        log("INF", "Starting Hello World server at 127.0.0.1:41789");
    }
    log("INF", "ICMP proxy will use 10.0.0.5 as source for IPv4");
    log(
        "INF",
        "ICMP proxy will use fe80::1 in zone eth0 as source for IPv6",
    );
}

fn curve_line() -> String {
    format!(
        "Tunnel connection curve preferences: [X25519MLKEM768 CurveID(65074) CurveP256] connIndex=0 event=0 ip={EDGE_IP}"
    )
}

fn registered_line(transport: Transport) -> String {
    format!(
        "Registered tunnel connection connIndex=0 connection={} event=0 ip={EDGE_IP} location=sjc08 protocol={}",
        uuid(),
        transport.name()
    )
}

/// Registers after the delay; then maybe a connection that drops and comes
/// back, or one lost for good. Never ends.
async fn connect(state: &State, transport: Transport) {
    log("INF", &curve_line());
    tokio::time::sleep(timing::register_delay()).await;
    log("INF", &registered_line(transport));
    state.ready.store(true, Ordering::SeqCst);
    state.connected.store(true, Ordering::SeqCst);
    if let Some(ms) = knob("FAKE_CLOUDFLARED_DROP_AFTER_MS").and_then(|s| s.parse().ok()) {
        sleep_ms(ms).await;
        state.ready.store(false, Ordering::SeqCst);
        lose_connection(transport);
        let outage = Duration::from_millis(knob_ms("FAKE_CLOUDFLARED_RECONNECT_MS", 1000));
        let tries = timing::reconnect_tries(outage);
        for (at, (ceiling, wait)) in tries.iter().enumerate() {
            if at > 0 {
                fail_to_dial(transport, "connect: connection refused");
            }
            log(
                "INF",
                &format!(
                    "Retrying connection in up to {} {}",
                    go_duration(*ceiling),
                    edge_fields()
                ),
            );
            tokio::time::sleep(*wait).await;
        }
        log("INF", &curve_line());
        log("INF", &registered_line(transport));
        state.ready.store(true, Ordering::SeqCst);
    }
    if let Some(ms) = knob("FAKE_CLOUDFLARED_UNREADY_AFTER_MS").and_then(|s| s.parse().ok()) {
        sleep_ms(ms).await;
        state.ready.store(false, Ordering::SeqCst);
        retry_quic_forever().await;
    }
    std::future::pending().await
}

/// The fields cloudflared logs with each line about the edge connection.
fn edge_fields() -> String {
    format!("connIndex=0 event=0 ip={EDGE_IP}")
}

/// What cloudflared logs when a registered connection is lost.
fn lose_connection(transport: Transport) {
    let fields = edge_fields();
    match transport {
        Transport::Quic => {
            let failure = "accept stream listener encountered a failure while serving";
            log(
                "ERR",
                &format!(
                    "failed to accept incoming stream requests error=\"failed to accept QUIC stream: timeout: no recent network activity\" {fields}"
                ),
            );
            log(
                "ERR",
                &format!("failed to serve tunnel connection error=\"{failure}\" {fields}"),
            );
            log(
                "ERR",
                &format!("Serve tunnel error error=\"{failure}\" {fields}"),
            );
        }
        Transport::Http2 => {
            log("INF", "Lost connection with the edge connIndex=0");
            log(
                "WRN",
                &format!("Serve tunnel error error=\"connection with edge closed\" {fields}"),
            );
            log(
                "ERR",
                "Connection terminated error=\"connection with edge closed\" connIndex=0",
            );
        }
    }
}

/// What cloudflared logs for a dial that fails; `http2_cause` is how a
/// TCP dial fails (`i/o timeout` where it is blocked, `connect: connection
/// refused` where nothing listens).
fn fail_to_dial(transport: Transport, http2_cause: &str) {
    let fields = edge_fields();
    let line = match transport {
        Transport::Quic => format!(
            "Failed to dial a quic connection error=\"failed to dial to edge with quic: timeout: no recent network activity\" {fields}"
        ),
        Transport::Http2 => format!(
            "Unable to establish connection with Cloudflare edge error=\"DialContext error: dial tcp {EDGE_IP}:7844: {http2_cause}\" {fields}"
        ),
    };
    log("ERR", &line);
}

/// What cloudflared does when QUIC cannot reach the edge: retry, forever,
/// with the backoff it logs (`up to 2s, 4s … 1m4s`).
async fn retry_quic_forever() {
    retry_forever(Transport::Quic).await
}

/// The same over HTTP/2, where TCP 7844 is blocked too.
async fn retry_http2_forever() {
    retry_forever(Transport::Http2).await
}

/// Dials that fail (a QUIC one after its timeout), each followed by a
/// retry after a growing pause, forever.
async fn retry_forever(transport: Transport) {
    let mut ceiling = Duration::from_secs(2);
    loop {
        if transport == Transport::Quic {
            tokio::time::sleep(timing::quic_dial_timeout()).await;
        }
        fail_to_dial(transport, "i/o timeout");
        log(
            "INF",
            &format!(
                "Retrying connection in up to {} {}",
                go_duration(ceiling),
                edge_fields()
            ),
        );
        tokio::time::sleep(timing::retry_pause(ceiling)).await;
        ceiling = (ceiling * 2).min(Duration::from_secs(64));
    }
}

/// The connectivity pre-checks table, when its probes are done. `fails`:
/// (UDP fails, TCP fails).
async fn prechecks(fails: (bool, bool), transport: Transport) {
    tokio::time::sleep(timing::prechecks_after()).await;
    let (udp_fails, tcp_fails) = fails;
    let mut rows: Vec<[String; 4]> = Vec::new();
    for region in REGIONS {
        rows.push([
            "DNS Resolution".into(),
            region.into(),
            "PASS".into(),
            "DNS Resolved successfully".into(),
        ]);
    }
    for region in REGIONS {
        rows.push(match udp_fails {
            true => [
                "UDP Connectivity".into(),
                region.into(),
                "FAIL".into(),
                "QUIC connection failed".into(),
            ],
            false => [
                "UDP Connectivity".into(),
                region.into(),
                "PASS".into(),
                "QUIC connection successful".into(),
            ],
        });
    }
    for region in REGIONS {
        rows.push(match tcp_fails {
            true => [
                "TCP Connectivity".into(),
                region.into(),
                "FAIL".into(),
                "HTTP/2 connection is blocked or unreachable".into(),
            ],
            false => [
                "TCP Connectivity".into(),
                region.into(),
                "PASS".into(),
                "HTTP/2 connection successful".into(),
            ],
        });
    }
    rows.push([
        "Cloudflare API".into(),
        "api.cloudflare.com:443".into(),
        "PASS".into(),
        "API is reachable".into(),
    ]);
    let mut lines = tabulate(
        &[["COMPONENT", "TARGET", "STATUS", "DETAILS"].map(String::from)],
        &rows,
    );
    let hard = udp_fails && tcp_fails;
    let prefix = if hard { "ERROR" } else { "WARNING" };
    for _ in REGIONS.iter().filter(|_| udp_fails) {
        lines.push(format!(
            "{prefix}: Allow outbound QUIC traffic on port 7844 or use HTTP2."
        ));
    }
    for _ in REGIONS.iter().filter(|_| tcp_fails) {
        lines.push(format!("{prefix}: Allow outbound TCP on port 7844."));
    }
    lines.push(String::new());
    lines.push(match (hard, udp_fails || tcp_fails) {
        (true, _) => "SUMMARY: Environment has critical failures. cloudflared may not be able to establish a tunnel.".into(),
        (false, true) => "SUMMARY: Environment ready with degraded transport. cloudflared will proceed using 'http2'.".into(),
        (false, false) => format!("SUMMARY: Environment is healthy. cloudflared will use '{}' as primary protocol.", transport.name()),
    });
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    log_table(&refs, Some("CONNECTIVITY PRE-CHECKS"));
    let run_id = uuid();
    for [component, target, status, details] in &rows {
        log(
            "INF",
            &format!(
                "precheck component=\"{component}\" details=\"{details}\" run_id={run_id} status={} target={target}",
                status.to_lowercase()
            ),
        );
    }
    let suggested = if udp_fails { "http2" } else { transport.name() };
    log(
        "INF",
        &format!(
            "precheck complete hard_fail={hard} run_id={run_id} suggested_protocol={suggested}"
        ),
    );
}

/// Go's tabwriter with padding 2: every column but the last padded to its
/// widest cell plus two spaces.
fn tabulate(head: &[[String; 4]], rows: &[[String; 4]]) -> Vec<String> {
    let all: Vec<&[String; 4]> = head.iter().chain(rows).collect();
    let widths: Vec<usize> = (0..3)
        .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0) + 2)
        .collect();
    all.iter()
        .map(|r| {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                line.push_str(&format!("{:<width$}", r[c]));
            }
            line.push_str(&r[3]);
            line
        })
        .collect()
}

/// Waits for SIGTERM or SIGINT and shuts down gracefully (exit 0): while
/// connected, it waits out the grace period; a second signal kills it at
/// once. Unless told to ignore signals.
async fn until_signalled(state: &State, flags: &Flags) -> u8 {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let grace = flags
        .get("grace-period")
        .and_then(parse_duration)
        .unwrap_or(Duration::from_secs(30));
    loop {
        let name = tokio::select! {
            _ = term.recv() => "terminated",
            _ = int.recv() => "interrupt",
        };
        log(
            "INF",
            &format!("Initiating graceful shutdown due to signal {name} ..."),
        );
        if knob("FAKE_CLOUDFLARED_IGNORE_TERM").is_some() {
            continue;
        }
        if state.connected.load(Ordering::SeqCst) {
            state.ready.store(false, Ordering::SeqCst);
            log(
                "INF",
                &format!("Unregistered tunnel connection connIndex=0 event=0 ip={EDGE_IP}"),
            );
            let second = async {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            };
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                () = second => {
                    record_exit(-9);
                    let me = rustix::process::Pid::from_raw(std::process::id() as i32).expect("a pid");
                    let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
                }
            }
            log("ERR", "Connection terminated connIndex=0");
            log("ERR", "no more connections active and exiting");
        }
        log("INF", "Tunnel server stopped");
        log("INF", "Metrics server stopped");
        return 0;
    }
}

/// `--metrics`: `localhost:0` (the default) tries 20241–20245, then any
/// port; anything else is bound as it is.
async fn bind_metrics(requested: &str) -> Option<TcpListener> {
    if requested == "localhost:0" {
        for port in (20241..=20245).chain([0]) {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                return Some(listener);
            }
        }
        return None;
    }
    let addr: SocketAddr = requested.parse().ok()?;
    TcpListener::bind(addr).await.ok()
}

async fn serve_metrics(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(answer(stream, state.clone()));
    }
}

async fn answer(mut stream: TcpStream, state: Arc<State>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let path = String::from_utf8_lossy(&request)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let (status, body) = route(&path, &state);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

fn route(path: &str, state: &State) -> (&'static str, String) {
    match path {
        "/quicktunnel" => ("200 OK", format!("{{\"hostname\":\"{}\"}}", state.hostname)),
        "/ready" if state.ready.load(Ordering::SeqCst) => (
            "200 OK",
            format!(
                "{{\"status\":200,\"readyConnections\":1,\"connectorId\":\"{}\"}}",
                state.connector
            ),
        ),
        "/ready" => (
            "503 Service Unavailable",
            format!(
                "{{\"status\":503,\"readyConnections\":0,\"connectorId\":\"{}\"}}",
                state.connector
            ),
        ),
        "/healthcheck" => ("200 OK", "OK\n".to_owned()),
        "/config" if state.config.is_some() => ("200 OK", state.config.clone().unwrap_or_default()),
        _ => ("404 Not Found", "404 page not found\n".to_owned()),
    }
}

async fn exit_after(delay: Duration) {
    tokio::time::sleep(delay).await;
    let code = knob("FAKE_CLOUDFLARED_EXIT_CODE")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    bare(&format!(
        "fake cloudflared: exiting with code {code} as FAKE_CLOUDFLARED_EXIT_AFTER_SECS asks"
    ));
    record_exit(code);
    std::process::exit(code);
}

/// A `sleep` in our process group, as a helper cloudflared started would be.
/// Never waited for: it is meant to outlive us unless our group is killed.
#[allow(clippy::zombie_processes)]
fn start_child() {
    let child = std::process::Command::new("sleep")
        .arg("300")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("sleep starts");
    record(&serde_json::json!({ "pid": std::process::id(), "child": child.id() }));
}

/// cloudflared's `LogTable`: a box of INF lines, padding 2, an optional
/// centred title under its own border.
fn log_table(rows: &[&str], title: Option<&str>) {
    let width = rows
        .iter()
        .copied()
        .chain(title)
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0);
    let border = format!("+{}+", "-".repeat(width + 4));
    log("INF", &border);
    if let Some(title) = title {
        let inner = width + 4;
        let left = (inner - title.chars().count()) / 2;
        let right = inner - title.chars().count() - left;
        log(
            "INF",
            &format!("|{}{title}{}|", " ".repeat(left), " ".repeat(right)),
        );
        log("INF", &border);
    }
    for row in rows {
        let pad = width - row.chars().count();
        log("INF", &format!("|  {row}{}  |", " ".repeat(pad)));
    }
    log("INF", &border);
}

/// A log line as zerolog writes it without a TTY: console or JSON.
fn log(level: &str, message: &str) {
    let logger = LOGGER.get();
    let rank = match level {
        "DBG" => 0,
        "INF" => 1,
        "WRN" => 2,
        _ => 3,
    };
    if logger.is_some_and(|l| rank < l.threshold) {
        return;
    }
    let time = drop_registry::now_rfc3339();
    if logger.is_some_and(|l| l.json) {
        let name = match level {
            "DBG" => "debug",
            "INF" => "info",
            "WRN" => "warn",
            _ => "error",
        };
        let line = serde_json::json!({ "level": name, "message": message, "time": time });
        eprintln!("{line}");
    } else {
        eprintln!("{time} {level} {message}");
    }
}

/// An error as cloudflared prints it before exiting: no timestamp, exit 1.
fn bare(message: &str) -> u8 {
    eprintln!("{message}");
    1
}

fn record(value: &serde_json::Value) {
    let Some(path) = knob("FAKE_CLOUDFLARED_RECORD") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("record file");
    // One write of the whole line: fakes running at once share the file,
    // and appends of separate pieces could interleave.
    let line = format!("{value}\n");
    file.write_all(line.as_bytes()).expect("record written");
}

/// Records how and when this process ended (`-9`: killed by a second signal).
fn record_exit(code: i32) {
    let after = STARTED.get().map_or(0, |s| s.elapsed().as_millis() as u64);
    record(&serde_json::json!({ "pid": std::process::id(), "exit": code, "after_ms": after }));
}

fn knob(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn knob_ms(name: &str, default: u64) -> u64 {
    knob(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration` for what callers pass: a sequence of numbers
/// with units `ms`, `s`, `m`, `h` (`1m30s`, `2500ms`, `0`).
fn parse_duration(value: &str) -> Option<Duration> {
    if value == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = value;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let (unit, seconds) = [("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0)]
            .into_iter()
            .find(|(unit, _)| rest.starts_with(unit))?;
        total += number * seconds;
        rest = &rest[unit.len()..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Go's `Duration.String()` for whole milliseconds: `2s`, `1.5s`, `1m4s`, `0s`.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (minutes, rest_ms) = (ms / 60_000, ms % 60_000);
    let seconds = if rest_ms % 1000 == 0 {
        format!("{}s", rest_ms / 1000)
    } else {
        format!("{}s", rest_ms as f64 / 1000.0)
    };
    match minutes {
        0 => seconds,
        m => format!("{m}m{seconds}"),
    }
}

/// `<w1>-<w2>-<w3>-<w4>.trycloudflare.com`, as the quick-tunnel service picks.
fn random_hostname() -> String {
    let words: Vec<&str> = (0..4)
        .map(|_| WORDS[random() as usize % WORDS.len()])
        .collect();
    format!("{}.trycloudflare.com", words.join("-"))
}

fn uuid() -> String {
    let hex = format!("{:016x}{:016x}", random(), random());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A random number: std's hasher keys are random per process.
fn random() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::hash::RandomState::new().hash_one((n, SystemTime::now()))
}

/// Milliseconds since the epoch, as records note when something happened.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
