use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::{BoxFuture, LeaseId, ReplayKey, ReplayStore, Reservation, StoreError};

/// A [`ReplayStore`] in Redis, shared by every replica of a receiver.
///
/// Each key is `<prefix><hex MAC>`. A reservation is an atomic
/// `SET key lease:<random id> NX PX <lease>`; completing and releasing run a Lua script
/// that first checks the key still holds this lease, so a slow request whose lease
/// lapsed cannot undo another's work. Connections go through the `redis` crate's
/// [`ConnectionManager`], which multiplexes requests over one connection and
/// reconnects after a failure; each command times out (default 1 s) so that an
/// unreachable Redis answers quickly and the layer can answer 503.
///
/// ```no_run
/// use genesys_webhook::replay::{RedisStore, ReplayProtection};
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/")?.prefix("my-app:webhook:");
/// let protection = ReplayProtection::new(store);
/// # Ok::<_, genesys_webhook::replay::StoreError>(())
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
}

/// Default key prefix of [`RedisStore`].
const DEFAULT_PREFIX: &str = "genesys-webhook:replay:";
const DONE: &str = "done";

/// Marks the key done if it still holds our lease, or if it lapsed and is free.
const COMPLETE: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] or current == false then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0
";

/// Deletes the key only if it still holds our lease.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

impl RedisStore {
    /// Connects lazily to the Redis at `url` (`redis://host:port/db`, `rediss://` for
    /// TLS when the `redis` crate is built with it). Must be called within a Tokio
    /// runtime. Nothing is sent until the first request.
    ///
    /// # Errors
    ///
    /// The URL is not a valid Redis URL.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_timeout(url, Duration::from_secs(1))
    }

    /// Like [`open`](Self::open), with the time each command (and each connection
    /// attempt) may take.
    ///
    /// # Errors
    ///
    /// The URL is not a valid Redis URL.
    pub fn open_with_timeout(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(StoreError::new)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::new)?;
        Ok(Self {
            connection,
            prefix: DEFAULT_PREFIX.to_owned(),
        })
    }

    /// Uses `prefix` before every key (default `genesys-webhook:replay:`), so several
    /// applications can share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn key(&self, key: &ReplayKey) -> String {
        format!("{}{}", self.prefix, hex::encode(key.as_bytes()))
    }

    fn lease_value(lease: LeaseId) -> String {
        format!("lease:{:032x}", lease.0)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn random_lease() -> Result<LeaseId, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::new(e.to_string()))?;
    Ok(LeaseId(u128::from_le_bytes(bytes)))
}

impl ReplayStore for RedisStore {
    fn reserve<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Reservation, StoreError>> {
        Box::pin(async move {
            let id = random_lease()?;
            let key = self.key(key);
            let mut connection = self.connection.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(Self::lease_value(id))
                .arg("NX")
                .arg("PX")
                .arg(millis(lease))
                .query_async(&mut connection)
                .await
                .map_err(StoreError::new)?;
            if set.is_some() {
                return Ok(Reservation::Reserved(id));
            }
            let current: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .map_err(StoreError::new)?;
            Ok(match current.as_deref() {
                Some(DONE) => Reservation::Done,
                // Held by another request, or expired in between: ask for a retry.
                _ => Reservation::InFlight,
            })
        })
    }

    fn complete<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: LeaseId,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = Script::new(COMPLETE)
                .key(self.key(key))
                .arg(Self::lease_value(lease))
                .arg(millis(ttl))
                .invoke_async(&mut connection)
                .await
                .map_err(StoreError::new)?;
            Ok(())
        })
    }

    fn release<'a>(
        &'a self,
        key: &'a ReplayKey,
        lease: LeaseId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let _: i64 = Script::new(RELEASE)
                .key(self.key(key))
                .arg(Self::lease_value(lease))
                .invoke_async(&mut connection)
                .await
                .map_err(StoreError::new)?;
            Ok(())
        })
    }

    fn abandon(&self, key: &ReplayKey, lease: LeaseId) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.clone();
            let key = *key;
            runtime.spawn(async move {
                if let Err(error) = store.release(&key, lease).await {
                    tracing::warn!(%error, "could not release an abandoned replay reservation");
                }
            });
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
