//! [`ReplayProtection`]: the store, its timings, and the answers to duplicates, as the
//! webhook layer applies them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use super::memory::MemoryStore;
#[cfg(feature = "redis")]
use super::redis::RedisStore;
use super::store::ReplayStore;

/// Default for [`ReplayProtection::ttl`]: 10 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Default for [`ReplayProtection::lease`]: 30 seconds.
pub const DEFAULT_RESERVATION_LEASE: Duration = Duration::from_secs(30);
/// Default for [`ReplayProtection::retry_after`]: 5 seconds, Genesys' own retry spacing.
pub const DEFAULT_IN_FLIGHT_RETRY_AFTER: Duration = Duration::from_secs(5);

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

    /// Protection backed by a [`MemoryStore`] of [`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY) entries.
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
