//! `genesys-webhook audiohook URL`: a Genesys Cloud simulator. Opens a signed WebSocket
//! upgrade as Genesys does, then runs an AudioHook session: `open` (PCMU or L16, as
//! Monitor, Transcription Connector or Audio Connector), audio at real-time pace,
//! optionally `paused`/`resumed`, `discarded`, `update` and DTMF, then `ping` and
//! `close`. It prints the events, output variables and audio the server sent back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use genesys_webhook::audiohook::protocol::{
    CloseReason, DisconnectReason, EventEntity, Media, MediaChannel, MediaFormat, OpenParameters,
    Participant, ServerBody, ServerMessage,
};
use genesys_webhook::audiohook::session::{ClientSession, Output};
use genesys_webhook::audiohook::signature::sign_upgrade;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::output::{printable, progress, Failure, Report};
use crate::secret::{one_secret, Hidden};

/// Audio is sent in frames of this length.
const FRAME: Duration = Duration::from_millis(100);
/// How long to wait for each answer of the server.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as whom to connect: shared by `audiohook` and `audiohook-load`.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The server's WebSocket URL, e.g. ws://127.0.0.1:5001/audiohook/ws.
    pub(crate) url: String,
    /// The integration's API key.
    #[arg(long, env = "AUDIOHOOK_API_KEY")]
    pub(crate) api_key: String,
    /// The integration's client secret, base64 as Genesys shows it. Prefer the
    /// variable or --client-secret-file. Without one, the upgrade is sent unsigned.
    #[arg(long, env = "AUDIOHOOK_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<Hidden>,
    /// Read the client secret from this file.
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
}

impl Connection {
    /// The client secret from the flag, the variable or the file, if any.
    pub(crate) fn secret(&self) -> Result<Option<String>, Failure> {
        one_secret(
            self.client_secret.as_ref(),
            self.client_secret_file.as_deref(),
        )
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    connection: Connection,
    /// Audio to stream: a WAV file, 8 kHz, 16-bit, mono or stereo. A 440 Hz tone when
    /// absent.
    #[arg(long, value_name = "FILE.wav")]
    audio: Option<PathBuf>,
    /// Seconds of generated tone.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// A stereo tone (two channels, as Genesys sends external and internal audio).
    #[arg(long)]
    stereo: bool,
    /// Send the audio as fast as possible, not at real-time pace.
    #[arg(long)]
    fast: bool,
    /// Sign with a wrong secret: succeeds only if the server refuses the upgrade (401)
    /// or answers `disconnect` with reason `unauthorized`.
    #[arg(long)]
    tamper: bool,
    /// Which integration to act as: `monitor` (AudioHook Monitor), `transcription`
    /// (asks for the supported languages) or `connector` (Audio Connector, with
    /// Architect input variables).
    #[arg(long, default_value = "monitor", value_parser = ["monitor", "transcription", "connector"])]
    mode: String,
    /// Offer L16 (16-bit linear PCM) instead of PCMU.
    #[arg(long)]
    l16: bool,
    /// Halfway through, pause for this many seconds (`paused`, then `resumed` with
    /// the time discarded).
    #[arg(long, value_name = "SECONDS")]
    pause: Option<f64>,
    /// A quarter of the way through, drop half a second of audio and say so
    /// (`discarded`).
    #[arg(long)]
    discard: bool,
    /// Three quarters of the way through, change the language (`update`).
    #[arg(long, value_name = "LANGUAGE")]
    update: Option<String>,
    /// After the audio, press these keys (`dtmf`), 200 ms apart, e.g. `12#`.
    #[arg(long, value_name = "KEYS")]
    dtmf: Option<String>,
    /// Act as Genesys' connection probe (all-zero conversation and participant ids):
    /// `open`, then `close` at once; the server should answer `opened` and `closed`
    /// and start nothing.
    #[arg(long)]
    probe: bool,
}

/// Interleaved 16-bit samples and their channel count.
struct Audio {
    samples: Vec<i16>,
    channels: usize,
}

fn load_audio(args: &Args) -> Result<Audio, Failure> {
    let Some(path) = &args.audio else {
        let channels = if args.stereo { 2 } else { 1 };
        let samples = 8000 * args.seconds.min(3600) as usize;
        // For transcription, bursts of tone: 1.5 s on, 1 s off, like turns of speech.
        let bursts = args.mode == "transcription";
        let mut interleaved = Vec::with_capacity(samples * channels);
        for n in 0..samples {
            let t = n as f64 / 8000.0;
            let on = !bursts || (n % 20_000) < 12_000;
            for tone in [440.0, 660.0].iter().take(channels) {
                let value = if on {
                    (t * tone * std::f64::consts::TAU).sin() * 8000.0
                } else {
                    0.0
                };
                interleaved.push(value as i16);
            }
        }
        return Ok(Audio {
            samples: interleaved,
            channels,
        });
    };
    let reader = hound::WavReader::open(path)
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    let spec = reader.spec();
    if spec.sample_rate != 8000
        || !(1..=2).contains(&spec.channels)
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(Failure::io(format!(
            "{}: need 8 kHz, 16-bit, mono or stereo; it is {} Hz, {}-bit, {} channel(s)",
            path.display(),
            spec.sample_rate,
            spec.bits_per_sample,
            spec.channels
        )));
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    Ok(Audio {
        samples,
        channels: usize::from(spec.channels),
    })
}

/// The upgrade request Genesys sends: fresh organization, session and correlation
/// ids, signed with `secret` (base64) when there is one. The request, the session id
/// and the organization id.
pub(crate) fn signed_request(
    url: &str,
    api_key: &str,
    secret: Option<&str>,
) -> Result<(Request, String, String), Failure> {
    let mut request = url
        .into_client_request()
        .map_err(|e| Failure::io(format!("{url}: {e}")))?;
    if request.uri().authority().is_none() {
        return Err(Failure::io(format!("{url} has no host")));
    }
    let ids = sign_upgrade(&mut request, api_key, secret, SystemTime::now())
        .map_err(|e| Failure::io(e.to_string()))?;
    Ok((request, ids.session_id, ids.organization_id))
}

fn random_token(bytes: usize) -> Result<String, Failure> {
    let mut random = vec![0u8; bytes];
    getrandom::fill(&mut random).map_err(|e| Failure::io(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}

pub(crate) fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What the session did, for the report.
#[derive(Default)]
struct Outcome {
    lines: Vec<String>,
    refused: Option<String>,
    completed: bool,
    error: Option<String>,
    transcripts: Vec<Value>,
    output_variables: Option<BTreeMap<String, String>>,
    audio_back: usize,
    disconnect: Option<String>,
    bot_turns: Vec<Value>,
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    let audio = load_audio(&args)?;
    let secret = args.connection.secret()?;
    let secret = if args.tamper {
        // A well-formed secret that is not the integration's.
        Some(base64::engine::general_purpose::STANDARD.encode(random_token(24)?))
    } else {
        secret
    };
    let (request, session, organization) = signed_request(
        &args.connection.url,
        &args.connection.api_key,
        secret.as_deref(),
    )?;
    progress(
        json,
        format!(
            "Connecting to {} as session {session} ({}{}, {})",
            args.connection.url,
            if secret.is_some() {
                "signed"
            } else {
                "unsigned"
            },
            if args.tamper {
                ", with a wrong secret on purpose"
            } else {
                ""
            },
            args.mode,
        ),
    );
    let outcome = session_run(request, &session, &organization, &audio, &args, json).await;
    report(&args, &session, &audio, outcome)
}

fn report(args: &Args, session: &str, audio: &Audio, outcome: Outcome) -> Result<Report, Failure> {
    let mut text = outcome.lines.join("\n");
    let doc = |passed: bool, verdict: &str| {
        json!({
            "url": args.connection.url,
            "session": session,
            "mode": args.mode,
            "tamper": args.tamper,
            "channels": audio.channels,
            "format": if args.l16 { "L16" } else { "PCMU" },
            "audioBytes": audio.samples.len(),
            "refused": outcome.refused,
            "completed": outcome.completed,
            "error": outcome.error,
            "transcripts": outcome.transcripts,
            "outputVariables": outcome.output_variables,
            "audioBytesReceived": outcome.audio_back,
            "disconnect": outcome.disconnect,
            "botTurns": outcome.bot_turns,
            "passed": passed,
            "verdict": verdict,
        })
    };
    let (passed, verdict) = match (args.tamper, &outcome.refused, outcome.completed) {
        (true, Some(how), _) => (
            true,
            format!("OK: the server refused the forged signature ({how})."),
        ),
        (true, None, _) => (
            false,
            "WARNING: THE SERVER ACCEPTED A FORGED SIGNATURE. Anyone can open sessions on it."
                .to_owned(),
        ),
        (false, Some(how), _) => (
            false,
            format!("FAILED: the server refused the upgrade ({how})."),
        ),
        (false, None, true) => (
            true,
            match &outcome.disconnect {
                Some(reason) => {
                    format!("OK: the server ended the session ({reason}), then closed.")
                }
                None => "OK: the session completed (open, audio, ping, close).".to_owned(),
            },
        ),
        (false, None, false) => (
            false,
            format!(
                "FAILED: {}",
                outcome
                    .error
                    .as_deref()
                    .unwrap_or("the session did not complete")
            ),
        ),
    };
    text.push('\n');
    text.push_str(&verdict);
    let doc = doc(passed, &verdict);
    Ok(if passed {
        Report::passed(text, doc)
    } else {
        Report::failed(text, doc)
    })
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends what the client session has queued (the socket is closed once a run ends).
pub(crate) async fn flush(socket: &mut Socket, client: &mut ClientSession) -> Result<(), String> {
    while let Some(output) = client.poll_output() {
        let message = match output {
            Output::Text(text) => Message::Text(text.into()),
            Output::Binary(audio) => Message::Binary(audio),
            _ => continue,
        };
        socket.send(message).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Everything the server sent that is not awaited: events, audio, pause and resume.
struct Listener<'a> {
    socket: &'a mut Socket,
    client: &'a mut ClientSession,
    outcome: &'a mut Outcome,
    json: bool,
}

impl Listener<'_> {
    /// Sends what the client session has queued.
    async fn flush(&mut self) -> Result<(), String> {
        flush(self.socket, self.client).await
    }

    /// Handles one message; returns it when it is not a side message.
    async fn take(&mut self, message: Message) -> Result<Option<ServerMessage>, String> {
        let text = match message {
            Message::Binary(audio) => {
                self.client.handle_binary(&audio);
                self.outcome.audio_back += audio.len();
                return Ok(None);
            }
            Message::Text(text) => text,
            Message::Close(_) => return Err("the server closed the connection".into()),
            _ => return Ok(None),
        };
        let message = self.client.handle_text(&text).map_err(|e| e.to_string())?;
        // The client answers the server's pause and resume by itself.
        self.flush().await?;
        match &message.body {
            ServerBody::Event(event) => {
                for entity in &event.entities {
                    self.print_entity(entity);
                }
                Ok(None)
            }
            ServerBody::Pause | ServerBody::Resume => Ok(None),
            _ => Ok(Some(message)),
        }
    }

    fn print_entity(&mut self, entity: &EventEntity) {
        match entity {
            EventEntity::Transcript(t) => {
                let text = t
                    .alternatives
                    .first()
                    .and_then(|a| a.interpretations.first())
                    .map_or("", |i| i.transcript.as_str());
                let channel = if t.channel_id == 0 {
                    "external"
                } else {
                    "internal"
                };
                let at = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
                let line = format!(
                    "transcript {channel} at {:.2} s for {:.2} s: {text}",
                    at(t.offset),
                    at(t.duration)
                );
                self.outcome.lines.push(line);
                self.outcome.transcripts.push(json!({
                    "channelId": t.channel_id,
                    "offset": at(t.offset),
                    "duration": at(t.duration),
                    "text": text,
                }));
            }
            EventEntity::BargeIn => self.outcome.lines.push("event barge_in".into()),
            EventEntity::BotTurnResponse(turn) => {
                self.outcome.lines.push("event bot_turn_response".into());
                self.outcome
                    .bot_turns
                    .push(serde_json::to_value(turn).unwrap_or_default());
            }
            EventEntity::AgentAssist(a) => self.outcome.lines.push(format!(
                "event agentassist: {} utterance(s), {} suggestion(s)",
                a.utterances.as_ref().map_or(0, Vec::len),
                a.suggestions.as_ref().map_or(0, Vec::len)
            )),
            EventEntity::Other { kind, .. } => self.outcome.lines.push(format!("event {kind}")),
            _ => self.outcome.lines.push("event".into()),
        }
    }

    /// Reads what has already arrived, without waiting.
    async fn drain(&mut self) -> Result<Option<ServerMessage>, String> {
        loop {
            match tokio::time::timeout(Duration::ZERO, self.socket.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err("the server closed the connection".into()),
                Ok(Some(Err(error))) => return Err(error.to_string()),
                Ok(Some(Ok(message))) => {
                    if let Some(message) = self.take(message).await? {
                        return Ok(Some(message));
                    }
                }
            }
        }
    }

    /// Waits for a message of type `kind`, or a `disconnect`.
    async fn expect(&mut self, kind: &str) -> Result<ServerMessage, String> {
        loop {
            let next = tokio::time::timeout(ANSWER_TIMEOUT, self.socket.next())
                .await
                .map_err(|_| format!("no {kind} within {} s", ANSWER_TIMEOUT.as_secs()))?;
            let message = match next {
                None => return Err(format!("the server closed the connection before {kind}")),
                Some(Err(error)) => return Err(error.to_string()),
                Some(Ok(message)) => message,
            };
            if let Some(message) = self.take(message).await? {
                if message.body.kind() == kind || message.body.kind() == "disconnect" {
                    return Ok(message);
                }
                // The answer to a ping sent before a disconnect crossed it.
                if matches!(message.body, ServerBody::Pong) {
                    continue;
                }
                return Err(unexpected(&message, kind));
            }
        }
    }
}

/// The server spoke out of turn; a `disconnect` says why.
fn unexpected(message: &ServerMessage, kind: &str) -> String {
    match &message.body {
        ServerBody::Disconnect(d) => format!(
            "disconnect: {}{}",
            d.reason.as_str(),
            d.info
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default()
        ),
        other => format!("expected {kind}, got {}", other.kind()),
    }
}

fn open_parameters(organization: &str, audio: &Audio, args: &Args) -> OpenParameters {
    let channels: &[MediaChannel] = if audio.channels == 2 {
        &[MediaChannel::External, MediaChannel::Internal]
    } else {
        &[MediaChannel::External]
    };
    let media = vec![Media::audio(format(args), channels, 8000)];
    if args.probe {
        return OpenParameters::probe(organization, media);
    }
    let participant = Participant::new(
        uuid(),
        "+15551230000",
        "genesys-webhook simulator",
        "+15557650000",
    );
    let mut open = OpenParameters::new(organization, uuid(), participant, media)
        .language("en-US")
        .ask_supported_languages(args.mode == "transcription");
    if args.mode == "connector" {
        let mut input_variables = Map::new();
        input_variables.insert("greeting".into(), "hello".into());
        open = open.input_variables(input_variables);
    }
    open
}

/// The format offered: PCMU, or L16 with `--l16`.
fn format(args: &Args) -> MediaFormat {
    if args.l16 {
        MediaFormat::L16
    } else {
        MediaFormat::Pcmu
    }
}

async fn session_run(
    request: Request,
    session: &str,
    organization: &str,
    audio: &Audio,
    args: &Args,
    json: bool,
) -> Outcome {
    let mut outcome = Outcome::default();
    let connected = tokio::time::timeout(
        ANSWER_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(request, None, true),
    )
    .await;
    let mut socket = match connected {
        Err(_) => {
            outcome.error = Some("no answer to the upgrade".into());
            return outcome;
        }
        Ok(Err(WsError::Http(response))) => {
            outcome
                .lines
                .push(format!("upgrade answered {}", response.status()));
            if response.status() == 401 {
                outcome.refused = Some("HTTP 401".into());
            } else {
                outcome.error = Some(format!("the upgrade was answered {}", response.status()));
            }
            return outcome;
        }
        Ok(Err(error)) => {
            outcome.error = Some(format!(
                "cannot connect: {}",
                printable(error.to_string().as_bytes(), 300)
            ));
            return outcome;
        }
        Ok(Ok((socket, _))) => socket,
    };
    outcome.lines.push("upgrade accepted".into());
    let mut client = ClientSession::new(session);
    let open = open_parameters(organization, audio, args);
    let mut steps_done = Vec::new();
    let result = {
        let mut listener = Listener {
            socket: &mut socket,
            client: &mut client,
            outcome: &mut outcome,
            json,
        };
        run_steps(&mut listener, open, audio, args, &mut steps_done).await
    };
    match result {
        Ok(Ending::Closed) => {
            outcome.lines.push(format!(
                "opened, {:.1} s of audio in {} channel(s) ({}), {}closed",
                client.position().as_secs_f64(),
                audio.channels,
                if args.l16 { "L16" } else { "PCMU" },
                steps_done
                    .iter()
                    .map(|s| format!("{s}, "))
                    .collect::<String>(),
            ));
            outcome.completed = true;
        }
        Ok(Ending::Disconnected(reason, variables)) => {
            outcome.lines.push(format!(
                "opened, {:.1} s of audio, {}disconnect {reason}, close, closed",
                client.position().as_secs_f64(),
                steps_done
                    .iter()
                    .map(|s| format!("{s}, "))
                    .collect::<String>(),
            ));
            if let Some(variables) = &variables {
                outcome.lines.push(format!(
                    "output variables: {}",
                    serde_json::to_string(variables).unwrap_or_default()
                ));
            }
            outcome.completed = reason == "completed";
            if !outcome.completed {
                outcome.error = Some(format!("the server disconnected: {reason}"));
            }
            outcome.output_variables = variables;
            outcome.disconnect = Some(reason);
        }
        Err(error) if error.starts_with("disconnect: unauthorized") => {
            outcome.refused = Some("disconnect, reason unauthorized".into());
        }
        Err(error) => outcome.error = Some(printable(error.as_bytes(), 300)),
    }
    if outcome.audio_back > 0 {
        outcome.lines.push(format!(
            "audio received: {} bytes ({:.2} s)",
            outcome.audio_back,
            outcome.audio_back as f64 / if args.l16 { 16_000.0 } else { 8_000.0 }
        ));
    }
    let _ = socket.close(None).await;
    outcome
}

enum Ending {
    Closed,
    Disconnected(String, Option<BTreeMap<String, String>>),
}

/// Sends `close` (reason `end`) and waits for the answer: `closed`, or the server's
/// `disconnect` as the error.
async fn close(
    listener: &mut Listener<'_>,
) -> Result<Result<ServerMessage, ServerMessage>, String> {
    listener.client.close(CloseReason::End);
    listener.flush().await?;
    let answer = listener.expect("closed").await?;
    Ok(if matches!(answer.body, ServerBody::Disconnect(_)) {
        Err(answer)
    } else {
        Ok(answer)
    })
}

/// After the server's `disconnect`: `close` with reason `disconnect`, then `closed`.
async fn answer_disconnect(
    listener: &mut Listener<'_>,
    message: &ServerMessage,
) -> Result<Ending, String> {
    let ServerBody::Disconnect(disconnect) = &message.body else {
        return Err(unexpected(message, "disconnect"));
    };
    let reason = disconnect.reason.as_str().to_owned();
    if disconnect.reason == DisconnectReason::Unauthorized {
        return Err("disconnect: unauthorized".into());
    }
    let mut variables = disconnect.output_variables.clone();
    listener.client.close(CloseReason::Disconnect);
    listener.flush().await?;
    let closed = listener.expect("closed").await?;
    match closed.body {
        ServerBody::Closed(closed) => variables = variables.or(closed.output_variables),
        _ => return Err(unexpected(&closed, "closed")),
    }
    Ok(Ending::Disconnected(reason, variables))
}

async fn run_steps(
    listener: &mut Listener<'_>,
    open: OpenParameters,
    audio: &Audio,
    args: &Args,
    done: &mut Vec<String>,
) -> Result<Ending, String> {
    listener.client.open(open);
    listener.flush().await?;
    let opened = listener.expect("opened").await?;
    let ServerBody::Opened(parameters) = &opened.body else {
        return Err(unexpected(&opened, "opened"));
    };
    if let Some(languages) = &parameters.supported_languages {
        done.push(format!("supported languages {}", languages.join(" ")));
    }
    if args.probe {
        done.push(format!(
            "probe answered with {} media",
            parameters.media.len()
        ));
        return match close(listener).await? {
            Ok(_) => Ok(Ending::Closed),
            Err(disconnect) => answer_disconnect(listener, &disconnect).await,
        };
    }
    let chosen = parameters.media.first().map_or(0, |m| m.channels.len());
    if chosen != audio.channels && args.mode != "connector" {
        return Err(format!(
            "the server chose {chosen} channel(s), {} were offered",
            audio.channels
        ));
    }
    progress(listener.json, "opened; streaming audio");
    let frame_samples = 800 * audio.channels;
    let frames: Vec<&[i16]> = audio.samples.chunks(frame_samples).collect();
    let total = frames.len();
    let mut pace = tokio::time::interval(FRAME);
    let mut skip = 0usize;
    for (index, frame) in frames.iter().enumerate() {
        if index == total / 4 && args.discard {
            // Half a second is dropped, and said so.
            listener.client.discarded(Duration::from_millis(500));
            listener.flush().await?;
            done.push("discarded 0.5 s".into());
            skip = 5;
        }
        if index == total / 2 {
            if let Some(seconds) = args.pause {
                listener.client.pause();
                listener.flush().await?;
                let pause = Duration::from_secs_f64(seconds.clamp(0.0, 3600.0));
                if !args.fast {
                    tokio::time::sleep(pause).await;
                }
                listener.client.resume(pause);
                listener.flush().await?;
                done.push(format!("paused {seconds} s and resumed"));
            }
        }
        if index == total * 3 / 4 {
            if let Some(language) = &args.update {
                listener.client.update_language(language.clone());
                listener.flush().await?;
                done.push(format!("update to {language}"));
            }
        }
        if !args.fast {
            pace.tick().await;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        // Nothing while the server holds the stream paused, or selected no media.
        if chosen > 0 && !listener.client.is_paused() {
            let data = format(args).encode(frame);
            if listener.client.send_audio(data.into()).is_ok() {
                listener.flush().await?;
            }
        }
        if let Some(message) = listener.drain().await? {
            return answer_disconnect(listener, &message).await;
        }
    }
    if let Some(keys) = &args.dtmf {
        for digit in keys.chars() {
            listener.client.dtmf(digit);
            listener.flush().await?;
            tokio::time::sleep(Duration::from_millis(if args.fast { 20 } else { 200 })).await;
            if let Some(message) = listener.drain().await? {
                done.push(format!(
                    "dtmf {}",
                    &keys[..keys.find(digit).map_or(0, |i| i + 1)]
                ));
                return answer_disconnect(listener, &message).await;
            }
        }
        done.push(format!("dtmf {keys}"));
    }
    listener.client.ping();
    listener.flush().await?;
    let pong = listener.expect("pong").await?;
    if matches!(pong.body, ServerBody::Disconnect(_)) {
        return answer_disconnect(listener, &pong).await;
    }
    done.push("pong".into());
    let closed = match close(listener).await? {
        Ok(closed) => closed,
        Err(disconnect) => return answer_disconnect(listener, &disconnect).await,
    };
    if let ServerBody::Closed(closed) = closed.body {
        if let Some(variables) = closed.output_variables {
            listener.outcome.lines.push(format!(
                "output variables: {}",
                serde_json::to_string(&variables).unwrap_or_default()
            ));
            listener.outcome.output_variables = Some(variables);
        }
    }
    Ok(Ending::Closed)
}
