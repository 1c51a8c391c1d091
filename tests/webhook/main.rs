//! The signature middleware in real axum and hyper servers, the Bot Connector router and the source allowlist, hostile input, the buffering budget, replay protection and its faults, properties, and the README quick start.

#[path = "../common/mod.rs"]
pub mod common;

mod axum_layer;
mod botconnector;
mod budget;
mod hostile;
mod hyper_server;
mod mtls;
mod properties;
mod readme;
mod replay;
mod replay_faults;
mod source;
