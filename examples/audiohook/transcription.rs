//! Transcription Connector: an energy voice-activity detector over each channel (the
//! one Genesys' reference test endpoint uses) cuts the audio into utterances, and a
//! [`Transcriber`] turns each into text, sent as one final transcript `event`.
//!
//! The transcriber here is a SIMULATION: it returns fixed sentences and never looks
//! at the audio. A real speech engine implements [`Transcriber`]: it asks for the audio
//! (`wants_audio`), receives it at 16 kHz as it arrives, and gives the text of each
//! utterance when the detector says it ended.

use std::future::Future;
use std::time::Duration;

use genesys_webhook::audiohook::codec::{self, Upsampler};
use genesys_webhook::audiohook::protocol::{
    Alternative, EventEntity, Interpretation, InterpretationKind, MediaChannel, MediaFormat, Token,
    TokenKind, Transcript,
};
use genesys_webhook::audiohook::session::{AudioFrame, OpenReply, OpenRequest, SessionEvent};
use genesys_webhook::audiohook::vad::{Utterance, VoiceActivityDetector};
use genesys_webhook::audiohook::SessionControl;

/// Languages listed in `opened` when Genesys asks.
pub const LANGUAGES: &[&str] = &[
    "en-US", "en-GB", "en-AU", "fr-FR", "fr-CA", "de-DE", "es-ES", "pt-BR",
];

/// Where a real speech engine plugs in.
pub trait Transcriber: Send + 'static {
    /// Whether the engine wants the audio. The simulation does not.
    fn wants_audio(&self) -> bool {
        true
    }

    /// Audio of one channel at 16 kHz, as it arrives.
    fn audio(&mut self, channel: MediaChannel, samples: &[i16]) {
        let _ = (channel, samples);
    }

    /// The utterance on `channel` ended: its text and confidence, if any.
    fn utterance(
        &mut self,
        channel: MediaChannel,
        utterance: Utterance,
        language: Option<&str>,
    ) -> impl Future<Output = Option<(String, f64)>> + Send;
}

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

    async fn utterance(
        &mut self,
        _: MediaChannel,
        _: Utterance,
        _: Option<&str>,
    ) -> Option<(String, f64)> {
        self.turn += 1;
        Some((SENTENCES[self.turn % SENTENCES.len()].to_owned(), 0.9))
    }
}

/// One channel's detector, and where on the stream it started.
struct Lane {
    channel: MediaChannel,
    vad: VoiceActivityDetector,
    /// Stream position of the detector's zero.
    base: Duration,
    upsampler: Option<Box<Upsampler>>,
}

pub struct Transcription<T> {
    lanes: Vec<Lane>,
    language: Option<String>,
    transcriber: T,
    /// The next frame restarts the detectors (after a pause, a discard or an update).
    restart: bool,
}

impl<T: Transcriber> Transcription<T> {
    /// Takes the first stereo offer, else the first supported one.
    pub fn open(request: &OpenRequest, transcriber: T) -> (Self, OpenReply) {
        let media = request
            .first_with_channels(2)
            .or(request.selected())
            .cloned();
        let lanes = media
            .as_ref()
            .map(|m| {
                m.channels
                    .iter()
                    .map(|channel| Lane {
                        channel: *channel,
                        vad: VoiceActivityDetector::new(),
                        base: Duration::ZERO,
                        upsampler: transcriber.wants_audio().then(Box::default),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let reply = request.accept_media(media);
        let this = Self {
            lanes,
            language: request.parameters.language.clone(),
            transcriber,
            restart: false,
        };
        (this, reply)
    }

    pub async fn audio(&mut self, frame: &AudioFrame, session: &SessionControl) {
        if self.restart {
            for lane in &mut self.lanes {
                lane.base = frame.position;
            }
            self.restart = false;
        }
        let mut ended = Vec::new();
        for lane in &mut self.lanes {
            let Some(raw) = frame.channel(lane.channel) else {
                continue;
            };
            // The detector works on μ-law bytes, as the reference's does.
            let mulaw = match frame.format() {
                MediaFormat::Pcmu => raw,
                _ => codec::encode_mulaw_slice(&codec::decode_l16(&raw)).into(),
            };
            if let Some(upsampler) = &mut lane.upsampler {
                let mut wide = Vec::with_capacity(mulaw.len() * 2);
                upsampler.process(&codec::decode_mulaw_slice(&mulaw), &mut wide);
                self.transcriber.audio(lane.channel, &wide);
            }
            for utterance in lane.vad.push(&mulaw) {
                ended.push((lane.channel, lane.base, utterance));
            }
        }
        self.transcribe(ended, session).await;
    }

    pub async fn event(&mut self, event: SessionEvent, session: &SessionControl) {
        match event {
            SessionEvent::Paused | SessionEvent::Resumed(_) | SessionEvent::Discarded(_) => {
                self.flush(session).await;
            }
            SessionEvent::Update { language } => {
                self.flush(session).await;
                tracing::info!(?language, "language updated");
                self.language = language;
            }
            other => tracing::debug!(?other, "session event"),
        }
    }

    /// Ends the utterances under way (pause, discard, update, close); the detectors
    /// restart with the next frame.
    pub async fn flush(&mut self, session: &SessionControl) {
        let ended: Vec<_> = self
            .lanes
            .iter_mut()
            .filter_map(|lane| lane.vad.finish().map(|u| (lane.channel, lane.base, u)))
            .collect();
        self.restart = true;
        self.transcribe(ended, session).await;
    }

    async fn transcribe(
        &mut self,
        ended: Vec<(MediaChannel, Duration, Utterance)>,
        session: &SessionControl,
    ) {
        for (channel, base, utterance) in ended {
            let language = self.language.as_deref();
            let Some((text, confidence)) = self
                .transcriber
                .utterance(channel, utterance, language)
                .await
            else {
                continue;
            };
            let transcript = transcript(
                channel,
                base + utterance.start,
                utterance.duration(),
                &text,
                confidence,
                language,
            );
            if session
                .send_event(vec![EventEntity::Transcript(transcript)])
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// A final transcript with one token a word, the words spread evenly.
fn transcript(
    channel: MediaChannel,
    offset: Duration,
    duration: Duration,
    text: &str,
    confidence: f64,
    language: Option<&str>,
) -> Transcript {
    let words: Vec<&str> = text.split_whitespace().collect();
    let each = duration / u32::try_from(words.len().max(1)).unwrap_or(1);
    let tokens = words
        .iter()
        .enumerate()
        .map(|(i, word)| Token {
            kind: TokenKind::Word,
            value: (*word).to_owned(),
            confidence,
            offset: offset + each * u32::try_from(i).unwrap_or(0),
            duration: each,
            language: None,
        })
        .collect();
    Transcript {
        id: uuid::Uuid::new_v4().to_string(),
        channel_id: channel.id(),
        is_final: true,
        offset: Some(offset),
        duration: Some(duration),
        alternatives: vec![Alternative {
            confidence,
            languages: language.map(|l| vec![l.to_owned()]),
            interpretations: vec![Interpretation {
                kind: InterpretationKind::Display,
                transcript: text.to_owned(),
                tokens: Some(tokens),
            }],
        }],
    }
}
