//! Replay stores that misbehave, and a server to drive the layer through them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::routing::post;
use axum::{BoxError, Router};
use genesys_webhook::replay::{
    LeaseId, MemoryStore, ReplayKey, ReplayProtection, ReplayStore, Reservation, StoreError,
    StoreFuture,
};
use genesys_webhook::signature::sign_open_messaging;
use genesys_webhook::GenesysSignatureLayer;
use http::StatusCode;

use super::*;

pub const SECRET: &str = "faults-secret";

/// How a [`Faulty`] store misbehaves.
#[derive(Clone, Copy, Default)]
pub struct Faults {
    /// The reservation lands in the store, then the answer is an error (a timeout).
    pub reserve_lands_then_fails: bool,
    /// The reservation lands this long after it was asked, even if nobody waits.
    pub reserve_delay: Option<Duration>,
    /// Completing takes this long.
    pub complete_delay: Option<Duration>,
    /// Completing fails.
    pub complete_fails: bool,
    /// Renewing fails (the store does not answer).
    pub renew_fails: bool,
}

/// A [`MemoryStore`] with faults, counting what reached it: tests wait for those
/// counts instead of sleeping.
pub struct Faulty {
    pub inner: Arc<MemoryStore>,
    pub faults: Faults,
    pub seen: Arc<Seen>,
}

/// What reached a [`Faulty`] store.
#[derive(Default)]
pub struct Seen {
    /// Reservations asked for.
    pub reserves: AtomicUsize,
    /// Reservations that landed in the store.
    pub reserved: AtomicUsize,
    /// Outcomes recorded.
    pub completed: AtomicUsize,
    /// Releases that landed.
    pub released: AtomicUsize,
}

impl Seen {
    pub fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

impl Faulty {
    pub fn new(inner: Arc<MemoryStore>, faults: Faults) -> Self {
        Self {
            inner,
            faults,
            seen: Arc::default(),
        }
    }
}

impl ReplayStore for Faulty {
    fn reserve(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<Reservation, StoreError>> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        let faults = self.faults;
        let seen = Arc::clone(&self.seen);
        seen.reserves.fetch_add(1, Ordering::SeqCst);
        // Spawned: the reservation lands whether or not the caller still waits.
        let landed = tokio::spawn(async move {
            if let Some(delay) = faults.reserve_delay {
                tokio::time::sleep(delay).await;
            }
            let result = inner.reserve(&key, lease, duration).await;
            seen.reserved.fetch_add(1, Ordering::SeqCst);
            result
        });
        StoreFuture::boxed(async move {
            let result = landed.await.map_err(StoreError::new)?;
            if faults.reserve_lands_then_fails {
                return Err(StoreError::new("timed out"));
            }
            result
        })
    }

    fn renew(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<bool, StoreError>> {
        if self.faults.renew_fails {
            return StoreFuture::ready(Err(StoreError::new("timed out")));
        }
        self.inner.renew(key, lease, duration)
    }

    fn complete(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        ttl: Duration,
    ) -> StoreFuture<Result<(), StoreError>> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        let faults = self.faults;
        let seen = Arc::clone(&self.seen);
        StoreFuture::boxed(async move {
            if let Some(delay) = faults.complete_delay {
                tokio::time::sleep(delay).await;
            }
            // Counted once this call has run to its end, whatever its outcome.
            let _counted = Counted(&seen.completed);
            if faults.complete_fails {
                return Err(StoreError::new("connection reset"));
            }
            inner.complete(&key, lease, ttl).await
        })
    }

    fn release(&self, key: &ReplayKey, lease: LeaseId) -> StoreFuture<Result<(), StoreError>> {
        let inner = Arc::clone(&self.inner);
        let key = *key;
        let seen = Arc::clone(&self.seen);
        StoreFuture::boxed(async move {
            let result = inner.release(&key, lease).await;
            seen.released.fetch_add(1, Ordering::SeqCst);
            result
        })
    }
}

/// Adds one to a counter when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn faulty(faults: Faults) -> ReplayProtection {
    ReplayProtection::new(Faulty::new(Arc::new(MemoryStore::default()), faults))
}

/// A server whose handler counts its calls; bodies containing `slow<ms>` take that
/// long, and bodies containing `fail500` are answered 500. With `deadline`, a timeout
/// around the whole stack answers 408.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub calls: Arc<AtomicUsize>,
}

pub async fn server(layer: GenesysSignatureLayer, deadline: Option<Duration>) -> Server {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let handler = move |body: Bytes| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let text = String::from_utf8_lossy(&body).into_owned();
            if let Some(ms) = text
                .split("slow")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|ms| ms.parse::<u64>().ok())
            {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if text.contains("fail500") {
                (StatusCode::INTERNAL_SERVER_ERROR, "failed")
            } else {
                (StatusCode::OK, "processed")
            }
        }
    };
    let mut app = Router::new().route("/", post(handler)).route_layer(layer);
    if let Some(deadline) = deadline {
        app = app.layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    StatusCode::REQUEST_TIMEOUT
                }))
                .timeout(deadline),
        );
    }
    Server {
        addr: serve_axum(app).await,
        calls,
    }
}

pub fn layer(protection: ReplayProtection) -> GenesysSignatureLayer {
    GenesysSignatureLayer::builder()
        .secret(SECRET)
        .replay_protection(protection)
        .build()
        .unwrap()
}

impl Server {
    pub async fn send(&self, body: &str) -> RawResponse {
        let sig = sign_open_messaging(SECRET, body.as_bytes());
        post_bytes(
            self.addr,
            "/",
            &[("X-Hub-Signature-256", sig.as_str())],
            body.as_bytes(),
        )
        .await
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

pub fn unique(label: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        r#"{{"label":"{label}","n":{},"pid":{}}}"#,
        NEXT.fetch_add(1, Ordering::SeqCst),
        std::process::id()
    )
}

pub async fn slow_handler_keeps_its_reservation(protection: ReplayProtection) {
    let s = Arc::new(
        server(
            layer(
                protection
                    .lease(Duration::from_millis(1000))
                    .ttl(Duration::from_secs(60)),
            ),
            None,
        )
        .await,
    );
    let body = unique("slow2500");
    let first = {
        let (s, body) = (Arc::clone(&s), body.clone());
        tokio::spawn(async move { s.send(&body).await })
    };
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let during = s.send(&body).await;
    assert_eq!(during.status, 503, "{}", during.text());
    assert_eq!(
        during.json(),
        serde_json::json!({"error": "duplicate_in_flight"})
    );
    assert_eq!(first.await.unwrap().text(), "processed");
    let after = s.send(&body).await;
    assert_eq!(after.json(), serde_json::json!({"status": "duplicate"}));
    assert_eq!(s.calls(), 1);
}
