//! The durable inbox: where a verified event is stored before the sender is told `200`.
//!
//! Genesys Cloud stops retrying a webhook at the first 2xx. An event acknowledged
//! while it sits only in memory is lost when the process dies, so a receiver that
//! promises "nothing is lost" must store the event first and answer afterwards:
//!
//! ```text
//! request ─▶ GenesysSignatureLayer ─▶ handler: inbox.append(body).await ─▶ 200
//!                                                      │ (durable)
//! worker:  inbox.claim(..) ─▶ process ─▶ inbox.ack(..)  ◀┘
//!                               └─ fails ─▶ inbox.retry(.., delay) ─▶ … ─▶ dead letters
//! ```
//!
//! The [`Inbox`] trait is the contract:
//!
//! - [`append`](Inbox::append) resolves only once the event is durable by the
//!   backend's own guarantee, and returns its [`EventId`]. A full inbox answers
//!   [`InboxError::Full`]: answer `503` with `Retry-After`, never `200`.
//! - [`claim`](Inbox::claim) hands out [`Delivery`]s under a lease. A delivery that
//!   is neither acknowledged nor retried before its lease ends (the worker died) is
//!   delivered again, counting as an attempt.
//! - [`ack`](Inbox::ack) forgets a processed event; [`retry`](Inbox::retry) schedules
//!   it again after a delay. After [`max_attempts`](DEFAULT_MAX_ATTEMPTS) attempts
//!   the event moves to the dead letters, where it stays until an operator
//!   [`requeue`](InboxAdmin::requeue)s or [`purge_dead`](InboxAdmin::purge_dead)s it: nothing is
//!   dropped silently.
//!
//! Delivery is at least once: an event whose worker died after processing it but
//! before acknowledging it is processed again. Handlers should be idempotent, or
//! keyed by the [`EventId`].
//!
//! Backends:
//!
//! | backend | feature | durability of `append` | for |
//! |---|---|---|---|
//! | `SqliteInbox` | `sqlite` | committed with `synchronous=FULL` in WAL mode: survives a crash and a power cut | one receiver process (the default of the example receiver) |
//! | `RedisInbox` | `redis` | as durable as the Redis server is configured (`appendonly yes`, `appendfsync always`), optionally `WAIT` for replicas | several replicas sharing one stream |
//! | [`MemoryInbox`] | (always) | none: lost with the process | tests, and users who accept the loss knowingly |
//!
//! ```
//! use bytes::Bytes;
//! use std::time::Duration;
//! use genesys_webhook::inbox::{Inbox, InboxAdmin, MemoryInbox, RetryOutcome};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), genesys_webhook::inbox::InboxError> {
//! let inbox = MemoryInbox::new();
//! let id = inbox.append(Bytes::from_static(br#"{"id":"1"}"#)).await?;
//!
//! let deliveries = inbox.claim(10, Duration::from_secs(30)).await?;
//! assert_eq!(deliveries[0].id(), &id);
//! assert_eq!(deliveries[0].attempt(), 1);
//! inbox.ack(&deliveries[0]).await?;
//! assert_eq!(inbox.stats().await?.pending, 0);
//! # Ok(())
//! # }
//! ```

mod contract;
mod location;
mod memory;
mod order;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod worker;

#[cfg(any(feature = "sqlite", feature = "redis"))]
pub(crate) use self::contract::{from_unix_millis, millis, unix_millis};
pub use self::contract::{
    Delivery, EventId, EventState, Inbox, InboxAdmin, InboxConfigError, InboxError, InboxLimits,
    InboxStats, ListFilter, RetryOutcome, StoredEvent, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BYTES,
    DEFAULT_MAX_EVENTS,
};
pub use self::location::{InboxLocation, DEFAULT_SQLITE_FILE};
pub use self::memory::MemoryInbox;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisInbox, RedisInboxBuilder};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::{SqliteInbox, SqliteInboxBuilder};
pub use self::worker::{
    Abort, RetryAfter, Worker, WorkerBuilder, WorkerHandle, WorkerReport, DEFAULT_CONCURRENCY,
    DEFAULT_DELIVERY_LEASE,
};
pub use crate::boxed::BoxFuture;
pub use crate::clock::Clock;
