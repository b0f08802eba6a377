//! The built-in mock Bedrock server (feature `server`).
//!
//! A small HTTP/1.1 server (axum over tokio) that answers
//! `POST /model/{modelId}/converse` and `POST /model/{modelId}/converse-stream` the way
//! Amazon Bedrock does, with no AWS account: the client's tests, the `demo` command and
//! people testing their gateways use it.
//!
//! ```
//! use bedrock_converse::server::MockBedrock;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = MockBedrock::builder().bearer_key("test-key").start().await?;
//! // The form a provider config's `url` takes: clients append `{modelId}/converse-stream`.
//! assert!(server.url().ends_with("/model/")); // http://127.0.0.1:PORT/model/
//!
//! // The last part of the model id picks the scenario: here `tools`. Any HTTP client
//! // works; this one is a plain HTTP/1.1 request over tokio.
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let body = r#"{"messages":[{"role":"user","content":[{"text":"Weather in Paris?"}]}]}"#;
//! let mut tcp = tokio::net::TcpStream::connect(server.addr()).await?;
//! tcp.write_all(format!(
//!     "POST /model/us-east-1.mock.tools/converse HTTP/1.1\r\nhost: {}\r\n\
//!      authorization: Bearer test-key\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
//!     server.addr(),
//!     body.len(),
//! ).as_bytes()).await?;
//! let mut response = String::new();
//! tcp.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200 OK"));
//! assert!(response.contains(r#""stopReason":"tool_use""#));
//! assert_eq!(server.request_count(), 1);
//! server.shutdown().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # What the streams look like
//!
//! Frames are written with [`MessageBuilder`](crate::eventstream::MessageBuilder) and copy
//! what real ConverseStream bodies show (see `reference/captures/README.md`):
//!
//! - every event frame has exactly three string headers, in this order: `:event-type`,
//!   `:content-type` = `application/json`, `:message-type` = `event`;
//! - every event payload has a `"p"` padding member, a prefix of
//!   `abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789` whose length varies
//!   from frame to frame; members are written in sorted order, so `"p"` lands before or after
//!   the real members as it does on the wire;
//! - `messageStart{role:"assistant"}`; text blocks get **no** `contentBlockStart`, only
//!   `contentBlockDelta{delta:{text}}` then `contentBlockStop`; a tool block gets
//!   `contentBlockStart{start:{toolUse:{name,toolUseId}}}`, a first `toolUse.input` delta
//!   that is the empty string, then JSON fragments; then `messageStop{stopReason}` and,
//!   after it, `metadata{usage{inputTokens,outputTokens,totalTokens},metrics{latencyMs}}`;
//! - exception frames have `:message-type` = `exception`, `:exception-type`, then
//!   `:content-type` (the header order of the vercel/ai capture) and a payload with no
//!   `"p"` (none is known from a real capture).
//!
//! Responses carry `x-amzn-requestid`; errors carry `x-amzn-errortype`
//! (`ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/` style) and a
//! JSON body `{"message": "..."}`, as Bedrock sends them.
//!
//! # Scenarios
//!
//! The scenario is picked by the model id: the part after the last `.` of the
//! percent-decoded model id, so `us-east-1.mock.tools` (or just `tools`) runs `tools`.
//! Clients may put a region before it (`us-east-1.mock.tools`), as the client's
//! `regionPrefix` setting does. An unknown name runs `text`.
//!
//! | scenario | `/converse-stream` | `/converse` |
//! | --- | --- | --- |
//! | `text` | a few sentences quoting the last user text, in many small deltas; `end_turn` | the same text in one block |
//! | `long` | [`MockBedrockBuilder::long_deltas`] text deltas (default 2,000), for benchmarks; with no [`frame_delay`](MockBedrockBuilder::frame_delay) the frames go out in ~16 KiB chunks, many frames per chunk, so the server is not the bottleneck | the same text |
//! | `tools` | a short text block, then one tool block per tool of `toolConfig` (at most 3; `get_weather` and `add` when none), inputs in small JSON fragments (a tool whose schema has no properties: the empty input delta only, as Bedrock sends a call with no arguments); `tool_use`. When the last user message carries `toolResult` blocks: a text answer that uses the results; `end_turn` | the same content |
//! | `reasoning` | `reasoningContent.text` deltas, an empty text delta, a `signature` delta, then a text block at index 1 | `reasoningContent.reasoningText{text,signature}` then `text` |
//! | `citations` | `reasoningContent.redactedContent` deltas (base64 of opaque bytes) at index 0, then a text block at index 1 ending in a `citation` delta whose `sourceContent` quotes the last user text (`location.documentChar`) | `reasoningContent.redactedContent`, then `citationsContent{content:[{text}],citations}` |
//! | `exception` | some text, then a `modelStreamErrorException` frame `{message, originalStatusCode, originalMessage}` | HTTP 424 `ModelErrorException` |
//! | `throttling-exception` | some text, then a `throttlingException` frame | HTTP 429 `ThrottlingException` |
//! | `http-error` | HTTP 400 `ValidationException` | same |
//! | `throttle-then-ok` | HTTP 429 `ThrottlingException` for the first 2 requests of this scenario (per server), then `text` | same |
//! | `not-ready` | HTTP 429 `ModelNotReadyException` for the first request, then `text` | same |
//! | `server-error` | HTTP 500 `InternalServerException`, always | same |
//! | `stall` | 3 frames, then no bytes for [`MockBedrockBuilder::stall_duration`] (default 1 hour) with the connection open, then the rest; shutdown cuts it | the response waits that long; shutdown answers 503 |
//! | `truncated` | the body ends cleanly in the middle of a frame | the JSON body cut in half |
//! | `corrupt-crc` | the third frame has one payload byte flipped (its message CRC no longer matches); the rest is valid | a normal `text` response |
//! | `trickle` | the whole valid `text` stream, one byte per write, yielding between writes | the JSON body one byte per write |
//!
//! Scenario counters (`throttle-then-ok`, `not-ready`) count requests that passed
//! authentication and validation, on both operations together.
//!
//! # Native routes (`InvokeModel`, `InvokeModelWithResponseStream`, `CountTokens`)
//!
//! `POST /model/{modelId}/invoke`, `/invoke-with-response-stream` and `/count-tokens`
//! answer for `anthropic.*` model ids (also after a region prefix, `us.anthropic.*`, or
//! in an inference-profile ARN); another model gets 400 `ValidationException` naming it.
//! The body must be an Anthropic Messages request as Bedrock takes it:
//! `anthropic_version` a version date (`bedrock-2023-05-31`, or the API date the
//! Anthropic SDKs send), `max_tokens` of at least 1, non-empty
//! `messages` starting with `user`, no `model` or `stream` member (400
//! `ValidationException` naming the key otherwise). The scenarios are the same, chosen
//! the same way (`anthropic.mock.tools`, `us.anthropic.claude.reasoning`), written as
//! Anthropic Messages: text blocks, `tool_use` blocks streamed as `input_json_delta`
//! fragments (a `tool_result` turn gets a text answer), `thinking` with its `signature`
//! (`reasoning`), `redacted_thinking` and `char_location` citations (`citations`),
//! `usage`, and `amazon-bedrock-invocationMetrics` on `message_stop`. Each native event
//! is a `chunk` frame `{"bytes":"<base64>"}`; `exception` and `throttling-exception`
//! stream some text then the exception frame; `stall`, `truncated`, `corrupt-crc` and
//! `trickle` act on the chunk frames as on ConverseStream's. `/invoke` answers the
//! message JSON with `X-Amzn-Bedrock-Input-Token-Count`, `-Output-Token-Count` and
//! `-Invocation-Latency`; the stream carries `X-Amzn-Bedrock-Content-Type:
//! application/json`; both echo `X-Amzn-Bedrock-PerformanceConfig-Latency` and
//! `X-Amzn-Bedrock-Service-Tier`. `/count-tokens` takes
//! `{"input":{"invokeModel":{"body":"<base64>"}}}` (validated as `/invoke` would) or
//! `{"input":{"converse":{...}}}` (validated as `/converse` would) and answers
//! `{"inputTokens":N}`, the count the invoke answer reports for the same body.
//!
//! Cache usage: in every scenario, a request with `cachePoint` blocks (in `system`,
//! `messages` or `toolConfig.tools`) reports, per cache point, 1,024
//! `cacheReadInputTokens` and 512 `cacheWriteInputTokens` in its usage (`inputTokens`
//! leaves them out and `totalTokens` counts them, as Bedrock does).
//!
//! # Authentication
//!
//! With no [`bearer_key`](MockBedrockBuilder::bearer_key) and no SigV4 setting, any request
//! is accepted. Otherwise the request must carry one accepted `Authorization`:
//!
//! - `Bearer <key>` equal to the configured key; a wrong key gets 403
//!   `AccessDeniedException` with Bedrock's body
//!   `{"Message":"Authentication failed: Please make sure your API Key is valid."}`
//!   (capital `M`, as Bedrock writes it);
//! - `AWS4-HMAC-SHA256 Credential=AKID/date/region/bedrock/aws4_request, SignedHeaders=..., Signature=...`
//!   when [`accept_sigv4`](MockBedrockBuilder::accept_sigv4) (any well-formed header) or
//!   [`sigv4_credentials`](MockBedrockBuilder::sigv4_credentials) (the access key id must
//!   match and the signature is checked) is set. Unknown key: 403
//!   `UnrecognizedClientException`; bad signature: 403 `InvalidSignatureException`;
//! - no `Authorization` at all: 403 `MissingAuthenticationTokenException`
//!   (`{"message":"Missing Authentication Token"}`).
//!
//! # Validation
//!
//! Bodies are checked as Bedrock does (400 `ValidationException`, messages worded like
//! Bedrock's): `messages` non-empty, roles `user`/`assistant` alternating and starting with
//! `user`, content blocks non-empty with exactly one known member, text not blank, every
//! `toolUse` of an assistant message answered by `toolResult` blocks in the next user
//! message (and no unknown ids), `toolConfig` present when the conversation has tool blocks,
//! `inferenceConfig.temperature` and `topP` within 0..=1, `maxTokens` at least 1. A body
//! that is not JSON gets `Malformed input request: ...`. Unknown top-level members are
//! ignored.
//!
//! # Order of checks
//!
//! Route (`POST /model/{id}/converse[-stream]`, `/invoke[-with-response-stream]`,
//! `/count-tokens`, else 404 `UnknownOperationException`),
//! then authentication (403), then JSON and validation (400), then the scenario. Every
//! request is recorded ([`MockBedrockHandle::requests`]) with the status it got.

mod auth;
mod events;
mod invoke;
mod scenario;
mod service;
mod tls;
mod validate;

pub use crate::tls::{self_signed_pem, TlsCertificate, TlsError, TlsSettings};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use scenario::Scenario;

/// Default number of text deltas of the `long` scenario.
pub const DEFAULT_LONG_DELTAS: usize = 2_000;

/// Default pause of the `stall` scenario.
pub const DEFAULT_STALL: Duration = Duration::from_secs(3_600);

/// Default number of requests kept for [`MockBedrockHandle::requests`].
pub const DEFAULT_MAX_RECORDED: usize = 10_000;

/// How long [`MockBedrockHandle::shutdown`] waits for open connections before it aborts
/// the server task.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Errors of the mock server's own API (not the HTTP errors it serves on purpose).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("cannot read the listening address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The server task ended with an I/O error.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The server task panicked or was aborted (for example after [`SHUTDOWN_GRACE`]).
    #[error("server task did not end cleanly: {0}")]
    Task(String),
}

/// Which operation a request called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /model/{modelId}/converse`.
    Converse,
    /// `POST /model/{modelId}/converse-stream`.
    ConverseStream,
    /// `POST /model/{modelId}/invoke` (`anthropic.*` models).
    InvokeModel,
    /// `POST /model/{modelId}/invoke-with-response-stream` (`anthropic.*` models).
    InvokeModelWithResponseStream,
    /// `POST /model/{modelId}/count-tokens`.
    CountTokens,
}

/// One request the server received, as recorded for tests.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: ::http::Method,
    /// Path and query as received (still percent-encoded).
    pub uri: String,
    /// The percent-decoded model id, when the path was `/model/{modelId}/...`.
    pub model_id: Option<String>,
    /// The operation, when the path named one.
    pub operation: Option<Operation>,
    /// The scenario the model id selected, when the path named an operation.
    pub scenario: Option<Scenario>,
    /// Request headers.
    pub headers: ::http::HeaderMap,
    /// Request body.
    pub body: Bytes,
    /// The HTTP status the server answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

// ===== impl MockBedrock =====

/// Entry point: `MockBedrock::builder()...start().await`.
#[derive(Debug)]
pub struct MockBedrock;

impl MockBedrock {
    /// A builder with defaults: listen on `127.0.0.1:0` (a free port), no authentication,
    /// [`DEFAULT_LONG_DELTAS`], [`DEFAULT_STALL`], no delay between frames,
    /// [`DEFAULT_MAX_RECORDED`].
    pub fn builder() -> MockBedrockBuilder {
        MockBedrockBuilder::default()
    }
}

/// Settings of a [`MockBedrock`] server. Every setter consumes and returns the builder.
#[derive(Debug, Clone)]
pub struct MockBedrockBuilder {
    config: Config,
    listen: SocketAddr,
    tls: Option<TlsCertificate>,
}

/// The settings shared by all requests.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) bearer_key: Option<String>,
    pub(crate) sigv4: Option<SigV4Check>,
    pub(crate) long_deltas: usize,
    pub(crate) stall: Duration,
    pub(crate) frame_delay: Duration,
    pub(crate) max_recorded: usize,
}

/// How SigV4 `Authorization` headers are checked.
#[derive(Debug, Clone)]
pub(crate) enum SigV4Check {
    /// Any well-formed header.
    AnyWellFormed,
    /// This key id, and the signature must verify with this secret.
    Credentials {
        access_key_id: String,
        secret_access_key: String,
    },
}

impl Default for MockBedrockBuilder {
    fn default() -> Self {
        MockBedrockBuilder {
            config: Config {
                bearer_key: None,
                sigv4: None,
                long_deltas: DEFAULT_LONG_DELTAS,
                stall: DEFAULT_STALL,
                frame_delay: Duration::ZERO,
                max_recorded: DEFAULT_MAX_RECORDED,
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
        }
    }
}

impl MockBedrockBuilder {
    /// Require `Authorization: Bearer <key>` (Bedrock API keys).
    pub fn bearer_key(mut self, key: impl Into<String>) -> Self {
        self.config.bearer_key = Some(key.into());
        self
    }

    /// Also accept any well-formed SigV4 `Authorization: AWS4-HMAC-SHA256 ...` header,
    /// without checking the key or the signature.
    pub fn accept_sigv4(mut self) -> Self {
        self.config.sigv4 = Some(SigV4Check::AnyWellFormed);
        self
    }

    /// Also accept SigV4 requests signed with these credentials: the access key id must
    /// match and the signature is recomputed (service `bedrock`, the region of the
    /// credential scope, the headers listed in `SignedHeaders`, `x-amz-date`).
    pub fn sigv4_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.config.sigv4 = Some(SigV4Check::Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        });
        self
    }

    /// How many requests to keep for [`MockBedrockHandle::requests`] (default
    /// [`DEFAULT_MAX_RECORDED`]); older ones are forgotten, but still counted by
    /// [`MockBedrockHandle::request_count`]. `0` records none.
    pub fn max_recorded(mut self, n: usize) -> Self {
        self.config.max_recorded = n;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free loopback port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Number of text deltas of the `long` scenario (default [`DEFAULT_LONG_DELTAS`]).
    pub fn long_deltas(mut self, n: usize) -> Self {
        self.config.long_deltas = n;
        self
    }

    /// Pause of the `stall` scenario (default [`DEFAULT_STALL`]).
    pub fn stall_duration(mut self, pause: Duration) -> Self {
        self.config.stall = pause;
        self
    }

    /// Pause between two frames of every stream (default none), to make a demo look like
    /// a model typing.
    pub fn frame_delay(mut self, pause: Duration) -> Self {
        self.config.frame_delay = pause;
        self
    }

    /// Serve HTTPS (HTTP/1.1) with this certificate; [`self_signed_pem`] makes one for
    /// `localhost` and `127.0.0.1`.
    pub fn tls(mut self, certificate: TlsCertificate) -> Self {
        self.tls = Some(certificate);
        self
    }

    /// Binds the socket and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ServerError::Bind`] if the address cannot be bound, [`ServerError::LocalAddr`] if
    /// its port cannot be read.
    pub async fn start(self) -> Result<MockBedrockHandle, ServerError> {
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            config: self.config,
            state: Mutex::new(State::default()),
            shutdown: shutdown_rx.clone(),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            long_frames: OnceLock::new(),
        });
        let app = service::router(Arc::clone(&shared));
        let mut signal = shutdown_rx;
        let stopped = async move { wait_for_shutdown(&mut signal).await };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let task = match &self.tls {
            Some(certificate) => {
                let listener = tls::TlsListener::new(listener, addr, certificate);
                tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await })
            }
            None => {
                // Small frames must not wait for Nagle's algorithm (a 40 ms stall with delayed ACKs).
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await })
            }
        };
        tracing::debug!(%addr, "mock Bedrock server listening");
        Ok(MockBedrockHandle {
            addr,
            scheme,
            shared,
            shutdown: shutdown_tx,
            task: Some(task),
        })
    }
}

/// State shared by the handlers of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) state: Mutex<State>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Event-stream frames written (whole or not).
    pub(crate) frames_sent: AtomicU64,
    /// Event-stream body bytes written.
    pub(crate) bytes_sent: AtomicU64,
    /// The `long` scenario's frames but the last, encoded once.
    pub(crate) long_frames: OnceLock<Bytes>,
}

/// Counters and recordings, behind one lock held only briefly.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The latest requests, oldest first (at most `Config::max_recorded`).
    pub(crate) requests: VecDeque<RecordedRequest>,
    /// All requests received.
    pub(crate) total: usize,
    pub(crate) per_scenario: HashMap<Scenario, u64>,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Resolves once shutdown was asked for (or the handle is gone).
pub(crate) async fn wait_for_shutdown(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

// ===== impl MockBedrockHandle =====

/// A running server. Dropping it asks the server to stop (without waiting); call
/// [`shutdown`](MockBedrockHandle::shutdown) to wait for it.
#[derive(Debug)]
pub struct MockBedrockHandle {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl MockBedrockHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL prefix to append `{modelId}/converse[-stream]` to, e.g.
    /// `http://127.0.0.1:PORT/model/` (the form a provider config's `url` takes;
    /// `https` with [`MockBedrockBuilder::tls`]).
    pub fn url(&self) -> String {
        format!("{}://{}/model/", self.scheme, self.addr)
    }

    /// The base endpoint, e.g. `http://127.0.0.1:PORT` (the AWS SDKs' `endpoint_url`).
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The full URL of one operation for a model id (percent-encoded as SDKs do).
    pub fn operation_url(&self, model_id: &str, operation: Operation) -> String {
        let id = crate::model_id::encode(model_id);
        let op = match operation {
            Operation::Converse => "converse",
            Operation::ConverseStream => "converse-stream",
            Operation::InvokeModel => "invoke",
            Operation::InvokeModelWithResponseStream => "invoke-with-response-stream",
            Operation::CountTokens => "count-tokens",
        };
        format!("{}://{}/model/{id}/{op}", self.scheme, self.addr)
    }

    /// Number of requests received so far (all paths, all outcomes; counted when the
    /// response head is ready).
    pub fn request_count(&self) -> usize {
        self.shared.lock().total
    }

    /// A copy of the requests received so far, oldest first (the latest
    /// [`max_recorded`](MockBedrockBuilder::max_recorded) of them).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// The latest request received.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().requests.back().cloned()
    }

    /// How many requests of this scenario passed authentication and validation.
    pub fn scenario_count(&self, scenario: Scenario) -> u64 {
        self.shared
            .lock()
            .per_scenario
            .get(&scenario)
            .copied()
            .unwrap_or(0)
    }

    /// Event-stream frames written to `/converse-stream` and
    /// `/invoke-with-response-stream` bodies so far (a cut or trickled frame counts once).
    pub fn frames_streamed(&self) -> u64 {
        self.shared.frames_sent.load(Ordering::Relaxed)
    }

    /// Event-stream body bytes written to `/converse-stream` and
    /// `/invoke-with-response-stream` bodies so far.
    pub fn bytes_streamed(&self) -> u64 {
        self.shared.bytes_sent.load(Ordering::Relaxed)
    }

    /// Forgets the recorded requests and resets all counters.
    pub fn reset(&self) {
        let mut state = self.shared.lock();
        state.requests.clear();
        state.total = 0;
        state.per_scenario.clear();
        self.shared.frames_sent.store(0, Ordering::Relaxed);
        self.shared.bytes_sent.store(0, Ordering::Relaxed);
    }

    /// Stops accepting connections, ends open streams (including stalled ones) and waits
    /// for the server task, at most [`SHUTDOWN_GRACE`] before aborting it.
    ///
    /// # Errors
    ///
    /// [`ServerError::Serve`] if the server failed, [`ServerError::Task`] if its task
    /// panicked or had to be aborted.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        // Receivers live in `shared`, so sending cannot fail while `self` exists.
        self.shutdown.send_replace(true);
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ServerError::Serve(e)),
            Ok(Err(e)) => Err(ServerError::Task(e.to_string())),
            Err(_) => {
                task.abort();
                Err(ServerError::Task(format!(
                    "connections still open after {SHUTDOWN_GRACE:?}; aborted"
                )))
            }
        }
    }
}

impl Drop for MockBedrockHandle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}
