use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{LeaseId, ReplayKey, ReplayStore, Reservation, StoreError, StoreFuture};
use crate::clock::Clock;

/// Default for [`MemoryStore::with_capacity`]: 100,000 entries (about 10 MB).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// An in-process [`ReplayStore`], bounded in size.
///
/// When full it makes room by dropping expired entries, then the done entries that
/// expire soonest; it never drops a request in flight. Only when every entry is in
/// flight does [`reserve`](ReplayStore::reserve) answer [`Reservation::Full`] (the
/// layer then answers 503 with `Retry-After`). Entries are kept in order of expiry,
/// so layers with different leases and TTLs can share one store.
///
/// It protects one process: receivers running as several replicas need a shared
/// store such as `RedisStore` (feature `redis`).
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    state: Mutex<State>,
    clock: Clock,
    /// Where the clock's readings start, for monotonic times.
    origin: (Instant, std::time::SystemTime),
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<ReplayKey, Entry>,
    /// In-flight entries by expiry.
    in_flight: BTreeSet<(Instant, u64, ReplayKey)>,
    /// Done entries by expiry.
    done: BTreeSet<(Instant, u64, ReplayKey)>,
    next_seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    lease: LeaseId,
    /// Orders entries with one expiry.
    seq: u64,
    expires: Instant,
    done: bool,
}

impl Entry {
    fn slot(&self, key: ReplayKey) -> (Instant, u64, ReplayKey) {
        (self.expires, self.seq, key)
    }
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
            clock: Clock::system(),
            origin: (Instant::now(), std::time::SystemTime::now()),
        }
    }

    /// Reads the time from `clock` (default: the system's monotonic clock), so that a
    /// test can move it by hand instead of waiting out TTLs and leases.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use std::time::{Duration, SystemTime};
    /// use genesys_webhook::replay::MemoryStore;
    /// use genesys_webhook::Clock;
    ///
    /// let elapsed = Arc::new(AtomicU64::new(0));
    /// let hand = Arc::clone(&elapsed);
    /// let start = SystemTime::now();
    /// let store = MemoryStore::default()
    ///     .clock(Clock::from_fn(move || start + Duration::from_millis(hand.load(Ordering::SeqCst))));
    /// elapsed.fetch_add(600_000, Ordering::SeqCst); // ten minutes later: done keys expired
    /// # let _ = store;
    /// ```
    pub fn clock(mut self, clock: Clock) -> Self {
        self.origin = (Instant::now(), clock.now());
        self.clock = clock;
        self
    }

    fn now(&self) -> Instant {
        self.clock.instant(self.origin)
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

    fn reserve_now(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
        now: Instant,
    ) -> Reservation {
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
            state.remove(key);
        }
        if state.insert(*key, lease, now + duration, false, self.capacity) {
            Reservation::Reserved
        } else {
            Reservation::Full
        }
    }

    fn renew_now(&self, key: &ReplayKey, lease: LeaseId, duration: Duration, now: Instant) -> bool {
        let mut state = self.lock();
        match state.entries.get(key) {
            Some(entry) if entry.lease == lease && !entry.done && entry.expires > now => {
                state.remove(key);
                state.insert(*key, lease, now + duration, false, usize::MAX)
            }
            _ => false,
        }
    }

    fn complete_now(&self, key: &ReplayKey, lease: LeaseId, ttl: Duration, now: Instant) {
        let mut state = self.lock();
        let ours = match state.entries.get(key) {
            Some(entry) if entry.lease == lease && !entry.done => true,
            Some(entry) if entry.expires > now => false, // someone else's now
            // The lease lapsed and nobody took the key: still remember it.
            _ => true,
        };
        if ours {
            state.remove(key);
            // Room for a done entry: it replaces the reservation it completes.
            state.insert(
                *key,
                lease,
                now + ttl,
                true,
                self.capacity.saturating_add(1),
            );
        }
    }

    fn release_now(&self, key: &ReplayKey, lease: LeaseId) {
        let mut state = self.lock();
        if matches!(state.entries.get(key), Some(e) if e.lease == lease && !e.done) {
            state.remove(key);
        }
    }
}

impl State {
    fn remove(&mut self, key: &ReplayKey) {
        if let Some(entry) = self.entries.remove(key) {
            let set = if entry.done {
                &mut self.done
            } else {
                &mut self.in_flight
            };
            set.remove(&entry.slot(*key));
        }
    }

    /// Adds an entry after making room; `false` when there is none.
    fn insert(
        &mut self,
        key: ReplayKey,
        lease: LeaseId,
        expires: Instant,
        done: bool,
        capacity: usize,
    ) -> bool {
        if !self.make_room(capacity) {
            return false;
        }
        self.next_seq += 1;
        let entry = Entry {
            lease,
            seq: self.next_seq,
            expires,
            done,
        };
        let set = if done {
            &mut self.done
        } else {
            &mut self.in_flight
        };
        set.insert(entry.slot(key));
        self.entries.insert(key, entry);
        true
    }

    /// Drops every expired entry.
    fn sweep(&mut self, now: Instant) {
        for done in [false, true] {
            loop {
                let set = if done { &self.done } else { &self.in_flight };
                match set.first() {
                    Some(&(expires, _, key)) if expires <= now => self.remove(&key),
                    _ => break,
                }
            }
        }
    }

    /// Makes room for one entry by dropping the done entries that expire soonest;
    /// in-flight ones are never dropped. Returns whether there is room.
    fn make_room(&mut self, capacity: usize) -> bool {
        while self.entries.len() >= capacity {
            let Some(&(_, _, key)) = self.done.first() else {
                return false;
            };
            self.remove(&key);
        }
        true
    }
}

impl ReplayStore for MemoryStore {
    fn reserve(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<Reservation, StoreError>> {
        StoreFuture::ready(Ok(self.reserve_now(key, lease, duration, self.now())))
    }

    fn renew(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<bool, StoreError>> {
        StoreFuture::ready(Ok(self.renew_now(key, lease, duration, self.now())))
    }

    fn complete(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        ttl: Duration,
    ) -> StoreFuture<Result<(), StoreError>> {
        self.complete_now(key, lease, ttl, self.now());
        StoreFuture::ready(Ok(()))
    }

    fn release(&self, key: &ReplayKey, lease: LeaseId) -> StoreFuture<Result<(), StoreError>> {
        self.release_now(key, lease);
        StoreFuture::ready(Ok(()))
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

    fn reserve(
        store: &MemoryStore,
        n: u8,
        duration: Duration,
        now: Instant,
    ) -> (Reservation, LeaseId) {
        let lease = LeaseId::new();
        (store.reserve_now(&key(n), lease, duration, now), lease)
    }

    #[test]
    fn reserve_complete_release_cycle() {
        let store = MemoryStore::default();
        let now = Instant::now();
        let (first, lease) = reserve(&store, 1, LEASE, now);
        assert_eq!(first, Reservation::Reserved);
        assert_eq!(reserve(&store, 1, LEASE, now).0, Reservation::InFlight);
        store.release_now(&key(1), lease);
        let (again, lease) = reserve(&store, 1, LEASE, now);
        assert_eq!(again, Reservation::Reserved);
        store.complete_now(&key(1), lease, TTL, now);
        assert_eq!(reserve(&store, 1, LEASE, now).0, Reservation::Done);
        let later = now + TTL + Duration::from_secs(1);
        assert_eq!(reserve(&store, 1, LEASE, later).0, Reservation::Reserved);
    }

    #[test]
    fn an_expired_lease_frees_the_key_and_a_stale_release_does_nothing() {
        let store = MemoryStore::default();
        let now = Instant::now();
        let (_, old) = reserve(&store, 1, LEASE, now);
        let later = now + LEASE + Duration::from_secs(1);
        let (taken, new) = reserve(&store, 1, LEASE, later);
        assert_eq!(taken, Reservation::Reserved);
        store.release_now(&key(1), old);
        assert_eq!(reserve(&store, 1, LEASE, later).0, Reservation::InFlight);
        store.complete_now(&key(1), old, TTL, later);
        assert_eq!(reserve(&store, 1, LEASE, later).0, Reservation::InFlight);
        assert!(!store.renew_now(&key(1), old, LEASE, later));
        store.complete_now(&key(1), new, TTL, later);
        assert_eq!(reserve(&store, 1, LEASE, later).0, Reservation::Done);
    }

    #[test]
    fn renewing_keeps_a_slow_request_in_flight() {
        let store = MemoryStore::default();
        let now = Instant::now();
        let short = Duration::from_secs(1);
        let (_, lease) = reserve(&store, 1, short, now);
        let t = now + Duration::from_millis(900);
        assert!(store.renew_now(&key(1), lease, short, t));
        let past_first_lease = now + Duration::from_millis(1300);
        assert_eq!(
            reserve(&store, 1, short, past_first_lease).0,
            Reservation::InFlight
        );
    }

    #[test]
    fn full_store_evicts_expired_then_soonest_done_never_in_flight() {
        let store = MemoryStore::with_capacity(3);
        let now = Instant::now();
        let (_, a) = reserve(&store, 1, LEASE, now);
        store.complete_now(&key(1), a, TTL, now);
        let (_, b) = reserve(&store, 2, LEASE, now);
        store.complete_now(&key(2), b, TTL, now + Duration::from_secs(1));
        let _c = reserve(&store, 3, LEASE, now);
        // Full: the done entry that expires first (1) makes room.
        assert_eq!(reserve(&store, 4, LEASE, now).0, Reservation::Reserved);
        assert_eq!(store.len(), 3);
        assert_eq!(reserve(&store, 2, LEASE, now).0, Reservation::Done);
        assert_eq!(reserve(&store, 3, LEASE, now).0, Reservation::InFlight);
        // 2 goes next; then only in-flight entries are left.
        assert_eq!(reserve(&store, 5, LEASE, now).0, Reservation::Reserved);
        assert_eq!(reserve(&store, 6, LEASE, now).0, Reservation::Full);
        // Once leases expire there is room again.
        let later = now + LEASE + Duration::from_secs(1);
        assert_eq!(reserve(&store, 6, LEASE, later).0, Reservation::Reserved);
    }

    #[test]
    fn layers_with_different_leases_sharing_a_store_never_see_it_falsely_full() {
        // A long lease taken first used to hide shorter, expired ones behind it.
        let store = MemoryStore::with_capacity(2);
        let now = Instant::now();
        assert_eq!(
            reserve(&store, 1, Duration::from_secs(3600), now).0,
            Reservation::Reserved
        );
        assert_eq!(
            reserve(&store, 2, Duration::from_secs(1), now).0,
            Reservation::Reserved
        );
        let later = now + Duration::from_secs(2);
        assert_eq!(
            reserve(&store, 3, Duration::from_secs(1), later).0,
            Reservation::Reserved
        );
    }

    #[test]
    fn stays_bounded_under_churn() {
        let store = MemoryStore::with_capacity(10);
        let now = Instant::now();
        for i in 0..10_000u32 {
            let (result, lease) = reserve(&store, (i % 7) as u8, LEASE, now);
            if result == Reservation::Reserved {
                store.release_now(&key((i % 7) as u8), lease);
            }
        }
        let state = store.lock();
        assert!(state.entries.len() <= 10);
        assert_eq!(
            state.in_flight.len() + state.done.len(),
            state.entries.len()
        );
    }
}
