//! The clients' dialects on the gateway: `POST /v1/chat/completions` (OpenAI Chat
//! Completions), `POST /v1/messages` (Anthropic Messages) and `GET /v1/models`.
//!
//! A thin HTTP shell over the sans-IO [`translate`](crate::translate) layer:
//!
//! ```text
//! client ──dialect JSON──► key check ─► admit (slot, body, budget) ─► translate_request
//!        ─► model name resolved as the client does (aliases, region prefix)
//!        ─► SigV4 ─► /converse-stream ─► Framer ─► StreamAssembler ─► dialect SSE writer ─► client
//!                    /converse        ─► ConverseResponse ─► dialect JSON ─────────────────► client
//! ```
//!
//! - Keys: `Authorization: Bearer` (both dialects) or `x-api-key` (Anthropic, and
//!   `/v1/models`); the same client keys, limits, metrics and usage logs as the native
//!   routes.
//! - A stream's response head waits for the first translated bytes: until then an
//!   upstream HTTP error or an exception frame is retried when it is retryable (at most
//!   [`ATTEMPTS`] tries), else answered with the dialect's status and error JSON. Once
//!   bytes reached the client, a failure ends the SSE stream with the dialect's error
//!   event after everything valid before it, and is never retried.
//! - The Anthropic stream gets `event: ping` whenever upstream is quiet for the ping
//!   interval (the shorter of 10 s and half the idle timeout).

mod body;
mod models;
mod stream;
mod translation;

use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::listener::WriteStall;
use super::upstream::UpstreamResponse;
use super::{
    admit, authenticate, find_key, read_capped, read_client_body, send_admitted, upstream_error_type,
};
use super::{converse_usage, log_buffered, refusal, upstream_fault};
use super::{Admitted, DialectRoute, Operation, Proxy, ReadError, Rejection};
use crate::converse::ConverseResponse;
use crate::translate::{anthropic, openai, ApiError, ErrorClass, TranslateError, Translated};

pub(super) use models::list_models;

/// Upstream tries of one request while nothing has reached the client.
pub const ATTEMPTS: u32 = 3;

/// The pause before the second and the third try.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(200)];

/// A client's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    OpenAi,
    Anthropic,
}

impl Dialect {
    fn route(self) -> DialectRoute {
        match self {
            Dialect::OpenAi => DialectRoute::ChatCompletions,
            Dialect::Anthropic => DialectRoute::Messages,
        }
    }

    fn translate(self, body: &[u8]) -> Result<Translated, TranslateError> {
        match self {
            Dialect::OpenAi => openai::translate_request(body),
            Dialect::Anthropic => anthropic::translate_request(body),
        }
    }

    /// A fresh response id: `chatcmpl-…` or `msg_…`.
    fn new_id(self) -> String {
        let prefix = match self {
            Dialect::OpenAi => "chatcmpl-",
            Dialect::Anthropic => "msg_",
        };
        let mut id = String::with_capacity(prefix.len() + 24);
        id.push_str(prefix);
        for _ in 0..24 {
            id.push(fastrand::alphanumeric());
        }
        id
    }

    /// The dialect's error response: its status and error JSON.
    fn error_response(self, err: &ApiError) -> Response {
        let (status, body) = match self {
            Dialect::OpenAi => openai::error_json(err),
            Dialect::Anthropic => anthropic::error_json(err),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(status, body)
    }

    /// The `stream: false` answer.
    fn response_json(self, response: &ConverseResponse, id: &str, model: &str) -> Result<Vec<u8>, ApiError> {
        match self {
            Dialect::OpenAi => openai::chat_completion_json(response, id, model, unix_now()),
            Dialect::Anthropic => anthropic::message_json(response, id, model),
        }
    }

    /// The id of the client key in `headers`: `Authorization: Bearer`, or for Anthropic
    /// clients `x-api-key` (exactly one) when present.
    fn client_key<'a>(self, proxy: &'a Proxy, headers: &HeaderMap) -> Result<&'a str, Rejection> {
        if self == Dialect::Anthropic {
            let mut keys = headers.get_all("x-api-key").iter();
            if let Some(key) = keys.next() {
                if keys.next().is_some() {
                    return Err(Rejection::MissingKey);
                }
                let key = key.to_str().map_err(|_| Rejection::MissingKey)?;
                return find_key(proxy, key);
            }
        }
        authenticate(proxy, headers)
    }

    /// The dialect's answer to a request the gateway refuses itself, counted: the
    /// status and message of the native routes' refusal (the gateway's own [`refusal`]
    /// table), in the dialect's error JSON; the key messages name the dialect's headers.
    fn refuse(self, proxy: &Proxy, why: Rejection) -> Response {
        proxy.inner.metrics.reject(why);
        let err = match (why, self) {
            (Rejection::MissingKey, Dialect::OpenAi) => ApiError::new(
                ErrorClass::Authentication,
                "missing Authorization: Bearer <key> (exactly one)",
            ),
            (Rejection::MissingKey, Dialect::Anthropic) => ApiError::new(
                ErrorClass::Authentication,
                "missing x-api-key or Authorization: Bearer <key> (exactly one)",
            ),
            (Rejection::UnknownKey, _) => ApiError::new(
                ErrorClass::PermissionDenied,
                "the key presented is not allowed to use this gateway",
            ),
            _ => {
                let (status, error_type, message) = refusal(&proxy.inner.config, why);
                ApiError::new(
                    ErrorClass::from_bedrock(status.as_u16(), Some(error_type)),
                    message,
                )
            }
        };
        self.error_response(&err)
    }
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat_completions(State(proxy): State<Proxy>, request: Request) -> Response {
    serve(proxy, Dialect::OpenAi, request).await
}

/// `POST /v1/messages`.
pub(super) async fn messages(State(proxy): State<Proxy>, request: Request) -> Response {
    serve(proxy, Dialect::Anthropic, request).await
}

/// One dialect request: key, admission, translation, model, then the upstream call.
async fn serve(proxy: Proxy, dialect: Dialect, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let key_id = match dialect.client_key(&proxy, &parts.headers) {
        Ok(id) => id.to_owned(),
        Err(why) => return dialect.refuse(&proxy, why),
    };
    proxy.inner.metrics.dialect_request(dialect.route());
    // The model and the operation are named once the body is translated.
    let mut admitted = match admit(&proxy, key_id, String::new(), Operation::Converse, started) {
        Ok(admitted) => admitted,
        Err(why) => return dialect.refuse(&proxy, why),
    };
    let (body, body_budget) =
        match read_client_body(&proxy, &parts.headers, body, admitted.body_deadline).await {
            Ok(read) => read,
            Err(why) => return dialect.refuse(&proxy, why),
        };
    let translated = match dialect.translate(&body) {
        Ok(t) => t,
        Err(e) => {
            proxy.inner.metrics.reject(Rejection::Untranslatable);
            let key_id = &admitted.key_id;
            tracing::info!(key_id, route = dialect.route().path(), error = %e, "untranslatable request");
            return dialect.error_response(&ApiError::from(e));
        }
    };
    drop((body, body_budget));
    let target = match models::resolve(&proxy.inner.config, &translated.model) {
        Ok(target) => target,
        Err(err) => {
            proxy.inner.metrics.reject(Rejection::InvalidModelId);
            return dialect.error_response(&err);
        }
    };
    let converse = match models::converse_body(&translated.converse, &target.extra_payload) {
        Ok(body) => body,
        Err(err) => {
            proxy.inner.metrics.reject(Rejection::Untranslatable);
            return dialect.error_response(&err);
        }
    };
    admitted.model_id = target.model_id;
    admitted.operation = if translated.stream {
        Operation::ConverseStream
    } else {
        Operation::Converse
    };
    let call = Call {
        proxy,
        dialect,
        admitted,
        stall: parts.extensions.get::<WriteStall>().cloned(),
        http2: parts.version == axum::http::Version::HTTP_2,
    };
    call.run(converse, translated).await
}

/// One translated request on its way upstream: its admission holds the key, the
/// Bedrock model id (alias resolved, region prefix applied), the operation, the slot
/// and the clock.
struct Call {
    proxy: Proxy,
    dialect: Dialect,
    admitted: Admitted,
    /// Set by the listener when the client's connection stalled (absent outside it).
    stall: Option<WriteStall>,
    /// HTTP/2: a stream can stall on its own window while its connection moves.
    http2: bool,
}

/// What one upstream try gave.
enum Attempt {
    /// A 200 of the expected content type.
    Ok(UpstreamResponse),
    /// A failure, and whether another try may succeed.
    Failed(ApiError),
}

impl Call {
    async fn run(self, converse: Bytes, translated: Translated) -> Response {
        let dialect = self.dialect;
        let deadline = self.admitted.total_deadline.unwrap_or_else(super::far_future);
        let run = async {
            if translated.stream {
                self.stream(converse, &translated).await
            } else {
                self.once(converse, &translated.model).await
            }
        };
        match tokio::time::timeout_at(deadline, run).await {
            Ok(response) => response,
            Err(_) => dialect.error_response(&ApiError::new(
                ErrorClass::Timeout,
                "the request exceeded this gateway's total timeout",
            )),
        }
    }

    /// Sends the request to `operation`, once: the 200 response, or the failure as the
    /// dialect's error.
    async fn attempt(&self, body: Bytes, expect: &str) -> Attempt {
        let inner = &self.proxy.inner;
        let (key_id, model_id) = (&self.admitted.key_id, &self.admitted.model_id);
        inner.metrics.request(self.admitted.operation);
        let json = [(header::CONTENT_TYPE, "application/json".to_owned())];
        let upstream = match send_admitted(&self.admitted, &json, body).await {
            Ok(r) => r,
            Err(failure) => return Attempt::Failed(ApiError::new(ErrorClass::Overloaded, failure.message)),
        };
        let status = upstream.status();
        let content_type = upstream
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if status.is_success() && content_type.starts_with(expect) {
            return Attempt::Ok(upstream);
        }
        let error_type = upstream_error_type(&upstream);
        let kind = error_type
            .clone()
            .unwrap_or_else(|| format!("Http{}", status.as_u16()));
        inner.metrics.upstream_error(&kind);
        tracing::info!(
            key_id,
            model_id,
            status = status.as_u16(),
            error_type = kind,
            "upstream error"
        );
        if status.is_success() {
            return Attempt::Failed(ApiError::new(
                ErrorClass::Server,
                format!("upstream answered with content type `{content_type}`, not `{expect}`"),
            ));
        }
        let body = self.read_whole(upstream).await.unwrap_or_default();
        Attempt::Failed(ApiError::from_bedrock(
            status.as_u16(),
            error_type.as_deref(),
            &body,
        ))
    }

    /// Reads a whole upstream body within the frame cap and the memory budget.
    async fn read_whole(&self, upstream: UpstreamResponse) -> Result<Bytes, ApiError> {
        let cap = usize::try_from(self.proxy.inner.config.limits.max_frame_len()).unwrap_or(usize::MAX);
        match read_capped(&self.proxy, upstream, cap).await {
            Ok((bytes, _budget)) => Ok(bytes),
            Err(ReadError::Budget) => {
                self.proxy.inner.metrics.reject(Rejection::MemoryBudget);
                Err(ApiError::new(
                    ErrorClass::Overloaded,
                    "this gateway is buffering too much right now; retry later",
                ))
            }
            Err(ReadError::Broken(why)) => {
                upstream_fault(&self.admitted, "ReadFailed", &why);
                Err(ApiError::new(
                    ErrorClass::Server,
                    "reading the upstream response failed",
                ))
            }
        }
    }

    /// `stream: false`: `/converse`, retried while retryable, answered in the dialect's
    /// JSON.
    async fn once(self, body: Bytes, model: &str) -> Response {
        let mut tries = 0;
        let err = loop {
            tries += 1;
            let upstream = match self.attempt(body.clone(), "application/json").await {
                Attempt::Ok(upstream) => upstream,
                Attempt::Failed(err) if err.is_retryable() && tries < ATTEMPTS => {
                    backoff(tries).await;
                    continue;
                }
                Attempt::Failed(err) => break err,
            };
            let bytes = match self.read_whole(upstream).await {
                Ok(bytes) => bytes,
                Err(err) => break err,
            };
            let Ok(response) = serde_json::from_slice::<ConverseResponse>(&bytes) else {
                let detail = format!("{} bytes, not a Converse response", bytes.len());
                upstream_fault(&self.admitted, "IncompleteJson", &detail);
                break ApiError::new(
                    ErrorClass::Server,
                    "the upstream answer is not a Converse response",
                );
            };
            log_buffered(&self.admitted, converse_usage(&bytes).as_ref());
            let dialect = self.dialect;
            // The slot is free once the answer is read.
            drop(self);
            let id = dialect.new_id();
            return match dialect.response_json(&response, &id, model) {
                Ok(json) => json_response(StatusCode::OK, json),
                Err(err) => dialect.error_response(&err),
            };
        };
        self.dialect.error_response(&err)
    }
}

/// Waits before try number `tries + 1`.
async fn backoff(tries: u32) {
    let i = usize::try_from(tries.saturating_sub(1)).unwrap_or(usize::MAX);
    let delay = RETRY_DELAYS
        .get(i)
        .or(RETRY_DELAYS.last())
        .copied()
        .unwrap_or_default();
    tokio::time::sleep(delay).await;
}

/// A JSON response of `status`.
fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An SSE response over `body`.
fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Seconds since the Unix epoch (OpenAI's `created`).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
