//! The contract every backend fulfils: the data plane ([`Inbox`]), the operators'
//! side ([`InboxAdmin`]), their types and errors, and the limits.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::boxed::BoxError;
use crate::boxed::BoxFuture;

/// Default number of attempts before an event moves to the dead letters: 10.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default bound on the number of stored events (pending, in flight and dead): 100,000.
pub const DEFAULT_MAX_EVENTS: u64 = 100_000;
/// Default bound on the bytes of stored bodies: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// What is wrong with an inbox's configuration ([`InboxError::Config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InboxConfigError {
    /// `sqlite:` without a file path.
    MissingPath,
    /// Neither `sqlite:PATH`, a plain file path, a `redis://` URL nor `memory`. The
    /// text is not repeated: a mistyped URL may carry a password.
    UnknownLocation,
    /// A Redis URL that does not parse.
    InvalidRedisUrl,
    /// A companion inbox's name other than letters, digits, `-` and `_`.
    InvalidCompanionName,
    /// The backend's Cargo feature is not enabled.
    FeatureDisabled {
        /// `sqlite` or `redis`.
        feature: &'static str,
    },
}

impl fmt::Display for InboxConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPath => f.write_str("sqlite: needs a file path"),
            Self::UnknownLocation => {
                f.write_str("expected sqlite:PATH, a plain file path, a redis:// URL or memory")
            }
            Self::InvalidRedisUrl => f.write_str("not a valid Redis URL (redis://host:port/db)"),
            Self::InvalidCompanionName => {
                f.write_str("a companion inbox's name is letters, digits, `-` and `_`")
            }
            Self::FeatureDisabled { feature: "redis" } => f.write_str(
                "a Redis inbox needs the `redis` feature of genesys-webhook \
                 (the CLI: cargo install --path . --features cli; the example: cargo run --features redis --example receiver)",
            ),
            Self::FeatureDisabled { feature } => write!(
                f,
                "this inbox needs the `{feature}` feature of genesys-webhook"
            ),
        }
    }
}

/// The bounds every backend enforces: attempts before an event moves to the dead
/// letters, and how many events and body bytes are stored at once (dead ones
/// included). Taken by [`MemoryInbox::limits`](super::MemoryInbox::limits), `SqliteInboxBuilder::limits`,
/// `RedisInboxBuilder::limits` and [`InboxLocation::open`](super::InboxLocation::open).
///
/// ```
/// use genesys_webhook::inbox::{InboxLimits, MemoryInbox};
///
/// let limits = InboxLimits::default().max_attempts(3).max_events(10_000);
/// let inbox = MemoryInbox::new().limits(limits);
/// assert_eq!(limits.max_attempts, 3);
/// # let _ = inbox;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxLimits {
    /// Attempts before an event moves to the dead letters (at least 1; default
    /// [`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: u32,
    /// The most events stored at once (default [`DEFAULT_MAX_EVENTS`]).
    pub max_events: u64,
    /// The most body bytes stored at once (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
}

impl Default for InboxLimits {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_events: DEFAULT_MAX_EVENTS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl InboxLimits {
    /// Attempts before an event moves to the dead letters (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The most events stored at once, dead ones included.
    pub fn max_events(mut self, events: u64) -> Self {
        self.max_events = events;
        self
    }

    /// The most body bytes stored at once, dead ones included.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }
}

/// The identifier an inbox gives an event when it is appended. It stays the same
/// across retries and dead-lettering.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// Wraps an identifier, as a backend or a command line gives it.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// One event handed to a consumer under a lease, by [`Inbox::claim`].
#[derive(Clone)]
pub struct Delivery {
    id: EventId,
    body: Bytes,
    received_at: SystemTime,
    attempt: u32,
    claim_token: String,
    content_type: Option<String>,
}

impl Delivery {
    /// Builds a delivery; for [`Inbox`] implementations. `claim_token` is what the backend
    /// needs to recognise this claim in [`ack`](Inbox::ack) and [`retry`](Inbox::retry).
    pub fn new(
        id: EventId,
        body: Bytes,
        received_at: SystemTime,
        attempt: u32,
        claim_token: impl Into<String>,
    ) -> Self {
        Self {
            id,
            body,
            received_at,
            attempt,
            claim_token: claim_token.into(),
            content_type: None,
        }
    }

    /// The `Content-Type` the event was received with, as the inbox stored it; for
    /// [`Inbox`] implementations.
    pub fn with_content_type(mut self, content_type: Option<String>) -> Self {
        self.content_type = content_type;
        self
    }

    /// The `Content-Type` the event was received with, when it was appended with
    /// [`Inbox::append_with_content_type`] (`None` otherwise).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The event's identifier.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The body exactly as received and verified.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// When the inbox stored the event.
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The backend's token for this claim (not an Open Messaging receipt): what
    /// `ack`, `retry` and `release` present, so that only the current claim acts.
    pub fn claim_token(&self) -> &str {
        &self.claim_token
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may hold a customer's message: its length only.
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .field("body_len", &self.body.len())
            .field("received_at", &self.received_at)
            .field("attempt", &self.attempt)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// What [`Inbox::retry`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryOutcome {
    /// The event is pending again and will be delivered after the delay.
    Scheduled,
    /// The event used its last attempt and moved to the dead letters.
    Dead,
    /// The delivery's lease had lapsed and the event was claimed again (or
    /// acknowledged) meanwhile: nothing was changed.
    Stale,
}

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventState {
    /// Waiting to be claimed (possibly not before a retry delay).
    Pending,
    /// Claimed by a consumer whose lease has not ended.
    InFlight,
    /// Out of attempts; kept until requeued or purged.
    Dead,
}

impl EventState {
    /// `pending`, `in_flight` or `dead`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "in_flight",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored event as an operator sees it ([`InboxAdmin::get`], [`InboxAdmin::list`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct StoredEvent {
    /// The event's identifier.
    pub id: EventId,
    /// The body as received.
    pub body: Bytes,
    /// When it was stored.
    pub received_at: SystemTime,
    /// How many times it was delivered so far.
    pub attempts: u32,
    /// Where it stands.
    pub state: EventState,
    /// Why the last attempt failed, if one did.
    pub last_error: Option<String>,
    /// The `Content-Type` it was received with, if it was stored.
    pub content_type: Option<String>,
}

impl fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEvent")
            .field("id", &self.id)
            .field("body_len", &self.body.len())
            .field("received_at", &self.received_at)
            .field("attempts", &self.attempts)
            .field("state", &self.state)
            .field("last_error", &self.last_error)
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// How many events an inbox holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxStats {
    /// Waiting to be claimed, retries included.
    pub pending: u64,
    /// Claimed and not yet acknowledged (a crashed consumer's, until its lease ends).
    pub in_flight: u64,
    /// Out of attempts.
    pub dead: u64,
}

/// Why an inbox operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InboxError {
    /// The inbox holds as many events or bytes as it is allowed: ask the sender to
    /// retry later. Nothing was stored.
    Full,
    /// The store could not be used (I/O error, connection refused, timeout). For an
    /// append, the event may or may not have been stored: answer so that the sender
    /// retries.
    Unavailable(BoxError),
    /// The inbox was configured wrongly (a malformed URL, a bad setting).
    Config(InboxConfigError),
}

impl InboxError {
    /// Wraps a store failure as [`InboxError::Unavailable`].
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("inbox full"),
            Self::Unavailable(error) => write!(f, "inbox unavailable: {error}"),
            Self::Config(reason) => write!(f, "inbox misconfigured: {reason}"),
        }
    }
}

impl std::error::Error for InboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(error) => Some(&**error),
            _ => None,
        }
    }
}

/// Which events [`InboxAdmin::list`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListFilter {
    /// Pending and in flight.
    Live,
    /// Dead letters only.
    Dead,
}

/// A durable queue of verified events, its data plane: append, claim, extend the
/// lease, acknowledge, retry, release or defer, dead-letter, wake-ups and ping. Object safe:
/// hold it as `Arc<dyn Inbox>`. The operators' side is [`InboxAdmin`].
pub trait Inbox: Send + Sync + 'static {
    /// Stores `body` and resolves once it is durable by the backend's guarantee.
    ///
    /// An append that is given up on (a timeout, a dropped future) or that fails with
    /// [`InboxError::Unavailable`] may still have been stored, or be stored a moment
    /// later: the SQLite writer commits what it already took, and a Redis command that
    /// timed out may have run. The sender, asked to retry, then stores the event a
    /// second time, and the worker processes it twice. Where that matters, make the
    /// handler idempotent (Open Messaging events carry a message id).
    fn append(&self, body: Bytes) -> BoxFuture<'_, Result<EventId, InboxError>>;

    /// [`append`](Self::append), keeping the `Content-Type` the body came with, so that
    /// [`Delivery::content_type`] and [`StoredEvent::content_type`] give it back (the
    /// relay, `genesys-webhook serve`, forwards it). The memory, SQLite and Redis inboxes
    /// store it; the default drops it and calls `append`.
    fn append_with_content_type<'a>(
        &'a self,
        body: Bytes,
        content_type: Option<&str>,
    ) -> BoxFuture<'a, Result<EventId, InboxError>> {
        let _ = content_type;
        self.append(body)
    }

    /// Claims up to `max` events that are due, each under a lease of `lease`. Events
    /// whose lease ended without an `ack` or `retry` are delivered again; one whose
    /// attempts are used up moves to the dead letters instead.
    ///
    /// Not cancel safe: a backend may start the claim when this is called, not when the
    /// future is first polled (the SQLite inbox does), and events claimed for a future
    /// dropped before it resolved stay leased. They are delivered again once the lease
    /// ends.
    fn claim(
        &self,
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, InboxError>>;

    /// Extends the lease of `delivery` to `lease` from now, while its handler still
    /// runs, so that no other consumer takes it over. Resolves to whether this claim
    /// still held it: `false` when the lease had lapsed and the event was claimed
    /// again, acknowledged or retried meanwhile.
    fn extend_lease<'a>(
        &'a self,
        delivery: &'a Delivery,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>>;

    /// The delivery was processed: forget the event.
    fn ack<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), InboxError>>;

    /// Several deliveries were processed: forget them all, in one operation where the
    /// backend can (the SQLite inbox commits them together). The default acknowledges
    /// them one by one.
    fn ack_all<'a>(&'a self, deliveries: &'a [Delivery]) -> BoxFuture<'a, Result<(), InboxError>> {
        Box::pin(async move {
            for delivery in deliveries {
                self.ack(delivery).await?;
            }
            Ok(())
        })
    }

    /// The delivery failed: deliver it again after `delay`, or move it to the dead
    /// letters if that was its last attempt. `reason` is kept for operators.
    fn retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, InboxError>>;

    /// Hands a claimed delivery back, due at once, without counting the attempt it
    /// used: for a consumer that stops before its handler ran or finished (a shutdown,
    /// a rolling restart). Resolves to whether this claim still held the event.
    /// The same as [`defer`](Self::defer) with no delay.
    fn release<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<bool, InboxError>> {
        self.defer(delivery, Duration::ZERO)
    }

    /// Hands a claimed delivery back, due again after `delay`, without counting the
    /// attempt it used: for a consumer that must not handle it yet (an earlier event of
    /// the same conversation is still being retried). Its attempts and last error stay
    /// as they were. Resolves to whether this claim still held the event.
    fn defer<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>>;

    /// Moves a claimed delivery to the dead letters at once, whatever attempts it has
    /// left, keeping `reason` for operators: for an event no retry can fix (a poison
    /// message). Resolves to whether this claim still held the event.
    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<bool, InboxError>>;

    /// Resolves when an event may have been appended through this handle since the
    /// call: a hint that lets a consumer in the same process claim at once. Consumers
    /// must still poll, for events appended elsewhere. The default never resolves.
    fn appended(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }

    /// Checks that the store answers, for readiness probes.
    fn ping(&self) -> BoxFuture<'_, Result<(), InboxError>>;
}

/// What operators do with an inbox, beside the data plane: counts, listing, reading
/// one event, requeueing and purging dead letters. The `genesys-webhook inbox` command
/// and the worker's depth gauge use it; every backend implements both traits.
///
/// An `Arc<dyn InboxAdmin>` coerces to the `Arc<dyn Inbox>` that the endpoints take.
pub trait InboxAdmin: Inbox {
    /// Counts of pending, in-flight and dead events.
    fn stats(&self) -> BoxFuture<'_, Result<InboxStats, InboxError>>;

    /// Up to `limit` stored events, oldest first.
    fn list(
        &self,
        filter: ListFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, InboxError>>;

    /// One stored event, if the inbox holds it.
    fn get<'a>(&'a self, id: &'a EventId)
        -> BoxFuture<'a, Result<Option<StoredEvent>, InboxError>>;

    /// Puts a dead or delayed event back to pending, due now, with its attempts
    /// counted from zero again. Resolves to whether the event was found.
    fn requeue<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<bool, InboxError>>;

    /// Puts every dead event back to pending; resolves to how many.
    fn requeue_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>>;

    /// Deletes every dead event; resolves to how many.
    fn purge_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>>;

    /// How many durable commits (fsyncs) this handle has made, where the backend
    /// counts them (`SqliteInbox` does); `None` otherwise.
    fn commits(&self) -> Option<u64> {
        None
    }
}

/// Milliseconds since the Unix epoch, saturating.
#[cfg(any(feature = "sqlite", feature = "redis"))]
pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The time `millis` after the Unix epoch (negative values clamp to it).
#[cfg(any(feature = "sqlite", feature = "redis"))]
pub(crate) fn from_unix_millis(millis: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// A duration in whole milliseconds, saturating.
#[cfg(any(feature = "sqlite", feature = "redis"))]
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
