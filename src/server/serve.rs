//! The accept loop and each connection.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tower_layer::Layer as _;

use super::deadline::Deadline;
use super::linger::Lingering;
use super::ServerLimits;
use crate::boxed::BoxError;

/// The answer to a connection over the cap: Genesys retries a 503.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 32\r\nConnection: close\r\n\r\n{\"error\":\"too_many_connections\"}";

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish for [`drain`](ServerLimits::drain), under `limits` (see the
/// [module](super)).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let app = Deadline::new(app, limits.request_timeout);
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut accept_errors = AcceptErrors::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, most likely: back off.
                    accept_errors.record(&error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "connection over the cap; answered 503");
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(OVER_CAPACITY).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            continue;
        };
        // Small messages (AudioHook's pongs and events) go out at once, not after the
        // peer's delayed acknowledgement.
        let _ = stream.set_nodelay(true);
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.request_timeout)
            .max_buf_size(64 * 1024);
        let mut stop = stop.clone();
        let app = app.clone();
        let peer_address = limits.peer_address;
        connections.spawn(async move {
            // The slot is held until the socket is closed, lingering included.
            let stream = TokioIo::new(Lingering::new(stream, slot));
            if peer_address {
                // The peer's address in each request's extensions (`PeerAddress::socket`).
                let service = axum::Extension(peer).layer(app);
                serve_one(http, stream, TowerToHyperService::new(service), &mut stop).await;
            } else {
                serve_one(http, stream, TowerToHyperService::new(app), &mut stop).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stopping.send(true);
    let finished = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    });
    if finished.await.is_err() {
        tracing::warn!(
            drain = ?limits.drain,
            "some connections were still open when the drain ended; closing them"
        );
        connections.abort_all();
    }
}

/// Serves one connection until it ends, or gracefully once `stop` turns true.
async fn serve_one<S>(
    http: http1::Builder,
    stream: TokioIo<Lingering<tokio::sync::OwnedSemaphorePermit>>,
    service: S,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<BoxError>,
    S::ResBody: 'static,
    <S::ResBody as axum::body::HttpBody>::Error: Into<BoxError>,
{
    let connection = http.serve_connection(stream, service);
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
}

/// Accept errors: each at DEBUG, a WARN with the count at most once a minute.
#[derive(Default)]
struct AcceptErrors {
    count: u64,
    last_warning: Option<Instant>,
}

impl AcceptErrors {
    fn record(&mut self, error: &std::io::Error) {
        self.count += 1;
        tracing::debug!(%error, "accept failed");
        if self
            .last_warning
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            self.last_warning = Some(Instant::now());
            tracing::warn!(%error, failures = self.count, "accept failed (out of file descriptors?); backing off (logged at most once a minute)");
        }
    }
}
