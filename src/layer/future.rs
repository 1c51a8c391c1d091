use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::{Buffer, ResponseBody, VerifiedBody};
use super::builder::Config;
use super::rejection::Rejection;
use super::service::Signatures;
use super::VerifiedSignature;
use crate::replay::{
    BoxFuture, Duplicate, LeaseId, ReplayKey, ReplayProtection, ReplayStore, Reservation,
    StoreError,
};
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
        kind: Kind<S, B, S::Future, Result<S::Response, S::Error>>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, B, F, O> {
        Reading {
            #[pin]
            body: B,
            state: Option<Reading<S>>,
        },
        Reserving {
            future: BoxFuture<'static, Result<Reservation, StoreError>>,
            pending: Option<Pending<S>>,
        },
        Calling {
            #[pin]
            future: F,
            guard: Option<Guard>,
        },
        Finishing {
            future: BoxFuture<'static, ()>,
            output: Option<O>,
        },
        Answered {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.kind {
            Kind::Reading { .. } => "reading the body",
            Kind::Reserving { .. } => "checking for a replay",
            Kind::Calling { .. } => "calling the inner service",
            Kind::Finishing { .. } => "recording the outcome",
            Kind::Answered { .. } => "answered",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

/// Everything a request in the reading phase owns besides its body.
struct Reading<S> {
    parts: Parts,
    service: S,
    config: Arc<Config>,
    signatures: Signatures,
    verification: Verification,
    buffer: Buffer,
    received: usize,
    expected: usize,
    trailers: Option<Box<HeaderMap>>,
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    pub(crate) fn rejected(config: &Config, rejection: Rejection, body_len: Option<u64>) -> Self {
        log_rejection(&rejection, body_len, None);
        Self {
            kind: Kind::Answered {
                response: Some(config.rejection_response(&rejection)),
            },
        }
    }

    pub(crate) fn reading(
        body: B,
        parts: Parts,
        service: S,
        config: Arc<Config>,
        signatures: Signatures,
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
                KindProj::Reading { body, state } => {
                    let reading = state.as_mut().expect("future polled after completion");
                    let outcome = ready!(reading.poll_body(body, cx));
                    let reading = state.take().expect("future polled after completion");
                    match outcome.and_then(|()| reading.verify()) {
                        Ok((service, request, config, key)) => match &config.replay {
                            None => call(service, request, None),
                            Some(replay) => reserve(service, request, key, replay, &config),
                        },
                        Err((config, rejection, received, diagnostics)) => {
                            log_rejection(&rejection, Some(received as u64), diagnostics);
                            Kind::Answered {
                                response: Some(config.rejection_response(&rejection)),
                            }
                        }
                    }
                }
                KindProj::Reserving { future, pending } => {
                    let reservation = ready!(future.as_mut().poll(cx));
                    let pending = pending.take().expect("future polled after completion");
                    pending.decide(reservation)
                }
                KindProj::Calling { future, guard } => {
                    let output = ready!(future.poll(cx));
                    match guard.take() {
                        None => return Poll::Ready(output.map(|r| r.map(ResponseBody::inner))),
                        Some(guard) => {
                            let processed = matches!(&output, Ok(r) if r.status().is_success());
                            Kind::Finishing {
                                future: guard.finish(processed),
                                output: Some(output),
                            }
                        }
                    }
                }
                KindProj::Finishing { future, output } => {
                    ready!(future.as_mut().poll(cx));
                    let output = output.take().expect("future polled after completion");
                    return Poll::Ready(output.map(|r| r.map(ResponseBody::inner)));
                }
                KindProj::Answered { response } => {
                    let response = response.take().expect("future polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::answered)));
                }
            };
            self.as_mut().project().kind.set(next);
        }
    }
}

fn call<S, B, O>(
    mut service: S,
    request: Request<VerifiedBody>,
    guard: Option<Guard>,
) -> Kind<S, B, S::Future, O>
where
    S: Service<Request<VerifiedBody>>,
{
    Kind::Calling {
        future: service.call(request),
        guard,
    }
}

fn reserve<S, B, O>(
    service: S,
    request: Request<VerifiedBody>,
    key: ReplayKey,
    replay: &ReplayProtection,
    config: &Arc<Config>,
) -> Kind<S, B, S::Future, O>
where
    S: Service<Request<VerifiedBody>>,
{
    let store = Arc::clone(&replay.store);
    let lease = replay.lease;
    Kind::Reserving {
        future: Box::pin(async move { store.reserve(&key, lease).await }),
        pending: Some(Pending {
            service,
            request,
            config: Arc::clone(config),
            key,
        }),
    }
}

/// A verified request waiting for the replay store's answer; the replay settings are
/// read from `config`.
struct Pending<S> {
    service: S,
    request: Request<VerifiedBody>,
    config: Arc<Config>,
    key: ReplayKey,
}

impl<S> Pending<S>
where
    S: Service<Request<VerifiedBody>>,
{
    fn decide<B, O>(
        self,
        reservation: Result<Reservation, StoreError>,
    ) -> Kind<S, B, S::Future, O> {
        let Pending {
            service,
            request,
            config,
            key,
        } = self;
        let Some(replay) = config.replay.as_ref() else {
            // Only reached with replay protection on; without it there is nothing to check.
            return call(service, request, None);
        };
        let duplicate = |kind: Duplicate| {
            tracing::info!(duplicate = ?kind, key = ?key, "duplicate webhook not processed again");
            Kind::Answered {
                response: Some(replay.duplicate_response(kind)),
            }
        };
        let unavailable = |reason: &str| {
            let rejection = Rejection::ReplayStoreUnavailable {
                retry_after: replay.retry_after,
            };
            tracing::warn!(
                reason,
                status = 503,
                "webhook rejected: replay store unavailable"
            );
            Kind::Answered {
                response: Some(config.rejection_response(&rejection)),
            }
        };
        match reservation {
            Ok(Reservation::Reserved(lease)) => {
                let guard = Guard {
                    store: Arc::clone(&replay.store),
                    ttl: replay.ttl,
                    key,
                    lease,
                    armed: true,
                };
                call(service, request, Some(guard))
            }
            Ok(Reservation::InFlight) => duplicate(Duplicate::InFlight),
            Ok(Reservation::Done) => duplicate(Duplicate::Processed),
            Ok(Reservation::Full) => unavailable("the store is full of requests in flight"),
            Err(error) if replay.fail_open => {
                tracing::warn!(%error, "replay store unavailable; processing without replay protection (fail-open)");
                call(service, request, None)
            }
            Err(error) => {
                tracing::warn!(%error, "replay store unavailable");
                unavailable("the store could not be reached")
            }
        }
    }
}

/// A reservation held while the inner service runs. Dropped before it finished (the
/// client went away, a timeout fired), it gives the key back on a best-effort basis.
struct Guard {
    store: Arc<dyn ReplayStore>,
    ttl: Duration,
    key: ReplayKey,
    lease: LeaseId,
    armed: bool,
}

impl Guard {
    /// Marks the key done when the request was processed (2xx), releases it otherwise.
    fn finish(mut self, processed: bool) -> BoxFuture<'static, ()> {
        self.armed = false;
        let store = Arc::clone(&self.store);
        let (key, lease, ttl) = (self.key, self.lease, self.ttl);
        Box::pin(async move {
            let result = if processed {
                store.complete(&key, lease, ttl).await
            } else {
                store.release(&key, lease).await
            };
            if let Err(error) = result {
                tracing::warn!(%error, processed, "replay store could not record the outcome");
            }
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.armed {
            self.store.abandon(&self.key, self.lease);
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
                        self.trailers.get_or_insert_default().extend(trailers);
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
    /// On success: the inner service, the request to give it, and the replay key.
    fn verify(self) -> Result<(S, Request<VerifiedBody>, Arc<Config>, ReplayKey), Failure> {
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
                    VerifiedBody::new(self.buffer.freeze(), self.trailers.map(|t| *t)),
                );
                request.extensions_mut().insert(VerifiedSignature {
                    scheme,
                    secret_index,
                });
                Ok((self.service, request, self.config, ReplayKey::new(digest)))
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
