//! The request deadline: the inner service's answer, or `408 {"error":"request_timeout"}`
//! once the deadline passes. One timer a request, no boxing.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::http::json::json_text;

/// Answers `408` when `inner` has not answered within `after`.
#[derive(Debug, Clone)]
pub(super) struct Deadline<S> {
    inner: S,
    after: Duration,
}

impl<S> Deadline<S> {
    pub(super) fn new(inner: S, after: Duration) -> Self {
        Self { inner, after }
    }
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        DeadlineFuture {
            inner: self.inner.call(request),
            sleep: tokio::time::sleep(self.after),
        }
    }
}

pin_project! {
    /// The answer of [`Deadline`].
    pub(super) struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

impl<F> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => {
                let timeout = json_text(
                    StatusCode::REQUEST_TIMEOUT,
                    r#"{"error":"request_timeout"}"#,
                );
                Poll::Ready(Ok(timeout.map(Body::from)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
