//! The receiver's wiring: settings → inbox → router → worker (tests drive it in process).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{BoxError, Router};
use genesys_webhook::cloud::{DeliveredReceipts, ReceiptSender};
use genesys_webhook::endpoint::{Enqueue, Readiness};
use genesys_webhook::inbox::{
    Delivery, InboxAdmin, InboxLimits, InboxLocation, SqliteInbox, Worker, WorkerHandle,
    WorkerReport,
};
use genesys_webhook::replay::ReplayProtection;
use genesys_webhook::{GenesysSignatureLayer, GenesysSignatureLayerBuilder, PeerAddress};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

/// Everything the receiver reads from its environment (README, "The example receiver").
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub serve: ServeLimits,
    /// `GENESYS_SHUTDOWN_SECS`: the HTTP drain and the worker's grace together.
    pub shutdown: Duration,
    layer: GenesysSignatureLayerBuilder,
    replay: ReplaySettings,
    inbox: InboxSettings,
    worker: WorkerSettings,
    /// Delivered receipts: see [`workers`].
    receipts: ReceiptSender,
    knobs: TestKnobs,
}

/// `GENESYS_REPLAY_STORE`, `GENESYS_REPLAY_TTL_SECS`, `GENESYS_REPLAY_LEASE_SECS`.
struct ReplaySettings {
    store: Option<String>,
    ttl: Duration,
    lease: Duration,
}

/// `GENESYS_INBOX` and `GENESYS_INBOX_MAX_*`.
struct InboxSettings {
    location: InboxLocation,
    limits: InboxLimits,
}

/// `GENESYS_INBOX_LEASE_SECS`, `GENESYS_WORKER_CONCURRENCY`, `GENESYS_WORKER_RETRY_BASE_MS`.
struct WorkerSettings {
    lease: Duration,
    concurrency: usize,
    retry_base: Duration,
}

// ---------------------------------------------------------------------------------
// Test and benchmark knobs. Documented in the README; never set them in production.
// ---------------------------------------------------------------------------------

/// What the tests and benchmarks turn, and nothing else does.
struct TestKnobs {
    /// `GENESYS_WORKER_DELAY_MS`: how long each event's handling takes.
    worker_delay: Duration,
    /// `GENESYS_WORKER_FAIL_ON`: bodies holding this text fail (errors and panics).
    worker_fail_on: Option<String>,
    /// `GENESYS_INBOX_GROUP_COMMIT=0`: one fsync per event, for comparison only.
    group_commit: bool,
    /// `GENESYS_BENCH_BASELINE=1`: an unverified route, the benchmark's baseline.
    bench_baseline: bool,
}

impl Settings {
    /// Reads the variables `var` gives (the environment; tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, BoxError> {
        let text = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let num = |name: &str, default: u64| -> Result<u64, BoxError> {
            let bad = |v: &str| format!("{name}={v:?} is not a whole number").into();
            text(name).map_or(Ok(default), |v| v.trim().parse().map_err(|_| bad(&v)))
        };
        let fallback = || {
            let secret = text("GENESYS_CLIENT_SECRET");
            if secret.is_some() {
                tracing::warn!("GENESYS_WEBHOOK_SECRET is not set: verifying with GENESYS_CLIENT_SECRET, the OAuth client secret; Open Messaging signs with the integration's webhook signature secret instead");
            }
            secret
        };
        let secret = text("GENESYS_WEBHOOK_SECRET").or_else(fallback).ok_or(
            "set GENESYS_WEBHOOK_SECRET to the webhook signing secret (for Open Messaging: the integration's webhook signature secret)",
        )?;
        let listen = text("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:5000".to_owned());
        let listen_addr = std::net::ToSocketAddrs::to_socket_addrs(listen.trim())
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                format!("LISTEN_ADDR={listen:?}: expected HOST:PORT, e.g. 127.0.0.1:5000")
            })?;
        let inbox = match text("GENESYS_INBOX") {
            None => InboxLocation::default(),
            Some(v) => v.parse().map_err(|e| format!("GENESYS_INBOX: {e}"))?,
        };
        let defaults = InboxLimits::default();
        let secs = |name, default| num(name, default).map(Duration::from_secs);
        let millis = |name, default| num(name, default).map(Duration::from_millis);
        let mut layer = GenesysSignatureLayer::builder()
            .secret(secret)
            .max_body_bytes(num("GENESYS_MAX_BODY_BYTES", 1 << 20)? as usize)
            .max_buffered_bytes(num("GENESYS_MAX_BUFFERED_BYTES", 64 << 20)? as usize)
            .diagnostics(text("GENESYS_WEBHOOK_DIAGNOSTICS").is_some_and(|v| v == "1"));
        if let Some(previous) = text("GENESYS_WEBHOOK_SECRET_PREVIOUS") {
            layer = layer.secret(previous);
        }
        let mut peer_address = false;
        match text("GENESYS_LOG_PEER").as_deref() {
            Some("socket") => {
                peer_address = true;
                layer = layer.peer_address(PeerAddress::socket());
            }
            Some("forwarded-for") => layer = layer.peer_address(PeerAddress::forwarded_for()),
            _ => {}
        }
        let attempts = num("GENESYS_INBOX_MAX_ATTEMPTS", defaults.max_attempts.into())?;
        let limits = InboxLimits::default()
            .max_attempts(attempts.clamp(1, u32::MAX.into()) as u32)
            .max_events(num("GENESYS_INBOX_MAX_EVENTS", defaults.max_events)?)
            .max_bytes(num("GENESYS_INBOX_MAX_BYTES", defaults.max_bytes)?);
        let receipts =
            ReceiptSender::from_env().map_err(|e| format!("Genesys Cloud client: {e}"))?;
        Ok(Self {
            receipts,
            listen_addr,
            serve: ServeLimits {
                peer_address,
                ..serve_limits(
                    secs("GENESYS_REQUEST_TIMEOUT_SECS", 10)?,
                    num("GENESYS_MAX_CONNECTIONS", 768)? as usize,
                )
            },
            shutdown: secs("GENESYS_SHUTDOWN_SECS", SHUTDOWN_BUDGET.as_secs())?,
            layer,
            replay: ReplaySettings {
                store: text("GENESYS_REPLAY_STORE"),
                ttl: secs("GENESYS_REPLAY_TTL_SECS", 600)?,
                lease: secs("GENESYS_REPLAY_LEASE_SECS", 30)?,
            },
            inbox: InboxSettings {
                location: inbox,
                limits,
            },
            worker: WorkerSettings {
                lease: secs("GENESYS_INBOX_LEASE_SECS", 30)?,
                concurrency: num("GENESYS_WORKER_CONCURRENCY", 16)? as usize,
                retry_base: millis("GENESYS_WORKER_RETRY_BASE_MS", 1000)?,
            },
            knobs: TestKnobs {
                worker_delay: millis("GENESYS_WORKER_DELAY_MS", 0)?,
                worker_fail_on: text("GENESYS_WORKER_FAIL_ON"),
                group_commit: num("GENESYS_INBOX_GROUP_COMMIT", 1)? != 0,
                bench_baseline: text("GENESYS_BENCH_BASELINE").is_some_and(|v| v == "1"),
            },
        })
    }
}

/// The default shutdown budget (`GENESYS_SHUTDOWN_SECS`), under a service manager's
/// usual 30 s stop timeout (systemd's `TimeoutStopSec=30`, Kubernetes' grace period):
/// the HTTP drain, then the worker.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(25);
/// The longest HTTP drain at shutdown; the worker gets the rest of the budget.
const MAX_DRAIN: Duration = Duration::from_secs(5);

/// How the server protects itself (`examples/common/serve.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// `GENESYS_REQUEST_TIMEOUT_SECS`: the deadline of each request.
    pub request_timeout: Duration,
    /// `GENESYS_MAX_CONNECTIONS`: connections served at once.
    pub max_connections: usize,
    /// The HTTP drain at shutdown.
    pub drain: Duration,
    /// `GENESYS_LOG_PEER=socket`: the peer's address goes into each request.
    pub peer_address: bool,
}

/// The server's limits: the drain is the request deadline, at most 5 s.
fn serve_limits(request_timeout: Duration, max_connections: usize) -> ServeLimits {
    ServeLimits {
        request_timeout,
        max_connections: max_connections.max(1),
        drain: request_timeout.min(MAX_DRAIN),
        peer_address: false,
    }
}

/// The events' inbox and the receipts'.
type Inboxes = (Arc<dyn InboxAdmin>, Arc<dyn InboxAdmin>);

/// The inbox `GENESYS_INBOX` names, and its companion for the receipts.
pub fn open_inboxes(settings: &Settings) -> Result<Inboxes, BoxError> {
    let InboxSettings { location, limits } = &settings.inbox;
    let inbox = match location {
        InboxLocation::Sqlite(path) if !settings.knobs.group_commit => SqliteInbox::builder(path)
            .limits(*limits)
            .max_batch(1)
            .open()
            .map(|inbox| Arc::new(inbox) as Arc<dyn InboxAdmin>),
        _ => location.open(*limits),
    };
    let inbox = inbox.map_err(|e| format!("GENESYS_INBOX: {e}"))?;
    let receipts = location.open_companion("receipts", *limits);
    let receipts = receipts.map_err(|e| format!("GENESYS_INBOX (receipts): {e}"))?;
    match location {
        InboxLocation::Memory => tracing::warn!("inbox in memory: acknowledged events are lost if the process crashes (set GENESYS_INBOX to sqlite:PATH or a redis:// URL)"),
        _ => tracing::info!(%location, "inbox"),
    }
    Ok((inbox, receipts))
}

/// The routes: the signed webhook, health, readiness and (given a handle) metrics.
pub fn app(
    settings: &Settings,
    inbox: Arc<dyn InboxAdmin>,
    metrics: Option<PrometheusHandle>,
) -> Result<Router, BoxError> {
    let mut layer = settings.layer.clone();
    if let Some(replay) = replay_protection(settings)? {
        layer = layer.replay_protection(replay);
    }
    let layer = layer
        .build()
        .map_err(|e| format!("GENESYS_WEBHOOK_SECRET*, GENESYS_REPLAY_*: {e}"))?;
    let readiness = Readiness::new(inbox.clone()).signature_layer(&layer);
    let enqueue = Enqueue::new(inbox);
    let mut app = Router::new()
        .route("/webhook/receive", post(enqueue.clone()))
        .route_layer(layer)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .route(
            "/metrics",
            get(move || async move { metrics.map(|m| m.render()).unwrap_or_default() }),
        );
    if settings.knobs.bench_baseline {
        tracing::warn!("POST /bench/unverified is open: benchmarking only");
        app = app.route("/bench/unverified", post(enqueue.allow_unverified(true)));
    }
    // Per-request traces only when the log filter shows them (`tower_http=debug`):
    // a span per request costs even when nothing is written. Refusals (503) are the
    // library's to log: one by one at DEBUG only, flood or not.
    if !tracing::enabled!(target: "tower_http::trace::on_request", tracing::Level::DEBUG) {
        return Ok(app);
    }
    let on_failure = DefaultOnFailure::new().level(tracing::Level::DEBUG);
    let trace = TraceLayer::new_for_http().on_failure(on_failure);
    Ok(app.layer(trace))
}

fn replay_protection(settings: &Settings) -> Result<Option<ReplayProtection>, BoxError> {
    let ReplaySettings { store, ttl, lease } = &settings.replay;
    let protection = ReplayProtection::from_location(store.as_deref().unwrap_or("memory"))
        .map_err(|e| format!("GENESYS_REPLAY_STORE: {e}"))?;
    Ok(protection.map(|protection| protection.ttl(*ttl).lease(*lease)))
}

/// The library's two workers: [`handle`] on each event, then the Delivered receipts
/// from their own inbox.
pub struct Workers {
    events: WorkerHandle,
    receipts: WorkerHandle,
}

impl Workers {
    /// Stops both; what the event worker did.
    pub async fn shutdown(self) -> WorkerReport {
        let report = self.events.shutdown().await;
        self.receipts.shutdown().await;
        report
    }
}

/// Starts the workers on `inbox` and `receipts`.
pub fn workers(
    settings: &Settings,
    inbox: Arc<dyn InboxAdmin>,
    receipts: Arc<dyn InboxAdmin>,
) -> Workers {
    let WorkerSettings {
        lease,
        concurrency,
        retry_base,
    } = settings.worker;
    let (delay, fail_on) = (
        settings.knobs.worker_delay,
        settings.knobs.worker_fail_on.clone(),
    );
    let handler = tower::service_fn(move |delivery| handle(delivery, delay, fail_on.clone()));
    let handler = DeliveredReceipts::new(handler, receipts.clone());
    // What the HTTP drain leaves of the shutdown budget.
    let grace = settings.shutdown.saturating_sub(settings.serve.drain);
    let events = Worker::builder(inbox).concurrency(concurrency).lease(lease);
    let events = events
        .backoff(retry_base, Duration::from_secs(300))
        .shutdown_timeout(grace);
    Workers {
        events: events.build(handler).spawn(),
        // Stopped while the event worker stops, so within the same budget.
        receipts: Worker::builder(receipts)
            .shutdown_timeout(grace)
            .build(settings.receipts.clone())
            .spawn(),
    }
}

/// The application's work, here logged. Bodies holding `GENESYS_WORKER_FAIL_ON` fail.
async fn handle(delivery: Delivery, delay: Duration, fail: Option<String>) -> Result<(), String> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await; // a zero sleep would wait for the timer's next tick
    }
    let body = delivery.body();
    if fail.is_some_and(|m| body.windows(m.len()).any(|w| w == m.as_bytes())) {
        // An error on odd attempts, a panic on even ones: retries and dead letters.
        assert!(delivery.attempt() % 2 == 1, "simulated handler panic");
        return Err("simulated handler failure (GENESYS_WORKER_FAIL_ON)".to_owned());
    }
    // Only the fields logged, borrowed from the body.
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Event<'a> {
        #[serde(borrow)]
        event: Option<Cow<'a, str>>,
        #[serde(rename = "type", borrow)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow)]
        direction: Option<Cow<'a, str>>,
        #[serde(borrow)]
        conversation_id: Option<Cow<'a, str>>,
    }
    // The body is read only to be logged: not at all when INFO is off.
    if !tracing::enabled!(tracing::Level::INFO) {
        return Ok(());
    }
    let event: Event<'_> = serde_json::from_slice(body).unwrap_or_default();
    fn field<'a>(value: &'a Option<Cow<'_, str>>) -> &'a str {
        value.as_deref().unwrap_or("-")
    }
    let what = match (field(&event.event), field(&event.kind)) {
        ("routing:conversation:updated", _) => "conversation update",
        (_, "Text" | "Structured" | "Receipt" | "Event") => "Open Messaging message",
        _ => "event",
    };
    let (id, attempt, kind) = (delivery.id(), delivery.attempt(), field(&event.kind));
    tracing::info!(%id, attempt, kind, direction = field(&event.direction), conversation_id = field(&event.conversation_id), "handled {what}");
    Ok(())
}
