//! `drop add --run CMD --port N`: register an app (stopped), or change
//! the command, port or `Host` of one, a running one only with
//! `--restart`.

use std::path::Path;

use drop_core::supervise::AppStatus;
use drop_registry::{Pages, Record};

use super::report::{ReportExtras, report};
use super::{Details, Serving, canonical_source, check_name, name_free_for, show_qr, upsert};
use crate::context::Context;
use crate::error::CliError;
use crate::output::say;
use crate::urls::Urls;

/// The longest app command, in bytes: a command line, not a script.
const MAX_APP_COMMAND: usize = 4096;

/// Registers an app (stopped): `drop start <id>` runs `run` in the source's
/// folder and expects it to listen on `port`. Registering the same source
/// again updates its command and port; while it runs, only with `restart`,
/// which stops it first and starts it again after.
pub fn add_app(
    ctx: &Context,
    path: &Path,
    details: Details,
    app: AppCommand,
) -> Result<(), CliError> {
    let home = &ctx.home;
    let AppCommand {
        run,
        port,
        restart,
        keep_host,
    } = app;
    if details.password.is_some() || details.no_password || details.new_password {
        return Err(CliError::PasswordOnApp);
    }
    if details.once {
        return Err(CliError::OnceOnApp);
    }
    if port == 0 {
        return Err(CliError::BadAppPort);
    }
    check_command(&run)?;
    if home
        .load_server_state()?
        .is_some_and(|server| server.port == port)
    {
        return Err(CliError::ServersPort { port });
    }
    let source = canonical_source(path)?;
    // An app runs in its folder and may serve it: not in one of secrets.
    if !details.allow_secret
        && let Some(what) = drop_core::page::looks_secret(&source)
    {
        return Err(CliError::LooksSecret { path: source, what });
    }
    let is_dir = source.is_dir();
    // Read before anything is written: a state file that does not parse
    // stops the command with nothing changed, rather than after the page.
    let serving = Serving::load(home)?;
    let same = |r: &Record| r.is_app() && r.source == source;
    let pages = home.registry().load()?;
    let changed_while_running = pages.iter().find(|(_, r)| same(r)).and_then(|(id, r)| {
        let change = running_change(id, r, &run, port, keep_host)?;
        Some((id.to_owned(), change))
    });
    let restarted = match changed_while_running {
        Some((_, change)) if !restart => return Err(change),
        Some((id, _)) => {
            // What the write below would refuse, refused before the app is
            // stopped, so a refused change leaves it running.
            port_free_for(&pages, &id, port)?;
            if let Some(name) = &details.name {
                check_name(name)?;
                name_free_for(&pages, &id, name)?;
            }
            let record = pages.get(&id).expect("found above").clone();
            // Its URL while it ran, to say whether the new one differs.
            let old_url = serving.urls.app(&record);
            crate::apps::stop_app(ctx, &id, &record)?;
            Some((id, old_url))
        }
        None => None,
    };
    let saved = upsert(
        home,
        &details,
        same,
        || Record::app(source.clone(), is_dir, run.clone(), port),
        |pages, id| {
            port_free_for(pages, id, port)?;
            // Started by someone else since it was read above.
            match pages
                .get(id)
                .and_then(|r| running_change(id, r, &run, port, keep_host))
            {
                Some(change) => Err(change),
                None => Ok(()),
            }
        },
        |record| {
            record.run_cmd = Some(run.clone());
            record.port = Some(port);
            if let Some(keep) = keep_host {
                record.keep_host = keep;
            }
        },
    )?;
    let extras = ReportExtras {
        qr: details.qr,
        restarting: restarted.is_some(),
        ..ReportExtras::default()
    };
    report(&ctx.out, &serving, &saved, &extras)?;
    if details.qr {
        show_qr(ctx, &saved.id)?;
    }
    let Some((id, old_url)) = restarted else {
        return Ok(());
    };
    crate::apps::start(ctx, &id)?;
    let record = home.registry().load()?.get(&id).cloned();
    let new_url = record.map(|r| Urls::load(home).map(|urls| urls.app(&r)));
    if new_url.transpose()?.is_some_and(|new| new != old_url) {
        say!(
            ctx.out,
            "  (its old URL {old_url} no longer opens: give the human the one above)"
        );
    }
    Ok(())
}

/// Refuses `port` for app `id` when another app has it.
fn port_free_for(pages: &Pages, id: &str, port: u16) -> Result<(), CliError> {
    match pages
        .iter()
        .find(|(other, r)| *other != id && r.is_app() && r.port == Some(port))
    {
        Some((other, record)) => Err(CliError::PortTaken {
            port,
            app: record.label(other).to_owned(),
        }),
        None => Ok(()),
    }
}

/// What `drop add --run CMD --port N` asks of an app.
pub struct AppCommand {
    /// The shell command.
    pub run: String,
    /// The port it listens on.
    pub port: u16,
    /// Apply a change to a running app by restarting it.
    pub restart: bool,
    /// `--keep-host` (`Some(true)`) or `--no-keep-host`: which `Host` the
    /// app is sent through its tunnel; unchanged when `None`.
    pub keep_host: Option<bool>,
}

/// The refusal to change a running app's command, port or `Host`, when
/// `record` runs and `run`/`port`/`keep_host` differ from what it runs with.
fn running_change(
    id: &str,
    record: &Record,
    run: &str,
    port: u16,
    keep_host: Option<bool>,
) -> Option<CliError> {
    let runs = matches!(
        AppStatus::of(record),
        AppStatus::Running { .. } | AppStatus::Unverified { .. }
    );
    let (old_run, old_port) = (record.run_cmd.as_deref(), record.port);
    let host_words = |keep: bool| match keep {
        true => "the public hostname as Host",
        false => "Host: localhost",
    };
    let new_host = keep_host.filter(|keep| *keep != record.keep_host);
    let (running, asked) = match (old_port != Some(port), old_run != Some(run), new_host) {
        (true, _, _) => (
            format!("port {}", old_port.unwrap_or_default()),
            format!("port {port}"),
        ),
        (false, true, _) => (
            format!("the command `{}`", old_run.unwrap_or_default()),
            format!("`{run}`"),
        ),
        (false, false, Some(keep)) => (
            host_words(record.keep_host).to_owned(),
            host_words(keep).to_owned(),
        ),
        (false, false, None) => return None,
    };
    runs.then(|| CliError::RunningAppChange {
        label: crate::output::label(id, record),
        running,
        asked,
    })
}

/// Refuses an app command longer than [`MAX_APP_COMMAND`] bytes: it is
/// kept in the registry and shown in listings.
fn check_command(run: &str) -> Result<(), CliError> {
    match run.len() <= MAX_APP_COMMAND {
        true => Ok(()),
        false => Err(CliError::CommandTooLong {
            length: run.len(),
            max: MAX_APP_COMMAND,
        }),
    }
}
