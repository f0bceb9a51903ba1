//! Follows `pages.json` with the operating system's file notifications
//! (inotify on Linux), so that the catalog sees writers that do not ask the
//! daemon to reload (an edit by hand, another drop version) without the
//! daemon waking up to poll. A slow poll is kept only as a fallback.

use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::catalog::Catalog;
use tracing::warn;

/// How often the registry is checked while notifications work: a safety
/// net for events the kernel dropped (a queue overflow), not the way
/// changes are seen.
pub const SAFETY_POLL: Duration = Duration::from_secs(60);
/// How often it is checked when notifications cannot be had.
pub const FALLBACK_POLL: Duration = Duration::from_secs(2);
/// How soon a registry another program is writing in place is read again:
/// its last write may bring no notification of its own (one was pending).
const TORN_RETRY: Duration = Duration::from_millis(50);

/// Refreshes `catalog` whenever its `pages.json` is replaced or changed,
/// until the task is aborted.
pub async fn follow_registry(catalog: Arc<Catalog>) {
    let (tx, mut changed) = mpsc::channel::<()>(1);
    let watcher = watch_folder_of(&catalog, tx);
    let poll = match &watcher {
        Ok(_) => SAFETY_POLL,
        Err(e) => {
            warn!(
                "cannot watch the registry ({e}); checking it every {} s instead",
                FALLBACK_POLL.as_secs()
            );
            FALLBACK_POLL
        }
    };
    // A first look once the watch is set: a writer may have finished
    // between the catalog's first load and the watch.
    let mut settled = false;
    loop {
        let wait = if settled { poll } else { TORN_RETRY };
        tokio::select! {
            _ = changed.recv() => {}
            () = tokio::time::sleep(wait) => {}
        }
        let catalog = catalog.clone();
        settled = crate::blocking::blocking(move || catalog.refresh()).await;
    }
}

/// Watches the folder of `pages.json` (the file itself is replaced by a
/// rename, so a watch on it would end with the first write) and signals
/// `tx` for events that name it.
fn watch_folder_of(
    catalog: &Catalog,
    tx: mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    let path = catalog.registry_path().to_owned();
    let folder = path.parent().map(ToOwned::to_owned).unwrap_or_default();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match event {
            Ok(event) => !matches!(event.kind, EventKind::Access(_)) && event.paths.contains(&path),
            // Overflow or a watch error: look, to be safe.
            Err(_) => true,
        };
        if relevant {
            // A full channel already has a refresh pending.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&folder, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use drop_registry::{Record, RegistryError};

    /// A page another writer adds is in the catalog within moments, long
    /// before the safety poll.
    #[tokio::test]
    async fn a_change_by_another_writer_is_seen_without_polling() {
        let dir = tempfile::tempdir().unwrap();
        let registry = drop_registry::Registry::at(dir.path().join("pages.json"));
        let catalog = Arc::new(Catalog::new(registry.clone()));
        let follower = tokio::spawn(follow_registry(catalog.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        registry
            .update(|p| {
                p.insert("page1".into(), Record::static_page("/a".into(), false));
                Ok::<_, RegistryError>(())
            })
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        // `cached_ids` does not refresh by itself, unlike `page`.
        while !catalog.knows("page1") {
            assert!(tokio::time::Instant::now() < deadline, "change not seen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        follower.abort();
    }

    /// A registry another program writes in place, slowly (truncated, half
    /// written, then the rest), is read whole once it is done: its new page
    /// is served, and nothing is called corrupt or copied aside.
    #[tokio::test]
    async fn a_registry_written_in_place_slowly_is_read_once_whole() {
        let dir = tempfile::tempdir().unwrap();
        let registry = drop_registry::Registry::at(dir.path().join("pages.json"));
        registry
            .update(|p| {
                p.insert("page1".into(), Record::static_page("/a".into(), false));
                Ok::<_, RegistryError>(())
            })
            .unwrap();
        let catalog = Arc::new(Catalog::new(registry.clone()));
        let follower = tokio::spawn(follow_registry(catalog.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut pages = registry.load().unwrap();
        pages.insert("page2".into(), Record::static_page("/b".into(), false));
        let json = serde_json::to_vec_pretty(&pages).unwrap();
        let (first, second) = json.split_at(json.len() / 2);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(registry.path())
            .unwrap();
        std::io::Write::write_all(&mut file, first).unwrap();
        // A visitor asks for the new page meanwhile.
        assert!(catalog.page("page2").is_none());
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::io::Write::write_all(&mut file, second).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !catalog.knows("page2") {
            assert!(tokio::time::Instant::now() < deadline, "page not served");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(catalog.knows("page1"));
        let copies = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .count();
        assert_eq!(copies, 0, "nothing was called corrupt");
        follower.abort();
    }
}
