//! The registry's content in memory, and how users name a page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Record, RegistryError};

/// Every page, by id. Serialises as the `pages.json` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pages {
    records: BTreeMap<String, Record>,
}

/// A page found by [`Pages::lookup`].
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// The page's full id.
    pub id: &'a str,
    /// Its record.
    pub record: &'a Record,
}

impl Pages {
    /// The record with exactly this id.
    pub fn get(&self, id: &str) -> Option<&Record> {
        self.records.get(id)
    }

    /// The record with exactly this id, to change it.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Record> {
        self.records.get_mut(id)
    }

    /// Adds or replaces a record.
    pub fn insert(&mut self, id: String, record: Record) {
        self.records.insert(id, record);
    }

    /// Removes a record and returns it.
    pub fn remove(&mut self, id: &str) -> Option<Record> {
        self.records.remove(id)
    }

    /// Whether an id is taken.
    pub fn contains(&self, id: &str) -> bool {
        self.records.contains_key(id)
    }

    /// Pages in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Record)> {
        self.records.iter().map(|(id, r)| (id.as_str(), r))
    }

    /// How many pages there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there is no page.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The page with this name, if any.
    pub fn by_name(&self, name: &str) -> Option<Lookup<'_>> {
        self.iter()
            .find(|(_, r)| !r.name.is_empty() && r.name == name)
            .map(|(id, record)| Lookup { id, record })
    }

    /// The page with exactly this id, else the one with this name.
    pub fn lookup_exact(&self, query: &str) -> Option<Lookup<'_>> {
        match self.records.get_key_value(query) {
            Some((id, record)) => Some(Lookup { id, record }),
            None => self.by_name(query),
        }
    }

    /// Finds a page by full id, then by name, then by unique id prefix.
    pub fn lookup(&self, query: &str) -> Result<Lookup<'_>, RegistryError> {
        self.lookup_with_prefix_of(query, 1)
    }

    /// Every page published from `source` (a canonical path), in id order.
    pub fn by_source(&self, source: &std::path::Path) -> Vec<Lookup<'_>> {
        self.iter()
            .filter(|(_, r)| r.source == source)
            .map(|(id, record)| Lookup { id, record })
            .collect()
    }

    /// Like [`Pages::lookup`], but an id prefix must be at least
    /// `min_prefix` characters long: what destroys a page must not hit it
    /// by a lucky short prefix.
    pub fn lookup_with_prefix_of(
        &self,
        query: &str,
        min_prefix: usize,
    ) -> Result<Lookup<'_>, RegistryError> {
        if let Some(found) = self.lookup_exact(query) {
            return Ok(found);
        }
        let not_found = || RegistryError::NotFound {
            query: query.to_owned(),
        };
        if query.is_empty() {
            return Err(not_found());
        }
        let mut matches = self
            .records
            .range(query.to_owned()..)
            .take_while(|(id, _)| id.starts_with(query));
        let first = matches.next().ok_or_else(not_found)?;
        let rest: Vec<&String> = matches.map(|(id, _)| id).collect();
        if query.chars().count() < min_prefix {
            let mut matching = vec![first.0.clone()];
            matching.extend(rest.into_iter().cloned());
            return Err(RegistryError::PrefixTooShort {
                query: query.to_owned(),
                min: min_prefix,
                matching,
            });
        }
        if rest.is_empty() {
            return Ok(Lookup {
                id: first.0,
                record: first.1,
            });
        }
        let mut candidates = vec![first.0.clone()];
        candidates.extend(rest.into_iter().cloned());
        Err(RegistryError::Ambiguous {
            query: query.to_owned(),
            candidates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(ids: &[(&str, &str)]) -> Pages {
        let mut pages = Pages::default();
        for (id, name) in ids {
            let mut r = Record::static_page("/x".into(), false);
            r.name = (*name).to_owned();
            pages.insert((*id).to_owned(), r);
        }
        pages
    }

    #[test]
    fn finds_by_full_id_name_and_unique_prefix() {
        let p = pages(&[("abc123", "docs"), ("abd456", ""), ("zzz999", "")]);
        assert_eq!(p.lookup("abc123").unwrap().id, "abc123");
        assert_eq!(p.lookup("docs").unwrap().id, "abc123");
        assert_eq!(p.lookup("abd").unwrap().id, "abd456");
        assert_eq!(p.lookup("z").unwrap().id, "zzz999");
    }

    #[test]
    fn ambiguous_prefix_lists_every_candidate() {
        let p = pages(&[("abc123", ""), ("abd456", ""), ("zzz999", "")]);
        match p.lookup("ab").unwrap_err() {
            RegistryError::Ambiguous { candidates, .. } => {
                assert_eq!(candidates, vec!["abc123", "abd456"]);
            }
            other => panic!("expected ambiguity, got {other:?}"),
        }
    }

    #[test]
    fn unknown_and_empty_queries_are_not_found() {
        let p = pages(&[("abc123", "")]);
        assert!(matches!(p.lookup("q"), Err(RegistryError::NotFound { .. })));
        assert!(matches!(p.lookup(""), Err(RegistryError::NotFound { .. })));
    }

    #[test]
    fn a_short_prefix_is_refused_where_a_longer_one_is_asked_for() {
        let p = pages(&[("abc123", "docs"), ("zzz999", "")]);
        match p.lookup_with_prefix_of("abc", 4).unwrap_err() {
            RegistryError::PrefixTooShort { matching, min, .. } => {
                assert_eq!((matching, min), (vec!["abc123".to_owned()], 4));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(p.lookup_with_prefix_of("abc1", 4).unwrap().id, "abc123");
        // Full ids and names are never prefixes.
        assert_eq!(p.lookup_with_prefix_of("docs", 10).unwrap().id, "abc123");
        assert_eq!(p.lookup_with_prefix_of("zzz999", 10).unwrap().id, "zzz999");
        assert!(matches!(
            p.lookup_with_prefix_of("q", 4),
            Err(RegistryError::NotFound { .. })
        ));
    }

    #[test]
    fn a_full_id_wins_over_a_name_that_equals_it() {
        let p = pages(&[("abc123", ""), ("def456", "abc123")]);
        assert_eq!(p.lookup("abc123").unwrap().id, "abc123");
    }
}
