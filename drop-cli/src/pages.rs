//! `status`, `list`, `remove` and `cleanup`: read-mostly commands that work
//! from the registry whether or not the server runs.

use drop_registry::{Home, Pages, Record, RegistryError, ServerState};
use serde_json::json;

use crate::daemon::running_server;
use crate::error::CliError;
use crate::output::{PageRow, is_under, print_json, render_rows};
use crate::urls::server_base;

/// `drop status [--json]`.
pub fn status(home: &Home, json: bool) -> Result<(), CliError> {
    let state = home.load_server_state()?;
    let running = running_server(state.as_ref()).is_some();
    let pages = home.registry().load()?;
    let base = server_base(state.as_ref());
    let rows: Vec<PageRow<'_>> = pages
        .iter()
        .map(|(id, r)| PageRow::new(&base, id, r))
        .collect();
    if json {
        print_json(&json!({
            "server": server_json(state.as_ref(), running, &base),
            "pages": rows.iter().map(PageRow::to_json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if running {
        println!("Server: {base} (running)");
    } else {
        println!("Server: not running (start it with 'drop start'; pages will be at {base})");
    }
    println!();
    if rows.is_empty() {
        println!("Pages: none (publish one with 'drop add <path>')");
    } else {
        println!("Pages:");
        print!("{}", render_rows(&rows));
    }
    Ok(())
}

fn server_json(state: Option<&ServerState>, running: bool, base: &str) -> serde_json::Value {
    json!({
        "running": running,
        "url": base,
        "pid": if running { state.and_then(|s| s.pid) } else { None },
        "port": state.map(|s| s.port),
        "host": state.and_then(|s| s.host.clone()),
        "tunnel": null,
    })
}

/// `drop list [--all] [--json]`: pages published from the current folder
/// (or below it), or every page.
pub fn list(home: &Home, all: bool, json: bool) -> Result<(), CliError> {
    let state = home.load_server_state()?;
    let pages = home.registry().load()?;
    let base = server_base(state.as_ref());
    let here = std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .map_err(CliError::io("read the current folder"))?;
    let rows: Vec<PageRow<'_>> = pages
        .iter()
        .filter(|(_, r)| all || is_under(&r.source, &here))
        .map(|(id, r)| PageRow::new(&base, id, r))
        .collect();
    if json {
        print_json(&json!({ "pages": rows.iter().map(PageRow::to_json).collect::<Vec<_>>() }));
    } else if rows.is_empty() && !all {
        println!("No pages from this folder. 'drop list --all' shows every page.");
    } else if rows.is_empty() {
        println!("No pages. Publish one with 'drop add <path>'.");
    } else {
        print!("{}", render_rows(&rows));
    }
    Ok(())
}

/// `drop remove <id|prefix|name>`.
pub fn remove(home: &Home, query: &str) -> Result<(), CliError> {
    let pages = home.registry().load()?;
    let found = pages.lookup(query)?;
    let (id, record) = (found.id.to_owned(), found.record.clone());
    stop_if_app(home, &id, &record)?;
    home.registry().update(|pages| {
        pages.remove(&id);
        Ok::<_, CliError>(())
    })?;
    crate::control::announce_registry_change(home);
    println!("Removed: {id} ({})", record.source.display());
    Ok(())
}

/// `drop cleanup`: stops and removes pages and apps whose source is gone.
pub fn cleanup(home: &Home) -> Result<(), CliError> {
    let pages = home.registry().load()?;
    let gone: Vec<(String, Record)> = pages
        .iter()
        .filter(|(_, r)| !r.source.exists())
        .map(|(id, r)| (id.to_owned(), r.clone()))
        .collect();
    for (id, record) in &gone {
        stop_if_app(home, id, record)?;
    }
    home.registry().update(|pages: &mut Pages| {
        for (id, _) in &gone {
            pages.remove(id);
        }
        Ok::<_, RegistryError>(())
    })?;
    crate::control::announce_registry_change(home);
    if gone.is_empty() {
        println!("Nothing to clean up: every page's source exists.");
        return Ok(());
    }
    println!("Removed {} page(s) whose source is gone:", gone.len());
    for (id, record) in gone {
        println!("  {id}  {}", record.source.display());
    }
    Ok(())
}

/// An app is stopped before its record goes, so no process is orphaned.
fn stop_if_app(home: &Home, id: &str, record: &Record) -> Result<(), CliError> {
    if record.is_app() && record.pid.is_some() {
        crate::apps::stop_app(home, id, record)?;
    }
    Ok(())
}
