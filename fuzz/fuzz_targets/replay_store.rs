//! Sequences of replay-store operations on a small in-memory store, checked against a
//! model: never two live leases for one key, never more entries than the capacity,
//! `Full` only when every entry is in flight, and a key answered `Done` only after it
//! was completed.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use arbitrary::Arbitrary;
use genesys_webhook::replay::{LeaseId, MemoryStore, ReplayKey, ReplayStore, Reservation};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Op {
    Reserve(u8),
    Complete(u8),
    Release(u8),
    Abandon(u8),
    StaleComplete(u8),
    Renew(u8),
}

#[derive(Debug, Arbitrary)]
struct Input {
    capacity: u8,
    ops: Vec<Op>,
}

const LEASE: Duration = Duration::from_secs(3600);
const TTL: Duration = Duration::from_secs(3600);

fuzz_target!(|input: Input| {
    let capacity = usize::from(input.capacity % 8) + 1;
    let store = MemoryStore::with_capacity(capacity);
    let key = |k: u8| ReplayKey::new([k % 16; 32]);
    // Leases we hold, and keys we completed (which may since have been evicted).
    let mut held: HashMap<u8, LeaseId> = HashMap::new();
    let mut completed: HashSet<u8> = HashSet::new();
    for op in input.ops.into_iter().take(256) {
        match op {
            Op::Reserve(k) => {
                let k = k % 16;
                let lease = LeaseId::new();
                match futures_executor::block_on(store.reserve(&key(k), lease, LEASE)).unwrap() {
                    Reservation::Reserved => {
                        assert!(!held.contains_key(&k), "two live leases for one key");
                        held.insert(k, lease);
                    }
                    Reservation::InFlight => {
                        assert!(held.contains_key(&k), "in flight, but nobody holds it")
                    }
                    Reservation::Done => {
                        assert!(completed.contains(&k), "done, but never completed")
                    }
                    Reservation::Full => {
                        assert_eq!(held.len(), capacity, "full with entries not in flight")
                    }
                    _ => {}
                }
            }
            Op::Complete(k) => {
                let k = k % 16;
                if let Some(lease) = held.remove(&k) {
                    futures_executor::block_on(store.complete(&key(k), lease, TTL)).unwrap();
                    completed.insert(k);
                }
            }
            Op::Release(k) => {
                let k = k % 16;
                if let Some(lease) = held.remove(&k) {
                    futures_executor::block_on(store.release(&key(k), lease)).unwrap();
                }
            }
            Op::Abandon(k) => {
                let k = k % 16;
                if let Some(lease) = held.remove(&k) {
                    store.abandon(&key(k), lease);
                }
            }
            Op::StaleComplete(k) => {
                // A lease nobody holds must change nothing for the holder.
                let k = k % 16;
                let stale = LeaseId::new();
                futures_executor::block_on(store.release(&key(k), stale)).unwrap();
                assert!(!futures_executor::block_on(store.renew(&key(k), stale, LEASE)).unwrap());
                if held.contains_key(&k) {
                    futures_executor::block_on(store.complete(&key(k), stale, TTL)).unwrap();
                    assert_eq!(
                        futures_executor::block_on(store.reserve(&key(k), LeaseId::new(), LEASE))
                            .unwrap(),
                        Reservation::InFlight
                    );
                }
            }
            Op::Renew(k) => {
                let k = k % 16;
                if let Some(lease) = held.get(&k) {
                    let renewed =
                        futures_executor::block_on(store.renew(&key(k), *lease, LEASE)).unwrap();
                    assert!(renewed, "the holder's lease must renew");
                }
            }
        }
        assert!(store.len() <= capacity, "more entries than the capacity");
    }
});
