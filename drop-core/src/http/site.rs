//! What one page server serves from: the catalog of pages, the gate of
//! protected ones, the small files kept in memory, the receipts of who
//! opened what, and the nonces of the daemon's own tunnel probes.

use std::sync::Arc;

use super::cache::FileCache;
use super::probe::Probes;
use super::receipts::Receipts;
use crate::auth::SessionKey;
use crate::auth::gate::Gate;
use crate::page::Catalog;

/// The pages a server serves, and what it keeps between requests.
#[derive(Debug)]
pub struct Site {
    catalog: Arc<Catalog>,
    gate: Gate,
    files: FileCache,
    probes: Arc<Probes>,
    receipts: Receipts,
}

impl Site {
    /// A site over `catalog`, signing sessions with `key`.
    pub fn new(catalog: Arc<Catalog>, key: SessionKey) -> Self {
        Self::with_probes(catalog, key, Arc::default())
    }

    /// A site that also answers the daemon's tunnel probes with the
    /// nonces in `probes`.
    pub fn with_probes(catalog: Arc<Catalog>, key: SessionKey, probes: Arc<Probes>) -> Self {
        Site {
            catalog,
            receipts: Receipts::new(key.clone()),
            gate: Gate::new(key),
            files: FileCache::default(),
            probes,
        }
    }

    /// Who opened which page.
    pub fn receipts(&self) -> &Receipts {
        &self.receipts
    }

    /// The nonces of the daemon's own tunnel probes.
    pub(crate) fn probes(&self) -> &Probes {
        &self.probes
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
