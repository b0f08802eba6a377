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

mod admission;
mod config;
mod dialect;
mod invoke;
mod listener;
mod log;
mod metrics;
mod operation;
mod passthrough;
mod quiet;
mod relay;
mod upstream;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Semaphore;

#[deprecated(note = "use `bedrock_converse::client::Auth`")]
/// The client's [`Auth`](crate::client::Auth), under its old gateway name.
pub type UpstreamAuth = crate::client::Auth;
pub use crate::tls::{TlsCertificate, TlsError, TlsSettings};
pub use config::{ClientKey, ConnectionLimits, ProxyConfig, ProxyTimeouts};
pub use dialect::ATTEMPTS as DIALECT_ATTEMPTS;
pub use metrics::{ConnectionClose, DialectRoute, Metrics, Rejection, StreamCut};
pub use passthrough::{exception_frame, validate_body, FrameValidator, StreamEnd, StreamSummary};

use crate::client::ClientError;
use admission::{
    admit, authenticate, bearer_token, constant_time_eq, find_key, read_client_body, refusal, refuse,
    Admitted,
};
use log::{log_buffered, upstream_fault};
use operation::Operation;
use relay::{converse_usage, relay, ClientSide};
use upstream::{
    call_upstream, read_capped, send_admitted, upstream_error_type, upstream_request_headers, ReadError,
    Target, UpstreamClient,
};
// For the dialect routes and the pieces shared with them.
use admission::far_future;
use log::cut_message;

/// The event-stream content type.
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// Validated chunks queued between the upstream reader and the client's connection.
const STREAM_QUEUE: usize = 8;

/// The gateway: configuration, the upstream HTTP client, the stream cap, the memory
/// budget and the counters. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    /// The upstream client (its own pool; HTTP/1 connections driven by the bodies).
    upstream: UpstreamClient,
    /// The configured upstream, parsed once (`None`: not an `http(s)://` URL, and
    /// every request answered so).
    target: Option<Target>,
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
    /// None today: the upstream client (its own HTTP/1, hyper's HTTP/2, a pool of its
    /// own) cannot fail to build; an upstream URL that is not `http(s)://host/...` is
    /// answered per request (503). The [`ClientError`] stays in the signature for callers.
    pub fn new(config: ProxyConfig) -> Result<Proxy, ClientError> {
        // Redirects are never followed: following one would re-send the signed request
        // (and `x-amz-security-token`) to wherever `Location` points.
        let upstream = UpstreamClient::new(config.timeouts.connect);
        let target = Target::parse(&config.upstream_base).ok();
        let streams = Arc::new(Semaphore::new(
            config.max_concurrent_streams.clamp(1, Semaphore::MAX_PERMITS),
        ));
        let budget = Arc::new(Semaphore::new(
            config.max_buffered_bytes.min(Semaphore::MAX_PERMITS),
        ));
        Ok(Proxy {
            inner: Arc::new(Inner {
                config,
                upstream,
                target,
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

/// The answer a step of [`forward`] gives instead of going on (boxed: a `Response` is
/// large, and the happy path should not carry its size).
type Refused = Box<Response>;

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
    let upstream = call_upstream(&admitted, &headers, body).await;
    drop(body_budget);
    match upstream {
        Ok(upstream) => relay(proxy, admitted, upstream, ClientSide::of(&parts)).await,
        Err(failed) => *failed,
    }
}
