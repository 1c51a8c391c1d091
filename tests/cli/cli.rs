//! The `genesys-webhook` command end to end: real processes, real sockets.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use common::fake_cloud::{FakeCloud, Forced, CLIENT_ID, CLIENT_SECRET};
use common::*;
use genesys_webhook::GenesysSignatureLayer;

const BIN: &str = env!("CARGO_BIN_EXE_genesys-webhook");

/// Runs the command off the async runtime, with `stdin` as its standard input.
pub(crate) async fn run(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let stdin = stdin.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .args(&args)
            .env_remove("GENESYS_WEBHOOK_SECRET")
            .env_remove("GENESYS_CLIENT_ID")
            .env_remove("GENESYS_CLIENT_SECRET")
            .env_remove("GENESYS_REGION")
            .env_remove("GENESYS_API_BASE")
            .env_remove("GENESYS_LOGIN_BASE")
            .env_remove("GENESYS_SIGNATURE_SECRET")
            .env_remove("GENESYS_INBOX")
            .env_remove("GENESYS_INTEGRATION_ID")
            .env_remove("BOT_CONNECTOR_SECRET")
            .env_remove("BOT_CONNECTOR_HEADER")
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("genesys-webhook-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_agrees_with_the_layer_for_both_schemes() {
    let addr = serve_axum(
        Router::new()
            .route("/", post(|body: Bytes| async move { body }))
            .layer(
                GenesysSignatureLayer::builder()
                    .secret("cli-secret")
                    .build()
                    .unwrap(),
            ),
    )
    .await;
    let body = br#"{"type":"Text","text":"hi"}"#;
    let file = temp_file("sign.json", body);
    for scheme in ["genesys", "open-messaging"] {
        // From a file, and from standard input (`-` and no argument).
        for args in [
            vec![
                "sign",
                "--secret",
                "cli-secret",
                "--scheme",
                scheme,
                file.to_str().unwrap(),
            ],
            vec!["sign", "--secret", "cli-secret", "--scheme", scheme, "-"],
            vec!["sign", "--secret", "cli-secret", "--scheme", scheme],
        ] {
            let output = run(&args, body, &[]).await;
            assert!(output.status.success(), "{}", stderr(&output));
            let line = stdout(&output);
            let (name, value) = line.trim().split_once(": ").unwrap();
            let response = post_bytes(addr, "/", &[(name, value)], body).await;
            assert_eq!(response.status, 200, "{line}");
        }
    }
    // The receiver's variable stands in for --secret; the default header is the one
    // Genesys Cloud sends, as for `send`.
    let output = run(&["sign"], body, &[("GENESYS_WEBHOOK_SECRET", "cli-secret")]).await;
    assert!(stdout(&output).starts_with("X-Hub-Signature-256: "));
    assert_eq!(
        stdout(&output).trim(),
        format!(
            "X-Hub-Signature-256: {}",
            genesys_webhook::signature::sign_open_messaging("cli-secret", body)
        )
    );
}

#[tokio::test]
async fn verify_accepts_and_explains_a_trailing_newline() {
    let body = br#"{"event":"routing:conversation:updated"}"#;
    let sig = genesys_webhook::signature::sign_open_messaging("cli-secret", body);
    let header = format!("X-Hub-Signature-256: {sig}");
    let ok = run(
        &[
            "verify",
            "--secret",
            "old",
            "--secret",
            "cli-secret",
            "--header",
            &header,
        ],
        body,
        &[],
    )
    .await;
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("secret #1"), "{}", stdout(&ok));

    let mut with_newline = body.to_vec();
    with_newline.push(b'\n');
    let bad = run(
        &["verify", "--secret", "cli-secret", "--header", &header],
        &with_newline,
        &[],
    )
    .await;
    assert_eq!(bad.status.code(), Some(1));
    let text = stdout(&bad);
    assert!(text.contains("newline"), "{text}");
    // At most 8 characters of any digest.
    let computed = genesys_webhook::signature::sign_open_messaging("cli-secret", &with_newline);
    let computed = computed.trim_start_matches("sha256=");
    assert!(!text.contains(&computed[..9]), "{text}");
    let received = sig.trim_start_matches("sha256=");
    assert!(!text.contains(&received[..9]), "{text}");

    let json = run(
        &[
            "verify",
            "--json",
            "--secret",
            "cli-secret",
            "--header",
            &header,
        ],
        &with_newline,
        &[],
    )
    .await;
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert!(doc["reasons"][0].as_str().unwrap().contains("newline"));
}

#[tokio::test]
async fn verify_explains_stray_whitespace_in_the_secret_and_the_wrong_header() {
    let body = b"{}";
    let sig = genesys_webhook::signature::sign_genesys("cli-secret", body);
    let header = format!("X-Genesys-Signature: {sig}");
    let padded = run(
        &["verify", "--secret", "cli-secret \n", "--header", &header],
        body,
        &[],
    )
    .await;
    assert_eq!(padded.status.code(), Some(1));
    assert!(
        stdout(&padded).contains("whitespace"),
        "{}",
        stdout(&padded)
    );

    let om = genesys_webhook::signature::sign_open_messaging("cli-secret", body);
    let wrong_header = format!("X-Genesys-Signature: {om}");
    let output = run(
        &[
            "verify",
            "--secret",
            "cli-secret",
            "--header",
            &wrong_header,
        ],
        body,
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("X-Hub-Signature-256"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn usage_and_io_errors_exit_2() {
    let missing_secret = run(&["sign"], b"{}", &[]).await;
    assert_eq!(missing_secret.status.code(), Some(2));
    assert!(stderr(&missing_secret).contains("GENESYS_WEBHOOK_SECRET"));
    let missing_file = run(
        &["sign", "--secret", "s", "/definitely/not/here.json"],
        b"",
        &[],
    )
    .await;
    assert_eq!(missing_file.status.code(), Some(2));
    let bad_header = run(
        &["verify", "--secret", "s", "--header", "no colon here"],
        b"",
        &[],
    )
    .await;
    assert_eq!(bad_header.status.code(), Some(2));
    let refused = run(&["send", "http://127.0.0.1:1/", "--secret", "s"], b"", &[]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_the_example_receiver_and_tamper_proves_it_rejects_forgeries() {
    let receiver = ReceiverProcess::start(&[("GENESYS_WEBHOOK_SECRET", "send-secret")]);
    let url = format!("http://{}/webhook/receive", receiver.addr);
    for scheme in ["genesys", "open-messaging"] {
        let output = run(
            &["send", &url, "--secret", "send-secret", "--scheme", scheme],
            b"",
            &[],
        )
        .await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{} {}",
            stdout(&output),
            stderr(&output)
        );
        assert!(stdout(&output).contains("200"), "{}", stdout(&output));
        assert!(stdout(&output).contains("queued"), "{}", stdout(&output));
    }
    let file = temp_file(
        "send.json",
        br#"{"event":"routing:conversation:updated","conversationId":"from-file"}"#,
    );
    let from_file = run(
        &[
            "send",
            &url,
            "--secret",
            "send-secret",
            "--header",
            "X-Test: 1",
            file.to_str().unwrap(),
        ],
        b"",
        &[],
    )
    .await;
    assert_eq!(from_file.status.code(), Some(0));

    let tamper = run(
        &["send", &url, "--secret", "send-secret", "--tamper"],
        b"",
        &[],
    )
    .await;
    assert_eq!(tamper.status.code(), Some(0), "{}", stdout(&tamper));
    assert!(stdout(&tamper).contains("401"));

    let wrong_secret = run(&["send", &url, "--secret", "other", "--json"], b"", &[]).await;
    assert_eq!(wrong_secret.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&wrong_secret.stdout).unwrap();
    assert_eq!(doc["status"], 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamper_against_an_unprotected_endpoint_fails_loudly() {
    let addr = serve_axum(Router::new().route("/", post(|| async { "ok" }))).await;
    let output = run(
        &[
            "send",
            &format!("http://{addr}/"),
            "--secret",
            "s",
            "--tamper",
        ],
        b"",
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("ACCEPTED A FORGED SIGNATURE"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_lists_updates_and_deletes_against_the_api() {
    let fake = FakeCloud::start().await;
    let base = fake.base();
    let env = [
        ("GENESYS_CLIENT_ID", CLIENT_ID),
        ("GENESYS_CLIENT_SECRET", CLIENT_SECRET),
        ("GENESYS_API_BASE", base.as_str()),
    ];
    let created = run(
        &[
            "setup",
            "--webhook-url",
            "https://hooks.example.com/webhook/receive",
            "--name",
            "cli-test",
            "--webhook-header",
            "X-Tenant: acme",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let text = stdout(&created);
    let line = text
        .lines()
        .find(|l| l.contains("GENESYS_WEBHOOK_SECRET="))
        .expect(&text);
    let secret = line
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("GENESYS_WEBHOOK_SECRET=");
    assert!(secret.len() >= 22, "at least 128 bits: {secret}");
    let sent = fake.with(|f| f.last_create_body.clone()).unwrap();
    assert_eq!(
        sent["outboundNotificationWebhookSignatureSecretToken"],
        secret
    );
    assert_eq!(sent["webhookHeaders"]["X-Tenant"], "acme");
    assert!(
        !stderr(&created).contains("warning"),
        "{}",
        stderr(&created)
    );

    // Flags win over the environment; --json for scripts; a warning for plain HTTP.
    let json = run(
        &[
            "setup",
            "--json",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--api-base",
            &base,
            "--webhook-url",
            "http://hooks.example.com:8080/x",
            "--allow-insecure-url",
            "--signature-secret",
            "given-secret",
        ],
        b"",
        &[],
    )
    .await;
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["action"], "created");
    assert!(
        doc.get("signatureSecret").is_none(),
        "a given secret is not echoed"
    );
    assert!(doc["warnings"][0].as_str().unwrap().contains("HTTPS"));
    assert!(stderr(&json).contains("warning"));
    let id = doc["integration"]["id"].as_str().unwrap().to_owned();

    let list = run(&["setup", "--list", "--json"], b"", &env).await;
    let doc: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(doc["integrations"].as_array().unwrap().len(), 2);

    let updated = run(
        &[
            "setup",
            "--update",
            &id,
            "--webhook-url",
            "https://new.example.com/hook",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(updated.status.code(), Some(0), "{}", stderr(&updated));
    assert!(stdout(&updated).contains("https://new.example.com/hook"));

    let deleted = run(&["setup", "--delete", &id], b"", &env).await;
    assert_eq!(deleted.status.code(), Some(0), "{}", stderr(&deleted));
    let list = run(&["setup", "--list"], b"", &env).await;
    assert!(
        stdout(&list).starts_with("1 Open Messaging integration"),
        "{}",
        stdout(&list)
    );

    let gone = run(&["setup", "--delete", &id], b"", &env).await;
    assert_eq!(gone.status.code(), Some(1));

    fake.force_create(Forced::new(403).body(r#"{"message":"You are missing the following permission(s): [messaging:integration:add]","code":"missing.permissions","status":403}"#));
    let forbidden = run(
        &["setup", "--webhook-url", "https://hooks.example.com/x"],
        b"",
        &env,
    )
    .await;
    assert_eq!(forbidden.status.code(), Some(1));
    assert!(
        stderr(&forbidden).contains("messaging:integration:add"),
        "{}",
        stderr(&forbidden)
    );

    let no_credentials = run(
        &["setup", "--list"],
        b"",
        &[("GENESYS_API_BASE", base.as_str())],
    )
    .await;
    assert_eq!(no_credentials.status.code(), Some(2));
    for output in [&created, &json, &list, &forbidden] {
        assert!(!stdout(output).contains(CLIENT_SECRET) && !stderr(output).contains(CLIENT_SECRET));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_says_what_is_missing_all_at_once_and_refuses_urls_genesys_cannot_call() {
    let nothing = run(&["setup"], b"", &[]).await;
    assert_eq!(nothing.status.code(), Some(2));
    let text = stderr(&nothing);
    assert!(
        text.contains("--webhook-url") && text.contains("--list"),
        "{text}"
    );
    assert!(!text.contains("client"), "the action comes first: {text}");

    let no_credentials = run(&["setup", "--list"], b"", &[]).await;
    assert_eq!(no_credentials.status.code(), Some(2));
    let text = stderr(&no_credentials);
    for needed in [
        "GENESYS_CLIENT_ID",
        "GENESYS_CLIENT_SECRET",
        "GENESYS_REGION",
    ] {
        assert!(text.contains(needed), "{needed} not named in: {text}");
    }

    for url in [
        "http://hooks.example.com/x",
        "https://hooks.example.com:8443/x",
    ] {
        let refused = run(
            &["setup", "--webhook-url", url],
            b"",
            &[
                ("GENESYS_CLIENT_ID", CLIENT_ID),
                ("GENESYS_CLIENT_SECRET", CLIENT_SECRET),
            ],
        )
        .await;
        assert_eq!(refused.status.code(), Some(2), "{url}");
        assert!(
            stderr(&refused).contains("--allow-insecure-url"),
            "{}",
            stderr(&refused)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_shows_a_generated_secret_once_and_rotates_without_typing_one() {
    let fake = FakeCloud::start().await;
    let base = fake.base();
    let env = [
        ("GENESYS_CLIENT_ID", CLIENT_ID),
        ("GENESYS_CLIENT_SECRET", CLIENT_SECRET),
        ("GENESYS_API_BASE", base.as_str()),
    ];
    let created = run(
        &[
            "setup",
            "--json",
            "--webhook-url",
            "https://hooks.example.com/webhook/receive",
            "--webhook-header",
            "Authorization: Bearer tenant-token-123",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let out = stdout(&created);
    let sent = fake.with(|f| f.last_create_body.clone()).unwrap();
    let secret = sent["outboundNotificationWebhookSignatureSecretToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(out.matches(&secret).count(), 1, "{out}");
    assert!(out.contains(&format!("GENESYS_WEBHOOK_SECRET={secret}")));
    assert!(
        !out.contains("tenant-token-123"),
        "a header value was printed: {out}"
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = doc["integration"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        doc["integration"]["webhookHeaders"],
        serde_json::json!(["Authorization"])
    );

    let list = run(&["setup", "--list"], b"", &env).await;
    assert!(stdout(&list).contains("Authorization"), "{}", stdout(&list));
    assert!(!stdout(&list).contains("tenant-token-123"));

    // Rotation: a fresh secret, sent and shown once.
    let rotated = run(&["setup", "--update", &id, "--generate-secret"], b"", &env).await;
    assert_eq!(rotated.status.code(), Some(0), "{}", stderr(&rotated));
    let sent = fake.with(|f| f.last_create_body.clone()).unwrap();
    let new_secret = sent["outboundNotificationWebhookSignatureSecretToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    let text = stdout(&rotated);
    assert_eq!(text.matches(&new_secret).count(), 1, "{text}");
    assert!(text.contains(&format!("GENESYS_WEBHOOK_SECRET={new_secret}")));

    // Or into a file only its owner reads, and nowhere on the screen.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhook-secret");
    let to_file = run(
        &[
            "setup",
            "--update",
            &id,
            "--generate-secret",
            "--secret-out",
            path.to_str().unwrap(),
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(to_file.status.code(), Some(0), "{}", stderr(&to_file));
    let written = std::fs::read_to_string(&path).unwrap();
    let written = written.trim_end();
    assert!(written.len() >= 43);
    assert!(!stdout(&to_file).contains(written) && !stderr(&to_file).contains(written));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_the_environment_or_a_file_and_help_names_the_variable() {
    let help = run(&["sign", "--help"], b"", &[]).await;
    assert!(
        stdout(&help).contains("GENESYS_WEBHOOK_SECRET"),
        "{}",
        stdout(&help)
    );
    let body = b"{\"a\":1}";
    let expected = genesys_webhook::signature::sign_open_messaging("file-secret", body);
    let file = temp_file("secret-file", b"file-secret\n");
    let from_file = run(
        &[
            "sign",
            "--scheme",
            "open-messaging",
            "--secret-file",
            file.to_str().unwrap(),
        ],
        body,
        &[],
    )
    .await;
    assert!(
        stdout(&from_file).contains(&expected),
        "{}",
        stdout(&from_file)
    );
    let from_env = run(
        &["sign", "--scheme", "open-messaging"],
        body,
        &[("GENESYS_WEBHOOK_SECRET", "file-secret")],
    )
    .await;
    assert!(stdout(&from_env).contains(&expected));
    let secret_help = run(
        &["setup", "--help"],
        b"",
        &[("GENESYS_CLIENT_SECRET", "do-not-show-me")],
    )
    .await;
    assert!(!stdout(&secret_help).contains("do-not-show-me"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_ends_a_failure_with_one_line_and_escapes_what_the_receiver_says() {
    let hostile = Router::new().route(
        "/",
        post(|| async {
            (
                http::StatusCode::UNAUTHORIZED,
                "{\"error\":\"invalid_signature\"}\x1b[2J\x1b]0;owned\x07",
            )
        }),
    );
    let addr = serve_axum(hostile).await;
    let url = format!("http://{addr}/");
    let output = run(&["send", &url], b"", &[("GENESYS_WEBHOOK_SECRET", "s")]).await;
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    let last = out.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("FAILED: the receiver answered 401"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_retry_after_from_a_gateway_is_an_error_not_a_crash() {
    for value in ["1e20", "18446744073709551616"] {
        let fake = FakeCloud::start().await;
        for _ in 0..10 {
            fake.force_token(Forced::new(429).header("retry-after", value));
        }
        let base = fake.base();
        let output = run(
            &["setup", "--list"],
            b"",
            &[
                ("GENESYS_CLIENT_ID", CLIENT_ID),
                ("GENESYS_CLIENT_SECRET", CLIENT_SECRET),
                ("GENESYS_API_BASE", base.as_str()),
            ],
        )
        .await;
        let code = output.status.code();
        assert!(
            matches!(code, Some(1 | 2)),
            "{value}: {code:?} {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_sends_a_message_a_receipt_and_typing_to_the_api() {
    let fake = FakeCloud::start().await;
    let base = fake.base();
    let integration = "6685f1e2-0000-4000-8000-000000000001";
    let env = [
        ("GENESYS_CLIENT_ID", CLIENT_ID),
        ("GENESYS_CLIENT_SECRET", CLIENT_SECRET),
        ("GENESYS_API_BASE", base.as_str()),
        ("GENESYS_INTEGRATION_ID", integration),
    ];
    let message = run(
        &[
            "inbound",
            "message",
            "--text",
            "Hello!",
            "--from",
            "customer-42",
            "--prefetch-conversation-id",
            "--json",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(message.status.code(), Some(0), "{}", stderr(&message));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&message)).unwrap();
    assert_eq!(answer["conversationId"], "conv-prefetched");
    let receipt = run(
        &[
            "inbound",
            "receipt",
            "--message-id",
            "8085",
            "--to",
            "customer-42",
            "--status",
            "Delivered",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(receipt.status.code(), Some(0), "{}", stderr(&receipt));
    // There is no inbound `Read`: refused before any call, naming the five.
    let read = run(
        &[
            "inbound",
            "receipt",
            "--message-id",
            "8085",
            "--to",
            "c",
            "--status",
            "read",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(read.status.code(), Some(2), "{}", stderr(&read));
    assert!(
        stderr(&read).contains("Sent, Delivered, Failed, Published, Removed"),
        "{}",
        stderr(&read)
    );
    let typing = run(
        &[
            "inbound",
            "--integration",
            integration,
            "typing",
            "--from",
            "customer-42",
        ],
        b"",
        &env[..3],
    )
    .await;
    assert_eq!(typing.status.code(), Some(0), "{}", stderr(&typing));

    let calls = fake.inbound_calls();
    let base_path = format!("/api/v2/conversations/messages/{integration}/inbound/open");
    assert_eq!(
        calls[0].0,
        format!("{base_path}/message?prefetchConversationId=true")
    );
    assert_eq!(calls[0].1["text"], "Hello!");
    assert_eq!(calls[0].1["channel"]["from"]["id"], "customer-42");
    assert_eq!(calls[1].0, format!("{base_path}/receipt"));
    assert_eq!(
        (&calls[1].1["id"], &calls[1].1["status"]),
        (&"8085".into(), &"Delivered".into())
    );
    assert_eq!(calls.len(), 3, "the refused receipt was not sent");
    assert_eq!(calls[2].0, format!("{base_path}/event"));
    assert_eq!(calls[2].1["events"][0]["eventType"], "Typing");

    let button = run(
        &[
            "inbound",
            "button-response",
            "--from",
            "customer-42",
            "--originating-message-id",
            "8085",
            "--text",
            "Sales",
            "--payload",
            "sales",
            "--kind",
            "button",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(button.status.code(), Some(0), "{}", stderr(&button));
    let file = run(
        &[
            "inbound",
            "message",
            "--from",
            "customer-42",
            "--attachment",
            "https://cdn.example.com/a.png",
            "--media-type",
            "image",
            "--mime",
            "image/png",
            "--message-id",
            "provider-9",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(file.status.code(), Some(0), "{}", stderr(&file));
    let calls = fake.inbound_calls();
    assert_eq!(calls[3].0, format!("{base_path}/structured/response"));
    assert_eq!(calls[3].1["originatingMessageId"], "8085");
    assert_eq!(
        calls[3].1["buttonResponse"],
        serde_json::json!({"type": "Button", "text": "Sales", "payload": "sales"})
    );
    assert_eq!(calls[4].1["channel"]["messageId"], "provider-9");
    assert_eq!(calls[4].1["content"][0]["attachment"]["mediaType"], "Image");
    assert_eq!(
        calls[4].1["content"][0]["attachment"]["url"],
        "https://cdn.example.com/a.png"
    );

    let missing = run(&["inbound", "typing", "--from", "c"], b"", &env[..3]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("GENESYS_INTEGRATION_ID"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_posts_each_sample_message_signed_as_genesys_signs_it() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = std::sync::Arc::clone(&seen);
    let addr = serve_axum(
        Router::new()
            .route(
                "/",
                post(
                    move |message: genesys_webhook::openmessaging::OpenMessage| {
                        let log = std::sync::Arc::clone(&log);
                        async move {
                            log.lock().unwrap().push(message.kind.to_string());
                            "ok"
                        }
                    },
                ),
            )
            .route_layer(
                GenesysSignatureLayer::builder()
                    .secret("send-secret")
                    .build()
                    .unwrap(),
            ),
    )
    .await;
    let url = format!("http://{addr}/");
    for kind in ["text", "typing", "receipt", "structured"] {
        let sent = run(
            &["send", &url, "--message", kind],
            b"",
            &[("GENESYS_WEBHOOK_SECRET", "send-secret")],
        )
        .await;
        assert_eq!(sent.status.code(), Some(0), "{kind}: {}", stderr(&sent));
    }
    assert_eq!(
        *seen.lock().unwrap(),
        ["Text", "Event", "Receipt", "Structured"]
    );
}

#[tokio::test]
async fn send_takes_a_ca_certificate_for_a_receiver_behind_a_private_one() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let made = made.expect("openssl is needed to make a test certificate");
    assert!(
        made.status.success(),
        "openssl could not make a test certificate"
    );
    let env = [("GENESYS_WEBHOOK_SECRET", "s")];
    // A real certificate is read, and the command goes on to the (closed) port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("https://{closed}/");
    let cert_arg = cert.display().to_string();
    let sent = run(&["send", &url, "--cacert", &cert_arg], b"", &env).await;
    assert_eq!(sent.status.code(), Some(2));
    assert!(
        stderr(&sent).contains("could not reach"),
        "{}",
        stderr(&sent)
    );
    // Not a certificate: said so, before anything is sent.
    let key_arg = dir.path().join("nothing.pem");
    std::fs::write(&key_arg, "not a certificate").unwrap();
    let key_arg = key_arg.display().to_string();
    let refused = run(&["send", &url, "--cacert", &key_arg], b"", &env).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("--cacert"),
        "{}",
        stderr(&refused)
    );
}
