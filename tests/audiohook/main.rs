//! AudioHook: the upgrade's signature layer, the driver, properties, and the example
//! server against the simulator. The session's own rules are unit tests in
//! `src/audiohook/session/tests.rs`.

#[path = "../common/mod.rs"]
pub mod common;

mod audiohook;
mod audiohook_driver;
mod audiohook_layer;
mod audiohook_properties;
