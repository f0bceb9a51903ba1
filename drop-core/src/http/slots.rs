//! Connection slots. The connection cap bounds memory, but a cap filled by
//! idle sockets (half-open connections that send nothing, keep-alive
//! connections between requests) would make a fresh visitor wait for the
//! header-read timeout. So a connection is idle from its accept, and again
//! after each response, until a request head arrives; when every slot is
//! taken, the connection idle for longest is closed to make room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One connection's slot.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// 0 while a request is being answered, else when it became idle (a
    /// sequence number: smaller is longer ago).
    idle_since: AtomicU64,
    /// Woken to close the connection.
    evict: Notify,
}

impl Slot {
    /// Resolves when the connection is to be closed to make room.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// Every open connection's slot.
#[derive(Debug, Default)]
pub(super) struct Slots {
    clock: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
}

impl Slots {
    /// A slot for a connection just accepted: idle until its first request.
    pub(super) fn open(&self) -> (u64, Arc<Slot>) {
        let id = self.tick();
        let slot = Arc::new(Slot {
            idle_since: AtomicU64::new(id),
            evict: Notify::new(),
        });
        self.open
            .lock()
            .expect("slots lock")
            .insert(id, slot.clone());
        (id, slot)
    }

    /// The connection `id` has closed.
    pub(super) fn close(&self, id: u64) {
        self.open.lock().expect("slots lock").remove(&id);
    }

    /// A request head arrived: the connection is busy.
    pub(super) fn busy(&self, slot: &Slot) {
        slot.idle_since.store(0, Ordering::SeqCst);
    }

    /// The response is written: the connection waits for another request.
    pub(super) fn idle(&self, slot: &Slot) {
        slot.idle_since.store(self.tick(), Ordering::SeqCst);
    }

    /// Closes the connection idle for longest, if any is idle. Returns
    /// whether one was.
    pub(super) fn evict_oldest_idle(&self) -> bool {
        let mut open = self.open.lock().expect("slots lock");
        let oldest = open
            .iter()
            .map(|(id, slot)| (slot.idle_since.load(Ordering::SeqCst), *id))
            .filter(|(since, _)| *since != 0)
            .min();
        let Some((_, id)) = oldest else {
            return false;
        };
        if let Some(slot) = open.remove(&id) {
            // `notify_one` keeps the wakeup for a task not waiting yet.
            slot.evict.notify_one();
        }
        true
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_idle_for_longest_goes_first_and_busy_ones_never() {
        let slots = Slots::default();
        let (a, slot_a) = slots.open();
        let (_b, slot_b) = slots.open();
        let (_c, slot_c) = slots.open();
        slots.busy(&slot_a);
        slots.busy(&slot_c);
        slots.idle(&slot_c);
        // b has been idle since its accept, c only since its response.
        assert!(slots.evict_oldest_idle());
        assert!(!slots.open.lock().unwrap().contains_key(&_b));
        assert!(slots.evict_oldest_idle());
        assert!(!slots.evict_oldest_idle(), "a is busy");
        slots.close(a);
        assert!(slots.open.lock().unwrap().is_empty());
        let _ = (slot_b, slot_a);
    }
}
