//! What each tool runs: the CLI's own command functions, given the tool's
//! arguments as the command line would give them.

use std::path::Path;
use std::time::Duration;

use crate::add::{self, AppCommand, Details};
use crate::context::Context;
use crate::error::CliError;
use crate::pages::{self, WaitFor};

use super::args::{AddAppArgs, PublishArgs, WaitArgs};

/// `drop add` of a file or folder, with the server started first as
/// `drop start` would (NAT detection, tunnel), so the URL returned is the
/// one that opens. What `add` refuses is refused before anything starts.
pub fn publish(ctx: &Context, args: PublishArgs) -> Result<(), CliError> {
    let path = Path::new(&args.path);
    // `password: true` with `new_password` is the CLI's `--new-password`.
    let password = (args.password.map(|p| p.into_flag()).transpose()?.flatten())
        .filter(|given| !(args.new_password && given.is_empty()));
    let details = Details {
        name: args.name,
        description: args.description,
        password,
        new_password: args.new_password,
        no_password: false,
        expires: args.expires,
        once: args.once,
        no_once: false,
        qr: false,
        // Only the person at the terminal may publish what looks secret.
        allow_secret: false,
    };
    add::check_page(ctx, path, &details)?;
    crate::server::ensure_running(ctx)?;
    add::add(ctx, path, details)
}

/// `drop wait PAGE --timeout Ns [--since-publish]`, asking `keep_waiting`
/// at every look (see [`pages::wait_until_opened`]).
pub fn wait(
    ctx: &Context,
    args: &WaitArgs,
    keep_waiting: impl FnMut(Duration) -> bool,
) -> Result<(), CliError> {
    let wait_for = WaitFor {
        timeout: Some(Duration::from_secs(args.timeout_s)),
        since_publish: args.since_publish,
    };
    pages::wait_until_opened(ctx, &args.page, &wait_for, keep_waiting)
}

/// `drop add PATH --run CMD --port N [--name NAME]`: registered, not started.
pub fn add_app(ctx: &Context, args: AddAppArgs) -> Result<(), CliError> {
    let details = Details {
        name: args.name,
        description: None,
        password: None,
        new_password: false,
        no_password: false,
        expires: None,
        once: false,
        no_once: false,
        qr: false,
        // Only the person at the terminal may publish what looks secret.
        allow_secret: false,
    };
    let app = AppCommand {
        run: args.run,
        port: args.port,
        restart: false,
        keep_host: args.keep_host,
    };
    add::add_app(ctx, Path::new(&args.path), details, app)
}
