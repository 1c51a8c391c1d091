use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::Notify;

use super::{
    BoxFuture, Clock, Delivery, EventId, EventState, Inbox, InboxAdmin, InboxError, InboxLimits,
    InboxStats, ListFilter, RetryOutcome, StoredEvent,
};

/// An [`Inbox`] in process memory: every event it acknowledged is **lost when the
/// process dies**. For tests, and for receivers whose events may be lost.
///
/// Same semantics as the durable backends otherwise: leases, retries, dead letters
/// and bounds.
#[derive(Debug)]
pub struct MemoryInbox {
    limits: InboxLimits,
    state: Mutex<State>,
    appended: Notify,
    clock: Clock,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    bytes: u64,
    events: BTreeMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    body: Bytes,
    received_at: SystemTime,
    attempts: u32,
    state: EventState,
    /// Pending: not before. In flight: the lease's end.
    due: SystemTime,
    last_error: Option<String>,
    content_type: Option<String>,
}

impl Default for MemoryInbox {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryInbox {
    /// An empty inbox with the default [`InboxLimits`].
    pub fn new() -> Self {
        Self {
            limits: InboxLimits::default(),
            state: Mutex::new(State::default()),
            appended: Notify::new(),
            clock: Clock::system(),
        }
    }

    /// Reads the time from `clock` (default: the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The bounds it enforces (default [`InboxLimits::default`]).
    pub fn limits(mut self, limits: InboxLimits) -> Self {
        self.limits = limits;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every step below leaves the state consistent before it can panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append_now(&self, body: Bytes, content_type: Option<String>) -> Result<EventId, InboxError> {
        let mut state = self.lock();
        let len = body.len() as u64;
        if state.events.len() as u64 >= self.limits.max_events
            || state.bytes.saturating_add(len) > self.limits.max_bytes
        {
            return Err(InboxError::Full);
        }
        state.next_id += 1;
        let id = state.next_id;
        let now = self.clock.now();
        state.bytes += len;
        state.events.insert(
            id,
            Entry {
                body,
                received_at: now,
                attempts: 0,
                state: EventState::Pending,
                due: now,
                last_error: None,
                content_type,
            },
        );
        drop(state);
        self.appended.notify_one();
        Ok(EventId::new(id.to_string()))
    }

    fn claim_now(&self, max: usize, lease: Duration) -> Vec<Delivery> {
        let now = self.clock.now();
        let mut state = self.lock();
        let mut deliveries = Vec::new();
        for (id, entry) in state.events.iter_mut() {
            if deliveries.len() >= max {
                break;
            }
            let due = matches!(entry.state, EventState::Pending | EventState::InFlight)
                && entry.due <= now;
            if !due {
                continue;
            }
            if entry.attempts >= self.limits.max_attempts {
                entry.state = EventState::Dead;
                entry
                    .last_error
                    .get_or_insert_with(|| "lease ended without an answer".to_owned());
                continue;
            }
            entry.attempts += 1;
            entry.state = EventState::InFlight;
            entry.due = now + lease;
            deliveries.push(
                Delivery::new(
                    EventId::new(id.to_string()),
                    entry.body.clone(),
                    entry.received_at,
                    entry.attempts,
                    entry.attempts.to_string(),
                )
                .with_content_type(entry.content_type.clone()),
            );
        }
        deliveries
    }

    /// Ends the claim `delivery` holds: retried, handed back without using its attempt,
    /// or dead at once. `Stale` when the claim no longer holds the event.
    fn settle(&self, delivery: &Delivery, settle: Settle<'_>) -> RetryOutcome {
        let Some((id, attempt)) = claimed(delivery) else {
            return RetryOutcome::Stale;
        };
        let mut state = self.lock();
        let Some(entry) = state.events.get_mut(&id) else {
            return RetryOutcome::Stale;
        };
        if entry.state != EventState::InFlight || entry.attempts != attempt {
            return RetryOutcome::Stale;
        }
        let now = self.clock.now();
        match settle {
            Settle::Defer(delay) => {
                entry.attempts -= 1;
                entry.state = EventState::Pending;
                entry.due = now + delay;
                RetryOutcome::Scheduled
            }
            Settle::Dead(reason) => {
                entry.last_error = Some(reason.to_owned());
                entry.state = EventState::Dead;
                RetryOutcome::Dead
            }
            Settle::Retry(delay, reason) => {
                entry.last_error = Some(reason.to_owned());
                if entry.attempts >= self.limits.max_attempts {
                    entry.state = EventState::Dead;
                    RetryOutcome::Dead
                } else {
                    entry.state = EventState::Pending;
                    entry.due = now + delay;
                    RetryOutcome::Scheduled
                }
            }
        }
    }

    fn stored(id: u64, entry: &Entry) -> StoredEvent {
        StoredEvent {
            id: EventId::new(id.to_string()),
            body: entry.body.clone(),
            received_at: entry.received_at,
            attempts: entry.attempts,
            state: entry.state,
            last_error: entry.last_error.clone(),
            content_type: entry.content_type.clone(),
        }
    }
}

/// How a claim ends, short of an acknowledgement.
#[derive(Clone, Copy)]
enum Settle<'a> {
    Retry(Duration, &'a str),
    Defer(Duration),
    Dead(&'a str),
}

fn numeric(id: &EventId) -> Option<u64> {
    id.as_str().parse().ok()
}

fn claimed(delivery: &Delivery) -> Option<(u64, u32)> {
    Some((
        numeric(delivery.id())?,
        delivery.claim_token().parse().ok()?,
    ))
}

impl Inbox for MemoryInbox {
    fn ping(&self) -> BoxFuture<'_, Result<(), InboxError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn append(&self, body: Bytes) -> BoxFuture<'_, Result<EventId, InboxError>> {
        let result = self.append_now(body, None);
        Box::pin(std::future::ready(result))
    }

    fn append_with_content_type<'a>(
        &'a self,
        body: Bytes,
        content_type: Option<&str>,
    ) -> BoxFuture<'a, Result<EventId, InboxError>> {
        let result = self.append_now(body, content_type.map(str::to_owned));
        Box::pin(std::future::ready(result))
    }

    fn claim(
        &self,
        max: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, InboxError>> {
        let deliveries = self.claim_now(max, lease);
        Box::pin(std::future::ready(Ok(deliveries)))
    }

    fn ack<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), InboxError>> {
        if let Some(id) = numeric(delivery.id()) {
            let mut state = self.lock();
            if let Some(entry) = state.events.remove(&id) {
                state.bytes -= entry.body.len() as u64;
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn ack_all<'a>(&'a self, deliveries: &'a [Delivery]) -> BoxFuture<'a, Result<(), InboxError>> {
        let mut state = self.lock();
        for id in deliveries.iter().filter_map(|d| numeric(d.id())) {
            if let Some(entry) = state.events.remove(&id) {
                state.bytes -= entry.body.len() as u64;
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn extend_lease<'a>(
        &'a self,
        delivery: &'a Delivery,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        let mut held = false;
        if let Some((id, attempt)) = claimed(delivery) {
            let now = self.clock.now();
            let mut state = self.lock();
            if let Some(entry) = state.events.get_mut(&id) {
                if entry.state == EventState::InFlight && entry.attempts == attempt {
                    entry.due = now + lease;
                    held = true;
                }
            }
        }
        Box::pin(std::future::ready(Ok(held)))
    }

    fn retry<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, InboxError>> {
        let outcome = self.settle(delivery, Settle::Retry(delay, reason));
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn defer<'a>(
        &'a self,
        delivery: &'a Delivery,
        delay: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        let released = self.settle(delivery, Settle::Defer(delay)) != RetryOutcome::Stale;
        if released && delay.is_zero() {
            self.appended.notify_one();
        }
        Box::pin(std::future::ready(Ok(released)))
    }

    fn dead_letter<'a>(
        &'a self,
        delivery: &'a Delivery,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        let buried = self.settle(delivery, Settle::Dead(reason)) != RetryOutcome::Stale;
        Box::pin(std::future::ready(Ok(buried)))
    }

    fn appended(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.appended.notified())
    }
}

impl InboxAdmin for MemoryInbox {
    fn stats(&self) -> BoxFuture<'_, Result<InboxStats, InboxError>> {
        let now = self.clock.now();
        let state = self.lock();
        let mut stats = InboxStats::default();
        for entry in state.events.values() {
            match entry.state {
                EventState::InFlight if entry.due > now => stats.in_flight += 1,
                EventState::Dead => stats.dead += 1,
                _ => stats.pending += 1,
            }
        }
        Box::pin(std::future::ready(Ok(stats)))
    }

    fn list(
        &self,
        filter: ListFilter,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<StoredEvent>, InboxError>> {
        let state = self.lock();
        let events = state
            .events
            .iter()
            .filter(|(_, e)| (e.state == EventState::Dead) == (filter == ListFilter::Dead))
            .take(limit)
            .map(|(id, e)| Self::stored(*id, e))
            .collect();
        Box::pin(std::future::ready(Ok(events)))
    }

    fn get<'a>(
        &'a self,
        id: &'a EventId,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, InboxError>> {
        let state = self.lock();
        let event = numeric(id).and_then(|n| state.events.get(&n).map(|e| Self::stored(n, e)));
        Box::pin(std::future::ready(Ok(event)))
    }

    fn requeue<'a>(&'a self, id: &'a EventId) -> BoxFuture<'a, Result<bool, InboxError>> {
        let mut state = self.lock();
        let found = match numeric(id).and_then(|n| state.events.get_mut(&n)) {
            Some(entry) if entry.state != EventState::InFlight => {
                entry.state = EventState::Pending;
                entry.attempts = 0;
                entry.due = self.clock.now();
                true
            }
            _ => false,
        };
        drop(state);
        if found {
            self.appended.notify_one();
        }
        Box::pin(std::future::ready(Ok(found)))
    }

    fn requeue_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        let now = self.clock.now();
        let mut state = self.lock();
        let mut count = 0;
        for entry in state.events.values_mut() {
            if entry.state == EventState::Dead {
                entry.state = EventState::Pending;
                entry.attempts = 0;
                entry.due = now;
                count += 1;
            }
        }
        drop(state);
        self.appended.notify_one();
        Box::pin(std::future::ready(Ok(count)))
    }

    fn purge_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        let mut state = self.lock();
        let before = state.events.len();
        let mut freed = 0;
        state.events.retain(|_, e| {
            let keep = e.state != EventState::Dead;
            if !keep {
                freed += e.body.len() as u64;
            }
            keep
        });
        state.bytes -= freed;
        let count = (before - state.events.len()) as u64;
        Box::pin(std::future::ready(Ok(count)))
    }
}
