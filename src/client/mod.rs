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
mod builder;
pub mod config;
pub mod endpoint;
mod error;
mod event;
mod invoke;
pub mod request;
pub mod retry;
pub(crate) mod sigv4;
mod stream;
mod tools;
mod transport;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

pub use auth::{sigv4_headers, Auth, AwsCredentials, RequestToSign, Secret};
pub use builder::{BedrockClientBuilder, ClientOptions, Timeouts};
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

use builder::ClockFn;
use transport::within_deadline;

use crate::converse::ConverseResponse;
use crate::eventstream::EventStreamCodec;

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
        BedrockClientBuilder::new(config)
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
