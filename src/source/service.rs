use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::layer::{Shared, SourceAllowlistLayer};
use crate::http::{GateFuture, ResponseBody};

/// The middleware made by [`SourceAllowlistLayer`].
#[derive(Clone)]
pub struct SourceAllowlist<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SourceAllowlist<S> {
    /// Wraps `inner` with the checks `layer` was configured with, as
    /// [`Layer::layer`](tower_layer::Layer::layer) does.
    pub fn new(inner: S, layer: &SourceAllowlistLayer) -> Self {
        Self {
            inner,
            shared: Arc::clone(&layer.shared),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for SourceAllowlist<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceAllowlist")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SourceAllowlist<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = GateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.shared.refusal(&request) {
            None => GateFuture::admitted(self.inner.call(request)),
            Some(refusal) => GateFuture::refused(refusal),
        }
    }
}
