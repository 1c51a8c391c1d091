#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "audiohook")]
#[cfg_attr(docsrs, doc(cfg(feature = "audiohook")))]
pub mod audiohook;
mod clock;
#[cfg(feature = "cloud")]
#[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
pub mod cloud;
pub mod inbox;
pub mod layer;
pub mod metrics;
#[cfg(feature = "openmessaging")]
#[cfg_attr(docsrs, doc(cfg(feature = "openmessaging")))]
pub mod openmessaging;
#[cfg(feature = "redis")]
mod redis_connection;
pub mod replay;
mod response;
pub mod signature;

pub use crate::clock::Clock;
pub use crate::layer::{
    ConfigError, GenesysSignature, GenesysSignatureLayer, GenesysSignatureLayerBuilder,
    PeerAddress, Rejection, RejectionCounts, VerifiedBody, VerifiedSignature,
};

/// The boxed error type that request bodies' errors convert into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, sendable future, as the [`replay::ReplayStore`] and [`inbox::Inbox`]
/// traits return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
