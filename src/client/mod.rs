//! Layer 3: the Converse client (feature `client`).
//!
//! ```text
//! Config (ECA JSON) ─► ResolvedModel ─► Endpoint + request body ─► Auth (Bearer / SigV4)
//!     ─► reqwest ─► /converse: JSON ─► ConverseResponse
//!                └► /converse-stream: bytes ─► EventStreamCodec ─► StreamAssembler ─► ChatEvent*
//! ```
//!
//! - [`config`]: the ECA provider config (comments, `${env:VAR}`, aliases, discovery);
//! - [`endpoint`]: the seed's URLs, and the percent-encoded form sent;
//! - [`request`]: the Converse body from messages, `extraPayload` and parameters;
//! - [`Auth`]: Bearer keys and SigV4 (credentials from the environment or the shared
//!   credentials file, [`AwsCredentials::from_env`]);
//! - [`retry`]: backoff and error responses;
//! - [`ConverseStream`]: the streamed reply;
//! - [`InvokeStream`]: the native-body calls `invoke_model`,
//!   `invoke_model_with_response_stream` and `count_tokens` (the streamed chunks, and the
//!   finished [`AnthropicMessage`](crate::invoke::AnthropicMessage)).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), bedrock_converse::client::ClientError> {
//! use futures_util::StreamExt;
//! use bedrock_converse::client::{BedrockClient, BlockDelta, ChatEvent, Config, RequestParams};
//! use bedrock_converse::converse::Message;
//!
//! let config = Config::parse(r#"{"providers": {"bedrock": {"api": "bedrock",
//!     "key": "${env:BEDROCK_API_KEY}", "region": "us-east-1",
//!     "models": {"sonnet": {"modelName": "anthropic.claude-3-sonnet-20240229-v1:0"}}}}}"#)?;
//! let client = BedrockClient::new(config)?;
//! let messages = [Message::user("Hello")];
//! let mut stream = client.converse_stream("bedrock/sonnet", &messages, &RequestParams::default()).await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         ChatEvent::ContentBlockDelta { delta: BlockDelta::Text(text), .. } => print!("{text}"),
//!         ChatEvent::Done(response) => println!("\n{:?}", response.usage),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Nothing secret is logged: keys, `Authorization` and signatures never reach `tracing`.

mod auth;
pub mod config;
pub mod endpoint;
mod error;
mod event;
mod invoke;
pub mod request;
pub mod retry;
mod stream;
mod tools;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

pub use auth::{sigv4_headers, Auth, AwsCredentials, RequestToSign, Secret};
pub use config::{Config, ModelApi, ModelConfig, ProviderConfig, ResolvedModel};
pub use endpoint::{build_endpoint, Endpoint};
pub use error::{
    AuthError, ClientError, ConfigError, CredentialSources, ResponseError, ServiceError, TimeoutKind,
    TransportError,
};
pub use event::{BlockDelta, BlockStart, ChatEvent, ToolCall};
pub use invoke::InvokeStream;
pub use request::{PreparedRequest, RequestParams};
pub use retry::RetryPolicy;
pub use stream::ConverseStream;
pub use tools::{append_tool_results, tools_to_call};

use crate::converse::ConverseResponse;
use crate::eventstream::EventStreamCodec;

/// Deadlines of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connect. Default 10 s.
    pub connect: Duration,
    /// From sending the request to the response head. `/converse` answers only when
    /// the model is done, so this is long by default: 300 s.
    pub first_byte: Duration,
    /// The longest gap between two chunks of a body. Default 120 s.
    pub idle: Duration,
    /// The whole call, retries and streaming included. Default none.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(300),
            idle: Duration::from_secs(120),
            total: None,
        }
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// The retry policy.
    pub retry: RetryPolicy,
    /// The deadlines.
    pub timeouts: Timeouts,
    /// The largest `/converse` or error body read. Default 64 MiB.
    pub max_body_len: usize,
    /// The most text, tool input and reasoning a streamed reply may assemble, in
    /// bytes ([`ResponseError::AssembledTooLarge`] past it). Default 64 MiB.
    pub max_assembled_len: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            max_body_len: 64 << 20,
            max_assembled_len: 64 << 20,
        }
    }
}

type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;
type ClockFn = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Builds a [`BedrockClient`].
pub struct BedrockClientBuilder {
    config: Config,
    options: ClientOptions,
    env: EnvFn,
    home: Option<Option<PathBuf>>,
    auth: BTreeMap<String, Auth>,
    http: Option<reqwest::Client>,
    clock: ClockFn,
    ca_files: Vec<PathBuf>,
}

impl fmt::Debug for BedrockClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BedrockClientBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl BedrockClientBuilder {
    /// Sets all options.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.options.retry = retry;
        self
    }

    /// Sets the deadlines.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.options.timeouts = timeouts;
        self
    }

    /// Where AWS credentials are looked up (default: the process environment).
    pub fn env(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// The home directory for `~/.aws/credentials` (default: `$HOME`).
    pub fn home(mut self, home: Option<PathBuf>) -> Self {
        self.home = Some(home);
        self
    }

    /// Authenticates `provider` with `auth` instead of its key or found credentials.
    pub fn auth(mut self, provider: impl Into<String>, auth: Auth) -> Self {
        self.auth.insert(provider.into(), auth);
        self
    }

    /// The clock used for SigV4 timestamps (default: the system clock). For tests.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses this reqwest client (its own timeouts then apply instead of `connect`).
    /// Build it with `redirect(reqwest::redirect::Policy::none())`: a redirect it
    /// follows sends the request, `x-amz-security-token` included, to the new host.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Also trusts the CA certificates (PEM, one or more) in this file, beside the
    /// webpki roots: for a gateway with its own certificate (`proxy.tls`, or
    /// `serve --tls`); a provider's `caFile` adds its file too. Ignored with
    /// [`http_client`](Self::http_client).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Builds the client. Providers without a key get SigV4 credentials from the
    /// environment or the shared credentials file; a provider with neither fails only
    /// when it is called.
    ///
    /// # Errors
    ///
    /// [`ClientError::HttpClient`] when the HTTP client cannot be built.
    pub fn build(self) -> Result<BedrockClient, ClientError> {
        let env = self.env.clone();
        let env_fn = move |n: &str| env(n);
        let home = match self.home {
            Some(h) => h,
            None => config::home_dir(&env_fn),
        };
        let mut auth = BTreeMap::new();
        for (name, provider) in &self.config.providers {
            let resolved = match self.auth.get(name) {
                Some(a) => Some(a.clone()),
                None => Auth::resolve(
                    provider.key.as_deref(),
                    &provider.region,
                    &env_fn,
                    home.as_deref(),
                )
                .ok(),
            };
            if let Some(a) = resolved {
                auth.insert(name.clone(), a);
            }
        }
        let http = match self.http {
            Some(h) => h,
            None => {
                let mut http = reqwest::Client::builder()
                    .connect_timeout(self.options.timeouts.connect)
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(60))
                    // Bedrock never redirects; reqwest's default policy would re-send the
                    // prompt and `x-amz-security-token` to another host.
                    .redirect(reqwest::redirect::Policy::none())
                    .referer(false);
                let from_config = self.config.providers.values().filter_map(|p| p.ca_file.as_ref());
                for path in self.ca_files.iter().chain(from_config) {
                    for certificate in read_ca_file(path)? {
                        http = http.add_root_certificate(certificate);
                    }
                }
                http.build().map_err(ClientError::HttpClient)?
            }
        };
        Ok(BedrockClient {
            inner: Arc::new(Inner {
                http,
                config: self.config,
                options: self.options,
                auth,
                clock: self.clock,
            }),
        })
    }
}

/// The certificates of a PEM CA file.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = std::fs::read(path).map_err(|source| {
        ClientError::Config(ConfigError::Read {
            path: path.to_owned(),
            source,
        })
    })?;
    let invalid = |reason: String| {
        ClientError::Config(ConfigError::Invalid {
            field: format!("caFile {}", path.display()),
            reason,
        })
    };
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no PEM CERTIFICATE block".to_owned()));
    }
    Ok(certificates)
}

struct Inner {
    http: reqwest::Client,
    config: Config,
    options: ClientOptions,
    auth: BTreeMap<String, Auth>,
    clock: ClockFn,
}

/// The Converse client. Cheap to clone (shared connection pool).
#[derive(Clone)]
pub struct BedrockClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for BedrockClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BedrockClient")
            .field(
                "providers",
                &self.inner.config.providers.keys().collect::<Vec<_>>(),
            )
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// A response received with a success status, before its body is read.
struct Head {
    response: reqwest::Response,
}

impl BedrockClient {
    /// A client with default options and credentials from the process environment.
    ///
    /// # Errors
    ///
    /// As [`BedrockClientBuilder::build`].
    pub fn new(config: Config) -> Result<BedrockClient, ClientError> {
        BedrockClient::builder(config).build()
    }

    /// A builder.
    pub fn builder(config: Config) -> BedrockClientBuilder {
        BedrockClientBuilder {
            config,
            options: ClientOptions::default(),
            env: Arc::new(|n: &str| std::env::var(n).ok()),
            home: None,
            auth: BTreeMap::new(),
            http: None,
            clock: Arc::new(SystemTime::now),
            ca_files: Vec::new(),
        }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The endpoint `model` is called at.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownProvider`].
    pub fn endpoint(&self, model: &str, stream: bool) -> Result<Endpoint, ClientError> {
        let resolved = self.inner.config.resolve_model(model)?;
        let endpoint = Endpoint::for_model(&resolved, stream);
        endpoint::check_model_id(&endpoint.model_id)?;
        Ok(endpoint)
    }

    /// Whether a call to `model` with `params` streams: `params.stream`, else the
    /// model's `extraPayload.stream`, else `true`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownProvider`].
    pub fn streams(&self, model: &str, params: &RequestParams) -> Result<bool, ClientError> {
        let resolved = self.inner.config.resolve_model(model)?;
        Ok(params.stream.unwrap_or_else(|| resolved.stream_default()))
    }

    /// Calls `/converse` (whatever `stream` says) and returns the response.
    ///
    /// # Errors
    ///
    /// Config and parameter errors, [`ServiceError`] for HTTP errors (after
    /// retries where allowed), [`TransportError::Connect`], [`TransportError::Timeout`],
    /// [`ResponseError::Json`].
    pub async fn converse<M: serde::Serialize>(
        &self,
        model: &str,
        messages: &[M],
        params: &RequestParams,
    ) -> Result<ConverseResponse, ClientError> {
        let deadline = self.deadline();
        let call = async {
            let (endpoint, auth, body) = self.prepare(model, messages, params, false)?;
            let head = self.send(&endpoint, auth, body, &[], &mut 1).await?;
            let bytes = self.read_body(head.response).await?;
            let response: ConverseResponse =
                serde_json::from_slice(&bytes).map_err(|e| ClientError::Response(ResponseError::Json(e)))?;
            log_usage(&response);
            Ok(response)
        };
        within_deadline(deadline, call).await
    }

    /// Calls `/converse-stream` (whatever `stream` says) and returns the reply as a
    /// stream of events, once its first event arrived (it is the stream's first item).
    ///
    /// Until that first event nothing has reached the caller, so failures up to it are
    /// retried like HTTP errors: 429 / 5xx / `ModelNotReadyException`, connection
    /// failures, and also an in-stream throttling / unavailable / internal exception or
    /// a body that ends before its first frame. After it, nothing is retried.
    ///
    /// # Errors
    ///
    /// As [`converse`](Self::converse) up to the first event; later errors come
    /// through the stream, with [`ConverseStream::partial`] keeping what arrived.
    pub async fn converse_stream<M: serde::Serialize>(
        &self,
        model: &str,
        messages: &[M],
        params: &RequestParams,
    ) -> Result<ConverseStream, ClientError> {
        let deadline = self.deadline();
        let call = async {
            let (endpoint, auth, body) = self.prepare(model, messages, params, true)?;
            let policy = self.inner.options.retry;
            let mut attempt: u32 = 1;
            loop {
                let head = self
                    .send(&endpoint, auth, body.clone(), &[], &mut attempt)
                    .await?;
                let mut stream = ConverseStream::new(
                    Box::pin(head.response.bytes_stream()),
                    self.inner.options.timeouts.idle,
                    deadline,
                    EventStreamCodec::new(),
                )
                .with_max_assembled(self.inner.options.max_assembled_len);
                // Wait for the first event: until then nothing has reached the caller,
                // so a failure here (an in-stream throttling exception, a connection
                // closed before the first frame) may still be retried.
                match stream.prime().await {
                    Ok(()) => return Ok(stream),
                    Err(e) if stream::retryable_before_data(&e) && attempt < policy.max_attempts.max(1) => {
                        let delay = policy.delay(attempt);
                        tracing::debug!(error = %e, attempt, ?delay, "retrying (stream failed before its first event)");
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        within_deadline(deadline, call).await
    }

    /// Calls `/converse-stream` or `/converse` as [`streams`](Self::streams) says and
    /// returns the response either way (streamed events are not surfaced).
    ///
    /// # Errors
    ///
    /// As [`converse`](Self::converse); a stream failure gives the error (use
    /// [`converse_stream`](Self::converse_stream) to keep partial output).
    pub async fn send_request<M: serde::Serialize>(
        &self,
        model: &str,
        messages: &[M],
        params: &RequestParams,
    ) -> Result<ConverseResponse, ClientError> {
        if self.streams(model, params)? {
            let stream = self.converse_stream(model, messages, params).await?;
            stream.into_response().await.map_err(|(e, _)| e)
        } else {
            self.converse(model, messages, params).await
        }
    }

    /// The total deadline of a call starting now: the timeout and the instant it ends.
    /// A timeout too large to add to the clock (`Duration::MAX`, say) is no deadline.
    fn deadline(&self) -> Option<(Duration, Instant)> {
        let total = self.inner.options.timeouts.total?;
        Some((total, Instant::now().checked_add(total)?))
    }

    fn prepare<M: serde::Serialize>(
        &self,
        model: &str,
        messages: &[M],
        params: &RequestParams,
        stream: bool,
    ) -> Result<(Endpoint, Option<&Auth>, Bytes), ClientError> {
        let resolved = self.inner.config.resolve_model(model)?;
        let prepared = request::build_request(&resolved, messages, params)?;
        let endpoint = Endpoint::for_model(&resolved, stream);
        endpoint::check_model_id(&endpoint.model_id)?;
        let body = serde_json::to_vec(&prepared.body).map_err(|e| {
            ClientError::Config(ConfigError::InvalidParameter {
                name: "body".into(),
                reason: e.to_string(),
            })
        })?;
        tracing::debug!(endpoint = %endpoint.display, stream, "Bedrock request");
        tracing::debug!(payload = %String::from_utf8_lossy(&body), "request payload");
        let auth = self.inner.auth.get(&resolved.provider.name);
        Ok((endpoint, auth, Bytes::from(body)))
    }

    /// Sends with retries until a success status (or a final error).
    /// `attempt` counts attempts across calls (the first is 1); it is left at the
    /// number of the attempt that succeeded or failed last.
    async fn send(
        &self,
        endpoint: &Endpoint,
        auth: Option<&Auth>,
        body: Bytes,
        headers: &[(&'static str, &str)],
        attempt: &mut u32,
    ) -> Result<Head, ClientError> {
        let policy = self.inner.options.retry;
        loop {
            let attempt_no = *attempt;
            let err = match self.send_once(endpoint, auth, body.clone(), headers).await {
                Ok(response) if response.status().is_redirection() => {
                    let status = response.status().as_u16();
                    tracing::debug!(status, "redirect refused");
                    return Err(ClientError::Transport(TransportError::Redirect { status }));
                }
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(
                        status = response.status().as_u16(),
                        attempt = attempt_no,
                        "response"
                    );
                    return Ok(Head { response });
                }
                Ok(response) => self.read_error(response).await,
                Err(e) => e,
            };
            if err.is_retryable() && attempt_no < policy.max_attempts.max(1) {
                let delay = policy.delay(attempt_no);
                tracing::debug!(error = %err, attempt = attempt_no, ?delay, "retrying");
                tokio::time::sleep(delay).await;
                *attempt += 1;
                continue;
            }
            tracing::debug!(error = %err, attempt = attempt_no, "request failed");
            return Err(err);
        }
    }

    async fn send_once(
        &self,
        endpoint: &Endpoint,
        auth: Option<&Auth>,
        body: Bytes,
        headers: &[(&'static str, &str)],
    ) -> Result<reqwest::Response, ClientError> {
        let given = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        let accept = given("accept").unwrap_or(if endpoint.stream {
            "application/vnd.amazon.eventstream"
        } else {
            "application/json"
        });
        let content_type = given("content-type").unwrap_or("application/json");
        let auth = auth.ok_or_else(|| {
            ClientError::Auth(AuthError::MissingCredentials {
                searched: CredentialSources::ProviderKeyAndAws,
            })
        })?;
        let signed = [("content-type", content_type)];
        let auth_headers = auth.headers(&RequestToSign {
            method: "POST",
            url: &endpoint.wire,
            headers: &signed,
            body: &body,
            time: (self.inner.clock)(),
        })?;
        let mut req = self
            .inner
            .http
            .post(&endpoint.wire)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::ACCEPT, accept);
        for (name, value) in headers {
            if !name.eq_ignore_ascii_case("accept") && !name.eq_ignore_ascii_case("content-type") {
                req = req.header(*name, *value);
            }
        }
        for (name, value) in auth_headers {
            let mut value =
                http::HeaderValue::from_str(&value).map_err(|_| AuthError::InvalidHeaderValue { name })?;
            value.set_sensitive(true);
            req = req.header(name, value);
        }
        let send = req.body(body).send();
        let first_byte = self.inner.options.timeouts.first_byte;
        match tokio::time::timeout(first_byte, send).await {
            Err(_) => Err(ClientError::Transport(TransportError::Timeout {
                kind: TimeoutKind::FirstByte,
                after: first_byte,
            })),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if e.is_timeout() && e.is_connect() => {
                Err(ClientError::Transport(TransportError::Timeout {
                    kind: TimeoutKind::Connect,
                    after: self.inner.options.timeouts.connect,
                }))
            }
            Ok(Err(e)) => Err(ClientError::Transport(TransportError::Connect {
                url: endpoint.display.clone(),
                source: e.without_url(),
            })),
        }
    }

    /// Reads an error response (bounded) into [`ServiceError`].
    async fn read_error(&self, response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match self.read_body_limited(response, 64 << 10).await {
            Ok(b) => b,
            Err(_) => Bytes::new(),
        };
        let err = retry::service_error(status, &headers, &body);
        tracing::debug!(
            status,
            error_type = err.error_type().unwrap_or(""),
            "error response"
        );
        err
    }

    /// Reads a `/converse` body; more than `max_body_len` bytes is an error.
    async fn read_body(&self, response: reqwest::Response) -> Result<Bytes, ClientError> {
        let limit = self.inner.options.max_body_len;
        let body = self.read_body_limited(response, limit.saturating_add(1)).await?;
        if body.len() > limit {
            return Err(ClientError::Response(ResponseError::BodyTooLarge { limit }));
        }
        Ok(body)
    }

    /// Reads a whole body with the idle timeout between chunks, up to `limit` bytes
    /// (the rest is not read).
    async fn read_body_limited(
        &self,
        response: reqwest::Response,
        limit: usize,
    ) -> Result<Bytes, ClientError> {
        let idle = self.inner.options.timeouts.idle;
        let mut body = response.bytes_stream();
        let mut out = bytes::BytesMut::new();
        loop {
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => {
                    return Err(ClientError::Transport(TransportError::Timeout {
                        kind: TimeoutKind::Idle,
                        after: idle,
                    }))
                }
                Ok(None) => return Ok(out.freeze()),
                Ok(Some(Err(e))) => {
                    return Err(ClientError::Transport(TransportError::Body(e.without_url())))
                }
                Ok(Some(Ok(chunk))) => {
                    let room = limit.saturating_sub(out.len());
                    out.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    if out.len() >= limit {
                        return Ok(out.freeze());
                    }
                }
            }
        }
    }
}

fn log_usage(response: &ConverseResponse) {
    if let Some(u) = &response.usage {
        tracing::debug!(
            input_tokens = u.input_tokens,
            output_tokens = u.output_tokens,
            total_tokens = u.total_tokens,
            "token usage"
        );
    }
}

/// Runs `call`, ending it with a total-timeout error once `deadline` passes.
async fn within_deadline<T>(
    deadline: Option<(Duration, Instant)>,
    call: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    match deadline {
        Some((after, at)) => tokio::time::timeout_at(at, call)
            .await
            .unwrap_or(Err(ClientError::Transport(TransportError::Timeout {
                kind: TimeoutKind::Total,
                after,
            }))),
        None => call.await,
    }
}
