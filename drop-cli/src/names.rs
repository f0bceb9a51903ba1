//! How commands name a page: by full id, by name, by the path it was
//! published from, or by a unique id prefix, in that order.

use std::path::PathBuf;

use drop_registry::{Lookup, Pages, Record, RegistryError};

use crate::error::CliError;

/// The fewest characters of an id `remove` takes as a prefix: a shorter
/// one would too easily name another page than the one meant.
pub const MIN_REMOVE_PREFIX: usize = 4;

/// The one page `query` names: by full id or name, else the page
/// published from the path it names, else by unique id prefix.
pub fn find_one<'a>(pages: &'a Pages, query: &str) -> Result<Lookup<'a>, CliError> {
    if let Some(found) = exact(pages, query)? {
        return Ok(found);
    }
    match published_from(pages, query).1.as_slice() {
        [] => Ok(pages.lookup(query)?),
        [one] => Ok(*one),
        several => Err(RegistryError::Ambiguous {
            query: query.to_owned(),
            candidates: several.iter().map(|l| l.id.to_owned()).collect(),
        }
        .into()),
    }
}

/// The page with exactly this id, or this name, unless the name is also a
/// path published as another page: then which is meant is asked.
fn exact<'a>(pages: &'a Pages, query: &str) -> Result<Option<Lookup<'a>>, CliError> {
    let Some(found) = pages.lookup_exact(query) else {
        return Ok(None);
    };
    let by_name = found.id != query;
    let (path, published) = published_from(pages, query);
    match (path, published.iter().find(|p| p.id != found.id)) {
        (Some(path), Some(other)) if by_name => Err(CliError::NameOrPath {
            query: query.to_owned(),
            named: found.id.to_owned(),
            published: other.id.to_owned(),
            path,
        }),
        _ => Ok(Some(found)),
    }
}

/// The path `query` names, made canonical, and the pages published from it.
fn published_from<'a>(pages: &'a Pages, query: &str) -> (Option<PathBuf>, Vec<Lookup<'a>>) {
    let source = std::fs::canonicalize(query).ok();
    let published = source
        .as_deref()
        .map_or_else(Vec::new, |s| pages.by_source(s));
    (source, published)
}

/// The pages `query` names for `remove`: by full id or name, else every
/// page published from the path it names, else by id prefix.
pub fn resolve_all(pages: &Pages, query: &str) -> Result<Vec<(String, Record)>, CliError> {
    let owned = |found: Lookup<'_>| (found.id.to_owned(), found.record.clone());
    if let Some(found) = exact(pages, query)? {
        return Ok(vec![owned(found)]);
    }
    let (source, published) = published_from(pages, query);
    if !published.is_empty() {
        return Ok(published.into_iter().map(owned).collect());
    }
    match pages.lookup_with_prefix_of(query, MIN_REMOVE_PREFIX) {
        Ok(found) => Ok(vec![owned(found)]),
        Err(RegistryError::NotFound { .. }) if source.is_some() => Err(CliError::NotPublished {
            path: source.expect("checked"),
        }),
        Err(e) => Err(e.into()),
    }
}
