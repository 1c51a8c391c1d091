//! The AudioHook protocol, version 2: every message Genesys Cloud and a server exchange
//! over the WebSocket, typed.
//!
//! Text frames hold one JSON message each. Every message carries `version` (`"2"`), `id`
//! (the session id), `type`, `seq` and `parameters`; messages from Genesys (the client)
//! add `serverseq` and `position`, messages from the server add `clientseq`.
//! [`ClientMessage`] and [`ServerMessage`] serialize to and parse from exactly that
//! shape. Durations are ISO 8601 strings of seconds (`PT1.25S`) on the wire and
//! [`Duration`]s here.
//!
//! Unknown fields are ignored, as Genesys' reference server ignores them. An unknown
//! client message type is a [`ParseError::UnknownType`] (the reference answers it with
//! a client error); unknown event entities parse as [`EventEntity::Other`].
//!
//! ```
//! use genesys_webhook::audiohook::protocol::{ClientMessage, ClientBody};
//!
//! let text = r#"{"version":"2","id":"e160e428-53e2-487c-977d-96989bf5c99d","type":"ping",
//!     "seq":3,"serverseq":2,"position":"PT1.25S","parameters":{"rtt":"PT0.05S"}}"#;
//! let message = ClientMessage::parse(text).unwrap();
//! assert_eq!(message.position.as_millis(), 1250);
//! assert!(matches!(message.body, ClientBody::Ping(ref p) if p.rtt.is_some()));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The protocol version every message carries.
pub const VERSION: &str = "2";

/// The longest text message Genesys' reference server accepts: 65,535 UTF-16 code
/// units (its check is JavaScript's `data.length > 65535`), so up to about 192 KiB of
/// UTF-8 when every character takes three bytes.
pub const MAX_TEXT_MESSAGE: usize = 65_535;

/// The length of `text` as JavaScript counts it (UTF-16 code units), only counted when
/// it may exceed [`MAX_TEXT_MESSAGE`].
fn over_text_limit(text: &str) -> Option<usize> {
    // A UTF-16 code unit takes at least one UTF-8 byte.
    if text.len() <= MAX_TEXT_MESSAGE {
        return None;
    }
    let units = text.encode_utf16().count();
    (units > MAX_TEXT_MESSAGE).then_some(units)
}

/// Formats a duration as ISO 8601 seconds, as AudioHook writes them: `PT0S`, `PT1.25S`.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return format!("PT{secs}S");
    }
    let fraction = format!("{nanos:09}");
    format!("PT{secs}.{}S", fraction.trim_end_matches('0'))
}

/// Parses an ISO 8601 duration of seconds as AudioHook writes them (`PT1.25S`, `PT.5S`,
/// `PT0S`), up to nanosecond precision (further digits are dropped). Anything else,
/// including minutes or a sign, is `None`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let body = text.strip_prefix("PT")?.strip_suffix('S')?;
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (body, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| f.is_empty() || !digits(f)) {
        return None;
    }
    if whole.is_empty() && fraction.is_none() {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = 0u32;
    if let Some(fraction) = fraction {
        for (i, b) in fraction.bytes().take(9).enumerate() {
            nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
        }
    }
    Some(Duration::new(secs, nanos))
}

mod iso {
    use super::*;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).ok_or_else(|| D::Error::custom("not an ISO 8601 duration"))
    }
}

mod iso_opt {
    use super::*;

    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse_duration(&text)
                .map(Some)
                .ok_or_else(|| D::Error::custom("not an ISO 8601 duration")),
        }
    }
}

/// An audio format AudioHook offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MediaFormat {
    /// G.711 μ-law, one byte a sample.
    #[serde(rename = "PCMU")]
    Pcmu,
    /// 16-bit linear PCM, two bytes a sample, little-endian as Genesys' reference reads it.
    #[serde(rename = "L16")]
    L16,
    /// A format this crate does not know; never selected by default.
    #[serde(other)]
    Unknown,
}

impl MediaFormat {
    /// Bytes of one sample of one channel (0 for an unknown format).
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::Pcmu => 1,
            Self::L16 => 2,
            Self::Unknown => 0,
        }
    }

    /// 16-bit linear samples in this format, as they go on the wire: μ-law bytes for
    /// PCMU, little-endian pairs for L16, nothing for an unknown format.
    ///
    /// ```
    /// use genesys_webhook::audiohook::protocol::MediaFormat;
    ///
    /// let wire = MediaFormat::L16.encode(&[1, -2]);
    /// assert_eq!(wire, [1, 0, 0xfe, 0xff]);
    /// assert_eq!(MediaFormat::L16.decode(&wire), [1, -2]);
    /// assert_eq!(MediaFormat::Pcmu.encode(&[0, 0]).len(), 2);
    /// ```
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcmu => super::codec::encode_mulaw_slice(samples),
            Self::L16 => super::codec::encode_l16(samples),
            Self::Unknown => Vec::new(),
        }
    }

    /// Wire bytes in this format as 16-bit linear samples (a trailing odd byte of L16
    /// is left out; nothing for an unknown format).
    pub fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            Self::Pcmu => super::codec::decode_mulaw_slice(bytes),
            Self::L16 => super::codec::decode_l16(bytes),
            Self::Unknown => Vec::new(),
        }
    }
}

/// One side of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MediaChannel {
    /// The customer (channel id 0).
    External,
    /// The agent, IVR or bot (channel id 1).
    Internal,
    /// A channel this crate does not know.
    #[serde(other)]
    Unknown,
}

impl MediaChannel {
    /// The channel id transcripts use: 0 for external, 1 for internal.
    pub fn id(self) -> u32 {
        match self {
            Self::External => 0,
            Self::Internal | Self::Unknown => 1,
        }
    }
}

/// A media offer in `open`, or the selection in `opened`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Media {
    /// Always `"audio"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The sample format.
    pub format: MediaFormat,
    /// The channels, interleaved in this order.
    pub channels: Vec<MediaChannel>,
    /// Samples a second per channel (8,000).
    pub rate: u32,
}

impl Media {
    /// An audio offer or selection.
    pub fn audio(format: MediaFormat, channels: &[MediaChannel], rate: u32) -> Self {
        Self {
            kind: "audio".into(),
            format,
            channels: channels.to_vec(),
            rate,
        }
    }

    /// Bytes of one sample on every channel (a frame of audio's unit).
    pub fn frame_bytes(&self) -> usize {
        self.format.bytes_per_sample() * self.channels.len()
    }

    /// Whether this crate can decode it: audio, PCMU or L16, 8 kHz, one or two
    /// distinct known channels.
    pub fn is_supported(&self) -> bool {
        let known = |c: &MediaChannel| *c != MediaChannel::Unknown;
        self.kind == "audio"
            && matches!(self.format, MediaFormat::Pcmu | MediaFormat::L16)
            && self.rate == 8000
            && (1..=2).contains(&self.channels.len())
            && self.channels.iter().all(known)
            && !(self.channels.len() == 2 && self.channels[0] == self.channels[1])
    }
}

/// The caller in `open`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Participant {
    /// Participant id.
    pub id: String,
    /// Caller's number (ANI).
    pub ani: String,
    /// Caller's name.
    pub ani_name: String,
    /// Number called (DNIS).
    pub dnis: String,
}

impl Participant {
    /// A participant: its id, the caller's number and name, and the number called.
    pub fn new(
        id: impl Into<String>,
        ani: impl Into<String>,
        ani_name: impl Into<String>,
        dnis: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            ani: ani.into(),
            ani_name: ani_name.into(),
            dnis: dnis.into(),
        }
    }
}

/// A session this one continues, in `open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContinuedSession {
    /// The earlier session's id.
    pub id: String,
    /// The last server `seq` of that session.
    pub serverseq: u64,
    /// The last client `seq` of that session.
    pub clientseq: u64,
}

/// `open` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OpenParameters {
    /// The Genesys Cloud organization.
    pub organization_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// The caller.
    #[serde(default)]
    pub participant: Participant,
    /// Offered formats, in Genesys' order of preference.
    pub media: Vec<Media>,
    /// The conversation's language, such as `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `true` when Genesys asks for the server's languages in `opened`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_languages: Option<bool>,
    /// Sessions this one continues (after a `reconnect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continued_sessions: Option<Vec<ContinuedSession>>,
    /// The integration's custom configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_config: Option<Map<String, Value>>,
    /// Architect's input variables (Audio Connector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_variables: Option<Map<String, Value>>,
}

/// The all-zero UUID Genesys puts in a connection probe's conversation and participant.
pub const NULL_UUID: &str = "00000000-0000-0000-0000-000000000000";

impl OpenParameters {
    /// `open` for a conversation of `organization_id`, offering `media` in order of
    /// preference; the optional fields are set with the methods below.
    pub fn new(
        organization_id: impl Into<String>,
        conversation_id: impl Into<String>,
        participant: Participant,
        media: Vec<Media>,
    ) -> Self {
        Self {
            organization_id: organization_id.into(),
            conversation_id: conversation_id.into(),
            participant,
            media,
            language: None,
            supported_languages: None,
            continued_sessions: None,
            custom_config: None,
            input_variables: None,
        }
    }

    /// A connection probe's `open`, as Genesys sends one when an integration is
    /// activated: the all-zero conversation and participant ids.
    pub fn probe(organization_id: impl Into<String>, media: Vec<Media>) -> Self {
        let participant = Participant::new(NULL_UUID, "", "", "");
        Self::new(organization_id, NULL_UUID, participant, media)
    }

    /// The conversation's language, such as `en-US`.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Asks the server for its languages in `opened` (Transcription Connector).
    pub fn ask_supported_languages(mut self, ask: bool) -> Self {
        self.supported_languages = ask.then_some(true);
        self
    }

    /// Architect's input variables (Audio Connector).
    pub fn input_variables(mut self, variables: Map<String, Value>) -> Self {
        self.input_variables = Some(variables);
        self
    }

    /// Whether this `open` is a connection probe: when an admin activates an
    /// integration, Genesys opens a session whose `conversationId` and
    /// `participant.id` are the all-zero UUID, then closes it at once. A probe is no
    /// call: start no recording, recogniser or bot for it.
    ///
    /// ```
    /// use genesys_webhook::audiohook::protocol::OpenParameters;
    ///
    /// let open: OpenParameters = serde_json::from_str(r#"{"organizationId":"o",
    ///     "conversationId":"00000000-0000-0000-0000-000000000000",
    ///     "participant":{"id":"00000000-0000-0000-0000-000000000000","ani":"","aniName":"","dnis":""},
    ///     "media":[]}"#)?;
    /// assert!(open.is_probe());
    /// # Ok::<_, serde_json::Error>(())
    /// ```
    pub fn is_probe(&self) -> bool {
        self.conversation_id.trim() == NULL_UUID && self.participant.id.trim() == NULL_UUID
    }
}

/// `opened` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct OpenedParameters {
    /// The selection: no offer (no audio wanted) or one.
    pub media: Vec<Media>,
    /// Discard the audio before this position.
    #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
    pub discard_to: Option<Duration>,
    /// Start paused until the server sends `resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_paused: Option<bool>,
    /// The server's languages, when `open` asked for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_languages: Option<Vec<String>>,
}

/// Why Genesys closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CloseReason {
    /// The conversation or the stream ended.
    End,
    /// An error on Genesys' side.
    Error,
    /// Genesys answers the server's `disconnect`.
    Disconnect,
    /// Genesys answers the server's `reconnect`.
    Reconnect,
    /// A reason this crate does not know.
    #[serde(other)]
    Unknown,
}

/// `close` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CloseParameters {
    /// Why Genesys closes.
    pub reason: CloseReason,
}

/// `closed` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClosedParameters {
    /// Architect's output variables, when Genesys closed first (Audio Connector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_variables: Option<BTreeMap<String, String>>,
}

/// `discarded` and `resumed` parameters: a stretch of the stream Genesys did not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Gap {
    /// Stream position where the gap starts.
    #[serde(with = "iso")]
    pub start: Duration,
    /// How much audio was discarded.
    #[serde(with = "iso")]
    pub discarded: Duration,
}

impl Gap {
    /// `discarded` of audio at `start`.
    pub fn new(start: Duration, discarded: Duration) -> Self {
        Self { start, discarded }
    }
}

/// Why the server ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server is done (Audio Connector: the bot finished).
    Completed,
    /// The session is not allowed.
    Unauthorized,
    /// Something went wrong.
    Error,
    /// A reason this crate does not know.
    #[serde(other)]
    Unknown,
}

impl DisconnectReason {
    /// The reason as written on the wire: `completed`, `unauthorized`, `error`
    /// (`unknown` for a reason this crate does not know).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Unauthorized => "unauthorized",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }
}

/// `disconnect` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DisconnectParameters {
    /// Why.
    pub reason: DisconnectReason,
    /// A human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// Architect's output variables (Audio Connector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_variables: Option<BTreeMap<String, String>>,
}

/// `error` parameters (from Genesys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorParameters {
    /// An HTTP-like code: 400, 405, 408, 409, 413, 415, 429, 500 or 503.
    pub code: u16,
    /// What went wrong.
    pub message: String,
    /// With 429: how long the server should hold back its messages.
    #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Duration>,
}

impl ErrorParameters {
    /// An `error` with this code and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// With 429: how long the server should hold back its messages.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
}

/// `ping` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PingParameters {
    /// The round trip Genesys measured for the previous ping.
    #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
    pub rtt: Option<Duration>,
}

/// `update` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpdateParameters {
    /// The new language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// `dtmf` parameters (Audio Connector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DtmfParameters {
    /// One of `0`–`9`, `*`, `#`.
    pub digit: String,
}

/// `reconnect` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReconnectParameters {
    /// A human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

/// `event` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventParameters {
    /// The entities.
    pub entities: Vec<EventEntity>,
}

/// Parameters of messages that have none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A transcript token's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TokenKind {
    /// A word.
    Word,
    /// A kind this crate does not know.
    #[serde(other)]
    Unknown,
}

/// One word of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Token {
    /// Always [`TokenKind::Word`] today.
    #[serde(rename = "type")]
    pub kind: TokenKind,
    /// The word.
    pub value: String,
    /// 0 to 1.
    pub confidence: f64,
    /// Stream position where the word starts.
    #[serde(with = "iso")]
    pub offset: Duration,
    /// How long it lasts.
    #[serde(with = "iso")]
    pub duration: Duration,
    /// Its language, when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// An interpretation's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum InterpretationKind {
    /// Text for display.
    Display,
    /// A kind this crate does not know.
    #[serde(other)]
    Unknown,
}

/// One reading of an utterance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Interpretation {
    /// [`InterpretationKind::Display`].
    #[serde(rename = "type")]
    pub kind: InterpretationKind,
    /// The text.
    pub transcript: String,
    /// The words, with their timing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<Token>>,
}

/// One alternative of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Alternative {
    /// 0 to 1.
    pub confidence: f64,
    /// Languages heard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    /// The readings.
    pub interpretations: Vec<Interpretation>,
}

/// A `transcript` event entity (Transcription Connector).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Transcript {
    /// A unique id for the utterance.
    pub id: String,
    /// 0 for the external channel, 1 for the internal one.
    pub channel_id: u32,
    /// `true` for the final transcript of the utterance.
    pub is_final: bool,
    /// Stream position where the utterance starts.
    #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
    pub offset: Option<Duration>,
    /// How long it lasts.
    #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Alternatives, best first.
    pub alternatives: Vec<Alternative>,
}

impl Transcript {
    /// A final transcript with one display interpretation and no tokens.
    pub fn final_text(
        id: impl Into<String>,
        channel: MediaChannel,
        offset: Duration,
        duration: Duration,
        text: impl Into<String>,
        confidence: f64,
        language: Option<String>,
    ) -> Self {
        Self {
            id: id.into(),
            channel_id: channel.id(),
            is_final: true,
            offset: Some(offset),
            duration: Some(duration),
            alternatives: vec![Alternative {
                confidence,
                languages: language.map(|l| vec![l]),
                interpretations: vec![Interpretation {
                    kind: InterpretationKind::Display,
                    transcript: text.into(),
                    tokens: None,
                }],
            }],
        }
    }
}

/// One utterance in an agent-assist entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AgentAssistUtterance {
    /// A unique id.
    pub id: String,
    /// Stream position where it starts.
    #[serde(with = "iso")]
    pub position: Duration,
    /// How long it lasts.
    #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// What was said.
    pub text: String,
    /// Its language.
    pub language: String,
    /// 0 to 1.
    pub confidence: f64,
    /// Who said it.
    pub channel: MediaChannel,
    /// Whether this is the final text.
    pub is_final: bool,
}

/// An `agentassist` event entity: utterances and suggestions (FAQ answers, articles)
/// for the agent. Suggestions stay JSON, as their kinds vary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentAssist {
    /// A unique id.
    pub id: String,
    /// Utterances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utterances: Option<Vec<AgentAssistUtterance>>,
    /// Suggestions: objects with `type` (`faq`, `article`), `id`, `confidence` and
    /// the kind's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<Value>>,
}

/// How a bot turn ended (`bot_turn_response.disposition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BotTurnDisposition {
    /// The caller said nothing.
    NoInput,
    /// The bot did not understand.
    NoMatch,
    /// The bot understood.
    Match,
}

/// A `bot_turn_response` event entity (Audio Connector): how a bot turn ended, for
/// Architect's bot reporting.
///
/// ```
/// use genesys_webhook::audiohook::protocol::{BotTurnDisposition, BotTurnResponse, EventEntity};
///
/// let turn = EventEntity::BotTurnResponse(
///     BotTurnResponse::new(BotTurnDisposition::Match).text("12").confidence(1.0),
/// );
/// let json = serde_json::to_value(&turn)?;
/// assert_eq!(json["type"], "bot_turn_response");
/// assert_eq!(json["data"]["disposition"], "match");
/// # Ok::<_, serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BotTurnResponse {
    /// How the turn ended.
    pub disposition: BotTurnDisposition,
    /// What the caller said, as the bot understood it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// How sure the bot is, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

impl BotTurnResponse {
    /// A turn that ended so.
    pub fn new(disposition: BotTurnDisposition) -> Self {
        Self {
            disposition,
            text: None,
            confidence: None,
        }
    }

    /// What the caller said.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// How sure the bot is (clamped to 0–1).
    pub fn confidence(mut self, confidence: f64) -> Self {
        self.confidence = Some(confidence.clamp(0.0, 1.0));
        self
    }
}

/// One entity of an `event` message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventEntity {
    /// `transcript` (Transcription Connector).
    Transcript(Transcript),
    /// `agentassist`: help for the agent.
    AgentAssist(AgentAssist),
    /// `barge_in` (Audio Connector): the caller interrupted the bot's audio.
    BargeIn,
    /// `bot_turn_response` (Audio Connector): how a bot turn ended.
    BotTurnResponse(BotTurnResponse),
    /// Any other entity, as sent.
    Other {
        /// The entity's `type`.
        kind: String,
        /// Its `data`.
        data: Value,
    },
}

#[derive(Serialize, Deserialize)]
struct RawEntity {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

impl Serialize for EventEntity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = match self {
            Self::Transcript(t) => RawEntity {
                kind: "transcript".into(),
                data: serde_json::to_value(t).map_err(serde::ser::Error::custom)?,
            },
            Self::AgentAssist(a) => RawEntity {
                kind: "agentassist".into(),
                data: serde_json::to_value(a).map_err(serde::ser::Error::custom)?,
            },
            Self::BargeIn => RawEntity {
                kind: "barge_in".into(),
                data: Value::Object(Map::new()),
            },
            Self::BotTurnResponse(turn) => RawEntity {
                kind: "bot_turn_response".into(),
                data: serde_json::to_value(turn).map_err(serde::ser::Error::custom)?,
            },
            Self::Other { kind, data } => RawEntity {
                kind: kind.clone(),
                data: data.clone(),
            },
        };
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for EventEntity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawEntity::deserialize(d)?;
        Ok(match raw.kind.as_str() {
            "transcript" => {
                Self::Transcript(serde_json::from_value(raw.data).map_err(D::Error::custom)?)
            }
            "agentassist" => {
                Self::AgentAssist(serde_json::from_value(raw.data).map_err(D::Error::custom)?)
            }
            "barge_in" => Self::BargeIn,
            "bot_turn_response" => match serde_json::from_value(raw.data.clone()) {
                Ok(turn) => Self::BotTurnResponse(turn),
                // A disposition this version does not know: kept as sent.
                Err(_) => Self::Other {
                    kind: raw.kind,
                    data: raw.data,
                },
            },
            _ => Self::Other {
                kind: raw.kind,
                data: raw.data,
            },
        })
    }
}

/// What a message from Genesys says: its type and parameters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientBody {
    /// `open`: start the session.
    Open(Box<OpenParameters>),
    /// `close`: end the session; answered by `closed`.
    Close(CloseParameters),
    /// `ping`: answered by `pong`.
    Ping(PingParameters),
    /// `update`: the language changed.
    Update(UpdateParameters),
    /// `paused`: Genesys stopped sending audio.
    Paused,
    /// `resumed`: audio flows again, after a gap.
    Resumed(Gap),
    /// `discarded`: Genesys dropped a stretch of audio.
    Discarded(Gap),
    /// `error`: something went wrong on Genesys' side, or the server sends too much.
    Error(ErrorParameters),
    /// `dtmf`: the caller pressed a key (Audio Connector).
    Dtmf(DtmfParameters),
    /// `playback_started`: Genesys started playing the server's audio (Audio Connector).
    PlaybackStarted,
    /// `playback_completed`: it finished playing it (Audio Connector).
    PlaybackCompleted,
}

impl ClientBody {
    /// The message's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Open(_) => "open",
            Self::Close(_) => "close",
            Self::Ping(_) => "ping",
            Self::Update(_) => "update",
            Self::Paused => "paused",
            Self::Resumed(_) => "resumed",
            Self::Discarded(_) => "discarded",
            Self::Error(_) => "error",
            Self::Dtmf(_) => "dtmf",
            Self::PlaybackStarted => "playback_started",
            Self::PlaybackCompleted => "playback_completed",
        }
    }

    fn parameters(&self) -> Result<Value, serde_json::Error> {
        match self {
            Self::Open(p) => serde_json::to_value(&**p),
            Self::Close(p) => serde_json::to_value(p),
            Self::Ping(p) => serde_json::to_value(p),
            Self::Update(p) => serde_json::to_value(p),
            Self::Resumed(p) | Self::Discarded(p) => serde_json::to_value(p),
            Self::Error(p) => serde_json::to_value(p),
            Self::Dtmf(p) => serde_json::to_value(p),
            Self::Paused | Self::PlaybackStarted | Self::PlaybackCompleted => {
                Ok(Value::Object(Map::new()))
            }
        }
    }

    fn from_parts(kind: &str, parameters: Value) -> Result<Self, ParseError> {
        let bad = |_| ParseError::Parameters(kind.to_owned());
        let p = parameters;
        Ok(match kind {
            "open" => Self::Open(Box::new(serde_json::from_value(p).map_err(bad)?)),
            "close" => Self::Close(serde_json::from_value(p).map_err(bad)?),
            "ping" => Self::Ping(serde_json::from_value(p).map_err(bad)?),
            "update" => Self::Update(serde_json::from_value(p).map_err(bad)?),
            "paused" => Self::Paused,
            "resumed" => Self::Resumed(serde_json::from_value(p).map_err(bad)?),
            "discarded" => Self::Discarded(serde_json::from_value(p).map_err(bad)?),
            "error" => Self::Error(serde_json::from_value(p).map_err(bad)?),
            "dtmf" => Self::Dtmf(serde_json::from_value(p).map_err(bad)?),
            "playback_started" => Self::PlaybackStarted,
            "playback_completed" => Self::PlaybackCompleted,
            other => return Err(ParseError::UnknownType(other.to_owned())),
        })
    }
}

/// What a message from the server says: its type and parameters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerBody {
    /// `opened`: the answer to `open`.
    Opened(OpenedParameters),
    /// `closed`: the answer to `close`.
    Closed(ClosedParameters),
    /// `pong`: the answer to `ping`.
    Pong,
    /// `updated`: the answer to `update` (the reference server sends none).
    Updated,
    /// `pause`: asks Genesys to stop sending audio.
    Pause,
    /// `resume`: asks Genesys to send audio again.
    Resume,
    /// `event`: transcripts, barge-in, agent assist.
    Event(EventParameters),
    /// `disconnect`: the server ends the session.
    Disconnect(DisconnectParameters),
    /// `reconnect`: asks Genesys to open a new session that continues this one.
    Reconnect(ReconnectParameters),
}

impl ServerBody {
    /// The message's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Opened(_) => "opened",
            Self::Closed(_) => "closed",
            Self::Pong => "pong",
            Self::Updated => "updated",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Event(_) => "event",
            Self::Disconnect(_) => "disconnect",
            Self::Reconnect(_) => "reconnect",
        }
    }

    fn parameters(&self) -> Result<Value, serde_json::Error> {
        match self {
            Self::Opened(p) => serde_json::to_value(p),
            Self::Closed(p) => serde_json::to_value(p),
            Self::Event(p) => serde_json::to_value(p),
            Self::Disconnect(p) => serde_json::to_value(p),
            Self::Reconnect(p) => serde_json::to_value(p),
            Self::Pong | Self::Updated | Self::Pause | Self::Resume => {
                Ok(Value::Object(Map::new()))
            }
        }
    }

    fn from_parts(kind: &str, parameters: Value) -> Result<Self, ParseError> {
        let bad = |_| ParseError::Parameters(kind.to_owned());
        let p = parameters;
        Ok(match kind {
            "opened" => Self::Opened(serde_json::from_value(p).map_err(bad)?),
            "closed" => Self::Closed(serde_json::from_value(p).map_err(bad)?),
            "pong" => Self::Pong,
            "updated" => Self::Updated,
            "pause" => Self::Pause,
            "resume" => Self::Resume,
            "event" => Self::Event(serde_json::from_value(p).map_err(bad)?),
            "disconnect" => Self::Disconnect(serde_json::from_value(p).map_err(bad)?),
            "reconnect" => Self::Reconnect(serde_json::from_value(p).map_err(bad)?),
            other => return Err(ParseError::UnknownType(other.to_owned())),
        })
    }
}

/// A message from Genesys (the AudioHook client).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientMessage {
    /// The session id.
    pub id: String,
    /// 1 for the first message, then one more each time.
    pub seq: u64,
    /// The last server `seq` Genesys had seen.
    pub serverseq: u64,
    /// Genesys' position in the audio stream.
    pub position: Duration,
    /// Type and parameters.
    pub body: ClientBody,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerMessage {
    /// The session id.
    pub id: String,
    /// 1 for the first message, then one more each time.
    pub seq: u64,
    /// The last client `seq` the server had seen.
    pub clientseq: u64,
    /// Type and parameters.
    pub body: ServerBody,
}

/// Why a text message is not a valid AudioHook message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// More than [`MAX_TEXT_MESSAGE`] UTF-16 code units (the length it had).
    TooLarge(usize),
    /// Not JSON.
    NotJson,
    /// JSON, but not a message: a field missing or of the wrong kind.
    Malformed(&'static str),
    /// `version` is not `"2"`.
    Version,
    /// A `type` this side does not receive.
    UnknownType(String),
    /// A known type whose parameters are missing or wrong.
    Parameters(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge(len) => write!(f, "Text message too large (>64K). Length: {len}"),
            Self::NotJson => f.write_str("Text message not valid JSON"),
            Self::Malformed(what) => write!(f, "Message not a well-formed message: {what}"),
            Self::Version => f.write_str("Message not a well-formed message: version is not \"2\""),
            Self::UnknownType(kind) => {
                write!(f, "Invalid Message: '{kind}' is not a supported message")
            }
            Self::Parameters(kind) => {
                write!(f, "Invalid Message: Invalid/missing parameters of '{kind}'")
            }
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Serialize, Deserialize)]
struct Envelope {
    version: Value,
    id: Value,
    #[serde(rename = "type")]
    kind: Value,
    seq: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serverseq: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clientseq: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    position: Option<Value>,
    #[serde(default)]
    parameters: Value,
}

struct Base {
    id: String,
    kind: String,
    seq: u64,
    parameters: Value,
}

impl Envelope {
    fn parse(text: &str) -> Result<Self, ParseError> {
        if let Some(units) = over_text_limit(text) {
            return Err(ParseError::TooLarge(units));
        }
        let value: Value = serde_json::from_str(text).map_err(|_| ParseError::NotJson)?;
        if !value.is_object() {
            return Err(ParseError::Malformed("not an object"));
        }
        serde_json::from_value(value).map_err(|_| ParseError::Malformed("a field is missing"))
    }

    fn base(self) -> Result<(Base, Self), ParseError> {
        if self.version.as_str() != Some(VERSION) {
            return Err(ParseError::Version);
        }
        let id = self
            .id
            .as_str()
            .ok_or(ParseError::Malformed("id"))?
            .to_owned();
        let kind = self
            .kind
            .as_str()
            .ok_or(ParseError::Malformed("type"))?
            .to_owned();
        let seq = self.seq.as_u64().ok_or(ParseError::Malformed("seq"))?;
        if !self.parameters.is_object() {
            return Err(ParseError::Malformed("parameters"));
        }
        let mut rest = self;
        let parameters = std::mem::take(&mut rest.parameters);
        Ok((
            Base {
                id,
                kind,
                seq,
                parameters,
            },
            rest,
        ))
    }
}

impl ClientMessage {
    /// Parses one text frame from Genesys.
    ///
    /// # Errors
    ///
    /// [`ParseError`] saying what is wrong, in the words Genesys' reference server uses.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let (base, rest) = Envelope::parse(text)?.base()?;
        let serverseq = rest
            .serverseq
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or(ParseError::Malformed("serverseq"))?;
        let position = rest
            .position
            .as_ref()
            .and_then(Value::as_str)
            .and_then(parse_duration)
            .ok_or(ParseError::Malformed("position"))?;
        Ok(Self {
            id: base.id,
            seq: base.seq,
            serverseq,
            position,
            body: ClientBody::from_parts(&base.kind, base.parameters)?,
        })
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        let envelope = Envelope {
            version: VERSION.into(),
            id: self.id.clone().into(),
            kind: self.body.kind().into(),
            seq: self.seq.into(),
            serverseq: Some(self.serverseq.into()),
            clientseq: None,
            position: Some(format_duration(self.position).into()),
            parameters: self.body.parameters().unwrap_or_default(),
        };
        serde_json::to_string(&envelope).unwrap_or_default()
    }
}

impl ServerMessage {
    /// Parses one text frame from a server.
    ///
    /// # Errors
    ///
    /// [`ParseError`] saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let (base, rest) = Envelope::parse(text)?.base()?;
        let clientseq = rest
            .clientseq
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or(ParseError::Malformed("clientseq"))?;
        Ok(Self {
            id: base.id,
            seq: base.seq,
            clientseq,
            body: ServerBody::from_parts(&base.kind, base.parameters)?,
        })
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        let envelope = Envelope {
            version: VERSION.into(),
            id: self.id.clone().into(),
            kind: self.body.kind().into(),
            seq: self.seq.into(),
            serverseq: None,
            clientseq: Some(self.clientseq.into()),
            position: None,
            parameters: self.body.parameters().unwrap_or_default(),
        };
        serde_json::to_string(&envelope).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip_in_iso_8601() {
        for (text, millis) in [
            ("PT0S", 0),
            ("PT1.25S", 1250),
            ("PT.5S", 500),
            ("PT12S", 12_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(millis)),
                "{text}"
            );
        }
        assert_eq!(format_duration(Duration::from_millis(1250)), "PT1.25S");
        assert_eq!(format_duration(Duration::ZERO), "PT0S");
        for reason in [
            DisconnectReason::Completed,
            DisconnectReason::Unauthorized,
            DisconnectReason::Error,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert_eq!(format_duration(Duration::from_nanos(1)), "PT0.000000001S");
        for bad in [
            "P1S", "PT-1S", "PT1M", "PTS", "PT1.S", "PT1", "1S", "PT1.2.3S", "",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(
            parse_duration("PT0.1234567891S"),
            Some(Duration::new(0, 123_456_789))
        );
    }

    #[test]
    fn an_open_message_parses_with_every_field_and_tolerates_unknown_ones() {
        let text = r#"{"version":"2","id":"s","type":"open","seq":1,"serverseq":0,
            "position":"PT0S","extra":true,"parameters":{"organizationId":"o",
            "conversationId":"c","participant":{"id":"p","ani":"+1","aniName":"A","dnis":"+2"},
            "media":[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000},
                     {"type":"audio","format":"opus","channels":["external"],"rate":48000}],
            "language":"en-US","supportedLanguages":true,
            "continuedSessions":[{"id":"x","serverseq":3,"clientseq":4}],
            "customConfig":{"k":"v"},"inputVariables":{"a":"b"},"future":1}}"#;
        let message = ClientMessage::parse(text).unwrap();
        let ClientBody::Open(open) = &message.body else {
            panic!("not open")
        };
        assert_eq!(open.participant.ani_name, "A");
        assert_eq!(open.media[1].format, MediaFormat::Unknown);
        assert!(open.media[0].is_supported() && !open.media[1].is_supported());
        assert_eq!(open.supported_languages, Some(true));
        assert_eq!(open.continued_sessions.as_ref().unwrap()[0].clientseq, 4);
        assert_eq!(open.input_variables.as_ref().unwrap()["a"], "b");
        let again = ClientMessage::parse(&message.to_json()).unwrap();
        assert_eq!(again.id, message.id);
    }

    #[test]
    fn every_client_message_round_trips() {
        let gap = Gap {
            start: Duration::from_millis(1500),
            discarded: Duration::from_millis(250),
        };
        let bodies = [
            ClientBody::Close(CloseParameters {
                reason: CloseReason::End,
            }),
            ClientBody::Ping(PingParameters {
                rtt: Some(Duration::from_millis(20)),
            }),
            ClientBody::Update(UpdateParameters {
                language: Some("fr-FR".into()),
            }),
            ClientBody::Paused,
            ClientBody::Resumed(gap),
            ClientBody::Discarded(gap),
            ClientBody::Error(ErrorParameters {
                code: 429,
                message: "slow down".into(),
                retry_after: Some(Duration::from_secs(2)),
            }),
            ClientBody::Dtmf(DtmfParameters { digit: "#".into() }),
            ClientBody::PlaybackStarted,
            ClientBody::PlaybackCompleted,
        ];
        for body in bodies {
            let message = ClientMessage {
                id: "s".into(),
                seq: 2,
                serverseq: 1,
                position: Duration::from_millis(200),
                body,
            };
            let json = message.to_json();
            assert_eq!(ClientMessage::parse(&json).unwrap(), message, "{json}");
        }
        let json = ClientMessage {
            id: "s".into(),
            seq: 1,
            serverseq: 0,
            position: Duration::ZERO,
            body: ClientBody::Error(ErrorParameters {
                code: 429,
                message: "m".into(),
                retry_after: Some(Duration::from_millis(1500)),
            }),
        }
        .to_json();
        assert!(json.contains(r#""retryAfter":"PT1.5S""#), "{json}");
    }

    #[test]
    fn every_server_message_round_trips_in_the_wire_shape() {
        let transcript = Transcript {
            id: "u".into(),
            channel_id: 1,
            is_final: true,
            offset: Some(Duration::from_millis(1250)),
            duration: Some(Duration::from_millis(800)),
            alternatives: vec![Alternative {
                confidence: 0.9,
                languages: Some(vec!["en-US".into()]),
                interpretations: vec![Interpretation {
                    kind: InterpretationKind::Display,
                    transcript: "hello".into(),
                    tokens: Some(vec![Token {
                        kind: TokenKind::Word,
                        value: "hello".into(),
                        confidence: 0.9,
                        offset: Duration::from_millis(1250),
                        duration: Duration::from_millis(800),
                        language: None,
                    }]),
                }],
            }],
        };
        let mut variables = BTreeMap::new();
        variables.insert("digits".to_owned(), "12".to_owned());
        let bodies = [
            ServerBody::Opened(OpenedParameters {
                media: vec![Media::audio(
                    MediaFormat::L16,
                    &[MediaChannel::External],
                    8000,
                )],
                discard_to: Some(Duration::from_secs(1)),
                start_paused: Some(false),
                supported_languages: Some(vec!["en-US".into()]),
            }),
            ServerBody::Closed(ClosedParameters {
                output_variables: Some(variables.clone()),
            }),
            ServerBody::Pong,
            ServerBody::Updated,
            ServerBody::Pause,
            ServerBody::Resume,
            ServerBody::Event(EventParameters {
                entities: vec![
                    EventEntity::Transcript(transcript),
                    EventEntity::BargeIn,
                    EventEntity::AgentAssist(AgentAssist {
                        id: "a".into(),
                        utterances: Some(vec![AgentAssistUtterance {
                            id: "u".into(),
                            position: Duration::from_millis(1500),
                            duration: Some(Duration::from_secs(2)),
                            text: "my card was declined".into(),
                            language: "en-US".into(),
                            confidence: 0.8,
                            channel: MediaChannel::External,
                            is_final: true,
                        }]),
                        suggestions: Some(vec![serde_json::json!({
                            "type": "faq", "id": "f", "confidence": 0.7,
                            "question": "Why was my card declined?", "answer": "<p>…</p>"
                        })]),
                    }),
                    EventEntity::BotTurnResponse(
                        BotTurnResponse::new(BotTurnDisposition::Match).text("hi"),
                    ),
                    EventEntity::Other {
                        kind: "sentiment".into(),
                        data: serde_json::json!({"score": 0.4}),
                    },
                ],
            }),
            ServerBody::Disconnect(DisconnectParameters {
                reason: DisconnectReason::Completed,
                info: Some("done".into()),
                output_variables: Some(variables),
            }),
            ServerBody::Reconnect(ReconnectParameters {
                info: Some("moving".into()),
            }),
        ];
        for body in bodies {
            let message = ServerMessage {
                id: "s".into(),
                seq: 3,
                clientseq: 2,
                body,
            };
            let json = message.to_json();
            assert_eq!(ServerMessage::parse(&json).unwrap(), message, "{json}");
        }
        let json = ServerMessage {
            id: "s".into(),
            seq: 1,
            clientseq: 1,
            body: ServerBody::Event(EventParameters {
                entities: vec![EventEntity::BargeIn],
            }),
        }
        .to_json();
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["version"], "2");
        assert_eq!(value["type"], "event");
        assert_eq!(value["parameters"]["entities"][0]["type"], "barge_in");
        assert!(value.get("serverseq").is_none() && value.get("position").is_none());
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        let base = |extra: &str| {
            format!(r#"{{"version":"2","id":"s","seq":1,"serverseq":0,"position":"PT0S",{extra}}}"#)
        };
        assert_eq!(ClientMessage::parse("{"), Err(ParseError::NotJson));
        assert_eq!(
            ClientMessage::parse("[]").unwrap_err(),
            ParseError::Malformed("not an object")
        );
        assert_eq!(
            ClientMessage::parse(&base(r#""type":"nope","parameters":{}"#)),
            Err(ParseError::UnknownType("nope".into()))
        );
        assert_eq!(
            ClientMessage::parse(&base(r#""type":"close","parameters":{}"#)),
            Err(ParseError::Parameters("close".into()))
        );
        assert_eq!(
            ClientMessage::parse(&base(r#""type":"ping","parameters":[]"#)),
            Err(ParseError::Malformed("parameters"))
        );
        let v1 = base(r#""type":"ping","parameters":{}"#).replace(r#""2""#, r#""1""#);
        assert_eq!(ClientMessage::parse(&v1), Err(ParseError::Version));
        // The bound counts UTF-16 units as the reference does, not bytes: 30,000
        // three-byte characters (90,000 bytes) pass the size check.
        let wide = format!(r#"{{"pad":"{}"}}"#, "€".repeat(30_000));
        assert!(wide.len() > MAX_TEXT_MESSAGE);
        assert!(!matches!(
            ClientMessage::parse(&wide),
            Err(ParseError::TooLarge(_))
        ));
        let exact = format!(r#"{{"p":"{}"}}"#, "x".repeat(MAX_TEXT_MESSAGE - 8));
        assert_eq!(exact.len(), MAX_TEXT_MESSAGE);
        assert!(!matches!(
            ClientMessage::parse(&exact),
            Err(ParseError::TooLarge(_))
        ));
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_TEXT_MESSAGE));
        assert!(matches!(
            ClientMessage::parse(&big),
            Err(ParseError::TooLarge(_))
        ));
        let no_position = base(r#""type":"ping","parameters":{}"#).replace(r#""PT0S""#, "5");
        assert_eq!(
            ClientMessage::parse(&no_position),
            Err(ParseError::Malformed("position"))
        );
    }
}
