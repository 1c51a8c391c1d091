//! For benchmarks only (`scripts/load.sh compare`): one handler served three ways, so
//! that wrk can weigh the signature layer against the check most users would write by
//! hand and against no check at all. Not an example to copy.
//!
//! - `POST /layer`: behind `GenesysSignatureLayer` with its defaults;
//! - `POST /hand`: axum's `Bytes` extractor, `Hmac<Sha256>` over the whole body,
//!   `hex::encode`, and a `subtle` comparison with `X-Genesys-Signature`;
//! - `POST /plain`: the handler alone.
//!
//! The three routes run the same handler code, [`respond`]: it parses the JSON with
//! `serde_json::from_slice` and answers a small JSON object. (axum's `Json<T>`
//! extractor would add a `Content-Type` check and error paths to the routes that can
//! use it, but not to the hand-written one, which must take `Bytes` to hash them.)
//! Two more routes, for `scripts/instructions.sh compare`:
//! - `POST /layer/json`: the layer with the handler taking `Json<Value>` instead, to
//!   weigh that extractor on its own;
//! - `POST /buffered`: the handler behind the least a body-reading middleware does
//!   (read the whole body, hand the bytes on as a new body type, keep tower's
//!   clone-and-swap of the inner service), with no check at all: the floor under any
//!   layer that verifies a body before the handler runs.
//!
//! Two more, for `scripts/load.sh bot`:
//! - `POST /bot/messages`: a Bot Connector turn through `BotConnectorRouter` (the
//!   credential header `X-Bot-Connector-Secret: <BENCH_SECRET>`, typed parsing, the
//!   deadline, the intent check), answered with the customer's text;
//! - `POST /bot-bare`: the same answer from a bare handler taking `Json<Value>`.
//!
//! Two more, for `scripts/load.sh relay`: the application `genesys-webhook serve`
//! forwards to.
//! - `POST /app`: answers `204` at once and records how long ago the relay stored the
//!   event (`Genesys-Webhook-Received-At`, millisecond precision);
//! - `GET /app/latency`: those delays' count, p50, p99 and maximum in milliseconds, as
//!   JSON; the record starts anew.
//!
//! `LISTEN_ADDR` (default `127.0.0.1:5002`) and `BENCH_SECRET` (default `bench-secret`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use genesys_webhook::botconnector::{
    Bot, BotConnectorRouter, BotCredentialsLayer, BotHandler, BotVersion, TurnRequest, TurnResponse,
};
use genesys_webhook::GenesysSignatureLayer;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

#[path = "../examples/common/process.rs"]
mod process;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    process::init_tracing();
    process::exit(run().await)
}

async fn run() -> Result<(), axum::BoxError> {
    let secret = std::env::var("BENCH_SECRET").unwrap_or_else(|_| "bench-secret".into());
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:5002".into());
    let layer = GenesysSignatureLayer::builder()
        .secret(secret.clone())
        .build()?;
    let credentials = BotCredentialsLayer::new("X-Bot-Connector-Secret", &secret)?;
    let bot = BotConnectorRouter::new(BenchBot, credentials).into_router()?;
    let app = Router::new()
        .nest("/bot", bot)
        .route("/bot-bare", post(bot_bare))
        .route("/layer", post(handle).route_layer(layer.clone()))
        .route("/layer/json", post(handle_json).route_layer(layer))
        .route("/hand", post(hand_written))
        .route("/app", post(application))
        .route("/app/latency", axum::routing::get(latency))
        .route("/plain", post(handle))
        .route(
            "/buffered",
            post(handle).route_layer(tower::layer::layer_fn(Buffered)),
        )
        .with_state(secret)
        // The hand-written route reads the body with `Bytes`: let it take 1 MiB too.
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(process::shutdown_signal())
        .await?;
    Ok(())
}

/// Delays from the relay's acceptance to `/app`, in microseconds.
static DELAYS: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// `/app`: the relay's application, answering at once.
async fn application(headers: HeaderMap) -> StatusCode {
    let received = headers
        .get("genesys-webhook-received-at")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| humantime::parse_rfc3339(v).ok());
    if let Some(received) = received {
        let delay = std::time::SystemTime::now()
            .duration_since(received)
            .unwrap_or_default();
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        DELAYS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(micros);
    }
    StatusCode::NO_CONTENT
}

/// `/app/latency`: the delays recorded since the last call.
async fn latency() -> Json<Value> {
    let mut delays = std::mem::take(&mut *DELAYS.lock().unwrap_or_else(|e| e.into_inner()));
    delays.sort_unstable();
    let at = |q: f64| {
        let index = ((delays.len() as f64 - 1.0) * q).round() as usize;
        delays
            .get(index)
            .map_or(0.0, |&micros| micros as f64 / 1000.0)
    };
    Json(json!({
        "count": delays.len(),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    }))
}

/// The handler of `/layer` and `/plain`.
async fn handle(body: Bytes) -> Response {
    respond(&body)
}

/// The bot of `/bot/messages`: echoes the customer's text.
struct BenchBot;

impl BotHandler for BenchBot {
    fn bots(&self) -> Vec<Bot> {
        vec![Bot::new("bench-bot", "Bench bot").version(BotVersion::new("1", ["en-us"], ["Done"]))]
    }

    async fn turn(&self, turn: TurnRequest) -> TurnResponse {
        TurnResponse::more_data().text(turn.text().unwrap_or_default())
    }
}

/// The baseline of `/bot/messages`: the same answer from `Json<Value>`, unchecked.
async fn bot_bare(Json(turn): Json<Value>) -> Response {
    let text = turn["inputMessage"]["text"].as_str().unwrap_or_default();
    Json(json!({"botState": "MoreData", "replyMessages": [{"type": "Text", "text": text}]}))
        .into_response()
}

/// The handler all three routes share: parses the event and answers a small JSON object.
fn respond(body: &[u8]) -> Response {
    match serde_json::from_slice::<Value>(body) {
        Ok(event) => answer(&event),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

fn answer(event: &Value) -> Response {
    Json(json!({ "ok": true, "fields": event.as_object().map_or(0, |o| o.len()) })).into_response()
}

/// The same answer, with axum's `Json` extractor doing the parsing.
async fn handle_json(Json(event): Json<Value>) -> Response {
    answer(&event)
}

/// The signature check as most users would write it.
async fn hand_written(State(secret): State<String>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(received) = headers.get("x-genesys-signature") else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    mac.update(&body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if !bool::from(expected.as_bytes().ct_eq(received.as_bytes())) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    respond(&body)
}

/// The least a body-reading middleware does: read the whole body, then call the inner
/// service with the bytes as a new body.
#[derive(Clone)]
struct Buffered<S>(S);

impl<S> tower::Service<Request<Body>> for Buffered<S>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.0.clone();
        let mut inner = std::mem::replace(&mut self.0, clone);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            match body.collect().await {
                Ok(collected) => {
                    let body = Full::new(collected.to_bytes());
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(_) => Ok(StatusCode::BAD_REQUEST.into_response()),
            }
        })
    }
}
