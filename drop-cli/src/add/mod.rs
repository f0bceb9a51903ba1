//! `drop add`: publish a file, or a folder limited by its manifest (this
//! file), or register an app ([`app`]); what it says of either is
//! [`report`]'s.

mod app;
mod report;

pub use app::{AppCommand, add_app};
use report::{ReportExtras, report};

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use drop_core::auth::{Verdict, generate_password, hash_password, verify_password};
use drop_core::page::{MANIFEST_NAME, Manifest, ManifestError, is_never_served, new_page_id};
use drop_registry::{Home, Pages, Record};

use crate::context::Context;
use crate::error::CliError;
use crate::folder_check::FolderCheck;
use crate::running::running_server;
use crate::urls::Urls;

/// The longest `--desc`, in characters.
const MAX_DESCRIPTION: usize = 500;
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
    /// `--allow-secret`: publish what looks like a secret.
    pub allow_secret: bool,
}

/// A page as `add` left it.
pub(super) struct Saved {
    pub(super) id: String,
    pub(super) record: Record,
    pub(super) reused: bool,
    /// The name it had, when this `add` gave it another.
    pub(super) renamed_from: Option<String>,
    /// Its password hash before this `add` (empty: it had none).
    pub(super) hash_before: String,
    /// It had expired, and is published again.
    pub(super) revived: bool,
    /// A one-time page whose link was used, added again without `--once`.
    pub(super) once_used: bool,
    /// Whether it had an end, or was a one-time link, before this `add`.
    pub(super) lived_before: Lifetime,
    /// When this `add` wrote it: what a new end was counted from.
    pub(super) written_at: SystemTime,
}

/// What limits a link's life: an end, and being one-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lifetime {
    pub(super) ends: bool,
    pub(super) once: bool,
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
    if !details.allow_secret
        && let Some(what) = drop_core::page::looks_secret(&source)
    {
        return Err(CliError::LooksSecret { path: source, what });
    }
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
pub(super) fn show_qr(ctx: &Context, id: &str) -> Result<(), CliError> {
    if !ctx.out.is_json() {
        crate::pages::qr(ctx, id)?;
    }
    Ok(())
}

/// Refuses `name` for page `id` when another page has it.
pub(super) fn name_free_for(pages: &Pages, id: &str, name: &str) -> Result<(), CliError> {
    match pages.by_name(name) {
        Some(owner) if owner.id != id => Err(CliError::NameTaken {
            name: name.to_owned(),
            id: owner.id.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Adds a record, or updates the one `same` finds, under the registry lock.
pub(super) fn upsert(
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
pub(super) struct Serving {
    pub(super) urls: Urls,
    pub(super) running: bool,
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
pub(super) fn canonical_source(path: &Path) -> Result<PathBuf, CliError> {
    let source = std::fs::canonicalize(path).map_err(|_| CliError::NoSuchPath {
        path: path.to_owned(),
    })?;
    match source.to_str() {
        Some(_) => Ok(source),
        None => Err(CliError::NotUtf8 { path: source }),
    }
}

/// Slugs go into URLs as they are: keep them plain.
pub(super) fn check_name(name: &str) -> Result<(), CliError> {
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
