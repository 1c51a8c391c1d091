//! Replay protection: remembering which signed requests were already processed.
//!
//! An HMAC proves who signed a body; it does not stop someone who captured a valid
//! request from sending it again, and Genesys' signatures carry no timestamp. With
//! [`ReplayProtection`] turned on, the layer keys each verified request by a digest of
//! its body alone ([`ReplayKey::of_body`]: the hex and base64 forms, any header order,
//! any of the secrets, and a secret rotation give one key, so replicas configured
//! either side of a rotation agree) and:
//!
//! | the same signature… | answer | inner service called |
//! |---|---|---|
//! | arrives for the first time | the inner service's | yes, under a short lease ([`ReplayProtection::lease`], 30 s) that is renewed while the inner service runs |
//! | …and the inner service answered 2xx | | the key is kept as *done* for [`ReplayProtection::ttl`] (10 min) |
//! | …and the inner service answered non-2xx or failed | | the key is released, so the sender's retry is processed |
//! | arrives while the first is still in flight | `503` + `Retry-After`, `{"error":"duplicate_in_flight"}` | no |
//! | arrives after the first was done | `200 {"status":"duplicate"}` | no |
//! | cannot be checked: the store is unreachable, slower than its timeout, or full of in-flight requests | `503` + `Retry-After`, `{"error":"replay_store_unavailable"}` | no (unless [`fail_open`](ReplayProtection::fail_open)) |
//!
//! Genesys retries a 5xx and stops at a 2xx, so nothing is processed twice and nothing
//! is lost. A reservation whose answer was not used (the store timed out, the request
//! was dropped) is released at once, best effort, so the sender's next retry is
//! processed; a lease that outlives a crashed process simply expires.
//!
//! A store remembers only as long as it keeps its data: a Redis without persistence
//! forgets every processed key when it restarts, and events replayed after that are
//! processed again. Run Redis with `appendonly yes` when that matters.
//!
//! What it does not protect against: a replay after the TTL, a replay of a request
//! that was never accepted (it was not processed either), or two *different* bodies
//! that mean the same thing. The TTL must be longer than the time an attacker may
//! hold a captured request and still hurt you; Genesys itself retries for about 85 s.
//!
//! Two stores ship with the crate: [`MemoryStore`] (default, one process) and, with
//! the `redis` feature, `RedisStore` for receivers running as several replicas.
//!
//! ```
//! use std::time::Duration;
//! use genesys_webhook::{replay::ReplayProtection, GenesysSignatureLayer};
//!
//! let layer = GenesysSignatureLayer::builder()
//!     .secret("dev-secret")
//!     .replay_protection(ReplayProtection::in_memory().ttl(Duration::from_secs(600)))
//!     .build()?;
//! # Ok::<_, genesys_webhook::ConfigError>(())
//! ```

mod memory;
mod protection;
#[cfg(feature = "redis")]
mod redis;
mod store;
pub use self::memory::{MemoryStore, DEFAULT_CAPACITY};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{InvalidUrl, RedisStore};

pub use self::protection::{
    Duplicate, InvalidLocation, InvalidSettings, ReplayProtection, DEFAULT_IN_FLIGHT_RETRY_AFTER,
    DEFAULT_RESERVATION_LEASE, DEFAULT_TTL,
};
pub(crate) use self::store::BodyKeyHasher;
pub use self::store::{LeaseId, ReplayKey, ReplayStore, Reservation, StoreError, StoreFuture};
