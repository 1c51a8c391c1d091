//! G.711 μ-law (PCMU), the audio format AudioHook offers: 8 bits a sample, 8,000
//! samples a second per channel, channels interleaved.

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
}
