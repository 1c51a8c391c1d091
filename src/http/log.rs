//! The rate-limited log of refusals: each one at DEBUG, a WARN summary at most once a
//! minute, so that a flood cannot fill the disk and a lasting problem is still seen.

use std::time::Duration;

/// Lets one caller through at most once per period, whichever thread asks: the gate of
/// the rate-limited WARN summaries (rejections, refusals). The first call passes.
#[derive(Debug)]
pub(crate) struct SummaryGate {
    started: std::time::Instant,
    every: Duration,
    /// Milliseconds after `started` when the next summary is due.
    next: std::sync::atomic::AtomicU64,
}

impl SummaryGate {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            started: std::time::Instant::now(),
            every,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether this caller writes the summary now.
    pub(crate) fn due(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next.load(Relaxed);
        let next = now.saturating_add(u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX));
        // Of callers racing for one summary, only the one whose swap lands writes it.
        now >= due
            && self
                .next
                .compare_exchange(due, next, Relaxed, Relaxed)
                .is_ok()
    }
}

/// Logs a wiring mistake at ERROR the first time `logged` sees it, and at DEBUG after.
pub(crate) fn misconfigured(logged: &std::sync::atomic::AtomicBool, message: &str) {
    if logged.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::debug!("{message}");
    } else {
        tracing::error!("{message} (logged once)");
    }
}

/// How often, at most, a [`RefusalLog`] sums up at WARN.
pub(crate) const REFUSAL_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counts what a part refused (or noticed going wrong, request after request) and logs
/// it the way the webhook layer logs its rejections: each one at DEBUG, and a WARN
/// summary with the count and the latest reason at most once a minute, so that a flood
/// cannot fill the disk and a lasting problem is still seen.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    /// What is counted, as the summary says it ("AudioHook upgrades refused").
    what: &'static str,
    total: std::sync::atomic::AtomicU64,
    summaries: SummaryGate,
}

impl RefusalLog {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            total: std::sync::atomic::AtomicU64::new(0),
            summaries: SummaryGate::new(REFUSAL_SUMMARY_EVERY),
        }
    }

    /// Counts one, logs it at DEBUG, and sums up at WARN when a summary is due.
    pub(crate) fn record(&self, code: &str, reason: &dyn std::fmt::Display) {
        let total = self
            .total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        tracing::debug!(code, %reason, "{}", self.what);
        if self.summaries.due() {
            tracing::warn!(
                total,
                last_reason = %format_args!("{code}: {reason}"),
                "{} so far (at most one such summary a minute; set RUST_LOG=genesys_webhook=debug to see each one)",
                self.what
            );
        }
    }

    /// How many were counted.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }
}
