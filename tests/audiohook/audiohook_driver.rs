//! The driver: pings answered while the handler is busy, a handler that falls behind
//! meets a bounded queue, events held back on 429, the handler's last events go out
//! before `closed`. Driven through a pair of in-memory WebSocket ends on paused time,
//! with the library's client session; what belongs to the axum upgrade and to real
//! sockets (a route without the layer, the frame limit, a peer that stops reading) is
//! tested over loopback in `sockets`.

use crate::common;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Sink, Stream};
use genesys_webhook::audiohook::protocol::{
    CloseReason, ErrorParameters, Media, MediaChannel, MediaFormat, OpenParameters, Participant,
    Transcript,
};
use genesys_webhook::audiohook::session::{AudioFrame, ClientSession, Output, SessionEvent};
use genesys_webhook::audiohook::{
    serve_websocket, AudioHookHandler, DriverConfig, SessionControl, SessionEnd, VerifiedAudioHook,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

const KEY: &str = "driver-test-key";
const SESSION: &str = "30b0e395-84d3-4570-ac13-9a62d8f514c0";
const ORG: &str = "d7934305-0972-4844-938e-9060eef73d05";

/// A handler whose audio takes `audio_delay`, and which counts what it saw.
#[derive(Clone, Default)]
struct Slow {
    audio_delay: Duration,
    frames: Arc<AtomicUsize>,
    ended: Arc<tokio::sync::Mutex<Option<SessionEnd>>>,
}

impl AudioHookHandler for Slow {
    async fn audio(&mut self, _: AudioFrame, _: &SessionControl) {
        self.frames.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.audio_delay).await;
    }

    async fn event(&mut self, event: SessionEvent, session: &SessionControl) {
        if matches!(event, SessionEvent::Dtmf('t')) {
            let t = Transcript::final_text(
                "u",
                MediaChannel::External,
                Duration::ZERO,
                Duration::from_secs(1),
                "hi",
                0.9,
                None,
            );
            let _ = session.send_transcript(t).await;
        }
        if matches!(event, SessionEvent::Dtmf('p')) {
            let _ = session.pause().await;
        }
        if matches!(event, SessionEvent::Dtmf('d')) {
            let _ = session
                .disconnect(
                    genesys_webhook::audiohook::protocol::DisconnectReason::Completed,
                    None,
                    None,
                )
                .await;
        }
        if matches!(event, SessionEvent::Dtmf('a')) {
            // Ten 150 ms tones at once: 1.5 s of μ-law.
            for _ in 0..10 {
                let _ = session.send_audio(vec![0x7fu8; 1200]).await;
            }
        }
        if matches!(event, SessionEvent::Dtmf('f')) {
            // A flood of large events, for a peer that does not read.
            let text = "x".repeat(10_000);
            for n in 0..5_000 {
                let t = Transcript::final_text(
                    format!("flood-{n}"),
                    MediaChannel::External,
                    Duration::ZERO,
                    Duration::from_secs(1),
                    text.clone(),
                    0.9,
                    None,
                );
                if session.send_transcript(t).await.is_err() {
                    break;
                }
            }
        }
    }

    async fn close(&mut self, _: CloseReason, session: &SessionControl) {
        // The last transcript goes out before `closed`.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Transcript::final_text(
            "last",
            MediaChannel::External,
            Duration::ZERO,
            Duration::from_secs(1),
            "bye",
            0.9,
            None,
        );
        let _ = session.send_transcript(t).await;
    }

    async fn end(&mut self, end: SessionEnd) {
        *self.ended.lock().await = Some(end);
    }
}

/// One end of an in-memory WebSocket: what the other end sends arrives here.
struct MemorySocket {
    incoming: mpsc::UnboundedReceiver<Message>,
    outgoing: mpsc::UnboundedSender<Message>,
}

/// Two connected ends.
fn socket_pair() -> (MemorySocket, MemorySocket) {
    let (a_tx, a_rx) = mpsc::unbounded_channel();
    let (b_tx, b_rx) = mpsc::unbounded_channel();
    (
        MemorySocket {
            incoming: a_rx,
            outgoing: b_tx,
        },
        MemorySocket {
            incoming: b_rx,
            outgoing: a_tx,
        },
    )
}

impl Stream for MemorySocket {
    type Item = Result<Message, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_recv(cx).map(|m| m.map(Ok))
    }
}

impl Sink<Message> for MemorySocket {
    type Error = &'static str;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        self.outgoing.send(message).map_err(|_| "the peer is gone")
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// Starts a session with `handler` on one end; the client holds the other.
fn serve(handler: impl AudioHookHandler, config: DriverConfig) -> Client {
    let (server, client) = socket_pair();
    let verified =
        VerifiedAudioHook::new(KEY).with_ids(ORG, SESSION, "e160e428-53e2-487c-977d-96989bf5c99d");
    tokio::spawn(serve_websocket(server, verified, handler, config));
    Client {
        socket: client,
        session: ClientSession::new(SESSION),
    }
}

/// Genesys' side: the library's client session over the in-memory end.
struct Client {
    socket: MemorySocket,
    session: ClientSession,
}

impl Client {
    /// Sends what the client session queued.
    fn flush(&mut self) {
        while let Some(output) = self.session.poll_output() {
            let message = match output {
                Output::Text(text) => Message::Text(text.into()),
                Output::Binary(audio) => Message::Binary(audio),
                _ => continue,
            };
            // A server that already ended the session drops what arrives.
            let _ = self.socket.outgoing.send(message);
        }
    }

    /// The next text message, within `within`; `None` once the server closed.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.incoming.recv())
                .await
                .ok()??;
            match message {
                Message::Text(text) => {
                    self.session.handle_text(text.as_str()).unwrap();
                    // Answers to the server's pause and resume.
                    self.flush();
                    return Some(serde_json::from_str(text.as_str()).unwrap());
                }
                Message::Binary(audio) => self.session.handle_binary(&audio),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    async fn expect(&mut self, kind: &str) -> Value {
        let message = self
            .next(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no {kind}"));
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    fn ping(&mut self) {
        self.session.ping();
        self.flush();
    }

    fn dtmf(&mut self, digit: char) {
        self.session.dtmf(digit);
        self.flush();
    }

    fn close(&mut self, reason: CloseReason) {
        self.session.close(reason);
        self.flush();
    }

    async fn open(&mut self) {
        let media = vec![Media::audio(
            MediaFormat::Pcmu,
            &[MediaChannel::External, MediaChannel::Internal],
            8000,
        )];
        let participant = Participant::new("883efee8-3d6c-4537-b500-6d7ca4b92fa0", "", "", "");
        self.session.open(OpenParameters::new(
            ORG,
            "4f3b8ad8-9f2b-4c4e-8a8f-5a7f0e6f2d11",
            participant,
            media,
        ));
        self.flush();
        self.expect("opened").await;
    }

    /// `frames` frames of 200 ms of stereo silence.
    fn audio(&mut self, frames: usize) {
        for _ in 0..frames {
            self.session.send_audio(vec![0xff; 3200].into()).unwrap();
        }
        self.flush();
    }
}

#[tokio::test(start_paused = true)]
async fn pings_are_answered_at_once_while_the_handler_is_busy() {
    let handler = Slow {
        audio_delay: Duration::from_secs(3600),
        ..Slow::default()
    };
    let mut client = serve(handler.clone(), DriverConfig::default());
    client.open().await;
    client.audio(3);
    // The handler is now stuck in its first frame, for an hour.
    let frames = Arc::clone(&handler.frames);
    common::eventually("the handler is busy", async || {
        frames.load(Ordering::SeqCst) == 1
    })
    .await;
    let asked = Instant::now();
    client.ping();
    client.expect("pong").await;
    // Answered at once, while the handler was still busy with that frame.
    assert_eq!(asked.elapsed(), Duration::ZERO);
    assert_eq!(handler.frames.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_falls_behind_meets_a_bounded_queue() {
    let handler = Slow {
        audio_delay: Duration::from_secs(60),
        ..Slow::default()
    };
    let logs = common::CapturedLogs::start();
    let mut client = serve(handler.clone(), DriverConfig::default().queue(8));
    client.open().await;
    client.audio(40);
    let disconnect = client.expect("disconnect").await;
    // More frames after the disconnect: none of them is logged again.
    client.audio(200);
    client.ping();
    assert_eq!(disconnect["parameters"]["reason"], "error");
    assert!(
        disconnect["parameters"]["info"]
            .as_str()
            .unwrap()
            .contains("fell behind"),
        "{disconnect}"
    );
    // Genesys closes; the server answers and ends the session, handler still stuck.
    client.close(CloseReason::Disconnect);
    while client.next(Duration::from_secs(5)).await.is_some() {}
    assert_eq!(handler.frames.load(Ordering::SeqCst), 1);
    assert_eq!(logs.count("WARN", "too slow"), 1, "{:?}", logs.lines());
}

#[tokio::test(start_paused = true)]
async fn the_handlers_last_events_go_out_before_closed_and_the_end_is_reported() {
    let handler = Slow::default();
    let mut client = serve(handler.clone(), DriverConfig::default());
    client.open().await;
    client.audio(5);
    client.dtmf('t');
    let event = client.expect("event").await;
    assert_eq!(event["parameters"]["entities"][0]["type"], "transcript");
    client.close(CloseReason::End);
    let last = client.expect("event").await;
    assert_eq!(last["parameters"]["entities"][0]["data"]["id"], "last");
    client.expect("closed").await;
    // The server closes the WebSocket.
    assert!(client.next(Duration::from_secs(5)).await.is_none());
    let end = ended_of(&handler).await;
    assert!(end.closed);
    assert_eq!(end.position, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn events_are_held_back_while_genesys_asks_to_wait() {
    let handler = Slow::default();
    let mut client = serve(handler.clone(), DriverConfig::default());
    client.open().await;
    client
        .session
        .error(ErrorParameters::new(429, "Too many requests").retry_after(Duration::from_secs(1)));
    client.flush();
    // The error is handled before the next message on the same socket.
    let asked = Instant::now();
    client.dtmf('t');
    let event = client.expect("event").await;
    assert_eq!(asked.elapsed(), Duration::from_secs(1));
    assert_eq!(event["parameters"]["entities"][0]["type"], "transcript");
}

#[tokio::test(start_paused = true)]
async fn the_handler_can_pause_the_stream() {
    let mut client = serve(Slow::default(), DriverConfig::default());
    client.open().await;
    client.dtmf('p');
    client.expect("pause").await;
    // The client session answered `paused` by itself.
    assert!(client.session.is_paused());
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_closed_after_the_idle_timeout() {
    let handler = Slow::default();
    let config = DriverConfig::default().idle_timeout(Duration::from_secs(1));
    let mut client = serve(handler.clone(), config);
    client.open().await;
    // Messages keep it open: one every 200 ms for 1.6 s, longer than the timeout.
    let mut pings = tokio::time::interval(Duration::from_millis(200));
    for _ in 0..8 {
        pings.tick().await;
        client.ping();
        client.expect("pong").await;
    }
    // ...silence does not: the session ends exactly one timeout after the last ping.
    let started = Instant::now();
    while client.next(Duration::from_secs(5)).await.is_some() {}
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let ended = ended_of(&handler).await;
    assert!(ended.error.unwrap().contains("idle"));
}

/// A transcriber that names each utterance by where it starts.
struct Fixed;

impl genesys_webhook::audiohook::transcription::Transcriber for Fixed {
    fn wants_audio(&self) -> bool {
        false
    }

    async fn utterance(
        &mut self,
        _: genesys_webhook::audiohook::transcription::ChannelUtterance,
        _: Option<&str>,
    ) -> Option<(String, f64)> {
        Some(("words".to_owned(), 0.9))
    }
}

/// The transcripts (offset, duration, channel) of 12 s of stereo audio with voice on
/// the external channel at 1–2.5 s, 4–5 s, 7.2–9.4 s (across 8 s) and 10–11 s, sent at
/// once; with `discard`, `discarded {start: PT8.0S, discarded: PT0.5S}` goes out after
/// the frame that ends at 8 s, as Genesys' "Test Discard During Utterance" sends it.
async fn transcripts_of_the_suites_audio(discard: bool) -> Vec<(f64, f64, u64)> {
    use genesys_webhook::audiohook::transcription::TranscriptionHandler;
    // All 12 s arrive at once: room for every frame.
    let config = DriverConfig::default().queue(256);
    let mut client = serve(TranscriptionHandler::new(Fixed), config);
    client.open().await;
    let voiced = |ms: u64| {
        [(1000, 2500), (4000, 5000), (7200, 9400), (10_000, 11_000)]
            .iter()
            .any(|(from, to)| (*from..*to).contains(&ms))
    };
    for frame in 0..120u64 {
        let external = if voiced(frame * 100) { 0x10u8 } else { 0xff };
        let data: Vec<u8> = (0..800).flat_map(|_| [external, 0xff]).collect();
        client.session.send_audio(data.into()).unwrap();
        if discard && frame == 79 {
            assert_eq!(client.session.position(), Duration::from_secs(8));
            client.session.discarded(Duration::from_millis(500));
        }
    }
    client.close(CloseReason::End);
    let mut transcripts = Vec::new();
    loop {
        let message = client.next(Duration::from_secs(10)).await.expect("closed");
        match message["type"].as_str() {
            Some("event") => {
                for entity in message["parameters"]["entities"].as_array().unwrap() {
                    let data = &entity["data"];
                    let seconds = |field: &str| {
                        let text = data[field].as_str().unwrap();
                        text.trim_start_matches("PT")
                            .trim_end_matches('S')
                            .parse::<f64>()
                            .unwrap()
                    };
                    transcripts.push((
                        seconds("offset"),
                        seconds("duration"),
                        data["channelId"].as_u64().unwrap(),
                    ));
                }
            }
            Some("closed") => break,
            _ => {}
        }
    }
    transcripts
}

#[tokio::test(start_paused = true)]
async fn a_discard_during_an_utterance_leaves_the_transcripts_as_they_were() {
    let plain = transcripts_of_the_suites_audio(false).await;
    let discarded = transcripts_of_the_suites_audio(true).await;
    assert_eq!(plain.len(), 4, "{plain:?}");
    assert_eq!(discarded, plain);
}

#[tokio::test(start_paused = true)]
async fn a_connection_probe_is_answered_without_the_handler() {
    let handler = Slow::default();
    let ended = Arc::clone(&handler.ended);
    let mut client = serve(handler, DriverConfig::default());
    let media = vec![Media::audio(
        MediaFormat::Pcmu,
        &[MediaChannel::External],
        8000,
    )];
    client.session.open(OpenParameters::probe(ORG, media));
    client.flush();
    let opened = client.expect("opened").await;
    assert_eq!(opened["parameters"]["media"], json!([]), "{opened}");
    client.close(CloseReason::End);
    client.expect("closed").await;
    // The server closes the socket; the handler heard nothing, not even the end.
    assert!(client.next(Duration::from_secs(5)).await.is_none());
    assert!(ended.lock().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn audio_back_leaves_at_real_time_pace_in_frames_of_at_most_200_ms() {
    let mut client = serve(Slow::default(), DriverConfig::default());
    client.open().await;
    client.dtmf('a');
    let mut frames = Vec::new();
    let mut received = 0;
    while received < 12_000 {
        let message =
            tokio::time::timeout(Duration::from_secs(10), client.socket.incoming.recv()).await;
        match message {
            Ok(Some(Message::Binary(data))) => {
                received += data.len();
                frames.push((Instant::now(), data.len()));
            }
            Ok(Some(_)) => {}
            other => panic!("{other:?} after {received} bytes"),
        }
    }
    assert_eq!(received, 12_000);
    assert!(frames.iter().all(|(_, n)| *n <= 1600), "{frames:?}");
    // 1.5 s of audio, at most 400 ms ahead: the last frame at least 1.1 s after the
    // first (paused time: exact, whatever the machine's speed).
    let spread = frames.last().unwrap().0 - frames[0].0;
    assert!(spread >= Duration::from_millis(1100), "{spread:?}");
    assert!(spread <= Duration::from_millis(1500), "{spread:?}");
}

#[tokio::test(start_paused = true)]
async fn closed_is_not_held_back_by_a_429() {
    let mut client = serve(Slow::default(), DriverConfig::default());
    client.open().await;
    client
        .session
        .error(ErrorParameters::new(429, "Too many requests").retry_after(Duration::from_secs(60)));
    client.close(CloseReason::End);
    let asked = Instant::now();
    client.expect("closed").await;
    assert!(
        asked.elapsed() < Duration::from_secs(60),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn the_end_names_the_servers_disconnect_after_a_proper_close() {
    let handler = Slow::default();
    let ended = Arc::clone(&handler.ended);
    let mut client = serve(handler, DriverConfig::default());
    client.open().await;
    client.dtmf('d');
    client.expect("disconnect").await;
    client.close(CloseReason::Disconnect);
    // The handler's last event, then `closed`.
    loop {
        let message = client.next(Duration::from_secs(5)).await.expect("closed");
        if message["type"] == "closed" {
            break;
        }
    }
    while client.next(Duration::from_secs(5)).await.is_some() {}
    let end = wait_for_end(&ended).await;
    assert!(end.closed);
    assert_eq!(
        end.disconnected,
        Some(genesys_webhook::audiohook::protocol::DisconnectReason::Completed)
    );
}

/// The end the handler was told, once it was.
async fn wait_for_end(ended: &Arc<tokio::sync::Mutex<Option<SessionEnd>>>) -> SessionEnd {
    common::eventually("the handler hears the end", async || {
        ended.lock().await.is_some()
    })
    .await;
    ended.lock().await.clone().expect("an end")
}

async fn ended_of(handler: &Slow) -> SessionEnd {
    wait_for_end(&handler.ended).await
}

/// The axum upgrade and real sockets: what an in-memory end cannot show.
mod sockets {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use axum::routing::get;
    use axum::Router;
    use futures_util::{SinkExt, StreamExt};
    use genesys_webhook::audiohook::{AudioHookSignatureLayer, AudioHookUpgrade, DriverConfig};
    use serde_json::{json, Value};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    use super::{wait_for_end, Slow, KEY, ORG, SESSION};

    async fn serve(handler: Slow, config: DriverConfig) -> SocketAddr {
        let layer = AudioHookSignatureLayer::builder()
            .unsigned_key(KEY)
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/ws",
                get(move |upgrade: AudioHookUpgrade| {
                    let handler = handler.clone();
                    let config = config.clone();
                    async move { upgrade.config(config).serve(handler) }
                }),
            )
            .route_layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// Connects, sends `open` (seq 1) and waits for `opened`.
    async fn opened(addr: SocketAddr) -> Socket {
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        for (name, value) in [
            ("x-api-key", KEY),
            ("audiohook-organization-id", ORG),
            ("audiohook-session-id", SESSION),
            (
                "audiohook-correlation-id",
                "e160e428-53e2-487c-977d-96989bf5c99d",
            ),
        ] {
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let open = json!({"version": "2", "id": SESSION, "type": "open", "seq": 1,
            "serverseq": 0, "position": "PT0S", "parameters": {
            "organizationId": ORG, "conversationId": "4f3b8ad8-9f2b-4c4e-8a8f-5a7f0e6f2d11",
            "participant": {"id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0", "ani": "", "aniName": "", "dnis": ""},
            "media": [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}]}});
        socket
            .send(Message::Text(open.to_string().into()))
            .await
            .unwrap();
        assert_eq!(next(&mut socket).await.unwrap()["type"], "opened");
        socket
    }

    async fn next(socket: &mut Socket) -> Option<Value> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).unwrap())
                }
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        }
    }

    #[tokio::test]
    async fn a_route_without_the_layer_is_a_server_error_not_an_open_door() {
        let app = Router::new().route(
            "/ws",
            get(|upgrade: AudioHookUpgrade| async move { upgrade.serve(Slow::default()) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let request = format!("ws://{addr}/ws").into_client_request().unwrap();
        let error = tokio_tungstenite::connect_async(request).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
            panic!("{error}")
        };
        assert_eq!(response.status(), 500);
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_is_disconnected_at_the_write_deadline() {
        let handler = Slow::default();
        let ended = Arc::clone(&handler.ended);
        let config = DriverConfig::default().write_timeout(Duration::from_millis(300));
        let mut socket = opened(serve(handler, config).await).await;
        // Ask for 50 MB of events, then never read again.
        let dtmf = json!({"version": "2", "id": SESSION, "type": "dtmf", "seq": 2,
            "serverseq": 1, "position": "PT0S", "parameters": {"digit": "f"}});
        socket
            .send(Message::Text(dtmf.to_string().into()))
            .await
            .unwrap();
        let end = wait_for_end(&ended).await;
        let error = end.error.unwrap_or_default();
        assert!(error.contains("stopped reading"), "{error}");
        drop(socket);
    }

    #[tokio::test]
    async fn a_text_frame_over_the_websocket_limit_gets_a_disconnect_not_a_bare_close() {
        let mut socket = opened(serve(Slow::default(), DriverConfig::default()).await).await;
        let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(300 * 1024));
        socket.send(Message::Text(big.into())).await.unwrap();
        let disconnect = next(&mut socket).await.expect("disconnect");
        assert_eq!(disconnect["type"], "disconnect", "{disconnect}");
        assert_eq!(disconnect["parameters"]["reason"], "error");
        let info = disconnect["parameters"]["info"].as_str().unwrap();
        assert!(info.starts_with("Client Error:"), "{info}");
    }
}
