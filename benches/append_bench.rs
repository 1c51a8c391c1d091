//! Appends 1 KiB events to a `SqliteInbox` from N concurrent producers for S seconds
//! and prints the appends per second: genesys-webhook's side of
//! `scripts/compare-apalis.sh`. WAL with `synchronous=FULL`, as the inbox always runs.
//!
//! ```sh
//! cargo run --release --example append_bench -- PRODUCERS SECONDS DB_PATH
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use genesys_webhook::inbox::{Inbox, InboxLimits, SqliteInbox};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(producers), Some(seconds), Some(path)) = (
        args.get(1).and_then(|p| p.parse::<usize>().ok()),
        args.get(2).and_then(|s| s.parse::<u64>().ok()),
        args.get(3),
    ) else {
        eprintln!("usage: append_bench PRODUCERS SECONDS DB_PATH");
        std::process::exit(2);
    };
    let inbox = SqliteInbox::builder(path)
        .limits(
            InboxLimits::default()
                .max_events(u64::MAX / 2)
                .max_bytes(u64::MAX / 2),
        )
        .open()
        .expect("inbox");
    let body = Bytes::from(format!(r#"{{"pad":"{}"}}"#, "a".repeat(1000)));
    let appended = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let producers: Vec<_> = (0..producers)
        .map(|_| {
            let (inbox, body, appended) = (inbox.clone(), body.clone(), Arc::clone(&appended));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    inbox.append(body.clone()).await.expect("append");
                    appended.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let count = producers.len();
    for producer in producers {
        producer.await.expect("producer");
    }
    let rate = appended.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!(
        "genesys-webhook producers={count} appends_per_sec={rate:.0} commits={}",
        inbox.commits()
    );
}
