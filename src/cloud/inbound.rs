//! The inbound half of Open Messaging (features `cloud` and `openmessaging`): the
//! customer's messages, receipts, typing and quick-reply answers sent into Genesys
//! Cloud, with the bodies of the SDKs' `OpenInboundNormalized*` models.

use std::time::SystemTime;

use http::Method;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{CloudError, GenesysCloud};
use crate::openmessaging::{
    Attachment, ButtonResponse, Content, ContentType, Direction, Event, EventType, IdType,
    MessageType, OpenMessage, Participant, Reason, ReasonCode, Typing, TypingType,
};

/// Sends into one Open Messaging integration; made by [`GenesysCloud::inbound`].
///
/// These `POST`s are not idempotent, and Genesys documents no deduplication of
/// inbound messages by `channel.messageId`: a request whose answer was lost may have
/// been applied. So only what certainly was not processed is retried: a `429`
/// (honouring `Retry-After`) and a connection that could not be made. A 5xx, a
/// timeout or a connection closed unanswered is returned as an error, for the caller
/// to decide.
///
/// ```no_run
/// use genesys_webhook::cloud::{GenesysCloud, InboundEvent, InboundMessage, InboundReceipt, Region};
///
/// # async fn run() -> Result<(), genesys_webhook::cloud::CloudError> {
/// let cloud = GenesysCloud::builder()
///     .region(Region::EuWest1)
///     .client_credentials("client-id", "client-secret")
///     .build()?;
/// let inbound = cloud.inbound("6685f1e2-0000-4000-8000-000000000001")?;
/// inbound.message(&InboundMessage::text("customer-42", "Hello!")).await?;
/// inbound.event(&InboundEvent::typing_on("customer-42")).await?;
/// inbound.receipt(&InboundReceipt::delivered("8085a2b4c1", "customer-42")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    cloud: &'a GenesysCloud,
    base: String,
    prefetch_conversation_id: bool,
}

/// What Genesys answered to an inbound call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InboundAnswer {
    /// The id Genesys gave the message, receipt or event.
    pub id: Option<String>,
    /// The conversation, when Genesys names it (a message sent with
    /// [`prefetch_conversation_id`](Inbound::prefetch_conversation_id)).
    pub conversation_id: Option<String>,
    /// The whole answer.
    pub body: Value,
}

impl GenesysCloud {
    /// The inbound API of the Open Messaging integration `integration_id`.
    ///
    /// # Errors
    ///
    /// [`CloudError::InvalidConfig`] when the id is not made of letters, digits and
    /// dashes (it goes into the URL path).
    pub fn inbound(&self, integration_id: &str) -> Result<Inbound<'_>, CloudError> {
        let valid = !integration_id.is_empty()
            && integration_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(CloudError::InvalidConfig(
                "an Open Messaging integration id is letters, digits and dashes".to_owned(),
            ));
        }
        Ok(Inbound {
            cloud: self,
            base: format!("/api/v2/conversations/messages/{integration_id}/inbound/open"),
            prefetch_conversation_id: false,
        })
    }
}

impl Inbound<'_> {
    /// Asks Genesys to name the conversation in the answer to [`message`](Self::message)
    /// (`?prefetchConversationId=true`).
    pub fn prefetch_conversation_id(mut self, prefetch: bool) -> Self {
        self.prefetch_conversation_id = prefetch;
        self
    }

    /// Sends a customer's message (`POST …/inbound/open/message`).
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn message(&self, message: &InboundMessage) -> Result<InboundAnswer, CloudError> {
        let query = if self.prefetch_conversation_id {
            "?prefetchConversationId=true"
        } else {
            ""
        };
        self.post(&format!("/message{query}"), message).await
    }

    /// Sends a receipt for an outbound message (`POST …/inbound/open/receipt`).
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn receipt(&self, receipt: &InboundReceipt) -> Result<InboundAnswer, CloudError> {
        self.post("/receipt", receipt).await
    }

    /// Sends a receipt already in JSON, as [`DeliveredReceipts`] queues it.
    ///
    /// [`DeliveredReceipts`]: crate::cloud::DeliveredReceipts
    pub(crate) async fn receipt_json(&self, receipt: &Value) -> Result<InboundAnswer, CloudError> {
        self.post("/receipt", receipt).await
    }

    /// Acknowledges an outbound message the webhook delivered with a `Delivered`
    /// receipt, as a real integration does once its platform delivered it. Only an
    /// outbound `Text` or `Structured` message is acknowledged: resolves to `None` for anything else (receipts,
    /// events, inbound echoes) and for a message without an id or a recipient.
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn delivered(
        &self,
        message: &OpenMessage,
    ) -> Result<Option<InboundAnswer>, CloudError> {
        match InboundReceipt::delivered_for(message) {
            Some(receipt) => self.receipt(&receipt).await.map(Some),
            None => Ok(None),
        }
    }

    /// Sends events, such as typing (`POST …/inbound/open/event`).
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn event(&self, event: &InboundEvent) -> Result<InboundAnswer, CloudError> {
        self.post("/event", event).await
    }

    /// Sends the customer's answer to a quick reply or a button
    /// (`POST …/inbound/open/structured/response`).
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn structured_response(
        &self,
        response: &InboundStructuredResponse,
    ) -> Result<InboundAnswer, CloudError> {
        self.post("/structured/response", response).await
    }

    async fn post(&self, path: &str, body: &impl Serialize) -> Result<InboundAnswer, CloudError> {
        let body =
            serde_json::to_vec(body).map_err(|e| CloudError::InvalidConfig(e.to_string()))?;
        let path = format!("{}{path}", self.base);
        let body: Value = self.cloud.api_json(Method::POST, &path, Some(body)).await?;
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(InboundAnswer {
            id: text("id"),
            conversation_id: text("conversationId"),
            body,
        })
    }
}

/// The channel of an inbound body: who sent it (or, for a receipt, to whom the
/// outbound message went) and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct InboundChannel {
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<Participant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<Participant>,
    time: String,
}

impl InboundChannel {
    fn now() -> Self {
        Self {
            message_id: None,
            from: None,
            to: None,
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        }
    }
}

fn customer(id: &str) -> Participant {
    Participant {
        id: Some(id.to_owned()),
        id_type: Some(IdType::Opaque),
        ..Participant::default()
    }
}

/// A customer's message into Genesys (`OpenInboundNormalizedMessage`): a text, content,
/// or the answer to a quick reply or a button.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundMessage {
    channel: InboundChannel,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Vec<Content>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

impl InboundMessage {
    /// A text from the customer `from_id` (an opaque id on your platform), now, with a
    /// new random message id.
    pub fn text(from_id: &str, text: impl Into<String>) -> Self {
        let mut channel = InboundChannel::now();
        channel.from = Some(customer(from_id));
        channel.message_id = Some(random_id());
        Self {
            channel,
            text: Some(text.into()),
            content: None,
            metadata: None,
        }
    }

    /// A file from the customer `from_id`: Genesys fetches it from `url`
    /// (`{contentType: Attachment, attachment: {mediaType, url, mime}}`). Add a caption
    /// with [`caption`](Self::caption) and a name with [`filename`](Self::filename).
    ///
    /// ```
    /// # #[cfg(feature = "cloud")] {
    /// use genesys_webhook::cloud::{InboundMessage, MediaType};
    ///
    /// let photo = InboundMessage::attachment(
    ///     "customer-42",
    ///     "https://cdn.example.com/receipt.jpg",
    ///     MediaType::Image,
    ///     "image/jpeg",
    /// )
    /// .filename("receipt.jpg")
    /// .caption("my receipt");
    /// # }
    /// ```
    pub fn attachment(
        from_id: &str,
        url: impl Into<String>,
        media_type: MediaType,
        mime: impl Into<String>,
    ) -> Self {
        let mut message = Self::text(from_id, "");
        message.text = None;
        message.content = Some(vec![Content {
            content_type: ContentType::Attachment,
            attachment: Some(Attachment {
                media_type: Some(media_type.as_str().to_owned()),
                url: Some(url.into()),
                mime: Some(mime.into()),
                ..Attachment::default()
            }),
            quick_reply: None,
            button_response: None,
            card: None,
            carousel: None,
            template: None,
            extra: Map::new(),
        }]);
        message
    }

    /// The file name of each attachment of this message.
    pub fn filename(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        for content in self.content.iter_mut().flatten() {
            if let Some(attachment) = &mut content.attachment {
                attachment.filename = Some(name.clone());
            }
        }
        self
    }

    /// A text sent with the attachment (the message's `text`).
    pub fn caption(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// The customer's choice of a quick reply: its label and payload.
    pub fn quick_reply_response(from_id: &str, text: &str, payload: &str) -> Self {
        Self::button_response_of("QuickReply", from_id, text, payload)
    }

    /// The customer's press of a button: its label and payload.
    pub fn button_response(from_id: &str, text: &str, payload: &str) -> Self {
        Self::button_response_of("Button", from_id, text, payload)
    }

    fn button_response_of(kind: &str, from_id: &str, text: &str, payload: &str) -> Self {
        let mut message = Self::text(from_id, text);
        message.content = Some(vec![Content {
            content_type: ContentType::ButtonResponse,
            attachment: None,
            quick_reply: None,
            button_response: Some(ButtonResponse {
                kind: Some(kind.to_owned()),
                text: Some(text.to_owned()),
                payload: Some(payload.to_owned()),
                ..ButtonResponse::default()
            }),
            card: None,
            carousel: None,
            template: None,
            extra: Map::new(),
        }]);
        message
    }

    /// Uses `id` as the provider message id (`channel.messageId`) instead of a random
    /// one: the id your platform gave the message.
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.channel.message_id = Some(id.into());
        self
    }

    /// The customer's display name.
    pub fn nickname(mut self, nickname: impl Into<String>) -> Self {
        if let Some(from) = &mut self.channel.from {
            from.nickname = Some(nickname.into());
        }
        self
    }

    /// Adds a metadata entry (`metadata`).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata
            .get_or_insert_with(Map::new)
            .insert(key.into(), Value::String(value.into()));
        self
    }
}

/// A receipt for an outbound message (`OpenInboundNormalizedReceipt`). It names the
/// outbound message by its `id`, not by `channel.messageId`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundReceipt {
    id: String,
    channel: InboundChannel,
    status: InboundReceiptStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<Vec<Reason>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_final_receipt: Option<bool>,
}

impl InboundReceipt {
    /// A receipt with `status` for the outbound message `message_id`, which went to the
    /// customer `to_id`.
    pub fn new(message_id: impl Into<String>, to_id: &str, status: InboundReceiptStatus) -> Self {
        let mut channel = InboundChannel::now();
        channel.to = Some(customer(to_id));
        Self {
            id: message_id.into(),
            channel,
            status,
            reasons: None,
            is_final_receipt: None,
        }
    }

    /// `Delivered` for the outbound message `message_id`, sent to `to_id`.
    pub fn delivered(message_id: impl Into<String>, to_id: &str) -> Self {
        Self::new(message_id, to_id, InboundReceiptStatus::Delivered)
    }

    /// A receipt with `status` for an outbound message as the webhook delivered it
    /// (its `id` and `channel.to`); `None` when it has no id or no recipient.
    pub fn for_message(message: &OpenMessage, status: InboundReceiptStatus) -> Option<Self> {
        let id = message.id.as_deref()?;
        let to = message.channel.as_ref()?.to.as_ref()?.id.as_deref()?;
        Some(Self::new(id, to, status))
    }

    /// `Delivered` for an outbound `Text` or `Structured` message as the webhook
    /// delivered it; `None` for any other message (receipts, events, inbound echoes).
    pub fn delivered_for(message: &OpenMessage) -> Option<Self> {
        let outbound_text = matches!(message.kind, MessageType::Text | MessageType::Structured)
            && message
                .direction
                .as_ref()
                .is_none_or(|d| *d == Direction::Outbound);
        outbound_text
            .then(|| Self::for_message(message, InboundReceiptStatus::Delivered))
            .flatten()
    }

    /// [`delivered_for`](Self::delivered_for) straight from a webhook's body, reading
    /// only the four fields it needs (borrowed, no tree built): the worker's path.
    pub(crate) fn delivered_for_body(body: &[u8]) -> Option<Self> {
        use std::borrow::Cow;
        #[derive(serde::Deserialize)]
        struct Peek<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
            #[serde(default, borrow)]
            direction: Option<Cow<'a, str>>,
            #[serde(default, borrow)]
            id: Option<Cow<'a, str>>,
            #[serde(default, borrow)]
            channel: Option<PeekChannel<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct PeekChannel<'a> {
            #[serde(default, borrow)]
            to: Option<PeekParticipant<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct PeekParticipant<'a> {
            #[serde(default, borrow)]
            id: Option<Cow<'a, str>>,
        }
        // Most webhooks that are no Open Messaging message (conversation events) have
        // no `type` key at all: found without parsing.
        memchr::memmem::find(body, br#""type""#)?;
        let peek: Peek<'_> = serde_json::from_slice(body).ok()?;
        let outbound = matches!(&*peek.kind, "Text" | "Structured")
            && peek.direction.as_deref().is_none_or(|d| d == "Outbound");
        if !outbound {
            return None;
        }
        let to = peek.channel?.to?.id?;
        Some(Self::new(peek.id?, &to, InboundReceiptStatus::Delivered))
    }

    /// Adds a reason (for `Failed`): one of the 13 codes, and a description (which
    /// Genesys requires).
    pub fn reason(mut self, code: ReasonCode, message: impl Into<String>) -> Self {
        self.reasons.get_or_insert_with(Vec::new).push(Reason {
            code: Some(code),
            message: Some(message.into()),
            ..Reason::default()
        });
        self
    }

    /// Whether no further receipt follows for this message (`isFinalReceipt`).
    pub fn final_receipt(mut self, last: bool) -> Self {
        self.is_final_receipt = Some(last);
        self
    }
}

/// The status of an inbound receipt: the five Genesys accepts
/// (`OpenInboundNormalizedReceipt`). There is no `Read`.
///
/// Parsed in any case, written as Genesys spells it:
///
/// ```
/// use genesys_webhook::cloud::InboundReceiptStatus;
///
/// let status: InboundReceiptStatus = "delivered".parse()?;
/// assert_eq!(status.as_str(), "Delivered");
/// let refused = "Read".parse::<InboundReceiptStatus>().unwrap_err();
/// assert!(refused.to_string().contains("Sent, Delivered, Failed, Published, Removed"));
/// # Ok::<_, genesys_webhook::cloud::UnknownReceiptStatus>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum InboundReceiptStatus {
    /// Sent to the customer's platform.
    Sent,
    /// Delivered to the customer.
    Delivered,
    /// Could not be delivered; give a [`reason`](InboundReceipt::reason).
    Failed,
    /// Published.
    Published,
    /// Removed.
    Removed,
}

impl InboundReceiptStatus {
    /// Every status, in the order Genesys documents them.
    pub const ALL: [Self; 5] = [
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Published,
        Self::Removed,
    ];

    /// The status as Genesys spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sent => "Sent",
            Self::Delivered => "Delivered",
            Self::Failed => "Failed",
            Self::Published => "Published",
            Self::Removed => "Removed",
        }
    }
}

impl std::fmt::Display for InboundReceiptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InboundReceiptStatus {
    type Err = UnknownReceiptStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownReceiptStatus(text.chars().take(32).collect()))
    }
}

/// A text that is not an [`InboundReceiptStatus`]; its message names the five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownReceiptStatus(String);

impl std::fmt::Display for UnknownReceiptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not a receipt status Genesys accepts inbound; use one of Sent, Delivered, Failed, Published, Removed",
            self.0
        )
    }
}

impl std::error::Error for UnknownReceiptStatus {}

/// What the customer answered a structured message with (`buttonResponse.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum ButtonResponseKind {
    /// A button of a card or a list.
    Button,
    /// A quick reply.
    QuickReply,
    /// A date picker.
    DatePicker,
}

/// The customer's answer to a structured message, for
/// [`Inbound::structured_response`] (`OpenInboundStructuredResponseMessage`): the
/// button or quick reply chosen, and the id of the outbound message it answers. Not a
/// normalized message: Genesys requires all three of `channel`, `buttonResponse` and
/// `originatingMessageId`.
///
/// ```
/// use genesys_webhook::cloud::{ButtonResponseKind, InboundStructuredResponse};
///
/// let answer = InboundStructuredResponse::new(
///     "customer-42",
///     "8085a2b4c1",
///     ButtonResponseKind::QuickReply,
///     "Small",
///     "size-s",
/// );
/// let json = serde_json::to_value(&answer)?;
/// assert_eq!(json["originatingMessageId"], "8085a2b4c1");
/// assert_eq!(json["buttonResponse"]["type"], "QuickReply");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundStructuredResponse {
    channel: InboundChannel,
    button_response: InboundButtonResponse,
    originating_message_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct InboundButtonResponse {
    #[serde(rename = "type")]
    kind: ButtonResponseKind,
    text: String,
    payload: String,
}

impl InboundStructuredResponse {
    /// The customer `from_id` chose the button or quick reply labelled `text` with
    /// `payload`, answering the outbound message `originating_message_id` (its `id`, as
    /// the webhook delivered it).
    pub fn new(
        from_id: &str,
        originating_message_id: impl Into<String>,
        kind: ButtonResponseKind,
        text: impl Into<String>,
        payload: impl Into<String>,
    ) -> Self {
        let mut channel = InboundChannel::now();
        channel.from = Some(customer(from_id));
        channel.message_id = Some(random_id());
        Self {
            channel,
            button_response: InboundButtonResponse {
                kind,
                text: text.into(),
                payload: payload.into(),
            },
            originating_message_id: originating_message_id.into(),
        }
    }

    /// Uses `id` as the provider message id (`channel.messageId`) instead of a random
    /// one.
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.channel.message_id = Some(id.into());
        self
    }
}

/// What an inbound attachment is (`attachment.mediaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum MediaType {
    /// A picture.
    Image,
    /// A video.
    Video,
    /// A sound.
    Audio,
    /// Any other file.
    File,
    /// A link.
    Link,
}

impl MediaType {
    /// The type as Genesys spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Image => "Image",
            Self::Video => "Video",
            Self::Audio => "Audio",
            Self::File => "File",
            Self::Link => "Link",
        }
    }
}

impl std::str::FromStr for MediaType {
    type Err = String;

    /// In any case: `image`, `Video`, …
    fn from_str(text: &str) -> Result<Self, String> {
        [
            Self::Image,
            Self::Video,
            Self::Audio,
            Self::File,
            Self::Link,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| "expected one of Image, Video, Audio, File, Link".to_owned())
    }
}

/// Events from the customer (`OpenInboundNormalizedEvent`), such as typing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundEvent {
    channel: InboundChannel,
    events: Vec<Event>,
}

impl InboundEvent {
    /// The customer `from_id` started typing.
    pub fn typing_on(from_id: &str) -> Self {
        let mut channel = InboundChannel::now();
        channel.from = Some(customer(from_id));
        Self {
            channel,
            events: vec![Event {
                event_type: EventType::Typing,
                typing: Some(Typing {
                    kind: TypingType::On,
                    duration: None,
                    extra: Map::new(),
                }),
                extra: Map::new(),
            }],
        }
    }
}

/// 16 random bytes as hex, for message ids.
fn random_id() -> String {
    const_hex::encode(crate::random::bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_peek_agrees_with_the_typed_message() {
        for body in [
            r#"{"id":"1","type":"Text","direction":"Outbound","channel":{"to":{"id":"c"}}}"#,
            r#"{"id":"2","type":"Structured","channel":{"platform":"Open","to":{"id":"c","idType":"Opaque"}},"content":[]}"#,
            r#"{"id":"3","type":"Text","direction":"Inbound","channel":{"to":{"id":"c"}}}"#,
            r#"{"id":"4","type":"Receipt","status":"Delivered","channel":{"to":{"id":"c"}}}"#,
            r#"{"type":"Text","channel":{"to":{"id":"c"}}}"#,
            r#"{"id":"6","type":"Text","channel":{}}"#,
            r#"{"id":"7\u00e9","type":"Text","channel":{"to":{"id":"c\"q"}}}"#,
            r#"{"event":"routing:conversation:updated"}"#,
            "not json",
        ] {
            let typed = OpenMessage::from_slice(body.as_bytes())
                .ok()
                .and_then(|m| InboundReceipt::delivered_for(&m));
            let peeked = InboundReceipt::delivered_for_body(body.as_bytes());
            let strip = |r: Option<InboundReceipt>| {
                r.map(|r| (r.id, r.channel.to.and_then(|t| t.id), r.status))
            };
            assert_eq!(strip(peeked), strip(typed), "{body}");
        }
    }
}
