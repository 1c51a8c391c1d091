//! What every example process does: logging, its exit code, and waiting for Ctrl-C or
//! SIGTERM.

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// Logs to standard output, filtered by `RUST_LOG` (default `info`); one JSON object a
/// line with `GENESYS_LOG_FORMAT=json`.
pub fn init_tracing() {
    init_tracing_as(
        std::env::var("GENESYS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")),
    );
}

/// Logs to standard output, filtered by `RUST_LOG` (default `info`), as JSON lines or
/// text.
pub fn init_tracing_as(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init();
    }
}

/// Exit code 0, or the error on standard error and exit code 1.
pub fn exit(result: Result<(), axum::BoxError>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
