//! The layer in real axum servers on loopback, driven over raw TCP.

use crate::common;

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::post;
use axum::{Extension, Json, Router};
use base64::Engine as _;
use common::*;
use genesys_webhook::signature::Scheme;
use genesys_webhook::{GenesysSignatureLayer, Rejection, VerifiedSignature};
use hmac::{Hmac, KeyInit, Mac};
use http::{Response, StatusCode};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::ServiceBuilder;

const SECRET: &str = "current-secret";
const PREVIOUS: &str = "previous-secret";
const LIMIT: usize = 64 * 1024;
const EVENT: &[u8] = br#"{"event":"routing:conversation:updated","conversationId":"c-1"}"#;

/// HMAC-SHA256 computed here, independently of the crate's own signing helpers.
fn mac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hex_sig(secret: &str, body: &[u8]) -> &'static str {
    leak(hex::encode(mac(secret, body)))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn hub_sig(secret: &str, body: &[u8]) -> &'static str {
    leak(format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac(secret, body))
    ))
}

fn layer() -> GenesysSignatureLayer {
    GenesysSignatureLayer::builder()
        .secret(SECRET)
        .secret(PREVIOUS)
        .max_body_bytes(LIMIT)
        .build()
        .unwrap()
}

/// Echoes the body it received, and what it learned about the request.
async fn echo(
    Extension(verified): Extension<VerifiedSignature>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<axum::body::Body> {
    Response::builder()
        .header("x-scheme", verified.scheme().header_name())
        .header("x-secret-index", verified.secret_index().to_string())
        .header("x-method", method.as_str())
        .header("x-uri", uri.to_string())
        .header(
            "x-custom",
            headers
                .get("x-custom")
                .cloned()
                .unwrap_or(http::HeaderValue::from_static("-")),
        )
        .body(axum::body::Body::from(body))
        .unwrap()
}

async fn server() -> std::net::SocketAddr {
    serve_axum(
        Router::new()
            .route("/webhook/receive", post(echo).put(echo))
            .route_layer(layer()),
    )
    .await
}

async fn assert_invalid_signature(response: RawResponse) {
    assert_eq!(response.status, 401, "{}", response.text());
    assert_eq!(response.text(), r#"{"error":"invalid_signature"}"#);
    assert_eq!(response.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn accepts_hex_signature_and_passes_identical_bytes() {
    let addr = server().await;
    for sig in [
        hex_sig(SECRET, EVENT),
        leak(hex_sig(SECRET, EVENT).to_uppercase()),
    ] {
        let response = post_bytes(
            addr,
            "/webhook/receive?x=1",
            &[("X-Genesys-Signature", sig), ("X-Custom", "kept")],
            EVENT,
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body, EVENT);
        assert_eq!(response.header("x-scheme"), Some("x-genesys-signature"));
        assert_eq!(response.header("x-secret-index"), Some("0"));
        assert_eq!(response.header("x-method"), Some("POST"));
        assert_eq!(response.header("x-uri"), Some("/webhook/receive?x=1"));
        assert_eq!(response.header("x-custom"), Some("kept"));
    }
}

#[tokio::test]
async fn accepts_open_messaging_base64_and_hex_forms() {
    let addr = server().await;
    let hex_form = leak(format!("sha256={}", hex_sig(SECRET, EVENT)));
    for sig in [hub_sig(SECRET, EVENT), hex_form] {
        let response = post_bytes(
            addr,
            "/webhook/receive",
            &[("X-Hub-Signature-256", sig)],
            EVENT,
        )
        .await;
        assert_eq!(response.status, 200, "{sig}: {}", response.text());
        assert_eq!(response.body, EVENT);
        assert_eq!(response.header("x-scheme"), Some("x-hub-signature-256"));
    }
}

#[tokio::test]
async fn accepts_the_published_hmac_example() {
    // The widely published HMAC-SHA256 example: key "key", the quick brown fox.
    let body = b"The quick brown fox jumps over the lazy dog";
    let addr = serve_axum(
        Router::new()
            .route("/", post(|body: Bytes| async move { body }))
            .layer(
                GenesysSignatureLayer::builder()
                    .secret("key")
                    .build()
                    .unwrap(),
            ),
    )
    .await;
    let hex = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
    let b64 = "sha256=97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=";
    assert_eq!(
        post_bytes(addr, "/", &[("X-Genesys-Signature", hex)], body)
            .await
            .status,
        200
    );
    assert_eq!(
        post_bytes(addr, "/", &[("X-Hub-Signature-256", b64)], body)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn rejects_wrong_secret_tampered_body_and_malformed_values_uniformly() {
    let addr = server().await;
    let mut tampered = EVENT.to_vec();
    tampered[5] ^= 1;
    let cases: Vec<(&str, &str, &[u8])> = vec![
        ("X-Genesys-Signature", hex_sig("wrong", EVENT), EVENT),
        ("X-Hub-Signature-256", hub_sig("wrong", EVENT), EVENT),
        ("X-Genesys-Signature", hex_sig(SECRET, EVENT), &tampered),
        ("X-Hub-Signature-256", hub_sig(SECRET, EVENT), &tampered),
        ("X-Genesys-Signature", "not-hex", EVENT),
        ("X-Genesys-Signature", hub_sig(SECRET, EVENT), EVENT),
        ("X-Hub-Signature-256", hex_sig(SECRET, EVENT), EVENT),
        ("X-Hub-Signature-256", "sha256=", EVENT),
        ("X-Hub-Signature-256", "", EVENT),
        (
            "X-Hub-Signature-256",
            leak(format!(
                "{},{}",
                hub_sig(SECRET, EVENT),
                hub_sig(SECRET, EVENT)
            )),
            EVENT,
        ),
    ];
    for (name, value, body) in cases {
        let response = post_bytes(addr, "/webhook/receive", &[(name, value)], body).await;
        assert_invalid_signature(response).await;
    }
}

#[tokio::test]
async fn accepts_previous_secret_and_reports_its_index() {
    let addr = server().await;
    let response = post_bytes(
        addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", hub_sig(PREVIOUS, EVENT))],
        EVENT,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-secret-index"), Some("1"));
}

#[tokio::test]
async fn every_signature_present_must_verify() {
    let addr = server().await;
    let good_hex = hex_sig(SECRET, EVENT);
    let good_hub = hub_sig(PREVIOUS, EVENT);
    let both = post_bytes(
        addr,
        "/webhook/receive",
        &[
            ("X-Genesys-Signature", good_hex),
            ("X-Hub-Signature-256", good_hub),
        ],
        EVENT,
    )
    .await;
    assert_eq!(both.status, 200);
    // The extension names the first signature read: Open Messaging's header comes first.
    assert_eq!(both.header("x-scheme"), Some("x-hub-signature-256"));

    let bad_hub = hub_sig("wrong", EVENT);
    let one_bad = post_bytes(
        addr,
        "/webhook/receive",
        &[
            ("X-Genesys-Signature", good_hex),
            ("X-Hub-Signature-256", bad_hub),
        ],
        EVENT,
    )
    .await;
    assert_invalid_signature(one_bad).await;

    let bad_hex = hex_sig("wrong", EVENT);
    let repeated = post_bytes(
        addr,
        "/webhook/receive",
        &[
            ("X-Genesys-Signature", good_hex),
            ("X-Genesys-Signature", bad_hex),
        ],
        EVENT,
    )
    .await;
    assert_invalid_signature(repeated).await;
}

#[tokio::test]
async fn only_scheme_ignores_the_other_header() {
    let addr = serve_axum(
        Router::new().route("/", post(echo)).route_layer(
            GenesysSignatureLayer::builder()
                .secret(SECRET)
                .only_scheme(Scheme::OpenMessaging)
                .build()
                .unwrap(),
        ),
    )
    .await;
    let hex_only = post_bytes(
        addr,
        "/",
        &[("X-Genesys-Signature", hex_sig(SECRET, EVENT))],
        EVENT,
    )
    .await;
    assert_invalid_signature(hex_only).await;
    let hub = post_bytes(
        addr,
        "/",
        &[("X-Hub-Signature-256", hub_sig(SECRET, EVENT))],
        EVENT,
    )
    .await;
    assert_eq!(hub.status, 200);
    let hub_and_bad_hex = post_bytes(
        addr,
        "/",
        &[
            ("X-Hub-Signature-256", hub_sig(SECRET, EVENT)),
            ("X-Genesys-Signature", "garbage"),
        ],
        EVENT,
    )
    .await;
    assert_eq!(hub_and_bad_hex.status, 200);
}

#[tokio::test]
async fn missing_signature_is_rejected_without_reading_the_body() {
    let addr = server().await;
    // The head announces a body that never comes: only an answer that does not wait
    // for the body can arrive.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&head("/webhook/receive", &[], "Content-Length: 1000\r\n"))
        .await
        .unwrap();
    assert_invalid_signature(read_response(&mut stream).await).await;

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&head(
            "/webhook/receive",
            &[("X-Genesys-Signature", "abc")],
            "Content-Length: 1000\r\n",
        ))
        .await
        .unwrap();
    assert_invalid_signature(read_response(&mut stream).await).await;
}

#[tokio::test]
async fn content_length_over_limit_is_rejected_without_reading_the_body() {
    let addr = server().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let sig = hex_sig(SECRET, b"whatever");
    stream
        .write_all(&head(
            "/webhook/receive",
            &[("X-Genesys-Signature", sig)],
            &format!("Content-Length: {}\r\n", LIMIT + 1),
        ))
        .await
        .unwrap();
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.text(), r#"{"error":"payload_too_large"}"#);
}

#[tokio::test]
async fn body_at_the_limit_passes_and_one_byte_over_is_rejected() {
    let addr = server().await;
    let at_limit = vec![b'a'; LIMIT];
    let response = post_bytes(
        addr,
        "/webhook/receive",
        &[("X-Genesys-Signature", hex_sig(SECRET, &at_limit))],
        &at_limit,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, at_limit);

    let over = vec![b'a'; LIMIT + 1];
    let response = post_bytes(
        addr,
        "/webhook/receive",
        &[("X-Genesys-Signature", hex_sig(SECRET, &over))],
        &over,
    )
    .await;
    assert_eq!(response.status, 413);
}

#[tokio::test]
async fn chunked_body_in_many_frames_arrives_identical() {
    let addr = server().await;
    let body: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let chunks: Vec<&[u8]> = body.chunks(997).collect();
    let response = post_chunked(
        addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", hub_sig(SECRET, &body))],
        &chunks,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body);
}

#[tokio::test]
async fn chunked_body_is_rejected_as_soon_as_it_crosses_the_limit() {
    let addr = server().await;
    let sig = hex_sig(SECRET, b"irrelevant");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&head(
            "/webhook/receive",
            &[("X-Genesys-Signature", sig)],
            "Transfer-Encoding: chunked\r\n",
        ))
        .await
        .unwrap();
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..=(LIMIT / chunk.len()) {
        stream.write_all(&chunk_bytes(&chunk)).await.unwrap();
    }
    // The body has crossed the limit and never ends: the answer must come anyway.
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.text(), r#"{"error":"payload_too_large"}"#);
}

#[tokio::test]
async fn truncated_body_gets_400() {
    let addr = server().await;
    let sig = hex_sig(SECRET, EVENT);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = head(
        "/webhook/receive",
        &[("X-Genesys-Signature", sig)],
        "Content-Length: 500\r\n",
    );
    request.extend_from_slice(&EVENT[..20]);
    stream.write_all(&request).await.unwrap();
    stream.shutdown().await.unwrap(); // the client stops sending mid-body
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.text(), r#"{"error":"unreadable_body"}"#);
}

#[tokio::test]
async fn handlers_extract_json_and_string() {
    #[derive(serde::Deserialize)]
    struct Event {
        event: String,
        #[serde(rename = "conversationId")]
        conversation_id: String,
    }
    let app = Router::new()
        .route(
            "/json",
            post(
                |Json(e): Json<Event>| async move { format!("{}/{}", e.event, e.conversation_id) },
            ),
        )
        .route("/string", post(|s: String| async move { s }))
        .layer(layer());
    let addr = serve_axum(app).await;
    let sig = hex_sig(SECRET, EVENT);
    let json = post_bytes(
        addr,
        "/json",
        &[
            ("X-Genesys-Signature", sig),
            ("Content-Type", "application/json"),
        ],
        EVENT,
    )
    .await;
    assert_eq!(json.status, 200);
    assert_eq!(json.text(), "routing:conversation:updated/c-1");
    let string = post_bytes(addr, "/string", &[("X-Genesys-Signature", sig)], EVENT).await;
    assert_eq!(string.body, EVENT);
}

#[tokio::test]
async fn custom_rejection_replaces_the_default_response() {
    let layer = GenesysSignatureLayer::builder()
        .secret(SECRET)
        .max_body_bytes(16)
        .on_rejection(|rejection: &Rejection| {
            Response::builder()
                .status(if rejection.status() == StatusCode::UNAUTHORIZED {
                    403
                } else {
                    422
                })
                .header("x-reason", rejection.error_code())
                .body(format!("custom: {rejection}"))
                .unwrap()
        })
        .build()
        .unwrap();
    let addr = serve_axum(Router::new().route("/", post(echo)).route_layer(layer)).await;
    let missing = post_bytes(addr, "/", &[], EVENT).await;
    assert_eq!(missing.status, 403);
    assert_eq!(missing.header("x-reason"), Some("invalid_signature"));
    assert_eq!(missing.text(), "custom: no signature header");
    let large = post_bytes(
        addr,
        "/",
        &[("X-Genesys-Signature", hex_sig(SECRET, EVENT))],
        EVENT,
    )
    .await;
    assert_eq!(large.status, 422);
    assert_eq!(large.header("x-reason"), Some("payload_too_large"));
}

#[tokio::test]
async fn works_through_router_layer_and_service_builder() {
    let app = Router::new().route("/webhook/receive", post(echo)).layer(
        ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(
                |_: axum::BoxError| async { StatusCode::REQUEST_TIMEOUT },
            ))
            .timeout(Duration::from_secs(5))
            .layer(layer()),
    );
    let addr = serve_axum(app).await;
    let ok = post_bytes(
        addr,
        "/webhook/receive",
        &[("X-Genesys-Signature", hex_sig(SECRET, EVENT))],
        EVENT,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, EVENT);
    let bad = post_bytes(addr, "/webhook/receive", &[], EVENT).await;
    assert_eq!(bad.status, 401);
}

#[tokio::test]
async fn route_layer_leaves_other_routes_unsigned() {
    let app = Router::new()
        .route("/webhook/receive", post(echo))
        .route_layer(layer())
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let addr = serve_axum(app).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
}

#[tokio::test]
async fn duplicates_are_logged_at_debug_and_summed_up_not_at_info_each() {
    use genesys_webhook::replay::ReplayProtection;
    use genesys_webhook::signature::signed_request;
    use tower::ServiceExt;
    let logs = CapturedLogs::start();
    let protection = ReplayProtection::in_memory();
    let app = Router::new()
        .route("/", post(|| async { "processed" }))
        .route_layer(
            GenesysSignatureLayer::builder()
                .secret("dup-secret")
                .replay_protection(protection.clone())
                .build()
                .unwrap(),
        );
    for _ in 0..100 {
        let request = signed_request::<axum::body::Body>("/", "dup-secret", r#"{"id":"same"}"#);
        assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 200);
    }
    assert_eq!(protection.duplicates(), 99);
    assert_eq!(logs.count("INFO", "duplicate"), 0, "{:?}", logs.lines());
    assert_eq!(logs.count("WARN", "duplicate"), 1, "{:?}", logs.lines());
    assert_eq!(
        logs.count("DEBUG", "duplicate webhook not processed again"),
        99
    );
}
