//! `status`, `list`, `remove` and `cleanup`: read-mostly commands that work
//! from the registry whether or not the server runs.

use drop_registry::{Home, Pages, RegistryError, ServerState};
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
    let (id, record) = home.registry().update(|pages| {
        let id = pages.lookup(query)?.id.to_owned();
        let record = pages.remove(&id).expect("looked up just now");
        Ok::<_, CliError>((id, record))
    })?;
    crate::control::announce_registry_change(home);
    println!("Removed: {id} ({})", record.source.display());
    Ok(())
}

/// `drop cleanup`: removes pages whose source file or folder is gone.
pub fn cleanup(home: &Home) -> Result<(), CliError> {
    let removed = home.registry().update(|pages: &mut Pages| {
        let gone: Vec<String> = pages
            .iter()
            .filter(|(_, r)| !r.source.exists())
            .map(|(id, _)| id.to_owned())
            .collect();
        let removed: Vec<_> = gone
            .iter()
            .filter_map(|id| Some((id.clone(), pages.remove(id)?)))
            .collect();
        Ok::<_, RegistryError>(removed)
    })?;
    crate::control::announce_registry_change(home);
    if removed.is_empty() {
        println!("Nothing to clean up: every page's source exists.");
        return Ok(());
    }
    println!("Removed {} page(s) whose source is gone:", removed.len());
    for (id, record) in removed {
        println!("  {id}  {}", record.source.display());
    }
    Ok(())
}
