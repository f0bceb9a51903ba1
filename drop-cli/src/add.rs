//! `drop add`: publish a file, or a folder limited by its manifest.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use drop_core::auth::{Verdict, generate_password, hash_password, verify_password};
use drop_core::page::{MANIFEST_NAME, Manifest, ManifestError, is_never_served, new_page_id};
use drop_core::supervise::AppStatus;
use drop_registry::{Home, Pages, Record, parse_rfc3339};
use serde_json::Value;

use crate::context::Context;
use crate::error::CliError;
use crate::folder_check::FolderCheck;
use crate::output::{Output, PageRow, note, say};
use crate::running::running_server;
use crate::urls::Urls;
use crate::when::{left_until, show_span};

/// The longest `--desc`, in characters.
const MAX_DESCRIPTION: usize = 500;
/// The longest app command, in bytes: a command line, not a script.
const MAX_APP_COMMAND: usize = 4096;
/// The shortest password `--password PASS` takes, in characters: anyone
/// with the link could guess a shorter one before the login limits bite.
const MIN_PASSWORD: usize = 8;

/// What `drop add` may set on a page besides its source.
pub struct Details {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some("")` asks for a generated password, unless the page has one.
    pub password: Option<String>,
    /// `--new-password`: a generated password replaces the page's.
    pub new_password: bool,
    /// `--no-password`: make a protected page public again.
    pub no_password: bool,
    /// `--expires`: a span or a time, when the page stops being served.
    pub expires: Option<String>,
    /// `--once`: the link opens for one human once.
    pub once: bool,
    /// `--no-once`: a one-time page becomes a lasting one.
    pub no_once: bool,
    /// `--qr`: also print the URL as a QR code (not stored).
    pub qr: bool,
}

/// A page as `add` left it.
struct Saved {
    id: String,
    record: Record,
    reused: bool,
    /// The name it had, when this `add` gave it another.
    renamed_from: Option<String>,
    /// Its password hash before this `add` (empty: it had none).
    hash_before: String,
    /// It had expired, and is published again.
    revived: bool,
    /// A one-time page whose link was used, added again without `--once`.
    once_used: bool,
    /// Whether it had an end, or was a one-time link, before this `add`.
    lived_before: Lifetime,
    /// When this `add` wrote it: what a new end was counted from.
    written_at: SystemTime,
}

/// What limits a link's life: an end, and being one-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lifetime {
    ends: bool,
    once: bool,
}

impl Lifetime {
    fn of(record: &Record) -> Self {
        Lifetime {
            ends: record.expires_at.is_some(),
            once: record.once,
        }
    }
}

/// Publishes `path`. Adding a source that is already published returns
/// that page (updating its name, description or password when given)
/// rather than a second URL for the same thing.
pub fn add(ctx: &Context, path: &Path, details: Details) -> Result<(), CliError> {
    let home = &ctx.home;
    let (source, is_dir) = check_page(ctx, path, &details)?;
    let asked = details.password.as_deref();
    let generate = asked == Some("") || details.new_password;
    let generated = generate.then(generate_password);
    let new_password = generated.as_deref().or(asked);
    // `--password` alone keeps the password a page has (adding again is
    // no reason to lock out whoever has it); `--new-password` replaces it.
    let keeps_password = asked == Some("");
    let password_hash = match details.no_password {
        true => Some(String::new()),
        false => new_password.map(hash_password),
    };
    // Read before anything is written: a state file that does not parse
    // stops the command with nothing changed, rather than after the page.
    let serving = Serving::load(home)?;
    let saved = upsert(
        home,
        &details,
        |r| !r.is_app() && r.source == source && r.is_dir == is_dir,
        || Record::static_page(source.clone(), is_dir),
        |_, _| Ok(()),
        |record| {
            if keeps_password && record.is_protected() {
                return;
            }
            // The password it already has keeps its hash, and so the
            // sessions of visitors who signed in with it.
            let same = |password: &str| {
                record.is_protected()
                    && matches!(
                        verify_password(&record.password_hash, password),
                        Verdict::Right
                    )
            };
            if let Some(hash) = &password_hash
                && !new_password.is_some_and(same)
            {
                record.password_hash.clone_from(hash);
            }
        },
    )?;
    let extras = ReportExtras {
        new_password,
        generated: generated.is_some(),
        keeps_password,
        qr: details.qr,
        folder: is_dir.then(|| FolderCheck::of(&source)),
        restarting: false,
    };
    report(&ctx.out, &serving, &saved, &extras)?;
    if details.qr {
        show_qr(ctx, &saved.id)?;
    }
    Ok(())
}

/// What `add` refuses before it writes anything, checked alone: the
/// source, the name, the password and the end. Returns the canonical
/// source and whether it is a folder. `drop mcp` asks this before it
/// starts the server for a page.
pub fn check_page(
    ctx: &Context,
    path: &Path,
    details: &Details,
) -> Result<(PathBuf, bool), CliError> {
    let (source, is_dir) = check_source(ctx, path)?;
    if let Some(name) = &details.name {
        check_name(name)?;
    }
    // `/p/<id>/<name>/…` strips the name: a file or folder of that name at
    // the top of the folder could no longer be reached by its own path.
    if let Some(name) = details
        .name
        .as_deref()
        .filter(|n| is_dir && source.join(n).exists())
    {
        return Err(CliError::NameShadowsFile {
            name: name.to_owned(),
            dir: source,
        });
    }
    if let Some(password) = details.password.as_deref() {
        if !password.is_empty() && password.trim().is_empty() {
            return Err(CliError::BadPassword(
                "a password of only spaces is no password",
            ));
        }
        let length = password.chars().count();
        if (1..MIN_PASSWORD).contains(&length) {
            return Err(CliError::PasswordTooShort {
                length,
                min: MIN_PASSWORD,
            });
        }
        if password.chars().any(char::is_control) {
            return Err(CliError::BadPassword(
                "a password with a newline, a tab or another control character cannot be typed into the login form",
            ));
        }
    }
    expiry(details, SystemTime::now())?;
    Ok((source, is_dir))
}

/// `--expires` as the record takes it: `None` to leave the end as it is,
/// `Some(None)` for `never` (no end any more), else the new end.
fn expiry(details: &Details, now: SystemTime) -> Result<Option<Option<SystemTime>>, CliError> {
    match details.expires.as_deref() {
        None => Ok(None),
        Some("never") => Ok(Some(None)),
        Some(text) => crate::when::parse_moment(text, now, "--expires").map(|at| Some(Some(at))),
    }
}

/// `--qr`: the URL as a QR code, after the rest (under `--json` the
/// document carries it as `qr`).
fn show_qr(ctx: &Context, id: &str) -> Result<(), CliError> {
    if !ctx.out.is_json() {
        crate::pages::qr(ctx, id)?;
    }
    Ok(())
}

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

/// Refuses `name` for page `id` when another page has it.
fn name_free_for(pages: &Pages, id: &str, name: &str) -> Result<(), CliError> {
    match pages.by_name(name) {
        Some(owner) if owner.id != id => Err(CliError::NameTaken {
            name: name.to_owned(),
            id: owner.id.to_owned(),
        }),
        _ => Ok(()),
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

/// Adds a record, or updates the one `same` finds, under the registry lock.
fn upsert(
    home: &Home,
    details: &Details,
    same: impl Fn(&Record) -> bool,
    new: impl FnOnce() -> Record,
    check: impl FnOnce(&Pages, &str) -> Result<(), CliError>,
    apply: impl FnOnce(&mut Record),
) -> Result<Saved, CliError> {
    if let Some(name) = &details.name {
        check_name(name)?;
    }
    if let Some(description) = &details.description {
        check_description(description)?;
    }
    let now = SystemTime::now();
    let expires_at = expiry(details, now)?;
    home.ensure()?;
    let saved = home.registry().update(|pages| {
        let existing = pages
            .iter()
            .find(|(_, r)| same(r))
            .map(|(id, _)| id.to_owned());
        let reused = existing.is_some();
        let id = existing.unwrap_or_else(|| unused_id(|id| pages.contains(id)));
        if let Some(name) = &details.name {
            name_free_for(pages, &id, name)?;
        }
        check(pages, &id)?;
        if !reused {
            pages.insert(id.clone(), new());
        }
        let record = pages.get_mut(&id).expect("present");
        let hash_before = record.password_hash.clone();
        let lived_before = Lifetime::of(record);
        let renamed_from = details
            .name
            .as_ref()
            .filter(|name| reused && !record.name.is_empty() && **name != record.name)
            .map(|_| record.name.clone());
        if let Some(name) = &details.name {
            record.name.clone_from(name);
        }
        if let Some(description) = &details.description {
            record.description.clone_from(description);
        }
        // Adding an expired page again publishes it again, with no end
        // unless one is given.
        let revived = expires_at.is_none() && record.expired(now);
        match expires_at {
            Some(at) => record.expires_at = at.map(drop_registry::rfc3339),
            None if revived => record.expires_at = None,
            None => {}
        }
        if details.no_once {
            record.once = false;
            record.used_at = None;
            record.used_by = None;
        }
        if details.once {
            // A new one-time link: whoever used the old one did not use this.
            record.once = true;
            record.once_round += 1;
            record.used_at = None;
            record.used_by = None;
        }
        apply(record);
        Ok::<_, CliError>(Saved {
            id,
            record: record.clone(),
            reused,
            renamed_from,
            hash_before,
            revived,
            once_used: record.once && record.used_at.is_some(),
            lived_before,
            written_at: now,
        })
    })?;
    crate::control::announce_registry_change(home);
    Ok(saved)
}

/// Where pages are reached, and whether the server runs, as `add` reports.
struct Serving {
    urls: Urls,
    running: bool,
}

impl Serving {
    fn load(home: &Home) -> Result<Self, CliError> {
        let state = home.load_server_state()?;
        Ok(Serving {
            running: running_server(state.as_ref()).is_some(),
            urls: Urls::load(home)?,
        })
    }
}

/// What this `add` did to a page's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PasswordChange {
    None,
    /// A page that had none has one now.
    Set,
    /// Another password: the old one no longer opens it.
    Changed,
    /// `--no-password` on a protected page: public again, at the same URL.
    Removed,
    /// `--password` alone on a page that has one: it keeps it.
    Kept,
}

impl PasswordChange {
    fn of(saved: &Saved, told: &ReportExtras<'_>) -> Self {
        let (before, now) = (&saved.hash_before, &saved.record.password_hash);
        if told.keeps_password && !before.is_empty() && before == now {
            return PasswordChange::Kept;
        }
        match (before.is_empty(), now.is_empty(), told.new_password) {
            (false, true, _) => PasswordChange::Removed,
            (false, false, Some(_)) if before != now => PasswordChange::Changed,
            (true, false, Some(_)) => PasswordChange::Set,
            _ => PasswordChange::None,
        }
    }
}

/// What `add` tells besides the page itself.
#[derive(Default)]
struct ReportExtras<'a> {
    /// The password this `add` gave: printed once, when drop made it up
    /// (`generated`) or when it replaced another.
    new_password: Option<&'a str>,
    generated: bool,
    /// `--password` alone: a password the page has is kept.
    keeps_password: bool,
    /// `--qr`: the URL as a QR code too.
    qr: bool,
    /// `--restart` of a running app: it is started again right after.
    restarting: bool,
    /// For a folder: what its manifest serves and leaves out.
    folder: Option<FolderCheck>,
}

fn report(
    out: &Output,
    serving: &Serving,
    saved: &Saved,
    told: &ReportExtras<'_>,
) -> Result<(), CliError> {
    let (urls, running) = (&serving.urls, serving.running);
    let row = PageRow::new(urls, &saved.id, &saved.record);
    let change = PasswordChange::of(saved, told);
    let shown_password = told.new_password.filter(|_| match change {
        PasswordChange::Changed => true,
        PasswordChange::Set => told.generated,
        PasswordChange::None | PasswordChange::Removed | PasswordChange::Kept => false,
    });
    if out.is_json() {
        let mut doc = row.to_json();
        doc["already_published"] = Value::Bool(saved.reused);
        doc["server_running"] = Value::Bool(running);
        doc["password_changed"] = Value::Bool(change == PasswordChange::Changed);
        doc["password_removed"] = Value::Bool(change == PasswordChange::Removed);
        doc["password_kept"] = Value::Bool(change == PasswordChange::Kept);
        if let Some(password) = shown_password {
            doc["password"] = Value::String(password.to_owned());
        }
        if let Some(old) = &saved.renamed_from {
            doc["renamed_from"] = Value::String(old.clone());
        }
        if told.qr {
            doc["qr"] = Value::String(crate::qr::render(&row.url)?);
        }
        if let Some(folder) = &told.folder {
            doc["folder"] = folder.to_json();
        }
        out.document(doc);
        return Ok(());
    }
    let renamed = saved.renamed_from.as_ref().map(|old| match saved.record.is_app() {
        true => format!("  (renamed from `{old}`: commands no longer find it by '{old}')"),
        false => format!(
            "  (renamed from `{old}`: URLs with `{old}` no longer open and '{old}' no longer finds it; share this URL)"
        ),
    });
    let reach_note = urls.reach_note(row.reach);
    if saved.record.is_app() {
        say!(out, "App registered: {}", row.url);
        if let Some(note) = reach_note {
            note!(out, "{note}");
        }
        if let Some(renamed) = renamed {
            say!(out, "{renamed}");
        }
        if let Some(life) = link_life(saved) {
            say!(out, "{life}");
        }
        match told.restarting {
            true => say!(
                out,
                "  (it was running: stopped to apply the change; starting it again)"
            ),
            false => say!(out, "Run 'drop start {}'", saved.record.label(&saved.id)),
        }
        return Ok(());
    }
    say!(out, "Published: {}", row.url);
    if let Some(note) = reach_note {
        note!(out, "{note}");
    }
    if let Some(renamed) = renamed {
        say!(out, "{renamed}");
    }
    match change {
        PasswordChange::Changed => say!(
            out,
            "Password changed: the old one no longer opens it, and visitors signed in with it must sign in again."
        ),
        PasswordChange::Removed => say!(
            out,
            "Password removed: the page is public, at the same URL."
        ),
        PasswordChange::Kept => say!(
            out,
            "Password kept: the page has one already, and whoever has it still gets in (it is not shown again). --new-password makes a new one; --password PASS sets this one."
        ),
        PasswordChange::Set | PasswordChange::None => {}
    }
    if let Some(password) = shown_password {
        say!(out, "Password: {password}");
    }
    if let Some(life) = link_life(saved) {
        say!(out, "{life}");
    }
    if let Some(folder) = &told.folder {
        folder.say(out, &saved.record.source);
    }
    if saved.revived {
        say!(out, "  (it had expired: published again, with no end)");
    }
    if saved.once_used {
        note!(
            out,
            "Note: its one-time link was used and answers 404: add it with --once for a fresh one"
        );
    }
    if saved.reused && !saved.revived {
        say!(out, "  (already published: same page as before)");
    }
    if !running {
        say!(
            out,
            "  (the server is not running: start it with 'drop start')"
        );
    }
    Ok(())
}

/// What the link will do, as a line under its URL: when it ends and
/// whether it opens once, or, when this `add` took those away, that it
/// lasts now. Nothing for a lasting link that stays one.
fn link_life(saved: &Saved) -> Option<String> {
    let (record, now) = (&saved.record, saved.written_at);
    let ends = record.expires_at.as_deref().and_then(parse_rfc3339);
    let once = record.once && record.used_at.is_none();
    let mut said = Vec::new();
    if once {
        said.push("opens once, for one human, then answers 404".to_owned());
    }
    if let Some(left) = ends.and_then(|at| left_until(at, now)) {
        let at = record.expires_at.as_deref().unwrap_or_default();
        said.push(format!("expires in {} (at {at})", show_span(left)));
    }
    if !said.is_empty() {
        return Some(format!("  (the link {})", said.join("; it ")));
    }
    let before = saved.lived_before;
    // A page that had expired says so itself: published again, no end.
    let end_taken = before.ends && ends.is_none() && !saved.revived;
    match (end_taken, before.once && !record.once) {
        (true, true) => Some("  (the link no longer expires, and opens for anyone who has it, as often as they like)".into()),
        (true, false) => Some("  (the link no longer expires)".into()),
        (false, true) => Some("  (the link opens for anyone who has it again, as often as they like)".into()),
        (false, false) => None,
    }
}

/// The canonical source and whether it is a folder, or why it cannot be published.
fn check_source(ctx: &Context, path: &Path) -> Result<(PathBuf, bool), CliError> {
    let source = canonical_source(path)?;
    let home = &ctx.home;
    let home_root = std::fs::canonicalize(home.root()).unwrap_or_else(|_| home.root().into());
    if source.starts_with(&home_root) {
        return Err(CliError::InDropHome {
            path: source,
            home: home_root,
        });
    }
    // Never a page: a manifest there would be a manifest for everything.
    let user_home = ctx.settings.user_home.as_deref().map(std::fs::canonicalize);
    let whole = match () {
        _ if source.parent().is_none() => Some("the whole filesystem"),
        _ if user_home.is_some_and(|h| h.is_ok_and(|h| h == source)) => Some("your home folder"),
        _ => None,
    };
    if let Some(what) = whole {
        return Err(CliError::FolderTooBroad { path: source, what });
    }
    let name = source
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if is_never_served(name) {
        return Err(CliError::NeverServed { path: source });
    }
    let meta =
        std::fs::metadata(&source).map_err(CliError::io(format!("read `{}`", source.display())))?;
    if meta.is_file() {
        return Ok((source, false));
    }
    if !meta.is_dir() {
        return Err(CliError::NotPublishable { path: source });
    }
    let bad = |problem: String| CliError::BadManifest {
        path: source.join(MANIFEST_NAME),
        problem,
    };
    match Manifest::load(&source) {
        Ok(manifest) if manifest.is_empty() => Err(bad("lists no pattern".into())),
        Ok(_) => Ok((source, true)),
        Err(ManifestError::Missing { .. }) => Err(CliError::NoManifest { dir: source }),
        Err(ManifestError::Read { path, source }) => {
            Err(CliError::io(format!("read `{}`", path.display()))(source))
        }
        Err(ManifestError::NotAFile { .. }) => Err(bad(
            "is not a small regular file of its own (no symlink, at most 64 KiB)".into(),
        )),
        Err(e @ ManifestError::Pattern { .. }) => Err(bad(format!("does not parse: {e}"))),
    }
}

/// The absolute, canonical path of a source, which the registry can hold.
fn canonical_source(path: &Path) -> Result<PathBuf, CliError> {
    let source = std::fs::canonicalize(path).map_err(|_| CliError::NoSuchPath {
        path: path.to_owned(),
    })?;
    match source.to_str() {
        Some(_) => Ok(source),
        None => Err(CliError::NotUtf8 { path: source }),
    }
}

/// Slugs go into URLs as they are: keep them plain.
fn check_name(name: &str) -> Result<(), CliError> {
    let bytes = name.as_bytes();
    let valid = (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase() | bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(CliError::BadName {
            name: name.to_owned(),
        })
    }
}

/// A description is a line in listings, not a document.
fn check_description(description: &str) -> Result<(), CliError> {
    let length = description.chars().count();
    match length <= MAX_DESCRIPTION {
        true => Ok(()),
        false => Err(CliError::DescriptionTooLong {
            length,
            max: MAX_DESCRIPTION,
        }),
    }
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

fn unused_id(taken: impl Fn(&str) -> bool) -> String {
    loop {
        let id = new_page_id();
        if !taken(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_slugs() {
        for good in ["docs", "a", "v1.2", "my_site-2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Docs",
            "-x",
            ".hidden",
            "a/b",
            "a b",
            "ü",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
