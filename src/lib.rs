#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "audiohook")]
#[cfg_attr(docsrs, doc(cfg(feature = "audiohook")))]
pub mod audiohook;
#[cfg(feature = "botconnector")]
#[cfg_attr(docsrs, doc(cfg(feature = "botconnector")))]
pub mod botconnector;
mod boxed;
mod clock;
#[cfg(feature = "cloud")]
#[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
pub mod cloud;
pub mod endpoint;
pub mod http;
pub mod inbox;
pub mod metrics;
#[cfg(feature = "openmessaging")]
#[cfg_attr(docsrs, doc(cfg(feature = "openmessaging")))]
pub mod openmessaging;
#[cfg(any(feature = "cloud", feature = "redis", feature = "audiohook"))]
mod random;
#[cfg(feature = "redis")]
mod redis_connection;
pub mod replay;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
pub mod signature;
pub mod source;
pub mod webhook;
#[cfg(any(feature = "openmessaging", feature = "botconnector"))]
mod wire;

pub use crate::boxed::{BoxError, BoxFuture};
pub use crate::clock::Clock;
pub use crate::webhook::{
    ConfigError, GenesysSignature, GenesysSignatureLayer, GenesysSignatureLayerBuilder,
    PeerAddress, Rejection, RejectionCounts, VerifiedBody, VerifiedSignature,
};
