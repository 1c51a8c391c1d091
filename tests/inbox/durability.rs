//! A `200` means the event is stored: crash tests over real processes and sockets.
//! Receivers are killed with `kill -9` right after their last acknowledgement (and
//! Redis too), restarted on the same store, and every acknowledged event must be
//! processed; events are counted by their own id in the receivers' logs.

use crate::common;

use std::time::Duration;

use common::crash::*;
use common::ReceiverProcess as Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inbox_processes_every_acknowledged_event_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GENESYS_WEBHOOK_SECRET", SECRET),
        ("GENESYS_WORKER_DELAY_MS", "20"),
        ("GENESYS_WORKER_CONCURRENCY", "1"),
        ("GENESYS_INBOX_LEASE_SECS", "2"),
    ];
    let mut first = Receiver::start_in(dir.path(), &env);
    let acked = send_events(&[first.addr], "sqlite-crash", 500, 8).await;
    first.kill();
    assert_eq!(
        acked.len(),
        500,
        "every event should have been acknowledged"
    );
    let before = first.lines();
    let done_before = processed(&before).len();
    assert!(done_before < 500, "the kill came too late to test anything");

    let second = Receiver::start_in(dir.path(), &env[..1]);
    wait_for_all(&acked, &before, &[&second], Duration::from_secs(60)).await;
    eprintln!("{done_before} processed before the kill; the rest after the restart");
}

#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handlers_are_retried_then_dead_lettered_and_the_cli_brings_them_back() {
    const BIN: &str = env!("CARGO_BIN_EXE_genesys-webhook");
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start_in(
        dir.path(),
        &[
            ("GENESYS_WEBHOOK_SECRET", SECRET),
            ("GENESYS_WORKER_FAIL_ON", "poison"),
            ("GENESYS_INBOX_MAX_ATTEMPTS", "3"),
            ("GENESYS_WORKER_RETRY_BASE_MS", "20"),
        ],
    );
    let acked = send_events(&[receiver.addr], "poison", 2, 2).await;
    assert_eq!(acked.len(), 2);
    let fine = send_events(&[receiver.addr], "fine", 1, 1).await;
    wait_for_all(&fine, &[], &[&receiver], Duration::from_secs(10)).await;

    let wait_dead = |n: usize| {
        let receiver = &receiver;
        async move {
            common::eventually("the events reach the dead letters", async || {
                receiver.count("moved to the dead letters") >= n
            })
            .await;
        }
    };
    wait_dead(2).await;
    // Both failure kinds were retried: an error, then a caught panic.
    assert!(receiver.output_contains("simulated handler failure"));
    assert!(receiver.output_contains("the handler panicked"));

    let inbox = format!("sqlite:{}", dir.path().join("genesys-inbox.db").display());
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(BIN)
            .args(args)
            .env("GENESYS_INBOX", &inbox)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stats) = cli(&["inbox", "stats", "--json"]);
    assert_eq!(code, Some(0));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["dead"], 2, "{stats}");
    assert_eq!(stats["pending"], 0, "{stats}");
    assert_eq!(stats["in_flight"], 0, "{stats}");

    let (code, list) = cli(&["inbox", "list", "--dead"]);
    assert_eq!(code, Some(0));
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("attempts 3"), "{list}");
    let id = list.split_whitespace().next().unwrap().to_owned();
    let (code, shown) = cli(&["inbox", "show", &id]);
    assert_eq!(code, Some(0));
    assert!(shown.contains("poison-"), "{shown}");
    assert!(shown.contains("state: dead"), "{shown}");

    // One back, then all: each is delivered again (and fails again here).
    let (code, _) = cli(&["inbox", "retry", &id]);
    assert_eq!(code, Some(0));
    wait_dead(3).await;
    let (code, out) = cli(&["inbox", "retry", "--all-dead", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["requeued"],
        2
    );
    wait_dead(5).await;

    let (code, _) = cli(&["inbox", "purge", "--dead"]);
    assert_eq!(code, Some(2), "purge without --yes must refuse");
    let (code, out) = cli(&["inbox", "purge", "--dead", "--yes", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["purged"],
        2
    );
    let (_, stats) = cli(&["inbox", "stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["dead"], 0);
    let (code, _) = cli(&["inbox", "show", &id]);
    assert_eq!(code, Some(1));
}
