//! The verdict on a read body: a pure function of the digests computed under each
//! secret and the signatures received.

use crate::signature::{digest_prefix, find_match, Digest, ParsedSignature, Scheme};

use super::rejection::Rejection;
use http::HeaderMap;

/// Digest prefixes for comparing by eye, when diagnostics are on.
pub(crate) struct Diagnostics {
    pub(crate) received: String,
    pub(crate) computed: String,
}

/// How much of a digest diagnostics may show: enough to compare by eye, far too little
/// to be a usable MAC.
const DIAGNOSTIC_CHARS: usize = 8;

/// Every signature matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The scheme of the first signature.
    pub(crate) scheme: Scheme,
    /// The secret the first signature matched.
    pub(crate) secret_index: usize,
}

/// A signature did not match (or none was there to check).
pub(crate) struct Refused {
    pub(crate) rejection: Rejection,
    /// Digest prefixes of the first mismatch, when asked for.
    pub(crate) diagnostics: Option<Diagnostics>,
}

/// Checks every received signature against the digests under every secret, in
/// constant time on the decoded bytes. Every signature present must match one of the
/// secrets.
pub(crate) fn verify(
    computed: &[Digest],
    signatures: &Signatures,
    diagnostics: bool,
) -> Result<Verified, Refused> {
    let mut first: Option<(Scheme, usize)> = None;
    for &(scheme, parsed) in signatures {
        match find_match(computed, parsed.digest()) {
            Some(index) => {
                first.get_or_insert((scheme, index));
            }
            None => return Err(mismatch(computed, scheme, &parsed, diagnostics)),
        }
    }
    match first {
        Some((scheme, secret_index)) => Ok(Verified {
            scheme,
            secret_index,
        }),
        None => Err(Refused {
            rejection: Rejection::MissingSignature,
            diagnostics: None,
        }),
    }
}

fn mismatch(
    computed: &[Digest],
    scheme: Scheme,
    parsed: &ParsedSignature,
    diagnostics: bool,
) -> Refused {
    Refused {
        rejection: Rejection::SignatureMismatch { scheme },
        diagnostics: diagnostics.then(|| Diagnostics {
            received: parsed.prefix(DIAGNOSTIC_CHARS),
            computed: computed
                .iter()
                .map(|d| digest_prefix(d, parsed.encoding(), DIAGNOSTIC_CHARS))
                .collect::<Vec<_>>()
                .join(","),
        }),
    }
}

/// The signatures of one request; usually one, kept inline.
pub(crate) type Signatures = smallvec::SmallVec<[(Scheme, ParsedSignature); 1]>;

/// Every signature value present in the accepted schemes' headers.
pub(crate) fn read_signatures(
    headers: &HeaderMap,
    schemes: &[Scheme],
) -> Result<Signatures, Rejection> {
    let mut signatures = Signatures::new();
    for &scheme in schemes {
        for value in headers.get_all(scheme.header()) {
            let parsed = scheme
                .parse(value.as_bytes())
                .map_err(|reason| Rejection::MalformedSignature { scheme, reason })?;
            signatures.push((scheme, parsed));
        }
    }
    if signatures.is_empty() {
        return Err(Rejection::MissingSignature);
    }
    Ok(signatures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::hmac_sha256;

    fn signatures(values: &[(Scheme, String)]) -> Signatures {
        values
            .iter()
            .map(|(scheme, value)| (*scheme, scheme.parse(value.as_bytes()).unwrap()))
            .collect()
    }

    #[test]
    fn the_first_signature_names_the_scheme_and_secret_whatever_the_others() {
        let body = b"{}";
        let computed = [hmac_sha256(b"first", body), hmac_sha256(b"second", body)];
        let om = (
            Scheme::OpenMessaging,
            Scheme::OpenMessaging.sign("second", body),
        );
        let hex = (
            Scheme::XGenesysSignature,
            Scheme::XGenesysSignature.sign("first", body),
        );
        let both = verify(&computed, &signatures(&[om.clone(), hex.clone()]), false)
            .ok()
            .unwrap();
        let reordered = verify(&computed, &signatures(&[hex, om.clone()]), false)
            .ok()
            .unwrap();
        let one = verify(&computed, &signatures(&[om]), false).ok().unwrap();
        assert_eq!((both.scheme, both.secret_index), (Scheme::OpenMessaging, 1));
        assert_eq!(
            (reordered.scheme, reordered.secret_index),
            (Scheme::XGenesysSignature, 0)
        );
        assert_eq!(one.secret_index, 1);
    }

    #[test]
    fn one_bad_signature_refuses_the_request() {
        let body = b"{}";
        let computed = [hmac_sha256(b"first", body)];
        let good = (
            Scheme::XGenesysSignature,
            Scheme::XGenesysSignature.sign("first", body),
        );
        let bad = (
            Scheme::OpenMessaging,
            Scheme::OpenMessaging.sign("other", body),
        );
        let refused = verify(&computed, &signatures(&[good, bad]), true)
            .err()
            .unwrap();
        assert_eq!(
            refused.rejection,
            Rejection::SignatureMismatch {
                scheme: Scheme::OpenMessaging
            }
        );
        assert!(refused.diagnostics.is_some());
    }
}
