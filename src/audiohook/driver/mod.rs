//! Runs a [`ServerSession`](super::session::ServerSession) over a WebSocket (features
//! `audiohook` and `axum`).
//!
//! The loop ([`serve_websocket`]) is generic over any `Stream + Sink` of axum
//! WebSocket messages: [`AudioHookUpgrade`] is its adapter for axum's upgrade, and
//! tests drive it through a pair of in-memory ends. Time reaches the session as a
//! value: the loop reads the clock, and the session decides when its timers fire
//! (`poll_timeout`, `handle_timeout`).

mod config;
mod handler;
mod run;
mod upgrade;

pub use self::config::DriverConfig;
pub use self::handler::{AudioHookHandler, SessionControl, SessionEnd, SessionGone};
pub use self::run::serve_websocket;
pub use self::upgrade::AudioHookUpgrade;
