//! The axum driver over real sockets: pings answered while the handler is busy, a
//! handler that falls behind meets a bounded queue, events held back on 429, the
//! handler's last events go out before `closed`.

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use genesys_webhook::audiohook::protocol::{CloseReason, MediaChannel, Transcript};
use genesys_webhook::audiohook::session::{AudioFrame, SessionEvent};
use genesys_webhook::audiohook::{
    AudioHookHandler, AudioHookSignatureLayer, AudioHookUpgrade, DriverConfig, SessionControl,
    SessionEnd,
};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    socket: Socket,
    seq: u64,
    serverseq: u64,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
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
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        Self {
            socket,
            seq: 0,
            serverseq: 0,
        }
    }

    async fn send(&mut self, kind: &str, parameters: Value) {
        self.seq += 1;
        let message = json!({"version": "2", "id": SESSION, "type": kind, "seq": self.seq,
            "serverseq": self.serverseq, "position": "PT0S", "parameters": parameters});
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// The next text message, within `within`.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    self.serverseq = value["seq"].as_u64().unwrap();
                    return Some(value);
                }
                Ok(Some(Ok(_))) => {}
                _ => return None,
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

    async fn open(&mut self) {
        self.send("open", json!({
            "organizationId": ORG, "conversationId": "4f3b8ad8-9f2b-4c4e-8a8f-5a7f0e6f2d11",
            "participant": {"id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0", "ani": "", "aniName": "", "dnis": ""},
            "media": [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}],
        })).await;
        self.expect("opened").await;
    }

    async fn audio(&mut self, frames: usize) {
        for _ in 0..frames {
            self.socket
                .send(Message::Binary(vec![0xff; 3200].into()))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn pings_are_answered_at_once_while_the_handler_is_busy() {
    let handler = Slow {
        audio_delay: Duration::from_secs(3600),
        ..Slow::default()
    };
    let addr = serve(handler.clone(), DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client.audio(3).await;
    // The handler is now stuck in its first frame, for an hour.
    let frames = Arc::clone(&handler.frames);
    common::eventually("the handler is busy", async || {
        frames.load(Ordering::SeqCst) == 1
    })
    .await;
    client.send("ping", json!({})).await;
    client.expect("pong").await;
    // Answered while the handler was still busy with that frame.
    assert_eq!(handler.frames.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_handler_that_falls_behind_meets_a_bounded_queue() {
    let handler = Slow {
        audio_delay: Duration::from_secs(60),
        ..Slow::default()
    };
    let logs = common::CapturedLogs::start();
    let addr = serve(handler.clone(), DriverConfig::default().queue(8)).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client.audio(40).await;
    let disconnect = client.expect("disconnect").await;
    // More frames after the disconnect: none of them is logged again.
    client.audio(200).await;
    client.send("ping", json!({})).await;
    assert_eq!(disconnect["parameters"]["reason"], "error");
    assert!(
        disconnect["parameters"]["info"]
            .as_str()
            .unwrap()
            .contains("fell behind"),
        "{disconnect}"
    );
    // Genesys closes; the server answers and ends the session, handler still stuck.
    client.send("close", json!({"reason": "disconnect"})).await;
    while client.next(Duration::from_secs(5)).await.is_some() {}
    assert_eq!(handler.frames.load(Ordering::SeqCst), 1);
    assert_eq!(logs.count("WARN", "too slow"), 1, "{:?}", logs.lines());
}

#[tokio::test]
async fn the_handlers_last_events_go_out_before_closed_and_the_end_is_reported() {
    let handler = Slow::default();
    let addr = serve(handler.clone(), DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client.audio(5).await;
    client.send("dtmf", json!({"digit": "t"})).await;
    let event = client.expect("event").await;
    assert_eq!(event["parameters"]["entities"][0]["type"], "transcript");
    client.send("close", json!({"reason": "end"})).await;
    let last = client.expect("event").await;
    assert_eq!(last["parameters"]["entities"][0]["data"]["id"], "last");
    client.expect("closed").await;
    // The server closes the WebSocket.
    let end = tokio::time::timeout(Duration::from_secs(5), client.socket.next())
        .await
        .unwrap();
    assert!(
        matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
        "{end:?}"
    );
    let end = ended_of(&handler).await;
    assert!(end.closed);
    assert_eq!(end.position, Duration::from_secs(1));
}

#[tokio::test]
async fn events_are_held_back_while_genesys_asks_to_wait() {
    let handler = Slow::default();
    let addr = serve(handler.clone(), DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client
        .send(
            "error",
            json!({"code": 429, "message": "Too many requests", "retryAfter": "PT1S"}),
        )
        .await;
    // The error is handled before the next message on the same socket: no waiting.
    let asked = Instant::now();
    client.send("dtmf", json!({"digit": "t"})).await;
    let event = client.expect("event").await;
    assert!(
        asked.elapsed() >= Duration::from_millis(800),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(event["parameters"]["entities"][0]["type"], "transcript");
}

#[tokio::test]
async fn the_handler_can_pause_the_stream() {
    let handler = Slow::default();
    let addr = serve(handler.clone(), DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client.send("dtmf", json!({"digit": "p"})).await;
    client.expect("pause").await;
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
async fn a_silent_peer_is_closed_after_the_idle_timeout() {
    let handler = Slow::default();
    let config = DriverConfig::default().idle_timeout(Duration::from_secs(1));
    let addr = serve(handler.clone(), config).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    // Messages keep it open: one every 200 ms for 1.6 s, longer than the timeout.
    let mut pings = tokio::time::interval(Duration::from_millis(200));
    for _ in 0..8 {
        pings.tick().await;
        client.send("ping", json!({})).await;
        client.expect("pong").await;
    }
    // ...silence does not.
    let started = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match client.socket.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "still open");
    // Not before the timeout (a lower bound: a slow machine only makes it later).
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
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
    let layer = AudioHookSignatureLayer::builder()
        .unsigned_key(KEY)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/ws",
            get(|upgrade: AudioHookUpgrade| async move {
                // All 12 s arrive at once: room for every frame.
                upgrade
                    .config(DriverConfig::default().queue(256))
                    .serve(TranscriptionHandler::new(Fixed))
            }),
        )
        .route_layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut client = Client::connect(addr).await;
    client.open().await;
    let voiced = |ms: u64| {
        [(1000, 2500), (4000, 5000), (7200, 9400), (10_000, 11_000)]
            .iter()
            .any(|(from, to)| (*from..*to).contains(&ms))
    };
    for frame in 0..120u64 {
        let external = if voiced(frame * 100) { 0x10u8 } else { 0xff };
        let data: Vec<u8> = (0..800).flat_map(|_| [external, 0xff]).collect();
        client
            .socket
            .send(Message::Binary(data.into()))
            .await
            .unwrap();
        if discard && frame == 79 {
            client
                .send(
                    "discarded",
                    json!({"start": "PT8.0S", "discarded": "PT0.5S"}),
                )
                .await;
        }
    }
    client.send("close", json!({"reason": "end"})).await;
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

#[tokio::test]
async fn a_discard_during_an_utterance_leaves_the_transcripts_as_they_were() {
    let plain = transcripts_of_the_suites_audio(false).await;
    let discarded = transcripts_of_the_suites_audio(true).await;
    assert_eq!(plain.len(), 4, "{plain:?}");
    assert_eq!(discarded, plain);
}

#[tokio::test]
async fn a_connection_probe_is_answered_without_the_handler() {
    let handler = Slow::default();
    let ended = Arc::clone(&handler.ended);
    let addr = serve(handler, DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    let zero = "00000000-0000-0000-0000-000000000000";
    client.send("open", json!({
        "organizationId": ORG, "conversationId": zero,
        "participant": {"id": zero, "ani": "", "aniName": "", "dnis": ""},
        "media": [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}],
    })).await;
    let opened = client.expect("opened").await;
    assert_eq!(opened["parameters"]["media"], json!([]), "{opened}");
    client.send("close", json!({"reason": "end"})).await;
    client.expect("closed").await;
    // The server closes the socket; the handler heard nothing, not even the end.
    assert!(client.next(Duration::from_secs(5)).await.is_none());
    assert!(ended.lock().await.is_none());
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_disconnected_at_the_write_deadline() {
    let handler = Slow::default();
    let ended = Arc::clone(&handler.ended);
    let addr = serve(
        handler,
        DriverConfig::default().write_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    // Ask for 50 MB of events, then never read again.
    client.send("dtmf", json!({"digit": "f"})).await;
    let end = wait_for_end(&ended).await;
    let error = end.error.unwrap_or_default();
    assert!(error.contains("stopped reading"), "{error}");
    drop(client);
}

#[tokio::test]
async fn audio_back_leaves_at_real_time_pace_in_frames_of_at_most_200_ms() {
    let addr = serve(Slow::default(), DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client.send("dtmf", json!({"digit": "a"})).await;
    let mut frames = Vec::new();
    let mut received = 0;
    while received < 12_000 {
        match tokio::time::timeout(Duration::from_secs(10), client.socket.next()).await {
            Ok(Some(Ok(Message::Binary(data)))) => {
                received += data.len();
                frames.push((Instant::now(), data.len()));
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("{other:?} after {received} bytes"),
        }
    }
    assert_eq!(received, 12_000);
    assert!(frames.iter().all(|(_, n)| *n <= 1600), "{frames:?}");
    // 1.5 s of audio, at most 400 ms ahead: the last frame at least 1 s after the first.
    let spread = frames.last().unwrap().0 - frames[0].0;
    assert!(spread >= Duration::from_millis(1000), "{spread:?}");
}

#[tokio::test]
async fn a_text_frame_over_the_websocket_limit_gets_a_disconnect_not_a_bare_close() {
    let addr = serve(Slow::default(), DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(300 * 1024));
    client.socket.send(Message::Text(big.into())).await.unwrap();
    let disconnect = client.expect("disconnect").await;
    assert_eq!(disconnect["parameters"]["reason"], "error");
    let info = disconnect["parameters"]["info"].as_str().unwrap();
    assert!(info.starts_with("Client Error:"), "{info}");
}

#[tokio::test]
async fn closed_is_not_held_back_by_a_429() {
    let addr = serve(Slow::default(), DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client
        .send(
            "error",
            json!({"code": 429, "message": "Too many requests", "retryAfter": "PT60S"}),
        )
        .await;
    client.send("close", json!({"reason": "end"})).await;
    // `expect` waits 5 s, far less than the 60 s hold.
    client.expect("closed").await;
}

#[tokio::test]
async fn the_end_names_the_servers_disconnect_after_a_proper_close() {
    let handler = Slow::default();
    let ended = Arc::clone(&handler.ended);
    let addr = serve(handler, DriverConfig::default()).await;
    let mut client = Client::connect(addr).await;
    client.open().await;
    client.send("dtmf", json!({"digit": "d"})).await;
    client.expect("disconnect").await;
    client.send("close", json!({"reason": "disconnect"})).await;
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
