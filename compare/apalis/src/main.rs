//! Pushes 1 KiB jobs into apalis-sqlite from N concurrent producers for S seconds and
//! prints the pushes per second.
//!
//! usage: apalis-compare PRODUCERS SECONDS DB_PATH
//!
//! Durability as genesys-webhook's SqliteInbox: WAL with `synchronous=FULL` on every
//! pooled connection. `SqliteStorage::setup` sets `synchronous = NORMAL` (and a larger
//! cache) on the one connection it runs on, so it runs on a pool of its own, and the
//! measured pool sets FULL on each connection it opens.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use apalis_sqlite::SqliteStorage;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let producers: usize = args[1].parse().expect("PRODUCERS");
    let seconds: u64 = args[2].parse().expect("SECONDS");
    let path = &args[3];
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .expect("a path")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    {
        let setup_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .expect("setup pool");
        SqliteStorage::setup(&setup_pool).await.expect("setup");
        setup_pool.close().await;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(producers.clamp(1, 16) as u32)
        .connect_with(options)
        .await
        .expect("pool");
    // What every pooled connection runs with.
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&pool)
        .await
        .unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (synchronous, journal.as_str()),
        (2, "wal"),
        "FULL and WAL expected"
    );

    let body: String = "a".repeat(1000);
    let pushed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let mut storage: SqliteStorage<String> = SqliteStorage::new(&pool);
        let (pushed, body) = (Arc::clone(&pushed), body.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                storage.push(body.clone()).await.expect("push");
                pushed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    let rate = pushed.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("apalis-sqlite producers={producers} pushes_per_sec={rate:.0}");
}
