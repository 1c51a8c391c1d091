use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bodies up to this size draw on a reserved share of the budget first, so that a
/// flood of large bodies cannot starve ordinary webhooks (a few KiB each).
const SMALL_BODY: usize = 64 * 1024;
/// The share of the budget kept for small bodies: an eighth.
const SMALL_SHARE: usize = 8;

/// The bytes that all requests together may hold while they are read and verified
/// ([`max_buffered_bytes`](crate::GenesysSignatureLayerBuilder::max_buffered_bytes)).
/// Bodies are buffered before their signature can be checked, so without a bound a
/// flood of large wrongly signed bodies holds as much memory as it sends. A request
/// holds budget for the bytes it has sent, not for what it announced. An eighth of it
/// is kept for bodies of at most 64 KiB; the two pools together never exceed the
/// limit.
#[derive(Debug)]
pub(crate) struct BufferBudget {
    large: Pool,
    small: Pool,
}

#[derive(Debug)]
struct Pool {
    limit: usize,
    used: AtomicUsize,
}

impl Pool {
    /// Takes `bytes` if they fit.
    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl BufferBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        let small = (limit / SMALL_SHARE).min(limit);
        Arc::new(Self {
            large: Pool {
                limit: limit - small,
                used: AtomicUsize::new(0),
            },
            small: Pool {
                limit: small,
                used: AtomicUsize::new(0),
            },
        })
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.large.used.load(Ordering::Acquire) + self.small.used.load(Ordering::Acquire)
    }
}

/// What one request holds of the budget; given back when dropped (the request was
/// verified and passed on, rejected, or abandoned).
#[derive(Debug, Default)]
pub(crate) struct Held {
    budget: Option<Arc<BufferBudget>>,
    bytes: usize,
    /// Whether `bytes` come from the small pool.
    small: bool,
}

impl Held {
    pub(crate) fn new(budget: Option<&Arc<BufferBudget>>) -> Self {
        Self {
            budget: budget.cloned(),
            bytes: 0,
            small: false,
        }
    }

    /// Makes sure the request holds at least `total` bytes of the budget; `false` when
    /// the budget cannot give them.
    pub(crate) fn hold(&mut self, total: usize) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        if total <= self.bytes {
            return true;
        }
        let more = total - self.bytes;
        if total <= SMALL_BODY && (self.small || self.bytes == 0) && budget.small.try_take(more) {
            self.small = true;
            self.bytes = total;
            return true;
        }
        if self.small {
            // Grown out of the small pool (or it is full): move to the large one.
            if !budget.large.try_take(total) {
                return false;
            }
            budget.small.give_back(self.bytes);
            self.small = false;
        } else if !budget.large.try_take(more) {
            return false;
        }
        self.bytes = total;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            let pool = if self.small {
                &budget.small
            } else {
                &budget.large
            };
            pool.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn holds_within_the_limit_and_gives_back_on_drop() {
        let budget = BufferBudget::new(8 * MIB);
        let mut a = Held::new(Some(&budget));
        assert!(a.hold(5 * MIB));
        assert!(a.hold(4 * MIB)); // already held
        let mut b = Held::new(Some(&budget));
        assert!(!b.hold(3 * MIB), "the large pool is 7 MiB");
        assert!(b.hold(2 * MIB));
        assert_eq!(budget.used(), 7 * MIB);
        drop(a);
        assert_eq!(budget.used(), 2 * MIB);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn large_bodies_cannot_starve_small_ones_and_the_total_stays_bounded() {
        let budget = BufferBudget::new(8 * MIB);
        let mut large: Vec<Held> = Vec::new();
        loop {
            let mut held = Held::new(Some(&budget));
            if !held.hold(MIB) {
                break;
            }
            large.push(held);
        }
        assert_eq!(large.len(), 7);
        let mut small = Held::new(Some(&budget));
        assert!(small.hold(4 * 1024), "a webhook of a few KiB still fits");
        // Growing past 64 KiB needs the large pool, which is full.
        assert!(!small.hold(65 * 1024));
        // The small pool (1 MiB) holds 4 KiB already: fifteen 64 KiB bodies more.
        let mut smalls: Vec<Held> = (0..15)
            .map(|_| {
                let mut h = Held::new(Some(&budget));
                assert!(h.hold(64 * 1024));
                h
            })
            .collect();
        let mut last = Held::new(Some(&budget));
        assert!(!last.hold(64 * 1024), "the small pool is an eighth");
        assert!(budget.used() <= 8 * MIB);
        smalls.clear();
        large.clear();
        drop(small);
        drop(last);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn no_budget_holds_anything() {
        assert!(Held::new(None).hold(usize::MAX));
    }
}
