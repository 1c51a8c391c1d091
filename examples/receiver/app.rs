//! The receiver's application: settings, routes, the inbox and its worker. Kept apart
//! from `main.rs` (process, sockets, signals) so that tests can drive it in process.
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
use genesys_webhook::replay::{ReplayProtection, ReplayStore};
use genesys_webhook::GenesysSignatureLayer;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::trace::TraceLayer;

/// How long a sender is asked to wait when the inbox cannot take an event. Genesys
/// retries a 503 five times, five seconds apart.
const RETRY_AFTER_SECS: &str = "5";

/// How long an append may take before the sender is asked to retry (well inside
/// Genesys' 10-second timeout).
const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

/// How often an idle worker looks for events appended by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The inbox `GENESYS_INBOX` names.
pub fn open_inbox(settings: &Settings) -> Result<Arc<dyn Inbox>, BoxError> {
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

/// What the handlers share: the inbox, and the replay store for readiness.
#[derive(Clone)]
pub struct AppState {
    inbox: Arc<dyn Inbox>,
    replay: Option<Arc<dyn ReplayStore>>,
    refusals: Arc<AtomicU64>,
    started: std::time::Instant,
    /// Seconds after `started` when the next WARN summary of refusals is due.
    next_summary: Arc<AtomicU64>,
}

/// The receiver's routes, with the signature layer and the request deadline.
pub fn app(settings: &Settings, inbox: Arc<dyn Inbox>) -> Result<Router, BoxError> {
    let mut signature = GenesysSignatureLayer::builder()
        .secret(settings.secret.clone())
        .max_body_bytes(settings.max_body_bytes)
        .max_buffered_bytes(settings.max_buffered_bytes);
    if let Some(previous) = settings.previous_secret.clone() {
        signature = signature.secret(previous);
    }
    let protection = replay_protection(settings.replay_store.as_deref())?;
    let replay = protection.as_ref().map(|p| Arc::clone(p.store()));
    if let Some(protection) = protection {
        signature = signature.replay_protection(
            protection
                .ttl(settings.replay_ttl)
                .lease(settings.replay_lease),
        );
    }
    let signature = signature.build().map_err(|e| match e {
        genesys_webhook::ConfigError::ReplaySettings { reason } => {
            format!("GENESYS_REPLAY_TTL_SECS / GENESYS_REPLAY_LEASE_SECS: {reason}")
        }
        genesys_webhook::ConfigError::ZeroBufferBudget => {
            "GENESYS_MAX_BUFFERED_BYTES must be at least 1".to_owned()
        }
        other => other.to_string(),
    })?;

    let mut app = Router::new()
        .route("/webhook/receive", post(receive))
        .route_layer(signature)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if settings.bench_baseline {
        // The same work without the signature check, for measuring what the check
        // costs (scripts/load.sh). Never turn this on in production.
        tracing::warn!("POST /bench/unverified is open: benchmarking only");
        app = app.route("/bench/unverified", post(receive));
    }
    let state = AppState {
        inbox,
        replay,
        refusals: Arc::default(),
        started: std::time::Instant::now(),
        next_summary: Arc::default(),
    };
    Ok(app.with_state(state).layer(
        ServiceBuilder::new()
            // A 503 asks the sender to retry (overloaded, inbox full, replay store
            // down): DEBUG, so that a flood cannot fill the disk; other 5xx are ERRORs.
            .layer(TraceLayer::new_for_http().on_failure(
                |failure: ServerErrorsFailureClass, latency: Duration, _: &tracing::Span| {
                    match failure {
                        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
                            tracing::debug!(?latency, "answered 503: the sender retries")
                        }
                        failure => tracing::error!(%failure, ?latency, "request failed"),
                    }
                },
            ))
            // One deadline for the whole request, body included: a client that
            // drips bytes is cut off here, not only one that stops sending.
            .layer(HandleErrorLayer::new(|_: BoxError| async {
                error(StatusCode::REQUEST_TIMEOUT, "request_timeout")
            }))
            .timeout(settings.request_timeout),
    ))
}

/// Ready when the stores answer: the inbox, and the replay store when there is one.
/// `/healthz` only says the process is alive.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        state.inbox.ping().await.map_err(|e| e.to_string())?;
        if let Some(replay) = &state.replay {
            replay.ping().await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "not ready");
            error(StatusCode::SERVICE_UNAVAILABLE, "not_ready")
        }
        Err(_) => {
            tracing::warn!("not ready: a store did not answer within 2 s");
            error(StatusCode::SERVICE_UNAVAILABLE, "not_ready")
        }
    }
}

/// Everything the receiver reads from its environment.
pub struct Settings {
    max_buffered_bytes: usize,
    replay_lease: Duration,
    secret: String,
    /// Where to listen.
    pub listen_addr: SocketAddr,
    /// The total deadline of one request.
    pub request_timeout: Duration,
    previous_secret: Option<String>,
    max_body_bytes: usize,
    replay_store: Option<String>,
    replay_ttl: Duration,
    bench_baseline: bool,
    inbox: InboxLocation,
    inbox_options: InboxOptions,
    group_commit: bool,
    /// How the worker runs.
    pub worker: WorkerSettings,
}

/// How the worker claims and retries.
#[derive(Clone)]
pub struct WorkerSettings {
    lease: Duration,
    concurrency: usize,
    delay: Duration,
    retry_base: Duration,
    fail_on: Option<String>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, BoxError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables `var` gives (tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, BoxError> {
        let non_blank = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let secret = match non_blank("GENESYS_WEBHOOK_SECRET") {
            Some(secret) => secret,
            None => {
                let fallback = non_blank("GENESYS_CLIENT_SECRET").ok_or(
                    "set GENESYS_WEBHOOK_SECRET to the webhook signing secret \
                     (for Open Messaging: the integration's webhook signature secret)",
                )?;
                tracing::warn!(
                    "GENESYS_WEBHOOK_SECRET is not set: verifying with GENESYS_CLIENT_SECRET, \
                     the OAuth client secret. Genesys Cloud's Open Messaging signs with the \
                     integration's webhook signature secret instead: set GENESYS_WEBHOOK_SECRET"
                );
                fallback
            }
        };
        // A number from variable `name`, or `default` when it is unset or blank.
        fn number<T: std::str::FromStr>(
            var: &impl Fn(&str) -> Option<String>,
            name: &str,
            default: T,
        ) -> Result<T, BoxError> {
            match var(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={text:?} is not valid").into()),
            }
        }
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
            listen_addr: number(&var, "LISTEN_ADDR", "127.0.0.1:5000".parse()?)?,
            max_body_bytes: number(&var, "GENESYS_MAX_BODY_BYTES", 1024 * 1024)?,
            request_timeout: Duration::from_secs(number(&var, "GENESYS_REQUEST_TIMEOUT_SECS", 10)?),
            replay_store: non_blank("GENESYS_REPLAY_STORE"),
            replay_ttl: Duration::from_secs(number(&var, "GENESYS_REPLAY_TTL_SECS", 600)?),
            replay_lease: Duration::from_secs(number(&var, "GENESYS_REPLAY_LEASE_SECS", 30)?),
            max_buffered_bytes: number(&var, "GENESYS_MAX_BUFFERED_BYTES", 64 * 1024 * 1024)?,
            bench_baseline: non_blank("GENESYS_BENCH_BASELINE").is_some_and(|v| v == "1"),
            inbox,
            inbox_options: InboxOptions {
                max_attempts: number(&var, "GENESYS_INBOX_MAX_ATTEMPTS", defaults.max_attempts)?
                    .max(1),
                max_events: number(&var, "GENESYS_INBOX_MAX_EVENTS", defaults.max_events)?,
                max_bytes: number(&var, "GENESYS_INBOX_MAX_BYTES", defaults.max_bytes)?,
            },
            group_commit: number(&var, "GENESYS_INBOX_GROUP_COMMIT", 1u8)? != 0,
            worker: WorkerSettings {
                lease: Duration::from_secs(number(&var, "GENESYS_INBOX_LEASE_SECS", 30)?.max(1)),
                concurrency: number(&var, "GENESYS_WORKER_CONCURRENCY", 16)?.max(1),
                delay: Duration::from_millis(number(&var, "GENESYS_WORKER_DELAY_MS", 0)?),
                retry_base: Duration::from_millis(number(
                    &var,
                    "GENESYS_WORKER_RETRY_BASE_MS",
                    1000,
                )?),
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
        Some(url) if url.starts_with("redis://") => redis_protection(url).map(Some),
        // Not echoed: a mistyped URL may carry a password.
        Some(_) => Err(
            "GENESYS_REPLAY_STORE is not valid: expected a redis:// URL, `memory` or `none`".into(),
        ),
    }
}

#[cfg(feature = "redis")]
fn redis_protection(url: &str) -> Result<ReplayProtection, BoxError> {
    let store = genesys_webhook::replay::RedisStore::open(url)
        .map_err(|e| format!("GENESYS_REPLAY_STORE is not valid: {e}"))?;
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

/// Stores the event, then answers: `200` only once the inbox holds it durably.
async fn receive(State(state): State<AppState>, body: Bytes) -> Response {
    // The content type is not checked: the signature already proved the sender, and
    // what matters is that the body is a JSON object.
    if let Err(reason) = check_json_object(&body) {
        tracing::info!(body_len = body.len(), %reason, "invalid JSON refused");
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    match tokio::time::timeout(APPEND_TIMEOUT, state.inbox.append(body)).await {
        Ok(Ok(_id)) => (StatusCode::OK, Json(json!({ "status": "queued" }))).into_response(),
        Ok(Err(InboxError::Full)) => refused(&state, "inbox_full", &"the inbox is full"),
        Ok(Err(error)) => refused(&state, "inbox_unavailable", &error),
        Err(_) => refused(&state, "inbox_unavailable", &"the append timed out"),
    }
}

/// A 503 the sender retries. Logged one by one at DEBUG only, so that a flood cannot
/// fill the disk, with a WARN summary at most once a minute.
fn refused(state: &AppState, code: &str, reason: &dyn std::fmt::Display) -> Response {
    tracing::debug!(%reason, code, "event refused; asking the sender to retry");
    let refused = state.refusals.fetch_add(1, Ordering::Relaxed) + 1;
    let now = state.started.elapsed().as_secs();
    let due = state.next_summary.load(Ordering::Relaxed);
    if now >= due
        && state
            .next_summary
            .compare_exchange(due, now + 60, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            refused,
            last_reason = %reason,
            "events refused with 503 so far (at most one such summary a minute; set RUST_LOG=genesys_webhook=debug,receiver=debug to see each one)"
        );
    }
    retry_later(code)
}

/// Whether `body` is one JSON object whose every string is valid Unicode (no invalid
/// UTF-8, no lone surrogate escape such as `\ud800`), without building a tree: strings
/// are borrowed from the body where they have no escapes.
pub fn check_json_object(body: &[u8]) -> Result<(), String> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err("not a JSON object".to_owned());
    }
    serde_json::from_slice::<Checked>(body)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Accepts any JSON value, making the parser decode (and so validate) every string,
/// which it skips when a value is ignored.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
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
pub async fn worker(
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
