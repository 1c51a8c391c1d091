//! Delivery in order per key (a conversation) for the [`Worker`](super::Worker): at
//! most one event of a key is handled at a time, and never one before an older event
//! of its key that is still live.
//!
//! The sequencer keeps, per key, the live events it knows, oldest first: those the
//! inbox listed when the worker started (what a crashed process left), then each new
//! one in the order the inbox hands it out. Only the oldest is handled; a later one
//! waits in memory while the oldest runs, or goes back to the inbox with
//! [`Inbox::defer`](super::Inbox::defer) (no attempt used) while the oldest waits for a
//! retry. The oldest leaves the line only once its acknowledgement or dead-lettering is
//! stored, so a crash cannot bring it back behind a later event.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{EventId, StoredEvent};

/// The key an event is ordered by, from its body; `None`: not ordered.
pub(super) type KeyFn = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// The most deliveries of one key that wait in memory for the one running; more are
/// deferred (they would hold claim slots that other keys' events need).
const MAX_WAITING_PER_KEY: usize = 8;
/// How long a delivery that cannot go yet is deferred when nothing better is known.
pub(super) const RECHECK: Duration = Duration::from_secs(1);
/// Added to the oldest event's due time when later ones are deferred behind it, so
/// that it is claimed first.
const MARGIN: Duration = Duration::from_millis(50);

/// Per-key lines of live events.
pub(super) struct Sequencer {
    key: KeyFn,
    lines: Mutex<HashMap<String, Line>>,
}

#[derive(Default)]
struct Line {
    /// Known live events, oldest first, with when the oldest is due again (if known).
    queue: VecDeque<(EventId, Option<Instant>)>,
    /// The oldest is being handled.
    running: bool,
    /// Deliveries waiting in memory for the oldest.
    waiting: usize,
    /// Bumped on every change of the oldest event's state.
    changed: Option<watch::Sender<()>>,
}

impl Line {
    fn notify(&mut self) {
        if let Some(changed) = &self.changed {
            changed.send_replace(());
        }
    }

    fn subscribe(&mut self) -> watch::Receiver<()> {
        self.changed
            .get_or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }
}

/// What a delivery does next.
pub(super) enum Turn {
    /// Its turn: handle it, then [`Sequencer::finish`].
    Go,
    /// Wait for a change of the line, then ask again.
    Wait(watch::Receiver<()>),
    /// Back to the inbox, due after this.
    Defer(Duration),
    /// The oldest event's state is unknown: look it up in the inbox.
    Verify(EventId),
}

/// How a delivery's claim ended, for its line.
pub(super) enum Settled {
    /// Acknowledged or dead-lettered, and stored so: it leaves the line.
    Gone,
    /// Scheduled again after this delay.
    Again(Duration),
    /// Handed back or in doubt (a store error): the inbox knows.
    Unknown,
}

impl Sequencer {
    pub(super) fn new(key: KeyFn) -> Self {
        Self {
            key,
            lines: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Line>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key of a body, if it is ordered.
    pub(super) fn key(&self, body: &[u8]) -> Option<String> {
        (self.key)(body)
    }

    /// Lines up the live events a previous process left, oldest first.
    pub(super) fn seed(&self, events: &[StoredEvent]) {
        let mut lines = self.lock();
        for event in events {
            if let Some(key) = self.key(&event.body) {
                let line = lines.entry(key).or_default();
                if !line.queue.iter().any(|(id, _)| *id == event.id) {
                    line.queue.push_back((event.id.clone(), None));
                }
            }
        }
    }

    /// Where `id` of `key` stands; `waited`: it was waiting in memory until now.
    pub(super) fn turn(&self, key: &str, id: &EventId, waited: bool) -> Turn {
        let mut lines = self.lock();
        let line = lines.entry(key.to_owned()).or_default();
        if waited {
            line.waiting = line.waiting.saturating_sub(1);
        }
        if !line.queue.iter().any(|(queued, _)| queued == id) {
            line.queue.push_back((id.clone(), None));
        }
        let Some((front, due)) = line.queue.front() else {
            return Turn::Defer(RECHECK);
        };
        if front == id {
            if line.running {
                // Claimed again while it runs here (its lease lapsed): not twice at once.
                return Turn::Defer(RECHECK);
            }
            line.running = true;
            return Turn::Go;
        }
        if line.running {
            if line.waiting < MAX_WAITING_PER_KEY {
                line.waiting += 1;
                return Turn::Wait(line.subscribe());
            }
            return Turn::Defer(RECHECK);
        }
        let now = Instant::now();
        match due {
            // Behind it, once it is due again.
            Some(due) if *due + RECHECK > now => {
                Turn::Defer(due.saturating_duration_since(now) + MARGIN)
            }
            _ => Turn::Verify(front.clone()),
        }
    }

    /// The claim of the oldest event `id` of `key` ended so.
    pub(super) fn finish(&self, key: &str, id: &EventId, settled: Settled) {
        let mut lines = self.lock();
        let Some(line) = lines.get_mut(key) else {
            return;
        };
        if line.queue.front().is_some_and(|(front, _)| front == id) {
            line.running = false;
            match settled {
                Settled::Gone => {
                    line.queue.pop_front();
                }
                Settled::Again(delay) => line.queue[0].1 = Some(Instant::now() + delay),
                Settled::Unknown => line.queue[0].1 = None,
            }
        }
        line.notify();
        if line.queue.is_empty() && line.waiting == 0 {
            lines.remove(key);
        }
    }

    /// `id` is no longer live (acknowledged elsewhere, dead, purged): out of the line.
    pub(super) fn forget(&self, key: &str, id: &EventId) {
        let mut lines = self.lock();
        if let Some(line) = lines.get_mut(key) {
            if line.queue.front().is_some_and(|(front, _)| front == id) && line.running {
                return;
            }
            line.queue.retain(|(queued, _)| queued != id);
            line.notify();
        }
    }

    /// A delivery that waited in memory stops waiting without asking again (the worker
    /// stops).
    pub(super) fn stop_waiting(&self, key: &str) {
        if let Some(line) = self.lock().get_mut(key) {
            line.waiting = line.waiting.saturating_sub(1);
        }
    }
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("keys", &self.lock().len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequencer() -> Sequencer {
        Sequencer::new(Arc::new(|body: &[u8]| {
            std::str::from_utf8(body)
                .ok()
                .and_then(|b| b.split_once(':'))
                .map(|(key, _)| key.to_owned())
        }))
    }

    fn id(n: u32) -> EventId {
        EventId::new(n.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_oldest_of_a_key_goes_and_the_next_follows_once_it_is_gone() {
        let order = sequencer();
        assert!(matches!(order.turn("a", &id(1), false), Turn::Go));
        assert!(matches!(order.turn("b", &id(2), false), Turn::Go));
        let Turn::Wait(mut changed) = order.turn("a", &id(3), false) else {
            panic!("the second of `a` must wait while the first runs");
        };
        order.finish("a", &id(1), Settled::Gone);
        changed.changed().await.unwrap();
        assert!(matches!(order.turn("a", &id(3), true), Turn::Go));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_event_is_deferred_behind_a_retried_one_until_it_is_due() {
        let order = sequencer();
        assert!(matches!(order.turn("a", &id(1), false), Turn::Go));
        order.finish("a", &id(1), Settled::Again(Duration::from_secs(4)));
        let Turn::Defer(delay) = order.turn("a", &id(2), false) else {
            panic!("behind a retried event, defer");
        };
        assert!(delay > Duration::from_secs(4) && delay < Duration::from_secs(5));
        // Once well past its due time and still not back: look it up.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(matches!(order.turn("a", &id(2), false), Turn::Verify(front) if front == id(1)));
        order.forget("a", &id(1));
        assert!(matches!(order.turn("a", &id(2), false), Turn::Go));
    }

    #[test]
    fn seeded_events_come_first_and_unkeyed_bodies_are_not_ordered() {
        let order = sequencer();
        let stored = |n: u32, body: &'static str| StoredEvent {
            id: id(n),
            body: bytes::Bytes::from_static(body.as_bytes()),
            received_at: std::time::SystemTime::UNIX_EPOCH,
            attempts: 1,
            state: super::super::EventState::Pending,
            last_error: None,
        };
        order.seed(&[
            stored(1, "a:first"),
            stored(2, "no key"),
            stored(3, "a:second"),
        ]);
        assert_eq!(order.key(b"no key"), None);
        assert!(matches!(order.turn("a", &id(3), false), Turn::Verify(front) if front == id(1)));
        assert!(matches!(order.turn("a", &id(1), false), Turn::Go));
    }

    #[test]
    fn too_many_waiting_on_one_key_are_deferred() {
        let order = sequencer();
        assert!(matches!(order.turn("a", &id(0), false), Turn::Go));
        for n in 1..=MAX_WAITING_PER_KEY as u32 {
            assert!(matches!(order.turn("a", &id(n), false), Turn::Wait(_)));
        }
        assert!(matches!(
            order.turn("a", &id(99), false),
            Turn::Defer(RECHECK)
        ));
    }
}
