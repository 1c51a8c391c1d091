//! The replay store's contract: keys, lease ids, reservations, and the store's errors
//! and futures.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::boxed::BoxError;

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
