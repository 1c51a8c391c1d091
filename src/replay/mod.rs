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
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::Response;

pub use self::memory::{MemoryStore, DEFAULT_CAPACITY};
#[cfg(feature = "redis")]
pub use self::redis::{InvalidUrl, RedisStore};

use crate::boxed::BoxError;

/// Default for [`ReplayProtection::ttl`]: 10 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default for [`ReplayProtection::lease`]: 30 seconds.
pub const DEFAULT_RESERVATION_LEASE: Duration = Duration::from_secs(30);
/// Default for [`ReplayProtection::retry_after`]: 5 seconds, Genesys' own retry spacing.
pub const DEFAULT_IN_FLIGHT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The key a request is remembered by: 32 bytes.
///
/// For webhooks it depends on the body alone ([`of_body`](Self::of_body)): which
/// headers carry the signatures, in which order, which secret verified them, and
/// whether the secrets were rotated since do not change it. Only bodies whose signature
/// verified reach a store, so a fast non-cryptographic 128-bit hash is enough: making
/// two bodies collide would take the secret to sign them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey([u8; 32]);

/// Domain separation of body keys from other keys in the same store (AudioHook nonces).
const BODY_KEY_TAG: [u8; 8] = *b"gwbody01";
/// The seed of the body hash, also domain separation.
const BODY_KEY_SEED: u64 = 0x6765_6e65_7379_7331;

impl ReplayKey {
    /// Wraps 32 key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key of a webhook body: a tag, the body's length and its 128-bit XXH3 hash
    /// under a fixed seed. The layer computes the same key while it reads the body,
    /// in the pass that computes the HMACs.
    ///
    /// ```
    /// use genesys_webhook::replay::ReplayKey;
    ///
    /// assert_eq!(ReplayKey::of_body(b"{}"), ReplayKey::of_body(b"{}"));
    /// assert_ne!(ReplayKey::of_body(b"{}"), ReplayKey::of_body(b"{ }"));
    /// ```
    pub fn of_body(body: &[u8]) -> Self {
        let mut hasher = BodyKeyHasher::new();
        hasher.update(body);
        hasher.finish()
    }

    /// The key bytes. Stores that leave the process may keep them as they are or a
    /// hash of them (`RedisStore` keeps a SHA-256 of them).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Computes [`ReplayKey::of_body`] over a body that arrives in frames.
pub(crate) struct BodyKeyHasher {
    state: twox_hash::xxhash3_128::Hasher,
    len: u64,
}

impl BodyKeyHasher {
    pub(crate) fn new() -> Self {
        Self {
            state: twox_hash::xxhash3_128::Hasher::with_seed(BODY_KEY_SEED),
            len: 0,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.state.write(data);
        self.len += data.len() as u64;
    }

    pub(crate) fn finish(&self) -> ReplayKey {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&BODY_KEY_TAG);
        key[8..16].copy_from_slice(&self.len.to_le_bytes());
        key[16..].copy_from_slice(&self.state.finish_128().to_le_bytes());
        ReplayKey(key)
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Enough to tell keys apart in logs, not enough to reuse.
        write!(f, "ReplayKey({}…)", const_hex::encode(&self.0[..4]))
    }
}

/// Why [`ReplayProtection`]'s settings are impossible
/// ([`ConfigError::ReplaySettings`](crate::ConfigError::ReplaySettings)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidSettings {
    /// `ttl` or `lease` is zero.
    Zero {
        /// `ttl` or `lease`.
        setting: &'static str,
    },
    /// `ttl`, `lease` or `retry_after` is longer than ten years.
    TooLong {
        /// `ttl`, `lease` or `retry_after`.
        setting: &'static str,
    },
    /// The TTL is shorter than the lease: a key could be forgotten while its first
    /// request still runs.
    TtlShorterThanLease,
}

impl fmt::Display for InvalidSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => {
                write!(f, "replay protection {setting} must be longer than zero")
            }
            Self::TooLong { setting } => {
                write!(f, "replay protection {setting} is longer than ten years")
            }
            Self::TtlShorterThanLease => {
                f.write_str("replay protection ttl must be at least its lease")
            }
        }
    }
}

impl std::error::Error for InvalidSettings {}

/// Identifies one reservation, so that only its holder renews, completes or releases
/// it. Chosen by the caller before it asks the store, so that a reservation whose
/// answer never arrived (a timeout, a dropped request) can still be released.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(u128);

impl LeaseId {
    /// A new identifier, unique within the process and, with 64 random bits per
    /// process, across the replicas sharing a store.
    pub fn new() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            // RandomState is seeded from the operating system's randomness.
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            hasher.write_u32(std::process::id());
            hasher.finish()
        });
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self((u128::from(seed) << 64) | u128::from(count))
    }

    /// The identifier as 32 lowercase hex digits, for stores that keep it as text.
    pub fn to_hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

impl Default for LeaseId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseId({})", self.to_hex())
    }
}

/// [`ReplayProtection::from_location`] was given something it does not know. The text
/// is not repeated, since a URL may carry a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLocation(());

impl fmt::Display for InvalidLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if cfg!(feature = "redis") {
            "expected `memory`, `none` or a redis:// URL"
        } else {
            "expected `memory` or `none` (a redis:// URL needs the `redis` feature)"
        })
    }
}

impl std::error::Error for InvalidLocation {}

/// What [`ReplayStore::reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reservation {
    /// The key was free and is now held under the caller's lease.
    Reserved,
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

/// The future a [`ReplayStore`] method returns: an answer already known (a store in
/// memory answers at once, without allocating), or a boxed future for a store that has
/// to ask something over the network. It owns everything it needs (`'static`), so the
/// layer holds it without boxing it again.
#[must_use = "futures do nothing unless polled"]
pub struct StoreFuture<T>(StoreFutureKind<T>);

enum StoreFutureKind<T> {
    Ready(Option<T>),
    Boxed(crate::boxed::BoxFuture<'static, T>),
}

impl<T> StoreFuture<T> {
    /// A future that resolves to `value` at once.
    pub fn ready(value: T) -> Self {
        Self(StoreFutureKind::Ready(Some(value)))
    }

    /// A future that resolves when `future` does.
    pub fn boxed(future: impl std::future::Future<Output = T> + Send + 'static) -> Self {
        Self(StoreFutureKind::Boxed(Box::pin(future)))
    }
}

// The value is only ever moved out, never pinned in place.
impl<T> Unpin for StoreFuture<T> {}

impl<T> std::future::Future for StoreFuture<T> {
    type Output = T;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        match &mut self.0 {
            // Polled again after it resolved: a caller's bug, answered as every
            // tower-http future answers it.
            StoreFutureKind::Ready(value) => std::task::Poll::Ready(
                value
                    .take()
                    .expect(crate::http::json::POLLED_AFTER_COMPLETION),
            ),
            StoreFutureKind::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            StoreFutureKind::Ready(_) => "StoreFuture::Ready",
            StoreFutureKind::Boxed(_) => "StoreFuture::Boxed",
        })
    }
}

/// Where accepted requests are remembered. Implementations must make
/// [`reserve`](Self::reserve) atomic: of several simultaneous calls with one key,
/// exactly one gets [`Reservation::Reserved`].
pub trait ReplayStore: Send + Sync + 'static {
    /// Reserves `key` under `lease` for `duration` unless it is held or done.
    fn reserve(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<Reservation, StoreError>>;

    /// Extends a reservation still held under `lease` to `duration` from now, while
    /// its request is processed. Resolves to whether it was still held.
    fn renew(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<bool, StoreError>>;

    /// Marks `key` done for `ttl`, if the reservation is still `lease` (or has lapsed
    /// and nobody took the key since).
    fn complete(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        ttl: Duration,
    ) -> StoreFuture<Result<(), StoreError>>;

    /// Forgets `key` if it is still reserved under `lease`, so a retry is processed.
    fn release(&self, key: &ReplayKey, lease: LeaseId) -> StoreFuture<Result<(), StoreError>>;

    /// Releases `key` without waiting, when no Tokio runtime is there to run
    /// [`release`](Self::release). Best effort: the default does nothing and the lease
    /// expires by itself.
    fn abandon(&self, key: &ReplayKey, lease: LeaseId) {
        let _ = (key, lease);
    }

    /// Checks that the store answers, for readiness probes. The default answers yes.
    fn ping(&self) -> StoreFuture<Result<(), StoreError>> {
        StoreFuture::ready(Ok(()))
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

pub(crate) type DuplicateHandler = Arc<dyn Fn(Duplicate) -> Response<Bytes> + Send + Sync>;

/// Replay protection settings, given to
/// [`GenesysSignatureLayerBuilder::replay_protection`](crate::GenesysSignatureLayerBuilder::replay_protection).
#[derive(Clone)]
pub struct ReplayProtection {
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) ttl: Duration,
    pub(crate) lease: Duration,
    pub(crate) fail_open: bool,
    pub(crate) retry_after: Duration,
    pub(crate) renewal_failures: Arc<AtomicU64>,
    /// Duplicates answered without the inner service: each logged at DEBUG, summed up
    /// at WARN at most once a minute.
    pub(crate) duplicates: Arc<crate::http::log::RefusalLog>,
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
            lease: DEFAULT_RESERVATION_LEASE,
            fail_open: false,
            retry_after: DEFAULT_IN_FLIGHT_RETRY_AFTER,
            renewal_failures: Arc::new(AtomicU64::new(0)),
            duplicates: Arc::new(crate::http::log::RefusalLog::new(
                "duplicate webhooks answered without processing them again",
            )),
            on_duplicate: None,
        }
    }

    /// Protection backed by a [`MemoryStore`] of [`DEFAULT_CAPACITY`] entries.
    pub fn in_memory() -> Self {
        Self::new(MemoryStore::default())
    }

    /// Protection as a setting names it: `memory` (a [`MemoryStore`]), a `redis://`
    /// URL (a `RedisStore`, with the `redis` feature; must be called within a Tokio
    /// runtime), or `none` (`Ok(None)`: no protection).
    ///
    /// ```
    /// use genesys_webhook::replay::ReplayProtection;
    ///
    /// assert!(ReplayProtection::from_location("memory")?.is_some());
    /// assert!(ReplayProtection::from_location("none")?.is_none());
    /// assert!(ReplayProtection::from_location("memcached://cache").is_err());
    /// # Ok::<_, genesys_webhook::replay::InvalidLocation>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidLocation`] for anything else, a malformed Redis URL, or a Redis URL
    /// without the `redis` feature. The text is never repeated: it may hold a password.
    pub fn from_location(location: &str) -> Result<Option<Self>, InvalidLocation> {
        match location.trim() {
            "memory" => Ok(Some(Self::in_memory())),
            "none" => Ok(None),
            #[cfg(feature = "redis")]
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                let store = RedisStore::open(url).map_err(|_| InvalidLocation(()))?;
                Ok(Some(Self::new(store)))
            }
            _ => Err(InvalidLocation(())),
        }
    }

    /// How many duplicates were answered without calling the inner service (each
    /// logged at DEBUG; a WARN line sums them up at most once a minute).
    pub fn duplicates(&self) -> u64 {
        self.duplicates.total()
    }

    /// The store behind this protection.
    pub fn store(&self) -> &Arc<dyn ReplayStore> {
        &self.store
    }

    /// How many lease renewals failed (the store did not answer, or the lease was
    /// lost) since this protection was made, across its clones. Each is also logged at
    /// ERROR. "Not run twice" holds only while the store answers within the lease: a
    /// lease that lapses while its handler runs lets a retry of the same event run
    /// beside it.
    pub fn renewal_failures(&self) -> u64 {
        self.renewal_failures.load(Ordering::Relaxed)
    }

    /// How long a processed signature is remembered (default 10 minutes).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long a reservation holds before it lapses (default 30 s). While the inner
    /// service runs, the layer renews it every third of this (on a Tokio runtime), so
    /// a slow handler keeps its reservation; a crashed process's lapses after this
    /// long, so keep it shorter than Genesys' 5-second retry spacing times five.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// When the request cannot be checked (the store is unreachable, or full of
    /// requests in flight), process it anyway (logging a warning) instead of answering
    /// 503. Off by default: replays are then possible while the store cannot answer.
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

    /// The hook given to [`on_duplicate`](Self::on_duplicate), if any.
    pub(crate) fn duplicate_hook(&self) -> Option<&DuplicateHandler> {
        self.on_duplicate.as_ref()
    }

    /// Checks the settings, for the layer's builder.
    pub(crate) fn validate(&self) -> Result<(), InvalidSettings> {
        // Far beyond any sensible setting, and safe to add to any `Instant`.
        const LONGEST: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
        for (setting, value) in [("ttl", self.ttl), ("lease", self.lease)] {
            if value.is_zero() {
                return Err(InvalidSettings::Zero { setting });
            }
            if value > LONGEST {
                return Err(InvalidSettings::TooLong { setting });
            }
        }
        if self.ttl < self.lease {
            return Err(InvalidSettings::TtlShorterThanLease);
        }
        if self.retry_after > LONGEST {
            return Err(InvalidSettings::TooLong {
                setting: "retry_after",
            });
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_future_polled_after_completion_panics() {
        let mut future = StoreFuture::ready(7);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let pinned = std::pin::Pin::new(&mut future);
        assert_eq!(
            std::future::Future::poll(pinned, &mut cx),
            std::task::Poll::Ready(7)
        );
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = std::future::Future::poll(std::pin::Pin::new(&mut future), &mut cx);
        }));
        assert!(again.is_err(), "polled after completion must panic");
    }

    #[test]
    fn the_body_key_is_independent_of_framing_and_of_any_secret() {
        let mut hasher = BodyKeyHasher::new();
        for part in [&b"{\"a\":"[..], b"", b"1}"] {
            hasher.update(part);
        }
        assert_eq!(hasher.finish(), ReplayKey::of_body(b"{\"a\":1}"));
        assert_ne!(ReplayKey::of_body(b""), ReplayKey::of_body(b"\0"));
        assert_eq!(&ReplayKey::of_body(b"x").as_bytes()[..8], b"gwbody01");
    }
}
