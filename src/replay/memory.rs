use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{BoxFuture, LeaseId, ReplayKey, ReplayStore, Reservation, StoreError};

/// Default for [`MemoryStore::with_capacity`]: 100,000 entries (about 10 MB).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// An in-process [`ReplayStore`], bounded in size.
///
/// When full it makes room by dropping expired entries, then the oldest done ones; it
/// never drops a request in flight. Only when every entry is in flight does
/// [`reserve`](ReplayStore::reserve) answer [`Reservation::Full`] (the layer then
/// answers 503 with `Retry-After`).
///
/// It protects one process: receivers running as several replicas need a shared
/// store such as `RedisStore` (feature `redis`).
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<ReplayKey, Entry>,
    /// Reservations in the order they were made: with one lease length, the order
    /// in which they expire. Records whose entry changed since are skipped.
    in_flight: VecDeque<(ReplayKey, u64)>,
    /// Completions in the order they were made, oldest first.
    done: VecDeque<(ReplayKey, u64)>,
    next_id: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    expires: Instant,
    done: bool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` entries (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// The number of entries held, expired ones included until they are swept.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await-free step, so a panic elsewhere
        // while the lock was held leaves nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn reserve_now(&self, key: &ReplayKey, lease: Duration, now: Instant) -> Reservation {
        let mut state = self.lock();
        state.sweep(now);
        if let Some(entry) = state.entries.get(key) {
            if entry.expires > now {
                return if entry.done {
                    Reservation::Done
                } else {
                    Reservation::InFlight
                };
            }
            state.entries.remove(key);
        }
        match state.insert_new(key, now + lease, false, self.capacity) {
            Some(id) => Reservation::Reserved(LeaseId(u128::from(id))),
            None => Reservation::Full,
        }
    }

    fn complete_now(&self, key: &ReplayKey, lease: LeaseId, ttl: Duration, now: Instant) {
        let mut state = self.lock();
        match state.entries.get_mut(key) {
            Some(entry) if u128::from(entry.id) == lease.0 && !entry.done => {
                entry.done = true;
                entry.expires = now + ttl;
                let id = entry.id;
                state.done.push_back((*key, id));
            }
            Some(entry) if entry.expires > now => {} // someone else's now
            _ => {
                // The lease lapsed and nobody took the key: still remember it.
                state.entries.remove(key);
                state.insert_new(key, now + ttl, true, self.capacity);
            }
        }
    }

    fn release_now(&self, key: &ReplayKey, lease: LeaseId) {
        let mut state = self.lock();
        if matches!(state.entries.get(key), Some(e) if u128::from(e.id) == lease.0 && !e.done) {
            state.entries.remove(key);
        }
    }
}

impl State {
    /// Adds an entry under a fresh id after making room; `None` when there is none.
    fn insert_new(
        &mut self,
        key: &ReplayKey,
        expires: Instant,
        done: bool,
        capacity: usize,
    ) -> Option<u64> {
        if !self.make_room(capacity) {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(*key, Entry { id, expires, done });
        let queue = if done {
            &mut self.done
        } else {
            &mut self.in_flight
        };
        queue.push_back((*key, id));
        Some(id)
    }

    fn is_live(&self, (key, id): &(ReplayKey, u64), done: bool) -> bool {
        matches!(self.entries.get(key), Some(e) if e.id == *id && e.done == done)
    }

    /// Drops expired entries and stale records from the front of both queues, and
    /// compacts a queue that holds far more records than live entries.
    fn sweep(&mut self, now: Instant) {
        for done in [false, true] {
            loop {
                let queue = if done { &self.done } else { &self.in_flight };
                let Some(&record) = queue.front() else { break };
                if self.is_live(&record, done) {
                    if self.entries[&record.0].expires > now {
                        break;
                    }
                    self.entries.remove(&record.0);
                }
                if done {
                    self.done.pop_front();
                } else {
                    self.in_flight.pop_front();
                }
            }
        }
        let limit = 2 * self.entries.len() + 1024;
        if self.in_flight.len() > limit {
            let live: VecDeque<_> = std::mem::take(&mut self.in_flight)
                .into_iter()
                .filter(|r| self.is_live(r, false))
                .collect();
            self.in_flight = live;
        }
        if self.done.len() > limit {
            let live: VecDeque<_> = std::mem::take(&mut self.done)
                .into_iter()
                .filter(|r| self.is_live(r, true))
                .collect();
            self.done = live;
        }
    }

    /// Makes room for one entry by dropping the oldest done entries; in-flight ones
    /// are never dropped. Returns whether there is room.
    fn make_room(&mut self, capacity: usize) -> bool {
        while self.entries.len() >= capacity {
            let Some(record) = self.done.pop_front() else {
                return false;
            };
            if self.is_live(&record, true) {
                self.entries.remove(&record.0);
            }
        }
        true
    }
}

impl ReplayStore for MemoryStore {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Reservation, StoreError>> {
        let reservation = self.reserve_now(key, lease, Instant::now());
        Box::pin(std::future::ready(Ok(reservation)))
    }

    fn complete<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: LeaseId,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.complete_now(key, lease, ttl, Instant::now());
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: LeaseId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.release_now(key, lease);
        Box::pin(std::future::ready(Ok(())))
    }

    fn abandon(&self, key: &ReplayKey, lease: LeaseId) {
        self.release_now(key, lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(30);
    const TTL: Duration = Duration::from_secs(600);

    fn key(n: u8) -> ReplayKey {
        ReplayKey::new([n; 32])
    }

    fn reserved(r: Reservation) -> LeaseId {
        match r {
            Reservation::Reserved(lease) => lease,
            other => panic!("expected a reservation, got {other:?}"),
        }
    }

    #[test]
    fn reserve_complete_release_cycle() {
        let store = MemoryStore::default();
        let now = Instant::now();
        let lease = reserved(store.reserve_now(&key(1), LEASE, now));
        assert_eq!(
            store.reserve_now(&key(1), LEASE, now),
            Reservation::InFlight
        );
        store.release_now(&key(1), lease);
        let lease = reserved(store.reserve_now(&key(1), LEASE, now));
        store.complete_now(&key(1), lease, TTL, now);
        assert_eq!(store.reserve_now(&key(1), LEASE, now), Reservation::Done);
        assert_eq!(
            store.reserve_now(&key(1), LEASE, now + TTL + Duration::from_secs(1)),
            Reservation::Reserved(LeaseId(2))
        );
    }

    #[test]
    fn an_expired_lease_frees_the_key_and_a_stale_release_does_nothing() {
        let store = MemoryStore::default();
        let now = Instant::now();
        let old = reserved(store.reserve_now(&key(1), LEASE, now));
        let later = now + LEASE + Duration::from_secs(1);
        let new = reserved(store.reserve_now(&key(1), LEASE, later));
        store.release_now(&key(1), old);
        assert_eq!(
            store.reserve_now(&key(1), LEASE, later),
            Reservation::InFlight
        );
        store.complete_now(&key(1), old, TTL, later);
        assert_eq!(
            store.reserve_now(&key(1), LEASE, later),
            Reservation::InFlight
        );
        store.complete_now(&key(1), new, TTL, later);
        assert_eq!(store.reserve_now(&key(1), LEASE, later), Reservation::Done);
    }

    #[test]
    fn full_store_evicts_expired_then_oldest_done_never_in_flight() {
        let store = MemoryStore::with_capacity(3);
        let now = Instant::now();
        let a = reserved(store.reserve_now(&key(1), LEASE, now));
        store.complete_now(&key(1), a, TTL, now);
        let b = reserved(store.reserve_now(&key(2), LEASE, now));
        store.complete_now(&key(2), b, TTL, now);
        let _c = reserved(store.reserve_now(&key(3), LEASE, now));
        // Full: the oldest done entry (1) makes room.
        let _d = reserved(store.reserve_now(&key(4), LEASE, now));
        assert_eq!(store.len(), 3);
        assert_eq!(store.reserve_now(&key(2), LEASE, now), Reservation::Done);
        assert_eq!(
            store.reserve_now(&key(3), LEASE, now),
            Reservation::InFlight
        );
        // 2 goes next; then only in-flight entries are left.
        let _e = reserved(store.reserve_now(&key(5), LEASE, now));
        assert_eq!(store.reserve_now(&key(6), LEASE, now), Reservation::Full);
        assert_eq!(
            store.reserve_now(&key(3), LEASE, now),
            Reservation::InFlight
        );
        // Once leases expire there is room again.
        let later = now + LEASE + Duration::from_secs(1);
        assert!(matches!(
            store.reserve_now(&key(6), LEASE, later),
            Reservation::Reserved(_)
        ));
    }

    #[test]
    fn queues_stay_bounded_under_churn() {
        let store = MemoryStore::with_capacity(10);
        let now = Instant::now();
        for i in 0..10_000u32 {
            let k = ReplayKey::new([(i % 7) as u8; 32]);
            if let Reservation::Reserved(lease) = store.reserve_now(&k, LEASE, now) {
                store.release_now(&k, lease);
            }
        }
        let state = store.lock();
        assert!(state.in_flight.len() <= 2 * state.entries.len() + 1025);
    }
}
