//! The server session's rules, driven message by message with no I/O. The
//! client messages are written as raw JSON here, independently of the crate's own
//! serializer.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::audiohook::protocol::{
    CloseReason, DisconnectReason, EventEntity, MediaChannel, MediaFormat, Transcript,
};
use crate::audiohook::session::{Output, ServerSession, SessionEvent, State};
use serde_json::{json, Value};

const SESSION: &str = "30b0e395-84d3-4570-ac13-9a62d8f514c0";
const ORG: &str = "d7934305-0972-4844-938e-9060eef73d05";

/// Hand-built client messages, numbered, including ones no client session would
/// send (a wrong seq, another session's id): the hostile input these rules are about.
/// Well-behaved clients are `ClientSession`'s job (`session::client` and the driver's
/// tests).
struct Messages {
    seq: u64,
    serverseq: u64,
    position: String,
}

impl Messages {
    fn new() -> Self {
        Self {
            seq: 0,
            serverseq: 0,
            position: "PT0S".into(),
        }
    }

    fn message(&mut self, kind: &str, parameters: Value) -> String {
        self.seq += 1;
        json!({
            "version": "2", "id": SESSION, "type": kind, "seq": self.seq,
            "serverseq": self.serverseq, "position": self.position, "parameters": parameters,
        })
        .to_string()
    }
}

fn offer(format: &str, channels: &[&str]) -> Value {
    json!({"type": "audio", "format": format, "channels": channels, "rate": 8000})
}

fn open_parameters(media: Value) -> Value {
    json!({
        "organizationId": ORG, "conversationId": "4f3b8ad8-9f2b-4c4e-8a8f-5a7f0e6f2d11",
        "participant": {"id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0", "ani": "+13175551234", "aniName": "Jane", "dnis": "+18005554321"},
        "media": media, "language": "en-US",
    })
}

/// Every text output so far, parsed.
fn sent(session: &mut ServerSession) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(output) = session.poll_output() {
        if let Output::Text(text) = output {
            out.push(serde_json::from_str(&text).unwrap());
        }
    }
    out
}

fn fresh() -> ServerSession {
    ServerSession::new(Some(SESSION), Some(ORG))
}

/// An opened session with stereo PCMU.
fn opened() -> (ServerSession, Messages) {
    let mut session = fresh();
    let mut client = Messages::new();
    let open = client.message(
        "open",
        open_parameters(json!([offer("PCMU", &["external", "internal"])])),
    );
    let Some(SessionEvent::Open(request)) = session.handle_text(at(), &open) else {
        panic!("no open event")
    };
    session.send_opened(request.accept()).unwrap();
    let out = sent(&mut session);
    assert_eq!(out[0]["type"], "opened");
    client.serverseq = 1;
    (session, client)
}

fn assert_disconnected(session: &mut ServerSession, reason: &str, info: &str) -> Value {
    let out = sent(session);
    let last = out.last().cloned().expect("a message");
    assert_eq!(last["type"], "disconnect", "{out:?}");
    assert_eq!(last["parameters"]["reason"], reason);
    let got = last["parameters"]["info"].as_str().unwrap_or("");
    assert!(got.contains(info), "info {got:?} lacks {info:?}");
    last
}

#[test]
fn server_messages_carry_version_id_seq_and_clientseq() {
    let (mut session, mut client) = opened();
    session.handle_text(at(), &client.message("ping", json!({})));
    let pong = &sent(&mut session)[0];
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["version"], "2");
    assert_eq!(pong["id"], SESSION);
    assert_eq!(pong["seq"], 2);
    assert_eq!(pong["clientseq"], 2);
    assert_eq!(pong["parameters"], json!({}));
}

#[test]
fn a_seq_that_is_not_the_previous_plus_one_is_a_client_error() {
    let (mut session, mut client) = opened();
    client.seq += 1; // skips one
    let event = session.handle_text(at(), &client.message("ping", json!({})));
    assert!(matches!(event, Some(SessionEvent::Failed(_))));
    assert_disconnected(&mut session, "error", "Client Error: Invalid seq value");
    assert_eq!(session.state(), State::Disconnecting);

    // Repeating a seq is just as wrong.
    let (mut session, mut client) = opened();
    client.seq -= 1;
    session.handle_text(at(), &client.message("ping", json!({})));
    assert_disconnected(&mut session, "error", "Invalid seq value");
}

#[test]
fn a_serverseq_above_what_was_sent_is_a_client_error() {
    let (mut session, mut client) = opened();
    client.serverseq = 5;
    session.handle_text(at(), &client.message("ping", json!({})));
    assert_disconnected(&mut session, "error", "Invalid serverseq value");
}

#[test]
fn a_session_id_other_than_the_headers_is_a_client_error() {
    let mut session = fresh();
    let open = json!({
        "version": "2", "id": "11111111-84d3-4570-ac13-9a62d8f514c0", "type": "open", "seq": 1,
        "serverseq": 0, "position": "PT0S", "parameters": open_parameters(json!([offer("PCMU", &["external"])])),
    });
    session.handle_text(at(), &open.to_string());
    let disconnect = assert_disconnected(&mut session, "error", "Session identifier mismatch");
    // The server keeps the verified id.
    assert_eq!(disconnect["id"], SESSION);
}

#[test]
fn without_a_header_the_first_messages_id_is_the_sessions() {
    let mut session = ServerSession::new(None, None);
    let mut client = Messages::new();
    let event = session.handle_text(at(), &client.message("open", open_parameters(json!([]))));
    assert!(matches!(event, Some(SessionEvent::Open(_))));
    assert_eq!(session.id(), Some(SESSION));
}

#[test]
fn an_open_from_another_organization_is_disconnected_unauthorized() {
    let mut session =
        ServerSession::new(Some(SESSION), Some("aaaaaaaa-0972-4844-938e-9060eef73d05"));
    let mut client = Messages::new();
    let event = session.handle_text(
        at(),
        &client.message(
            "open",
            open_parameters(json!([offer("PCMU", &["external"])])),
        ),
    );
    assert_eq!(event, Some(SessionEvent::Unauthorized));
    let out = sent(&mut session);
    assert_eq!(out.len(), 1, "no opened: {out:?}");
    assert_eq!(out[0]["type"], "disconnect");
    assert_eq!(out[0]["parameters"]["reason"], "unauthorized");
    // Genesys then closes; the session answers closed.
    client.serverseq = 1;
    let event = session.handle_text(
        at(),
        &client.message("close", json!({"reason": "disconnect"})),
    );
    assert_eq!(event, Some(SessionEvent::Close(CloseReason::Disconnect)));
    session.send_closed().unwrap();
    assert_eq!(sent(&mut session)[0]["type"], "closed");
    assert_eq!(session.poll_output(), None);
}

#[test]
fn the_organization_id_compares_without_case() {
    let mut session = ServerSession::new(Some(SESSION), Some(&ORG.to_uppercase()));
    let mut client = Messages::new();
    let event = session.handle_text(at(), &client.message("open", open_parameters(json!([]))));
    assert!(matches!(event, Some(SessionEvent::Open(_))));
}

#[test]
fn audio_before_opened_is_a_client_error() {
    // Before open.
    let mut session = fresh();
    session.handle_binary(at(), vec![0xff; 160].into());
    assert_disconnected(&mut session, "error", "Received audio in state Preparing");

    // Between open and opened.
    let mut session = fresh();
    let mut client = Messages::new();
    session.handle_text(
        at(),
        &client.message(
            "open",
            open_parameters(json!([offer("PCMU", &["external"])])),
        ),
    );
    session.handle_binary(at(), vec![0xff; 160].into());
    assert_disconnected(&mut session, "error", "Received audio in state Opening");
}

#[test]
fn audio_while_paused_is_a_client_error_but_in_flight_audio_after_a_server_pause_is_not() {
    let (mut session, mut client) = opened();
    session.pause();
    assert_eq!(sent(&mut session)[0]["type"], "pause");
    client.serverseq = 2;
    // Audio sent before Genesys saw the pause.
    assert!(matches!(
        session.handle_binary(at(), vec![0xff; 320].into()),
        Some(SessionEvent::Audio(_))
    ));
    assert_eq!(
        session.handle_text(at(), &client.message("paused", json!({}))),
        Some(SessionEvent::Paused)
    );
    assert_eq!(session.state(), State::Paused);
    session.handle_binary(at(), vec![0xff; 320].into());
    assert_disconnected(&mut session, "error", "Received audio in state Paused");
}

#[test]
fn audio_in_part_samples_or_without_media_is_a_client_error() {
    let (mut session, _) = opened();
    session.handle_binary(at(), vec![0xff; 3].into());
    assert_disconnected(&mut session, "error", "multiple of bytes per sample (2)");

    let mut session = fresh();
    let mut client = Messages::new();
    let Some(SessionEvent::Open(request)) =
        session.handle_text(at(), &client.message("open", open_parameters(json!([]))))
    else {
        panic!()
    };
    assert_eq!(request.selected(), None);
    session.send_opened(request.accept()).unwrap();
    let opened = &sent(&mut session)[0];
    assert_eq!(opened["parameters"]["media"], json!([]));
    session.handle_binary(at(), vec![0xff; 2].into());
    assert_disconnected(&mut session, "error", "No media selected");
}

#[test]
fn positions_follow_the_audio_received() {
    let (mut session, _) = opened();
    let mut positions = Vec::new();
    for _ in 0..3 {
        let Some(SessionEvent::Audio(frame)) = session.handle_binary(at(), vec![0xff; 3200].into())
        else {
            panic!()
        };
        assert_eq!(frame.samples(), 1600);
        assert_eq!(frame.duration(), Duration::from_millis(200));
        positions.push(frame.position.as_millis());
    }
    assert_eq!(positions, [0, 200, 400]);
    assert_eq!(session.position(), Duration::from_millis(600));

    // L16 stereo: four bytes a sample pair.
    let mut session = fresh();
    let mut client = Messages::new();
    let Some(SessionEvent::Open(request)) = session.handle_text(
        at(),
        &client.message(
            "open",
            open_parameters(json!([offer("L16", &["external", "internal"])])),
        ),
    ) else {
        panic!()
    };
    session.send_opened(request.accept()).unwrap();
    let Some(SessionEvent::Audio(frame)) = session.handle_binary(at(), vec![0; 6400].into()) else {
        panic!()
    };
    assert_eq!(frame.format(), MediaFormat::L16);
    assert_eq!(frame.samples(), 1600);
    assert_eq!(session.position(), Duration::from_millis(200));
    session.handle_binary(at(), vec![0; 6402].into());
    assert_disconnected(&mut session, "error", "(4)");
}

#[test]
fn frames_split_into_channels_and_decode() {
    let (mut session, _) = opened();
    // external sample 0xff (0), internal 0x00 (loudest negative).
    let frame: Vec<u8> = (0..320)
        .map(|i| if i % 2 == 0 { 0xff } else { 0x00 })
        .collect();
    let Some(SessionEvent::Audio(frame)) = session.handle_binary(at(), frame.into()) else {
        panic!()
    };
    assert_eq!(
        frame.channels(),
        &[MediaChannel::External, MediaChannel::Internal]
    );
    assert!(frame
        .channel(MediaChannel::External)
        .unwrap()
        .iter()
        .all(|b| *b == 0xff));
    assert!(frame
        .decoded(MediaChannel::Internal)
        .unwrap()
        .iter()
        .all(|s| *s == -32_124));
    assert_eq!(frame.split().len(), 2);
}

#[test]
fn pause_and_resume_from_either_side() {
    // Genesys pauses and resumes after a gap.
    let (mut session, mut client) = opened();
    assert_eq!(
        session.handle_text(at(), &client.message("paused", json!({}))),
        Some(SessionEvent::Paused)
    );
    let resumed = session.handle_text(
        at(),
        &client.message("resumed", json!({"start": "PT1S", "discarded": "PT2.5S"})),
    );
    let Some(SessionEvent::Resumed(gap)) = resumed else {
        panic!("{resumed:?}")
    };
    assert_eq!(
        (gap.start, gap.discarded),
        (Duration::from_secs(1), Duration::from_millis(2500))
    );
    assert_eq!(session.state(), State::Active);
    assert_eq!(session.discarded(), Duration::from_millis(2500));

    // The server asks; Genesys confirms.
    session.pause();
    session.resume();
    let out = sent(&mut session);
    let kinds: Vec<_> = out.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["pause", "resume"]);
}

#[test]
fn start_paused_opens_paused_until_resumed() {
    let mut session = fresh();
    let mut client = Messages::new();
    let Some(SessionEvent::Open(request)) = session.handle_text(
        at(),
        &client.message(
            "open",
            open_parameters(json!([offer("PCMU", &["external"])])),
        ),
    ) else {
        panic!()
    };
    session
        .send_opened(request.accept().start_paused(true))
        .unwrap();
    let opened = &sent(&mut session)[0];
    assert_eq!(opened["parameters"]["startPaused"], true);
    assert_eq!(session.state(), State::Paused);
    session.resume();
    assert_eq!(sent(&mut session)[0]["type"], "resume");
    client.serverseq = 2;
    session.handle_text(
        at(),
        &client.message("resumed", json!({"start": "PT0S", "discarded": "PT3S"})),
    );
    assert_eq!(session.state(), State::Active);
    assert!(matches!(
        session.handle_binary(at(), vec![0xff; 8].into()),
        Some(SessionEvent::Audio(_))
    ));
}

#[test]
fn discarded_stretches_are_reported_and_counted() {
    let (mut session, mut client) = opened();
    session.handle_binary(at(), vec![0xff; 1600].into());
    let event = session.handle_text(
        at(),
        &client.message(
            "discarded",
            json!({"start": "PT0.1S", "discarded": "PT0.25S"}),
        ),
    );
    assert!(
        matches!(event, Some(SessionEvent::Discarded(gap)) if gap.discarded == Duration::from_millis(250))
    );
    session.handle_text(
        at(),
        &client.message("discarded", json!({"start": "PT0.5S", "discarded": "PT1S"})),
    );
    assert_eq!(session.discarded(), Duration::from_millis(1250));
    assert_eq!(session.position(), Duration::from_millis(100));
}

#[test]
fn update_changes_the_language_and_sends_nothing() {
    let (mut session, mut client) = opened();
    assert_eq!(session.language(), Some("en-US"));
    let event = session.handle_text(
        at(),
        &client.message("update", json!({"language": "fr-FR"})),
    );
    assert_eq!(
        event,
        Some(SessionEvent::Update {
            language: Some("fr-FR".into())
        })
    );
    assert_eq!(session.language(), Some("fr-FR"));
    assert!(sent(&mut session).is_empty());
}

#[test]
fn close_is_answered_closed_then_the_socket_closes() {
    let (mut session, mut client) = opened();
    let event = session.handle_text(at(), &client.message("close", json!({"reason": "end"})));
    assert_eq!(event, Some(SessionEvent::Close(CloseReason::End)));
    assert_eq!(session.state(), State::Closing);
    // Final events may still go out before closed.
    session
        .send_event(vec![EventEntity::Transcript(Transcript::final_text(
            "u1",
            MediaChannel::External,
            Duration::ZERO,
            Duration::from_secs(1),
            "hello",
            0.9,
            None,
        ))])
        .unwrap();
    session.send_closed().unwrap();
    let out = sent(&mut session);
    assert_eq!(out[0]["type"], "event");
    assert_eq!(out[1]["type"], "closed");
    assert_eq!(out[1]["parameters"], json!({}));
    assert!(session.is_closed());
}

#[test]
fn ping_is_answered_pong_at_once() {
    let (mut session, mut client) = opened();
    let event = session.handle_text(at(), &client.message("ping", json!({"rtt": "PT0.025S"})));
    assert_eq!(
        event,
        Some(SessionEvent::Ping {
            rtt: Some(Duration::from_millis(25))
        })
    );
    assert_eq!(sent(&mut session)[0]["type"], "pong");
}

#[test]
fn errors_from_genesys_carry_retry_after() {
    let (mut session, mut client) = opened();
    let event = session.handle_text(
        at(),
        &client.message(
            "error",
            json!({"code": 429, "message": "Too many requests", "retryAfter": "PT1.5S"}),
        ),
    );
    let Some(SessionEvent::Error(error)) = event else {
        panic!("{event:?}")
    };
    assert_eq!(error.code, 429);
    assert_eq!(error.retry_after, Some(Duration::from_millis(1500)));
    assert_eq!(session.state(), State::Active);
}

#[test]
fn disconnect_with_each_reason_info_and_output_variables() {
    for reason in [
        DisconnectReason::Completed,
        DisconnectReason::Unauthorized,
        DisconnectReason::Error,
    ] {
        let (mut session, mut client) = opened();
        let mut variables = BTreeMap::new();
        variables.insert("digits".to_owned(), "123".to_owned());
        session
            .disconnect(at(), reason, Some("bye".into()), Some(variables))
            .unwrap();
        let out = sent(&mut session);
        let p = &out[0]["parameters"];
        assert_eq!(p["reason"], serde_json::to_value(reason).unwrap());
        assert_eq!(p["info"], "bye");
        assert_eq!(p["outputVariables"], json!({"digits": "123"}));
        // A second disconnect is refused; Genesys' close is answered.
        assert!(session.disconnect(at(), reason, None, None).is_err());
        client.serverseq = 2;
        session.handle_text(
            at(),
            &client.message("close", json!({"reason": "disconnect"})),
        );
        session.send_closed().unwrap();
        let closed = &sent(&mut session)[0];
        assert_eq!(closed["type"], "closed");
        assert!(closed["parameters"].get("outputVariables").is_none());
    }
}

#[test]
fn output_variables_go_in_closed_when_genesys_closes_first() {
    let (mut session, mut client) = opened();
    let mut variables = BTreeMap::new();
    variables.insert("intent".to_owned(), "billing".to_owned());
    session.set_output_variables(variables);
    session.handle_text(at(), &client.message("close", json!({"reason": "end"})));
    session.send_closed().unwrap();
    assert_eq!(
        sent(&mut session)[0]["parameters"]["outputVariables"],
        json!({"intent": "billing"})
    );
}

#[test]
fn reconnect_is_sent_while_open() {
    let (mut session, _) = opened();
    session.reconnect(Some("moving".into())).unwrap();
    let out = sent(&mut session);
    assert_eq!(out[0]["type"], "reconnect");
    assert_eq!(out[0]["parameters"]["info"], "moving");
}

#[test]
fn the_first_supported_offer_is_selected() {
    let cases = [
        (
            json!([offer("PCMU", &["external"]), offer("PCMU", &["internal"])]),
            Some(json!(offer("PCMU", &["external"]))),
        ),
        (
            json!([offer("L16", &["external", "internal"])]),
            Some(offer("L16", &["external", "internal"])),
        ),
        (
            json!([{"type": "audio", "format": "opus", "channels": ["external"], "rate": 48000}, offer("PCMU", &["internal", "external"])]),
            Some(offer("PCMU", &["internal", "external"])),
        ),
        (
            json!([{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 16000}]),
            None,
        ),
        (json!([]), None),
    ];
    for (offers, expected) in cases {
        let mut session = fresh();
        let mut client = Messages::new();
        let Some(SessionEvent::Open(request)) = session.handle_text(
            at(),
            &client.message("open", open_parameters(offers.clone())),
        ) else {
            panic!("{offers}")
        };
        session.send_opened(request.accept()).unwrap();
        let opened = &sent(&mut session)[0];
        let media = &opened["parameters"]["media"];
        match &expected {
            Some(offer) => assert_eq!(media, &json!([offer]), "{offers}"),
            None => assert_eq!(media, &json!([]), "{offers}"),
        }
    }
}

#[test]
fn a_selection_that_was_not_offered_is_refused() {
    let mut session = fresh();
    let mut client = Messages::new();
    let Some(SessionEvent::Open(request)) = session.handle_text(
        at(),
        &client.message(
            "open",
            open_parameters(json!([offer("PCMU", &["external"])])),
        ),
    ) else {
        panic!()
    };
    let other =
        crate::audiohook::protocol::Media::audio(MediaFormat::L16, &[MediaChannel::External], 8000);
    assert!(session
        .send_opened_checked(&request, request.accept_media(Some(other)))
        .is_err());
    assert!(session
        .send_opened_checked(&request, request.accept_media(None))
        .is_ok());
}

#[test]
fn supported_languages_are_listed_when_asked_for() {
    let mut with = open_parameters(json!([]));
    with["supportedLanguages"] = json!(true);
    let mut session = fresh().supported_languages(vec!["en-US".into(), "fr-FR".into()]);
    let mut client = Messages::new();
    let Some(SessionEvent::Open(request)) =
        session.handle_text(at(), &client.message("open", with))
    else {
        panic!()
    };
    session.send_opened(request.accept()).unwrap();
    assert_eq!(
        sent(&mut session)[0]["parameters"]["supportedLanguages"],
        json!(["en-US", "fr-FR"])
    );

    // Not asked for: not listed.
    let mut session = fresh().supported_languages(vec!["en-US".into()]);
    let mut client = Messages::new();
    let Some(SessionEvent::Open(request)) =
        session.handle_text(at(), &client.message("open", open_parameters(json!([]))))
    else {
        panic!()
    };
    session.send_opened(request.accept()).unwrap();
    assert!(sent(&mut session)[0]["parameters"]
        .get("supportedLanguages")
        .is_none());
}

#[test]
fn malformed_large_and_unknown_messages_are_client_errors() {
    for (text, info) in [
        ("not json".to_owned(), "not valid JSON"),
        (json!({"version": "2"}).to_string(), "well-formed"),
        (
            format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000)),
            "too large",
        ),
    ] {
        let mut session = fresh();
        session.handle_text(at(), &text);
        assert_disconnected(&mut session, "error", info);
    }
    let (mut session, mut client) = opened();
    session.handle_text(at(), &client.message("telepathy", json!({})));
    assert_disconnected(&mut session, "error", "'telepathy' is not a supported");
    let (mut session, mut client) = opened();
    session.handle_text(at(), &client.message("close", json!({"why": "no reason"})));
    assert_disconnected(&mut session, "error", "Invalid/missing parameters");
}

#[test]
fn after_a_client_error_only_close_is_answered() {
    let (mut session, mut client) = opened();
    session.handle_binary(at(), vec![0xff; 3].into());
    sent(&mut session);
    // More errors are not signalled again; audio is ignored.
    assert_eq!(session.handle_binary(at(), vec![0xff; 3].into()), None);
    client.serverseq = 2;
    session.handle_text(
        at(),
        &client.message("close", json!({"reason": "disconnect"})),
    );
    session.send_closed().unwrap();
    let out = sent(&mut session);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "closed");
}

#[test]
fn dtmf_and_playback_reach_the_application() {
    let (mut session, mut client) = opened();
    assert_eq!(
        session.handle_text(at(), &client.message("dtmf", json!({"digit": "#"}))),
        Some(SessionEvent::Dtmf('#'))
    );
    assert_eq!(
        session.handle_text(at(), &client.message("playback_started", json!({}))),
        Some(SessionEvent::PlaybackStarted)
    );
    assert_eq!(
        session.handle_text(at(), &client.message("playback_completed", json!({}))),
        Some(SessionEvent::PlaybackCompleted)
    );
}

#[test]
fn audio_back_to_the_caller_is_split_into_frames_of_at_most_64000_bytes() {
    let (mut session, _) = opened();
    session.send_audio(vec![0x7f; 100_000].into()).unwrap();
    let mut sizes = Vec::new();
    while let Some(output) = session.poll_output() {
        if let Output::Binary(audio) = output {
            sizes.push(audio.len());
        }
    }
    assert_eq!(sizes, [64_000, 36_000]);
}

/// The instant messages are handled at: these tests keep no time.
fn at() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

mod timers {
    //! The session keeps time from the instants it is given: no clock, no waiting.

    use super::*;
    use crate::audiohook::protocol::{EventEntity, MediaChannel, Transcript};
    use crate::audiohook::session::{SessionConfig, Timeout};

    fn transcript() -> Vec<EventEntity> {
        vec![EventEntity::Transcript(Transcript::final_text(
            "u",
            MediaChannel::External,
            Duration::ZERO,
            Duration::from_secs(1),
            "hi",
            0.9,
            None,
        ))]
    }

    fn closes(session: &mut ServerSession) -> bool {
        std::iter::from_fn(|| session.poll_output()).any(|o| o == Output::Close)
    }

    #[test]
    fn silence_for_the_idle_timeout_ends_the_session_and_messages_move_it_on() {
        let (mut session, mut client) = opened();
        let t0 = at();
        assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        let later = t0 + Duration::from_secs(30);
        session.handle_text(later, &client.message("ping", json!({})));
        let due = session.poll_timeout().unwrap();
        assert_eq!(due, later + Duration::from_secs(60));
        session.handle_timeout(due - Duration::from_millis(1));
        assert_eq!(session.timed_out(), None);
        session.handle_timeout(due);
        assert_eq!(session.timed_out(), Some(Timeout::Idle));
        assert!(closes(&mut session));
        assert_eq!(session.poll_timeout(), None);
    }

    #[test]
    fn closed_goes_out_by_the_close_timeout_when_the_application_is_slow() {
        let mut session =
            fresh().config(SessionConfig::default().close_timeout(Duration::from_secs(2)));
        let mut client = Messages::new();
        let open = client.message(
            "open",
            open_parameters(json!([offer("PCMU", &["external"])])),
        );
        let Some(SessionEvent::Open(request)) = session.handle_text(at(), &open) else {
            panic!("no open")
        };
        session.send_opened(request.accept()).unwrap();
        sent(&mut session);
        client.serverseq = 1;
        let close = client.message("close", json!({"reason": "end"}));
        let t = at() + Duration::from_secs(10);
        assert!(matches!(
            session.handle_text(t, &close),
            Some(SessionEvent::Close(_))
        ));
        assert_eq!(session.poll_timeout(), Some(t + Duration::from_secs(2)));
        session.handle_timeout(t + Duration::from_secs(2));
        let out = sent(&mut session);
        assert_eq!(out.last().unwrap()["type"], "closed", "{out:?}");
        assert!(session.is_closed());
    }

    #[test]
    fn a_disconnect_genesys_does_not_answer_ends_the_session_after_the_close_timeout() {
        let (mut session, _) = opened();
        let t = at() + Duration::from_secs(1);
        session
            .disconnect(t, DisconnectReason::Completed, None, None)
            .unwrap();
        assert_eq!(session.state(), State::Disconnecting);
        assert_eq!(session.disconnected(), Some(DisconnectReason::Completed));
        let due = session.poll_timeout().unwrap();
        assert_eq!(due, t + Duration::from_secs(5));
        session.handle_timeout(due);
        assert_eq!(session.timed_out(), Some(Timeout::Disconnect));
        assert!(closes(&mut session));
    }

    #[test]
    fn events_wait_out_a_429_and_then_go_in_order() {
        let (mut session, mut client) = opened();
        let t = at() + Duration::from_secs(3);
        let error = client.message(
            "error",
            json!({"code": 429, "message": "Too many requests", "retryAfter": "PT2S"}),
        );
        session.handle_text(t, &error);
        assert!(session.is_holding());
        session.send_event(transcript()).unwrap();
        session.send_event(transcript()).unwrap();
        assert!(sent(&mut session).is_empty(), "held back");
        assert_eq!(session.poll_timeout(), Some(t + Duration::from_secs(2)));
        session.handle_timeout(t + Duration::from_secs(2));
        let out = sent(&mut session);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|m| m["type"] == "event"));
        assert!(!session.is_holding());
    }
}
