use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::budget::Held;
use super::builder::Config;
use super::future::ResponseFuture;
use super::log::Event;
use super::rejection::Rejection;
use super::verified::VerifiedBody;
use super::verify::read_signatures;
use super::{GenesysSignatureLayer, RejectionCounts};
use crate::boxed::BoxError;
use crate::http::json::closing;
use crate::http::ResponseBody;

/// Middleware that verifies the HMAC-SHA256 signature of each request body before the
/// inner service sees it. Made by [`GenesysSignatureLayer`], or by
/// [`GenesysSignature::new`] around a service directly.
///
/// The inner service receives `Request<`[`VerifiedBody`]`>` holding the exact bytes
/// that were signed, with a [`VerifiedSignature`](crate::VerifiedSignature) extension.
#[derive(Debug, Clone)]
pub struct GenesysSignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> GenesysSignature<S> {
    /// Wraps `inner` with the settings of `layer`.
    ///
    /// ```
    /// use genesys_webhook::{GenesysSignature, GenesysSignatureLayer, VerifiedBody};
    /// use http::{Request, Response};
    ///
    /// let layer = GenesysSignatureLayer::builder().secret("dev-secret").build()?;
    /// let service = GenesysSignature::new(
    ///     tower::service_fn(|request: Request<VerifiedBody>| async move {
    ///         Ok::<_, std::convert::Infallible>(Response::new(request.into_body()))
    ///     }),
    ///     &layer,
    /// );
    /// # let _ = service;
    /// # Ok::<_, genesys_webhook::ConfigError>(())
    /// ```
    pub fn new(inner: S, layer: &GenesysSignatureLayer) -> Self {
        Self::from_config(inner, Arc::clone(&layer.config))
    }

    pub(crate) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// How many requests this service (and every clone of its layer) turned away.
    pub fn rejections(&self) -> RejectionCounts {
        self.config.rejections.counts()
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GenesysSignature<S>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        // Cheap checks first: nothing below reads the body.
        let declared = declared_length(&request);
        let signatures = match read_signatures(request.headers(), &config.schemes) {
            Ok(signatures) => signatures,
            Err(rejection) => return unread(config, &rejection, declared, request),
        };
        if declared.is_some_and(|length| length > config.max_body_bytes as u64) {
            let rejection = Rejection::PayloadTooLarge {
                limit: config.max_body_bytes,
            };
            return unread(config, &rejection, declared, request);
        }
        // The budget is taken as bytes arrive, not from the declared length: a sender
        // that announces a large body and sends nothing holds nothing.
        let held = Held::new(config.budget.as_ref());

        // The inner service was driven to readiness by `poll_ready`; keep that one and
        // leave the clone behind (tower's "be careful when cloning inner services").
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        let config = Arc::clone(config);
        ResponseFuture::reading(body, parts, inner, config, signatures, held)
    }
}

/// A rejection decided before the body was read. The answer closes the connection: the
/// unread body would otherwise be taken for the next request on it, and a request
/// pipelined behind it would be lost without a word.
fn unread<S, B, ReqBody>(
    config: &Config,
    rejection: &Rejection,
    declared: Option<u64>,
    request: Request<ReqBody>,
) -> ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    let peer = config.peer_address.as_ref().and_then(|peer| {
        let (parts, _) = request.into_parts();
        peer.of(&parts)
    });
    config.rejections.record(Event {
        rejection,
        body_len: declared,
        diagnostics: None,
        peer,
    });
    ResponseFuture::answered(closing(config.rejection_response(rejection)))
}

/// The body length announced by `Content-Length`, or by the body itself.
fn declared_length<B: Body>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| request.body().size_hint().exact())
}
