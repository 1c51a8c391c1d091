use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The bytes that all requests together may hold while they are read and verified
/// ([`max_buffered_bytes`](crate::GenesysSignatureLayerBuilder::max_buffered_bytes)).
/// Bodies are buffered before their signature can be checked, so without a bound a
/// flood of large wrongly signed bodies holds as much memory as it sends.
#[derive(Debug)]
pub(crate) struct BufferBudget {
    limit: usize,
    used: AtomicUsize,
}

impl BufferBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

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

    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// What one request holds of the budget; given back when dropped (the request was
/// verified and passed on, rejected, or abandoned).
#[derive(Debug, Default)]
pub(crate) struct Held {
    budget: Option<Arc<BufferBudget>>,
    bytes: usize,
}

impl Held {
    pub(crate) fn new(budget: Option<&Arc<BufferBudget>>) -> Self {
        Self {
            budget: budget.cloned(),
            bytes: 0,
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
        if !budget.try_take(more) {
            return false;
        }
        self.bytes = total;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_within_the_limit_and_gives_back_on_drop() {
        let budget = BufferBudget::new(100);
        let mut a = Held::new(Some(&budget));
        assert!(a.hold(60));
        assert!(a.hold(40)); // already held
        let mut b = Held::new(Some(&budget));
        assert!(!b.hold(41));
        assert!(b.hold(40));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn no_budget_holds_anything() {
        assert!(Held::new(None).hold(usize::MAX));
    }
}
