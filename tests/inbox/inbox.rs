//! The inbox contract, one suite run on every backend; group commit measured by the
//! commits it makes.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::inbox_contract::*;
use genesys_webhook::inbox::{Inbox, InboxLimits, MemoryInbox, SqliteInbox};

#[tokio::test]
async fn memory_inbox_honours_the_contract() {
    contract(
        Box::new(|attempts, events, clock| {
            Arc::new(
                MemoryInbox::new()
                    .limits(
                        InboxLimits::default()
                            .max_attempts(attempts)
                            .max_events(events),
                    )
                    .clock(clock),
            )
        }),
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    contract(
        Box::new(move |attempts, events, clock| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Arc::new(
                SqliteInbox::builder(path.join(format!("inbox-{n}.db")))
                    .limits(
                        InboxLimits::default()
                            .max_attempts(attempts)
                            .max_events(events),
                    )
                    .clock(clock)
                    .open()
                    .unwrap(),
            )
        }),
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_reopening_and_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let time = ManualClock::default();
    let inbox = SqliteInbox::builder(&path)
        .clock(time.clock())
        .open()
        .unwrap();
    let id = inbox.append(Bytes::from_static(b"kept")).await.unwrap();
    let claimed = inbox.claim(1, Duration::from_millis(100)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    drop(inbox);
    let reopened = SqliteInbox::builder(&path)
        .clock(time.clock())
        .open()
        .unwrap();
    assert!(reopened.claim(1, LEASE).await.unwrap().is_empty());
    time.advance(Duration::from_millis(200));
    let again = reopened.claim(1, LEASE).await.unwrap();
    assert_eq!(again[0].id(), &id);
    assert_eq!(again[0].attempt(), 2);
    assert_eq!(&again[0].body()[..], b"kept");
}
