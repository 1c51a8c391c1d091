//! The Digital Bot Connector router and its credential layer, on a real socket.

use crate::common::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use genesys_webhook::botconnector::{
    Bot, BotConnectorRouter, BotCredentialsLayer, BotHandler, BotVersion, Currency, Entity,
    EntityValue, TurnRequest, TurnResponse, MAX_INTENTS,
};

const HEADER: &str = "X-Bot-Connector-Secret";
const SECRET: &str = "bot-s3cret-value";

/// A bot whose answer depends on the text it gets.
#[derive(Clone, Default)]
struct TestBot {
    turns: Arc<AtomicUsize>,
}

impl BotHandler for TestBot {
    fn bots(&self) -> Vec<Bot> {
        vec![Bot::new("test-bot", "Test bot").version(BotVersion::new(
            "1",
            ["en-us"],
            ["Order", "Goodbye"],
        ))]
    }

    async fn turn(&self, turn: TurnRequest) -> TurnResponse {
        self.turns.fetch_add(1, Ordering::SeqCst);
        match turn.text().unwrap_or_default() {
            "slow" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                TurnResponse::more_data().text("too late")
            }
            "panic" => panic!("the test bot panics"),
            "undeclared" => TurnResponse::complete("Refund"),
            "sure" => TurnResponse::complete("Order").confidence(1.5),
            "order" => TurnResponse::complete("Order")
                .confidence(0.9)
                .entity(Entity::new("size", EntityValue::Integer(12)))
                .entity(Entity::new(
                    "price",
                    EntityValue::Currency(Currency::new(3.49, "USD")),
                ))
                .parameter(
                    "tier",
                    turn.parameters.get("tier").cloned().unwrap_or_default(),
                ),
            other => TurnResponse::more_data().text(format!(
                "{other} ({})",
                turn.extra
                    .get("futureField")
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            )),
        }
    }
}

async fn start(
    bot: TestBot,
    credentials: BotCredentialsLayer,
    deadline: Duration,
) -> std::net::SocketAddr {
    let router = BotConnectorRouter::new(bot, credentials)
        .turn_deadline(deadline)
        .into_router()
        .unwrap();
    serve_axum(Router::new().nest("/botconnector", router)).await
}

fn credentials() -> BotCredentialsLayer {
    BotCredentialsLayer::new(HEADER, SECRET).unwrap()
}

fn turn_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "botId": "test-bot", "botVersion": "1", "botSessionId": "s-1", "messageId": "m-1",
        "inputMessage": {"type": "Text", "text": text}, "languageCode": "en-us",
        "botSessionTimeout": 60, "genesysConversationId": "c-1",
        "parameters": {"tier": "gold"}, "futureField": 7
    }))
    .unwrap()
}

async fn turn(addr: std::net::SocketAddr, text: &str) -> RawResponse {
    post_bytes(
        addr,
        "/botconnector/messages",
        &[(HEADER, SECRET), ("Content-Type", "application/json")],
        &turn_body(text),
    )
    .await
}

#[tokio::test]
async fn lists_its_bots_and_answers_404_for_an_unknown_one() {
    let addr = start(TestBot::default(), credentials(), Duration::from_secs(5)).await;
    let all = get(addr, "/botconnector/bots", &[(HEADER, SECRET)]).await;
    assert_eq!(all.status, 200);
    let all = all.json();
    assert_eq!(all["entities"][0]["id"], "test-bot");
    assert_eq!(
        all["entities"][0]["versions"][0]["intents"][1]["name"],
        "Goodbye"
    );
    assert_eq!(
        all["entities"][0]["versions"][0]["supportedLanguages"][0],
        "en-us"
    );
    let one = get(addr, "/botconnector/bots/test-bot", &[(HEADER, SECRET)]).await;
    assert_eq!(
        (one.status, one.json()["name"].clone()),
        (200, "Test bot".into())
    );
    let none = get(addr, "/botconnector/bots/nobody", &[(HEADER, SECRET)]).await;
    assert_eq!(none.status, 404);
    assert_eq!(none.json()["error"], "unknown_bot");
}

#[tokio::test]
async fn answers_a_turn_with_typed_entities_parameters_and_the_fields_it_did_not_know() {
    let addr = start(TestBot::default(), credentials(), Duration::from_secs(5)).await;
    let answer = turn(addr, "order").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let json = answer.json();
    assert_eq!(json["botState"], "Complete");
    assert_eq!(json["intent"], "Order");
    assert_eq!(
        json["entities"][0],
        serde_json::json!({"name":"size","type":"Integer","value":"12"})
    );
    assert_eq!(
        json["entities"][1]["value"],
        r#"{"amount":3.49,"code":"USD"}"#
    );
    assert_eq!(json["parameters"]["tier"], "gold");
    let echo = turn(addr, "hello").await.json();
    assert_eq!(echo["botState"], "MoreData");
    assert_eq!(echo["replyMessages"][0]["text"], "hello (7)");
}

#[tokio::test]
async fn refuses_missing_wrong_and_repeated_credentials_with_401_before_reading_the_body() {
    let logs = CapturedLogs::start();
    let bot = TestBot::default();
    let layer = credentials();
    let addr = start(bot.clone(), layer.clone(), Duration::from_secs(5)).await;
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[(HEADER, "bot-s3cret-valuE")],
        &[(HEADER, "bot-s3cret-value-and-more")],
        &[(HEADER, SECRET), (HEADER, SECRET)],
    ];
    for headers in cases {
        // A body announced but never sent: the answer cannot wait for it.
        let request = head(
            "/botconnector/messages",
            headers,
            "Content-Length: 100000\r\n",
        );
        let started = Instant::now();
        let refused = exchange(addr, &request).await;
        assert_eq!(refused.status, 401, "{headers:?}");
        assert_eq!(
            refused.json(),
            serde_json::json!({"error": "invalid_credentials"})
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let listing = get(addr, "/botconnector/bots", &[]).await;
    assert_eq!(listing.status, 401);
    assert_eq!(layer.refused(), 5);
    assert_eq!(bot.turns.load(Ordering::SeqCst), 0);
    let logged = logs.lines().join("\n");
    assert!(!logged.contains("bot-s3cret"), "{logged}");
    assert!(
        logged.contains("missing") && logged.contains("wrong value") && logged.contains("repeated"),
        "{logged}"
    );
}

#[tokio::test]
async fn requires_every_configured_header_and_accepts_either_value_while_rotating() {
    let layer = BotCredentialsLayer::builder()
        .header(HEADER, "new-secret")
        .header(HEADER, "old-secret")
        .header("X-Tenant", "acme")
        .build()
        .unwrap();
    let addr = start(TestBot::default(), layer, Duration::from_secs(5)).await;
    for (secret, tenant, status) in [
        ("new-secret", Some("acme"), 200),
        ("old-secret", Some("acme"), 200),
        ("new-secret", None, 401),
        ("new-secret", Some("other"), 401),
        ("older-secret", Some("acme"), 401),
    ] {
        let mut headers = vec![(HEADER, secret)];
        headers.extend(tenant.map(|t| ("X-Tenant", t)));
        let answer = get(addr, "/botconnector/bots", &headers).await;
        assert_eq!(answer.status, status, "{secret} {tenant:?}");
    }
}

#[tokio::test]
async fn a_bot_slower_than_the_deadline_is_answered_failed_in_time() {
    let addr = start(
        TestBot::default(),
        credentials(),
        Duration::from_millis(300),
    )
    .await;
    let started = Instant::now();
    let answer = turn(addr, "slow").await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200);
    let json = answer.json();
    assert_eq!(json["botState"], "Failed");
    assert_eq!(json["errorInfo"]["errorCode"], "BotTimeout");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn the_default_deadline_is_below_architects_thirty_seconds() {
    assert!(genesys_webhook::botconnector::DEFAULT_TURN_DEADLINE < Duration::from_secs(30));
    assert_eq!(
        genesys_webhook::botconnector::DEFAULT_TURN_BODY_LIMIT,
        256 * 1024
    );
}

#[tokio::test]
async fn answers_failed_for_a_panic_an_undeclared_intent_and_a_confidence_above_one() {
    let addr = start(TestBot::default(), credentials(), Duration::from_secs(5)).await;
    for (text, code) in [
        ("panic", "BotError"),
        ("undeclared", "UndeclaredIntent"),
        ("sure", "InvalidAnswer"),
    ] {
        let answer = turn(addr, text).await;
        assert_eq!(answer.status, 200, "{text}");
        let json = answer.json();
        assert_eq!(json["botState"], "Failed", "{text}: {json}");
        assert_eq!(json["errorInfo"]["errorCode"], code, "{text}: {json}");
        assert!(json.get("intent").is_none(), "{json}");
    }
    // The server is still answering after the panic.
    assert_eq!(turn(addr, "hi").await.status, 200);
}

#[tokio::test]
async fn a_malformed_turn_gets_400_with_the_reason_and_an_unknown_bot_404() {
    let addr = start(TestBot::default(), credentials(), Duration::from_secs(5)).await;
    let headers = [(HEADER, SECRET), ("Content-Type", "application/json")];
    for (body, reason) in [
        (&b"not json"[..], "expected"),
        (
            br#"{"botSessionId":"s","inputMessage":{"type":"Text","text":"x"}}"#,
            "botId",
        ),
        (
            br#"{"botId":"test-bot","botSessionId":"s","inputMessage":{"type":"Text","text":5}}"#,
            "string",
        ),
        (b"[]", "expected"),
    ] {
        let answer = post_bytes(addr, "/botconnector/messages", &headers, body).await;
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(body));
        let json = answer.json();
        assert_eq!(json["error"], "invalid_turn");
        assert!(json["reason"].as_str().unwrap().contains(reason), "{json}");
    }
    let unknown =
        br#"{"botId":"ghost","botSessionId":"s","inputMessage":{"type":"Text","text":"x"}}"#;
    let answer = post_bytes(addr, "/botconnector/messages", &headers, unknown).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"], "unknown_bot");
}

#[tokio::test]
async fn a_turn_over_the_body_limit_gets_413() {
    let addr = start(TestBot::default(), credentials(), Duration::from_secs(5)).await;
    let big = format!(
        r#"{{"botId":"test-bot","botSessionId":"s","inputMessage":{{"type":"Text","text":"{}"}}}}"#,
        "a".repeat(300 * 1024)
    );
    let headers = [(HEADER, SECRET), ("Content-Type", "application/json")];
    let answer = post_bytes(addr, "/botconnector/messages", &headers, big.as_bytes()).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["error"], "payload_too_large");
    let chunks: Vec<&[u8]> = big.as_bytes().chunks(64 * 1024).collect();
    let chunked = post_chunked(addr, "/botconnector/messages", &headers, &chunks).await;
    assert_eq!(chunked.status, 413);
}

#[test]
fn refuses_to_serve_a_bot_with_more_than_fifty_intents_or_two_bots_with_one_id() {
    struct Many(Vec<Bot>);
    impl BotHandler for Many {
        fn bots(&self) -> Vec<Bot> {
            self.0.clone()
        }
        async fn turn(&self, _: TurnRequest) -> TurnResponse {
            TurnResponse::more_data()
        }
    }
    let intents: Vec<String> = (0..=MAX_INTENTS).map(|i| format!("I{i}")).collect();
    let too_many = Bot::new("b", "B").version(BotVersion::new("1", ["en-us"], intents));
    let error = BotConnectorRouter::new(Many(vec![too_many]), credentials())
        .into_router::<()>()
        .unwrap_err();
    assert!(error.to_string().contains("more than the 50"), "{error}");
    let one = Bot::new("b", "B").version(BotVersion::new("1", ["en-us"], ["A"]));
    let error = BotConnectorRouter::new(Many(vec![one.clone(), one]), credentials())
        .into_router::<()>()
        .unwrap_err();
    assert!(error.to_string().contains("two bots"), "{error}");
}
