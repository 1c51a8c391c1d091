use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::builder::{Config, GenesysSignatureLayerBuilder};
use super::log::RejectionCounts;
use super::service::GenesysSignature;

/// Applies [`GenesysSignature`] to a service: only requests whose body carries a valid
/// signature reach it. Built with [`GenesysSignatureLayer::builder`]; cheap to clone,
/// and every clone shares one configuration (and one buffering budget).
///
/// ```
/// use axum::{routing::post, Router};
/// use genesys_webhook::signature::signed_request;
/// use genesys_webhook::GenesysSignatureLayer;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = GenesysSignatureLayer::builder().secret("dev-secret").build()?;
/// let app: Router = Router::new()
///     .route("/webhook", post(|body: String| async move { body }))
///     .route_layer(layer.clone());
///
/// // A test in two lines: a request signed as Genesys signs it, and the answer.
/// let request = signed_request::<axum::body::Body>("/webhook", "dev-secret", r#"{"type":"Text"}"#);
/// assert_eq!(app.clone().oneshot(request).await?.status(), 200);
///
/// // Unsigned: refused before the handler runs.
/// let unsigned = http::Request::post("/webhook").body(axum::body::Body::from("{}"))?;
/// assert_eq!(app.oneshot(unsigned).await?.status(), 401);
/// # Ok(()) }
/// ```
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

    /// The replay store the layer consults, when replay protection is on: a
    /// readiness probe should require it to answer too (`Readiness::signature_layer`,
    /// feature `enqueue`).
    pub fn replay_store(&self) -> Option<&Arc<dyn crate::replay::ReplayStore>> {
        self.config.replay.as_ref().map(|replay| replay.store())
    }

    /// The largest body the layer accepts, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Checks a webhook's headers and body as the layer would, outside any framework or
    /// tower stack: every signature present must match the body under one of the
    /// secrets (constant time, decoded bytes), and the body must be within the limit.
    /// Nothing is counted or logged, and replay protection is not consulted.
    ///
    /// ```
    /// use genesys_webhook::signature::sign_open_messaging;
    /// use genesys_webhook::GenesysSignatureLayer;
    ///
    /// let layer = GenesysSignatureLayer::builder().secret("dev-secret").build()?;
    /// let body = br#"{"type":"Text"}"#;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-hub-signature-256", sign_open_messaging("dev-secret", body).parse()?);
    /// let verified = layer.verify(&headers, body)?;
    /// assert_eq!(verified.secret_index(), 0);
    /// assert!(layer.verify(&http::HeaderMap::new(), body).is_err());
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The [`Rejection`](super::Rejection) the layer would answer with.
    pub fn verify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<super::VerifiedSignature, super::Rejection> {
        let config = &self.config;
        let signatures = super::verify::read_signatures(headers, &config.schemes)?;
        if body.len() > config.max_body_bytes {
            return Err(super::Rejection::PayloadTooLarge {
                limit: config.max_body_bytes,
            });
        }
        let mut verification = config.keys.start();
        verification.update(body);
        super::verify::verify(&verification.finish(), &signatures, false)
            .map(|verified| super::VerifiedSignature {
                scheme: verified.scheme,
                secret_index: verified.secret_index,
            })
            .map_err(|refused| refused.rejection)
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
