//! A readiness probe for a durable receiver: ready while its stores answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower_service::Service;

use crate::http::json::json_text;
use crate::http::log::RefusalLog;
use crate::inbox::Inbox;
use crate::replay::ReplayStore;

/// Answers `200 {"status":"ready"}` while the [`Inbox`] (and, when given, the replay
/// store) answer a ping within [`timeout`](Self::timeout) (2 s by default), else
/// `503 {"error":"not_ready"}`, logging why at DEBUG each time, with a WARN summary
/// (the count and the latest reason) at most once a minute. A SQLite inbox is not ready while
/// its writes fail or after its file was removed, so a load balancer stops sending
/// events that could not be stored.
///
/// A tower [`Service`] of any request, and with the `axum` feature an axum handler:
/// `.route("/readyz", get(Readiness::new(inbox)))`.
#[derive(Clone)]
pub struct Readiness {
    inbox: Arc<dyn Inbox>,
    replay: Option<Arc<dyn ReplayStore>>,
    timeout: Duration,
    not_ready: Arc<RefusalLog>,
}

impl Readiness {
    /// Ready while `inbox` answers.
    pub fn new(inbox: Arc<dyn Inbox>) -> Self {
        Self {
            inbox,
            replay: None,
            timeout: Duration::from_secs(2),
            not_ready: Arc::new(RefusalLog::new("readiness probes answered not ready")),
        }
    }

    /// Also requires `store` to answer (a replay store shared through Redis).
    pub fn replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay = Some(store);
        self
    }

    /// Also requires the replay store of `layer` to answer, when it has replay
    /// protection on: the probe then covers every store a webhook's `200` depends on.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use genesys_webhook::inbox::MemoryInbox;
    /// use genesys_webhook::endpoint::Readiness;
    /// use genesys_webhook::replay::ReplayProtection;
    /// use genesys_webhook::GenesysSignatureLayer;
    ///
    /// let layer = GenesysSignatureLayer::builder()
    ///     .secret("dev-secret")
    ///     .replay_protection(ReplayProtection::in_memory())
    ///     .build()?;
    /// let ready = Readiness::new(Arc::new(MemoryInbox::new())).signature_layer(&layer);
    /// # Ok::<_, genesys_webhook::ConfigError>(())
    /// ```
    pub fn signature_layer(mut self, layer: &crate::webhook::GenesysSignatureLayer) -> Self {
        if let Some(store) = layer.replay_store() {
            self.replay = Some(Arc::clone(store));
        }
        self
    }

    /// How long the stores may take to answer (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Asks the stores and gives the answer to send.
    pub async fn check(&self) -> Response<String> {
        let check = async {
            self.inbox.ping().await.map_err(|e| e.to_string())?;
            match &self.replay {
                Some(replay) => replay.ping().await.map_err(|e| e.to_string()),
                None => Ok(()),
            }
        };
        let (status, body) = match tokio::time::timeout(self.timeout, check).await {
            Ok(Ok(())) => (StatusCode::OK, r#"{"status":"ready"}"#),
            failed => {
                let reason = failed.map_or_else(
                    |_| format!("no answer within {} ms", self.timeout.as_millis()),
                    |answer| answer.err().unwrap_or_default(),
                );
                self.not_ready.record("not_ready", &reason);
                (StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"not_ready"}"#)
            }
        };
        json_text(status, body)
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("replay_store", &self.replay.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for Readiness {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.check().await) })
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync + 'static> axum::handler::Handler<(), S> for Readiness {
    type Future = Pin<Box<dyn Future<Output = axum::response::Response> + Send>>;

    fn call(self, _request: axum::extract::Request, _state: S) -> Self::Future {
        Box::pin(async move { axum::response::IntoResponse::into_response(self.check().await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::MemoryInbox;
    use crate::replay::{LeaseId, ReplayKey, ReplayStore, Reservation, StoreError, StoreFuture};

    /// A replay store that never answers a ping.
    #[derive(Debug)]
    struct Down;

    impl ReplayStore for Down {
        fn reserve(
            &self,
            _: &ReplayKey,
            _: LeaseId,
            _: Duration,
        ) -> StoreFuture<Result<Reservation, StoreError>> {
            StoreFuture::ready(Err(StoreError::new("down")))
        }
        fn renew(
            &self,
            _: &ReplayKey,
            _: LeaseId,
            _: Duration,
        ) -> StoreFuture<Result<bool, StoreError>> {
            StoreFuture::ready(Err(StoreError::new("down")))
        }
        fn complete(
            &self,
            _: &ReplayKey,
            _: LeaseId,
            _: Duration,
        ) -> StoreFuture<Result<(), StoreError>> {
            StoreFuture::ready(Err(StoreError::new("down")))
        }
        fn release(&self, _: &ReplayKey, _: LeaseId) -> StoreFuture<Result<(), StoreError>> {
            StoreFuture::ready(Err(StoreError::new("down")))
        }
        fn ping(&self) -> StoreFuture<Result<(), StoreError>> {
            StoreFuture::ready(Err(StoreError::new("connection refused")))
        }
    }

    #[tokio::test]
    #[tracing_test::traced_test]
    async fn failed_probes_are_summed_up_not_logged_each_at_warn() {
        let ready = Readiness::new(Arc::new(MemoryInbox::new())).replay_store(Arc::new(Down));
        for _ in 0..50 {
            assert_eq!(
                ready.check().await.status(),
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        logs_assert(|lines| {
            let warnings = lines.iter().filter(|l| l.contains(" WARN ")).count();
            let debug = lines.iter().filter(|l| l.contains(" DEBUG ")).count();
            (warnings == 1 && debug == 50)
                .then_some(())
                .ok_or(format!("{warnings} WARN, {debug} DEBUG lines"))
        });
        assert!(logs_contain("connection refused"));
    }
}
