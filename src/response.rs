//! The small JSON answers the middlewares give themselves. Below `layer` and `replay`,
//! so that neither has to know the other.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

/// `status` with `body` as `application/json`.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `status` with `body` as `application/json`, for the endpoints whose responses are
/// `String`s (`Enqueue`, `Readiness`).
#[cfg_attr(not(feature = "enqueue"), allow(dead_code))]
pub(crate) fn json_text(status: StatusCode, body: &str) -> Response<String> {
    json_response(status, Bytes::new()).map(|_| body.to_owned())
}

/// `status` with `{"error":"<code>"}`.
pub(crate) fn json_error(status: StatusCode, code: &str) -> Response<Bytes> {
    json_response(status, Bytes::from(format!(r#"{{"error":"{code}"}}"#)))
}

/// Adds `Retry-After` in whole seconds (at least 1).
pub(crate) fn with_retry_after<B>(mut response: Response<B>, after: Duration) -> Response<B> {
    let seconds = after.as_secs().max(1);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Adds `Connection: close`: for an answer given before the request's body was read to
/// its end, whose unread rest would otherwise be taken for the next request.
pub(crate) fn closing<B>(mut response: Response<B>) -> Response<B> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The panic message of a future polled again after it completed, as tower-http's.
pub(crate) const POLLED_AFTER_COMPLETION: &str = "future polled after completion";

/// Lets one caller through at most once per period, whichever thread asks: the gate of
/// the rate-limited WARN summaries (rejections, refusals). The first call passes.
#[derive(Debug)]
pub(crate) struct SummaryGate {
    started: std::time::Instant,
    every: Duration,
    /// Milliseconds after `started` when the next summary is due.
    next: std::sync::atomic::AtomicU64,
}

impl SummaryGate {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            started: std::time::Instant::now(),
            every,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether this caller writes the summary now.
    pub(crate) fn due(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next.load(Relaxed);
        let next = now.saturating_add(u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX));
        // Of callers racing for one summary, only the one whose swap lands writes it.
        now >= due
            && self
                .next
                .compare_exchange(due, next, Relaxed, Relaxed)
                .is_ok()
    }
}

/// Logs a wiring mistake at ERROR the first time `logged` sees it, and at DEBUG after.
#[cfg(feature = "axum")]
pub(crate) fn misconfigured(logged: &std::sync::atomic::AtomicBool, message: &str) {
    if logged.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::debug!("{message}");
    } else {
        tracing::error!("{message} (logged once)");
    }
}

/// How often, at most, a [`RefusalLog`] sums up at WARN.
pub(crate) const REFUSAL_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counts what a part refused (or noticed going wrong, request after request) and logs
/// it the way the webhook layer logs its rejections: each one at DEBUG, and a WARN
/// summary with the count and the latest reason at most once a minute, so that a flood
/// cannot fill the disk and a lasting problem is still seen.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    /// What is counted, as the summary says it ("AudioHook upgrades refused").
    what: &'static str,
    total: std::sync::atomic::AtomicU64,
    summaries: SummaryGate,
}

impl RefusalLog {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            total: std::sync::atomic::AtomicU64::new(0),
            summaries: SummaryGate::new(REFUSAL_SUMMARY_EVERY),
        }
    }

    /// Counts one, logs it at DEBUG, and sums up at WARN when a summary is due.
    pub(crate) fn record(&self, code: &str, reason: &dyn std::fmt::Display) {
        let total = self
            .total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        tracing::debug!(code, %reason, "{}", self.what);
        if self.summaries.due() {
            tracing::warn!(
                total,
                last_reason = %format_args!("{code}: {reason}"),
                "{} so far (at most one such summary a minute; set RUST_LOG=genesys_webhook=debug to see each one)",
                self.what
            );
        }
    }

    /// How many were counted.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}
