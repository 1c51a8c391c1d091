//! What Genesys sends for each customer turn (`POST {base}/messages`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::{string_enum, Extra};

string_enum! {
    /// What an input message is (`inputMessage.type`).
    InputType {
        /// Text typed by the customer.
        Text = "Text",
        /// Content: a button response or an attachment, possibly with text.
        Structured = "Structured",
        /// An event.
        Event = "Event",
    }
}

string_enum! {
    /// Which field of an [`InputContent`] is set (`contentType`).
    InputContentType {
        /// The customer chose a quick reply or a button.
        ButtonResponse = "ButtonResponse",
        /// The customer sent a file, image or video.
        Attachment = "Attachment",
    }
}

/// One customer turn, as Genesys Cloud sends it to the bot (`IncomingMessageRequest`).
///
/// Lenient on input: only `botId`, `botSessionId` and `inputMessage` are required,
/// fields this version does not name are kept in `extra`.
///
/// ```
/// use genesys_webhook::botconnector::TurnRequest;
///
/// let turn = TurnRequest::from_slice(
///     br#"{"botId":"demo-bot","botVersion":"1","botSessionId":"s-1","messageId":"m-1",
///          "inputMessage":{"type":"Text","text":"menu"},"languageCode":"en-us",
///          "botSessionTimeout":60,"genesysConversationId":"c-1",
///          "parameters":{"customerTier":"gold"}}"#,
/// )?;
/// assert_eq!(turn.text(), Some("menu"));
/// assert_eq!(turn.parameters["customerTier"], "gold");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TurnRequest {
    /// The bot's id, as the bot listing gave it.
    pub bot_id: String,
    /// The bot's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_version: Option<String>,
    /// The bot session: the same for every turn of one conversation with the bot.
    pub bot_session_id: String,
    /// This turn's message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// What the customer sent.
    pub input_message: InputMessage,
    /// The conversation's language, such as `en-us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    /// How long, in minutes, the bot session lives without a turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_session_timeout: Option<u64>,
    /// The Genesys Cloud conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesys_conversation_id: Option<String>,
    /// Architect's session variables given to the bot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl TurnRequest {
    /// Parses a turn.
    ///
    /// # Errors
    ///
    /// When the body is not JSON or lacks `botId`, `botSessionId` or `inputMessage`, or
    /// a field has the wrong shape.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// A turn carrying `input`, as Genesys would send it: for tests and clients.
    pub fn new(
        bot_id: impl Into<String>,
        bot_session_id: impl Into<String>,
        input: InputMessage,
    ) -> Self {
        Self {
            bot_id: bot_id.into(),
            bot_version: None,
            bot_session_id: bot_session_id.into(),
            message_id: None,
            input_message: input,
            language_code: None,
            bot_session_timeout: None,
            genesys_conversation_id: None,
            parameters: BTreeMap::new(),
            extra: Extra::new(),
        }
    }

    /// Sets `botVersion`.
    #[must_use]
    pub fn bot_version(mut self, version: impl Into<String>) -> Self {
        self.bot_version = Some(version.into());
        self
    }

    /// Sets `languageCode`.
    #[must_use]
    pub fn language_code(mut self, code: impl Into<String>) -> Self {
        self.language_code = Some(code.into());
        self
    }

    /// Sets `messageId`.
    #[must_use]
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// The customer's text, if the turn has one.
    pub fn text(&self) -> Option<&str> {
        self.input_message.text.as_deref()
    }

    /// The payload of the button or quick reply the customer chose, if any.
    pub fn button_payload(&self) -> Option<&str> {
        self.input_message
            .content
            .iter()
            .find_map(|c| c.button_response.as_ref()?.payload.as_deref())
    }
}

/// What the customer sent in a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InputMessage {
    /// What it is.
    #[serde(rename = "type")]
    pub kind: InputType,
    /// Its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Button responses and attachments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<InputContent>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

impl InputMessage {
    /// A `Text` input.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: InputType::Text,
            text: Some(text.into()),
            content: Vec::new(),
            extra: Extra::new(),
        }
    }

    /// A `Structured` input: the customer chose the quick reply `text` with `payload`.
    pub fn button_response(text: impl Into<String>, payload: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            kind: InputType::Structured,
            text: Some(text.clone()),
            content: vec![InputContent {
                content_type: InputContentType::ButtonResponse,
                button_response: Some(ButtonResponse {
                    kind: Some("QuickReply".into()),
                    text: Some(text),
                    payload: Some(payload.into()),
                    extra: Extra::new(),
                }),
                attachment: None,
                extra: Extra::new(),
            }],
            extra: Extra::new(),
        }
    }
}

/// One content element of an input message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InputContent {
    /// Which field below is set.
    pub content_type: InputContentType,
    /// The quick reply or button the customer chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_response: Option<ButtonResponse>,
    /// What the customer attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The quick reply or button the customer chose.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ButtonResponse {
    /// `QuickReply` or `Button`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A file, image or video the customer sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Attachment {
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
    /// Its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Fields this version does not name.
    #[serde(flatten)]
    pub extra: Extra,
}
