//! What one page server serves from: the catalog of pages, the gate of
//! protected ones, and the small files kept in memory.

use std::sync::Arc;

use super::cache::FileCache;
use crate::auth::SessionKey;
use crate::auth::gate::Gate;
use crate::page::Catalog;

/// The pages a server serves, and what it keeps between requests.
#[derive(Debug)]
pub struct Site {
    catalog: Arc<Catalog>,
    gate: Gate,
    files: FileCache,
}

impl Site {
    /// A site over `catalog`, signing sessions with `key`.
    pub fn new(catalog: Arc<Catalog>, key: SessionKey) -> Self {
        Site {
            catalog,
            gate: Gate::new(key),
            files: FileCache::default(),
        }
    }

    /// The pages.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// What checks logins to protected pages.
    pub(crate) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Small files kept between requests.
    pub(crate) fn files(&self) -> &FileCache {
        &self.files
    }
}
