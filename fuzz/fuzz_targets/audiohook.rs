//! AudioHook signature headers, structured-field parsing and the verifier with
//! arbitrary input. Checks that nothing panics, and that the layer lets an upgrade
//! through only when it carries a signature that the published key produced over
//! exactly these headers (checked here by signing them again).
#![no_main]

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use genesys_webhook::audiohook::signature::{parse, signature_base, sign, Policy, SigningInput};
use genesys_webhook::audiohook::AudioHookSignatureLayer;
use http::{Request, Response};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};

const API_KEY: &str = "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh";
const SECRET: &str = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=";
const NOW: u64 = 1_641_013_203;

#[derive(Debug, Arbitrary)]
struct Input {
    signature_input: String,
    signature: String,
    headers: Vec<(u8, String)>,
    path: String,
    /// Sign the headers for real, then maybe spoil one byte.
    sign: bool,
    spoil: Option<(u8, u8)>,
    nonce: String,
}

const NAMES: [&str; 7] = [
    "host",
    "x-api-key",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "signature-input",
    "signature",
];

fuzz_target!(|input: Input| {
    // The pure parts never panic on any text.
    if let Ok(parsed) = parse(&input.signature_input, &input.signature) {
        let _ = Policy::default().check(&parsed.parameters, API_KEY, NOW as i64);
        let _ = signature_base(&parsed.components, &parsed.signature_params, |name| {
            Some(name.to_owned())
        });
    }

    let path = if input.path.starts_with('/') { input.path.clone() } else { format!("/{}", input.path) };
    let Ok(uri) = path.parse::<http::Uri>() else { return };
    let mut request = Request::get(uri.clone());
    let mut headers: Vec<(&str, String)> = input
        .headers
        .iter()
        .map(|(n, v)| (NAMES[usize::from(*n) % NAMES.len()], v.clone()))
        .collect();
    let mut expected_valid = false;
    if input.sign {
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        let (Some(host), Some(org), Some(session), Some(correlation)) = (
            get("host"),
            get("audiohook-organization-id"),
            get("audiohook-session-id"),
            get("audiohook-correlation-id"),
        ) else {
            return;
        };
        let Ok((signature_input, signature)) = sign(
            &SigningInput::new(
                uri.path_and_query().map_or("/", |pq| pq.as_str()),
                &host,
                API_KEY,
                &input.nonce,
                NOW as i64,
                NOW as i64 + 60,
            )
            .ids(&org, &session, &correlation),
            SECRET,
        ) else {
            return;
        };
        headers.retain(|(n, _)| !matches!(*n, "x-api-key" | "signature-input" | "signature"));
        headers.push(("x-api-key", API_KEY.to_owned()));
        headers.push(("signature-input", signature_input));
        headers.push(("signature", signature));
        // Valid only if every header is a single, plain value the server reads back
        // as it was signed, and nothing is spoiled.
        let single = NAMES
            .iter()
            .all(|name| headers.iter().filter(|(n, _)| n == name).count() <= 1);
        let plain = headers
            .iter()
            .all(|(_, v)| v.bytes().all(|b| (0x21..0x7f).contains(&b)));
        expected_valid = single
            && plain
            && input.nonce.chars().count() >= 22
            && input.spoil.is_none()
            && host.to_ascii_lowercase() == host;
        if let Some((which, byte)) = input.spoil {
            let index = usize::from(which) % headers.len();
            let value = &mut headers[index].1;
            let mut bytes = value.clone().into_bytes();
            if let Some(first) = bytes.first_mut() {
                if *first == byte {
                    return;
                }
                *first = byte;
            }
            *value = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    for (name, value) in &headers {
        request = request.header(*name, value.as_str());
    }
    let Ok(request) = request.body(()) else { return };
    let layer = AudioHookSignatureLayer::builder()
        .key(API_KEY, SECRET)
        .clock(|| SystemTime::UNIX_EPOCH + Duration::from_secs(NOW))
        .build()
        .unwrap();
    let service = layer.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::from("ok")))
    }));
    let response = futures_executor::block_on(service.oneshot(request)).unwrap();
    if response.status() == 200 {
        assert!(input.sign, "an upgrade that was never signed got through");
    }
    if expected_valid {
        assert_eq!(response.status(), 200, "a correct signature was refused");
    }
});
