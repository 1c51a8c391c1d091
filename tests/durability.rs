//! A `200` means the event is stored: crash tests over real processes and sockets.
//! Receivers are killed with `kill -9` right after their last acknowledgement (and
//! Redis too), restarted on the same store, and every acknowledged event must be
//! processed; events are counted by their own id in the receivers' logs.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::ReceiverProcess as Receiver;
use common::*;
use genesys_webhook::signature::sign_open_messaging;

const SECRET: &str = "durable-secret";

fn event(id: &str) -> String {
    format!(r#"{{"event":"routing:conversation:updated","conversationId":"{id}"}}"#)
}

/// Sends `count` distinct events named `<prefix>-<n>` from `senders` concurrent
/// senders, spread over `targets`; returns the ids answered `200 queued`.
async fn send_events(
    targets: &[SocketAddr],
    prefix: &str,
    count: usize,
    senders: usize,
) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for sender in 0..senders {
        let targets = targets.to_vec();
        let prefix = prefix.to_owned();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for n in (sender..count).step_by(senders) {
                let id = format!("{prefix}-{n}");
                let body = event(&id);
                let sig = sign_open_messaging(SECRET, body.as_bytes());
                let target = targets[n % targets.len()];
                let response = post_bytes(
                    target,
                    "/webhook/receive",
                    &[("X-Hub-Signature-256", sig.as_str())],
                    body.as_bytes(),
                )
                .await;
                if response.status == 200 {
                    assert_eq!(response.json(), serde_json::json!({"status": "queued"}));
                    acked.push(id);
                }
            }
            acked
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done.unwrap());
    }
    acked
}

/// How many times each event id was processed, over the given log lines.
fn processed(lines: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in lines
        .iter()
        .filter(|l| l.contains("handled conversation update"))
    {
        if let Some(id) = line
            .split("conversation_id=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// Waits until every id in `acked` was processed by one of `receivers` (plus the
/// lines of receivers already gone), and returns the counts.
async fn wait_for_all(
    acked: &[String],
    earlier: &[String],
    receivers: &[&Receiver],
    within: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let mut lines = earlier.to_vec();
        for receiver in receivers {
            lines.extend(receiver.lines());
        }
        let counts = processed(&lines);
        let missing: Vec<&String> = acked
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .collect();
        if missing.is_empty() {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events were never processed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

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

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_inbox_processes_every_acknowledged_event_after_kill_9_of_receiver_and_redis() {
    let data = tempfile::tempdir().unwrap();
    let Some(mut redis) = PersistentRedis::start(data.path()) else {
        return;
    };
    let url = redis.url();
    let env = [
        ("GENESYS_WEBHOOK_SECRET", SECRET),
        ("GENESYS_INBOX", url.as_str()),
        ("GENESYS_REPLAY_STORE", url.as_str()),
        ("GENESYS_WORKER_DELAY_MS", "20"),
        ("GENESYS_WORKER_CONCURRENCY", "1"),
        ("GENESYS_INBOX_LEASE_SECS", "2"),
    ];
    let mut first = Receiver::start(&env);
    let acked = send_events(&[first.addr], "redis-crash", 500, 8).await;
    first.kill();
    redis.crash_and_restart();
    assert_eq!(acked.len(), 500);
    let before = first.lines();
    assert!(processed(&before).len() < 500, "the kill came too late");

    let second = Receiver::start(&env);
    let counts = wait_for_all(&acked, &before, &[&second], Duration::from_secs(60)).await;
    assert!(counts.len() >= 500);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_stream_process_each_event_once_and_survive_losing_one() {
    let data = tempfile::tempdir().unwrap();
    let Some(redis) = PersistentRedis::start(data.path()) else {
        return;
    };
    let url = redis.url();
    let env = [
        ("GENESYS_WEBHOOK_SECRET", SECRET),
        ("GENESYS_INBOX", url.as_str()),
        ("GENESYS_WORKER_DELAY_MS", "5"),
        ("GENESYS_WORKER_CONCURRENCY", "4"),
        ("GENESYS_INBOX_LEASE_SECS", "2"),
    ];
    let mut a = Receiver::start(&env);
    let b = Receiver::start(&env);

    // No crash: each of 2,000 events processed exactly once, by one replica or the other.
    let acked = send_events(&[a.addr, b.addr], "replicas", 2000, 8).await;
    assert_eq!(acked.len(), 2000);
    let counts = wait_for_all(&acked, &[], &[&a, &b], Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lines = a.lines();
    lines.extend(b.lines());
    let counts_after = processed(&lines);
    assert_eq!(counts.len(), 2000);
    for id in &acked {
        assert_eq!(
            counts_after[id], 1,
            "{id} processed {} times",
            counts_after[id]
        );
    }
    let by_a = processed(&a.lines()).len();
    assert!(
        by_a > 0 && by_a < 2000,
        "one replica did all the work ({by_a})"
    );

    // One replica dies mid-run: the other processes everything acknowledged.
    let acked = send_events(&[a.addr, b.addr], "replicas-kill", 1000, 8).await;
    assert_eq!(acked.len(), 1000);
    a.kill();
    let from_a = a.lines();
    let survivors: HashSet<String> = acked.iter().cloned().collect();
    wait_for_all(&acked, &from_a, &[&b], Duration::from_secs(60)).await;
    assert_eq!(survivors.len(), 1000);
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
            let deadline = Instant::now() + Duration::from_secs(20);
            while receiver.count("moved to the dead letters") < n {
                assert!(
                    Instant::now() < deadline,
                    "events never reached the dead letters"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
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
