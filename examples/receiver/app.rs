//! The receiver's wiring: settings → inbox → router → worker (tests drive it in process).
//! `genesys-webhook serve` runs the same wiring with a forwarding handler.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{BoxError, Router};
use genesys_webhook::cloud::{DeliveredReceipts, GenesysCloud};
use genesys_webhook::endpoint::{Enqueue, Readiness};
use genesys_webhook::inbox::{
    Delivery, InboxAdmin, InboxLocation, SqliteInbox, Worker, WorkerHandle, WorkerReport,
};
use genesys_webhook::replay::ReplayProtection;
use genesys_webhook::source::{GenesysRanges, SourceAllowlistLayer};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::Service;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use crate::settings::Settings;
use crate::settings::{InboxSettings, ReplaySettings, WorkerSettings};

/// The key events are handled in order by (a conversation), from a body.
pub type OrderKey = fn(&[u8]) -> Option<String>;

/// Runs a receiver until Ctrl-C or SIGTERM: the inbox `settings` name, the routes, and
/// the worker running `handler` on each stored event (in order by `order_by`, if
/// given); then drains and stops, leaving what is pending stored.
pub async fn run<S>(
    settings: Settings,
    handler: S,
    order_by: Option<OrderKey>,
) -> Result<(), BoxError>
where
    S: Service<Delivery> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    let (inbox, receipts) = open_inboxes(&settings)?;
    // Buckets, so the `_seconds` histograms render as histograms, not summaries.
    let seconds = metrics_exporter_prometheus::Matcher::Suffix("_seconds".into());
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(seconds, genesys_webhook::metrics::SECONDS_BUCKETS)?
        .install_recorder()?;
    let workers = workers(&settings, Arc::clone(&inbox), receipts, handler, order_by);
    let sources = source_allowlist(&settings).await?;
    let router = app(&settings, Arc::clone(&inbox), Some(metrics), sources)?;
    let listener = tokio::net::TcpListener::bind(settings.listen_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen_addr))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let shutdown = crate::process::shutdown_signal();
    genesys_webhook::server::serve(listener, router, settings.serve, shutdown).await;
    tracing::info!("stopped accepting requests; the worker finishes what it runs");
    let report = workers.shutdown().await;
    let pending = inbox.stats().await.map_or(0, |s| s.pending);
    let (processed, commits) = (report.processed, inbox.commits());
    tracing::info!(target: "receiver::summary", processed, commits, pending, "worker stopped; what is pending stays stored; bye");
    Ok(())
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

/// With `GENESYS_ALLOW_SOURCES`: Genesys' ranges for those services, fetched now (the
/// receiver does not start without them) and kept fresh.
pub async fn source_allowlist(
    settings: &Settings,
) -> Result<Option<SourceAllowlistLayer>, BoxError> {
    let Some(sources) = &settings.sources else {
        return Ok(None);
    };
    let cloud = GenesysCloud::from_env()
        .map_err(|e| format!("GENESYS_ALLOW_SOURCES needs a Genesys Cloud client: {e}"))?;
    let ranges = GenesysRanges::new(cloud, sources.services.clone());
    let fetched = ranges
        .fetch()
        .await
        .map_err(|e| format!("GENESYS_ALLOW_SOURCES: {e}"))?;
    let layer = SourceAllowlistLayer::builder()
        .ranges(fetched)
        .trusted_proxies(sources.proxies.clone())
        .forwarded_header(sources.header)
        .allow_empty(sources.allow_empty)
        .build()
        .map_err(|e| format!("GENESYS_ALLOW_SOURCES={}: {e}", sources.services.join(",")))?;
    tracing::info!(services = %sources.services.join(","), ranges = layer.ranges().len(), "admitting only Genesys' source addresses");
    ranges.keep_fresh(&layer, sources.refresh);
    Ok(Some(layer))
}

/// The routes: the signed webhook (behind the source allowlist, if any), health,
/// readiness and (given a handle) metrics.
pub fn app(
    settings: &Settings,
    inbox: Arc<dyn InboxAdmin>,
    metrics: Option<PrometheusHandle>,
    sources: Option<SourceAllowlistLayer>,
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
        .route_layer(layer);
    if let Some(sources) = sources {
        // Outside the signature check: a stranger's body is never read.
        app = app.route_layer(sources);
    }
    let mut app = app
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

/// Starts the workers on `inbox` and `receipts`: `handler` on each event (in order by
/// `order_by`, if given), then its Delivered receipt.
pub fn workers<S>(
    settings: &Settings,
    inbox: Arc<dyn InboxAdmin>,
    receipts: Arc<dyn InboxAdmin>,
    handler: S,
    order_by: Option<OrderKey>,
) -> Workers
where
    S: Service<Delivery> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    let WorkerSettings {
        lease,
        concurrency,
        retry_base,
    } = settings.worker;
    let handler = DeliveredReceipts::new(handler, receipts.clone());
    // What the HTTP drain leaves of the shutdown budget.
    let grace = settings.shutdown.saturating_sub(settings.serve.drain);
    let mut events = Worker::builder(inbox).concurrency(concurrency).lease(lease);
    if let Some(key) = order_by {
        events = events.order_by(key);
    }
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

/// The example's handler: [`handle`] with the test knobs `settings` holds.
pub fn demo_handler(
    settings: &Settings,
) -> impl Service<
    Delivery,
    Response = (),
    Error = String,
    Future = impl std::future::Future<Output = Result<(), String>> + Send,
> + Clone
       + Send
       + 'static {
    let (delay, fail_on) = (
        settings.knobs.worker_delay,
        settings.knobs.worker_fail_on.clone(),
    );
    tower::service_fn(move |delivery| handle(delivery, delay, fail_on.clone()))
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
