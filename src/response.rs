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
#[cfg(any(feature = "axum", feature = "openmessaging"))]
pub(crate) fn misconfigured(logged: &std::sync::atomic::AtomicBool, message: &str) {
    if logged.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::debug!("{message}");
    } else {
        tracing::error!("{message} (logged once)");
    }
}
