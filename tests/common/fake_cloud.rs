//! A fake Genesys Cloud (login and Platform API) on loopback, scriptable per test.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret-value";
const OPEN: &str = "/api/v2/conversations/messaging/integrations/open";

/// An answer forced on the next request of a kind.
#[derive(Clone, Debug)]
pub struct Forced {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Forced {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }
}

#[derive(Default)]
pub struct Fake {
    pub token_requests: usize,
    pub api_requests: Vec<String>,
    pub valid_tokens: Vec<String>,
    pub expires_in: u64,
    pub forced_token: VecDeque<Forced>,
    pub forced_api: VecDeque<Forced>,
    pub integrations: Vec<Value>,
    pub next_id: usize,
    pub last_create_body: Option<Value>,
    /// The next create is committed, then answered with this status (a gateway that
    /// timed out after Genesys did the work).
    pub commit_then_fail: Option<u16>,
    /// The next create is answered so, without being committed.
    pub forced_create: Option<Forced>,
    /// Inbound Open Messaging calls: path with query, and body.
    pub inbound: Vec<(String, Value)>,
    /// What `GET /api/v2/ipranges` lists.
    pub ip_ranges: Vec<Value>,
    /// While set, `GET /api/v2/ipranges` answers this status (403: a permission
    /// missing; not retried by the client).
    pub ip_ranges_failing: Option<u16>,
    /// Bot Connector outgoing messages received.
    pub bot_messages: Vec<Value>,
}

#[derive(Clone)]
pub struct FakeCloud {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<Fake>>,
}

impl FakeCloud {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Fake {
            expires_in: 86_400,
            ..Fake::default()
        }));
        let app = Router::new()
            .route("/oauth/token", post(token))
            .route("/api/v2/ipranges", get(ip_ranges))
            .route(
                "/api/v2/integrations/botconnectors/outgoing/messages",
                post(bot_message),
            )
            .route(OPEN, get(list).post(create))
            .route(
                "/api/v2/conversations/messages/{integration}/inbound/open/{*kind}",
                post(inbound),
            )
            .route(
                &format!("{OPEN}/{{id}}"),
                get(get_one).patch(update).delete(delete),
            )
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Fake) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn force_api(&self, forced: Forced) {
        self.with(|f| f.forced_api.push_back(forced));
    }

    /// The next create (only) is answered so, without being committed.
    pub fn force_create(&self, forced: Forced) {
        self.with(|f| f.forced_create = Some(forced));
    }

    pub fn force_token(&self, forced: Forced) {
        self.with(|f| f.forced_token.push_back(forced));
    }

    pub fn inbound_calls(&self) -> Vec<(String, Value)> {
        self.with(|f| f.inbound.clone())
    }

    pub fn token_requests(&self) -> usize {
        self.with(|f| f.token_requests)
    }

    pub fn api_requests(&self) -> Vec<String> {
        self.with(|f| f.api_requests.clone())
    }

    /// `GET /api/v2/ipranges` lists `ranges`, as `(cidr, service, direction)`.
    pub fn set_ip_ranges(&self, ranges: &[(&str, &str, &str)]) {
        let listed = ranges
            .iter()
            .map(|(cidr, service, direction)| {
                json!({"cidr": cidr, "service": service, "region": "us-east-1", "direction": direction})
            })
            .collect();
        self.with(|f| f.ip_ranges = listed);
    }

    /// Every token issued so far stops working.
    pub fn revoke_tokens(&self) {
        self.with(|f| f.valid_tokens.clear());
    }
}

fn forced(forced: Forced) -> Response {
    let mut response = (StatusCode::from_u16(forced.status).unwrap(), forced.body).into_response();
    for (name, value) in forced.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

async fn token(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut fake = state.lock().unwrap();
    fake.token_requests += 1;
    if let Some(f) = fake.forced_token.pop_front() {
        return forced(f);
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "description": "authentication failed", "error_description": "authentication failed"}))).into_response();
    }
    if body != "grant_type=client_credentials"
        || !content_type.starts_with("application/x-www-form-urlencoded")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let token = format!("token-{}", fake.token_requests);
    fake.valid_tokens.push(token.clone());
    Json(json!({"access_token": token, "token_type": "bearer", "expires_in": fake.expires_in}))
        .into_response()
}

/// Records the request and checks the bearer token; `Some` is the answer to send
/// instead of the normal one.
fn api_gate(fake: &mut Fake, label: String, headers: &HeaderMap) -> Option<Response> {
    fake.api_requests.push(label);
    if let Some(f) = fake.forced_api.pop_front() {
        return Some(forced(f));
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !fake.valid_tokens.iter().any(|t| t == bearer) {
        let mut response = (StatusCode::UNAUTHORIZED, Json(json!({"message": "Invalid login credentials.", "code": "bad.credentials", "status": 401}))).into_response();
        response
            .headers_mut()
            .insert("inin-correlation-id", "corr-401".parse().unwrap());
        return Some(response);
    }
    None
}

async fn list(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let mut fake = state.lock().unwrap();
    let page: usize = q
        .get("pageNumber")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if let Some(r) = api_gate(&mut fake, format!("GET list page {page}"), &headers) {
        return r;
    }
    // A small page size, so that paging is exercised.
    let size = 2;
    let count = fake.integrations.len().div_ceil(size).max(1);
    let entities: Vec<_> = fake
        .integrations
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect();
    Json(json!({"entities": entities, "pageSize": size, "pageNumber": page, "total": fake.integrations.len(), "pageCount": count})).into_response()
}

async fn create(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = state.lock().unwrap();
    if let Some(r) = api_gate(&mut fake, "POST create".into(), &headers) {
        return r;
    }
    if let Some(f) = fake.forced_create.take() {
        return forced(f);
    }
    fake.next_id += 1;
    let id = format!("00000000-0000-4000-8000-{:012}", fake.next_id);
    let mut integration = json!({
        "id": id,
        "name": body["name"],
        "outboundNotificationWebhookUrl": body["outboundNotificationWebhookUrl"],
        "createStatus": "Initiated",
        "dateCreated": "2026-11-29T00:00:00Z",
    });
    if let Some(h) = body.get("webhookHeaders") {
        integration["webhookHeaders"] = h.clone();
    }
    fake.last_create_body = Some(body);
    fake.integrations.push(integration.clone());
    if let Some(status) = fake.commit_then_fail.take() {
        return (
            StatusCode::from_u16(status).unwrap(),
            "<html>gateway timeout</html>",
        )
            .into_response();
    }
    Json(integration).into_response()
}

async fn inbound(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = state.lock().unwrap();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    if let Some(r) = api_gate(&mut fake, format!("POST {path}"), &headers) {
        return r;
    }
    fake.inbound.push((path.clone(), body));
    let n = fake.inbound.len();
    let mut answer = json!({"id": format!("genesys-{n}")});
    if path.contains("prefetchConversationId=true") {
        answer["conversationId"] = json!("conv-prefetched");
    }
    Json(answer).into_response()
}

async fn get_one(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut fake = state.lock().unwrap();
    if let Some(r) = api_gate(&mut fake, format!("GET {id}"), &headers) {
        return r;
    }
    match fake.integrations.iter().find(|i| i["id"] == id.as_str()) {
        Some(i) => Json(i.clone()).into_response(),
        None => not_found(),
    }
}

async fn update(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = state.lock().unwrap();
    if let Some(r) = api_gate(&mut fake, format!("PATCH {id}"), &headers) {
        return r;
    }
    fake.last_create_body = Some(body.clone());
    match fake
        .integrations
        .iter_mut()
        .find(|i| i["id"] == id.as_str())
    {
        Some(i) => {
            if let Some(url) = body.get("outboundNotificationWebhookUrl") {
                i["outboundNotificationWebhookUrl"] = url.clone();
            }
            Json(i.clone()).into_response()
        }
        None => not_found(),
    }
}

async fn delete(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut fake = state.lock().unwrap();
    if let Some(r) = api_gate(&mut fake, format!("DELETE {id}"), &headers) {
        return r;
    }
    let before = fake.integrations.len();
    fake.integrations.retain(|i| i["id"] != id.as_str());
    if fake.integrations.len() == before {
        return not_found();
    }
    StatusCode::NO_CONTENT.into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "not found", "code": "not.found", "status": 404, "contextId": "ctx-404"}))).into_response()
}

async fn ip_ranges(State(state): State<Arc<Mutex<Fake>>>, headers: HeaderMap) -> Response {
    let mut fake = state.lock().unwrap();
    if let Some(answer) = api_gate(&mut fake, "GET ipranges".into(), &headers) {
        return answer;
    }
    if let Some(status) = fake.ip_ranges_failing {
        return (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"message": "Missing permission", "code": "missing.permissions", "status": status})),
        )
            .into_response();
    }
    Json(json!({"entities": fake.ip_ranges})).into_response()
}

async fn bot_message(
    State(state): State<Arc<Mutex<Fake>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut fake = state.lock().unwrap();
    if let Some(answer) = api_gate(&mut fake, "POST botconnector outgoing".into(), &headers) {
        return answer;
    }
    fake.bot_messages.push(body);
    Json(json!({"messageId": format!("bot-message-{}", fake.bot_messages.len())})).into_response()
}
