//! Transcription Connector: the library's `TranscriptionHandler` does the work (the
//! reference's voice-activity detector on each channel, one final transcript per
//! utterance on the stream timeline). What plugs in here is the transcriber.
//!
//! The transcriber below is a SIMULATION: it returns fixed sentences and never looks
//! at the audio. A real speech engine implements `Transcriber`: it asks for the audio
//! (`wants_audio`, the default), receives each channel at 16 kHz as it arrives
//! (`audio`), and gives the text of each utterance when the detector says it ended
//! (`utterance`).

use genesys_webhook::audiohook::transcription::{ChannelUtterance, Transcriber};

/// Languages listed in `opened` when Genesys asks.
const LANGUAGES: &[&str] = &[
    "en-US", "en-GB", "en-AU", "fr-FR", "fr-CA", "de-DE", "es-ES", "pt-BR",
];

/// Fixed sentences in turn: a stand-in for a speech engine, not one.
#[derive(Default)]
pub struct SimulatedTranscriber {
    turn: usize,
}

const SENTENCES: &[&str] = &[
    "hello thank you for calling",
    "I would like to check my balance",
    "one moment please",
    "is there anything else I can help with",
];

impl Transcriber for SimulatedTranscriber {
    fn wants_audio(&self) -> bool {
        false
    }

    fn supported_languages(&self) -> Option<Vec<String>> {
        Some(LANGUAGES.iter().map(|l| (*l).to_owned()).collect())
    }

    async fn utterance(&mut self, _: ChannelUtterance, _: Option<&str>) -> Option<(String, f64)> {
        self.turn += 1;
        Some((SENTENCES[self.turn % SENTENCES.len()].to_owned(), 0.9))
    }
}
