//! An AudioHook server for the three Genesys Cloud integrations that speak the AudioHook
//! protocol, at one URL: AudioHook Monitor (records WAV), Transcription Connector
//! (sends transcripts) and Audio Connector (answers DTMF with tones, hands the digits
//! back to Architect). `AudioHookSignatureLayer` verifies the signed upgrade; the
//! library's session driver speaks the protocol. This file holds no protocol JSON.
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
//! | `AUDIOHOOK_RECORD_DIR` | Monitor: write each session's audio to `<session-id>.wav` (16-bit PCM) here | |
//! | `AUDIOHOOK_FAILURE` | `reject` (401 before the upgrade) or `disconnect` (upgrade, then `disconnect unauthorized`) | `reject` |
//! | `AUDIOHOOK_REQUEST_TIMEOUT_SECS` | total deadline of the upgrade request | `10` |
//! | `RUST_LOG` | log filter | `info` |
//!
//! Routes: `GET /audiohook/ws` (signed upgrade) and `GET /healthz`.
//!
//! Which integration a session comes from is read from its `open`: `inputVariables`
//! means Audio Connector, `supportedLanguages` Transcription Connector, anything else
//! Monitor. A `mode=monitor|transcription|connector` query parameter on the URL
//! configured in Genesys overrides that.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{BoxError, Router};
use genesys_webhook::audiohook::protocol::CloseReason;
use genesys_webhook::audiohook::session::{AudioFrame, OpenReply, OpenRequest, SessionEvent};
use genesys_webhook::audiohook::transcription::TranscriptionHandler;
use genesys_webhook::audiohook::{
    AudioHookHandler, AudioHookSignatureLayer, AudioHookUpgrade, FailureMode, SessionControl,
    SessionEnd,
};
use genesys_webhook::server::ServerLimits;

mod connector;
mod monitor;
mod transcription;

#[path = "../common/process.rs"]
mod process;

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
    let failure = match var("AUDIOHOOK_FAILURE").as_deref() {
        None | Some("reject") => FailureMode::Reject,
        Some("disconnect") => FailureMode::Disconnect,
        Some(_) => return Err("AUDIOHOOK_FAILURE is reject or disconnect".into()),
    };
    let builder = match var("AUDIOHOOK_CLIENT_SECRET") {
        Some(secret) => AudioHookSignatureLayer::builder().key(api_key, secret),
        None => {
            tracing::warn!(
                "AUDIOHOOK_CLIENT_SECRET is empty: unsigned upgrades carrying this API key are accepted"
            );
            AudioHookSignatureLayer::builder().unsigned_key(api_key)
        }
    };
    let layer = builder.failure_mode(failure).build()?;
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
    let limits = ServerLimits::default()
        .request_timeout(timeout)
        .max_connections(4096)
        .drain(timeout.min(Duration::from_secs(5)));
    genesys_webhook::server::serve(listener, app, limits, process::shutdown_signal()).await;
    tracing::info!("bye");
    Ok(())
}

#[derive(serde::Deserialize)]
struct Mode {
    mode: Option<String>,
}

async fn upgrade(
    upgrade: AudioHookUpgrade,
    Query(mode): Query<Mode>,
    State(settings): State<Settings>,
) -> Response {
    if let Some(verified) = upgrade.verified() {
        tracing::info!(
            session_id = verified.session_id().unwrap_or("-"),
            organization_id = verified.organization_id().unwrap_or("-"),
            correlation_id = verified.correlation_id().unwrap_or("-"),
            signed = verified.signed(),
            "AudioHook upgrade verified"
        );
    }
    upgrade.serve(App::Undecided {
        settings,
        mode: mode.mode,
    })
}

/// One session: which integration it serves is decided at `open`.
enum App {
    Undecided {
        settings: Settings,
        mode: Option<String>,
    },
    Monitor(monitor::Monitor),
    Transcription(TranscriptionHandler<transcription::SimulatedTranscriber>),
    Connector(connector::Connector),
}

impl AudioHookHandler for App {
    async fn open(&mut self, request: &OpenRequest, session: &SessionControl) -> OpenReply {
        let App::Undecided { settings, mode } = self else {
            return request.accept();
        };
        let parameters = &request.parameters;
        let mode = mode.clone().unwrap_or_else(|| {
            if parameters.input_variables.is_some() {
                "connector".into()
            } else if parameters.supported_languages.is_some() {
                "transcription".into()
            } else {
                "monitor".into()
            }
        });
        tracing::info!(%mode, conversation_id = %parameters.conversation_id, "session opening");
        let (app, reply) = match mode.as_str() {
            "transcription" => {
                let mut t =
                    TranscriptionHandler::new(transcription::SimulatedTranscriber::default());
                let reply = t.open(request, session).await;
                (App::Transcription(t), reply)
            }
            "connector" => {
                let (c, reply) = connector::Connector::open(request);
                (App::Connector(c), reply)
            }
            _ => {
                let id = session
                    .verified()
                    .and_then(|v| v.session_id())
                    .unwrap_or("session");
                let (m, reply) = monitor::Monitor::open(request, id, settings);
                (App::Monitor(m), reply)
            }
        };
        *self = app;
        reply
    }

    async fn audio(&mut self, frame: AudioFrame, session: &SessionControl) {
        match self {
            App::Monitor(m) => m.audio(&frame),
            App::Transcription(t) => t.audio(frame, session).await,
            App::Connector(_) | App::Undecided { .. } => {}
        }
    }

    async fn event(&mut self, event: SessionEvent, session: &SessionControl) {
        match self {
            App::Transcription(t) => t.event(event, session).await,
            App::Connector(c) => c.event(event, session).await,
            App::Monitor(_) | App::Undecided { .. } => {
                tracing::debug!(?event, "session event");
            }
        }
    }

    async fn close(&mut self, reason: CloseReason, session: &SessionControl) {
        tracing::info!(?reason, "session closing");
        if let App::Transcription(t) = self {
            t.close(reason, session).await;
        }
    }

    async fn end(&mut self, end: SessionEnd) {
        if let App::Monitor(m) = self {
            m.finish();
        }
        tracing::info!(
            closed = end.closed,
            disconnected = ?end.disconnected,
            error = end.error.as_deref().unwrap_or("-"),
            position_ms = end.position.as_millis() as u64,
            "session ended"
        );
    }
}
