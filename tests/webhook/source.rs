//! The source-address allowlist in front of the webhook layer and the Bot Connector
//! router, on real sockets; Genesys' ranges kept fresh from a fake Platform API.

use crate::common::fake_cloud::{FakeCloud, CLIENT_ID, CLIENT_SECRET};
use crate::common::*;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use genesys_webhook::botconnector::{
    Bot, BotConnectorRouter, BotCredentialsLayer, BotHandler, BotVersion, TurnRequest, TurnResponse,
};
use genesys_webhook::cloud::GenesysCloud;
use genesys_webhook::signature::Scheme;
use genesys_webhook::source::{
    ForwardedHeader, GenesysRanges, SourceAllowlistLayer, SourceConfigError, SourceRanges,
};
use genesys_webhook::GenesysSignatureLayer;

const SECRET: &str = "webhook-s3cret";
const BODY: &[u8] = br#"{"id":"1","type":"Text","text":"hi"}"#;

fn ranges(text: &str) -> SourceRanges {
    text.parse().unwrap()
}

/// The signed webhook behind `allowlist`, with the peer's address in the extensions.
async fn webhook_behind(allowlist: SourceAllowlistLayer) -> SocketAddr {
    let app = Router::new()
        .route("/webhook", post(|body: String| async move { body }))
        .layer(
            GenesysSignatureLayer::builder()
                .secret(SECRET)
                .build()
                .unwrap(),
        )
        .layer(allowlist);
    serve_axum_with_peer(app).await
}

async fn signed_post(addr: SocketAddr, extra: &[(&str, &str)]) -> RawResponse {
    let signature = Scheme::OpenMessaging.sign(SECRET, BODY);
    let mut headers = vec![("X-Hub-Signature-256", signature.as_str())];
    headers.extend_from_slice(extra);
    post_bytes(addr, "/webhook", &headers, BODY).await
}

#[tokio::test]
async fn admits_a_loopback_range_and_refuses_any_other_with_403_before_the_body() {
    let admitted = webhook_behind(SourceAllowlistLayer::new(ranges("127.0.0.0/8")).unwrap()).await;
    let answer = signed_post(admitted, &[]).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, BODY));

    let layer = SourceAllowlistLayer::new(ranges("10.0.0.0/8, ::1/128")).unwrap();
    let refused = webhook_behind(layer.clone()).await;
    let answer = signed_post(refused, &[]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.json(),
        serde_json::json!({"error": "source_not_allowed"})
    );
    // A body announced and never sent: refused from the head alone.
    let answer = exchange(refused, &head("/webhook", &[], "Content-Length: 50000\r\n")).await;
    assert_eq!(answer.status, 403);
    assert_eq!(layer.refused(), 2);
}

#[tokio::test]
async fn behind_a_trusted_proxy_believes_only_what_the_proxy_appended() {
    let layer = SourceAllowlistLayer::builder()
        .ranges(ranges("52.4.0.0/14"))
        .trusted_proxies(ranges("127.0.0.1"))
        .build()
        .unwrap();
    let addr = webhook_behind(layer).await;
    for (forwarded_for, status) in [
        (Some("52.4.0.1"), 200),
        (Some("198.51.100.1, 52.4.0.1"), 200),
        // The client claims Genesys' address; the proxy appended the real one.
        (Some("52.4.0.1, 198.51.100.1"), 403),
        (Some("not-an-address"), 403),
        // The proxy itself is not Genesys.
        (None, 403),
    ] {
        let headers: Vec<(&str, &str)> = forwarded_for
            .map(|f| vec![("X-Forwarded-For", f)])
            .unwrap_or_default();
        assert_eq!(
            signed_post(addr, &headers).await.status,
            status,
            "{forwarded_for:?}"
        );
    }
    // RFC 7239 when told so; X-Forwarded-For is then just a client's claim.
    let layer = SourceAllowlistLayer::builder()
        .ranges(ranges("52.4.0.0/14"))
        .trusted_proxies(ranges("127.0.0.1"))
        .forwarded_header(ForwardedHeader::Forwarded)
        .build()
        .unwrap();
    let addr = webhook_behind(layer).await;
    assert_eq!(
        signed_post(addr, &[("Forwarded", "for=52.4.0.1;proto=https")])
            .await
            .status,
        200
    );
    assert_eq!(
        signed_post(addr, &[("X-Forwarded-For", "52.4.0.1")])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_forwarding_header_from_an_untrusted_peer_is_ignored() {
    let layer = SourceAllowlistLayer::new(ranges("52.4.0.0/14")).unwrap();
    let addr = webhook_behind(layer).await;
    let answer = signed_post(
        addr,
        &[
            ("X-Forwarded-For", "52.4.0.1"),
            ("Forwarded", "for=52.4.0.1"),
        ],
    )
    .await;
    assert_eq!(answer.status, 403);
}

#[tokio::test]
async fn without_the_peers_address_it_refuses_and_logs_the_wiring_mistake_once() {
    let logs = CapturedLogs::start();
    let app = Router::new()
        .route("/webhook", post(|| async { "ok" }))
        .layer(SourceAllowlistLayer::new(ranges("0.0.0.0/0, ::/0")).unwrap());
    // axum::serve without ConnectInfo: no address in the extensions.
    let addr = serve_axum(app).await;
    for _ in 0..3 {
        assert_eq!(post_bytes(addr, "/webhook", &[], b"{}").await.status, 403);
    }
    assert_eq!(logs.count("ERROR", "cannot see the peer's address"), 1);
}

#[tokio::test]
async fn new_ranges_apply_to_the_services_already_running() {
    let layer = SourceAllowlistLayer::new(ranges("10.0.0.0/8")).unwrap();
    let addr = webhook_behind(layer.clone()).await;
    assert_eq!(signed_post(addr, &[]).await.status, 403);
    layer.replace_ranges(ranges("127.0.0.1/32"));
    assert_eq!(signed_post(addr, &[]).await.status, 200);
}

#[test]
fn refuses_to_start_with_no_range_unless_told_to() {
    let error = SourceAllowlistLayer::new(SourceRanges::default()).unwrap_err();
    assert_eq!(error, SourceConfigError::Empty);
    assert!(error.to_string().contains("allow_empty"));
    let layer = SourceAllowlistLayer::builder()
        .allow_empty(true)
        .build()
        .unwrap();
    assert!(layer.ranges().is_empty());
}

struct Echo;

impl BotHandler for Echo {
    fn bots(&self) -> Vec<Bot> {
        vec![Bot::new("b", "B").version(BotVersion::new("1", ["en-us"], ["Done"]))]
    }
    async fn turn(&self, _: TurnRequest) -> TurnResponse {
        TurnResponse::more_data().text("ok")
    }
}

#[tokio::test]
async fn works_in_front_of_the_bot_connector_router() {
    let credentials = BotCredentialsLayer::new("X-Secret", "s").unwrap();
    let bot = BotConnectorRouter::new(Echo, credentials)
        .into_router()
        .unwrap();
    for (allowed, status) in [("127.0.0.0/8", 200), ("10.0.0.0/8", 403)] {
        let app = Router::new()
            .nest("/bot", bot.clone())
            .layer(SourceAllowlistLayer::new(ranges(allowed)).unwrap());
        let addr = serve_axum_with_peer(app).await;
        let answer = get(addr, "/bot/bots", &[("X-Secret", "s")]).await;
        assert_eq!(answer.status, status, "{allowed}");
    }
}

fn cloud(fake: &FakeCloud) -> GenesysCloud {
    GenesysCloud::builder()
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .api_base(fake.base())
        .build()
        .unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test]
async fn fetches_the_services_outbound_ranges_and_keeps_the_last_good_list_when_a_refresh_fails() {
    let logs = CapturedLogs::start();
    let fake = FakeCloud::start().await;
    fake.set_ip_ranges(&[
        ("127.0.0.0/8", "open-messaging", "outbound"),
        ("192.0.2.0/24", "open-messaging", "both"),
        ("198.51.100.0/24", "open-messaging", "inbound"),
        ("203.0.113.0/24", "audiohook", "outbound"),
    ]);
    let genesys = GenesysRanges::new(cloud(&fake), ["open-messaging"]);
    let fetched = genesys.fetch().await.unwrap();
    assert!(fetched.contains(ip("127.0.0.1")) && fetched.contains(ip("192.0.2.9")));
    assert!(
        !fetched.contains(ip("198.51.100.1")),
        "inbound ranges are not Genesys calling"
    );
    assert!(!fetched.contains(ip("203.0.113.1")), "another service's");
    let layer = SourceAllowlistLayer::new(fetched).unwrap();
    let addr = webhook_behind(layer.clone()).await;
    let refresh = genesys.keep_fresh(&layer, Duration::from_millis(50));

    // Genesys' API fails (a permission taken away): the list stays, one WARN.
    fake.with(|f| f.ip_ranges_failing = Some(403));
    let failures_before = fake.api_requests().len();
    eventually("three failed refreshes", async || {
        fake.api_requests().len() >= failures_before + 3
    })
    .await;
    assert_eq!(signed_post(addr, &[]).await.status, 200);
    assert_eq!(logs.count("WARN", "source ranges refresh failed"), 1);

    // An empty list is a failure too: the old one stays.
    fake.with(|f| f.ip_ranges_failing = None);
    fake.set_ip_ranges(&[]);
    let before = fake.api_requests().len();
    eventually("two more refreshes", async || {
        fake.api_requests().len() >= before + 2
    })
    .await;
    assert_eq!(signed_post(addr, &[]).await.status, 200);

    // New ranges are taken as soon as the API answers again.
    fake.set_ip_ranges(&[("10.0.0.0/8", "open-messaging", "outbound")]);
    eventually("the new ranges", async || {
        layer.ranges().contains(ip("10.1.2.3"))
    })
    .await;
    assert_eq!(signed_post(addr, &[]).await.status, 403);
    assert_eq!(logs.count("INFO", "source ranges refreshed again"), 1);

    refresh.abort();
}

#[tokio::test]
async fn the_refresh_ends_when_the_layer_and_its_services_are_gone() {
    let fake = FakeCloud::start().await;
    fake.set_ip_ranges(&[("127.0.0.0/8", "audiohook", "outbound")]);
    let genesys = GenesysRanges::new(cloud(&fake), ["audiohook"]);
    let layer = SourceAllowlistLayer::new(genesys.fetch().await.unwrap()).unwrap();
    let service = tower::Layer::layer(
        &layer,
        tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }),
    );
    let refresh = genesys.keep_fresh(&layer, Duration::from_millis(20));
    drop(layer);
    let before = fake.api_requests().len();
    eventually("a refresh while a service lives", async || {
        fake.api_requests().len() > before
    })
    .await;
    assert!(!refresh.is_finished());
    drop(service);
    tokio::time::timeout(Duration::from_secs(5), refresh)
        .await
        .unwrap()
        .unwrap();
}
