//! The example receiver's application driven in process: its routes through
//! `oneshot`, its settings from a map. Process-level behaviour (signals, crashes,
//! sockets) is in `receiver.rs` and `durability.rs`.

use crate::app;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use genesys_webhook::inbox::{
    Delivery, EventId, Inbox, InboxAdmin, InboxError, InboxLimits, InboxStats, ListFilter,
    MemoryInbox, RetryOutcome, StoredEvent,
};
use genesys_webhook::signature::{sign_genesys, sign_open_messaging};
use genesys_webhook::BoxFuture;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const SECRET: &str = "app-secret";

fn settings(vars: &[(&str, &str)]) -> Result<app::Settings, String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    app::Settings::from_vars(|name| map.get(name).cloned()).map_err(|e| e.to_string())
}

fn router(inbox: Arc<dyn InboxAdmin>) -> axum::Router {
    let settings = settings(&[("GENESYS_WEBHOOK_SECRET", SECRET)]).unwrap();
    app::app(&settings, inbox, None, None).unwrap()
}

async fn post(
    app: &axum::Router,
    body: &[u8],
    signed: bool,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::post("/webhook/receive");
    if signed {
        request = request.header("x-hub-signature-256", sign_open_messaging(SECRET, body));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn get(app: &axum::Router, path: &str) -> StatusCode {
    app.clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_signed_event_is_stored_before_the_200() {
    let inbox = Arc::new(MemoryInbox::new());
    let app = router(inbox.clone());
    let (status, _, body) = post(&app, br#"{"conversationId":"c-1"}"#, true).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"queued"}"#)
    );
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
    let (status, _, _) = post(&app, br#"{"conversationId":"c-2"}"#, false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
}

#[tokio::test]
async fn bodies_that_are_not_a_json_object_of_valid_unicode_get_400() {
    let inbox = Arc::new(MemoryInbox::new());
    let app = router(inbox.clone());
    for bad in [
        &b"{not json"[..],
        b"[1,2]",
        b"",
        b"{\"text\":\"\xff\xfe\"}",
        br#"{"text":"\ud800"}"#,
        br#"{"\udc00":1}"#,
    ] {
        let (status, _, body) = post(&app, bad, true).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(body, r#"{"error":"invalid_json"}"#);
    }
    // A surrogate pair is fine.
    let (status, _, _) = post(&app, br#"{"text":"\ud83d\ude00"}"#, true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inbox.stats().await.unwrap().pending, 1);
}

#[tokio::test]
async fn a_full_inbox_answers_503_with_retry_after() {
    let app = router(Arc::new(
        MemoryInbox::new().limits(InboxLimits::default().max_events(1)),
    ));
    assert_eq!(post(&app, br#"{"n":1}"#, true).await.0, StatusCode::OK);
    let (status, retry_after, body) = post(&app, br#"{"n":2}"#, true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(body, r#"{"error":"inbox_full"}"#);
}

/// An inbox that fails, or never answers.
struct Broken {
    hangs: bool,
}

impl Inbox for Broken {
    fn append(&self, _: Bytes) -> BoxFuture<'_, Result<EventId, InboxError>> {
        if self.hangs {
            Box::pin(std::future::pending())
        } else {
            Box::pin(async { Err(InboxError::unavailable("disk I/O error")) })
        }
    }
    fn claim(&self, _: usize, _: Duration) -> BoxFuture<'_, Result<Vec<Delivery>, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn extend_lease<'a>(
        &'a self,
        _: &'a Delivery,
        _: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn ack<'a>(&'a self, _: &'a Delivery) -> BoxFuture<'a, Result<(), InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn retry<'a>(
        &'a self,
        _: &'a Delivery,
        _: Duration,
        _: &'a str,
    ) -> BoxFuture<'a, Result<RetryOutcome, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn defer<'a>(
        &'a self,
        _: &'a Delivery,
        _: Duration,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn dead_letter<'a>(
        &'a self,
        _: &'a Delivery,
        _: &'a str,
    ) -> BoxFuture<'a, Result<bool, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn ping(&self) -> BoxFuture<'_, Result<(), InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
}

impl InboxAdmin for Broken {
    fn stats(&self) -> BoxFuture<'_, Result<InboxStats, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn list(&self, _: ListFilter, _: usize) -> BoxFuture<'_, Result<Vec<StoredEvent>, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn get<'a>(&'a self, _: &'a EventId) -> BoxFuture<'a, Result<Option<StoredEvent>, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn requeue<'a>(&'a self, _: &'a EventId) -> BoxFuture<'a, Result<bool, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn requeue_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
    fn purge_dead(&self) -> BoxFuture<'_, Result<u64, InboxError>> {
        Box::pin(async { Err(InboxError::unavailable("down")) })
    }
}

#[tokio::test]
async fn a_failing_inbox_answers_503_and_never_200() {
    let app = router(Arc::new(Broken { hangs: false }));
    let (status, retry_after, body) = post(&app, br#"{"n":1}"#, true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(body, r#"{"error":"inbox_unavailable"}"#);
}

#[tokio::test(start_paused = true)]
async fn an_inbox_that_never_answers_gets_503_before_the_senders_timeout() {
    let app = router(Arc::new(Broken { hangs: true }));
    let (status, _, body) = post(&app, br#"{"n":1}"#, true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, r#"{"error":"inbox_unavailable"}"#);
}

#[tokio::test]
async fn readyz_answers_only_when_the_stores_do() {
    let ready = router(Arc::new(MemoryInbox::new()));
    assert_eq!(get(&ready, "/readyz").await, StatusCode::OK);
    assert_eq!(get(&ready, "/healthz").await, StatusCode::OK);
    let broken = router(Arc::new(Broken { hangs: false }));
    assert_eq!(
        get(&broken, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&broken, "/healthz").await, StatusCode::OK);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn readyz_is_503_while_the_replay_store_is_down() {
    // Nothing listens on port 1.
    let settings = settings(&[
        ("GENESYS_WEBHOOK_SECRET", SECRET),
        ("GENESYS_REPLAY_STORE", "redis://127.0.0.1:1/"),
    ])
    .unwrap();
    let app = app::app(&settings, Arc::new(MemoryInbox::new()), None, None).unwrap();
    assert_eq!(get(&app, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn settings_errors_never_show_a_password() {
    for (name, value) in [
        ("GENESYS_REPLAY_STORE", "redis//:hunter2pw@cache:6379"),
        ("GENESYS_REPLAY_STORE", "memcached://:hunter2pw@cache:11211"),
        ("GENESYS_INBOX", "redis//:hunter2pw@cache:6379"),
    ] {
        let message = match settings(&[("GENESYS_WEBHOOK_SECRET", SECRET), (name, value)]) {
            Err(message) => message,
            Ok(settings) => {
                // The replay store is checked when the app is built.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let _guard = runtime.enter();
                app::app(&settings, Arc::new(MemoryInbox::new()), None, None)
                    .err()
                    .unwrap()
                    .to_string()
            }
        };
        assert!(message.contains(name), "{message}");
        assert!(!message.contains("hunter2pw"), "{message}");
    }
}

#[test]
fn impossible_replay_settings_are_refused_with_the_variable_named() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    for vars in [
        [("GENESYS_REPLAY_TTL_SECS", "0")],
        [("GENESYS_REPLAY_LEASE_SECS", "0")],
        [("GENESYS_REPLAY_TTL_SECS", "18446744073709551615")],
        [("GENESYS_REPLAY_TTL_SECS", "10")],
    ] {
        let mut all = vec![("GENESYS_WEBHOOK_SECRET", SECRET)];
        all.extend(vars);
        let settings = settings(&all).unwrap();
        let error = app::app(&settings, Arc::new(MemoryInbox::new()), None, None)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("GENESYS_REPLAY_"), "{vars:?}: {error}");
    }
}

#[test]
#[tracing_test::traced_test]
fn falling_back_to_the_client_secret_warns_and_names_the_right_variable() {
    let settings = settings(&[("GENESYS_CLIENT_SECRET", "oauth-secret")]);
    assert!(settings.is_ok());
    assert!(logs_contain("GENESYS_WEBHOOK_SECRET"));
    assert!(logs_contain("OAuth client secret"));
    assert!(!logs_contain("oauth-secret"));
}

#[test]
fn hex_only_header_with_a_base64_digest_is_described_as_such() {
    let digest = sign_open_messaging(SECRET, b"{}");
    let base64 = digest.trim_start_matches("sha256=");
    let error = genesys_webhook::signature::Scheme::XGenesysSignature
        .parse(base64.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(error.contains("hex only"), "{error}");
    let _ = sign_genesys(SECRET, b"{}");
}

#[tokio::test]
async fn removing_the_inbox_file_turns_appends_and_readiness_to_503() {
    let dir = tempfile::tempdir().unwrap();
    let inbox =
        genesys_webhook::inbox::SqliteInbox::open(dir.path().join("genesys-inbox.db")).unwrap();
    let app = router(Arc::new(inbox));
    assert_eq!(post(&app, br#"{"n":1}"#, true).await.0, StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await, StatusCode::OK);
    // `rm genesys-inbox.db*` while the receiver runs.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let (status, retry_after, _) = post(&app, br#"{"n":2}"#, true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(get(&app, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn listen_addr_takes_host_names_and_says_the_expected_form() {
    let with = |addr: &str| settings(&[("GENESYS_WEBHOOK_SECRET", SECRET), ("LISTEN_ADDR", addr)]);
    let localhost = with("localhost:19023").unwrap();
    assert_eq!(localhost.listen_addr.port(), 19023);
    assert!(localhost.listen_addr.ip().is_loopback());
    assert_eq!(
        with("127.0.0.1:5000").unwrap().listen_addr.to_string(),
        "127.0.0.1:5000"
    );
    let error = with("5000").err().unwrap();
    assert!(
        error.contains("expected HOST:PORT, e.g. 127.0.0.1:5000"),
        "{error}"
    );
}

#[test]
fn a_bare_inbox_path_is_an_sqlite_file() {
    let settings = settings(&[
        ("GENESYS_WEBHOOK_SECRET", SECRET),
        ("GENESYS_INBOX", "genesys-inbox.db"),
    ]);
    assert!(settings.is_ok(), "{:?}", settings.err());
}

#[test]
fn the_default_shutdown_fits_a_30_second_stop_timeout_whatever_the_request_deadline() {
    for timeout in ["1", "10", "60", "600"] {
        let settings = settings(&[
            ("GENESYS_WEBHOOK_SECRET", SECRET),
            ("GENESYS_REQUEST_TIMEOUT_SECS", timeout),
        ])
        .unwrap();
        // The drain is at most 5 s, and the worker gets the rest of 25 s.
        assert!(settings.serve.drain <= Duration::from_secs(5), "{timeout}");
        assert_eq!(settings.shutdown, Duration::from_secs(25));
    }
}
