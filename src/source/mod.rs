//! Admit only the addresses Genesys Cloud calls from.
//!
//! Genesys publishes the address ranges each of its services calls out from
//! (`GET /api/v2/ipranges`: `audiohook`, `open-messaging`, `bot-connector`,
//! `data-actions`, …); its AudioHook FAQ and Bot Connector documentation tell customers
//! to allowlist them, and they change without notice. [`SourceAllowlistLayer`] refuses
//! every other address with `403 {"error":"source_not_allowed"}` before anything else
//! runs; with the `cloud` feature, `GenesysRanges` fetches the ranges at start and
//! keeps them fresh, keeping the last good list when a refresh fails.
//!
//! An allowlist is a second lock, not the first: Genesys' ranges are shared by every
//! Genesys customer in the region. Keep the signature or credential check behind it.
//!
//! ```
//! use axum::{routing::post, Router};
//! use genesys_webhook::source::{SourceAllowlistLayer, SourceRanges};
//! use genesys_webhook::GenesysSignatureLayer;
//!
//! let app: Router = Router::new()
//!     .route("/webhook", post(|| async { "ok" }))
//!     .layer(GenesysSignatureLayer::builder().secret("s3cret").build()?)
//!     .layer(SourceAllowlistLayer::new("52.4.0.0/14".parse::<SourceRanges>()?)?);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

mod forwarded;
mod layer;
mod ranges;
#[cfg(feature = "cloud")]
mod refresh;
mod service;

pub use self::forwarded::ForwardedHeader;
pub use self::layer::{SourceAllowlistLayer, SourceAllowlistLayerBuilder, SourceConfigError};
pub use self::ranges::{Cidr, InvalidCidr, SourceRanges};
#[cfg(feature = "cloud")]
#[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
pub use self::refresh::{GenesysRanges, DEFAULT_REFRESH_EVERY};
pub use self::service::SourceAllowlist;
