//! `genesys-webhook bot send`: play Genesys Cloud's Digital Bot Connector against a
//! bot, one turn at a time, with the integration's credential header.

use std::path::PathBuf;

use genesys_webhook::botconnector::{
    BotState, InputMessage, ReplyMessage, TurnRequest, TurnResponse, DEFAULT_CREDENTIAL_HEADER,
};
use serde_json::json;

use crate::output::{printable, progress, Failure, Report};
use crate::secret::Hidden;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Send one customer turn to `{url}/messages` and print the bot's answer.
    Send(SendArgs),
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// The bot connector's base URL (the integration's "Bot Connector URI"), e.g.
    /// http://127.0.0.1:5001/botconnector.
    #[arg(long)]
    url: String,
    /// The bot's id.
    #[arg(long)]
    bot: String,
    /// The bot's version.
    #[arg(long, default_value = "1")]
    version: String,
    /// What the customer types.
    #[arg(long, required_unless_present = "button")]
    text: Option<String>,
    /// The payload of a quick reply the customer chose, instead of --text.
    #[arg(long, conflicts_with = "text")]
    button: Option<String>,
    /// The bot session; the same for every turn of one conversation (default: a new one).
    #[arg(long)]
    session: Option<String>,
    /// The conversation's language.
    #[arg(long, default_value = "en-us")]
    language: String,
    /// An Architect session variable, NAME=VALUE; repeatable.
    #[arg(long = "parameter", value_parser = parse_pair)]
    parameters: Vec<(String, String)>,
    /// The integration's credential, NAME=VALUE; repeatable. Without it, the header
    /// named by BOT_CONNECTOR_HEADER (default X-Bot-Connector-Secret) carries
    /// BOT_CONNECTOR_SECRET.
    #[arg(long = "header", value_parser = parse_credential)]
    headers: Vec<(String, Hidden)>,
    /// The credential's value when no --header is given.
    #[arg(
        long,
        env = "BOT_CONNECTOR_SECRET",
        hide_env_values = true,
        hide = true
    )]
    secret: Option<Hidden>,
    /// The credential's header name when no --header is given.
    #[arg(long, env = "BOT_CONNECTOR_HEADER", default_value = DEFAULT_CREDENTIAL_HEADER, hide = true)]
    secret_header: String,
    /// Trust this PEM certificate (or bundle) too.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?}: expected NAME=VALUE")),
    }
}

fn parse_credential(text: &str) -> Result<(String, Hidden), String> {
    let (name, value) = parse_pair(text).map_err(|_| "expected NAME=VALUE".to_owned())?;
    Ok((name, value.parse().unwrap_or_else(|never| match never {})))
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    match args.command {
        Command::Send(args) => send(args, json).await,
    }
}

async fn send(args: SendArgs, json: bool) -> Result<Report, Failure> {
    let mut headers = args.headers.clone();
    if headers.is_empty() {
        let Some(secret) = args.secret.clone() else {
            return Err(Failure::io(
                "no credential: give --header NAME=VALUE, or set BOT_CONNECTOR_SECRET (and BOT_CONNECTOR_HEADER)",
            ));
        };
        headers.push((args.secret_header.clone(), secret));
    }
    let input = match (&args.text, &args.button) {
        (_, Some(payload)) => InputMessage::button_response(payload, payload),
        (Some(text), None) => InputMessage::text(text),
        (None, None) => return Err(Failure::io("give --text or --button")),
    };
    let session = args
        .session
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut turn = TurnRequest::new(&args.bot, &session, input)
        .bot_version(&args.version)
        .language_code(&args.language)
        .message_id(uuid::Uuid::new_v4().to_string());
    turn.bot_session_timeout = Some(60);
    turn.parameters.extend(args.parameters.iter().cloned());
    let url = if args.url.trim_end_matches('/').ends_with("/messages") {
        args.url.clone()
    } else {
        format!("{}/messages", args.url.trim_end_matches('/'))
    };
    let client = crate::input::http_client(args.cacert.as_deref()).await?;
    let mut request = client.post(&url).json(&turn);
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.expose());
    }
    progress(
        json,
        format!("POST {url} (bot {}, session {session})", args.bot),
    );
    let response = request
        .send()
        .await
        .map_err(|e| Failure::io(format!("could not reach {url}: {e}")))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::io(format!("could not read the answer: {e}")))?;
    if !status.is_success() {
        let shown = printable(&body, 1024);
        return Ok(Report::failed(
            format!("{status}\n{shown}"),
            json!({ "url": url, "status": status.as_u16(), "body": shown }),
        ));
    }
    let answer = TurnResponse::from_slice(&body).map_err(|e| {
        Failure::check(format!(
            "{status}, but the answer is not a turn response ({e}): {}",
            printable(&body, 1024)
        ))
    })?;
    let doc = json!({
        "url": url,
        "status": status.as_u16(),
        "session": session,
        "answer": serde_json::to_value(&answer).unwrap_or_default(),
    });
    let text = describe(&answer);
    Ok(if answer.bot_state == BotState::Failed {
        Report::failed(text, doc)
    } else {
        Report::passed(text, doc)
    })
}

/// The answer as a person reads it.
fn describe(answer: &TurnResponse) -> String {
    let mut lines = vec![format!("botState: {}", answer.bot_state)];
    if let Some(intent) = &answer.intent {
        lines.push(format!("intent: {intent}"));
    }
    for message in &answer.reply_messages {
        lines.extend(describe_message(message));
    }
    for (name, value) in &answer.parameters {
        lines.push(format!(
            "parameter {name} = {}",
            printable(value.as_bytes(), 200)
        ));
    }
    if let Some(error) = &answer.error_info {
        lines.push(format!(
            "error {}: {}",
            printable(error.code.as_bytes(), 100),
            printable(error.message.as_bytes(), 500)
        ));
    }
    lines.join("\n")
}

fn describe_message(message: &ReplyMessage) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(text) = &message.text {
        lines.push(format!("> {}", printable(text.as_bytes(), 2000)));
    }
    for content in &message.content {
        if let Some(reply) = &content.quick_reply {
            lines.push(format!(
                "  [{}] -> {}",
                printable(reply.text.as_bytes(), 200),
                printable(reply.payload.as_bytes(), 200)
            ));
        } else {
            lines.push(format!("  ({})", content.content_type));
        }
    }
    lines
}
