//! `genesys-webhook send`: post a signed body to a receiver, or a forged one with
//! `--tamper` to prove the receiver rejects it.

use std::path::PathBuf;
use std::time::SystemTime;

use genesys_webhook::signature::{hmac_sha256, Scheme};
use serde_json::json;

use crate::input::{parse_header, read_body};
use crate::output::{printable, progress, Failure, Report};
use crate::secret::WebhookSecrets;
use crate::SchemeArg;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to post, e.g. http://127.0.0.1:5000/webhook/receive.
    url: String,
    #[command(flatten)]
    secret: WebhookSecrets,
    /// Which signature header to send (the default body is an Open Messaging event, which
    /// Genesys Cloud signs with X-Hub-Signature-256).
    #[arg(long, value_enum, default_value_t = SchemeArg::OpenMessaging)]
    scheme: SchemeArg,
    /// A header, 'Name: value'; repeatable. A header named like one the command sends
    /// (Content-Type, the signature) replaces it.
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Send a deliberately wrong signature: succeeds only if the receiver answers 401.
    #[arg(long)]
    tamper: bool,
    /// Trust this PEM certificate (or bundle) too: for a receiver behind a self-signed
    /// or private certificate authority.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
    /// Which sample Open Messaging payload to send when no file is given, with the
    /// field shapes of Genesys Cloud's outbound webhook.
    #[arg(long = "message", value_enum, default_value_t = Sample::Text)]
    sample: Sample,
    /// The body; standard input for `-`; a realistic sample Open Messaging event when absent.
    file: Option<PathBuf>,
}

pub(crate) async fn run(args: Args, json: bool) -> Result<Report, Failure> {
    let secret = args.secret.resolve()?.remove(0);
    let body = match &args.file {
        Some(_) => read_body(args.file.as_ref()).await?,
        None => sample_event(args.sample),
    };
    let scheme = Scheme::from(args.scheme);
    let signature = if args.tamper {
        forge(scheme, &secret, &body)
    } else {
        scheme.sign(&secret, &body)
    };
    let client = crate::input::http_client(args.cacert.as_deref()).await?;
    let headers = request_headers(scheme, &signature, &args.headers)?;
    let request = client.post(&args.url).headers(headers);
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
        "scheme": scheme.name(),
        "tamper": args.tamper,
        "status": status.as_u16(),
        "body": printable(answer.as_bytes(), ANSWER_CHARS),
    });
    let shown = format!("{status}\n{}", printable(answer.as_bytes(), ANSWER_CHARS));
    if !args.tamper {
        if status.is_success() {
            return Ok(Report::passed(shown, doc));
        }
        let verdict = failure_line(status, &answer);
        doc["verdict"] = verdict.clone().into();
        return Ok(Report::failed(format!("{shown}\n{verdict}"), doc));
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

/// How much of a receiver's answer is shown.
const ANSWER_CHARS: usize = 2000;

/// The headers sent: the content type and the signature, each replaced by a
/// `--header` of the same name; other `--header`s added.
fn request_headers(
    scheme: Scheme,
    signature: &str,
    extra: &[(String, String)],
) -> Result<reqwest::header::HeaderMap, Failure> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let signature = HeaderValue::from_str(signature)
        .map_err(|e| Failure::io(format!("signature header: {e}")))?;
    headers.insert(
        scheme
            .header()
            .as_str()
            .parse::<HeaderName>()
            .map_err(|e| Failure::io(e.to_string()))?,
        signature,
    );
    let mut replaced = Vec::new();
    for (name, value) in extra {
        let name: HeaderName = name
            .parse()
            .map_err(|_| Failure::io(format!("{name:?} is not a header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| Failure::io(format!("the value of {name} is not a valid header value")))?;
        if !replaced.contains(&name) {
            headers.remove(&name);
            replaced.push(name.clone());
        }
        headers.append(name, value);
    }
    Ok(headers)
}

/// One line that says what failed, for a non-2xx answer.
fn failure_line(status: reqwest::StatusCode, answer: &str) -> String {
    let code = serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    let hint = match (status.as_u16(), code.as_deref()) {
        (401, _) => ": the receiver refused the signature; check the secret and --scheme",
        (413, _) => ": the body is larger than the receiver accepts",
        (400, Some("invalid_json")) => ": the receiver wants a JSON object",
        (429 | 503, _) => ": the receiver asks to retry later (Genesys would)",
        _ => "",
    };
    let code = code
        .map(|c| format!(" ({})", printable(c.as_bytes(), 80)))
        .unwrap_or_default();
    format!("FAILED: the receiver answered {status}{code}{hint}")
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
/// The sample payloads of `--message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Sample {
    /// An agent's text.
    Text,
    /// The agent is typing.
    Typing,
    /// A delivery receipt for an earlier message.
    Receipt,
    /// A bot's question with quick replies.
    Structured,
}

fn sample_event(sample: Sample) -> Vec<u8> {
    let id = uuid();
    let integration = uuid();
    let mut channel = json!({
        "id": integration,
        "platform": "Open",
        "type": "Private",
        "to": { "id": "33633081329", "idType": "Opaque" },
        "from": { "nickname": "genesys-webhook test", "id": integration, "idType": "Opaque" },
        "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        "messageId": id,
    });
    let mut event = json!({
        "id": id,
        "direction": "Outbound",
        "conversationId": uuid(),
    });
    match sample {
        Sample::Text => {
            event["type"] = "Text".into();
            event["text"] = "Hello from genesys-webhook send".into();
            event["originatingEntity"] = "Human".into();
        }
        Sample::Typing => {
            event["type"] = "Event".into();
            event["events"] =
                json!([{"eventType": "Typing", "typing": {"type": "On", "duration": 5000}}]);
            if let Some(channel) = channel.as_object_mut() {
                channel.remove("messageId");
            }
        }
        Sample::Receipt => {
            event["type"] = "Receipt".into();
            event["status"] = "Delivered".into();
            event["isFinalReceipt"] = true.into();
            if let Some(channel) = channel.as_object_mut() {
                channel.remove("from");
            }
        }
        Sample::Structured => {
            event["type"] = "Structured".into();
            event["text"] = "Which size would you like?".into();
            event["originatingEntity"] = "Bot".into();
            event["content"] = json!([
                {"contentType": "QuickReply", "quickReply": {"text": "Small", "payload": "size-s", "action": "Message"}},
                {"contentType": "QuickReply", "quickReply": {"text": "Large", "payload": "size-l", "action": "Message"}},
            ]);
        }
    }
    event["channel"] = channel;
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
    fn a_header_given_twice_replaces_the_default() {
        let extra = vec![
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("X-Hub-Signature-256".to_owned(), "sha256=given".to_owned()),
            ("X-Trace".to_owned(), "1".to_owned()),
            ("X-Trace".to_owned(), "2".to_owned()),
        ];
        let headers = request_headers(Scheme::OpenMessaging, "sha256=computed", &extra).unwrap();
        assert_eq!(headers.get_all("content-type").iter().count(), 1);
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers.get_all("x-hub-signature-256").iter().count(), 1);
        assert_eq!(headers["x-hub-signature-256"], "sha256=given");
        assert_eq!(headers.get_all("x-trace").iter().count(), 2);
    }

    #[test]
    fn a_failed_answer_ends_with_one_line_saying_what_failed() {
        let line = failure_line(
            reqwest::StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_signature"}"#,
        );
        assert!(
            line.starts_with("FAILED: the receiver answered 401"),
            "{line}"
        );
        assert!(
            line.contains("invalid_signature") && line.contains("secret"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn sample_event_is_an_open_messaging_message() {
        let event: serde_json::Value = serde_json::from_slice(&sample_event(Sample::Text)).unwrap();
        assert_eq!(event["type"], "Text");
        assert_eq!(event["direction"], "Outbound");
        assert_eq!(event["channel"]["messageId"], event["id"]);
        assert_eq!(uuid().len(), 36);
    }

    #[test]
    fn every_sample_is_a_typed_open_messaging_message() {
        use genesys_webhook::openmessaging::{MessageType, OpenMessage};
        for (sample, kind) in [
            (Sample::Text, MessageType::Text),
            (Sample::Typing, MessageType::Event),
            (Sample::Receipt, MessageType::Receipt),
            (Sample::Structured, MessageType::Structured),
        ] {
            let message = OpenMessage::from_slice(&sample_event(sample)).unwrap();
            assert_eq!(message.kind, kind);
            assert!(message.extra.is_empty(), "{sample:?}: {:?}", message.extra);
        }
    }
}
