//! Every test that needs a Redis server, in one harness that reports them as
//! **ignored** (not passed) when no `redis-server` is installed and
//! `GENESYS_TEST_REDIS_URL` names none. `bash .ci/run` installs and starts Redis, and in
//! CI (`CI` set) a missing Redis fails these tests instead.

pub mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::crash::*;
use common::faults::{layer, server, slow_handler_keeps_its_reservation, unique};
use common::ReceiverProcess as Receiver;
use common::*;
use genesys_webhook::inbox::{Inbox, InboxAdmin, InboxLimits, RedisInbox};
use genesys_webhook::replay::ReplayProtection;
use genesys_webhook::signature::sign_open_messaging;
use libtest_mimic::{Arguments, Trial};

/// Whether these tests can run here.
fn redis_available() -> bool {
    std::env::var_os("GENESYS_TEST_REDIS_URL").is_some()
        || std::env::var_os("CI").is_some()
        || std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn block_on<F: std::future::Future<Output = ()>>(future: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
        .block_on(future);
}

macro_rules! trials {
    ($($name:ident),* $(,)?) => {
        vec![$(Trial::test(stringify!($name), || {
            block_on($name());
            Ok(())
        })),*]
    };
}

fn main() {
    let arguments = Arguments::from_args();
    let available = redis_available();
    let mut trials: Vec<Trial> = trials![
        replay_after_success_answers_duplicate,
        retry_after_failure_is_processed,
        concurrent_duplicates_are_processed_once,
        done_keys_expire_after_the_ttl,
        lapsed_lease_unblocks_retries,
        store_down_fails_closed_or_open,
        redis_inbox_honours_the_contract,
        redis_inbox_processes_every_acknowledged_event_after_kill_9_of_receiver_and_redis,
        two_replicas_on_one_stream_process_each_event_once_and_survive_losing_one,
        a_handler_slower_than_the_lease_keeps_its_reservation_in_redis,
        a_redis_paused_past_its_timeout_leaves_no_lease_that_blocks_the_retry,
        a_reservation_left_by_a_frozen_redis_is_released_once_it_answers,
        redis_inbox_ack_all_is_one_round_trip,
        redis_inbox_claims_keep_their_xautoclaim_cursor,
        redis_inbox_get_finds_an_event_while_it_moves_between_streams,
        a_reservation_left_by_a_frozen_redis_is_released_after_script_flush,
        a_reservation_left_by_a_frozen_redis_is_released_after_a_restart,
        two_receivers_sharing_redis_process_a_replay_once,
    ];
    #[cfg(feature = "audiohook")]
    trials.extend(trials![
        audiohook_nonces_shared_through_redis_are_refused_on_another_replica
    ]);
    #[cfg(feature = "cli")]
    trials.extend(trials![
        serve_relays_in_order_through_failures_an_outage_and_kill_9_on_redis
    ]);
    let trials = trials
        .into_iter()
        .map(|trial| trial.with_ignored_flag(!available))
        .collect();
    libtest_mimic::run(&arguments, trials).exit();
}

fn redis_backend() -> common::replay_suite::Backend {
    common::replay_suite::redis().expect("Redis")
}

async fn replay_after_success_answers_duplicate() {
    common::replay_suite::replay_after_success(redis_backend()).await
}

async fn retry_after_failure_is_processed() {
    common::replay_suite::retry_after_failure(redis_backend()).await
}

async fn concurrent_duplicates_are_processed_once() {
    common::replay_suite::concurrent_duplicates(redis_backend()).await
}

async fn done_keys_expire_after_the_ttl() {
    common::replay_suite::ttl_expiry(redis_backend()).await
}

async fn lapsed_lease_unblocks_retries() {
    common::replay_suite::lease_expiry_unblocks_retries(redis_backend()).await
}

async fn store_down_fails_closed_or_open() {
    common::replay_suite::store_down(redis_backend()).await
}

async fn redis_inbox_honours_the_contract() {
    let (url, _server) = redis_server().expect("Redis");
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let run = std::process::id();
    common::inbox_contract::contract(
        Box::new(move |attempts, events, clock| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Arc::new(
                RedisInbox::builder(url.as_str())
                    .prefix(format!("test-{run}-{n}:"))
                    .limits(
                        InboxLimits::default()
                            .max_attempts(attempts)
                            .max_events(events),
                    )
                    .clock(clock)
                    .open()
                    .unwrap(),
            ) as Arc<dyn InboxAdmin>
        }),
        true,
    )
    .await;
}

async fn redis_inbox_processes_every_acknowledged_event_after_kill_9_of_receiver_and_redis() {
    let data = tempfile::tempdir().unwrap();
    let mut redis = PersistentRedis::start(data.path()).expect("redis-server");
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

/// `genesys-webhook serve` on a Redis inbox (`appendonly yes`, `appendfsync always`),
/// the scenario of `tests/cli/serve.rs`.
#[cfg(feature = "cli")]
async fn serve_relays_in_order_through_failures_an_outage_and_kill_9_on_redis() {
    let data = tempfile::tempdir().unwrap();
    let redis = PersistentRedis::start(data.path()).expect("redis-server");
    common::relay::relay_through_failures_an_outage_and_kill_9(Some(&redis.url())).await;
}

async fn two_replicas_on_one_stream_process_each_event_once_and_survive_losing_one() {
    let data = tempfile::tempdir().unwrap();
    let redis = PersistentRedis::start(data.path()).expect("redis-server");
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

async fn a_handler_slower_than_the_lease_keeps_its_reservation_in_redis() {
    let (url, _server) = redis_server().expect("Redis");
    let store = genesys_webhook::replay::RedisStore::open(&url)
        .unwrap()
        .prefix(format!("faults:{}:slow:", std::process::id()));
    slow_handler_keeps_its_reservation(ReplayProtection::new(store)).await;
}

async fn a_redis_paused_past_its_timeout_leaves_no_lease_that_blocks_the_retry() {
    let data = tempfile::tempdir().unwrap();
    let redis = PersistentRedis::start(data.path()).expect("redis-server");
    let store = genesys_webhook::replay::RedisStore::open_with_timeout(
        &redis.url(),
        Duration::from_millis(1000),
    )
    .unwrap();
    let s = server(layer(ReplayProtection::new(store)), None).await;
    // Warm the connection, then pause Redis for longer than the command timeout.
    assert_eq!(s.send(&unique("warm")).await.text(), "processed");
    let paused = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "CLIENT",
            "PAUSE",
            "1500",
            "WRITE",
        ])
        .output()
        .unwrap();
    assert!(paused.status.success());
    let body = unique("paused");
    let first = s.send(&body).await;
    assert_eq!(first.status, 503, "{}", first.text());
    // The SET landed once Redis resumed; the retry (Genesys waits 5 s) must be taken.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let retry = s.send(&body).await;
    assert_eq!(retry.text(), "processed", "{}", retry.text());
}

/// What happened to Redis's script cache before the stall.
#[derive(Clone, Copy, PartialEq)]
enum Before {
    /// Nothing: the release script was never needed, so it was never loaded.
    Nothing,
    /// `SCRIPT FLUSH` after every script was loaded.
    ScriptFlush,
    /// A restart (`kill -9`) after every script was loaded.
    Restart,
}

/// The issue's sequence: one event answered 200, then Redis frozen (`SIGSTOP`) while
/// event E arrives (503), 6 s later thawed (`SIGCONT`). The reservation of E lands
/// when Redis thaws, and Redis does not hold the release script, whatever happened to
/// its cache before. E's retries must be processed within a few seconds of Redis
/// answering again, not blocked for the whole 30 s lease.
async fn frozen_redis_then_retry(before: Before) {
    let data = tempfile::tempdir().unwrap();
    let mut redis = PersistentRedis::start(data.path()).expect("redis-server");
    let store = genesys_webhook::replay::RedisStore::open(&redis.url()).unwrap();
    let s = server(layer(ReplayProtection::new(store)), None).await;
    if before != Before::Nothing {
        assert_eq!(s.send(&unique("warm")).await.text(), "processed");
        assert_eq!(s.send(&unique("fail500")).await.status, 500);
        match before {
            Before::ScriptFlush => assert_eq!(redis.cli(&["SCRIPT", "FLUSH"]), "OK"),
            _ => redis.crash_and_restart(),
        }
    }
    let warm = unique("warm-again");
    // After a restart the first commands may find the connection gone.
    common::eventually("a new event is processed again", async || {
        s.send(&warm).await.text() == "processed"
    })
    .await;

    redis.signal("STOP");
    let body = unique("frozen");
    let first = s.send(&body).await;
    assert_eq!(first.status, 503, "{}", first.text());
    tokio::time::sleep(Duration::from_secs(6)).await;
    redis.signal("CONT");

    let thawed = std::time::Instant::now();
    let mut answers = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let retry = s.send(&body).await;
        answers.push(retry.text().to_owned());
        if retry.text() == "processed" {
            break;
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(8),
            "retries still refused {:?} after Redis answered again: {answers:?}",
            thawed.elapsed()
        );
    }
}

async fn a_reservation_left_by_a_frozen_redis_is_released_once_it_answers() {
    frozen_redis_then_retry(Before::Nothing).await
}

async fn a_reservation_left_by_a_frozen_redis_is_released_after_script_flush() {
    frozen_redis_then_retry(Before::ScriptFlush).await
}

async fn a_reservation_left_by_a_frozen_redis_is_released_after_a_restart() {
    frozen_redis_then_retry(Before::Restart).await
}

/// How many scripts Redis has run (`EVAL` and `EVALSHA` calls), from `INFO commandstats`.
fn scripts_run(redis: &PersistentRedis) -> u64 {
    redis
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|line| line.starts_with("cmdstat_eval"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

async fn redis_inbox_ack_all_is_one_round_trip() {
    let data = tempfile::tempdir().unwrap();
    let redis = PersistentRedis::start(data.path()).expect("redis-server");
    let inbox = RedisInbox::builder(redis.url()).open().unwrap();
    for n in 0..50 {
        inbox
            .append(bytes::Bytes::from(format!(r#"{{"n":{n}}}"#)))
            .await
            .unwrap();
    }
    let claimed = inbox.claim(50, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 50);
    let before = scripts_run(&redis);
    inbox.ack_all(&claimed).await.unwrap();
    let ran = scripts_run(&redis) - before;
    // One script call; two where Redis had to be sent the script first.
    assert!(ran <= 2, "{ran} script calls to acknowledge 50 deliveries");
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight), (0, 0));
}

/// `get` must not report a live event gone while claims and deferrals move it between
/// the stream and the delayed entries (the relay's ordering trusts a `None`).
async fn redis_inbox_get_finds_an_event_while_it_moves_between_streams() {
    let data = tempfile::tempdir().unwrap();
    let redis = PersistentRedis::start(data.path()).expect("redis-server");
    let inbox = Arc::new(RedisInbox::builder(redis.url()).open().unwrap());
    // Others claimed and held: a stream to read through.
    for n in 0..200 {
        inbox
            .append(bytes::Bytes::from(format!(r#"{{"n":{n}}}"#)))
            .await
            .unwrap();
    }
    let held = inbox.claim(200, Duration::from_secs(300)).await.unwrap();
    assert_eq!(held.len(), 200);
    let id = inbox
        .append(bytes::Bytes::from_static(br#"{"moving":true}"#))
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The worker's claims on a connection of their own, as another replica's would be.
    let mover = {
        let inbox = RedisInbox::builder(redis.url()).open().unwrap();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut moves = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                // Back from the delayed entries into the stream, then out again.
                for delivery in inbox.claim(1, Duration::from_secs(300)).await.unwrap() {
                    // Due a moment later: it waits in the delayed entries.
                    assert!(inbox
                        .defer(&delivery, Duration::from_millis(1))
                        .await
                        .unwrap());
                    moves += 1;
                }
            }
            moves
        })
    };
    let started = std::time::Instant::now();
    let mut looks = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let found = inbox.get(&id).await.unwrap();
        assert!(
            found.is_some(),
            "a live event reported gone after {looks} looks"
        );
        looks += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let moves = mover.await.unwrap();
    assert!(moves > 50 && looks > 20, "{moves} moves, {looks} looks");
}

async fn redis_inbox_claims_keep_their_xautoclaim_cursor() {
    let data = tempfile::tempdir().unwrap();
    let redis = PersistentRedis::start(data.path()).expect("redis-server");
    let inbox = RedisInbox::builder(redis.url()).open().unwrap();
    for n in 0..12 {
        inbox
            .append(bytes::Bytes::from(format!(r#"{{"n":{n}}}"#)))
            .await
            .unwrap();
    }
    // Twelve deliveries, all lapsed after a while.
    assert_eq!(
        inbox
            .claim(12, Duration::from_secs(60))
            .await
            .unwrap()
            .len(),
        12
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The first ten are taken over again: they are recent now, the last two lapsed.
    let lease = Duration::from_millis(300);
    let again = inbox.claim(10, lease).await.unwrap();
    assert_eq!(again.len(), 10);
    // One claim scans ten pending entries for each one it may return. From the start
    // it would see only the ten recent ones; from its cursor it finds a lapsed one.
    let next = inbox.claim(1, lease).await.unwrap();
    assert_eq!(next.len(), 1, "a lapsed delivery behind recent ones waited");
    assert_eq!(next[0].body().as_ref(), br#"{"n":10}"#);
}

async fn two_receivers_sharing_redis_process_a_replay_once() {
    let (url, _server) = redis_server().expect("Redis");
    let env = [
        ("GENESYS_WEBHOOK_SECRET", "dev-secret"),
        ("GENESYS_REPLAY_STORE", url.as_str()),
    ];
    let first = Receiver::start(&env);
    let second = Receiver::start(&env);
    let body = format!(
        r#"{{"event":"routing:conversation:updated","conversationId":"shared-{}"}}"#,
        std::process::id()
    );
    let sig = sign_open_messaging("dev-secret", body.as_bytes());
    let accepted = post_bytes(
        first.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", sig.as_str())],
        body.as_bytes(),
    )
    .await;
    assert_eq!(accepted.json(), serde_json::json!({"status": "queued"}));
    let replayed = post_bytes(
        second.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", sig.as_str())],
        body.as_bytes(),
    )
    .await;
    assert_eq!(replayed.status, 200);
    assert_eq!(replayed.json(), serde_json::json!({"status": "duplicate"}));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(first.count("shared-"), 1);
    assert_eq!(second.count("shared-"), 0);
}

#[cfg(feature = "audiohook")]
async fn audiohook_nonces_shared_through_redis_are_refused_on_another_replica() {
    use genesys_webhook::audiohook::AudioHookSignatureLayer;
    use genesys_webhook::replay::RedisStore;
    use tower::{Layer, ServiceExt};

    let (url, _server) = redis_server().expect("Redis");
    const KEY: &str = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";
    let replica = || {
        let store = RedisStore::open(&url)
            .unwrap()
            .prefix(format!("audiohook-nonce-{}:", std::process::id()));
        AudioHookSignatureLayer::builder()
            .key(KEY, "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
            .nonce_store(store)
            .clock(|| std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_641_013_203))
            .build()
            .unwrap()
            .layer(tower::service_fn(|_: http::Request<()>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
            }))
    };
    let request = || {
        http::Request::get("/api/v1/voicebiometrics/ws")
            .header("host", "audiohook.example.com")
            .header("audiohook-organization-id", "d7934305-0972-4844-938e-9060eef73d05")
            .header("audiohook-session-id", "30b0e395-84d3-4570-ac13-9a62d8f514c0")
            .header("audiohook-correlation-id", "e160e428-53e2-487c-977d-96989bf5c99d")
            .header("x-api-key", KEY)
            .header("signature-input", r#"sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430"#)
            .header("signature", "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:")
            .body(())
            .unwrap()
    };
    let first = replica().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), 200);
    let on_another_replica = replica().oneshot(request()).await.unwrap();
    assert_eq!(on_another_replica.status(), 401);
}
