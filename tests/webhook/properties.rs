//! Properties of verification over generated inputs: tampering is always caught, a
//! valid signature under any configured secret always passes, and nothing panics.

use std::convert::Infallible;

use bytes::Bytes;
use genesys_webhook::signature::{hmac_sha256, Scheme};
use genesys_webhook::{GenesysSignatureLayer, VerifiedBody, VerifiedSignature};
use http::{HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};

const LIMIT: usize = 4096;

type Frames =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// `body` cut into frames at `cuts`.
fn frames(body: &[u8], cuts: &[usize]) -> Frames {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    points.dedup();
    let frames: Vec<_> = points
        .windows(2)
        .map(|w| Ok(Frame::data(Bytes::copy_from_slice(&body[w[0]..w[1]]))))
        .collect();
    StreamBody::new(futures_util::stream::iter(frames))
}

/// Sends one request through the layer; returns the status, the bytes the inner
/// service saw (if it was called) and the secret index it was told.
fn send(
    secrets: &[Vec<u8>],
    headers: &[(&'static str, HeaderValue)],
    body: Frames,
) -> (u16, Option<(Bytes, usize)>) {
    let mut builder = GenesysSignatureLayer::builder().max_body_bytes(LIMIT);
    for secret in secrets {
        builder = builder.secret(secret.clone());
    }
    let layer = builder.build().unwrap();
    let inner = tower::service_fn(|request: Request<VerifiedBody>| async move {
        let index = request
            .extensions()
            .get::<VerifiedSignature>()
            .map_or(usize::MAX, |v| v.secret_index());
        let mut response = Response::new(request.into_body());
        response
            .headers_mut()
            .insert("x-secret-index", index.into());
        Ok::<_, Infallible>(response)
    });
    let mut request = Request::new(body);
    for (name, value) in headers {
        request.headers_mut().append(*name, value.clone());
    }
    let response = futures_executor::block_on(layer.layer(inner).oneshot(request)).unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return (status, None);
    }
    let index = response.headers()["x-secret-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = futures_executor::block_on(response.into_body().collect())
        .unwrap()
        .to_bytes();
    (status, Some((bytes, index)))
}

fn scheme_strategy() -> impl Strategy<Value = Scheme> {
    prop_oneof![Just(Scheme::XGenesysSignature), Just(Scheme::OpenMessaging)]
}

fn secrets_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::btree_set(prop::collection::vec(any::<u8>(), 1..40), 1..4)
        .prop_map(|set| set.into_iter().collect::<Vec<_>>())
        .prop_filter("secrets must not be blank", |secrets| {
            secrets
                .iter()
                .all(|s| !s.iter().all(u8::is_ascii_whitespace))
        })
}

fn header(scheme: Scheme, digest: &[u8; 32]) -> (&'static str, HeaderValue) {
    (
        scheme.header_name(),
        HeaderValue::from_str(&scheme.encode(digest)).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_valid_signature_under_any_configured_secret_is_accepted(
        secrets in secrets_strategy(),
        pick in any::<prop::sample::Index>(),
        body in prop::collection::vec(any::<u8>(), 0..LIMIT),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        scheme in scheme_strategy(),
    ) {
        let index = pick.index(secrets.len());
        let digest = hmac_sha256(&secrets[index], &body);
        let (status, seen) = send(&secrets, &[header(scheme, &digest)], frames(&body, &cuts));
        prop_assert_eq!(status, 200);
        let (bytes, reported) = seen.unwrap();
        prop_assert_eq!(&bytes[..], &body[..]);
        prop_assert_eq!(reported, index);
    }

    #[test]
    fn any_change_to_any_body_byte_is_rejected(
        secrets in secrets_strategy(),
        body in prop::collection::vec(any::<u8>(), 1..LIMIT),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        scheme in scheme_strategy(),
    ) {
        let digest = hmac_sha256(&secrets[0], &body);
        let mut tampered = body.clone();
        tampered[position.index(body.len())] ^= flip;
        let (status, seen) = send(&secrets, &[header(scheme, &digest)], frames(&tampered, &cuts));
        prop_assert_eq!(status, 401);
        prop_assert!(seen.is_none());
    }

    #[test]
    fn any_change_to_any_signature_byte_is_rejected(
        secrets in secrets_strategy(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        position in 0usize..32,
        flip in 1u8..=255,
        scheme in scheme_strategy(),
    ) {
        let mut digest = hmac_sha256(&secrets[0], &body);
        digest[position] ^= flip;
        let (status, _) = send(&secrets, &[header(scheme, &digest)], frames(&body, &[]));
        prop_assert_eq!(status, 401);
    }

    #[test]
    fn any_change_to_a_signature_character_is_rejected(
        body in prop::collection::vec(any::<u8>(), 0..256),
        position in any::<prop::sample::Index>(),
        replacement in any::<char>(),
        scheme in scheme_strategy(),
    ) {
        let secret = b"property-secret".to_vec();
        let value = scheme.sign(&secret, &body);
        let mut chars: Vec<char> = value.chars().collect();
        let at = position.index(chars.len());
        // Only a different value counts: a hex digit in the other case is the same digit,
        // and base64 padding turned into trailing whitespace is the accepted unpadded form.
        prop_assume!(!chars[at].eq_ignore_ascii_case(&replacement));
        prop_assume!(!(chars[at] == '=' && replacement.is_ascii_whitespace()));
        chars[at] = replacement;
        let tampered: String = chars.into_iter().collect();
        if let Ok(value) = HeaderValue::from_str(&tampered) {
            let (status, _) = send(&[secret], &[(scheme.header_name(), value)], frames(&body, &[]));
            prop_assert_eq!(status, 401, "{}", tampered);
        }
    }

    #[test]
    fn arbitrary_headers_and_bodies_never_panic(
        values in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..120)), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..(LIMIT + 64)),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let headers: Vec<(&'static str, HeaderValue)> = values
            .iter()
            .filter_map(|(hub, bytes)| {
                let name = if *hub { "x-hub-signature-256" } else { "x-genesys-signature" };
                HeaderValue::from_bytes(bytes).ok().map(|v| (name, v))
            })
            .collect();
        let (status, _) = send(&[b"k".to_vec()], &headers, frames(&body, &cuts));
        prop_assert!(matches!(status, 200 | 401 | 413), "{}", status);
    }
}
