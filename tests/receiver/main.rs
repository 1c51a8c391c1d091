//! The example receiver: in process through its router, and as a process over real sockets.

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/receiver/app.rs"]
mod app;
#[path = "../common/mod.rs"]
pub mod common;
#[allow(dead_code)]
#[path = "../../examples/common/process.rs"]
mod process;
#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/receiver/settings.rs"]
mod settings;

mod receiver;
mod receiver_app;
