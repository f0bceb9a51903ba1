//! What `drop add` says of the page it left: its URL, what changed of its
//! password, name and life, and a folder's check (text or its document).

use drop_registry::parse_rfc3339;
use serde_json::Value;

use super::{Saved, Serving};
use crate::error::CliError;
use crate::folder_check::FolderCheck;
use crate::output::{Output, PageRow, note, say};
use crate::when::{left_until, show_span};

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
pub(super) struct ReportExtras<'a> {
    /// The password this `add` gave: printed once when drop made it up
    /// (`generated`), never when the user gave it.
    pub(super) new_password: Option<&'a str>,
    pub(super) generated: bool,
    /// `--password` alone: a password the page has is kept.
    pub(super) keeps_password: bool,
    /// `--qr`: the URL as a QR code too.
    pub(super) qr: bool,
    /// `--restart` of a running app: it is started again right after.
    pub(super) restarting: bool,
    /// For a folder: what its manifest serves and leaves out.
    pub(super) folder: Option<FolderCheck>,
}

pub(super) fn report(
    out: &Output,
    serving: &Serving,
    saved: &Saved,
    told: &ReportExtras<'_>,
) -> Result<(), CliError> {
    let (urls, running) = (&serving.urls, serving.running);
    let row = PageRow::new(urls, &saved.id, &saved.record);
    let change = PasswordChange::of(saved, told);
    // A password the user typed is never printed back (scrollback, an
    // agent's transcript); one drop made up is printed this once.
    let shown_password = told.new_password.filter(|_| match change {
        PasswordChange::Changed | PasswordChange::Set => told.generated,
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
