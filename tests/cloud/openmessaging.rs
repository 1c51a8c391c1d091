//! Open Messaging messages: real samples parse, keep what they do not know and
//! round-trip; the axum extractor behind the signature layer.

use crate::common;

use axum::routing::post;
use axum::Router;
use common::*;
use genesys_webhook::openmessaging::{
    ContentType, Direction, EventType, IdType, MessageType, OpenMessage, OriginatingEntity,
    ReceiptStatus, TypingType,
};
use genesys_webhook::signature::sign_open_messaging;
use genesys_webhook::GenesysSignatureLayer;
use serde_json::Value;

/// The outbound message of genesys-facts §2, as Genesys sends it.
const TEXT: &str = r#"{"id":"8085a2b4c1","channel":{"id":"6685f1e2","platform":"Open","type":"Private","to":{"id":"33633081329","idType":"Opaque"},"from":{"nickname":"Sinch Messaging","id":"6685f1e2","idType":"Opaque"},"time":"2026-03-25T13:20:05.493Z","messageId":"8085a2b4c1"},"type":"Text","text":"Hello","originatingEntity":"Human","direction":"Outbound","conversationId":"1734c9d0"}"#;
const TYPING: &str = r#"{"id":"5f2d","channel":{"id":"6685f1e2","platform":"Open","type":"Private","to":{"id":"33633081329","idType":"Opaque"},"from":{"nickname":"Sinch Messaging","id":"6685f1e2","idType":"Opaque"},"time":"2026-03-25T13:20:07.000Z"},"type":"Event","events":[{"eventType":"Typing","typing":{"type":"On","duration":5000}}],"direction":"Outbound","conversationId":"1734c9d0"}"#;
const RECEIPT: &str = r#"{"id":"8085a2b4c1","channel":{"id":"6685f1e2","platform":"Open","type":"Private","to":{"id":"33633081329","idType":"Opaque"},"time":"2026-03-25T13:20:06.120Z","messageId":"8085a2b4c1"},"type":"Receipt","status":"Failed","reasons":[{"code":"MessageExpired","message":"too late"}],"isFinalReceipt":true,"direction":"Outbound","conversationId":"1734c9d0"}"#;
const QUICK_REPLIES: &str = r#"{"id":"91aa","channel":{"id":"6685f1e2","platform":"Open","type":"Private","to":{"id":"33633081329","idType":"Opaque"},"from":{"nickname":"Bot","id":"6685f1e2","idType":"Opaque"},"time":"2026-03-25T13:21:00.000Z","messageId":"91aa"},"type":"Structured","text":"Which size?","content":[{"contentType":"QuickReply","quickReply":{"text":"Small","payload":"size-s","action":"Message"}},{"contentType":"QuickReply","quickReply":{"text":"Large","payload":"size-l","action":"Message"}}],"originatingEntity":"Bot","direction":"Outbound","conversationId":"1734c9d0"}"#;
const CARDS: &str = r#"{"id":"77","type":"Structured","direction":"Outbound","content":[{"contentType":"Carousel","carousel":{"cards":[{"title":"A","description":"first","image":"https://img.example/a.png","actions":[{"type":"Postback","text":"Pick A","payload":"a"},{"type":"Link","text":"More","url":"https://example.com/a"}]}]}},{"contentType":"Attachment","attachment":{"mediaType":"Image","url":"https://img.example/b.png","mime":"image/png","filename":"b.png"}},{"contentType":"Notification","template":{"id":"tpl-1","language":"en","body":{"text":"Hi {{1}}","parameters":[{"name":"1","text":"Ann"}]}}}]}"#;

fn round_trips(sample: &str) -> OpenMessage {
    let message: OpenMessage = serde_json::from_str(sample).unwrap();
    let written = serde_json::to_value(&message).unwrap();
    let original: Value = serde_json::from_str(sample).unwrap();
    assert_eq!(written, original, "{sample}");
    message
}

#[test]
fn an_outbound_text_parses_and_round_trips() {
    let message = round_trips(TEXT);
    assert_eq!(message.kind, MessageType::Text);
    assert_eq!(message.text.as_deref(), Some("Hello"));
    assert_eq!(message.direction, Some(Direction::Outbound));
    assert_eq!(message.originating_entity, Some(OriginatingEntity::Human));
    assert_eq!(message.message_id(), Some("8085a2b4c1"));
    let channel = message.channel.unwrap();
    assert_eq!(channel.to.unwrap().id_type, Some(IdType::Opaque));
    assert_eq!(
        channel.from.unwrap().nickname.as_deref(),
        Some("Sinch Messaging")
    );
}

#[test]
fn a_typing_event_parses_and_round_trips() {
    let message = round_trips(TYPING);
    assert_eq!(message.kind, MessageType::Event);
    let events = message.events.unwrap();
    assert_eq!(events[0].event_type, EventType::Typing);
    let typing = events[0].typing.as_ref().unwrap();
    assert_eq!(
        (&typing.kind, typing.duration),
        (&TypingType::On, Some(5000))
    );
}

#[test]
fn a_receipt_parses_and_round_trips() {
    let message = round_trips(RECEIPT);
    assert_eq!(message.kind, MessageType::Receipt);
    assert_eq!(message.status, Some(ReceiptStatus::Failed));
    assert_eq!(message.is_final_receipt, Some(true));
    assert_eq!(
        message.reasons.unwrap()[0].code,
        Some(genesys_webhook::openmessaging::ReasonCode::MessageExpired)
    );
}

#[test]
fn a_structured_message_with_quick_replies_parses_and_round_trips() {
    let message = round_trips(QUICK_REPLIES);
    assert_eq!(message.kind, MessageType::Structured);
    let content = message.content.unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0].content_type, ContentType::QuickReply);
    assert_eq!(
        content[1].quick_reply.as_ref().unwrap().payload.as_deref(),
        Some("size-l")
    );
}

#[test]
fn cards_carousels_attachments_and_templates_parse_and_round_trip() {
    let message = round_trips(CARDS);
    let content = message.content.unwrap();
    let cards = &content[0].carousel.as_ref().unwrap().cards;
    assert_eq!(
        cards[0].actions.as_ref().unwrap()[1].url.as_deref(),
        Some("https://example.com/a")
    );
    assert_eq!(
        content[1].attachment.as_ref().unwrap().mime.as_deref(),
        Some("image/png")
    );
    assert_eq!(content[2].content_type, ContentType::Notification);
    assert_eq!(
        content[2].template.as_ref().unwrap().id.as_deref(),
        Some("tpl-1")
    );
}

#[test]
fn unknown_fields_and_values_are_kept_and_written_back() {
    let sample = r#"{"type":"Hologram","direction":"Sideways","status":"Teleported","hologram":{"depth":3},"channel":{"platform":"Open","quantum":true,"to":{"id":"x","idType":"Telepathy","aura":"blue"}},"content":[{"contentType":"Scent","scent":{"notes":"rose"}}],"events":[{"eventType":"Sneezing","sneeze":{"loud":true}}]}"#;
    let message = round_trips(sample);
    assert_eq!(message.kind, MessageType::Unknown("Hologram".to_owned()));
    assert_eq!(
        message.direction,
        Some(Direction::Unknown("Sideways".to_owned()))
    );
    assert!(message.extra.contains_key("hologram"));
    let channel = message.channel.unwrap();
    assert!(channel.extra.contains_key("quantum"));
    assert_eq!(
        channel.to.unwrap().id_type,
        Some(IdType::Unknown("Telepathy".to_owned()))
    );
}

async fn server() -> std::net::SocketAddr {
    async fn handler(message: OpenMessage) -> String {
        format!("{} {}", message.kind, message.message_id().unwrap_or("-"))
    }
    serve_axum(
        Router::new().route("/", post(handler)).route_layer(
            GenesysSignatureLayer::builder()
                .secret("om-secret")
                .build()
                .unwrap(),
        ),
    )
    .await
}

async fn send(addr: std::net::SocketAddr, body: &str) -> RawResponse {
    let sig = sign_open_messaging("om-secret", body.as_bytes());
    post_bytes(
        addr,
        "/",
        &[("X-Hub-Signature-256", sig.as_str())],
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn the_extractor_yields_the_typed_message_behind_the_layer() {
    let addr = server().await;
    let response = send(addr, TEXT).await;
    assert_eq!((response.status, response.text()), (200, "Text 8085a2b4c1"));
    let unsigned = post_bytes(addr, "/", &[], TEXT.as_bytes()).await;
    assert_eq!(unsigned.status, 401);
}

#[tokio::test]
async fn valid_json_that_is_no_open_message_is_a_400_that_says_why() {
    let addr = server().await;
    for (body, says) in [
        (
            r#"{"event":"routing:conversation:updated"}"#,
            "missing field `type`",
        ),
        (r#"{"type":"Text","text":5}"#, "invalid type"),
        ("[1,2]", "invalid type"),
    ] {
        let response = send(addr, body).await;
        assert_eq!(response.status, 400, "{body}");
        let json = response.json();
        assert_eq!(json["error"], "invalid_open_message");
        assert!(
            json["message"].as_str().unwrap().contains(says),
            "{body}: {json}"
        );
    }
}

#[tokio::test]
async fn the_extractor_without_the_layer_refuses_with_500_and_logs_it_once() {
    async fn handler(message: OpenMessage) -> String {
        message.kind.to_string()
    }
    let logs = CapturedLogs::start();
    let addr = serve_axum(Router::new().route("/", post(handler))).await;
    for _ in 0..3 {
        let response = post_bytes(addr, "/", &[], TEXT.as_bytes()).await;
        assert_eq!(response.status, 500);
        assert_eq!(response.json()["error"], "signature_layer_missing");
    }
    let errors = logs.count("ERROR", "without GenesysSignatureLayer");
    assert_eq!(errors, 1, "{:?}", logs.lines());
}

#[tokio::test]
async fn the_extractor_honours_axums_body_limit() {
    async fn handler(message: OpenMessage) -> String {
        message.kind.to_string()
    }
    let addr = serve_axum(
        Router::new()
            .route("/", post(handler))
            .route_layer(
                GenesysSignatureLayer::builder()
                    .secret("om-secret")
                    .build()
                    .unwrap(),
            )
            .layer(axum::extract::DefaultBodyLimit::max(64)),
    )
    .await;
    let response = send(addr, TEXT).await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json()["error"], "invalid_open_message");
}

#[cfg(feature = "enqueue")]
mod enqueue {
    use super::*;
    use genesys_webhook::endpoint::Enqueue;
    use genesys_webhook::inbox::{InboxAdmin, MemoryInbox};
    use std::sync::Arc;

    async fn enqueue_server(enqueue: Enqueue, layered: bool, limit: usize) -> std::net::SocketAddr {
        let mut router = Router::new().route("/", post(enqueue));
        if layered {
            router = router.route_layer(
                GenesysSignatureLayer::builder()
                    .secret("om-secret")
                    .build()
                    .unwrap(),
            );
        }
        serve_axum(router.layer(axum::extract::DefaultBodyLimit::max(limit))).await
    }

    #[tokio::test]
    async fn enqueue_without_the_layer_stores_nothing_and_answers_500() {
        let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
        let addr = enqueue_server(Enqueue::new(inbox.clone()), false, 1 << 20).await;
        let response = post_bytes(addr, "/", &[], TEXT.as_bytes()).await;
        assert_eq!(response.status, 500);
        assert_eq!(response.json()["error"], "signature_layer_missing");
        assert_eq!(inbox.stats().await.unwrap().pending, 0);
    }

    #[tokio::test]
    async fn enqueue_honours_axums_body_limit() {
        let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
        let addr = enqueue_server(Enqueue::new(inbox.clone()), true, 64).await;
        let response = send(addr, TEXT).await;
        assert_eq!(response.status, 413);
        assert_eq!(inbox.stats().await.unwrap().pending, 0);
    }

    #[tokio::test]
    async fn enqueue_validates_as_an_open_message_before_storing() {
        let inbox: Arc<dyn InboxAdmin> = Arc::new(MemoryInbox::new());
        let enqueue = Enqueue::new(inbox.clone()).validate_as::<OpenMessage>();
        let addr = enqueue_server(enqueue, true, 1 << 20).await;
        let refused = send(addr, r#"{"event":"routing:conversation:updated"}"#).await;
        assert_eq!(refused.status, 400);
        let json = refused.json();
        assert_eq!(json["error"], "invalid_body");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("missing field `type`"),
            "{json}"
        );
        assert_eq!(inbox.stats().await.unwrap().pending, 0);
        let queued = send(addr, TEXT).await;
        assert_eq!(queued.status, 200);
        assert_eq!(inbox.stats().await.unwrap().pending, 1);
    }
}
