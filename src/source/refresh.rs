//! The ranges Genesys Cloud publishes, fetched at start and kept fresh.

use std::sync::Weak;
use std::time::Duration;

use super::layer::{Shared, SourceAllowlistLayer};
use super::ranges::{Cidr, SourceRanges};
use crate::cloud::{CloudError, GenesysCloud};

/// How often, by default, [`GenesysRanges::keep_fresh`] fetches the ranges again.
pub const DEFAULT_REFRESH_EVERY: Duration = Duration::from_secs(3600);

/// After a failed refresh, the next try comes this soon (or at the usual time, if
/// sooner).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// The ranges Genesys Cloud calls from for some of its services, through the Platform
/// API (`GET /api/v2/ipranges`; the OAuth client needs no special permission).
///
/// ```no_run
/// use genesys_webhook::cloud::GenesysCloud;
/// use genesys_webhook::source::{GenesysRanges, SourceAllowlistLayer, DEFAULT_REFRESH_EVERY};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ranges = GenesysRanges::new(GenesysCloud::from_env()?, ["open-messaging"]);
/// let layer = SourceAllowlistLayer::builder().ranges(ranges.fetch().await?).build()?;
/// ranges.keep_fresh(&layer, DEFAULT_REFRESH_EVERY);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GenesysRanges {
    cloud: GenesysCloud,
    services: Vec<String>,
}

impl GenesysRanges {
    /// The ranges of `services` (such as `audiohook`, `open-messaging`,
    /// `bot-connector`), as Genesys names them.
    pub fn new<I>(cloud: GenesysCloud, services: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self {
            cloud,
            services: services.into_iter().map(Into::into).collect(),
        }
    }

    /// Fetches the ranges Genesys calls out from for the services (direction
    /// `outbound`, `both`, or none given). A range Genesys lists that is not a CIDR
    /// block is skipped and logged.
    ///
    /// # Errors
    ///
    /// [`CloudError`] from the token or the API.
    pub async fn fetch(&self) -> Result<SourceRanges, CloudError> {
        let listed = self.cloud.ip_ranges().await?;
        let mut blocks = Vec::new();
        for range in listed {
            let wanted = self
                .services
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&range.service));
            if !wanted || !range.is_outbound() {
                continue;
            }
            match range.cidr.parse::<Cidr>() {
                Ok(block) => blocks.push(block),
                Err(error) => {
                    tracing::warn!(%error, service = %range.service, "skipped a range Genesys listed")
                }
            }
        }
        Ok(SourceRanges::new(blocks))
    }

    /// Fetches the ranges every `every` and gives them to `layer`, on a task that ends
    /// when the layer and all its services are dropped. A failed refresh, or one that
    /// finds no range (unless the layer allows empty), keeps the last good list: it is
    /// counted (`genesys_webhook_source_refresh_failures_total`) and logged at WARN
    /// once per streak of failures, and tried again within a minute.
    pub fn keep_fresh(
        &self,
        layer: &SourceAllowlistLayer,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let weak: Weak<Shared> = std::sync::Arc::downgrade(&layer.config);
        tokio::spawn(async move {
            let mut failing = false;
            let mut wait = every;
            loop {
                tokio::time::sleep(wait).await;
                let Some(config) = weak.upgrade() else { return };
                let layer = SourceAllowlistLayer { config };
                let outcome = match this.fetch().await {
                    Ok(ranges) if ranges.is_empty() && !layer.config.allow_empty => {
                        Err("Genesys listed no range for these services".to_owned())
                    }
                    Ok(ranges) => Ok(ranges),
                    Err(error) => Err(error.to_string()),
                };
                match outcome {
                    Ok(ranges) => {
                        if failing {
                            tracing::info!(ranges = ranges.len(), "source ranges refreshed again");
                        }
                        failing = false;
                        wait = every;
                        layer.replace_ranges(ranges);
                    }
                    Err(error) => {
                        crate::metrics::source_refresh_failed();
                        if failing {
                            tracing::debug!(%error, "source ranges refresh failed again; keeping the last good list");
                        } else {
                            tracing::warn!(%error, kept = layer.ranges().len(), "source ranges refresh failed; keeping the last good list (logged once until a refresh succeeds)");
                        }
                        failing = true;
                        wait = every.min(RETRY_AFTER_FAILURE);
                    }
                }
            }
        })
    }
}
