use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use tokio::sync::Notify;

use crate::redis_connection::{connect_lazily, ConnectError};

use super::{
    from_unix_millis, millis, unix_millis, BoxFuture, Clock, Delivery, EventId, EventState, Inbox,
    InboxAdmin, InboxConfigError, InboxError, InboxLimits, InboxStats, ListFilter, RetryOutcome,
    StoredEvent,
};

const DEFAULT_PREFIX: &str = "genesys-webhook:inbox:";
const GROUP: &str = "workers";

/// Stores an event unless the inbox is full. Returns the stream id, or nil when full.
/// KEYS: stream, totals. ARGV: body, now, max events, max bytes.
const APPEND: &str = include_str!("append.lua");

/// Moves due retries back into the stream, takes over lapsed leases (XAUTOCLAIM),
/// reads new entries (XREADGROUP), and dead-letters what used its last attempt.
/// Returns {stream id, event id, received, attempt, body} per delivery.
/// The `XAUTOCLAIM` cursor is kept between claims (KEYS[5]): each call scans a bounded
/// part of the pending entries, and starting from the beginning every time would leave
/// lapsed entries behind recently claimed ones waiting.
/// KEYS: stream, delayed (due times), delayed entries, dead, claim cursor. ARGV: group,
/// consumer, count, lease ms, now ms, max attempts.
const CLAIM: &str = include_str!("claim.lua");

/// Finds one event by its id wherever it is, atomically. Returns {where, deliveries,
/// entry id, fields} or nil. KEYS: stream, delayed entries, dead. ARGV: group, id.
const FIND: &str = include_str!("find.lua");

/// Acknowledges and deletes processed entries, so the stream holds only
/// unacknowledged work and never needs a MAXLEN trim that could drop it.
/// KEYS: stream, totals. ARGV: group, then the stream ids.
const ACK: &str = include_str!("ack.lua");

/// Ends a claim short of an acknowledgement. Mode `retry` schedules a failed delivery
/// again, or dead-letters it after its last attempt; `release` hands it back due at
/// once without using its attempt; `dead` dead-letters it at once. 'stale' when this
/// claim no longer holds the entry (another consumer, or a later delivery, took it over).
/// KEYS: stream, delayed (due times), delayed entries, dead. ARGV: group, stream id, attempt, max
/// attempts, due ms, reason, consumer, mode.
const RETRY: &str = include_str!("retry.lua");

/// Resets the idle time of an entry this claim still holds (XCLAIM ... JUSTID leaves
/// the delivery count alone), so that no other consumer takes it over. 1 when held.
/// KEYS: stream. ARGV: group, stream id, attempt, consumer.
const EXTEND: &str = include_str!("extend.lua");

/// {pending, in flight, dead}. KEYS: stream, delayed entries, dead. ARGV: group.
const STATS: &str = include_str!("stats.lua");

/// Moves one entry (or every one, with ARGV[1] = '*') of a dead or delayed stream
/// back to the main stream, due now, with its attempts reset.
/// KEYS: stream, source stream, delayed (due times). Returns how many.
const REQUEUE: &str = include_str!("requeue.lua");

/// Deletes every dead entry. KEYS: dead, totals. Returns how many.
const PURGE_DEAD: &str = include_str!("purge_dead.lua");

/// An [`Inbox`] in a Redis stream with a consumer group, shared by every replica of a
/// receiver.
///
/// - `append` is an `XADD` (in a script that also enforces the bounds), answered once
///   Redis has it. How durable that is, is Redis' configuration: run it with
///   `appendonly yes` and `appendfsync always` (Redis then writes and fsyncs the AOF
///   before it replies) for an acknowledgement that survives a crash of Redis or of
///   its machine. With `appendfsync everysec` about a second of acknowledged events
///   can be lost; without persistence, everything on a restart. With replicas,
///   [`wait_for_replicas`](RedisInboxBuilder::wait_for_replicas) adds a `WAIT`.
/// - `claim` reads new entries with `XREADGROUP`, takes over entries whose consumer
///   has been idle longer than the lease with `XAUTOCLAIM` (a crashed replica's work),
///   and brings back retries that are due. Every replica reads through one consumer
///   group, so each event goes to one of them. All consumers of one stream should use
///   the same lease.
/// - `ack` is `XACK` and `XDEL` in one script: the stream holds only unacknowledged
///   entries, so it is never trimmed by length, and no trim can drop pending work.
/// - A failed delivery waits in a sorted set until it is due again; after the last
///   attempt it moves to a dead-letter stream.
///
/// Keys start with a prefix (default `genesys-webhook:inbox:`): `stream`, `dead`,
/// `delayed` (due times), `delayed:entries` and `totals`.
///
/// ```no_run
/// use genesys_webhook::inbox::{InboxLimits, RedisInbox};
///
/// # fn main() -> Result<(), genesys_webhook::inbox::InboxError> {
/// let inbox = RedisInbox::builder("redis://127.0.0.1:6379/")
///     .prefix("my-app:inbox:")
///     .limits(InboxLimits::default().max_attempts(10))
///     .open()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisInbox {
    connection: ConnectionManager,
    shared: Arc<Shared>,
}

struct Shared {
    keys: Keys,
    consumer: String,
    limits: InboxLimits,
    wait: Option<(u32, Duration)>,
    scripts: Scripts,
    appended: Notify,
    clock: Clock,
}

struct Keys {
    stream: String,
    dead: String,
    delayed: String,
    delayed_entries: String,
    totals: String,
    claim_cursor: String,
}

struct Scripts {
    append: Script,
    claim: Script,
    ack: Script,
    extend: Script,
    retry: Script,
    stats: Script,
    requeue: Script,
    purge_dead: Script,
    find: Script,
}

/// Configures a [`RedisInbox`]; made by [`RedisInbox::builder`].
#[derive(Debug, Clone)]
pub struct RedisInboxBuilder {
    url: String,
    prefix: String,
    consumer: Option<String>,
    limits: InboxLimits,
    timeout: Duration,
    wait: Option<(u32, Duration)>,
    clock: Clock,
}

impl RedisInboxBuilder {
    /// Reads the time from `clock` (default: the system clock), for retry delays and
    /// timestamps. Lapsed leases are found by Redis' own idle time.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Key prefix (default `genesys-webhook:inbox:`), so several applications can
    /// share one Redis.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This replica's consumer name in the group (default: host, process id and a
    /// random suffix). Names must differ between replicas.
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = Some(name.into());
        self
    }

    /// The bounds it enforces (default [`InboxLimits::default`]).
    pub fn limits(mut self, limits: InboxLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How long each command (and each connection attempt) may take (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// After each append, `WAIT` until `replicas` replicas have the write, for at most
    /// `timeout`; an append that fewer replicas confirmed fails as
    /// [`InboxError::Unavailable`] (the event may still be stored, and the sender's
    /// retry stores it again: at least once).
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then_some((replicas, timeout));
        self
    }

    /// Connects lazily (nothing is sent before the first operation). Must be called
    /// within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`InboxError::Config`] when the URL is not a Redis URL.
    pub fn open(self) -> Result<RedisInbox, InboxError> {
        let connection = connect_lazily(&self.url, self.timeout).map_err(|error| match error {
            ConnectError::InvalidUrl => InboxError::Config(InboxConfigError::InvalidRedisUrl),
            ConnectError::Redis(error) => InboxError::unavailable(error),
        })?;
        let consumer = match self.consumer {
            Some(name) => name,
            None => default_consumer()?,
        };
        let prefix = self.prefix;
        Ok(RedisInbox {
            connection,
            shared: Arc::new(Shared {
                keys: Keys {
                    stream: format!("{prefix}stream"),
                    dead: format!("{prefix}dead"),
                    delayed: format!("{prefix}delayed"),
                    delayed_entries: format!("{prefix}delayed:entries"),
                    totals: format!("{prefix}totals"),
                    claim_cursor: format!("{prefix}claim-cursor"),
                },
                consumer,
                limits: self.limits,
                wait: self.wait,
                scripts: Scripts {
                    append: Script::new(APPEND),
                    claim: Script::new(CLAIM),
                    ack: Script::new(ACK),
                    extend: Script::new(EXTEND),
                    retry: Script::new(RETRY),
                    stats: Script::new(STATS),
                    requeue: Script::new(REQUEUE),
                    purge_dead: Script::new(PURGE_DEAD),
                    find: Script::new(FIND),
                },
                appended: Notify::new(),
                clock: self.clock,
            }),
        })
    }
}

fn default_consumer() -> Result<String, InboxError> {
    let random: [u8; 6] = crate::random::bytes();
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    Ok(format!(
        "{host}-{}-{}",
        std::process::id(),
        const_hex::encode(random)
    ))
}

fn unavailable(error: redis::RedisError) -> InboxError {
    InboxError::unavailable(error)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bytes(value: &Value) -> Option<Bytes> {
    match value {
        Value::BulkString(bytes) => Some(Bytes::from(bytes.clone())),
        _ => None,
    }
}

fn malformed() -> InboxError {
    InboxError::unavailable("unexpected answer from Redis")
}

/// One stream entry: its id and its fields.
struct Entry {
    id: String,
    fields: Vec<(String, Value)>,
}

impl Entry {
    fn field(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.field(name).and_then(text)
    }

    fn origin(&self) -> String {
        self.text("origin").unwrap_or_else(|| self.id.clone())
    }

    fn stored(&self, state: EventState, extra_attempts: u32) -> StoredEvent {
        let attempts = self
            .text("attempts")
            .and_then(|a| a.parse::<u32>().ok())
            .unwrap_or(0);
        StoredEvent {
            id: EventId::new(self.origin()),
            body: self.field("body").and_then(bytes).unwrap_or_default(),
            received_at: from_unix_millis(
                self.text("received")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
            ),
            attempts: attempts.saturating_add(extra_attempts),
            state,
            last_error: self.text("error").filter(|e| !e.is_empty()),
            content_type: self.text("type").filter(|t| !t.is_empty()),
        }
    }
}

fn entries(value: Value) -> Result<Vec<Entry>, InboxError> {
    let Value::Array(items) = value else {
        return Err(malformed());
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(mut parts) = item else {
                return Err(malformed());
            };
            if parts.len() != 2 {
                return Err(malformed());
            }
            let fields = parts.pop().ok_or_else(malformed)?;
            let id = parts.pop().as_ref().and_then(text).ok_or_else(malformed)?;
            let fields = match fields {
                Value::Array(flat) => {
                    let mut pairs = Vec::with_capacity(flat.len() / 2);
                    let mut flat = flat.into_iter();
                    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                        pairs.push((text(&name).unwrap_or_default(), value));
                    }
                    pairs
                }
                Value::Map(map) => map
                    .into_iter()
                    .map(|(n, v)| (text(&n).unwrap_or_default(), v))
                    .collect(),
                _ => Vec::new(),
            };
            Ok(Entry { id, fields })
        })
        .collect()
}

impl RedisInbox {
    /// Starts configuring an inbox in the Redis at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisInboxBuilder {
        RedisInboxBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            consumer: None,
            limits: InboxLimits::default(),
            timeout: Duration::from_secs(2),
            wait: None,
            clock: Clock::system(),
        }
    }

    /// Opens the inbox at `url` with the default settings.
    ///
    /// # Errors
    ///
    /// [`InboxError::Config`] when the URL is not a Redis URL.
    pub fn open(url: &str) -> Result<Self, InboxError> {
        Self::builder(url).open()
    }

    /// This replica's consumer name.
    pub fn consumer(&self) -> &str {
        &self.shared.consumer
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Moves entry `id` (or `*`, all) of `source` back to the main stream.
    async fn move_back(&self, source: &str, id: &str) -> Result<u64, InboxError> {
        let mut connection = self.connection();
        let moved: i64 = self
            .shared
            .scripts
            .requeue
            .key(&self.shared.keys.stream)
            .key(source)
            .key(&self.shared.keys.delayed)
            .arg(id)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        self.shared.appended.notify_one();
        Ok(u64::try_from(moved).unwrap_or(0))
    }

    /// Runs the `RETRY` script in `mode` (`retry`, `release`, `defer` or `dead`) on the claim
    /// `delivery` holds; its answer.
    async fn settle(
        &self,
        delivery: &Delivery,
        delay: Duration,
        reason: &str,
        mode: &str,
    ) -> Result<String, InboxError> {
        let mut connection = self.connection();
        let keys = &self.shared.keys;
        let due = unix_millis(self.shared.clock.now()).saturating_add(millis(delay));
        self.shared
            .scripts
            .retry
            .key(&keys.stream)
            .key(&keys.delayed)
            .key(&keys.delayed_entries)
            .key(&keys.dead)
            .arg(GROUP)
            .arg(delivery.claim_token())
            .arg(delivery.attempt())
            .arg(self.shared.limits.max_attempts)
            .arg(due)
            .arg(reason)
            .arg(&self.shared.consumer)
            .arg(mode)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)
    }

    /// Every entry of `stream`, oldest first, read in pages.
    async fn scan(&self, stream: &str, limit: usize) -> Result<Vec<Entry>, InboxError> {
        let mut connection = self.connection();
        let mut all = Vec::new();
        let mut start = "-".to_owned();
        while all.len() < limit {
            let page: Value = redis::cmd("XRANGE")
                .arg(stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let page = entries(page)?;
            let Some(last) = page.last() else { break };
            start = format!("({}", last.id);
            let full = page.len() < 1000;
            all.extend(page);
            if full {
                break;
            }
        }
        all.truncate(limit);
        Ok(all)
    }

    /// Stream ids in the group's pending list, with their delivery counts.
    async fn in_flight(&self) -> Result<Vec<(String, u32)>, InboxError> {
        let mut connection = self.connection();
        let _: Value = self
            .shared
            .scripts
            .stats
            .key(&self.shared.keys.stream)
            .key(&self.shared.keys.delayed_entries)
            .key(&self.shared.keys.dead)
            .arg(GROUP)
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let pending: Value = redis::cmd("XPENDING")
            .arg(&self.shared.keys.stream)
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(self.shared.limits.max_events.min(1_000_000))
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let Value::Array(rows) = pending else {
            return Ok(Vec::new());
        };
        Ok(rows
            .iter()
            .filter_map(|row| match row {
                Value::Array(parts) if parts.len() >= 4 => {
                    Some((text(&parts[0])?, text(&parts[3])?.parse().ok()?))
                }
                _ => None,
            })
            .collect())
    }

    async fn live(&self, limit: usize) -> Result<Vec<StoredEvent>, InboxError> {
        let in_flight = self.in_flight().await?;
        let mut events: Vec<StoredEvent> = self
            .scan(&self.shared.keys.stream, limit)
            .await?
            .iter()
            .map(
                |entry| match in_flight.iter().find(|(id, _)| *id == entry.id) {
                    Some((_, deliveries)) => entry.stored(EventState::InFlight, *deliveries),
                    None => entry.stored(EventState::Pending, 0),
                },
            )
            .collect();
        events.extend(
            self.scan(&self.shared.keys.delayed_entries, limit)
                .await?
                .iter()
                .map(|entry| entry.stored(EventState::Pending, 0)),
        );
        events.sort_by_key(|e| stream_order(e.id.as_str()));
        events.truncate(limit);
        Ok(events)
    }
}

/// Orders stream ids (`ms-seq`) numerically.
fn stream_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

impl Inbox for RedisInbox {
    fn append(&self, body: Bytes) -> BoxFuture<'_, Result<EventId, InboxError>> {
        self.append_with_content_type(body, None)
    }

    fn append_with_content_type<'a>(
        &'a self,
        body: Bytes,
        content_type: Option<&str>,
    ) -> BoxFuture<'a, Result<EventId, InboxError>> {
        let content_type = content_type.unwrap_or_default().to_owned();
        Box::pin(async move {
            let mut connection = self.connection();
            let now = unix_millis(self.shared.clock.now());
            let id: Option<String> = self
                .shared
                .scripts
                .append
                .key(&self.shared.keys.stream)
                .key(&self.shared.keys.totals)
                .arg(body.as_ref())
                .arg(now)
                .arg(self.shared.limits.max_events)
                .arg(self.shared.limits.max_bytes)
                .arg(&content_type)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let Some(id) = id else {
                return Err(InboxError::Full);
            };
            if let Some((replicas, timeout)) = self.shared.wait {
                let confirmed: u32 = redis::cmd("WAIT")
                    .arg(replicas)
                    .arg(millis(timeout))
                    .query_async(&mut connection)
                    .await
                    .map_err(unavailable)?;
                if confirmed < replicas {
                    return Err(InboxError::unavailable(format!(
                        "{confirmed} of {replicas} replicas confirmed the event"
                    )));
                }
            }
            self.shared.appended.notify_one();
            Ok(EventId::new(id))
        })
    }

    fn claim(
        &self,
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, InboxError>> {
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let mut connection = self.connection();
            let keys = &self.shared.keys;
            let rows: Vec<Vec<Value>> = self
                .shared
                .scripts
                .claim
                .key(&keys.stream)
                .key(&keys.delayed)
                .key(&keys.delayed_entries)
                .key(&keys.dead)
                .key(&keys.claim_cursor)
                .arg(GROUP)
                .arg(&self.shared.consumer)
                .arg(max)
                .arg(millis(lease).max(1))
                .arg(unix_millis(self.shared.clock.now()))
                .arg(self.shared.limits.max_attempts)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|row| {
                    let [stream_id, origin, received, attempt, body, content_type] =
                        <[Value; 6]>::try_from(row).map_err(|_| malformed())?;
                    Ok(Delivery::new(
                        EventId::new(text(&origin).ok_or_else(malformed)?),
                        bytes(&body).unwrap_or_default(),
                        from_unix_millis(text(&received).and_then(|r| r.parse().ok()).unwrap_or(0)),
                        text(&attempt).and_then(|a| a.parse().ok()).unwrap_or(1),
                        text(&stream_id).ok_or_else(malformed)?,
                    )
                    .with_content_type(text(&content_type).filter(|t| !t.is_empty())))
                })
                .collect()
        })
    }

    fn ack<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), InboxError>> {
        self.ack_all(std::slice::from_ref(delivery))
    }

    /// One round trip for all of them.
    fn ack_all<'a>(&'a self, deliveries: &'a [Delivery]) -> BoxFuture<'a, Result<(), InboxError>> {
        Box::pin(async move {
            if deliveries.is_empty() {
                return Ok(());
            }
            let mut connection = self.connection();
            let mut invocation = self.shared.scripts.ack.key(&self.shared.keys.stream);
            invocation.key(&self.shared.keys.totals).arg(GROUP);
            for delivery in deliveries {
                invocation.arg(delivery.claim_token());
            }
            let _: Value = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn extend_lease<'a>(
        &'a self,
        delivery: &'a Delivery,
        _lease: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        // Redis measures a lease as idle time: resetting it extends the lease by
        // whatever lease the next claim asks for.
        Box::pin(async move {
            let mut connection = self.connection();
            let held: i64 = self
                .shared
                .scripts
                .extend
                .key(&self.shared.keys.stream)
                .arg(GROUP)
                .arg(delivery.claim_token())
                .arg(delivery.attempt())
                .arg(&self.shared.consumer)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(held == 1)
        })
    }

    fn retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, InboxError>> {
        Box::pin(async move {
            Ok(
                match self
                    .settle(delivery, delay, reason, "retry")
                    .await?
                    .as_str()
                {
                    "dead" => RetryOutcome::Dead,
                    "scheduled" => RetryOutcome::Scheduled,
                    _ => RetryOutcome::Stale,
                },
            )
        })
    }

    fn defer<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        Box::pin(async move {
            // Due at once: back on the stream, where a blocked claim sees it.
            let mode = if delay.is_zero() { "release" } else { "defer" };
            let outcome = self.settle(delivery, delay, "", mode).await?;
            let released = outcome == "released";
            if released && delay.is_zero() {
                self.shared.appended.notify_one();
            }
            Ok(released)
        })
    }

    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        Box::pin(async move {
            let outcome = self
                .settle(delivery, Duration::ZERO, reason, "dead")
                .await?;
            Ok(outcome == "dead")
        })
    }

    fn appended(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.shared.appended.notified())
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), InboxError>> {
        Box::pin(async move {
            let mut connection = self.connection();
            let _: Value = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }
}

impl InboxAdmin for RedisInbox {
    fn stats(&self) -> BoxFuture<'_, Result<InboxStats, InboxError>> {
        Box::pin(async move {
            let mut connection = self.connection();
            let keys = &self.shared.keys;
            let counts: Vec<i64> = self
                .shared
                .scripts
                .stats
                .key(&keys.stream)
                .key(&keys.delayed_entries)
                .key(&keys.dead)
                .arg(GROUP)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let count = |i: usize| {
                counts
                    .get(i)
                    .and_then(|n| u64::try_from(*n).ok())
                    .unwrap_or(0)
            };
            Ok(InboxStats {
                pending: count(0),
                in_flight: count(1),
                dead: count(2),
            })
        })
    }

    fn list(
        &self,
        filter: ListFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, InboxError>> {
        Box::pin(async move {
            match filter {
                ListFilter::Dead => Ok(self
                    .scan(&self.shared.keys.dead, limit)
                    .await?
                    .iter()
                    .map(|entry| entry.stored(EventState::Dead, 0))
                    .collect()),
                _ => self.live(limit).await,
            }
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a EventId,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, InboxError>> {
        Box::pin(async move {
            // One script: read one key after the other, an entry moving between them
            // meanwhile (a claim taking a due retry back) would be missed, and an event
            // still live reported gone.
            let mut connection = self.connection();
            let keys = &self.shared.keys;
            let found: Value = self
                .shared
                .scripts
                .find
                .key(&keys.stream)
                .key(&keys.delayed_entries)
                .key(&keys.dead)
                .arg(GROUP)
                .arg(id.as_str())
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let Value::Array(parts) = found else {
                return Ok(None);
            };
            let [place, deliveries, entry_id, fields] =
                <[Value; 4]>::try_from(parts).map_err(|_| malformed())?;
            let entry = entries(Value::Array(vec![Value::Array(vec![entry_id, fields])]))?
                .pop()
                .ok_or_else(malformed)?;
            let deliveries: u32 = text(&deliveries).and_then(|d| d.parse().ok()).unwrap_or(0);
            Ok(Some(match text(&place).as_deref() {
                Some("stream") if deliveries > 0 => entry.stored(EventState::InFlight, deliveries),
                Some("dead") => entry.stored(EventState::Dead, 0),
                _ => entry.stored(EventState::Pending, 0),
            }))
        })
    }

    fn requeue<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<bool, InboxError>> {
        Box::pin(async move {
            let keys = &self.shared.keys;
            let limit = usize::try_from(self.shared.limits.max_events).unwrap_or(usize::MAX);
            for source in [&keys.delayed_entries, &keys.dead] {
                let found = self.scan(source, limit).await?;
                if let Some(entry) = found.iter().find(|e| e.origin() == id.as_str()) {
                    let moved = self.move_back(source, &entry.id).await?;
                    return Ok(moved > 0);
                }
            }
            Ok(false)
        })
    }

    fn requeue_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        Box::pin(async move { self.move_back(&self.shared.keys.dead, "*").await })
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        Box::pin(async move {
            let mut connection = self.connection();
            let purged: i64 = self
                .shared
                .scripts
                .purge_dead
                .key(&self.shared.keys.dead)
                .key(&self.shared.keys.totals)
                .invoke_async(&mut connection)
                .await
                .map_err(unavailable)?;
            Ok(u64::try_from(purged).unwrap_or(0))
        })
    }
}

impl fmt::Debug for RedisInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInbox")
            .field("stream", &self.shared.keys.stream)
            .field("consumer", &self.shared.consumer)
            .field("max_attempts", &self.shared.limits.max_attempts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_stream_ids_numerically() {
        assert!(stream_order("9-0") < stream_order("10-0"));
        assert!(stream_order("10-2") < stream_order("10-10"));
    }
}
