//! Properties of the AudioHook protocol and codec, over generated input.

use std::time::Duration;

use genesys_webhook::audiohook::codec;
use genesys_webhook::audiohook::protocol::{format_duration, parse_duration, ClientMessage};
use genesys_webhook::audiohook::session::ServerSession;
use proptest::prelude::*;

proptest! {
    #[test]
    fn durations_round_trip(secs in 0u64..10_000_000, nanos in 0u32..1_000_000_000) {
        let duration = Duration::new(secs, nanos);
        let text = format_duration(duration);
        prop_assert!(text.starts_with("PT") && text.ends_with('S'));
        prop_assert_eq!(parse_duration(&text), Some(duration));
    }

    #[test]
    fn parsing_any_text_never_panics(text in ".{0,200}") {
        let _ = parse_duration(&text);
        let _ = ClientMessage::parse(&text);
        let mut session = ServerSession::new(Some("s"), Some("o"));
        let _ = session.handle_text(at(), &text);
        let _ = session.handle_binary(at(), text.clone().into_bytes().into());
    }

    #[test]
    fn channels_split_and_interleave_back(frames in proptest::collection::vec(any::<[u8; 4]>(), 0..400)) {
        let data: Vec<u8> = frames.iter().flatten().copied().collect();
        for bytes_per_sample in [1usize, 2] {
            let split = codec::split_channels(&data, 2, bytes_per_sample);
            let back = codec::interleave(&[&split[0], &split[1]], bytes_per_sample);
            prop_assert_eq!(&back, &data);
        }
    }

    #[test]
    fn l16_round_trips(samples in proptest::collection::vec(any::<i16>(), 0..400)) {
        prop_assert_eq!(codec::decode_l16(&codec::encode_l16(&samples)), samples);
    }
}

/// The instant messages are handled at: these tests keep no time.
fn at() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}
