//! An AudioHook server session with no I/O: feed it what Genesys sends, get back what
//! to send and what happened.
//!
//! [`ServerSession`] enforces the rules of Genesys' reference server:
//!
//! - `seq` is the previous client `seq` plus one, and `serverseq` is no higher than
//!   the last server `seq`;
//! - every message's `id` is the session id of the upgrade's `Audiohook-Session-Id`;
//! - the `open`'s `organizationId` is the upgrade's `Audiohook-Organization-Id`, or the
//!   session ends with `disconnect` reason `unauthorized`;
//! - audio arrives only once `opened` was sent and while not paused, in whole samples
//!   of the selected format;
//! - text messages are at most 64 KiB of valid AudioHook JSON.
//!
//! A broken rule is answered as the reference answers it: `disconnect` with reason
//! `error` and info `Client Error: …`, after which the session only answers `close`.
//! `ping` is answered `pong` at once, inside [`ServerSession::handle_text`].
//!
//! The application answers [`SessionEvent::Open`] with [`ServerSession::send_opened`] and
//! [`SessionEvent::Close`] with [`ServerSession::send_closed`], and may at any time send
//! events, audio (Audio Connector), `pause`, `resume`, `reconnect` or `disconnect`.
//!
//! Time is an input, as in quinn-proto's `Connection`: each `handle_*` takes the
//! instant the frame arrived, [`ServerSession::poll_timeout`] says when the next timer
//! (the idle timeout, the waits for `closed` and for Genesys' `close`, a 429 hold) is
//! due, and [`ServerSession::handle_timeout`] fires it. No clock and no socket inside:
//! tests drive a session with plain values.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use genesys_webhook::audiohook::session::{Output, ServerSession, SessionEvent, Timeout};
//!
//! let start = Instant::now();
//! let mut session = ServerSession::new(Some("e160e428-53e2-487c-977d-96989bf5c99d"), Some("d7934305-0972-4844-938e-9060eef73d05"));
//! let open = r#"{"version":"2","id":"e160e428-53e2-487c-977d-96989bf5c99d","type":"open","seq":1,
//!   "serverseq":0,"position":"PT0S","parameters":{"organizationId":"d7934305-0972-4844-938e-9060eef73d05",
//!   "conversationId":"c","participant":{"id":"p","ani":"","aniName":"","dnis":""},
//!   "media":[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}]}}"#;
//! let Some(SessionEvent::Open(request)) = session.handle_text(start, open) else { panic!() };
//! session.send_opened(request.accept()).unwrap();
//! let Some(Output::Text(opened)) = session.poll_output() else { panic!() };
//! assert!(opened.contains(r#""type":"opened""#));
//!
//! // 200 ms of stereo audio.
//! let Some(SessionEvent::Audio(frame)) = session.handle_binary(start, vec![0xff; 3200].into()) else { panic!() };
//! assert_eq!(frame.samples(), 1600);
//! assert_eq!(session.position().as_millis(), 200);
//!
//! // A minute of silence later, the idle timer ends the session.
//! let due = session.poll_timeout().unwrap();
//! assert_eq!(due, start + Duration::from_secs(60));
//! session.handle_timeout(due);
//! assert_eq!(session.timed_out(), Some(Timeout::Idle));
//! ```

mod client;
mod server;
pub use self::client::{ClientError, ClientSession};

pub use self::server::{
    ActionError, AudioFrame, OpenReply, OpenRequest, Output, ServerSession, SessionConfig,
    SessionEvent, State, Timeout, DEFAULT_CLOSE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, MAX_AUDIO_FRAME,
};

#[cfg(test)]
mod tests;
