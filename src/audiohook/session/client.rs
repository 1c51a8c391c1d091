//! The Genesys side of a session, with no I/O: what the simulator, the load generator
//! and the tests speak to a server.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::server::Output;
use crate::audiohook::protocol::{
    ClientBody, ClientMessage, CloseParameters, CloseReason, DtmfParameters, ErrorParameters, Gap,
    Media, OpenParameters, ParseError, PingParameters, ServerBody, ServerMessage, UpdateParameters,
};

/// The client (Genesys) side of an AudioHook session, with no I/O, as
/// [`ServerSession`](super::ServerSession) is the server's.
///
/// It numbers `seq`, checks the server's `seq` and `clientseq`, keeps the stream
/// `position` from the audio it sent, and answers the server's `pause` with `paused`
/// and `resume` with `resumed` on its own, as Genesys does. Feed it what the server
/// sends ([`handle_text`](Self::handle_text), [`handle_binary`](Self::handle_binary));
/// send what [`poll_output`](Self::poll_output) gives.
///
/// ```
/// use genesys_webhook::audiohook::protocol::{Media, MediaChannel, MediaFormat, OpenParameters, Participant};
/// use genesys_webhook::audiohook::session::{ClientSession, Output};
///
/// let mut client = ClientSession::new("e160e428-53e2-487c-977d-96989bf5c99d");
/// let media = vec![Media::audio(MediaFormat::Pcmu, &[MediaChannel::External], 8000)];
/// let participant = Participant::new("p-1", "+15551230000", "caller", "+15557650000");
/// client.open(OpenParameters::new("org-1", "conv-1", participant, media));
/// let Some(Output::Text(open)) = client.poll_output() else { unreachable!() };
/// assert!(open.contains(r#""type":"open""#) && open.contains(r#""seq":1"#));
///
/// let opened = r#"{"version":"2","id":"e160e428-53e2-487c-977d-96989bf5c99d","seq":1,
///     "clientseq":1,"type":"opened","parameters":{"media":[{"type":"audio",
///     "format":"PCMU","channels":["external"],"rate":8000}]}}"#;
/// client.handle_text(opened)?;
/// client.send_audio(vec![0xff; 800].into())?; // 100 ms of silence
/// assert_eq!(client.position().as_millis(), 100);
/// # Ok::<_, genesys_webhook::audiohook::session::ClientError>(())
/// ```
#[derive(Debug)]
pub struct ClientSession {
    id: String,
    seq: u64,
    server_seq: u64,
    /// Samples a channel sent, at 8 kHz.
    samples: u64,
    media: Option<Media>,
    opened: bool,
    paused: bool,
    closed: bool,
    audio_received: u64,
    outputs: VecDeque<Output>,
}

/// Why the client refused an action or a server message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server's message is not a valid AudioHook message.
    Parse(ParseError),
    /// The server's `seq` is not one more than the last one.
    ServerSeq {
        /// The `seq` expected.
        expected: u64,
        /// The `seq` received.
        received: u64,
    },
    /// The server's `clientseq` is beyond the last `seq` sent.
    ClientSeq {
        /// The last `seq` sent.
        sent: u64,
        /// The `clientseq` received.
        received: u64,
    },
    /// Audio before `opened`, while paused, after `close`, or with no media selected.
    NoAudioNow,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(error) => write!(f, "the server sent an invalid message: {error}"),
            Self::ServerSeq { expected, received } => {
                write!(f, "server seq {received}, expected {expected}")
            }
            Self::ClientSeq { sent, received } => {
                write!(f, "server clientseq {received} beyond {sent}")
            }
            Self::NoAudioNow => f.write_str("no audio may be sent now"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientSession {
    /// The client of session `id` (the `Audiohook-Session-Id` of the upgrade).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            seq: 0,
            server_seq: 0,
            samples: 0,
            media: None,
            opened: false,
            paused: false,
            closed: false,
            audio_received: 0,
            outputs: VecDeque::new(),
        }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The last `seq` sent.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The last server `seq` received.
    pub fn server_seq(&self) -> u64 {
        self.server_seq
    }

    /// The stream position: the audio sent so far (8 kHz).
    pub fn position(&self) -> Duration {
        Duration::from_micros(self.samples * 125)
    }

    /// The media the server selected in `opened`, if any.
    pub fn media(&self) -> Option<&Media> {
        self.media.as_ref()
    }

    /// Whether `opened` arrived.
    pub fn is_opened(&self) -> bool {
        self.opened
    }

    /// Whether the stream is paused (by `paused`, or the server's `pause`).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether `closed` arrived.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes of audio the server sent back (Audio Connector).
    pub fn audio_received(&self) -> u64 {
        self.audio_received
    }

    /// The next frame to send, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn send(&mut self, body: ClientBody) {
        self.seq += 1;
        let message = ClientMessage {
            id: self.id.clone(),
            seq: self.seq,
            serverseq: self.server_seq,
            position: self.position(),
            body,
        };
        self.outputs.push_back(Output::Text(message.to_json()));
    }

    /// Sends `open`.
    pub fn open(&mut self, parameters: OpenParameters) {
        self.send(ClientBody::Open(Box::new(parameters)));
    }

    /// Sends a frame of audio in the selected format, channels interleaved, and moves
    /// the position on by its length.
    ///
    /// # Errors
    ///
    /// [`ClientError::NoAudioNow`] before `opened`, while paused, after `close`, or
    /// when the server selected no media.
    pub fn send_audio(&mut self, frame: Bytes) -> Result<(), ClientError> {
        let frame_bytes = self.media.as_ref().map_or(0, Media::frame_bytes);
        if !self.opened || self.paused || self.closed || frame_bytes == 0 {
            return Err(ClientError::NoAudioNow);
        }
        self.samples += (frame.len() / frame_bytes) as u64;
        self.outputs.push_back(Output::Binary(frame));
        Ok(())
    }

    /// Sends `paused`: no audio until [`resume`](Self::resume).
    pub fn pause(&mut self) {
        self.paused = true;
        self.send(ClientBody::Paused);
    }

    /// Sends `resumed`, saying how much audio the pause left out.
    pub fn resume(&mut self, discarded: Duration) {
        self.paused = false;
        let gap = Gap::new(self.position(), discarded);
        self.send(ClientBody::Resumed(gap));
    }

    /// Sends `discarded`: `duration` of audio at the current position was dropped.
    pub fn discarded(&mut self, duration: Duration) {
        let gap = Gap::new(self.position(), duration);
        self.send(ClientBody::Discarded(gap));
    }

    /// Sends `update` with a new language.
    pub fn update_language(&mut self, language: impl Into<String>) {
        self.send(ClientBody::Update(UpdateParameters {
            language: Some(language.into()),
        }));
    }

    /// Sends `dtmf` with one key (`0`–`9`, `*`, `#`).
    pub fn dtmf(&mut self, digit: char) {
        self.send(ClientBody::Dtmf(DtmfParameters {
            digit: digit.to_string(),
        }));
    }

    /// Sends `ping`.
    pub fn ping(&mut self) {
        self.send(ClientBody::Ping(PingParameters::default()));
    }

    /// Sends `error` (Genesys' 429 asks the server to hold its messages back).
    pub fn error(&mut self, parameters: ErrorParameters) {
        self.send(ClientBody::Error(parameters));
    }

    /// Sends `close` with `reason`.
    pub fn close(&mut self, reason: CloseReason) {
        self.send(ClientBody::Close(CloseParameters { reason }));
    }

    /// Takes a text frame from the server: checks its sequence numbers, answers `pause`
    /// and `resume` as Genesys does, and returns the message.
    ///
    /// # Errors
    ///
    /// A [`ClientError`] for a message that is not valid or out of sequence; the
    /// session is not changed by it.
    pub fn handle_text(&mut self, text: &str) -> Result<ServerMessage, ClientError> {
        let message = ServerMessage::parse(text).map_err(ClientError::Parse)?;
        if message.seq != self.server_seq + 1 {
            return Err(ClientError::ServerSeq {
                expected: self.server_seq + 1,
                received: message.seq,
            });
        }
        if message.clientseq > self.seq {
            return Err(ClientError::ClientSeq {
                sent: self.seq,
                received: message.clientseq,
            });
        }
        self.server_seq = message.seq;
        match &message.body {
            ServerBody::Opened(opened) => {
                self.opened = true;
                self.media = opened.media.first().cloned();
                self.paused = opened.start_paused == Some(true);
            }
            ServerBody::Pause => self.pause(),
            ServerBody::Resume => self.resume(Duration::ZERO),
            ServerBody::Closed(_) => {
                self.closed = true;
                self.outputs.push_back(Output::Close);
            }
            _ => {}
        }
        Ok(message)
    }

    /// Takes a binary frame from the server: audio back (Audio Connector).
    pub fn handle_binary(&mut self, data: &[u8]) {
        self.audio_received += data.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audiohook::protocol::{MediaChannel, MediaFormat, Participant};

    fn opened(seq: u64, clientseq: u64) -> String {
        format!(
            r#"{{"version":"2","id":"s","seq":{seq},"clientseq":{clientseq},"type":"opened","parameters":{{"media":[{{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}}]}}}}"#
        )
    }

    fn texts(client: &mut ClientSession) -> Vec<String> {
        std::iter::from_fn(|| client.poll_output())
            .filter_map(|o| match o {
                Output::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn numbers_messages_and_keeps_the_position_from_the_audio_sent() {
        let mut client = ClientSession::new("s");
        let media = vec![Media::audio(
            MediaFormat::Pcmu,
            &[MediaChannel::External, MediaChannel::Internal],
            8000,
        )];
        client.open(OpenParameters::new("o", "c", Participant::default(), media));
        assert_eq!(
            client.send_audio(Bytes::from_static(b"xx")),
            Err(ClientError::NoAudioNow)
        );
        client.handle_text(&opened(1, 1)).unwrap();
        client.send_audio(vec![0; 1600].into()).unwrap(); // 100 ms, two channels
        client.ping();
        let sent = texts(&mut client);
        assert!(sent[1].contains(r#""seq":2"#), "{}", sent[1]);
        assert!(sent[1].contains(r#""serverseq":1"#), "{}", sent[1]);
        assert!(sent[1].contains(r#""position":"PT0.1S""#), "{}", sent[1]);
    }

    #[test]
    fn answers_the_servers_pause_and_resume() {
        let mut client = ClientSession::new("s");
        client.open(OpenParameters::new(
            "o",
            "c",
            Participant::default(),
            vec![],
        ));
        client.handle_text(&opened(1, 1)).unwrap();
        client
            .handle_text(
                r#"{"version":"2","id":"s","seq":2,"clientseq":1,"type":"pause","parameters":{}}"#,
            )
            .unwrap();
        assert!(client.is_paused());
        client
            .handle_text(
                r#"{"version":"2","id":"s","seq":3,"clientseq":2,"type":"resume","parameters":{}}"#,
            )
            .unwrap();
        assert!(!client.is_paused());
        let sent = texts(&mut client);
        assert!(sent[1].contains(r#""type":"paused""#));
        assert!(sent[2].contains(r#""type":"resumed""#));
    }

    #[test]
    fn refuses_messages_out_of_sequence() {
        let mut client = ClientSession::new("s");
        client.open(OpenParameters::new(
            "o",
            "c",
            Participant::default(),
            vec![],
        ));
        assert_eq!(
            client.handle_text(&opened(2, 1)).unwrap_err(),
            ClientError::ServerSeq {
                expected: 1,
                received: 2
            }
        );
        assert_eq!(
            client.handle_text(&opened(1, 5)).unwrap_err(),
            ClientError::ClientSeq {
                sent: 1,
                received: 5
            }
        );
        assert!(matches!(
            client.handle_text("{"),
            Err(ClientError::Parse(_))
        ));
    }
}
