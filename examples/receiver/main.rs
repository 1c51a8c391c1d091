//! A Genesys Cloud webhook receiver: the signature layer in front of the library's
//! enqueue endpoint, a durable inbox, and the library's worker behind it. Its
//! environment variables and routes are in the README ("The example receiver").
//!
//! ```sh
//! GENESYS_WEBHOOK_SECRET=dev-secret cargo run --example receiver
//! ```

use axum::BoxError;

mod app;
#[path = "../common/process.rs"]
mod process;
mod settings;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    process::init_tracing();
    process::exit(run().await)
}

async fn run() -> Result<(), BoxError> {
    let settings = app::Settings::from_vars(|name| std::env::var(name).ok())?;
    let handler = app::demo_handler(&settings);
    app::run(settings, handler, None).await
}
