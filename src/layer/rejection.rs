use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use tracing::Level;

use crate::response::{json_error, with_retry_after, SummaryGate};
use crate::signature::{MalformedSignature, Scheme};

/// Why the [`GenesysSignatureLayer`](crate::GenesysSignatureLayer) turned a request away.
///
/// The default responses never tell the caller which check failed: every signature
/// problem answers the same `401 {"error":"invalid_signature"}`. The application sees
/// the reason here, in [`on_rejection`](crate::GenesysSignatureLayerBuilder::on_rejection)
/// and in the `tracing` event logged for each rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No header of any accepted scheme was present.
    MissingSignature,
    /// A signature header was present but not a single well-formed digest.
    MalformedSignature {
        /// The scheme whose header was malformed.
        scheme: Scheme,
        /// What was wrong with it.
        reason: MalformedSignature,
    },
    /// A well-formed signature did not match the body under any configured secret.
    SignatureMismatch {
        /// The scheme of the first signature that did not match.
        scheme: Scheme,
    },
    /// The body was larger than the configured limit (by `Content-Length` or while
    /// streaming).
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read to its end (the client went away, or sent a broken
    /// chunked encoding).
    UnreadableBody,
    /// Replay protection is on and the store could not say whether the request was
    /// seen before (unreachable, or full of requests in flight). The default answer is
    /// 503 with `Retry-After`, so the sender retries.
    ReplayStoreUnavailable {
        /// The `Retry-After` of the default answer.
        retry_after: Duration,
    },
    /// Taking this body would have gone past
    /// [`max_buffered_bytes`](crate::GenesysSignatureLayerBuilder::max_buffered_bytes),
    /// the memory all requests together may hold while they are verified. The default
    /// answer is `503 {"error":"overloaded"}` with `Retry-After`, so the sender retries.
    Overloaded {
        /// The `Retry-After` of the default answer.
        retry_after: Duration,
    },
}

impl Rejection {
    /// The status of the default response: 401 for every signature problem, 413 for a
    /// body over the limit, 400 for a body that could not be read, 503 (with
    /// `Retry-After`) when the replay store cannot answer or the layer is overloaded.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingSignature
            | Self::MalformedSignature { .. }
            | Self::SignatureMismatch { .. } => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnreadableBody => StatusCode::BAD_REQUEST,
            Self::ReplayStoreUnavailable { .. } | Self::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The machine-readable code of the default response body: `invalid_signature`,
    /// `payload_too_large`, `unreadable_body`, `replay_store_unavailable` (503) or
    /// `overloaded` (503).
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::MissingSignature
            | Self::MalformedSignature { .. }
            | Self::SignatureMismatch { .. } => "invalid_signature",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnreadableBody => "unreadable_body",
            Self::ReplayStoreUnavailable { .. } => "replay_store_unavailable",
            Self::Overloaded { .. } => "overloaded",
        }
    }

    /// The response the layer sends unless the application replaced it:
    /// [`status`](Self::status) with `{"error":"<error_code>"}` as `application/json`,
    /// and `Retry-After` on a 503.
    pub fn default_response(&self) -> Response<Bytes> {
        let response = json_error(self.status(), self.error_code());
        match self {
            Self::ReplayStoreUnavailable { retry_after } | Self::Overloaded { retry_after } => {
                with_retry_after(response, *retry_after)
            }
            _ => response,
        }
    }

    /// The scheme whose header the rejection is about, if any.
    pub fn scheme(&self) -> Option<Scheme> {
        match self {
            Self::MalformedSignature { scheme, .. } | Self::SignatureMismatch { scheme } => {
                Some(*scheme)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingSignature => f.write_str("no signature header"),
            Self::MalformedSignature { scheme, reason } => {
                write!(f, "malformed {scheme} header: {reason}")
            }
            Self::SignatureMismatch { scheme } => {
                write!(f, "{scheme} does not match the body under any secret")
            }
            Self::PayloadTooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            Self::UnreadableBody => f.write_str("body could not be read"),
            Self::ReplayStoreUnavailable { .. } => f.write_str("replay store unavailable"),
            Self::Overloaded { .. } => {
                f.write_str("the memory for buffering bodies is taken by other requests")
            }
        }
    }
}

impl std::error::Error for Rejection {}

/// A user-supplied replacement for the default rejection responses.
pub(crate) type RejectionHandler = Arc<dyn Fn(&Rejection) -> Response<Bytes> + Send + Sync>;

/// How many requests a layer turned away, by reason, since it was built
/// ([`GenesysSignatureLayer::rejections`](crate::GenesysSignatureLayer::rejections)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectionCounts {
    /// No signature header.
    pub missing_signature: u64,
    /// A malformed signature header.
    pub malformed_signature: u64,
    /// A signature that did not match.
    pub signature_mismatch: u64,
    /// A body over the limit.
    pub payload_too_large: u64,
    /// A body that could not be read.
    pub unreadable_body: u64,
    /// The replay store could not answer.
    pub replay_store_unavailable: u64,
    /// The buffering budget was taken.
    pub overloaded: u64,
}

impl RejectionCounts {
    /// All rejections together.
    pub fn total(&self) -> u64 {
        self.missing_signature
            + self.malformed_signature
            + self.signature_mismatch
            + self.payload_too_large
            + self.unreadable_body
            + self.replay_store_unavailable
            + self.overloaded
    }
}

/// The reason of each counter slot, as the metrics label it.
const SLOT_NAMES: [&str; 7] = [
    "missing_signature",
    "malformed_signature",
    "signature_mismatch",
    "payload_too_large",
    "unreadable_body",
    "replay_store_unavailable",
    "overloaded",
];

/// How often, at most, a summary of rejections is logged at WARN.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counts rejections and logs them: each at the configured level (DEBUG by default,
/// so that a flood of unsigned requests cannot fill the disk), and a WARN summary at
/// most once a minute while rejections happen.
#[derive(Debug)]
pub(crate) struct RejectionLog {
    level: Level,
    counts: [AtomicU64; 7],
    summaries: SummaryGate,
    /// The total at the last summary.
    reported: AtomicU64,
    /// The most recent rejection, for the summary (skipped when another request holds
    /// the lock: a flood need not queue on it).
    last: Mutex<Option<Rejection>>,
}

/// Everything the log says about one rejection.
pub(crate) struct Event<'a> {
    pub(crate) rejection: &'a Rejection,
    pub(crate) body_len: Option<u64>,
    pub(crate) diagnostics: Option<&'a Diagnostics>,
    /// The peer's address, when the layer was asked to log it.
    pub(crate) peer: Option<String>,
}

/// How the layer finds the address of the peer it rejects, for its logs
/// ([`peer_address`](crate::GenesysSignatureLayerBuilder::peer_address)). Off unless
/// configured: an address can be personal data.
#[derive(Clone)]
pub struct PeerAddress(Arc<FindPeer>);

type FindPeer = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

impl PeerAddress {
    /// The last address in `X-Forwarded-For`: the one the reverse proxy in front of
    /// the receiver saw and appended. Use it only behind a proxy that sets the header;
    /// anything before the last entry is the client's own claim.
    pub fn forwarded_for() -> Self {
        Self::from_fn(|parts| {
            let header = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()?;
            let last = header.to_str().ok()?.rsplit(',').next()?.trim();
            (!last.is_empty()).then(|| last.to_owned())
        })
    }

    /// The socket's address, from the `SocketAddr` that axum's `ConnectInfo` (serve
    /// with `into_make_service_with_connect_info::<SocketAddr>()`) or a hyper server
    /// put in the request's extensions.
    pub fn socket() -> Self {
        Self::from_fn(|parts| {
            if let Some(addr) = parts.extensions.get::<std::net::SocketAddr>() {
                return Some(addr.to_string());
            }
            #[cfg(feature = "axum")]
            if let Some(info) = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            {
                return Some(info.0.to_string());
            }
            None
        })
    }

    /// Whatever `find` returns for a request's head.
    pub fn from_fn(
        find: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(find))
    }

    pub(crate) fn of(&self, parts: &http::request::Parts) -> Option<String> {
        (self.0)(parts)
    }
}

impl fmt::Debug for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerAddress")
    }
}

/// Digest prefixes for comparing by eye, when diagnostics are on.
pub(crate) struct Diagnostics {
    pub(crate) received: String,
    pub(crate) computed: String,
}

impl RejectionLog {
    pub(crate) fn new(level: Level) -> Self {
        Self {
            level,
            counts: Default::default(),
            summaries: SummaryGate::new(SUMMARY_EVERY),
            reported: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    fn slot(rejection: &Rejection) -> usize {
        match rejection {
            Rejection::MissingSignature => 0,
            Rejection::MalformedSignature { .. } => 1,
            Rejection::SignatureMismatch { .. } => 2,
            Rejection::PayloadTooLarge { .. } => 3,
            Rejection::UnreadableBody => 4,
            Rejection::ReplayStoreUnavailable { .. } => 5,
            Rejection::Overloaded { .. } => 6,
        }
    }

    pub(crate) fn counts(&self) -> RejectionCounts {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        RejectionCounts {
            missing_signature: c(0),
            malformed_signature: c(1),
            signature_mismatch: c(2),
            payload_too_large: c(3),
            unreadable_body: c(4),
            replay_store_unavailable: c(5),
            overloaded: c(6),
        }
    }

    pub(crate) fn record(&self, event: Event<'_>) {
        let slot = Self::slot(event.rejection);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        match event.rejection {
            Rejection::Overloaded { .. } => crate::metrics::request("overloaded", None),
            _ => crate::metrics::request("rejected", Some(SLOT_NAMES[slot])),
        }
        if let Ok(mut last) = self.last.try_lock() {
            *last = Some(event.rejection.clone());
        }
        emit(self.level, &event);
        self.maybe_summarise();
    }

    fn maybe_summarise(&self) {
        if !self.summaries.due() {
            return;
        }
        let counts = self.counts();
        let total = counts.total();
        let since = total - self.reported.swap(total, Ordering::Relaxed).min(total);
        let last = self
            .last
            .lock()
            .map(|last| last.as_ref().map(ToString::to_string))
            .unwrap_or_default()
            .unwrap_or_default();
        tracing::warn!(
            last_reason = %last,
            rejected = since,
            total,
            missing_signature = counts.missing_signature,
            malformed_signature = counts.malformed_signature,
            signature_mismatch = counts.signature_mismatch,
            payload_too_large = counts.payload_too_large,
            unreadable_body = counts.unreadable_body,
            replay_store_unavailable = counts.replay_store_unavailable,
            overloaded = counts.overloaded,
            "webhooks rejected (at most one such summary a minute; set RUST_LOG=genesys_webhook=debug to see each one)"
        );
    }
}

/// One event per rejection at `level`: the reason, the header and the body length,
/// never a secret or a whole digest.
fn emit(level: Level, event: &Event<'_>) {
    macro_rules! at {
        ($level:expr) => {
            match event.diagnostics {
                None => tracing::event!(
                    $level,
                    peer = event.peer.as_deref(),
                    reason = %event.rejection,
                    header = event.rejection.scheme().map(Scheme::display_header_name),
                    body_len = event.body_len,
                    status = event.rejection.status().as_u16(),
                    "webhook rejected"
                ),
                Some(d) => tracing::event!(
                    $level,
                    peer = event.peer.as_deref(),
                    reason = %event.rejection,
                    header = event.rejection.scheme().map(Scheme::display_header_name),
                    body_len = event.body_len,
                    status = event.rejection.status().as_u16(),
                    received_prefix = %d.received,
                    computed_prefixes = %d.computed,
                    "webhook rejected"
                ),
            }
        };
    }
    match level {
        Level::ERROR => at!(Level::ERROR),
        Level::WARN => at!(Level::WARN),
        Level::INFO => at!(Level::INFO),
        Level::DEBUG => at!(Level::DEBUG),
        _ => at!(Level::TRACE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::header;

    #[test]
    fn default_responses_are_uniform_json() {
        let signature_problems = [
            Rejection::MissingSignature,
            Rejection::MalformedSignature {
                scheme: Scheme::Genesys,
                reason: MalformedSignature::InvalidHex,
            },
            Rejection::SignatureMismatch {
                scheme: Scheme::OpenMessaging,
            },
        ];
        for rejection in signature_problems {
            let response = rejection.default_response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(response.body(), r#"{"error":"invalid_signature"}"#);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        }
        let too_large = Rejection::PayloadTooLarge { limit: 10 }.default_response();
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(too_large.body(), r#"{"error":"payload_too_large"}"#);
        let unreadable = Rejection::UnreadableBody.default_response();
        assert_eq!(unreadable.status(), StatusCode::BAD_REQUEST);
        assert_eq!(unreadable.body(), r#"{"error":"unreadable_body"}"#);
        let overloaded = Rejection::Overloaded {
            retry_after: Duration::from_secs(5),
        }
        .default_response();
        assert_eq!(overloaded.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(overloaded.body(), r#"{"error":"overloaded"}"#);
        assert_eq!(overloaded.headers()[header::RETRY_AFTER], "5");
    }
}
