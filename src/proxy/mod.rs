//! The signing gateway (feature `proxy`): takes `Authorization: Bearer <key>` from
//! clients, signs each request with AWS SigV4 (or a configured upstream bearer key),
//! and forwards `POST /model/{modelId}/converse` and `/converse-stream`, and the
//! native-body routes `/invoke`, `/invoke-with-response-stream` and `/count-tokens`
//! (see `invoke.rs`), to Bedrock.
//!
//! ```text
//! client ──Bearer──► accept loop ──► proxy ──SigV4──► Bedrock
//!     (connection cap, header /        │ ◄── event-stream frames ──
//!      idle timeouts, HTTP/2 limits)   └── FrameValidator: each frame checked, forwarded as the
//!                                          same bytes through a bounded channel; corrupt / failed /
//!                                          idle upstream, unread or overlong reply ─► one
//!                                          `exception` frame (when it can be written), then end
//! ```
//!
//! - Only `POST /model/{modelId}/converse`, `/converse-stream`, `/invoke`,
//!   `/invoke-with-response-stream` and `/count-tokens` are forwarded (everything else
//!   is 404). An invoke body is passed through unchanged, with the service model's
//!   request headers and no others; a stream of either kind is validated frame by
//!   frame, and its usage counted per client key. The upstream host comes from config, never from the
//!   request: no open relay. A model id is one path segment: empty, `.` and `..` (in any
//!   encoding) are refused with a 400 `ValidationException`. Upstream redirects are
//!   never followed (a 3xx is a 502 naming the status).
//! - Client keys come from config and are compared in constant time; a missing,
//!   repeated or malformed `Authorization` is 401, an unknown key 403, both with a
//!   Bedrock-shaped JSON error. The client's `Authorization` is never forwarded.
//! - Limits ([`ProxyConfig`], [`ConnectionLimits`], [`ProxyTimeouts`]): connections
//!   (cap, header-read and keep-alive idle timeouts, HTTP/2 streams and reset floods),
//!   request body size (413) and upload time (408), concurrent upstream requests (429
//!   `ThrottlingException`), a budget for all buffered bodies (503), upstream timeouts
//!   (connect, first byte, idle, total) that hold whether or not the client reads.
//!   Memory per stream is bounded by the largest frame the [`Limits`](crate::eventstream::Limits) allow.
//! - `GET /metrics`: Prometheus text ([`Metrics`]), behind a key or on its own address.
//!
//! The pieces are usable in another service: [`FrameValidator`] (sans-IO) and
//! [`validate_body`] (a `Stream` adapter) are the validating pass-through; see
//! `examples/embed_passthrough.rs`.

mod config;
mod dialect;
mod invoke;
mod listener;
mod metrics;
mod operation;
mod passthrough;
mod relay;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[deprecated(note = "use `bedrock_converse::client::Auth`")]
/// The client's [`Auth`](crate::client::Auth), under its old gateway name.
pub type UpstreamAuth = crate::client::Auth;
pub use crate::tls::{TlsCertificate, TlsError, TlsSettings};
pub use config::{ClientKey, ConnectionLimits, ProxyConfig, ProxyTimeouts};
pub use dialect::ATTEMPTS as DIALECT_ATTEMPTS;
pub use metrics::{ConnectionClose, DialectRoute, Metrics, Rejection, StreamCut};
pub use passthrough::{exception_frame, validate_body, FrameValidator, StreamEnd, StreamSummary};

use crate::client::ClientError;
use crate::converse::TokenUsage;
use crate::invoke::InvokeResponseHeaders;
use operation::Operation;
use passthrough::ValidatedStream;

/// The event-stream content type.
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// Validated chunks queued between the upstream reader and the client's connection.
const STREAM_QUEUE: usize = 8;

/// Slices a buffered `/converse` answer is written in, so its budget share is held
/// until the client has taken (nearly) all of it.
const REPLY_SLICE: usize = 64 * 1024;

/// The gateway: configuration, the upstream HTTP client, the stream cap, the memory
/// budget and the counters. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    http: reqwest::Client,
    streams: Arc<Semaphore>,
    /// One permit per byte of buffered request or response body.
    budget: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstream", &self.inner.config.upstream_base)
            .field("client_keys", &self.inner.config.client_keys.len())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Builds the gateway.
    ///
    /// # Errors
    ///
    /// [`ClientError`] if the HTTP client cannot be built.
    pub fn new(config: ProxyConfig) -> Result<Proxy, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .tcp_nodelay(true)
            .timeout(config.timeouts.total)
            // Bedrock never redirects; following one would re-send the signed request
            // (and `x-amz-security-token`) to wherever `Location` points.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()
            .map_err(ClientError::HttpClient)?;
        let streams = Arc::new(Semaphore::new(
            config.max_concurrent_streams.clamp(1, Semaphore::MAX_PERMITS),
        ));
        let budget = Arc::new(Semaphore::new(
            config.max_buffered_bytes.min(Semaphore::MAX_PERMITS),
        ));
        Ok(Proxy {
            inner: Arc::new(Inner {
                config,
                http,
                streams,
                budget,
                metrics: Arc::new(Metrics::default()),
            }),
        })
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The axum router: the five Bedrock routes, `/metrics` (unless it has its own
    /// address, [`ProxyConfig::metrics_listen`]), and 404 for the rest.
    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/model/{model_id}/converse", post(converse))
            .route("/model/{model_id}/converse-stream", post(converse_stream))
            .route("/v1/chat/completions", post(dialect::chat_completions))
            .route("/v1/messages", post(dialect::messages))
            .route("/v1/models", get(dialect::list_models))
            .route("/model/{model_id}/invoke", post(invoke::invoke_model))
            .route(
                "/model/{model_id}/invoke-with-response-stream",
                post(invoke::invoke_model_with_response_stream),
            )
            .route("/model/{model_id}/count-tokens", post(invoke::count_tokens));
        let router = if self.inner.config.metrics_listen.is_none() {
            router.route("/metrics", get(metrics_with_key))
        } else {
            router
        };
        router
            .fallback(not_found)
            .method_not_allowed_fallback(not_found)
            .with_state(self.clone())
    }

    /// The router of the metrics address: `GET /metrics` without a key, 404 for the rest.
    pub fn metrics_router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics_text))
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes, with the connection limits of
    /// the config (over TLS when [`ProxyConfig::tls`] is set: the files are read first);
    /// then waits for open connections to finish their requests.
    ///
    /// # Errors
    ///
    /// I/O errors from the listener; an `InvalidInput` error wrapping the [`TlsError`]
    /// when the TLS files cannot be used (load them first with [`TlsCertificate::load`]
    /// and call [`serve_tls`](Self::serve_tls) to get the typed error).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let tls = match &self.inner.config.tls {
            None => None,
            Some(settings) => Some(
                TlsCertificate::load(settings)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            ),
        };
        self.serve_with(listener, tls, shutdown).await
    }

    /// Serves HTTPS on `listener` with `certificate` (ALPN `h2` and `http/1.1`; the
    /// certificate is reloaded when its files change or on SIGHUP), as
    /// [`serve`](Self::serve) does otherwise.
    ///
    /// # Errors
    ///
    /// I/O errors from the listener.
    pub async fn serve_tls(
        self,
        listener: tokio::net::TcpListener,
        certificate: TlsCertificate,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with(listener, Some(certificate), shutdown).await
    }

    async fn serve_with(
        self,
        listener: tokio::net::TcpListener,
        tls: Option<TlsCertificate>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let limits = self.listener_limits();
        let metrics = self.inner.metrics.clone();
        listener::serve(router, listener, limits, metrics, tls, shutdown).await
    }

    /// The connection limits, and the idle timeout as the longest a write to a client
    /// may stay pending.
    fn listener_limits(&self) -> listener::Limits {
        listener::Limits {
            connections: self.inner.config.connections,
            write_stall: self.inner.config.timeouts.idle,
        }
    }

    /// Serves [`metrics_router`](Self::metrics_router) on `listener` (the
    /// [`ProxyConfig::metrics_listen`] address) until `shutdown` completes.
    ///
    /// # Errors
    ///
    /// I/O errors from the listener.
    pub async fn serve_metrics(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.metrics_router();
        let limits = self.listener_limits();
        listener::serve(
            router,
            listener,
            limits,
            self.inner.metrics.clone(),
            None,
            shutdown,
        )
        .await
    }
}

/// A Bedrock-shaped error response: status, `x-amzn-errortype`, `{"message": ...}`.
fn error_response(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(error_type) {
        headers.insert("x-amzn-errortype", v);
    }
    response
}

async fn not_found(State(proxy): State<Proxy>) -> Response {
    refuse(&proxy, Rejection::NotFound)
}

async fn metrics_text(State(proxy): State<Proxy>) -> Response {
    let mut response = proxy.inner.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// `/metrics` on the client port: the metrics key, or any client key without one.
async fn metrics_with_key(State(proxy): State<Proxy>, headers: HeaderMap) -> Response {
    let allowed = match bearer_token(&headers) {
        Err(why) => Err(why),
        Ok(token) => match &proxy.inner.config.metrics_key {
            Some(key) if constant_time_eq(token.as_bytes(), key.as_bytes()) => Ok(()),
            Some(_) => Err(Rejection::UnknownKey),
            None => find_key(&proxy, token).map(|_| ()),
        },
    };
    match allowed {
        Ok(()) => metrics_text(State(proxy)).await,
        Err(why) => refuse(&proxy, why),
    }
}

async fn converse(State(proxy): State<Proxy>, Path(model_id): Path<String>, request: Request) -> Response {
    forward(proxy, model_id, request, Operation::Converse).await
}

async fn converse_stream(
    State(proxy): State<Proxy>,
    Path(model_id): Path<String>,
    request: Request,
) -> Response {
    forward(proxy, model_id, request, Operation::ConverseStream).await
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of the one `Authorization: Bearer <token>` header (RFC 9110 §11: the
/// scheme is case-insensitive, one or more spaces before a token68). None, two, or a
/// malformed one is [`Rejection::MissingKey`].
fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Rejection::MissingKey);
    };
    let value = value.to_str().map_err(|_| Rejection::MissingKey)?;
    let (scheme, rest) = value.split_once(' ').ok_or(Rejection::MissingKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::MissingKey);
    }
    let token = rest.trim_start_matches(' ');
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    if token.is_empty() || !token.bytes().all(token68) {
        return Err(Rejection::MissingKey);
    }
    Ok(token)
}

/// The id of the client key `presented`, or [`Rejection::UnknownKey`].
fn find_key<'a>(proxy: &'a Proxy, presented: &str) -> Result<&'a str, Rejection> {
    // Check every key (no early exit), so timing does not tell which key matched.
    let mut found = None;
    for key in &proxy.inner.config.client_keys {
        if constant_time_eq(presented.as_bytes(), key.secret.as_bytes()) && found.is_none() {
            found = Some(key.id.as_str());
        }
    }
    found.ok_or(Rejection::UnknownKey)
}

/// The id of the client key in `headers`, or why the request is refused.
fn authenticate<'a>(proxy: &'a Proxy, headers: &HeaderMap) -> Result<&'a str, Rejection> {
    find_key(proxy, bearer_token(headers)?)
}

/// What the gateway answers when it refuses a request itself: the status, the
/// Bedrock error type and a message naming the cause. Each route writes it in its own
/// dialect.
fn refusal(config: &ProxyConfig, why: Rejection) -> (StatusCode, &'static str, String) {
    let (status, error_type, message) = match why {
        Rejection::MissingKey => (
            StatusCode::UNAUTHORIZED,
            "UnrecognizedClientException",
            "missing Authorization: Bearer <key> (exactly one)",
        ),
        Rejection::UnknownKey => (
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the key in Authorization is not allowed to use this gateway",
        ),
        Rejection::NotFound => (
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "only POST /model/{modelId}/ converse, converse-stream, invoke, invoke-with-response-stream and count-tokens are served",
        ),
        Rejection::BodyTooLarge => {
            let max = config.max_body_bytes;
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                format!("request body exceeds this gateway's limit of {max} bytes"),
            );
        }
        Rejection::TooManyStreams => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "too many concurrent requests through this gateway; retry later",
        ),
        Rejection::BodyTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "ValidationException",
            "the request body did not arrive in time",
        ),
        Rejection::BodyReadFailed => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the request body could not be read",
        ),
        Rejection::InvalidModelId => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the model identifier must not be empty, `.` or `..`",
        ),
        Rejection::MemoryBudget => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "this gateway is buffering too much right now; retry later",
        ),
        Rejection::Untranslatable => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the request cannot be translated to Converse",
        ),
        Rejection::InvalidHeader => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "a request header cannot be forwarded",
        ),
    };
    (status, error_type, message.to_owned())
}

/// The Bedrock-shaped answer to a request the gateway refuses itself, counted.
fn refuse(proxy: &Proxy, why: Rejection) -> Response {
    proxy.inner.metrics.reject(why);
    let (status, error_type, message) = refusal(&proxy.inner.config, why);
    error_response(status, error_type, &message)
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge,
    Timeout,
    Broken,
    Budget,
}

/// Bytes of the memory budget, taken without waiting.
fn reserve(budget: &Arc<Semaphore>, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let Ok(n) = u32::try_from(n) else {
        return false;
    };
    match budget.clone().try_acquire_many_owned(n) {
        Ok(permit) => {
            match held {
                Some(h) => h.merge(permit),
                None => *held = Some(permit),
            }
            true
        }
        Err(_) => false,
    }
}

/// Reads a request body within `max` bytes, the budget and `deadline`.
async fn read_request_body(
    proxy: &Proxy,
    body: Body,
    declared: Option<usize>,
    deadline: tokio::time::Instant,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError> {
    let inner = &proxy.inner;
    let max = inner.config.max_body_bytes;
    let mut held = None;
    // A declared length is reserved before the first byte is read.
    if let Some(len) = declared {
        if !reserve(&inner.budget, &mut held, len) {
            return Err(BodyError::Budget);
        }
    }
    let mut reserved = declared.unwrap_or(0);
    let read = async {
        let mut stream = body.into_data_stream();
        let mut out = BytesMut::with_capacity(reserved.min(max));
        while let Some(chunk) = stream.next().await {
            // A client that went away or sent a bad chunk size.
            let chunk = chunk.map_err(|_| BodyError::Broken)?;
            let grown = out.len().saturating_add(chunk.len());
            if grown > max {
                return Err(BodyError::TooLarge);
            }
            if grown > reserved {
                if !reserve(&inner.budget, &mut held, grown - reserved) {
                    return Err(BodyError::Budget);
                }
                reserved = grown;
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(body)) => Ok((body, held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Timeout),
    }
}

/// The answer a step of [`forward`] gives instead of going on (boxed: a `Response` is
/// large, and the happy path should not carry its size).
type Refused = Box<Response>;

/// A request past the gateway's own checks: whose it is, where it goes, its slot and
/// its clock.
struct Admitted {
    key_id: String,
    model_id: String,
    operation: Operation,
    guard: InFlight,
    started: Instant,
    total_deadline: Option<tokio::time::Instant>,
    body_deadline: tokio::time::Instant,
}

/// Forwards one request of `operation`: admits it, reads its body, calls upstream and
/// relays the answer.
async fn forward(proxy: Proxy, model_id: String, request: Request, operation: Operation) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let key_id = match authenticate(&proxy, &parts.headers) {
        Ok(id) => id.to_owned(),
        Err(why) => return refuse(&proxy, why),
    };
    // `Path` percent-decoded the segment: `%2e%2E` is `..` here.
    if !ProxyConfig::model_id_allowed(&model_id) {
        return refuse(&proxy, Rejection::InvalidModelId);
    }
    let admitted = match admit(&proxy, key_id, model_id, operation, started) {
        Ok(a) => a,
        Err(why) => return refuse(&proxy, why),
    };
    let headers = match upstream_request_headers(&proxy, &parts.headers, operation) {
        Ok(h) => h,
        Err(refused) => return *refused,
    };
    let (body, body_budget) =
        match read_client_body(&proxy, &parts.headers, body, admitted.body_deadline).await {
            Ok(read) => read,
            Err(why) => return refuse(&proxy, why),
        };
    proxy.inner.metrics.request(operation);
    let upstream = call_upstream(&proxy, &admitted, &headers, body).await;
    drop(body_budget);
    match upstream {
        Ok(upstream) => relay(proxy, admitted, upstream, ClientSide::of(&parts)).await,
        Err(failed) => *failed,
    }
}

/// A stream slot for a request of `key_id` (429 past the cap: [`Rejection::TooManyStreams`])
/// and its clock: the total deadline, and the request body's. The shared admission of
/// every forwarding route; the caller answers a refusal in its own dialect.
fn admit(
    proxy: &Proxy,
    key_id: String,
    model_id: String,
    operation: Operation,
    started: Instant,
) -> Result<Admitted, Rejection> {
    let inner = &proxy.inner;
    let Ok(permit) = inner.streams.clone().try_acquire_owned() else {
        return Err(Rejection::TooManyStreams);
    };
    // The slot is taken: the gauge moves now, and the upload runs on the slot's clock.
    let guard = InFlight::new(proxy.clone(), permit);
    let now = tokio::time::Instant::now();
    let total_deadline = now.checked_add(inner.config.timeouts.total);
    let body_deadline = now
        .checked_add(inner.config.timeouts.request_body)
        .or(total_deadline)
        .unwrap_or_else(far_future);
    Ok(Admitted {
        key_id,
        model_id,
        operation,
        guard,
        started,
        total_deadline,
        body_deadline,
    })
}

/// The headers sent upstream besides the signature: `content-type: application/json`
/// on the Converse routes; on the invoke routes the service model's request headers,
/// as the client sent them, and no others.
fn upstream_request_headers(
    proxy: &Proxy,
    headers: &HeaderMap,
    operation: Operation,
) -> Result<Vec<(header::HeaderName, String)>, Refused> {
    match operation {
        Operation::Converse | Operation::ConverseStream => {
            Ok(vec![(header::CONTENT_TYPE, "application/json".to_owned())])
        }
        Operation::Invoke(_) => invoke::forwarded_headers(headers, operation)
            .inspect_err(|_| proxy.inner.metrics.reject(Rejection::InvalidHeader)),
    }
}

/// The request body, within the size cap, the memory budget and `deadline`, or why
/// it is refused (not yet counted: the caller answers in its own dialect).
async fn read_client_body(
    proxy: &Proxy,
    headers: &HeaderMap,
    body: Body,
    deadline: tokio::time::Instant,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Rejection> {
    let max_body = proxy.inner.config.max_body_bytes;
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|len| len > max_body) {
        return Err(Rejection::BodyTooLarge);
    }
    read_request_body(proxy, body, declared_len, deadline)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Rejection::BodyTooLarge,
            BodyError::Timeout => Rejection::BodyTimeout,
            BodyError::Broken => Rejection::BodyReadFailed,
            BodyError::Budget => Rejection::MemoryBudget,
        })
}

/// Sends the request upstream and takes the response head; a failure to get one, or a
/// redirect, is the answer to send instead. Upstream errors are counted and logged here.
async fn call_upstream(
    proxy: &Proxy,
    admitted: &Admitted,
    headers: &[(header::HeaderName, String)],
    body: Bytes,
) -> Result<reqwest::Response, Refused> {
    let inner = &proxy.inner;
    let (key_id, model_id) = (&admitted.key_id, &admitted.model_id);
    let url = inner
        .config
        .upstream_url(model_id, admitted.operation.path_suffix());
    tracing::debug!(key_id, model_id, url, "forwarding");
    let upstream = send_upstream(proxy, &url, headers, body)
        .await
        .map_err(|failure| {
            inner.metrics.upstream_error(&failure.error_type);
            tracing::warn!(
                key_id,
                model_id,
                error_type = failure.error_type,
                detail = failure.detail,
                "upstream request failed"
            );
            Box::new(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &failure.error_type,
                failure.message,
            ))
        })?;
    let status = upstream.status();
    if status.is_redirection() {
        // Never followed (see `Proxy::new`), and not passed on: the client would follow it.
        let message = format!(
            "upstream answered HTTP {}, a redirect; redirects are not followed",
            status.as_u16()
        );
        return Err(bad_gateway(admitted, "Redirect", &message, &message));
    }
    if !status.is_success() {
        let error_type = upstream
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(clean_error_type)
            .unwrap_or_else(|| format!("Http{}", status.as_u16()));
        inner.metrics.upstream_error(&error_type);
        tracing::info!(
            key_id,
            model_id,
            status = status.as_u16(),
            error_type,
            "upstream error"
        );
    }
    Ok(upstream)
}

/// Relays the upstream answer: a validated event stream, or a buffered body.
async fn relay(
    proxy: Proxy,
    admitted: Admitted,
    upstream: reqwest::Response,
    client: ClientSide,
) -> Response {
    let status = upstream.status();
    let operation = admitted.operation;
    let mut builder = Response::builder().status(status.as_u16());
    for name in operation.returned_response_headers() {
        if let Some(v) = upstream.headers().get(name) {
            builder = builder.header(name, v.as_bytes());
        }
    }
    let is_event_stream = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(EVENT_STREAM));
    let body = if operation.is_streaming() && status.is_success() && is_event_stream {
        let limits = proxy.inner.config.limits;
        let validator = match operation {
            Operation::Invoke(_) => FrameValidator::for_invoke_stream(limits),
            _ => FrameValidator::new(limits),
        };
        stream_body(admitted, upstream, validator, client)
    } else {
        match buffered(&proxy, admitted, upstream).await {
            Ok(body) => body,
            Err(failed) => return *failed,
        }
    };
    builder.body(body).unwrap_or_else(|_| {
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "the response could not be built",
        )
    })
}

/// A JSON answer (or an error body), read whole within the same cap as a frame and the
/// memory budget, to check it and log its usage.
async fn buffered(proxy: &Proxy, admitted: Admitted, upstream: reqwest::Response) -> Result<Body, Refused> {
    let inner = &proxy.inner;
    let status = upstream.status();
    let is_json = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let usage_headers = InvokeResponseHeaders::from_headers(
        crate::invoke::Route::InvokeModel,
        upstream
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    let cap = usize::try_from(inner.config.limits.max_frame_len()).unwrap_or(usize::MAX);
    let read = read_capped(proxy, upstream, cap);
    let read = match admitted.total_deadline {
        Some(at) => tokio::time::timeout_at(at, read)
            .await
            .unwrap_or(Err(ReadError::Broken("the total timeout passed".to_owned()))),
        None => read.await,
    };
    let (bytes, budget) = match read {
        Ok(read) => read,
        Err(ReadError::Budget) => return Err(Box::new(refuse(proxy, Rejection::MemoryBudget))),
        Err(ReadError::Broken(why)) => {
            return Err(bad_gateway(
                &admitted,
                "ReadFailed",
                &why,
                "reading the upstream response failed",
            ))
        }
    };
    // A 200 JSON answer that is not one complete JSON value (cut short upstream) would
    // reach SDKs as an empty success. The Converse and CountTokens answers are JSON
    // whatever their content type says; an InvokeModel body is the model's own.
    let must_be_json = is_json
        || matches!(
            admitted.operation,
            Operation::Converse | Operation::Invoke(crate::invoke::Route::CountTokens)
        );
    if status.is_success() && must_be_json && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err()
    {
        let detail = format!("{} bytes, not one complete JSON value", bytes.len());
        return Err(bad_gateway(
            &admitted,
            "IncompleteJson",
            &detail,
            "the upstream answer was cut short",
        ));
    }
    if status.is_success() {
        let usage = match admitted.operation {
            Operation::Invoke(route) => invoke::buffered_usage(route, &usage_headers, &bytes),
            _ => converse_usage(&bytes),
        };
        log_buffered(&admitted, usage.as_ref());
    }
    drop(admitted);
    Ok(budgeted_body(bytes, budget))
}

/// An instant no deadline reaches (about 30 years on).
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86400 * 365 * 30)
}

/// Counts and logs a forwarded stream once it has ended, then frees its slot.
fn on_stream_end(admitted: Admitted) -> impl FnOnce(StreamSummary) + Send + 'static {
    move |summary: StreamSummary| {
        let Admitted {
            key_id,
            model_id,
            operation,
            guard,
            started,
            ..
        } = admitted;
        let metrics = &guard.proxy.inner.metrics;
        metrics.forwarded(summary.frames, summary.bytes);
        if let Some(u) = &summary.usage {
            metrics.tokens(&key_id, operation, u.input_tokens, u.output_tokens);
        }
        let latency_ms = started.elapsed().as_millis() as u64;
        let operation = operation.path_suffix();
        if summary.end == StreamEnd::Complete {
            tracing::info!(
                key_id,
                model_id,
                operation,
                frames = summary.frames,
                bytes = summary.bytes,
                input_tokens = summary.usage.as_ref().map(|u| u.input_tokens),
                output_tokens = summary.usage.as_ref().map(|u| u.output_tokens),
                latency_ms,
                "stream forwarded"
            );
        } else {
            metrics.upstream_error("StreamInterrupted");
            tracing::warn!(
                key_id,
                model_id,
                operation,
                frames = summary.frames,
                bytes = summary.bytes,
                latency_ms,
                end = ?summary.end,
                "stream failed"
            );
        }
        drop(guard);
    }
}

/// The client's body of a validated event stream: pulled inline by hyper, except over
/// HTTP/2 where a task of its own pumps it (see `relay.rs`).
fn stream_body(
    admitted: Admitted,
    upstream: reqwest::Response,
    validator: FrameValidator,
    client: ClientSide,
) -> Body {
    let proxy = admitted.guard.proxy.clone();
    let idle = proxy.inner.config.timeouts.idle;
    let log = relay::CutLog {
        proxy,
        key_id: admitted.key_id.clone(),
        model_id: admitted.model_id.clone(),
    };
    let deadline = admitted.total_deadline;
    let stream = ValidatedStream::new(upstream.bytes_stream(), validator, idle, on_stream_end(admitted));
    let body = relay::RelayBody::new(stream, deadline, log, client.stall);
    if client.http2 {
        relay::pumped(body, idle)
    } else {
        Body::new(body)
    }
}

/// What the handler knows of the client's connection.
struct ClientSide {
    /// HTTP/2: a stream can stall on its own window.
    http2: bool,
    /// Set by the listener when the connection stalled (absent outside it).
    stall: Option<listener::WriteStall>,
}

impl ClientSide {
    fn of(parts: &axum::http::request::Parts) -> ClientSide {
        ClientSide {
            http2: parts.version == axum::http::Version::HTTP_2,
            stall: parts.extensions.get::<listener::WriteStall>().cloned(),
        }
    }
}

/// The client's body of a stream pumped through `rx`: it ends cleanly when the pump
/// set `clean` before closing the queue, and with an error (the connection broken
/// off, so a cut stream is never taken for a whole one) otherwise.
fn queued_body(rx: tokio::sync::mpsc::Receiver<Bytes>, clean: Arc<AtomicBool>) -> Body {
    let stream = futures_util::stream::unfold(Some((rx, clean)), |state| async move {
        let (mut rx, clean) = state?;
        match rx.recv().await {
            Some(bytes) => Some((Ok(bytes), Some((rx, clean)))),
            None if clean.load(Ordering::Acquire) => None,
            None => Some((Err(std::io::Error::other("stream cut by the gateway")), None)),
        }
    });
    Body::from_stream(stream)
}

/// Why an upstream body could not be buffered.
enum ReadError {
    Budget,
    Broken(String),
}

/// Reads a whole upstream body within `cap` bytes and the memory budget.
async fn read_capped(
    proxy: &Proxy,
    mut upstream: reqwest::Response,
    cap: usize,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ReadError> {
    let budget = &proxy.inner.budget;
    let mut held = None;
    let mut body = BytesMut::new();
    // A declared length within the cap is reserved at once.
    let mut reserved = 0;
    if let Some(len) = upstream.content_length().and_then(|l| usize::try_from(l).ok()) {
        if len <= cap {
            if !reserve(budget, &mut held, len) {
                return Err(ReadError::Budget);
            }
            reserved = len;
            body.reserve(len);
        }
    }
    while let Some(chunk) = upstream
        .chunk()
        .await
        .map_err(|e| ReadError::Broken(e.without_url().to_string()))?
    {
        let grown = body.len().saturating_add(chunk.len());
        if grown > cap {
            return Err(ReadError::Broken(format!("the body exceeds {cap} bytes")));
        }
        if grown > reserved {
            if !reserve(budget, &mut held, grown - reserved) {
                return Err(ReadError::Budget);
            }
            reserved = grown;
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), held))
}

/// A buffered answer written in slices; its share of the budget is given back once the
/// last slice is taken (or the client goes away).
fn budgeted_body(bytes: Bytes, budget: Option<OwnedSemaphorePermit>) -> Body {
    if budget.is_none() || bytes.len() <= REPLY_SLICE {
        return Body::from(bytes);
    }
    let slices = futures_util::stream::unfold((bytes, budget), |(mut rest, budget)| async move {
        if rest.is_empty() {
            return None;
        }
        let slice = rest.split_to(rest.len().min(REPLY_SLICE));
        Some((Ok::<_, std::convert::Infallible>(slice), (rest, budget)))
    });
    Body::from_stream(slices)
}

/// Holds the stream permit and the in-flight gauge for one forwarded request.
struct InFlight {
    proxy: Proxy,
    _permit: OwnedSemaphorePermit,
}

impl InFlight {
    fn new(proxy: Proxy, permit: OwnedSemaphorePermit) -> InFlight {
        proxy.inner.metrics.stream_started();
        InFlight {
            proxy,
            _permit: permit,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.proxy.inner.metrics.stream_ended();
    }
}

/// The `usage` of a Converse answer.
fn converse_usage(body: &[u8]) -> Option<TokenUsage> {
    #[derive(serde::Deserialize)]
    struct Body {
        usage: Option<TokenUsage>,
    }
    serde_json::from_slice::<Body>(body).ok().and_then(|b| b.usage)
}

/// Logs a buffered answer (one line: key, model, operation, tokens, latency) and
/// counts its tokens for the key: a native route's, or a dialect route's `/converse`
/// answer. A `count-tokens` answer is logged with the count it gave, but counts
/// nothing: no tokens were spent.
fn log_buffered(admitted: &Admitted, usage: Option<&TokenUsage>) {
    let operation = admitted.operation;
    if let (Some(u), false) = (
        usage,
        operation == Operation::Invoke(crate::invoke::Route::CountTokens),
    ) {
        admitted.guard.proxy.inner.metrics.tokens(
            &admitted.key_id,
            operation,
            u.input_tokens,
            u.output_tokens,
        );
    }
    let operation = operation.path_suffix();
    tracing::info!(
        key_id = admitted.key_id,
        model_id = admitted.model_id,
        operation,
        input_tokens = usage.map(|u| u.input_tokens),
        output_tokens = usage.map(|u| u.output_tokens),
        latency_ms = admitted.started.elapsed().as_millis() as u64,
        "{operation} forwarded"
    );
}

/// Counts an upstream fault under `kind` and logs it, with `detail`, for the request's
/// key and model. Each route then answers in its own dialect.
fn upstream_fault(admitted: &Admitted, kind: &str, detail: &str) {
    admitted.guard.proxy.inner.metrics.upstream_error(kind);
    tracing::warn!(
        key_id = admitted.key_id,
        model_id = admitted.model_id,
        kind,
        detail,
        "upstream fault"
    );
}

/// An upstream fault answered with a Bedrock-shaped 502 carrying `message`.
fn bad_gateway(admitted: &Admitted, kind: &str, detail: &str, message: &str) -> Refused {
    upstream_fault(admitted, kind, detail);
    Box::new(error_response(
        StatusCode::BAD_GATEWAY,
        "ServiceUnavailableException",
        message,
    ))
}

/// The message a client is told when the gateway cuts its stream.
fn cut_message(why: StreamCut, idle: std::time::Duration) -> String {
    match why {
        StreamCut::SlowReader => format!("the client read nothing for {} ms", idle.as_millis()),
        StreamCut::Total => "the request exceeded this gateway's total timeout".to_owned(),
    }
}

/// `x-amzn-errortype` without its namespace suffix (`ValidationException:http://...`).
fn clean_error_type(raw: &str) -> String {
    let no_suffix = raw.split(':').next().unwrap_or(raw);
    no_suffix.rsplit('#').next().unwrap_or(no_suffix).to_owned()
}

/// An upstream call that produced no response: the type and message the client sees
/// (no upstream address in them) and the detail for the log.
struct UpstreamFailure {
    error_type: String,
    message: &'static str,
    detail: String,
}

/// Sends the request upstream, signed, and waits for the response head (bounded by the
/// first-byte timeout).
async fn send_upstream(
    proxy: &Proxy,
    url: &str,
    forwarded: &[(header::HeaderName, String)],
    body: Bytes,
) -> Result<reqwest::Response, UpstreamFailure> {
    let config = &proxy.inner.config;
    // The forwarded headers are signed too, so that none can be changed on the way.
    let signed: Vec<(&str, &str)> = forwarded
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let headers = config
        .upstream_auth
        .headers("POST", url, &signed, &body, std::time::SystemTime::now())
        .map_err(|e| UpstreamFailure {
            error_type: "SigningFailed".to_owned(),
            message: "the gateway could not sign the upstream request",
            detail: e.to_string(),
        })?;
    let mut request = proxy.inner.http.post(url).body(body);
    for (name, value) in forwarded {
        request = request.header(name, value);
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match tokio::time::timeout(config.timeouts.first_byte, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(UpstreamFailure {
            error_type: "ServiceUnavailableException".to_owned(),
            message: "the upstream could not be reached",
            detail: e.without_url().to_string(),
        }),
        Err(_) => Err(UpstreamFailure {
            error_type: "ServiceUnavailableException".to_owned(),
            message: "the upstream sent no response in time",
            detail: format!(
                "no response head within {} ms",
                config.timeouts.first_byte.as_millis()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_matches_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn error_types_are_cleaned() {
        assert_eq!(
            clean_error_type("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            "ValidationException"
        );
        assert_eq!(
            clean_error_type("aws.protocols#ThrottlingException"),
            "ThrottlingException"
        );
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_parsing_follows_rfc_9110() {
        // Old code: `BEARER k` was refused, the first of two headers won, and the
        // token was trimmed.
        for ok in ["Bearer k1", "bearer k1", "BEARER k1", "bEaReR   k1"] {
            assert_eq!(bearer_token(&headers(&[ok])), Ok("k1"), "{ok}");
        }
        assert_eq!(bearer_token(&headers(&["Bearer abc+/=="])), Ok("abc+/=="));
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic k1",
            "Bearerk1",
            "Bearer k1 k2",
            "Bearer k\t1",
        ] {
            assert_eq!(
                bearer_token(&headers(&[bad])),
                Err(Rejection::MissingKey),
                "{bad:?}"
            );
        }
        assert_eq!(
            bearer_token(&headers(&["Bearer k1", "Bearer k2"])),
            Err(Rejection::MissingKey)
        );
        assert_eq!(bearer_token(&HeaderMap::new()), Err(Rejection::MissingKey));
    }

    #[test]
    fn dot_segments_are_not_model_ids() {
        for bad in ["", ".", ".."] {
            assert!(!ProxyConfig::model_id_allowed(bad), "{bad:?}");
        }
        for ok in ["...", ".a", "a..b", "us.anthropic.claude-v2:0", "a/b"] {
            assert!(ProxyConfig::model_id_allowed(ok), "{ok:?}");
        }
    }
}
