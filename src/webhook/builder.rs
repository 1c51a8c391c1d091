use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use tracing::Level;

use super::budget::BufferBudget;
use super::log::RejectionLog;
use super::peer::PeerAddress;
use super::rejection::{Rejection, RejectionHandler};
use super::GenesysSignatureLayer;
use crate::replay::{InvalidSettings, ReplayProtection};
use crate::signature::{KeyRing, Scheme, Secret};

/// The default for [`GenesysSignatureLayerBuilder::max_body_bytes`]: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `Retry-After` of an `overloaded` answer: Genesys' own retry spacing.
const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What a built layer holds, shared by every clone of it and of its services.
pub(crate) struct Config {
    pub(crate) keys: KeyRing,
    pub(crate) secret_count: usize,
    pub(crate) schemes: Vec<Scheme>,
    pub(crate) max_body_bytes: usize,
    pub(crate) diagnostics: bool,
    pub(crate) on_rejection: Option<RejectionHandler>,
    pub(crate) replay: Option<Arc<ReplayProtection>>,
    pub(crate) budget: Option<Arc<BufferBudget>>,
    pub(crate) rejections: RejectionLog,
    pub(crate) peer_address: Option<PeerAddress>,
}

impl Config {
    pub(crate) fn rejection_response(&self, rejection: &Rejection) -> Response<Bytes> {
        match &self.on_rejection {
            Some(handler) => handler(rejection),
            None => rejection.default_response(),
        }
    }

    pub(crate) fn overloaded(&self) -> Rejection {
        Rejection::Overloaded {
            retry_after: OVERLOADED_RETRY_AFTER,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secrets", &format_args!("[{} redacted]", self.secret_count))
            .field("schemes", &self.schemes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("diagnostics", &self.diagnostics)
            .field("on_rejection", &self.on_rejection.as_ref().map(|_| ".."))
            .field("replay", &self.replay)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// Configures a [`GenesysSignatureLayer`]; made by [`GenesysSignatureLayer::builder`].
///
/// ```
/// use genesys_webhook::{signature::Scheme, GenesysSignatureLayer};
///
/// let layer = GenesysSignatureLayer::builder()
///     .secret("current-secret")
///     .secret("previous-secret") // accepted too, while senders move over
///     .only_scheme(Scheme::OpenMessaging)
///     .max_body_bytes(256 * 1024)
///     .build()?;
/// # Ok::<_, genesys_webhook::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Clone)]
pub struct GenesysSignatureLayerBuilder {
    secrets: Vec<Secret>,
    schemes: Vec<Scheme>,
    max_body_bytes: usize,
    diagnostics: bool,
    on_rejection: Option<RejectionHandler>,
    replay: Option<ReplayProtection>,
    max_buffered_bytes: Option<usize>,
    rejection_log_level: Level,
    peer_address: Option<PeerAddress>,
}

impl GenesysSignatureLayerBuilder {
    pub(crate) fn new() -> Self {
        Self {
            secrets: Vec::new(),
            schemes: Scheme::all().to_vec(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            diagnostics: false,
            on_rejection: None,
            replay: None,
            max_buffered_bytes: None,
            rejection_log_level: Level::DEBUG,
            peer_address: None,
        }
    }

    /// Bounds the bytes that all requests together may hold while they are read and
    /// verified (unbounded by default). Bodies are buffered before their signature can
    /// be checked, so without a bound a flood of large, wrongly signed bodies holds as
    /// much memory as it sends. A request that would go past the budget is answered
    /// `503 {"error":"overloaded"}` with `Retry-After` and `Connection: close`. Bytes
    /// count only once they have arrived (a sender that announces a large body and
    /// sends nothing holds nothing), and until the body is joined into one buffer. An
    /// eighth of the budget is kept for bodies of at most 64 KiB, so that a flood of
    /// large bodies cannot starve ordinary webhooks.
    ///
    /// ```
    /// use genesys_webhook::GenesysSignatureLayer;
    ///
    /// let layer = GenesysSignatureLayer::builder()
    ///     .secret("dev-secret")
    ///     .max_buffered_bytes(64 * 1024 * 1024)
    ///     .build()?;
    /// # Ok::<_, genesys_webhook::ConfigError>(())
    /// ```
    pub fn max_buffered_bytes(mut self, total: usize) -> Self {
        self.max_buffered_bytes = Some(total);
        self
    }

    /// The level each rejection is logged at (default `DEBUG`, so that a flood of
    /// unsigned requests cannot fill the disk). Whatever the level, a `WARN` summary
    /// with the counts by reason is logged at most once a minute while requests are
    /// rejected, and [`GenesysSignatureLayer::rejections`] counts them.
    pub fn rejection_log_level(mut self, level: Level) -> Self {
        self.rejection_log_level = level;
        self
    }

    /// Adds the rejected peer's address to each rejection's log event (`peer`); off by
    /// default, since an address can be personal data. [`PeerAddress::socket`] takes
    /// the connection's, [`PeerAddress::forwarded_for`] the one a trusted reverse proxy
    /// put in `X-Forwarded-For`.
    ///
    /// ```
    /// use genesys_webhook::{GenesysSignatureLayer, PeerAddress};
    ///
    /// let layer = GenesysSignatureLayer::builder()
    ///     .secret("dev-secret")
    ///     .peer_address(PeerAddress::forwarded_for())
    ///     .build()?;
    /// # Ok::<_, genesys_webhook::ConfigError>(())
    /// ```
    pub fn peer_address(mut self, peer: PeerAddress) -> Self {
        self.peer_address = Some(peer);
        self
    }

    /// Adds a secret. At least one is required; call again to add more (rotation): a
    /// request passes when it verifies under any of them, and
    /// [`VerifiedSignature::secret_index`](crate::VerifiedSignature::secret_index) says
    /// which, counting from 0 in the order they were added.
    pub fn secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// The largest body accepted, in bytes (default 1 MiB). A `Content-Length` above it
    /// is answered 413 before the body is read; a body without one is answered 413 as
    /// soon as it grows past the limit.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Accepts only this scheme's header; the other scheme's header is then ignored.
    /// By default both are accepted.
    pub fn only_scheme(mut self, scheme: Scheme) -> Self {
        self.schemes = vec![scheme];
        self
    }

    /// Adds to each signature-mismatch event the first 8 characters of each computed
    /// digest and of each received one, for the "why does my signature not match"
    /// moment. Off by default; never more than 8 characters are logged.
    pub fn diagnostics(mut self, enabled: bool) -> Self {
        self.diagnostics = enabled;
        self
    }

    /// Replaces the default rejection responses (401, 413, 400, and 503 with
    /// `Retry-After` when the replay store cannot answer or the layer is overloaded;
    /// each a small JSON body). Keep a 503 a 503 (or a 429): Genesys retries only those.
    ///
    /// ```
    /// use genesys_webhook::{GenesysSignatureLayer, Rejection};
    /// use http::{Response, StatusCode};
    ///
    /// let layer = GenesysSignatureLayer::builder()
    ///     .secret("dev-secret")
    ///     .on_rejection(|rejection: &Rejection| {
    ///         let mut response = Response::new(format!("rejected: {}", rejection.error_code()));
    ///         *response.status_mut() = rejection.status();
    ///         response
    ///     })
    ///     .build()?;
    /// # Ok::<_, genesys_webhook::ConfigError>(())
    /// ```
    pub fn on_rejection<F, B>(mut self, handler: F) -> Self
    where
        F: Fn(&Rejection) -> Response<B> + Send + Sync + 'static,
        B: Into<Bytes>,
    {
        self.on_rejection = Some(Arc::new(move |rejection: &Rejection| {
            handler(rejection).map(Into::into)
        }));
        self
    }

    /// Turns on replay protection: a request whose signature was already processed is
    /// answered without calling the inner service. See [`crate::replay`].
    pub fn replay_protection(mut self, protection: ReplayProtection) -> Self {
        self.replay = Some(protection);
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when no secret was given, when a secret is empty or only
    /// whitespace, when the body limit or the buffering budget is zero, or when the
    /// replay protection's settings are impossible (a TTL or lease of zero or of more
    /// than ten years, a TTL shorter than the lease). A secret with leading or trailing
    /// whitespace is accepted but logged as a warning.
    pub fn build(self) -> Result<GenesysSignatureLayer, ConfigError> {
        if self.secrets.is_empty() {
            return Err(ConfigError::NoSecret);
        }
        for (index, secret) in self.secrets.iter().enumerate() {
            if secret.is_empty() {
                return Err(ConfigError::EmptySecret { index });
            }
            if secret.is_blank() {
                return Err(ConfigError::BlankSecret { index });
            }
            if secret.has_surrounding_whitespace() {
                tracing::warn!(
                    secret_index = index,
                    "webhook secret starts or ends with whitespace; it is used as is, \
                     so check that it was not copied with a stray space or newline"
                );
            }
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::ZeroBodyLimit);
        }
        if self.max_buffered_bytes == Some(0) {
            return Err(ConfigError::ZeroBufferBudget);
        }
        if let Some(replay) = &self.replay {
            replay.validate().map_err(ConfigError::ReplaySettings)?;
        }
        Ok(GenesysSignatureLayer {
            config: Arc::new(Config {
                keys: KeyRing::new(&self.secrets),
                secret_count: self.secrets.len(),
                schemes: self.schemes,
                max_body_bytes: self.max_body_bytes,
                diagnostics: self.diagnostics,
                on_rejection: self.on_rejection,
                replay: self.replay.map(Arc::new),
                budget: self.max_buffered_bytes.map(BufferBudget::new),
                rejections: RejectionLog::new(self.rejection_log_level),
                peer_address: self.peer_address,
            }),
        })
    }
}

impl fmt::Debug for GenesysSignatureLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysSignatureLayerBuilder")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("schemes", &self.schemes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("diagnostics", &self.diagnostics)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

/// Why [`GenesysSignatureLayerBuilder::build`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No secret was given.
    NoSecret,
    /// A secret has no bytes (often an unset environment variable).
    EmptySecret {
        /// The secret's position, counting from 0 in the order they were added.
        index: usize,
    },
    /// A secret is made only of whitespace.
    BlankSecret {
        /// The secret's position, counting from 0 in the order they were added.
        index: usize,
    },
    /// The body limit is zero, which would reject every non-empty body.
    ZeroBodyLimit,
    /// The buffering budget is zero, which would turn every request away.
    ZeroBufferBudget,
    /// The replay protection's settings are impossible.
    ReplaySettings(InvalidSettings),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecret => f.write_str("no webhook secret configured"),
            Self::EmptySecret { index } => write!(f, "webhook secret #{index} is empty"),
            Self::BlankSecret { index } => {
                write!(f, "webhook secret #{index} is only whitespace")
            }
            Self::ZeroBodyLimit => f.write_str("the body limit must be at least one byte"),
            Self::ZeroBufferBudget => f.write_str("the buffering budget must be at least one byte"),
            Self::ReplaySettings(reason) => reason.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_refuses_missing_empty_and_blank_secrets() {
        assert_eq!(
            GenesysSignatureLayer::builder().build().unwrap_err(),
            ConfigError::NoSecret
        );
        assert_eq!(
            GenesysSignatureLayer::builder()
                .secret("ok")
                .secret("")
                .build()
                .unwrap_err(),
            ConfigError::EmptySecret { index: 1 }
        );
        assert_eq!(
            GenesysSignatureLayer::builder()
                .secret(" \n\t")
                .build()
                .unwrap_err(),
            ConfigError::BlankSecret { index: 0 }
        );
        assert_eq!(
            GenesysSignatureLayer::builder()
                .secret("ok")
                .max_body_bytes(0)
                .build()
                .unwrap_err(),
            ConfigError::ZeroBodyLimit
        );
    }

    #[test]
    fn build_refuses_impossible_replay_settings() {
        use std::time::Duration;
        let cases = [
            ReplayProtection::in_memory().ttl(Duration::ZERO),
            ReplayProtection::in_memory().lease(Duration::ZERO),
            ReplayProtection::in_memory()
                .ttl(Duration::from_secs(10))
                .lease(Duration::from_secs(30)),
            ReplayProtection::in_memory().ttl(Duration::MAX),
            ReplayProtection::in_memory().lease(Duration::from_secs(u64::MAX)),
        ];
        for protection in cases {
            let debug = format!("{protection:?}");
            let error = GenesysSignatureLayer::builder()
                .secret("ok")
                .replay_protection(protection)
                .build()
                .unwrap_err();
            assert!(
                matches!(error, ConfigError::ReplaySettings(_)),
                "{debug}: {error}"
            );
        }
        assert_eq!(
            GenesysSignatureLayer::builder()
                .secret("ok")
                .max_buffered_bytes(0)
                .build()
                .unwrap_err(),
            ConfigError::ZeroBufferBudget
        );
    }

    #[test]
    #[tracing_test::traced_test]
    fn surrounding_whitespace_builds_with_a_warning_that_hides_the_secret() {
        let layer = GenesysSignatureLayer::builder()
            .secret("s3cr3t-value\n")
            .build();
        assert!(layer.is_ok());
        assert!(logs_contain("whitespace"));
        assert!(!logs_contain("s3cr3t-value"));
    }

    #[test]
    fn debug_redacts_secrets() {
        let builder = GenesysSignatureLayer::builder().secret("s3cr3t-value");
        assert!(!format!("{builder:?}").contains("s3cr3t"));
        let layer = builder.build().unwrap();
        let debug = format!("{layer:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("redacted"));
    }
}
