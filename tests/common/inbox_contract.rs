//! The inbox contract, one suite for every backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use genesys_webhook::inbox::{Clock, EventState, InboxAdmin, InboxError, ListFilter, RetryOutcome};

pub const LEASE: Duration = Duration::from_secs(30);

/// Makes an inbox with `max_attempts` and `max_events` reading the time from the
/// clock; each call a fresh one.
pub type Factory = Box<dyn Fn(u32, u64, Clock) -> Arc<dyn InboxAdmin>>;

/// A clock that stands still until a test moves it.
#[derive(Clone)]
pub struct ManualClock {
    start: SystemTime,
    elapsed_ms: Arc<AtomicU64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            start: SystemTime::now(),
            elapsed_ms: Arc::default(),
        }
    }
}

impl ManualClock {
    pub fn clock(&self) -> Clock {
        let (start, elapsed) = (self.start, Arc::clone(&self.elapsed_ms));
        Clock::from_fn(move || start + Duration::from_millis(elapsed.load(Ordering::SeqCst)))
    }

    pub fn advance(&self, by: Duration) {
        self.elapsed_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

/// How time passes for a backend: by hand, and, for a backend that finds lapsed
/// leases by its server's idle time (Redis), also on the wall clock. Waiting longer
/// than asked never breaks a test: every "not yet" check uses a 30-second lease.
struct Time {
    clock: ManualClock,
    server_idle_time: bool,
}

impl Time {
    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        if self.server_idle_time {
            tokio::time::sleep(by).await;
        }
    }
}

/// Runs every scenario; `server_idle_time` for a backend whose leases lapse by its
/// server's clock.
pub async fn contract(make: Factory, server_idle_time: bool) {
    let time = Time {
        clock: ManualClock::default(),
        server_idle_time,
    };
    let make = |attempts, events| make(attempts, events, time.clock.clock());
    appends_and_claims_in_order(&make).await;
    retries_then_dead_letters_then_requeues(&make).await;
    delivers_a_lapsed_lease_again(&make, &time).await;
    extends_a_lease_while_it_is_held(&make, &time).await;
    waits_out_a_retry_delay(&make, &time).await;
    refuses_appends_when_full(&make).await;
    releases_without_using_an_attempt(&make).await;
    defers_without_using_an_attempt(&make, &time).await;
    dead_letters_at_once_with_its_reason(&make).await;
    keeps_the_content_type_through_every_move(&make).await;
}

async fn appends_and_claims_in_order(make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>) {
    let inbox = make(10, 100);
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            inbox
                .append(Bytes::from(format!("event-{n}")))
                .await
                .unwrap(),
        );
    }
    assert_eq!(inbox.stats().await.unwrap().pending, 3);

    let first = inbox.claim(2, LEASE).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].id(), &ids[0]);
    assert_eq!(&first[0].body()[..], b"event-0");
    assert_eq!(first[1].id(), &ids[1]);
    assert_eq!(first[0].attempt(), 1);
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.dead), (1, 2, 0));

    // Claimed events are not handed out twice while their lease runs.
    let rest = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id(), &ids[2]);

    for delivery in first.iter().chain(&rest) {
        inbox.ack(delivery).await.unwrap();
    }
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.dead), (0, 0, 0));
    assert!(inbox.get(&ids[0]).await.unwrap().is_none());
    assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
}

async fn retries_then_dead_letters_then_requeues(make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>) {
    let inbox = make(3, 100);
    let id = inbox.append(Bytes::from_static(b"poison")).await.unwrap();
    for attempt in 1..=3 {
        let deliveries = inbox.claim(10, LEASE).await.unwrap();
        assert_eq!(deliveries.len(), 1, "attempt {attempt}");
        assert_eq!(deliveries[0].id(), &id);
        assert_eq!(deliveries[0].attempt(), attempt);
        let outcome = inbox
            .retry(&deliveries[0], Duration::ZERO, "handler failed")
            .await
            .unwrap();
        let expected = if attempt == 3 {
            RetryOutcome::Dead
        } else {
            RetryOutcome::Scheduled
        };
        assert_eq!(outcome, expected);
    }
    assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
    assert_eq!(inbox.stats().await.unwrap().dead, 1);
    let dead = inbox.list(ListFilter::Dead, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert_eq!(dead[0].state, EventState::Dead);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].last_error.as_deref(), Some("handler failed"));
    assert!(inbox.list(ListFilter::Live, 10).await.unwrap().is_empty());
    let shown = inbox.get(&id).await.unwrap().unwrap();
    assert_eq!(&shown.body[..], b"poison");

    assert!(inbox.requeue(&id).await.unwrap());
    assert_eq!(inbox.stats().await.unwrap().dead, 0);
    let again = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id(), &id);
    assert_eq!(again[0].attempt(), 1);

    // Dead again, then purged.
    inbox.retry(&again[0], Duration::ZERO, "x").await.unwrap();
    for _ in 0..2 {
        let d = inbox.claim(10, LEASE).await.unwrap();
        inbox.retry(&d[0], Duration::ZERO, "x").await.unwrap();
    }
    assert_eq!(inbox.stats().await.unwrap().dead, 1);
    assert_eq!(inbox.requeue_dead().await.unwrap(), 1);
    for _ in 0..3 {
        let d = inbox.claim(10, LEASE).await.unwrap();
        inbox.retry(&d[0], Duration::ZERO, "x").await.unwrap();
    }
    assert_eq!(inbox.purge_dead().await.unwrap(), 1);
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.dead), (0, 0, 0));
    assert!(!inbox.requeue(&id).await.unwrap());
}

async fn delivers_a_lapsed_lease_again(
    make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>,
    time: &Time,
) {
    let inbox = make(2, 100);
    let id = inbox.append(Bytes::from_static(b"orphan")).await.unwrap();
    let lease = Duration::from_millis(200);
    let first = inbox.claim(10, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    // Not handed out again while its lease runs (however slow the machine: a claim
    // that takes over only leases idle for 30 s).
    assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
    time.advance(Duration::from_millis(400)).await;
    // The consumer died: the event comes back, as its second attempt.
    let second = inbox.claim(10, lease).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id(), &id);
    assert_eq!(second[0].attempt(), 2);
    // The first consumer's late retry changes nothing.
    assert_eq!(
        inbox
            .retry(&first[0], Duration::ZERO, "late")
            .await
            .unwrap(),
        RetryOutcome::Stale
    );
    // Its attempts used up, a lapsed lease sends it to the dead letters.
    time.advance(Duration::from_millis(400)).await;
    assert!(inbox.claim(10, lease).await.unwrap().is_empty());
    assert_eq!(inbox.stats().await.unwrap().dead, 1);
}

async fn waits_out_a_retry_delay(make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>, time: &Time) {
    let inbox = make(5, 100);
    inbox.append(Bytes::from_static(b"later")).await.unwrap();
    let first = inbox.claim(10, LEASE).await.unwrap();
    inbox
        .retry(&first[0], Duration::from_millis(500), "busy")
        .await
        .unwrap();
    assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
    time.advance(Duration::from_millis(700)).await;
    let again = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt(), 2);
    inbox.ack(&again[0]).await.unwrap();
}

async fn refuses_appends_when_full(make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>) {
    let inbox = make(5, 2);
    inbox.append(Bytes::from_static(b"1")).await.unwrap();
    inbox.append(Bytes::from_static(b"2")).await.unwrap();
    assert!(matches!(
        inbox.append(Bytes::from_static(b"3")).await,
        Err(InboxError::Full)
    ));
    let claimed = inbox.claim(1, LEASE).await.unwrap();
    inbox.ack(&claimed[0]).await.unwrap();
    inbox.append(Bytes::from_static(b"3")).await.unwrap();
}

async fn extends_a_lease_while_it_is_held(
    make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>,
    time: &Time,
) {
    let inbox = make(5, 100);
    inbox.append(Bytes::from_static(b"slow")).await.unwrap();
    let lease = Duration::from_millis(200);
    let first = inbox.claim(10, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    time.advance(Duration::from_millis(150)).await;
    assert!(inbox.extend_lease(&first[0], lease).await.unwrap());
    time.advance(Duration::from_millis(150)).await;
    // Past the first lease, within the extended one.
    assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
    assert_eq!(inbox.stats().await.unwrap().in_flight, 1);
    // Lapsed and claimed again: the first claim no longer holds it.
    time.advance(Duration::from_millis(400)).await;
    let second = inbox.claim(10, lease).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempt(), 2);
    assert!(!inbox.extend_lease(&first[0], lease).await.unwrap());
    assert!(inbox.extend_lease(&second[0], lease).await.unwrap());
    inbox.ack(&second[0]).await.unwrap();
    assert!(!inbox.extend_lease(&second[0], lease).await.unwrap());
}

async fn releases_without_using_an_attempt(make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>) {
    // One attempt only: a release that counted would send the event to the dead letters.
    let inbox = make(1, 100);
    let id = inbox
        .append(Bytes::from_static(b"unstarted"))
        .await
        .unwrap();
    for _ in 0..3 {
        let claimed = inbox.claim(10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id(), &id);
        assert_eq!(claimed[0].attempt(), 1);
        assert!(inbox.release(&claimed[0]).await.unwrap());
        // A second release of the same claim changes nothing.
        assert!(!inbox.release(&claimed[0]).await.unwrap());
        let stats = inbox.stats().await.unwrap();
        assert_eq!((stats.pending, stats.in_flight, stats.dead), (1, 0, 0));
    }
    let last = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(last[0].id(), &id);
    inbox.ack(&last[0]).await.unwrap();
}

async fn defers_without_using_an_attempt(
    make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>,
    time: &Time,
) {
    // Two attempts: deferrals that counted would dead-letter it.
    let inbox = make(2, 100);
    let id = inbox.append(Bytes::from_static(b"blocked")).await.unwrap();
    let first = inbox.claim(10, LEASE).await.unwrap();
    inbox
        .retry(&first[0], Duration::ZERO, "refused")
        .await
        .unwrap();
    for _ in 0..3 {
        let claimed = inbox.claim(10, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id(), &id);
        assert_eq!(claimed[0].attempt(), 2);
        assert!(inbox
            .defer(&claimed[0], Duration::from_millis(500))
            .await
            .unwrap());
        assert!(!inbox.defer(&claimed[0], Duration::ZERO).await.unwrap());
        // Not due before the delay; pending, with its attempts and reason kept.
        assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
        let stats = inbox.stats().await.unwrap();
        assert_eq!((stats.pending, stats.in_flight, stats.dead), (1, 0, 0));
        let stored = inbox.get(&id).await.unwrap().unwrap();
        assert_eq!(stored.attempts, 1);
        assert_eq!(stored.last_error.as_deref(), Some("refused"));
        time.advance(Duration::from_millis(700)).await;
    }
    let last = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(last[0].attempt(), 2);
    inbox.ack(&last[0]).await.unwrap();
    assert_eq!(inbox.stats().await.unwrap().pending, 0);
}

async fn dead_letters_at_once_with_its_reason(make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>) {
    let inbox = make(10, 100);
    let id = inbox.append(Bytes::from_static(b"poison")).await.unwrap();
    let claimed = inbox.claim(10, LEASE).await.unwrap();
    assert!(inbox
        .dead_letter(&claimed[0], "not an order: missing field `sku`")
        .await
        .unwrap());
    assert!(!inbox.dead_letter(&claimed[0], "again").await.unwrap());
    assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
    let dead = inbox.list(ListFilter::Dead, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("not an order: missing field `sku`")
    );
    assert_eq!(inbox.purge_dead().await.unwrap(), 1);
}

async fn keeps_the_content_type_through_every_move(
    make: &impl Fn(u32, u64) -> Arc<dyn InboxAdmin>,
) {
    const TYPE: &str = "application/json; charset=utf-8";
    let inbox = make(10, 100);
    let typed = inbox
        .append_with_content_type(Bytes::from_static(b"typed"), Some(TYPE))
        .await
        .unwrap();
    let untyped = inbox.append(Bytes::from_static(b"untyped")).await.unwrap();
    let claimed = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].id(), &typed);
    assert_eq!(claimed[0].content_type(), Some(TYPE));
    assert_eq!(claimed[1].id(), &untyped);
    assert_eq!(claimed[1].content_type(), None);
    inbox.ack(&claimed[1]).await.unwrap();
    // Retried, released, deferred, dead-lettered and requeued: the type stays.
    let stored = inbox.get(&typed).await.unwrap().unwrap();
    assert_eq!(stored.content_type.as_deref(), Some(TYPE));
    inbox
        .retry(&claimed[0], Duration::ZERO, "once more")
        .await
        .unwrap();
    let again = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(again[0].content_type(), Some(TYPE));
    assert!(inbox.release(&again[0]).await.unwrap());
    let again = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(again[0].content_type(), Some(TYPE));
    assert!(inbox.defer(&again[0], Duration::ZERO).await.unwrap());
    let again = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(again[0].content_type(), Some(TYPE));
    assert!(inbox.dead_letter(&again[0], "poison").await.unwrap());
    let dead = inbox.list(ListFilter::Dead, 10).await.unwrap();
    assert_eq!(dead[0].content_type.as_deref(), Some(TYPE));
    assert!(inbox.requeue(&dead[0].id).await.unwrap());
    let last = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].body().as_ref(), b"typed");
    assert_eq!(last[0].content_type(), Some(TYPE));
    inbox.ack(&last[0]).await.unwrap();
    assert_eq!(inbox.stats().await.unwrap().pending, 0);
}
