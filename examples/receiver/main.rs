//! A Genesys Cloud webhook receiver you can run as is and copy into a project.
//!
//! ```text
//! GENESYS_WEBHOOK_SECRET=dev-secret cargo run --example receiver
//! ```
//!
//! Environment:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `GENESYS_WEBHOOK_SECRET` | the signing secret (for Open Messaging, the integration's webhook signature secret) | required |
//! | `GENESYS_CLIENT_SECRET` | used when `GENESYS_WEBHOOK_SECRET` is unset or empty (the original tutorial signed with the OAuth client secret) | |
//! | `GENESYS_WEBHOOK_SECRET_PREVIOUS` | a second secret accepted during rotation | |
//! | `LISTEN_ADDR` | address to listen on | `127.0.0.1:5000` |
//! | `GENESYS_MAX_BODY_BYTES` | largest body accepted | `1048576` |
//! | `GENESYS_MAX_BUFFERED_BYTES` | bytes all requests together may hold while they are read and verified; past it, `503 {"error":"overloaded"}` | `67108864` (64 MiB) |
//! | `GENESYS_INBOX` | where verified events are stored before the `200`: `sqlite:PATH`, a `redis://` URL (build with `--features redis`), or `memory` (lost on a crash) | `genesys-inbox.db` in the working directory |
//! | `GENESYS_INBOX_MAX_ATTEMPTS` | deliveries of an event before it moves to the dead letters | `10` |
//! | `GENESYS_INBOX_MAX_EVENTS` | events stored at once (dead ones included) before new ones get 503 | `100000` |
//! | `GENESYS_INBOX_MAX_BYTES` | body bytes stored at once before new ones get 503 | `1073741824` |
//! | `GENESYS_INBOX_LEASE_SECS` | how long a delivery may take before another worker takes it over | `30` |
//! | `GENESYS_INBOX_GROUP_COMMIT` | `0` commits every SQLite append on its own (one fsync per event), for comparison only | `1` |
//! | `GENESYS_WORKER_CONCURRENCY` | deliveries the worker processes at once | `16` |
//! | `GENESYS_WORKER_RETRY_BASE_MS` | first retry delay after a failed delivery, doubled each attempt (at most 5 minutes) | `1000` |
//! | `GENESYS_WORKER_FAIL_ON` | simulated handler failures: a body containing this text fails (an error, then a panic, in turn) | |
//! | `GENESYS_REQUEST_TIMEOUT_SECS` | total deadline for receiving and answering a request | `10` |
//! | `GENESYS_REPLAY_STORE` | replay protection: unset for in-memory, `redis://host:port/` for a store shared by replicas (build with `--features redis`), `none` to turn it off | in-memory |
//! | `GENESYS_REPLAY_TTL_SECS` | how long a processed event is remembered | `600` |
//! | `GENESYS_REPLAY_LEASE_SECS` | how long a reservation holds before it lapses (renewed while the handler runs) | `30` |
//! | `GENESYS_WORKER_DELAY_MS` | simulated processing time per event, to try out back-pressure | `0` |
//! | `GENESYS_BENCH_BASELINE` | `1` adds `POST /bench/unverified`, the same handler without the signature check, for benchmarks only | |
//! | `RUST_LOG` | log filter (`tower_http=debug` traces each request) | `info` |
//!
//! Routes: `POST /webhook/receive` (signed), `GET /healthz` (liveness) and `GET /readyz`
//! (200 only when the inbox and the replay store answer, else 503).
//!
//! A `200 {"status":"queued"}` means the event is stored in the inbox: a crash after
//! it loses nothing, and the worker (in this process, or any replica sharing a Redis
//! inbox) processes it at least once. A full or failing inbox answers `503` with
//! `Retry-After`, so Genesys retries. On start the worker resumes what a previous
//! process left pending; on SIGTERM it finishes the deliveries in progress and
//! leaves the rest stored.

use std::time::Duration;

use axum::{BoxError, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

mod app;
#[path = "../common/process.rs"]
mod process;

use app::Settings;
use process::shutdown_signal;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    process::init_tracing();
    process::exit(run().await)
}

async fn run() -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    let inbox = app::open_inbox(&settings)?;

    let (stop_worker, worker_stopped) = watch::channel(false);
    let worker = tokio::spawn(app::worker(
        std::sync::Arc::clone(&inbox),
        worker_stopped,
        settings.worker.clone(),
    ));

    let app = app::app(&settings, std::sync::Arc::clone(&inbox))?;
    let listener = tokio::net::TcpListener::bind(settings.listen_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen_addr))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    serve(listener, app, settings.request_timeout).await;

    tracing::info!("stopped accepting requests; finishing the deliveries in progress");
    let _ = stop_worker.send(true);
    let processed = worker.await?;
    let commits = inbox.commits().map(|c| c.to_string());
    let stats = inbox.stats().await.ok();
    tracing::info!(
        target: "receiver::summary",
        processed,
        commits = commits.as_deref().unwrap_or("-"),
        pending = stats.map_or(0, |s| s.pending),
        "worker stopped; what is pending stays stored; bye"
    );
    Ok(())
}

/// Serves HTTP/1.1 until a shutdown signal, then lets requests in flight finish.
///
/// hyper's connection builder is used directly (rather than `axum::serve`) for two
/// limits that matter under abuse: the request head must arrive within the request
/// deadline (a client dripping header bytes is cut off too), and each connection's
/// read buffer stays small, so that memory goes to bodies rather than to buffers.
async fn serve(listener: tokio::net::TcpListener, app: Router, deadline: Duration) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(deadline)
            .max_buf_size(READ_BUFFER_BYTES);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Requests in flight get the request deadline to finish.
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open at shutdown");
    }
}

/// Per-connection read buffer: hyper's default grows to about 400 KiB per
/// connection; bodies are read in chunks of this size instead.
const READ_BUFFER_BYTES: usize = 64 * 1024;
