//! `genesys-webhook send`: post a signed body to a receiver, or a forged one with
//! `--tamper` to prove the receiver rejects it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use genesys_webhook::signature::{hmac_sha256, Scheme};
use serde_json::json;

use crate::input::{parse_header, read_body, secrets};
use crate::output::{progress, Failure, Report};
use crate::{scheme_name, SchemeArg};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to post, e.g. http://127.0.0.1:5000/webhook/receive.
    url: String,
    /// The webhook secret [default: $GENESYS_WEBHOOK_SECRET].
    #[arg(long)]
    secret: Option<String>,
    /// Which signature header to send.
    #[arg(long, value_enum, default_value_t = SchemeArg::Genesys)]
    scheme: SchemeArg,
    /// An extra header, 'Name: value'; repeatable.
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Send a deliberately wrong signature: succeeds only if the receiver answers 401.
    #[arg(long)]
    tamper: bool,
    /// The body; standard input for `-`; a realistic sample Open Messaging event when absent.
    file: Option<PathBuf>,
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    let secret = secrets(args.secret.as_slice())?.remove(0);
    let body = match &args.file {
        Some(_) => read_body(args.file.as_ref()).await?,
        None => sample_event(),
    };
    let scheme = Scheme::from(args.scheme);
    let signature = if args.tamper {
        forge(scheme, &secret, &body)
    } else {
        scheme.sign(&secret, &body)
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("genesys-webhook/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::io(format!("HTTP client: {e}")))?;
    let mut request = client
        .post(&args.url)
        .header("content-type", "application/json")
        .header(scheme.display_header_name(), &signature);
    for (name, value) in &args.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    progress(
        json,
        format!(
            "POST {} ({} bytes, {}{})",
            args.url,
            body.len(),
            scheme.display_header_name(),
            if args.tamper {
                ", forged on purpose"
            } else {
                ""
            }
        ),
    );
    let response = request
        .body(body.clone())
        .send()
        .await
        .map_err(|e| Failure::io(format!("could not reach {}: {}", args.url, chain(&e))))?;
    let status = response.status();
    let answer = response
        .text()
        .await
        .map_err(|e| Failure::io(format!("could not read the answer: {e}")))?;
    let mut doc = json!({
        "url": args.url,
        "scheme": scheme_name(scheme),
        "tamper": args.tamper,
        "status": status.as_u16(),
        "body": answer,
    });
    let shown = format!("{status}\n{answer}");
    if !args.tamper {
        return Ok(if status.is_success() {
            Report::passed(shown, doc)
        } else {
            Report::failed(shown, doc)
        });
    }
    let (passed, verdict) = if status.as_u16() == 401 {
        (
            true,
            "OK: the endpoint rejected the forged signature with 401.".to_owned(),
        )
    } else if status.is_success() {
        (
            false,
            "WARNING: THE ENDPOINT ACCEPTED A FORGED SIGNATURE. Anyone can send it events: \
             put the signature check in front of it."
                .to_owned(),
        )
    } else {
        (
            false,
            format!("expected 401 for a forged signature, got {status}"),
        )
    };
    doc["verdict"] = verdict.clone().into();
    if !passed && status.is_success() {
        eprintln!("{verdict}");
    }
    let text = format!("{shown}\n{verdict}");
    Ok(if passed {
        Report::passed(text, doc)
    } else {
        Report::failed(text, doc)
    })
}

/// A well-formed signature of the scheme that cannot be right: the real digest with
/// its last byte flipped.
fn forge(scheme: Scheme, secret: &str, body: &[u8]) -> String {
    let mut digest = hmac_sha256(secret.as_bytes(), body);
    digest[31] ^= 0x01;
    scheme.encode(&digest)
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An outbound Open Messaging message shaped like the ones Genesys Cloud sends, with
/// fresh ids and the current time.
fn sample_event() -> Vec<u8> {
    let id = uuid();
    let channel = uuid();
    let event = json!({
        "id": id,
        "channel": {
            "id": channel,
            "platform": "Open",
            "type": "Private",
            "to": { "id": "33633081329", "idType": "Opaque" },
            "from": { "nickname": "genesys-webhook test", "id": channel, "idType": "Opaque" },
            "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            "messageId": id,
        },
        "type": "Text",
        "text": "Hello from genesys-webhook send",
        "originatingEntity": "Human",
        "direction": "Outbound",
        "conversationId": uuid(),
    });
    serde_json::to_vec(&event).unwrap_or_default()
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_signatures_are_well_formed_and_wrong() {
        for &scheme in Scheme::all() {
            let good = scheme.sign("k", b"body");
            let forged = forge(scheme, "k", b"body");
            assert_ne!(forged, good);
            assert!(scheme.parse(forged.as_bytes()).is_ok(), "{forged}");
        }
    }

    #[test]
    fn sample_event_is_an_open_messaging_message() {
        let event: serde_json::Value = serde_json::from_slice(&sample_event()).unwrap();
        assert_eq!(event["type"], "Text");
        assert_eq!(event["direction"], "Outbound");
        assert_eq!(event["channel"]["messageId"], event["id"]);
        assert_eq!(uuid().len(), 36);
    }
}
