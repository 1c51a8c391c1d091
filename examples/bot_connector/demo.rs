//! The demo bot: `demo-bot`, version `1`, `en-us`, intents `Greeting`, `Menu`,
//! `Goodbye`.

use std::time::Duration;

use genesys_webhook::botconnector::{
    Bot, BotHandler, BotVersion, QuickReply, TurnRequest, TurnResponse,
};

pub struct DemoBot;

impl BotHandler for DemoBot {
    fn bots(&self) -> Vec<Bot> {
        vec![Bot::new("demo-bot", "Demo bot")
            .description("Echoes, shows a menu, says goodbye")
            .version(BotVersion::new(
                "1",
                ["en-us"],
                ["Greeting", "Menu", "Goodbye"],
            ))]
    }

    async fn turn(&self, turn: TurnRequest) -> TurnResponse {
        if let Some(payload) = turn.button_payload() {
            return TurnResponse::more_data().text(payload);
        }
        let text = turn.text().unwrap_or_default();
        match text.trim().to_lowercase().as_str() {
            "menu" => TurnResponse::more_data().quick_replies(
                "How can we help?",
                [
                    QuickReply::new("Sales", "sales"),
                    QuickReply::new("Support", "support"),
                ],
            ),
            "bye" => TurnResponse::complete("Goodbye")
                .text("Goodbye!")
                .parameter("lastMessage", text),
            "slow" => {
                // A backend slower than the turn's deadline.
                tokio::time::sleep(Duration::from_secs(60)).await;
                TurnResponse::more_data().text("finally")
            }
            _ => TurnResponse::more_data().text(text),
        }
    }
}
