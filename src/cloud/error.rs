use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What went wrong talking to Genesys Cloud. Never holds a secret or a token. Cheap
/// to clone, so that callers waiting on one token fetch all get its failure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloudError {
    /// The client was configured wrongly (no region, a bad URL, no credentials).
    InvalidConfig(String),
    /// The token endpoint refused the client credentials.
    Authentication(ApiError),
    /// The Platform API answered with an error (after any retries).
    Api(ApiError),
    /// Rate limited with a `Retry-After` longer than the policy waits; try again later.
    RetryAfterTooLong {
        /// How long Genesys Cloud asked to wait (as sent, in whole seconds; a value
        /// too large to hold is the largest `Duration`).
        retry_after: Duration,
        /// When that wait ends, when that is a date the clock can hold.
        retry_at: Option<SystemTime>,
        /// Genesys' correlation id of the refused request.
        correlation_id: Option<String>,
    },
    /// The request did not get an answer (connection refused, timeout, TLS). The
    /// underlying error is the [`source`](std::error::Error::source).
    Transport(TransportError),
    /// The token could not be fetched within the client's token deadline.
    TokenTimeout(Duration),
    /// The answer could not be understood.
    InvalidResponse(String),
}

/// An error answer from Genesys Cloud: the status, Genesys' error `code` and
/// `message`, and the correlation id that Genesys support asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Genesys' error code, such as `missing.permissions` or `not.found`.
    pub code: Option<String>,
    /// Genesys' error message.
    pub message: Option<String>,
    /// The `ININ-Correlation-Id` header (or the body's `contextId`).
    pub correlation_id: Option<String>,
    /// For a 403, the permissions Genesys names as missing.
    pub missing_permissions: Vec<String>,
}

impl ApiError {
    /// Builds the error from an answer's status, correlation id and body.
    pub fn from_response(status: u16, correlation_id: Option<String>, body: &[u8]) -> Self {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        // OAuth errors use `error` / `error_description`; the Platform API `code` /
        // `message`.
        let code = field("code").or_else(|| field("error"));
        let message = field("message").or_else(|| field("error_description"));
        let correlation_id = correlation_id.or_else(|| field("contextId"));
        let missing_permissions = if status == 403 {
            missing_permissions(json.as_ref(), message.as_deref())
        } else {
            Vec::new()
        };
        Self {
            status,
            code,
            message,
            correlation_id,
            missing_permissions,
        }
    }
}

/// Genesys names missing permissions in `messageParams` or in the message text, as
/// `[domain:entity:action, ...]`.
fn missing_permissions(json: Option<&serde_json::Value>, message: Option<&str>) -> Vec<String> {
    let from_params = json
        .and_then(|j| j.get("messageParams"))
        .and_then(|p| p.as_object())
        .and_then(|p| p.values().find_map(|v| v.as_str().map(str::to_owned)));
    let text = from_params.or_else(|| message.map(str::to_owned));
    let Some(text) = text else { return Vec::new() };
    let inner = match (text.find('['), text.rfind(']')) {
        (Some(start), Some(end)) if start < end => &text[start + 1..end],
        _ => return Vec::new(),
    };
    inner
        .split(',')
        .map(|p| p.trim().trim_matches('"').to_owned())
        .filter(|p| p.contains(':'))
        .collect()
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Genesys Cloud answered {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if !self.missing_permissions.is_empty() {
            write!(
                f,
                "; the OAuth client lacks the permission(s) {}",
                self.missing_permissions.join(", ")
            )?;
        }
        if let Some(id) = &self.correlation_id {
            write!(f, " [correlation id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(message) => write!(f, "invalid configuration: {message}"),
            Self::Authentication(error) => {
                write!(
                    f,
                    "could not get an OAuth token (check the client id and secret): {error}"
                )
            }
            Self::Api(error) => error.fmt(f),
            Self::RetryAfterTooLong {
                retry_after,
                retry_at,
                correlation_id,
            } => {
                write!(
                    f,
                    "rate limited: Genesys Cloud asks to wait {} s",
                    retry_after.as_secs()
                )?;
                // Only a date humans can read: years past 9999 do not format.
                match retry_at.filter(|at| *at < latest_formattable()) {
                    Some(at) => write!(
                        f,
                        "; try again after {}",
                        humantime::format_rfc3339_seconds(at)
                    )?,
                    None => f.write_str("; try again much later")?,
                }
                if let Some(id) = correlation_id {
                    write!(f, " [correlation id {id}]")?;
                }
                Ok(())
            }
            Self::Transport(error) => {
                let what = if error.is_connect() {
                    "could not connect to Genesys Cloud (nothing was sent)"
                } else if error.is_timeout() {
                    "Genesys Cloud did not answer in time (the request may have been processed)"
                } else {
                    "the connection to Genesys Cloud was cut before a whole answer came back (the request may have been processed)"
                };
                write!(f, "{what}: {error}")
            }
            Self::TokenTimeout(deadline) => write!(
                f,
                "could not get an OAuth token within {} s",
                deadline.as_secs()
            ),
            Self::InvalidResponse(message) => {
                write!(f, "unexpected answer from Genesys Cloud: {message}")
            }
        }
    }
}

impl std::error::Error for CloudError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(error) => Some(error),
            Self::Authentication(error) | Self::Api(error) => Some(error),
            _ => None,
        }
    }
}

/// The last second humantime formats (the end of year 9999).
fn latest_formattable() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// A request that got no answer. Its [`source`](std::error::Error::source) is the HTTP
/// client's error; [`is_timeout`](Self::is_timeout) and
/// [`is_connect`](Self::is_connect) tell the common cases apart.
#[derive(Debug, Clone)]
pub struct TransportError {
    message: String,
    source: Arc<reqwest::Error>,
}

impl TransportError {
    pub(crate) fn new(error: reqwest::Error) -> Self {
        // The error's own text names the URL; its sources say why.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self {
            message,
            source: Arc::new(error),
        }
    }

    /// The request timed out.
    pub fn is_timeout(&self) -> bool {
        self.source.is_timeout()
    }

    /// The connection could not be made (refused, no route, DNS).
    pub fn is_connect(&self) -> bool {
        self.source.is_connect()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_missing_permission() {
        let body = br#"{"message":"Unable to perform the requested action. You are missing the following permission(s): [messaging:integration:add]","code":"missing.permissions","status":403,"messageParams":{"permissions":"[messaging:integration:add]"},"contextId":"ctx-1"}"#;
        let error = ApiError::from_response(403, None, body);
        assert_eq!(error.code.as_deref(), Some("missing.permissions"));
        assert_eq!(error.missing_permissions, ["messaging:integration:add"]);
        assert_eq!(error.correlation_id.as_deref(), Some("ctx-1"));
        let text = error.to_string();
        assert!(
            text.contains("messaging:integration:add") && text.contains("403"),
            "{text}"
        );
    }

    #[test]
    fn a_retry_date_past_year_9999_is_never_formatted() {
        for retry_at in [
            None,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4)),
        ] {
            let error = CloudError::RetryAfterTooLong {
                retry_after: Duration::MAX,
                retry_at,
                correlation_id: None,
            };
            let text = error.to_string();
            assert!(text.contains("much later"), "{text}");
        }
    }

    #[test]
    fn oauth_errors_and_non_json_bodies() {
        let error = ApiError::from_response(
            400,
            Some("corr".into()),
            br#"{"error":"invalid_client","description":"x","error_description":"authentication failed"}"#,
        );
        assert_eq!(error.code.as_deref(), Some("invalid_client"));
        assert_eq!(error.message.as_deref(), Some("authentication failed"));
        let error = ApiError::from_response(502, None, b"<html>bad gateway</html>");
        assert_eq!(error.code, None);
        assert_eq!(error.to_string(), "Genesys Cloud answered 502");
    }
}
