//! The example receiver as a user runs it: a separate process on a loopback port.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::ReceiverProcess as Receiver;
use common::*;
use genesys_webhook::signature::{sign_genesys, sign_open_messaging};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const OM_MESSAGE: &[u8] = br#"{"id":"8085","channel":{"id":"6685","platform":"Open","type":"Private","to":{"id":"33633081329","idType":"Opaque"},"from":{"nickname":"Sinch Messaging","id":"6685","idType":"Opaque"},"time":"2026-03-25T13:20:05.493Z","messageId":"8085"},"type":"Text","text":"Hello","originatingEntity":"Human","direction":"Outbound","conversationId":"1734"}"#;

fn refuses(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(common::receiver_binary())
        .current_dir(dir.path())
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "started with {env:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn refuses_to_start_without_a_non_blank_secret() {
    for env in [
        &[][..],
        &[("GENESYS_WEBHOOK_SECRET", "")][..],
        &[
            ("GENESYS_WEBHOOK_SECRET", "  \t"),
            ("GENESYS_CLIENT_SECRET", " "),
        ][..],
    ] {
        let stderr = refuses(env);
        assert!(stderr.contains("GENESYS_WEBHOOK_SECRET"), "{stderr}");
    }
}

#[test]
fn a_port_in_use_is_named_in_the_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(common::receiver_binary())
        .current_dir(dir.path())
        .env_clear()
        .env("GENESYS_WEBHOOK_SECRET", "dev-secret")
        .env("LISTEN_ADDR", &addr)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
}

#[tokio::test]
async fn acknowledges_signed_events_and_processes_them_in_the_background() {
    let receiver = Receiver::start(&[("GENESYS_WEBHOOK_SECRET", "dev-secret")]);
    let sig = sign_open_messaging("dev-secret", OM_MESSAGE);
    let response = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[
            ("X-Hub-Signature-256", sig.as_str()),
            ("Content-Type", "application/json"),
        ],
        OM_MESSAGE,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), serde_json::json!({"status": "queued"}));

    let tutorial = br#"{"event":"routing:conversation:updated","conversationId":"conv-42"}"#;
    let sig = sign_genesys("dev-secret", tutorial);
    let response = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Genesys-Signature", sig.as_str())],
        tutorial,
    )
    .await;
    assert_eq!(response.status, 200);

    eventually("both events are processed", async || {
        receiver.output_contains("handled Open Messaging message")
            && receiver.output_contains("conv-42")
    })
    .await;
}

#[tokio::test]
async fn answers_health_rejections_and_invalid_json() {
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", "dev-secret"),
        ("GENESYS_WEBHOOK_SECRET_PREVIOUS", "old-secret"),
    ]);
    let mut stream = TcpStream::connect(receiver.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.status, 200);

    let unsigned = post_bytes(receiver.addr, "/webhook/receive", &[], OM_MESSAGE).await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(
        unsigned.json(),
        serde_json::json!({"error": "invalid_signature"})
    );

    let old = sign_open_messaging("old-secret", OM_MESSAGE);
    let rotated = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", old.as_str())],
        OM_MESSAGE,
    )
    .await;
    assert_eq!(rotated.status, 200);

    for bad in [&b"{not json"[..], b"[1,2]", b""] {
        let sig = sign_genesys("dev-secret", bad);
        let response = post_bytes(
            receiver.addr,
            "/webhook/receive",
            &[("X-Genesys-Signature", sig.as_str())],
            bad,
        )
        .await;
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(bad));
        assert_eq!(
            response.json(),
            serde_json::json!({"error": "invalid_json"})
        );
    }
}

#[tokio::test]
async fn falls_back_to_the_client_secret() {
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", ""),
        ("GENESYS_CLIENT_SECRET", "tutorial-secret"),
    ]);
    let sig = sign_genesys("tutorial-secret", OM_MESSAGE);
    let response = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Genesys-Signature", sig.as_str())],
        OM_MESSAGE,
    )
    .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn full_inbox_answers_503_with_retry_after_and_takes_the_retry_later() {
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", "dev-secret"),
        ("GENESYS_INBOX_MAX_EVENTS", "1"),
        ("GENESYS_WORKER_DELAY_MS", "2000"),
    ]);
    let mut statuses = Vec::new();
    for i in 0..3 {
        let body =
            format!(r#"{{"event":"routing:conversation:updated","conversationId":"full-{i}"}}"#);
        let sig = sign_open_messaging("dev-secret", body.as_bytes());
        let response = post_bytes(
            receiver.addr,
            "/webhook/receive",
            &[("X-Hub-Signature-256", sig.as_str())],
            body.as_bytes(),
        )
        .await;
        if response.status == 503 {
            assert_eq!(response.header("retry-after"), Some("5"));
            assert_eq!(response.json(), serde_json::json!({"error": "inbox_full"}));
        }
        statuses.push(response.status);
    }
    assert_eq!(statuses, [200, 503, 503]);

    // The refused event was not remembered: when the sender retries later, it is taken.
    let body = r#"{"event":"routing:conversation:updated","conversationId":"full-2"}"#;
    let sig = sign_open_messaging("dev-secret", body.as_bytes());
    // Genesys retries until it gets a 2xx: so does this sender.
    eventually("the retry is accepted", async || {
        let retry = post_bytes(
            receiver.addr,
            "/webhook/receive",
            &[("X-Hub-Signature-256", sig.as_str())],
            body.as_bytes(),
        )
        .await;
        retry.status == 200 && retry.json() == serde_json::json!({"status": "queued"})
    })
    .await;
    eventually("the retried event is processed", async || {
        receiver.count("full-2") > 0
    })
    .await;
}

#[tokio::test]
async fn sigterm_finishes_deliveries_in_progress_and_keeps_the_rest_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GENESYS_WEBHOOK_SECRET", "dev-secret"),
        ("GENESYS_WORKER_DELAY_MS", "300"),
        ("GENESYS_WORKER_CONCURRENCY", "1"),
    ];
    let mut receiver = Receiver::start_in(dir.path(), &env);
    for i in 0..5 {
        let body =
            format!(r#"{{"event":"routing:conversation:updated","conversationId":"drain-{i}"}}"#);
        let sig = sign_genesys("dev-secret", body.as_bytes());
        let response = post_bytes(
            receiver.addr,
            "/webhook/receive",
            &[("X-Genesys-Signature", sig.as_str())],
            body.as_bytes(),
        )
        .await;
        assert_eq!(response.status, 200);
    }
    let status = receiver.terminate();
    assert_eq!(status.code(), Some(0));
    let first_run = receiver.count("handled conversation update");
    assert!(
        first_run < 5,
        "all five were processed before SIGTERM took effect"
    );
    assert!(receiver.output_contains("what is pending stays stored"));

    // The next start processes the rest, each event once in all.
    let mut restarted = Receiver::start_in(dir.path(), &env);
    eventually("the pending events are resumed", async || {
        first_run + restarted.count("handled conversation update") >= 5
    })
    .await;
    // Stopped and read to the end: nothing more can be processed unseen.
    assert_eq!(restarted.terminate().code(), Some(0));
    for i in 0..5 {
        let needle = format!("drain-{i}");
        assert_eq!(
            receiver.count(&needle) + restarted.count(&needle),
            1,
            "{needle}"
        );
    }
}

#[tokio::test]
async fn a_replayed_event_is_acknowledged_as_duplicate_and_processed_once() {
    let mut receiver = Receiver::start(&[("GENESYS_WEBHOOK_SECRET", "dev-secret")]);
    let body = br#"{"event":"routing:conversation:updated","conversationId":"replayed-1"}"#;
    let sig = sign_genesys("dev-secret", body);
    let first = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Genesys-Signature", sig.as_str())],
        body,
    )
    .await;
    assert_eq!(first.json(), serde_json::json!({"status": "queued"}));
    let again = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Genesys-Signature", sig.as_str())],
        body,
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), serde_json::json!({"status": "duplicate"}));
    eventually("the event is processed", async || {
        receiver.count("replayed-1") > 0
    })
    .await;
    // Stopped (the worker finishes what is pending) and read to the end.
    assert_eq!(receiver.terminate().code(), Some(0));
    assert_eq!(receiver.count("replayed-1"), 1);
}

#[tokio::test]
async fn replay_protection_can_be_turned_off() {
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", "dev-secret"),
        ("GENESYS_REPLAY_STORE", "none"),
    ]);
    let body = br#"{"event":"x","conversationId":"twice"}"#;
    let sig = sign_genesys("dev-secret", body);
    for _ in 0..2 {
        let response = post_bytes(
            receiver.addr,
            "/webhook/receive",
            &[("X-Genesys-Signature", sig.as_str())],
            body,
        )
        .await;
        assert_eq!(response.json(), serde_json::json!({"status": "queued"}));
    }
}

#[test]
fn refuses_an_unknown_replay_store() {
    let stderr = refuses(&[
        ("GENESYS_WEBHOOK_SECRET", "dev-secret"),
        ("GENESYS_REPLAY_STORE", "memcached://x"),
    ]);
    assert!(stderr.contains("GENESYS_REPLAY_STORE"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_not_logged_one_by_one_above_debug() {
    const SECRET: &str = "flood-secret";
    let mut receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", SECRET),
        ("GENESYS_INBOX_MAX_EVENTS", "1"),
        ("GENESYS_WORKER_DELAY_MS", "60000"),
        ("GENESYS_MAX_BUFFERED_BYTES", "65536"),
    ]);
    let send = |body: Vec<u8>, secret: Option<&'static str>| async move {
        let sig = secret.map(|s| sign_open_messaging(s, &body));
        let headers: Vec<(&str, &str)> = sig
            .iter()
            .map(|s| ("X-Hub-Signature-256", s.as_str()))
            .collect();
        post_bytes(receiver.addr, "/webhook/receive", &headers, &body).await
    };
    let event = |n: usize| format!(r#"{{"event":"flood-{n}"}}"#).into_bytes();
    assert_eq!(send(event(0), Some(SECRET)).await.status, 200);
    let mut statuses = std::collections::BTreeMap::new();
    for n in 1..=40 {
        // The inbox is full (its one event is being processed for a minute).
        *statuses
            .entry(send(event(n), Some(SECRET)).await.status)
            .or_insert(0) += 1;
        // Unsigned, and wrongly signed.
        *statuses
            .entry(send(event(n), None).await.status)
            .or_insert(0) += 1;
        *statuses
            .entry(send(event(n), Some("wrong")).await.status)
            .or_insert(0) += 1;
        // Larger than the buffering budget on its own: 503 overloaded.
        let big = format!(r#"{{"pad":"{}"}}"#, "p".repeat(100 * 1024)).into_bytes();
        *statuses
            .entry(send(big, Some(SECRET)).await.status)
            .or_insert(0) += 1;
        // Larger than the body limit: 413.
        let huge = vec![b' '; 1024 * 1024 + 1];
        *statuses
            .entry(send(huge, Some(SECRET)).await.status)
            .or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&503), Some(&80), "{statuses:?}");
    assert_eq!(statuses.get(&401), Some(&80), "{statuses:?}");
    assert_eq!(statuses.get(&413), Some(&40), "{statuses:?}");
    // Every line written so far, read to the end (its worker holds an event for a
    // minute: no graceful stop).
    receiver.kill();
    let loud: Vec<String> = receiver
        .lines()
        .into_iter()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .collect();
    // At most one summary from the layer and one from the inbox refusals.
    assert!(loud.len() <= 2, "{} loud lines: {loud:#?}", loud.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_wrongly_signed_bodies_stays_within_the_budget_plus_50_mib() {
    const BUDGET: u64 = 16 * 1024 * 1024;
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", "flood-secret"),
        ("GENESYS_MAX_BUFFERED_BYTES", &BUDGET.to_string()),
        // The deployment section's allocator setting.
        ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ]);
    let idle = receiver.memory_kib("VmRSS").expect("/proc");
    let body = std::sync::Arc::new(vec![b'x'; 1024 * 1024]);
    let sig = sign_open_messaging("wrong-secret", &body);
    let mut statuses = std::collections::BTreeMap::new();
    for _round in 0..2 {
        let flood: Vec<_> = (0..200)
            .map(|_| {
                let (body, sig) = (std::sync::Arc::clone(&body), sig.clone());
                let addr = receiver.addr;
                tokio::spawn(async move {
                    post_bytes(
                        addr,
                        "/webhook/receive",
                        &[("X-Hub-Signature-256", &sig)],
                        &body,
                    )
                    .await
                    .status
                })
            })
            .collect();
        for status in flood {
            *statuses.entry(status.await.unwrap()).or_insert(0) += 1;
        }
    }
    let peak = receiver.memory_kib("VmHWM").expect("/proc");
    eprintln!("idle {idle} KiB, peak {peak} KiB, {statuses:?}");
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    let limit = idle + BUDGET / 1024 + 50 * 1024;
    assert!(
        peak <= limit,
        "peak {} MiB over idle {} MiB + budget 16 MiB + 50 MiB ({statuses:?})",
        peak / 1024,
        idle / 1024
    );
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text_with_the_documented_names() {
    let receiver = Receiver::start(&[("GENESYS_WEBHOOK_SECRET", "metrics-secret")]);
    let body = br#"{"event":"routing:conversation:updated","conversationId":"metrics-1"}"#;
    let sig = sign_open_messaging("metrics-secret", body);
    let queued = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", &sig)],
        body,
    )
    .await;
    assert_eq!(queued.status, 200);
    let duplicate = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", &sig)],
        body,
    )
    .await;
    assert_eq!(duplicate.json(), serde_json::json!({"status": "duplicate"}));
    let unsigned = post_bytes(receiver.addr, "/webhook/receive", &[], body).await;
    assert_eq!(unsigned.status, 401);
    eventually("the event is processed", async || {
        receiver.output_contains("metrics-1")
    })
    .await;
    let scraped = exchange(
        receiver.addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(scraped.status, 200);
    let text = scraped.text();
    for expected in [
        r#"genesys_webhook_requests_total{outcome="verified"} 2"#,
        r#"genesys_webhook_requests_total{outcome="queued"} 1"#,
        r#"genesys_webhook_requests_total{outcome="duplicate",reason="processed"} 1"#,
        r#"genesys_webhook_requests_total{outcome="rejected",reason="missing_signature"} 1"#,
        r#"genesys_webhook_deliveries_total{outcome="processed"} 1"#,
        // Histograms with buckets, not summaries.
        r#"genesys_webhook_append_seconds_bucket{le="0.005"}"#,
        r#"genesys_webhook_handler_seconds_bucket{le="+Inf"}"#,
        r#"genesys_webhook_inbox_events{state="pending"}"#,
        r#"genesys_webhook_inbox_events{state="dead"}"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_text_is_acknowledged_with_a_delivered_receipt_through_the_inbound_api() {
    use common::fake_cloud::{FakeCloud, CLIENT_ID, CLIENT_SECRET};
    let fake = FakeCloud::start().await;
    let base = fake.base();
    let integration = "6685f1e2-0000-4000-8000-000000000001";
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start_in(
        dir.path(),
        &[
            ("GENESYS_WEBHOOK_SECRET", "loop-secret"),
            ("GENESYS_INTEGRATION_ID", integration),
            ("GENESYS_CLIENT_ID", CLIENT_ID),
            ("GENESYS_CLIENT_SECRET", CLIENT_SECRET),
            ("GENESYS_API_BASE", &base),
        ],
    );
    let receipt_sample = br#"{"id":"r-1","type":"Receipt","status":"Delivered","direction":"Outbound","channel":{"platform":"Open","to":{"id":"customer-42","idType":"Opaque"}}}"#;
    for body in [OM_MESSAGE, &receipt_sample[..]] {
        let sig = sign_open_messaging("loop-secret", body);
        let queued = post_bytes(
            receiver.addr,
            "/webhook/receive",
            &[("X-Hub-Signature-256", &sig)],
            body,
        )
        .await;
        assert_eq!(queued.status, 200, "{}", queued.text());
    }
    eventually(
        "both events are handled and a receipt is sent",
        async || {
            receiver.count("handled Open Messaging message") == 2
                && !fake.inbound_calls().is_empty()
        },
    )
    .await;
    assert_eq!(receiver.terminate().code(), Some(0));
    // One receipt: for the agent's text, not for the receipt; none waits either.
    let queued =
        genesys_webhook::inbox::SqliteInbox::open(dir.path().join("genesys-inbox.receipts.db"))
            .unwrap();
    let waiting = genesys_webhook::inbox::InboxAdmin::stats(&queued)
        .await
        .unwrap();
    assert_eq!(
        (waiting.pending, waiting.in_flight, waiting.dead),
        (0, 0, 0)
    );
    let calls = fake.inbound_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (path, body) = &calls[0];
    assert_eq!(
        path,
        &format!("/api/v2/conversations/messages/{integration}/inbound/open/receipt")
    );
    assert_eq!(body["id"], "8085");
    assert_eq!(body["status"], "Delivered");
    assert_eq!(
        body["channel"]["to"],
        serde_json::json!({"id": "33633081329", "idType": "Opaque"})
    );
    // The fake answers 401 to a missing or wrong bearer token: one token was fetched
    // and used.
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn without_an_integration_the_receipt_is_logged_at_debug_without_the_customer() {
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", "loop-secret"),
        ("RUST_LOG", "info,genesys_webhook=debug"),
    ]);
    let sig = sign_open_messaging("loop-secret", OM_MESSAGE);
    let queued = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", &sig)],
        OM_MESSAGE,
    )
    .await;
    assert_eq!(queued.status, 200);
    eventually("the receipt is logged", async || {
        receiver.output_contains("would send a receipt")
    })
    .await;
    let line = receiver.lines_containing("would send a receipt").remove(0);
    assert!(
        line.contains("DEBUG") && line.contains("Delivered"),
        "{line}"
    );
    // The customer's id (channel.to.id) is on no line above DEBUG.
    let above_debug: Vec<String> = receiver
        .lines()
        .into_iter()
        .filter(|l| !l.contains("DEBUG") && !l.contains("TRACE"))
        .filter(|l| l.contains("33633081329"))
        .collect();
    assert!(above_debug.is_empty(), "{above_debug:?}");
}

/// A JSON value whose objects have no key twice (serde_json keeps the last of two).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
                Ok(UniqueKeys)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<UniqueKeys, A::Error> {
                while seq.next_element::<UniqueKeys>()?.is_some() {}
                Ok(UniqueKeys)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut keys = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !keys.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                    }
                    map.next_value::<UniqueKeys>()?;
                }
                Ok(UniqueKeys)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The receiver in `dir`, logging JSON lines to a piped standard output.
fn json_logging_receiver(dir: &std::path::Path) -> std::process::Child {
    Command::new(common::receiver_binary())
        .current_dir(dir)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("GENESYS_WEBHOOK_SECRET", "json-logs")
        .env("GENESYS_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn a_failed_sqlite_batch_logs_json_with_unique_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = json_logging_receiver(dir.path());
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a log line")
    };
    let addr: std::net::SocketAddr = loop {
        let json: serde_json::Value = serde_json::from_str(&next()).unwrap();
        if let Some(addr) = json["fields"]["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("listening on http://"))
        {
            break addr.parse().unwrap();
        }
    };
    // The inbox file removed under the receiver: the batch fails and is logged.
    std::fs::remove_file(dir.path().join("genesys-inbox.db")).unwrap();
    let body = br#"{"type":"Text","text":"hi"}"#;
    let sig = sign_open_messaging("json-logs", body);
    let refused = post_bytes(
        addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", &sig)],
        body,
    )
    .await;
    assert_eq!(refused.status, 503);
    let failure = loop {
        let line = next();
        if line.contains("nothing of this batch was stored") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    if let Err(error) = serde_json::from_str::<UniqueKeys>(&failure) {
        panic!("{error}: {failure}");
    }
    let json: serde_json::Value = serde_json::from_str(&failure).unwrap();
    assert_eq!(
        json["fields"]["message"],
        "inbox: nothing of this batch was stored"
    );
    assert!(json["fields"]["reason"].as_str().is_some(), "{failure}");
}

#[test]
fn logs_are_one_json_object_a_line_with_genesys_log_format_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = json_logging_receiver(dir.path());
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut seen = Vec::new();
    for line in lines.by_ref().take(10) {
        let line = line.unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let listening = json["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening on"));
        seen.push(json);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.iter().any(|j| j["level"] == "INFO"), "{seen:?}");
    assert!(
        seen.iter().any(|j| j["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening on"))),
        "{seen:?}"
    );
}

#[tokio::test]
async fn the_rejected_peers_address_is_logged_when_asked_for() {
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", "peer-secret"),
        ("GENESYS_LOG_PEER", "socket"),
        ("RUST_LOG", "info,genesys_webhook=debug"),
    ]);
    let unsigned = post_bytes(receiver.addr, "/webhook/receive", &[], b"{}").await;
    assert_eq!(unsigned.status, 401);
    eventually("the rejection is logged", async || {
        receiver.output_contains("webhook rejected")
    })
    .await;
    let line = receiver.lines_containing("webhook rejected").remove(0);
    assert!(line.contains("peer=\"127.0.0.1:"), "{line}");
}

/// Most HTTP clients write the whole body before they read: an answer given before the
/// body was read (413 by `Content-Length`, 401 without a signature) must still reach
/// them, not a reset or a broken pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_reaches_a_client_that_writes_its_whole_body_first() {
    let receiver = Receiver::start(&[("GENESYS_WEBHOOK_SECRET", "early-secret")]);
    let over = vec![b' '; 8 * 1024 * 1024];
    let over_sig = sign_open_messaging("early-secret", &over);
    let unsigned = vec![b' '; 512 * 1024];
    for round in 0..10 {
        for (body, headers, status) in [
            (&over, vec![("X-Hub-Signature-256", over_sig.as_str())], 413),
            (&unsigned, vec![], 401),
        ] {
            let mut request = head(
                "/webhook/receive",
                &headers,
                &format!("Content-Length: {}\r\n", body.len()),
            );
            request.extend_from_slice(body);
            let mut stream = TcpStream::connect(receiver.addr).await.unwrap();
            let written = stream.write_all(&request).await;
            assert!(
                written.is_ok(),
                "round {round}: writing the {} bytes failed: {written:?}",
                body.len()
            );
            assert_eq!(
                read_response(&mut stream).await.status,
                status,
                "round {round}"
            );
        }
    }
}

#[tokio::test]
async fn connections_over_the_cap_get_a_503_that_genesys_retries_not_a_wait() {
    let receiver = Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", "cap-secret"),
        ("GENESYS_MAX_CONNECTIONS", "20"),
    ]);
    // An idle client holds every slot.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(receiver.addr).await.unwrap());
    }
    let body = br#"{"event":"routing:conversation:updated","conversationId":"cap-1"}"#;
    let sig = sign_open_messaging("cap-secret", body);
    let send = async || {
        post_bytes(
            receiver.addr,
            "/webhook/receive",
            &[("X-Hub-Signature-256", sig.as_str())],
            body,
        )
        .await
    };
    eventually("a connection over the cap is answered 503", async || {
        let response = send().await;
        response.status == 503
            && response.header("retry-after") == Some("1")
            && response.json() == serde_json::json!({"error": "too_many_connections"})
    })
    .await;
    // Slots free again: the retry is taken.
    drop(idle);
    eventually("the retry is accepted", async || send().await.status == 200).await;
}

#[tokio::test]
async fn sigterm_ends_within_the_shutdown_budget_even_with_a_stuck_handler() {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start_in(
        dir.path(),
        &[
            ("GENESYS_WEBHOOK_SECRET", "stuck-secret"),
            ("GENESYS_WORKER_DELAY_MS", "600000"),
            ("GENESYS_SHUTDOWN_SECS", "3"),
            ("GENESYS_REQUEST_TIMEOUT_SECS", "1"),
        ],
    );
    let body = br#"{"event":"routing:conversation:updated","conversationId":"stuck-1"}"#;
    let sig = sign_open_messaging("stuck-secret", body);
    let queued = post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", sig.as_str())],
        body,
    )
    .await;
    assert_eq!(queued.status, 200);
    // The handler has it (in flight), and will not let go for ten minutes.
    let inbox =
        genesys_webhook::inbox::SqliteInbox::open(dir.path().join("genesys-inbox.db")).unwrap();
    eventually("the handler is running", async || {
        genesys_webhook::inbox::InboxAdmin::stats(&inbox)
            .await
            .is_ok_and(|s| s.in_flight == 1)
    })
    .await;
    let started = std::time::Instant::now();
    assert_eq!(receiver.terminate().code(), Some(0));
    // The handler got its grace (3 s less the 1 s drain), and no more: a slow machine
    // adds to the budget, a stuck handler does not.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    // The stuck event went back to the inbox for the next start.
    assert!(
        receiver.output_contains("pending=1"),
        "{:?}",
        receiver.lines()
    );
}

/// The receiver with `GENESYS_ALLOW_SOURCES=open-messaging` against a fake Platform API.
fn allowlist_env(base: &str) -> Vec<(&'static str, String)> {
    use common::fake_cloud::{CLIENT_ID, CLIENT_SECRET};
    vec![
        ("GENESYS_WEBHOOK_SECRET", "allow-secret".into()),
        ("GENESYS_ALLOW_SOURCES", "open-messaging".into()),
        ("GENESYS_SOURCE_REFRESH_SECS", "1".into()),
        ("GENESYS_CLIENT_ID", CLIENT_ID.into()),
        ("GENESYS_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("GENESYS_API_BASE", base.into()),
        ("GENESYS_INBOX", "memory".into()),
    ]
}

async fn signed(receiver: &Receiver) -> RawResponse {
    let sig = sign_open_messaging("allow-secret", OM_MESSAGE);
    post_bytes(
        receiver.addr,
        "/webhook/receive",
        &[("X-Hub-Signature-256", &sig)],
        OM_MESSAGE,
    )
    .await
}

// The fake answers the receiver's start-up fetch from another thread while this one
// waits for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genesys_allow_sources_admits_genesys_ranges_and_keeps_them_when_a_refresh_fails() {
    let fake = common::fake_cloud::FakeCloud::start().await;
    fake.set_ip_ranges(&[
        ("127.0.0.0/8", "open-messaging", "outbound"),
        ("127.0.0.0/8", "audiohook", "inbound"),
    ]);
    let base = fake.base();
    let env = allowlist_env(&base);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let receiver = Receiver::start(&env);
    assert!(receiver.output_contains("admitting only Genesys' source addresses"));
    assert_eq!(
        signed(&receiver).await.status,
        200,
        "a loopback range admits"
    );
    // Health and metrics stay open to the operator's probes.
    assert_eq!(get(receiver.addr, "/healthz", &[]).await.status, 200);

    fake.with(|f| f.ip_ranges_failing = Some(403));
    eventually("a failed refresh is logged", async || {
        receiver.output_contains("source ranges refresh failed")
    })
    .await;
    assert_eq!(
        signed(&receiver).await.status,
        200,
        "the last good list is kept"
    );
    let metrics = get(receiver.addr, "/metrics", &[]).await;
    assert!(
        metrics
            .text()
            .contains("genesys_webhook_source_refresh_failures_total"),
        "{}",
        metrics.text()
    );

    fake.with(|f| f.ip_ranges_failing = None);
    fake.set_ip_ranges(&[("10.0.0.0/8", "open-messaging", "outbound")]);
    eventually("the new ranges refuse loopback", async || {
        signed(&receiver).await.status == 403
    })
    .await;
    let refused = signed(&receiver).await;
    assert_eq!(refused.json()["error"], "source_not_allowed");
    assert_eq!(
        receiver.count("source ranges refresh failed"),
        1,
        "one WARN per streak"
    );
}

/// [`refuses`] off the runtime, so that the fake API on it can answer the process.
async fn refuses_while_serving(env: Vec<(&'static str, String)>) -> String {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        refuses(&env)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genesys_allow_sources_refuses_to_start_without_ranges() {
    let fake = common::fake_cloud::FakeCloud::start().await;
    fake.set_ip_ranges(&[("127.0.0.0/8", "audiohook", "outbound")]);
    let base = fake.base();
    let stderr = refuses_while_serving(allowlist_env(&base)).await;
    assert!(
        stderr.contains("GENESYS_ALLOW_SOURCES") && stderr.contains("no range"),
        "{stderr}"
    );
    fake.with(|f| f.ip_ranges_failing = Some(403));
    let stderr = refuses_while_serving(allowlist_env(&base)).await;
    assert!(
        stderr.contains("GENESYS_ALLOW_SOURCES") && stderr.contains("403"),
        "{stderr}"
    );
}
