//! `genesys-webhook verify`: check a signature header against a body and, when it does
//! not match, find out why. Never prints more than the first 8 characters of a digest.

use std::path::PathBuf;

use genesys_webhook::signature::{hmac_sha256, Encoding, ParsedSignature, Scheme};
use serde_json::json;

use crate::input::{parse_header, read_body};
use crate::output::{Failure, Report};
use crate::secret::WebhookSecrets;

/// How much of a digest may be shown.
const PREFIX: usize = 8;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    secrets: WebhookSecrets,
    /// The signature header as received, e.g. 'X-Hub-Signature-256: sha256=...'.
    #[arg(long, value_parser = parse_header)]
    header: (String, String),
    /// The body as received; standard input when `-` or absent.
    file: Option<PathBuf>,
}

pub(crate) async fn run(args: Args, _json: bool) -> Result<Report, Failure> {
    let secrets = args.secrets.resolve()?;
    let body = read_body(args.file.as_ref()).await?;
    let (name, value) = args.header;
    Ok(verify(&secrets, &name, &value, &body))
}

fn verify(secrets: &[String], name: &str, value: &str, body: &[u8]) -> Report {
    let scheme = Scheme::all()
        .iter()
        .copied()
        .find(|s| s.header_name().eq_ignore_ascii_case(name));
    let Some(scheme) = scheme else {
        let mut reasons = vec![format!(
            "{name} is not a signature header: Genesys Cloud sends X-Hub-Signature-256, tools following the tutorial send X-Genesys-Signature"
        )];
        reasons.extend(other_scheme_hint(None, secrets, value, body));
        return mismatch(reasons, None, None);
    };
    let parsed = match scheme.parse(value.as_bytes()) {
        Ok(parsed) => parsed,
        Err(malformed) => {
            let mut reasons = vec![format!(
                "the {} value is malformed: {malformed}",
                scheme.display_header_name()
            )];
            reasons.extend(other_scheme_hint(Some(scheme), secrets, value, body));
            return mismatch(reasons, Some(scheme), None);
        }
    };
    let digests: Vec<[u8; 32]> = secrets
        .iter()
        .map(|s| hmac_sha256(s.as_bytes(), body))
        .collect();
    if let Some(index) = digests.iter().position(|d| d == parsed.digest()) {
        let encoding = match parsed.encoding() {
            Encoding::Hex => "hex",
            _ => "base64",
        };
        return Report::passed(
            format!(
                "OK: {} ({encoding}) matches secret #{} (counting from 0) of {}, over {} body bytes",
                scheme.display_header_name(),
                index,
                secrets.len(),
                body.len()
            ),
            json!({
                "valid": true,
                "scheme": scheme.name(),
                "secretIndex": index,
                "encoding": encoding,
                "bodyBytes": body.len(),
            }),
        );
    }
    let reasons = explain(secrets, &parsed, body);
    mismatch(reasons, Some(scheme), Some((&parsed, &digests)))
}

/// Finds a near miss that explains the mismatch: a secret with stray whitespace, a
/// trailing newline, or JSON serialized again.
fn explain(secrets: &[String], parsed: &ParsedSignature, body: &[u8]) -> Vec<String> {
    let target = parsed.digest();
    let matches = |secret: &[u8], body: &[u8]| hmac_sha256(secret, body) == *target;
    let mut reasons = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let n = i;
        let trimmed = secret.trim();
        if trimmed != secret && matches(trimmed.as_bytes(), body) {
            reasons.push(format!(
                "secret #{n} has leading or trailing whitespace: without it the signature matches (a copy-paste error)"
            ));
        }
        for extra in ["\n", "\r\n", " "] {
            let padded = format!("{secret}{extra}");
            if matches(padded.as_bytes(), body) {
                reasons.push(format!(
                    "the sender signed with secret #{n} followed by {extra:?}: its copy of the secret has stray whitespace"
                ));
            }
        }
        let stripped = body
            .strip_suffix(b"\r\n")
            .or_else(|| body.strip_suffix(b"\n"));
        if let Some(stripped) = stripped {
            if matches(secret.as_bytes(), stripped) {
                reasons.push(
                    "the body ends with a newline that was not signed (an editor or `echo` added it; send the exact bytes, e.g. with `printf '%s'`)"
                        .to_owned(),
                );
            }
        }
        let mut with_newline = body.to_vec();
        with_newline.push(b'\n');
        if matches(secret.as_bytes(), &with_newline) {
            reasons.push("the signature covers a trailing newline that this body lacks".to_owned());
        }
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            // Key order as received (what JSON.stringify and most serializers keep) and
            // sorted (what a map-based parser writes back).
            let forms = [
                ("compact", reserialize(body, false)),
                ("pretty-printed", reserialize(body, true)),
                ("compact, keys sorted", serde_json::to_vec(&value).ok()),
                (
                    "pretty-printed, keys sorted",
                    serde_json::to_vec_pretty(&value).ok(),
                ),
            ];
            for (form, bytes) in forms {
                if let Some(bytes) = bytes {
                    // A body that only differs by its final newline was explained above.
                    let newline_only = stripped.is_some_and(|s| s == bytes.as_slice());
                    if bytes != body && !newline_only && matches(secret.as_bytes(), &bytes) {
                        reasons.push(format!(
                            "the signature was computed over the JSON serialized again ({form}), not over the raw bytes: verify the body exactly as received"
                        ));
                    }
                }
            }
        }
    }
    reasons.dedup();
    if reasons.is_empty() {
        reasons.push(
            "no configured secret produces this signature over these bytes: check the secret (for Open Messaging, the integration's webhook signature secret, not the OAuth client secret) and that the body is byte for byte what was signed"
                .to_owned(),
        );
    }
    reasons
}

/// `body` written again by a JSON serializer, keys in the order received.
fn reserialize(body: &[u8], pretty: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut input = serde_json::Deserializer::from_slice(body);
    let written = if pretty {
        serde_transcode::transcode(&mut input, &mut serde_json::Serializer::pretty(&mut out))
    } else {
        serde_transcode::transcode(&mut input, &mut serde_json::Serializer::new(&mut out))
    };
    written.ok().map(|()| out)
}

/// When a value does not fit its header, says whether it fits the other scheme, and
/// whether it then verifies.
fn other_scheme_hint(
    header_scheme: Option<Scheme>,
    secrets: &[String],
    value: &str,
    body: &[u8],
) -> Vec<String> {
    let mut hints = Vec::new();
    for &other in Scheme::all() {
        if Some(other) == header_scheme {
            continue;
        }
        let candidates = [value.to_owned(), format!("sha256={}", value.trim())];
        let Some(parsed) = candidates
            .iter()
            .find_map(|c| other.parse(c.as_bytes()).ok())
        else {
            continue;
        };
        let verifies = secrets
            .iter()
            .any(|s| hmac_sha256(s.as_bytes(), body) == *parsed.digest());
        let encoding = match parsed.encoding() {
            Encoding::Hex => "a hex digest",
            _ => "a base64 digest",
        };
        hints.push(format!(
            "the value is {encoding}, the encoding of {}{}",
            other.display_header_name(),
            if verifies {
                format!(
                    ", and it does match the body there: send it as {}",
                    other.display_header_name()
                )
            } else {
                String::new()
            }
        ));
    }
    hints
}

fn mismatch(
    reasons: Vec<String>,
    scheme: Option<Scheme>,
    digests: Option<(&ParsedSignature, &[[u8; 32]])>,
) -> Report {
    let mut text = String::from("MISMATCH: the signature does not verify.\n");
    for reason in &reasons {
        text.push_str(&format!("  - {reason}\n"));
    }
    let mut received = None;
    let mut computed = Vec::new();
    if let Some((parsed, digests)) = digests {
        let show = |digest: &[u8; 32]| prefix(parsed.encoding(), digest);
        received = Some(show(parsed.digest()));
        text.push_str(&format!(
            "  received: {}…\n",
            received.as_deref().unwrap_or_default()
        ));
        for (i, digest) in digests.iter().enumerate() {
            let p = show(digest);
            text.push_str(&format!("  computed with secret #{i}: {p}…\n"));
            computed.push(json!({ "secretIndex": i, "prefix": p }));
        }
    }
    Report::failed(
        text.trim_end(),
        json!({
            "valid": false,
            "scheme": scheme.map(Scheme::name),
            "reasons": reasons,
            "receivedPrefix": received,
            "computedPrefixes": computed,
        }),
    )
}

/// The first characters of a digest, written as it was received.
fn prefix(encoding: Encoding, digest: &[u8; 32]) -> String {
    let mut text = encoding.encode(digest);
    text.truncate(PREFIX);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(report: &Report) -> String {
        report.json["reasons"].to_string()
    }

    #[test]
    fn explains_reserialized_json_whatever_the_key_order() {
        let original = br#"{"event": "x", "conversationId": "y"}"#;
        let secret = "s3cret".to_owned();
        let signed = Scheme::OpenMessaging.sign("s3cret", br#"{"event":"x","conversationId":"y"}"#);
        let report = verify(
            std::slice::from_ref(&secret),
            "X-Hub-Signature-256",
            &signed,
            original,
        );
        assert!(!report.passed);
        assert!(
            reasons(&report).contains("serialized again"),
            "{}",
            reasons(&report)
        );
    }

    #[test]
    fn explains_the_classic_mistakes() {
        let body = br#"{"a": 1}"#;
        let secret = "s3cret".to_owned();
        let sign = |s: &str, b: &[u8]| Scheme::OpenMessaging.sign(s, b);

        let ok = verify(
            std::slice::from_ref(&secret),
            "x-hub-signature-256",
            &sign("s3cret", body),
            body,
        );
        assert!(ok.passed);

        let newline = verify(
            std::slice::from_ref(&secret),
            "X-Hub-Signature-256",
            &sign("s3cret", body),
            b"{\"a\": 1}\n",
        );
        assert!(!newline.passed);
        assert!(
            reasons(&newline).contains("newline"),
            "{}",
            reasons(&newline)
        );

        let compact = verify(
            std::slice::from_ref(&secret),
            "X-Hub-Signature-256",
            &sign("s3cret", br#"{"a":1}"#),
            body,
        );
        assert!(
            reasons(&compact).contains("serialized again"),
            "{}",
            reasons(&compact)
        );

        let padded = verify(
            &["s3cret\n".to_owned()],
            "X-Hub-Signature-256",
            &sign("s3cret", body),
            body,
        );
        assert!(
            reasons(&padded).contains("whitespace"),
            "{}",
            reasons(&padded)
        );

        let hex_in_hub = Scheme::XGenesysSignature.sign("s3cret", body);
        let wrong_header = verify(
            std::slice::from_ref(&secret),
            "X-Genesys-Signature",
            &sign("s3cret", body),
            body,
        );
        assert!(
            reasons(&wrong_header).contains("X-Hub-Signature-256"),
            "{}",
            reasons(&wrong_header)
        );
        let base64_as_genesys = verify(&[secret], "X-Hub-Signature-256", &hex_in_hub, body);
        assert!(
            reasons(&base64_as_genesys).contains("X-Genesys-Signature"),
            "{}",
            reasons(&base64_as_genesys)
        );
    }

    #[test]
    fn never_shows_a_whole_digest() {
        let body = b"body";
        let report = verify(
            &["right".into()],
            "X-Genesys-Signature",
            &Scheme::XGenesysSignature.sign("wrong", body),
            body,
        );
        let full = Scheme::XGenesysSignature.sign("right", body);
        assert!(!report.text.contains(&full[..9]));
        assert!(report.text.contains(&full[..8]));
    }
}
