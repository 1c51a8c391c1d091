//! The signature schemes, without HTTP plumbing: parsing header values, computing and
//! comparing HMAC-SHA256 digests, and producing header values for tests and tools.
//!
//! Genesys Cloud's Open Messaging integration signs each outbound webhook with
//! `X-Hub-Signature-256: sha256=<base64 HMAC-SHA256 of the raw body>`, keyed by the
//! integration's *outbound notification webhook signature secret token*. The older
//! `X-Genesys-Signature: <hex HMAC-SHA256 of the raw body>` scheme is the one that
//! signing gateways and test tools built from the original tutorial send. Both are
//! described by [`Scheme`].
//!
//! Nothing here knows about tower, HTTP bodies or the network; the
//! [`GenesysSignatureLayer`](crate::GenesysSignatureLayer) is built on top of it.
//!
//! # Signing a test request
//!
//! ```
//! use genesys_webhook::signature::{sign_open_messaging, Scheme};
//!
//! let body = br#"{"type":"Text","text":"Hello"}"#;
//! let value = sign_open_messaging("my-webhook-secret", body);
//! assert!(value.starts_with("sha256="));
//!
//! // The same digest, in the other scheme's encoding:
//! let hex = Scheme::XGenesysSignature.sign("my-webhook-secret", body);
//! assert_eq!(hex.len(), 64);
//! ```

mod mac;
mod scheme;
mod secret;

pub use self::mac::{hmac_sha256, sign_genesys, sign_open_messaging};
pub use self::scheme::{Encoding, MalformedSignature, ParsedSignature, Scheme};
pub use self::secret::Secret;

pub(crate) use self::mac::{find_match, Digest, KeyRing, Verification};

/// A `POST` to `uri` with `body`, signed with `secret` as Genesys Cloud signs its Open
/// Messaging webhooks (`X-Hub-Signature-256`) and typed `application/json`: a request
/// for a user's own tests, in one line. `B` is the request body type (`axum::body::Body`,
/// `Bytes`, a `http_body_util::Full`…).
///
/// ```
/// use genesys_webhook::signature::signed_request;
///
/// let request: http::Request<bytes::Bytes> = signed_request("/webhook", "dev-secret", "{}");
/// assert!(request.headers()["x-hub-signature-256"].to_str()?.starts_with("sha256="));
/// # Ok::<_, http::header::ToStrError>(())
/// ```
///
/// # Panics
///
/// When `uri` is not a valid request target (a test's own mistake).
pub fn signed_request<B: From<bytes::Bytes>>(
    uri: &str,
    secret: &str,
    body: impl Into<bytes::Bytes>,
) -> http::Request<B> {
    let body: bytes::Bytes = body.into();
    let signature = sign_open_messaging(secret, &body);
    let mut request = http::Request::new(B::from(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri
        .parse()
        .unwrap_or_else(|_| panic!("not a request target: {uri}"));
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = http::HeaderValue::from_str(&signature) {
        headers.insert(Scheme::OpenMessaging.header(), value);
    }
    request
}
pub(crate) use self::scheme::digest_prefix;
