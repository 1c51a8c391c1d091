use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;
use sha2::{Digest, Sha256};

use crate::redis_connection::connect_lazily;

use super::{LeaseId, ReplayKey, ReplayStore, Reservation, StoreError, StoreFuture};

/// A [`ReplayStore`] in Redis, shared by every replica of a receiver.
///
/// Each key is `<prefix><hex SHA-256 of the replay key>`, so no valid MAC is stored. A
/// reservation is one Lua script (`SET key lease:<id> NX PX <lease>`, and when the key
/// is taken, whether it is done); renewing, completing and releasing are scripts that
/// first check the key still holds this lease, so a slow request whose lease lapsed
/// cannot undo another's work. The scripts are hashed once and sent by `EVALSHA`. Connections go through the `redis` crate's
/// [`ConnectionManager`], which multiplexes requests over one connection and
/// reconnects after a failure; each command times out (default 1 s) so that an
/// unreachable Redis answers quickly and the layer can answer 503.
///
/// ```no_run
/// use genesys_webhook::replay::{RedisStore, ReplayProtection};
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/")?.prefix("my-app:webhook:");
/// let protection = ReplayProtection::new(store);
/// # Ok::<_, genesys_webhook::replay::InvalidUrl>(())
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    scripts: Arc<Scripts>,
}

/// Default key prefix of [`RedisStore`].
const DEFAULT_PREFIX: &str = "genesys-webhook:replay:";

/// Reserves the key unless it is held or done, in one round trip.
/// Returns 'reserved', 'done' or 'inflight'. KEYS: key. ARGV: lease value, lease ms.
const RESERVE: &str = include_str!("reserve.lua");

/// Extends the lease if the key still holds it. KEYS: key. ARGV: lease value, ms.
const RENEW: &str = include_str!("renew.lua");

/// Marks the key done if it still holds our lease, or if it lapsed and is free.
const COMPLETE: &str = include_str!("complete.lua");

/// Deletes the key only if it still holds our lease.
const RELEASE: &str = include_str!("release.lua");

/// The scripts, hashed once: each call sends `EVALSHA` (falling back to `EVAL` once
/// after a Redis restart).
struct Scripts {
    reserve: Script,
    renew: Script,
    complete: Script,
    release: Script,
}

/// [`RedisStore::open`] was given something that is not a Redis URL. The URL is not
/// repeated, since it may carry a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUrl;

impl fmt::Display for InvalidUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a valid Redis URL (redis://[:password@]host:port/db)")
    }
}

impl std::error::Error for InvalidUrl {}

impl RedisStore {
    /// Connects lazily to the Redis at `url` (`redis://host:port/db`). Must be called
    /// within a Tokio runtime. Nothing is sent until the first request.
    ///
    /// # Errors
    ///
    /// [`InvalidUrl`] when the URL is not a valid Redis URL.
    pub fn open(url: &str) -> Result<Self, InvalidUrl> {
        Self::open_with_timeout(url, Duration::from_secs(1))
    }

    /// Like [`open`](Self::open), with the time each command (and each connection
    /// attempt) may take.
    ///
    /// # Errors
    ///
    /// [`InvalidUrl`] when the URL is not a valid Redis URL.
    pub fn open_with_timeout(url: &str, timeout: Duration) -> Result<Self, InvalidUrl> {
        let connection = connect_lazily(url, timeout).map_err(|_| InvalidUrl)?;
        Ok(Self {
            connection,
            prefix: DEFAULT_PREFIX.to_owned(),
            scripts: Arc::new(Scripts {
                reserve: Script::new(RESERVE),
                renew: Script::new(RENEW),
                complete: Script::new(COMPLETE),
                release: Script::new(RELEASE),
            }),
        })
    }

    /// Uses `prefix` before every key (default `genesys-webhook:replay:`), so several
    /// applications can share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// `<prefix><hex SHA-256 of the key>`: the key bytes are a valid MAC of a body,
    /// which has no business sitting in a shared database.
    fn key(&self, key: &ReplayKey) -> String {
        let hashed = Sha256::digest(key.as_bytes());
        format!("{}{}", self.prefix, const_hex::encode(hashed))
    }

    /// What a command's future owns: a handle on the connection, the scripts and the
    /// stored key.
    fn call(&self, key: &ReplayKey) -> (ConnectionManager, Arc<Scripts>, String) {
        (
            self.connection.clone(),
            Arc::clone(&self.scripts),
            self.key(key),
        )
    }

    fn lease_value(lease: LeaseId) -> String {
        format!("lease:{}", lease.to_hex())
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl RedisStore {
    /// Runs one of the scripts on `key` with `args`, and turns its answer into `R`;
    /// the future owns everything it needs.
    fn invoke<T: redis::FromRedisValue + Send + 'static, R: Send + 'static>(
        &self,
        key: &ReplayKey,
        pick: fn(&Scripts) -> &Script,
        args: [String; 2],
        answer: fn(T) -> R,
    ) -> StoreFuture<Result<R, StoreError>> {
        let (mut connection, scripts, key) = self.call(key);
        StoreFuture::boxed(async move {
            let [first, second] = args;
            pick(&scripts)
                .key(key)
                .arg(first)
                .arg(second)
                .invoke_async(&mut connection)
                .await
                .map(answer)
                .map_err(StoreError::new)
        })
    }
}

impl ReplayStore for RedisStore {
    fn reserve(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<Reservation, StoreError>> {
        self.invoke(
            key,
            |s| &s.reserve,
            [Self::lease_value(lease), millis(duration).to_string()],
            |answer: String| match answer.as_str() {
                "reserved" => Reservation::Reserved,
                "done" => Reservation::Done,
                // Held by another request, or expired in between: ask for a retry.
                _ => Reservation::InFlight,
            },
        )
    }

    fn renew(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        duration: Duration,
    ) -> StoreFuture<Result<bool, StoreError>> {
        self.invoke(
            key,
            |s| &s.renew,
            [Self::lease_value(lease), millis(duration).to_string()],
            |held: i64| held == 1,
        )
    }

    fn complete(
        &self,
        key: &ReplayKey,
        lease: LeaseId,
        ttl: Duration,
    ) -> StoreFuture<Result<(), StoreError>> {
        self.invoke(
            key,
            |s| &s.complete,
            [Self::lease_value(lease), millis(ttl).to_string()],
            |_: i64| (),
        )
    }

    fn release(&self, key: &ReplayKey, lease: LeaseId) -> StoreFuture<Result<(), StoreError>> {
        // The release script reads only the lease.
        self.invoke(
            key,
            |s| &s.release,
            [Self::lease_value(lease), String::new()],
            |_: i64| (),
        )
    }

    fn ping(&self) -> StoreFuture<Result<(), StoreError>> {
        let mut connection = self.connection.clone();
        StoreFuture::boxed(async move {
            let _: String = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(StoreError::new)?;
            Ok(())
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
