//! The `genesys-webhook` command end to end: real processes, real sockets.

#[path = "../common/mod.rs"]
pub mod common;

mod bot;
mod cli;
mod serve;
