//! The endpoints Genesys calls below the integration's "Bot Connector URI", as an axum
//! router: the bot listing and one turn at a time, under a deadline.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::StatusCode;

use super::bot::{Bot, InvalidBot};
use super::layer::BotCredentialsLayer;
use super::reply::{BotState, ErrorInfo, TurnResponse};
use super::turn::TurnRequest;
use crate::http::json::json_response;
use crate::http::log::RefusalLog;

/// How long a turn may take by default: below Architect's default "Bot Response
/// Timeout" of 30 s, so that Genesys hears `Failed` rather than nothing.
pub const DEFAULT_TURN_DEADLINE: Duration = Duration::from_secs(25);

/// The largest turn read by default.
pub const DEFAULT_TURN_BODY_LIMIT: usize = 256 * 1024;

/// What the application implements: its bots, and one answer per customer turn.
///
/// ```
/// use genesys_webhook::botconnector::{Bot, BotHandler, BotVersion, TurnRequest, TurnResponse};
///
/// struct Echo;
///
/// impl BotHandler for Echo {
///     fn bots(&self) -> Vec<Bot> {
///         vec![Bot::new("echo", "Echo").version(BotVersion::new("1", ["en-us"], ["Done"]))]
///     }
///
///     async fn turn(&self, turn: TurnRequest) -> TurnResponse {
///         match turn.text() {
///             Some("done") => TurnResponse::complete("Done"),
///             other => TurnResponse::more_data().text(other.unwrap_or("?")),
///         }
///     }
/// }
/// ```
pub trait BotHandler: Send + Sync + 'static {
    /// The bots this service runs, as Genesys lists them (`GET {base}/bots`). Called
    /// for every listing and every turn, so keep it cheap.
    fn bots(&self) -> Vec<Bot>;

    /// Answers one customer turn. It runs under the router's deadline; past it Genesys
    /// is answered `Failed` and this future is dropped.
    fn turn(&self, turn: TurnRequest) -> impl Future<Output = TurnResponse> + Send;
}

/// Builds the router Genesys' Digital Bot Connector calls: `GET /bots`,
/// `GET /bots/{botId}` and `POST /messages`, all behind a [`BotCredentialsLayer`].
/// Nest it under the path of the integration's "Bot Connector URI".
///
/// Each turn:
/// - over the body limit (default 256 KiB): `413 {"error":"payload_too_large"}`;
/// - not a turn: `400 {"error":"invalid_turn","reason":"…"}`;
/// - for a bot not listed: `404 {"error":"unknown_bot"}`;
/// - otherwise `200` with the handler's answer, or `Failed` with `errorInfo` when the
///   handler passed the deadline (`BotTimeout`), panicked (`BotError`), completed with
///   an intent the bot does not declare (`UndeclaredIntent`, since Genesys would take
///   the failure path anyway) or gave a confidence outside 0 to 1 (`InvalidAnswer`).
///
/// ```
/// use axum::Router;
/// use genesys_webhook::botconnector::{
///     Bot, BotConnectorRouter, BotCredentialsLayer, BotHandler, BotVersion, TurnRequest,
///     TurnResponse,
/// };
///
/// struct Echo;
/// impl BotHandler for Echo {
///     fn bots(&self) -> Vec<Bot> {
///         vec![Bot::new("echo", "Echo").version(BotVersion::new("1", ["en-us"], ["Done"]))]
///     }
///     async fn turn(&self, turn: TurnRequest) -> TurnResponse {
///         TurnResponse::more_data().text(turn.text().unwrap_or_default())
///     }
/// }
///
/// let credentials = BotCredentialsLayer::new("X-Bot-Connector-Secret", "s3cret")?;
/// let app: Router = Router::new().nest(
///     "/botconnector",
///     BotConnectorRouter::new(Echo, credentials).into_router()?,
/// );
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub struct BotConnectorRouter<H> {
    handler: H,
    credentials: BotCredentialsLayer,
    deadline: Duration,
    body_limit: usize,
}

impl<H: BotHandler> BotConnectorRouter<H> {
    /// Serves `handler`'s bots to requests that pass `credentials`.
    pub fn new(handler: H, credentials: BotCredentialsLayer) -> Self {
        Self {
            handler,
            credentials,
            deadline: DEFAULT_TURN_DEADLINE,
            body_limit: DEFAULT_TURN_BODY_LIMIT,
        }
    }

    /// How long a turn may take before Genesys is answered `Failed` (default 25 s).
    /// Keep it below the flow's "Bot Response Timeout".
    pub fn turn_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The largest turn body read (default 256 KiB).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The router, to nest under the Bot Connector URI's path.
    ///
    /// # Errors
    ///
    /// [`InvalidBot`] when a bot the handler lists breaks Genesys' rules
    /// ([`Bot::validate`]) or two bots share an id.
    pub fn into_router<S>(self) -> Result<Router<S>, InvalidBot>
    where
        S: Clone + Send + Sync + 'static,
    {
        let bots = self.handler.bots();
        for (i, bot) in bots.iter().enumerate() {
            bot.validate()?;
            if bots[..i].iter().any(|other| other.id == bot.id) {
                return Err(InvalidBot {
                    bot: bot.id.clone(),
                    reason: "two bots have this id".into(),
                });
            }
        }
        let shared = Arc::new(Shared {
            handler: self.handler,
            deadline: self.deadline,
            refused_answers: RefusalLog::new("Bot Connector answers replaced by Failed"),
        });
        Ok(Router::new()
            .route("/bots", get(list::<H>))
            .route("/bots/{bot_id}", get(one::<H>))
            .route("/messages", post(turn::<H>))
            .layer(DefaultBodyLimit::max(self.body_limit))
            .route_layer(self.credentials)
            .with_state(shared))
    }
}

impl<H> fmt::Debug for BotConnectorRouter<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotConnectorRouter")
            .field("credentials", &self.credentials)
            .field("deadline", &self.deadline)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

struct Shared<H> {
    handler: H,
    deadline: Duration,
    refused_answers: RefusalLog,
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(status, Bytes::from(body)).map(axum::body::Body::from),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error(status: StatusCode, code: &str, reason: Option<String>) -> Response {
    let mut body = serde_json::json!({ "error": code });
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    json(status, &body)
}

async fn list<H: BotHandler>(State(shared): State<Arc<Shared<H>>>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({ "entities": shared.handler.bots() }),
    )
}

async fn one<H: BotHandler>(
    State(shared): State<Arc<Shared<H>>>,
    Path(bot_id): Path<String>,
) -> Response {
    match shared.handler.bots().into_iter().find(|b| b.id == bot_id) {
        Some(bot) => json(StatusCode::OK, &bot),
        None => error(StatusCode::NOT_FOUND, "unknown_bot", None),
    }
}

async fn turn<H: BotHandler>(
    State(shared): State<Arc<Shared<H>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None)
        }
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                Some(rejection.body_text()),
            )
        }
    };
    let request = match TurnRequest::from_slice(&body) {
        Ok(request) => request,
        Err(reason) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_turn",
                Some(reason.to_string()),
            )
        }
    };
    let Some(bot) = shared
        .handler
        .bots()
        .into_iter()
        .find(|b| b.id == request.bot_id)
    else {
        return error(StatusCode::NOT_FOUND, "unknown_bot", None);
    };
    let version = request.bot_version.clone();
    let remaining = shared.deadline.saturating_sub(started.elapsed());
    let answer = answer_in_time(&shared, request, remaining).await;
    let answer = checked(&shared, &bot, version.as_deref(), answer);
    json(StatusCode::OK, &answer)
}

/// Runs the handler on its own task, so that a panic is answered too, and gives up at
/// the deadline (dropping the handler's future).
async fn answer_in_time<H: BotHandler>(
    shared: &Arc<Shared<H>>,
    request: TurnRequest,
    remaining: Duration,
) -> TurnResponse {
    let task = {
        let shared = Arc::clone(shared);
        tokio::spawn(async move { shared.handler.turn(request).await })
    };
    let abort = task.abort_handle();
    match tokio::time::timeout(remaining, task).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_panicked)) => {
            let error = ErrorInfo::new("BotError", "the bot failed before answering");
            shared.refused_answers.record("BotError", &error.message);
            TurnResponse::failed(error)
        }
        Err(_elapsed) => {
            abort.abort();
            let error = ErrorInfo::new(
                "BotTimeout",
                format!(
                    "the bot did not answer within {} ms",
                    shared.deadline.as_millis()
                ),
            );
            shared.refused_answers.record("BotTimeout", &error.message);
            TurnResponse::failed(error)
        }
    }
}

/// Replaces an answer Genesys would take the failure path for, or refuse, with a
/// `Failed` that says why.
fn checked<H>(
    shared: &Shared<H>,
    bot: &Bot,
    version: Option<&str>,
    answer: TurnResponse,
) -> TurnResponse {
    let problem = match (&answer.bot_state, answer.intent.as_deref()) {
        (BotState::Complete, None) => Some((
            "UndeclaredIntent",
            "the bot answered Complete without an intent".to_owned(),
        )),
        (BotState::Complete, Some(intent)) if !bot.declares_intent(version, intent) => Some((
            "UndeclaredIntent",
            format!("the bot answered Complete with intent {intent:?}, which it does not declare"),
        )),
        _ => None,
    }
    .or_else(|| {
        answer
            .confidence
            .filter(|c| !(0.0..=1.0).contains(c))
            .map(|c| {
                (
                    "InvalidAnswer",
                    format!("confidence {c} is not between 0 and 1"),
                )
            })
    });
    match problem {
        None => answer,
        Some((code, message)) => {
            shared.refused_answers.record(code, &message);
            TurnResponse::failed(ErrorInfo::new(code, message))
        }
    }
}
