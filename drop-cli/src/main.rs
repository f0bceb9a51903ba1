//! `drop`: one command turns a file, a folder or a web app into a URL.
//!
//! This binary reads argv, prints, decides exit codes and talks to systemd
//! and to the daemon; what runs for long is drop-core's. This file is the
//! composition root: the only place that names the real tunnel provider.

mod add;
mod apps;
mod context;
mod control;
mod doctor;
mod error;
mod folder_check;
mod mcp;
mod names;
mod nat;
mod output;
mod pages;
mod plural;
mod qr;
mod running;
mod serve;
mod server;
mod server_view;
mod settings;
mod systemd;
#[cfg(test)]
mod test_home;
mod tunnel;
mod urls;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use drop_core::daemon::DEFAULT_PORT;
use drop_core::supervise::{PublicChecker, QuickTunnels, SystemRunner, TunnelSource};
use drop_registry::{Home, TunnelProtocol};
use drop_tunnel::{Cloudflared, OriginHost, Protocol};

use crate::context::Context;
use crate::error::CliError;
use crate::output::{Output, escaped};
use crate::settings::{DEFAULT_BIND, Settings};

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
    #[command(override_usage = "drop add <PATH> [OPTIONS]")]
    Add {
        // Optional to clap only, so that a path `--password` took as its
        // value is told as such (`check_usage`).
        /// The file or folder (required).
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
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
        /// Send the app the public hostname as `Host` through its tunnel
        /// (by default it gets `localhost:PORT`, which dev servers accept).
        #[arg(long, requires = "run")]
        keep_host: bool,
        /// Send the app `localhost:PORT` as `Host` again.
        #[arg(long, requires = "run", conflicts_with = "keep_host")]
        no_keep_host: bool,
        /// Protect the page: with PASS (8 characters or more), that
        /// password; alone, a generated one that is printed once, unless
        /// the page has one already, which it keeps. Put it after the path.
        #[arg(long, value_name = "PASS", num_args = 0..=1, default_missing_value = "")]
        password: Option<String>,
        /// Replace the page's password with a new generated one, printed
        /// once (visitors signed in with the old one must sign in again).
        #[arg(long, conflicts_with_all = ["password", "no_password"])]
        new_password: bool,
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
        /// Publish what looks like a secret (a private key, a credentials
        /// file, a file of ~/.ssh…), which drop otherwise refuses.
        #[arg(long)]
        allow_secret: bool,
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
        /// Give up after this span (30s, 1m, 2h) with a non-zero exit
        /// (`not_opened`); without it, wait until the page is opened.
        #[arg(long, value_name = "SPAN")]
        timeout: Option<String>,
        /// Return at once if it was opened at any time since it was published.
        #[arg(long)]
        since_publish: bool,
    },
    /// Serve drop's tools to a coding agent over MCP on stdin/stdout (the
    /// agent starts it: `claude mcp add drop -- drop mcp`).
    Mcp,
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
    let args = match Args::try_parse().and_then(check_usage) {
        Ok(args) => args,
        Err(usage) => return usage_error(usage),
    };
    let out = match args.json {
        true => Output::json(),
        false => Output::text(),
    };
    let home = Home::new(args.home.clone().unwrap_or_else(default_home));
    let serving = matches!(args.command, Command::Serve { .. });
    let result = run_in_home(&home, &out, args.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            print_error(&err, &out);
            if serving && !out.is_json() {
                // For the `drop start` that launched it and reads its log:
                // the error with its code, which no text is parsed for.
                eprintln!("{}", err.to_json());
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` in `home`. A home that is not the user's alone is
/// refused whole, first: before anything reads its files as drop's own
/// (a pid to signal, a log to print).
fn run_in_home(home: &Home, out: &Output, command: Command) -> Result<(), CliError> {
    home.check_owned()?;
    let serving = matches!(command, Command::Serve { .. });
    let result = settings_for(&command).and_then(|settings| {
        let ctx = Context {
            home: home.clone(),
            settings,
            out: out.clone(),
        };
        run(&ctx, command)
    });
    if !serving {
        print_notices(home);
    }
    result
}

/// The settings `command` runs with. A command that starts or configures
/// something refuses a bad `DROP_*` value; the others say it once, on
/// stderr, and run with its default: a typo in an unrelated variable never
/// keeps anyone from stopping the server or reading a log.
fn settings_for(command: &Command) -> Result<Settings, CliError> {
    let read = Settings::from_env();
    if command.configures() {
        return read.strict();
    }
    for problem in &read.problems {
        eprintln!("Note: {problem} (ignored here: this command runs with the default)");
    }
    Ok(read.settings)
}

impl Command {
    /// Whether it starts or configures something with the settings: the
    /// server, an app, the MCP server, a named tunnel.
    fn configures(&self) -> bool {
        match self {
            Command::Start { .. } | Command::Serve { .. } | Command::Mcp => true,
            Command::Add { run, .. } => run.is_some(),
            Command::Tunnel { command } => matches!(command, TunnelCommand::Setup { .. }),
            Command::Stop { .. }
            | Command::Logs { .. }
            | Command::Doctor { .. }
            | Command::Status
            | Command::List { .. }
            | Command::Remove { .. }
            | Command::Cleanup { .. }
            | Command::Qr { .. }
            | Command::Wait { .. } => false,
        }
    }
}

/// What clap cannot say by itself: `drop add` without a path, where
/// `--password` (whose value is optional) took the path as its value.
fn check_usage(args: Args) -> Result<Args, clap::Error> {
    use clap::CommandFactory;
    let Command::Add {
        path: None,
        password,
        ..
    } = &args.command
    else {
        return Ok(args);
    };
    // The value is named only when it is a path that exists: a password
    // given as `--password=PASS` is never printed back.
    let taken_path = password
        .as_deref()
        .filter(|p| !p.is_empty() && std::path::Path::new(p).exists());
    let message = match taken_path {
        Some(taken) => format!(
            "no path to publish: --password took `{taken}` as the password. Put the path first ('drop add {} --password'), or write the password as --password=PASS",
            output::shell_word(std::path::Path::new(taken))
        ),
        None => "no path to publish: give the file or folder ('drop add <PATH>')".to_owned(),
    };
    let mut command = Args::command();
    command.build();
    let add = command
        .find_subcommand_mut("add")
        .expect("add is a command");
    Err(add.error(clap::error::ErrorKind::MissingRequiredArgument, message))
}

/// The error as one `Error:` line and its causes, or under `--json` as
/// one JSON object on one line: `{"error": {"code", "message", "causes"}}`.
fn print_error(err: &CliError, out: &Output) {
    let doc = err.to_json();
    if out.is_json() {
        eprintln!("{doc}");
        return;
    }
    eprintln!("Error: {}", escaped(err.message()));
    for cause in doc["error"]["causes"].as_array().into_iter().flatten() {
        eprintln!(
            "  caused by: {}",
            escaped(cause.as_str().unwrap_or_default())
        );
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
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational {
        usage.exit();
    }
    if usage.kind() == ErrorKind::MissingSubcommand {
        // `drop` alone: the help, which lists the commands (clap's own
        // message would list the hidden `serve` too).
        use clap::CommandFactory;
        if wants_json {
            let doc = serde_json::json!({
                "error": { "code": "usage", "message": "no command given: 'drop --help' lists them", "causes": [] }
            });
            eprintln!("{doc}");
        } else {
            eprint!("{}", Args::command().render_help());
        }
        return ExitCode::from(2);
    }
    let text = usage.render().to_string();
    if !wants_json {
        // Every error of drop's begins `Error:`; clap's own begin `error:`.
        let text = text.strip_prefix("error: ").unwrap_or(&text);
        eprint!("Error: {}", escaped(text));
        return ExitCode::from(2);
    }
    // What clap says before its usage line: the first line and what it
    // lists under it (the missing arguments…).
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

fn run(ctx: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Start { app: Some(app), .. } => apps::start(ctx, &app),
        Command::Start {
            app: None,
            port,
            host,
            tunnel,
            no_tunnel,
        } => {
            let tunnel = either_flag(tunnel, no_tunnel);
            server::start(ctx, server::StartOptions { port, host, tunnel })
        }
        Command::Stop { app: Some(app), .. } => apps::stop(ctx, &app),
        Command::Stop { app: None, all } => apps::stop_all(ctx, all),
        Command::Logs { app, lines, follow } => apps::logs(ctx, &app, lines, follow),
        Command::Status => pages::status(ctx),
        Command::Doctor { page } => doctor::doctor(ctx, page.as_deref()),
        Command::Add {
            path,
            name,
            description,
            run,
            port,
            restart,
            keep_host,
            no_keep_host,
            password,
            new_password,
            no_password,
            expires,
            once,
            no_once,
            qr,
            allow_secret,
        } => {
            let path = path.expect("check_usage refuses an add without a path");
            let details = add::Details {
                name,
                description,
                password,
                new_password,
                no_password,
                expires,
                once,
                no_once,
                qr,
                allow_secret,
            };
            match (run, port) {
                (Some(run), Some(port)) => {
                    let app = add::AppCommand {
                        run,
                        port,
                        restart,
                        keep_host: either_flag(keep_host, no_keep_host),
                    };
                    add::add_app(ctx, &path, details, app)
                }
                _ => add::add(ctx, &path, details),
            }
        }
        Command::List { all } => pages::list(ctx, all),
        Command::Remove { pages, all } => {
            let what = match all {
                true => pages::RemoveWhat::All,
                false => pages::RemoveWhat::Pages(&pages),
            };
            pages::remove(ctx, what)
        }
        Command::Cleanup { unopened } => pages::cleanup(ctx, unopened.as_deref()),
        Command::Qr { page } => pages::qr(ctx, &page),
        Command::Wait {
            page,
            timeout,
            since_publish,
        } => pages::wait(ctx, &page, timeout.as_deref(), since_publish),
        Command::Tunnel { command } => match command {
            TunnelCommand::Setup {
                hostname,
                name,
                replace_dns,
            } => tunnel::setup(ctx, &hostname, name.as_deref(), replace_dns),
            TunnelCommand::Status => tunnel::status(ctx),
            TunnelCommand::Reset => tunnel::reset(ctx),
        },
        Command::Mcp => mcp::serve(ctx),
        Command::Serve { port, host, bind } => {
            serve::serve(ctx, port, host, bind, daemon_parts(ctx)?)
        }
    }
}

/// A `--x` / `--no-x` pair (clap keeps them exclusive): `Some(true)`,
/// `Some(false)`, or `None` when neither was given.
fn either_flag(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
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

/// What the daemon reaches the outside world through: cloudflared for
/// tunnels (the user's named tunnel when one is set up, else quick tunnels;
/// over HTTP/2 from the start on a network where QUIC was found blocked),
/// `sh` for apps, public DNS-over-HTTPS and the edge for checking tunnel
/// URLs (or where `DROP_DOH_URLS`, `DROP_TUNNEL_EDGE` say).
fn daemon_parts(ctx: &Context) -> Result<serve::DaemonParts, CliError> {
    let network = drop_nat::outward_ip().map(|ip| ip.to_string());
    let mut config = ctx.cloudflared();
    let notes = ctx.home.load_network_notes().unwrap_or_default();
    let noted = network
        .as_ref()
        .and_then(|n| notes.get(n))
        .and_then(|note| note.tunnel_protocol.clone());
    if noted == Some(TunnelProtocol::Http2) {
        config.protocol = Some(Protocol::Http2);
    }
    let tunnels = match tunnel::named_tunnel_access(ctx, config.clone())? {
        Some(named) => TunnelSource::Named(named),
        None => {
            // drop's page server gets the public hostname (its login form
            // checks it); apps get `localhost:PORT` unless added with
            // --keep-host: dev servers refuse hosts they do not know.
            let public_host = Cloudflared::new(config);
            TunnelSource::Quick(QuickTunnels {
                localhost: Arc::new(public_host.sending_host(OriginHost::Localhost)),
                public_host: Arc::new(public_host),
            })
        }
    };
    Ok(serve::DaemonParts {
        tunnels,
        runner: Arc::new(SystemRunner),
        network,
        links: Arc::new(PublicChecker::new(ctx.settings.links.clone())),
    })
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
