//! AudioHook, Audio Connector and Transcription Connector (feature `audiohook`):
//! verifying the signed WebSocket upgrade Genesys Cloud opens to your server, then
//! serving the session.
//!
//! - [`AudioHookSignatureLayer`] verifies the upgrade (below);
//! - [`protocol`] types every message both ways;
//! - [`session::ServerSession`] is the protocol's server side with no I/O: sequence
//!   numbers, identity checks, states, positions, media negotiation;
//! - with the `axum` feature, `AudioHookUpgrade` runs a session over axum's WebSocket
//!   and hands your `AudioHookHandler` the open, the audio, DTMF and the close;
//! - [`codec`] converts audio (μ-law, L16, 8 → 16 kHz, channels) and [`vad`] detects
//!   voice the way Genesys' reference transcription endpoint does;
//! - [`transcription`] turns the detector's utterances into transcripts through your
//!   speech engine (`TranscriptionHandler` with `axum`).
//!
//! Genesys signs the upgrade `GET` with HTTP Message Signatures
//! (draft-ietf-httpbis-message-signatures-11, published as RFC 9421): an `X-API-KEY`
//! header, a `Signature-Input` naming the covered components and parameters, and a
//! `Signature` holding HMAC-SHA256 of the signature base, keyed by the integration's
//! client secret (base64-decoded). [`AudioHookSignatureLayer`] checks them as Genesys'
//! reference verifier does:
//!
//! - the six components `@request-target`, `@authority`, `audiohook-organization-id`,
//!   `audiohook-session-id`, `audiohook-correlation-id` and `x-api-key` are covered;
//! - `Signature-Input` and `Signature` parse as RFC 8941 dictionaries (with `sfv`)
//!   holding one signature; `@signature-params` is the inner list as received, which
//!   must be canonical;
//! - only `alg` (`hmac-sha256`), `created`, `expires`, `keyid` (equal to `X-API-KEY`)
//!   and `nonce` (at least 22 characters) are allowed; `created` may be at most the
//!   clock skew (3 s) in the future, `expires` not past, and the signature at most
//!   `max_age` (10 s) old;
//! - the HMAC is compared in constant time; an unknown key is checked against a dummy
//!   key, so that it costs the same;
//! - a nonce seen before within the signature's lifetime is refused (in memory by
//!   default; [`nonce_store`](AudioHookSignatureLayerBuilder::nonce_store) shares it,
//!   through a `RedisStore`, between replicas).
//!
//! Every failure is `401 {"error":"invalid_signature"}`, answered after the failure
//! delay (500 ms by default, as the reference), with a `tracing` event giving the
//! reason, never a secret; Genesys does not retry it. With
//! [`FailureMode::Disconnect`] the upgrade goes through instead and the session driver
//! sends `disconnect` reason `unauthorized` once the delay has passed, as the reference
//! server does. A nonce store that cannot
//! answer gets `503`. The inner service gets the request unchanged (axum's
//! `WebSocketUpgrade` still works) with a [`VerifiedAudioHook`] extension.
//!
//! ```
//! use axum::{routing::get, Extension, Router};
//! use genesys_webhook::audiohook::{AudioHookSignatureLayer, VerifiedAudioHook};
//!
//! async fn ws(Extension(session): Extension<VerifiedAudioHook>) -> String {
//!     format!("session {:?}", session.session_id())
//! }
//!
//! # fn main() -> Result<(), genesys_webhook::audiohook::AudioHookConfigError> {
//! let layer = AudioHookSignatureLayer::builder()
//!     .key("SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh", "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
//!     .build()?;
//! let app: Router = Router::new().route("/audiohook/ws", get(ws)).route_layer(layer);
//! # Ok(())
//! # }
//! ```

pub mod codec;
#[cfg(feature = "axum")]
mod driver;
mod future;
mod layer;
pub mod pacing;
pub mod protocol;
mod service;
pub mod session;
pub mod signature;
pub mod transcription;
pub mod vad;
mod verified;
mod verify;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use self::driver::{
    serve_websocket, AudioHookHandler, AudioHookUpgrade, DriverConfig, SessionControl, SessionEnd,
    SessionGone,
};
pub use self::future::ResponseFuture;
pub use self::layer::{
    AudioHookConfigError, AudioHookRejections, AudioHookSignatureLayer,
    AudioHookSignatureLayerBuilder, DEFAULT_FAILURE_DELAY,
};
pub use self::service::AudioHookSignature;
pub use self::signature::{Failure, Malformed, Policy};
pub use self::verified::{AudioHookRefused, VerifiedAudioHook};
pub use self::verify::FailureMode;
