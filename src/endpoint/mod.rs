//! HTTP endpoints over the [inbox](crate::inbox): `Enqueue` stores each verified
//! body before answering (feature `enqueue`), and [`Readiness`] answers a load
//! balancer's probe while the stores answer.
//!
//! The inbox itself knows no HTTP; these endpoints sit on top of it and of the
//! [`GenesysSignatureLayer`](crate::GenesysSignatureLayer).

#[cfg(feature = "enqueue")]
mod enqueue;
mod readiness;

#[cfg(feature = "enqueue")]
#[cfg_attr(docsrs, doc(cfg(feature = "enqueue")))]
pub use self::enqueue::{
    check_json_object, Enqueue, DEFAULT_APPEND_TIMEOUT, DEFAULT_UNAVAILABLE_RETRY_AFTER,
};
pub use self::readiness::Readiness;
