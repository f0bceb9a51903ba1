//! `drop`: one command turns a file, a folder or a web app into a URL.
//!
//! This binary reads argv, prints, decides exit codes and talks to systemd
//! and to the daemon; what runs for long is drop-core's. This file is the
//! composition root: the only place that names the real tunnel provider.

mod add;
mod apps;
mod control;
mod doctor;
mod error;
mod folder_check;
mod names;
mod nat;
mod output;
mod pages;
mod qr;
mod running;
mod serve;
mod server;
mod server_view;
mod settings;
mod systemd;
mod tunnel;
mod urls;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use drop_core::daemon::DEFAULT_PORT;
use drop_core::supervise::{PublicChecker, SystemRunner, TunnelSource};
use drop_registry::{Home, TunnelProtocol};
use drop_tunnel::{Cloudflared, CloudflaredConfig, Protocol};

use crate::error::CliError;
use crate::settings::{DEFAULT_BIND, Settings};

/// How long a tunnel process gets between SIGTERM and SIGKILL when the
/// daemon closes it.
const TUNNEL_STOP_GRACE: Duration = Duration::from_secs(3);

/// Share a file, a folder or a web app at a URL.
#[derive(Debug, Parser)]
#[command(name = "drop", version, about, propagate_version = true)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Directory holding the registry and logs [default: ~/.drop].
    #[arg(long, env = "DROP_HOME", global = true)]
    home: Option<PathBuf>,
    /// Speak JSON: one document on stdout (one object a line for `logs`),
    /// and an error as a JSON object with a stable `code` on stderr.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum TunnelCommand {
    /// Create (once) a named tunnel in the Cloudflare account of
    /// `cloudflared tunnel login`, route HOSTNAME to it, and serve through
    /// it from the next start.
    Setup {
        /// The hostname pages are served on, in the login's domain.
        #[arg(long)]
        hostname: String,
        /// The tunnel's name in the account [default: the hostname].
        #[arg(long)]
        name: Option<String>,
        /// Point HOSTNAME at this tunnel even if DNS has another record for it.
        #[arg(long)]
        replace_dns: bool,
    },
    /// Which tunnel drop uses, and the named tunnel's details.
    Status,
    /// Back to quick tunnels (the named tunnel stays in the account).
    Reset,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the page server in the background, or a registered app.
    Start {
        /// An app to start (id, name, path it was added from, or id prefix) instead of the server.
        app: Option<String>,
        /// Port to serve on (0 picks a free one) [default: the last one, or 8080].
        #[arg(long, conflicts_with = "app")]
        port: Option<u16>,
        /// Host or IP to put in URLs [default: the last one, or this machine's outward address].
        #[arg(long, conflicts_with = "app")]
        host: Option<String>,
        /// Open a tunnel even with a public IP (until the next `drop start`).
        #[arg(long, conflicts_with_all = ["app", "no_tunnel"])]
        tunnel: bool,
        /// Never open a tunnel (until the next `drop start`).
        #[arg(long, conflicts_with = "app")]
        no_tunnel: bool,
    },
    /// Stop the page server and its tunnels (apps keep running unless --all), or one app.
    Stop {
        /// An app to stop (id, name, path it was added from, or id prefix) instead of the server.
        app: Option<String>,
        /// Stop every running app too.
        #[arg(long, conflicts_with = "app")]
        all: bool,
    },
    /// Show an app's output.
    Logs {
        /// The app (id, name, path it was added from, or id prefix).
        app: String,
        /// How many of the last lines to show.
        #[arg(short = 'n', long = "lines", default_value_t = 50)]
        lines: usize,
        /// Keep printing new output until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Check everything between the human and a page or app (or the
    /// server), one line each with the fix; exit 0 only when the link works.
    Doctor {
        /// The page or app (id, name, path it was added from, or id prefix); the server when left out.
        page: Option<String>,
    },
    /// Show the server's URL and every page and app.
    Status,
    /// Publish a file or a folder (with a .drop-publish manifest), or register an app (--run).
    Add {
        /// The file or folder.
        path: PathBuf,
        /// A slug for the URL, also usable instead of the id.
        #[arg(long)]
        name: Option<String>,
        /// A description shown in listings.
        #[arg(long = "desc")]
        description: Option<String>,
        /// Register an app: the shell command that runs it (needs --port).
        #[arg(long, value_name = "CMD", requires = "port")]
        run: Option<String>,
        /// The port the app listens on (needs --run).
        #[arg(long, value_name = "N", requires = "run")]
        port: Option<u16>,
        /// Apply a new command or port to a running app: stop it, then
        /// start it again.
        #[arg(long, requires = "run", conflicts_with = "json")]
        restart: bool,
        /// Protect the page: with PASS, that password; alone, a generated one
        /// that is printed once. Put it after the path.
        #[arg(long, value_name = "PASS", num_args = 0..=1, default_missing_value = "")]
        password: Option<String>,
        /// Also print the URL as a QR code, to open it on a phone.
        #[arg(long)]
        qr: bool,
        /// Make a page that has a password public again (same URL).
        #[arg(long, conflicts_with = "password")]
        no_password: bool,
        /// Stop serving it after this span (30m, 2h, 7d) or at this RFC 3339
        /// time; the daemon then removes it. `never` takes an end away.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
        /// The link opens for one human once (a link preview does not use it
        /// up); afterwards it answers 404.
        #[arg(long)]
        once: bool,
        /// A one-time page opens for anyone with the link again.
        #[arg(long, conflicts_with = "once")]
        no_once: bool,
    },
    /// List pages published from this folder.
    List {
        /// List every page, wherever it was published from.
        #[arg(long)]
        all: bool,
    },
    /// Unpublish pages (an app is stopped first): by id, id prefix of at
    /// least 4 characters, name, or the path it was published from.
    Remove {
        /// Ids, id prefixes, names or paths.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        pages: Vec<String>,
        /// Remove every page and app.
        #[arg(long)]
        all: bool,
    },
    /// Stop and remove pages and apps whose file or folder is gone, and
    /// pages that expired.
    Cleanup {
        /// Also remove pages no human opened in this span since they were
        /// published (30m, 2h, 7d).
        #[arg(long, value_name = "SPAN")]
        unopened: Option<String>,
    },
    /// Print a page's URL as a QR code, to open it on a phone.
    Qr {
        /// The page or app (id, name, path it was added from, or id prefix).
        page: String,
    },
    /// Wait until a human opens a page, then print who and when.
    Wait {
        /// The page (id, name, path it was added from, or id prefix).
        page: String,
        /// Give up after this span (30s, 10m, 2h) with a non-zero exit.
        #[arg(long, value_name = "SPAN")]
        timeout: Option<String>,
        /// Return at once if it was opened at any time since it was published.
        #[arg(long)]
        since_publish: bool,
    },
    /// Stable links on your own domain: a named Cloudflare tunnel.
    Tunnel {
        #[command(subcommand)]
        command: TunnelCommand,
    },
    /// Run the page server in the foreground (what `start` launches).
    #[command(hide = true)]
    Serve {
        #[arg(long, default_value_t = DEFAULT_PORT)]
        port: u16,
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value = DEFAULT_BIND)]
        bind: String,
    },
}

fn main() -> ExitCode {
    restore_sigpipe();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(usage) => return usage_error(usage),
    };
    output::set_json_mode(args.json);
    let home = Home::new(args.home.clone().unwrap_or_else(default_home));
    let serving = matches!(args.command, Command::Serve { .. });
    let result = run(args);
    if !serving {
        print_notices(&home);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            print_error(&err);
            ExitCode::FAILURE
        }
    }
}

/// The error as one `Error:` line and its causes, or under `--json` as
/// one JSON object on one line: `{"error": {"code", "message", "causes"}}`.
fn print_error(err: &CliError) {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if output::json_mode() {
        let doc = serde_json::json!({
            "error": { "code": err.code(), "message": err.to_string(), "causes": causes }
        });
        eprintln!("{doc}");
        return;
    }
    eprintln!("Error: {err}");
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
}

/// What clap says of a command line it cannot parse (and `--help`,
/// `--version`, which it also ends with). Under `--json`, a usage error is
/// a JSON error like any other, with code `usage`.
fn usage_error(usage: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = std::env::args_os().skip(1).any(|arg| arg == "--json");
    let informational = matches!(
        usage.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if !wants_json || informational {
        usage.exit();
    }
    // What clap says before its usage line: the first line and what it
    // lists under it (the missing arguments…).
    let text = usage.render().to_string();
    let said: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim().is_empty() && !line.starts_with("Usage:"))
        .map(str::trim)
        .collect();
    let message = said.join(" ");
    let message = message.trim_start_matches("error: ");
    let doc = serde_json::json!({
        "error": { "code": "usage", "message": message, "causes": [] }
    });
    eprintln!("{doc}");
    ExitCode::from(2)
}

fn run(args: Args) -> Result<(), CliError> {
    let home = Home::new(args.home.unwrap_or_else(default_home));
    let json = args.json;
    match args.command {
        Command::Start { app: Some(app), .. } => apps::start(&home, &app),
        Command::Start {
            app: None,
            port,
            host,
            tunnel,
            no_tunnel,
        } => {
            let tunnel = match (tunnel, no_tunnel) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            server::start(&home, server::StartOptions { port, host, tunnel })
        }
        Command::Stop { app: Some(app), .. } => apps::stop(&home, &app, &tunnel_marker(&home)),
        Command::Stop { app: None, all } => {
            let marker = tunnel_marker(&home);
            // Apps first, while the daemon that watches them still runs.
            let apps = match all {
                true => apps::stop_every_app(&home, &marker)?,
                false => apps::AppsStopped::default(),
            };
            let stopped = server::stop(&home, &marker)?;
            if json {
                output::print_json(&serde_json::json!({
                    "server_was_running": stopped.was_running,
                    "apps_stopped": apps.ids,
                    "apps_running": stopped.apps_running,
                }));
            }
            match apps.failures.is_empty() {
                true => Ok(()),
                false => Err(CliError::App(apps.failures.join("\n"))),
            }
        }
        Command::Logs { app, lines, follow } => apps::logs(&home, &app, lines, follow),
        Command::Status => pages::status(&home, json),
        Command::Doctor { page } => doctor::doctor(&home, page.as_deref(), json),
        Command::Add {
            path,
            name,
            description,
            run,
            port,
            restart,
            password,
            no_password,
            expires,
            once,
            no_once,
            qr,
        } => {
            let details = add::Details {
                name,
                description,
                password,
                no_password,
                expires,
                once,
                no_once,
                qr,
            };
            match (run, port) {
                (Some(run), Some(port)) => {
                    let app = add::AppCommand { run, port, restart };
                    add::add_app(&home, &path, details, app, json)
                }
                _ => add::add(&home, &path, details, json),
            }
        }
        Command::List { all } => pages::list(&home, all, json),
        Command::Remove { pages, all } => {
            let what = match all {
                true => pages::RemoveWhat::All,
                false => pages::RemoveWhat::Pages(&pages),
            };
            pages::remove(&home, what, &tunnel_marker(&home))
        }
        Command::Cleanup { unopened } => {
            pages::cleanup(&home, &tunnel_marker(&home), unopened.as_deref())
        }
        Command::Qr { page } => pages::qr(&home, &page),
        Command::Wait {
            page,
            timeout,
            since_publish,
        } => pages::wait(&home, &page, timeout.as_deref(), since_publish, json),
        Command::Tunnel { command } => match command {
            TunnelCommand::Setup {
                hostname,
                name,
                replace_dns,
            } => tunnel::setup(
                &home,
                cloudflared_config(&home),
                &hostname,
                name.as_deref(),
                replace_dns,
            ),
            TunnelCommand::Status => tunnel::status(&home, json),
            TunnelCommand::Reset => tunnel::reset(&home),
        },
        Command::Serve { port, host, bind } => serve::serve(&home, port, host, bind, world(&home)?),
    }
}

/// What the daemon left for the user (a password hash it upgraded…), said
/// once, on stderr so that `--json` output stays one document.
fn print_notices(home: &Home) {
    if let Ok(notices) = home.registry().take_notices() {
        for notice in notices {
            eprintln!("Note: {notice}");
        }
    }
}

/// What the daemon of `home` reaches the outside world through: cloudflared
/// for tunnels (the user's named tunnel when one is set up, else quick
/// tunnels; over HTTP/2 from the start on a network where QUIC was found
/// blocked), `sh` for apps, public DNS-over-HTTPS and the edge for
/// checking tunnel URLs (or where `DROP_DOH_URLS`, `DROP_TUNNEL_EDGE` say).
fn world(home: &Home) -> Result<serve::World, CliError> {
    let network = drop_nat::outward_ip().map(|ip| ip.to_string());
    let mut config = cloudflared_config(home);
    let notes = home.load_network_notes().unwrap_or_default();
    let noted = network
        .as_ref()
        .and_then(|n| notes.get(n))
        .and_then(|note| note.tunnel_protocol.clone());
    if noted == Some(TunnelProtocol::Http2) {
        config.protocol = Some(Protocol::Http2);
    }
    let tunnels = match tunnel::named_world(home, config.clone())? {
        Some(named) => TunnelSource::Named(named),
        None => TunnelSource::Quick(Arc::new(Cloudflared::new(config))),
    };
    Ok(serve::World {
        tunnel_marker: tunnel_marker(home),
        tunnels,
        runner: Arc::new(SystemRunner),
        network,
        links: Arc::new(PublicChecker::new(Settings::from_env()?.links)),
    })
}

/// cloudflared as drop runs it: found on `PATH` or in the home's `bin/`
/// (where install.sh puts it), its config and logs in the home's `logs/`.
fn cloudflared_config(home: &Home) -> CloudflaredConfig {
    let mut config = CloudflaredConfig::new(home.logs_dir());
    config.stop_grace = TUNNEL_STOP_GRACE;
    config.fallback_paths = vec![home.root().join("bin").join("cloudflared")];
    config.not_found_hint = Some("Run ./install.sh".into());
    config
}

/// The folder of the `--config` file every tunnel process of `home`
/// carries, quick or named: how leftovers of a killed daemon are found.
fn tunnel_marker(home: &Home) -> PathBuf {
    cloudflared_config(home).state_dir
}

/// Rust ignores SIGPIPE, so `drop status | head -1` would panic on a
/// closed stdout; a command line tool should just end quietly instead.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: resetting a signal's disposition to the default touches no memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn default_home() -> PathBuf {
    let base = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    base.join(".drop")
}
