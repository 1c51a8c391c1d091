//! [`OpenMessage`] as an axum extractor.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::OpenMessage;

/// Why a request's body could not be taken as an [`OpenMessage`]: answered `400` with
/// `{"error":"invalid_open_message","message":"…"}`, saying what was wrong.
#[derive(Debug)]
pub struct OpenMessageRejection {
    message: String,
}

impl OpenMessageRejection {
    /// What was wrong with the body.
    pub fn message(&self) -> &str {
        &self.message
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
        let body = serde_json::json!({"error": "invalid_open_message", "message": self.message});
        let mut response = (StatusCode::BAD_REQUEST, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Takes the body (already verified and bounded by `GenesysSignatureLayer` in front)
/// and parses it. The content type is not checked: the signature proved the sender.
impl<S: Send + Sync> FromRequest<S> for OpenMessage {
    type Rejection = OpenMessageRejection;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let body = axum::body::to_bytes(request.into_body(), usize::MAX)
            .await
            .map_err(|error| OpenMessageRejection {
                message: format!("the body could not be read: {error}"),
            })?;
        OpenMessage::from_slice(&body).map_err(|error| OpenMessageRejection {
            message: error.to_string(),
        })
    }
}
