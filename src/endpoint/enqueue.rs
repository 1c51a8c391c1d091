//! The enqueue endpoint: stores a verified body in an [`Inbox`] before answering, so
//! that every `200` Genesys receives is backed by storage.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use tower_service::Service;

use crate::http::json::json_text;
use crate::http::log::SummaryGate;
use crate::inbox::{Inbox, InboxError};
use crate::webhook::VerifiedBody;

/// Default for [`Enqueue::append_timeout`]: 5 seconds, well inside Genesys' 10-second
/// timeout.
pub const DEFAULT_APPEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`Enqueue::retry_after`]: 5 seconds, Genesys' own retry spacing.
pub const DEFAULT_UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often, at most, refusals are summed up at WARN.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// The endpoint behind [`GenesysSignatureLayer`](crate::GenesysSignatureLayer) that
/// appends each verified body to an [`Inbox`] and answers only once it is stored:
///
/// | the inbox… | answer |
/// |---|---|
/// | stored the event | `200 {"status":"queued"}` |
/// | is full ([`InboxError::Full`]) | `503 {"error":"inbox_full"}` + `Retry-After` |
/// | failed, or took longer than [`append_timeout`](Self::append_timeout) | `503 {"error":"inbox_unavailable"}` + `Retry-After` |
/// | was not asked: the body is not one JSON object (or holds invalid Unicode) | `400 {"error":"invalid_json"}` |
/// | was not asked: [`validate`](Self::validate) refused the body | `400 {"error":"invalid_body","message":"…"}` |
/// | was not asked: the request did not pass the signature layer (axum handler) | `500 {"error":"signature_layer_missing"}` |
/// | was not asked: the body is over axum's `DefaultBodyLimit` | `413` |
///
/// Genesys stops retrying at a 2xx and retries a 503, so nothing it sends is lost.
/// Refusals are logged one by one at DEBUG only, with a WARN summary at most once a
/// minute that names the latest reason.
///
/// It is a tower [`Service`] of `Request<VerifiedBody>`, and with the `axum` feature
/// an axum handler too:
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use std::sync::Arc;
/// use axum::{routing::post, Router};
/// use genesys_webhook::inbox::{InboxAdmin, MemoryInbox};
/// use genesys_webhook::endpoint::Enqueue;
/// use genesys_webhook::GenesysSignatureLayer;
///
/// let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
/// let app: Router = Router::new()
///     .route("/webhook/receive", post(Enqueue::new(inbox.clone())))
///     .route_layer(GenesysSignatureLayer::builder().secret("dev-secret").build()?);
/// # }
/// # Ok::<_, genesys_webhook::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Enqueue {
    inbox: Arc<dyn Inbox>,
    append_timeout: Duration,
    retry_after: Duration,
    json_object: bool,
    validate: Option<Validator>,
    allow_unverified: bool,
    refusals: Arc<Refusals>,
}

/// Checks a body before it is stored; the error is the reason sent back.
type Validator = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

impl Enqueue {
    /// Appends to `inbox`, with the default timeout and `Retry-After` (5 s each), and
    /// JSON objects only.
    pub fn new(inbox: Arc<dyn Inbox>) -> Self {
        Self {
            inbox,
            append_timeout: DEFAULT_APPEND_TIMEOUT,
            retry_after: DEFAULT_UNAVAILABLE_RETRY_AFTER,
            json_object: true,
            validate: None,
            allow_unverified: false,
            refusals: Arc::default(),
        }
    }

    /// Stores only bodies `check` accepts; the others are answered
    /// `400 {"error":"invalid_body","message":"…"}` with `check`'s reason, and never
    /// stored. Runs after the JSON-object check.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use genesys_webhook::inbox::MemoryInbox;
    /// use genesys_webhook::endpoint::Enqueue;
    ///
    /// let enqueue = Enqueue::new(Arc::new(MemoryInbox::new()))
    ///     .validate(|body| match body.len() {
    ///         0..=65_536 => Ok(()),
    ///         n => Err(format!("{n} bytes is more than this application takes")),
    ///     });
    /// ```
    pub fn validate(
        mut self,
        check: impl Fn(&[u8]) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validate = Some(Arc::new(check));
        self
    }

    /// Stores only bodies that deserialize as `T` (serde), such as
    /// [`OpenMessage`](crate::openmessaging::OpenMessage): typed validation with
    /// durable storage, the reason of a refusal being serde's message.
    ///
    /// ```
    /// # #[cfg(feature = "openmessaging")] {
    /// use std::sync::Arc;
    /// use genesys_webhook::inbox::MemoryInbox;
    /// use genesys_webhook::endpoint::Enqueue;
    /// use genesys_webhook::openmessaging::OpenMessage;
    ///
    /// let enqueue = Enqueue::new(Arc::new(MemoryInbox::new())).validate_as::<OpenMessage>();
    /// # }
    /// ```
    pub fn validate_as<T: serde::de::DeserializeOwned>(self) -> Self {
        self.validate(|body| {
            serde_json::from_slice::<T>(body)
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    /// Whether the axum handler stores requests that did not pass
    /// [`GenesysSignatureLayer`](crate::GenesysSignatureLayer) (default `false`: they
    /// are answered `500 {"error":"signature_layer_missing"}`, and the misconfiguration
    /// is logged at ERROR once). Only for a benchmark's baseline route.
    pub fn allow_unverified(mut self, allow: bool) -> Self {
        self.allow_unverified = allow;
        self
    }

    /// How long an append may take before the sender is asked to retry (default 5 s).
    /// An append given up on may still be stored: see [`Inbox::append`].
    pub fn append_timeout(mut self, timeout: Duration) -> Self {
        self.append_timeout = timeout;
        self
    }

    /// The `Retry-After` of the 503 answers (default 5 s), whole seconds.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// Whether only a JSON object is stored (default `true`, as Genesys sends); with
    /// `false` any body is.
    pub fn json_object_only(mut self, only: bool) -> Self {
        self.json_object = only;
        self
    }

    /// The inbox it appends to.
    pub fn inbox(&self) -> &Arc<dyn Inbox> {
        &self.inbox
    }

    /// How many requests it refused (400 and 503) since it was made, across clones.
    pub fn refused(&self) -> u64 {
        self.refusals.count.load(Ordering::Relaxed)
    }

    /// Appends `body` and gives the answer to send.
    pub async fn enqueue(&self, body: Bytes) -> Response<String> {
        self.enqueue_with_content_type(body, None).await
    }

    /// Appends `body` with the `Content-Type` it came with
    /// ([`Inbox::append_with_content_type`]) and gives the answer to send. As a
    /// service or an axum handler, `Enqueue` passes the request's `Content-Type` (when
    /// it is at most 256 bytes of visible ASCII).
    pub async fn enqueue_with_content_type(
        &self,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Response<String> {
        if self.json_object {
            if let Err(reason) = check_json_object(&body) {
                tracing::debug!(body_len = body.len(), %reason, "body is not a JSON object; refused");
                self.refusals.record("invalid_json", &reason);
                return json_text(StatusCode::BAD_REQUEST, r#"{"error":"invalid_json"}"#);
            }
        }
        if let Some(check) = &self.validate {
            if let Err(reason) = check(&body) {
                tracing::debug!(body_len = body.len(), %reason, "body refused by validation");
                self.refusals.record("invalid_body", &reason);
                let answer = serde_json::json!({"error": "invalid_body", "message": reason});
                return json_text(StatusCode::BAD_REQUEST, &answer.to_string());
            }
        }
        let started = Instant::now();
        let mut append = self.inbox.append_with_content_type(body, content_type);
        // An append that completes at once (the memory inbox) needs no timer.
        let first = std::future::poll_fn(|cx| Poll::Ready(append.as_mut().poll(cx))).await;
        let appended = match first {
            Poll::Ready(appended) => Ok(appended),
            Poll::Pending => tokio::time::timeout(self.append_timeout, append).await,
        };
        crate::metrics::append_finished(started.elapsed());
        let (code, reason) = match appended {
            Ok(Ok(id)) => {
                tracing::debug!(inbox_id = %id, "event queued");
                crate::metrics::request("queued", None);
                return json_text(StatusCode::OK, r#"{"status":"queued"}"#);
            }
            Ok(Err(InboxError::Full)) => ("inbox_full", "the inbox is full".to_owned()),
            Ok(Err(error)) => ("inbox_unavailable", error.to_string()),
            Err(_) => (
                "inbox_unavailable",
                format!(
                    "the append took longer than {} ms",
                    self.append_timeout.as_millis()
                ),
            ),
        };
        tracing::debug!(%reason, code, "event refused; asking the sender to retry");
        self.refusals.record(code, &reason);
        let mut response = json_text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(r#"{{"error":"{code}"}}"#),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after.as_secs().max(1)),
        );
        response
    }
}

impl std::fmt::Debug for Enqueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enqueue")
            .field("append_timeout", &self.append_timeout)
            .field("retry_after", &self.retry_after)
            .field("json_object", &self.json_object)
            .field("validates", &self.validate.is_some())
            .field("allow_unverified", &self.allow_unverified)
            .finish_non_exhaustive()
    }
}

impl Service<Request<VerifiedBody>> for Enqueue {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<VerifiedBody>) -> Self::Future {
        let this = self.clone();
        let content_type = content_type(request.headers());
        Box::pin(async move {
            let body = request.into_body().into_bytes();
            Ok(this
                .enqueue_with_content_type(body, content_type.as_deref())
                .await)
        })
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync + 'static> axum::handler::Handler<(), S> for Enqueue {
    type Future = Pin<Box<dyn Future<Output = axum::response::Response> + Send>>;

    fn call(self, request: axum::extract::Request, state: S) -> Self::Future {
        use axum::extract::FromRequest;
        use axum::response::IntoResponse;
        Box::pin(async move {
            let verified = request
                .extensions()
                .get::<crate::webhook::VerifiedSignature>()
                .is_some();
            if !verified && !self.allow_unverified {
                crate::http::log::misconfigured(
                    &MISSING_LAYER_LOGGED,
                    "endpoint::Enqueue is mounted on a route without GenesysSignatureLayer: unsigned requests are refused with 500",
                );
                return json_text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"error":"signature_layer_missing"}"#,
                )
                .into_response();
            }
            let content_type = content_type(request.headers());
            // `Bytes` honours axum's `DefaultBodyLimit` (2 MB unless changed): 413 above it.
            match bytes::Bytes::from_request(request, &state).await {
                Ok(body) => self
                    .enqueue_with_content_type(body, content_type.as_deref())
                    .await
                    .into_response(),
                Err(rejection) => rejection.into_response(),
            }
        })
    }
}

/// The request's `Content-Type` to store with the event: at most 256 bytes of visible
/// ASCII, else none.
fn content_type(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    (value.len() <= 256 && !value.trim().is_empty()).then(|| value.to_owned())
}

/// Whether the missing layer was logged already (once per process).
#[cfg(feature = "axum")]
static MISSING_LAYER_LOGGED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Counts refusals and sums them up at WARN at most once a minute.
#[derive(Debug)]
struct Refusals {
    count: AtomicU64,
    summaries: SummaryGate,
}

impl Default for Refusals {
    fn default() -> Self {
        Self {
            count: AtomicU64::new(0),
            summaries: SummaryGate::new(SUMMARY_EVERY),
        }
    }
}

impl Refusals {
    fn record(&self, code: &'static str, reason: &str) {
        crate::metrics::request("refused", Some(code));
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.summaries.due() {
            return;
        }
        tracing::warn!(
            refused = count,
            last_reason = %format!("{code}: {reason}"),
            "events refused so far (at most one such summary a minute; set RUST_LOG=genesys_webhook=debug to see each one)"
        );
    }
}

/// Whether `body` is one JSON object whose every string is valid Unicode (no invalid
/// UTF-8, no lone surrogate escape such as `\ud800`), without building a tree: strings
/// are borrowed from the body where they have no escapes.
///
/// ```
/// use genesys_webhook::endpoint::check_json_object;
///
/// assert!(check_json_object(br#"{"type":"Text"}"#).is_ok());
/// assert!(check_json_object(b"[1]").is_err());
/// assert!(check_json_object(br#"{"text":"\ud800"}"#).is_err());
/// ```
///
/// # Errors
///
/// What is wrong with it, as text.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::{InboxAdmin, InboxLimits, MemoryInbox};

    #[tokio::test]
    async fn answers_queued_full_and_invalid_json() {
        let inbox: Arc<dyn InboxAdmin> =
            Arc::new(MemoryInbox::new().limits(InboxLimits::default().max_events(1)));
        let enqueue = Enqueue::new(inbox.clone());
        let queued = enqueue.enqueue(Bytes::from_static(br#"{"n":1}"#)).await;
        assert_eq!(queued.status(), StatusCode::OK);
        assert_eq!(queued.body(), r#"{"status":"queued"}"#);
        let full = enqueue.enqueue(Bytes::from_static(br#"{"n":2}"#)).await;
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.body(), r#"{"error":"inbox_full"}"#);
        assert_eq!(full.headers()[header::RETRY_AFTER], "5");
        let invalid = enqueue.enqueue(Bytes::from_static(b"[1,2]")).await;
        assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
        assert_eq!(invalid.body(), r#"{"error":"invalid_json"}"#);
        assert_eq!(enqueue.refused(), 2);
        assert_eq!(inbox.stats().await.unwrap().pending, 1);
    }
}
