use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::{Buffer, ResponseBody, VerifiedBody};
use super::builder::Config;
use super::rejection::Rejection;
use super::VerifiedSignature;
use crate::signature::{digest_prefix, find_match, Digest, ParsedSignature, Scheme, Verification};
use crate::BoxError;

/// Frames read in one poll before yielding, so that a body of many tiny frames does
/// not hold the executor's thread.
const FRAMES_PER_POLL: usize = 64;

pin_project! {
    /// Response future of [`GenesysSignature`](crate::GenesysSignature): reads and
    /// verifies the body, then runs the inner service.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<VerifiedBody>>,
    {
        #[pin]
        kind: Kind<S, B, S::Future>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, B, F> {
        Reading {
            #[pin]
            body: B,
            state: Option<Reading<S>>,
        },
        Calling {
            #[pin]
            future: F,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

/// Everything a request in the reading phase owns besides its body.
struct Reading<S> {
    parts: Parts,
    service: S,
    config: Arc<Config>,
    signatures: Vec<(Scheme, ParsedSignature)>,
    verification: Verification,
    buffer: Buffer,
    received: usize,
    expected: usize,
    trailers: Option<HeaderMap>,
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    pub(crate) fn rejected(config: &Config, rejection: Rejection, body_len: Option<u64>) -> Self {
        log_rejection(&rejection, body_len, None);
        Self {
            kind: Kind::Rejected {
                response: Some(config.rejection_response(&rejection)),
            },
        }
    }

    pub(crate) fn reading(
        body: B,
        parts: Parts,
        service: S,
        config: Arc<Config>,
        signatures: Vec<(Scheme, ParsedSignature)>,
        declared: Option<u64>,
    ) -> Self {
        let expected = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Self {
            kind: Kind::Reading {
                body,
                state: Some(Reading {
                    parts,
                    service,
                    verification: config.keys.start(),
                    expected: expected.min(config.max_body_bytes),
                    config,
                    signatures,
                    buffer: Buffer::Empty,
                    received: 0,
                    trailers: None,
                }),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().kind.project() {
                KindProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                KindProj::Rejected { response } => {
                    let response = response.take().expect("future polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::rejection)));
                }
                KindProj::Reading { body, state } => {
                    let reading = state.as_mut().expect("future polled after completion");
                    let outcome = ready!(reading.poll_body(body, cx));
                    let reading = state.take().expect("future polled after completion");
                    match outcome.and_then(|()| reading.verify()) {
                        Ok((mut service, request)) => Kind::Calling {
                            future: service.call(request),
                        },
                        Err((config, rejection, received, diagnostics)) => {
                            log_rejection(&rejection, Some(received as u64), diagnostics);
                            Kind::Rejected {
                                response: Some(config.rejection_response(&rejection)),
                            }
                        }
                    }
                }
            };
            self.as_mut().project().kind.set(next);
        }
    }
}

type Failure = (Arc<Config>, Rejection, usize, Option<Diagnostics>);

impl<S> Reading<S> {
    /// Reads frames until the body ends, feeding the MACs and the buffer in one pass.
    fn poll_body<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Failure>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        for _ in 0..FRAMES_PER_POLL {
            let frame = match ready!(body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    let error: BoxError = error.into();
                    tracing::debug!(%error, "webhook body could not be read");
                    return Poll::Ready(Err(self.fail(Rejection::UnreadableBody)));
                }
            };
            match frame.into_data() {
                Ok(mut data) => {
                    let data: Bytes = data.copy_to_bytes(data.remaining());
                    if data.len() > self.config.max_body_bytes - self.received {
                        self.received += data.len();
                        let limit = self.config.max_body_bytes;
                        return Poll::Ready(Err(self.fail(Rejection::PayloadTooLarge { limit })));
                    }
                    self.received += data.len();
                    self.verification.update(&data);
                    self.buffer.push(data, self.expected);
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.trailers
                            .get_or_insert_with(HeaderMap::new)
                            .extend(trailers);
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn fail(&self, rejection: Rejection) -> Failure {
        (Arc::clone(&self.config), rejection, self.received, None)
    }

    /// Checks every received signature against the digests under every secret.
    fn verify(self) -> Result<(S, Request<VerifiedBody>), Failure> {
        let computed = self.verification.finish();
        let mut first: Option<(Scheme, usize, Digest)> = None;
        let mut mismatch: Option<(Scheme, ParsedSignature)> = None;
        for &(scheme, parsed) in &self.signatures {
            match find_match(&computed, parsed.digest()) {
                Some(index) => {
                    first.get_or_insert((scheme, index, *parsed.digest()));
                }
                None => {
                    mismatch.get_or_insert((scheme, parsed));
                }
            }
        }
        match (mismatch, first) {
            (None, Some((scheme, secret_index, digest))) => {
                let mut request = Request::from_parts(
                    self.parts,
                    VerifiedBody::new(self.buffer.freeze(), self.trailers),
                );
                request.extensions_mut().insert(VerifiedSignature {
                    scheme,
                    secret_index,
                    digest,
                });
                Ok((self.service, request))
            }
            (Some((scheme, parsed)), _) => {
                let diagnostics = self.config.diagnostics.then(|| Diagnostics {
                    received: parsed.prefix(DIAGNOSTIC_CHARS),
                    computed: computed
                        .iter()
                        .map(|d| digest_prefix(d, parsed.encoding(), DIAGNOSTIC_CHARS))
                        .collect::<Vec<_>>()
                        .join(","),
                });
                Err((
                    self.config,
                    Rejection::SignatureMismatch { scheme },
                    self.received,
                    diagnostics,
                ))
            }
            (None, None) => Err((
                self.config,
                Rejection::MissingSignature,
                self.received,
                None,
            )),
        }
    }
}

/// How much of a digest diagnostics may show: enough to compare by eye, far too little
/// to be a usable MAC.
const DIAGNOSTIC_CHARS: usize = 8;

struct Diagnostics {
    received: String,
    computed: String,
}

fn log_rejection(rejection: &Rejection, body_len: Option<u64>, diagnostics: Option<Diagnostics>) {
    let header = rejection.scheme().map(Scheme::display_header_name);
    match diagnostics {
        None => tracing::warn!(
            reason = %rejection,
            header,
            body_len,
            status = rejection.status().as_u16(),
            "webhook rejected"
        ),
        Some(d) => tracing::warn!(
            reason = %rejection,
            header,
            body_len,
            status = rejection.status().as_u16(),
            received_prefix = %d.received,
            computed_prefixes = %d.computed,
            "webhook rejected"
        ),
    }
}
