//! The relay's end-to-end scenario (`genesys-webhook serve`), run on SQLite by
//! `tests/cli/serve.rs` and on Redis by `tests/redis.rs`: the relay as a real process,
//! Genesys played over real sockets, and an application written here that is down at
//! first, fails some events' first two attempts, refuses others, and checks each
//! forwarded request with its own HMAC code.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::{KeyInit, Mac};

use crate::common::{self, ReceiverProcess};

/// The command, built by `cargo test` for the test binaries.
pub const BIN: &str = env!("CARGO_BIN_EXE_genesys-webhook");
pub const GENESYS_SECRET: &str = "genesys-webhook-secret";
pub const FORWARD_SECRET: &str = "forward-secret";

/// One request the application received.
#[derive(Debug, Clone)]
pub struct Arrival {
    id: String,
    attempt: u32,
    seq: u64,
    conversation: String,
    status: u16,
    signed: bool,
    received_at: String,
}

#[derive(Default)]
pub struct App {
    arrivals: Mutex<Vec<Arrival>>,
}

impl App {
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    /// The sequence numbers answered 2xx.
    pub fn delivered(&self) -> Vec<u64> {
        let arrivals = self.arrivals();
        let mut delivered: Vec<u64> = arrivals
            .iter()
            .filter(|a| a.status < 300)
            .map(|a| a.seq)
            .collect();
        delivered.sort_unstable();
        delivered.dedup();
        delivered
    }
}

/// `X-Hub-Signature-256` computed here, with the `hmac` crate, not the relay's code.
fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

async fn receive(app: Arc<App>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let seq = event["seq"].as_u64().unwrap();
    let kind = event["kind"].as_str().unwrap().to_owned();
    let id = header("genesys-webhook-id");
    let signed = header("x-hub-signature-256") == hub_signature(FORWARD_SECRET, &body)
        && header("content-type") == "application/json";
    let mut arrivals = app.arrivals.lock().unwrap();
    let earlier = arrivals.iter().filter(|a| a.id == id).count();
    let (status, answer) = match kind.as_str() {
        "flaky5xx" if earlier < 2 => (StatusCode::INTERNAL_SERVER_ERROR, None),
        "flaky429" if earlier < 2 => (StatusCode::TOO_MANY_REQUESTS, Some("1")),
        "reject" => (StatusCode::UNPROCESSABLE_ENTITY, None),
        _ if !signed => (StatusCode::UNAUTHORIZED, None),
        _ => (StatusCode::NO_CONTENT, None),
    };
    arrivals.push(Arrival {
        id,
        attempt: header("genesys-webhook-attempt").parse().unwrap_or(0),
        seq,
        conversation: event["conversationId"].as_str().unwrap_or("").to_owned(),
        status: status.as_u16(),
        signed,
        received_at: header("genesys-webhook-received-at"),
    });
    drop(arrivals);
    let refusal = "R".repeat(2000);
    match (status, answer) {
        (StatusCode::UNPROCESSABLE_ENTITY, _) => (status, refusal).into_response(),
        (_, Some(after)) => (status, [("retry-after", after)], "slow down").into_response(),
        _ => status.into_response(),
    }
}

/// Serves the application on `port` until the returned task is aborted.
pub async fn serve_app(app: Arc<App>, port: u16) -> tokio::task::JoinHandle<()> {
    let router = axum::Router::new().route(
        "/genesys",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| receive(app, headers, body)),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_relay(dir: &Path, app_port: u16, extra: &[(&str, &str)]) -> ReceiverProcess {
    let forward = format!("http://127.0.0.1:{app_port}/genesys");
    let mut env = vec![
        ("GENESYS_WEBHOOK_SECRET", GENESYS_SECRET),
        ("GENESYS_FORWARD_SECRET", FORWARD_SECRET),
        ("GENESYS_WORKER_RETRY_BASE_MS", "100"),
        ("GENESYS_INBOX_LEASE_SECS", "2"),
    ];
    env.extend_from_slice(extra);
    ReceiverProcess::start_program_in(
        Path::new(BIN),
        &[
            "serve",
            "--forward",
            &forward,
            "--concurrency",
            "4",
            "--max-attempts",
            "40",
        ],
        dir,
        &env,
    )
}

/// The event `seq` as Genesys would post it: signed, of conversation `seq % 4`.
pub fn event(seq: u64) -> Vec<u8> {
    let kind = match seq % 10 {
        3 => "flaky5xx",
        6 => "flaky429",
        8 if seq % 20 == 8 => "reject",
        _ => "ok",
    };
    serde_json::to_vec(&serde_json::json!({
        "id": format!("message-{seq}"),
        "conversationId": format!("conversation-{}", seq % 4),
        "type": "Text",
        "seq": seq,
        "kind": kind,
    }))
    .unwrap()
}

/// Posts `seq` signed; whether the relay answered 200.
pub async fn post(relay: SocketAddr, seq: u64) -> bool {
    let body = event(seq);
    let signature = hub_signature(GENESYS_SECRET, &body);
    let answer = common::post_bytes(
        relay,
        "/webhook/receive",
        &[
            ("Content-Type", "application/json"),
            ("X-Hub-Signature-256", &signature),
        ],
        &body,
    )
    .await;
    answer.status == 200
}

/// The dead letters of the inbox at `inbox`, through `genesys-webhook inbox`.
pub fn dead_letters(inbox: &str) -> Vec<serde_json::Value> {
    let output = std::process::Command::new(BIN)
        .args(["--json", "inbox", "--inbox", inbox, "list", "--dead"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    listed["events"].as_array().cloned().unwrap_or_default()
}

/// The relay on the inbox `location` (SQLite in `dir` when `None`), against an
/// application that is down at first, fails some events' first two attempts and refuses
/// others, with a kill -9 of the relay in the middle: every event answered 200 arrives,
/// with one id across its attempts, in order per conversation; refused events are dead
/// letters with the status and the first KiB of the answer.
pub async fn relay_through_failures_an_outage_and_kill_9(location: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("genesys-inbox.db").display());
    let inbox = location.unwrap_or(&sqlite).to_owned();
    let env = [("GENESYS_INBOX", inbox.as_str())];
    let app = Arc::new(App::default());
    let app_port = free_port();
    let mut relay = start_relay(dir.path(), app_port, &env);
    let mut accepted = Vec::new();

    // The application is down: Genesys is still answered 200 at once.
    for seq in 0..20 {
        assert!(post(relay.addr, seq).await, "event {seq} refused");
        accepted.push(seq);
    }
    // Down for a while: until the relay has failed to connect a few times.
    common::eventually("the relay tried the application and failed", async || {
        relay.count("could not connect") >= 8
    })
    .await;
    assert!(app.arrivals().is_empty());

    // Up: events flow while more arrive; kill -9 of the relay in the middle.
    let server = serve_app(Arc::clone(&app), app_port).await;
    for seq in 20..40 {
        assert!(post(relay.addr, seq).await, "event {seq} refused");
        accepted.push(seq);
    }
    common::eventually("some events reached the application", async || {
        app.delivered().len() >= 8
    })
    .await;
    relay.kill();
    let mut relay = start_relay(dir.path(), app_port, &env);
    for seq in 40..60 {
        assert!(post(relay.addr, seq).await, "event {seq} refused");
        accepted.push(seq);
    }

    let rejected: Vec<u64> = accepted
        .iter()
        .copied()
        .filter(|seq| seq % 20 == 8)
        .collect();
    let expected: Vec<u64> = accepted
        .iter()
        .copied()
        .filter(|seq| !rejected.contains(seq))
        .collect();
    common::eventually("every accepted event was delivered", async || {
        app.delivered() == expected
    })
    .await;
    common::eventually("every refused event is a dead letter", async || {
        dead_letters(&inbox).len() == rejected.len()
    })
    .await;
    let status = relay.terminate();
    assert!(status.success(), "{status:?}");
    server.abort();

    let arrivals = app.arrivals();
    // Every request was signed as documented, and the application verified it.
    assert!(arrivals.iter().all(|a| a.signed), "{arrivals:?}");
    // One id per event, the same on every attempt; attempts counted upwards.
    let mut by_seq: BTreeMap<u64, Vec<&Arrival>> = BTreeMap::new();
    for arrival in &arrivals {
        by_seq.entry(arrival.seq).or_default().push(arrival);
    }
    for (seq, tries) in &by_seq {
        assert!(
            tries
                .iter()
                .all(|a| a.id == tries[0].id && !a.id.is_empty()),
            "event {seq} changed id: {tries:?}"
        );
        assert!(
            tries.windows(2).all(|w| w[0].attempt < w[1].attempt) && tries[0].attempt >= 1,
            "event {seq}'s attempts: {tries:?}"
        );
        assert!(
            humantime::parse_rfc3339(&tries[0].received_at).is_ok(),
            "{tries:?}"
        );
    }
    // The flaky events failed twice, then went through.
    for seq in accepted.iter().filter(|seq| matches!(*seq % 10, 3 | 6)) {
        let tries = &by_seq[seq];
        assert!(tries.len() >= 3, "event {seq}: {tries:?}");
        assert!(tries[..2].iter().all(|a| a.status >= 429), "{tries:?}");
    }
    let ids: HashMap<&str, u64> = arrivals.iter().map(|a| (a.id.as_str(), a.seq)).collect();
    assert_eq!(ids.len(), by_seq.len(), "two events shared an id");
    // In order per conversation: repeated attempts of one event aside, each
    // conversation's requests follow the order Genesys posted them in.
    let mut conversations: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for arrival in &arrivals {
        let line = conversations.entry(&arrival.conversation).or_default();
        if line.last() != Some(&arrival.seq) {
            line.push(arrival.seq);
        }
    }
    for (conversation, line) in &conversations {
        let posted: Vec<u64> = accepted
            .iter()
            .copied()
            .filter(|seq| format!("conversation-{}", seq % 4) == *conversation)
            .collect();
        assert_eq!(*line, posted, "{conversation} out of order");
    }
    // Dead letters carry the status and the first KiB of the answer.
    for dead in dead_letters(&inbox) {
        let reason = dead["last_error"].as_str().unwrap_or_default();
        assert_eq!(reason, format!("HTTP 422: {}", "R".repeat(1024)), "{dead}");
    }
}
