//! A Genesys Cloud Platform API client (feature `cloud`): OAuth client credentials,
//! Open Messaging integrations, and retries modelled on the official SDKs.
//!
//! The only Genesys Cloud feature that calls your HTTPS endpoint with a signed body is
//! an Open Messaging integration: its `outboundNotificationWebhookUrl` receives every
//! outbound message signed with `X-Hub-Signature-256`, keyed by its
//! `outboundNotificationWebhookSignatureSecretToken`. [`OpenMessaging`] creates, lists,
//! updates and deletes such integrations.
//!
//! Tokens come from `POST https://login.<domain>/oauth/token` with HTTP Basic auth and
//! `grant_type=client_credentials`; API calls go to `https://api.<domain>`. The OAuth
//! client needs the `messaging:integration` permissions; a 403 names the one missing
//! ([`ApiError::missing_permissions`]).

#[cfg(feature = "botconnector")]
mod botconnector;
mod client;
mod error;
#[cfg(feature = "openmessaging")]
mod inbound;
mod integrations;
mod ipranges;
#[cfg(feature = "openmessaging")]
mod receipts;
mod region;
mod retry;

#[cfg(feature = "botconnector")]
#[cfg_attr(docsrs, doc(cfg(feature = "botconnector")))]
pub use self::botconnector::{BotConnectorApi, OutgoingMessage};
pub use self::client::{GenesysCloud, GenesysCloudBuilder};
pub use self::error::{ApiError, CloudError, TransportError};
#[cfg(feature = "openmessaging")]
#[cfg_attr(docsrs, doc(cfg(feature = "openmessaging")))]
pub use self::inbound::{
    ButtonResponseKind, Inbound, InboundAnswer, InboundEvent, InboundMessage, InboundReceipt,
    InboundReceiptStatus, InboundStructuredResponse, MediaType, UnknownReceiptStatus,
};
pub use self::integrations::{
    Created, NewOpenMessagingIntegration, OpenMessaging, OpenMessagingIntegration,
    OpenMessagingIntegrationUpdate,
};
pub use self::ipranges::IpRange;
#[cfg(feature = "openmessaging")]
#[cfg_attr(docsrs, doc(cfg(feature = "openmessaging")))]
pub use self::receipts::{DeliveredReceipts, ReceiptSender, DEFAULT_RECEIPT_MAX_RETRY_AFTER};
pub use self::region::{Endpoints, Region, UnknownRegion};
pub use self::retry::RetryPolicy;
