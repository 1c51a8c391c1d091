//! AudioHook Monitor: records each session as a WAV file (16-bit PCM, the channels as
//! selected), when `AUDIOHOOK_RECORD_DIR` is set.

use std::fs::File;
use std::io::BufWriter;

use genesys_webhook::audiohook::session::{AudioFrame, OpenReply, OpenRequest};

use crate::Settings;

pub struct Monitor {
    wav: Option<hound::WavWriter<BufWriter<File>>>,
    samples: u64,
}

impl Monitor {
    /// Takes the first supported offer; starts the recording.
    pub fn open(request: &OpenRequest, session_id: &str, settings: &Settings) -> (Self, OpenReply) {
        let reply = request.accept();
        let mut monitor = Self {
            wav: None,
            samples: 0,
        };
        if let (Some(dir), Some(media)) = (&settings.record_dir, reply.media()) {
            let name: String = session_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let spec = hound::WavSpec {
                channels: u16::try_from(media.channels.len()).unwrap_or(1),
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            match hound::WavWriter::create(dir.join(format!("{name}.wav")), spec) {
                Ok(writer) => monitor.wav = Some(writer),
                Err(error) => tracing::warn!(%error, "cannot record the session"),
            }
        }
        (monitor, reply)
    }

    /// Appends the frame, decoded, to the recording.
    pub fn audio(&mut self, frame: &AudioFrame) {
        self.samples += frame.samples() as u64;
        let Some(wav) = &mut self.wav else { return };
        let samples = frame.format().decode(&frame.data);
        for sample in samples {
            if wav.write_sample(sample).is_err() {
                tracing::warn!("stopped recording after a write error");
                self.wav = None;
                return;
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(wav) = self.wav.take() {
            if let Err(error) = wav.finalize() {
                tracing::warn!(%error, "could not finish the recording");
            }
        }
        tracing::info!(
            samples_per_channel = self.samples,
            "monitor session recorded"
        );
    }
}
