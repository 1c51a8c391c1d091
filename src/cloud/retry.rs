use std::time::Duration;

/// When and how long to wait before retrying a Genesys Cloud request, modelled on the
/// official SDKs: retry 429 honouring `Retry-After` (3 s when absent), give up at once
/// when it asks for more than 3 minutes, and retry 502/503/504 with exponential
/// backoff (3 s, 9 s, 27 s, …) and jitter, honouring `Retry-After` when present.
///
/// ```
/// use std::time::Duration;
/// use genesys_webhook::cloud::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .max_retries(3)
///     .backoff(Duration::from_millis(500), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) default_retry_after: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_factor: u32,
    pub(crate) jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            default_retry_after: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(180),
            backoff_base: Duration::from_secs(3),
            backoff_factor: 3,
            jitter: 0.2,
        }
    }
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Return the answer as it is.
    Stop,
    /// Wait, then send the request again.
    Retry(Duration),
    /// Rate limited for longer than the policy waits.
    TooLong(Duration),
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The most retries of one request (default 5), over all reasons.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// How long to wait after a 429 without `Retry-After` (default 3 s).
    pub fn default_retry_after(mut self, wait: Duration) -> Self {
        self.default_retry_after = wait;
        self
    }

    /// The longest `Retry-After` honoured (default 180 s); a longer one ends the
    /// request at once with [`CloudError::RetryAfterTooLong`](super::CloudError::RetryAfterTooLong).
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// The first backoff after a 502/503/504 and the factor of each next one
    /// (default 3 s, ×3).
    pub fn backoff(mut self, base: Duration, factor: u32) -> Self {
        self.backoff_base = base;
        self.backoff_factor = factor.max(1);
        self
    }

    /// How much each backoff may vary, as a fraction (default 0.2: ±20 %).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// Decides after answer number `attempt` (0 for the first) with `status` and the
    /// parsed `Retry-After`; `random` is a number in `[0, 1)` for the jitter.
    pub(crate) fn decide(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        attempt: u32,
        random: f64,
    ) -> Decision {
        let wait = match status {
            429 => {
                let wait = retry_after.unwrap_or(self.default_retry_after);
                if wait > self.max_retry_after {
                    return Decision::TooLong(wait);
                }
                wait
            }
            502..=504 => match retry_after {
                Some(wait) if wait <= self.max_retry_after => wait,
                _ => self.backoff_for(attempt, random),
            },
            _ => return Decision::Stop,
        };
        if attempt >= self.max_retries {
            return Decision::Stop;
        }
        Decision::Retry(wait)
    }

    /// Decides after a transport error on attempt number `attempt`: the backoff of a
    /// 502/503/504, within the same retry budget.
    pub(crate) fn decide_transport(&self, attempt: u32, random: f64) -> Decision {
        if attempt >= self.max_retries {
            return Decision::Stop;
        }
        Decision::Retry(self.backoff_for(attempt, random))
    }

    fn backoff_for(&self, attempt: u32, random: f64) -> Duration {
        let factor = f64::from(self.backoff_factor).powi(attempt.min(16) as i32);
        let base = self.backoff_base.as_secs_f64() * factor;
        let jittered = base * (1.0 + self.jitter * (2.0 * random - 1.0));
        let ceiling = self.max_retry_after.as_secs_f64().min(1e9);
        let seconds = if jittered.is_finite() {
            jittered.clamp(0.0, ceiling)
        } else {
            ceiling
        };
        Duration::try_from_secs_f64(seconds).unwrap_or(self.max_retry_after)
    }
}

/// `Retry-After` as whole seconds, as Genesys sends it. A number too large for a `u64`
/// is the largest wait there is (the policy then gives up at once); anything else
/// (an HTTP date, a fraction, an exponent, a sign) counts as absent.
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let text = value?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Duration::from_secs(text.parse::<u64>().unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn rate_limits_honour_retry_after_with_a_default_and_a_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(429, Some(S(7)), 0, 0.5), Decision::Retry(S(7)));
        assert_eq!(p.decide(429, None, 0, 0.5), Decision::Retry(S(3)));
        assert_eq!(
            p.decide(429, Some(S(181)), 0, 0.5),
            Decision::TooLong(S(181))
        );
        assert_eq!(p.decide(429, Some(S(1)), 5, 0.5), Decision::Stop);
    }

    #[test]
    fn server_errors_back_off_exponentially_with_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(503, None, 0, 0.5), Decision::Retry(S(3)));
        assert_eq!(p.decide(502, None, 1, 0.5), Decision::Retry(S(9)));
        assert_eq!(p.decide(504, None, 2, 0.5), Decision::Retry(S(27)));
        assert_eq!(p.decide(503, Some(S(2)), 2, 0.5), Decision::Retry(S(2)));
        let Decision::Retry(low) = p.decide(503, None, 1, 0.0) else {
            panic!()
        };
        let Decision::Retry(high) = p.decide(503, None, 1, 0.999) else {
            panic!()
        };
        assert!(low >= Duration::from_secs_f64(7.19) && high <= Duration::from_secs_f64(10.81));
        assert!(low < high);
        assert_eq!(p.decide(503, None, 10, 0.5), Decision::Stop);
    }

    #[test]
    fn other_statuses_are_not_retried() {
        let p = RetryPolicy::default();
        for status in [200, 400, 401, 403, 404, 409, 500] {
            assert_eq!(p.decide(status, Some(S(1)), 0, 0.5), Decision::Stop);
        }
    }

    #[test]
    fn parses_retry_after_seconds() {
        assert_eq!(parse_retry_after(Some("3")), Some(S(3)));
        assert_eq!(parse_retry_after(Some(" 0 ")), Some(S(0)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(parse_retry_after(None), None);
        // Values a gateway may send must not panic.
        assert_eq!(parse_retry_after(Some("1e20")), None);
        assert_eq!(parse_retry_after(Some("1.5")), None);
        assert_eq!(
            parse_retry_after(Some("18446744073709551616")),
            Some(Duration::from_secs(u64::MAX))
        );
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(
                429,
                parse_retry_after(Some("99999999999999999999999")),
                0,
                0.5
            ),
            Decision::TooLong(Duration::from_secs(u64::MAX))
        );
    }
}
