//! The native-body calls: `InvokeModel`, `InvokeModelWithResponseStream` and
//! `CountTokens`, with the same config, auth, retries and timeouts as `converse`.
//!
//! ```text
//! InvokeModelRequest ─► /model/{id}/invoke ─► InvokeModelResponse (native body, usage headers)
//!                    └► /model/{id}/invoke-with-response-stream ─► InvokeStream
//!                         bytes ─► EventStreamCodec ─► ChunkDecoder ─► chunk payload (Bytes) ─► caller
//!                                                                   └► AnthropicAssembler ─► AnthropicMessage
//! CountTokensInput ─► /model/{id}/count-tokens ─► CountTokensResponse
//! ```
//!
//! `InvokeModelRequest::model_id` names the model as `converse`'s `model` argument does
//! (`provider/model` of the config, or a bare model name when there is one provider);
//! the id sent is the resolved one, region-prefixed as for Converse.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::codec::Decoder;

use super::auth::Auth;
use super::endpoint::{self, Endpoint};
use super::error::{ClientError, ConfigError, ResponseError, TimeoutKind, TransportError};
use super::{stream, within_deadline, BedrockClient};
use crate::converse::ServiceException;
use crate::eventstream::EventStreamCodec;
use crate::invoke::{
    AnthropicAssembler, AnthropicMessage, ChunkDecoder, CountTokensInput, CountTokensRequest,
    CountTokensResponse, InvokeError, InvokeModelRequest, InvokeModelResponse, InvokeResponseHeaders, Route,
};

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

// ===== impl BedrockClient =====

impl BedrockClient {
    /// `InvokeModel`: sends `request.body` as is and returns the model's native answer
    /// with its headers (for `anthropic.*` models the body is an
    /// [`AnthropicMessage`]: see [`InvokeModelResponse::anthropic_message`]).
    ///
    /// # Errors
    ///
    /// As [`converse`](BedrockClient::converse): config, credentials, connection,
    /// timeouts, and [`ServiceError`](super::ServiceError) for an error response (retried as
    /// configured when retryable).
    pub async fn invoke_model(
        &self,
        request: &InvokeModelRequest,
    ) -> Result<InvokeModelResponse, ClientError> {
        let route = Route::InvokeModel;
        let deadline = self.deadline();
        let call = async {
            let (endpoint, auth) = self.route_endpoint(&request.model_id, route)?;
            let headers = request.headers(route);
            let head = self
                .send(&endpoint, auth, request.body.clone(), &headers, &mut 1)
                .await?;
            let response_headers = read_headers(route, head.response.headers());
            let body = self.read_body(head.response).await?;
            log_invoke_usage(&response_headers);
            Ok(InvokeModelResponse {
                body,
                headers: response_headers,
            })
        };
        within_deadline(deadline, call).await
    }

    /// `InvokeModelWithResponseStream`: the streamed answer as an [`InvokeStream`] of
    /// chunk payloads (one native model event each).
    ///
    /// As for `converse_stream`, a failure before the first chunk (an HTTP error, an
    /// in-stream throttling exception, a connection closed early) is retried as
    /// configured; nothing is retried once the stream is returned.
    ///
    /// # Errors
    ///
    /// As [`invoke_model`](BedrockClient::invoke_model), and the stream's own errors
    /// when it fails before its first chunk.
    pub async fn invoke_model_with_response_stream(
        &self,
        request: &InvokeModelRequest,
    ) -> Result<InvokeStream, ClientError> {
        let route = Route::InvokeModelWithResponseStream;
        let deadline = self.deadline();
        let call = async {
            let (endpoint, auth) = self.route_endpoint(&request.model_id, route)?;
            let headers = request.headers(route);
            let policy = self.inner.options.retry;
            let mut attempt: u32 = 1;
            loop {
                let head = self
                    .send(&endpoint, auth, request.body.clone(), &headers, &mut attempt)
                    .await?;
                let mut stream = InvokeStream::new(
                    head.response,
                    self.inner.options.timeouts.idle,
                    deadline,
                    self.inner.options.max_assembled_len,
                );
                match stream.prime().await {
                    Ok(()) => return Ok(stream),
                    Err(e) if stream::retryable_before_data(&e) && attempt < policy.max_attempts.max(1) => {
                        let delay = policy.delay(attempt);
                        tracing::debug!(error = %e, attempt, ?delay, "retrying (invoke stream failed before its first chunk)");
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        within_deadline(deadline, call).await
    }

    /// `CountTokens`: the input tokens `input` would use with `model`.
    ///
    /// # Errors
    ///
    /// As [`invoke_model`](BedrockClient::invoke_model), and
    /// [`ResponseError::Json`] when the answer is not `{"inputTokens":N}`.
    pub async fn count_tokens(
        &self,
        model: &str,
        input: CountTokensInput,
    ) -> Result<CountTokensResponse, ClientError> {
        let deadline = self.deadline();
        let call = async {
            let (endpoint, auth) = self.route_endpoint(model, Route::CountTokens)?;
            let body = serde_json::to_vec(&CountTokensRequest { input }).map_err(|e| {
                ClientError::Config(ConfigError::InvalidParameter {
                    name: "input".into(),
                    reason: e.to_string(),
                })
            })?;
            let head = self.send(&endpoint, auth, Bytes::from(body), &[], &mut 1).await?;
            let bytes = self.read_body(head.response).await?;
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Response(ResponseError::Json(e)))
        };
        within_deadline(deadline, call).await
    }

    /// The endpoint `route` calls for `model` (as [`endpoint`](BedrockClient::endpoint)
    /// for Converse).
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownProvider`] and [`ConfigError::InvalidModelId`].
    pub fn route_endpoint_of(&self, model: &str, route: Route) -> Result<Endpoint, ClientError> {
        self.route_endpoint(model, route).map(|(endpoint, _)| endpoint)
    }

    /// The endpoint of `route` for a configured model, and the provider's credentials.
    fn route_endpoint(&self, model: &str, route: Route) -> Result<(Endpoint, Option<&Auth>), ClientError> {
        let resolved = self.inner.config.resolve_model(model)?;
        let endpoint = Endpoint::for_operation(
            resolved.provider,
            &resolved.model_name,
            resolved.region_prefix,
            route.path_suffix(),
            route.is_streaming(),
        );
        endpoint::check_model_id(&endpoint.model_id)?;
        tracing::debug!(endpoint = %endpoint.display, operation = route.operation(), "Bedrock request");
        Ok((endpoint, self.inner.auth.get(&resolved.provider.name)))
    }
}

fn read_headers(route: Route, headers: &http::HeaderMap) -> InvokeResponseHeaders {
    InvokeResponseHeaders::from_headers(route, headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())))
}

fn log_invoke_usage(headers: &InvokeResponseHeaders) {
    tracing::debug!(
        input_tokens = headers.input_token_count,
        output_tokens = headers.output_token_count,
        latency_ms = headers.invocation_latency_ms,
        "token usage"
    );
}

// ===== impl InvokeStream =====

/// A streamed `InvokeModelWithResponseStream` answer: [`next_chunk`](Self::next_chunk)
/// yields each chunk's payload (one native model event, e.g. an Anthropic
/// `content_block_delta` as JSON) as it arrives; an [`AnthropicAssembler`] folds the
/// same events into the finished message ([`into_message`](Self::into_message)).
///
/// On failure `next_chunk` yields one `Err` and then `None`; an exception frame is
/// [`ClientError::Invoke`]`(`[`InvokeError::Service`]`)`, and what arrived before it
/// stays in [`partial`](Self::partial).
pub struct InvokeStream {
    body: BodyStream,
    buf: BytesMut,
    codec: EventStreamCodec,
    decoder: ChunkDecoder,
    assembler: AnthropicAssembler,
    headers: InvokeResponseHeaders,
    exception: Option<ServiceException>,
    /// Whether the first chunk, read by `prime`, is still in the decoder for the caller.
    primed: bool,
    idle: Duration,
    deadline: Option<(Duration, Instant)>,
    finished: bool,
    chunks: u64,
    /// Native event bytes received so far, and the most allowed.
    received: usize,
    max_received: usize,
}

impl fmt::Debug for InvokeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokeStream")
            .field("buffered", &self.buf.len())
            .field("chunks", &self.chunks)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl InvokeStream {
    fn new(
        response: reqwest::Response,
        idle: Duration,
        deadline: Option<(Duration, Instant)>,
        max_received: usize,
    ) -> InvokeStream {
        InvokeStream {
            headers: read_headers(Route::InvokeModelWithResponseStream, response.headers()),
            body: Box::pin(response.bytes_stream()),
            buf: BytesMut::new(),
            codec: EventStreamCodec::new(),
            decoder: ChunkDecoder::new(),
            assembler: AnthropicAssembler::new(),
            exception: None,
            primed: false,
            idle,
            deadline,
            finished: false,
            chunks: 0,
            received: 0,
            max_received,
        }
    }

    /// The response headers (`X-Amzn-Bedrock-Content-Type`, performance and tier).
    pub fn headers(&self) -> &InvokeResponseHeaders {
        &self.headers
    }

    /// Chunks received so far.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// The exception frame the stream ended with, if it did.
    pub fn exception(&self) -> Option<&ServiceException> {
        self.exception.as_ref()
    }

    /// Everything assembled so far (after a failure: up to the failure).
    pub fn partial(&self) -> AnthropicMessage {
        self.assembler.partial()
    }

    /// The next chunk's payload: one native event, decoded from its base64. `None` once
    /// the stream ended (after `message_stop`, or after an error).
    ///
    /// # Errors
    ///
    /// [`ClientError::Invoke`] for an exception frame or a stream that breaks the
    /// native protocol, [`ClientError::EventStream`] for bad framing (a corrupt CRC),
    /// [`ResponseError::Truncated`] for a body that ends before `message_stop` or inside a
    /// frame, [`TransportError::Timeout`] (idle gap or total deadline),
    /// [`TransportError::Body`] when the connection breaks, and
    /// [`ResponseError::AssembledTooLarge`] past `max_assembled_len`.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, ClientError>> {
        self.next_event()
            .await
            .map(|event| event.map(Bytes::copy_from_slice))
    }

    /// [`next_chunk`](Self::next_chunk) without a copy: the native event borrowed from
    /// the chunk decoder's buffer, which is reused from chunk to chunk (no allocation
    /// per chunk once it has grown to the largest event).
    ///
    /// # Errors
    ///
    /// As [`next_chunk`](Self::next_chunk).
    pub async fn next_event(&mut self) -> Option<Result<&[u8], ClientError>> {
        if std::mem::take(&mut self.primed) {
            return Some(Ok(self.decoder.last()));
        }
        if self.finished {
            return None;
        }
        match self.read_chunk().await {
            Ok(true) => Some(Ok(self.decoder.last())),
            Ok(false) => {
                self.finished = true;
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, chunks = self.chunks, "invoke stream failed");
                self.finished = true;
                Some(Err(e))
            }
        }
    }

    /// Drives the stream to its end and returns the assembled message; on failure, the
    /// error and the partial message.
    ///
    /// # Errors
    ///
    /// The stream's error (see [`next_chunk`](Self::next_chunk)), with
    /// [`partial`](Self::partial).
    pub async fn into_message(mut self) -> Result<AnthropicMessage, (ClientError, AnthropicMessage)> {
        while let Some(item) = self.next_chunk().await {
            if let Err(e) = item {
                let partial = self.partial();
                return Err((e, partial));
            }
        }
        let partial = self.partial();
        self.assembler
            .finish()
            .map_err(|e| (ClientError::Invoke(e), partial))
    }

    /// Reads the first chunk and keeps it (in the decoder) for the caller.
    async fn prime(&mut self) -> Result<(), ClientError> {
        match self.next_event().await {
            Some(Ok(_)) => {
                self.primed = true;
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Err(ClientError::Response(ResponseError::Truncated)),
        }
    }

    /// Reads up to the next chunk and decodes it into the decoder's buffer: `true` for
    /// a chunk, `false` at the end of a complete stream.
    async fn read_chunk(&mut self) -> Result<bool, ClientError> {
        loop {
            while let Some(message) = self.codec.decode(&mut self.buf)? {
                let event = match self.decoder.decode(message.as_frame()) {
                    Ok(Some(event)) => event,
                    Ok(None) => continue,
                    Err(InvokeError::Service(exception)) => {
                        self.exception = Some(exception.clone());
                        return Err(ClientError::Invoke(InvokeError::Service(exception)));
                    }
                    Err(e) => return Err(ClientError::Invoke(e)),
                };
                self.assembler.push(event)?;
                self.chunks += 1;
                self.received = self.received.saturating_add(event.len());
                if self.received > self.max_received {
                    return Err(ClientError::Response(ResponseError::AssembledTooLarge {
                        limit: self.max_received,
                    }));
                }
                return Ok(true);
            }
            match self.read_body().await? {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None if self.buf.is_empty() && self.assembler.is_complete() => return Ok(false),
                None => return Err(ClientError::Response(ResponseError::Truncated)),
            }
        }
    }

    /// The next body chunk, within the idle gap and the total deadline.
    async fn read_body(&mut self) -> Result<Option<Bytes>, ClientError> {
        let next = tokio::time::timeout(self.idle, self.body.next());
        let read = match self.deadline {
            Some((after, at)) => tokio::time::timeout_at(at, next).await.map_err(|_| {
                ClientError::Transport(TransportError::Timeout {
                    kind: TimeoutKind::Total,
                    after,
                })
            })?,
            None => next.await,
        };
        match read {
            Err(_) => Err(ClientError::Transport(TransportError::Timeout {
                kind: TimeoutKind::Idle,
                after: self.idle,
            })),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(ClientError::Transport(TransportError::Body(e.without_url()))),
            Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
        }
    }
}
