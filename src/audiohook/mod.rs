//! AudioHook, Audio Connector and Transcription Connector (feature `audiohook`):
//! verifying the signed WebSocket upgrade Genesys Cloud opens to your server.
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
//! Every failure is `401 {"error":"invalid_signature"}` with a `tracing` event giving
//! the reason, never a secret; Genesys does not retry it. A nonce store that cannot
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
//! # fn main() -> Result<(), genesys_webhook::ConfigError> {
//! let layer = AudioHookSignatureLayer::builder()
//!     .key("SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh", "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")
//!     .build()?;
//! let app: Router = Router::new().route("/audiohook/ws", get(ws)).route_layer(layer);
//! # Ok(())
//! # }
//! ```

mod layer;
pub mod media;
pub mod signature;

pub use self::layer::{
    AudioHookSignature, AudioHookSignatureLayer, AudioHookSignatureLayerBuilder, ResponseFuture,
    VerifiedAudioHook,
};
pub use self::signature::{Failure, Policy};
