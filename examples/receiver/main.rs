//! A Genesys Cloud webhook receiver: the signature layer in front of the library's
//! enqueue endpoint, a durable inbox, and the library's worker behind it. Its
//! environment variables and routes are in the README ("The example receiver").
//!
//! ```sh
//! GENESYS_WEBHOOK_SECRET=dev-secret cargo run --example receiver
//! ```

use std::sync::Arc;

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
    let (inbox, receipts) = app::open_inboxes(&settings)?;
    // Buckets, so the `_seconds` histograms render as histograms, not summaries.
    let seconds = metrics_exporter_prometheus::Matcher::Suffix("_seconds".into());
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(seconds, genesys_webhook::metrics::SECONDS_BUCKETS)?
        .install_recorder()?;
    let workers = app::workers(&settings, Arc::clone(&inbox), receipts);
    let sources = app::source_allowlist(&settings).await?;
    let router = app::app(&settings, Arc::clone(&inbox), Some(metrics), sources)?;
    let listener = tokio::net::TcpListener::bind(settings.listen_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen_addr))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let shutdown = process::shutdown_signal();
    genesys_webhook::server::serve(listener, router, settings.serve, shutdown).await;
    tracing::info!("stopped accepting requests; the worker finishes what it runs");
    let report = workers.shutdown().await;
    let pending = inbox.stats().await.map_or(0, |s| s.pending);
    let (processed, commits) = (report.processed, inbox.commits());
    tracing::info!(target: "receiver::summary", processed, commits, pending, "worker stopped; what is pending stays stored; bye");
    Ok(())
}
