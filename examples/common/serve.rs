//! Serving an axum router as both examples need it under abuse: hyper's HTTP/1.1
//! builder rather than `axum::serve`, for two limits. The request head must arrive
//! within the deadline (a client dripping header bytes is cut off), and each
//! connection's read buffer stays at 64 KiB (hyper's default grows to about 400 KiB),
//! so that memory goes to bodies, not buffers. The whole request, body included, has
//! the same deadline. WebSocket upgrades are served too.

use std::time::Duration;

use axum::http::StatusCode;
use axum::{BoxError, Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

/// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish for `deadline`.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, deadline: Duration) {
    let app = app.layer(
        tower::ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(
                |_: BoxError| async {
                    let body = serde_json::json!({"error": "request_timeout"});
                    (StatusCode::REQUEST_TIMEOUT, Json(body))
                },
            ))
            .timeout(deadline),
    );
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(super::process::shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed"); // out of descriptors: back off
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small messages (AudioHook's pongs and events) go out at once, not after the
        // peer's delayed acknowledgement.
        let _ = stream.set_nodelay(true);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(deadline)
            .max_buf_size(64 * 1024);
        // The peer's address in each request's extensions (`PeerAddress::socket`).
        let service =
            TowerToHyperService::new(tower::Layer::layer(&axum::Extension(peer), app.clone()));
        let mut stop = stop.clone();
        connections.spawn(async move {
            let connection = http.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection.with_upgrades());
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async { drop(stop.wait_for(|stop| *stop).await) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stopping.send(true);
    let finished = tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    });
    if finished.await.is_err() {
        tracing::warn!("some connections were still open at shutdown");
    }
}
