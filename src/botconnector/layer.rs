use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_layer::Layer;

use super::service::BotCredentials;
use crate::http::json::json_error;
use crate::http::log::RefusalLog;

/// The header Genesys' integration sends the credential in, by this crate's
/// convention: name the integration's credential field so.
pub const DEFAULT_CREDENTIAL_HEADER: &str = "X-Bot-Connector-Secret";

/// Why a [`BotCredentialsLayer`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BotCredentialsConfigError {
    /// No header was configured.
    NoHeader,
    /// A header name is not a valid HTTP header name.
    InvalidHeaderName {
        /// The pair's position, counting from 0 in the order they were added.
        index: usize,
    },
    /// A value is empty, or not what an HTTP header can carry.
    InvalidValue {
        /// The pair's position, counting from 0 in the order they were added.
        index: usize,
    },
}

impl fmt::Display for BotCredentialsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHeader => f.write_str("no Bot Connector credential header configured"),
            Self::InvalidHeaderName { index } => {
                write!(
                    f,
                    "Bot Connector credential header #{index} has an invalid name"
                )
            }
            Self::InvalidValue { index } => write!(
                f,
                "Bot Connector credential #{index} is empty or not a valid header value"
            ),
        }
    }
}

impl std::error::Error for BotCredentialsConfigError {}

/// Admits only requests that carry the Digital Bot Connector integration's credentials:
/// every configured header, each with one of its configured values, compared in
/// constant time before the body is read. Others get `401
/// {"error":"invalid_credentials"}`, counted, logged at DEBUG and summed up at WARN at
/// most once a minute. Built with [`BotCredentialsLayer::new`] or
/// [`builder`](BotCredentialsLayer::builder); cheap to clone.
///
/// ```
/// use genesys_webhook::botconnector::BotCredentialsLayer;
///
/// // Genesys sends each credential field of the integration as a header of that name.
/// let layer = BotCredentialsLayer::builder()
///     .header("X-Bot-Connector-Secret", "s3cret")
///     .header("X-Bot-Connector-Secret", "previous-s3cret") // while rotating
///     .header("X-Tenant", "acme")
///     .build()?;
/// assert!(!format!("{layer:?}").contains("s3cret"));
/// # Ok::<_, genesys_webhook::botconnector::BotCredentialsConfigError>(())
/// ```
#[derive(Clone)]
pub struct BotCredentialsLayer {
    pub(super) config: Arc<Credentials>,
}

impl BotCredentialsLayer {
    /// Requires header `name` to carry `value`.
    ///
    /// # Errors
    ///
    /// [`BotCredentialsConfigError`] for a name or value HTTP cannot carry.
    pub fn new(
        name: impl AsRef<str>,
        value: impl AsRef<str>,
    ) -> Result<Self, BotCredentialsConfigError> {
        Self::builder().header(name, value).build()
    }

    /// Starts configuring a layer with several headers, or several accepted values.
    pub fn builder() -> BotCredentialsLayerBuilder {
        BotCredentialsLayerBuilder { pairs: Vec::new() }
    }

    /// How many requests this layer (and every clone of it) refused.
    pub fn refused(&self) -> u64 {
        self.config.refused.total()
    }
}

impl<S> Layer<S> for BotCredentialsLayer {
    type Service = BotCredentials<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BotCredentials::new(inner, self)
    }
}

impl fmt::Debug for BotCredentialsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotCredentialsLayer")
            .field(
                "headers",
                &self
                    .config
                    .headers
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Configures a [`BotCredentialsLayer`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct BotCredentialsLayerBuilder {
    pairs: Vec<(String, zeroize::Zeroizing<String>)>,
}

impl BotCredentialsLayerBuilder {
    /// Requires header `name` to carry `value`. Every name given is required; a name
    /// given twice accepts either value (to rotate a credential without downtime).
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.pairs.push((
            name.as_ref().to_owned(),
            zeroize::Zeroizing::new(value.as_ref().to_owned()),
        ));
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BotCredentialsConfigError::NoHeader`] without a header, and the others for a
    /// name or a value HTTP cannot carry.
    pub fn build(self) -> Result<BotCredentialsLayer, BotCredentialsConfigError> {
        if self.pairs.is_empty() {
            return Err(BotCredentialsConfigError::NoHeader);
        }
        let mut headers: Vec<Required> = Vec::new();
        for (index, (name, value)) in self.pairs.iter().enumerate() {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| BotCredentialsConfigError::InvalidHeaderName { index })?;
            if value.is_empty() || http::HeaderValue::from_str(value).is_err() {
                return Err(BotCredentialsConfigError::InvalidValue { index });
            }
            let digest = digest(value.as_bytes());
            match headers.iter_mut().find(|h| h.name == name) {
                Some(required) => required.accepted.push(digest),
                None => headers.push(Required {
                    name,
                    accepted: vec![digest],
                }),
            }
        }
        Ok(BotCredentialsLayer {
            config: Arc::new(Credentials {
                headers,
                refused: RefusalLog::new("Bot Connector requests refused for their credentials"),
            }),
        })
    }
}

impl fmt::Debug for BotCredentialsLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotCredentialsLayerBuilder")
            .field("headers", &self.pairs.len())
            .finish_non_exhaustive()
    }
}

/// Values are compared as SHA-256 digests, so that neither their bytes nor their length
/// can be timed.
fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

struct Required {
    name: HeaderName,
    accepted: Vec<[u8; 32]>,
}

pub(super) struct Credentials {
    headers: Vec<Required>,
    refused: RefusalLog,
}

impl Credentials {
    /// `None` when every required header is there once with an accepted value;
    /// otherwise the refusal to answer, counted and logged (never with the value).
    pub(super) fn refusal<B>(&self, request: &http::Request<B>) -> Option<Response<bytes::Bytes>> {
        let headers: &HeaderMap = request.headers();
        for required in &self.headers {
            let mut values = headers.get_all(&required.name).iter();
            let reason = match (values.next(), values.next()) {
                (None, _) => "missing",
                (Some(_), Some(_)) => "repeated",
                (Some(value), None) => {
                    let presented = digest(value.as_bytes());
                    let mut matched = subtle::Choice::from(0);
                    for accepted in &required.accepted {
                        matched |= presented.ct_eq(accepted);
                    }
                    if bool::from(matched) {
                        continue;
                    }
                    "wrong value"
                }
            };
            self.refused.record(
                "invalid_credentials",
                &format_args!("header {}: {reason}", required.name),
            );
            crate::metrics::refused("bot_credentials");
            return Some(json_error(StatusCode::UNAUTHORIZED, "invalid_credentials"));
        }
        None
    }
}
