//! `status`, `list`, `remove` and `cleanup`: read-mostly commands that work
//! from the registry whether or not the server runs.

use std::path::Path;
use std::time::{Duration, SystemTime};

use drop_core::daemon::{ControlReply, ControlRequest};
use drop_core::supervise::LegacyServer;
use drop_registry::{
    Home, Pages, Record, RegistryError, ServerState, TunnelPhase, TunnelProtocol, TunnelState,
    parse_rfc3339,
};
use serde_json::json;

use crate::error::CliError;
use crate::output::say;
use crate::output::{PageRow, is_under, print_json, render_rows};
use crate::running::running_server;
use crate::settings::Settings;
use crate::urls::{Reach, Urls, legacy_state};

/// `drop status [--json]`.
pub fn status(home: &Home, json: bool) -> Result<(), CliError> {
    let state = home
        .load_server_state()?
        .or_else(|| home.legacy_files().any().then(|| legacy_state(home)));
    let running = running_server(state.as_ref()).is_some();
    let legacy = (!running).then(|| LegacyServer::find(home)).flatten();
    let tunnel = home.load_tunnel_state()?.filter(|_| running);
    let urls = Urls::new(state.as_ref(), tunnel.as_ref());
    let pages = home.registry().load()?;
    let rows: Vec<PageRow<'_>> = pages
        .iter()
        .map(|(id, r)| PageRow::new(&urls, id, r))
        .collect();
    if json {
        let mut server = server_json(state.as_ref(), tunnel.as_ref(), running, &urls);
        server["legacy_server"] = json!(legacy.map(|old| json!({
            "pid": old.id.pid,
            "port": old.port,
        })));
        if server["tunnel"].is_object() {
            let named = home.load_named_tunnel()?.is_some();
            server["tunnel"]["kind"] = json!(if named { "named" } else { "quick" });
        }
        print_json(&json!({
            "server": server,
            "pages": rows.iter().map(PageRow::to_json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    match legacy {
        Some(old) => say!("{}", legacy_server_line(&old, &urls)),
        None => say!(
            "{}",
            server_line(state.as_ref(), tunnel.as_ref(), running, &urls)
        ),
    }
    say!();
    if rows.is_empty() {
        say!("Pages: none (publish one with 'drop add <path>')");
    } else {
        say!("Pages:");
        say!("{}", render_rows(&rows).trim_end_matches('\n'));
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
            "Server: {} (running, tunneled{}; {})",
            urls.base(),
            over_http2(t),
            t.error
                .as_deref()
                .unwrap_or("not confirmed from outside yet"),
        ),
        Some(t) if t.state == TunnelPhase::Verifying => format!(
            "Server: {} (running; tunnel verifying: its new URL is checked from outside before it is handed out)",
            urls.local_base(),
        ),
        Some(t) if t.state == TunnelPhase::Reconnecting => format!(
            "Server: {} (running, tunneled; reconnecting to the edge, the URL stays{})",
            urls.base(),
            over_http2(t)
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

fn server_json(
    state: Option<&ServerState>,
    tunnel: Option<&TunnelState>,
    running: bool,
    urls: &Urls,
) -> serde_json::Value {
    let tunnel_json = state.filter(|s| s.tunnel && running).map(|s| {
        json!({
            "reason": s.tunnel_reason,
            "url": tunnel.and_then(TunnelState::current_url),
            "protocol": tunnel.and_then(|t| t.protocol.clone()),
            "pid": tunnel.and_then(|t| t.pid),
            "state": tunnel.map_or("not_open", |t| t.state.as_str()),
            "error": tunnel.and_then(|t| t.error.clone()),
            "verified_at": tunnel.and_then(|t| t.verified_at.clone()),
        })
    });
    json!({
        "running": running,
        "url": urls.base(),
        "reach": urls.reach().as_str(),
        "local_url": urls.local_base(),
        "tunneled": urls.tunneled(),
        "pid": if running { state.and_then(|s| s.pid) } else { None },
        "port": state.map(|s| s.port),
        "host": urls.host(),
        "tunnel": tunnel_json,
        "tunnel_reason": state.and_then(|s| s.tunnel_reason.clone()),
    })
}

/// `drop list [--all] [--json]`: pages published from the current folder
/// (or below it), or every page.
pub fn list(home: &Home, all: bool, json: bool) -> Result<(), CliError> {
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
    if json {
        print_json(&json!({ "pages": rows.iter().map(PageRow::to_json).collect::<Vec<_>>() }));
    } else if rows.is_empty() && !all {
        say!("No pages from this folder. 'drop list --all' shows every page.");
    } else if rows.is_empty() {
        say!("No pages. Publish one with 'drop add <path>'.");
    } else {
        say!("{}", render_rows(&rows).trim_end_matches('\n'));
    }
    Ok(())
}

/// `drop remove <id|prefix|name>`.
pub fn remove(home: &Home, query: &str, tunnel_marker: &Path) -> Result<(), CliError> {
    let pages = home.registry().load()?;
    let found = pages.lookup(query)?;
    let (id, record) = (found.id.to_owned(), found.record.clone());
    remove_record(home, &id, &record, tunnel_marker)?;
    crate::control::announce_registry_change(home);
    say!("Removed: {id} ({})", record.source.display());
    Ok(())
}

/// `drop cleanup [--unopened SPAN]`: stops and removes pages and apps
/// whose source is gone, pages that expired, and with `--unopened` pages
/// no human opened in their first SPAN.
pub fn cleanup(home: &Home, tunnel_marker: &Path, unopened: Option<&str>) -> Result<(), CliError> {
    let unopened = unopened
        .map(|text| {
            crate::when::parse_span(text).ok_or_else(|| CliError::BadTime {
                what: "--unopened",
                value: text.to_owned(),
            })
        })
        .transpose()?;
    let now = SystemTime::now();
    let pages = home.registry().load()?;
    let why = |r: &Record| -> Option<&'static str> {
        let never_opened = |span: Duration| {
            !r.is_app()
                && r.views == 0
                && parse_rfc3339(&r.created_at).is_some_and(|at| at + span <= now)
        };
        match () {
            _ if !r.source.exists() => Some("source gone"),
            _ if r.expired(now) => Some("expired"),
            _ if unopened.is_some_and(never_opened) => Some("never opened"),
            _ => None,
        }
    };
    let gone: Vec<(String, Record, &str)> = pages
        .iter()
        .filter_map(|(id, r)| Some((id.to_owned(), r.clone(), why(r)?)))
        .collect();
    for (id, record, _) in &gone {
        remove_record(home, id, record, tunnel_marker)?;
    }
    crate::control::announce_registry_change(home);
    if gone.is_empty() {
        say!("Nothing to clean up.");
        return Ok(());
    }
    say!("Removed {} page(s):", gone.len());
    for (id, record, why) in gone {
        say!("  {id}  {}  ({why})", record.source.display());
    }
    Ok(())
}

/// `drop wait <page> [--timeout SPAN] [--since-publish] [--json]`: blocks
/// until a human opens the page (a link preview does not count), or, with
/// `--since-publish`, returns at once if one already did; then prints the
/// receipt. Fails when the timeout passes first.
pub fn wait(
    home: &Home,
    query: &str,
    timeout: Option<&str>,
    since_publish: bool,
    json: bool,
) -> Result<(), CliError> {
    let timeout = timeout
        .map(|text| {
            crate::when::parse_span(text).ok_or_else(|| CliError::BadTime {
                what: "--timeout",
                value: text.to_owned(),
            })
        })
        .transpose()?;
    let pages = home.registry().load()?;
    let found = pages.lookup(query)?;
    let id = found.id.to_owned();
    if found.record.is_app() {
        return Err(CliError::WaitOnApp {
            query: query.to_owned(),
        });
    }
    let baseline = if since_publish { 0 } else { found.record.views };
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let pages = home.registry().load()?;
        let Some(record) = pages.get(&id) else {
            return Err(CliError::PageGone { id });
        };
        if record.views > baseline {
            let urls = Urls::load(home)?;
            let row = PageRow::new(&urls, &id, record);
            match json {
                true => print_json(&row.to_json()),
                false => say!(
                    "Opened: {}  — {}",
                    row.url,
                    crate::output::receipt(record, SystemTime::now())
                ),
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(CliError::NotOpened {
                id,
                waited: crate::when::show_span(timeout.unwrap_or_default()),
            });
        }
        std::thread::sleep(WAIT_POLL);
    }
}

/// How often `drop wait` looks at the registry (the server writes what it
/// counted within a few seconds).
const WAIT_POLL: Duration = Duration::from_millis(250);

/// Removes a record; an app is stopped first (and its tunnel closed), so
/// no process is orphaned. With a daemon running, it does both in the
/// app's turn, so a `drop start` at the same moment cannot slip in between.
fn remove_record(
    home: &Home,
    id: &str,
    record: &Record,
    tunnel_marker: &Path,
) -> Result<(), CliError> {
    if record.is_app() && running_server(home.load_server_state()?.as_ref()).is_some() {
        let request = ControlRequest::RemoveApp {
            id: id.to_owned(),
            stop_grace_ms: Settings::from_env()?.apps_given.stop_grace_ms(),
        };
        return match crate::control::send(home, &request)? {
            ControlReply::Removed { .. } => Ok(()),
            ControlReply::Failed { error } => Err(CliError::App(error)),
            other => Err(crate::apps::unexpected(&other)),
        };
    }
    if record.is_app() && (record.pid.is_some() || record.tunnel_state.is_some()) {
        crate::apps::stop_app(home, id, record, tunnel_marker)?;
    }
    home.registry().update(|pages: &mut Pages| {
        pages.remove(id);
        Ok::<_, RegistryError>(())
    })?;
    Ok(())
}
