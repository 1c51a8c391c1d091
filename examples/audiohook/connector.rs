//! Audio Connector: every DTMF digit is answered with a short tone of that key on the
//! caller's channel; `#` ends the session with `disconnect` reason `completed` and the
//! digits before it in the output variable `digits`, for Architect.

use std::collections::BTreeMap;

use genesys_webhook::audiohook::codec;
use genesys_webhook::audiohook::protocol::{
    BotTurnDisposition, BotTurnResponse, DisconnectReason, EventEntity, MediaChannel, MediaFormat,
};
use genesys_webhook::audiohook::session::{OpenReply, OpenRequest, SessionEvent};
use genesys_webhook::audiohook::SessionControl;

/// The most digits kept until `#`; further ones are not kept (a stuck key cannot grow it).
const MAX_DIGITS: usize = 32;

pub struct Connector {
    format: Option<MediaFormat>,
    digits: String,
}

impl Connector {
    /// Takes the first supported offer that carries the caller's channel.
    pub fn open(request: &OpenRequest) -> (Self, OpenReply) {
        let media = request
            .offers()
            .iter()
            .find(|m| m.is_supported() && m.channels.contains(&MediaChannel::External))
            .cloned();
        let connector = Self {
            format: media.as_ref().map(|m| m.format),
            digits: String::new(),
        };
        (connector, request.accept_media(media))
    }

    pub async fn event(&mut self, event: SessionEvent, session: &SessionControl) {
        let SessionEvent::Dtmf(digit) = event else {
            tracing::debug!(?event, "session event");
            return;
        };
        // Keypad digits can be a card number (PCI DSS): never above DEBUG.
        tracing::debug!(%digit, "DTMF");
        if digit == '#' {
            let digits = std::mem::take(&mut self.digits);
            // Architect's bot reporting: the turn matched the digits (the text is
            // withheld: digits may be a card number).
            let turn = BotTurnResponse::new(BotTurnDisposition::Match).confidence(1.0);
            let _ = session
                .send_event(vec![EventEntity::BotTurnResponse(turn)])
                .await;
            let mut variables = BTreeMap::new();
            variables.insert("digits".to_owned(), digits);
            let _ = session
                .disconnect(DisconnectReason::Completed, None, Some(variables))
                .await;
            return;
        }
        if self.digits.len() < MAX_DIGITS {
            self.digits.push(digit);
        }
        let (Some(format), Some(frequencies)) = (self.format, codec::dtmf_frequencies(digit))
        else {
            return;
        };
        // 150 ms of the key's two tones, in the selected format.
        let tone = codec::tone(&frequencies, 150, 0.3);
        let audio = format.encode(&tone);
        let _ = session.send_audio(audio).await;
    }
}
