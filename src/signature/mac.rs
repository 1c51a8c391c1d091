use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use smallvec::SmallVec;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{Scheme, Secret};

type HmacSha256 = Hmac<Sha256>;

/// The 32 bytes of an HMAC-SHA256 digest.
pub(crate) type Digest = [u8; 32];

/// One entry per configured secret; a single secret lives inline, so a request
/// allocates nothing for it (each HMAC state is 144 bytes, and the request future
/// that holds them is moved a few times).
pub(crate) type PerSecret<T> = SmallVec<[T; 1]>;

/// HMAC-SHA256 of `message` keyed with `key` (RFC 2104), as 32 raw bytes.
///
/// ```
/// use genesys_webhook::signature::hmac_sha256;
///
/// // RFC 4231, test case 2.
/// let digest = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
/// assert_eq!(
///     hex::encode(digest),
///     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
/// );
/// ```
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The `X-Genesys-Signature` value for `body`: lowercase hex HMAC-SHA256 keyed by `secret`.
///
/// ```
/// use genesys_webhook::signature::sign_genesys;
///
/// let value = sign_genesys("dev-secret", br#"{"event":"test"}"#);
/// assert_eq!(value.len(), 64);
/// ```
pub fn sign_genesys(secret: impl AsRef<[u8]>, body: &[u8]) -> String {
    Scheme::XGenesysSignature.sign(secret, body)
}

/// The `X-Hub-Signature-256` value for `body`: `sha256=` and the base64 HMAC-SHA256 keyed
/// by `secret`, exactly as Genesys Cloud's Open Messaging integration sends it.
///
/// ```
/// use genesys_webhook::signature::sign_open_messaging;
///
/// let value = sign_open_messaging("dev-secret", br#"{"type":"Text"}"#);
/// assert!(value.starts_with("sha256=") && value.len() == 7 + 44);
/// ```
pub fn sign_open_messaging(secret: impl AsRef<[u8]>, body: &[u8]) -> String {
    Scheme::OpenMessaging.sign(secret, body)
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (RFC 2104 §2), so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The configured secrets, each already keyed into an HMAC state so that a request
/// only clones the state instead of hashing the key again. The states are zeroized
/// when dropped.
#[derive(Clone)]
pub(crate) struct KeyRing {
    keys: Vec<HmacSha256>,
}

impl KeyRing {
    pub(crate) fn new(secrets: &[Secret]) -> Self {
        Self {
            keys: secrets.iter().map(|s| keyed(s.expose())).collect(),
        }
    }

    /// Starts one pass over a body, for every secret at once.
    pub(crate) fn start(&self) -> Verification {
        Verification {
            macs: self.keys.iter().cloned().collect(),
        }
    }
}

/// HMAC states being fed with a body as it arrives.
pub(crate) struct Verification {
    macs: PerSecret<HmacSha256>,
}

impl Verification {
    pub(crate) fn update(&mut self, data: &[u8]) {
        for mac in &mut self.macs {
            mac.update(data);
        }
    }

    /// The digest of the body under each secret, in the order the secrets were given.
    pub(crate) fn finish(self) -> PerSecret<Digest> {
        self.macs
            .into_iter()
            .map(|mac| mac.finalize().into_bytes().into())
            .collect()
    }
}

/// The index of the digest that equals `received`, comparing every candidate in
/// constant time so that the timing reveals neither a prefix nor which secret matched.
pub(crate) fn find_match(computed: &[Digest], received: &Digest) -> Option<usize> {
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, digest) in computed.iter().enumerate() {
        let equal = digests_equal(digest, received) & !found;
        index.conditional_assign(&(i as u64), equal);
        found |= equal;
    }
    bool::from(found).then_some(index as usize)
}

/// Whether two digests are equal, in constant time: every byte pair is compared
/// whatever came before, and only the OR of their differences is tested. (`subtle`'s
/// slice comparison puts an optimization barrier on every byte instead.)
fn digests_equal(a: &Digest, b: &Digest) -> subtle::Choice {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    difference.ct_eq(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 §4, HMAC-SHA-256 outputs (test case 5 is truncated and checked by prefix).
    const RFC4231: &[(&[u8], &[u8], &str)] = &[
        (
            &[0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            &[0xaa; 20],
            &[0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        ),
        (
            &[
                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
                0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
            ],
            &[0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        ),
        (
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
        (
            &[0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        ),
    ];

    #[test]
    fn rfc4231_test_vectors() {
        for (key, data, expected) in RFC4231 {
            assert_eq!(hex::encode(hmac_sha256(key, data)), *expected);
            assert_eq!(sign_genesys(key, data), *expected);
            let om = sign_open_messaging(key, data);
            let parsed = Scheme::OpenMessaging.parse(om.as_bytes()).unwrap();
            assert_eq!(hex::encode(parsed.digest()), *expected);
        }
    }

    #[test]
    fn rfc4231_test_case_5_truncated() {
        let digest = hmac_sha256(&[0x0c; 20], b"Test With Truncation");
        assert_eq!(
            hex::encode(&digest[..16]),
            "a3b6167473100ee06e0c796c2955552b"
        );
    }

    #[test]
    fn streaming_equals_one_shot_for_every_split() {
        let body: Vec<u8> = (0..300u16).map(|i| (i % 251) as u8).collect();
        let ring = KeyRing::new(&[Secret::from("a"), Secret::from("b")]);
        for split in [0, 1, 63, 64, 65, 299, 300] {
            let mut v = ring.start();
            v.update(&body[..split]);
            v.update(&body[split..]);
            let digests = v.finish();
            assert_eq!(digests[0], hmac_sha256(b"a", &body));
            assert_eq!(digests[1], hmac_sha256(b"b", &body));
        }
    }

    #[test]
    fn digests_differing_in_any_single_bit_are_not_equal() {
        let a: Digest = std::array::from_fn(|i| i as u8);
        assert!(bool::from(digests_equal(&a, &a)));
        for byte in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[byte] ^= 1 << bit;
                assert!(!bool::from(digests_equal(&a, &b)), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn find_match_returns_the_first_matching_index() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(find_match(&[a, b], &b), Some(1));
        assert_eq!(find_match(&[a, b], &a), Some(0));
        assert_eq!(find_match(&[a, a], &a), Some(0));
        assert_eq!(find_match(&[a, b], &[3u8; 32]), None);
        assert_eq!(find_match(&[], &a), None);
    }
}
