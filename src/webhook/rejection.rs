use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::http::json::{json_error, with_retry_after};
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

#[cfg(test)]
mod tests {
    use super::*;

    use http::header;

    #[test]
    fn default_responses_are_uniform_json() {
        let signature_problems = [
            Rejection::MissingSignature,
            Rejection::MalformedSignature {
                scheme: Scheme::XGenesysSignature,
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
