//! The verification of an AudioHook upgrade: every synchronous check of Genesys'
//! reference verifier, from the headers alone, and the nonce to reserve next.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::signature::{compute, parse, signature_base, Failure, Malformed, Policy};
use super::verified::{AudioHookRefused, VerifiedAudioHook};
use crate::clock::Clock;
use crate::http::json::json_error;
use crate::http::log::RefusalLog;
use crate::replay::{ReplayKey, ReplayStore};

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

impl Config {
    pub(super) fn now(&self) -> i64 {
        self.clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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
            _ => return Err(Failure::Malformed(Malformed::Unpaired)),
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
