//! The AudioHook server session with arbitrary frames from Genesys and arbitrary
//! application actions and time passing: nothing panics, server `seq` counts up by one,
//! every output parses as a server message, the stream position never goes back, and
//! the next timer is never in the past once it has been handled.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use genesys_webhook::audiohook::protocol::{DisconnectReason, ServerMessage};
use genesys_webhook::audiohook::session::{Output, ServerSession, SessionEvent};
use libfuzzer_sys::fuzz_target;

const SESSION: &str = "30b0e395-84d3-4570-ac13-9a62d8f514c0";
const ORG: &str = "d7934305-0972-4844-938e-9060eef73d05";
const KINDS: &[&str] = &[
    "open", "close", "ping", "update", "paused", "resumed", "discarded", "error", "dtmf",
    "playback_started", "playback_completed", "nope",
];

#[derive(Debug, Arbitrary)]
enum Step {
    /// Any text at all.
    Text(String),
    /// A well-formed envelope with a chosen type and arbitrary parameters.
    Message {
        kind: u8,
        seq_skew: i8,
        serverseq: u8,
        parameters: String,
        other_org: bool,
    },
    Binary(Vec<u8>),
    Open { start_paused: bool, media: bool },
    Closed,
    Pause,
    Resume,
    Event,
    Audio(Vec<u8>),
    Disconnect(u8),
    Reconnect,
    /// Time passes (milliseconds), and the session's timers are handled.
    Wait(u16),
}

fn parameters(kind: &str, raw: &str, other_org: bool) -> String {
    match kind {
        "open" => format!(
            r#"{{"organizationId":"{}","conversationId":"c","participant":{{"id":"p","ani":"","aniName":"","dnis":""}},"media":[{{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}},{{"type":"audio","format":"L16","channels":["external"],"rate":8000}}],"supportedLanguages":true}}"#,
            if other_org { "x" } else { ORG }
        ),
        "resumed" | "discarded" => r#"{"start":"PT1.5S","discarded":"PT0.25S"}"#.into(),
        "close" => r#"{"reason":"end"}"#.into(),
        "dtmf" => r#"{"digit":"5"}"#.into(),
        "error" => r#"{"code":429,"message":"m","retryAfter":"PT1S"}"#.into(),
        _ if raw.starts_with('{') => raw.to_owned(),
        _ => "{}".into(),
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let mut session = ServerSession::new(Some(SESSION), Some(ORG));
    let mut client_seq = 0i64;
    let mut server_seq = 0u64;
    let mut position = Duration::ZERO;
    let mut pending_open = None;
    let mut now = Instant::now();
    for step in steps.into_iter().take(64) {
        let event = match step {
            Step::Text(text) => session.handle_text(now, &text),
            Step::Message { kind, seq_skew, serverseq, parameters: raw, other_org } => {
                let kind = KINDS[usize::from(kind) % KINDS.len()];
                client_seq += 1;
                let seq = (client_seq + i64::from(seq_skew % 2)).max(0);
                let text = format!(
                    r#"{{"version":"2","id":"{SESSION}","type":"{kind}","seq":{seq},"serverseq":{},"position":"PT0S","parameters":{}}}"#,
                    u64::from(serverseq).min(server_seq + 1),
                    parameters(kind, &raw, other_org)
                );
                session.handle_text(now, &text)
            }
            Step::Binary(data) => session.handle_binary(now, data.into()),
            Step::Open { start_paused, media } => {
                if let Some(request) = pending_open.take() {
                    let request: Box<genesys_webhook::audiohook::session::OpenRequest> = request;
                    let reply = if media { request.accept() } else { request.accept_media(None) };
                    let _ = session.send_opened(reply.start_paused(start_paused));
                }
                None
            }
            Step::Closed => {
                let _ = session.send_closed();
                None
            }
            Step::Pause => {
                session.pause();
                None
            }
            Step::Resume => {
                session.resume();
                None
            }
            Step::Event => {
                let _ = session.send_event(Vec::new());
                None
            }
            Step::Audio(data) => {
                let _ = session.send_audio(data.into());
                None
            }
            Step::Disconnect(reason) => {
                let reason = match reason % 3 {
                    0 => DisconnectReason::Completed,
                    1 => DisconnectReason::Unauthorized,
                    _ => DisconnectReason::Error,
                };
                let _ = session.disconnect(now, reason, None, Some(BTreeMap::new()));
                None
            }
            Step::Reconnect => {
                let _ = session.reconnect(None);
                None
            }
            Step::Wait(ms) => {
                now += Duration::from_millis(u64::from(ms));
                session.handle_timeout(now);
                if let Some(due) = session.poll_timeout() {
                    assert!(due > now, "a timer due at {due:?} was not handled at {now:?}");
                }
                None
            }
        };
        if let Some(SessionEvent::Open(request)) = event {
            pending_open = Some(request);
        }
        while let Some(output) = session.poll_output() {
            if let Output::Text(text) = output {
                let message = ServerMessage::parse(&text).expect("server messages parse");
                assert_eq!(message.seq, server_seq + 1, "{text}");
                assert_eq!(message.id, SESSION);
                server_seq = message.seq;
            }
        }
        assert!(session.position() >= position);
        position = session.position();
    }
});
