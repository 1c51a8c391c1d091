//! The tower middleware: [`GenesysSignatureLayer`] and its service [`GenesysSignature`].
//!
//! For each request the service, in this order:
//!
//! 1. reads the signature headers of the accepted [`Scheme`]s. None present, or one
//!    malformed: `401 {"error":"invalid_signature"}`, without reading the body;
//! 2. checks `Content-Length` against the limit: `413 {"error":"payload_too_large"}`,
//!    without reading the body;
//! 3. reads the body frame by frame, feeding HMAC-SHA256 as the bytes arrive and
//!    stopping with 413 as soon as the body grows past the limit (a body that fails to
//!    read gets `400 {"error":"unreadable_body"}`);
//! 4. compares every received signature with the digest under every secret, in
//!    constant time on the decoded bytes. Any signature that matches no secret:
//!    `401 {"error":"invalid_signature"}`;
//! 5. calls the inner service with the same bytes as a [`VerifiedBody`] (a body that
//!    arrived as one frame is passed on without a copy) and a [`VerifiedSignature`]
//!    extension. Method, URI, headers and extensions are kept.
//!
//! Every rejection is logged as a `tracing` event with its reason, the header name and
//! the body length, never a secret or a whole digest.
//!
//! # Example
//!
//! ```
//! use axum::{routing::post, Extension, Json, Router};
//! use genesys_webhook::{GenesysSignatureLayer, VerifiedSignature};
//!
//! async fn receive(
//!     Extension(verified): Extension<VerifiedSignature>,
//!     Json(event): Json<serde_json::Value>,
//! ) -> &'static str {
//!     println!("{} verified with secret #{}: {event}", verified.scheme(), verified.secret_index());
//!     "ok"
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = GenesysSignatureLayer::builder()
//!     .secret("dev-secret")
//!     .max_body_bytes(1024 * 1024)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/webhook/receive", post(receive))
//!     .route_layer(layer);
//! # Ok(())
//! # }
//! ```
//!
//! [`Scheme`]: crate::signature::Scheme

mod body;
mod builder;
mod future;
mod rejection;
mod service;

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

pub use self::body::{ResponseBody, VerifiedBody};
pub use self::builder::{ConfigError, GenesysSignatureLayerBuilder, DEFAULT_MAX_BODY_BYTES};
pub use self::future::ResponseFuture;
pub use self::rejection::Rejection;
pub use self::service::GenesysSignature;

use self::builder::Config;
use crate::signature::{Digest, Scheme};

/// Applies [`GenesysSignature`] to a service: only requests whose body carries a valid
/// signature reach it. Built with [`GenesysSignatureLayer::builder`]; cheap to clone.
#[derive(Clone)]
pub struct GenesysSignatureLayer {
    config: Arc<Config>,
}

impl GenesysSignatureLayer {
    /// Starts configuring a layer. At least one [`secret`] is required.
    ///
    /// [`secret`]: GenesysSignatureLayerBuilder::secret
    pub fn builder() -> GenesysSignatureLayerBuilder {
        GenesysSignatureLayerBuilder::new()
    }

    /// The largest body the layer accepts, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }
}

impl<S> Layer<S> for GenesysSignatureLayer {
    type Service = GenesysSignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GenesysSignature::new(inner, Arc::clone(&self.config))
    }
}

impl fmt::Debug for GenesysSignatureLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysSignatureLayer")
            .field("config", &self.config)
            .finish()
    }
}

/// Request extension set on every request that passed verification: which scheme and
/// which secret the first signature verified with.
///
/// ```
/// use axum::Extension;
/// use genesys_webhook::{signature::Scheme, VerifiedSignature};
///
/// async fn handler(Extension(verified): Extension<VerifiedSignature>) {
///     if verified.secret_index() > 0 {
///         tracing::info!("sender still signs with an older secret");
///     }
///     let _is_genesys_cloud = verified.scheme() == Scheme::OpenMessaging;
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub(crate) scheme: Scheme,
    pub(crate) secret_index: usize,
    pub(crate) digest: Digest,
}

impl VerifiedSignature {
    /// The scheme of the first signature header.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The position of the secret it verified with, counting from 0 in the order the
    /// secrets were given to the builder.
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }
}

impl fmt::Debug for VerifiedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSignature")
            .field("scheme", &self.scheme)
            .field("secret_index", &self.secret_index)
            .finish_non_exhaustive()
    }
}
