//! The inbox contract, one suite for every backend.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use genesys_webhook::inbox::{EventState, Inbox, InboxError, ListFilter, RetryOutcome};

pub const LEASE: Duration = Duration::from_secs(30);

/// Makes an inbox with `max_attempts` and `max_events`; each call a fresh one.
pub type Factory = Box<dyn Fn(u32, u64) -> Arc<dyn Inbox>>;

pub async fn contract(make: Factory) {
    appends_and_claims_in_order(&make).await;
    retries_then_dead_letters_then_requeues(&make).await;
    delivers_a_lapsed_lease_again(&make).await;
    waits_out_a_retry_delay(&make).await;
    refuses_appends_when_full(&make).await;
}

async fn appends_and_claims_in_order(make: &Factory) {
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

async fn retries_then_dead_letters_then_requeues(make: &Factory) {
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

async fn delivers_a_lapsed_lease_again(make: &Factory) {
    let inbox = make(2, 100);
    let id = inbox.append(Bytes::from_static(b"orphan")).await.unwrap();
    let lease = Duration::from_millis(200);
    let first = inbox.claim(10, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(inbox.claim(10, lease).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
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
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(inbox.claim(10, lease).await.unwrap().is_empty());
    assert_eq!(inbox.stats().await.unwrap().dead, 1);
}

async fn waits_out_a_retry_delay(make: &Factory) {
    let inbox = make(5, 100);
    inbox.append(Bytes::from_static(b"later")).await.unwrap();
    let first = inbox.claim(10, LEASE).await.unwrap();
    inbox
        .retry(&first[0], Duration::from_millis(500), "busy")
        .await
        .unwrap();
    assert!(inbox.claim(10, LEASE).await.unwrap().is_empty());
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let again = inbox.claim(10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt(), 2);
    inbox.ack(&again[0]).await.unwrap();
}

async fn refuses_appends_when_full(make: &Factory) {
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
