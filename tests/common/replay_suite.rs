//! The replay-protection behaviour suite, run on every store (memory in
//! `tests/replay.rs`, Redis in `tests/redis.rs`).

use std::sync::Arc;
use std::time::Duration;

use genesys_webhook::replay::{
    LeaseId, ReplayKey, ReplayProtection, ReplayStore, Reservation, StoreError, StoreFuture,
};
use genesys_webhook::signature::sign_genesys;

use super::faults::{layer, server, unique, Server, SECRET};
use super::*;

/// A store to test: how to make protection backed by it, and by the same kind of
/// store when it is down.
pub struct Backend {
    pub make: Box<dyn Fn() -> ReplayProtection + Send + Sync>,
    pub down: Box<dyn Fn() -> ReplayProtection + Send + Sync>,
    /// How time passes for the store: moved by hand (the memory store reads this
    /// clock), or `None` for a store that keeps time on its server (Redis expires keys
    /// by its own clock), which the test must wait out.
    pub clock: Option<super::inbox_contract::ManualClock>,
    pub _server: Option<RedisServer>,
}

impl Backend {
    /// Lets `by` pass for the store.
    async fn pass(&self, by: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(by),
            None => tokio::time::sleep(by).await,
        }
    }
}

/// A receiver whose handler counts its calls, behind the layer with `protection`.
async fn harness(protection: ReplayProtection) -> Server {
    server(layer(protection), None).await
}

pub async fn replay_after_success(backend: Backend) {
    let h = harness((backend.make)()).await;
    let body = unique("ok");
    let first = h.send(&body).await;
    assert_eq!((first.status, first.text()), (200, "processed"));
    let again = h.send(&body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), serde_json::json!({"status": "duplicate"}));
    // The same MAC written in hex under the other header is the same key.
    let hex = sign_genesys(SECRET, body.as_bytes());
    let other_form = post_bytes(
        h.addr,
        "/",
        &[("X-Genesys-Signature", hex.as_str())],
        body.as_bytes(),
    )
    .await;
    assert_eq!(
        other_form.json(),
        serde_json::json!({"status": "duplicate"})
    );
    assert_eq!(h.calls(), 1);
    // A different body is processed.
    assert_eq!(h.send(&unique("ok")).await.text(), "processed");
    assert_eq!(h.calls(), 2);
}

pub async fn retry_after_failure(backend: Backend) {
    let h = harness((backend.make)()).await;
    let body = unique("fail500");
    assert_eq!(h.send(&body).await.status, 500);
    assert_eq!(h.send(&body).await.status, 500);
    assert_eq!(
        h.calls(),
        2,
        "a failed request must be processed again when retried"
    );
}

pub async fn concurrent_duplicates(backend: Backend) {
    let h = Arc::new(harness((backend.make)()).await);
    let body = Arc::new(unique("slow300"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (h, body) = (Arc::clone(&h), Arc::clone(&body));
            tokio::spawn(async move { h.send(&body).await })
        })
        .collect();
    let mut processed = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match response.status {
            200 if response.text() == "processed" => processed += 1,
            200 => assert_eq!(response.json(), serde_json::json!({"status": "duplicate"})),
            503 => {
                assert_eq!(
                    response.json(),
                    serde_json::json!({"error": "duplicate_in_flight"})
                );
                assert_eq!(response.header("retry-after"), Some("5"));
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(processed, 1);
    assert_eq!(h.calls(), 1);
}

pub async fn ttl_expiry(backend: Backend) {
    let h = harness(
        (backend.make)()
            .ttl(Duration::from_millis(1000))
            .lease(Duration::from_millis(500)),
    )
    .await;
    let body = unique("ok");
    assert_eq!(h.send(&body).await.text(), "processed");
    assert_eq!(
        h.send(&body).await.json(),
        serde_json::json!({"status": "duplicate"})
    );
    backend.pass(Duration::from_millis(1300)).await;
    assert_eq!(h.send(&body).await.text(), "processed");
    assert_eq!(h.calls(), 2);
}

pub async fn lease_expiry_unblocks_retries(backend: Backend) {
    // A reservation whose holder vanished (never completed nor released).
    let protection = (backend.make)().lease(Duration::from_millis(1000));
    let store = Arc::clone(protection.store());
    let body = unique("ok");
    let key = ReplayKey::of_body(body.as_bytes());
    assert_eq!(
        store
            .reserve(&key, LeaseId::new(), Duration::from_millis(1000))
            .await
            .unwrap(),
        Reservation::Reserved
    );
    let h = harness(protection).await;
    assert_eq!(h.send(&body).await.status, 503);
    backend.pass(Duration::from_millis(1300)).await;
    assert_eq!(h.send(&body).await.text(), "processed");
}

pub async fn store_down(backend: Backend) {
    let h = harness((backend.down)()).await;
    let body = unique("ok");
    let response = h.send(&body).await;
    assert_eq!(response.status, 503);
    assert_eq!(
        response.json(),
        serde_json::json!({"error": "replay_store_unavailable"})
    );
    assert_eq!(response.header("retry-after"), Some("5"));
    assert_eq!(h.calls(), 0, "fail-closed must not process");

    let open = harness((backend.down)().fail_open(true)).await;
    assert_eq!(open.send(&body).await.text(), "processed");
    assert_eq!(open.calls(), 1);
}

/// A store that is never reachable.
pub struct DownStore;

impl ReplayStore for DownStore {
    fn reserve(
        &self,
        _: &ReplayKey,
        _: LeaseId,
        _: Duration,
    ) -> StoreFuture<Result<Reservation, StoreError>> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }
    fn renew(
        &self,
        _: &ReplayKey,
        _: LeaseId,
        _: Duration,
    ) -> StoreFuture<Result<bool, StoreError>> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }
    fn complete(
        &self,
        _: &ReplayKey,
        _: LeaseId,
        _: Duration,
    ) -> StoreFuture<Result<(), StoreError>> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }
    fn release(&self, _: &ReplayKey, _: LeaseId) -> StoreFuture<Result<(), StoreError>> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }
}

#[cfg(feature = "redis")]
pub fn redis() -> Option<Backend> {
    use genesys_webhook::replay::RedisStore;
    let (url, server) = redis_server()?;
    let prefix = format!("test:{}:{}:", std::process::id(), rand_suffix());
    Some(Backend {
        make: Box::new(move || {
            ReplayProtection::new(RedisStore::open(&url).unwrap().prefix(prefix.clone()))
        }),
        // Nothing listens on port 1.
        down: Box::new(|| {
            ReplayProtection::new(
                RedisStore::open_with_timeout("redis://127.0.0.1:1/", Duration::from_millis(300))
                    .unwrap(),
            )
        }),
        clock: None,
        _server: Some(server),
    })
}

#[cfg(feature = "redis")]
fn rand_suffix() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}
