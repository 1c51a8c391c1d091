//! `genesys-webhook audiohook URL`: a Genesys Cloud simulator. Opens a signed WebSocket
//! upgrade as Genesys does, then runs an AudioHook session: `open`, audio at real-time
//! pace, `ping`, `close`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use genesys_webhook::audiohook::media::encode_mulaw;
use genesys_webhook::audiohook::signature::{sign, SigningInput};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::output::{printable, progress, Failure, Report};
use crate::secret::{one_secret, Hidden};

/// Audio is sent in frames of this length.
const FRAME: Duration = Duration::from_millis(100);
/// How long to wait for each answer of the server.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server's WebSocket URL, e.g. ws://127.0.0.1:5001/audiohook/ws.
    url: String,
    /// The integration's API key.
    #[arg(long, env = "AUDIOHOOK_API_KEY")]
    api_key: String,
    /// The integration's client secret, base64 as Genesys shows it. Prefer the
    /// variable or --client-secret-file. Without one, the upgrade is sent unsigned.
    #[arg(long, env = "AUDIOHOOK_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<Hidden>,
    /// Read the client secret from this file.
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
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
}

/// Interleaved μ-law audio and its channel count.
struct Audio {
    bytes: Vec<u8>,
    channels: usize,
}

fn load_audio(args: &Args) -> Result<Audio, Failure> {
    let Some(path) = &args.audio else {
        let channels = if args.stereo { 2 } else { 1 };
        let samples = 8000 * args.seconds.min(3600) as usize;
        let mut bytes = Vec::with_capacity(samples * channels);
        for n in 0..samples {
            let t = n as f64 / 8000.0;
            for (channel, tone) in [440.0, 660.0].iter().take(channels).enumerate() {
                let _ = channel;
                let value = (t * tone * std::f64::consts::TAU).sin() * 8000.0;
                bytes.push(encode_mulaw(value as i16));
            }
        }
        return Ok(Audio { bytes, channels });
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
    let bytes = reader
        .into_samples::<i16>()
        .map(|s| s.map(encode_mulaw))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
    Ok(Audio {
        bytes,
        channels: usize::from(spec.channels),
    })
}

fn random_token(bytes: usize) -> Result<String, Failure> {
    let mut random = vec![0u8; bytes];
    getrandom::fill(&mut random).map_err(|e| Failure::io(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random))
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What the session did, for the report.
#[derive(Default)]
struct Outcome {
    lines: Vec<String>,
    refused: Option<String>,
    completed: bool,
    error: Option<String>,
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    let audio = load_audio(&args)?;
    let secret = one_secret(
        args.client_secret.as_ref(),
        args.client_secret_file.as_deref(),
    )?;
    let secret = if args.tamper {
        // A well-formed secret that is not the integration's.
        Some(base64::engine::general_purpose::STANDARD.encode(random_token(24)?))
    } else {
        secret
    };
    let mut request = args
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| Failure::io(format!("{}: {e}", args.url)))?;
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase())
        .ok_or_else(|| Failure::io(format!("{} has no host", args.url)))?;
    let target = request
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |pq| pq.as_str().to_owned());
    let (organization, session, correlation) = (uuid(), uuid(), uuid());
    let headers = request.headers_mut();
    let mut put = |name: &'static str, value: &str| -> Result<(), Failure> {
        let value = value
            .parse()
            .map_err(|_| Failure::io(format!("{name} is not a valid header value")))?;
        headers.insert(name, value);
        Ok(())
    };
    put("x-api-key", &args.api_key)?;
    put("audiohook-organization-id", &organization)?;
    put("audiohook-session-id", &session)?;
    put("audiohook-correlation-id", &correlation)?;
    if let Some(secret) = &secret {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let nonce = random_token(24)?;
        let (input, signature) = sign(
            &SigningInput {
                request_target: &target,
                authority: &authority,
                organization_id: &organization,
                session_id: &session,
                correlation_id: &correlation,
                api_key: &args.api_key,
                created: now,
                expires: now + 60,
                nonce: &nonce,
            },
            secret,
        )
        .map_err(|e| Failure::io(e.to_string()))?;
        put("signature-input", &input)?;
        put("signature", &signature)?;
    }
    progress(
        json,
        format!(
            "Connecting to {} as session {session} ({}{})",
            args.url,
            if secret.is_some() {
                "signed"
            } else {
                "unsigned"
            },
            if args.tamper {
                ", with a wrong secret on purpose"
            } else {
                ""
            }
        ),
    );
    let outcome = session_run(request, &session, &organization, &audio, args.fast, json).await;
    report(&args, &session, &audio, outcome)
}

fn report(args: &Args, session: &str, audio: &Audio, outcome: Outcome) -> Result<Report, Failure> {
    let mut text = outcome.lines.join("\n");
    let doc = |passed: bool, verdict: &str| {
        json!({
            "url": args.url,
            "session": session,
            "tamper": args.tamper,
            "channels": audio.channels,
            "audioBytes": audio.bytes.len(),
            "refused": outcome.refused,
            "completed": outcome.completed,
            "error": outcome.error,
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
            "OK: the session completed (open, audio, ping, close).".to_owned(),
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

/// Sequence numbers and the position, as the client keeps them.
struct Client {
    seq: u64,
    server_seq: u64,
    samples_sent: u64,
    id: String,
}

impl Client {
    fn message(&mut self, kind: &str, parameters: Value) -> Message {
        self.seq += 1;
        let position = format!("PT{:.3}S", self.samples_sent as f64 / 8000.0);
        Message::Text(
            json!({
                "version": "2",
                "id": self.id,
                "type": kind,
                "seq": self.seq,
                "serverseq": self.server_seq,
                "position": position,
                "parameters": parameters,
            })
            .to_string()
            .into(),
        )
    }
}

async fn session_run(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    session: &str,
    organization: &str,
    audio: &Audio,
    fast: bool,
    json: bool,
) -> Outcome {
    let mut outcome = Outcome::default();
    let connected =
        tokio::time::timeout(ANSWER_TIMEOUT, tokio_tungstenite::connect_async(request)).await;
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
    let mut client = Client {
        seq: 0,
        server_seq: 0,
        samples_sent: 0,
        id: session.to_owned(),
    };
    let channels: Vec<&str> = if audio.channels == 2 {
        vec!["external", "internal"]
    } else {
        vec!["external"]
    };
    let open = client.message(
        "open",
        json!({
            "organizationId": organization,
            "conversationId": uuid(),
            "participant": { "id": uuid(), "ani": "+15551230000", "aniName": "genesys-webhook simulator", "dnis": "+15557650000" },
            "media": [{ "type": "audio", "format": "PCMU", "channels": channels, "rate": 8000 }],
            "language": "en-US",
        }),
    );
    let steps = async {
        socket.send(open).await.map_err(|e| e.to_string())?;
        let opened = expect(&mut socket, &mut client, "opened").await?;
        let chosen = opened["parameters"]["media"][0]["channels"]
            .as_array()
            .map_or(0, Vec::len);
        if chosen != audio.channels {
            return Err(format!(
                "the server chose {chosen} channel(s), {} were offered",
                audio.channels
            ));
        }
        progress(json, "opened; streaming audio");
        let frame_bytes = 800 * audio.channels;
        let mut pace = tokio::time::interval(FRAME);
        for frame in audio.bytes.chunks(frame_bytes) {
            if !fast {
                pace.tick().await;
            }
            socket
                .send(Message::Binary(frame.to_vec().into()))
                .await
                .map_err(|e| e.to_string())?;
            client.samples_sent += (frame.len() / audio.channels) as u64;
        }
        let ping = client.message("ping", json!({}));
        socket.send(ping).await.map_err(|e| e.to_string())?;
        expect(&mut socket, &mut client, "pong").await?;
        let close = client.message("close", json!({ "reason": "end" }));
        socket.send(close).await.map_err(|e| e.to_string())?;
        expect(&mut socket, &mut client, "closed").await?;
        let _ = socket.close(None).await;
        Ok::<(), String>(())
    };
    match steps.await {
        Ok(()) => {
            outcome.lines.push(format!(
                "opened, {:.1} s of audio in {} channel(s), pong, closed",
                client.samples_sent as f64 / 8000.0,
                audio.channels
            ));
            outcome.completed = true;
        }
        Err(error) if error.starts_with("disconnect: unauthorized") => {
            outcome.refused = Some("disconnect, reason unauthorized".into());
        }
        Err(error) => outcome.error = Some(printable(error.as_bytes(), 300)),
    }
    outcome
}

/// Waits for a message of type `kind`; a `disconnect` or anything else is an error.
async fn expect<S>(socket: &mut S, client: &mut Client, kind: &str) -> Result<Value, String>
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let next = tokio::time::timeout(ANSWER_TIMEOUT, socket.next())
            .await
            .map_err(|_| format!("no {kind} within {} s", ANSWER_TIMEOUT.as_secs()))?;
        let message = match next {
            None => return Err(format!("the server closed the connection before {kind}")),
            Some(Err(error)) => return Err(error.to_string()),
            Some(Ok(message)) => message,
        };
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value =
            serde_json::from_str(&text).map_err(|_| "the server sent malformed JSON".to_owned())?;
        let seq = value["seq"].as_u64().unwrap_or(0);
        if seq != client.server_seq + 1 {
            return Err(format!("server seq {seq} after {}", client.server_seq));
        }
        client.server_seq = seq;
        match value["type"].as_str() {
            Some(t) if t == kind => return Ok(value),
            Some("disconnect") => {
                let reason = value["parameters"]["reason"].as_str().unwrap_or("?");
                return Err(format!("disconnect: {reason}"));
            }
            Some(other) => return Err(format!("expected {kind}, got {other}")),
            None => return Err("a message without a type".into()),
        }
    }
}
