//! Connection slots. The connection cap bounds memory, but a cap filled by
//! idle sockets (half-open connections that send nothing, keep-alive
//! connections between requests) would make a fresh visitor wait for the
//! header-read timeout. So a connection is idle from its accept, and again
//! after each response, until a request head arrives; when every slot is
//! taken, the connections idle for longest are closed to make room, a
//! batch at a time: behind a flood of idle sockets in the listen backlog,
//! one eviction per accept would make a fresh visitor wait while the
//! backlog drains one closed connection at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// At the cap, room is made for this share of the cap at once: 128
/// connections of the default 2,048. An idle connection closed early costs
/// its client a reconnect; one at a time kept a fresh visitor waiting a
/// fifth of a second behind 5,000 idle sockets (README.md, Benchmarks).
const ROOM_SHARE: usize = 16;

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
#[derive(Debug)]
pub(super) struct Slots {
    clock: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    /// How many idle connections one [`Slots::make_room`] closes at most.
    batch: usize,
}

impl Slots {
    /// The slots of a server that serves up to `cap` connections at once.
    pub(super) fn new(cap: usize) -> Self {
        Slots {
            clock: AtomicU64::new(0),
            open: Mutex::default(),
            batch: (cap / ROOM_SHARE).max(1),
        }
    }

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

    /// Closes a batch of the connections idle for longest (busy ones
    /// never). Returns how many it closed.
    pub(super) fn make_room(&self) -> usize {
        let mut open = self.open.lock().expect("slots lock");
        let mut idle: Vec<(u64, u64)> = open
            .iter()
            .map(|(id, slot)| (slot.idle_since.load(Ordering::SeqCst), *id))
            .filter(|(since, _)| *since != 0)
            .collect();
        if idle.len() > self.batch {
            // The oldest `batch`, in one pass rather than a sort.
            idle.select_nth_unstable(self.batch - 1);
            idle.truncate(self.batch);
        }
        for (_, id) in &idle {
            if let Some(slot) = open.remove(id) {
                // `notify_one` keeps the wakeup for a task not waiting yet.
                slot.evict.notify_one();
            }
        }
        idle.len()
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(slots: &Slots, id: u64) -> bool {
        slots.open.lock().unwrap().contains_key(&id)
    }

    #[test]
    fn the_connection_idle_for_longest_goes_first_and_busy_ones_never() {
        let slots = Slots::new(4);
        let (a, slot_a) = slots.open();
        let (b, _slot_b) = slots.open();
        let (c, slot_c) = slots.open();
        slots.busy(&slot_a);
        slots.busy(&slot_c);
        slots.idle(&slot_c);
        // b has been idle since its accept, c only since its response.
        assert_eq!(slots.make_room(), 1);
        assert!(!is_open(&slots, b) && is_open(&slots, c));
        assert_eq!(slots.make_room(), 1);
        assert_eq!(slots.make_room(), 0, "a is busy");
        slots.close(a);
        assert!(slots.open.lock().unwrap().is_empty());
    }

    #[test]
    fn room_is_made_for_a_share_of_the_cap_at_once() {
        let slots = Slots::new(64);
        let ids: Vec<u64> = (0..64).map(|_| slots.open().0).collect();
        assert_eq!(slots.make_room(), 64 / ROOM_SHARE);
        let (closed, kept) = ids.split_at(64 / ROOM_SHARE);
        assert!(closed.iter().all(|id| !is_open(&slots, *id)), "the oldest");
        assert!(kept.iter().all(|id| is_open(&slots, *id)));
    }
}
