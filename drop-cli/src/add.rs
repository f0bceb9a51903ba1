//! `drop add`: publish a file, or a folder limited by its manifest.

use std::path::{Path, PathBuf};

use drop_core::manifest::MANIFEST_NAME;
use drop_core::safe_path::is_never_served;
use drop_core::{Manifest, generate_password, hash_password, new_page_id};
use drop_registry::{Home, Record};
use serde_json::Value;

use crate::daemon::running_server;
use crate::error::CliError;
use crate::output::{PageRow, print_json};
use crate::urls::server_base;

/// What `drop add` may set on a page besides its source.
pub struct Details {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some("")` asks for a generated password.
    pub password: Option<String>,
}

/// Publishes `path`. Adding a source that is already published returns
/// that page (updating its name, description or password when given)
/// rather than a second URL for the same thing.
pub fn add(home: &Home, path: &Path, details: Details, json: bool) -> Result<(), CliError> {
    let (source, is_dir) = check_source(path)?;
    if let Some(name) = &details.name {
        check_name(name)?;
    }
    let generated = (details.password.as_deref() == Some("")).then(generate_password);
    let password_hash = generated
        .as_deref()
        .or(details.password.as_deref())
        .map(hash_password);
    home.ensure()?;
    let (id, record, reused) = home.registry().update(|pages| {
        if let Some(name) = &details.name
            && let Some(owner) = pages.by_name(name)
            && owner.record.source != source
        {
            return Err(CliError::NameTaken {
                name: name.clone(),
                id: owner.id.to_owned(),
            });
        }
        let existing = pages
            .iter()
            .find(|(_, r)| !r.is_app() && r.source == source && r.is_dir == is_dir)
            .map(|(id, _)| id.to_owned());
        let reused = existing.is_some();
        let id = existing.unwrap_or_else(|| unused_id(|id| pages.contains(id)));
        if !reused {
            pages.insert(id.clone(), Record::static_page(source.clone(), is_dir));
        }
        let record = pages.get_mut(&id).expect("present");
        if let Some(name) = &details.name {
            record.name.clone_from(name);
        }
        if let Some(description) = &details.description {
            record.description.clone_from(description);
        }
        if let Some(hash) = &password_hash {
            record.password_hash.clone_from(hash);
        }
        Ok((id, record.clone(), reused))
    })?;
    crate::control::announce_registry_change(home);
    let state = home.load_server_state()?;
    let running = running_server(state.as_ref()).is_some();
    let row = PageRow::new(&server_base(state.as_ref()), &id, &record);
    if json {
        let mut doc = row.to_json();
        doc["already_published"] = Value::Bool(reused);
        doc["server_running"] = Value::Bool(running);
        if let Some(password) = &generated {
            doc["password"] = Value::String(password.clone());
        }
        print_json(&doc);
        return Ok(());
    }
    println!("Published: {}", row.url);
    if let Some(password) = &generated {
        println!("Password: {password}");
    }
    if reused {
        println!("  (already published: same page as before)");
    }
    if !running {
        println!("  (the server is not running: start it with 'drop start')");
    }
    Ok(())
}

/// The canonical source and whether it is a folder, or why it cannot be published.
fn check_source(path: &Path) -> Result<(PathBuf, bool), CliError> {
    let source = std::fs::canonicalize(path).map_err(|_| CliError::NoSuchPath {
        path: path.to_owned(),
    })?;
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
    let manifest_path = source.join(MANIFEST_NAME);
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::NoManifest { dir: source });
        }
        Err(e) => {
            return Err(CliError::io(format!("read `{}`", manifest_path.display()))(
                e,
            ));
        }
    };
    let problem = match Manifest::parse(&text) {
        Ok(manifest) if manifest.is_empty() => Some("lists no pattern".to_owned()),
        Ok(_) => None,
        Err(e) => Some(format!("does not parse: {e}")),
    };
    match problem {
        Some(problem) => Err(CliError::BadManifest {
            path: manifest_path,
            problem,
        }),
        None => Ok((source, true)),
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
