//! The HTTP plumbing below both middlewares and the endpoints: the response body that
//! carries either the inner service's body or an answer the middleware gave itself,
//! the small JSON answers, and the rate-limited refusal log.
//!
//! Both [`GenesysSignature`](crate::GenesysSignature) and, with the `audiohook`
//! feature, `audiohook::AudioHookSignature` answer with a [`ResponseBody`].

mod body;
pub(crate) mod gate;
pub(crate) mod json;
pub(crate) mod log;
pub(crate) mod peer;

pub use self::body::ResponseBody;
pub use self::gate::GateFuture;
