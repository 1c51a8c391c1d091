//! Delivery in order per key (a conversation) for the [`Worker`](super::Worker): at
//! most one event of a key is handled at a time, and never one before an older event
//! of its key that is still live.
//!
//! The sequencer keeps, per key, a line of the live events it knows, oldest first:
//! those the inbox listed when the worker started (what a crashed process left), then
//! each new one in the order the inbox hands it out. Each entry is running (the oldest
//! only), waiting in memory, or away in the inbox (deferred, or waiting for a retry).
//! A claimed event waits in memory only when every entry ahead of it is held here,
//! so the waiting ones are always the front of the line and the oldest of them is
//! woken alone when its turn comes; otherwise it goes back to the inbox with
//! [`Inbox::defer`](super::Inbox::defer) (no attempt used) until the entry ahead of it
//! is due. The oldest leaves the line only once its acknowledgement or dead-lettering
//! is stored, so a crash cannot bring it back behind a later event.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{EventId, StoredEvent};

/// The key an event is ordered by, from its body; `None`: not ordered.
pub(super) type KeyFn = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// How long a delivery is deferred behind an entry whose state is unknown, and how
/// long that entry is then taken to be on its way back.
pub(super) const RECHECK: Duration = Duration::from_secs(1);
/// How long past its due time an entry away is taken to be on its way back (a busy
/// inbox hands due events out late, a Redis inbox after its whole backlog); after that
/// it is looked up, which for Redis reads every live event.
const VERIFY_AFTER: Duration = Duration::from_secs(300);
/// The shortest deferral, the least a turn is taken to last, and how much later than
/// the entry ahead a deferred one is due.
const MIN_TURN: Duration = Duration::from_millis(1);
/// A claim pause is due when at least this many turns since the last claim were
/// deferrals, and four in five of them.
const PRESSURE_DEFERRALS: u32 = 32;
/// How long the claims pause then.
const PRESSURE_PAUSE: Duration = Duration::from_millis(50);
/// The longest deferral for a long line.
const MAX_DEFER: Duration = Duration::from_secs(30);

/// Per-key lines of live events.
pub(super) struct Sequencer {
    key: KeyFn,
    /// The most deliveries of one key that wait in memory; more are deferred, so that
    /// one busy key does not hold every claim slot.
    max_waiting: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    lines: HashMap<String, Line>,
    /// A moving average of how long the oldest of a line runs, in nanoseconds.
    mean_turn: u64,
    /// Turns asked for, and how many of them were deferrals, since the worker last
    /// looked ([`Sequencer::pressure`]).
    turns: u32,
    deferrals: u32,
}

#[derive(Default)]
struct Line {
    queue: VecDeque<Entry>,
    /// Entries waiting in memory.
    waiting: usize,
    /// When the front started running.
    started: Option<Instant>,
}

struct Entry {
    id: EventId,
    place: Place,
}

enum Place {
    /// Handled now (the front only).
    Running,
    /// Claimed and waiting in memory; told when it may go or must go back.
    Waiting(Option<oneshot::Sender<()>>),
    /// In the inbox, due again at this time if known.
    Away(Option<Instant>),
}

/// What a delivery does next.
pub(super) enum Turn {
    /// Its turn: handle it, then [`Sequencer::finish`].
    Go,
    /// Wait until told, then ask again.
    Wait(oneshot::Receiver<()>),
    /// Back to the inbox, due after this ([`Sequencer::deferred`] once done).
    Defer(Duration),
    /// The entry ahead is away and its state unknown: look it up in the inbox.
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

impl Line {
    fn position(&self, id: &EventId) -> Option<usize> {
        self.queue.iter().position(|entry| entry.id == *id)
    }

    /// Wakes the front if it waits.
    fn wake_front(&mut self) {
        if let Some(Entry {
            place: Place::Waiting(told),
            ..
        }) = self.queue.front_mut()
        {
            if let Some(told) = told.take() {
                let _ = told.send(());
            }
        }
    }

    /// Wakes every waiting entry: the front is away, they must ask again.
    fn wake_all(&mut self) {
        for entry in &mut self.queue {
            if let Place::Waiting(told) = &mut entry.place {
                if let Some(told) = told.take() {
                    let _ = told.send(());
                }
            }
        }
    }

    fn set_place(&mut self, at: usize, place: Place) {
        if matches!(self.queue[at].place, Place::Waiting(_)) {
            self.waiting -= 1;
        }
        if matches!(place, Place::Waiting(_)) {
            self.waiting += 1;
        }
        self.queue[at].place = place;
    }
}

impl Sequencer {
    pub(super) fn new(key: KeyFn, max_waiting: usize) -> Self {
        Self {
            key,
            max_waiting: max_waiting.max(1),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key of a body, if it is ordered.
    pub(super) fn key(&self, body: &[u8]) -> Option<String> {
        (self.key)(body)
    }

    /// Lines up the live events a previous process left, oldest first.
    pub(super) fn seed(&self, events: &[StoredEvent]) {
        let mut state = self.lock();
        for event in events {
            if let Some(key) = self.key(&event.body) {
                let line = state.lines.entry(key).or_default();
                if line.position(&event.id).is_none() {
                    line.queue.push_back(Entry {
                        id: event.id.clone(),
                        place: Place::Away(None),
                    });
                }
            }
        }
    }

    /// How long the worker should wait before its next claim: a pause when most turns
    /// since the last look were deferrals (one busy key fills the claims), else none.
    pub(super) fn pressure(&self) -> Option<Duration> {
        let mut state = self.lock();
        let (turns, deferrals) = (state.turns, state.deferrals);
        state.turns = 0;
        state.deferrals = 0;
        (deferrals >= PRESSURE_DEFERRALS && deferrals * 5 >= turns * 4).then_some(PRESSURE_PAUSE)
    }

    /// Where the claimed delivery `id` of `key` stands. A [`Turn::Verify`] counts the
    /// entry looked up as due back within [`RECHECK`] until [`forget`](Self::forget)
    /// says otherwise, so that one look-up serves the whole line.
    pub(super) fn turn(&self, key: &str, id: &EventId) -> Turn {
        let turn = self.next_turn(key, id);
        let mut state = self.lock();
        state.turns = state.turns.saturating_add(1);
        if matches!(turn, Turn::Defer(_)) {
            state.deferrals = state.deferrals.saturating_add(1);
        }
        turn
    }

    fn next_turn(&self, key: &str, id: &EventId) -> Turn {
        let mut state = self.lock();
        let mean_turn = Duration::from_nanos(state.mean_turn);
        let line = state.lines.entry(key.to_owned()).or_default();
        let at = line.position(id).unwrap_or_else(|| {
            line.queue.push_back(Entry {
                id: id.clone(),
                place: Place::Away(None),
            });
            line.queue.len() - 1
        });
        let now = Instant::now();
        if at == 0 {
            if matches!(line.queue[0].place, Place::Running) {
                // Claimed again while it runs here (its lease lapsed): not twice at once.
                return Turn::Defer(RECHECK);
            }
            line.set_place(0, Place::Running);
            line.started = Some(now);
            return Turn::Go;
        }
        // The entries ahead that are away: the latest time one is due back, or one
        // whose state is unknown (seeded, in doubt, or long overdue).
        let mut back = None;
        for entry in line.queue.range_mut(..at) {
            if let Place::Away(due) = &mut entry.place {
                match due {
                    Some(due) if *due + VERIFY_AFTER > now => back = back.max(Some(*due)),
                    _ => {
                        // One look-up at a time: meanwhile it counts as due back soon.
                        *due = Some(now + RECHECK);
                        return Turn::Verify(entry.id.clone());
                    }
                }
            }
        }
        let waiting = matches!(line.queue[at].place, Place::Waiting(_));
        if back.is_none() && (waiting || line.waiting < self.max_waiting) {
            let (told, wait) = oneshot::channel();
            line.set_place(at, Place::Waiting(Some(told)));
            return Turn::Wait(wait);
        }
        // Back in the inbox until its turn is near: after the entries ahead that are
        // away (so that they come back in order), and not before the ones ahead of the
        // in-memory window are likely done.
        let ahead = u32::try_from(at.saturating_sub(self.max_waiting)).unwrap_or(u32::MAX);
        let estimate = mean_turn.max(MIN_TURN).saturating_mul(ahead).min(MAX_DEFER);
        let due = (now + estimate).max(back.map_or(now, |due| due + MIN_TURN));
        Turn::Defer((due - now).max(MIN_TURN))
    }

    /// When the first entry away in some line is due back (the earliest, as entries
    /// away are due in line order): when an idle worker should claim again.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let state = self.lock();
        state
            .lines
            .values()
            .filter_map(|line| {
                line.queue.iter().find_map(|entry| match entry.place {
                    Place::Away(due) => Some(due),
                    _ => None,
                })?
            })
            .min()
    }

    /// `id` of `key` went back to the inbox, due after `delay` (`None`: unknown).
    pub(super) fn deferred(&self, key: &str, id: &EventId, delay: Option<Duration>) {
        let mut state = self.lock();
        if let Some(line) = state.lines.get_mut(key) {
            match line.position(id) {
                // Its twin claim runs it: that one settles it.
                Some(at) if !matches!(line.queue[at].place, Place::Running) => {
                    line.set_place(at, Place::Away(delay.map(|delay| Instant::now() + delay)));
                }
                _ => {}
            }
        }
    }

    /// The claim of the front `id` of `key` ended so.
    pub(super) fn finish(&self, key: &str, id: &EventId, settled: Settled) {
        let mut state = self.lock();
        let mut took = None;
        if let Some(line) = state.lines.get_mut(key) {
            if line.queue.front().is_some_and(|front| front.id == *id) {
                took = line.started.take().map(|started| started.elapsed());
                match settled {
                    Settled::Gone => {
                        line.queue.pop_front();
                        line.wake_front();
                    }
                    Settled::Again(delay) => {
                        line.set_place(0, Place::Away(Some(Instant::now() + delay)));
                        line.wake_all();
                    }
                    Settled::Unknown => {
                        line.set_place(0, Place::Away(None));
                        line.wake_all();
                    }
                }
            }
            if line.queue.is_empty() {
                state.lines.remove(key);
            }
        }
        if let Some(took) = took {
            let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
            // Weight 1/8 for the newest.
            state.mean_turn = state.mean_turn / 8 * 7 + took / 8;
        }
    }

    /// `id` is no longer live (acknowledged elsewhere, dead, purged): out of the line.
    pub(super) fn forget(&self, key: &str, id: &EventId) {
        let mut state = self.lock();
        if let Some(line) = state.lines.get_mut(key) {
            if let Some(at) = line.position(id) {
                if !matches!(line.queue[at].place, Place::Away(_)) {
                    return;
                }
                line.queue.remove(at);
                line.wake_front();
            }
        }
    }
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("keys", &self.lock().lines.len())
            .field("max_waiting", &self.max_waiting)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequencer(max_waiting: usize) -> Sequencer {
        let key = |body: &[u8]| {
            std::str::from_utf8(body)
                .ok()
                .and_then(|b| b.split_once(':'))
                .map(|(key, _)| key.to_owned())
        };
        Sequencer::new(Arc::new(key), max_waiting)
    }

    fn id(n: u32) -> EventId {
        EventId::new(n.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_oldest_of_a_key_goes_and_the_next_is_woken_alone() {
        let order = sequencer(8);
        assert!(matches!(order.turn("a", &id(1)), Turn::Go));
        assert!(matches!(order.turn("b", &id(2)), Turn::Go));
        let Turn::Wait(second) = order.turn("a", &id(3)) else {
            panic!("the second of `a` must wait while the first runs");
        };
        let Turn::Wait(mut third) = order.turn("a", &id(4)) else {
            panic!("the third too");
        };
        order.finish("a", &id(1), Settled::Gone);
        second.await.unwrap();
        assert!(third.try_recv().is_err(), "only the new front is woken");
        assert!(matches!(order.turn("a", &id(3)), Turn::Go));
        assert!(matches!(order.turn("a", &id(4)), Turn::Wait(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_event_is_deferred_behind_a_retried_one_until_it_is_due() {
        let order = sequencer(8);
        assert!(matches!(order.turn("a", &id(1)), Turn::Go));
        let Turn::Wait(woken) = order.turn("a", &id(2)) else {
            panic!("waits while the first runs");
        };
        order.finish("a", &id(1), Settled::Again(Duration::from_secs(4)));
        woken.await.unwrap();
        let Turn::Defer(delay) = order.turn("a", &id(2)) else {
            panic!("behind a retried event, defer");
        };
        assert!(delay > Duration::from_secs(4) && delay < Duration::from_secs(5));
        order.deferred("a", &id(2), Some(delay));
        // Once long past its due time and still not back: look it up.
        tokio::time::advance(Duration::from_secs(4) + VERIFY_AFTER).await;
        assert!(matches!(order.turn("a", &id(2)), Turn::Verify(ahead) if ahead == id(1)));
        order.forget("a", &id(1));
        assert!(matches!(order.turn("a", &id(2)), Turn::Go));
    }

    #[test]
    fn seeded_events_come_first_and_unkeyed_bodies_are_not_ordered() {
        let order = sequencer(8);
        let stored = |n: u32, body: &'static str| StoredEvent {
            id: id(n),
            body: bytes::Bytes::from_static(body.as_bytes()),
            received_at: std::time::SystemTime::UNIX_EPOCH,
            attempts: 1,
            state: super::super::EventState::Pending,
            last_error: None,
            content_type: None,
        };
        order.seed(&[
            stored(1, "a:first"),
            stored(2, "no key"),
            stored(3, "a:second"),
        ]);
        assert_eq!(order.key(b"no key"), None);
        assert!(matches!(order.turn("a", &id(3)), Turn::Verify(ahead) if ahead == id(1)));
        assert!(matches!(order.turn("a", &id(1)), Turn::Go));
        assert!(matches!(order.turn("a", &id(3)), Turn::Wait(_)));
    }

    #[test]
    fn claims_pause_when_most_turns_were_deferrals() {
        let order = sequencer(1);
        assert!(matches!(order.turn("a", &id(0)), Turn::Go));
        assert!(matches!(order.turn("a", &id(1)), Turn::Wait(_)));
        for n in 2..40 {
            let Turn::Defer(delay) = order.turn("a", &id(n)) else {
                panic!("deferred");
            };
            order.deferred("a", &id(n), Some(delay));
        }
        assert_eq!(order.pressure(), Some(PRESSURE_PAUSE));
        // Counted anew after each look; turns that go do not call for a pause.
        assert_eq!(order.pressure(), None);
        for n in 100..140 {
            assert!(matches!(order.turn(&format!("k{n}"), &id(n)), Turn::Go));
        }
        assert_eq!(order.pressure(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overflowing_line_defers_the_rest_in_order_and_they_wait_once_back() {
        let order = sequencer(2);
        assert!(matches!(order.turn("a", &id(0)), Turn::Go));
        assert!(matches!(order.turn("a", &id(1)), Turn::Wait(_)));
        assert!(matches!(order.turn("a", &id(2)), Turn::Wait(_)));
        let Turn::Defer(third) = order.turn("a", &id(3)) else {
            panic!("over the bound: deferred");
        };
        order.deferred("a", &id(3), Some(third));
        let Turn::Defer(fourth) = order.turn("a", &id(4)) else {
            panic!("behind a deferred one: deferred");
        };
        assert!(fourth > third, "{fourth:?} after {third:?}");
        order.deferred("a", &id(4), Some(fourth));
        order.finish("a", &id(0), Settled::Gone);
        assert!(matches!(order.turn("a", &id(1)), Turn::Go));
        // Back from the inbox with room to wait: it waits, and the next behind it too.
        assert!(matches!(order.turn("a", &id(3)), Turn::Wait(_)));
        assert!(matches!(order.turn("a", &id(4)), Turn::Defer(_)));
    }
}
