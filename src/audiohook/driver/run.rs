//! The session loop, generic over a `Stream + Sink` of WebSocket messages: it reads
//! the clock and the socket, feeds the session, and writes what the session says.

use std::fmt;

use axum::extract::ws::Message;
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::config::DriverConfig;
use super::handler::{
    drive_handler, AudioHookHandler, Command, SessionControl, SessionEnd, ToHandler,
};
use crate::audiohook::pacing::AudioPacer;
use crate::audiohook::protocol::{DisconnectReason, EventEntity};
use crate::audiohook::session::{Output, ServerSession, SessionEvent, Timeout};
use crate::audiohook::verified::{AudioHookRefused, VerifiedAudioHook};

/// After a client error, the `disconnect` is given at most this long to go out.
const ERROR_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The time now, for the session (tokio's clock, so paused time moves it in tests).
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Writes what the session wants sent; whether it asked for the socket to close.
async fn send_outputs<S>(session: &mut ServerSession, socket: &mut S) -> Result<bool, String>
where
    S: Sink<Message> + Unpin,
    S::Error: fmt::Display,
{
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
pub(super) async fn refuse<S, E>(
    mut socket: S,
    refused: AudioHookRefused,
    session_id: Option<String>,
    config: DriverConfig,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    <S as Sink<Message>>::Error: fmt::Display,
{
    let mut session = ServerSession::new(session_id.as_deref(), None).config(config.session);
    let due = Instant::now() + refused.delay();
    let mut disconnected = false;
    loop {
        let timer = session.poll_timeout().map(Instant::from_std);
        tokio::select! {
            () = sleep_until(due), if !disconnected => {
                disconnected = true;
                let _ = session.disconnect(now(), DisconnectReason::Unauthorized, None, None);
            }
            () = sleep_until(timer.unwrap_or(due)), if disconnected && timer.is_some() => {
                session.handle_timeout(now());
            }
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) if disconnected => {
                    if let Some(SessionEvent::Close(_)) = session.handle_text(now(), text.as_str()) {
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
    error: Option<String>,
    /// The session is a connection probe, answered without the handler.
    probe: bool,
    /// The handler fell behind and the session is being disconnected.
    fell_behind: bool,
    /// Audio back to Genesys, sent at real-time pace.
    pacer: Option<AudioPacer>,
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
                let _ = self.session.disconnect(
                    now(),
                    DisconnectReason::Error,
                    Some(info.clone()),
                    None,
                );
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
            SessionEvent::Failed(info) => {
                self.error.get_or_insert(info.clone());
                self.forward(SessionEvent::Failed(info));
            }
            SessionEvent::Unauthorized => {
                self.error.get_or_insert_with(|| "unauthorized".into());
                self.forward(SessionEvent::Unauthorized);
            }
            other => self.forward(other),
        }
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

    /// Hands the session the audio frames due now, unless Genesys asked to wait.
    fn pump(&mut self) {
        if self.session.is_holding() {
            return;
        }
        let now = now();
        if let Some(pacer) = &mut self.pacer {
            while let Some(frame) = pacer.poll_frame(now) {
                if let Err(error) = self.session.send_audio(frame) {
                    tracing::debug!(%error, "AudioHook audio not sent");
                    pacer.clear();
                }
            }
        }
    }

    /// When the next paced frame is due, if audio waits and may go out.
    fn audio_due(&self) -> Option<Instant> {
        if self.session.is_holding() {
            return None;
        }
        let pacer = self.pacer.as_ref()?;
        pacer.poll_timeout(now()).map(Instant::from_std)
    }

    fn command(&mut self, command: Command) {
        let result = match command {
            Command::Open(reply) => self.session.send_opened(*reply),
            Command::Closed => self.session.send_closed(),
            Command::Event(entities) => {
                if entities.iter().any(|e| matches!(e, EventEntity::BargeIn)) {
                    self.clear_audio();
                }
                // Held back by the session while Genesys asks to wait.
                self.session.send_event(entities)
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
                self.session.disconnect(now(), reason, info, variables)
            }
            Command::Reconnect(info) => self.session.reconnect(info),
        };
        if let Err(error) = result {
            tracing::debug!(%error, "AudioHook handler command ignored");
        }
    }
}

/// Runs an AudioHook session for `verified` over `socket`, any `Stream + Sink` of
/// axum WebSocket messages, with `handler`, until the session ends and the socket is
/// closed. [`AudioHookUpgrade::serve`](super::AudioHookUpgrade::serve) calls it with
/// axum's WebSocket; tests call it with an in-memory pair.
pub async fn serve_websocket<S, E, H>(
    mut socket: S,
    verified: VerifiedAudioHook,
    handler: H,
    config: DriverConfig,
) where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: fmt::Display,
    <S as Sink<Message>>::Error: fmt::Display,
    H: AudioHookHandler,
{
    let mut session = ServerSession::for_verified(&verified).config(config.session.clone());
    session.start(now());
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
        error: None,
        probe: false,
        fell_behind: false,
        pacer: None,
    };
    let far = Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    let mut handler_gone = false;
    // The session's next timer: one sleep, moved only when the session asks for an
    // earlier one or when it fires, so that a frame costs no timer work.
    let timer = tokio::time::sleep_until(run.session.poll_timeout().map_or(far, Instant::from_std));
    tokio::pin!(timer);
    loop {
        let audio_due = run.audio_due();
        tokio::select! {
            biased;
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(event) = run.session.handle_text(now(), text.as_str()) {
                        run.incoming(event);
                    }
                }
                Some(Ok(Message::Binary(audio))) => {
                    if let Some(event) = run.session.handle_binary(now(), audio) {
                        run.incoming(event);
                    }
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(error)) => {
                    // A frame over the size limit (or a broken one): say so with a
                    // `disconnect`, as for any client error, then close.
                    let info = format!("Client Error: {error}");
                    let _ = run.session.disconnect(now(), DisconnectReason::Error, Some(info), None);
                    let _ = tokio::time::timeout(
                        config.write_timeout.min(ERROR_WRITE_WAIT),
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
                    let _ = run.session.disconnect(now(), DisconnectReason::Error, Some("Server Error".into()), None);
                    run.error.get_or_insert_with(|| "the handler stopped".into());
                }
            },
            () = sleep_until(audio_due.unwrap_or(far)), if audio_due.is_some() => {}
            () = &mut timer => {
                run.session.handle_timeout(now());
                if run.session.timed_out() == Some(Timeout::Idle) {
                    run.error.get_or_insert_with(|| "no message within the idle timeout".into());
                }
                timer.as_mut().reset(run.session.poll_timeout().map_or(far, Instant::from_std));
            }
        }
        // A timer the session now wants earlier than the one set (a close, a 429).
        if let Some(due) = run.session.poll_timeout().map(Instant::from_std) {
            if due < timer.deadline() {
                timer.as_mut().reset(due);
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
