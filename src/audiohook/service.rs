use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::AudioHookSignatureLayer;
use super::verify::{Checked, Config};
use crate::http::ResponseBody;
use crate::replay::LeaseId;

/// The middleware made by [`AudioHookSignatureLayer`](super::AudioHookSignatureLayer).
#[derive(Clone)]
pub struct AudioHookSignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> AudioHookSignature<S> {
    /// Wraps `inner` with the checks `layer` was configured with, as
    /// [`Layer::layer`](tower_layer::Layer::layer) does.
    pub fn new(inner: S, layer: &AudioHookSignatureLayer) -> Self {
        Self::from_config(inner, Arc::clone(&layer.config))
    }

    pub(super) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
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

impl<S: fmt::Debug> fmt::Debug for AudioHookSignature<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioHookSignature")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AudioHookSignature<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        match config.check(&request) {
            Err(failure) => {
                if config.pass_refused(&failure, &mut request) {
                    ResponseFuture::call(inner, request)
                } else {
                    ResponseFuture::refused(&config, &failure)
                }
            }
            Ok(Checked {
                verified,
                nonce: None,
            }) => {
                request.extensions_mut().insert(verified);
                ResponseFuture::call(inner, request)
            }
            Ok(Checked {
                verified,
                nonce: Some((key, lifetime)),
            }) => {
                let future = config.nonces.reserve(&key, LeaseId::new(), lifetime);
                request.extensions_mut().insert(verified);
                ResponseFuture::nonce(future, inner, request, config)
            }
        }
    }
}
