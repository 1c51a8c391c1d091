//! Audio back to Genesys at real-time pace, with no I/O and no clock: time comes in
//! as a value, as it does for the session.
//!
//! Genesys answers bursts of audio with `429` errors (an Audio Connector bot's reply
//! sent at once, ten DTMF tones in a millisecond). [`AudioPacer`] cuts what the
//! application sends into frames of at most 200 ms and lets one go only while the
//! audio already sent runs at most 400 ms ahead of real time. A barge-in, a
//! disconnect or an explicit [`clear`](AudioPacer::clear) drops what waits.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use genesys_webhook::audiohook::pacing::AudioPacer;
//! use genesys_webhook::audiohook::protocol::MediaFormat;
//!
//! let start = Instant::now();
//! let mut pacer = AudioPacer::new(MediaFormat::Pcmu);
//! pacer.push(vec![0xff; 8000].into()); // one second of μ-law at 8 kHz
//! // 400 ms go at once, in two frames of 200 ms...
//! assert_eq!(pacer.poll_frame(start).map(|f| f.len()), Some(1600));
//! assert_eq!(pacer.poll_frame(start).map(|f| f.len()), Some(1600));
//! assert!(pacer.poll_frame(start).is_none());
//! // ...and the next one when the first has played.
//! assert_eq!(pacer.poll_timeout(start), Some(start + Duration::from_millis(200)));
//! assert!(pacer.poll_frame(start + Duration::from_millis(200)).is_some());
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::protocol::MediaFormat;

/// The longest frame sent: 200 ms, as Pipecat sends PCMU to Genesys.
pub const MAX_FRAME: Duration = Duration::from_millis(200);
/// How far the audio sent may run ahead of real time: 400 ms.
pub const MAX_AHEAD: Duration = Duration::from_millis(400);

/// The sample rate of AudioHook audio.
const RATE: u64 = 8000;

/// Paces audio for Genesys (external channel only, 8 kHz, in the session's format).
#[derive(Debug)]
pub struct AudioPacer {
    bytes_per_sample: usize,
    queue: VecDeque<Bytes>,
    /// When the audio sent so far ends playing.
    playing_until: Option<Instant>,
}

impl AudioPacer {
    /// A pacer for audio in `format` (PCMU: 1 byte a sample; L16: 2).
    pub fn new(format: MediaFormat) -> Self {
        Self {
            bytes_per_sample: format.bytes_per_sample().max(1),
            queue: VecDeque::new(),
            playing_until: None,
        }
    }

    /// Queues `audio`, cut into frames of at most 200 ms of whole samples (a trailing
    /// part sample is dropped).
    pub fn push(&mut self, mut audio: Bytes) {
        let frame = self.bytes_per_sample * (RATE as usize) / 5;
        let whole = audio.len() - audio.len() % self.bytes_per_sample;
        audio.truncate(whole);
        while !audio.is_empty() {
            let take = audio.len().min(frame);
            self.queue.push_back(audio.split_to(take));
        }
    }

    /// The next frame, if it may go at `now`.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Bytes> {
        let playing_until = self.playing_until.filter(|t| *t > now).unwrap_or(now);
        let frame = self.queue.front()?;
        let ends = playing_until + self.duration_of(frame.len());
        if ends.saturating_duration_since(now) > MAX_AHEAD {
            return None;
        }
        self.playing_until = Some(ends);
        self.queue.pop_front()
    }

    /// When the next frame may go (`None` with nothing queued).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let frame = self.queue.front()?;
        let playing_until = self.playing_until.filter(|t| *t > now).unwrap_or(now);
        let ends = playing_until + self.duration_of(frame.len());
        Some(ends.checked_sub(MAX_AHEAD).unwrap_or(now).max(now))
    }

    /// Drops what waits (a barge-in, a disconnect); the audio already sent plays on.
    /// Returns how much was dropped.
    pub fn clear(&mut self) -> Duration {
        let bytes: usize = self.queue.drain(..).map(|f| f.len()).sum();
        self.duration_of(bytes)
    }

    /// How much audio waits.
    pub fn queued(&self) -> Duration {
        self.duration_of(self.queue.iter().map(Bytes::len).sum())
    }

    fn duration_of(&self, bytes: usize) -> Duration {
        let samples = (bytes / self.bytes_per_sample) as u64;
        Duration::from_micros(samples * 1_000_000 / RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_tones_at_once_leave_at_real_time_pace() {
        let start = Instant::now();
        let mut pacer = AudioPacer::new(MediaFormat::Pcmu);
        // Ten 150 ms tones in one millisecond: 1.5 s of audio.
        for _ in 0..10 {
            pacer.push(Bytes::from(vec![0xffu8; 1200]));
        }
        let mut now = start;
        let mut sent = Vec::new();
        while let Some(due) = pacer.poll_timeout(now) {
            now = due;
            while let Some(frame) = pacer.poll_frame(now) {
                sent.push((now - start, frame.len()));
            }
        }
        assert_eq!(sent.iter().map(|(_, n)| n).sum::<usize>(), 12_000);
        assert!(sent.iter().all(|(_, n)| *n <= 1600));
        // Never more than 400 ms of audio ahead of real time.
        let mut played = Duration::ZERO;
        for (at, bytes) in &sent {
            played += Duration::from_micros(*bytes as u64 * 125);
            assert!(played <= *at + MAX_AHEAD, "{played:?} sent by {at:?}");
        }
        // The last tone leaves about 1.1 s after the first (1.5 s minus 400 ms).
        let last = sent.last().unwrap().0;
        assert!(
            last >= Duration::from_millis(1000) && last <= Duration::from_millis(1150),
            "{last:?}"
        );
    }

    #[test]
    fn l16_frames_are_200_ms_of_whole_samples() {
        let mut pacer = AudioPacer::new(MediaFormat::L16);
        pacer.push(Bytes::from(vec![0u8; 8001]));
        assert_eq!(pacer.queued(), Duration::from_millis(500));
        let now = Instant::now();
        assert_eq!(pacer.poll_frame(now).unwrap().len(), 3200);
    }

    #[test]
    fn clear_drops_what_waits_and_the_pace_goes_on() {
        let start = Instant::now();
        let mut pacer = AudioPacer::new(MediaFormat::Pcmu);
        pacer.push(Bytes::from(vec![0xffu8; 8000]));
        assert!(pacer.poll_frame(start).is_some());
        assert_eq!(pacer.clear(), Duration::from_millis(800));
        assert!(pacer.poll_frame(start).is_none());
        assert_eq!(pacer.poll_timeout(start), None);
        // New audio after the clear waits only for what was already sent.
        pacer.push(Bytes::from(vec![0xffu8; 1600]));
        assert!(pacer.poll_frame(start).is_some());
    }
}
