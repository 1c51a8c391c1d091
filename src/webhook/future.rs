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

use super::budget::Held;
use super::builder::Config;
use super::log::Event;
use super::rejection::Rejection;
use super::reservation::{decide, Attempt, Decision, Guard};
use super::verified::{Buffer, VerifiedBody};
use super::verify::Signatures;
use super::verify::{verify, Verified};
use super::VerifiedSignature;
use crate::boxed::BoxError;
use crate::http::json::{closing, POLLED_AFTER_COMPLETION};
use crate::http::ResponseBody;
use crate::replay::{BodyKeyHasher, ReplayProtection, Reservation, StoreError, StoreFuture};
use crate::signature::Verification;

/// Frames read in one poll before yielding, so that a body of many tiny frames does
/// not hold the executor's thread.
const FRAMES_PER_POLL: usize = 64;

pin_project! {
    /// Response future of [`GenesysSignature`](crate::GenesysSignature): reads and
    /// verifies the body, runs the replay protocol when it is on, and calls the inner
    /// service.
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
            future: StoreFuture<Result<Reservation, StoreError>>,
            pending: Option<Pending<S>>,
        },
        Calling {
            #[pin]
            future: F,
            guard: Option<Guard>,
        },
        Finishing {
            future: StoreFuture<Result<(), StoreError>>,
            guard: Option<Guard>,
            output: Option<O>,
        },
        Answered {
            response: Option<Response<Bytes>>,
        },
        Done,
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
            Kind::Done => "done",
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
    /// The replay key, computed in the same pass when replay protection is on.
    replay_key: Option<BodyKeyHasher>,
    buffer: Buffer,
    held: Held,
    received: usize,
    trailers: Option<Box<HeaderMap>>,
}

/// A verified request waiting for the replay store's answer.
struct Pending<S> {
    service: S,
    request: Request<VerifiedBody>,
    attempt: Attempt,
    replay: Arc<ReplayProtection>,
    config: Arc<Config>,
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<VerifiedBody>>,
{
    /// An answer decided before the body was read.
    pub(crate) fn answered(response: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Answered {
                response: Some(response),
            },
        }
    }

    pub(crate) fn reading(
        body: B,
        parts: Parts,
        service: S,
        config: Arc<Config>,
        signatures: Signatures,
        held: Held,
    ) -> Self {
        Self {
            kind: Kind::Reading {
                body,
                state: Some(Reading {
                    parts,
                    service,
                    verification: config.keys.start(),
                    replay_key: config.replay.as_ref().map(|_| BodyKeyHasher::new()),
                    config,
                    signatures,
                    buffer: Buffer::Empty,
                    held,
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
                    let reading = state.as_mut().expect(POLLED_AFTER_COMPLETION);
                    let read = ready!(reading.poll_body(body, cx));
                    let reading = state.take().expect(POLLED_AFTER_COMPLETION);
                    reading.finish(read)
                }
                KindProj::Reserving { future, pending } => {
                    let reservation = ready!(Pin::new(future).poll(cx));
                    let pending = pending.take().expect(POLLED_AFTER_COMPLETION);
                    let Pending {
                        service,
                        request,
                        attempt,
                        replay,
                        config,
                    } = pending;
                    match decide(attempt, reservation, &replay, &config) {
                        Decision::Call(guard) => call(service, request, guard),
                        Decision::Answer(response) => Kind::Answered {
                            response: Some(response),
                        },
                    }
                }
                KindProj::Calling { future, guard } => {
                    let output = ready!(future.poll(cx));
                    match guard.take() {
                        None => {
                            self.as_mut().project().kind.set(Kind::Done);
                            return Poll::Ready(output.map(|r| r.map(ResponseBody::inner)));
                        }
                        Some(mut guard) => {
                            let processed = matches!(&output, Ok(r) if r.status().is_success());
                            Kind::Finishing {
                                future: guard.finish(processed),
                                guard: Some(guard),
                                output: Some(output),
                            }
                        }
                    }
                }
                KindProj::Finishing {
                    future,
                    guard,
                    output,
                } => {
                    let result = ready!(Pin::new(future).poll(cx));
                    if let Some(guard) = guard.take() {
                        guard.recorded(result);
                    }
                    let output = output.take().expect(POLLED_AFTER_COMPLETION);
                    self.as_mut().project().kind.set(Kind::Done);
                    return Poll::Ready(output.map(|r| r.map(ResponseBody::inner)));
                }
                KindProj::Answered { response } => {
                    let response = response.take().expect(POLLED_AFTER_COMPLETION);
                    self.as_mut().project().kind.set(Kind::Done);
                    return Poll::Ready(Ok(response.map(ResponseBody::answered)));
                }
                // A caller's bug, answered as every tower-http future answers it.
                KindProj::Done => panic!("{POLLED_AFTER_COMPLETION}"),
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

impl<S> Reading<S>
where
    S: Service<Request<VerifiedBody>>,
{
    /// Reads frames until the body ends, feeding the MACs and the buffer in one pass.
    fn poll_body<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Rejection>>
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
                    return Poll::Ready(Err(Rejection::UnreadableBody));
                }
            };
            match frame.into_data() {
                Ok(mut data) => {
                    let data: Bytes = data.copy_to_bytes(data.remaining());
                    let limit = self.config.max_body_bytes;
                    if data.len() > limit - self.received {
                        self.received += data.len();
                        return Poll::Ready(Err(Rejection::PayloadTooLarge { limit }));
                    }
                    self.received += data.len();
                    if !self.held.hold(self.received) {
                        return Poll::Ready(Err(self.config.overloaded()));
                    }
                    self.verification.update(&data);
                    if let Some(replay_key) = &mut self.replay_key {
                        replay_key.update(&data);
                    }
                    self.buffer.push(data);
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

    /// What comes after the body was read (or failed to be): a rejection, the replay
    /// check, or the inner service.
    fn finish<B, O>(self, read: Result<(), Rejection>) -> Kind<S, B, S::Future, O> {
        let Reading {
            parts,
            service,
            config,
            signatures,
            verification,
            replay_key,
            buffer,
            held,
            received,
            trailers,
            ..
        } = self;
        // Refused in the middle of the body: its unread rest must not be taken for the
        // next request on the connection.
        let mid_body = read.is_err();
        let verdict = read.map_err(|rejection| super::verify::Refused {
            rejection,
            diagnostics: None,
        });
        let verdict =
            verdict.and_then(|()| verify(&verification.finish(), &signatures, config.diagnostics));
        let Verified {
            scheme,
            secret_index,
        } = match verdict {
            Ok(verified) => verified,
            Err(refused) => {
                config.rejections.record(Event {
                    rejection: &refused.rejection,
                    body_len: Some(received as u64),
                    diagnostics: refused.diagnostics.as_ref(),
                    peer: config
                        .peer_address
                        .as_ref()
                        .and_then(|peer| peer.of(&parts)),
                });
                let response = config.rejection_response(&refused.rejection);
                return Kind::Answered {
                    response: Some(if mid_body {
                        closing(response)
                    } else {
                        response
                    }),
                };
            }
        };
        crate::metrics::request("verified", None);
        let body = buffer.freeze();
        // Only now is the body held once: joining several frames copies them, and until
        // the frames are dropped the copy counts against the budget too.
        drop(held);
        let mut request = Request::from_parts(parts, VerifiedBody::new(body, trailers.map(|t| *t)));
        request.extensions_mut().insert(VerifiedSignature {
            scheme,
            secret_index,
        });
        match (&config.replay, replay_key) {
            (Some(replay), Some(replay_key)) => {
                let (attempt, future) = Attempt::start(replay, replay_key.finish());
                Kind::Reserving {
                    future,
                    pending: Some(Pending {
                        service,
                        request,
                        attempt,
                        replay: Arc::clone(replay),
                        config: Arc::clone(&config),
                    }),
                }
            }
            _ => call(service, request, None),
        }
    }
}
