//! A catalogue of hostile HTTP input against the example receiver, over real sockets:
//! each case gets its documented status, the process stays up, and every valid event
//! reaches the worker exactly once.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ReceiverProcess as Receiver;
use common::*;
use genesys_webhook::signature::{sign_genesys, sign_open_messaging};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "hostile-secret";
const LIMIT: usize = 64 * 1024;
const PATH: &str = "/webhook/receive";

fn start() -> Receiver {
    Receiver::start(&[
        ("GENESYS_WEBHOOK_SECRET", SECRET),
        ("GENESYS_MAX_BODY_BYTES", "65536"),
        ("GENESYS_REQUEST_TIMEOUT_SECS", "2"),
    ])
}

fn event(id: &str) -> Vec<u8> {
    format!(r#"{{"event":"routing:conversation:updated","conversationId":"{id}"}}"#).into_bytes()
}

/// A JSON object of exactly `len` bytes.
fn event_of_len(id: &str, len: usize) -> Vec<u8> {
    let head =
        format!(r#"{{"event":"routing:conversation:updated","conversationId":"{id}","pad":""#);
    let mut body = head.into_bytes();
    body.resize(len - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

async fn raw(addr: std::net::SocketAddr, request: Vec<u8>) -> RawResponse {
    exchange(addr, &request).await
}

fn assert_error(response: &RawResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.json(), serde_json::json!({ "error": code }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_header_abuse_gets_401() {
    let receiver = start();
    let addr = receiver.addr;
    let body = event("sig-abuse");
    let valid = sign_genesys(SECRET, &body);

    let missing = post_bytes(addr, PATH, &[], &body).await;
    assert_error(&missing, 401, "invalid_signature");
    for (name, value) in [
        ("X-Genesys-Signature", String::new()),
        ("X-Hub-Signature-256", String::new()),
        ("X-Hub-Signature-256", "sha256=".to_owned()),
        ("X-Genesys-Signature", "a".repeat(8 * 1024)),
        (
            "X-Hub-Signature-256",
            format!("sha256={}", "A".repeat(8 * 1024)),
        ),
        ("X-Genesys-Signature", format!("{valid}, {valid}")),
        ("X-Genesys-Signature", "sha256=".to_owned() + &valid),
    ] {
        let response = post_bytes(addr, PATH, &[(name, value.as_str())], &body).await;
        assert_error(&response, 401, "invalid_signature");
    }

    // Raw bytes that are not UTF-8 in the header value.
    let mut request = b"POST /webhook/receive HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Genesys-Signature: \xff\xfe\xfd\r\n".to_vec();
    request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(&body);
    assert_error(&raw(addr, request).await, 401, "invalid_signature");

    // Duplicated headers: all valid passes; one bad among them fails.
    let twice = post_bytes(
        addr,
        PATH,
        &[
            ("X-Genesys-Signature", valid.as_str()),
            ("X-Genesys-Signature", valid.as_str()),
        ],
        &body,
    )
    .await;
    assert_eq!(twice.status, 200, "{}", twice.text());
    let other = event("sig-abuse-2");
    let valid_other = sign_genesys(SECRET, &other);
    let bad = sign_genesys("wrong", &other);
    let mixed = post_bytes(
        addr,
        PATH,
        &[
            ("X-Genesys-Signature", valid_other.as_str()),
            ("X-Genesys-Signature", bad.as_str()),
        ],
        &other,
    )
    .await;
    assert_error(&mixed, 401, "invalid_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_abuse_gets_413_400_or_408() {
    let receiver = start();
    let addr = receiver.addr;

    let at_limit = event_of_len("at-limit", LIMIT);
    let sig = sign_open_messaging(SECRET, &at_limit);
    let response = post_bytes(
        addr,
        PATH,
        &[("X-Hub-Signature-256", sig.as_str())],
        &at_limit,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());

    let over = event_of_len("over-limit", LIMIT + 1);
    let sig = sign_open_messaging(SECRET, &over);
    let response = post_bytes(addr, PATH, &[("X-Hub-Signature-256", sig.as_str())], &over).await;
    assert_error(&response, 413, "payload_too_large");

    let chunks: Vec<&[u8]> = over.chunks(1000).collect();
    let response = post_chunked(
        addr,
        PATH,
        &[("X-Hub-Signature-256", sig.as_str())],
        &chunks,
    )
    .await;
    assert_error(&response, 413, "payload_too_large");

    // Truncated: the client stops sending mid-body.
    let body = event("truncated");
    let sig = sign_genesys(SECRET, &body);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = head(
        PATH,
        &[("X-Genesys-Signature", sig.as_str())],
        &format!("Content-Length: {}\r\n", body.len()),
    );
    request.extend_from_slice(&body[..body.len() / 2]);
    stream.write_all(&request).await.unwrap();
    stream.shutdown().await.unwrap();
    assert_error(&read_response(&mut stream).await, 400, "unreadable_body");

    // Slow drip: one byte every 200 ms is cut off at the 2 s deadline.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&head(
            PATH,
            &[("X-Genesys-Signature", sig.as_str())],
            &format!("Content-Length: {}\r\n", body.len()),
        ))
        .await
        .unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let drip = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(8), reader.read_to_end(&mut answer)).await;
    drip.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"request_timeout"}"#),
        "{answer}"
    );
    // 100 bytes at one every 200 ms would take 20 s: cut off at the 2 s deadline.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dripping_request_head_is_cut_off() {
    let receiver = start();
    let mut stream = TcpStream::connect(receiver.addr).await.unwrap();
    let started = Instant::now();
    let head = b"POST /webhook/receive HTTP/1.1\r\nHost: x\r\nX-Padding: ".to_vec();
    stream.write_all(&head).await.unwrap();
    // A header byte every 200 ms: the head never completes within the deadline.
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        let mut buf = [0u8; 1024];
        loop {
            if stream.write_all(b"a").await.is_err() {
                return;
            }
            tokio::select! {
                read = stream.read(&mut buf) => {
                    if matches!(read, Ok(0) | Err(_)) { return; }
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_and_method_abuse() {
    let receiver = start();
    let addr = receiver.addr;
    for (body, content_type) in [
        (&b"{not json"[..], "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"hello", "text/plain"),
        (b"[1,2,3]", "application/json"),
        (b"<xml/>", "application/xml"),
    ] {
        let sig = sign_genesys(SECRET, body);
        let response = post_bytes(
            addr,
            PATH,
            &[
                ("X-Genesys-Signature", sig.as_str()),
                ("Content-Type", content_type),
            ],
            body,
        )
        .await;
        assert_error(&response, 400, "invalid_json");
    }
    // The content type is not checked: a signed JSON object is taken whatever it says.
    let body = event("text-plain");
    let sig = sign_genesys(SECRET, &body);
    let response = post_bytes(
        addr,
        PATH,
        &[
            ("X-Genesys-Signature", sig.as_str()),
            ("Content-Type", "text/plain"),
        ],
        &body,
    )
    .await;
    assert_eq!(response.status, 200);

    // Other methods: unsigned ones are refused by the signature check first (401);
    // signed ones are told the method is wrong (405).
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let request = format!(
            "{method} {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            raw(addr, request.into_bytes()).await.status,
            401,
            "{method}"
        );
        let empty = sign_genesys(SECRET, b"");
        let request = format!("{method} {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Genesys-Signature: {empty}\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            raw(addr, request.into_bytes()).await.status,
            405,
            "{method}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_mixed_requests_process_every_valid_event_exactly_once() {
    let receiver = start();
    let addr = receiver.addr;
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    let total = 10_000;
    for i in 0..total {
        let permit = Arc::clone(&limit).acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let _permit = permit;
            let id = format!("mix-{i}");
            let body = event(&id);
            let (header, value, expected): (&str, String, u16) = match i % 4 {
                0 | 1 => (
                    "X-Hub-Signature-256",
                    sign_open_messaging(SECRET, &body),
                    200,
                ),
                2 => (
                    "X-Genesys-Signature",
                    sign_genesys("wrong-secret", &body),
                    401,
                ),
                _ => ("X-Genesys-Signature", "zz".repeat(32), 401),
            };
            loop {
                let response = post_bytes(addr, PATH, &[(header, value.as_str())], &body).await;
                // A full queue asks the sender to come back, as Genesys would.
                if response.status == 503 {
                    assert!(response.header("retry-after").is_some());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                assert_eq!(response.status, expected, "{id}: {}", response.text());
                return (id, expected == 200);
            }
        });
    }
    let mut valid = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (id, is_valid) = result.unwrap();
        if is_valid {
            valid.push(id);
        }
    }
    assert_eq!(valid.len(), total / 2);

    // Still up.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.status, 200);

    // Every valid event was handled by the worker: stopped, then counted.
    let handled_ids = || {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for line in receiver.lines_containing("handled conversation update") {
            if let Some(id) = line
                .split("conversation_id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
            {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        counts
    };
    eventually("every valid event is handled", async || {
        let counts = handled_ids();
        valid.iter().all(|id| counts.contains_key(id))
    })
    .await;
    let counts = handled_ids();
    for id in &valid {
        assert_eq!(counts[id], 1, "{id} handled {} times", counts[id]);
    }
    assert_eq!(
        counts.len(),
        valid.len(),
        "an invalid event reached the worker"
    );
}
