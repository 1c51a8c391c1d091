//! Delivered receipts for the outbound messages a worker processed (features
//! `openmessaging` and `cloud`), sent as a durable step of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tower_service::Service;

use super::{CloudError, GenesysCloud, InboundReceipt, RetryPolicy};
use crate::boxed::BoxError;
use crate::inbox::{Abort, Delivery, Inbox, RetryAfter};

/// Default for [`ReceiptSender::max_retry_after`]: 180 s, the longest wait the
/// official SDKs honour.
pub const DEFAULT_RECEIPT_MAX_RETRY_AFTER: Duration = Duration::from_secs(180);

/// How often, and how long apart, a receipt is offered to a failing receipts inbox
/// before it is given up (the handler's work is never run again for it).
const QUEUE_TRIES: u32 = 3;
const QUEUE_PAUSE: Duration = Duration::from_millis(100);

/// Wraps a worker's handler: once it has processed an outbound `Text` or `Structured`
/// message (an agent's or a bot's), queues a `Delivered` receipt for it in a second
/// [`Inbox`], as a real integration does once its platform delivered the message.
/// Other deliveries pass through.
///
/// Sending the receipt is a step of its own: a [`Worker`](crate::inbox::Worker) on the
/// receipts inbox runs a [`ReceiptSender`]. So once the handler has succeeded, nothing
/// the receipt meets (Genesys down, a 500, a 429 with a long `Retry-After`) runs the
/// handler again or holds one of its slots: the receipt is retried from its own inbox,
/// at least once, bounded by that inbox's limits and attempts, and ends in its dead
/// letters with the reason when it cannot be sent.
///
/// If the receipts inbox itself cannot store the receipt (full, or unreachable after
/// three tries 100 ms apart), the receipt is dropped with an ERROR line; the delivery
/// still succeeds, since its work is done.
///
/// ```no_run
/// use std::sync::Arc;
/// use genesys_webhook::cloud::GenesysCloud;
/// use genesys_webhook::inbox::{Delivery, InboxAdmin, MemoryInbox, Worker};
/// use genesys_webhook::cloud::{DeliveredReceipts, ReceiptSender};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), genesys_webhook::cloud::CloudError> {
/// # let events: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
/// // In production both inboxes are durable (SQLite, Redis).
/// let receipts: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
/// let handler = tower::service_fn(|delivery: Delivery| async move {
///     // hand the message to your platform here
///     Ok::<_, std::convert::Infallible>(())
/// });
/// let handler = DeliveredReceipts::new(handler, receipts.clone());
/// let events = Worker::builder(events).build(handler).spawn();
///
/// let sender = ReceiptSender::new(GenesysCloud::from_env()?, "integration-id");
/// let receipts = Worker::builder(receipts).build(sender).spawn();
/// # events.shutdown().await; receipts.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DeliveredReceipts<S> {
    inner: S,
    receipts: Arc<dyn Inbox>,
}

impl<S> DeliveredReceipts<S> {
    /// Queues a receipt in `receipts` for each outbound message `inner` processed.
    pub fn new(inner: S, receipts: Arc<dyn Inbox>) -> Self {
        Self { inner, receipts }
    }
}

impl<S> std::fmt::Debug for DeliveredReceipts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveredReceipts").finish_non_exhaustive()
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
        let event = delivery.id().clone();
        let processed = self.inner.call(delivery);
        let receipts = Arc::clone(&self.receipts);
        Box::pin(async move {
            let response = processed.await.map_err(Into::into)?;
            let Some(receipt) = InboundReceipt::delivered_for_body(&body) else {
                return Ok(response);
            };
            let Ok(receipt) = serde_json::to_vec(&receipt) else {
                return Ok(response);
            };
            let receipt = Bytes::from(receipt);
            for attempt in 1..=QUEUE_TRIES {
                match receipts.append(receipt.clone()).await {
                    Ok(_) => break,
                    Err(error) if attempt == QUEUE_TRIES => {
                        tracing::error!(%error, inbox_id = %event, "could not queue a Delivered receipt; it is not sent");
                    }
                    Err(error) => {
                        tracing::debug!(%error, inbox_id = %event, attempt, "could not queue a Delivered receipt; trying again");
                        tokio::time::sleep(QUEUE_PAUSE).await;
                    }
                }
            }
            Ok(response)
        })
    }
}

/// Sends the receipts [`DeliveredReceipts`] queued: the handler of a
/// [`Worker`](crate::inbox::Worker) on the receipts inbox.
///
/// Each receipt is sent once per delivery, with no retries inside: the worker's inbox
/// schedules them, so a waiting receipt holds no slot. Genesys' answer decides:
///
/// | answer | what happens |
/// |---|---|
/// | 2xx | done |
/// | 429 with `Retry-After` up to [`max_retry_after`](Self::max_retry_after) | next attempt after that wait ([`RetryAfter`]) |
/// | 429 with a longer `Retry-After` | dead letter at once, naming the wait and the cap ([`Abort`]) |
/// | 408, 5xx, no answer | next attempt after the worker's backoff |
/// | another 4xx (a bad receipt, a missing permission) | dead letter at once with Genesys' error |
///
/// Without a Platform API client ([`log_only`](Self::log_only)) it logs each receipt
/// at DEBUG, without the customer's id.
#[derive(Clone)]
pub struct ReceiptSender {
    target: Option<Arc<(GenesysCloud, String)>>,
    max_retry_after: Duration,
}

impl ReceiptSender {
    /// Sends through `cloud` into the Open Messaging integration `integration_id`.
    pub fn new(cloud: GenesysCloud, integration_id: impl Into<String>) -> Self {
        // No retries inside a delivery: any 429 comes back as `RetryAfterTooLong`
        // with its wait, for the inbox to schedule.
        let cloud = cloud.with_retry_policy(
            RetryPolicy::none()
                .max_retry_after(Duration::ZERO)
                .default_retry_after(Duration::from_secs(3)),
        );
        Self {
            target: Some(Arc::new((cloud, integration_id.into()))),
            max_retry_after: DEFAULT_RECEIPT_MAX_RETRY_AFTER,
        }
    }

    /// Sends nothing: logs each receipt at DEBUG (for trying a receiver out without
    /// Genesys credentials).
    pub fn log_only() -> Self {
        Self {
            target: None,
            max_retry_after: DEFAULT_RECEIPT_MAX_RETRY_AFTER,
        }
    }

    /// Sends when `GENESYS_INTEGRATION_ID` and the client credentials
    /// ([`GenesysCloud::from_env_if_set`]) are set; [`log_only`](Self::log_only)
    /// otherwise.
    ///
    /// # Errors
    ///
    /// The credentials are set but do not make a client (an unknown region).
    pub fn from_env() -> Result<Self, CloudError> {
        let integration = std::env::var("GENESYS_INTEGRATION_ID")
            .ok()
            .filter(|id| !id.trim().is_empty());
        Ok(match (GenesysCloud::from_env_if_set()?, integration) {
            (Some(cloud), Some(integration)) => Self::new(cloud, integration),
            _ => Self::log_only(),
        })
    }

    /// The longest `Retry-After` waited for (default 180 s); a receipt asked to wait
    /// longer goes to the dead letters at once, with the wait in its reason.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// Whether receipts are really sent (not only logged).
    pub fn sends(&self) -> bool {
        self.target.is_some()
    }
}

impl std::fmt::Debug for ReceiptSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSender")
            .field("integration", &self.target.as_ref().map(|t| &t.1))
            .field("max_retry_after", &self.max_retry_after)
            .finish()
    }
}

impl Service<Delivery> for ReceiptSender {
    type Response = ();
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, delivery: Delivery) -> Self::Future {
        let target = self.target.clone();
        let cap = self.max_retry_after;
        Box::pin(async move {
            let receipt: serde_json::Value = serde_json::from_slice(delivery.body())
                .map_err(|e| Abort::new(format!("not a receipt: {e}")))?;
            let Some(target) = target else {
                let status = receipt
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or("-");
                let message = receipt.get("id").and_then(|s| s.as_str()).unwrap_or("-");
                tracing::debug!(
                    status,
                    message,
                    "would send a receipt (set GENESYS_INTEGRATION_ID and the client credentials)"
                );
                return Ok(());
            };
            let inbound = target
                .0
                .inbound(&target.1)
                .map_err(|e| Abort::new(e.to_string()))?;
            match inbound.receipt_json(&receipt).await {
                // A 2xx whose body is not JSON: Genesys took the receipt.
                Ok(_) | Err(CloudError::InvalidResponse(_)) => Ok(()),
                Err(error) => Err(classify(error, cap)),
            }
        })
    }
}

/// What the worker should do after a receipt failed with `error`.
fn classify(error: CloudError, cap: Duration) -> BoxError {
    match &error {
        CloudError::RetryAfterTooLong { retry_after, .. } if *retry_after <= cap => {
            Box::new(RetryAfter::new(*retry_after, error.to_string()))
        }
        CloudError::RetryAfterTooLong { retry_after, .. } => Box::new(Abort::new(format!(
            "Genesys Cloud asked to wait {} s before sending the receipt again, longer than the {} s cap: {error}",
            retry_after.as_secs(),
            cap.as_secs()
        ))),
        CloudError::Api(api) if api.status == 408 || api.status >= 500 => Box::new(error),
        CloudError::Api(_) | CloudError::InvalidConfig(_) => Box::new(Abort::new(error.to_string())),
        _ => Box::new(error),
    }
}
