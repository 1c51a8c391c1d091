use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::signature::Failure;
use super::verify::Config;
use crate::http::json::{json_error, with_retry_after, POLLED_AFTER_COMPLETION};
use crate::http::ResponseBody;
use crate::replay::{Reservation, StoreError, StoreFuture};

pin_project! {
    /// Response future of [`AudioHookSignature`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        kind: Kind<S, B, S::Future>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, B, F> {
        Nonce {
            future: StoreFuture<Result<Reservation, StoreError>>,
            pending: Option<(S, Request<B>)>,
            config: Arc<Config>,
        },
        Calling {
            #[pin]
            future: F,
        },
        Delaying {
            #[pin]
            sleep: tokio::time::Sleep,
            response: Option<Response<Bytes>>,
        },
        Answered {
            response: Option<Response<Bytes>>,
        },
        Done,
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(super) fn nonce(
        future: StoreFuture<Result<Reservation, StoreError>>,
        inner: S,
        request: Request<B>,
        config: Arc<Config>,
    ) -> Self {
        Self {
            kind: Kind::Nonce {
                future,
                pending: Some((inner, request)),
                config,
            },
        }
    }

    pub(super) fn call(mut inner: S, request: Request<B>) -> Self {
        Self {
            kind: Kind::Calling {
                future: inner.call(request),
            },
        }
    }

    pub(super) fn refused(config: &Config, failure: &Failure) -> Self {
        Self::answer(config, config.refuse(failure))
    }

    fn answer(config: &Config, response: Response<Bytes>) -> Self {
        let kind =
            if config.failure_delay.is_zero() || tokio::runtime::Handle::try_current().is_err() {
                Kind::Answered {
                    response: Some(response),
                }
            } else {
                Kind::Delaying {
                    sleep: tokio::time::sleep(config.failure_delay),
                    response: Some(response),
                }
            };
        Self { kind }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().kind.project() {
                KindProj::Nonce {
                    future,
                    pending,
                    config,
                } => {
                    let reservation = ready!(Pin::new(future).poll(cx));
                    let (inner, mut request) = pending.take().expect(POLLED_AFTER_COMPLETION);
                    match reservation {
                        Ok(Reservation::Reserved) => Self::call(inner, request).kind,
                        Ok(Reservation::InFlight | Reservation::Done) => {
                            if config.pass_refused(&Failure::ReplayedNonce, &mut request) {
                                Self::call(inner, request).kind
                            } else {
                                Self::refused(config, &Failure::ReplayedNonce).kind
                            }
                        }
                        Ok(_) | Err(_) => {
                            config.store_unavailable.record(
                                "replay_store_unavailable",
                                &"the nonce store could not answer; refusing the upgrade",
                            );
                            let response = with_retry_after(
                                json_error(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    "replay_store_unavailable",
                                ),
                                Duration::from_secs(5),
                            );
                            Self::answer(config, response).kind
                        }
                    }
                }
                KindProj::Calling { future } => {
                    let output = ready!(future.poll(cx));
                    self.as_mut().project().kind.set(Kind::Done);
                    return Poll::Ready(output.map(|r| r.map(ResponseBody::inner)));
                }
                KindProj::Delaying { sleep, response } => {
                    ready!(sleep.poll(cx));
                    let response = response.take().expect(POLLED_AFTER_COMPLETION);
                    self.as_mut().project().kind.set(Kind::Done);
                    return Poll::Ready(Ok(response.map(ResponseBody::answered)));
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
