use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Response, StatusCode};
use tower_layer::Layer;

use super::forwarded::{client_address, ForwardedHeader};
use super::ranges::SourceRanges;
use super::service::SourceAllowlist;
use crate::http::json::json_error;
use crate::http::log::{misconfigured, RefusalLog};

/// Why a [`SourceAllowlistLayer`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceConfigError {
    /// The ranges admit no address: every request would be refused. Allow it with
    /// [`allow_empty`](SourceAllowlistLayerBuilder::allow_empty).
    Empty,
}

impl fmt::Display for SourceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str(
                "the source allowlist has no range: every request would be refused (allow_empty to start anyway)",
            ),
        }
    }
}

impl std::error::Error for SourceConfigError {}

/// Admits only requests whose client address is in the allowed ranges, such as the
/// ranges Genesys Cloud calls from (see `GenesysRanges` with the `cloud` feature);
/// others get `403 {"error":"source_not_allowed"}`, counted, logged at DEBUG and summed
/// up at WARN at most once a minute. It reads nothing but the request's head, so it
/// goes in front of any receiver: the webhook layer, the AudioHook upgrade, the Bot
/// Connector router.
///
/// The client address is the connection's (the `SocketAddr` that
/// `server::serve` (feature `server`) with `peer_address(true)`, a hyper server or
/// axum's `ConnectInfo` put in the extensions); behind reverse proxies listed in
/// [`trusted_proxies`](SourceAllowlistLayerBuilder::trusted_proxies), the last
/// address they appended to [`ForwardedHeader`]. A request whose address cannot be
/// seen is refused, and the wiring mistake logged at ERROR once.
///
/// ```
/// use genesys_webhook::source::{SourceAllowlistLayer, SourceRanges};
///
/// let layer = SourceAllowlistLayer::builder()
///     .ranges("52.4.0.0/14, 2600:1f18::/36".parse::<SourceRanges>()?)
///     .trusted_proxies("10.0.0.0/8".parse::<SourceRanges>()?)
///     .build()?;
/// // Later, when Genesys publishes new ranges:
/// layer.replace_ranges("52.4.0.0/14, 3.0.0.0/15".parse::<SourceRanges>()?);
/// assert_eq!(layer.ranges().len(), 2);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SourceAllowlistLayer {
    pub(super) config: Arc<Shared>,
}

pub(super) struct Shared {
    ranges: RwLock<Arc<SourceRanges>>,
    proxies: SourceRanges,
    header: ForwardedHeader,
    /// Read by the refresh (feature `cloud`).
    #[cfg_attr(not(feature = "cloud"), allow(dead_code))]
    pub(super) allow_empty: bool,
    refused: RefusalLog,
    blind: AtomicBool,
}

impl SourceAllowlistLayer {
    /// Admits `ranges`, with no proxy trusted.
    ///
    /// # Errors
    ///
    /// [`SourceConfigError::Empty`] when `ranges` is empty.
    pub fn new(ranges: SourceRanges) -> Result<Self, SourceConfigError> {
        Self::builder().ranges(ranges).build()
    }

    /// Starts configuring a layer.
    pub fn builder() -> SourceAllowlistLayerBuilder {
        SourceAllowlistLayerBuilder {
            ranges: SourceRanges::default(),
            proxies: SourceRanges::default(),
            header: ForwardedHeader::default(),
            allow_empty: false,
        }
    }

    /// The ranges admitted now.
    pub fn ranges(&self) -> Arc<SourceRanges> {
        match self.config.ranges.read() {
            Ok(ranges) => Arc::clone(&ranges),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Admits `ranges` from now on, in this layer and every clone of it and every
    /// service it made.
    pub fn replace_ranges(&self, ranges: SourceRanges) {
        crate::metrics::source_ranges(ranges.len());
        let ranges = Arc::new(ranges);
        match self.config.ranges.write() {
            Ok(mut current) => *current = ranges,
            Err(poisoned) => *poisoned.into_inner() = ranges,
        }
    }

    /// How many requests this layer (and every clone of it) refused.
    pub fn refused(&self) -> u64 {
        self.config.refused.total()
    }
}

impl<S> Layer<S> for SourceAllowlistLayer {
    type Service = SourceAllowlist<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SourceAllowlist::new(inner, self)
    }
}

impl fmt::Debug for SourceAllowlistLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceAllowlistLayer")
            .field("ranges", &self.ranges().len())
            .field("trusted_proxies", &self.config.proxies.len())
            .field("header", &self.config.header)
            .finish_non_exhaustive()
    }
}

/// Configures a [`SourceAllowlistLayer`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SourceAllowlistLayerBuilder {
    ranges: SourceRanges,
    proxies: SourceRanges,
    header: ForwardedHeader,
    allow_empty: bool,
}

impl SourceAllowlistLayerBuilder {
    /// The ranges admitted.
    pub fn ranges(mut self, ranges: SourceRanges) -> Self {
        self.ranges = ranges;
        self
    }

    /// The reverse proxies in front of the service, whose forwarding header is
    /// believed (default none: the connection's address is the client's).
    pub fn trusted_proxies(mut self, proxies: SourceRanges) -> Self {
        self.proxies = proxies;
        self
    }

    /// The header the trusted proxies append to (default `X-Forwarded-For`).
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Builds the layer even with no range (it refuses everything until ranges are
    /// given), and lets a refresh replace the ranges with none.
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    ///
    /// [`SourceConfigError::Empty`] when no range is given, unless
    /// [`allow_empty`](Self::allow_empty).
    pub fn build(self) -> Result<SourceAllowlistLayer, SourceConfigError> {
        if self.ranges.is_empty() && !self.allow_empty {
            return Err(SourceConfigError::Empty);
        }
        crate::metrics::source_ranges(self.ranges.len());
        Ok(SourceAllowlistLayer {
            config: Arc::new(Shared {
                ranges: RwLock::new(Arc::new(self.ranges)),
                proxies: self.proxies,
                header: self.header,
                allow_empty: self.allow_empty,
                refused: RefusalLog::new("requests refused by the source allowlist"),
                blind: AtomicBool::new(false),
            }),
        })
    }
}

impl Shared {
    fn admits(&self, ip: IpAddr) -> bool {
        match self.ranges.read() {
            Ok(ranges) => ranges.contains(ip),
            Err(poisoned) => poisoned.into_inner().contains(ip),
        }
    }

    /// `None` when the request comes from an allowed address; otherwise the refusal,
    /// counted and logged.
    pub(super) fn refusal<B>(&self, request: &http::Request<B>) -> Option<Response<Bytes>> {
        let reason = match crate::http::peer::socket_addr(request.extensions()) {
            None => {
                misconfigured(
                    &self.blind,
                    "the source allowlist cannot see the peer's address, so it refuses every request: serve with server::serve and ServerLimits::peer_address(true), or axum's into_make_service_with_connect_info::<SocketAddr>()",
                );
                "the peer's address is not known"
            }
            Some(peer) => {
                match client_address(request.headers(), peer.ip(), &self.proxies, self.header) {
                    Ok(client) if self.admits(client) => return None,
                    Ok(_) => "the client's address is not in the allowed ranges",
                    Err(_) => {
                        "a trusted proxy's forwarding header holds something that is not an address"
                    }
                }
            }
        };
        self.refused.record("source_not_allowed", &reason);
        crate::metrics::refused("source_allowlist");
        Some(json_error(StatusCode::FORBIDDEN, "source_not_allowed"))
    }
}
