//! `status`, `list`, `remove` and `cleanup`: read-mostly commands that work
//! from the registry whether or not the server runs.

use std::time::{Duration, SystemTime};

use drop_core::daemon::{ControlReply, ControlRequest};
use drop_core::supervise::LegacyServer;
use drop_registry::{
    Home, Pages, Record, RegistryError, ServerState, TunnelPhase, TunnelProtocol, TunnelState,
    parse_rfc3339,
};
use serde_json::json;

use crate::context::Context;
use crate::error::CliError;
use crate::output::{PageRow, is_under, note, printable, render_rows, say, shell_word};
use crate::plural::count;
use crate::running::{ServerCondition, running_server};
use crate::server_view::{ServerSeen, server_document};
use crate::urls::{Reach, Urls};

/// `drop status [--json]`.
pub fn status(ctx: &Context) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let seen = ServerSeen::load(home)?;
    let pages = home.registry().load()?;
    let rows: Vec<PageRow<'_>> = pages
        .iter()
        .map(|(id, r)| PageRow::new(&seen.urls, id, r))
        .collect();
    if out.is_json() {
        out.document(json!({
            "server": server_document(home, &seen)?,
            "pages": rows.iter().map(PageRow::to_json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let legacy = (!seen.running).then(|| LegacyServer::find(home)).flatten();
    match legacy {
        Some(old) => say!(out, "{}", legacy_server_line(&old, &seen.urls)),
        None => say!(
            out,
            "{}",
            server_line(
                seen.state.as_ref(),
                seen.tunnel.as_ref(),
                seen.running,
                &seen.urls
            )
        ),
    }
    say!(out);
    if rows.is_empty() {
        say!(out, "Pages: none (publish one with 'drop add <path>')");
    } else {
        say!(out, "Pages:");
        say!(out, "{}", render_rows(&rows).trim_end_matches('\n'));
    }
    Ok(())
}

/// The Python drop's server, still serving the home.
fn legacy_server_line(old: &LegacyServer, urls: &Urls) -> String {
    let base = urls.local_base();
    let url = match old.port {
        Some(port) => format!("{}:{port}", base.rsplit_once(':').map_or(base, |(h, _)| h)),
        None => base.to_owned(),
    };
    format!(
        "Server: {url} (running: the Python drop's server, pid {}; 'drop stop' stops it, then 'drop start' serves the same pages with this drop)",
        old.id.pid
    )
}

/// `Server: URL (running, tunneled)` and its variants.
fn server_line(
    state: Option<&ServerState>,
    tunnel: Option<&TunnelState>,
    running: bool,
    urls: &Urls,
) -> String {
    if let ServerCondition::Crashed { pid } = ServerCondition::of(state) {
        return format!(
            "Server: crashed (pid {pid} is recorded but gone: it was killed or died; 'drop doctor' shows the end of its log, 'drop start' starts it again; pages will be at {})",
            urls.local_base()
        );
    }
    if !running {
        return format!(
            "Server: not running (start it with 'drop start'; pages will be at {})",
            urls.local_base()
        );
    }
    let tunneled = state.is_some_and(|s| s.tunnel);
    match tunnel {
        _ if !tunneled && urls.reach() == Reach::LocalNetwork => format!(
            "Server: {} (running; local network only: 'drop start --tunnel' gives a public URL)",
            urls.local_base()
        ),
        _ if !tunneled => format!("Server: {} (running)", urls.local_base()),
        Some(t) if t.is_up() => format!(
            "Server: {} (running, tunneled{})",
            urls.base(),
            over_http2(t)
        ),
        Some(t) if t.state == TunnelPhase::Unconfirmed => format!(
            "Server: {} (running, tunneled{}; not confirmed from outside yet{})",
            urls.base(),
            over_http2(t),
            t.error
                .as_deref()
                .map_or(String::new(), |error| format!(": {error}")),
        ),
        Some(t) if t.state == TunnelPhase::Verifying => format!(
            "Server: {} (running; tunnel verifying: its new URL is checked from outside before it is handed out)",
            urls.local_base(),
        ),
        Some(t) if t.state == TunnelPhase::Reconnecting => format!(
            "Server: {} (running, tunneled{}; reconnecting to the edge: the URL stays)",
            urls.base(),
            over_http2(t)
        ),
        // Its error says the rate limit and when drop tries again.
        Some(t) if t.state == TunnelPhase::RateLimited => format!(
            "Server: {} (running; tunnel not open yet: {})",
            urls.local_base(),
            t.error
                .as_deref()
                .unwrap_or("rate limited by the quick-tunnel service"),
        ),
        Some(t) => match &t.error {
            Some(error) => format!(
                "Server: {} (running; tunnel {}: {error})",
                urls.local_base(),
                t.state.words(),
            ),
            None => format!(
                "Server: {} (running; tunnel {})",
                urls.local_base(),
                t.state.words()
            ),
        },
        None => format!("Server: {} (running; tunnel not open)", urls.local_base()),
    }
}

/// How a tunnel over HTTP/2 is said: drop chose it because QUIC is
/// blocked here.
fn over_http2(tunnel: &TunnelState) -> &'static str {
    match tunnel.protocol {
        Some(TunnelProtocol::Http2) => " over HTTP/2: UDP port 7844 is blocked on this network",
        _ => "",
    }
}

/// `drop list [--all] [--json]`: pages published from the current folder
/// (or below it), or every page.
pub fn list(ctx: &Context, all: bool) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let urls = Urls::load(home)?;
    let pages = home.registry().load()?;
    let here = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .map_err(CliError::io("read the current folder"))?;
    let rows: Vec<PageRow<'_>> = pages
        .iter()
        .filter(|(_, r)| all || is_under(&r.source, &here))
        .map(|(id, r)| PageRow::new(&urls, id, r))
        .collect();
    if out.is_json() {
        out.document(json!({ "pages": rows.iter().map(PageRow::to_json).collect::<Vec<_>>() }));
    } else if rows.is_empty() && !all {
        say!(
            out,
            "No pages from this folder. 'drop list --all' shows every page."
        );
    } else if rows.is_empty() {
        say!(out, "No pages. Publish one with 'drop add <path>'.");
    } else {
        say!(out, "{}", render_rows(&rows).trim_end_matches('\n'));
    }
    Ok(())
}

/// What `drop remove` is asked to remove.
pub enum RemoveWhat<'a> {
    /// Pages by id, id prefix, name or source path.
    Pages(&'a [String]),
    /// Every page and app.
    All,
}

/// `drop remove <page>... | --all`: a page is named by id, id prefix (at
/// least 4 characters), name or the path it was published from. Every
/// name is resolved before anything is removed, so a typo removes
/// nothing. Running apps are stopped first, and said to be.
pub fn remove(ctx: &Context, what: RemoveWhat<'_>) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    // The command line cannot say it; a tool's caller can.
    if let RemoveWhat::Pages([]) = what {
        return Err(CliError::Usage(
            "name at least one page or app to remove".into(),
        ));
    }
    let pages = home.registry().load()?;
    let mut targets: Vec<(String, Record)> = Vec::new();
    match what {
        RemoveWhat::All => targets.extend(pages.iter().map(|(id, r)| (id.to_owned(), r.clone()))),
        RemoveWhat::Pages(queries) => {
            for query in queries {
                for (id, record) in crate::names::resolve_all(&pages, query)? {
                    if !targets.iter().any(|(known, _)| *known == id) {
                        targets.push((id, record));
                    }
                }
            }
        }
    }
    let mut removed = Vec::new();
    for (id, record) in &targets {
        let stopped = remove_record(ctx, id, record)?;
        let what = match (record.is_app(), stopped) {
            (true, true) => "an app, stopped first",
            (true, false) => "an app",
            (false, _) => "a page",
        };
        let source = printable(&record.source.to_string_lossy());
        say!(out, "Removed: {id} ({source}; {what})");
        removed.push(json!({
            "id": id,
            "name": record.name,
            "type": record.kind,
            "source": record.source,
            "app_stopped": stopped,
        }));
    }
    if !targets.is_empty() {
        crate::control::announce_registry_change(home);
    } else {
        say!(out, "Nothing to remove: no pages.");
    }
    out.document(json!({ "removed": removed }));
    Ok(())
}

/// `drop qr <page>`: the page's URL as a QR code, then as text. Under
/// `--json`, `{"id", "url", "qr"}` with the code as plain text.
pub fn qr(ctx: &Context, query: &str) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let pages = home.registry().load()?;
    let found = crate::names::find_one(&pages, query)?;
    if let Some(why) = ended(found.record) {
        return Err(CliError::NobodyCanOpen {
            id: found.id.to_owned(),
            why,
        });
    }
    let urls = Urls::load(home)?;
    let row = PageRow::new(&urls, found.id, found.record);
    if out.is_json() {
        out.document(json!({
            "id": found.id,
            "url": row.url,
            "qr": crate::qr::render(&row.url)?,
        }));
        return Ok(());
    }
    out.drawing(&crate::qr::for_stdout(&row.url)?);
    say!(out, "{}", row.url);
    if running_server(home.load_server_state()?.as_ref()).is_none() {
        note!(
            out,
            "  (the server is not running: 'drop start' so that the link opens)"
        );
    }
    // A phone is another machine: say when the URL cannot open there.
    if row.reach == Reach::ThisMachine {
        note!(
            out,
            "  (this URL opens only on this machine, not on a phone: 'drop start --tunnel' gives a public one)"
        );
    } else if let Some(note) = urls.reach_note(row.reach) {
        note!(out, "{note}");
    }
    Ok(())
}

/// `drop cleanup [--unopened SPAN]`: stops and removes pages and apps
/// whose source is gone, pages that expired, and with `--unopened` pages
/// no human opened in their first SPAN.
pub fn cleanup(ctx: &Context, unopened: Option<&str>) -> Result<(), CliError> {
    let (home, out) = (&ctx.home, &ctx.out);
    let unopened = unopened
        .map(|text| crate::when::span_arg(text, "--unopened"))
        .transpose()?;
    let now = SystemTime::now();
    let pages = home.registry().load()?;
    // Why each goes: as people read it, and as scripts match it.
    let why = |r: &Record| -> Option<(&'static str, &'static str)> {
        let never_opened = |span: Duration| {
            !r.is_app()
                && r.views == 0
                && parse_rfc3339(&r.created_at).is_some_and(|at| at + span <= now)
        };
        match () {
            _ if !r.source.exists() => Some(("source gone", "source_gone")),
            _ if r.end_reached(now) => Some(("expired", "expired")),
            _ if unopened.is_some_and(never_opened) => Some(("never opened", "never_opened")),
            _ => None,
        }
    };
    let gone: Vec<(String, Record, _)> = pages
        .iter()
        .filter_map(|(id, r)| Some((id.to_owned(), r.clone(), why(r)?)))
        .collect();
    for (id, record, _) in &gone {
        remove_record(ctx, id, record)?;
    }
    crate::control::announce_registry_change(home);
    if out.is_json() {
        let removed: Vec<_> = gone
            .iter()
            .map(|(id, record, (_, reason))| {
                json!({ "id": id, "name": record.name, "type": record.kind, "source": record.source, "reason": reason })
            })
            .collect();
        out.document(json!({ "removed": removed }));
    }
    if gone.is_empty() {
        say!(out, "Nothing to clean up.");
        return Ok(());
    }
    say!(out, "Removed {}:", count(gone.len(), "page", "pages"));
    for (id, record, (why, _)) in gone {
        say!(
            out,
            "  {id}  {}  ({why})",
            printable(&record.source.to_string_lossy())
        );
    }
    Ok(())
}

/// `drop wait <page> [--timeout SPAN] [--since-publish] [--json]`: blocks
/// until a human opens the page (a link preview does not count), or, with
/// `--since-publish`, returns at once if one already did; then prints the
/// receipt. Fails when the timeout passes first.
pub fn wait(
    ctx: &Context,
    query: &str,
    timeout: Option<&str>,
    since_publish: bool,
) -> Result<(), CliError> {
    let timeout = timeout
        .map(|text| crate::when::span_arg(text, "--timeout"))
        .transpose()?;
    let wait_for = WaitFor {
        timeout,
        since_publish,
    };
    wait_until_opened(ctx, query, &wait_for, |_| true)
}

/// What `drop wait` waits for.
#[derive(Debug, Clone, Copy)]
pub struct WaitFor {
    /// Give up after this long (`not_opened`); with none, wait on.
    pub timeout: Option<Duration>,
    /// An opening at any time since the page was published counts.
    pub since_publish: bool,
}

/// [`wait`], asking `keep_waiting` at every look how long it has waited:
/// a caller reports progress there, and stops the wait by answering
/// false (a `cancelled` error).
pub fn wait_until_opened(
    ctx: &Context,
    query: &str,
    wait_for: &WaitFor,
    mut keep_waiting: impl FnMut(Duration) -> bool,
) -> Result<(), CliError> {
    let home = &ctx.home;
    let pages = home.registry().load()?;
    let found = crate::names::find_one(&pages, query)?;
    let id = found.id.to_owned();
    if found.record.is_app() {
        return Err(CliError::WaitOnApp {
            query: query.to_owned(),
        });
    }
    if running_server(home.load_server_state()?.as_ref()).is_none() {
        return Err(CliError::NobodyCanOpen {
            id,
            why: "the server is not running: run 'drop start' first".into(),
        });
    }
    let watch = OpeningWatch {
        baseline: if wait_for.since_publish {
            0
        } else {
            found.record.views
        },
        began: SystemTime::now(),
        since_publish: wait_for.since_publish,
        id,
    };
    let started = std::time::Instant::now();
    loop {
        if let Some(record) = watch.look(home)? {
            return report_opened(ctx, &watch.id, &record);
        }
        let waited = started.elapsed();
        if let Some(timeout) = wait_for.timeout.filter(|t| waited >= *t) {
            return Err(CliError::NotOpened {
                id: watch.id,
                waited: crate::when::show_span(timeout),
            });
        }
        if !keep_waiting(waited) {
            return Err(CliError::WaitCancelled { id: watch.id });
        }
        std::thread::sleep(WAIT_POLL);
    }
}

/// One page watched by `drop wait`.
struct OpeningWatch {
    id: String,
    /// Its views when the wait began (0 with `--since-publish`).
    baseline: u64,
    /// When the wait began.
    began: SystemTime,
    since_publish: bool,
}

impl OpeningWatch {
    /// The page's record once a human opened it; an error once nobody
    /// can any more (removed, expired, used up, or the server stopped).
    fn look(&self, home: &Home) -> Result<Option<Record>, CliError> {
        let id = self.id.clone();
        let pages = home.registry().load()?;
        let Some(record) = pages.get(&self.id) else {
            return Err(CliError::PageGone { id });
        };
        if self.opened(record) {
            return Ok(Some(record.clone()));
        }
        if record.expired(SystemTime::now()) {
            return Err(CliError::PageGone { id });
        }
        if let Some(why) = ended(record) {
            return Err(CliError::NobodyCanOpen { id, why });
        }
        if running_server(home.load_server_state()?.as_ref()).is_none() {
            return Err(CliError::NobodyCanOpen {
                id,
                why: "the server stopped: run 'drop start', then wait again".into(),
            });
        }
        Ok(None)
    }

    /// Views are written a second or so late: one counted now may be from
    /// before the wait, which its time (to the millisecond) tells.
    fn opened(&self, record: &Record) -> bool {
        let after_wait_began = self.since_publish
            || record
                .last_opened_at
                .as_deref()
                .and_then(parse_rfc3339)
                .is_some_and(|at| at >= self.began);
        record.views > self.baseline && after_wait_began
    }
}

/// What `drop wait` says once the page was opened: its receipt, or under
/// `--json` the page as `list` shows it.
fn report_opened(ctx: &Context, id: &str, record: &Record) -> Result<(), CliError> {
    let out = &ctx.out;
    let urls = Urls::load(&ctx.home)?;
    let row = PageRow::new(&urls, id, record);
    match out.is_json() {
        true => out.document(row.to_json()),
        false => say!(
            out,
            "Opened: {}  — {}",
            row.url,
            crate::output::receipt(record, SystemTime::now())
        ),
    }
    Ok(())
}

/// Why nobody can open `record`'s link any more, when that is so: it
/// expired, or its one-time link was used.
fn ended(record: &Record) -> Option<String> {
    let source = shell_word(&record.source);
    if record.expired(SystemTime::now()) {
        return Some(format!(
            "it expired; 'drop add {source} --expires SPAN' publishes it again"
        ));
    }
    (record.once && record.used_at.is_some()).then(|| {
        format!("its one-time link was used already; 'drop add {source} --once' gives a fresh one")
    })
}

/// How often `drop wait` looks at the registry (the server writes what it
/// counted within a few seconds).
const WAIT_POLL: Duration = Duration::from_millis(250);

/// Removes a record; an app is stopped first (and its tunnel closed), so
/// no process is orphaned. With a daemon running, it does both in the
/// app's turn, so a `drop start` at the same moment cannot slip in between.
/// Returns whether an app was running and was stopped.
fn remove_record(ctx: &Context, id: &str, record: &Record) -> Result<bool, CliError> {
    let home = &ctx.home;
    if record.is_app() && running_server(home.load_server_state()?.as_ref()).is_some() {
        let request = ControlRequest::RemoveApp {
            id: id.to_owned(),
            stop_grace_ms: ctx.settings.apps_given.stop_grace_ms(),
        };
        return match crate::control::send(home, &request)? {
            ControlReply::Removed { stopped } => Ok(stopped),
            other => Err(crate::apps::failure(other)),
        };
    }
    let mut stopped = false;
    if record.is_app() && (record.pid.is_some() || record.tunnel_state.is_some()) {
        stopped = crate::apps::stop_app(ctx, id, record)?;
    }
    home.registry().update(|pages: &mut Pages| {
        pages.remove(id);
        Ok::<_, RegistryError>(())
    })?;
    if record.is_app() {
        drop_core::supervise::remove_app_logs(home, id)?;
    }
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;
    use crate::test_home::{PAGE, TestHome};

    fn wait_for(timeout: Option<Duration>) -> WaitFor {
        WaitFor {
            timeout,
            since_publish: false,
        }
    }

    /// The human opens the page while `drop wait` waits: the wait ends
    /// with the page as `list --json` shows it.
    #[test]
    fn a_wait_ends_with_the_page_once_a_view_is_counted() {
        let test = TestHome::new();
        let (out, kept) = Output::captured();
        let mut looks = 0;
        let waited = wait_until_opened(&test.context(out), PAGE, &wait_for(None), |_| {
            looks += 1;
            test.count_a_view();
            true
        });
        assert!(waited.is_ok(), "{waited:?}");
        assert_eq!(looks, 1);
        let kept = kept.lock().unwrap();
        assert_eq!(kept.documents[0]["id"], PAGE);
        assert_eq!(kept.documents[0]["views"], 1);
    }

    /// A caller that stops waiting (a cancelled MCP call) ends the wait at
    /// once, with `cancelled`.
    #[test]
    fn a_wait_its_caller_stops_ends_cancelled() {
        let test = TestHome::new();
        let (out, _) = Output::captured();
        let waited = wait_until_opened(&test.context(out), PAGE, &wait_for(None), |_| false);
        assert_eq!(waited.unwrap_err().code(), "cancelled");
    }

    /// Past its timeout the wait fails with `not_opened`; a view from
    /// before the wait does not end it.
    #[test]
    fn a_wait_past_its_timeout_is_not_opened() {
        let test = TestHome::new();
        test.count_a_view();
        let (out, _) = Output::captured();
        let timeout = wait_for(Some(Duration::ZERO));
        let waited = wait_until_opened(&test.context(out), PAGE, &timeout, |_| true);
        assert_eq!(waited.unwrap_err().code(), "not_opened");
    }
}
