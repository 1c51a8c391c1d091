//! The AudioHook layer through an axum router: the published vector with the clock
//! pinned inside its window, and every hostile case answered 401.

use crate::common;

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use genesys_webhook::audiohook::{AudioHookSignatureLayer, VerifiedAudioHook};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const API_KEY: &str = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";
const SECRET: &str = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=";
const PATH: &str = "/api/v1/voicebiometrics/ws";
const HOST: &str = "audiohook.example.com";
const ORG: &str = "d7934305-0972-4844-938e-9060eef73d05";
const SESSION: &str = "30b0e395-84d3-4570-ac13-9a62d8f514c0";
const CORRELATION: &str = "e160e428-53e2-487c-977d-96989bf5c99d";
const INPUT: &str = r#"sig1=("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";nonce="VGhpc0lzQVVuaXF1ZU5vbmNl";alg="hmac-sha256";created=1641013200;expires=3282026430"#;
const SIGNATURE: &str = "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:";

fn at(unix: u64) -> impl Fn() -> SystemTime + Send + Sync + 'static {
    move || SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
}

fn app(now: u64) -> Router {
    let layer = AudioHookSignatureLayer::builder()
        .key(API_KEY, SECRET)
        .unsigned_key("open-key")
        .clock(at(now))
        .build()
        .unwrap();
    Router::new()
        .route(
            PATH,
            get(|Extension(v): Extension<VerifiedAudioHook>| async move {
                format!(
                    "{} {} {} {} {}",
                    v.api_key(),
                    v.organization_id().unwrap_or("-"),
                    v.session_id().unwrap_or("-"),
                    v.correlation_id().unwrap_or("-"),
                    v.signed()
                )
            }),
        )
        .route_layer(layer)
}

struct Upgrade {
    uri: String,
    headers: Vec<(&'static str, String)>,
}

impl Upgrade {
    fn published() -> Self {
        Self {
            uri: PATH.to_owned(),
            headers: vec![
                ("host", HOST.to_owned()),
                ("audiohook-organization-id", ORG.to_owned()),
                ("audiohook-session-id", SESSION.to_owned()),
                ("audiohook-correlation-id", CORRELATION.to_owned()),
                ("x-api-key", API_KEY.to_owned()),
                ("signature-input", INPUT.to_owned()),
                ("signature", SIGNATURE.to_owned()),
            ],
        }
    }

    fn set(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self
    }

    async fn send(&self, app: &Router) -> (StatusCode, String) {
        let mut request = Request::get(&self.uri);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

const INSIDE: u64 = 1_641_013_203;

#[tokio::test]
async fn the_published_vector_is_accepted_inside_its_window_and_the_handler_sees_the_session() {
    let (status, body) = Upgrade::published().send(&app(INSIDE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        format!("{API_KEY} {ORG} {SESSION} {CORRELATION} true")
    );
}

async fn refused(upgrade: Upgrade, now: u64, case: &str) {
    let (status, body) = upgrade.send(&app(now)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
    assert_eq!(body, r#"{"error":"invalid_signature"}"#, "{case}");
}

fn flip_one_byte(value: &str) -> String {
    let mut bytes = value.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn one_byte_changed_in_any_covered_header_the_path_or_the_query_is_refused() {
    for name in [
        "host",
        "audiohook-organization-id",
        "audiohook-session-id",
        "audiohook-correlation-id",
    ] {
        let original = Upgrade::published()
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone();
        refused(
            Upgrade::published().set(name, &flip_one_byte(&original)),
            INSIDE,
            name,
        )
        .await;
    }
    // The layer on the whole router, so that a changed path still reaches it.
    let any_path = Router::new().fallback(|| async { "ok" }).layer(
        AudioHookSignatureLayer::builder()
            .key(API_KEY, SECRET)
            .clock(at(INSIDE))
            .build()
            .unwrap(),
    );
    let mut path = Upgrade::published();
    path.uri = "/api/v1/voicebiometrics/wz".into();
    assert_eq!(
        path.send(&any_path).await.0,
        StatusCode::UNAUTHORIZED,
        "path"
    );
    let mut query = Upgrade::published();
    query.uri = format!("{PATH}?x=1");
    assert_eq!(
        query.send(&any_path).await.0,
        StatusCode::UNAUTHORIZED,
        "query"
    );
    let tampered = SIGNATURE.replace("NZBw", "NZBx");
    refused(
        Upgrade::published().set("signature", &tampered),
        INSIDE,
        "signature",
    )
    .await;
}

#[tokio::test]
async fn wrong_key_wrong_secret_and_a_keyid_that_is_not_the_api_key_are_refused() {
    refused(
        Upgrade::published().set("x-api-key", "some-other-key-0000000000"),
        INSIDE,
        "unknown key",
    )
    .await;
    let wrong_secret = AudioHookSignatureLayer::builder()
        .key(API_KEY, "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=")
        .clock(at(INSIDE))
        .build()
        .unwrap();
    let app = Router::new()
        .route(PATH, get(|| async { "ok" }))
        .route_layer(wrong_secret);
    let (status, _) = Upgrade::published().send(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let keyid = INPUT.replace(
        r#"keyid="SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh""#,
        r#"keyid="another-key""#,
    );
    refused(
        Upgrade::published().set("signature-input", &keyid),
        INSIDE,
        "keyid",
    )
    .await;
}

#[tokio::test]
async fn stale_future_and_expired_signatures_are_refused() {
    refused(Upgrade::published(), 1_641_013_200 + 8, "stale created").await;
    refused(Upgrade::published(), 1_641_013_200 - 4, "future created").await;
    refused(Upgrade::published(), 3_282_026_430, "past expires").await;
}

#[tokio::test]
async fn short_or_reused_nonces_and_missing_components_are_refused() {
    let short = INPUT.replace("VGhpc0lzQVVuaXF1ZU5vbmNl", "short-nonce");
    refused(
        Upgrade::published().set("signature-input", &short),
        INSIDE,
        "short nonce",
    )
    .await;
    let app = app(INSIDE);
    assert_eq!(Upgrade::published().send(&app).await.0, StatusCode::OK);
    let (status, _) = Upgrade::published().send(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a reused nonce");
    let missing = INPUT.replace(r#" "audiohook-correlation-id""#, "");
    refused(
        Upgrade::published().set("signature-input", &missing),
        INSIDE,
        "missing component",
    )
    .await;
    refused(
        Upgrade::published().without("audiohook-session-id"),
        INSIDE,
        "missing header",
    )
    .await;
}

#[tokio::test]
async fn extra_parameters_other_algorithms_two_signatures_and_malformed_fields_are_refused() {
    let extra = INPUT.replace(";alg=", ";tag=\"x\";alg=");
    refused(
        Upgrade::published().set("signature-input", &extra),
        INSIDE,
        "extra parameter",
    )
    .await;
    let alg = INPUT.replace("hmac-sha256", "rsa-pss-sha512");
    refused(
        Upgrade::published().set("signature-input", &alg),
        INSIDE,
        "alg",
    )
    .await;
    let two_inputs = format!("{INPUT}, sig2=(\"x-api-key\");keyid=\"k\"");
    let two_signatures = format!("{SIGNATURE}, sig2=:AAAA:");
    refused(
        Upgrade::published()
            .set("signature-input", &two_inputs)
            .set("signature", &two_signatures),
        INSIDE,
        "two signatures",
    )
    .await;
    for (name, value) in [
        ("signature-input", "sig1=(\"unterminated"),
        ("signature", "sig1=:not base64!:"),
        ("signature", "sig1=\"a string\""),
        ("signature-input", "sig1=\"not a list\""),
    ] {
        refused(Upgrade::published().set(name, value), INSIDE, value).await;
    }
    refused(
        Upgrade::published().without("signature"),
        INSIDE,
        "signature-input alone",
    )
    .await;
}

#[tokio::test]
async fn unsigned_requests_pass_only_for_a_key_configured_without_a_secret() {
    refused(
        Upgrade::published()
            .without("signature")
            .without("signature-input"),
        INSIDE,
        "unsigned, key has a secret",
    )
    .await;
    let (status, body) = Upgrade::published()
        .without("signature")
        .without("signature-input")
        .set("x-api-key", "open-key")
        .send(&app(INSIDE))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.ends_with("false"), "{body}");
    refused(
        Upgrade::published().without("x-api-key"),
        INSIDE,
        "no api key",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn failures_can_be_delayed() {
    let layer = AudioHookSignatureLayer::builder()
        .key(API_KEY, SECRET)
        .clock(at(INSIDE))
        .failure_delay(Duration::from_millis(500))
        .build()
        .unwrap();
    let app = Router::new()
        .route(PATH, get(|| async { "ok" }))
        .route_layer(layer);
    let started = tokio::time::Instant::now();
    let (status, _) = Upgrade::published()
        .set("x-api-key", "nope")
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn configuration_errors_are_reported() {
    assert!(AudioHookSignatureLayer::builder().build().is_err());
    assert!(AudioHookSignatureLayer::builder()
        .key("k", "")
        .build()
        .is_err());
    assert!(AudioHookSignatureLayer::builder()
        .key("k", "not base64!")
        .build()
        .is_err());
}

#[test]
fn the_layer_is_clone_and_its_future_is_send() {
    fn assert_send<T: Send>() {}
    fn assert_clone<T: Clone>() {}
    assert_clone::<AudioHookSignatureLayer>();
    assert_send::<genesys_webhook::audiohook::ResponseFuture<axum::routing::Route, axum::body::Body>>(
    );
}

#[tokio::test]
async fn works_through_router_layer_and_service_builder() {
    let layer = || {
        AudioHookSignatureLayer::builder()
            .key(API_KEY, SECRET)
            .clock(at(INSIDE))
            .build()
            .unwrap()
    };
    let with_layer = Router::new()
        .route(PATH, get(|| async { "ok" }))
        .layer(layer());
    assert_eq!(
        Upgrade::published().send(&with_layer).await.0,
        StatusCode::OK
    );

    let service = tower::ServiceBuilder::new()
        .layer(layer())
        .service(tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("ok")))
        }));
    let mut request = Request::get(PATH);
    for (name, value) in &Upgrade::published().headers {
        request = request.header(*name, value);
    }
    let response = service
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn a_response_future_polled_after_completion_panics() {
    use std::future::Future;
    use tower::{Layer, Service};
    let layer = AudioHookSignatureLayer::builder()
        .key(API_KEY, SECRET)
        .clock(at(1_641_013_203))
        .build()
        .unwrap();
    let mut service = layer.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    // Unsigned for a key with a secret: refused at once (no failure delay configured).
    let request = Request::get(PATH)
        .header("x-api-key", API_KEY)
        .body(())
        .unwrap();
    assert!(Service::<Request<()>>::poll_ready(&mut service, &mut cx).is_ready());
    let mut future = Box::pin(service.call(request));
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected an answer at once: {:?}", other.is_ready()),
    }
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = future.as_mut().poll(&mut cx);
    }));
    assert!(again.is_err(), "polled after completion must panic");
}

#[tokio::test]
async fn an_unpadded_client_secret_verifies_the_published_vector_too() {
    let unpadded = SECRET.trim_end_matches('=');
    assert_ne!(unpadded, SECRET);
    let layer = AudioHookSignatureLayer::builder()
        .key(API_KEY, unpadded)
        .clock(at(INSIDE))
        .build()
        .unwrap();
    let app = Router::new()
        .route(PATH, get(|| async { "ok" }))
        .route_layer(layer);
    let (status, body) = Upgrade::published().send(&app).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[test]
fn the_service_gives_access_to_the_one_it_wraps() {
    use tower::Layer;
    let layer = AudioHookSignatureLayer::builder()
        .key(API_KEY, SECRET)
        .build()
        .unwrap();
    let mut service = layer.layer(7u32);
    assert_eq!(*service.get_ref(), 7);
    *service.get_mut() = 8;
    assert_eq!(service.into_inner(), 8);
}

#[test]
fn the_required_components_are_a_slice_of_the_six() {
    let required: &[&str] = genesys_webhook::audiohook::signature::REQUIRED_COMPONENTS;
    assert_eq!(required.len(), 6);
}

#[tokio::test]
async fn refusals_are_logged_at_debug_counted_and_summed_up_once_a_minute() {
    let logs = common::CapturedLogs::start();
    let layer = AudioHookSignatureLayer::builder()
        .key(API_KEY, SECRET)
        .clock(at(INSIDE))
        .failure_delay(Duration::ZERO)
        .build()
        .unwrap();
    let app = Router::new()
        .route(PATH, get(|| async { "ok" }))
        .route_layer(layer.clone());
    for _ in 0..300 {
        let request = Request::get(PATH)
            .header("host", HOST)
            .header("x-api-key", API_KEY)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(layer.rejections().refused, 300);
    assert_eq!(layer.rejections().total(), 300);
    assert_eq!(logs.count("WARN", "AudioHook"), 1, "{:?}", logs.lines());
    assert_eq!(logs.count("DEBUG", "AudioHook upgrades refused"), 300);
    let summary = logs
        .lines()
        .into_iter()
        .find(|l| l.contains(" WARN "))
        .unwrap();
    assert!(summary.contains("unsigned"), "the last reason: {summary}");
}

#[tokio::test]
async fn the_source_allowlist_goes_in_front_of_the_signed_upgrade() {
    use genesys_webhook::source::{SourceAllowlistLayer, SourceRanges};
    let upgrade = Upgrade::published();
    let headers: Vec<(&str, &str)> = upgrade
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    for (allowed, status) in [("127.0.0.0/8", 200), ("10.0.0.0/8", 403)] {
        let ranges: SourceRanges = allowed.parse().unwrap();
        let allowlist = SourceAllowlistLayer::new(ranges).unwrap();
        let addr = common::serve_axum_with_peer(app(INSIDE).layer(allowlist)).await;
        let answer = common::get(addr, PATH, &headers).await;
        assert_eq!(answer.status, status, "{allowed}: {}", answer.text());
        if status == 403 {
            assert_eq!(answer.json()["error"], "source_not_allowed");
        } else {
            assert!(answer.text().starts_with(API_KEY), "{}", answer.text());
        }
    }
}
