//! The server side of a session: [`ServerSession`] and what it reports and answers.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::audiohook::codec;
use crate::audiohook::protocol::{
    ClientBody, ClientMessage, CloseReason, ClosedParameters, DisconnectParameters,
    DisconnectReason, ErrorParameters, EventEntity, EventParameters, Gap, Media, MediaChannel,
    MediaFormat, OpenParameters, OpenedParameters, ReconnectParameters, ServerBody, ServerMessage,
};

/// The largest binary frame sent to Genesys (as the Audio Connector blueprint does).
pub const MAX_AUDIO_FRAME: usize = 64_000;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Waiting for `open`.
    Preparing,
    /// `open` received; waiting for the application's [`ServerSession::send_opened`].
    Opening,
    /// `opened` sent; audio flows.
    Active,
    /// Genesys said `paused`, or `opened` said `startPaused`.
    Paused,
    /// `close` received; waiting for the application's [`ServerSession::send_closed`].
    Closing,
    /// `closed` sent.
    Closed,
    /// The server sent `disconnect` ([`ServerSession::disconnected`] says why);
    /// waiting for Genesys' `close`.
    Disconnecting,
}

/// How long, by default, a session waits for a message before it ends: Genesys pings
/// every few seconds, so a minute of silence means the peer is gone.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long, by default, `closed` waits for the application after `close`, and a
/// `disconnect` waits for Genesys' `close`.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a client error, Genesys' `close` is waited for this long at most.
const ERROR_CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Genesys' 429 without `retryAfter`: hold events back this long.
const DEFAULT_HOLD: Duration = Duration::from_secs(1);

/// What a [`ServerSession`] is configured with: the media it selects, the languages
/// it lists, and its timers.
///
/// ```
/// use std::time::Duration;
/// use genesys_webhook::audiohook::protocol::MediaFormat;
/// use genesys_webhook::audiohook::session::{ServerSession, SessionConfig};
///
/// let config = SessionConfig::default()
///     .formats(&[MediaFormat::Pcmu])
///     .supported_languages(vec!["en-US".into()])
///     .idle_timeout(Duration::from_secs(30));
/// let session = ServerSession::new(None, None).config(config);
/// # let _ = session;
/// ```
#[derive(Debug, Clone)]
pub struct SessionConfig {
    formats: Vec<MediaFormat>,
    supported_languages: Option<Vec<String>>,
    idle_timeout: Duration,
    close_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            formats: vec![MediaFormat::Pcmu, MediaFormat::L16],
            supported_languages: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }
}

impl SessionConfig {
    /// The formats the default selection accepts (default PCMU and L16). The first
    /// offer, in Genesys' order, whose format is listed wins, as in the reference
    /// server: the order of this list does not matter.
    pub fn formats(mut self, formats: &[MediaFormat]) -> Self {
        self.formats = formats.to_vec();
        self
    }

    /// The languages listed in `opened` when `open` asks for them (default none: an
    /// empty list).
    pub fn supported_languages(mut self, languages: Vec<String>) -> Self {
        self.supported_languages = Some(languages);
        self
    }

    /// A session that receives nothing for this long ends (default
    /// [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long `closed` waits for the application after `close`, and a `disconnect`
    /// waits for Genesys' `close` (default [`DEFAULT_CLOSE_TIMEOUT`]; at most 1 s
    /// after a client error).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The idle timeout.
    pub fn get_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The close timeout.
    pub fn get_close_timeout(&self) -> Duration {
        self.close_timeout
    }
}

/// Which of its timers ended a session ([`ServerSession::timed_out`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// No message within the idle timeout.
    Idle,
    /// Genesys did not answer the server's `disconnect` with `close` in time.
    Disconnect,
}

/// What the session wants sent on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// A text frame: one JSON message.
    Text(String),
    /// A binary frame: audio (Audio Connector).
    Binary(Bytes),
    /// Close the WebSocket: the session is over.
    Close,
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// `open` arrived; answer with [`ServerSession::send_opened`] (or
    /// [`ServerSession::disconnect`]).
    Open(Box<OpenRequest>),
    /// A frame of audio.
    Audio(AudioFrame),
    /// Genesys paused the stream.
    Paused,
    /// Genesys resumed it after a gap.
    Resumed(Gap),
    /// Genesys dropped a stretch of audio.
    Discarded(Gap),
    /// The language changed (`update`).
    Update {
        /// The new language.
        language: Option<String>,
    },
    /// The caller pressed a key (Audio Connector).
    Dtmf(char),
    /// Genesys started playing the server's audio.
    PlaybackStarted,
    /// Genesys finished playing it.
    PlaybackCompleted,
    /// `ping`, already answered.
    Ping {
        /// Genesys' measure of the previous round trip.
        rtt: Option<Duration>,
    },
    /// Genesys reported an error; with code 429, hold back events for `retry_after`.
    Error(ErrorParameters),
    /// `close` arrived; answer with [`ServerSession::send_closed`] once done.
    Close(CloseReason),
    /// The `open` came from another organization: `disconnect` reason `unauthorized`
    /// was sent.
    Unauthorized,
    /// Genesys broke a rule: `disconnect` reason `error` was sent with this info.
    Failed(String),
}

/// The `open` Genesys sent, and the media the session would select.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OpenRequest {
    /// The parameters as sent.
    pub parameters: OpenParameters,
    selected: Option<Media>,
    supported_languages: Option<Vec<String>>,
}

impl OpenRequest {
    /// The offers, in Genesys' order.
    pub fn offers(&self) -> &[Media] {
        &self.parameters.media
    }

    /// The default selection: the first supported offer of a format the session
    /// accepts (PCMU and L16 by default), or none.
    pub fn selected(&self) -> Option<&Media> {
        self.selected.as_ref()
    }

    /// Whether this is a connection probe ([`OpenParameters::is_probe`]): answer it
    /// with [`accept_probe`](Self::accept_probe) and start nothing.
    ///
    /// [`OpenParameters::is_probe`]: crate::audiohook::protocol::OpenParameters::is_probe
    pub fn is_probe(&self) -> bool {
        self.parameters.is_probe()
    }

    /// The answer to a probe: `opened` with no media (the server wants no audio).
    pub fn accept_probe(&self) -> OpenReply {
        self.accept_media(None)
    }

    /// The first supported offer with exactly `channels` channels.
    pub fn first_with_channels(&self, channels: usize) -> Option<&Media> {
        self.parameters
            .media
            .iter()
            .find(|m| m.is_supported() && m.channels.len() == channels)
    }

    /// Accept with the default selection.
    pub fn accept(&self) -> OpenReply {
        OpenReply {
            media: self.selected.clone(),
            start_paused: false,
            discard_to: None,
            supported_languages: self.supported_languages.clone(),
        }
    }

    /// Accept with this media (one of [`offers`](Self::offers)), or none.
    pub fn accept_media(&self, media: Option<Media>) -> OpenReply {
        OpenReply {
            media,
            ..self.accept()
        }
    }
}

/// The application's answer to `open`: what `opened` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReply {
    media: Option<Media>,
    start_paused: bool,
    discard_to: Option<Duration>,
    supported_languages: Option<Vec<String>>,
}

impl OpenReply {
    /// Start paused, until the server sends `resume`.
    pub fn start_paused(mut self, paused: bool) -> Self {
        self.start_paused = paused;
        self
    }

    /// Ask Genesys to discard the audio before this position.
    pub fn discard_to(mut self, position: Duration) -> Self {
        self.discard_to = Some(position);
        self
    }

    /// The languages to list in `opened` when `open` asked for them.
    pub fn supported_languages(mut self, languages: Vec<String>) -> Self {
        self.supported_languages = Some(languages);
        self
    }

    /// The selected media.
    pub fn media(&self) -> Option<&Media> {
        self.media.as_ref()
    }
}

/// One binary frame of audio, with where it sits in the stream.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AudioFrame {
    /// Stream position of the frame's first sample.
    pub position: Duration,
    /// The bytes as received: interleaved samples.
    pub data: Bytes,
    format: MediaFormat,
    channels: &'static [MediaChannel],
}

impl fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioFrame")
            .field("position", &self.position)
            .field("bytes", &self.data.len())
            .field("format", &self.format)
            .field("channels", &self.channels)
            .finish()
    }
}

fn layout(channels: &[MediaChannel]) -> &'static [MediaChannel] {
    use MediaChannel::{External, Internal};
    match channels {
        [External] => &[External],
        [Internal] => &[Internal],
        [External, Internal] => &[External, Internal],
        [Internal, External] => &[Internal, External],
        _ => &[],
    }
}

impl AudioFrame {
    /// The format.
    pub fn format(&self) -> MediaFormat {
        self.format
    }

    /// The channels, in the order they are interleaved.
    pub fn channels(&self) -> &'static [MediaChannel] {
        self.channels
    }

    /// Samples per channel.
    pub fn samples(&self) -> usize {
        let unit = self.format.bytes_per_sample() * self.channels.len();
        self.data.len().checked_div(unit).unwrap_or(0)
    }

    /// How long the frame lasts (at 8 kHz).
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples() as u64 * 125)
    }

    /// The raw bytes of one channel (the frame itself when mono).
    pub fn channel(&self, channel: MediaChannel) -> Option<Bytes> {
        let index = self.channels.iter().position(|c| *c == channel)?;
        if self.channels.len() == 1 {
            return Some(self.data.clone());
        }
        Some(Bytes::from(codec::channel_of(
            &self.data,
            self.channels.len(),
            self.format.bytes_per_sample(),
            index,
        )))
    }

    /// One channel decoded to 16-bit samples.
    pub fn decoded(&self, channel: MediaChannel) -> Option<Vec<i16>> {
        Some(self.format.decode(&self.channel(channel)?))
    }

    /// Every channel, raw, in order.
    pub fn split(&self) -> Vec<(MediaChannel, Bytes)> {
        self.channels
            .iter()
            .filter_map(|c| self.channel(*c).map(|data| (*c, data)))
            .collect()
    }
}

/// Why an application action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionError {
    /// Not in a state where this makes sense.
    State(State),
    /// The selected media was not offered, or cannot be decoded.
    MediaNotOffered,
    /// No media selected, or audio of the wrong size for it.
    Audio,
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::State(state) => write!(f, "not allowed in state {state:?}"),
            Self::MediaNotOffered => f.write_str("the selected media was not offered"),
            Self::Audio => f.write_str("no media selected, or audio not in whole samples"),
        }
    }
}

impl std::error::Error for ActionError {}

/// One AudioHook session, server side, with no I/O.
#[derive(Debug)]
pub struct ServerSession {
    id: Option<String>,
    organization_id: Option<String>,
    config: SessionConfig,
    state: State,
    seq: u64,
    clientseq: u64,
    media: Option<(MediaFormat, &'static [MediaChannel])>,
    language: Option<String>,
    wants_languages: bool,
    start_paused: bool,
    samples: u64,
    client_position: Duration,
    discarded: Duration,
    output_variables: Option<BTreeMap<String, String>>,
    outputs: VecDeque<Output>,
    /// Why the server disconnected, once it did (kept after the close handshake).
    disconnected: Option<DisconnectReason>,
    /// When the last message arrived (or the session started).
    last_heard: Option<Instant>,
    /// `close` arrived: `closed` goes out by then at the latest.
    closing_by: Option<Instant>,
    /// The server disconnected: the session ends by then at the latest.
    disconnect_by: Option<Instant>,
    /// Genesys asked (429) to hold events back until then.
    hold_until: Option<Instant>,
    /// Events sent while Genesys asked to wait.
    held: VecDeque<Vec<EventEntity>>,
    /// The timer that ended the session, if one did.
    timed_out: Option<Timeout>,
}

impl ServerSession {
    /// A session for the upgrade's `Audiohook-Session-Id` and `Audiohook-Organization-Id`
    /// (as [`VerifiedAudioHook`](crate::audiohook::VerifiedAudioHook) gives them). Without a
    /// session id, the first message's id is taken; without an organization id, the
    /// `open`'s is not checked.
    pub fn new(session_id: Option<&str>, organization_id: Option<&str>) -> Self {
        Self {
            id: session_id.map(str::to_owned),
            organization_id: organization_id.map(str::to_owned),
            config: SessionConfig::default(),
            state: State::Preparing,
            seq: 0,
            clientseq: 0,
            media: None,
            language: None,
            wants_languages: false,
            start_paused: false,
            samples: 0,
            client_position: Duration::ZERO,
            discarded: Duration::ZERO,
            output_variables: None,
            outputs: VecDeque::new(),
            disconnected: None,
            last_heard: None,
            closing_by: None,
            disconnect_by: None,
            hold_until: None,
            held: VecDeque::new(),
            timed_out: None,
        }
    }

    /// A session for a verified upgrade: [`new`](Self::new) with its session and
    /// organization ids.
    pub fn for_verified(verified: &crate::audiohook::VerifiedAudioHook) -> Self {
        Self::new(verified.session_id(), verified.organization_id())
    }

    /// The media, languages and timers ([`SessionConfig`]).
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// The formats the default selection accepts: [`SessionConfig::formats`].
    pub fn formats(mut self, formats: &[MediaFormat]) -> Self {
        self.config = self.config.formats(formats);
        self
    }

    /// The languages listed in `opened`: [`SessionConfig::supported_languages`].
    pub fn supported_languages(mut self, languages: Vec<String>) -> Self {
        self.config = self.config.supported_languages(languages);
        self
    }

    /// The WebSocket is open: the idle timeout counts from `now` (otherwise from the
    /// first message).
    pub fn start(&mut self, now: Instant) {
        self.last_heard.get_or_insert(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called: the
    /// earliest of the idle timeout, the wait for `closed` or for Genesys' `close`,
    /// and the end of a 429 hold. `None` once the session is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.timed_out.is_some() || self.state == State::Closed {
            return None;
        }
        let idle = self.last_heard.map(|t| t + self.config.idle_timeout);
        [idle, self.closing_by, self.disconnect_by, self.hold_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// The timers due at `now` fire: a 429 hold ends and the events held back go out;
    /// `closed` goes out if the application took too long; a session whose
    /// `disconnect` was not answered, or that heard nothing for the idle timeout, ends
    /// ([`Output::Close`], [`timed_out`](Self::timed_out)).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.hold_until.is_some_and(|t| t <= now) {
            self.hold_until = None;
            while let Some(entities) = self.held.pop_front() {
                if let Err(error) = self.send_event(entities) {
                    tracing::debug!(%error, "AudioHook event held back by a 429 not sent");
                }
            }
        }
        if self.closing_by.is_some_and(|t| t <= now) {
            tracing::warn!("AudioHook handler did not finish closing in time; sending closed");
            self.closing_by = None;
            let _ = self.send_closed();
        }
        if self.timed_out.is_some() || self.state == State::Closed {
            return;
        }
        if self.disconnect_by.is_some_and(|t| t <= now) {
            self.end(Timeout::Disconnect);
        } else if self
            .last_heard
            .is_some_and(|t| t + self.config.idle_timeout <= now)
        {
            tracing::info!(timeout = ?self.config.idle_timeout, "AudioHook session silent; closing");
            self.end(Timeout::Idle);
        }
    }

    fn end(&mut self, timeout: Timeout) {
        self.timed_out = Some(timeout);
        self.closing_by = None;
        self.disconnect_by = None;
        self.hold_until = None;
        self.outputs.push_back(Output::Close);
    }

    /// The timer that ended the session, if one did.
    pub fn timed_out(&self) -> Option<Timeout> {
        self.timed_out
    }

    /// Whether Genesys asked, with a 429 error, to wait: events are held back until
    /// its `retryAfter` has passed (audio should be too).
    pub fn is_holding(&self) -> bool {
        self.hold_until.is_some()
    }

    /// The timers an event starts.
    fn timers(&mut self, now: Instant, event: Option<&SessionEvent>) {
        let close_timeout = self.config.close_timeout;
        match event {
            Some(SessionEvent::Close(_)) => {
                self.closing_by = Some(now + close_timeout);
                self.disconnect_by = None;
            }
            // After a client error, Genesys' `close` is waited for briefly only.
            Some(SessionEvent::Failed(_)) => {
                self.disconnect_by = Some(now + close_timeout.min(ERROR_CLOSE_WAIT));
            }
            Some(SessionEvent::Unauthorized) => self.disconnect_by = Some(now + close_timeout),
            Some(SessionEvent::Error(error)) if error.code == 429 => {
                self.hold_until = Some(now + error.retry_after.unwrap_or(DEFAULT_HOLD));
            }
            _ => {}
        }
    }

    /// Where the session is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The session id, once known.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The current language (from `open`, then `update`).
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// The selected media, once `opened` was sent.
    pub fn media(&self) -> Option<(MediaFormat, &'static [MediaChannel])> {
        self.media
    }

    /// Why the server sent `disconnect`, if it did: kept once Genesys answered with
    /// `close` and the session is closed.
    pub fn disconnected(&self) -> Option<DisconnectReason> {
        self.disconnected
    }

    /// The stream position: how much audio was received (at 8 kHz).
    pub fn position(&self) -> Duration {
        Duration::from_micros(self.samples * 125)
    }

    /// The position Genesys reported in its last message.
    pub fn client_position(&self) -> Duration {
        self.client_position
    }

    /// Audio Genesys reported discarded so far (`discarded`, and `resumed` after a
    /// pause): the stream position plus this is the time into the conversation.
    pub fn discarded(&self) -> Duration {
        self.discarded
    }

    /// The last server `seq` sent.
    pub fn server_seq(&self) -> u64 {
        self.seq
    }

    /// The last client `seq` received.
    pub fn client_seq(&self) -> u64 {
        self.clientseq
    }

    /// The next frame to send, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Whether the session is over: `closed` sent.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn send(&mut self, body: ServerBody) {
        self.seq += 1;
        let message = ServerMessage {
            id: self.id.clone().unwrap_or_else(|| NULL_UUID.to_owned()),
            seq: self.seq,
            clientseq: self.clientseq,
            body,
        };
        self.outputs.push_back(Output::Text(message.to_json()));
    }

    /// Whether errors are still signalled to Genesys.
    fn signals_errors(&self) -> bool {
        !matches!(self.state, State::Closed | State::Disconnecting)
    }

    fn client_error(&mut self, info: impl fmt::Display) -> Option<SessionEvent> {
        let info = format!("Client Error: {info}");
        if !self.signals_errors() {
            tracing::debug!(%info, state = ?self.state, "AudioHook client error not signalled");
            return None;
        }
        tracing::warn!(%info, state = ?self.state, "AudioHook client error; disconnecting");
        self.state = State::Disconnecting;
        self.disconnected = Some(DisconnectReason::Error);
        self.send(ServerBody::Disconnect(DisconnectParameters {
            reason: DisconnectReason::Error,
            info: Some(info.clone()),
            output_variables: None,
        }));
        Some(SessionEvent::Failed(info))
    }

    /// Takes one text frame from Genesys, received at `now`.
    pub fn handle_text(&mut self, now: Instant, text: &str) -> Option<SessionEvent> {
        self.last_heard = Some(now);
        let event = self.on_text(text);
        self.timers(now, event.as_ref());
        event
    }

    fn on_text(&mut self, text: &str) -> Option<SessionEvent> {
        if self.state == State::Closed {
            return None;
        }
        let message = match ClientMessage::parse(text) {
            Ok(message) => message,
            Err(error) => return self.client_error(error),
        };
        if message.seq != self.clientseq + 1 {
            return self.client_error("Invalid seq value (not monotonically increasing)");
        }
        self.clientseq = message.seq;
        if message.serverseq > self.seq {
            return self.client_error("Invalid serverseq value");
        }
        match &self.id {
            Some(id) if *id != message.id => {
                return self.client_error("Session identifier mismatch")
            }
            Some(_) => {}
            None => self.id = Some(message.id.clone()),
        }
        self.client_position = message.position;
        match message.body {
            ClientBody::Open(parameters) => self.on_open(parameters),
            ClientBody::Close(close) => {
                if matches!(self.state, State::Closing) {
                    return None;
                }
                self.state = State::Closing;
                Some(SessionEvent::Close(close.reason))
            }
            ClientBody::Ping(ping) => {
                self.send(ServerBody::Pong);
                Some(SessionEvent::Ping { rtt: ping.rtt })
            }
            ClientBody::Update(update) => {
                if !matches!(self.state, State::Active | State::Paused) {
                    return None;
                }
                self.language.clone_from(&update.language);
                Some(SessionEvent::Update {
                    language: update.language,
                })
            }
            ClientBody::Paused => {
                if self.state != State::Active {
                    return None;
                }
                self.state = State::Paused;
                Some(SessionEvent::Paused)
            }
            ClientBody::Resumed(gap) => {
                if self.state != State::Paused {
                    return None;
                }
                self.state = State::Active;
                self.discarded += gap.discarded;
                Some(SessionEvent::Resumed(gap))
            }
            ClientBody::Discarded(gap) => {
                self.discarded += gap.discarded;
                Some(SessionEvent::Discarded(gap))
            }
            ClientBody::Error(error) => Some(SessionEvent::Error(error)),
            ClientBody::Dtmf(dtmf) => {
                let mut chars = dtmf.digit.chars();
                match (chars.next(), chars.next()) {
                    (Some(digit), None) => Some(SessionEvent::Dtmf(digit)),
                    _ => self.client_error("Invalid Message: Invalid/missing parameters"),
                }
            }
            ClientBody::PlaybackStarted => Some(SessionEvent::PlaybackStarted),
            ClientBody::PlaybackCompleted => Some(SessionEvent::PlaybackCompleted),
        }
    }

    fn on_open(&mut self, parameters: Box<OpenParameters>) -> Option<SessionEvent> {
        if self.state != State::Preparing {
            tracing::debug!(state = ?self.state, "AudioHook open ignored");
            return None;
        }
        if let Some(expected) = &self.organization_id {
            if !expected.eq_ignore_ascii_case(&parameters.organization_id) {
                tracing::warn!("AudioHook open from another organization; disconnecting");
                self.state = State::Disconnecting;
                self.disconnected = Some(DisconnectReason::Unauthorized);
                self.send(ServerBody::Disconnect(DisconnectParameters {
                    reason: DisconnectReason::Unauthorized,
                    info: Some("Organization identifier mismatch".into()),
                    output_variables: None,
                }));
                return Some(SessionEvent::Unauthorized);
            }
        }
        self.state = State::Opening;
        self.language.clone_from(&parameters.language);
        self.wants_languages = parameters.supported_languages.unwrap_or(false);
        let selected = parameters
            .media
            .iter()
            .find(|m| m.is_supported() && self.config.formats.contains(&m.format))
            .cloned();
        let supported_languages = self
            .wants_languages
            .then(|| self.config.supported_languages.clone().unwrap_or_default());
        Some(SessionEvent::Open(Box::new(OpenRequest {
            parameters: *parameters,
            selected,
            supported_languages,
        })))
    }

    /// Answers `open` with `opened`.
    ///
    /// # Errors
    ///
    /// [`ActionError::State`] unless an `open` awaits an answer;
    /// [`ActionError::MediaNotOffered`] for a selection that is not a supported offer.
    pub fn send_opened_checked(
        &mut self,
        request: &OpenRequest,
        reply: OpenReply,
    ) -> Result<(), ActionError> {
        if let Some(media) = &reply.media {
            if !media.is_supported() || !request.parameters.media.contains(media) {
                return Err(ActionError::MediaNotOffered);
            }
        }
        self.send_opened(reply)
    }

    /// Answers `open` with `opened`. The selection is checked to be decodable;
    /// [`send_opened_checked`](Self::send_opened_checked) also checks that it was offered.
    ///
    /// # Errors
    ///
    /// [`ActionError::State`] unless an `open` awaits an answer;
    /// [`ActionError::MediaNotOffered`] for media this crate cannot decode.
    pub fn send_opened(&mut self, reply: OpenReply) -> Result<(), ActionError> {
        if self.state != State::Opening {
            return Err(ActionError::State(self.state));
        }
        if let Some(media) = &reply.media {
            if !media.is_supported() {
                return Err(ActionError::MediaNotOffered);
            }
        }
        self.media = reply
            .media
            .as_ref()
            .map(|m| (m.format, layout(&m.channels)));
        let start_paused = reply.start_paused || self.start_paused;
        let discard_to = reply.discard_to.filter(|d| *d > self.position());
        let supported_languages = if self.wants_languages {
            Some(reply.supported_languages.unwrap_or_default())
        } else {
            None
        };
        self.send(ServerBody::Opened(OpenedParameters {
            media: reply.media.into_iter().collect(),
            discard_to,
            start_paused: Some(start_paused),
            supported_languages,
        }));
        self.state = if start_paused {
            State::Paused
        } else {
            State::Active
        };
        Ok(())
    }

    /// Takes one binary frame (audio) from Genesys, received at `now`.
    pub fn handle_binary(&mut self, now: Instant, data: Bytes) -> Option<SessionEvent> {
        self.last_heard = Some(now);
        let event = self.on_binary(data);
        self.timers(now, event.as_ref());
        event
    }

    fn on_binary(&mut self, data: Bytes) -> Option<SessionEvent> {
        if self.state != State::Active {
            if matches!(self.state, State::Closed | State::Disconnecting) {
                return None;
            }
            let state = self.state;
            return self.client_error(format_args!("Received audio in state {state:?}"));
        }
        let Some((format, channels)) = self.media else {
            return self.client_error("Unexpected binary message: No media selected");
        };
        let unit = format.bytes_per_sample() * channels.len();
        if unit == 0 || !data.len().is_multiple_of(unit) {
            return self.client_error(format_args!(
                "Binary data not a valid audio frame. Audio data size must be multiple of bytes per sample ({unit})"
            ));
        }
        let position = self.position();
        self.samples += (data.len() / unit) as u64;
        Some(SessionEvent::Audio(AudioFrame {
            position,
            data,
            format,
            channels,
        }))
    }

    /// Sends `event` with these entities (transcripts, barge-in, agent assist). While
    /// Genesys asked, with a 429 error, to wait, the event is held back and goes out
    /// when the wait is over ([`handle_timeout`](Self::handle_timeout)); `closed` and
    /// `disconnect` are not held back.
    ///
    /// # Errors
    ///
    /// [`ActionError::State`] unless active, paused or closing.
    pub fn send_event(&mut self, entities: Vec<EventEntity>) -> Result<(), ActionError> {
        if !matches!(self.state, State::Active | State::Paused | State::Closing) {
            return Err(ActionError::State(self.state));
        }
        if self.hold_until.is_some() {
            self.held.push_back(entities);
        } else {
            self.send(ServerBody::Event(EventParameters { entities }));
        }
        Ok(())
    }

    /// Sends audio to the caller (Audio Connector): mono, in the selected format, for
    /// the external channel. Frames above 64,000 bytes are split.
    ///
    /// # Errors
    ///
    /// [`ActionError::State`] unless active or paused; [`ActionError::Audio`] without
    /// media or for a length that is not whole samples.
    pub fn send_audio(&mut self, audio: Bytes) -> Result<(), ActionError> {
        if !matches!(self.state, State::Active | State::Paused) {
            return Err(ActionError::State(self.state));
        }
        let Some((format, _)) = self.media else {
            return Err(ActionError::Audio);
        };
        let unit = format.bytes_per_sample();
        if unit == 0 || !audio.len().is_multiple_of(unit) {
            return Err(ActionError::Audio);
        }
        let mut rest = audio;
        while !rest.is_empty() {
            let take = rest.len().min(MAX_AUDIO_FRAME);
            self.outputs.push_back(Output::Binary(rest.split_to(take)));
        }
        Ok(())
    }

    /// Asks Genesys to pause the stream (before `opened`: start paused).
    pub fn pause(&mut self) {
        match self.state {
            State::Preparing | State::Opening => self.start_paused = true,
            State::Active | State::Paused => self.send(ServerBody::Pause),
            _ => {}
        }
    }

    /// Asks Genesys to resume the stream (before `opened`: do not start paused).
    pub fn resume(&mut self) {
        match self.state {
            State::Preparing | State::Opening => self.start_paused = false,
            State::Active | State::Paused => self.send(ServerBody::Resume),
            _ => {}
        }
    }

    /// Sets Architect's output variables, sent with `disconnect` or, when Genesys
    /// closes first, with `closed` (Audio Connector).
    pub fn set_output_variables(&mut self, variables: BTreeMap<String, String>) {
        self.output_variables = Some(variables);
    }

    /// Ends the session at `now`: `disconnect` with this reason, info and the output
    /// variables set so far (or these). Genesys answers `close`, which the session
    /// reports as [`SessionEvent::Close`]; without it, the session ends after the close
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`ActionError::State`] once closing, closed or disconnecting.
    pub fn disconnect(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        info: Option<String>,
        output_variables: Option<BTreeMap<String, String>>,
    ) -> Result<(), ActionError> {
        if !matches!(
            self.state,
            State::Preparing | State::Opening | State::Active | State::Paused
        ) {
            return Err(ActionError::State(self.state));
        }
        let output_variables = output_variables.or_else(|| self.output_variables.take());
        self.state = State::Disconnecting;
        self.disconnected = Some(reason);
        self.disconnect_by = Some(now + self.config.close_timeout);
        self.send(ServerBody::Disconnect(DisconnectParameters {
            reason,
            info,
            output_variables,
        }));
        Ok(())
    }

    /// Asks Genesys to reconnect: it opens a new session continuing this one, then
    /// closes this one with reason `reconnect`.
    ///
    /// # Errors
    ///
    /// [`ActionError::State`] unless active or paused.
    pub fn reconnect(&mut self, info: Option<String>) -> Result<(), ActionError> {
        if !matches!(self.state, State::Active | State::Paused) {
            return Err(ActionError::State(self.state));
        }
        self.send(ServerBody::Reconnect(ReconnectParameters { info }));
        Ok(())
    }

    /// Answers `close` with `closed` (with the output variables, when set and not yet
    /// sent), then asks for the WebSocket to close.
    ///
    /// # Errors
    ///
    /// [`ActionError::State`] unless a `close` awaits an answer.
    pub fn send_closed(&mut self) -> Result<(), ActionError> {
        if self.state != State::Closing {
            return Err(ActionError::State(self.state));
        }
        let output_variables = self.output_variables.take();
        self.send(ServerBody::Closed(ClosedParameters { output_variables }));
        self.state = State::Closed;
        self.closing_by = None;
        self.outputs.push_back(Output::Close);
        Ok(())
    }
}

/// The id the reference uses before it knows the session's.
use crate::audiohook::protocol::NULL_UUID;
