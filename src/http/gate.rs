//! The response future of the middlewares that decide from a request's head alone
//! (the Bot Connector's credential headers, the source-address allowlist): the inner
//! service's future, or an answer given at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use super::ResponseBody;
use crate::http::json::POLLED_AFTER_COMPLETION;

pin_project! {
    /// Response future of the middlewares that admit or refuse a request from its head
    /// alone: `botconnector::BotCredentials` and [`SourceAllowlist`](crate::source::SourceAllowlist).
    pub struct GateFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Admitted { #[pin] future: F },
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<F> GateFuture<F> {
    pub(crate) fn admitted(future: F) -> Self {
        Self {
            kind: Kind::Admitted { future },
        }
    }

    pub(crate) fn refused(response: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F> std::fmt::Debug for GateFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.kind {
            Kind::Admitted { .. } => "admitted",
            Kind::Refused { .. } => "refused",
        };
        f.debug_tuple("GateFuture").field(&state).finish()
    }
}

impl<F, B, E> Future for GateFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Admitted { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(ResponseBody::inner))),
            KindProj::Refused { response } => {
                let response = response.take().expect(POLLED_AFTER_COMPLETION);
                Poll::Ready(Ok(response.map(ResponseBody::answered)))
            }
        }
    }
}
