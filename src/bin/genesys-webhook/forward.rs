//! `serve`'s handler: each stored event posted to the application, its answer turned
//! into what the worker does next (acknowledge, retry, dead-letter), and the key that
//! orders a conversation's events.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use genesys_webhook::inbox::{Abort, Delivery, RetryAfter};
use genesys_webhook::signature::{Scheme, Secret};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The event's id, the same on every attempt.
pub(crate) const ID_HEADER: &str = "genesys-webhook-id";
/// Which attempt this is, from 1.
pub(crate) const ATTEMPT_HEADER: &str = "genesys-webhook-attempt";
/// When the relay stored the event, RFC 3339 in UTC with milliseconds.
pub(crate) const RECEIVED_AT_HEADER: &str = "genesys-webhook-received-at";
/// How much of a refusing answer's body is kept as the dead letter's reason.
const REASON_BODY_BYTES: usize = 1024;

/// Posts each delivery to the application.
#[derive(Clone)]
pub(crate) struct Forwarder {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Option<Secret>,
    max_retry_after: Duration,
}

impl Forwarder {
    /// Posts to `url` within `timeout` an attempt, signing with `secret` if given, and
    /// waits at most `max_retry_after` for an answer's `Retry-After`.
    pub(crate) fn new(
        url: reqwest::Url,
        secret: Option<Secret>,
        timeout: Duration,
        max_retry_after: Duration,
    ) -> Result<Self, BoxError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirect would turn the POST into a GET, or send the event elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("genesys-webhook/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                url,
                secret,
                max_retry_after,
            }),
        })
    }
}

impl tower::Service<Delivery> for Forwarder {
    type Response = ();
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, delivery: Delivery) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.forward(&delivery).await })
    }
}

impl Inner {
    async fn forward(&self, delivery: &Delivery) -> Result<(), BoxError> {
        let received_at = humantime::format_rfc3339_millis(delivery.received_at()).to_string();
        // As Genesys sent it; `application/json` when it sent none (the relay stores JSON
        // objects only) or for events stored before the inbox kept it.
        let content_type = delivery
            .content_type()
            .and_then(|value| HeaderValue::from_str(value).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, content_type)
            .header(ID_HEADER, delivery.id().as_str())
            .header(ATTEMPT_HEADER, delivery.attempt().to_string())
            .header(RECEIVED_AT_HEADER, received_at)
            .body(delivery.body().clone());
        if let Some(secret) = &self.secret {
            let signature = Scheme::OpenMessaging.sign(secret.expose(), delivery.body());
            request = request.header(Scheme::OpenMessaging.header(), signature);
        }
        let response = match request.send().await {
            Ok(response) => response,
            // A timeout or a connection failure: the worker's backoff.
            Err(error) => return Err(describe(&error).into()),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| retry_after(value, SystemTime::now()));
        let reason = format!("HTTP {}: {}", status.as_u16(), head(response).await);
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => match retry_after {
                Some(after) => Err(RetryAfter::new(after.min(self.max_retry_after), reason).into()),
                None => Err(reason.into()),
            },
            StatusCode::REQUEST_TIMEOUT => Err(reason.into()),
            // No retry can fix what the application refuses.
            status if status.is_client_error() => Err(Abort::new(reason).into()),
            _ => Err(reason.into()),
        }
    }
}

/// A transport error in a few words, without the URL (which may carry credentials).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = what.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn nonempty<'a>(id: Option<Cow<'a, str>>) -> Option<Cow<'a, str>> {
    id.filter(|id| !id.is_empty())
}

/// The first KiB of an answer's body, as text, read no further.
async fn head(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < REASON_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(REASON_BODY_BYTES);
    String::from_utf8_lossy(&kept).into_owned()
}

/// `Retry-After` as seconds or as an HTTP date, from `now`.
fn retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The conversation an event belongs to, which orders its delivery: the top-level
/// `conversationId`, else `eventBody.conversationId` (notification-style events), else
/// for Open Messaging the channel's id with the customer's (`channel.to.id`, else
/// `channel.from.id`). `None`: the event is in no order.
pub(crate) fn conversation_key(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Event<'a> {
        #[serde(borrow, default)]
        conversation_id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        event_body: Option<Inner<'a>>,
        #[serde(borrow, default)]
        channel: Option<Channel<'a>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner<'a> {
        #[serde(borrow, default)]
        conversation_id: Option<Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    struct Channel<'a> {
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        to: Option<Party<'a>>,
        #[serde(borrow, default)]
        from: Option<Party<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Party<'a> {
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
    }
    let event: Event<'_> = serde_json::from_slice(body).ok()?;
    if let Some(id) = nonempty(event.conversation_id) {
        return Some(format!("conversation:{id}"));
    }
    if let Some(id) = nonempty(event.event_body.and_then(|inner| inner.conversation_id)) {
        return Some(format!("conversation:{id}"));
    }
    let channel = event.channel?;
    let customer = nonempty(channel.to.and_then(|to| to.id))
        .or_else(|| nonempty(channel.from.and_then(|from| from.id)))?;
    let integration = channel.id.unwrap_or_default();
    Some(format!("channel:{integration}:{customer}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conversation_is_read_where_genesys_puts_it() {
        assert_eq!(
            conversation_key(
                br#"{"id":"m1","conversationId":"c-1","channel":{"id":"i","to":{"id":"u"}}}"#
            ),
            Some("conversation:c-1".to_owned())
        );
        assert_eq!(
            conversation_key(br#"{"eventBody":{"conversationId":"c-2"}}"#),
            Some("conversation:c-2".to_owned())
        );
        assert_eq!(
            conversation_key(br#"{"type":"Receipt","channel":{"id":"i","to":{"id":"u"}}}"#),
            Some("channel:i:u".to_owned())
        );
        assert_eq!(
            conversation_key(br#"{"channel":{"id":"i","from":{"id":"u"}}}"#),
            Some("channel:i:u".to_owned())
        );
        for none in [
            &br#"{"type":"Text"}"#[..],
            br#"{"conversationId":""}"#,
            br#"{"conversationId":7}"#,
            b"not json",
        ] {
            assert_eq!(conversation_key(none), None);
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let header = |text: &'static str| HeaderValue::from_static(text);
        assert_eq!(retry_after(&header("7"), now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let later = HeaderValue::from_str(&later).unwrap();
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&header("-1"), now), None);
    }
}
