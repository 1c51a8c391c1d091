//! Open Messaging (feature `openmessaging`): the messages Genesys Cloud's outbound
//! webhook delivers, typed, and with the `axum` feature an extractor that yields them.
//!
//! Genesys sends an integration's outbound messages (what agents and bots write),
//! receipts and typing events to its `outboundNotificationWebhookUrl`, signed with
//! `X-Hub-Signature-256`. [`OpenMessage`] covers the four types (`Text`, `Structured`,
//! `Receipt`, `Event`) and stays forward compatible: unknown fields are kept in
//! `extra`, unknown enum values in `Unknown`, and a message serialises back to the
//! same JSON.
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::{routing::post, Router};
//! use genesys_webhook::openmessaging::{MessageType, OpenMessage};
//! use genesys_webhook::GenesysSignatureLayer;
//!
//! async fn webhook(message: OpenMessage) -> &'static str {
//!     if message.kind == MessageType::Text {
//!         println!("{:?} wrote {:?}", message.originating_entity, message.text);
//!     }
//!     "ok"
//! }
//!
//! let app: Router = Router::new()
//!     .route("/webhook/receive", post(webhook))
//!     .route_layer(GenesysSignatureLayer::builder().secret("dev-secret").build()?);
//! # }
//! # Ok::<_, genesys_webhook::ConfigError>(())
//! ```

#[cfg(feature = "axum")]
mod extract;
mod message;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::extract::OpenMessageRejection;
pub use self::message::{
    Attachment, ButtonResponse, Card, CardAction, Carousel, Channel, Content, ContentType,
    Direction, Event, EventType, Extra, IdType, MessageType, OpenMessage, OriginatingEntity,
    Participant, QuickReply, Reason, ReasonCode, ReceiptStatus, Template, Typing, TypingType,
};
