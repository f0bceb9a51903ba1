//! `drop`: one command turns a file or a folder into a URL.

mod add;
mod control;
mod daemon;
mod error;
mod output;
mod pages;
mod systemd;
mod urls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use drop_registry::Home;

use crate::error::CliError;

/// Share a file, a folder or a web app at a URL.
#[derive(Debug, Parser)]
#[command(name = "drop", version, about, propagate_version = true)]
struct Args {
    #[command(subcommand)]
    command: Command,
    /// Directory holding the registry and logs [default: ~/.drop].
    #[arg(long, env = "DROP_HOME", global = true)]
    home: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the page server in the background.
    Start {
        /// Port to serve on (0 picks a free one) [default: the last one, or 8080].
        #[arg(long)]
        port: Option<u16>,
        /// Host or IP to put in URLs [default: the last one, or this machine's outward address].
        #[arg(long)]
        host: Option<String>,
    },
    /// Stop the page server.
    Stop,
    /// Show the server's URL and every page.
    Status {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Publish a file, or a folder that has a .drop-publish manifest.
    Add {
        /// The file or folder.
        path: PathBuf,
        /// A slug for the URL, also usable instead of the id.
        #[arg(long)]
        name: Option<String>,
        /// A description shown in listings.
        #[arg(long = "desc")]
        description: Option<String>,
        /// Protect the page: with PASS, that password; alone, a generated one
        /// that is printed once. Put it after the path.
        #[arg(long, value_name = "PASS", num_args = 0..=1, default_missing_value = "")]
        password: Option<String>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// List pages published from this folder.
    List {
        /// List every page, wherever it was published from.
        #[arg(long)]
        all: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Unpublish a page, by id, unique id prefix or name.
    Remove {
        /// Id, id prefix or name.
        page: String,
    },
    /// Remove pages whose file or folder is gone.
    Cleanup,
    /// Run the page server in the foreground (what `start` launches).
    #[command(hide = true)]
    Serve {
        #[arg(long, default_value_t = urls::DEFAULT_PORT)]
        port: u16,
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value = daemon::DEFAULT_BIND)]
        bind: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), CliError> {
    let home = Home::new(args.home.unwrap_or_else(default_home));
    match args.command {
        Command::Start { port, host } => daemon::start(&home, port, host),
        Command::Stop => daemon::stop(&home),
        Command::Status { json } => pages::status(&home, json),
        Command::Add {
            path,
            name,
            description,
            password,
            json,
        } => add::add(
            &home,
            &path,
            add::Details {
                name,
                description,
                password,
            },
            json,
        ),
        Command::List { all, json } => pages::list(&home, all, json),
        Command::Remove { page } => pages::remove(&home, &page),
        Command::Cleanup => pages::cleanup(&home),
        Command::Serve { port, host, bind } => daemon::serve(&home, port, host, bind),
    }
}

fn default_home() -> PathBuf {
    let base = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    base.join(".drop")
}
