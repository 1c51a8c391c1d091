//! The axum adapter: the upgrade as an extractor, completed into the generic loop.

use std::fmt;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use super::config::DriverConfig;
use super::handler::AudioHookHandler;
use super::run::{refuse, serve_websocket};
use crate::audiohook::verified::{AudioHookRefused, VerifiedAudioHook};

enum Identity {
    Verified(VerifiedAudioHook),
    Refused(AudioHookRefused, Option<String>),
}

/// An axum extractor for a verified AudioHook upgrade: the WebSocket upgrade plus the
/// identity [`AudioHookSignatureLayer`](crate::audiohook::AudioHookSignatureLayer) verified.
/// [`serve`](Self::serve) runs the session.
///
/// ```
/// use axum::{routing::get, Router};
/// use genesys_webhook::audiohook::{AudioHookHandler, AudioHookSignatureLayer, AudioHookUpgrade};
///
/// struct Monitor;
/// impl AudioHookHandler for Monitor {}
///
/// # fn main() -> Result<(), genesys_webhook::audiohook::AudioHookConfigError> {
/// let layer = AudioHookSignatureLayer::builder()
///     .key("SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh", "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
///     .build()?;
/// let app: Router = Router::new()
///     .route("/audiohook/ws", get(|upgrade: AudioHookUpgrade| async move { upgrade.serve(Monitor) }))
///     .route_layer(layer);
/// # Ok(())
/// # }
/// ```
pub struct AudioHookUpgrade {
    ws: WebSocketUpgrade,
    identity: Identity,
    config: DriverConfig,
}

impl fmt::Debug for AudioHookUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioHookUpgrade")
            .field("verified", &self.verified())
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AudioHookUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = if let Some(verified) = parts.extensions.get::<VerifiedAudioHook>() {
            Identity::Verified(verified.clone())
        } else if let Some(refused) = parts.extensions.get::<AudioHookRefused>() {
            let session_id = parts
                .headers
                .get("audiohook-session-id")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned());
            Identity::Refused(*refused, session_id)
        } else {
            tracing::error!("AudioHookUpgrade used on a route without AudioHookSignatureLayer");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let ws = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            ws,
            identity,
            config: DriverConfig::default(),
        })
    }
}

impl AudioHookUpgrade {
    /// The verified identity (`None` for an upgrade refused under
    /// [`FailureMode::Disconnect`](crate::audiohook::FailureMode::Disconnect)).
    pub fn verified(&self) -> Option<&VerifiedAudioHook> {
        match &self.identity {
            Identity::Verified(verified) => Some(verified),
            Identity::Refused(..) => None,
        }
    }

    /// Driver settings.
    pub fn config(mut self, config: DriverConfig) -> Self {
        self.config = config;
        self
    }

    /// Completes the upgrade and runs the session with `handler`.
    pub fn serve<H: AudioHookHandler>(self, handler: H) -> Response {
        let config = self.config;
        let ws = self
            .ws
            .read_buffer_size(config.read_buffer)
            .write_buffer_size(0)
            .max_message_size(config.max_message)
            .max_frame_size(config.max_message);
        match self.identity {
            Identity::Verified(verified) => {
                ws.on_upgrade(move |socket| serve_websocket(socket, verified, handler, config))
            }
            Identity::Refused(refused, session_id) => {
                ws.on_upgrade(move |socket| refuse(socket, refused, session_id, config))
            }
        }
    }
}
