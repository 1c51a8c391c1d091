//! [`OpenMessage`] as an axum extractor.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::OpenMessage;

/// Why a request's body could not be taken as an [`OpenMessage`]:
///
/// | why | answer |
/// |---|---|
/// | not an Open Messaging message | `400 {"error":"invalid_open_message","message":"…"}` |
/// | over axum's `DefaultBodyLimit` (2 MB unless changed) | `413 {"error":"invalid_open_message","message":"…"}` |
/// | the route has no `GenesysSignatureLayer` (a wiring mistake, logged at ERROR once) | `500 {"error":"signature_layer_missing"}` |
#[derive(Debug)]
pub struct OpenMessageRejection {
    status: StatusCode,
    message: String,
}

impl OpenMessageRejection {
    /// What was wrong with the body.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status it is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl std::fmt::Display for OpenMessageRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an Open Messaging message: {}", self.message)
    }
}

impl std::error::Error for OpenMessageRejection {}

impl IntoResponse for OpenMessageRejection {
    fn into_response(self) -> Response {
        let body = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            serde_json::json!({"error": "signature_layer_missing"})
        } else {
            serde_json::json!({"error": "invalid_open_message", "message": self.message})
        };
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Takes the body (already verified by `GenesysSignatureLayer` in front) within axum's
/// `DefaultBodyLimit`, and parses it. The content type is not checked: the signature
/// proved the sender. A request that did not pass the layer is refused with `500`, so
/// that a route mounted without it never acts on an unsigned body.
impl<S: Send + Sync> FromRequest<S> for OpenMessage {
    type Rejection = OpenMessageRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request
            .extensions()
            .get::<crate::webhook::VerifiedSignature>()
            .is_none()
        {
            crate::http::log::misconfigured(
                &MISSING_LAYER_LOGGED,
                "the OpenMessage extractor is used on a route without GenesysSignatureLayer: unsigned requests are refused with 500",
            );
            return Err(OpenMessageRejection {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "the route has no signature layer".to_owned(),
            });
        }
        let body = bytes::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| OpenMessageRejection {
                status: rejection.status(),
                message: format!("the body could not be read: {}", rejection.body_text()),
            })?;
        OpenMessage::from_slice(&body).map_err(|error| OpenMessageRejection {
            status: StatusCode::BAD_REQUEST,
            message: error.to_string(),
        })
    }
}

/// Whether the missing layer was logged already (once per process).
static MISSING_LAYER_LOGGED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
