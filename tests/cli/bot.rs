//! `genesys-webhook bot send` against the example bot, and `ipranges` against a fake
//! Platform API: real processes, real sockets.

use crate::cli::{run, stderr, stdout};
use crate::common;

use common::fake_cloud::{FakeCloud, CLIENT_ID, CLIENT_SECRET};
use common::ReceiverProcess as Example;

const SECRET: &str = "bot-example-s3cret";

fn start_bot(env: &[(&str, &str)]) -> (Example, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("BOT_CONNECTOR_SECRET", SECRET)];
    all.extend_from_slice(env);
    (
        Example::start_example_in("bot_connector", dir.path(), &all),
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_send_plays_a_conversation_with_the_example_bot() {
    let (bot, _dir) = start_bot(&[("BOT_TURN_DEADLINE_MS", "500")]);
    let url = format!("http://{}/botconnector", bot.addr);
    let header = format!("X-Bot-Connector-Secret={SECRET}");
    let send = |extra: &[&str]| {
        let mut args = vec!["--json", "bot", "send", "--url", &url, "--bot", "demo-bot"];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let turn = async |extra: &[&str], env: &[(&str, &str)]| {
        let args = send(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&args, b"", env).await;
        let json: serde_json::Value = serde_json::from_str(&stdout(&output))
            .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&output), stderr(&output)));
        (output.status.code(), json)
    };

    let (code, menu) = turn(&["--text", "menu", "--header", &header], &[]).await;
    assert_eq!(code, Some(0));
    let answer = &menu["answer"];
    assert_eq!(answer["botState"], "MoreData");
    let content = &answer["replyMessages"][0]["content"];
    assert_eq!(content[0]["quickReply"]["payload"], "sales");
    assert_eq!(content[1]["quickReply"]["payload"], "support");

    // The credential from the environment, a button response echoed.
    let (code, button) = turn(
        &["--button", "support"],
        &[("BOT_CONNECTOR_SECRET", SECRET)],
    )
    .await;
    assert_eq!(code, Some(0));
    assert_eq!(button["answer"]["replyMessages"][0]["text"], "support");
    assert_eq!(button["answer"]["botState"], "MoreData");

    let (code, bye) = turn(&["--text", "bye", "--header", &header], &[]).await;
    assert_eq!(code, Some(0));
    assert_eq!(bye["answer"]["botState"], "Complete");
    assert_eq!(bye["answer"]["intent"], "Goodbye");
    assert_eq!(bye["answer"]["parameters"]["lastMessage"], "bye");

    let (code, echo) = turn(&["--text", "hello there", "--header", &header], &[]).await;
    assert_eq!(
        (code, &echo["answer"]["replyMessages"][0]["text"]),
        (Some(0), &"hello there".into())
    );

    // "slow" stands for a backend slower than the deadline: Failed, in time.
    let started = std::time::Instant::now();
    let (code, slow) = turn(&["--text", "slow", "--header", &header], &[]).await;
    assert_eq!(code, Some(1), "a Failed answer fails the command");
    assert_eq!(slow["answer"]["botState"], "Failed");
    assert_eq!(slow["answer"]["errorInfo"]["errorCode"], "BotTimeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let (code, refused) = turn(
        &["--text", "menu", "--header", "X-Bot-Connector-Secret=wrong"],
        &[],
    )
    .await;
    assert_eq!(code, Some(1));
    assert_eq!(refused["status"], 401);
    assert!(refused["body"]
        .as_str()
        .unwrap()
        .contains("invalid_credentials"));
}

#[tokio::test]
async fn bot_send_without_a_credential_says_how_to_give_one() {
    let output = run(
        &[
            "bot",
            "send",
            "--url",
            "http://127.0.0.1:9/botconnector",
            "--bot",
            "demo-bot",
            "--text",
            "hi",
        ],
        b"",
        &[],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("BOT_CONNECTOR_SECRET"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_example_bot_refuses_to_start_without_its_secret() {
    let output = std::process::Command::new(common::example_binary("bot_connector"))
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BOT_CONNECTOR_SECRET"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipranges_prints_genesys_ranges_by_service() {
    let fake = FakeCloud::start().await;
    fake.set_ip_ranges(&[
        ("52.4.0.0/14", "audiohook", "outbound"),
        ("3.0.0.0/15", "open-messaging", "both"),
        ("34.0.0.0/15", "api", "inbound"),
    ]);
    let base = fake.base();
    let env = [
        ("GENESYS_CLIENT_ID", CLIENT_ID),
        ("GENESYS_CLIENT_SECRET", CLIENT_SECRET),
        ("GENESYS_API_BASE", base.as_str()),
    ];
    let all = run(&["ipranges"], b"", &env).await;
    assert_eq!(all.status.code(), Some(0), "{}", stderr(&all));
    let text = stdout(&all);
    assert!(
        text.contains("52.4.0.0/14") && text.contains("3.0.0.0/15") && text.contains("34.0.0.0/15"),
        "{text}"
    );
    let one = run(
        &[
            "--json",
            "ipranges",
            "--service",
            "audiohook",
            "--service",
            "bot-connector",
        ],
        b"",
        &env,
    )
    .await;
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let json: serde_json::Value = serde_json::from_str(&stdout(&one)).unwrap();
    assert_eq!(json["ranges"].as_array().unwrap().len(), 1);
    assert_eq!(json["ranges"][0]["cidr"], "52.4.0.0/14");
    assert_eq!(json["ranges"][0]["direction"], "outbound");
    let missing = run(&["ipranges"], b"", &[]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("GENESYS_CLIENT_ID"),
        "{}",
        stderr(&missing)
    );
}
