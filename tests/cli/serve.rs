//! `genesys-webhook serve` end to end: the relay as a real process, Genesys played
//! over real sockets, the application written here (`tests/common/relay.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};

use crate::common::relay::*;
use crate::common::{self, ReceiverProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_every_acknowledged_event_in_order_through_failures_an_outage_and_kill_9() {
    relay_through_failures_an_outage_and_kill_9(None).await;
}

/// Runs `serve` expecting it to refuse to start; its standard error.
fn refuses(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BIN)
        .arg("serve")
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serve_names_what_is_missing_or_wrong() {
    let error = refuses(&[], &[("GENESYS_WEBHOOK_SECRET", "s")]);
    assert!(error.contains("--forward"), "{error}");
    let error = refuses(
        &["--forward", "ftp://example.com/"],
        &[("GENESYS_WEBHOOK_SECRET", "s")],
    );
    assert!(error.contains("GENESYS_FORWARD_URL"), "{error}");
    let error = refuses(&["--forward", "http://127.0.0.1:9/"], &[]);
    assert!(error.contains("GENESYS_WEBHOOK_SECRET"), "{error}");
    // A flag overrides the variable: the variable's bad inbox is not used.
    let error = refuses(
        &["--forward", "http://127.0.0.1:9/", "--inbox", "nowhere://x"],
        &[("GENESYS_WEBHOOK_SECRET", "s"), ("GENESYS_INBOX", "memory")],
    );
    assert!(error.contains("GENESYS_INBOX"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_override_the_variables_and_health_readiness_and_metrics_are_served() {
    let dir = tempfile::tempdir().unwrap();
    // LISTEN_ADDR names a port in use; --listen wins.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let relay = ReceiverProcess::start_program_in(
        Path::new(BIN),
        &[
            "serve",
            "--forward",
            "http://127.0.0.1:9/genesys",
            "--listen",
            "127.0.0.1:0",
            "--inbox",
            "memory",
        ],
        dir.path(),
        &[
            ("GENESYS_WEBHOOK_SECRET", GENESYS_SECRET),
            ("LISTEN_ADDR", &taken),
            ("GENESYS_INBOX", "redis://127.0.0.1:9/"),
        ],
    );
    assert_ne!(relay.addr.to_string(), taken);
    assert!(relay.output_contains("GENESYS_FORWARD_SECRET is not set"));
    // An application down for hours does not make dead letters: 100 attempts.
    assert!(
        relay.output_contains("max_attempts=100"),
        "{:?}",
        relay.lines()
    );
    for (path, needle) in [
        ("/healthz", "ok"),
        ("/readyz", ""),
        ("/metrics", "genesys_webhook"),
    ] {
        let answer = common::get(relay.addr, path, &[]).await;
        assert_eq!(answer.status, 200, "{path}");
        assert!(answer.text().contains(needle), "{path}: {}", answer.text());
    }
    // The application is unreachable, and the relay stays ready: it can still accept.
    assert!(post(relay.addr, 1).await);
    common::eventually("a failed forward", async || {
        relay.output_contains("could not connect")
    })
    .await;
    assert_eq!(common::get(relay.addr, "/readyz", &[]).await.status, 200);
}

/// The application gets the `Content-Type` Genesys sent, kept in the inbox across a
/// restart; `application/json` when none was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_content_type_is_forwarded_as_it_was_received() {
    let dir = tempfile::tempdir().unwrap();
    let types = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&types);
    let router = axum::Router::new().route(
        "/genesys",
        axum::routing::post(
            move |headers: HeaderMap, body: axum::body::Bytes| async move {
                let content_type = headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned());
                seen.lock()
                    .unwrap()
                    .push((String::from_utf8(body.to_vec()).unwrap(), content_type));
                StatusCode::NO_CONTENT
            },
        ),
    );
    // Nothing listens on the port until the first relay is gone.
    let port = free_port();
    let forward = format!("http://127.0.0.1:{port}/genesys");
    let start = || {
        ReceiverProcess::start_program_in(
            Path::new(BIN),
            &["serve", "--forward", &forward],
            dir.path(),
            &[
                ("GENESYS_WEBHOOK_SECRET", GENESYS_SECRET),
                ("GENESYS_WORKER_RETRY_BASE_MS", "100"),
                ("GENESYS_INBOX_LEASE_SECS", "2"),
            ],
        )
    };
    let sent = [
        (r#"{"n":1}"#, Some("application/json; charset=UTF-8")),
        (r#"{"n":2}"#, Some("application/json")),
        (r#"{"n":3}"#, None),
    ];
    // Stored while the application is not listening yet, then delivered by the next
    // process.
    let mut relay = start();
    for (body, content_type) in sent {
        let signature =
            genesys_webhook::signature::sign_open_messaging(GENESYS_SECRET, body.as_bytes());
        let mut headers = vec![("X-Hub-Signature-256", signature.as_str())];
        headers.extend(content_type.map(|t| ("Content-Type", t)));
        let answer =
            common::post_bytes(relay.addr, "/webhook/receive", &headers, body.as_bytes()).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    relay.kill();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let _relay = start();
    // At least once: a repeat is allowed, and must carry the same type.
    let distinct = || {
        let mut got = types.lock().unwrap().clone();
        got.sort();
        got.dedup();
        got
    };
    common::eventually("the three events", async || distinct().len() >= 3).await;
    let got = distinct();
    assert_eq!(
        got,
        [
            (
                r#"{"n":1}"#.to_owned(),
                Some("application/json; charset=UTF-8".to_owned())
            ),
            (r#"{"n":2}"#.to_owned(), Some("application/json".to_owned())),
            (r#"{"n":3}"#.to_owned(), Some("application/json".to_owned())),
        ]
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_slower_than_the_forward_timeout_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let router = axum::Router::new().route(
        "/genesys",
        axum::routing::post(move |headers: HeaderMap| async move {
            let attempt = headers["genesys-webhook-attempt"]
                .to_str()
                .unwrap()
                .to_owned();
            seen.lock().unwrap().push(attempt.clone());
            if attempt == "1" {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let relay = ReceiverProcess::start_program_in(
        Path::new(BIN),
        &[
            "serve",
            "--forward",
            &format!("http://127.0.0.1:{port}/genesys"),
            "--forward-timeout",
            "1",
        ],
        dir.path(),
        &[
            ("GENESYS_WEBHOOK_SECRET", GENESYS_SECRET),
            ("GENESYS_WORKER_RETRY_BASE_MS", "50"),
        ],
    );
    let started = std::time::Instant::now();
    assert!(post(relay.addr, 1).await);
    common::eventually("the second attempt", async || {
        calls.lock().unwrap().len() == 2
    })
    .await;
    // Well before the application's 30 s: the attempt was given up after 1 s.
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(*calls.lock().unwrap(), ["1", "2"]);
    assert!(relay.output_contains("timed out"));
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_what_the_application_has_not_taken_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(App::default());
    let app_port = free_port();
    let mut relay = start_relay(dir.path(), app_port, &[]);
    // Kinds `ok` only: 0, 1, 2, 4, 5.
    let sent = [0, 1, 2, 4, 5];
    for seq in sent {
        assert!(post(relay.addr, seq).await);
    }
    let status = relay.terminate();
    assert!(status.success());
    assert!(relay.output_contains("pending=5"), "{:?}", relay.lines());
    let server = serve_app(Arc::clone(&app), app_port).await;
    let _relay = start_relay(dir.path(), app_port, &[]);
    common::eventually("the kept events were delivered", async || {
        app.delivered() == sent
    })
    .await;
    server.abort();
}

#[test]
fn the_dockerfile_builds_the_command_and_runs_serve() {
    let dockerfile = include_str!("../../Dockerfile");
    let build = dockerfile
        .lines()
        .find(|l| l.contains("cargo build"))
        .unwrap();
    assert!(
        build.contains("--features cli --bin genesys-webhook"),
        "{build}"
    );
    assert!(!dockerfile.contains("--example"), "{dockerfile}");
    assert!(dockerfile.contains(r#"ENTRYPOINT ["genesys-webhook"]"#));
    assert!(dockerfile.contains(r#"CMD ["serve"]"#));
}
