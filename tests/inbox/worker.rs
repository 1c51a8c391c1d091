//! The inbox worker: retries, dead letters, panics, lease extension, per-delivery
//! acknowledgement and shutdown. The inboxes read tokio's clock, and the tests run on
//! tokio's paused time, so leases and backoffs take no wall-clock time and do not
//! depend on how fast the machine is.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use genesys_webhook::inbox::{
    Abort, Clock, Delivery, InboxAdmin, InboxLimits, ListFilter, MemoryInbox, RetryAfter,
    SqliteInbox, Worker, WorkerReport,
};
use tokio::sync::oneshot;

/// A clock that follows tokio's (paused) time.
fn tokio_clock() -> Clock {
    let start = SystemTime::now();
    let origin = tokio::time::Instant::now();
    Clock::from_fn(move || start + origin.elapsed())
}

fn memory(max_attempts: u32) -> Arc<dyn InboxAdmin> {
    Arc::new(
        MemoryInbox::new()
            .limits(InboxLimits::default().max_attempts(max_attempts))
            .clock(tokio_clock()),
    )
}

/// What the handler saw: how many times each body ran, and how many ran at once.
#[derive(Default)]
struct Seen {
    runs: Mutex<HashMap<String, usize>>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
}

impl Seen {
    fn runs(&self, body: &str) -> usize {
        self.runs.lock().unwrap().get(body).copied().unwrap_or(0)
    }
}

/// A handler: `fail` errs, `panic` panics, `sleep<ms>` takes that long.
fn handler(
    seen: Arc<Seen>,
) -> impl tower::Service<
    Delivery,
    Response = (),
    Error = String,
    Future = impl std::future::Future<Output = Result<(), String>> + Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |delivery: Delivery| {
        let seen = Arc::clone(&seen);
        async move {
            let body = String::from_utf8(delivery.body().to_vec()).unwrap();
            *seen.runs.lock().unwrap().entry(body.clone()).or_default() += 1;
            let now = seen.running.fetch_add(1, Ordering::SeqCst) + 1;
            seen.most_at_once.fetch_max(now, Ordering::SeqCst);
            if let Some(ms) = body.strip_prefix("sleep").and_then(|ms| ms.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            seen.running.fetch_sub(1, Ordering::SeqCst);
            match body.as_str() {
                "fail" => Err("the handler failed".to_owned()),
                "panic" => panic!("the handler panicked on purpose"),
                _ => Ok(()),
            }
        }
    })
}

/// Runs a worker until `until` says the inbox is done, then shuts it down.
async fn run_until_done(
    worker: impl std::future::Future<Output = WorkerReport> + Send + 'static,
    stop: oneshot::Sender<()>,
    inbox: &Arc<dyn InboxAdmin>,
    done: impl Fn(genesys_webhook::inbox::InboxStats) -> bool,
) -> WorkerReport {
    let running = tokio::spawn(worker);
    common::eventually("the inbox is done", async || {
        done(inbox.stats().await.unwrap())
    })
    .await;
    stop.send(()).unwrap();
    running.await.unwrap()
}

fn signal() -> (oneshot::Sender<()>, impl std::future::Future<Output = ()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async {
        let _ = stopped.await;
    })
}

#[tokio::test(start_paused = true)]
async fn failures_and_panics_are_retried_with_backoff_then_dead_lettered() {
    let inbox = memory(3);
    for body in ["ok", "fail", "panic"] {
        inbox.append(Bytes::from(body)).await.unwrap();
    }
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .backoff(Duration::from_secs(1), Duration::from_secs(10))
        .build(handler(Arc::clone(&seen)))
        .run_until(stopped);
    let started = tokio::time::Instant::now();
    let report = run_until_done(worker, stop, &inbox, |s| s.dead == 2 && s.pending == 0).await;
    assert_eq!(report.processed, 1);
    assert_eq!(report.retried, 4);
    assert_eq!(report.dead_lettered, 2);
    assert_eq!(
        (seen.runs("ok"), seen.runs("fail"), seen.runs("panic")),
        (1, 3, 3)
    );
    // Backoff: at least 0.5 s then 1 s (half of 1 s and of 2 s) before the last attempt.
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let dead = inbox.list(ListFilter::Dead, 10).await.unwrap();
    let reasons: Vec<_> = dead.iter().filter_map(|e| e.last_error.clone()).collect();
    assert!(
        reasons.contains(&"the handler failed".to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"the handler panicked".to_owned()),
        "{reasons:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_handler_slower_than_its_lease_keeps_it_and_runs_once_across_two_workers() {
    let inbox = memory(5);
    for n in 0..4 {
        inbox
            .append(Bytes::from(format!("sleep{}", 5_000 + n)))
            .await
            .unwrap();
    }
    let seen = Arc::new(Seen::default());
    let lease = Duration::from_millis(900);
    let mut replicas = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let (stop, stopped) = signal();
        stops.push(stop);
        let worker = Worker::builder(Arc::clone(&inbox))
            .lease(lease)
            .concurrency(2)
            .build(handler(Arc::clone(&seen)));
        replicas.push(tokio::spawn(worker.run_until(stopped)));
    }
    common::eventually("the replicas drained the inbox", async || {
        let stats = inbox.stats().await.unwrap();
        stats.pending + stats.in_flight == 0
    })
    .await;
    for stop in stops {
        stop.send(()).unwrap();
    }
    let mut processed = 0;
    for replica in replicas {
        processed += replica.await.unwrap().processed;
    }
    assert_eq!(processed, 4);
    for n in 0..4 {
        assert_eq!(seen.runs(&format!("sleep{}", 5_000 + n)), 1, "run twice");
    }
}

#[tokio::test(start_paused = true)]
async fn each_delivery_is_acknowledged_without_waiting_for_a_slow_one() {
    let inbox = memory(5);
    inbox.append(Bytes::from("sleep60000")).await.unwrap();
    for n in 0..3 {
        inbox.append(Bytes::from(format!("fast{n}"))).await.unwrap();
    }
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = signal();
    let running = tokio::spawn(
        Worker::builder(Arc::clone(&inbox))
            .concurrency(4)
            .shutdown_timeout(Duration::from_secs(120))
            .build(handler(Arc::clone(&seen)))
            .run_until(stopped),
    );
    // Well before the slow handler ends, the three fast ones are acknowledged: only
    // the slow one is left in the inbox.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight), (0, 1), "{stats:?}");
    assert_eq!(seen.running.load(Ordering::SeqCst), 1);
    stop.send(()).unwrap();
    let report = running.await.unwrap();
    assert_eq!(
        report.processed, 4,
        "the slow one finished within the grace period"
    );
    assert_eq!(inbox.stats().await.unwrap().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_what_it_can_and_hands_back_the_rest() {
    let inbox = memory(5);
    inbox.append(Bytes::from("sleep500")).await.unwrap();
    inbox.append(Bytes::from("sleep600000")).await.unwrap();
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = signal();
    let running = tokio::spawn(
        Worker::builder(Arc::clone(&inbox))
            .concurrency(2)
            .shutdown_timeout(Duration::from_secs(5))
            .build(handler(Arc::clone(&seen)))
            .run_until(stopped),
    );
    while seen.running.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    let report = running.await.unwrap();
    assert_eq!((report.processed, report.released), (1, 1));
    // The unfinished one is due again at once, for the next worker.
    let stats = inbox.stats().await.unwrap();
    assert_eq!((stats.pending, stats.in_flight), (1, 0), "{stats:?}");
    let again = inbox.claim(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again[0].body().as_ref(), b"sleep600000");
}

#[tokio::test(start_paused = true)]
async fn concurrency_bounds_the_deliveries_running_at_once() {
    let inbox = memory(5);
    for n in 0..20 {
        inbox
            .append(Bytes::from(format!("sleep{}", 100 + n)))
            .await
            .unwrap();
    }
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .concurrency(3)
        .build(handler(Arc::clone(&seen)))
        .run_until(stopped);
    let report = run_until_done(worker, stop, &inbox, |s| s.pending + s.in_flight == 0).await;
    assert_eq!(report.processed, 20);
    assert_eq!(seen.most_at_once.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_append_through_the_same_inbox_wakes_an_idle_worker() {
    let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = signal();
    let running = tokio::spawn(
        Worker::builder(Arc::clone(&inbox))
            .poll_interval(Duration::from_secs(3600))
            .build(handler(Arc::clone(&seen)))
            .run_until(stopped),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    inbox.append(Bytes::from("woken")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.runs("woken") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not woken by the append"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    assert_eq!(running.await.unwrap().processed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_drains_a_sqlite_inbox_with_acknowledgements_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteInbox::open(dir.path().join("inbox.db")).unwrap();
    let inbox: Arc<dyn InboxAdmin> = Arc::new(sqlite.clone());
    for n in 0..500 {
        inbox.append(Bytes::from(format!("e{n}"))).await.unwrap();
    }
    let before = sqlite.commits();
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .concurrency(32)
        .build(handler(Arc::clone(&seen)))
        .run_until(stopped);
    let report = run_until_done(worker, stop, &inbox, |s| s.pending + s.in_flight == 0).await;
    assert_eq!(report.processed, 500);
    assert!(seen.runs.lock().unwrap().values().all(|&runs| runs == 1));
    // Claims and acknowledgements share commits: far fewer than one per event.
    let commits = sqlite.commits() - before;
    assert!(commits < 500, "{commits} commits for 500 deliveries");
}

#[tokio::test(start_paused = true)]
async fn deliveries_claimed_ahead_are_handed_back_at_shutdown_not_started() {
    let inbox = memory(5);
    // Quick ones first: the worker claims ahead once it knows its handlers' pace.
    for n in 0..3 {
        inbox
            .append(Bytes::from(format!("quick{n}")))
            .await
            .unwrap();
    }
    for n in 0..5 {
        inbox
            .append(Bytes::from(format!("sleep{}", 300 + n)))
            .await
            .unwrap();
    }
    let seen = Arc::new(Seen::default());
    let (stop, stopped) = signal();
    let running = tokio::spawn(
        Worker::builder(Arc::clone(&inbox))
            .concurrency(1)
            .build(handler(Arc::clone(&seen)))
            .run_until(stopped),
    );
    while seen.running.load(Ordering::SeqCst) < 1 || seen.runs("quick2") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    let report = running.await.unwrap();
    assert_eq!((report.processed, report.released), (4, 4), "{report:?}");
    assert_eq!(
        seen.runs.lock().unwrap().len(),
        4,
        "only the quick ones and the running one finished"
    );
    assert_eq!(inbox.stats().await.unwrap().pending, 4);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_uses_no_attempt_of_what_it_hands_back() {
    // One attempt each: a hand-back that counted would dead-letter events never run.
    let inbox = memory(1);
    for n in 0..3 {
        inbox
            .append(Bytes::from(format!("quick{n}")))
            .await
            .unwrap();
    }
    for n in 0..128 {
        inbox
            .append(Bytes::from(format!("sleep{}", 600_000 + n)))
            .await
            .unwrap();
    }
    let seen = Arc::new(Seen::default());
    let worker = Worker::builder(Arc::clone(&inbox))
        .concurrency(4)
        .shutdown_timeout(Duration::from_secs(1))
        .build(handler(Arc::clone(&seen)))
        .spawn();
    while seen.running.load(Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = worker.shutdown().await;
    let stats = inbox.stats().await.unwrap();
    assert_eq!(report.processed, 3);
    assert_eq!(
        (stats.pending, stats.in_flight, stats.dead),
        (128, 0, 0),
        "{stats:?}"
    );
    // Both kinds went back: the four running past the grace period, and those
    // claimed ahead and waiting.
    assert!(report.released > 4, "{report:?}");
    assert_eq!(report.dead_lettered, 0);
    // The next worker (a rolling restart) gets them as first attempts.
    let again = inbox.claim(200, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 128);
    assert!(again.iter().all(|d| d.attempt() == 1));
}

#[tokio::test(start_paused = true)]
async fn an_abort_dead_letters_at_once_with_its_reason() {
    let inbox = memory(10);
    inbox
        .append(Bytes::from_static(b"{\"sku\":null}"))
        .await
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let worker = Worker::builder(Arc::clone(&inbox))
        .build(tower::service_fn(move |_: Delivery| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Abort::new("not an order: `sku` is null")) }
        }))
        .spawn();
    while inbox.stats().await.unwrap().dead == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = worker.shutdown().await;
    assert_eq!((report.dead_lettered, report.retried), (1, 0));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "ran once, not ten times");
    let dead = inbox.list(ListFilter::Dead, 10).await.unwrap();
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("not an order: `sku` is null")
    );
}

#[tokio::test(start_paused = true)]
async fn an_abort_wrapped_in_another_error_still_dead_letters() {
    #[derive(Debug)]
    struct Wrapped(Abort);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "order handler: {}", self.0)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let inbox = memory(10);
    inbox.append(Bytes::from_static(b"x")).await.unwrap();
    let worker = Worker::builder(Arc::clone(&inbox))
        .build(tower::service_fn(|_: Delivery| async {
            Err::<(), _>(Wrapped(Abort::new("unknown event type")))
        }))
        .spawn();
    while inbox.stats().await.unwrap().dead == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(worker.shutdown().await.dead_lettered, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_sets_the_next_attempts_delay() {
    let inbox = memory(5);
    inbox.append(Bytes::from_static(b"x")).await.unwrap();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&runs);
    let worker = Worker::builder(Arc::clone(&inbox))
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .build(tower::service_fn(move |delivery: Delivery| {
            seen.lock().unwrap().push(tokio::time::Instant::now());
            async move {
                match delivery.attempt() {
                    1 => Err(RetryAfter::new(Duration::from_secs(20), "rate limited")),
                    _ => Ok(()),
                }
            }
        }))
        .spawn();
    while runs.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(worker.shutdown().await.processed, 1);
    let runs = runs.lock().unwrap();
    let waited = runs[1] - runs[0];
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(21),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn two_replicas_share_a_backlog_of_slow_events() {
    let inbox = memory(5);
    for n in 0..40 {
        inbox
            .append(Bytes::from(format!("sleep{}", 1000 + n)))
            .await
            .unwrap();
    }
    let started = tokio::time::Instant::now();
    let replicas: Vec<_> = (0..2)
        .map(|_| {
            let seen = Arc::new(Seen::default());
            let worker = Worker::builder(Arc::clone(&inbox))
                .concurrency(4)
                .build(handler(Arc::clone(&seen)))
                .spawn();
            (seen, worker)
        })
        .collect();
    loop {
        let stats = inbox.stats().await.unwrap();
        if stats.pending + stats.in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = started.elapsed();
    let mut handled = Vec::new();
    for (seen, worker) in replicas {
        worker.shutdown().await;
        handled.push(seen.runs.lock().unwrap().len());
    }
    assert_eq!(handled.iter().sum::<usize>(), 40);
    assert!(
        handled.iter().all(|&n| (14..=26).contains(&n)),
        "{handled:?}"
    );
    // Eight slots at about a second each: five rounds, not the ten of one replica.
    assert!(drained < Duration::from_secs(7), "{drained:?}");
}

/// Ordering tests' bodies: `key:n` with `fail` anywhere in those that fail their first
/// two attempts; the key is what comes before the colon.
fn key_of(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    Some(body.split_once(':')?.0.to_owned()).filter(|key| key != "none")
}

/// A handler that records the order it handled bodies in and how many ran per key at
/// once; bodies holding `fail` fail their first two attempts.
fn ordered_handler(
    handled: Arc<Mutex<Vec<String>>>,
    per_key: Arc<Mutex<HashMap<String, usize>>>,
) -> impl tower::Service<
    Delivery,
    Response = (),
    Error = String,
    Future = impl std::future::Future<Output = Result<(), String>> + Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(move |delivery: Delivery| {
        let (handled, per_key) = (Arc::clone(&handled), Arc::clone(&per_key));
        async move {
            let body = String::from_utf8(delivery.body().to_vec()).unwrap();
            let key = key_of(body.as_bytes()).unwrap_or_default();
            {
                let mut per_key = per_key.lock().unwrap();
                let running = per_key.entry(key.clone()).or_default();
                *running += 1;
                assert!(
                    key.is_empty() || *running == 1,
                    "two events of {key} at once"
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            *per_key.lock().unwrap().get_mut(&key).unwrap() -= 1;
            if body.contains("fail") && delivery.attempt() <= 2 {
                return Err(format!("{body} fails attempt {}", delivery.attempt()));
            }
            handled.lock().unwrap().push(body);
            Ok(())
        }
    })
}

/// Each key's bodies in `handled`, in the order they were handled.
fn by_key(handled: &[String]) -> HashMap<String, Vec<u32>> {
    let mut keys: HashMap<String, Vec<u32>> = HashMap::new();
    for body in handled {
        let (key, rest) = body.split_once(':').unwrap();
        let n = rest.trim_end_matches(":fail").parse().unwrap();
        keys.entry(key.to_owned()).or_default().push(n);
    }
    keys
}

#[tokio::test(start_paused = true)]
async fn events_of_one_key_are_handled_in_order_across_retries_without_using_attempts() {
    // Three attempts: a later event that burnt attempts while waiting would die.
    let inbox = memory(3);
    let mut appended = Vec::new();
    for n in 0..12u32 {
        for key in ["a", "b", "c"] {
            // The first event of each key fails twice: the rest must wait for it.
            let body = match (key, n) {
                (_, 0) | ("b", 5) => format!("{key}:{n}:fail"),
                _ => format!("{key}:{n}"),
            };
            appended.push(body.clone());
            inbox.append(Bytes::from(body)).await.unwrap();
        }
        inbox
            .append(Bytes::from(format!("none:{n}")))
            .await
            .unwrap();
    }
    let (handled, per_key) = (Arc::default(), Arc::default());
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .concurrency(2)
        .backoff(Duration::from_millis(200), Duration::from_secs(1))
        .order_by(key_of)
        .build(ordered_handler(Arc::clone(&handled), per_key))
        .run_until(stopped);
    let report = run_until_done(worker, stop, &inbox, |s| s.pending + s.in_flight == 0).await;
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 48, "every event once: {handled:?}");
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(report.retried, 8);
    assert!(report.deferred > 0, "{report:?}");
    for (key, order) in by_key(&handled) {
        if key != "none" {
            assert_eq!(order, (0..12).collect::<Vec<_>>(), "{key}: {handled:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn one_handler_and_a_long_line_on_one_key_do_not_deadlock() {
    let inbox = memory(5);
    inbox.append(Bytes::from("a:0:fail")).await.unwrap();
    for n in 1..40u32 {
        inbox.append(Bytes::from(format!("a:{n}"))).await.unwrap();
    }
    inbox.append(Bytes::from("b:0")).await.unwrap();
    let (handled, per_key) = (Arc::default(), Arc::default());
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .concurrency(1)
        .backoff(Duration::from_millis(100), Duration::from_millis(400))
        .order_by(key_of)
        .build(ordered_handler(Arc::clone(&handled), per_key))
        .run_until(stopped);
    run_until_done(worker, stop, &inbox, |s| s.pending + s.in_flight == 0).await;
    let handled = handled.lock().unwrap().clone();
    let keys = by_key(&handled);
    assert_eq!(keys["a"], (0..40).collect::<Vec<_>>());
    // Another key is not held up behind the line's retries.
    let b = handled.iter().position(|body| body == "b:0").unwrap();
    let a0 = handled.iter().position(|body| body == "a:0:fail").unwrap();
    assert!(b < a0, "{handled:?}");
}

#[tokio::test(start_paused = true)]
async fn the_order_a_crashed_worker_left_is_kept_by_the_next_one() {
    let inbox = memory(5);
    inbox.append(Bytes::from("a:0")).await.unwrap();
    inbox.append(Bytes::from("a:1")).await.unwrap();
    // A previous worker claimed the first and failed it: it is due in 2 s, the second
    // is due now. A worker that did not read what is live would run a:1 first.
    let claimed = inbox.claim(1, Duration::from_secs(30)).await.unwrap();
    inbox
        .retry(
            &claimed[0],
            Duration::from_secs(2),
            "the previous process failed it",
        )
        .await
        .unwrap();
    let (handled, per_key) = (Arc::default(), Arc::default());
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .order_by(key_of)
        .build(ordered_handler(Arc::clone(&handled), per_key))
        .run_until(stopped);
    let report = run_until_done(worker, stop, &inbox, |s| s.pending + s.in_flight == 0).await;
    assert_eq!(*handled.lock().unwrap(), ["a:0", "a:1"]);
    assert!(report.deferred > 0);
}

#[tokio::test(start_paused = true)]
async fn a_dead_letter_lets_the_next_of_its_key_go() {
    let inbox = memory(5);
    inbox.append(Bytes::from("a:0:poison")).await.unwrap();
    inbox.append(Bytes::from("a:1")).await.unwrap();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&handled);
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .order_by(key_of)
        .build(tower::service_fn(move |delivery: Delivery| {
            let seen = Arc::clone(&seen);
            async move {
                let body = String::from_utf8(delivery.body().to_vec()).unwrap();
                seen.lock().unwrap().push(body.clone());
                if body.contains("poison") {
                    return Err(Abort::new("poison"));
                }
                Ok(())
            }
        }))
        .run_until(stopped);
    run_until_done(worker, stop, &inbox, |s| s.pending + s.in_flight == 0).await;
    assert_eq!(*handled.lock().unwrap(), ["a:0:poison", "a:1"]);
    assert_eq!(inbox.stats().await.unwrap().dead, 1);
}

#[tokio::test(start_paused = true)]
async fn one_busy_key_runs_back_to_back_and_leaves_room_for_the_others() {
    let inbox = memory(3);
    for n in 0..600u32 {
        inbox.append(Bytes::from(format!("hot:{n}"))).await.unwrap();
        if n % 100 == 0 {
            inbox
                .append(Bytes::from(format!("cold{n}:0")))
                .await
                .unwrap();
        }
    }
    let (handled, per_key) = (Arc::default(), Arc::default());
    let (stop, stopped) = signal();
    let worker = Worker::builder(Arc::clone(&inbox))
        .concurrency(4)
        .order_by(key_of)
        .build(ordered_handler(Arc::clone(&handled), per_key))
        .run_until(stopped);
    let started = tokio::time::Instant::now();
    let report = run_until_done(worker, stop, &inbox, |s| s.pending + s.in_flight == 0).await;
    let took = started.elapsed();
    let handled = handled.lock().unwrap().clone();
    assert_eq!(by_key(&handled)["hot"], (0..600).collect::<Vec<_>>());
    // One at a time, 5 ms each: 3 s if back to back (3.01 s measured); the line's
    // tail waits in the inbox and comes back near its turn, a few deferrals each.
    assert!(took < Duration::from_secs(4), "{took:?}, {report:?}");
    assert!(report.deferred < 5 * 600, "{report:?}");
    // The other keys were not stuck behind the busy one's line.
    let last_cold = handled.iter().rposition(|b| b.starts_with("cold")).unwrap();
    assert!(last_cold < 100, "{last_cold}: {report:?}");
}
