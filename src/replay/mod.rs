//! Replay protection: remembering which signed requests were already processed.
//!
//! An HMAC proves who signed a body; it does not stop someone who captured a valid
//! request from sending it again, and Genesys' signatures carry no timestamp. With
//! [`ReplayProtection`] turned on, the layer keys each verified request by its
//! 32-byte MAC (so the hex and base64 forms of one signature are one key) and:
//!
//! | the same signature… | answer | inner service called |
//! |---|---|---|
//! | arrives for the first time | the inner service's | yes, under a short lease ([`ReplayProtection::lease`], 30 s) |
//! | …and the inner service answered 2xx | | the key is kept as *done* for [`ReplayProtection::ttl`] (10 min) |
//! | …and the inner service answered non-2xx or failed | | the key is released, so the sender's retry is processed |
//! | arrives while the first is still in flight | `503` + `Retry-After`, `{"error":"duplicate_in_flight"}` | no |
//! | arrives after the first was done | `200 {"status":"duplicate"}` | no |
//! | cannot be checked: the store is unreachable or full of in-flight requests | `503` + `Retry-After`, `{"error":"replay_store_unavailable"}` | no (unless [`fail_open`](ReplayProtection::fail_open)) |
//!
//! Genesys retries a 5xx and stops at a 2xx, so nothing is processed twice and nothing
//! is lost. A lease that outlives a crashed process simply expires.
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
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

pub use self::memory::{MemoryStore, DEFAULT_CAPACITY};
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;

use crate::layer::json_response;
use crate::BoxError;

pub use crate::BoxFuture;

/// Default for [`ReplayProtection::ttl`]: 10 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default for [`ReplayProtection::lease`]: 30 seconds.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Default for [`ReplayProtection::retry_after`]: 5 seconds, Genesys' own retry spacing.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The key a request is remembered by: the 32 bytes of its verified HMAC.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    /// Wraps MAC bytes.
    pub fn new(mac: [u8; 32]) -> Self {
        Self(mac)
    }

    /// The MAC bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A valid MAC: enough to tell keys apart in logs, not enough to reuse.
        write!(f, "ReplayKey({}…)", hex::encode(&self.0[..4]))
    }
}

/// Identifies one reservation, so that only its holder completes or releases it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(pub u128);

/// What [`ReplayStore::reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reservation {
    /// The key was free and is now held under this lease.
    Reserved(LeaseId),
    /// Another request with the same key is being processed.
    InFlight,
    /// A request with the same key was processed within the TTL.
    Done,
    /// The store has no room: every entry belongs to a request in flight.
    Full,
}

/// The store could not be asked (connection refused, timeout, protocol error).
#[derive(Debug)]
pub struct StoreError(BoxError);

impl StoreError {
    /// Wraps the underlying error.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay store unavailable: {}", self.0)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Where accepted requests are remembered. Implementations must make
/// [`reserve`](Self::reserve) atomic: of several simultaneous calls with one key,
/// exactly one gets [`Reservation::Reserved`].
pub trait ReplayStore: Send + Sync + 'static {
    /// Reserves `key` for `lease` unless it is held or done.
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Reservation, StoreError>>;

    /// Marks `key` done for `ttl`, if the reservation is still `lease` (or has lapsed
    /// and nobody took the key since).
    fn complete<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: LeaseId,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Forgets `key` if it is still reserved under `lease`, so a retry is processed.
    fn release<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: LeaseId,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Called, without waiting, when a request is dropped before it finished (the
    /// client went away, a timeout fired). Best effort: the default does nothing and
    /// the lease expires by itself.
    fn abandon(&self, key: &ReplayKey, lease: LeaseId) {
        let _ = (key, lease);
    }
}

/// Which duplicate answer an [`on_duplicate`](ReplayProtection::on_duplicate) hook
/// is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Duplicate {
    /// The first request with this signature is still being processed. The default
    /// answer is `503 {"error":"duplicate_in_flight"}` with `Retry-After`.
    InFlight,
    /// A request with this signature was processed already. The default answer is
    /// `200 {"status":"duplicate"}`, so the sender stops retrying.
    Processed,
}

type DuplicateHandler = Arc<dyn Fn(Duplicate) -> Response<Bytes> + Send + Sync>;

/// Replay protection settings, given to
/// [`GenesysSignatureLayerBuilder::replay_protection`](crate::GenesysSignatureLayerBuilder::replay_protection).
#[derive(Clone)]
pub struct ReplayProtection {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) ttl: Duration,
    pub(crate) lease: Duration,
    pub(crate) fail_open: bool,
    pub(crate) retry_after: Duration,
    on_duplicate: Option<DuplicateHandler>,
}

impl ReplayProtection {
    /// Protection backed by `store`.
    pub fn new(store: impl ReplayStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// Protection backed by a store shared with other code.
    pub fn from_arc(store: Arc<dyn ReplayStore>) -> Self {
        Self {
            store,
            ttl: DEFAULT_TTL,
            lease: DEFAULT_LEASE,
            fail_open: false,
            retry_after: DEFAULT_RETRY_AFTER,
            on_duplicate: None,
        }
    }

    /// Protection backed by a [`MemoryStore`] of [`DEFAULT_CAPACITY`] entries.
    pub fn in_memory() -> Self {
        Self::new(MemoryStore::default())
    }

    /// The store behind this protection.
    pub fn store(&self) -> &Arc<dyn ReplayStore> {
        &self.store
    }

    /// How long a processed signature is remembered (default 10 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a reservation holds while its request is processed (default 30 s).
    /// Keep it longer than the body deadline plus the handler's time, and short
    /// enough that a crashed process does not block the sender's retries.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// When the store cannot be asked, process the request anyway (logging a warning)
    /// instead of answering 503. Off by default: replays are then possible while the
    /// store is down.
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    /// The `Retry-After` sent with 503 answers (default 5 s), whole seconds.
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Replaces the two duplicate answers.
    ///
    /// ```
    /// use genesys_webhook::replay::{Duplicate, ReplayProtection};
    /// use http::Response;
    ///
    /// let protection = ReplayProtection::in_memory().on_duplicate(|duplicate| {
    ///     let mut response = Response::new(format!("{duplicate:?}"));
    ///     *response.status_mut() = match duplicate {
    ///         Duplicate::Processed => http::StatusCode::ACCEPTED,
    ///         _ => http::StatusCode::TOO_MANY_REQUESTS,
    ///     };
    ///     response
    /// });
    /// ```
    pub fn on_duplicate<F, B>(mut self, handler: F) -> Self
    where
        F: Fn(Duplicate) -> Response<B> + Send + Sync + 'static,
        B: Into<Bytes>,
    {
        self.on_duplicate = Some(Arc::new(move |d| handler(d).map(Into::into)));
        self
    }

    pub(crate) fn duplicate_response(&self, duplicate: Duplicate) -> Response<Bytes> {
        if let Some(handler) = &self.on_duplicate {
            return handler(duplicate);
        }
        match duplicate {
            Duplicate::Processed => json_response(
                StatusCode::OK,
                Bytes::from_static(br#"{"status":"duplicate"}"#),
            ),
            Duplicate::InFlight => with_retry_after(
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Bytes::from_static(br#"{"error":"duplicate_in_flight"}"#),
                ),
                self.retry_after,
            ),
        }
    }
}

/// Adds `Retry-After` in whole seconds (at least 1).
pub(crate) fn with_retry_after<B>(mut response: Response<B>, after: Duration) -> Response<B> {
    let seconds = after.as_secs().max(1);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

impl fmt::Debug for ReplayProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayProtection")
            .field("ttl", &self.ttl)
            .field("lease", &self.lease)
            .field("fail_open", &self.fail_open)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}
