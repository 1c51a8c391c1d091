//! What the application implements ([`AudioHookHandler`]) and what it holds to act on
//! its session ([`SessionControl`]), and the task that feeds the one and serves the
//! other.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::audiohook::protocol::{CloseReason, DisconnectReason, EventEntity, Transcript};
use crate::audiohook::session::{AudioFrame, OpenReply, OpenRequest, SessionEvent};
use crate::audiohook::verified::VerifiedAudioHook;

/// What an application does with an AudioHook session. Every method has a default:
/// accept the default media, ignore the rest.
///
/// The methods run on their own task, fed through a bounded queue
/// ([`DriverConfig::queue`](super::config::DriverConfig::queue)): `ping` is answered by the driver even while a method
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
    /// (or after [`DriverConfig::close_timeout`](super::config::DriverConfig::close_timeout)).
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

pub(super) enum Command {
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

pub(super) enum ToHandler {
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
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) verified: Option<VerifiedAudioHook>,
}

impl fmt::Debug for SessionControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionControl")
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

impl SessionControl {
    pub(super) async fn command(&self, command: Command) -> Result<(), SessionGone> {
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
    /// 400 ms ahead ([`pacing`](crate::audiohook::pacing)), since Genesys answers bursts with 429;
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

pub(super) async fn drive_handler<H: AudioHookHandler>(
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
