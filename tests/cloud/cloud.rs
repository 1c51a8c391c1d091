//! The Genesys Cloud client against a fake Genesys Cloud on loopback.

use crate::common;

use std::time::Duration;

use common::fake_cloud::*;
use genesys_webhook::cloud::{
    CloudError, GenesysCloud, NewOpenMessagingIntegration, OpenMessagingIntegrationUpdate,
    RetryPolicy,
};
use tokio::time::Instant;

fn client(fake: &FakeCloud) -> GenesysCloud {
    client_with(fake, RetryPolicy::default())
}

fn client_with(fake: &FakeCloud, policy: RetryPolicy) -> GenesysCloud {
    GenesysCloud::builder()
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .api_base(fake.base())
        .retry_policy(policy)
        // Paused test clocks jump ahead while the fake answers: no per-request timer.
        .timeout(None)
        .build()
        .unwrap()
}

fn new_integration(name: &str) -> NewOpenMessagingIntegration {
    NewOpenMessagingIntegration::new(
        name,
        "https://hooks.example.com/webhook/receive",
        "signing-secret-1",
    )
}

#[tokio::test]
async fn login_base_is_derived_from_an_overridden_api_base() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    assert_eq!(cloud.endpoints().login_base(), fake.base());
    cloud.open_messaging().list().await.unwrap();
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn token_is_fetched_once_and_cached() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    for _ in 0..3 {
        cloud.open_messaging().list().await.unwrap();
    }
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(fake.api_requests().len(), 3);
}

#[tokio::test]
async fn wrong_client_secret_is_an_authentication_error_without_the_secret() {
    let fake = FakeCloud::start().await;
    let cloud = GenesysCloud::builder()
        .client_credentials(CLIENT_ID, "wrong-secret-value")
        .api_base(fake.base())
        .build()
        .unwrap();
    let error = cloud.open_messaging().list().await.unwrap_err();
    assert!(
        matches!(&error, CloudError::Authentication(e) if e.status == 401),
        "{error:?}"
    );
    let text = format!("{error} {error:?} {cloud:?}");
    assert!(!text.contains("wrong-secret-value"), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(fake.api_requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn token_is_refreshed_a_minute_before_it_expires() {
    let fake = FakeCloud::start().await;
    fake.with(|f| f.expires_in = 120);
    let cloud = client(&fake);
    cloud.open_messaging().list().await.unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    cloud.open_messaging().list().await.unwrap();
    assert_eq!(fake.token_requests(), 1, "still more than a minute left");
    tokio::time::advance(Duration::from_secs(15)).await;
    cloud.open_messaging().list().await.unwrap();
    assert_eq!(
        fake.token_requests(),
        2,
        "less than a minute left: refreshed"
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let cloud = cloud.clone();
            tokio::spawn(async move { cloud.open_messaging().list().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn unauthorized_api_answer_refreshes_the_token_once_and_retries() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    cloud.open_messaging().list().await.unwrap();
    fake.revoke_tokens();
    cloud.open_messaging().list().await.unwrap();
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(fake.api_requests().len(), 3);

    // A 401 that persists after the refresh is returned, not retried forever.
    fake.force_api(Forced::new(401).body(r#"{"code":"bad.credentials","message":"no"}"#));
    fake.force_api(Forced::new(401).body(r#"{"code":"bad.credentials","message":"no"}"#));
    let error = cloud.open_messaging().list().await.unwrap_err();
    assert!(
        matches!(&error, CloudError::Api(e) if e.status == 401),
        "{error:?}"
    );
    assert_eq!(fake.api_requests().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_honours_retry_after_then_succeeds() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    cloud.open_messaging().list().await.unwrap();
    fake.force_api(
        Forced::new(429)
            .header("retry-after", "7")
            .body(r#"{"code":"too.many.requests.retry.after","status":429}"#),
    );
    let started = Instant::now();
    cloud.open_messaging().list().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(fake.api_requests().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_without_retry_after_waits_three_seconds() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    fake.force_api(Forced::new(429));
    let started = Instant::now();
    cloud.open_messaging().list().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_ceiling_gives_up_at_once() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    fake.force_api(
        Forced::new(429)
            .header("retry-after", "600")
            .header("inin-correlation-id", "corr-429"),
    );
    let started = Instant::now();
    let error = cloud.open_messaging().list().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    match &error {
        CloudError::RetryAfterTooLong {
            retry_after,
            correlation_id,
            ..
        } => {
            assert_eq!(*retry_after, Duration::from_secs(600));
            assert_eq!(correlation_id.as_deref(), Some("corr-429"));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("try again after"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn service_unavailable_backs_off_exponentially() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    cloud.open_messaging().list().await.unwrap();
    fake.force_api(Forced::new(503));
    fake.force_api(Forced::new(502));
    let started = Instant::now();
    cloud.open_messaging().list().await.unwrap();
    let waited = started.elapsed();
    // 3 s then 9 s, each within ±20 % jitter.
    assert!(waited >= Duration::from_secs_f64(2.4 + 7.2), "{waited:?}");
    assert!(
        waited <= Duration::from_secs_f64(3.6 + 10.8 + 0.5),
        "{waited:?}"
    );
    assert_eq!(fake.api_requests().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded() {
    let fake = FakeCloud::start().await;
    let cloud = client_with(&fake, RetryPolicy::default().max_retries(2));
    for _ in 0..5 {
        fake.force_api(Forced::new(504).header("inin-correlation-id", "corr-504"));
    }
    let error = cloud.open_messaging().list().await.unwrap_err();
    match &error {
        CloudError::Api(e) => {
            assert_eq!(e.status, 504);
            assert_eq!(e.correlation_id.as_deref(), Some("corr-504"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.api_requests().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_is_retried_too() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    fake.force_token(Forced::new(429).header("retry-after", "2"));
    fake.force_token(Forced::new(503));
    cloud.open_messaging().list().await.unwrap();
    assert_eq!(fake.token_requests(), 3);
}

#[tokio::test]
async fn forbidden_names_the_missing_permission() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    fake.force_create(
        Forced::new(403)
            .header("inin-correlation-id", "corr-403")
            .body(r#"{"message":"Unable to perform the requested action. You are missing the following permission(s): [messaging:integration:add]","code":"missing.permissions","status":403,"messageParams":{"permissions":"[messaging:integration:add]"}}"#),
    );
    let error = cloud
        .open_messaging()
        .create(&new_integration("x"))
        .await
        .unwrap_err();
    match &error {
        CloudError::Api(e) => {
            assert_eq!(e.status, 403);
            assert_eq!(e.code.as_deref(), Some("missing.permissions"));
            assert_eq!(e.missing_permissions, ["messaging:integration:add"]);
            assert_eq!(e.correlation_id.as_deref(), Some("corr-403"));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("messaging:integration:add"));
}

#[tokio::test]
async fn create_list_get_update_delete_round_trip() {
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    let om = cloud.open_messaging();
    let mut ids = Vec::new();
    for i in 0..5 {
        let created = om
            .create(&new_integration(&format!("hook-{i}")).webhook_header("X-Tenant", "acme"))
            .await
            .unwrap();
        assert_eq!(created.name, format!("hook-{i}"));
        ids.push(created.id);
    }
    let sent = fake.with(|f| f.last_create_body.clone()).unwrap();
    assert_eq!(
        sent["outboundNotificationWebhookSignatureSecretToken"],
        "signing-secret-1"
    );
    assert_eq!(
        sent["outboundNotificationWebhookUrl"],
        "https://hooks.example.com/webhook/receive"
    );
    assert_eq!(sent["webhookHeaders"]["X-Tenant"], "acme");

    // Five integrations, two a page: three pages followed.
    let lists = || {
        fake.api_requests()
            .iter()
            .filter(|r| r.starts_with("GET list"))
            .count()
    };
    let before = lists();
    let listed = om.list().await.unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(lists() - before, 3);

    let got = om.get(&ids[0]).await.unwrap();
    assert_eq!(got.name, "hook-0");

    let updated = om
        .update(
            &ids[0],
            &OpenMessagingIntegrationUpdate::new().webhook_url("https://new.example.com/hook"),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.outbound_notification_webhook_url.as_deref(),
        Some("https://new.example.com/hook")
    );

    om.delete(&ids[0]).await.unwrap();
    assert_eq!(om.list().await.unwrap().len(), 4);
    let missing = om.get(&ids[0]).await.unwrap_err();
    assert!(
        matches!(&missing, CloudError::Api(e) if e.status == 404 && e.correlation_id.as_deref() == Some("ctx-404")),
        "{missing:?}"
    );
    assert!(om.get("../../users").await.is_err());
    assert_eq!(
        fake.api_requests()
            .iter()
            .filter(|r| r.contains("users"))
            .count(),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn hostile_retry_after_values_never_panic_and_never_format_impossible_dates() {
    for value in [
        "1e20",
        "18446744073709551616",
        "99999999999999999999999",
        "-5",
        "3.5",
    ] {
        let fake = FakeCloud::start().await;
        for _ in 0..6 {
            fake.force_api(Forced::new(429).header("retry-after", value));
        }
        let error = client(&fake).open_messaging().list().await.unwrap_err();
        // Display must not panic, whatever the date.
        let text = error.to_string();
        assert!(!text.is_empty(), "{value}");
    }
}

#[tokio::test]
async fn an_absurd_token_lifetime_is_clamped() {
    let fake = FakeCloud::start().await;
    fake.with(|f| f.expires_in = u64::MAX);
    let cloud = client(&fake);
    cloud.open_messaging().list().await.unwrap();
    cloud.open_messaging().list().await.unwrap();
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_token_fetch_and_its_failure() {
    let fake = FakeCloud::start().await;
    for _ in 0..50 {
        fake.force_token(Forced::new(503));
    }
    let cloud = client(&fake);
    let calls = (0..10).map(|_| {
        let cloud = cloud.clone();
        tokio::spawn(async move { cloud.open_messaging().list().await })
    });
    for call in futures_util::future::join_all(calls).await {
        let error = call.unwrap().unwrap_err();
        assert!(
            matches!(error, CloudError::Authentication(ref e) if e.status == 503),
            "{error:?}"
        );
    }
    // One fetch with its two retries, shared by all ten callers.
    assert_eq!(fake.token_requests(), 3);
}

#[tokio::test]
async fn a_token_fetch_has_an_overall_deadline() {
    // A token endpoint that accepts the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let cloud = GenesysCloud::builder()
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .api_base(format!("http://{addr}"))
        .timeout(None)
        .token_deadline(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let error = cloud.open_messaging().list().await.unwrap_err();
    assert!(matches!(error, CloudError::TokenTimeout(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_create_answered_503_is_not_sent_again() {
    let fake = FakeCloud::start().await;
    fake.force_create(Forced::new(503));
    let error = client(&fake)
        .open_messaging()
        .create(&new_integration("once"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CloudError::Api(e) if e.status == 503),
        "{error:?}"
    );
    let creates = fake
        .api_requests()
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(creates, 1, "{:?}", fake.api_requests());
    assert!(fake.with(|f| f.integrations.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn a_create_committed_behind_a_failing_gateway_is_found_by_name() {
    let fake = FakeCloud::start().await;
    fake.with(|f| f.commit_then_fail = Some(504));
    let created = client(&fake)
        .open_messaging()
        .create_checked(&new_integration("behind-a-gateway"))
        .await
        .unwrap();
    assert_eq!(created.integration.name, "behind-a-gateway");
    assert!(created.recovered_from.is_some());
    assert_eq!(fake.with(|f| f.integrations.len()), 1, "created twice");
}

#[tokio::test]
async fn a_base_url_with_userinfo_or_plain_http_is_refused_before_any_request() {
    for base in [
        "https://api.mypurecloud.ie@127.0.0.1:9",
        "http://api.mypurecloud.ie",
    ] {
        let error = GenesysCloud::builder()
            .client_credentials(CLIENT_ID, CLIENT_SECRET)
            .api_base(base)
            .build()
            .unwrap_err();
        assert!(
            matches!(error, CloudError::InvalidConfig(_)),
            "{base}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_connection_keeps_its_source() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let cloud = GenesysCloud::builder()
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .api_base(format!("http://{addr}"))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let error = cloud.open_messaging().list().await.unwrap_err();
    let CloudError::Transport(transport) = &error else {
        panic!("{error:?}")
    };
    assert!(transport.is_connect());
    assert!(std::error::Error::source(&error).is_some());
    assert!(std::error::Error::source(transport).is_some());
}

#[tokio::test]
async fn region_names_have_their_own_error() {
    let error = "mars-north-1"
        .parse::<genesys_webhook::cloud::Region>()
        .unwrap_err();
    assert!(error.to_string().contains("mars-north-1"));
}

#[tokio::test(start_paused = true)]
async fn an_unclear_create_never_adopts_an_integration_that_existed_before() {
    let fake = FakeCloud::start().await;
    // `setup` run twice: the first run made this integration, with its own secret.
    let first = client(&fake)
        .open_messaging()
        .create(&new_integration("setup-twice"))
        .await
        .unwrap();
    // The second run's create is refused by a gateway before Genesys commits it.
    fake.force_create(Forced::new(504));
    let error = client(&fake)
        .open_messaging()
        .create_checked(&new_integration("setup-twice"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CloudError::Api(e) if e.status == 504),
        "adopted {first:?} instead of failing: {error:?}"
    );
    // Committed behind the gateway this time: the new one is found, not the old.
    fake.with(|f| f.commit_then_fail = Some(504));
    let created = client(&fake)
        .open_messaging()
        .create_checked(&new_integration("setup-twice"))
        .await
        .unwrap();
    assert_ne!(created.integration.id, first.id);
    assert!(created.recovered_from.is_some());
}

/// A Genesys Cloud stand-in on a raw socket: answers the token request and every API
/// request, but closes the connection unanswered on the first `drop_tokens` token
/// requests and the first `drop_api` API requests.
async fn dropping_server(
    listener: tokio::net::TcpListener,
    drop_tokens: usize,
    drop_api: usize,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        let (mut tokens, mut api) = (0, 0);
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let line = text.lines().next().unwrap_or_default().to_owned();
            log.lock().unwrap().push(line.clone());
            let body = if line.contains("/oauth/token") {
                tokens += 1;
                if tokens <= drop_tokens {
                    continue;
                }
                r#"{"access_token":"t","token_type":"bearer","expires_in":3600}"#
            } else {
                api += 1;
                if api <= drop_api {
                    continue;
                }
                r#"{"entities":[],"pageSize":25,"pageNumber":1,"total":0,"pageCount":1}"#
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    seen
}

fn raw_client(addr: std::net::SocketAddr) -> GenesysCloud {
    GenesysCloud::builder()
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .api_base(format!("http://{addr}"))
        .retry_policy(RetryPolicy::default().backoff(Duration::from_millis(20), 2))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_get_and_a_token_request_closed_unanswered_are_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = dropping_server(listener, 1, 1).await;
    let listed = raw_client(addr).open_messaging().list().await;
    assert!(listed.is_ok(), "{listed:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|l| l.contains("/oauth/token")).count(),
        2,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("GET")).count(),
        2,
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_patch_closed_unanswered_is_not_sent_again() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = dropping_server(listener, 0, 2).await;
    let error = raw_client(addr)
        .open_messaging()
        .update(
            "00000000-0000-4000-8000-000000000001",
            &OpenMessagingIntegrationUpdate::new().webhook_url("https://hooks.example.com/new"),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, CloudError::Transport(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("the connection to Genesys Cloud was cut")
            && !text.contains("could not connect"),
        "{text}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("PATCH")).count(),
        1,
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_a_post() {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    // Nothing listens for the first attempts; then the server comes up.
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        dropping_server(listener, 0, 0).await
    });
    let created = raw_client(addr)
        .open_messaging()
        .create(&new_integration("after-a-refusal"))
        .await;
    // The stand-in answers every API request with a list, which a create cannot
    // decode: what matters is that the POST was sent once the server was up.
    let seen = server.await.unwrap().lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("POST /api")).count(),
        1,
        "{seen:?} {created:?}"
    );
}

#[cfg(feature = "openmessaging")]
mod inbound {
    use super::*;
    use genesys_webhook::cloud::{
        ButtonResponseKind, InboundEvent, InboundMessage, InboundReceipt, InboundReceiptStatus,
        InboundStructuredResponse, MediaType,
    };
    use genesys_webhook::openmessaging::{OpenMessage, ReasonCode};

    const INTEGRATION: &str = "6685f1e2-0000-4000-8000-000000000001";

    fn base() -> String {
        format!("/api/v2/conversations/messages/{INTEGRATION}/inbound/open")
    }

    #[tokio::test]
    async fn a_text_goes_to_the_message_endpoint_with_the_sdk_body() {
        let fake = FakeCloud::start().await;
        let cloud = client(&fake);
        let answer = cloud
            .inbound(INTEGRATION)
            .unwrap()
            .prefetch_conversation_id(true)
            .message(
                &InboundMessage::text("customer-42", "Hello!")
                    .nickname("Ann")
                    .message_id("provider-1"),
            )
            .await
            .unwrap();
        assert_eq!(answer.id.as_deref(), Some("genesys-1"));
        assert_eq!(answer.conversation_id.as_deref(), Some("conv-prefetched"));
        let (path, body) = fake.inbound_calls().remove(0);
        assert_eq!(
            path,
            format!("{}/message?prefetchConversationId=true", base())
        );
        assert_eq!(body["text"], "Hello!");
        assert_eq!(body["channel"]["messageId"], "provider-1");
        assert_eq!(
            body["channel"]["from"],
            serde_json::json!({"id": "customer-42", "idType": "Opaque", "nickname": "Ann"})
        );
        assert!(body["channel"]["time"].as_str().unwrap().ends_with('Z'));
        // The bearer token was checked by the fake: a call without one gets 401.
        assert_eq!(fake.token_requests(), 1);
    }

    #[tokio::test]
    async fn a_delivered_receipt_names_the_outbound_message_by_its_id() {
        let fake = FakeCloud::start().await;
        let outbound = OpenMessage::from_slice(br#"{"id":"8085","type":"Text","text":"Hi","direction":"Outbound","channel":{"platform":"Open","messageId":"provider-8085","to":{"id":"customer-42","idType":"Opaque"}}}"#).unwrap();
        let receipt =
            InboundReceipt::for_message(&outbound, InboundReceiptStatus::Delivered).unwrap();
        let mut built = serde_json::to_value(&receipt).unwrap();
        let mut one_line =
            serde_json::to_value(InboundReceipt::delivered("8085", "customer-42")).unwrap();
        built["channel"]["time"] = serde_json::Value::Null;
        one_line["channel"]["time"] = serde_json::Value::Null;
        assert_eq!(built, one_line);
        client(&fake)
            .inbound(INTEGRATION)
            .unwrap()
            .receipt(&receipt.final_receipt(true))
            .await
            .unwrap();
        let (path, body) = fake.inbound_calls().remove(0);
        assert_eq!(path, format!("{}/receipt", base()));
        assert_eq!(body["id"], "8085");
        assert_eq!(body["status"], "Delivered");
        assert_eq!(body["isFinalReceipt"], true);
        assert_eq!(body["channel"]["to"]["id"], "customer-42");
    }

    #[tokio::test]
    async fn typing_and_a_quick_reply_answer_go_to_their_endpoints() {
        let fake = FakeCloud::start().await;
        let cloud = client(&fake);
        let inbound = cloud.inbound(INTEGRATION).unwrap();
        inbound
            .event(&InboundEvent::typing_on("customer-42"))
            .await
            .unwrap();
        inbound
            .structured_response(&InboundStructuredResponse::new(
                "customer-42",
                "8085a2b4c1",
                ButtonResponseKind::QuickReply,
                "Small",
                "size-s",
            ))
            .await
            .unwrap();
        let calls = fake.inbound_calls();
        assert_eq!(calls[0].0, format!("{}/event", base()));
        assert_eq!(
            calls[0].1["events"],
            serde_json::json!([{"eventType": "Typing", "typing": {"type": "On"}}])
        );
        assert_eq!(calls[1].0, format!("{}/structured/response", base()));
        // `OpenInboundStructuredResponseMessage`: not a normalized message.
        let body = &calls[1].1;
        assert_eq!(
            body["buttonResponse"],
            serde_json::json!({"type": "QuickReply", "text": "Small", "payload": "size-s"})
        );
        assert_eq!(body["originatingMessageId"], "8085a2b4c1");
        assert_eq!(body["channel"]["from"]["id"], "customer-42");
        assert!(
            body.get("content").is_none() && body.get("text").is_none(),
            "{body}"
        );
    }

    #[tokio::test]
    async fn an_attachment_goes_as_sdk_content_with_its_message_id() {
        let fake = FakeCloud::start().await;
        let message = InboundMessage::attachment(
            "customer-42",
            "https://cdn.example.com/a.pdf",
            MediaType::File,
            "application/pdf",
        )
        .filename("a.pdf")
        .message_id("provider-7");
        client(&fake)
            .inbound(INTEGRATION)
            .unwrap()
            .message(&message)
            .await
            .unwrap();
        let (_, body) = fake.inbound_calls().remove(0);
        assert_eq!(
            body["content"],
            serde_json::json!([{"contentType": "Attachment", "attachment": {"mediaType": "File", "url": "https://cdn.example.com/a.pdf", "mime": "application/pdf", "filename": "a.pdf"}}])
        );
        assert_eq!(body["channel"]["messageId"], "provider-7");
    }

    #[test]
    fn receipt_statuses_are_the_five_genesys_accepts_in_any_case() {
        for (text, status) in [
            ("sent", InboundReceiptStatus::Sent),
            ("Delivered", InboundReceiptStatus::Delivered),
            ("FAILED", InboundReceiptStatus::Failed),
            ("published", InboundReceiptStatus::Published),
            ("Removed", InboundReceiptStatus::Removed),
        ] {
            let parsed: InboundReceiptStatus = text.parse().unwrap();
            assert_eq!(parsed, status);
            assert_eq!(
                serde_json::to_value(parsed).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        let read = "Read"
            .parse::<InboundReceiptStatus>()
            .unwrap_err()
            .to_string();
        assert!(
            read.contains("Sent, Delivered, Failed, Published, Removed"),
            "{read}"
        );
    }

    #[tokio::test]
    async fn a_failed_receipt_carries_a_typed_reason() {
        let fake = FakeCloud::start().await;
        let receipt = InboundReceipt::new("8085", "customer-42", InboundReceiptStatus::Failed)
            .reason(ReasonCode::RecipientOptedOut, "the customer opted out")
            .final_receipt(true);
        client(&fake)
            .inbound(INTEGRATION)
            .unwrap()
            .receipt(&receipt)
            .await
            .unwrap();
        let (_, body) = fake.inbound_calls().remove(0);
        assert_eq!(
            body["reasons"],
            serde_json::json!([{"code": "RecipientOptedOut", "message": "the customer opted out"}])
        );
        assert_eq!(body["isFinalReceipt"], true);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_is_retried_but_a_503_is_not_sent_again() {
        let fake = FakeCloud::start().await;
        let cloud = client(&fake);
        let inbound = cloud.inbound(INTEGRATION).unwrap();
        fake.force_api(Forced::new(429).header("retry-after", "2"));
        inbound
            .message(&InboundMessage::text("c", "after a 429"))
            .await
            .unwrap();
        assert_eq!(fake.inbound_calls().len(), 1);
        fake.force_api(Forced::new(503));
        let error = inbound
            .message(&InboundMessage::text("c", "after a 503"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, CloudError::Api(e) if e.status == 503),
            "{error:?}"
        );
        let posts = fake
            .api_requests()
            .iter()
            .filter(|r| r.contains("/inbound/open/message"))
            .count();
        assert_eq!(posts, 3, "{:?}", fake.api_requests());
    }

    #[test]
    fn an_integration_id_that_is_not_an_id_is_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let cloud = GenesysCloud::builder()
            .client_credentials(CLIENT_ID, CLIENT_SECRET)
            .api_base("https://api.mypurecloud.ie")
            .build()
            .unwrap();
        for bad in ["", "../integrations", "a/b", "a?b"] {
            assert!(
                matches!(cloud.inbound(bad), Err(CloudError::InvalidConfig(_))),
                "{bad}"
            );
        }
    }
}

/// Receipts are a durable step of their own: what Genesys answers to a receipt never
/// runs the application's handler again, nor holds one of its slots.
#[cfg(feature = "openmessaging")]
mod receipts {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;
    use genesys_webhook::cloud::{DeliveredReceipts, ReceiptSender};
    use genesys_webhook::inbox::{
        Delivery, InboxAdmin, InboxLimits, ListFilter, MemoryInbox, Worker,
    };

    use crate::common::eventually;

    const INTEGRATION: &str = "6685f1e2-0000-4000-8000-000000000001";

    fn outbound(n: usize) -> Bytes {
        Bytes::from(format!(
            r#"{{"id":"out-{n}","type":"Text","text":"Hi","direction":"Outbound","channel":{{"platform":"Open","to":{{"id":"customer-{n}","idType":"Opaque"}}}}}}"#
        ))
    }

    fn receipt_posts(fake: &FakeCloud) -> usize {
        fake.api_requests()
            .iter()
            .filter(|r| r.ends_with("/receipt"))
            .count()
    }

    struct Running {
        events: Arc<dyn InboxAdmin>,
        receipts: Arc<dyn InboxAdmin>,
        runs: Arc<AtomicUsize>,
        workers: Vec<genesys_webhook::inbox::WorkerHandle>,
    }

    impl Running {
        /// Shuts both workers down.
        async fn stop(&mut self) {
            for worker in self.workers.drain(..) {
                worker.shutdown().await;
            }
        }
    }

    /// An event worker whose handler counts its runs, and a receipt worker sending
    /// through the fake; both with 3 attempts and millisecond backoffs.
    fn start(fake: &FakeCloud, slots: usize) -> Running {
        let events: Arc<dyn InboxAdmin> =
            Arc::new(MemoryInbox::new().limits(InboxLimits::default().max_attempts(3)));
        let receipts: Arc<dyn InboxAdmin> =
            Arc::new(MemoryInbox::new().limits(InboxLimits::default().max_attempts(3)));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let handler = tower::service_fn(move |_: Delivery| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(()) }
        });
        let backoff = (Duration::from_millis(1), Duration::from_millis(5));
        let workers = vec![
            Worker::builder(Arc::clone(&events))
                .concurrency(slots)
                .backoff(backoff.0, backoff.1)
                .build(DeliveredReceipts::new(handler, receipts.clone()))
                .spawn(),
            Worker::builder(Arc::clone(&receipts))
                .backoff(backoff.0, backoff.1)
                .build(ReceiptSender::new(client(fake), INTEGRATION))
                .spawn(),
        ];
        Running {
            events,
            receipts,
            runs,
            workers,
        }
    }

    #[tokio::test]
    async fn a_failing_receipt_never_runs_the_handler_again() {
        let fake = FakeCloud::start().await;
        for _ in 0..3 {
            fake.force_api(
                Forced::new(500).body(r#"{"message":"boom","code":"internal.server.error"}"#),
            );
        }
        let mut running = start(&fake, 4);
        running.events.append(outbound(1)).await.unwrap();
        let receipts = Arc::clone(&running.receipts);
        eventually("the receipt is dead-lettered", async || {
            receipts.stats().await.unwrap().dead == 1
        })
        .await;
        running.stop().await;
        assert_eq!(
            running.runs.load(Ordering::SeqCst),
            1,
            "the handler ran once"
        );
        let stats = running.events.stats().await.unwrap();
        assert_eq!((stats.pending, stats.in_flight, stats.dead), (0, 0, 0));
        assert_eq!(receipt_posts(&fake), 3, "three attempts of the receipt");
        let dead = running.receipts.list(ListFilter::Dead, 1).await.unwrap();
        assert!(
            dead[0].last_error.as_deref().unwrap().contains("500"),
            "{dead:?}"
        );
    }

    #[tokio::test]
    async fn a_retry_after_above_the_cap_dead_letters_the_receipt_at_once() {
        let fake = FakeCloud::start().await;
        fake.force_api(Forced::new(429).header("retry-after", "1000000000"));
        let mut running = start(&fake, 4);
        running.events.append(outbound(1)).await.unwrap();
        let receipts = Arc::clone(&running.receipts);
        eventually("the receipt is dead-lettered", async || {
            receipts.stats().await.unwrap().dead == 1
        })
        .await;
        running.stop().await;
        assert_eq!(receipt_posts(&fake), 1, "not retried");
        assert_eq!(running.runs.load(Ordering::SeqCst), 1);
        let dead = running.receipts.list(ListFilter::Dead, 1).await.unwrap();
        let reason = dead[0].last_error.clone().unwrap();
        assert!(
            reason.contains("1000000000 s") && reason.contains("180 s cap"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_rate_limited_receipt_waits_in_its_inbox_not_in_a_handler_slot() {
        let fake = FakeCloud::start().await;
        fake.force_api(Forced::new(429).header("retry-after", "20"));
        let mut running = start(&fake, 1);
        running.events.append(outbound(0)).await.unwrap();
        let receipts = Arc::clone(&running.receipts);
        eventually("the receipt is scheduled", async || {
            receipts
                .list(ListFilter::Live, 1)
                .await
                .unwrap()
                .first()
                .is_some_and(|r| r.last_error.is_some())
        })
        .await;
        // Fifty unrelated events through the one handler slot, while the receipt waits.
        for n in 1..=50 {
            running.events.append(outbound(n)).await.unwrap();
        }
        let events = Arc::clone(&running.events);
        eventually("the other events are processed", async || {
            let stats = events.stats().await.unwrap();
            stats.pending + stats.in_flight == 0
        })
        .await;
        assert_eq!(running.runs.load(Ordering::SeqCst), 51);
        let waiting = running.receipts.list(ListFilter::Live, 100).await.unwrap();
        let first = waiting
            .iter()
            .find(|r| r.last_error.is_some())
            .expect("the rate-limited receipt is still waiting");
        assert!(
            first
                .last_error
                .as_deref()
                .unwrap()
                .contains("retry in 20 s"),
            "{first:?}"
        );
        assert_eq!(running.receipts.stats().await.unwrap().dead, 0);
        running.stop().await;
    }

    #[tokio::test]
    async fn structured_messages_get_a_delivered_receipt_too() {
        let fake = FakeCloud::start().await;
        let mut running = start(&fake, 4);
        running
            .events
            .append(Bytes::from_static(br#"{"id":"s-1","type":"Structured","direction":"Outbound","content":[],"channel":{"platform":"Open","to":{"id":"customer-9","idType":"Opaque"}}}"#))
            .await
            .unwrap();
        eventually("the receipt is sent", async || {
            !fake.inbound_calls().is_empty()
        })
        .await;
        running.stop().await;
        let (_, body) = fake.inbound_calls().remove(0);
        assert_eq!(
            (body["id"].as_str(), body["status"].as_str()),
            (Some("s-1"), Some("Delivered"))
        );
    }
}

#[tokio::test]
async fn a_refused_connection_says_nothing_was_sent() {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let error = GenesysCloud::builder()
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .api_base(format!("http://{addr}"))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
        .open_messaging()
        .list()
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("could not connect to Genesys Cloud (nothing was sent)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_bot_connector_reply_is_posted_to_the_outgoing_messages_api() {
    use genesys_webhook::botconnector::{
        ErrorInfo, InputMessage, QuickReply, TurnRequest, TurnResponse,
    };
    use genesys_webhook::cloud::OutgoingMessage;
    let fake = FakeCloud::start().await;
    let cloud = client(&fake);
    let turn = TurnRequest::new("demo-bot", "session-1", InputMessage::text("menu"))
        .bot_version("1")
        .language_code("en-us");
    let answer =
        TurnResponse::more_data().quick_replies("Pick", [QuickReply::new("Sales", "sales")]);
    let id = cloud
        .bot_connector()
        .send(&OutgoingMessage::reply_to(&turn, answer))
        .await
        .unwrap();
    assert_eq!(id.as_deref(), Some("bot-message-1"));
    let failed = TurnResponse::failed(ErrorInfo::new("Down", "backend down"));
    cloud
        .bot_connector()
        .send(&OutgoingMessage::reply_to(&turn, failed))
        .await
        .unwrap();
    let sent = fake.with(|f| f.bot_messages.clone());
    assert_eq!(sent[0]["botSessionId"], "session-1");
    assert_eq!(sent[0]["botId"], "demo-bot");
    assert_eq!(sent[0]["botState"], "MoreData");
    assert_eq!(
        sent[0]["replyMessages"][0]["content"][0]["quickReply"]["payload"],
        "sales"
    );
    assert_eq!(
        sent[1]["errorInfo"],
        serde_json::json!({"code": "Down", "message": "backend down"})
    );
    assert_eq!(
        fake.api_requests(),
        ["POST botconnector outgoing", "POST botconnector outgoing"]
    );
}
