//! Randomness from the operating system, for identifiers, jitter and keys that must
//! not be guessed. Where the system has none to give, the bytes are still unique
//! within the process (a counter and the time), never a constant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = n.to_le_bytes().into_iter().chain(t.to_le_bytes());
        for (byte, from) in bytes.iter_mut().zip(seed.cycle()) {
            *byte = from;
        }
    }
    bytes
}

/// A number in `[0, 1)`, for jitter.
#[cfg(feature = "cloud")]
pub(crate) fn unit() -> f64 {
    (u64::from_le_bytes(bytes()) >> 11) as f64 / (1u64 << 53) as f64
}

/// A random (version 4) UUID, lowercase and hyphenated.
#[cfg(feature = "audiohook")]
pub(crate) fn uuid_v4() -> String {
    let mut b: [u8; 16] = bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = const_hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "audiohook")]
    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (super::uuid_v4(), super::uuid_v4());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
