//! The webhook middleware: [`GenesysSignatureLayer`] and its service [`GenesysSignature`].
//!
//! For each request the service, in this order:
//!
//! 1. reads the signature headers of the accepted [`Scheme`]s. None present, or one
//!    malformed: `401 {"error":"invalid_signature"}`, without reading the body;
//! 2. checks `Content-Length` against the limit: `413 {"error":"payload_too_large"}`,
//!    and against the buffering budget, when one is set: `503 {"error":"overloaded"}`
//!    with `Retry-After`, both without reading the body (these early answers carry
//!    `Connection: close`, since the unread body is still on the connection);
//! 3. reads the body frame by frame, feeding HMAC-SHA256 as the bytes arrive and
//!    stopping with 413 as soon as the body grows past the limit, or 503 when it grows
//!    past the budget (a body that fails to read gets `400 {"error":"unreadable_body"}`);
//! 4. compares every received signature with the digest under every secret, in
//!    constant time on the decoded bytes. Any signature that matches no secret:
//!    `401 {"error":"invalid_signature"}`;
//! 5. with [replay protection](crate::replay) on, reserves the body's key: a request
//!    already processed is answered `200 {"status":"duplicate"}`, one still in flight
//!    `503 {"error":"duplicate_in_flight"}`, and a store that cannot answer
//!    `503 {"error":"replay_store_unavailable"}`, all without calling the inner service;
//! 6. calls the inner service with the same bytes as a [`VerifiedBody`] (a body that
//!    arrived as one frame is passed on without a copy) and a [`VerifiedSignature`]
//!    extension. Method, URI, headers and extensions are kept. With replay protection,
//!    the key is then marked done (2xx) or released (anything else).
//!
//! Every rejection is counted ([`GenesysSignatureLayer::rejections`]) and logged as a
//! `tracing` event with its reason, the header name and the body length, never a
//! secret or a whole digest: at `DEBUG` by default, with a `WARN` summary at most once
//! a minute ([`rejection_log_level`](GenesysSignatureLayerBuilder::rejection_log_level)).
//!
//! # Example
//!
//! ```
//! use axum::{body::Body, routing::post, Router};
//! use genesys_webhook::{signature::sign_open_messaging, GenesysSignatureLayer};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = GenesysSignatureLayer::builder()
//!     .secret("dev-secret")
//!     .max_body_bytes(1024 * 1024)
//!     .build()?;
//! let app = Router::new()
//!     .route("/webhook/receive", post(|body: String| async move { body }))
//!     .route_layer(layer);
//!
//! let body = r#"{"type":"Text","text":"Hello"}"#;
//! let unsigned = Request::post("/webhook/receive").body(Body::from(body))?;
//! let response = app.clone().oneshot(unsigned).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//!
//! let signed = Request::post("/webhook/receive")
//!     .header("x-hub-signature-256", sign_open_messaging("dev-secret", body.as_bytes()))
//!     .body(Body::from(body))?;
//! let response = app.oneshot(signed).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```
//!
//! [`Scheme`]: crate::signature::Scheme

mod budget;
mod builder;
mod future;
mod layer;
mod log;
mod peer;
mod rejection;
mod reservation;
mod service;
mod verified;
mod verify;

pub use self::builder::{ConfigError, GenesysSignatureLayerBuilder, DEFAULT_MAX_BODY_BYTES};
pub use self::future::ResponseFuture;
pub use self::layer::GenesysSignatureLayer;
pub use self::log::RejectionCounts;
pub use self::peer::PeerAddress;
pub use self::rejection::Rejection;
pub use self::service::GenesysSignature;
pub use self::verified::{VerifiedBody, VerifiedSignature};
pub use crate::http::ResponseBody;

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body::{Body, Frame};
    use http_body_util::BodyExt;
    use std::future::Future;
    use tower::{Service, ServiceBuilder, ServiceExt};

    use super::*;
    use crate::signature::sign_genesys;
    use std::sync::Arc;
    use tower_layer::Layer;

    /// A body that records whether anyone polled it.
    struct Untouchable(Arc<AtomicBool>);

    impl Body for Untouchable {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0.store(true, Ordering::SeqCst);
            Poll::Ready(None)
        }
    }

    /// An inner service that only answers when its own `poll_ready` was called.
    #[derive(Clone, Default)]
    struct NeedsReady {
        ready: bool,
    }

    impl Service<Request<VerifiedBody>> for NeedsReady {
        type Response = Response<VerifiedBody>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<VerifiedBody>) -> Self::Future {
            assert!(self.ready, "called without poll_ready");
            self.ready = false;
            std::future::ready(Ok(Response::new(request.into_body())))
        }
    }

    fn layer() -> GenesysSignatureLayer {
        GenesysSignatureLayer::builder()
            .secret("unit-secret")
            .max_body_bytes(10)
            .build()
            .unwrap()
    }

    async fn body_text<B: Body>(response: Response<B>) -> String
    where
        B::Error: std::fmt::Debug,
    {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn rejects_missing_and_malformed_signatures_without_polling_the_body() {
        for header in [None, Some("zz"), Some("sha256=abc")] {
            let polled = Arc::new(AtomicBool::new(false));
            let mut request = Request::new(Untouchable(Arc::clone(&polled)));
            if let Some(value) = header {
                request
                    .headers_mut()
                    .insert("x-genesys-signature", value.parse().unwrap());
            }
            let response = layer()
                .layer(NeedsReady::default())
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(
                !polled.load(Ordering::SeqCst),
                "body was read for {header:?}"
            );
        }
    }

    #[tokio::test]
    async fn rejects_declared_length_over_limit_without_polling_the_body() {
        let polled = Arc::new(AtomicBool::new(false));
        let request = Request::builder()
            .header("x-genesys-signature", sign_genesys("unit-secret", b""))
            .header("content-length", "11")
            .body(Untouchable(Arc::clone(&polled)))
            .unwrap();
        let response = layer()
            .layer(NeedsReady::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!polled.load(Ordering::SeqCst));
    }

    /// A body of the given frames, with no length known in advance.
    struct Frames(std::collections::VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_found_while_streaming_is_answered_with_connection_close() {
        let frames = Frames(
            [
                Bytes::from_static(b"12345678"),
                Bytes::from_static(b"9abcdef"),
            ]
            .into(),
        );
        let request = Request::builder()
            .header(
                "x-genesys-signature",
                sign_genesys("unit-secret", b"123456789abcdef"),
            )
            .body(frames)
            .unwrap();
        let response = layer()
            .layer(NeedsReady::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[http::header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_rejection_after_the_whole_body_keeps_the_connection() {
        let request = Request::builder()
            .header("x-genesys-signature", sign_genesys("other", b"{}"))
            .body(Frames([Bytes::from_static(b"{}")].into()))
            .unwrap();
        let response = layer()
            .layer(NeedsReady::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(http::header::CONNECTION).is_none());
    }

    #[test]
    fn a_response_future_polled_after_completion_panics() {
        let mut service = layer().layer(NeedsReady::default());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for signature in [None, Some(sign_genesys("unit-secret", b"{}"))] {
            let mut request = Request::new(Frames([Bytes::from_static(b"{}")].into()));
            if let Some(signature) = &signature {
                request
                    .headers_mut()
                    .insert("x-genesys-signature", signature.parse().unwrap());
            }
            assert!(Service::<Request<Frames>>::poll_ready(&mut service, &mut cx).is_ready());
            let mut future = Box::pin(service.call(request));
            assert!(future.as_mut().poll(&mut cx).is_ready());
            let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = future.as_mut().poll(&mut cx);
            }));
            let message = again.expect_err("polled after completion must panic");
            assert_eq!(
                message.downcast_ref::<String>().map(String::as_str),
                Some("future polled after completion")
            );
        }
    }

    #[test]
    fn verify_outside_a_stack_answers_as_the_layer_would() {
        let layer = layer(); // max 10 bytes
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-genesys-signature",
            sign_genesys("unit-secret", b"{}").parse().unwrap(),
        );
        let verified = layer.verify(&headers, b"{}").unwrap();
        assert_eq!(
            verified.scheme(),
            crate::signature::Scheme::XGenesysSignature
        );
        assert!(matches!(
            layer.verify(&headers, b"{ }"),
            Err(Rejection::SignatureMismatch { .. })
        ));
        assert!(matches!(
            layer.verify(&headers, b"{\"twelve\":1}"),
            Err(Rejection::PayloadTooLarge { limit: 10 })
        ));
        assert_eq!(layer.rejections().total(), 0, "nothing counted");
    }

    #[tokio::test]
    async fn uses_the_inner_service_that_was_made_ready() {
        let mut service = ServiceBuilder::new()
            .layer(layer())
            .service(NeedsReady::default());
        for _ in 0..3 {
            let body = "0123456789";
            let request = Request::builder()
                .header(
                    "x-genesys-signature",
                    sign_genesys("unit-secret", body.as_bytes()),
                )
                .body(body.to_owned())
                .unwrap();
            let response = ServiceExt::<Request<String>>::ready(&mut service)
                .await
                .unwrap()
                .call(request)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(body_text(response).await, body);
        }
    }

    #[tokio::test]
    async fn passes_a_single_frame_body_without_copying_it() {
        let data = Bytes::from_static(b"0123456789");
        let request = Request::builder()
            .header("x-genesys-signature", sign_genesys("unit-secret", &data))
            .body(http_body_util::Full::new(data.clone()))
            .unwrap();
        let inner = tower::service_fn(|request: Request<VerifiedBody>| async move {
            Ok::<_, Infallible>(Response::new(request.into_body()))
        });
        let response = layer().layer(inner).oneshot(request).await.unwrap();
        let received = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(received.as_ptr(), data.as_ptr());
    }

    #[tokio::test]
    async fn keeps_trailers_sent_after_a_chunked_body() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"01234"))),
            Ok(Frame::data(Bytes::from_static(b"56789"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        let request = Request::builder()
            .header(
                "x-genesys-signature",
                sign_genesys("unit-secret", b"0123456789"),
            )
            .body(body)
            .unwrap();
        let inner = tower::service_fn(|request: Request<VerifiedBody>| async move {
            let body = request.into_body();
            assert_eq!(body.bytes(), "0123456789");
            assert_eq!(body.trailers().unwrap()["x-checksum"], "abc");
            Ok::<_, Infallible>(Response::new(body))
        });
        let response = layer().layer(inner).oneshot(request).await.unwrap();
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    }

    #[test]
    fn futures_and_services_are_send_and_clone() {
        fn assert_send<T: Send>() {}
        fn assert_clone<T: Clone>() {}
        type Route = axum::routing::Route;
        assert_send::<ResponseFuture<Route, axum::body::Body>>();
        assert_send::<GenesysSignature<Route>>();
        assert_clone::<GenesysSignature<Route>>();
        assert_clone::<GenesysSignatureLayer>();
    }

    #[tokio::test]
    #[tracing_test::traced_test]
    async fn rejection_events_name_reason_header_and_length_but_no_secret() {
        let layer = GenesysSignatureLayer::builder()
            .secret("s3cr3t-unit")
            .diagnostics(true)
            .build()
            .unwrap();
        let body = "hello";
        let received = sign_genesys("other", body.as_bytes());
        let computed = sign_genesys("s3cr3t-unit", body.as_bytes());
        let request = Request::builder()
            .header("x-genesys-signature", &received)
            .body(body.to_owned())
            .unwrap();
        let response = layer
            .layer(NeedsReady::default())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            body_text(response).await,
            r#"{"error":"invalid_signature"}"#
        );
        assert!(logs_contain("X-Genesys-Signature does not match"));
        assert!(logs_contain("body_len=5"));
        assert!(logs_contain(&received[..8]));
        assert!(logs_contain(&computed[..8]));
        assert!(!logs_contain(&received[..9]));
        assert!(!logs_contain(&computed[..9]));
        assert!(!logs_contain("s3cr3t-unit"));
    }

    #[tokio::test]
    #[tracing_test::traced_test]
    async fn the_warn_summary_names_the_latest_reason_and_how_to_see_each_one() {
        let layer = layer();
        for value in ["zz", "not-hex-at-all"] {
            let request = Request::builder()
                .header("x-genesys-signature", value)
                .body(String::new())
                .unwrap();
            let response = layer
                .clone()
                .layer(NeedsReady::default())
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        logs_assert(|lines| {
            let summaries: Vec<&&str> = lines
                .iter()
                .filter(|line| line.contains(" WARN ") && line.contains("webhooks rejected"))
                .collect();
            match summaries.as_slice() {
                [summary]
                    if summary.contains("last_reason=malformed X-Genesys-Signature header")
                        && summary.contains("RUST_LOG=genesys_webhook=debug") =>
                {
                    Ok(())
                }
                other => Err(format!("one summary with the reason expected: {other:?}")),
            }
        });
    }

    #[tokio::test]
    #[tracing_test::traced_test]
    async fn the_peer_address_is_logged_only_when_asked_for() {
        for (peer, logged) in [(None, false), (Some(PeerAddress::forwarded_for()), true)] {
            let mut builder = GenesysSignatureLayer::builder().secret("unit-secret");
            if let Some(peer) = peer {
                builder = builder.peer_address(peer);
            }
            let request = Request::builder()
                .header("x-forwarded-for", "198.51.100.7, 203.0.113.9")
                .body(String::new())
                .unwrap();
            let response = builder
                .build()
                .unwrap()
                .layer(NeedsReady::default())
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(logs_contain("peer=\"203.0.113.9\""), logged);
            assert!(!logs_contain("198.51.100.7"), "only the proxy's own entry");
        }
    }

    #[tokio::test]
    #[tracing_test::traced_test]
    async fn without_diagnostics_no_digest_is_logged() {
        let body = "hello";
        let received = sign_genesys("other", body.as_bytes());
        let computed = sign_genesys("unit-secret", body.as_bytes());
        let request = Request::builder()
            .header("x-genesys-signature", &received)
            .body(body.to_owned())
            .unwrap();
        let _ = layer()
            .layer(NeedsReady::default())
            .oneshot(request)
            .await
            .unwrap();
        assert!(logs_contain("webhook rejected"));
        assert!(!logs_contain(&received[..6]));
        assert!(!logs_contain(&computed[..6]));
    }
}
