use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::{AudioHookRefused, Config, FailureMode, Key, VerifiedAudioHook};
use super::signature::{compute, parse, signature_base, Failure};
use crate::layer::ResponseBody;
use crate::replay::{LeaseId, ReplayKey};
use crate::response::json_error;

/// The middleware made by [`AudioHookSignatureLayer`](super::AudioHookSignatureLayer).
#[derive(Clone)]
pub struct AudioHookSignature<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> AudioHookSignature<S> {
    pub(super) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

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
pub(super) struct Checked {
    pub(super) verified: VerifiedAudioHook,
    pub(super) nonce: Option<(ReplayKey, std::time::Duration)>,
}

impl Config {
    /// Every synchronous check of the reference verifier.
    pub(super) fn check<B>(&self, request: &Request<B>) -> Result<Checked, Failure> {
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

    pub(super) fn refuse(&self, failure: &Failure) -> Response<Bytes> {
        self.refused.record(failure.error_code(), failure);
        // No detail for the sender, as the reference answers.
        json_error(failure.status(), "invalid_signature")
    }

    /// Under [`FailureMode::Disconnect`], marks the request refused and lets it
    /// through; otherwise `None`.
    pub(super) fn pass_refused<B>(&self, failure: &Failure, request: &mut Request<B>) -> bool {
        if self.failure_mode != FailureMode::Disconnect {
            return false;
        }
        self.refused.record(failure.error_code(), failure);
        request.extensions_mut().remove::<VerifiedAudioHook>();
        request.extensions_mut().insert(AudioHookRefused {
            delay: self.failure_delay,
        });
        true
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
            Err(failure) => {
                if config.pass_refused(&failure, &mut request) {
                    ResponseFuture::call(inner, request)
                } else {
                    ResponseFuture::refused(&config, &failure)
                }
            }
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
                ResponseFuture::nonce(future, inner, request, config)
            }
        }
    }
}
