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

/// Declares the service of a middleware that admits or refuses a request from its head
/// alone: the struct (the inner service and the layer's `config`), its accessors, and a
/// `Service` impl that asks `config.refusal(&request)` and answers with a
/// [`GateFuture`]. Both such middlewares have the same service; only the check differs.
macro_rules! gate_service {
    ($(#[$meta:meta])* $name:ident, $layer:ident, $config:ty) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name<S> {
            inner: S,
            config: std::sync::Arc<$config>,
        }

        impl<S> $name<S> {
            #[doc = concat!("Wraps `inner` with the checks `layer` was configured with, as [`Layer::layer`](tower_layer::Layer::layer) does with a [`", stringify!($layer), "`].")]
            pub fn new(inner: S, layer: &$layer) -> Self {
                Self {
                    inner,
                    config: std::sync::Arc::clone(&layer.config),
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

        impl<S: std::fmt::Debug> std::fmt::Debug for $name<S> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("inner", &self.inner)
                    .finish_non_exhaustive()
            }
        }

        impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for $name<S>
        where
            S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
        {
            type Response = http::Response<$crate::http::ResponseBody<ResBody>>;
            type Error = S::Error;
            type Future = $crate::http::GateFuture<S::Future>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
                match self.config.refusal(&request) {
                    None => $crate::http::GateFuture::admitted(self.inner.call(request)),
                    Some(refusal) => $crate::http::GateFuture::refused(refusal),
                }
            }
        }
    };
}

#[cfg_attr(not(feature = "botconnector"), allow(unused_imports))]
pub(crate) use gate_service;
