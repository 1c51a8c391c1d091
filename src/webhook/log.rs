//! The webhook middleware's count and log of rejections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tracing::Level;

use super::rejection::Rejection;
use super::verify::Diagnostics;
use crate::http::log::SummaryGate;
use crate::signature::Scheme;

/// How many requests a layer turned away, by reason, since it was built
/// ([`GenesysSignatureLayer::rejections`](crate::GenesysSignatureLayer::rejections)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectionCounts {
    /// No signature header.
    pub missing_signature: u64,
    /// A malformed signature header.
    pub malformed_signature: u64,
    /// A signature that did not match.
    pub signature_mismatch: u64,
    /// A body over the limit.
    pub payload_too_large: u64,
    /// A body that could not be read.
    pub unreadable_body: u64,
    /// The replay store could not answer.
    pub replay_store_unavailable: u64,
    /// The buffering budget was taken.
    pub overloaded: u64,
}

impl RejectionCounts {
    /// All rejections together.
    pub fn total(&self) -> u64 {
        self.missing_signature
            + self.malformed_signature
            + self.signature_mismatch
            + self.payload_too_large
            + self.unreadable_body
            + self.replay_store_unavailable
            + self.overloaded
    }
}

/// The reason of each counter slot, as the metrics label it.
const SLOT_NAMES: [&str; 7] = [
    "missing_signature",
    "malformed_signature",
    "signature_mismatch",
    "payload_too_large",
    "unreadable_body",
    "replay_store_unavailable",
    "overloaded",
];

/// How often, at most, a summary of rejections is logged at WARN.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counts rejections and logs them: each at the configured level (DEBUG by default,
/// so that a flood of unsigned requests cannot fill the disk), and a WARN summary at
/// most once a minute while rejections happen.
#[derive(Debug)]
pub(crate) struct RejectionLog {
    level: Level,
    counts: [AtomicU64; 7],
    summaries: SummaryGate,
    /// The total at the last summary.
    reported: AtomicU64,
    /// The most recent rejection, for the summary (skipped when another request holds
    /// the lock: a flood need not queue on it).
    last: Mutex<Option<Rejection>>,
}

/// Everything the log says about one rejection.
pub(crate) struct Event<'a> {
    pub(crate) rejection: &'a Rejection,
    pub(crate) body_len: Option<u64>,
    pub(crate) diagnostics: Option<&'a Diagnostics>,
    /// The peer's address, when the layer was asked to log it.
    pub(crate) peer: Option<String>,
}

impl RejectionLog {
    pub(crate) fn new(level: Level) -> Self {
        Self {
            level,
            counts: Default::default(),
            summaries: SummaryGate::new(SUMMARY_EVERY),
            reported: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    fn slot(rejection: &Rejection) -> usize {
        match rejection {
            Rejection::MissingSignature => 0,
            Rejection::MalformedSignature { .. } => 1,
            Rejection::SignatureMismatch { .. } => 2,
            Rejection::PayloadTooLarge { .. } => 3,
            Rejection::UnreadableBody => 4,
            Rejection::ReplayStoreUnavailable { .. } => 5,
            Rejection::Overloaded { .. } => 6,
        }
    }

    pub(crate) fn counts(&self) -> RejectionCounts {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        RejectionCounts {
            missing_signature: c(0),
            malformed_signature: c(1),
            signature_mismatch: c(2),
            payload_too_large: c(3),
            unreadable_body: c(4),
            replay_store_unavailable: c(5),
            overloaded: c(6),
        }
    }

    pub(crate) fn record(&self, event: Event<'_>) {
        let slot = Self::slot(event.rejection);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        match event.rejection {
            Rejection::Overloaded { .. } => crate::metrics::request("overloaded", None),
            _ => crate::metrics::request("rejected", Some(SLOT_NAMES[slot])),
        }
        if let Ok(mut last) = self.last.try_lock() {
            *last = Some(event.rejection.clone());
        }
        emit(self.level, &event);
        self.maybe_summarise();
    }

    fn maybe_summarise(&self) {
        if !self.summaries.due() {
            return;
        }
        let counts = self.counts();
        let total = counts.total();
        let since = total - self.reported.swap(total, Ordering::Relaxed).min(total);
        let last = self
            .last
            .lock()
            .map(|last| last.as_ref().map(ToString::to_string))
            .unwrap_or_default()
            .unwrap_or_default();
        tracing::warn!(
            last_reason = %last,
            rejected = since,
            total,
            missing_signature = counts.missing_signature,
            malformed_signature = counts.malformed_signature,
            signature_mismatch = counts.signature_mismatch,
            payload_too_large = counts.payload_too_large,
            unreadable_body = counts.unreadable_body,
            replay_store_unavailable = counts.replay_store_unavailable,
            overloaded = counts.overloaded,
            "webhooks rejected (at most one such summary a minute; set RUST_LOG=genesys_webhook=debug to see each one)"
        );
    }
}

/// One event per rejection at `level`: the reason, the header and the body length,
/// never a secret or a whole digest.
fn emit(level: Level, event: &Event<'_>) {
    macro_rules! at {
        ($level:expr) => {
            match event.diagnostics {
                None => tracing::event!(
                    $level,
                    peer = event.peer.as_deref(),
                    reason = %event.rejection,
                    header = event.rejection.scheme().map(Scheme::display_header_name),
                    body_len = event.body_len,
                    status = event.rejection.status().as_u16(),
                    "webhook rejected"
                ),
                Some(d) => tracing::event!(
                    $level,
                    peer = event.peer.as_deref(),
                    reason = %event.rejection,
                    header = event.rejection.scheme().map(Scheme::display_header_name),
                    body_len = event.body_len,
                    status = event.rejection.status().as_u16(),
                    received_prefix = %d.received,
                    computed_prefixes = %d.computed,
                    "webhook rejected"
                ),
            }
        };
    }
    match level {
        Level::ERROR => at!(Level::ERROR),
        Level::WARN => at!(Level::WARN),
        Level::INFO => at!(Level::INFO),
        Level::DEBUG => at!(Level::DEBUG),
        _ => at!(Level::TRACE),
    }
}
