//! What one page server serves from: the catalog of pages, the gate of
//! protected ones, the small files kept in memory, the receipts of who
//! opened what, the nonces of the daemon's own tunnel probes, and the clock
//! that says which pages have expired.

use std::sync::Arc;
use std::time::SystemTime;

use super::cache::FileCache;
use super::clock::{Clock, SystemClock};
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
    clock: Arc<dyn Clock>,
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
            clock: Arc::new(SystemClock),
        }
    }

    /// The same site going by `clock` rather than the system's: a test
    /// moves it to expire a page without waiting.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The time by the site's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
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
