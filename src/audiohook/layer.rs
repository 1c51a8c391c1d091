use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use tower_layer::Layer;
use zeroize::Zeroizing;

use super::service::AudioHookSignature;
use super::signature::Policy;
use crate::replay::{LeaseId, MemoryStore, ReplayStore};
use crate::response::RefusalLog;

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The delay before a refusal is answered, by default: Genesys' reference waits at
/// least 500 ms, so that failures cannot be timed.
pub const DEFAULT_FAILURE_DELAY: Duration = Duration::from_millis(500);

/// One configured API key: its decoded client secret, or none (unsigned requests).
pub(super) struct Key {
    pub(super) secret: Option<Zeroizing<Vec<u8>>>,
}

pub(super) struct Config {
    pub(super) keys: HashMap<String, Key>,
    /// Verified against when the API key is unknown, so that failing costs the same.
    pub(super) dummy: [u8; 32],
    pub(super) policy: Policy,
    pub(super) clock: Clock,
    pub(super) nonces: Arc<dyn ReplayStore>,
    pub(super) failure_delay: Duration,
    pub(super) failure_mode: FailureMode,
    /// Upgrades refused for their signature (401, or `disconnect unauthorized`).
    pub(super) refused: RefusalLog,
    /// Upgrades answered 503 because the nonce store could not answer.
    pub(super) store_unavailable: RefusalLog,
}

/// How a refused upgrade is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailureMode {
    /// `401` before the upgrade, after the failure delay (as the Audio Connector
    /// blueprint answers). The default.
    #[default]
    Reject,
    /// Let the upgrade through with an [`AudioHookRefused`] extension instead of
    /// [`VerifiedAudioHook`]; the session driver
    /// (`AudioHookUpgrade`, feature `axum`) then sends `disconnect` reason
    /// `unauthorized` once the failure delay has passed since the upgrade, as Genesys'
    /// reference server does. Only for routes served by that driver. Each refused
    /// upgrade holds its connection for the delay plus at most the driver's close
    /// timeout.
    Disconnect,
}

/// Request extension set instead of [`VerifiedAudioHook`] on an upgrade refused under
/// [`FailureMode::Disconnect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHookRefused {
    pub(super) delay: Duration,
}

impl AudioHookRefused {
    /// How long after the upgrade the `disconnect` goes out.
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

/// Why an [`AudioHookSignatureLayer`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudioHookConfigError {
    /// No API key was configured.
    NoKey,
    /// A client secret is empty or not base64 (Genesys shows it in base64).
    InvalidClientSecret {
        /// The key's position, counting from 0 in the order they were added.
        index: usize,
    },
    /// The same API key was configured twice.
    DuplicateKey {
        /// The second one's position.
        index: usize,
    },
}

impl fmt::Display for AudioHookConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoKey => f.write_str("no AudioHook API key configured"),
            Self::InvalidClientSecret { index } => write!(
                f,
                "AudioHook client secret #{index} is empty or not base64 (use unsigned_key for a key without a secret)"
            ),
            Self::DuplicateKey { index } => {
                write!(f, "AudioHook API key #{index} was already configured")
            }
        }
    }
}

impl std::error::Error for AudioHookConfigError {}

impl Config {
    pub(super) fn now(&self) -> i64 {
        (self.clock)()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// Request extension set on every AudioHook upgrade that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAudioHook {
    pub(super) api_key: String,
    pub(super) organization_id: Option<String>,
    pub(super) session_id: Option<String>,
    pub(super) correlation_id: Option<String>,
    pub(super) signed: bool,
}

impl VerifiedAudioHook {
    /// The `X-API-KEY` the request carried (a key, not a secret).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// `Audiohook-Organization-Id`.
    pub fn organization_id(&self) -> Option<&str> {
        self.organization_id.as_deref()
    }

    /// `Audiohook-Session-Id`.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// `Audiohook-Correlation-Id`.
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// Whether the request was signed (false only for a key configured with
    /// [`unsigned_key`](AudioHookSignatureLayerBuilder::unsigned_key)).
    pub fn signed(&self) -> bool {
        self.signed
    }
}

/// Verifies the HTTP Message Signature of AudioHook (and Audio Connector,
/// Transcription Connector) WebSocket upgrades before the inner service sees them.
/// Built with [`AudioHookSignatureLayer::builder`]; cheap to clone.
#[derive(Clone)]
pub struct AudioHookSignatureLayer {
    config: Arc<Config>,
}

/// How many upgrades an [`AudioHookSignatureLayer`] turned away since it was built
/// ([`AudioHookSignatureLayer::rejections`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AudioHookRejections {
    /// Refused for their signature: `401`, or `disconnect` reason `unauthorized` under
    /// [`FailureMode::Disconnect`].
    pub refused: u64,
    /// Answered `503` because the nonce store could not answer.
    pub store_unavailable: u64,
}

impl AudioHookRejections {
    /// All of them together.
    pub fn total(&self) -> u64 {
        self.refused + self.store_unavailable
    }
}

impl AudioHookSignatureLayer {
    /// How many upgrades this layer (and every clone of it) turned away. Each one is
    /// logged at DEBUG; a WARN line sums them up, with the latest reason, at most once a
    /// minute.
    pub fn rejections(&self) -> AudioHookRejections {
        AudioHookRejections {
            refused: self.config.refused.total(),
            store_unavailable: self.config.store_unavailable.total(),
        }
    }

    /// Starts configuring a layer; at least one [`key`](AudioHookSignatureLayerBuilder::key)
    /// or [`unsigned_key`](AudioHookSignatureLayerBuilder::unsigned_key) is required.
    pub fn builder() -> AudioHookSignatureLayerBuilder {
        AudioHookSignatureLayerBuilder {
            keys: Vec::new(),
            policy: Policy::default(),
            clock: None,
            nonces: None,
            failure_delay: DEFAULT_FAILURE_DELAY,
            failure_mode: FailureMode::Reject,
        }
    }
}

impl<S> Layer<S> for AudioHookSignatureLayer {
    type Service = AudioHookSignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AudioHookSignature::new(inner, Arc::clone(&self.config))
    }
}

impl fmt::Debug for AudioHookSignatureLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioHookSignatureLayer")
            .field("keys", &self.config.keys.len())
            .field("policy", &self.config.policy)
            .field("failure_delay", &self.config.failure_delay)
            .field("failure_mode", &self.config.failure_mode)
            .finish_non_exhaustive()
    }
}

/// Configures an [`AudioHookSignatureLayer`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct AudioHookSignatureLayerBuilder {
    keys: Vec<(String, Option<String>)>,
    policy: Policy,
    clock: Option<Clock>,
    nonces: Option<Arc<dyn ReplayStore>>,
    failure_delay: Duration,
    failure_mode: FailureMode,
}

impl AudioHookSignatureLayerBuilder {
    /// Accepts requests signed for `api_key` with `client_secret_base64`, the client
    /// secret exactly as Genesys Cloud shows it (base64). Repeatable.
    pub fn key(
        mut self,
        api_key: impl Into<String>,
        client_secret_base64: impl Into<String>,
    ) -> Self {
        self.keys
            .push((api_key.into(), Some(client_secret_base64.into())));
        self
    }

    /// Accepts *unsigned* requests carrying `api_key`, as Genesys sends them when the
    /// integration's client secret is left empty. Every other unsigned request is
    /// refused.
    pub fn unsigned_key(mut self, api_key: impl Into<String>) -> Self {
        self.keys.push((api_key.into(), None));
        self
    }

    /// The oldest a signature may be, from its `created` time (default 10 s).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.policy.max_age = max_age;
        self
    }

    /// How far the sender's clock may differ (default 3 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.policy.clock_skew = skew;
        self
    }

    /// The shortest nonce accepted (default 22 characters).
    pub fn min_nonce_len(mut self, len: usize) -> Self {
        self.policy.min_nonce_len = len;
        self
    }

    /// The clock the time checks use (default the system clock): tests pin it.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Where nonces are remembered (default a [`MemoryStore`]); a shared store such as
    /// `RedisStore` refuses a nonce replayed to another replica too.
    pub fn nonce_store(mut self, store: impl ReplayStore) -> Self {
        self.nonces = Some(Arc::new(store));
        self
    }

    /// Waits this long before answering a failure (default 500 ms, as Genesys'
    /// reference server), so that failures cannot be timed. Under
    /// [`FailureMode::Disconnect`], the time from the upgrade to the `disconnect`.
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// How refusals are answered: `401` (the default) or an upgrade followed by
    /// `disconnect` reason `unauthorized`.
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.failure_mode = mode;
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// [`AudioHookConfigError::NoKey`] without a key,
    /// [`AudioHookConfigError::InvalidClientSecret`] for a client secret that is empty
    /// or not base64, [`AudioHookConfigError::DuplicateKey`] for a key given twice.
    pub fn build(self) -> Result<AudioHookSignatureLayer, AudioHookConfigError> {
        if self.keys.is_empty() {
            return Err(AudioHookConfigError::NoKey);
        }
        let mut keys = HashMap::new();
        for (index, (api_key, secret)) in self.keys.into_iter().enumerate() {
            let secret = match secret {
                None => None,
                Some(text) => {
                    let decoded = super::signature::decode_client_secret(&text)
                        .ok_or(AudioHookConfigError::InvalidClientSecret { index })?;
                    Some(Zeroizing::new(decoded))
                }
            };
            if keys.insert(api_key, Key { secret }).is_some() {
                return Err(AudioHookConfigError::DuplicateKey { index });
            }
        }
        let mut dummy = [0u8; 32];
        let seed = LeaseId::new().to_hex();
        dummy.copy_from_slice(&Sha256::digest(seed.as_bytes()));
        Ok(AudioHookSignatureLayer {
            config: Arc::new(Config {
                keys,
                dummy,
                policy: self.policy,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemTime::now)),
                nonces: self
                    .nonces
                    .unwrap_or_else(|| Arc::new(MemoryStore::default())),
                failure_delay: self.failure_delay,
                failure_mode: self.failure_mode,
                refused: RefusalLog::new("AudioHook upgrades refused"),
                store_unavailable: RefusalLog::new(
                    "AudioHook upgrades answered 503: the nonce store could not answer",
                ),
            }),
        })
    }
}

impl fmt::Debug for AudioHookSignatureLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioHookSignatureLayerBuilder")
            .field("keys", &self.keys.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
