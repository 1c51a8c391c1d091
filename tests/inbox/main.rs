//! The inbox backends against one contract, the worker, and durability across crashes of the receiver.

#[path = "../common/mod.rs"]
pub mod common;

mod durability;
mod inbox;
mod worker;
