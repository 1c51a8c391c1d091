//! `genesys-webhook serve`: the example receiver's wiring (signature layer, inbox,
//! health, readiness and metrics, the worker) with a handler that forwards each event
//! to the application, in order per conversation. Configured by the receiver's
//! environment variables; flags override them.

use std::time::Duration;

use genesys_webhook::signature::Secret;

use crate::app;
use crate::forward::{conversation_key, Forwarder};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Default for `--forward-timeout`: 10 s.
const DEFAULT_FORWARD_TIMEOUT_SECS: u64 = 10;
/// Default for `--max-retry-after`: 5 minutes.
const DEFAULT_MAX_RETRY_AFTER_SECS: u64 = 300;
/// Default for `--max-attempts`: 100, so that an application down for hours (the
/// backoff reaches 5 minutes, jittered down to 2.5) does not turn events into dead
/// letters; the receiver's 10 would after about 5 minutes.
const DEFAULT_MAX_ATTEMPTS: u32 = 100;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Every variable of the example receiver applies (README, \"Not writing Rust?\"); \
    GENESYS_WEBHOOK_SECRET (and GENESYS_WEBHOOK_SECRET_PREVIOUS) verifies what Genesys sends, \
    GENESYS_FORWARD_SECRET signs what the relay forwards. Secrets are read from the environment only."
)]
pub(crate) struct Args {
    /// The application's URL: each event is POSTed there.
    #[arg(long, env = "GENESYS_FORWARD_URL", value_name = "URL")]
    forward: String,
    /// Where Genesys calls the relay.
    #[arg(long, env = "LISTEN_ADDR", value_name = "HOST:PORT")]
    listen: Option<String>,
    /// The inbox: sqlite:PATH (default genesys-inbox.db), a redis:// URL, or memory.
    #[arg(long, env = "GENESYS_INBOX", value_name = "LOCATION")]
    inbox: Option<String>,
    /// Replay protection's store: memory (default), none, or a redis:// URL.
    #[arg(long, env = "GENESYS_REPLAY_STORE", value_name = "LOCATION")]
    replay_store: Option<String>,
    /// Events forwarded at once (different conversations; one at a time within one).
    #[arg(long, env = "GENESYS_WORKER_CONCURRENCY", value_name = "N")]
    concurrency: Option<u32>,
    /// How long the application has to answer one attempt, in seconds [default: 10].
    #[arg(long, env = "GENESYS_FORWARD_TIMEOUT_SECS", value_name = "SECS")]
    forward_timeout: Option<u64>,
    /// The longest `Retry-After` honoured, in seconds [default: 300].
    #[arg(
        long,
        env = "GENESYS_FORWARD_MAX_RETRY_AFTER_SECS",
        value_name = "SECS"
    )]
    max_retry_after: Option<u64>,
    /// Attempts before an event moves to the dead letters [default: 100, at least
    /// about 4 hours of the backoff].
    #[arg(long, env = "GENESYS_INBOX_MAX_ATTEMPTS", value_name = "N")]
    max_attempts: Option<u32>,
    /// The largest body accepted from Genesys, in bytes [default: 1 MiB].
    #[arg(long, env = "GENESYS_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<u64>,
    /// Logs as text or one JSON object a line.
    #[arg(long, env = "GENESYS_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
}

impl Args {
    /// Whether logs are JSON.
    pub(crate) fn json_logs(&self) -> bool {
        self.log_format
            .as_deref()
            .is_some_and(|format| format.eq_ignore_ascii_case("json"))
    }

    /// The receiver's variables the flags set.
    fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        let mut set = |name, value: Option<String>| {
            if let Some(value) = value {
                vars.push((name, value));
            }
        };
        set("LISTEN_ADDR", self.listen.clone());
        set("GENESYS_INBOX", self.inbox.clone());
        set("GENESYS_REPLAY_STORE", self.replay_store.clone());
        set(
            "GENESYS_WORKER_CONCURRENCY",
            self.concurrency.map(|n| n.to_string()),
        );
        let attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        set("GENESYS_INBOX_MAX_ATTEMPTS", Some(attempts.to_string()));
        set(
            "GENESYS_MAX_BODY_BYTES",
            self.max_body_bytes.map(|n| n.to_string()),
        );
        vars
    }
}

/// Runs the relay until Ctrl-C or SIGTERM.
pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    let flags = args.vars();
    let settings = app::Settings::from_vars(|name| {
        let flag = flags.iter().find(|(flag, _)| *flag == name);
        flag.map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
    })?;
    let url = reqwest::Url::parse(args.forward.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .ok_or("--forward (GENESYS_FORWARD_URL): expected an http:// or https:// URL")?;
    let secret = std::env::var("GENESYS_FORWARD_SECRET")
        .ok()
        .filter(|secret| !secret.trim().is_empty())
        .map(Secret::from);
    if secret.is_none() {
        tracing::warn!("GENESYS_FORWARD_SECRET is not set: forwarded events are not signed; the application must trust the network");
    }
    let timeout = args.forward_timeout.unwrap_or(DEFAULT_FORWARD_TIMEOUT_SECS);
    let max_retry_after = args.max_retry_after.unwrap_or(DEFAULT_MAX_RETRY_AFTER_SECS);
    let signed = secret.is_some();
    let forwarder = Forwarder::new(
        url.clone(),
        secret,
        Duration::from_secs(timeout.max(1)),
        Duration::from_secs(max_retry_after),
    )?;
    tracing::info!(
        forward = %printable_url(&url), signed, timeout_secs = timeout,
        max_attempts = settings.inbox.limits.max_attempts,
        "forwarding each event, in order per conversation"
    );
    app::run(settings, forwarder, Some(conversation_key)).await
}

/// The URL without credentials or query, for logs.
fn printable_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}
