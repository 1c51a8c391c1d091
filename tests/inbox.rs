//! The inbox contract, one suite run on every backend; group commit measured by the
//! commits it makes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::inbox_contract::*;
use genesys_webhook::inbox::{Inbox, MemoryInbox, SqliteInbox};

#[tokio::test]
async fn memory_inbox_honours_the_contract() {
    contract(Box::new(|attempts, events| {
        Arc::new(MemoryInbox::new().max_attempts(attempts).max_events(events))
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    contract(Box::new(move |attempts, events| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Arc::new(
            SqliteInbox::builder(path.join(format!("inbox-{n}.db")))
                .max_attempts(attempts)
                .max_events(events)
                .open()
                .unwrap(),
        )
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_reopening_and_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.db");
    let inbox = SqliteInbox::open(&path).unwrap();
    let id = inbox.append(Bytes::from_static(b"kept")).await.unwrap();
    let claimed = inbox.claim(1, Duration::from_millis(100)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    drop(inbox);
    let reopened = SqliteInbox::open(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = reopened.claim(1, LEASE).await.unwrap();
    assert_eq!(again[0].id(), &id);
    assert_eq!(again[0].attempt(), 2);
    assert_eq!(&again[0].body()[..], b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_answers_concurrent_appends_with_few_commits() {
    let dir = tempfile::tempdir().unwrap();
    let grouped = SqliteInbox::open(dir.path().join("grouped.db")).unwrap();
    let single = SqliteInbox::builder(dir.path().join("single.db"))
        .max_batch(1)
        .open()
        .unwrap();
    for (inbox, name) in [(&grouped, "grouped"), (&single, "single")] {
        let appends = (0..200).map(|n| {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.append(Bytes::from(format!("e{n}"))).await })
        });
        for append in futures_util::future::join_all(appends).await {
            append.unwrap().unwrap();
        }
        assert_eq!(inbox.stats().await.unwrap().pending, 200, "{name}");
    }
    assert_eq!(single.commits(), 200);
    assert!(
        grouped.commits() <= 20,
        "200 concurrent appends took {} commits",
        grouped.commits()
    );
}
