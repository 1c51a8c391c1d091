//! The Platform API client against a fake Genesys Cloud on loopback, and Open Messaging end to end.

#[path = "../common/mod.rs"]
pub mod common;

mod cloud;
mod openmessaging;
