//! Header parsing and verification with arbitrary headers, secrets, bodies and
//! framing. Checks that nothing panics, and that the layer lets a request through only
//! when every signature header really is a valid HMAC of the body under some secret
//! (computed here independently).
#![no_main]

use std::convert::Infallible;

use arbitrary::Arbitrary;
use bytes::Bytes;
use genesys_webhook::signature::{hmac_sha256, Scheme};
use genesys_webhook::{GenesysSignatureLayer, VerifiedBody};
use http::{HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};

#[derive(Debug, Arbitrary)]
struct Input {
    secrets: Vec<Vec<u8>>,
    headers: Vec<(bool, HeaderText)>,
    body: Vec<u8>,
    cuts: Vec<u16>,
    limit: u16,
}

#[derive(Debug, Arbitrary)]
enum HeaderText {
    /// Raw bytes.
    Raw(Vec<u8>),
    /// A real signature under secret `n`, possibly of a different body.
    Signed {
        secret: u8,
        other_body: bool,
        hex: bool,
    },
}

fuzz_target!(|input: Input| {
    let secrets: Vec<Vec<u8>> = input.secrets.into_iter().take(3).collect();
    let mut builder =
        GenesysSignatureLayer::builder().max_body_bytes(usize::from(input.limit).max(1));
    for secret in &secrets {
        builder = builder.secret(secret.clone());
    }
    let Ok(layer) = builder.build() else { return };

    let mut request_headers = Vec::new();
    for (hub, text) in input.headers.into_iter().take(4) {
        let scheme = if hub {
            Scheme::OpenMessaging
        } else {
            Scheme::XGenesysSignature
        };
        let bytes = match text {
            HeaderText::Raw(bytes) => bytes,
            HeaderText::Signed {
                secret,
                other_body,
                hex,
            } => {
                let key = &secrets[usize::from(secret) % secrets.len()];
                let message: &[u8] = if other_body {
                    b"another body"
                } else {
                    &input.body
                };
                let digest = hmac_sha256(key, message);
                let value = if hex && scheme == Scheme::OpenMessaging {
                    format!("sha256={}", Scheme::XGenesysSignature.encode(&digest))
                } else {
                    scheme.encode(&digest)
                };
                value.into_bytes()
            }
        };
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            request_headers.push((scheme, value));
        }
    }

    let mut points: Vec<usize> = input
        .cuts
        .iter()
        .map(|c| usize::from(*c) % (input.body.len() + 1))
        .collect();
    points.extend([0, input.body.len()]);
    points.sort_unstable();
    points.dedup();
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = points
        .windows(2)
        .map(|w| Ok(Frame::data(Bytes::copy_from_slice(&input.body[w[0]..w[1]]))))
        .collect();
    let mut request = Request::new(StreamBody::new(futures_util::stream::iter(frames)));
    for (scheme, value) in &request_headers {
        request
            .headers_mut()
            .append(scheme.header_name(), value.clone());
    }

    let inner = tower::service_fn(|request: Request<VerifiedBody>| async move {
        Ok::<_, Infallible>(Response::new(request.into_body()))
    });
    let Ok(response) = futures_executor::block_on(layer.layer(inner).oneshot(request));
    let status = response.status().as_u16();
    assert!(
        matches!(status, 200 | 401 | 413),
        "unexpected status {status}"
    );
    if status == 200 {
        // Independent check: every header must parse to an HMAC of the body.
        assert!(!request_headers.is_empty());
        assert!(input.body.len() <= usize::from(input.limit).max(1));
        for (scheme, value) in &request_headers {
            let parsed = scheme
                .parse(value.as_bytes())
                .expect("accepted a malformed header");
            assert!(
                secrets
                    .iter()
                    .any(|s| hmac_sha256(s, &input.body) == *parsed.digest()),
                "accepted a signature that matches no secret"
            );
        }
        let received = match futures_executor::block_on(http_body_util::BodyExt::collect(
            response.into_body(),
        )) {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        assert_eq!(received, input.body);
    }
});
