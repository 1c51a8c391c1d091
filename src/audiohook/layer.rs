use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tower_layer::Layer;
use tower_service::Service;
use zeroize::Zeroizing;

use super::signature::{compute, parse, signature_base, Failure, Policy};
use crate::layer::ResponseBody;
use crate::replay::{
    LeaseId, MemoryStore, ReplayKey, ReplayStore, Reservation, StoreError, StoreFuture,
};
use crate::response::{json_error, with_retry_after, POLLED_AFTER_COMPLETION};
use crate::ConfigError;

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// One configured API key: its decoded client secret, or none (unsigned requests).
struct Key {
    secret: Option<Zeroizing<Vec<u8>>>,
}

struct Config {
    keys: HashMap<String, Key>,
    /// Verified against when the API key is unknown, so that failing costs the same.
    dummy: [u8; 32],
    policy: Policy,
    clock: Clock,
    nonces: Arc<dyn ReplayStore>,
    failure_delay: Duration,
}

impl Config {
    fn now(&self) -> i64 {
        (self.clock)()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// Request extension set on every AudioHook upgrade that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAudioHook {
    api_key: String,
    organization_id: Option<String>,
    session_id: Option<String>,
    correlation_id: Option<String>,
    signed: bool,
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

impl AudioHookSignatureLayer {
    /// Starts configuring a layer; at least one [`key`](AudioHookSignatureLayerBuilder::key)
    /// or [`unsigned_key`](AudioHookSignatureLayerBuilder::unsigned_key) is required.
    pub fn builder() -> AudioHookSignatureLayerBuilder {
        AudioHookSignatureLayerBuilder {
            keys: Vec::new(),
            policy: Policy::default(),
            clock: None,
            nonces: None,
            failure_delay: Duration::ZERO,
        }
    }
}

impl<S> Layer<S> for AudioHookSignatureLayer {
    type Service = AudioHookSignature<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AudioHookSignature {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

impl fmt::Debug for AudioHookSignatureLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioHookSignatureLayer")
            .field("keys", &self.config.keys.len())
            .field("policy", &self.config.policy)
            .field("failure_delay", &self.config.failure_delay)
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

    /// Waits this long before answering a failure (default none; Genesys' reference
    /// server waits at least 500 ms), so that failures cannot be timed.
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoAudioHookKey`] without a key,
    /// [`ConfigError::InvalidClientSecret`] for a client secret that is empty or not
    /// base64.
    pub fn build(self) -> Result<AudioHookSignatureLayer, ConfigError> {
        if self.keys.is_empty() {
            return Err(ConfigError::NoAudioHookKey);
        }
        let mut keys = HashMap::new();
        for (index, (api_key, secret)) in self.keys.into_iter().enumerate() {
            let secret = match secret {
                None => None,
                Some(text) => {
                    let decoded = super::signature::decode_client_secret(&text)
                        .ok_or(ConfigError::InvalidClientSecret { index })?;
                    Some(Zeroizing::new(decoded))
                }
            };
            keys.insert(api_key, Key { secret });
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

/// The middleware made by [`AudioHookSignatureLayer`].
#[derive(Clone)]
pub struct AudioHookSignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> AudioHookSignature<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for AudioHookSignature<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioHookSignature")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().map(|s| s.trim().to_owned()))
        .collect::<Result<_, _>>()
        .ok()?;
    (!values.is_empty()).then(|| values.join(", "))
}

/// What a verified request needs next: the nonce check.
struct Checked {
    verified: VerifiedAudioHook,
    nonce: Option<(ReplayKey, Duration)>,
}

impl Config {
    /// Every synchronous check of the reference verifier.
    fn check<B>(&self, request: &Request<B>) -> Result<Checked, Failure> {
        let headers = request.headers();
        let api_key = header(headers, "x-api-key").ok_or(Failure::MissingApiKey)?;
        let input = header(headers, "signature-input");
        let signature = header(headers, "signature");
        let verified = |signed| VerifiedAudioHook {
            api_key: api_key.clone(),
            organization_id: header(headers, "audiohook-organization-id"),
            session_id: header(headers, "audiohook-session-id"),
            correlation_id: header(headers, "audiohook-correlation-id"),
            signed,
        };
        let key = self.keys.get(&api_key);
        let (input, signature) = match (input, signature) {
            (None, None) => {
                return match key {
                    Some(Key { secret: None }) => Ok(Checked {
                        verified: verified(false),
                        nonce: None,
                    }),
                    _ => Err(Failure::Unsigned),
                }
            }
            (Some(input), Some(signature)) => (input, signature),
            _ => {
                return Err(Failure::Malformed(
                    "Signature and Signature-Input go together".into(),
                ))
            }
        };
        let parsed = parse(&input, &signature)?;
        let now = self.now();
        self.policy.check(&parsed.parameters, &api_key, now)?;
        let base = signature_base(
            &parsed.components,
            &parsed.signature_params,
            |name| match name {
                "@request-target" => request
                    .uri()
                    .path_and_query()
                    .map(|pq| pq.as_str().to_owned()),
                "@authority" => request
                    .uri()
                    .authority()
                    .map(|a| a.as_str().to_ascii_lowercase())
                    .or_else(|| header(headers, "host").map(|h| h.to_ascii_lowercase())),
                "@method" => Some(request.method().as_str().to_owned()),
                "@path" => Some(request.uri().path().to_owned()),
                "@query" => Some(format!("?{}", request.uri().query().unwrap_or(""))),
                derived if derived.starts_with('@') => None,
                field => header(headers, field),
            },
        )?;
        // A known key with a secret, or the dummy key: the same work either way.
        let (secret, known): (&[u8], bool) = match key.and_then(|k| k.secret.as_deref()) {
            Some(secret) => (secret.as_slice(), true),
            None => (&self.dummy, false),
        };
        let computed = compute(secret, &base);
        let matches: bool = computed.ct_eq(parsed.signature.as_slice()).into();
        if !known {
            return Err(Failure::UnknownKey);
        }
        if !matches {
            return Err(Failure::Mismatch);
        }
        let nonce = parsed.parameters.nonce.as_deref().unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(b"audiohook-nonce\n");
        hasher.update(api_key.as_bytes());
        hasher.update(b"\n");
        hasher.update(nonce.as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        let created = parsed.parameters.created.unwrap_or(now);
        Ok(Checked {
            verified: verified(true),
            nonce: Some((
                ReplayKey::new(key),
                self.policy.nonce_lifetime(created, now),
            )),
        })
    }

    fn refuse(&self, failure: &Failure) -> Response<Bytes> {
        tracing::warn!(reason = %failure, status = 401, "AudioHook upgrade refused");
        json_error(StatusCode::UNAUTHORIZED, "invalid_signature")
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AudioHookSignature<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        match config.check(&request) {
            Err(failure) => ResponseFuture::refused(&config, &failure),
            Ok(Checked {
                verified,
                nonce: None,
            }) => {
                request.extensions_mut().insert(verified);
                ResponseFuture::call(inner, request)
            }
            Ok(Checked {
                verified,
                nonce: Some((key, lifetime)),
            }) => {
                let future = config.nonces.reserve(&key, LeaseId::new(), lifetime);
                request.extensions_mut().insert(verified);
                ResponseFuture {
                    kind: Kind::Nonce {
                        future,
                        pending: Some((inner, request)),
                        config,
                    },
                }
            }
        }
    }
}

pin_project! {
    /// Response future of [`AudioHookSignature`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        kind: Kind<S, B, S::Future>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, B, F> {
        Nonce {
            future: StoreFuture<Result<Reservation, StoreError>>,
            pending: Option<(S, Request<B>)>,
            config: Arc<Config>,
        },
        Calling {
            #[pin]
            future: F,
        },
        Delaying {
            #[pin]
            sleep: tokio::time::Sleep,
            response: Option<Response<Bytes>>,
        },
        Answered {
            response: Option<Response<Bytes>>,
        },
        Done,
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn call(mut inner: S, request: Request<B>) -> Self {
        Self {
            kind: Kind::Calling {
                future: inner.call(request),
            },
        }
    }

    fn refused(config: &Config, failure: &Failure) -> Self {
        Self::answer(config, config.refuse(failure))
    }

    fn answer(config: &Config, response: Response<Bytes>) -> Self {
        let kind =
            if config.failure_delay.is_zero() || tokio::runtime::Handle::try_current().is_err() {
                Kind::Answered {
                    response: Some(response),
                }
            } else {
                Kind::Delaying {
                    sleep: tokio::time::sleep(config.failure_delay),
                    response: Some(response),
                }
            };
        Self { kind }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().kind.project() {
                KindProj::Nonce {
                    future,
                    pending,
                    config,
                } => {
                    let reservation = ready!(Pin::new(future).poll(cx));
                    let (inner, request) = pending.take().expect(POLLED_AFTER_COMPLETION);
                    match reservation {
                        Ok(Reservation::Reserved) => Self::call(inner, request).kind,
                        Ok(Reservation::InFlight | Reservation::Done) => {
                            Self::refused(config, &Failure::ReplayedNonce).kind
                        }
                        Ok(_) | Err(_) => {
                            tracing::warn!(
                                "AudioHook nonce store unavailable; refusing the upgrade"
                            );
                            let response = with_retry_after(
                                json_error(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    "replay_store_unavailable",
                                ),
                                Duration::from_secs(5),
                            );
                            Self::answer(config, response).kind
                        }
                    }
                }
                KindProj::Calling { future } => {
                    let output = ready!(future.poll(cx));
                    self.as_mut().project().kind.set(Kind::Done);
                    return Poll::Ready(output.map(|r| r.map(ResponseBody::inner)));
                }
                KindProj::Delaying { sleep, response } => {
                    ready!(sleep.poll(cx));
                    let response = response.take().expect(POLLED_AFTER_COMPLETION);
                    self.as_mut().project().kind.set(Kind::Done);
                    return Poll::Ready(Ok(response.map(ResponseBody::answered)));
                }
                KindProj::Answered { response } => {
                    let response = response.take().expect(POLLED_AFTER_COMPLETION);
                    self.as_mut().project().kind.set(Kind::Done);
                    return Poll::Ready(Ok(response.map(ResponseBody::answered)));
                }
                // A caller's bug, answered as every tower-http future answers it.
                KindProj::Done => panic!("{POLLED_AFTER_COMPLETION}"),
            };
            self.as_mut().project().kind.set(next);
        }
    }
}
