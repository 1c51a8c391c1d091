//! An AudioHook (and Audio Connector) server you can run as is and copy: Genesys
//! Cloud's signed WebSocket upgrade is verified by `AudioHookSignatureLayer`, then the
//! session speaks the AudioHook protocol as Genesys' reference server does.
//!
//! ```text
//! AUDIOHOOK_API_KEY=... AUDIOHOOK_CLIENT_SECRET=... cargo run --example audiohook --features audiohook
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `AUDIOHOOK_API_KEY` | the integration's API key | required |
//! | `AUDIOHOOK_CLIENT_SECRET` | its client secret, base64 as Genesys shows it; empty accepts unsigned requests for this key only | empty |
//! | `LISTEN_ADDR` | address to listen on | `127.0.0.1:5001` |
//! | `AUDIOHOOK_RECORD_DIR` | write each session's audio to `<session-id>.wav` (16-bit PCM) here | |
//! | `AUDIOHOOK_REQUEST_TIMEOUT_SECS` | total deadline of the upgrade request | `10` |
//! | `RUST_LOG` | log filter | `info` |
//!
//! Routes: `GET /audiohook/ws` (signed upgrade) and `GET /healthz`.
//!
//! The protocol: `open` is answered `opened` with a PCMU 8 kHz format chosen from the
//! offer (stereo when offered, else mono), `ping` with `pong`, `close` with `closed`;
//! `paused`, `resumed`, `update`, `discarded` and `error` are logged. Every server
//! message carries `version`, `id`, `type`, `seq`, `clientseq` and `parameters`. A
//! client `seq` that is not the previous one plus one, or a malformed message, is
//! answered `disconnect` (reason `error`) and the connection is closed. Binary frames
//! are audio, counted per channel.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Extension, Router};
use genesys_webhook::audiohook::media::decode_mulaw;
use genesys_webhook::audiohook::{AudioHookSignatureLayer, VerifiedAudioHook};
use serde_json::{json, Value};

#[path = "../common/process.rs"]
mod process;
#[path = "../common/serve.rs"]
mod serve;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    process::init_tracing();
    process::exit(run().await)
}

#[derive(Clone)]
struct Settings {
    record_dir: Option<PathBuf>,
}

async fn run() -> Result<(), BoxError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let api_key = var("AUDIOHOOK_API_KEY")
        .ok_or("set AUDIOHOOK_API_KEY to the AudioHook integration's API key")?;
    let listen: SocketAddr = var("LISTEN_ADDR")
        .unwrap_or_else(|| "127.0.0.1:5001".into())
        .parse()
        .map_err(|_| "LISTEN_ADDR is not an address")?;
    let timeout = Duration::from_secs(
        var("AUDIOHOOK_REQUEST_TIMEOUT_SECS")
            .map(|v| v.parse())
            .transpose()
            .map_err(|_| "AUDIOHOOK_REQUEST_TIMEOUT_SECS is not a number")?
            .unwrap_or(10),
    );
    let layer = match var("AUDIOHOOK_CLIENT_SECRET") {
        Some(secret) => AudioHookSignatureLayer::builder().key(api_key, secret),
        None => {
            tracing::warn!(
                "AUDIOHOOK_CLIENT_SECRET is empty: unsigned upgrades carrying this API key are accepted"
            );
            AudioHookSignatureLayer::builder().unsigned_key(api_key)
        }
    }
    .failure_delay(Duration::from_millis(500))
    .build()?;
    let settings = Settings {
        record_dir: var("AUDIOHOOK_RECORD_DIR").map(PathBuf::from),
    };
    if let Some(dir) = &settings.record_dir {
        std::fs::create_dir_all(dir)?;
    }

    let app = Router::new()
        .route("/audiohook/ws", get(upgrade))
        .route_layer(layer)
        .route("/healthz", get(|| async { "ok" }))
        .with_state(settings);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    serve::serve(listener, app, timeout).await;
    tracing::info!("bye");
    Ok(())
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Extension(session): Extension<VerifiedAudioHook>,
    State(settings): State<Settings>,
) -> Response {
    tracing::info!(
        session_id = session.session_id().unwrap_or("-"),
        organization_id = session.organization_id().unwrap_or("-"),
        correlation_id = session.correlation_id().unwrap_or("-"),
        signed = session.signed(),
        "AudioHook upgrade verified"
    );
    ws.on_upgrade(move |socket| async move {
        let mut run = Session::new(settings);
        if let Err(reason) = run.serve(socket).await {
            tracing::warn!(%reason, "session ended with an error");
        }
    })
    .into_response()
}

/// One AudioHook session: sequence numbers, the chosen format, and the audio.
struct Session {
    settings: Settings,
    id: String,
    server_seq: u64,
    client_seq: u64,
    channels: usize,
    bytes_per_channel: Vec<u64>,
    wav: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
}

impl Session {
    fn new(settings: Settings) -> Self {
        Self {
            settings,
            id: String::new(),
            server_seq: 0,
            client_seq: 0,
            channels: 0,
            bytes_per_channel: Vec::new(),
            wav: None,
        }
    }

    fn message(&mut self, kind: &str, parameters: Value) -> Message {
        self.server_seq += 1;
        let message = json!({
            "version": "2",
            "id": self.id,
            "type": kind,
            "seq": self.server_seq,
            "clientseq": self.client_seq,
            "parameters": parameters,
        });
        Message::Text(message.to_string().into())
    }

    async fn serve(&mut self, mut socket: WebSocket) -> Result<(), String> {
        while let Some(message) = socket.recv().await {
            let message = message.map_err(|e| e.to_string())?;
            match message {
                Message::Text(text) => match self.handle(&text) {
                    Ok(Some(reply)) => {
                        let closing = self.replies_close(&reply);
                        socket.send(reply).await.map_err(|e| e.to_string())?;
                        if closing {
                            self.finish();
                            let _ = socket.send(Message::Close(None)).await;
                            return Ok(());
                        }
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        tracing::warn!(%reason, session_id = %self.id, "protocol error; disconnecting");
                        let disconnect = self
                            .message("disconnect", json!({ "reason": "error", "info": reason }));
                        let _ = socket.send(disconnect).await;
                        let _ = socket.send(Message::Close(None)).await;
                        self.finish();
                        return Err(reason);
                    }
                },
                Message::Binary(audio) => self.audio(&audio),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        self.finish();
        Ok(())
    }

    fn replies_close(&self, reply: &Message) -> bool {
        matches!(reply, Message::Text(t) if t.contains("\"type\":\"closed\""))
    }

    /// Answers one client message, or says why it is a protocol error.
    fn handle(&mut self, text: &str) -> Result<Option<Message>, String> {
        let message: Value =
            serde_json::from_str(text).map_err(|_| "malformed message".to_owned())?;
        let kind = message["type"]
            .as_str()
            .ok_or("message without a type")?
            .to_owned();
        let seq = message["seq"].as_u64().ok_or("message without a seq")?;
        if seq != self.client_seq + 1 {
            return Err(format!("seq {seq} after {}", self.client_seq));
        }
        if let Some(serverseq) = message.get("serverseq").and_then(Value::as_u64) {
            if serverseq > self.server_seq {
                return Err(format!("serverseq {serverseq} beyond {}", self.server_seq));
            }
        }
        self.client_seq = seq;
        if self.id.is_empty() {
            self.id = message["id"].as_str().unwrap_or_default().to_owned();
        }
        let parameters = &message["parameters"];
        match kind.as_str() {
            "open" => {
                let media = choose_media(parameters).ok_or("no PCMU 8 kHz format offered")?;
                self.channels = media["channels"].as_array().map_or(1, Vec::len);
                self.bytes_per_channel = vec![0; self.channels];
                self.start_recording();
                tracing::info!(session_id = %self.id, channels = self.channels, "session opened");
                Ok(Some(self.message(
                    "opened",
                    json!({ "startPaused": false, "media": [media] }),
                )))
            }
            "ping" => Ok(Some(self.message("pong", json!({})))),
            "close" => {
                tracing::info!(session_id = %self.id, reason = %parameters["reason"], "session closing");
                Ok(Some(self.message("closed", json!({}))))
            }
            "paused" | "resumed" | "update" | "discarded" | "error" | "dtmf"
            | "playback_started" | "playback_completed" => {
                tracing::info!(session_id = %self.id, kind, parameters = %parameters, "client message");
                Ok(None)
            }
            other => Err(format!("unknown message type {other:?}")),
        }
    }

    fn start_recording(&mut self) {
        let Some(dir) = &self.settings.record_dir else {
            return;
        };
        let name: String = self
            .id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let spec = hound::WavSpec {
            channels: u16::try_from(self.channels).unwrap_or(1),
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        match hound::WavWriter::create(dir.join(format!("{name}.wav")), spec) {
            Ok(writer) => self.wav = Some(writer),
            Err(error) => tracing::warn!(%error, "cannot record the session"),
        }
    }

    fn audio(&mut self, frame: &[u8]) {
        if self.channels == 0 {
            return;
        }
        for (i, byte) in frame.iter().enumerate() {
            self.bytes_per_channel[i % self.channels] += 1;
            if let Some(wav) = &mut self.wav {
                if wav.write_sample(decode_mulaw(*byte)).is_err() {
                    self.wav = None;
                    tracing::warn!("stopped recording after a write error");
                    break;
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(wav) = self.wav.take() {
            if let Err(error) = wav.finalize() {
                tracing::warn!(%error, "could not finish the recording");
            }
        }
        tracing::info!(
            session_id = %self.id,
            samples_per_channel = ?self.bytes_per_channel,
            "session ended"
        );
    }
}

/// The first offered format we take: PCMU at 8 kHz, stereo preferred.
fn choose_media(parameters: &Value) -> Option<Value> {
    let offers = parameters["media"].as_array()?;
    let usable = |offer: &&Value| {
        offer["type"] == "audio" && offer["format"] == "PCMU" && offer["rate"] == 8000
    };
    offers
        .iter()
        .filter(usable)
        .max_by_key(|offer| offer["channels"].as_array().map_or(0, Vec::len).min(2))
        .cloned()
}
