//! `genesys-webhook audiohook-load URL`: opens many signed AudioHook sessions at once
//! and streams stereo PCMU to each at real-time pace (one frame every 200 ms), with a
//! ping every 5 s. It reports how many sessions kept real time, the ping round trips
//! and what the server sent back. A load generator for benchmarks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use genesys_webhook::audiohook::protocol::{
    CloseReason, Media, MediaChannel, MediaFormat, OpenParameters, Participant, ServerBody,
};
use genesys_webhook::audiohook::session::ClientSession;
use serde_json::json;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::audiohook::{flush, signed_request, uuid, Connection};
use crate::output::{progress, Failure, Report};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    connection: Connection,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Seconds of audio each session streams, once all are open.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds over which the sessions are opened.
    #[arg(long, default_value_t = 10)]
    ramp: u64,
    /// `transcription` asks for the supported languages (the example then runs its
    /// voice-activity detector); `monitor` does not.
    #[arg(long, default_value = "transcription", value_parser = ["monitor", "transcription"])]
    mode: String,
    /// A frame sent this much after its time counts as falling behind real time.
    #[arg(long, default_value_t = 1000)]
    late_ms: u64,
}

/// One session's tally.
#[derive(Default)]
struct Tally {
    opened: bool,
    completed: bool,
    frames: u64,
    max_late: Duration,
    rtts: Vec<Duration>,
    transcripts: u64,
    error: Option<String>,
}

const FRAME: Duration = Duration::from_millis(200);
const PING_EVERY: Duration = Duration::from_secs(5);
const FRAME_BYTES: usize = 3200;

/// Ten seconds of stereo μ-law: 1.5 s of tone, 1 s of silence, over and over.
fn pattern() -> Bytes {
    let mut samples = Vec::with_capacity(160_000);
    for n in 0..80_000usize {
        let on = n % 20_000 < 12_000;
        let t = n as f64 / 8000.0;
        for tone in [440.0, 660.0] {
            let value = if on {
                (t * tone * std::f64::consts::TAU).sin() * 8000.0
            } else {
                0.0
            };
            samples.push(value as i16);
        }
    }
    Bytes::from(MediaFormat::Pcmu.encode(&samples))
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    let secret = args.connection.secret()?;
    let audio = pattern();
    let args = Arc::new(args);
    let secret: Arc<Option<String>> = Arc::new(secret);
    let begin = Instant::now();
    let streaming_from = begin + Duration::from_secs(args.ramp) + Duration::from_secs(1);
    progress(
        json,
        format!(
            "Opening {} sessions over {} s, then {} s of audio each",
            args.sessions, args.ramp, args.seconds
        ),
    );
    let mut tasks = Vec::with_capacity(args.sessions);
    for index in 0..args.sessions {
        let args = Arc::clone(&args);
        let secret = Arc::clone(&secret);
        let audio = audio.clone();
        let spread = args.ramp * 1000 * index as u64 / args.sessions.max(1) as u64;
        let start = begin + Duration::from_millis(spread);
        tasks.push(tokio::spawn(async move {
            sleep_until(start).await;
            let mut tally = Tally::default();
            if let Err(error) = session(
                &args,
                secret.as_deref(),
                &audio,
                index,
                streaming_from,
                &mut tally,
            )
            .await
            {
                tally.error = Some(error);
            }
            tally
        }));
    }
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await.unwrap_or_else(|_| Tally {
            error: Some("the session task panicked".into()),
            ..Tally::default()
        }));
    }
    Ok(summarize(&args, &tallies, begin.elapsed()))
}

async fn session(
    args: &Args,
    secret: Option<&str>,
    audio: &Bytes,
    index: usize,
    streaming_from: Instant,
    tally: &mut Tally,
) -> Result<(), String> {
    let (request, id, organization) =
        signed_request(&args.connection.url, &args.connection.api_key, secret)
            .map_err(|f| format!("{f:?}"))?;
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async_with_config(request, None, true),
    )
    .await
    .map_err(|_| "upgrade timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut client = ClientSession::new(id);
    let media = vec![Media::audio(
        MediaFormat::Pcmu,
        &[MediaChannel::External, MediaChannel::Internal],
        8000,
    )];
    let participant = Participant::new(uuid(), "", "", "");
    let open = OpenParameters::new(organization, uuid(), participant, media)
        .language("en-US")
        .ask_supported_languages(args.mode == "transcription");
    client.open(open);
    flush(&mut socket, &mut client).await?;
    let frames = args.seconds * 1000 / FRAME.as_millis() as u64;
    let late = Duration::from_millis(args.late_ms);
    let offset = (index * 7 * FRAME_BYTES) % audio.len();
    // Sessions start at random moments in real life: spread their frames over the
    // 200 ms cycle rather than send them all at once.
    let phase = FRAME * u32::try_from(index % 1000).unwrap_or(0) / 1000;
    let mut next_frame = streaming_from + phase;
    let mut next_ping = streaming_from + PING_EVERY * (index % 25) as u32 / 25;
    let mut ping_sent: Option<Instant> = None;
    let mut closing = false;
    loop {
        tokio::select! {
            () = sleep_until(next_frame), if tally.opened && !closing => {
                let behind = Instant::now().saturating_duration_since(next_frame);
                tally.max_late = tally.max_late.max(behind);
                let at = (offset + tally.frames as usize * FRAME_BYTES) % audio.len();
                let frame = audio.slice(at..at + FRAME_BYTES);
                // Held back while the server keeps the stream paused.
                let _ = client.send_audio(frame);
                tally.frames += 1;
                next_frame += FRAME;
                if tally.frames == frames {
                    closing = true;
                    client.close(CloseReason::End);
                }
                flush(&mut socket, &mut client).await?;
            }
            () = sleep_until(next_ping), if tally.opened && !closing && ping_sent.is_none() => {
                client.ping();
                flush(&mut socket, &mut client).await?;
                ping_sent = Some(Instant::now());
                next_ping += PING_EVERY;
            }
            incoming = socket.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return Err("the server closed the connection".into()),
                    Some(Err(error)) => return Err(error.to_string()),
                    Some(Ok(_)) => continue,
                };
                let message = client.handle_text(&text).map_err(|e| e.to_string())?;
                // The client answers the server's pause and resume by itself.
                flush(&mut socket, &mut client).await?;
                match message.body {
                    ServerBody::Opened(_) => tally.opened = true,
                    ServerBody::Pong => {
                        if let Some(sent) = ping_sent.take() {
                            tally.rtts.push(sent.elapsed());
                        }
                    }
                    ServerBody::Event(_) => tally.transcripts += 1,
                    ServerBody::Closed(_) => {
                        tally.completed = true;
                        let _ = socket.close(None).await;
                        break;
                    }
                    ServerBody::Disconnect(_) => return Err(format!("disconnected: {text}")),
                    _ => {}
                }
            }
        }
    }
    if tally.max_late > late {
        tally.error.get_or_insert(format!(
            "fell behind real time by {} ms",
            tally.max_late.as_millis()
        ));
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn summarize(args: &Args, tallies: &[Tally], elapsed: Duration) -> Report {
    let opened = tallies.iter().filter(|t| t.opened).count();
    let completed = tallies.iter().filter(|t| t.completed).count();
    let late = Duration::from_millis(args.late_ms);
    let behind = tallies
        .iter()
        .filter(|t| !t.completed || t.max_late > late || t.error.is_some())
        .count();
    let sustained = tallies.len() - behind;
    let mut rtts: Vec<Duration> = tallies
        .iter()
        .flat_map(|t| t.rtts.iter().copied())
        .collect();
    rtts.sort_unstable();
    let max_late = tallies.iter().map(|t| t.max_late).max().unwrap_or_default();
    let frames: u64 = tallies.iter().map(|t| t.frames).sum();
    let transcripts: u64 = tallies.iter().map(|t| t.transcripts).sum();
    let mut errors: Vec<&str> = tallies.iter().filter_map(|t| t.error.as_deref()).collect();
    errors.sort_unstable();
    errors.dedup();
    errors.truncate(5);
    let (p50, p99, max) = (
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        percentile(&rtts, 1.0),
    );
    let text = format!(
        "sessions {}: opened {opened}, completed {completed}, kept real time {sustained}, fell behind or failed {behind}\n\
         frames sent {frames}, latest frame {} ms late, transcript events {transcripts}\n\
         ping round trip ms: p50 {p50:.1}, p99 {p99:.1}, max {max:.1} ({} pings)\n\
         elapsed {:.1} s{}",
        tallies.len(),
        max_late.as_millis(),
        rtts.len(),
        elapsed.as_secs_f64(),
        if errors.is_empty() {
            String::new()
        } else {
            format!("\nerrors: {}", errors.join("; "))
        }
    );
    let doc = json!({
        "sessions": tallies.len(),
        "opened": opened,
        "completed": completed,
        "sustained": sustained,
        "behind": behind,
        "frames": frames,
        "maxLateMs": max_late.as_millis() as u64,
        "transcriptEvents": transcripts,
        "pings": rtts.len(),
        "pingP50Ms": p50,
        "pingP99Ms": p99,
        "pingMaxMs": max,
        "elapsedSeconds": elapsed.as_secs_f64(),
        "errors": errors,
        "passed": behind == 0,
    });
    if behind == 0 {
        Report::passed(text, doc)
    } else {
        Report::failed(text, doc)
    }
}
