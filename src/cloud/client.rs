use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::error::TransportError;
use super::retry::{parse_retry_after, Decision};
use super::{ApiError, CloudError, Endpoints, OpenMessaging, Region, RetryPolicy};

/// Refresh a token this long before Genesys says it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// The longest token lifetime believed (Genesys issues 24-hour tokens); a larger
/// `expires_in` is clamped, so that adding it to the clock cannot overflow.
const LONGEST_TOKEN: Duration = Duration::from_secs(48 * 3600);
/// Default for [`GenesysCloudBuilder::token_deadline`].
const DEFAULT_TOKEN_DEADLINE: Duration = Duration::from_secs(60);

/// A Genesys Cloud Platform API client using OAuth client credentials.
///
/// Cheap to clone; clones share the token cache. The token is fetched on first use,
/// cached, and refreshed a minute before it expires. Concurrent callers share one
/// fetch and its result, success or failure; a fetch has an overall deadline
/// ([`token_deadline`](GenesysCloudBuilder::token_deadline)) and retries at most
/// twice. A 401 from the API triggers one refresh and one retry. 429 answers are
/// retried according to the [`RetryPolicy`], and so is a connection that could not be
/// made (nothing was sent); 502/503/504 and other transport errors (a connection
/// closed unanswered, a timeout) only for idempotent requests (GET, HEAD, PUT, DELETE,
/// OPTIONS, and the token request): a POST or PATCH that got no clear answer may have
/// been applied. A create that timed out at a gateway is looked up instead of sent
/// twice.
///
/// ```no_run
/// use genesys_webhook::cloud::{GenesysCloud, NewOpenMessagingIntegration, Region};
///
/// # async fn run() -> Result<(), genesys_webhook::cloud::CloudError> {
/// let cloud = GenesysCloud::builder()
///     .client_credentials("client-id", "client-secret")
///     .region(Region::EuWest1)
///     .build()?;
/// let created = cloud
///     .open_messaging()
///     .create(&NewOpenMessagingIntegration::new(
///         "My webhook",
///         "https://hooks.example.com/webhook/receive",
///         "a-long-random-signature-secret",
///     ))
///     .await?;
/// println!("created {}", created.id);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct GenesysCloud {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    client_id: String,
    client_secret: Zeroizing<String>,
    retry: RetryPolicy,
    token_retry: RetryPolicy,
    token_deadline: Duration,
    /// Shared with the clients [`GenesysCloud::with_retry_policy`] derives.
    token: Arc<Mutex<TokenCache>>,
}

#[derive(Default)]
struct TokenCache {
    current: Option<Token>,
    generation: u64,
    /// The fetch in progress, shared by every caller that needs a token meanwhile.
    fetching: Option<Arc<Fetch>>,
}

/// One token fetch: its generation, and its result once there is one.
struct Fetch {
    generation: u64,
    result: OnceCell<Result<Token, CloudError>>,
}

#[derive(Clone)]
struct Token {
    value: Zeroizing<String>,
    refresh_at: Instant,
    generation: u64,
}

/// Configures a [`GenesysCloud`] client.
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Default)]
pub struct GenesysCloudBuilder {
    client_id: Option<String>,
    client_secret: Option<Zeroizing<String>>,
    region: Option<Region>,
    api_base: Option<String>,
    login_base: Option<String>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    token_deadline: Option<Duration>,
}

impl GenesysCloud {
    /// Starts configuring a client.
    pub fn builder() -> GenesysCloudBuilder {
        GenesysCloudBuilder {
            timeout: Some(Duration::from_secs(30)),
            ..GenesysCloudBuilder::default()
        }
    }

    /// A client from the environment, as the `genesys-webhook` command reads it:
    /// `GENESYS_CLIENT_ID`, `GENESYS_CLIENT_SECRET`, and `GENESYS_REGION` (a region
    /// name such as `eu-west-1`) or `GENESYS_API_BASE`, with `GENESYS_LOGIN_BASE`
    /// optional. `None` when no client id and secret are set;
    /// [`from_env`](Self::from_env) requires them.
    ///
    /// # Errors
    ///
    /// [`CloudError::InvalidConfig`] when the credentials are set but the region is
    /// missing or unknown, or a base URL is not acceptable.
    pub fn from_env_if_set() -> Result<Option<Self>, CloudError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let (Some(id), Some(secret)) = (var("GENESYS_CLIENT_ID"), var("GENESYS_CLIENT_SECRET"))
        else {
            return Ok(None);
        };
        let mut builder = Self::builder().client_credentials(id, secret);
        if let Some(region) = var("GENESYS_REGION") {
            let region: Region = region
                .parse()
                .map_err(|e: super::UnknownRegion| CloudError::InvalidConfig(e.to_string()))?;
            builder = builder.region(region);
        }
        if let Some(base) = var("GENESYS_API_BASE") {
            builder = builder.api_base(base);
        }
        if let Some(base) = var("GENESYS_LOGIN_BASE") {
            builder = builder.login_base(base);
        }
        builder.build().map(Some)
    }

    /// Like [`from_env_if_set`](Self::from_env_if_set), for a program that cannot work
    /// without the Platform API.
    ///
    /// # Errors
    ///
    /// [`CloudError::InvalidConfig`] naming `GENESYS_CLIENT_ID` and
    /// `GENESYS_CLIENT_SECRET` when they are not set, and as `from_env_if_set` otherwise.
    pub fn from_env() -> Result<Self, CloudError> {
        Self::from_env_if_set()?.ok_or_else(|| {
            CloudError::InvalidConfig(
                "set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (an OAuth client credentials grant)"
                    .to_owned(),
            )
        })
    }

    /// A client that shares this one's connections and token and retries as `policy`
    /// says: for a caller that schedules its own retries, such as a worker.
    pub fn with_retry_policy(&self, policy: RetryPolicy) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                endpoints: inner.endpoints.clone(),
                client_id: inner.client_id.clone(),
                client_secret: inner.client_secret.clone(),
                retry: policy,
                token_retry: inner.token_retry.clone(),
                token_deadline: inner.token_deadline,
                token: Arc::clone(&inner.token),
            }),
        }
    }

    /// The resolved API and login base URLs.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// Open Messaging integrations, the integrations whose outbound webhooks Genesys
    /// Cloud signs with `X-Hub-Signature-256`.
    pub fn open_messaging(&self) -> OpenMessaging<'_> {
        OpenMessaging::new(self)
    }

    /// Sends an authenticated Platform API request and decodes a JSON answer.
    pub(crate) async fn api_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, CloudError> {
        let body = self.api(method, path, body).await?;
        serde_json::from_slice(&body).map_err(|e| CloudError::InvalidResponse(e.to_string()))
    }

    /// Sends an authenticated Platform API request; a non-2xx answer is an error.
    pub(crate) async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, CloudError> {
        let url = format!("{}{path}", self.inner.endpoints.api_base());
        let mut refreshed = false;
        loop {
            let (token, generation) = self.token().await?;
            // POST and PATCH may change something each time they are sent.
            let idempotent = matches!(
                method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
            );
            let answer = self
                .send(&self.inner.retry, idempotent, || {
                    let request = self
                        .inner
                        .http
                        .request(method.clone(), &url)
                        .bearer_auth(token.as_str());
                    match &body {
                        Some(body) => request
                            .header(CONTENT_TYPE, "application/json")
                            .body(body.clone()),
                        None => request,
                    }
                })
                .await?;
            tracing::debug!(%method, path, status = answer.status, "Genesys Cloud API");
            if answer.status == 401 && !refreshed {
                // The token may have been revoked or expired early: refresh once.
                refreshed = true;
                self.invalidate(generation).await;
                continue;
            }
            if (200..300).contains(&answer.status) {
                return Ok(answer.body);
            }
            return Err(CloudError::Api(answer.into_error()));
        }
    }

    /// The cached token, or a new one. Callers that arrive while a fetch runs wait for
    /// it and share its result; the lock is not held while fetching.
    async fn token(&self) -> Result<(Zeroizing<String>, u64), CloudError> {
        let fetch = {
            let mut cache = self.inner.token.lock().await;
            if let Some(token) = &cache.current {
                if Instant::now() < token.refresh_at {
                    return Ok((token.value.clone(), token.generation));
                }
            }
            match &cache.fetching {
                Some(fetch) => Arc::clone(fetch),
                None => {
                    cache.generation += 1;
                    let fetch = Arc::new(Fetch {
                        generation: cache.generation,
                        result: OnceCell::new(),
                    });
                    cache.fetching = Some(Arc::clone(&fetch));
                    fetch
                }
            }
        };
        let generation = fetch.generation;
        let result = fetch
            .result
            .get_or_init(|| async {
                let fetched =
                    tokio::time::timeout(self.inner.token_deadline, self.fetch_token()).await;
                match fetched {
                    Ok(Ok((value, lifetime))) => Ok(Token {
                        value,
                        refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
                        generation,
                    }),
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(CloudError::TokenTimeout(self.inner.token_deadline)),
                }
            })
            .await
            .clone();
        let mut cache = self.inner.token.lock().await;
        if cache
            .fetching
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, &fetch))
        {
            // This fetch is over: the next caller after a failure starts a new one.
            cache.fetching = None;
            if let Ok(token) = &result {
                cache.current = Some(token.clone());
            }
        }
        result.map(|token| (token.value, token.generation))
    }

    async fn invalidate(&self, generation: u64) {
        let mut cache = self.inner.token.lock().await;
        if cache
            .current
            .as_ref()
            .is_some_and(|t| t.generation == generation)
        {
            cache.current = None;
        }
    }

    async fn fetch_token(&self) -> Result<(Zeroizing<String>, Duration), CloudError> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: Zeroizing<String>,
            expires_in: u64,
        }
        let url = format!("{}/oauth/token", self.inner.endpoints.login_base());
        // Asking for a token again changes nothing on the server: idempotent.
        let answer = self
            .send(&self.inner.token_retry, true, || {
                self.inner
                    .http
                    .post(&url)
                    .basic_auth(
                        &self.inner.client_id,
                        Some(self.inner.client_secret.as_str()),
                    )
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
            })
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(CloudError::Authentication(answer.into_error()));
        }
        let token: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| CloudError::InvalidResponse(format!("token answer: {e}")))?;
        tracing::debug!(expires_in = token.expires_in, "got a Genesys Cloud token");
        let lifetime = Duration::from_secs(token.expires_in).min(LONGEST_TOKEN);
        Ok((token.access_token, lifetime))
    }

    /// Sends a request, retrying as `policy` says: a 429 always (the request was not
    /// processed), a 502/503/504 only when the request is `idempotent`. A connection
    /// that could not be made is retried whatever the method (nothing was sent); any
    /// other transport error (a connection closed unanswered, a timeout, a broken
    /// answer) only when the request is `idempotent`, since it may have been processed.
    async fn send(
        &self,
        policy: &RetryPolicy,
        idempotent: bool,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, CloudError> {
        let mut attempt = 0;
        loop {
            let received = async {
                let response = build().send().await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            }
            .await;
            let (status, headers, body) = match received {
                Ok(received) => received,
                Err(error) => {
                    let retry = error.is_connect() || idempotent;
                    match policy.decide_transport(attempt, crate::random::unit()) {
                        Decision::Retry(wait) if retry => {
                            tracing::info!(
                                %error,
                                attempt = attempt + 1,
                                wait_ms = wait.as_millis() as u64,
                                "Genesys Cloud could not be reached; retrying"
                            );
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            continue;
                        }
                        _ => return Err(transport(error)),
                    }
                }
            };
            let answer = Answer {
                status,
                headers,
                body,
            };
            let retry_after = parse_retry_after(answer.header("retry-after"));
            if !idempotent && status != 429 {
                return Ok(answer);
            }
            match policy.decide(status, retry_after, attempt, crate::random::unit()) {
                Decision::Stop => return Ok(answer),
                Decision::TooLong(wait) => {
                    return Err(CloudError::RetryAfterTooLong {
                        retry_after: wait,
                        retry_at: SystemTime::now().checked_add(wait),
                        correlation_id: answer.correlation_id(),
                    })
                }
                Decision::Retry(wait) => {
                    tracing::info!(
                        status,
                        attempt = attempt + 1,
                        wait_ms = wait.as_millis() as u64,
                        correlation_id = answer.correlation_id(),
                        "Genesys Cloud asked to retry"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn correlation_id(&self) -> Option<String> {
        self.header("inin-correlation-id").map(str::to_owned)
    }

    fn into_error(self) -> ApiError {
        ApiError::from_response(self.status, self.correlation_id(), &self.body)
    }
}

fn transport(error: reqwest::Error) -> CloudError {
    CloudError::Transport(TransportError::new(error))
}

impl GenesysCloudBuilder {
    /// The OAuth client (client credentials grant) the client acts as. Required.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(Zeroizing::new(client_secret.into()));
        self
    }

    /// The organization's region.
    pub fn region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// Overrides the Platform API base URL (tests, proxies); wins over the region.
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = Some(base.into());
        self
    }

    /// Overrides the login base URL; wins over the region and over a login base
    /// derived from [`api_base`](Self::api_base).
    pub fn login_base(mut self, base: impl Into<String>) -> Self {
        self.login_base = Some(base.into());
        self
    }

    /// How 429 and 5xx answers are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long one HTTP request may take (default 30 s); `None` for no limit.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long fetching a token may take in all, retries included (default 60 s).
    /// Every caller waiting for that token gets the failure when it runs out.
    pub fn token_deadline(mut self, deadline: Duration) -> Self {
        self.token_deadline = Some(deadline);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`CloudError::InvalidConfig`] for missing or blank credentials, no region and
    /// no API base, or a base that is not an `http(s)://` URL.
    pub fn build(self) -> Result<GenesysCloud, CloudError> {
        let client_id = self
            .client_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| CloudError::InvalidConfig("no OAuth client id".into()))?;
        let client_secret = self
            .client_secret
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| CloudError::InvalidConfig("no OAuth client secret".into()))?;
        let endpoints = Endpoints::resolve(
            self.region,
            self.api_base.as_deref(),
            self.login_base.as_deref(),
        )?;
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("genesys-webhook/", env!("CARGO_PKG_VERSION")));
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        let http = http
            .build()
            .map_err(|e| CloudError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(GenesysCloud {
            inner: Arc::new(Inner {
                http,
                endpoints,
                client_id,
                client_secret,
                token_retry: self
                    .retry
                    .clone()
                    .max_retries(self.retry.max_retries.min(2))
                    .max_retry_after(self.retry.max_retry_after.min(Duration::from_secs(10))),
                retry: self.retry,
                token_deadline: self.token_deadline.unwrap_or(DEFAULT_TOKEN_DEADLINE),
                token: Arc::new(Mutex::new(TokenCache::default())),
            }),
        })
    }
}

impl fmt::Debug for GenesysCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysCloud")
            .field("endpoints", &self.inner.endpoints)
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"[redacted]")
            .field("retry", &self.inner.retry)
            .finish()
    }
}

impl fmt::Debug for GenesysCloudBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenesysCloudBuilder")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("region", &self.region)
            .field("api_base", &self.api_base)
            .field("login_base", &self.login_base)
            .field("retry", &self.retry)
            .finish()
    }
}
