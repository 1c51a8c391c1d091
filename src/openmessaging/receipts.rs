//! Delivered receipts for the outbound messages a worker processed (features
//! `openmessaging` and `cloud`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::OpenMessage;
use crate::cloud::{CloudError, GenesysCloud, InboundReceipt};
use crate::inbox::Delivery;
use crate::BoxError;

/// Wraps a worker's handler: once it has processed an outbound `Text` (an agent's or
/// a bot's message), acknowledges it to Genesys with a `Delivered` receipt through the
/// inbound API, as a real integration does once its platform delivered the message.
/// Other deliveries pass through. A receipt that cannot be sent fails the delivery, so
/// the worker retries it; without a target it logs the receipt it would send.
///
/// ```no_run
/// use genesys_webhook::inbox::Delivery;
/// use genesys_webhook::openmessaging::DeliveredReceipts;
///
/// let handler = tower::service_fn(|delivery: Delivery| async move {
///     // hand the message to your platform here
///     Ok::<_, std::convert::Infallible>(())
/// });
/// // GENESYS_INTEGRATION_ID plus the credentials GenesysCloud::from_env reads.
/// let handler = DeliveredReceipts::from_env(handler)?;
/// # Ok::<_, genesys_webhook::cloud::CloudError>(())
/// ```
#[derive(Clone)]
pub struct DeliveredReceipts<S> {
    inner: S,
    target: Option<Arc<(GenesysCloud, String)>>,
}

impl<S> DeliveredReceipts<S> {
    /// Sends receipts for the integration `integration_id` through `cloud`; with
    /// `None`, only logs them.
    pub fn new(inner: S, target: Option<(GenesysCloud, String)>) -> Self {
        Self {
            inner,
            target: target.map(Arc::new),
        }
    }

    /// Sends receipts when `GENESYS_INTEGRATION_ID` and the client credentials
    /// ([`GenesysCloud::from_env`]) are set; only logs them otherwise.
    ///
    /// # Errors
    ///
    /// The credentials are set but do not make a client (an unknown region).
    pub fn from_env(inner: S) -> Result<Self, CloudError> {
        let integration = std::env::var("GENESYS_INTEGRATION_ID")
            .ok()
            .filter(|id| !id.trim().is_empty());
        Ok(Self::new(inner, GenesysCloud::from_env()?.zip(integration)))
    }
}

impl<S> std::fmt::Debug for DeliveredReceipts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveredReceipts")
            .field("integration", &self.target.as_ref().map(|t| &t.1))
            .finish_non_exhaustive()
    }
}

impl<S> Service<Delivery> for DeliveredReceipts<S>
where
    S: Service<Delivery>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, delivery: Delivery) -> Self::Future {
        let body = delivery.body().clone();
        let processed = self.inner.call(delivery);
        let target = self.target.clone();
        Box::pin(async move {
            let response = processed.await.map_err(Into::into)?;
            let message = OpenMessage::from_slice(&body).ok();
            let Some(receipt) = message.as_ref().and_then(InboundReceipt::delivered_for) else {
                return Ok(response);
            };
            match target {
                Some(target) => {
                    target.0.inbound(&target.1)?.receipt(&receipt).await?;
                }
                None => {
                    let receipt = serde_json::to_string(&receipt).unwrap_or_default();
                    tracing::info!(%receipt, "would send a Delivered receipt (set GENESYS_INTEGRATION_ID and the client credentials)");
                }
            }
            Ok(response)
        })
    }
}
