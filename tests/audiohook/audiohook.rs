//! The AudioHook example server and the `genesys-webhook audiohook` simulator against
//! each other, over real sockets: a whole session, its WAV recording, a forged
//! signature, and protocol errors.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const CLI: &str = env!("CARGO_BIN_EXE_genesys-webhook");
const API_KEY: &str = "simulator-api-key";
const SECRET: &str = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=";

fn example_binary() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    deps.parent().unwrap().join("examples").join("audiohook")
}

struct Server {
    child: Child,
    addr: SocketAddr,
    /// The server's log, line by line.
    lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Waits until the server logs a line containing `needle`.
    fn logged(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => {}
                Err(_) => panic!("the server never logged {needle:?}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(example_binary())
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the audiohook example is built by `cargo test --all-features`");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (line_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on http://").nth(1) {
                let _ = tx.send(addr.trim().parse::<SocketAddr>().unwrap());
            }
            let _ = line_tx.send(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the AudioHook example did not start");
    Server { child, addr, lines }
}

fn simulate(addr: SocketAddr, args: &[&str], secret: Option<&str>) -> Output {
    let mut command = Command::new(CLI);
    command
        .arg("audiohook")
        .arg(format!("ws://{addr}/audiohook/ws"))
        .args(args)
        .env("AUDIOHOOK_API_KEY", API_KEY)
        .env_remove("AUDIOHOOK_CLIENT_SECRET");
    if let Some(secret) = secret {
        command.env("AUDIOHOOK_CLIENT_SECRET", secret);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_simulator_completes_a_session_and_the_recording_has_the_right_length() {
    let record = tempfile::tempdir().unwrap();
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
        ("AUDIOHOOK_RECORD_DIR", record.path().to_str().unwrap()),
    ]);
    for (args, channels) in [
        (&["--seconds", "2", "--fast"][..], 1u16),
        (&["--seconds", "2", "--fast", "--stereo"][..], 2),
        (&["--seconds", "2", "--fast", "--stereo", "--l16"][..], 2),
    ] {
        let output = simulate(server.addr, args, Some(SECRET));
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        assert!(
            stdout(&output).contains("pong, closed"),
            "{}",
            stdout(&output)
        );
        // The server logs this once the WAV file is finished.
        server.logged("monitor session recorded");
        let wav = std::fs::read_dir(record.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| hound::WavReader::open(p).is_ok_and(|r| r.spec().channels == channels))
            .unwrap_or_else(|| panic!("no recording with {channels} channel(s)"));
        let reader = hound::WavReader::open(&wav).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.spec().bits_per_sample, 16);
        assert_eq!(reader.duration(), 16_000, "two seconds at 8 kHz");
        // The tone decodes to audible samples, not silence.
        let loud = reader
            .into_samples::<i16>()
            .filter_map(Result::ok)
            .filter(|s| s.unsigned_abs() > 4000)
            .count();
        assert!(loud > 1000, "{loud}");
    }
}

#[test]
fn a_connection_probe_records_nothing_and_is_opened_then_closed() {
    let record = tempfile::tempdir().unwrap();
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
        ("AUDIOHOOK_RECORD_DIR", record.path().to_str().unwrap()),
    ]);
    for mode in ["monitor", "transcription", "connector"] {
        let report = simulate_json(server.addr, &["--probe", "--mode", mode]);
        assert_eq!(report["passed"], true, "{report}");
    }
    // A real session afterwards is recorded: the directory is in use.
    let output = simulate(server.addr, &["--seconds", "1", "--fast"], Some(SECRET));
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    server.logged("monitor session recorded");
    let files: Vec<_> = std::fs::read_dir(record.path())
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one recording, for the real session only: {files:?}"
    );
}

#[test]
fn a_wav_file_is_streamed_at_real_time_pace() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speech.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for n in 0..8000 {
        writer.write_sample(((n % 40) as i16 - 20) * 500).unwrap();
    }
    writer.finalize().unwrap();
    let started = Instant::now();
    let output = simulate(
        server.addr,
        &["--audio", path.to_str().unwrap()],
        Some(SECRET),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "one second of audio took {:?}",
        started.elapsed()
    );
}

#[test]
fn tamper_is_refused_and_a_wrong_key_fails_the_simulator() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    let tamper = simulate(
        server.addr,
        &["--tamper", "--fast", "--seconds", "1"],
        Some(SECRET),
    );
    assert_eq!(tamper.status.code(), Some(0), "{}", stdout(&tamper));
    assert!(stdout(&tamper).contains("refused the forged signature"));
    let unsigned = simulate(server.addr, &["--fast", "--seconds", "1"], None);
    assert_eq!(unsigned.status.code(), Some(1), "{}", stdout(&unsigned));
    assert!(stdout(&unsigned).contains("refused the upgrade"));
}

#[test]
fn a_forged_signature_is_refused_even_for_a_key_accepted_unsigned() {
    // The example with no secret accepts unsigned upgrades for its key; a forged
    // signature is then not checked against anything it knows, and is refused too.
    let server = start(&[("AUDIOHOOK_API_KEY", API_KEY)]);
    let unsigned = simulate(server.addr, &["--fast", "--seconds", "1"], None);
    assert_eq!(unsigned.status.code(), Some(0), "{}", stdout(&unsigned));
    let tamper = simulate(server.addr, &["--tamper", "--fast", "--seconds", "1"], None);
    assert_eq!(tamper.status.code(), Some(0), "{}", stdout(&tamper));
}

#[test]
fn the_example_refuses_to_start_without_an_api_key() {
    let output = Command::new(example_binary())
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("AUDIOHOOK_API_KEY"));
}

#[tokio::test]
async fn a_sequence_gap_or_a_malformed_message_gets_disconnect_error() {
    let server = start(&[("AUDIOHOOK_API_KEY", API_KEY)]);
    for bad in [
        r#"{"version":"2","id":"s","type":"ping","seq":2,"serverseq":0,"position":"PT0S","parameters":{}}"#,
        "this is not json",
    ] {
        let mut request = format!("ws://{}/audiohook/ws", server.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("x-api-key", API_KEY.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket.send(Message::Text(bad.into())).await.unwrap();
        let _ = SinkExt::<Message>::flush(&mut socket).await;
        let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = reply else {
            panic!("expected disconnect, got {reply:?}")
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "disconnect", "{text}");
        assert_eq!(value["parameters"]["reason"], "error");
        for field in ["version", "id", "seq", "clientseq", "parameters"] {
            assert!(value.get(field).is_some(), "{field} missing: {text}");
        }
        // Then the server closes the connection.
        let end = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap();
        assert!(
            matches!(end, None | Some(Ok(Message::Close(_))) | Some(Err(_))),
            "{end:?}"
        );
    }
}

fn simulate_json(addr: SocketAddr, args: &[&str]) -> serde_json::Value {
    let mut command = Command::new(CLI);
    command
        .arg("--json")
        .arg("audiohook")
        .arg(format!("ws://{addr}/audiohook/ws"))
        .args(args)
        .env("AUDIOHOOK_API_KEY", API_KEY)
        .env("AUDIOHOOK_CLIENT_SECRET", SECRET);
    let output = command.output().unwrap();
    let text = stdout(&output);
    let start = text.find('{').unwrap_or_else(|| panic!("no JSON: {text}"));
    serde_json::from_str(&text[start..]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_transcription_session_gets_one_final_transcript_per_utterance_on_the_stream_timeline() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    // Bursts of tone: 0–1.5 s, 2.5–4 s, 5–6.5 s, on both channels.
    let report = simulate_json(
        server.addr,
        &[
            "--mode",
            "transcription",
            "--stereo",
            "--seconds",
            "7",
            "--fast",
        ],
    );
    assert_eq!(report["passed"], true, "{report}");
    let transcripts = report["transcripts"].as_array().unwrap();
    for channel in [0, 1] {
        let mine: Vec<_> = transcripts
            .iter()
            .filter(|t| t["channelId"] == channel)
            .collect();
        assert_eq!(mine.len(), 3, "{report}");
        // Each starts within 200 ms before its burst and lasts about as long.
        for (t, start) in mine.iter().zip([0.0, 2.5, 5.0]) {
            let offset = t["offset"].as_f64().unwrap();
            let duration = t["duration"].as_f64().unwrap();
            assert!(offset <= start + 0.05 && offset >= start - 0.25, "{t}");
            assert!((1.0..=1.8).contains(&duration), "{t}");
            assert!(!t["text"].as_str().unwrap().is_empty());
        }
    }
}

#[test]
fn transcripts_account_for_pauses_discards_and_updates() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    let report = simulate_json(
        server.addr,
        &[
            "--mode",
            "transcription",
            "--stereo",
            "--seconds",
            "4",
            "--fast",
            "--pause",
            "1",
            "--discard",
            "--update",
            "fr-FR",
        ],
    );
    assert_eq!(report["passed"], true, "{report}");
    // 3.5 s were sent (0.5 s discarded); every transcript lies within them, in order.
    let transcripts = report["transcripts"].as_array().unwrap();
    assert!(transcripts.len() >= 4, "{report}");
    let mut last_end = 0.0f64;
    for t in transcripts.iter().filter(|t| t["channelId"] == 0) {
        let (offset, duration) = (
            t["offset"].as_f64().unwrap(),
            t["duration"].as_f64().unwrap(),
        );
        assert!(offset + 1e-9 >= last_end - 0.25, "{report}");
        assert!(offset + duration <= 3.5 + 1e-9, "{report}");
        last_end = offset + duration;
    }
    // A discard ends no utterance (as in the reference server, and as Genesys' suite
    // expects); the pause does: no transcript spans it. It comes halfway through the
    // frames, 1.5 s into the stream (0.5 s of the first 2 s were discarded).
    for t in transcripts {
        let (offset, duration) = (
            t["offset"].as_f64().unwrap(),
            t["duration"].as_f64().unwrap(),
        );
        assert!(
            !(offset < 1.5 - 1e-9 && offset + duration > 1.5 + 1e-9),
            "{report}"
        );
    }
}

#[test]
fn opened_lists_the_supported_languages_when_open_asks_for_them() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    let output = simulate(
        server.addr,
        &[
            "--mode",
            "transcription",
            "--seconds",
            "1",
            "--fast",
            "--stereo",
        ],
        Some(SECRET),
    );
    assert!(
        stdout(&output).contains("supported languages en-US"),
        "{}",
        stdout(&output)
    );
    let output = simulate(server.addr, &["--seconds", "1", "--fast"], Some(SECRET));
    assert!(
        !stdout(&output).contains("supported languages"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn an_audio_connector_session_answers_dtmf_with_tones_and_hands_back_the_digits() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    for (format, bytes_per_sample) in [(None, 1), (Some("--l16"), 2)] {
        let mut args = vec![
            "--mode",
            "connector",
            "--seconds",
            "1",
            "--fast",
            "--dtmf",
            "12#9",
        ];
        args.extend(format);
        let report = simulate_json(server.addr, &args);
        assert_eq!(report["passed"], true, "{report}");
        assert_eq!(report["disconnect"], "completed");
        assert_eq!(
            report["outputVariables"],
            serde_json::json!({"digits": "12"})
        );
        // The turn is reported to Architect, without the digits themselves.
        assert_eq!(
            report["botTurns"],
            serde_json::json!([{"disposition": "match", "confidence": 1.0}]),
            "{report}"
        );
        // Two tones of 150 ms at 8 kHz, mono, in the selected format.
        assert_eq!(
            report["audioBytesReceived"],
            2 * 1200 * bytes_per_sample,
            "{report}"
        );
    }
}

#[test]
fn pause_resume_discard_and_update_complete_in_every_format() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    for extra in [&[][..], &["--l16"][..], &["--l16", "--stereo"][..]] {
        let mut args = vec![
            "--seconds",
            "2",
            "--fast",
            "--pause",
            "0.5",
            "--discard",
            "--update",
            "fr-FR",
        ];
        args.extend(extra);
        let output = simulate(server.addr, &args, Some(SECRET));
        assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
        assert!(
            stdout(&output).contains("paused 0.5 s and resumed"),
            "{}",
            stdout(&output)
        );
    }
}

#[test]
fn with_failure_mode_disconnect_a_forged_upgrade_is_disconnected_unauthorized_after_500_ms() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
        ("AUDIOHOOK_FAILURE", "disconnect"),
    ]);
    let started = Instant::now();
    let tamper = simulate(
        server.addr,
        &["--tamper", "--fast", "--seconds", "1"],
        Some(SECRET),
    );
    assert_eq!(tamper.status.code(), Some(0), "{}", stdout(&tamper));
    assert!(
        stdout(&tamper).contains("disconnect, reason unauthorized"),
        "{}",
        stdout(&tamper)
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    // A good signature still opens a session.
    let good = simulate(server.addr, &["--fast", "--seconds", "1"], Some(SECRET));
    assert_eq!(good.status.code(), Some(0), "{}", stdout(&good));
}

#[test]
fn the_default_failure_mode_answers_401_after_500_ms() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    let started = Instant::now();
    let tamper = simulate(
        server.addr,
        &["--tamper", "--fast", "--seconds", "1"],
        Some(SECRET),
    );
    assert!(stdout(&tamper).contains("HTTP 401"), "{}", stdout(&tamper));
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn an_open_from_another_organization_is_disconnected_unauthorized() {
    let server = start(&[("AUDIOHOOK_API_KEY", API_KEY)]);
    let mut request = format!("ws://{}/audiohook/ws", server.addr)
        .into_client_request()
        .unwrap();
    let session = "30b0e395-84d3-4570-ac13-9a62d8f514c0";
    for (name, value) in [
        ("x-api-key", API_KEY),
        (
            "audiohook-organization-id",
            "d7934305-0972-4844-938e-9060eef73d05",
        ),
        ("audiohook-session-id", session),
        (
            "audiohook-correlation-id",
            "e160e428-53e2-487c-977d-96989bf5c99d",
        ),
    ] {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let open = serde_json::json!({
        "version": "2", "id": session, "type": "open", "seq": 1, "serverseq": 0, "position": "PT0S",
        "parameters": {
            "organizationId": "aaaaaaaa-0972-4844-938e-9060eef73d05",
            "conversationId": "4f3b8ad8-9f2b-4c4e-8a8f-5a7f0e6f2d11",
            "participant": {"id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0", "ani": "", "aniName": "", "dnis": ""},
            "media": [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}],
        }
    });
    socket
        .send(Message::Text(open.to_string().into()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(value["type"], "disconnect", "{value}");
    assert_eq!(value["parameters"]["reason"], "unauthorized");
    assert_eq!(value["id"], session);
}

#[test]
fn the_load_generator_runs_sessions_at_real_time_pace() {
    let server = start(&[
        ("AUDIOHOOK_API_KEY", API_KEY),
        ("AUDIOHOOK_CLIENT_SECRET", SECRET),
    ]);
    let started = Instant::now();
    let output = Command::new(CLI)
        .args(["--json", "audiohook-load"])
        .arg(format!("ws://{}/audiohook/ws", server.addr))
        .args(["--sessions", "20", "--seconds", "3", "--ramp", "1"])
        .env("AUDIOHOOK_API_KEY", API_KEY)
        .env("AUDIOHOOK_CLIENT_SECRET", SECRET)
        .output()
        .unwrap();
    let text = stdout(&output);
    let report: serde_json::Value = serde_json::from_str(&text[text.find('{').unwrap()..]).unwrap();
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["sustained"], 20, "{report}");
    assert_eq!(report["frames"], 20 * 15, "{report}");
    assert!(report["pings"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["transcriptEvents"].as_u64().unwrap() >= 20,
        "{report}"
    );
    // Three seconds of audio take three seconds.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
