//! What the bot answers to a turn, with builders for the common answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::entity::Entity;
use crate::wire::{string_enum, Extra};

string_enum! {
    /// Where the bot session stands after a turn (`botState`).
    BotState {
        /// The bot is done: Architect takes the `intent`'s path.
        Complete = "Complete",
        /// The bot failed: Architect takes the failure path.
        Failed = "Failed",
        /// The bot waits for the customer's next message.
        MoreData = "MoreData",
    }
}

string_enum! {
    /// What a reply message is (`replyMessages[].type`).
    ReplyType {
        /// Text.
        Text = "Text",
        /// Quick replies, cards, a carousel, a date picker.
        Structured = "Structured",
    }
}

string_enum! {
    /// Which field of a [`ReplyContent`] is set (`contentType`).
    ReplyContentType {
        /// A quick reply.
        QuickReply = "QuickReply",
        /// A card.
        Card = "Card",
        /// A carousel of cards.
        Carousel = "Carousel",
        /// A titled list of quick replies.
        QuickReplyV2 = "QuickReplyV2",
        /// A date picker.
        DatePicker = "DatePicker",
    }
}

/// The bot's answer to one turn.
///
/// Build one with [`more_data`](Self::more_data), [`complete`](Self::complete) or
/// [`failed`](Self::failed), then add replies:
///
/// ```
/// use genesys_webhook::botconnector::{QuickReply, TurnResponse};
///
/// let answer = TurnResponse::more_data()
///     .text("How can I help?")
///     .quick_replies("Choose one", [QuickReply::new("Sales", "sales"), QuickReply::new("Support", "support")]);
/// let json = serde_json::to_value(&answer)?;
/// assert_eq!(json["botState"], "MoreData");
/// assert_eq!(json["replyMessages"][1]["content"][1]["quickReply"]["payload"], "support");
///
/// let done = TurnResponse::complete("Goodbye").text("Bye!").parameter("lastMessage", "bye");
/// assert_eq!(serde_json::to_value(&done)?["intent"], "Goodbye");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TurnResponse {
    /// Where the session stands.
    pub bot_state: BotState,
    /// What to show the customer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_messages: Vec<ReplyMessage>,
    /// The intent recognised: required with `Complete`, and one of the bot's declared
    /// intents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// How sure the bot is of the intent, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The intent's slots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Entity>,
    /// Output parameters, given back to Architect.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Why the bot failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_info: Option<ErrorInfo>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl TurnResponse {
    fn with_state(bot_state: BotState) -> Self {
        Self {
            bot_state,
            reply_messages: Vec::new(),
            intent: None,
            confidence: None,
            entities: Vec::new(),
            parameters: BTreeMap::new(),
            error_info: None,
            extra: Extra::new(),
        }
    }

    /// `MoreData`: the bot waits for the customer's next message.
    pub fn more_data() -> Self {
        Self::with_state(BotState::MoreData)
    }

    /// `Complete` with `intent`, one of the bot's declared intents.
    pub fn complete(intent: impl Into<String>) -> Self {
        let mut response = Self::with_state(BotState::Complete);
        response.intent = Some(intent.into());
        response
    }

    /// `Failed`, saying why.
    pub fn failed(error: ErrorInfo) -> Self {
        let mut response = Self::with_state(BotState::Failed);
        response.error_info = Some(error);
        response
    }

    /// Adds a `Text` reply.
    #[must_use]
    pub fn text(self, text: impl Into<String>) -> Self {
        self.reply(ReplyMessage::text(text))
    }

    /// Adds a `Structured` reply: `prompt` with quick replies.
    #[must_use]
    pub fn quick_replies(
        self,
        prompt: impl Into<String>,
        replies: impl IntoIterator<Item = QuickReply>,
    ) -> Self {
        self.reply(ReplyMessage::quick_replies(prompt, replies))
    }

    /// Adds a reply message.
    #[must_use]
    pub fn reply(mut self, message: ReplyMessage) -> Self {
        self.reply_messages.push(message);
        self
    }

    /// Sets how sure the bot is of the intent (0 to 1).
    #[must_use]
    pub fn confidence(mut self, confidence: f64) -> Self {
        self.confidence = Some(confidence);
        self
    }

    /// Adds a slot entity.
    #[must_use]
    pub fn entity(mut self, entity: Entity) -> Self {
        self.entities.push(entity);
        self
    }

    /// Sets an output parameter.
    #[must_use]
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// Parses an answer.
    ///
    /// # Errors
    ///
    /// When the body is not JSON or not a turn response.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// One message shown to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ReplyMessage {
    /// What it is.
    #[serde(rename = "type")]
    pub kind: ReplyType,
    /// Its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its rich content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ReplyContent>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ReplyMessage {
    /// A `Text` message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: ReplyType::Text,
            text: Some(text.into()),
            content: Vec::new(),
            extra: Extra::new(),
        }
    }

    /// A `Structured` message with `content`.
    pub fn structured(
        text: Option<String>,
        content: impl IntoIterator<Item = ReplyContent>,
    ) -> Self {
        Self {
            kind: ReplyType::Structured,
            text,
            content: content.into_iter().collect(),
            extra: Extra::new(),
        }
    }

    /// `prompt` with quick replies.
    pub fn quick_replies(
        prompt: impl Into<String>,
        replies: impl IntoIterator<Item = QuickReply>,
    ) -> Self {
        Self::structured(
            Some(prompt.into()),
            replies.into_iter().map(ReplyContent::quick_reply),
        )
    }
}

/// One content element of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ReplyContent {
    /// Which field below is set.
    pub content_type: ReplyContentType,
    /// A quick reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quick_reply: Option<QuickReply>,
    /// A card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// A carousel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carousel: Option<Carousel>,
    /// A titled list of quick replies.
    #[serde(
        default,
        rename = "quickReplyV2",
        skip_serializing_if = "Option::is_none"
    )]
    pub quick_reply_v2: Option<QuickReplyV2>,
    /// A date picker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_picker: Option<DatePicker>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ReplyContent {
    fn empty(content_type: ReplyContentType) -> Self {
        Self {
            content_type,
            quick_reply: None,
            card: None,
            carousel: None,
            quick_reply_v2: None,
            date_picker: None,
            extra: Extra::new(),
        }
    }

    /// A quick reply.
    pub fn quick_reply(reply: QuickReply) -> Self {
        Self {
            quick_reply: Some(reply),
            ..Self::empty(ReplyContentType::QuickReply)
        }
    }

    /// A card.
    pub fn card(card: Card) -> Self {
        Self {
            card: Some(card),
            ..Self::empty(ReplyContentType::Card)
        }
    }

    /// A carousel of cards.
    pub fn carousel(cards: impl IntoIterator<Item = Card>) -> Self {
        Self {
            carousel: Some(Carousel {
                cards: cards.into_iter().collect(),
                extra: Extra::new(),
            }),
            ..Self::empty(ReplyContentType::Carousel)
        }
    }

    /// A titled list of quick replies.
    pub fn quick_reply_v2(
        title: impl Into<String>,
        actions: impl IntoIterator<Item = QuickReply>,
    ) -> Self {
        Self {
            quick_reply_v2: Some(QuickReplyV2 {
                title: title.into(),
                actions: actions.into_iter().collect(),
                extra: Extra::new(),
            }),
            ..Self::empty(ReplyContentType::QuickReplyV2)
        }
    }

    /// A date picker.
    pub fn date_picker(picker: DatePicker) -> Self {
        Self {
            date_picker: Some(picker),
            ..Self::empty(ReplyContentType::DatePicker)
        }
    }
}

/// A quick reply offered to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QuickReply {
    /// The label shown.
    pub text: String,
    /// What comes back when it is chosen.
    pub payload: String,
    /// An image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Message` (the only action known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A shorter text for the transcript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_text: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl QuickReply {
    /// A quick reply labelled `text` that sends back `payload`.
    pub fn new(text: impl Into<String>, payload: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            payload: payload.into(),
            image: None,
            action: Some("Message".to_owned()),
            summary_text: None,
            extra: Extra::new(),
        }
    }
}

/// A card: a title, media and buttons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Card {
    /// The title.
    pub title: String,
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
    #[serde(default)]
    pub actions: Vec<CardAction>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Card {
    /// A card titled `title` with `actions`.
    pub fn new(title: impl Into<String>, actions: impl IntoIterator<Item = CardAction>) -> Self {
        Self {
            title: title.into(),
            actions: actions.into_iter().collect(),
            ..Self::default()
        }
    }
}

/// A button on a card.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CardAction {
    /// `Link` or `Postback`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The label.
    pub text: String,
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

impl CardAction {
    /// A `Postback` button sending `payload`.
    pub fn postback(text: impl Into<String>, payload: impl Into<String>) -> Self {
        Self {
            kind: "Postback".to_owned(),
            text: text.into(),
            payload: Some(payload.into()),
            ..Self::default()
        }
    }

    /// A `Link` button opening `url`.
    pub fn link(text: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            kind: "Link".to_owned(),
            text: text.into(),
            url: Some(url.into()),
            ..Self::default()
        }
    }
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

/// A titled list of quick replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QuickReplyV2 {
    /// The title.
    pub title: String,
    /// The replies.
    #[serde(default)]
    pub actions: Vec<QuickReply>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A date picker: times the customer may choose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DatePicker {
    /// The title.
    pub title: String,
    /// A subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    /// The times offered.
    #[serde(default)]
    pub available_times: Vec<AvailableTime>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl DatePicker {
    /// A picker titled `title` offering `times`.
    pub fn new(title: impl Into<String>, times: impl IntoIterator<Item = AvailableTime>) -> Self {
        Self {
            title: title.into(),
            available_times: times.into_iter().collect(),
            ..Self::default()
        }
    }
}

/// A time offered by a [`DatePicker`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AvailableTime {
    /// When, ISO 8601.
    pub date_time: String,
    /// For how long, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl AvailableTime {
    /// `date_time` (ISO 8601) for `duration_seconds`.
    pub fn new(date_time: impl Into<String>, duration_seconds: u64) -> Self {
        Self {
            date_time: date_time.into(),
            duration: Some(duration_seconds),
            extra: Extra::new(),
        }
    }
}

/// Why a bot failed (`errorInfo`).
///
/// Read in either spelling, `{"errorCode","errorMessage"}` (what bots send) or
/// `{"code","message"}` (the Platform API's model); written as
/// `{"errorCode","errorMessage"}`.
///
/// ```
/// use genesys_webhook::botconnector::ErrorInfo;
///
/// let a: ErrorInfo = serde_json::from_str(r#"{"errorCode":"E1","errorMessage":"down"}"#)?;
/// let b: ErrorInfo = serde_json::from_str(r#"{"code":"E1","message":"down"}"#)?;
/// assert_eq!(a, b);
/// assert_eq!(serde_json::to_string(&a)?, r#"{"errorCode":"E1","errorMessage":"down"}"#);
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// A short code.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// Fields this version does not name.
    pub extra: Extra,
}

impl ErrorInfo {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            extra: Extra::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorInfoWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(flatten)]
    extra: Extra,
}

impl Serialize for ErrorInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ErrorInfoWire {
            error_code: Some(self.code.clone()),
            error_message: Some(self.message.clone()),
            code: None,
            message: None,
            extra: self.extra.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ErrorInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ErrorInfoWire::deserialize(deserializer)?;
        Ok(Self {
            code: wire.error_code.or(wire.code).unwrap_or_default(),
            message: wire.error_message.or(wire.message).unwrap_or_default(),
            extra: wire.extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_complete_answer_with_rich_content_and_writes_it_back_unchanged() {
        let text = r#"{"botState":"Complete","intent":"OrderCookie","confidence":0.5,
          "replyMessages":[{"type":"Text","text":"ordered"},
            {"type":"Structured","text":"What next?","content":[
              {"contentType":"QuickReply","quickReply":{"text":"Cookie","payload":"cookie","action":"Message"}},
              {"contentType":"Card","card":{"title":"T","actions":[{"type":"Link","text":"Go","url":"https://example.com"}]}},
              {"contentType":"Carousel","carousel":{"cards":[{"title":"A","actions":[]}]}},
              {"contentType":"QuickReplyV2","quickReplyV2":{"title":"Pick","actions":[{"text":"X","payload":"x"}]}},
              {"contentType":"DatePicker","datePicker":{"title":"When","availableTimes":[{"dateTime":"2026-12-08T10:00:00Z","duration":1800}]}},
              {"contentType":"Shiny","shiny":{"a":1}}]}],
          "parameters":{"out":"1"},"futureField":true}"#;
        let answer = TurnResponse::from_slice(text.as_bytes()).unwrap();
        assert_eq!(answer.bot_state, BotState::Complete);
        let content = &answer.reply_messages[1].content;
        assert_eq!(
            content[3].quick_reply_v2.as_ref().unwrap().actions[0].payload,
            "x"
        );
        assert_eq!(
            content[4].date_picker.as_ref().unwrap().available_times[0].duration,
            Some(1800)
        );
        assert_eq!(content[5].content_type.as_str(), "Shiny");
        assert!(answer.extra.contains_key("futureField"));
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&answer).unwrap(), original);
    }

    #[test]
    fn a_failed_answer_carries_its_error_in_the_bots_spelling() {
        let json = serde_json::to_value(TurnResponse::failed(ErrorInfo::new("E", "m"))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"botState":"Failed","errorInfo":{"errorCode":"E","errorMessage":"m"}})
        );
    }
}
