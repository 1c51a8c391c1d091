//! The small JSON answers the middlewares and endpoints give themselves.

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
