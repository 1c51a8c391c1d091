//! AudioHook: the upgrade's signature layer, the sans-IO session, the driver, properties, and the example server against the simulator.

#[path = "../common/mod.rs"]
pub mod common;

mod audiohook;
mod audiohook_driver;
mod audiohook_layer;
mod audiohook_properties;
mod audiohook_session;
