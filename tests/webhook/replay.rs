//! Replay protection through the whole stack on the in-memory store; the same suite
//! runs on Redis in `tests/redis.rs`.

use crate::common;

use common::replay_suite::*;
use genesys_webhook::replay::{MemoryStore, ReplayProtection};

/// The memory store on a clock the suite moves by hand: expiry takes no waiting.
fn memory() -> Backend {
    let clock = common::inbox_contract::ManualClock::default();
    let hand = clock.clone();
    Backend {
        make: Box::new(move || ReplayProtection::new(MemoryStore::default().clock(hand.clock()))),
        down: Box::new(|| ReplayProtection::new(DownStore)),
        clock: Some(clock),
        _server: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_after_success_answers_duplicate() {
    replay_after_success(memory()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_failure_is_processed() {
    retry_after_failure(memory()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_processed_once() {
    concurrent_duplicates(memory()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_keys_expire_after_the_ttl() {
    ttl_expiry(memory()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_lease_unblocks_retries() {
    lease_expiry_unblocks_retries(memory()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_fails_closed_or_open() {
    store_down(memory()).await
}
