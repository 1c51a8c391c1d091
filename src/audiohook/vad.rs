//! An energy voice-activity detector for μ-law audio, as Genesys' reference
//! transcription endpoint simulates its recogniser.
//!
//! It looks at each channel in 100 ms chunks (800 bytes at 8 kHz) of raw μ-law bytes.
//! For a byte `b`, `e = b & 0x7F` is lower the louder the sample. A chunk is voice when
//! its lowest `e` is under 80 and its mean `e` under 110. An utterance starts 200 ms
//! before the start of the second voiced chunk in a row, and ends 400 ms before the
//! start of the fourth silent chunk in a row.
//!
//! ```
//! use genesys_webhook::audiohook::vad::VoiceActivityDetector;
//!
//! let mut vad = VoiceActivityDetector::new();
//! let voice = vec![0x10u8; 800 * 5]; // loud
//! let silence = vec![0xffu8; 800 * 6];
//! assert!(vad.push(&voice).is_empty());
//! let utterances = vad.push(&silence);
//! assert_eq!(utterances.len(), 1);
//! assert_eq!(utterances[0].start.as_millis(), 0);
//! assert_eq!(utterances[0].end.as_millis(), 400);
//! ```

use std::time::Duration;

/// Bytes of one 100 ms chunk of one μ-law channel.
pub const CHUNK: usize = 800;
const VOICED_IN_A_ROW: u32 = 2;
const SILENT_IN_A_ROW: u32 = 4;

/// One stretch of voice, relative to the detector's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Utterance {
    /// Where it starts.
    pub start: Duration,
    /// Where it ends.
    pub end: Duration,
}

impl Utterance {
    /// How long it lasts.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The detector for one channel. It keeps at most one partial chunk (800 bytes).
#[derive(Debug, Clone)]
pub struct VoiceActivityDetector {
    partial: [u8; CHUNK],
    partial_len: usize,
    /// Chunks seen so far.
    chunks: u64,
    voiced: u32,
    silent: u32,
    /// Start of the current utterance, in chunks of 100 ms.
    start: Option<u64>,
}

impl Default for VoiceActivityDetector {
    fn default() -> Self {
        Self::new()
    }
}

fn chunk_time(chunks: u64) -> Duration {
    Duration::from_millis(chunks * 100)
}

/// Whether a 100 ms chunk of μ-law bytes is voice.
pub fn is_voice(chunk: &[u8]) -> bool {
    if chunk.is_empty() {
        return false;
    }
    let mut min = u8::MAX;
    let mut sum = 0u32;
    for byte in chunk {
        let e = byte & 0x7f;
        min = min.min(e);
        sum += u32::from(e);
    }
    min < 80 && (sum as usize) < 110 * chunk.len()
}

impl VoiceActivityDetector {
    /// A detector at position zero.
    pub fn new() -> Self {
        Self {
            partial: [0; CHUNK],
            partial_len: 0,
            chunks: 0,
            voiced: 0,
            silent: 0,
            start: None,
        }
    }

    /// Whether an utterance is under way.
    pub fn in_utterance(&self) -> bool {
        self.start.is_some()
    }

    /// Feeds μ-law bytes of one channel; returns the utterances that ended.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<Utterance> {
        let mut ended = Vec::new();
        if self.partial_len > 0 {
            let take = (CHUNK - self.partial_len).min(bytes.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&bytes[..take]);
            self.partial_len += take;
            bytes = &bytes[take..];
            if self.partial_len == CHUNK {
                let chunk = self.partial;
                self.partial_len = 0;
                self.chunk(&chunk, &mut ended);
            }
        }
        let mut chunks = bytes.chunks_exact(CHUNK);
        for chunk in &mut chunks {
            self.chunk(chunk, &mut ended);
        }
        let rest = chunks.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len += rest.len();
        ended
    }

    fn chunk(&mut self, chunk: &[u8], ended: &mut Vec<Utterance>) {
        if is_voice(chunk) {
            self.voiced += 1;
            self.silent = 0;
        } else {
            self.silent += 1;
            self.voiced = 0;
        }
        if self.voiced == VOICED_IN_A_ROW && self.start.is_none() {
            // 200 ms before the start of the second voiced chunk.
            self.start = Some(self.chunks.saturating_sub(u64::from(VOICED_IN_A_ROW)));
            self.silent = 0;
        } else if self.silent == SILENT_IN_A_ROW {
            if let Some(start) = self.start.take() {
                // 400 ms before the start of the fourth silent chunk.
                let end = self.chunks.saturating_sub(u64::from(SILENT_IN_A_ROW));
                ended.push(Utterance {
                    start: chunk_time(start),
                    end: chunk_time(end.max(start)),
                });
                self.voiced = 0;
            }
        }
        self.chunks += 1;
    }

    /// Ends the stream (or a stretch of it, before a pause or a discard): the
    /// utterance under way, if any, ends where the audio ends. The detector starts
    /// again from zero.
    pub fn finish(&mut self) -> Option<Utterance> {
        let end = chunk_time(self.chunks) + Duration::from_millis(self.partial_len as u64 / 8);
        let utterance = self.start.map(|start| Utterance {
            start: chunk_time(start),
            end,
        });
        *self = Self::new();
        utterance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: u8 = 0x10;
    const QUIET: u8 = 0xff;

    fn chunks(pattern: &str) -> Vec<u8> {
        pattern
            .bytes()
            .flat_map(|c| vec![if c == b'v' { LOUD } else { QUIET }; CHUNK])
            .collect()
    }

    #[test]
    fn the_energy_rule_is_the_references() {
        assert!(is_voice(&[LOUD; CHUNK]));
        assert!(!is_voice(&[QUIET; CHUNK]));
        // One loud byte in quiet: the minimum passes, the mean does not.
        let mut one = [0x7fu8; CHUNK];
        one[0] = 0x00;
        assert!(!is_voice(&one));
        // Mean just under 110 with a minimum under 80.
        let mut mixed = [109u8; CHUNK];
        mixed[0] = 79;
        assert!(is_voice(&mixed));
        mixed[0] = 80;
        assert!(!is_voice(&mixed));
    }

    #[test]
    fn one_voiced_chunk_is_not_an_utterance() {
        let mut vad = VoiceActivityDetector::new();
        assert!(vad.push(&chunks("ssvsssssvsssss")).is_empty());
        assert_eq!(vad.finish(), None);
    }

    #[test]
    fn utterances_start_and_end_as_the_reference_says() {
        let mut vad = VoiceActivityDetector::new();
        // Voice in chunks 3..=7 (300 ms to 800 ms), silence after.
        let ended = vad.push(&chunks("sssvvvvvssssss"));
        // Second voiced chunk starts at 400 ms: utterance from 200 ms. Fourth silent
        // chunk starts at 1,100 ms: end at 700 ms.
        assert_eq!(
            ended,
            vec![Utterance {
                start: Duration::from_millis(200),
                end: Duration::from_millis(700)
            }]
        );
    }

    #[test]
    fn bytes_arrive_in_any_pieces() {
        let audio = chunks("vvvvssssvvvvvvssss");
        let mut whole = VoiceActivityDetector::new();
        let expected = whole.push(&audio);
        let mut pieces = VoiceActivityDetector::new();
        let mut got = Vec::new();
        for piece in audio.chunks(333) {
            got.extend(pieces.push(piece));
        }
        assert_eq!(got, expected);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn finishing_ends_the_utterance_under_way_where_the_audio_ends() {
        let mut vad = VoiceActivityDetector::new();
        vad.push(&chunks("vvvv"));
        vad.push(&[LOUD; 400]);
        assert!(vad.in_utterance());
        assert_eq!(
            vad.finish(),
            Some(Utterance {
                start: Duration::ZERO,
                end: Duration::from_millis(450)
            })
        );
        assert!(!vad.in_utterance());
    }
}
