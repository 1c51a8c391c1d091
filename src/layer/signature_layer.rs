use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::builder::{Config, GenesysSignatureLayerBuilder};
use super::rejection::RejectionCounts;
use super::service::GenesysSignature;

/// Applies [`GenesysSignature`] to a service: only requests whose body carries a valid
/// signature reach it. Built with [`GenesysSignatureLayer::builder`]; cheap to clone,
/// and every clone shares one configuration (and one buffering budget).
#[derive(Clone)]
pub struct GenesysSignatureLayer {
    pub(crate) config: Arc<Config>,
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

    /// How many requests this layer's services turned away since it was built, by
    /// reason.
    pub fn rejections(&self) -> RejectionCounts {
        self.config.rejections.counts()
    }
}

impl<S> Layer<S> for GenesysSignatureLayer {
    type Service = GenesysSignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GenesysSignature::from_config(inner, Arc::clone(&self.config))
    }
}

impl fmt::Debug for GenesysSignatureLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysSignatureLayer")
            .field("config", &self.config)
            .finish()
    }
}
