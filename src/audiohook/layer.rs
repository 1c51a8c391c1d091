use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;
use zeroize::Zeroizing;

use super::service::AudioHookSignature;
use super::signature::Policy;
use super::verify::{Config, FailureMode, Key};
use crate::clock::Clock;
use crate::http::log::RefusalLog;
use crate::replay::{MemoryStore, ReplayStore};

/// The delay before a refusal is answered, by default: Genesys' reference waits at
/// least 500 ms, so that failures cannot be timed.
pub const DEFAULT_FAILURE_DELAY: Duration = Duration::from_millis(500);

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

/// Verifies the HTTP Message Signature of AudioHook (and Audio Connector,
/// Transcription Connector) WebSocket upgrades before the inner service sees them.
/// Built with [`AudioHookSignatureLayer::builder`]; cheap to clone.
#[derive(Clone)]
pub struct AudioHookSignatureLayer {
    pub(super) config: Arc<Config>,
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
        AudioHookSignature::from_config(inner, Arc::clone(&self.config))
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

    /// The clock the time checks use (default the system clock): tests pin it. A
    /// [`Clock`](crate::Clock), or a closure returning the time.
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = Some(clock.into());
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
        // Random, so that no request can be signed for it.
        let dummy: [u8; 32] = crate::random::bytes();
        Ok(AudioHookSignatureLayer {
            config: Arc::new(Config {
                keys,
                dummy,
                policy: self.policy,
                clock: self.clock.unwrap_or_default(),
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
