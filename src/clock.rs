//! One clock for every part that keeps time: the system's by default, or one a test
//! moves by hand.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// Where the time comes from, for the inbox (leases, retry delays, timestamps), the
/// in-memory replay store (TTLs, leases) and the AudioHook signature checks
/// (`created`, `expires`): the system clock (the default), or one that a
/// test moves by hand, so that lease, delay and expiry tests do not depend on how fast
/// the machine is.
///
/// A Redis inbox takes lapsed leases over by Redis' own idle time, which no clock
/// here changes; its retry delays and timestamps follow this clock.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::{Duration, SystemTime};
/// use genesys_webhook::inbox::{Clock, MemoryInbox};
///
/// let elapsed = Arc::new(AtomicU64::new(0));
/// let hand = Arc::clone(&elapsed);
/// let start = SystemTime::now();
/// let clock = Clock::from_fn(move || start + Duration::from_millis(hand.load(Ordering::SeqCst)));
/// let inbox = MemoryInbox::new().clock(clock);
/// elapsed.fetch_add(30_000, Ordering::SeqCst); // thirty seconds later
/// # let _ = inbox;
/// ```
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<dyn Fn() -> SystemTime + Send + Sync>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that reads the time from `now`.
    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(now)))
    }

    /// The time now, by this clock.
    pub fn now(&self) -> SystemTime {
        match &self.0 {
            None => SystemTime::now(),
            Some(now) => now(),
        }
    }

    /// A monotonic reading: the system's `Instant` for the system clock (so a clock
    /// set back changes nothing), and for a custom clock the `Instant` that lies as far
    /// from `origin.0` as its time lies from `origin.1` (never before `origin.0`).
    pub(crate) fn instant(&self, origin: (std::time::Instant, SystemTime)) -> std::time::Instant {
        match &self.0 {
            None => std::time::Instant::now(),
            Some(now) => origin.0 + now().duration_since(origin.1).unwrap_or_default(),
        }
    }
}

impl<F> From<F> for Clock
where
    F: Fn() -> SystemTime + Send + Sync + 'static,
{
    fn from(now: F) -> Self {
        Self::from_fn(now)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(custom)"
        } else {
            "Clock(system)"
        })
    }
}
