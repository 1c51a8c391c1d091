//! Helpers of the crash tests: many distinct signed events, and counting which were
//! processed, by id, in receivers' logs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use genesys_webhook::signature::sign_open_messaging;

use super::*;

pub const SECRET: &str = "durable-secret";

pub fn event(id: &str) -> String {
    format!(r#"{{"event":"routing:conversation:updated","conversationId":"{id}"}}"#)
}

/// Sends `count` distinct events named `<prefix>-<n>` from `senders` concurrent
/// senders, spread over `targets`; returns the ids answered `200 queued`.
pub async fn send_events(
    targets: &[SocketAddr],
    prefix: &str,
    count: usize,
    senders: usize,
) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for sender in 0..senders {
        let targets = targets.to_vec();
        let prefix = prefix.to_owned();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for n in (sender..count).step_by(senders) {
                let id = format!("{prefix}-{n}");
                let body = event(&id);
                let sig = sign_open_messaging(SECRET, body.as_bytes());
                let target = targets[n % targets.len()];
                let response = post_bytes(
                    target,
                    "/webhook/receive",
                    &[("X-Hub-Signature-256", sig.as_str())],
                    body.as_bytes(),
                )
                .await;
                if response.status == 200 {
                    assert_eq!(response.json(), serde_json::json!({"status": "queued"}));
                    acked.push(id);
                }
            }
            acked
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done.unwrap());
    }
    acked
}

/// How many times each event id was processed, over the given log lines.
pub fn processed(lines: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in lines
        .iter()
        .filter(|l| l.contains("handled conversation update"))
    {
        if let Some(id) = line
            .split("conversation_id=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// Waits until every id in `acked` was processed by one of `receivers` (plus the
/// lines of receivers already gone), and returns the counts.
pub async fn wait_for_all(
    acked: &[String],
    earlier: &[String],
    receivers: &[&ReceiverProcess],
    within: Duration,
) -> HashMap<String, usize> {
    let deadline = Instant::now() + within;
    loop {
        let mut lines = earlier.to_vec();
        for receiver in receivers {
            lines.extend(receiver.lines());
        }
        let counts = processed(&lines);
        let missing: Vec<&String> = acked
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .collect();
        if missing.is_empty() {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events were never processed, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
