//! Runs a [`ServerSession`] over axum's WebSocket (features `audiohook` and `axum`).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::pacing::AudioPacer;
use super::protocol::{CloseReason, DisconnectReason, EventEntity, MediaFormat, Transcript};
use super::session::{AudioFrame, OpenReply, OpenRequest, Output, ServerSession, SessionEvent};
use super::verified::{AudioHookRefused, VerifiedAudioHook};

/// What an application does with an AudioHook session. Every method has a default:
/// accept the default media, ignore the rest.
///
/// The methods run on their own task, fed through a bounded queue
/// ([`DriverConfig::queue`]): `ping` is answered by the driver even while a method
/// is busy, and a handler that falls behind by more than the queue ends the session
/// with `disconnect` reason `error` rather than letting memory grow.
pub trait AudioHookHandler: Send + 'static {
    /// `open` arrived: choose the media (none is allowed), `startPaused`, the
    /// languages. The default accepts [`OpenRequest::accept`].
    fn open(
        &mut self,
        request: &OpenRequest,
        session: &SessionControl,
    ) -> impl Future<Output = OpenReply> + Send {
        let _ = session;
        let reply = request.accept();
        async move { reply }
    }

    /// A frame of audio ([`AudioFrame::decoded`] gives the samples of a channel).
    fn audio(
        &mut self,
        frame: AudioFrame,
        session: &SessionControl,
    ) -> impl Future<Output = ()> + Send {
        let _ = (frame, session);
        async {}
    }

    /// Anything else: pause, resume, discard, update, DTMF, playback, errors.
    fn event(
        &mut self,
        event: SessionEvent,
        session: &SessionControl,
    ) -> impl Future<Output = ()> + Send {
        let _ = (event, session);
        async {}
    }

    /// `close` arrived: send the last events now; `closed` goes out when this returns
    /// (or after [`DriverConfig::close_timeout`]).
    fn close(
        &mut self,
        reason: CloseReason,
        session: &SessionControl,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, session);
        async {}
    }

    /// The session is over and the WebSocket closed.
    fn end(&mut self, end: SessionEnd) -> impl Future<Output = ()> + Send {
        let _ = end;
        async {}
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionEnd {
    /// `closed` was sent: Genesys closed the session properly.
    pub closed: bool,
    /// The server disconnected with this reason.
    pub disconnected: Option<DisconnectReason>,
    /// Why, when something went wrong.
    pub error: Option<String>,
    /// The stream position reached.
    pub position: Duration,
}

/// Settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    queue: usize,
    close_timeout: Duration,
    formats: Vec<MediaFormat>,
    supported_languages: Option<Vec<String>>,
    read_buffer: usize,
    max_message: usize,
    idle_timeout: Duration,
    write_timeout: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            queue: 64,
            close_timeout: Duration::from_secs(5),
            formats: vec![MediaFormat::Pcmu, MediaFormat::L16],
            supported_languages: None,
            read_buffer: 4096,
            max_message: 256 * 1024,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl DriverConfig {
    /// Events the handler may fall behind by before the session is disconnected
    /// (default 64: 12.8 s of 200 ms frames).
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events.max(1);
        self
    }

    /// How long `closed` waits for [`AudioHookHandler::close`], and a `disconnect`
    /// waits for Genesys' `close` before the WebSocket is closed (default 5 s; at
    /// most 1 s after a client error).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Formats the default selection accepts (default PCMU and L16). The selection is
    /// the first offer, in Genesys' order of preference, whose format is listed, as the
    /// reference server chooses: the order of this list does not matter.
    pub fn formats(mut self, formats: &[MediaFormat]) -> Self {
        self.formats = formats.to_vec();
        self
    }

    /// Languages listed in `opened` when `open` asks for them.
    pub fn supported_languages(mut self, languages: Vec<String>) -> Self {
        self.supported_languages = Some(languages);
        self
    }

    /// The WebSocket read buffer (default 4 KiB; it grows for larger frames). The main
    /// share of a session's memory.
    pub fn read_buffer(mut self, bytes: usize) -> Self {
        self.read_buffer = bytes.max(256);
        self
    }

    /// The largest WebSocket message accepted (default 256 KiB).
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// A session that receives nothing for this long is closed (default 60 s; Genesys
    /// pings every few seconds, so silence means the peer is gone).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long one write to the socket may wait for the peer to read (default 10 s):
    /// a peer that stops reading is disconnected, its socket buffers freed, instead of
    /// holding the session forever.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.max(Duration::from_millis(1));
        self
    }
}

/// How long a session that ended on a client error waits for Genesys' `close`.
const ERROR_CLOSE_WAIT: Duration = Duration::from_secs(1);

enum Command {
    Open(Box<OpenReply>),
    Closed,
    Event(Vec<EventEntity>),
    Audio(Bytes),
    Pause,
    Resume,
    OutputVariables(BTreeMap<String, String>),
    Disconnect(
        DisconnectReason,
        Option<String>,
        Option<BTreeMap<String, String>>,
    ),
    Reconnect(Option<String>),
    ClearAudio,
}

enum ToHandler {
    Event(SessionEvent),
    End(SessionEnd),
}

/// The session is over; the command was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionGone;

impl fmt::Display for SessionGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the AudioHook session is over")
    }
}

impl std::error::Error for SessionGone {}

/// What a handler can do to its session: send events and audio, pause, resume,
/// disconnect. Cheap to clone; usable from other tasks.
#[derive(Clone)]
pub struct SessionControl {
    commands: mpsc::Sender<Command>,
    verified: Option<VerifiedAudioHook>,
}

impl fmt::Debug for SessionControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionControl")
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

impl SessionControl {
    async fn command(&self, command: Command) -> Result<(), SessionGone> {
        self.commands.send(command).await.map_err(|_| SessionGone)
    }

    /// The verified identity of the upgrade.
    pub fn verified(&self) -> Option<&VerifiedAudioHook> {
        self.verified.as_ref()
    }

    /// Sends an `event` with these entities. While Genesys asked, with a 429 error, to
    /// wait, events and audio are held back; `closed` and `disconnect` are not (they
    /// end the session, and Genesys waits for them). Ignored unless the session is
    /// active, paused or closing.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn send_event(&self, entities: Vec<EventEntity>) -> Result<(), SessionGone> {
        self.command(Command::Event(entities)).await
    }

    /// Sends one transcript.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn send_transcript(&self, transcript: Transcript) -> Result<(), SessionGone> {
        self.send_event(vec![EventEntity::Transcript(transcript)])
            .await
    }

    /// Sends audio to the caller (Audio Connector): mono, in the selected format. It
    /// leaves at real-time pace, in frames of at most 200 ms and never more than about
    /// 400 ms ahead ([`pacing`](super::pacing)), since Genesys answers bursts with 429;
    /// what waits is dropped by [`clear_audio`](Self::clear_audio), a `barge_in` event
    /// or a disconnect. Ignored unless the session is active or paused with media
    /// selected.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn send_audio(&self, audio: impl Into<Bytes>) -> Result<(), SessionGone> {
        self.command(Command::Audio(audio.into())).await
    }

    /// Asks Genesys to pause.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn pause(&self) -> Result<(), SessionGone> {
        self.command(Command::Pause).await
    }

    /// Asks Genesys to resume.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn resume(&self) -> Result<(), SessionGone> {
        self.command(Command::Resume).await
    }

    /// Sets Architect's output variables, sent with `disconnect`, or with `closed`
    /// when Genesys closes first.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn set_output_variables(
        &self,
        variables: BTreeMap<String, String>,
    ) -> Result<(), SessionGone> {
        self.command(Command::OutputVariables(variables)).await
    }

    /// Ends the session with `disconnect`.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn disconnect(
        &self,
        reason: DisconnectReason,
        info: Option<String>,
        output_variables: Option<BTreeMap<String, String>>,
    ) -> Result<(), SessionGone> {
        self.command(Command::Disconnect(reason, info, output_variables))
            .await
    }

    /// Asks Genesys to reconnect.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn reconnect(&self, info: Option<String>) -> Result<(), SessionGone> {
        self.command(Command::Reconnect(info)).await
    }

    /// Drops the audio that waits to be sent (what [`send_audio`](Self::send_audio)
    /// queued at real-time pace); what was sent plays on. A `barge_in` event and a
    /// disconnect do this too.
    ///
    /// # Errors
    ///
    /// [`SessionGone`] once the session is over.
    pub async fn clear_audio(&self) -> Result<(), SessionGone> {
        self.command(Command::ClearAudio).await
    }
}

enum Identity {
    Verified(VerifiedAudioHook),
    Refused(AudioHookRefused, Option<String>),
}

/// An axum extractor for a verified AudioHook upgrade: the WebSocket upgrade plus the
/// identity [`AudioHookSignatureLayer`](super::AudioHookSignatureLayer) verified.
/// [`serve`](Self::serve) runs the session.
///
/// ```
/// use axum::{routing::get, Router};
/// use genesys_webhook::audiohook::{AudioHookHandler, AudioHookSignatureLayer, AudioHookUpgrade};
///
/// struct Monitor;
/// impl AudioHookHandler for Monitor {}
///
/// # fn main() -> Result<(), genesys_webhook::audiohook::AudioHookConfigError> {
/// let layer = AudioHookSignatureLayer::builder()
///     .key("SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh", "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
///     .build()?;
/// let app: Router = Router::new()
///     .route("/audiohook/ws", get(|upgrade: AudioHookUpgrade| async move { upgrade.serve(Monitor) }))
///     .route_layer(layer);
/// # Ok(())
/// # }
/// ```
pub struct AudioHookUpgrade {
    ws: WebSocketUpgrade,
    identity: Identity,
    config: DriverConfig,
}

impl fmt::Debug for AudioHookUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioHookUpgrade")
            .field("verified", &self.verified())
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AudioHookUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = if let Some(verified) = parts.extensions.get::<VerifiedAudioHook>() {
            Identity::Verified(verified.clone())
        } else if let Some(refused) = parts.extensions.get::<AudioHookRefused>() {
            let session_id = parts
                .headers
                .get("audiohook-session-id")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned());
            Identity::Refused(*refused, session_id)
        } else {
            tracing::error!("AudioHookUpgrade used on a route without AudioHookSignatureLayer");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let ws = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            ws,
            identity,
            config: DriverConfig::default(),
        })
    }
}

impl AudioHookUpgrade {
    /// The verified identity (`None` for an upgrade refused under
    /// [`FailureMode::Disconnect`](super::FailureMode::Disconnect)).
    pub fn verified(&self) -> Option<&VerifiedAudioHook> {
        match &self.identity {
            Identity::Verified(verified) => Some(verified),
            Identity::Refused(..) => None,
        }
    }

    /// Driver settings.
    pub fn config(mut self, config: DriverConfig) -> Self {
        self.config = config;
        self
    }

    /// Completes the upgrade and runs the session with `handler`.
    pub fn serve<H: AudioHookHandler>(self, handler: H) -> Response {
        let config = self.config;
        let ws = self
            .ws
            .read_buffer_size(config.read_buffer)
            .write_buffer_size(0)
            .max_message_size(config.max_message)
            .max_frame_size(config.max_message);
        match self.identity {
            Identity::Verified(verified) => {
                ws.on_upgrade(move |socket| run(socket, verified, handler, config))
            }
            Identity::Refused(refused, session_id) => ws.on_upgrade(move |socket| {
                refuse(socket, refused, session_id, config.close_timeout)
            }),
        }
    }
}

async fn send_outputs(session: &mut ServerSession, socket: &mut WebSocket) -> Result<bool, String> {
    let mut close = false;
    while let Some(output) = session.poll_output() {
        let message = match output {
            Output::Text(text) => Message::Text(text.into()),
            Output::Binary(audio) => Message::Binary(audio),
            Output::Close => {
                close = true;
                continue;
            }
        };
        socket.send(message).await.map_err(|e| e.to_string())?;
    }
    Ok(close)
}

/// An upgrade refused under `FailureMode::Disconnect`: `disconnect unauthorized` after
/// the delay, then `closed` for Genesys' `close`.
async fn refuse(
    mut socket: WebSocket,
    refused: AudioHookRefused,
    session_id: Option<String>,
    close_timeout: Duration,
) {
    let mut session = ServerSession::new(session_id.as_deref(), None);
    let due = Instant::now() + refused.delay;
    let mut deadline = None;
    loop {
        tokio::select! {
            () = sleep_until(due), if deadline.is_none() => {
                let _ = session.disconnect(DisconnectReason::Unauthorized, None, None);
                deadline = Some(Instant::now() + close_timeout);
            }
            () = sleep_until(deadline.unwrap_or(due)), if deadline.is_some() => break,
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) if deadline.is_some() => {
                    if let Some(SessionEvent::Close(_)) = session.handle_text(text.as_str()) {
                        let _ = session.send_closed();
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
        match send_outputs(&mut session, &mut socket).await {
            Ok(true) | Err(_) => break,
            Ok(false) => {}
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

struct Run {
    session: ServerSession,
    events: mpsc::Sender<ToHandler>,
    queue: usize,
    /// Set when `close` arrived: `closed` goes out by then at the latest.
    closing_by: Option<Instant>,
    /// Set when the server disconnected: the socket closes by then at the latest.
    disconnect_by: Option<Instant>,
    /// Genesys asked (429) to hold events back until then.
    hold_until: Option<Instant>,
    error: Option<String>,
    close_timeout: Duration,
    /// The session is a connection probe, answered without the handler.
    probe: bool,
    /// The handler fell behind and the session is being disconnected.
    fell_behind: bool,
    /// Audio back to Genesys, sent at real-time pace.
    pacer: Option<AudioPacer>,
    /// Events the handler sent while Genesys asked (429) to wait.
    held: std::collections::VecDeque<Vec<EventEntity>>,
}

impl Run {
    /// Hands an event to the handler without waiting; a full queue disconnects.
    fn forward(&mut self, event: SessionEvent) {
        if self.fell_behind {
            // Disconnecting already: what still arrives is dropped, quietly.
            return;
        }
        match self.events.try_send(ToHandler::Event(event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.fell_behind = true;
                let info = format!(
                    "Server Error: the application fell behind by {} events",
                    self.queue
                );
                tracing::warn!(%info, "AudioHook handler too slow; disconnecting (logged once per session)");
                if self
                    .session
                    .disconnect(DisconnectReason::Error, Some(info.clone()), None)
                    .is_ok()
                {
                    self.disconnect_by = Some(Instant::now() + self.close_timeout);
                }
                self.error.get_or_insert(info);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn incoming(&mut self, event: SessionEvent) {
        if self.probe {
            // A connection probe is answered here: the handler never hears of it.
            match event {
                SessionEvent::Close(_) => {
                    let _ = self.session.send_closed();
                }
                SessionEvent::Failed(info) => {
                    self.disconnect_by =
                        Some(Instant::now() + self.close_timeout.min(ERROR_CLOSE_WAIT));
                    self.error.get_or_insert(info);
                }
                _ => {}
            }
            return;
        }
        match event {
            SessionEvent::Open(request) if request.is_probe() => {
                tracing::debug!("AudioHook connection probe: answered without the handler");
                self.probe = true;
                if let Err(error) = self.session.send_opened(request.accept_probe()) {
                    tracing::debug!(%error, "AudioHook probe not answered");
                }
            }
            SessionEvent::Ping { .. } => {}
            SessionEvent::Close(reason) => {
                self.closing_by = Some(Instant::now() + self.close_timeout);
                self.disconnect_by = None;
                self.forward(SessionEvent::Close(reason));
            }
            SessionEvent::Failed(info) => {
                // After a client error, Genesys' `close` is waited for briefly only.
                self.disconnect_by =
                    Some(Instant::now() + self.close_timeout.min(ERROR_CLOSE_WAIT));
                self.error.get_or_insert(info.clone());
                self.forward(SessionEvent::Failed(info));
            }
            SessionEvent::Unauthorized => {
                self.disconnect_by = Some(Instant::now() + self.close_timeout);
                self.error.get_or_insert_with(|| "unauthorized".into());
                self.forward(SessionEvent::Unauthorized);
            }
            SessionEvent::Error(error) => {
                if error.code == 429 {
                    let wait = error.retry_after.unwrap_or(Duration::from_secs(1));
                    self.hold_until = Some(Instant::now() + wait);
                }
                self.forward(SessionEvent::Error(error));
            }
            other => self.forward(other),
        }
    }

    fn holding(&self) -> bool {
        self.hold_until.is_some_and(|t| t > Instant::now())
    }

    /// Drops the audio waiting to be sent.
    fn clear_audio(&mut self) {
        if let Some(pacer) = &mut self.pacer {
            let dropped = pacer.clear();
            if !dropped.is_zero() {
                tracing::debug!(?dropped, "AudioHook audio waiting to be sent was dropped");
            }
        }
    }

    /// Hands the session the audio frames due now, and the events held back once the
    /// hold is over.
    fn pump(&mut self) {
        if self.holding() {
            return;
        }
        self.hold_until = None;
        while let Some(entities) = self.held.pop_front() {
            if let Err(error) = self.session.send_event(entities) {
                tracing::debug!(%error, "AudioHook event not sent");
            }
        }
        let now = Instant::now().into_std();
        if let Some(pacer) = &mut self.pacer {
            while let Some(frame) = pacer.poll_frame(now) {
                if let Err(error) = self.session.send_audio(frame) {
                    tracing::debug!(%error, "AudioHook audio not sent");
                    pacer.clear();
                }
            }
        }
    }

    /// When the next paced frame is due, if audio waits.
    fn audio_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let pacer = self.pacer.as_ref()?;
        let due = pacer.poll_timeout(now.into_std())?;
        Some(now + due.saturating_duration_since(now.into_std()))
    }

    fn command(&mut self, command: Command) {
        let result = match command {
            Command::Open(reply) => self.session.send_opened(*reply),
            Command::Closed => {
                self.closing_by = None;
                self.session.send_closed()
            }
            Command::Event(entities) => {
                if entities.iter().any(|e| matches!(e, EventEntity::BargeIn)) {
                    self.clear_audio();
                }
                if self.holding() {
                    // Genesys asked to wait: events go out when the hold is over.
                    self.held.push_back(entities);
                    Ok(())
                } else {
                    self.session.send_event(entities)
                }
            }
            Command::Audio(audio) => match self.session.media() {
                // An empty send checks the session's state without sending anything.
                Some((format, _)) if self.session.send_audio(Bytes::new()).is_ok() => {
                    self.pacer
                        .get_or_insert_with(|| AudioPacer::new(format))
                        .push(audio);
                    Ok(())
                }
                _ => self.session.send_audio(audio),
            },
            Command::ClearAudio => {
                self.clear_audio();
                Ok(())
            }
            Command::Pause => {
                self.session.pause();
                Ok(())
            }
            Command::Resume => {
                self.session.resume();
                Ok(())
            }
            Command::OutputVariables(variables) => {
                self.session.set_output_variables(variables);
                Ok(())
            }
            Command::Disconnect(reason, info, variables) => {
                self.clear_audio();
                let result = self.session.disconnect(reason, info, variables);
                if result.is_ok() {
                    self.disconnect_by = Some(Instant::now() + self.close_timeout);
                }
                result
            }
            Command::Reconnect(info) => self.session.reconnect(info),
        };
        if let Err(error) = result {
            tracing::debug!(%error, "AudioHook handler command ignored");
        }
    }
}

async fn run<H: AudioHookHandler>(
    mut socket: WebSocket,
    verified: VerifiedAudioHook,
    handler: H,
    config: DriverConfig,
) {
    let mut session = ServerSession::for_verified(&verified).formats(&config.formats);
    if let Some(languages) = &config.supported_languages {
        session = session.supported_languages(languages.clone());
    }
    let (events_tx, events_rx) = mpsc::channel(config.queue);
    let (commands_tx, mut commands) = mpsc::channel(8);
    let control = SessionControl {
        commands: commands_tx,
        verified: Some(verified),
    };
    let handler_task = tokio::spawn(drive_handler(handler, events_rx, control));
    let mut run = Run {
        session,
        events: events_tx,
        queue: config.queue,
        closing_by: None,
        disconnect_by: None,
        hold_until: None,
        error: None,
        close_timeout: config.close_timeout,
        probe: false,
        fell_behind: false,
        pacer: None,
        held: std::collections::VecDeque::new(),
    };
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut handler_gone = false;
    // One timer, moved forward only when it fires: no timer work per frame.
    let mut last_heard = Instant::now();
    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    loop {
        let holding = run.holding();
        let audio_due = run.audio_due();
        tokio::select! {
            biased;
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    if let Some(event) = run.session.handle_text(text.as_str()) {
                        run.incoming(event);
                    }
                }
                Some(Ok(Message::Binary(audio))) => {
                    last_heard = Instant::now();
                    if let Some(event) = run.session.handle_binary(audio) {
                        run.incoming(event);
                    }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(error)) => {
                    // A frame over the size limit (or a broken one): say so with a
                    // `disconnect`, as for any client error, then close.
                    let info = format!("Client Error: {error}");
                    let _ = run.session.disconnect(DisconnectReason::Error, Some(info), None);
                    let _ = tokio::time::timeout(
                        config.write_timeout.min(ERROR_CLOSE_WAIT),
                        send_outputs(&mut run.session, &mut socket),
                    )
                    .await;
                    run.error.get_or_insert(error.to_string());
                    break;
                }
            },
            command = commands.recv(), if !handler_gone => match command {
                Some(command) => run.command(command),
                // The handler is gone (it panicked): end the session.
                None => {
                    handler_gone = true;
                    if run.session.disconnect(DisconnectReason::Error, Some("Server Error".into()), None).is_ok() {
                        run.disconnect_by = Some(Instant::now() + run.close_timeout);
                    }
                    run.error.get_or_insert_with(|| "the handler stopped".into());
                }
            },
            () = sleep_until(run.hold_until.unwrap_or(far)), if holding => {}
            () = sleep_until(audio_due.unwrap_or(far)), if audio_due.is_some() && !holding => {}
            () = sleep_until(run.closing_by.unwrap_or(far)), if run.closing_by.is_some() => {
                tracing::warn!("AudioHook handler did not finish closing in time; sending closed");
                run.closing_by = None;
                let _ = run.session.send_closed();
            }
            () = sleep_until(run.disconnect_by.unwrap_or(far)), if run.disconnect_by.is_some() => break,
            () = &mut idle => {
                let due = last_heard + config.idle_timeout;
                if due > Instant::now() {
                    idle.as_mut().reset(due);
                } else {
                    tracing::info!(timeout = ?config.idle_timeout, "AudioHook session silent; closing");
                    run.error.get_or_insert_with(|| "no message within the idle timeout".into());
                    break;
                }
            }
        }
        run.pump();
        // A peer that stops reading must not hold the session: every write has a
        // deadline.
        match tokio::time::timeout(
            config.write_timeout,
            send_outputs(&mut run.session, &mut socket),
        )
        .await
        {
            Ok(Ok(false)) => {}
            Ok(Ok(true)) => break,
            Ok(Err(error)) => {
                run.error.get_or_insert(error);
                break;
            }
            Err(_) => {
                tracing::info!(timeout = ?config.write_timeout, "AudioHook peer stopped reading; closing");
                run.error
                    .get_or_insert_with(|| "the peer stopped reading (write timeout)".into());
                break;
            }
        }
    }
    let _ = tokio::time::timeout(config.write_timeout, socket.send(Message::Close(None))).await;
    drop(socket);
    let end = SessionEnd {
        closed: run.session.is_closed(),
        disconnected: run.session.disconnected(),
        error: run.error.take(),
        position: run.session.position(),
    };
    let Run { events, probe, .. } = run;
    // Commands fail from now on, so a handler waiting to send one moves on.
    drop(commands);
    // The handler may be behind: wait for room rather than drop the end. A probe's
    // handler heard nothing, and hears no end either.
    if !probe {
        let _ = events.send(ToHandler::End(end)).await;
    }
    drop(events);
    let _ = handler_task.await;
}

async fn drive_handler<H: AudioHookHandler>(
    mut handler: H,
    mut events: mpsc::Receiver<ToHandler>,
    control: SessionControl,
) {
    while let Some(message) = events.recv().await {
        match message {
            ToHandler::Event(SessionEvent::Open(request)) => {
                let reply = handler.open(&request, &control).await;
                if control
                    .command(Command::Open(Box::new(reply)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            ToHandler::Event(SessionEvent::Audio(frame)) => handler.audio(frame, &control).await,
            ToHandler::Event(SessionEvent::Close(reason)) => {
                handler.close(reason, &control).await;
                let _ = control.command(Command::Closed).await;
            }
            ToHandler::Event(event) => handler.event(event, &control).await,
            ToHandler::End(end) => {
                handler.end(end).await;
                return;
            }
        }
    }
}
