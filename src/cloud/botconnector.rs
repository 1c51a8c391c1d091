//! The Digital Bot Connector's asynchronous reply API (preview).

use http::Method;
use serde::Deserialize;

use super::client::GenesysCloud;
use super::error::CloudError;
use crate::botconnector::{TurnRequest, TurnResponse};

const PATH: &str = "/api/v2/integrations/botconnectors/outgoing/messages";

/// The Digital Bot Connector's outgoing-messages API (`POST
/// /api/v2/integrations/botconnectors/outgoing/messages`): a bot answers a session
/// after its turn was answered. Built with [`GenesysCloud::bot_connector`].
///
/// **Preview.** Genesys marks the API preview, and does not document how a turn
/// says that it will be answered later: build nothing on it beyond this call. The
/// OAuth client needs the `integration:botconnector:send` permission.
#[derive(Debug, Clone, Copy)]
pub struct BotConnectorApi<'a> {
    cloud: &'a GenesysCloud,
}

/// An answer sent to a bot session after its turn.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutgoingMessage {
    /// The bot's id.
    pub bot_id: String,
    /// The bot's version.
    pub bot_version: String,
    /// The session answered.
    pub bot_session_id: String,
    /// The session's language.
    pub language_code: String,
    /// The answer: state, replies, intent, entities, parameters.
    pub answer: TurnResponse,
}

impl OutgoingMessage {
    /// An answer to the session `turn` belongs to.
    pub fn reply_to(turn: &TurnRequest, answer: TurnResponse) -> Self {
        Self {
            bot_id: turn.bot_id.clone(),
            bot_version: turn.bot_version.clone().unwrap_or_default(),
            bot_session_id: turn.bot_session_id.clone(),
            language_code: turn.language_code.clone().unwrap_or_default(),
            answer,
        }
    }

    /// The request body, in the Platform API's spelling (`errorInfo` as
    /// `{"code","message"}`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::to_value(&self.answer).unwrap_or_default();
        if let Some(object) = body.as_object_mut() {
            object.insert("botId".into(), self.bot_id.clone().into());
            object.insert("botVersion".into(), self.bot_version.clone().into());
            object.insert("botSessionId".into(), self.bot_session_id.clone().into());
            object.insert("languageCode".into(), self.language_code.clone().into());
            if let Some(error) = &self.answer.error_info {
                object.insert(
                    "errorInfo".into(),
                    serde_json::json!({ "code": error.code, "message": error.message }),
                );
            }
        }
        body
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    #[serde(default)]
    message_id: Option<String>,
}

impl<'a> BotConnectorApi<'a> {
    pub(crate) fn new(cloud: &'a GenesysCloud) -> Self {
        Self { cloud }
    }

    /// Sends `message`; returns the id Genesys gave it, if it gave one.
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API (403 without the permission).
    pub async fn send(&self, message: &OutgoingMessage) -> Result<Option<String>, CloudError> {
        let body = serde_json::to_vec(&message.to_json()).unwrap_or_default();
        let sent: Sent = self.cloud.api_json(Method::POST, PATH, Some(body)).await?;
        Ok(sent.message_id)
    }
}

impl GenesysCloud {
    /// The Digital Bot Connector's asynchronous reply API (preview).
    pub fn bot_connector(&self) -> BotConnectorApi<'_> {
        BotConnectorApi::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::botconnector::{ErrorInfo, InputMessage};

    #[test]
    fn writes_the_session_and_the_platform_spelling_of_errors() {
        let turn = TurnRequest::new("b", "s", InputMessage::text("hi"))
            .bot_version("1")
            .language_code("en-us");
        let message =
            OutgoingMessage::reply_to(&turn, TurnResponse::failed(ErrorInfo::new("E", "m")));
        assert_eq!(
            message.to_json(),
            serde_json::json!({"botId":"b","botVersion":"1","botSessionId":"s","languageCode":"en-us",
                "botState":"Failed","errorInfo":{"code":"E","message":"m"}})
        );
    }
}
