use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::{ResponseBody, VerifiedBody};
use super::builder::Config;
use super::future::ResponseFuture;
use super::rejection::Rejection;
use crate::signature::{ParsedSignature, Scheme};

/// The signatures of one request; usually one, kept inline.
pub(crate) type Signatures = smallvec::SmallVec<[(Scheme, ParsedSignature); 1]>;
use crate::BoxError;

/// Middleware that verifies the HMAC-SHA256 signature of each request body before the
/// inner service sees it. Made by [`GenesysSignatureLayer`](crate::GenesysSignatureLayer).
///
/// The inner service receives `Request<`[`VerifiedBody`]`>` holding the exact bytes
/// that were signed, with a [`VerifiedSignature`](crate::VerifiedSignature) extension.
#[derive(Debug, Clone)]
pub struct GenesysSignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> GenesysSignature<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GenesysSignature<S>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let config = Arc::clone(&self.config);
        // Cheap checks first: nothing below reads the body.
        let signatures = match read_signatures(request.headers(), &config.schemes) {
            Ok(signatures) => signatures,
            Err(rejection) => {
                let length = declared_length(&request);
                return ResponseFuture::rejected(&config, rejection, length);
            }
        };
        let declared = declared_length(&request);
        if declared.is_some_and(|length| length > config.max_body_bytes as u64) {
            let rejection = Rejection::PayloadTooLarge {
                limit: config.max_body_bytes,
            };
            return ResponseFuture::rejected(&config, rejection, declared);
        }

        // The inner service was driven to readiness by `poll_ready`; keep that one and
        // leave the clone behind (tower's "be careful when cloning inner services").
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        ResponseFuture::reading(body, parts, inner, config, signatures, declared)
    }
}

/// Every signature value present in the accepted schemes' headers.
fn read_signatures(headers: &HeaderMap, schemes: &[Scheme]) -> Result<Signatures, Rejection> {
    let mut signatures = Signatures::new();
    for &scheme in schemes {
        for value in headers.get_all(header_name(scheme)) {
            let parsed = scheme
                .parse(value.as_bytes())
                .map_err(|reason| Rejection::MalformedSignature { scheme, reason })?;
            signatures.push((scheme, parsed));
        }
    }
    if signatures.is_empty() {
        return Err(Rejection::MissingSignature);
    }
    Ok(signatures)
}

/// The scheme's header as a ready-made name, so lookups skip parsing the string.
fn header_name(scheme: Scheme) -> &'static HeaderName {
    static GENESYS: HeaderName = HeaderName::from_static(Scheme::Genesys.header_name());
    static OPEN_MESSAGING: HeaderName =
        HeaderName::from_static(Scheme::OpenMessaging.header_name());
    match scheme {
        Scheme::OpenMessaging => &OPEN_MESSAGING,
        _ => &GENESYS,
    }
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
