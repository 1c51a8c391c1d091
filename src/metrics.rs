//! The metrics this crate records, through the [`metrics`](https://docs.rs/metrics)
//! facade, with the `metrics` feature. The library installs no exporter: the
//! application chooses one (the example receiver serves Prometheus text at
//! `/metrics` with `metrics-exporter-prometheus`). Without the feature nothing is
//! recorded and nothing is compiled in.
//!
//! The names and labels below are stable.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `genesys_webhook_requests_total` | counter | `outcome`: `verified`, `rejected`, `overloaded`, `duplicate`, `queued`, `refused`; `reason` | requests by what became of them: verified by the layer; rejected (`reason`: `missing_signature`, `malformed_signature`, `signature_mismatch`, `payload_too_large`, `unreadable_body`, `replay_store_unavailable`); overloaded (the buffering budget); duplicate (`reason`: `processed`, `in_flight`); queued in the inbox; refused by the enqueue endpoint (`reason`: `invalid_json`, `inbox_full`, `inbox_unavailable`) |
//! | `genesys_webhook_append_seconds` | histogram | | how long an append to the inbox took, as the enqueue endpoint waited for it |
//! | `genesys_webhook_inbox_events` | gauge | `state`: `pending`, `in_flight`, `dead` | the inbox's depth, as a running worker last read it |
//! | `genesys_webhook_deliveries_total` | counter | `outcome`: `processed`, `retried`, `dead_lettered`, `deferred` | what the worker did with each delivery |
//! | `genesys_webhook_handler_seconds` | histogram | | how long the worker's handler took per delivery |
//! | `genesys_webhook_refused_total` | counter | `by`: `bot_credentials`, `source_allowlist` | requests refused before their body was read: by the Bot Connector's credential headers (401), by the source-address allowlist (403) |
//! | `genesys_webhook_source_ranges` | gauge | | how many address ranges the source allowlist admits, as last loaded |
//! | `genesys_webhook_source_refresh_failures_total` | counter | | refreshes of the source ranges that failed (the last good list stays) |

//!
//! The `_seconds` metrics are histograms in the `metrics` facade. Prometheus exporters
//! render a histogram as a *summary* (quantiles) unless they are given buckets; give
//! them [`SECONDS_BUCKETS`] to get `_bucket` series that aggregate across replicas:
//!
//! ```
//! use genesys_webhook::metrics::SECONDS_BUCKETS;
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//!
//! let builder = PrometheusBuilder::new()
//!     .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?;
//! # Ok::<_, metrics_exporter_prometheus::BuildError>(())
//! ```

/// Histogram buckets for the `_seconds` metrics, from 100 µs to 30 s: appends take
/// milliseconds (a fsync is about 4 ms), handlers from microseconds to the lease.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// Requests by outcome (`outcome`, `reason`).
pub const REQUESTS: &str = "genesys_webhook_requests_total";
/// Inbox append latency, seconds.
pub const APPEND_SECONDS: &str = "genesys_webhook_append_seconds";
/// Inbox depth by `state`.
pub const INBOX_EVENTS: &str = "genesys_webhook_inbox_events";
/// Deliveries by `outcome`.
pub const DELIVERIES: &str = "genesys_webhook_deliveries_total";
/// Handler duration per delivery, seconds.
pub const HANDLER_SECONDS: &str = "genesys_webhook_handler_seconds";

/// Requests refused from their head alone, by `by`.
pub const REFUSED: &str = "genesys_webhook_refused_total";
/// How many ranges the source allowlist admits.
pub const SOURCE_RANGES: &str = "genesys_webhook_source_ranges";
/// Failed refreshes of the source ranges.
pub const SOURCE_REFRESH_FAILURES: &str = "genesys_webhook_source_refresh_failures_total";

#[cfg(feature = "metrics")]
#[allow(dead_code)] // Each is used by some features only.
mod record {
    use std::time::Duration;

    pub(crate) fn request(outcome: &'static str, reason: Option<&'static str>) {
        // The two of every accepted request with labels written out: a key made of
        // constants is built without allocating.
        match (outcome, reason) {
            ("verified", None) => {
                return metrics::counter!(super::REQUESTS, "outcome" => "verified").increment(1)
            }
            ("queued", None) => {
                return metrics::counter!(super::REQUESTS, "outcome" => "queued").increment(1)
            }
            _ => {}
        }
        match reason {
            Some(reason) => {
                metrics::counter!(super::REQUESTS, "outcome" => outcome, "reason" => reason)
                    .increment(1)
            }
            None => metrics::counter!(super::REQUESTS, "outcome" => outcome).increment(1),
        }
    }

    pub(crate) fn append_finished(took: Duration) {
        metrics::histogram!(super::APPEND_SECONDS).record(took.as_secs_f64());
    }

    pub(crate) fn delivery(outcome: &'static str) {
        if outcome == "processed" {
            // Every delivery's, with constant labels (no allocation).
            return metrics::counter!(super::DELIVERIES, "outcome" => "processed").increment(1);
        }
        metrics::counter!(super::DELIVERIES, "outcome" => outcome).increment(1);
    }

    pub(crate) fn handler_finished(took: Duration) {
        metrics::histogram!(super::HANDLER_SECONDS).record(took.as_secs_f64());
    }

    pub(crate) fn refused(by: &'static str) {
        metrics::counter!(super::REFUSED, "by" => by).increment(1);
    }

    pub(crate) fn source_ranges(count: usize) {
        metrics::gauge!(super::SOURCE_RANGES).set(count as f64);
    }

    pub(crate) fn source_refresh_failed() {
        metrics::counter!(super::SOURCE_REFRESH_FAILURES).increment(1);
    }

    /// The inbox's depth by state: plain counts, so that this module knows nothing of
    /// the inbox.
    pub(crate) fn inbox_depth(pending: u64, in_flight: u64, dead: u64) {
        for (state, count) in [
            ("pending", pending),
            ("in_flight", in_flight),
            ("dead", dead),
        ] {
            metrics::gauge!(super::INBOX_EVENTS, "state" => state).set(count as f64);
        }
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(dead_code)]
mod record {
    use std::time::Duration;

    pub(crate) fn request(_outcome: &'static str, _reason: Option<&'static str>) {}
    pub(crate) fn append_finished(_took: Duration) {}
    pub(crate) fn delivery(_outcome: &'static str) {}
    pub(crate) fn handler_finished(_took: Duration) {}
    pub(crate) fn inbox_depth(_pending: u64, _in_flight: u64, _dead: u64) {}
    pub(crate) fn refused(_by: &'static str) {}
    pub(crate) fn source_ranges(_count: usize) {}
    pub(crate) fn source_refresh_failed() {}
}

#[allow(unused_imports)]
pub(crate) use record::{
    append_finished, delivery, handler_finished, inbox_depth, refused, request, source_ranges,
    source_refresh_failed,
};
