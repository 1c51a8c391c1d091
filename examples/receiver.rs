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
//! | `GENESYS_QUEUE_CAPACITY` | events waiting for the worker before new ones get 503 | `1024` |
//! | `GENESYS_REQUEST_TIMEOUT_SECS` | total deadline for receiving and answering a request | `10` |
//! | `GENESYS_REPLAY_STORE` | replay protection: unset for in-memory, `redis://host:port/` for a store shared by replicas (build with `--features redis`), `none` to turn it off | in-memory |
//! | `GENESYS_REPLAY_TTL_SECS` | how long a processed signature is remembered | `600` |
//! | `GENESYS_WORKER_DELAY_MS` | simulated processing time per event, to try out back-pressure | `0` |
//! | `GENESYS_BENCH_BASELINE` | `1` adds `POST /bench/unverified`, the same handler without the signature check, for benchmarks only | |
//! | `RUST_LOG` | log filter (`tower_http=debug` traces each request) | `info` |
//!
//! Routes: `POST /webhook/receive` (signed) and `GET /healthz` (not signed).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Extension, Json, Router};
use genesys_webhook::replay::ReplayProtection;
use genesys_webhook::{GenesysSignatureLayer, VerifiedSignature};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

/// How long a sender is asked to wait when the queue is full. Genesys retries a 503
/// five times, five seconds apart.
const RETRY_AFTER_SECS: &str = "5";

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

    let mut signature = GenesysSignatureLayer::builder()
        .secret(settings.secret)
        .max_body_bytes(settings.max_body_bytes);
    if let Some(previous) = settings.previous_secret {
        signature = signature.secret(previous);
    }
    if let Some(protection) = replay_protection(settings.replay_store.as_deref())? {
        signature = signature.replay_protection(protection.ttl(settings.replay_ttl));
    }
    let signature = signature.build()?;

    let (events, queue) = mpsc::channel::<Event>(settings.queue_capacity);
    let (stop_worker, worker_stopped) = watch::channel(false);
    let worker = tokio::spawn(worker(queue, worker_stopped, settings.worker_delay));

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
    let app = app.with_state(events).layer(
        ServiceBuilder::new()
            .layer(TraceLayer::new_for_http())
            // One deadline for the whole request, body included: a client that
            // drips bytes is cut off here, not only one that stops sending.
            .layer(HandleErrorLayer::new(|_: BoxError| async {
                error(StatusCode::REQUEST_TIMEOUT, "request_timeout")
            }))
            .timeout(settings.request_timeout),
    );

    let listener = tokio::net::TcpListener::bind(settings.listen_addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    serve(listener, app, settings.request_timeout).await;

    tracing::info!("stopped accepting requests; draining the queue");
    let _ = stop_worker.send(true);
    let processed = worker.await?;
    tracing::info!(processed, "queue drained; bye");
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

struct Settings {
    secret: String,
    previous_secret: Option<String>,
    listen_addr: SocketAddr,
    max_body_bytes: usize,
    queue_capacity: usize,
    request_timeout: Duration,
    worker_delay: Duration,
    replay_store: Option<String>,
    replay_ttl: Duration,
    bench_baseline: bool,
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let secret = non_blank("GENESYS_WEBHOOK_SECRET")
            .or_else(|| non_blank("GENESYS_CLIENT_SECRET"))
            .ok_or(
                "set GENESYS_WEBHOOK_SECRET to the webhook signing secret \
                 (for Open Messaging: the integration's webhook signature secret)",
            )?;
        Ok(Self {
            secret,
            previous_secret: non_blank("GENESYS_WEBHOOK_SECRET_PREVIOUS"),
            listen_addr: parsed("LISTEN_ADDR", "127.0.0.1:5000".parse()?)?,
            max_body_bytes: parsed("GENESYS_MAX_BODY_BYTES", 1024 * 1024)?,
            queue_capacity: parsed("GENESYS_QUEUE_CAPACITY", 1024)?.max(1),
            request_timeout: Duration::from_secs(parsed("GENESYS_REQUEST_TIMEOUT_SECS", 10)?),
            worker_delay: Duration::from_millis(parsed("GENESYS_WORKER_DELAY_MS", 0)?),
            replay_store: non_blank("GENESYS_REPLAY_STORE"),
            replay_ttl: Duration::from_secs(parsed("GENESYS_REPLAY_TTL_SECS", 600)?),
            bench_baseline: non_blank("GENESYS_BENCH_BASELINE").is_some_and(|v| v == "1"),
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

/// A verified event waiting for the worker: the body exactly as received, sharing the
/// buffer the signature was checked over (parsed by the worker, not held twice).
struct Event {
    body: Bytes,
    secret_index: Option<usize>,
}

/// Acknowledges at once and leaves the work to the background worker: Genesys gives up
/// on a webhook after 10 seconds and retries it.
async fn receive(
    State(events): State<mpsc::Sender<Event>>,
    verified: Option<Extension<VerifiedSignature>>,
    body: Bytes,
) -> Response {
    // The content type is not checked: the signature already proved the sender, and
    // what matters is that the body is a JSON object. Validating without building a
    // tree keeps the answer fast and the memory at one copy of the body.
    let is_object = body.trim_ascii_start().first() == Some(&b'{');
    if !is_object || serde_json::from_slice::<IgnoredAny>(&body).is_err() {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    let event = Event {
        body,
        secret_index: verified.map(|Extension(v)| v.secret_index()),
    };
    match events.try_send(event) {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "queued" }))).into_response(),
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!("event queue full; asking the sender to retry");
            retry_later()
        }
        Err(mpsc::error::TrySendError::Closed(_)) => retry_later(),
    }
}

fn retry_later() -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "queue_full");
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

/// Processes queued events one by one until shutdown, then drains what is left.
/// Returns how many events it processed.
async fn worker(
    mut queue: mpsc::Receiver<Event>,
    mut stop: watch::Receiver<bool>,
    delay: Duration,
) -> u64 {
    let mut processed = 0;
    loop {
        tokio::select! {
            event = queue.recv() => match event {
                Some(event) => {
                    handle(event, delay).await;
                    processed += 1;
                }
                None => break,
            },
            _ = stop.changed() => {
                // No new events can arrive; what is queued is still processed.
                queue.close();
                while let Some(event) = queue.recv().await {
                    handle(event, delay).await;
                    processed += 1;
                }
                break;
            }
        }
    }
    processed
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
async fn handle(event: Event, delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let secret_index = event.secret_index;
    let Ok(n) = serde_json::from_slice::<Notification<'_>>(&event.body) else {
        tracing::info!(secret_index, "handled event of unknown shape");
        return;
    };
    let text = |field: &Option<Cow<'_, str>>| field.as_deref().unwrap_or("-").to_owned();
    if let Some(kind) = n.event.as_deref() {
        match kind {
            "routing:conversation:updated" => tracing::info!(
                kind,
                conversation_id = text(&n.conversation_id),
                secret_index,
                "handled conversation update"
            ),
            _ => tracing::info!(kind, secret_index, "handled event"),
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
                secret_index,
                "handled Open Messaging message"
            ),
            "Receipt" => tracing::info!(
                kind,
                message_id,
                status = text(&n.status),
                secret_index,
                "handled Open Messaging receipt"
            ),
            _ => tracing::info!(kind, message_id, secret_index, "handled message"),
        }
    } else {
        tracing::info!(secret_index, "handled event of unknown kind");
    }
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
