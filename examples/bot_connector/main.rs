//! A Digital Bot Connector bot: Genesys Cloud sends each customer turn to
//! `POST /botconnector/messages` and lists the bot at `GET /botconnector/bots`.
//! The credential header is checked before anything else; each turn runs under a
//! deadline. The bot itself is in `demo.rs`.
//!
//! ```sh
//! BOT_CONNECTOR_SECRET=dev-secret cargo run --example bot_connector --features botconnector
//! ```
//!
//! | variable | default | what |
//! |---|---|---|
//! | `BOT_CONNECTOR_SECRET` | required | the credential's value, as configured on the integration |
//! | `BOT_CONNECTOR_HEADER` | `X-Bot-Connector-Secret` | the credential's header name (the integration's credential field name) |
//! | `LISTEN_ADDR` | `127.0.0.1:5001` | where to listen |
//! | `BOT_TURN_DEADLINE_MS` | `25000` | how long a turn may take before Genesys hears `Failed` |

use std::time::Duration;

use axum::{routing::get, BoxError, Router};
use genesys_webhook::botconnector::{
    BotConnectorRouter, BotCredentialsLayer, DEFAULT_CREDENTIAL_HEADER, DEFAULT_TURN_DEADLINE,
};
use genesys_webhook::server::ServerLimits;

mod demo;
#[path = "../common/process.rs"]
mod process;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    process::init_tracing();
    process::exit(run().await)
}

async fn run() -> Result<(), BoxError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let header = var("BOT_CONNECTOR_HEADER").unwrap_or_else(|| DEFAULT_CREDENTIAL_HEADER.into());
    let secret = var("BOT_CONNECTOR_SECRET").ok_or(
        "set BOT_CONNECTOR_SECRET to the credential value configured on the Digital Bot Connector integration",
    )?;
    let listen = var("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:5001".into());
    let deadline = match var("BOT_TURN_DEADLINE_MS") {
        Some(ms) => Duration::from_millis(
            ms.parse()
                .map_err(|_| "BOT_TURN_DEADLINE_MS is a number of milliseconds")?,
        ),
        None => DEFAULT_TURN_DEADLINE,
    };
    let credentials = BotCredentialsLayer::new(&header, &secret)
        .map_err(|e| format!("BOT_CONNECTOR_HEADER / BOT_CONNECTOR_SECRET: {e}"))?;
    let bot = BotConnectorRouter::new(demo::DemoBot, credentials)
        .turn_deadline(deadline)
        .into_router()?;
    let app = Router::new()
        .nest("/botconnector", bot)
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    // The request deadline must outlast the turn's, so that a slow bot is answered.
    let limits = ServerLimits::default().request_timeout(deadline + Duration::from_secs(5));
    genesys_webhook::server::serve(listener, app, limits, process::shutdown_signal()).await;
    tracing::info!("bye");
    Ok(())
}
