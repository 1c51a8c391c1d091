use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;

use super::mac::{hmac_sha256, Digest};

/// A way of carrying an HMAC-SHA256 signature of the raw request body in a header.
///
/// | scheme | header | value |
/// |---|---|---|
/// | [`Scheme::OpenMessaging`] | `X-Hub-Signature-256` | `sha256=<base64 digest>` (a 64-character hex digest is accepted too) |
/// | [`Scheme::XGenesysSignature`] | `X-Genesys-Signature` | `<hex digest>`, either case |
///
/// Every scheme uses HMAC-SHA256 keyed with the secret's bytes over the exact bytes of
/// the body as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `X-Genesys-Signature: <hex HMAC-SHA256>`, the scheme of the original tutorial,
    /// sent by signing gateways and test tools rather than by Genesys Cloud itself.
    XGenesysSignature,
    /// `X-Hub-Signature-256: sha256=<base64 HMAC-SHA256>`, what Genesys Cloud's Open
    /// Messaging integration sends, keyed by the integration's webhook signature secret.
    OpenMessaging,
}

/// How the digest in a header value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// 64 hexadecimal characters, either case.
    Hex,
    /// 44 characters of standard base64 (43 without the `=` padding).
    Base64,
}

impl Encoding {
    /// Writes a digest in this encoding (hex in lowercase, standard padded base64),
    /// without any scheme prefix.
    pub fn encode(self, digest: &[u8; 32]) -> String {
        match self {
            Self::Hex => const_hex::encode(digest),
            Self::Base64 => STANDARD.encode(digest),
        }
    }
}

/// A header value that was well-formed: the 32 digest bytes and how they were written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParsedSignature {
    digest: Digest,
    encoding: Encoding,
}

/// Why a signature header value could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedSignature {
    /// The value is empty (or only whitespace), or has nothing after `sha256=`.
    Empty,
    /// The value holds a comma: one header value carries exactly one signature.
    List,
    /// An `X-Hub-Signature-256` value that does not start with `sha256=`.
    MissingPrefix,
    /// The digest is neither 64 hex characters nor 44 (or 43) base64 characters.
    WrongLength {
        /// How many characters the digest had.
        len: usize,
    },
    /// 64 characters that are not all hexadecimal digits.
    InvalidHex,
    /// A digest in a header that takes hex only (`X-Genesys-Signature`) whose length
    /// is not 64: often a base64 digest (44 characters) in the wrong header.
    HexOnly {
        /// How many characters the digest had.
        len: usize,
    },
    /// Base64-sized, but not standard base64 for 32 bytes.
    InvalidBase64,
    /// Characters outside printable ASCII.
    NotAscii,
}

impl fmt::Display for MalformedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the signature is empty"),
            Self::List => f.write_str("the header value holds more than one signature"),
            Self::MissingPrefix => f.write_str("the value does not start with `sha256=`"),
            Self::WrongLength { len } => write!(
                f,
                "the digest has {len} characters; expected 64 (hex) or 44 (base64)"
            ),
            Self::InvalidHex => f.write_str("the digest is not valid hexadecimal"),
            Self::HexOnly { len: 44 | 43 } => f.write_str(
                "the digest looks like base64, but this header takes hex only \
                 (64 hex characters); base64 belongs in X-Hub-Signature-256",
            ),
            Self::HexOnly { len } => write!(
                f,
                "the digest has {len} characters; this header takes hex only (64 hex characters)"
            ),
            Self::InvalidBase64 => f.write_str("the digest is not valid base64"),
            Self::NotAscii => f.write_str("the value holds characters outside printable ASCII"),
        }
    }
}

impl std::error::Error for MalformedSignature {}

const HEX_LEN: usize = 64;
const BASE64_LEN: usize = 44;
const BASE64_UNPADDED_LEN: usize = 43;
const OPEN_MESSAGING_PREFIX: &[u8] = b"sha256=";

impl Scheme {
    /// Every scheme, in the order the layer reads their headers. A slice, so that a
    /// scheme added later changes its length, not its type.
    pub fn all() -> &'static [Scheme] {
        const ALL: &[Scheme] = &[Scheme::OpenMessaging, Scheme::XGenesysSignature];
        ALL
    }

    /// The header this scheme uses, in lowercase as HTTP/2 requires.
    pub const fn header_name(self) -> &'static str {
        match self {
            Self::XGenesysSignature => "x-genesys-signature",
            Self::OpenMessaging => "x-hub-signature-256",
        }
    }

    /// The header this scheme uses, as a ready-made [`http::HeaderName`].
    pub fn header(self) -> &'static http::HeaderName {
        static GENESYS: http::HeaderName =
            http::HeaderName::from_static(Scheme::XGenesysSignature.header_name());
        static OPEN_MESSAGING: http::HeaderName =
            http::HeaderName::from_static(Scheme::OpenMessaging.header_name());
        match self {
            Self::XGenesysSignature => &GENESYS,
            Self::OpenMessaging => &OPEN_MESSAGING,
        }
    }

    /// A short name for the scheme, as the command line writes it: `genesys` or
    /// `open-messaging`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::XGenesysSignature => "genesys",
            Self::OpenMessaging => "open-messaging",
        }
    }

    /// The header name as usually written in documentation.
    pub const fn display_header_name(self) -> &'static str {
        match self {
            Self::XGenesysSignature => "X-Genesys-Signature",
            Self::OpenMessaging => "X-Hub-Signature-256",
        }
    }

    /// Parses one header value of this scheme into the 32 digest bytes.
    ///
    /// Surrounding spaces and tabs are ignored; anything else that is not exactly one
    /// digest in an accepted encoding is a [`MalformedSignature`].
    ///
    /// ```
    /// use genesys_webhook::signature::{Encoding, MalformedSignature, Scheme};
    ///
    /// let parsed = Scheme::OpenMessaging
    ///     .parse(b"sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    ///     .unwrap();
    /// assert_eq!(parsed.encoding(), Encoding::Base64);
    /// assert_eq!(parsed.digest(), &[0u8; 32]);
    ///
    /// assert_eq!(Scheme::OpenMessaging.parse(b"sha256="), Err(MalformedSignature::Empty));
    /// ```
    pub fn parse(self, value: &[u8]) -> Result<ParsedSignature, MalformedSignature> {
        let value = value.trim_ascii();
        // The decoders reject every byte outside their alphabet, so the checks that
        // name a more precise reason only run once decoding failed.
        self.decode(value).map_err(|error| {
            if value.iter().any(|b| !(0x20..0x7f).contains(b)) {
                MalformedSignature::NotAscii
            } else if value.contains(&b',') {
                MalformedSignature::List
            } else {
                error
            }
        })
    }

    fn decode(self, value: &[u8]) -> Result<ParsedSignature, MalformedSignature> {
        let digest = match self {
            Self::XGenesysSignature => value,
            Self::OpenMessaging => {
                if value.len() < OPEN_MESSAGING_PREFIX.len()
                    || !value[..OPEN_MESSAGING_PREFIX.len()]
                        .eq_ignore_ascii_case(OPEN_MESSAGING_PREFIX)
                {
                    return Err(if value.is_empty() {
                        MalformedSignature::Empty
                    } else {
                        MalformedSignature::MissingPrefix
                    });
                }
                &value[OPEN_MESSAGING_PREFIX.len()..]
            }
        };
        match (self, digest.len()) {
            (_, 0) => Err(MalformedSignature::Empty),
            (_, HEX_LEN) => decode_hex(digest),
            (Self::OpenMessaging, BASE64_LEN) => decode_base64(digest, true),
            (Self::OpenMessaging, BASE64_UNPADDED_LEN) => decode_base64(digest, false),
            (Self::XGenesysSignature, len) => Err(MalformedSignature::HexOnly { len }),
            (Self::OpenMessaging, len) => Err(MalformedSignature::WrongLength { len }),
        }
    }

    /// The header value this scheme carries for `body` signed with `secret`.
    ///
    /// ```
    /// use genesys_webhook::signature::Scheme;
    ///
    /// assert_eq!(
    ///     Scheme::XGenesysSignature.sign("key", b"The quick brown fox jumps over the lazy dog"),
    ///     "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
    /// );
    /// assert_eq!(
    ///     Scheme::OpenMessaging.sign("key", b"The quick brown fox jumps over the lazy dog"),
    ///     "sha256=97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=",
    /// );
    /// ```
    pub fn sign(self, secret: impl AsRef<[u8]>, body: &[u8]) -> String {
        self.encode(&hmac_sha256(secret.as_ref(), body))
    }

    /// Writes a digest the way this scheme sends it.
    pub fn encode(self, digest: &[u8; 32]) -> String {
        match self {
            Self::XGenesysSignature => Encoding::Hex.encode(digest),
            Self::OpenMessaging => format!("sha256={}", Encoding::Base64.encode(digest)),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_header_name())
    }
}

impl ParsedSignature {
    /// The 32 bytes of the digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// How the digest was written in the header.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The first `n` characters of the digest re-encoded as it was received (hex in
    /// lowercase), for diagnostics that must not print a whole digest.
    pub(crate) fn prefix(&self, n: usize) -> String {
        digest_prefix(&self.digest, self.encoding, n)
    }
}

impl fmt::Debug for ParsedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedSignature")
            .field("encoding", &self.encoding)
            .field("digest", &format_args!("{}…", self.prefix(8)))
            .finish()
    }
}

/// The first `n` characters of `digest` written in `encoding`.
pub(crate) fn digest_prefix(digest: &Digest, encoding: Encoding, n: usize) -> String {
    let mut text = encoding.encode(digest);
    text.truncate(n);
    text
}

fn decode_hex(text: &[u8]) -> Result<ParsedSignature, MalformedSignature> {
    let mut digest = [0u8; 32];
    // `const_hex` validates and decodes with the CPU's vector instructions when it has
    // them (117 instructions per header, against 864 with `hex`). It would also skip a
    // `0x` prefix, which the exact length checked by the caller (64) already rules out.
    const_hex::decode_to_slice(text, &mut digest).map_err(|_| MalformedSignature::InvalidHex)?;
    Ok(ParsedSignature {
        digest,
        encoding: Encoding::Hex,
    })
}

fn decode_base64(text: &[u8], padded: bool) -> Result<ParsedSignature, MalformedSignature> {
    let engine = if padded { &STANDARD } else { &STANDARD_NO_PAD };
    let mut digest = [0u8; 32];
    match engine.decode_slice(text, &mut digest) {
        Ok(32) => Ok(ParsedSignature {
            digest,
            encoding: Encoding::Base64,
        }),
        _ => Err(MalformedSignature::InvalidBase64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"The quick brown fox jumps over the lazy dog";
    const HEX: &str = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
    const B64: &str = "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=";

    fn expected() -> [u8; 32] {
        hmac_sha256(b"key", BODY)
    }

    #[test]
    fn genesys_accepts_hex_in_either_case() {
        for value in [HEX.to_owned(), HEX.to_uppercase()] {
            let parsed = Scheme::XGenesysSignature.parse(value.as_bytes()).unwrap();
            assert_eq!(parsed.digest(), &expected());
            assert_eq!(parsed.encoding(), Encoding::Hex);
        }
    }

    #[test]
    fn genesys_rejects_base64_and_prefixes() {
        assert_eq!(
            Scheme::XGenesysSignature.parse(B64.as_bytes()),
            Err(MalformedSignature::HexOnly { len: 44 })
        );
        assert!(Scheme::XGenesysSignature
            .parse(format!("sha256={HEX}").as_bytes())
            .is_err());
    }

    #[test]
    fn hex_with_a_0x_prefix_is_refused() {
        // 64 characters in all, so the length check passes and the decoder decides.
        let value = format!("0x{}", &HEX[2..]);
        assert_eq!(
            Scheme::XGenesysSignature.parse(value.as_bytes()),
            Err(MalformedSignature::InvalidHex)
        );
        assert_eq!(
            Scheme::XGenesysSignature.parse(format!("0x{HEX}").as_bytes()),
            Err(MalformedSignature::HexOnly { len: 66 })
        );
        for bad in [b'g', b' ', b'+', 0xff] {
            let mut value = HEX.as_bytes().to_vec();
            value[31] = bad;
            assert!(Scheme::XGenesysSignature.parse(&value).is_err(), "{bad:#x}");
        }
    }

    #[test]
    fn open_messaging_accepts_base64_unpadded_base64_and_hex() {
        for value in [
            format!("sha256={B64}"),
            format!("sha256={}", B64.trim_end_matches('=')),
            format!("sha256={HEX}"),
            format!("SHA256={}", HEX.to_uppercase()),
            format!("  sha256={B64}\t"),
        ] {
            let parsed = Scheme::OpenMessaging.parse(value.as_bytes()).unwrap();
            assert_eq!(parsed.digest(), &expected(), "{value}");
        }
    }

    #[test]
    fn open_messaging_rejects_malformed_values() {
        let cases: &[(&[u8], MalformedSignature)] = &[
            (b"", MalformedSignature::Empty),
            (b"   ", MalformedSignature::Empty),
            (b"sha256=", MalformedSignature::Empty),
            (B64.as_bytes(), MalformedSignature::MissingPrefix),
            (b"sha1=abc", MalformedSignature::MissingPrefix),
            (b"sha256=abc", MalformedSignature::WrongLength { len: 3 }),
            (
                b"sha256=!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
                MalformedSignature::InvalidBase64,
            ),
            (
                b"sha256=zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
                MalformedSignature::InvalidHex,
            ),
            (b"sha256=a,sha256=b", MalformedSignature::List),
            (b"sha256=\xff\xfe", MalformedSignature::NotAscii),
        ];
        for (value, error) in cases {
            assert_eq!(
                Scheme::OpenMessaging.parse(value),
                Err(*error),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn genesys_header_says_hex_only_for_a_base64_digest() {
        let value = B64.to_string();
        let error = Scheme::XGenesysSignature
            .parse(value.as_bytes())
            .unwrap_err();
        assert_eq!(error, MalformedSignature::HexOnly { len: 44 });
        let text = error.to_string();
        assert!(text.contains("hex only"), "{text}");
        assert!(!text.contains("44 (base64)"), "{text}");
    }

    #[test]
    fn sign_round_trips_through_parse() {
        for &scheme in Scheme::all() {
            let value = scheme.sign("key", BODY);
            assert_eq!(
                scheme.parse(value.as_bytes()).unwrap().digest(),
                &expected()
            );
        }
        assert_eq!(Scheme::XGenesysSignature.sign("key", BODY), HEX);
        assert_eq!(
            Scheme::OpenMessaging.sign("key", BODY),
            format!("sha256={B64}")
        );
    }

    #[test]
    fn debug_shows_only_a_prefix_of_the_digest() {
        let parsed = Scheme::XGenesysSignature.parse(HEX.as_bytes()).unwrap();
        let debug = format!("{parsed:?}");
        assert!(debug.contains("f7bc83f4"));
        assert!(!debug.contains(&HEX[..9]));
    }
}
