//! The messages of Open Messaging's outbound webhook, typed and forward compatible:
//! every struct keeps the fields it does not know in `extra`, every enum keeps a value
//! it does not know in `Unknown`, and a message serialises back to the same JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::string_enum;
pub use crate::wire::Extra;

string_enum! {
    /// What a message is (`type`).
    MessageType {
        /// A text, possibly with content.
        Text = "Text",
        /// Rich content: quick replies, buttons, cards, carousels, templates.
        Structured = "Structured",
        /// A delivery receipt.
        Receipt = "Receipt",
        /// Events, such as typing.
        Event = "Event",
    }
}

string_enum! {
    /// Which way a message goes (`direction`).
    Direction {
        /// From Genesys (an agent or a bot) to the customer: what the webhook carries.
        Outbound = "Outbound",
        /// From the customer to Genesys.
        Inbound = "Inbound",
    }
}

string_enum! {
    /// Who wrote an outbound message (`originatingEntity`).
    OriginatingEntity {
        /// An agent.
        Human = "Human",
        /// A bot.
        Bot = "Bot",
    }
}

string_enum! {
    /// Why a receipt is `Failed` (`reasons[].code`): the 13 codes of the SDKs'
    /// `Reason` model.
    ReasonCode {
        /// The message expired before it could be delivered.
        MessageExpired = "MessageExpired",
        /// The platform rate-limited the message.
        RateLimited = "RateLimited",
        /// The message is not allowed.
        MessageNotAllowed = "MessageNotAllowed",
        /// Any other error.
        GeneralError = "GeneralError",
        /// The platform does not support this message.
        UnsupportedMessage = "UnsupportedMessage",
        /// The message is not known.
        UnknownMessage = "UnknownMessage",
        /// The message is malformed.
        InvalidMessageStructure = "InvalidMessageStructure",
        /// The recipient cannot be reached.
        InvalidDestination = "InvalidDestination",
        /// The platform failed.
        ServerError = "ServerError",
        /// The media type is not allowed.
        MediaTypeNotAllowed = "MediaTypeNotAllowed",
        /// The media is too large (or has no valid length).
        InvalidMediaContentLength = "InvalidMediaContentLength",
        /// The recipient opted out.
        RecipientOptedOut = "RecipientOptedOut",
        /// Filtered by a data policy.
        DataFiltered = "DataFiltered",
    }
}

string_enum! {
    /// A receipt's status, as the outbound webhook may carry it. Genesys accepts only
    /// five of them on an inbound receipt: see
    /// [`InboundReceiptStatus`](crate::cloud::InboundReceiptStatus) (no `Read`).
    ReceiptStatus {
        /// Sent to the customer's platform.
        Sent = "Sent",
        /// Delivered to the customer.
        Delivered = "Delivered",
        /// Read by the customer.
        Read = "Read",
        /// Could not be delivered; see the reasons.
        Failed = "Failed",
        /// Published.
        Published = "Published",
        /// Removed.
        Removed = "Removed",
    }
}

string_enum! {
    /// The kind of one content element (`contentType`).
    ContentType {
        /// A file, image or video.
        Attachment = "Attachment",
        /// A quick reply offered to the customer.
        QuickReply = "QuickReply",
        /// The customer's answer to a quick reply or a button.
        ButtonResponse = "ButtonResponse",
        /// A card with actions.
        Card = "Card",
        /// Several cards.
        Carousel = "Carousel",
        /// A notification template (WhatsApp and similar).
        Notification = "Notification",
    }
}

string_enum! {
    /// The kind of an event (`eventType`).
    EventType {
        /// The sender is typing.
        Typing = "Typing",
    }
}

string_enum! {
    /// Whether typing started (`typing.type`).
    TypingType {
        /// Typing.
        On = "On",
    }
}

string_enum! {
    /// How a participant is identified (`idType`).
    IdType {
        /// An identifier of the integration's own choosing.
        Opaque = "Opaque",
        /// An email address.
        Email = "Email",
        /// A phone number.
        Phone = "Phone",
    }
}

/// One Open Messaging message as the outbound webhook delivers it: a `Text`, a
/// `Structured` message, a `Receipt` or an `Event` (typing). Fields that only some
/// types carry are `None` on the others.
///
/// ```
/// use genesys_webhook::openmessaging::{MessageType, OpenMessage};
///
/// let message: OpenMessage = serde_json::from_str(
///     r#"{"id":"8085","type":"Text","text":"Hello","direction":"Outbound",
///         "channel":{"platform":"Open","type":"Private","messageId":"8085",
///                    "to":{"id":"33633081329","idType":"Opaque"},"time":"2026-03-25T13:20:05.493Z"},
///         "conversationId":"1734","shinyNewField":true}"#,
/// )?;
/// assert_eq!(message.kind, MessageType::Text);
/// assert_eq!(message.text.as_deref(), Some("Hello"));
/// assert!(message.extra.contains_key("shinyNewField"));
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OpenMessage {
    /// The message's id (for a receipt: the id of the message it is about).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The channel: platform, addresses, provider message id, time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// What the message is.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The text of a `Text` message (or the text of a `Structured` one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Content elements: attachments, quick replies, buttons, cards, carousels,
    /// notification templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<Content>>,
    /// A receipt's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ReceiptStatus>,
    /// Why a receipt says `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<Reason>>,
    /// Whether no further receipt follows for this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_final_receipt: Option<bool>,
    /// The events of an `Event` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    /// Which way the message goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Whether an agent or a bot wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originating_entity: Option<OriginatingEntity>,
    /// The Genesys Cloud conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl OpenMessage {
    /// Parses a webhook body.
    ///
    /// # Errors
    ///
    /// When the body is not JSON, or not an Open Messaging message (no `type`, or a
    /// field of the wrong shape).
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The provider message id: `channel.messageId`, else `id`. A receipt sent back
    /// for this message names it.
    pub fn message_id(&self) -> Option<&str> {
        self.channel
            .as_ref()
            .and_then(|c| c.message_id.as_deref())
            .or(self.id.as_deref())
    }
}

/// Where a message travels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Channel {
    /// The channel's id (the integration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `Open` for Open Messaging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `Private` for one-to-one conversations.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The provider's id of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Participant>,
    /// The sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Participant>,
    /// When it happened, ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Channel metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A sender or a recipient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Participant {
    /// The participant's id on the integration's platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What kind of id it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<IdType>,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// An avatar URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One content element of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Content {
    /// Which of the fields below is set.
    pub content_type: ContentType,
    /// A file, image or video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// A quick reply offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply: Option<QuickReply>,
    /// The answer to a quick reply or a button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_response: Option<ButtonResponse>,
    /// A card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// Several cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carousel: Option<Carousel>,
    /// A notification template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A file, image or video.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Attachment {
    /// The attachment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `Image`, `Video`, `Audio`, `File`, `Link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Where to fetch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Its file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// A caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A quick reply offered to the customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QuickReply {
    /// The label shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What comes back when it is chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// An image on the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Message` (the usual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The customer's answer to a quick reply or a button.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ButtonResponse {
    /// `QuickReply` or `Button`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The label that was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A card with a title, media and actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Card {
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The text below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A video URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
    /// What a tap on the card does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<CardAction>,
    /// Its buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<CardAction>>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A button on a card.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CardAction {
    /// `Link` or `Postback`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A postback's payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// A link's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Several cards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Carousel {
    /// The cards.
    #[serde(default)]
    pub cards: Vec<Card>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A notification template: a header, a body with parameters, a footer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Template {
    /// The template's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Its language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The header, as Genesys sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Value>,
    /// The body: text and parameters, as Genesys sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The footer, as Genesys sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<Value>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why a message failed, in a receipt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Reason {
    /// A code such as `MessageExpired`, `RateLimited`, `GeneralError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ReasonCode>,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One event of an `Event` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub event_type: EventType,
    /// For `Typing`: how and for how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typing: Option<Typing>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A typing indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Typing {
    /// `On`.
    #[serde(rename = "type")]
    pub kind: TypingType,
    /// How long it shows, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_are_kept_and_written_back() {
        let status: ReceiptStatus = serde_json::from_str(r#""Delivered""#).unwrap();
        assert_eq!(status, ReceiptStatus::Delivered);
        let new: ReceiptStatus = serde_json::from_str(r#""Vaporised""#).unwrap();
        assert_eq!(new, ReceiptStatus::Unknown("Vaporised".to_owned()));
        assert_eq!(serde_json::to_string(&new).unwrap(), r#""Vaporised""#);
    }
}
