//! The Digital Bot Connector (feature `botconnector`): Genesys Cloud sends each
//! customer turn of a messaging conversation to your bot (an LLM, an NLU service, a
//! rules engine) and shows the customer what the bot answers.
//!
//! Genesys calls three endpoints below the integration's "Bot Connector URI":
//! `GET {base}/bots` (the bots, their versions, languages and intents), `GET
//! {base}/bots/{botId}`, and `POST {base}/messages` (one turn, answered with the
//! bot's reply and its state: `MoreData` to wait for the customer, `Complete` with
//! one of the declared intents, or `Failed`). It authenticates with the credentials
//! configured on the integration, sent as request headers named after each field; no
//! signature.
//!
//! This module has:
//! - the typed bodies, forward compatible (unknown fields kept in `extra`, unknown
//!   enum values in `Unknown`): [`TurnRequest`], [`TurnResponse`] (with builders),
//!   [`Entity`] (the 14 slot types), [`Bot`];
//! - [`BotCredentialsLayer`], which checks the credential headers in constant time
//!   before the body is read and answers `401 {"error":"invalid_credentials"}`;
//! - with `axum`, [`BotConnectorRouter`]: the three endpoints over a [`BotHandler`],
//!   each turn under a deadline (default 25 s, below Architect's 30 s);
//! - with `cloud`, `GenesysCloud::bot_connector` for the asynchronous reply API
//!   (preview).
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::Router;
//! use genesys_webhook::botconnector::{
//!     Bot, BotConnectorRouter, BotCredentialsLayer, BotHandler, BotVersion, QuickReply,
//!     TurnRequest, TurnResponse,
//! };
//!
//! struct Shop;
//!
//! impl BotHandler for Shop {
//!     fn bots(&self) -> Vec<Bot> {
//!         vec![Bot::new("shop", "Shop").version(BotVersion::new("1", ["en-us"], ["Buy", "Goodbye"]))]
//!     }
//!
//!     async fn turn(&self, turn: TurnRequest) -> TurnResponse {
//!         match turn.text() {
//!             Some("bye") => TurnResponse::complete("Goodbye").text("Bye!"),
//!             _ => TurnResponse::more_data()
//!                 .quick_replies("What would you like?", [QuickReply::new("Buy", "buy")]),
//!         }
//!     }
//! }
//!
//! let credentials = BotCredentialsLayer::new("X-Bot-Connector-Secret", "s3cret")?;
//! let app: Router = Router::new().nest(
//!     "/botconnector",
//!     BotConnectorRouter::new(Shop, credentials).into_router()?,
//! );
//! # }
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

mod bot;
mod entity;
mod layer;
mod reply;
#[cfg(feature = "axum")]
mod router;
mod service;
mod turn;

pub use self::bot::{Bot, BotIntent, BotVersion, IntentEntity, InvalidBot, MAX_INTENTS};
pub use self::entity::{Currency, Entity, EntityValue};
pub use self::layer::{
    BotCredentialsConfigError, BotCredentialsLayer, BotCredentialsLayerBuilder,
    DEFAULT_CREDENTIAL_HEADER,
};
pub use self::reply::{
    AvailableTime, BotState, Card, CardAction, Carousel, DatePicker, ErrorInfo, QuickReply,
    QuickReplyV2, ReplyContent, ReplyContentType, ReplyMessage, ReplyType, TurnResponse,
};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::router::{
    BotConnectorRouter, BotHandler, DEFAULT_TURN_BODY_LIMIT, DEFAULT_TURN_DEADLINE,
};
pub use self::service::BotCredentials;
pub use self::turn::{
    Attachment, ButtonResponse, InputContent, InputContentType, InputMessage, InputType,
    TurnRequest,
};
pub use crate::wire::Extra;
