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
//! | `GENESYS_REPLAY_TTL_SECS` | how long a processed signature is remembered | `600` |
//! | `GENESYS_WORKER_DELAY_MS` | simulated processing time per event, to try out back-pressure | `0` |
//! | `GENESYS_BENCH_BASELINE` | `1` adds `POST /bench/unverified`, the same handler without the signature check, for benchmarks only | |
//! | `RUST_LOG` | log filter (`tower_http=debug` traces each request) | `info` |
//!
//! Routes: `POST /webhook/receive` (signed) and `GET /healthz` (not signed).
//!
//! A `200 {"status":"queued"}` means the event is stored in the inbox: a crash after
//! it loses nothing, and the worker (in this process, or any replica sharing a Redis
//! inbox) processes it at least once. A full or failing inbox answers `503` with
//! `Retry-After`, so Genesys retries. On start the worker resumes what a previous
//! process left pending; on SIGTERM it finishes the deliveries in progress and
//! leaves the rest stored.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use genesys_webhook::inbox::{
    Delivery, Inbox, InboxError, InboxLocation, InboxOptions, RetryOutcome,
};
use genesys_webhook::replay::ReplayProtection;
use genesys_webhook::GenesysSignatureLayer;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

/// How long a sender is asked to wait when the inbox cannot take an event. Genesys
/// retries a 503 five times, five seconds apart.
const RETRY_AFTER_SECS: &str = "5";

/// How long an append may take before the sender is asked to retry (well inside
/// Genesys' 10-second timeout).
const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How often an idle worker looks for events appended by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    let inbox = open_inbox(&settings)?;

    let (stop_worker, worker_stopped) = watch::channel(false);
    let worker = tokio::spawn(worker(
        Arc::clone(&inbox),
        worker_stopped,
        settings.worker.clone(),
    ));

    let app = app(&settings, Arc::clone(&inbox))?;
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

/// The inbox `GENESYS_INBOX` names.
fn open_inbox(settings: &Settings) -> Result<Arc<dyn Inbox>, BoxError> {
    let location = &settings.inbox;
    let inbox: Arc<dyn Inbox> = match location {
        InboxLocation::Sqlite(path) if !settings.group_commit => {
            // For measuring what group commit saves: one fsync per event.
            Arc::new(
                genesys_webhook::inbox::SqliteInbox::builder(path)
                    .max_attempts(settings.inbox_options.max_attempts)
                    .max_events(settings.inbox_options.max_events)
                    .max_bytes(settings.inbox_options.max_bytes)
                    .max_batch(1)
                    .open()?,
            )
        }
        _ => location
            .open(&settings.inbox_options)
            .map_err(|e| format!("GENESYS_INBOX={location}: {e}"))?,
    };
    if *location == InboxLocation::Memory {
        tracing::warn!(
            "inbox in memory: acknowledged events are lost if the process crashes \
             (set GENESYS_INBOX to sqlite:PATH or a redis:// URL)"
        );
    } else {
        tracing::info!(%location, "inbox");
    }
    Ok(inbox)
}

/// The receiver's routes, with the signature layer and the request deadline.
fn app(settings: &Settings, inbox: Arc<dyn Inbox>) -> Result<Router, BoxError> {
    let mut signature = GenesysSignatureLayer::builder()
        .secret(settings.secret.clone())
        .max_body_bytes(settings.max_body_bytes);
    if let Some(previous) = settings.previous_secret.clone() {
        signature = signature.secret(previous);
    }
    if let Some(protection) = replay_protection(settings.replay_store.as_deref())? {
        signature = signature.replay_protection(protection.ttl(settings.replay_ttl));
    }
    let signature = signature.build()?;

    let mut app = Router::new()
        .route("/webhook/receive", post(receive))
        .route_layer(signature)
        .route("/healthz", get(|| async { "ok" }));
    if settings.bench_baseline {
        // The same work without the signature check, for measuring what the check
        // costs (scripts/load.sh). Never turn this on in production.
        tracing::warn!("POST /bench/unverified is open: benchmarking only");
        app = app.route("/bench/unverified", post(receive));
    }
    Ok(app.with_state(inbox).layer(
        ServiceBuilder::new()
            .layer(TraceLayer::new_for_http())
            // One deadline for the whole request, body included: a client that
            // drips bytes is cut off here, not only one that stops sending.
            .layer(HandleErrorLayer::new(|_: BoxError| async {
                error(StatusCode::REQUEST_TIMEOUT, "request_timeout")
            }))
            .timeout(settings.request_timeout),
    ))
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

struct Settings {
    secret: String,
    previous_secret: Option<String>,
    listen_addr: SocketAddr,
    max_body_bytes: usize,
    request_timeout: Duration,
    replay_store: Option<String>,
    replay_ttl: Duration,
    bench_baseline: bool,
    inbox: InboxLocation,
    inbox_options: InboxOptions,
    group_commit: bool,
    worker: WorkerSettings,
}

#[derive(Clone)]
struct WorkerSettings {
    lease: Duration,
    concurrency: usize,
    delay: Duration,
    retry_base: Duration,
    fail_on: Option<String>,
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let secret = non_blank("GENESYS_WEBHOOK_SECRET")
            .or_else(|| non_blank("GENESYS_CLIENT_SECRET"))
            .ok_or(
                "set GENESYS_WEBHOOK_SECRET to the webhook signing secret \
                 (for Open Messaging: the integration's webhook signature secret)",
            )?;
        let inbox = match non_blank("GENESYS_INBOX") {
            None => InboxLocation::default(),
            Some(text) => text
                .parse()
                .map_err(|e| format!("GENESYS_INBOX is not valid: {e}"))?,
        };
        let defaults = InboxOptions::default();
        Ok(Self {
            secret,
            previous_secret: non_blank("GENESYS_WEBHOOK_SECRET_PREVIOUS"),
            listen_addr: parsed("LISTEN_ADDR", "127.0.0.1:5000".parse()?)?,
            max_body_bytes: parsed("GENESYS_MAX_BODY_BYTES", 1024 * 1024)?,
            request_timeout: Duration::from_secs(parsed("GENESYS_REQUEST_TIMEOUT_SECS", 10)?),
            replay_store: non_blank("GENESYS_REPLAY_STORE"),
            replay_ttl: Duration::from_secs(parsed("GENESYS_REPLAY_TTL_SECS", 600)?),
            bench_baseline: non_blank("GENESYS_BENCH_BASELINE").is_some_and(|v| v == "1"),
            inbox,
            inbox_options: InboxOptions {
                max_attempts: parsed("GENESYS_INBOX_MAX_ATTEMPTS", defaults.max_attempts)?.max(1),
                max_events: parsed("GENESYS_INBOX_MAX_EVENTS", defaults.max_events)?,
                max_bytes: parsed("GENESYS_INBOX_MAX_BYTES", defaults.max_bytes)?,
            },
            group_commit: parsed("GENESYS_INBOX_GROUP_COMMIT", 1u8)? != 0,
            worker: WorkerSettings {
                lease: Duration::from_secs(parsed("GENESYS_INBOX_LEASE_SECS", 30)?.max(1)),
                concurrency: parsed("GENESYS_WORKER_CONCURRENCY", 16)?.max(1),
                delay: Duration::from_millis(parsed("GENESYS_WORKER_DELAY_MS", 0)?),
                retry_base: Duration::from_millis(parsed("GENESYS_WORKER_RETRY_BASE_MS", 1000)?),
                fail_on: non_blank("GENESYS_WORKER_FAIL_ON"),
            },
        })
    }
}

/// Replay protection as `GENESYS_REPLAY_STORE` asks: in memory by default, Redis for
/// a `redis://` URL, none for `none`.
fn replay_protection(store: Option<&str>) -> Result<Option<ReplayProtection>, BoxError> {
    match store.map(str::trim) {
        None | Some("memory") => {
            tracing::info!("replay protection: in memory");
            Ok(Some(ReplayProtection::in_memory()))
        }
        Some("none") => {
            tracing::warn!("replay protection is off");
            Ok(None)
        }
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            redis_protection(url).map(Some)
        }
        Some(other) => Err(format!(
            "GENESYS_REPLAY_STORE={other:?}: expected a redis:// URL, `memory` or `none`"
        )
        .into()),
    }
}

#[cfg(feature = "redis")]
fn redis_protection(url: &str) -> Result<ReplayProtection, BoxError> {
    let store = genesys_webhook::replay::RedisStore::open(url)?;
    tracing::info!("replay protection: redis");
    Ok(ReplayProtection::new(store))
}

#[cfg(not(feature = "redis"))]
fn redis_protection(_url: &str) -> Result<ReplayProtection, BoxError> {
    Err(
        "GENESYS_REPLAY_STORE names Redis, but the receiver was built without it: \
         cargo run --features redis --example receiver"
            .into(),
    )
}

fn non_blank(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T, BoxError> {
    match non_blank(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name}={value:?} is not valid").into()),
    }
}

/// Stores the event, then answers: `200` only once the inbox holds it durably.
async fn receive(State(inbox): State<Arc<dyn Inbox>>, body: Bytes) -> Response {
    // The content type is not checked: the signature already proved the sender, and
    // what matters is that the body is a JSON object. Validating without building a
    // tree keeps the answer fast and the memory at one copy of the body.
    let is_object = body.trim_ascii_start().first() == Some(&b'{');
    if !is_object || serde_json::from_slice::<IgnoredAny>(&body).is_err() {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    match tokio::time::timeout(APPEND_TIMEOUT, inbox.append(body)).await {
        Ok(Ok(_id)) => (StatusCode::OK, Json(json!({ "status": "queued" }))).into_response(),
        Ok(Err(InboxError::Full)) => {
            tracing::warn!("inbox full; asking the sender to retry");
            retry_later("inbox_full")
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "inbox append failed; asking the sender to retry");
            retry_later("inbox_unavailable")
        }
        Err(_) => {
            tracing::error!("inbox append timed out; asking the sender to retry");
            retry_later("inbox_unavailable")
        }
    }
}

fn retry_later(code: &str) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, code);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

/// Claims deliveries and processes them until shutdown: each one is acknowledged
/// when its handler succeeds, and retried with backoff when it fails or panics (then
/// dead-lettered by the inbox after the last attempt). On shutdown the deliveries in
/// progress are finished; what is pending stays stored for the next start. Returns
/// how many events were processed.
async fn worker(
    inbox: Arc<dyn Inbox>,
    mut stop: watch::Receiver<bool>,
    settings: WorkerSettings,
) -> u64 {
    let settings = Arc::new(settings);
    let mut processed = 0;
    while !*stop.borrow() {
        let deliveries = match inbox.claim(settings.concurrency, settings.lease).await {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, "inbox claim failed; trying again");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        if deliveries.is_empty() {
            tokio::select! {
                () = inbox.appended() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let mut running = tokio::task::JoinSet::new();
        for delivery in deliveries {
            let inbox = Arc::clone(&inbox);
            let settings = Arc::clone(&settings);
            running.spawn(async move { deliver(&*inbox, delivery, &settings).await });
        }
        let mut done = Vec::new();
        while let Some(finished) = running.join_next().await {
            if let Ok(Some(delivery)) = finished {
                done.push(delivery);
            }
        }
        // One acknowledgement for the batch: one operation for the inbox, not one per
        // event. An event whose acknowledgement is lost is delivered again.
        if done.is_empty() {
            continue;
        }
        if let Err(error) = inbox.ack_all(&done).await {
            tracing::warn!(%error, events = done.len(), "could not acknowledge processed events");
        }
        processed += done.len() as u64;
    }
    processed
}

/// Runs the handler for one delivery, catching a panic; schedules a retry when it
/// failed. Returns the delivery when it was processed, for acknowledging.
async fn deliver(
    inbox: &dyn Inbox,
    delivery: Delivery,
    settings: &WorkerSettings,
) -> Option<Delivery> {
    let id = delivery.id().clone();
    let attempt = delivery.attempt();
    let body = delivery.body().clone();
    let handler_settings = settings.clone();
    let outcome =
        tokio::spawn(async move { handle(&body, id.as_str(), attempt, &handler_settings).await })
            .await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(join) if join.is_panic() => Some("the handler panicked".to_owned()),
        Err(_) => Some("the handler was cancelled".to_owned()),
    };
    let id = delivery.id();
    match failure {
        None => Some(delivery),
        Some(reason) => {
            let delay = backoff(settings.retry_base, attempt);
            match inbox.retry(&delivery, delay, &reason).await {
                Ok(RetryOutcome::Dead) => tracing::error!(
                    inbox_id = %id, attempt, %reason,
                    "event failed its last attempt; moved to the dead letters"
                ),
                Ok(_) => tracing::warn!(
                    inbox_id = %id, attempt, %reason, retry_in_ms = delay.as_millis() as u64,
                    "event failed; will retry"
                ),
                Err(error) => tracing::warn!(
                    %error, inbox_id = %id, attempt,
                    "could not schedule a retry; the lease will deliver it again"
                ),
            }
            None
        }
    }
}

/// `base` doubled for each attempt after the first, at most five minutes.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(Duration::from_secs(300))
}

/// The fields the worker looks at, borrowed from the body: nothing is copied, however
/// large the message text. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Notification<'a> {
    /// Tutorial-style notifications: `{"event": "routing:conversation:updated", ...}`.
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    conversation_id: Option<Cow<'a, str>>,
    /// Open Messaging: `Text`, `Structured`, `Receipt`, ...
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Option<Channel<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Channel<'a> {
    #[serde(borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    platform: Option<Cow<'a, str>>,
}

/// Dispatches by kind: the tutorial's `{"event": ...}` notifications, and Open
/// Messaging messages and receipts (`type`, `direction`, `channel`, `text`).
async fn handle(
    body: &[u8],
    inbox_id: &str,
    attempt: u32,
    settings: &WorkerSettings,
) -> Result<(), String> {
    if !settings.delay.is_zero() {
        tokio::time::sleep(settings.delay).await;
    }
    if let Some(marker) = &settings.fail_on {
        if body.windows(marker.len()).any(|w| w == marker.as_bytes()) {
            // Simulated failures, to watch retries and dead letters: an error on odd
            // attempts, a panic on even ones.
            if attempt.is_multiple_of(2) {
                panic!("simulated handler panic (GENESYS_WORKER_FAIL_ON)");
            }
            return Err("simulated handler failure (GENESYS_WORKER_FAIL_ON)".to_owned());
        }
    }
    let Ok(n) = serde_json::from_slice::<Notification<'_>>(body) else {
        tracing::info!(inbox_id, attempt, "handled event of unknown shape");
        return Ok(());
    };
    let text = |field: &Option<Cow<'_, str>>| field.as_deref().unwrap_or("-").to_owned();
    if let Some(kind) = n.event.as_deref() {
        match kind {
            "routing:conversation:updated" => tracing::info!(
                kind,
                conversation_id = text(&n.conversation_id),
                inbox_id,
                attempt,
                "handled conversation update"
            ),
            _ => tracing::info!(
                kind,
                conversation_id = text(&n.conversation_id),
                inbox_id,
                attempt,
                "handled event"
            ),
        }
    } else if let Some(kind) = n.kind.as_deref() {
        let channel = n.channel.unwrap_or_default();
        let message_id = channel.message_id.or(n.id);
        let message_id = text(&message_id);
        let platform = text(&channel.platform);
        match kind {
            "Text" | "Structured" => tracing::info!(
                kind,
                message_id,
                platform,
                direction = text(&n.direction),
                text_len = n.text.as_deref().map_or(0, str::len),
                conversation_id = text(&n.conversation_id),
                inbox_id,
                attempt,
                "handled Open Messaging message"
            ),
            "Receipt" => tracing::info!(
                kind,
                message_id,
                status = text(&n.status),
                inbox_id,
                attempt,
                "handled Open Messaging receipt"
            ),
            _ => tracing::info!(kind, message_id, inbox_id, attempt, "handled message"),
        }
    } else {
        tracing::info!(
            conversation_id = text(&n.conversation_id),
            inbox_id,
            attempt,
            "handled event of unknown kind"
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
