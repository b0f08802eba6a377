//! The signing gateway (feature `proxy`): takes `Authorization: Bearer <key>` from
//! clients, signs each request with AWS SigV4 (or a configured upstream bearer key),
//! and forwards `POST /model/{modelId}/converse` and `/converse-stream` to Bedrock.
//!
//! ```text
//! client ──Bearer──► proxy ──SigV4──► Bedrock
//!                      │ ◄── event-stream frames ──
//!                      └── FrameValidator: each frame checked, forwarded as the same bytes;
//!                          corrupt / failed / idle upstream ─► one `exception` frame, then end
//! ```
//!
//! - Only `POST /model/{modelId}/converse` and `/converse-stream` are forwarded
//!   (everything else is 404). The upstream host comes from config, never from the
//!   request: no open relay.
//! - Client keys come from config and are compared in constant time; a missing key is
//!   401, an unknown one 403, both with a Bedrock-shaped JSON error. The client's
//!   `Authorization` is never forwarded.
//! - Limits: request body size (413), concurrent upstream requests (429
//!   `ThrottlingException`), upstream timeouts (connect, first byte, idle, total).
//!   Memory per stream is bounded by the largest frame the [`Limits`] allow.
//! - `GET /metrics`: Prometheus text ([`Metrics`]).
//!
//! The pieces are usable in another service: [`FrameValidator`] (sans-IO) and
//! [`validate_body`] (a `Stream` adapter) are the validating pass-through; see
//! `examples/embed_passthrough.rs`.

mod config;
mod metrics;
mod passthrough;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use tokio::sync::Semaphore;

pub use crate::client::auth::Auth as UpstreamAuth;
pub use config::{ClientKey, ProxyConfig, ProxyTimeouts};
pub use metrics::{Metrics, Rejection};
pub use passthrough::{exception_frame, validate_body, FrameValidator, StreamEnd, StreamSummary};

use crate::client::ClientError;
use crate::eventstream::Limits;

/// The event-stream content type.
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// Response headers copied from upstream to the client.
const FORWARDED_RESPONSE_HEADERS: [&str; 4] = [
    "content-type",
    "x-amzn-requestid",
    "x-amzn-errortype",
    "x-amzn-bedrock-trace",
];

/// The gateway: configuration, the upstream HTTP client, the stream cap and the
/// counters. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    http: reqwest::Client,
    streams: Arc<Semaphore>,
    metrics: Metrics,
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
            .build()
            .map_err(ClientError::HttpClient)?;
        let streams = Arc::new(Semaphore::new(config.max_concurrent_streams));
        Ok(Proxy {
            inner: Arc::new(Inner {
                config,
                http,
                streams,
                metrics: Metrics::default(),
            }),
        })
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The axum router: the two Bedrock routes, `/metrics`, and 404 for the rest.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/model/{model_id}/converse", post(converse))
            .route("/model/{model_id}/converse-stream", post(converse_stream))
            .route("/metrics", get(metrics_text))
            .fallback(not_found)
            .method_not_allowed_fallback(not_found)
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes.
    ///
    /// # Errors
    ///
    /// I/O errors from the listener.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Frames are small and latency-sensitive: no Nagle delay on client sockets.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
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
    proxy.inner.metrics.reject(Rejection::NotFound);
    error_response(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "only POST /model/{modelId}/converse and /model/{modelId}/converse-stream are served",
    )
}

async fn metrics_text(State(proxy): State<Proxy>) -> Response {
    let mut response = proxy.inner.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

async fn converse(state: State<Proxy>, path: Path<String>, request: Request) -> Response {
    forward(state, path, request, false).await
}

async fn converse_stream(state: State<Proxy>, path: Path<String>, request: Request) -> Response {
    forward(state, path, request, true).await
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The id of the client key in `headers`, or why the request is refused.
fn authenticate<'a>(proxy: &'a Proxy, headers: &HeaderMap) -> Result<&'a str, Rejection> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(Rejection::MissingKey)?;
    // Check every key (no early exit), so timing does not tell which key matched.
    let mut found = None;
    for key in &proxy.inner.config.client_keys {
        if constant_time_eq(presented.as_bytes(), key.secret.as_bytes()) && found.is_none() {
            found = Some(key.id.as_str());
        }
    }
    found.ok_or(Rejection::UnknownKey)
}

/// The Bedrock-shaped answer to a refused key.
fn refuse(proxy: &Proxy, why: Rejection) -> Response {
    proxy.inner.metrics.reject(why);
    match why {
        Rejection::MissingKey => error_response(
            StatusCode::UNAUTHORIZED,
            "UnrecognizedClientException",
            "missing Authorization: Bearer <key>",
        ),
        _ => error_response(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the key in Authorization is not allowed to use this gateway",
        ),
    }
}

async fn forward(
    State(proxy): State<Proxy>,
    Path(model_id): Path<String>,
    request: Request,
    stream: bool,
) -> Response {
    let started = Instant::now();
    let inner = &proxy.inner;
    let key_id = match authenticate(&proxy, request.headers()) {
        Ok(id) => id.to_owned(),
        Err(why) => return refuse(&proxy, why),
    };
    let Ok(permit) = inner.streams.clone().try_acquire_owned() else {
        inner.metrics.reject(Rejection::TooManyStreams);
        return error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "too many concurrent requests through this gateway; retry later",
        );
    };
    let max_body = inner.config.max_body_bytes;
    let declared_len = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|len| len > max_body) {
        inner.metrics.reject(Rejection::BodyTooLarge);
        return body_too_large(max_body);
    }
    // A client that trickles its body must not hold a stream slot forever.
    let read = axum::body::to_bytes(request.into_body(), max_body);
    let body = match tokio::time::timeout(inner.config.timeouts.first_byte, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            inner.metrics.reject(Rejection::BodyTooLarge);
            return body_too_large(max_body);
        }
        Err(_) => {
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                "ValidationException",
                "the request body did not arrive in time",
            );
        }
    };
    inner.metrics.request(stream);
    inner.metrics.stream_started();
    let guard = InFlight {
        proxy: proxy.clone(),
        _permit: permit,
    };

    let operation = if stream { "converse-stream" } else { "converse" };
    let url = inner.config.upstream_url(&model_id, operation);
    tracing::debug!(key_id, model_id, url, "forwarding");
    let upstream = match send_upstream(&proxy, &url, body).await {
        Ok(r) => r,
        Err((error_type, message)) => {
            inner.metrics.upstream_error(&error_type);
            tracing::warn!(key_id, model_id, error_type, message, "upstream request failed");
            return error_response(StatusCode::SERVICE_UNAVAILABLE, &error_type, &message);
        }
    };
    let status = upstream.status();
    let mut builder = Response::builder().status(status.as_u16());
    for name in FORWARDED_RESPONSE_HEADERS {
        if let Some(v) = upstream.headers().get(name) {
            builder = builder.header(name, v.as_bytes());
        }
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
    let is_event_stream = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(EVENT_STREAM));
    let body = if stream && status.is_success() && is_event_stream {
        let model = model_id.clone();
        let on_end = move |summary: StreamSummary| {
            let metrics = &guard.proxy.inner.metrics;
            metrics.forwarded(summary.frames, summary.bytes);
            if let Some(u) = &summary.usage {
                metrics.tokens(u.input_tokens, u.output_tokens);
            }
            if summary.end != StreamEnd::Complete {
                metrics.upstream_error("StreamInterrupted");
            }
            tracing::info!(
                key_id,
                model_id = model,
                frames = summary.frames,
                bytes = summary.bytes,
                input_tokens = summary.usage.as_ref().map(|u| u.input_tokens),
                output_tokens = summary.usage.as_ref().map(|u| u.output_tokens),
                latency_ms = started.elapsed().as_millis() as u64,
                end = ?summary.end,
                "stream forwarded"
            );
            drop(guard);
        };
        let limits: Limits = inner.config.limits;
        Body::from_stream(validate_body(
            upstream.bytes_stream(),
            limits,
            inner.config.timeouts.idle,
            on_end,
        ))
    } else {
        // A JSON answer (or an error body): read it whole, within the same cap as a
        // frame, to log usage.
        let cap = usize::try_from(inner.config.limits.max_frame_len()).unwrap_or(usize::MAX);
        match read_capped(upstream, cap).await {
            Ok(bytes) => {
                log_converse_usage(&guard.proxy, &key_id, &model_id, &bytes, started);
                drop(guard);
                Body::from(bytes)
            }
            Err(why) => {
                inner.metrics.upstream_error("ReadFailed");
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    "ServiceUnavailableException",
                    &format!("reading the upstream response failed: {why}"),
                );
            }
        }
    };
    builder.body(body).unwrap_or_else(|e| {
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            &e.to_string(),
        )
    })
}

/// Reads a whole upstream body, refusing one longer than `cap` bytes.
async fn read_capped(mut upstream: reqwest::Response, cap: usize) -> Result<Bytes, String> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = upstream.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > cap {
            return Err(format!("the body exceeds {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn body_too_large(max: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ValidationException",
        &format!("request body exceeds this gateway's limit of {max} bytes"),
    )
}

/// Holds the stream permit and the in-flight gauge for one forwarded request.
struct InFlight {
    proxy: Proxy,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.proxy.inner.metrics.stream_ended();
    }
}

fn log_converse_usage(proxy: &Proxy, key_id: &str, model_id: &str, body: &Bytes, started: Instant) {
    #[derive(serde::Deserialize)]
    struct Body {
        usage: Option<crate::converse::TokenUsage>,
    }
    let usage = serde_json::from_slice::<Body>(body).ok().and_then(|b| b.usage);
    if let Some(u) = &usage {
        proxy.inner.metrics.tokens(u.input_tokens, u.output_tokens);
    }
    tracing::info!(
        key_id,
        model_id,
        input_tokens = usage.as_ref().map(|u| u.input_tokens),
        output_tokens = usage.as_ref().map(|u| u.output_tokens),
        latency_ms = started.elapsed().as_millis() as u64,
        "converse forwarded"
    );
}

/// `x-amzn-errortype` without its namespace suffix (`ValidationException:http://...`).
fn clean_error_type(raw: &str) -> String {
    let no_suffix = raw.split(':').next().unwrap_or(raw);
    no_suffix.rsplit('#').next().unwrap_or(no_suffix).to_owned()
}

/// Sends the request upstream, signed, and waits for the response head (bounded by the
/// first-byte timeout). Errors are `(error type, message)` for a 503.
async fn send_upstream(proxy: &Proxy, url: &str, body: Bytes) -> Result<reqwest::Response, (String, String)> {
    let config = &proxy.inner.config;
    let headers = config
        .upstream_auth
        .headers(
            "POST",
            url,
            &[("content-type", "application/json")],
            &body,
            std::time::SystemTime::now(),
        )
        .map_err(|e| ("SigningFailed".to_owned(), e.to_string()))?;
    let mut request = proxy
        .inner
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match tokio::time::timeout(config.timeouts.first_byte, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(("ServiceUnavailableException".to_owned(), format!("upstream: {e}"))),
        Err(_) => Err((
            "ServiceUnavailableException".to_owned(),
            format!(
                "upstream sent no response within {} ms",
                config.timeouts.first_byte.as_millis()
            ),
        )),
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
}
