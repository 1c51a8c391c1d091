//! The receiver's settings, read from its environment (README, "The example receiver").

use std::net::SocketAddr;
use std::time::Duration;

use axum::BoxError;
use genesys_webhook::cloud::ReceiptSender;
use genesys_webhook::inbox::{InboxLimits, InboxLocation};
use genesys_webhook::server::ServerLimits;
use genesys_webhook::source::{ForwardedHeader, SourceRanges};
use genesys_webhook::{GenesysSignatureLayer, GenesysSignatureLayerBuilder, PeerAddress};

/// Everything the receiver reads from its environment (README, "The example receiver").
pub struct Settings {
    pub listen_addr: SocketAddr,
    /// How the server protects itself (`genesys_webhook::server`).
    pub serve: ServerLimits,
    /// `GENESYS_SHUTDOWN_SECS`: the HTTP drain and the worker's grace together.
    pub shutdown: Duration,
    pub(crate) layer: GenesysSignatureLayerBuilder,
    pub(crate) replay: ReplaySettings,
    pub(crate) inbox: InboxSettings,
    pub(crate) worker: WorkerSettings,
    /// Delivered receipts: see [`workers`].
    pub(crate) receipts: ReceiptSender,
    /// `GENESYS_ALLOW_SOURCES`: admit only Genesys' addresses.
    pub(crate) sources: Option<SourceSettings>,
    pub(crate) knobs: TestKnobs,
}

/// `GENESYS_REPLAY_STORE`, `GENESYS_REPLAY_TTL_SECS`, `GENESYS_REPLAY_LEASE_SECS`.
pub(crate) struct ReplaySettings {
    pub(crate) store: Option<String>,
    pub(crate) ttl: Duration,
    pub(crate) lease: Duration,
}

/// `GENESYS_INBOX` and `GENESYS_INBOX_MAX_*`.
pub(crate) struct InboxSettings {
    pub(crate) location: InboxLocation,
    pub(crate) limits: InboxLimits,
}

/// `GENESYS_ALLOW_SOURCES` (Genesys services, comma-separated), `GENESYS_TRUSTED_PROXIES`
/// (CIDR blocks), `GENESYS_FORWARDED_HEADER` (`x-forwarded-for` or `forwarded`),
/// `GENESYS_SOURCE_REFRESH_SECS`.
pub(crate) struct SourceSettings {
    pub(crate) services: Vec<String>,
    pub(crate) proxies: SourceRanges,
    pub(crate) header: ForwardedHeader,
    pub(crate) refresh: Duration,
    /// `GENESYS_ALLOW_SOURCES_EMPTY=1`: start even when Genesys lists no range (and
    /// refuse every request until a refresh brings some).
    pub(crate) allow_empty: bool,
}

/// `GENESYS_INBOX_LEASE_SECS`, `GENESYS_WORKER_CONCURRENCY`, `GENESYS_WORKER_RETRY_BASE_MS`.
pub(crate) struct WorkerSettings {
    pub(crate) lease: Duration,
    pub(crate) concurrency: usize,
    pub(crate) retry_base: Duration,
}

// ---------------------------------------------------------------------------------
// Test and benchmark knobs. Documented in the README; never set them in production.
// ---------------------------------------------------------------------------------

/// What the tests and benchmarks turn, and nothing else does.
pub(crate) struct TestKnobs {
    /// `GENESYS_WORKER_DELAY_MS`: how long each event's handling takes.
    pub(crate) worker_delay: Duration,
    /// `GENESYS_WORKER_FAIL_ON`: bodies holding this text fail (errors and panics).
    pub(crate) worker_fail_on: Option<String>,
    /// `GENESYS_INBOX_GROUP_COMMIT=0`: one fsync per event, for comparison only.
    pub(crate) group_commit: bool,
    /// `GENESYS_BENCH_BASELINE=1`: an unverified route, the benchmark's baseline.
    pub(crate) bench_baseline: bool,
}

impl Settings {
    /// Reads the variables `var` gives (the environment; tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, BoxError> {
        let text = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let num = |name: &str, default: u64| -> Result<u64, BoxError> {
            let bad = |v: &str| format!("{name}={v:?} is not a whole number").into();
            text(name).map_or(Ok(default), |v| v.trim().parse().map_err(|_| bad(&v)))
        };
        let fallback = || {
            let secret = text("GENESYS_CLIENT_SECRET");
            if secret.is_some() {
                tracing::warn!("GENESYS_WEBHOOK_SECRET is not set: verifying with GENESYS_CLIENT_SECRET, the OAuth client secret; Open Messaging signs with the integration's webhook signature secret instead");
            }
            secret
        };
        let secret = text("GENESYS_WEBHOOK_SECRET").or_else(fallback).ok_or(
            "set GENESYS_WEBHOOK_SECRET to the webhook signing secret (for Open Messaging: the integration's webhook signature secret)",
        )?;
        let listen = text("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:5000".to_owned());
        let listen_addr = std::net::ToSocketAddrs::to_socket_addrs(listen.trim())
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                format!("LISTEN_ADDR={listen:?}: expected HOST:PORT, e.g. 127.0.0.1:5000")
            })?;
        let inbox = match text("GENESYS_INBOX") {
            None => InboxLocation::default(),
            Some(v) => v.parse().map_err(|e| format!("GENESYS_INBOX: {e}"))?,
        };
        let defaults = InboxLimits::default();
        let secs = |name, default| num(name, default).map(Duration::from_secs);
        let millis = |name, default| num(name, default).map(Duration::from_millis);
        let mut layer = GenesysSignatureLayer::builder()
            .secret(secret)
            .max_body_bytes(num("GENESYS_MAX_BODY_BYTES", 1 << 20)? as usize)
            .max_buffered_bytes(num("GENESYS_MAX_BUFFERED_BYTES", 64 << 20)? as usize)
            .diagnostics(text("GENESYS_WEBHOOK_DIAGNOSTICS").is_some_and(|v| v == "1"));
        if let Some(previous) = text("GENESYS_WEBHOOK_SECRET_PREVIOUS") {
            layer = layer.secret(previous);
        }
        let mut peer_address = false;
        match text("GENESYS_LOG_PEER").as_deref() {
            Some("socket") => {
                peer_address = true;
                layer = layer.peer_address(PeerAddress::socket());
            }
            Some("forwarded-for") => layer = layer.peer_address(PeerAddress::forwarded_for()),
            _ => {}
        }
        let attempts = num("GENESYS_INBOX_MAX_ATTEMPTS", defaults.max_attempts.into())?;
        let limits = InboxLimits::default()
            .max_attempts(attempts.clamp(1, u32::MAX.into()) as u32)
            .max_events(num("GENESYS_INBOX_MAX_EVENTS", defaults.max_events)?)
            .max_bytes(num("GENESYS_INBOX_MAX_BYTES", defaults.max_bytes)?);
        let receipts =
            ReceiptSender::from_env().map_err(|e| format!("Genesys Cloud client: {e}"))?;
        let sources = match text("GENESYS_ALLOW_SOURCES") {
            None => None,
            Some(services) => {
                // The allowlist judges the connection's address.
                peer_address = true;
                let proxies = text("GENESYS_TRUSTED_PROXIES").unwrap_or_default();
                let header = match text("GENESYS_FORWARDED_HEADER").as_deref() {
                    None | Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
                    Some("forwarded") => ForwardedHeader::Forwarded,
                    Some(other) => {
                        return Err(format!(
                            "GENESYS_FORWARDED_HEADER={other:?}: x-forwarded-for or forwarded"
                        )
                        .into())
                    }
                };
                Some(SourceSettings {
                    services: services.split(',').map(|s| s.trim().to_owned()).collect(),
                    proxies: proxies
                        .parse()
                        .map_err(|e| format!("GENESYS_TRUSTED_PROXIES: {e}"))?,
                    header,
                    refresh: secs("GENESYS_SOURCE_REFRESH_SECS", 3600)?,
                    allow_empty: text("GENESYS_ALLOW_SOURCES_EMPTY").is_some_and(|v| v == "1"),
                })
            }
        };
        Ok(Self {
            sources,
            receipts,
            listen_addr,
            serve: {
                // The drain is the request deadline, at most 5 s.
                let timeout = secs("GENESYS_REQUEST_TIMEOUT_SECS", 10)?;
                ServerLimits::default()
                    .request_timeout(timeout)
                    .max_connections(num("GENESYS_MAX_CONNECTIONS", 768)? as usize)
                    .drain(timeout.min(MAX_DRAIN))
                    .peer_address(peer_address)
            },
            shutdown: secs("GENESYS_SHUTDOWN_SECS", SHUTDOWN_BUDGET.as_secs())?,
            layer,
            replay: ReplaySettings {
                store: text("GENESYS_REPLAY_STORE"),
                ttl: secs("GENESYS_REPLAY_TTL_SECS", 600)?,
                lease: secs("GENESYS_REPLAY_LEASE_SECS", 30)?,
            },
            inbox: InboxSettings {
                location: inbox,
                limits,
            },
            worker: WorkerSettings {
                lease: secs("GENESYS_INBOX_LEASE_SECS", 30)?,
                concurrency: num("GENESYS_WORKER_CONCURRENCY", 16)? as usize,
                retry_base: millis("GENESYS_WORKER_RETRY_BASE_MS", 1000)?,
            },
            knobs: TestKnobs {
                worker_delay: millis("GENESYS_WORKER_DELAY_MS", 0)?,
                worker_fail_on: text("GENESYS_WORKER_FAIL_ON"),
                group_commit: num("GENESYS_INBOX_GROUP_COMMIT", 1)? != 0,
                bench_baseline: text("GENESYS_BENCH_BASELINE").is_some_and(|v| v == "1"),
            },
        })
    }
}

/// The default shutdown budget (`GENESYS_SHUTDOWN_SECS`), under a service manager's
/// usual 30 s stop timeout (systemd's `TimeoutStopSec=30`, Kubernetes' grace period):
/// the HTTP drain, then the worker.
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(25);
/// The longest HTTP drain at shutdown; the worker gets the rest of the budget.
const MAX_DRAIN: Duration = Duration::from_secs(5);
