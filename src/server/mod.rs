//! Serving an axum router as a Genesys-facing receiver must under abuse (feature
//! `server`): hyper's HTTP/1.1 server with limits that `axum::serve` does not set.
//!
//! - The request head must arrive within the deadline (a client dripping header bytes
//!   is cut off), and the whole request, body included, has the same deadline:
//!   `408 {"error":"request_timeout"}`.
//! - Each connection's read buffer stays at 64 KiB (hyper's default grows to about
//!   400 KiB), so that memory goes to bodies, not buffers.
//! - At most [`max_connections`](ServerLimits::max_connections) connections at once:
//!   past that a new connection is answered `503` with `Retry-After` and closed, a
//!   status Genesys retries, instead of waiting behind idle ones or running the process
//!   out of file descriptors.
//! - Accept errors (out of descriptors) back off, logged at DEBUG with a WARN at most
//!   once a minute.
//! - A connection the server is done with while its client is still sending (a body
//!   over the limit answered `413` before it was read) is not closed at once: the
//!   answer and the end of the stream go out, and what the client still sends is read
//!   and discarded for up to a second (16 MiB at most), so that a client that writes
//!   its whole body before it reads gets the answer instead of a reset. The socket
//!   keeps its connection slot until it is closed.
//! - Once `shutdown` resolves, no connection is accepted, requests in flight get
//!   [`drain`](ServerLimits::drain), then the connections are dropped.
//!
//! WebSocket upgrades (AudioHook) are served too.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use genesys_webhook::server::{serve, ServerLimits};
//!
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! let app = Router::new().route("/healthz", get(|| async { "ok" }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! let limits = ServerLimits::default().max_connections(1024);
//! serve(listener, app, limits, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(())
//! # }
//! ```

mod deadline;
mod limits;
mod linger;
mod serve;

pub use self::limits::ServerLimits;
pub use self::serve::serve;
