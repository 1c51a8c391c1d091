//! The request extensions an AudioHook upgrade leaves for the handler.

use std::time::Duration;

/// Request extension set instead of [`VerifiedAudioHook`] on an upgrade refused under
/// [`FailureMode::Disconnect`](super::FailureMode::Disconnect).
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
    /// An identity established elsewhere (a gateway in front of the service that
    /// verified the upgrade), for `serve_websocket` (feature `axum`) without
    /// [`AudioHookSignatureLayer`](super::AudioHookSignatureLayer), and for tests.
    /// [`signed`](Self::signed) is `false`: this crate did not check a signature.
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            organization_id: None,
            session_id: None,
            correlation_id: None,
            signed: false,
        }
    }

    /// The upgrade's organization, session and correlation ids.
    pub fn with_ids(
        mut self,
        organization_id: impl Into<String>,
        session_id: impl Into<String>,
        correlation_id: impl Into<String>,
    ) -> Self {
        self.organization_id = Some(organization_id.into());
        self.session_id = Some(session_id.into());
        self.correlation_id = Some(correlation_id.into());
        self
    }

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
    /// [`unsigned_key`](super::AudioHookSignatureLayerBuilder::unsigned_key)).
    pub fn signed(&self) -> bool {
        self.signed
    }
}
