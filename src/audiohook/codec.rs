//! Audio helpers: G.711 μ-law (PCMU) ↔ 16-bit PCM, L16, splitting interleaved channels,
//! resampling 8 kHz to 16 kHz (speech engines usually want 16 kHz) and tones.
//!
//! AudioHook audio is 8,000 samples a second per channel, the channels interleaved in
//! the order of the selected media (`external` first when both are there). PCMU is one
//! byte a sample; L16 two, little-endian (as Genesys' reference server reads it).
//!
//! ```
//! use genesys_webhook::audiohook::codec::{self, Upsampler};
//!
//! // 20 ms of stereo PCMU silence: split, decode, resample the customer's side.
//! let frame = vec![0xffu8; 2 * 160];
//! let [external, internal] = codec::split_stereo(&frame, 1);
//! let pcm = codec::decode_mulaw_slice(&external);
//! assert_eq!((pcm.len(), internal.len()), (160, 160));
//! let mut up = Upsampler::new();
//! let mut wide = Vec::new();
//! up.process(&pcm, &mut wide);
//! up.flush(&mut wide);
//! assert_eq!(wide.len(), 320);
//! ```

use std::f64::consts::PI;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

/// Decodes one μ-law byte to a 16-bit linear sample (ITU-T G.711).
pub fn decode_mulaw(byte: u8) -> i16 {
    let byte = !byte;
    let sign = byte & 0x80;
    let exponent = (byte >> 4) & 0x07;
    let mantissa = byte & 0x0f;
    let magnitude = ((i32::from(mantissa) << 3) + 0x84) << exponent;
    let sample = magnitude - 0x84;
    // At most 8,031 << 2: always within i16.
    let sample = sample as i16;
    if sign != 0 {
        -sample
    } else {
        sample
    }
}

/// Encodes a 16-bit linear sample as one μ-law byte (ITU-T G.711).
pub fn encode_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut value = i32::from(sample);
    let sign = if value < 0 {
        value = -value;
        0x80
    } else {
        0
    };
    value = value.min(CLIP) + BIAS;
    let mut exponent = 7u8;
    let mut mask = 0x4000;
    while exponent > 0 && value & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = ((value >> (exponent + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// Decodes μ-law bytes to 16-bit samples.
pub fn decode_mulaw_slice(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|b| decode_mulaw(*b)).collect()
}

/// Encodes 16-bit samples as μ-law bytes.
pub fn encode_mulaw_slice(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|s| encode_mulaw(*s)).collect()
}

/// Decodes L16 (little-endian 16-bit) bytes; a trailing odd byte is ignored.
pub fn decode_l16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

/// Encodes 16-bit samples as L16 (little-endian) bytes.
pub fn encode_l16(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// One channel of interleaved audio: `index` among `channels`, `bytes_per_sample` 1
/// for PCMU and 2 for L16. A trailing partial frame is ignored.
pub fn channel_of(data: &[u8], channels: usize, bytes_per_sample: usize, index: usize) -> Vec<u8> {
    let frame = channels * bytes_per_sample;
    if frame == 0 || index >= channels {
        return Vec::new();
    }
    let at = index * bytes_per_sample;
    match bytes_per_sample {
        1 => data.chunks_exact(frame).map(|f| f[at]).collect(),
        2 => {
            let mut out = Vec::with_capacity(data.len() / channels);
            for f in data.chunks_exact(frame) {
                out.push(f[at]);
                out.push(f[at + 1]);
            }
            out
        }
        _ => data
            .chunks_exact(frame)
            .flat_map(|f| f[at..at + bytes_per_sample].iter().copied())
            .collect(),
    }
}

/// Splits interleaved audio into one buffer per channel. `bytes_per_sample` is 1 for
/// PCMU and 2 for L16; a trailing partial frame is ignored.
pub fn split_channels(data: &[u8], channels: usize, bytes_per_sample: usize) -> Vec<Vec<u8>> {
    (0..channels)
        .map(|index| channel_of(data, channels, bytes_per_sample, index))
        .collect()
}

/// Splits stereo audio into its two channels (in the selected order).
pub fn split_stereo(data: &[u8], bytes_per_sample: usize) -> [Vec<u8>; 2] {
    let mut split = split_channels(data, 2, bytes_per_sample).into_iter();
    [
        split.next().unwrap_or_default(),
        split.next().unwrap_or_default(),
    ]
}

/// Interleaves equally long channel buffers (the reverse of [`split_channels`]).
pub fn interleave(channels: &[&[u8]], bytes_per_sample: usize) -> Vec<u8> {
    let frames = channels
        .iter()
        .map(|c| c.len() / bytes_per_sample.max(1))
        .min()
        .unwrap_or(0);
    let mut out = Vec::with_capacity(frames * bytes_per_sample * channels.len());
    for i in 0..frames {
        for channel in channels {
            out.extend_from_slice(&channel[i * bytes_per_sample..(i + 1) * bytes_per_sample]);
        }
    }
    out
}

/// A sine tone at 8 kHz, `amplitude` of full scale (0 to 1).
pub fn tone(frequencies: &[f64], millis: u32, amplitude: f64) -> Vec<i16> {
    let samples = millis as usize * 8;
    let scale = amplitude.clamp(0.0, 1.0) * f64::from(i16::MAX) / frequencies.len().max(1) as f64;
    (0..samples)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let sum: f64 = frequencies.iter().map(|f| (2.0 * PI * f * t).sin()).sum();
            (sum * scale) as i16
        })
        .collect()
}

/// The two frequencies of a DTMF key (`0`–`9`, `*`, `#`, `A`–`D`), or `None`.
pub fn dtmf_frequencies(digit: char) -> Option<[f64; 2]> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLUMNS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [[char; 4]; 4] = [
        ['1', '2', '3', 'A'],
        ['4', '5', '6', 'B'],
        ['7', '8', '9', 'C'],
        ['*', '0', '#', 'D'],
    ];
    let digit = digit.to_ascii_uppercase();
    KEYS.iter().enumerate().find_map(|(row, keys)| {
        keys.iter()
            .position(|k| *k == digit)
            .map(|column| [ROWS[row], COLUMNS[column]])
    })
}

/// Resamples a whole clip from 8 kHz to 16 kHz: twice as many samples. For a stream,
/// keep an [`Upsampler`] instead, so that the filter runs across frames.
pub fn upsample_8k_to_16k(samples: &[i16]) -> Vec<i16> {
    let mut up = Upsampler::new();
    let mut out = Vec::with_capacity(samples.len() * 2);
    up.process(samples, &mut out);
    up.flush(&mut out);
    out
}

/// Samples of the 8 kHz input taken at a time by [`Upsampler`] (20 ms).
const UPSAMPLER_CHUNK: usize = 160;

/// Streams 8 kHz samples to 16 kHz, keeping the filter's state between calls (a sinc
/// resampler from `rubato`, band-limited at 0.95 of 4 kHz).
///
/// Output lags input by the filter's delay; [`flush`](Self::flush) at the end of the
/// stream writes what is left, so that `n` input samples give `2 n` output samples.
pub struct Upsampler {
    resampler: Async<f32>,
    pending: Vec<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
    /// Output samples still to drop: the filter's delay, so output starts in step.
    skip: usize,
    consumed: u64,
    produced: u64,
}

impl std::fmt::Debug for Upsampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upsampler")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Default for Upsampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler {
    /// An 8 kHz → 16 kHz upsampler for one channel.
    pub fn new() -> Self {
        let parameters = SincInterpolationParameters {
            sinc_len: 64,
            f_cutoff: Some(0.95),
            oversampling_factor: 128,
            interpolation: SincInterpolationType::Quadratic,
            window: WindowFunction::BlackmanHarris2,
        };
        // Construction fails only for invalid constant parameters, which these are not.
        #[allow(clippy::expect_used)]
        let resampler =
            Async::<f32>::new_sinc(2.0, 1.0, &parameters, UPSAMPLER_CHUNK, 1, FixedAsync::Input)
                .expect("valid resampler parameters");
        // Measured: with this delay less one, an impulse at input sample n peaks at
        // output sample 2 n (see the tests).
        let skip = resampler.output_delay().saturating_sub(1);
        let max = resampler.output_frames_max();
        Self {
            resampler,
            pending: Vec::with_capacity(UPSAMPLER_CHUNK),
            input: vec![0.0; UPSAMPLER_CHUNK],
            output: vec![0.0; max],
            skip,
            consumed: 0,
            produced: 0,
        }
    }

    /// Feeds 8 kHz samples and appends the 16 kHz samples ready so far to `out`.
    pub fn process(&mut self, samples: &[i16], out: &mut Vec<i16>) {
        for sample in samples {
            self.pending.push(f32::from(*sample) / 32_768.0);
            if self.pending.len() == UPSAMPLER_CHUNK {
                self.run(UPSAMPLER_CHUNK, out);
                self.pending.clear();
            }
        }
    }

    /// Ends the stream: writes the rest, so that the output is twice the input.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let wanted = self.consumed_total() * 2;
        let partial = self.pending.len();
        self.consumed += partial as u64;
        self.pending.clear();
        // Feed silence until the delayed samples are all out.
        let mut rounds = 0;
        let mut first = Some(partial);
        while self.produced < wanted && rounds < 64 {
            let take = first.take().unwrap_or(0);
            self.input[take..].iter_mut().for_each(|s| *s = 0.0);
            self.run_raw(take, out, wanted);
            rounds += 1;
        }
        self.resampler.reset();
        self.skip = self.resampler.output_delay().saturating_sub(1);
        self.consumed = 0;
        self.produced = 0;
    }

    fn consumed_total(&self) -> u64 {
        self.consumed + self.pending.len() as u64
    }

    fn run(&mut self, len: usize, out: &mut Vec<i16>) {
        self.input[..len].copy_from_slice(&self.pending[..len]);
        self.consumed += len as u64;
        self.run_raw(len, out, u64::MAX);
    }

    fn run_raw(&mut self, len: usize, out: &mut Vec<i16>, limit: u64) {
        let frames_out = self.output.len();
        let (Ok(input), Ok(mut output)) = (
            InterleavedSlice::new(&self.input[..], 1, UPSAMPLER_CHUNK),
            InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out),
        ) else {
            return;
        };
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            partial_len: (len < UPSAMPLER_CHUNK).then_some(len),
            active_channels_mask: None,
        };
        let Ok((_, written)) =
            self.resampler
                .process_into_buffer(&input, &mut output, Some(&indexing))
        else {
            return;
        };
        for sample in &self.output[..written] {
            if self.skip > 0 {
                self.skip -= 1;
                continue;
            }
            if self.produced >= limit {
                break;
            }
            out.push((sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16);
            self.produced += 1;
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_the_quantisation_step() {
        for sample in (-32_000i16..32_000).step_by(97) {
            let back = decode_mulaw(encode_mulaw(sample));
            let step = (i32::from(sample).abs() / 16).max(8);
            assert!(
                (i32::from(back) - i32::from(sample)).abs() <= step,
                "{sample} -> {back}"
            );
        }
        assert_eq!(decode_mulaw(0xff), 0);
        assert_eq!(encode_mulaw(0), 0xff);
        for byte in 0..=255u8 {
            assert_eq!(
                encode_mulaw(decode_mulaw(byte)),
                if byte == 0x7f { 0xff } else { byte }
            );
        }
    }

    #[test]
    fn l16_is_little_endian_and_round_trips() {
        assert_eq!(encode_l16(&[1, -2]), vec![1, 0, 0xfe, 0xff]);
        assert_eq!(decode_l16(&[1, 0, 0xfe, 0xff, 9]), vec![1, -2]);
    }

    #[test]
    fn channels_split_and_interleave_back() {
        let stereo = [1u8, 2, 3, 4, 5, 6, 7];
        assert_eq!(
            split_channels(&stereo, 2, 1),
            vec![vec![1, 3, 5], vec![2, 4, 6]]
        );
        let l16 = [1u8, 1, 2, 2, 3, 3, 4, 4];
        let [a, b] = split_stereo(&l16, 2);
        assert_eq!((a.clone(), b.clone()), (vec![1, 1, 3, 3], vec![2, 2, 4, 4]));
        assert_eq!(interleave(&[&a, &b], 2), l16.to_vec());
        assert!(split_channels(&stereo, 0, 1).is_empty());
        assert_eq!(channel_of(&stereo, 2, 1, 1), vec![2, 4, 6]);
        assert!(channel_of(&stereo, 2, 1, 2).is_empty());
        assert_eq!(
            channel_of(&[1, 2, 3, 4, 5, 6], 1, 3, 0),
            vec![1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn upsampling_doubles_the_rate_and_keeps_a_tone() {
        let input = tone(&[1000.0], 500, 0.5);
        let mut up = Upsampler::new();
        let mut out = Vec::new();
        for piece in input.chunks(333) {
            up.process(piece, &mut out);
        }
        up.flush(&mut out);
        assert_eq!(out.len(), input.len() * 2);
        // A 1 kHz tone at 16 kHz: 16 samples a period. Compare with the ideal tone in
        // the middle, where the filter has settled.
        let ideal = |n: usize| 0.5 * 32_767.0 * (2.0 * PI * 1000.0 * n as f64 / 16_000.0).sin();
        let error: f64 = (2000..6000)
            .map(|n| (f64::from(out[n]) - ideal(n)).abs())
            .sum::<f64>()
            / 4000.0;
        assert!(error < 200.0, "mean error {error}");

        // An impulse lands where it belongs: input sample n at output sample 2 n.
        let mut impulse = vec![0i16; 1000];
        impulse[100] = 20_000;
        let mut out = Vec::new();
        up.process(&impulse, &mut out);
        up.flush(&mut out);
        let peak = out
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| **v)
            .map(|(i, _)| i);
        assert_eq!(peak, Some(200));
        assert_eq!(upsample_8k_to_16k(&impulse).len(), 2000);
    }

    #[test]
    fn dtmf_keys_have_their_two_frequencies() {
        assert_eq!(dtmf_frequencies('5'), Some([770.0, 1336.0]));
        assert_eq!(dtmf_frequencies('#'), Some([941.0, 1477.0]));
        assert_eq!(dtmf_frequencies('x'), None);
        let beep = tone(&[941.0, 1477.0], 100, 0.5);
        assert_eq!(beep.len(), 800);
        assert!(beep.iter().any(|s| *s > 8000));
    }
}
