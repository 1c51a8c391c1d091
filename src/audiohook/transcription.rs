//! Transcription Connector: each channel cut into utterances by the reference's energy
//! detector, each utterance handed to a [`Transcriber`] (where a speech engine plugs
//! in), one final transcript `event` sent per utterance.
//!
//! [`UtteranceDetector`] is the part with no I/O: it places utterances on the stream
//! timeline, ends them at a pause, an update or the close, and restarts the detectors
//! with the next frame. A `discarded` report ends nothing: the stream goes on. With the `axum` feature,
//! `TranscriptionHandler` is an `AudioHookHandler` that does
//! the whole job.
//!
//! ```
//! use genesys_webhook::audiohook::protocol::{MediaChannel, MediaFormat};
//! use genesys_webhook::audiohook::transcription::UtteranceDetector;
//!
//! let mut detector = UtteranceDetector::new(&[MediaChannel::External]);
//! // Feed it the session's frames (`SessionEvent::Audio`); call `flush` on a pause,
//! // an update and the close.
//! assert!(detector.flush().is_empty());
//! ```

use std::future::Future;
use std::time::Duration;

use super::protocol::{MediaChannel, MediaFormat, Token, TokenKind, Transcript};
use super::session::AudioFrame;
use super::vad::{Utterance, VoiceActivityDetector};

/// An utterance on one channel, on the stream timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelUtterance {
    /// The channel it was heard on.
    pub channel: MediaChannel,
    /// Where it starts and ends on the stream timeline.
    pub utterance: Utterance,
}

struct Lane {
    channel: MediaChannel,
    vad: VoiceActivityDetector,
    /// Stream position of the detector's zero.
    base: Duration,
}

/// One voice-activity detector per channel, placing utterances on the stream timeline.
pub struct UtteranceDetector {
    lanes: Vec<Lane>,
    /// The next frame restarts the detectors' timeline (after a flush).
    restart: bool,
}

impl std::fmt::Debug for UtteranceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtteranceDetector")
            .field("channels", &self.lanes.len())
            .finish_non_exhaustive()
    }
}

impl UtteranceDetector {
    /// Detectors for these channels (the selected media's).
    pub fn new(channels: &[MediaChannel]) -> Self {
        Self {
            lanes: channels
                .iter()
                .map(|channel| Lane {
                    channel: *channel,
                    vad: VoiceActivityDetector::new(),
                    base: Duration::ZERO,
                })
                .collect(),
            restart: false,
        }
    }

    /// Feeds one frame; returns the utterances that ended in it.
    pub fn push(&mut self, frame: &AudioFrame) -> Vec<ChannelUtterance> {
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
                other => MediaFormat::Pcmu.encode(&other.decode(&raw)).into(),
            };
            for utterance in lane.vad.push(&mulaw) {
                ended.push(on_timeline(lane.channel, lane.base, utterance));
            }
        }
        ended
    }

    /// Ends the utterances under way (at a pause, an update, the close);
    /// the detectors restart with the next frame.
    pub fn flush(&mut self) -> Vec<ChannelUtterance> {
        self.restart = true;
        self.lanes
            .iter_mut()
            .filter_map(|lane| {
                let utterance = lane.vad.finish()?;
                Some(on_timeline(lane.channel, lane.base, utterance))
            })
            .collect()
    }
}

fn on_timeline(channel: MediaChannel, base: Duration, utterance: Utterance) -> ChannelUtterance {
    ChannelUtterance {
        channel,
        utterance: Utterance {
            start: base + utterance.start,
            end: base + utterance.end,
        },
    }
}

/// Where a speech engine plugs in.
pub trait Transcriber: Send + 'static {
    /// Whether the engine wants the audio (default yes). An engine that does not
    /// saves the resampling.
    fn wants_audio(&self) -> bool {
        true
    }

    /// The languages the engine transcribes, listed in `opened` when Genesys asks
    /// (`supportedLanguages`; the Transcription Connector's language list). The
    /// default, `None`, lists what the session was configured with.
    fn supported_languages(&self) -> Option<Vec<String>> {
        None
    }

    /// Audio of one channel at 16 kHz, as it arrives.
    fn audio(&mut self, channel: MediaChannel, samples: &[i16]) {
        let _ = (channel, samples);
    }

    /// The utterance on `channel` ended: its text and confidence (0 to 1), if any.
    fn utterance(
        &mut self,
        channel: ChannelUtterance,
        language: Option<&str>,
    ) -> impl Future<Output = Option<(String, f64)>> + Send;
}

/// A unique utterance id: a random (version 4) UUID.
pub fn utterance_id() -> String {
    crate::random::uuid_v4()
}

/// A final transcript of `text` for an utterance, with one token a word, the words
/// spread evenly over it.
pub fn final_transcript(
    heard: ChannelUtterance,
    text: &str,
    confidence: f64,
    language: Option<&str>,
) -> Transcript {
    let offset = heard.utterance.start;
    let duration = heard.utterance.duration();
    let mut transcript = Transcript::final_text(
        utterance_id(),
        heard.channel,
        offset,
        duration,
        text,
        confidence,
        language.map(str::to_owned),
    );
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
    if let Some(interpretation) = transcript
        .alternatives
        .first_mut()
        .and_then(|a| a.interpretations.first_mut())
    {
        interpretation.tokens = Some(tokens);
    }
    transcript
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::handler::TranscriptionHandler;

#[cfg(feature = "axum")]
mod handler {
    use super::*;
    use crate::audiohook::codec::Upsampler;
    use crate::audiohook::protocol::{CloseReason, EventEntity};
    use crate::audiohook::session::{OpenReply, OpenRequest, SessionEvent};
    use crate::audiohook::{AudioHookHandler, SessionControl};

    /// A Transcription Connector session: takes the first stereo offer (else the
    /// first supported one), detects utterances on each channel, asks the
    /// [`Transcriber`] for their text and sends one final transcript each. Pauses,
    /// updates (which change the language) and the close end the utterances under
    /// way; a `discarded` report does not (the stream goes on).
    ///
    /// ```
    /// use genesys_webhook::audiohook::transcription::{ChannelUtterance, Transcriber, TranscriptionHandler};
    /// use genesys_webhook::audiohook::AudioHookUpgrade;
    ///
    /// struct Engine;
    /// impl Transcriber for Engine {
    ///     async fn utterance(&mut self, _: ChannelUtterance, _: Option<&str>) -> Option<(String, f64)> {
    ///         Some(("hello".into(), 0.9)) // ask the speech engine here
    ///     }
    /// }
    ///
    /// async fn ws(upgrade: AudioHookUpgrade) -> axum::response::Response {
    ///     upgrade.serve(TranscriptionHandler::new(Engine))
    /// }
    /// ```
    pub struct TranscriptionHandler<T> {
        transcriber: T,
        detector: UtteranceDetector,
        upsamplers: Vec<(MediaChannel, Upsampler)>,
        language: Option<String>,
    }

    impl<T> std::fmt::Debug for TranscriptionHandler<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TranscriptionHandler")
                .field("language", &self.language)
                .finish_non_exhaustive()
        }
    }

    impl<T: Transcriber> TranscriptionHandler<T> {
        /// A handler that transcribes with `transcriber`.
        pub fn new(transcriber: T) -> Self {
            Self {
                transcriber,
                detector: UtteranceDetector::new(&[]),
                upsamplers: Vec::new(),
                language: None,
            }
        }

        /// The current language.
        pub fn language(&self) -> Option<&str> {
            self.language.as_deref()
        }

        async fn transcribe(&mut self, ended: Vec<ChannelUtterance>, session: &SessionControl) {
            for heard in ended {
                let language = self.language.as_deref();
                let Some((text, confidence)) = self.transcriber.utterance(heard, language).await
                else {
                    continue;
                };
                let transcript = final_transcript(heard, &text, confidence, language);
                if session
                    .send_event(vec![EventEntity::Transcript(transcript)])
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }

        /// Ends the utterances under way and transcribes them.
        pub async fn flush(&mut self, session: &SessionControl) {
            let ended = self.detector.flush();
            self.transcribe(ended, session).await;
        }
    }

    impl<T: Transcriber> AudioHookHandler for TranscriptionHandler<T> {
        async fn open(&mut self, request: &OpenRequest, _: &SessionControl) -> OpenReply {
            let media = request
                .first_with_channels(2)
                .or(request.selected())
                .cloned();
            let channels = media.as_ref().map_or(&[][..], |m| &m.channels[..]);
            self.detector = UtteranceDetector::new(channels);
            if self.transcriber.wants_audio() {
                self.upsamplers = channels.iter().map(|c| (*c, Upsampler::new())).collect();
            }
            self.language.clone_from(&request.parameters.language);
            let reply = request.accept_media(media);
            match self.transcriber.supported_languages() {
                Some(languages) => reply.supported_languages(languages),
                None => reply,
            }
        }

        async fn audio(&mut self, frame: AudioFrame, session: &SessionControl) {
            for (channel, upsampler) in &mut self.upsamplers {
                if let Some(samples) = frame.decoded(*channel) {
                    let mut wide = Vec::with_capacity(samples.len() * 2);
                    upsampler.process(&samples, &mut wide);
                    self.transcriber.audio(*channel, &wide);
                }
            }
            let ended = self.detector.push(&frame);
            self.transcribe(ended, session).await;
        }

        async fn event(&mut self, event: SessionEvent, session: &SessionControl) {
            match event {
                SessionEvent::Paused | SessionEvent::Resumed(_) => {
                    self.flush(session).await;
                }
                // A discard reports audio Genesys did not send; the stream goes on, and
                // so does the utterance under way (the reference server's detectors
                // keep running, and Genesys' suite expects the same transcripts, at the
                // same offsets, with or without it).
                SessionEvent::Discarded(_) => {}
                SessionEvent::Update { language } => {
                    self.flush(session).await;
                    tracing::debug!(?language, "language updated");
                    self.language = language;
                }
                _ => {}
            }
        }

        async fn close(&mut self, _: CloseReason, session: &SessionControl) {
            self.flush(session).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audiohook::session::{ServerSession, SessionEvent};

    /// An opened stereo session, to make frames with real positions.
    fn session(format: &str) -> ServerSession {
        let mut session = ServerSession::new(Some("s"), None);
        let open = format!(
            r#"{{"version":"2","id":"s","type":"open","seq":1,"serverseq":0,"position":"PT0S","parameters":{{"organizationId":"o","conversationId":"c","media":[{{"type":"audio","format":"{format}","channels":["external","internal"],"rate":8000}}]}}}}"#
        );
        let Some(SessionEvent::Open(request)) = session.handle_text(at(), &open) else {
            panic!("no open")
        };
        session.send_opened(request.accept()).unwrap();
        while session.poll_output().is_some() {}
        session
    }

    /// 100 ms of stereo audio: voice on the external channel or silence.
    fn chunk(session: &mut ServerSession, voice: bool, l16: bool) -> AudioFrame {
        let external = if voice { 0x10u8 } else { 0xff };
        let mut data = Vec::new();
        for _ in 0..800 {
            for byte in [external, 0xff] {
                if l16 {
                    data.extend(crate::audiohook::codec::decode_mulaw(byte).to_le_bytes());
                } else {
                    data.push(byte);
                }
            }
        }
        match session.handle_binary(at(), data.into()) {
            Some(SessionEvent::Audio(frame)) => frame,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn utterances_land_on_the_stream_timeline_across_flushes() {
        for l16 in [false, true] {
            let mut session = session(if l16 { "L16" } else { "PCMU" });
            let mut detector =
                UtteranceDetector::new(&[MediaChannel::External, MediaChannel::Internal]);
            let mut ended = Vec::new();
            // 0–0.5 s voice, 0.5–1 s silence.
            for i in 0..10 {
                ended.extend(detector.push(&chunk(&mut session, i < 5, l16)));
            }
            assert_eq!(ended.len(), 1, "{ended:?}");
            assert_eq!(ended[0].channel, MediaChannel::External);
            assert_eq!(ended[0].utterance.start, Duration::ZERO);
            assert_eq!(ended[0].utterance.end, Duration::from_millis(400));
            // Voice from 1 s, cut by a pause at 1.3 s.
            for _ in 0..3 {
                assert!(detector.push(&chunk(&mut session, true, l16)).is_empty());
            }
            let cut = detector.flush();
            assert_eq!(cut.len(), 1);
            // 200 ms before the second voiced chunk (1.1 s).
            assert_eq!(cut[0].utterance.start, Duration::from_millis(900));
            assert_eq!(cut[0].utterance.end, Duration::from_millis(1300));
            // The detectors restart at the next frame's position (1.3 s).
            let mut after = Vec::new();
            for i in 0..8 {
                after.extend(detector.push(&chunk(&mut session, i < 3, l16)));
            }
            assert_eq!(after.len(), 1, "{after:?}");
            assert_eq!(after[0].utterance.start, Duration::from_millis(1300));
            assert!(detector.flush().is_empty());
        }
    }

    #[test]
    fn final_transcripts_spread_their_words() {
        let heard = ChannelUtterance {
            channel: MediaChannel::Internal,
            utterance: Utterance {
                start: Duration::from_secs(2),
                end: Duration::from_secs(3),
            },
        };
        let t = final_transcript(heard, "one two", 0.8, Some("en-US"));
        assert_eq!(t.channel_id, 1);
        assert!(t.is_final);
        assert_eq!(t.offset, Some(Duration::from_secs(2)));
        assert_eq!(t.duration, Some(Duration::from_secs(1)));
        let tokens = t.alternatives[0].interpretations[0].tokens.clone().unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[1].offset, Duration::from_millis(2500));
        assert_eq!(tokens[1].duration, Duration::from_millis(500));
        assert_eq!(t.id.len(), 36);
        assert_ne!(t.id, final_transcript(heard, "x", 0.8, None).id);
    }

    /// The instant messages are handled at: these tests keep no time.
    fn at() -> std::time::Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }
}
