//! The replay protocol around the inner service: reserve the request's key, call the
//! inner service while the reservation is renewed, then mark the key done (2xx) or
//! release it. Every path that leaves a reservation behind (a timeout, a store error,
//! a dropped request) gives it back, best effort, so that the sender's retry is
//! processed instead of waiting for the lease to lapse.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};

use super::builder::Config;
use super::log::Event;
use super::rejection::Rejection;
use crate::http::json::{json_error, json_response, with_retry_after};
use crate::replay::{
    Duplicate, LeaseId, ReplayKey, ReplayProtection, ReplayStore, Reservation, StoreError,
    StoreFuture,
};

/// A reservation asked of the store whose answer is not used yet. Dropped before
/// [`decide`] takes it (the request was dropped, a timeout fired), it releases the key.
pub(crate) struct Attempt {
    store: Arc<dyn ReplayStore>,
    key: ReplayKey,
    lease: LeaseId,
    duration: Duration,
    armed: bool,
}

impl Attempt {
    /// Asks the store for `key` under a new lease.
    pub(crate) fn start(
        replay: &ReplayProtection,
        key: ReplayKey,
    ) -> (Self, StoreFuture<Result<Reservation, StoreError>>) {
        let store = Arc::clone(&replay.store);
        let lease = LeaseId::new();
        let future = store.reserve(&key, lease, replay.lease);
        let attempt = Self {
            store,
            key,
            lease,
            duration: replay.lease,
            armed: true,
        };
        (attempt, future)
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.armed {
            // The reservation may have landed after all (a store slower than its
            // timeout): release it now, and once more a moment later.
            release_soon(&self.store, self.key, self.lease, self.duration);
        }
    }
}

/// What to do with a verified request once the store answered.
pub(crate) enum Decision {
    /// Call the inner service, holding the reservation if there is one.
    Call(Option<Guard>),
    /// Answer without calling it.
    Answer(Response<Bytes>),
}

/// Turns the store's answer into a [`Decision`].
pub(crate) fn decide(
    mut attempt: Attempt,
    reservation: Result<Reservation, StoreError>,
    replay: &ReplayProtection,
    config: &Config,
) -> Decision {
    let unavailable = |reason: &str| {
        let rejection = Rejection::ReplayStoreUnavailable {
            retry_after: replay.retry_after,
        };
        tracing::warn!(reason, "replay store cannot answer");
        config.rejections.record(Event {
            rejection: &rejection,
            body_len: None,
            diagnostics: None,
            peer: None,
        });
        Decision::Answer(config.rejection_response(&rejection))
    };
    match reservation {
        Ok(Reservation::Reserved) => {
            attempt.disarm();
            Decision::Call(Some(Guard::new(&attempt, replay)))
        }
        Ok(Reservation::InFlight) => {
            attempt.disarm();
            Decision::Answer(duplicate(replay, attempt.key, Duplicate::InFlight))
        }
        Ok(Reservation::Done) => {
            attempt.disarm();
            Decision::Answer(duplicate(replay, attempt.key, Duplicate::Processed))
        }
        Ok(_) if replay.fail_open => {
            attempt.disarm();
            tracing::warn!("replay store full of requests in flight; processing without replay protection (fail-open)");
            Decision::Call(None)
        }
        Ok(_) => {
            attempt.disarm();
            unavailable("the store is full of requests in flight")
        }
        // The attempt stays armed: dropping it releases whatever may have landed.
        Err(error) if replay.fail_open => {
            tracing::warn!(%error, "replay store unavailable; processing without replay protection (fail-open)");
            Decision::Call(None)
        }
        Err(error) => {
            tracing::warn!(%error, "replay store unavailable");
            unavailable("the store could not be reached")
        }
    }
}

/// The answer to a duplicate: the application's, or `200 {"status":"duplicate"}` for a
/// processed one (the sender stops retrying) and `503 {"error":"duplicate_in_flight"}`
/// with `Retry-After` for one still in flight.
fn duplicate(replay: &ReplayProtection, key: ReplayKey, kind: Duplicate) -> Response<Bytes> {
    replay.duplicates.record(
        match kind {
            Duplicate::Processed => "duplicate_processed",
            _ => "duplicate_in_flight",
        },
        &format_args!("duplicate webhook not processed again ({key:?})"),
    );
    crate::metrics::request(
        "duplicate",
        Some(match kind {
            Duplicate::Processed => "processed",
            _ => "in_flight",
        }),
    );
    if let Some(hook) = replay.duplicate_hook() {
        return hook(kind);
    }
    match kind {
        Duplicate::Processed => json_response(
            StatusCode::OK,
            Bytes::from_static(br#"{"status":"duplicate"}"#),
        ),
        Duplicate::InFlight => with_retry_after(
            json_error(StatusCode::SERVICE_UNAVAILABLE, "duplicate_in_flight"),
            replay.retry_after,
        ),
    }
}

/// A reservation held while the inner service runs, renewed every third of its lease
/// so that a slow handler keeps it. It stays armed until the store has recorded the
/// outcome: dropped before that (the client went away, a timeout fired), it records
/// the outcome in the background, or releases the key when there is none yet.
pub(crate) struct Guard {
    store: Arc<dyn ReplayStore>,
    key: ReplayKey,
    lease: LeaseId,
    duration: Duration,
    ttl: Duration,
    renewal: Option<tokio::task::AbortHandle>,
    /// Whether the inner service processed the request (2xx), once it answered.
    processed: Option<bool>,
    armed: bool,
}

impl Guard {
    fn new(attempt: &Attempt, replay: &ReplayProtection) -> Self {
        let renewal = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let store = Arc::clone(&attempt.store);
            let (key, lease, duration) = (attempt.key, attempt.lease, replay.lease);
            let failures = Arc::clone(&replay.renewal_failures);
            runtime
                .spawn(renew(store, key, lease, duration, failures))
                .abort_handle()
        });
        Self {
            store: Arc::clone(&attempt.store),
            key: attempt.key,
            lease: attempt.lease,
            duration: replay.lease,
            ttl: replay.ttl,
            renewal,
            processed: None,
            armed: true,
        }
    }

    /// Starts recording the outcome: the key done when the request was processed
    /// (2xx), released otherwise. The guard stays armed until [`recorded`](Self::recorded).
    pub(crate) fn finish(&mut self, processed: bool) -> StoreFuture<Result<(), StoreError>> {
        self.processed = Some(processed);
        self.stop_renewing();
        record(&*self.store, self.key, self.lease, self.ttl, processed)
    }

    /// The store answered the call [`finish`](Self::finish) made. When it failed, the
    /// guard stays armed and, dropped, keeps asking in the background.
    pub(crate) fn recorded(mut self, result: Result<(), StoreError>) {
        match result {
            Ok(()) => self.armed = false,
            Err(error) => {
                tracing::debug!(%error, processed = self.processed, "replay store could not record the outcome yet");
            }
        }
    }

    fn stop_renewing(&mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.abort();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop_renewing();
        if self.armed {
            let outcome = self.processed.unwrap_or(false);
            settle_soon(
                &self.store,
                self.key,
                self.lease,
                self.duration,
                self.ttl,
                outcome,
                false,
            );
        }
    }
}

fn record(
    store: &dyn ReplayStore,
    key: ReplayKey,
    lease: LeaseId,
    ttl: Duration,
    processed: bool,
) -> StoreFuture<Result<(), StoreError>> {
    if processed {
        store.complete(&key, lease, ttl)
    } else {
        store.release(&key, lease)
    }
}

/// Extends the lease every third of its length until aborted or lost. A renewal that
/// fails is an ERROR and is counted: should the lease lapse while the handler still
/// runs, a retry of the same event may run beside it.
async fn renew(
    store: Arc<dyn ReplayStore>,
    key: ReplayKey,
    lease: LeaseId,
    duration: Duration,
    failures: Arc<AtomicU64>,
) {
    let period = (duration / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        match store.renew(&key, lease, duration).await {
            Ok(true) => {}
            Ok(false) => {
                failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(key = ?key, "replay reservation lost while its request was processed; a retry of it may run beside it");
                return;
            }
            Err(error) => {
                failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, key = ?key, "could not renew a replay reservation; if the store stays silent past the lease, a retry may run beside this request");
            }
        }
    }
}

/// Releases a reservation without waiting: on the Tokio runtime when there is one,
/// else through the store's synchronous [`ReplayStore::abandon`].
fn release_soon(store: &Arc<dyn ReplayStore>, key: ReplayKey, lease: LeaseId, duration: Duration) {
    settle_soon(store, key, lease, duration, duration, false, true);
}

/// Records an outcome without waiting (the key done when `processed`, else released).
///
/// A store that cannot answer now (paused, restarting, its script cache flushed) is
/// asked again with growing pauses until it answers or the lease (`duration`) has
/// lapsed by itself, so a reservation whose answer was never used blocks no retry for
/// longer than the store's own outage. `again`: once released, release a second time
/// a second later, for a reservation that may land late (a store slower than its
/// timeout). Without a Tokio runtime, a release goes through the store's synchronous
/// [`ReplayStore::abandon`].
fn settle_soon(
    store: &Arc<dyn ReplayStore>,
    key: ReplayKey,
    lease: LeaseId,
    duration: Duration,
    ttl: Duration,
    processed: bool,
    again: bool,
) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            let store = Arc::clone(store);
            runtime.spawn(async move {
                let gave_up = tokio::time::Instant::now() + duration;
                let settle = || record(&*store, key, lease, ttl, processed);
                if settle_until(settle, processed, gave_up).await && again {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    settle_until(settle, processed, gave_up).await;
                }
            });
        }
        Err(_) if !processed => store.abandon(&key, lease),
        Err(_) => {}
    }
}

/// First pause between two attempts to record an outcome; it doubles up to
/// [`SETTLE_PAUSE_MAX`].
const SETTLE_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between two attempts to record an outcome.
const SETTLE_PAUSE_MAX: Duration = Duration::from_secs(1);

/// Runs `settle` until the store answers or `gave_up` passes; whether it answered.
async fn settle_until(
    settle: impl Fn() -> StoreFuture<Result<(), StoreError>>,
    processed: bool,
    gave_up: tokio::time::Instant,
) -> bool {
    let mut pause = SETTLE_PAUSE;
    loop {
        match settle().await {
            Ok(()) => return true,
            Err(error) if tokio::time::Instant::now() + pause >= gave_up => {
                tracing::warn!(%error, processed, "replay store could not record the outcome; the reservation lapses with its lease");
                return false;
            }
            Err(error) => {
                tracing::debug!(%error, processed, "replay store cannot record the outcome yet; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(SETTLE_PAUSE_MAX);
            }
        }
    }
}
