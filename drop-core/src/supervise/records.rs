//! How the daemon writes what it learns into the registry.

use crate::blocking::blocking;
use drop_registry::{Home, Pages, Record, RegistryError, TunnelState};
use tracing::warn;

/// Changes the record `id` under the registry lock, off the async threads
/// (a `drop` command may hold the lock for a moment). A record that is gone
/// is left gone; a failure is logged, as there is nobody else to tell.
pub(crate) async fn update_record(
    home: &Home,
    id: &str,
    what: &'static str,
    change: impl FnOnce(&mut Record) + Send + 'static,
) {
    let (registry, id) = (home.registry(), id.to_owned());
    let written = blocking(move || {
        registry
            .update(|pages| {
                if let Some(record) = pages.get_mut(&id) {
                    change(record);
                }
                Ok::<_, RegistryError>(())
            })
            .map_err(|e| (id, e))
    })
    .await;
    if let Err((id, e)) = written {
        warn!("could not record {what} {id}: {e}");
    }
}

/// Changes the server's tunnel in `tunnel.json`, off the async threads; a
/// failure is logged.
pub(crate) async fn update_server_tunnel(
    home: &Home,
    change: impl FnOnce(TunnelState) -> TunnelState + Send + 'static,
) {
    let home = home.clone();
    let saved = blocking(move || {
        let now = home.load_tunnel_state()?.unwrap_or_default();
        home.save_tunnel_state(&change(now))
    })
    .await;
    if let Err(e) = saved {
        warn!("could not record the server's tunnel: {e}");
    }
}

/// The pages of the registry, read off the async threads.
pub(crate) async fn load_pages(home: &Home) -> Result<Pages, RegistryError> {
    let registry = home.registry();
    blocking(move || registry.load()).await
}
