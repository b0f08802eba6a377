//! [`ConverseStream`]: a `ConverseStream` response body as a [`Stream`] of owned
//! [`ChatEvent`]s, ending with the assembled [`ConverseResponse`].
//!
//! ```text
//! reqwest bytes_stream ─► BytesMut ─► EventStreamCodec ─► Message ─► StreamAssembler ─► ChatEvent
//!        (idle timer reset per chunk)                                  (partial kept on error)
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use serde_json::Value;
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Decoder;

use super::error::{ClientError, TimeoutKind};
use crate::converse::{
    Blob, ContentBlockDelta, ContentBlockStart, ConverseMetrics, ConverseResponse, Role, StopReason,
    StreamAssembler, StreamError, StreamEvent, TokenUsage,
};
use crate::eventstream::EventStreamCodec;

/// A complete tool call, for the caller to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// `toolUseId`: echo it in the tool result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The input, parsed (`{}` for a tool with no arguments).
    pub input: Value,
}

/// One event of a streamed reply, owned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChatEvent {
    /// The reply began.
    MessageStart {
        /// Always `assistant` in practice.
        role: Role,
    },
    /// A piece of answer text.
    TextDelta {
        /// The content block.
        index: u32,
        /// The text.
        text: String,
    },
    /// A piece of the model's reasoning.
    ReasoningDelta {
        /// The content block.
        index: u32,
        /// The text.
        text: String,
    },
    /// The signature of a reasoning block.
    ReasoningSignature {
        /// The content block.
        index: u32,
        /// The signature.
        signature: String,
    },
    /// Redacted (encrypted) reasoning.
    ReasoningRedacted {
        /// The content block.
        index: u32,
        /// The opaque bytes.
        data: Blob,
    },
    /// A tool call begins (the seed's `on-prepare-tool-call` starts here).
    ToolCallStart {
        /// The content block.
        index: u32,
        /// `toolUseId`.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// A fragment of a tool call's JSON input (`on-prepare-tool-call`).
    ToolCallDelta {
        /// The content block.
        index: u32,
        /// `toolUseId`.
        id: String,
        /// The tool's name.
        name: String,
        /// This fragment of the input JSON text.
        fragment: String,
    },
    /// A tool call is complete: its input parsed.
    ToolCall {
        /// The content block.
        index: u32,
        /// The call.
        call: ToolCall,
    },
    /// A content block ended.
    BlockStop {
        /// The content block.
        index: u32,
    },
    /// The model stopped.
    MessageStop {
        /// Why.
        stop_reason: StopReason,
    },
    /// Token usage and latency (after `MessageStop`).
    Metadata {
        /// Token counts.
        usage: Option<TokenUsage>,
        /// Latency.
        metrics: Option<ConverseMetrics>,
    },
    /// An event of another kind (citations, unknown types), by name.
    Other {
        /// The content block, for block events.
        index: Option<u32>,
        /// What it is (`citation`, an unknown `:event-type`, ...).
        kind: String,
    },
    /// The end: the assembled response (the same shape `/converse` returns).
    Done(Box<ConverseResponse>),
}

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

enum State {
    Streaming,
    Finished,
}

/// A streamed reply: a [`Stream`] of [`ChatEvent`]s.
///
/// The stream yields the events as frames arrive, then [`ChatEvent::Done`] with the
/// response, then ends. On failure it yields one `Err` and ends; what had arrived stays
/// available from [`partial`](ConverseStream::partial). Nothing is retried once the
/// stream exists.
pub struct ConverseStream {
    body: BodyStream,
    buf: BytesMut,
    codec: EventStreamCodec,
    assembler: Option<StreamAssembler>,
    /// Set when the assembler was consumed by `finish`.
    finished: Option<ConverseResponse>,
    pending: VecDeque<ChatEvent>,
    /// Tool blocks: index, id, name (few; linear search).
    tools: Vec<(u32, String, String)>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    total: Option<(Duration, Pin<Box<Sleep>>)>,
    state: State,
    frames: u64,
}

impl fmt::Debug for ConverseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConverseStream")
            .field("buffered", &self.buf.len())
            .field("frames", &self.frames)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl ConverseStream {
    /// Wraps a response body. `idle` bounds the gap between chunks; `total` is the
    /// deadline of the whole call (`None`: none).
    pub(crate) fn new(
        body: BodyStream,
        idle: Duration,
        total: Option<(Duration, Instant)>,
        codec: EventStreamCodec,
    ) -> ConverseStream {
        ConverseStream {
            body,
            buf: BytesMut::new(),
            codec,
            assembler: Some(StreamAssembler::new()),
            finished: None,
            pending: VecDeque::new(),
            tools: Vec::new(),
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            total: total.map(|(d, at)| (d, Box::pin(tokio::time::sleep_until(at)))),
            state: State::Streaming,
            frames: 0,
        }
    }

    /// Everything assembled so far (after a failure: up to the failure).
    pub fn partial(&self) -> ConverseResponse {
        match (&self.assembler, &self.finished) {
            (Some(a), _) => a.partial(),
            (None, Some(r)) => r.clone(),
            (None, None) => ConverseResponse::default(),
        }
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Drives the stream to the end and returns the response; on failure, the error
    /// and the partial response.
    ///
    /// # Errors
    ///
    /// The stream's error, with [`partial`](Self::partial).
    pub async fn into_response(mut self) -> Result<ConverseResponse, (ClientError, ConverseResponse)> {
        use futures_util::StreamExt;
        while let Some(item) = self.next().await {
            match item {
                Ok(ChatEvent::Done(r)) => return Ok(*r),
                Ok(_) => {}
                Err(e) => return Err((e, self.partial())),
            }
        }
        Err((ClientError::Truncated, self.partial()))
    }

    fn fail(&mut self, e: ClientError) -> Poll<Option<Result<ChatEvent, ClientError>>> {
        tracing::debug!(error = %e, frames = self.frames, "stream failed");
        self.state = State::Finished;
        self.pending.clear();
        Poll::Ready(Some(Err(e)))
    }

    /// Feeds one decoded message to the assembler and queues the caller's events.
    fn on_message(&mut self, msg: &crate::eventstream::Message) -> Result<(), StreamError> {
        let Some(assembler) = self.assembler.as_mut() else {
            return Ok(());
        };
        self.frames += 1;
        let event = assembler.push(msg)?;
        tracing::debug!(
            event_type = msg.event_type().unwrap_or("?"),
            len = msg.as_bytes().len(),
            "stream frame"
        );
        let Some(event) = event else {
            return Ok(());
        };
        match event {
            StreamEvent::MessageStart { role } => self.pending.push_back(ChatEvent::MessageStart { role }),
            StreamEvent::ContentBlockStart { index, start } => match start {
                ContentBlockStart::ToolUse {
                    tool_use_id, name, ..
                } => {
                    let (id, name) = (tool_use_id.into_owned(), name.into_owned());
                    self.tools.push((index, id.clone(), name.clone()));
                    self.pending
                        .push_back(ChatEvent::ToolCallStart { index, id, name });
                }
                ContentBlockStart::Empty => {}
                ContentBlockStart::Unknown { kind, .. } => self.pending.push_back(ChatEvent::Other {
                    index: Some(index),
                    kind: kind.into_owned(),
                }),
            },
            StreamEvent::ContentBlockDelta { index, delta } => {
                let ev = match delta {
                    ContentBlockDelta::Text(t) => ChatEvent::TextDelta {
                        index,
                        text: t.into_owned(),
                    },
                    ContentBlockDelta::ToolUseInput(f) => {
                        if f.is_empty() {
                            return Ok(());
                        }
                        let (id, name) = self
                            .tools
                            .iter()
                            .rev()
                            .find(|(i, _, _)| *i == index)
                            .map(|(_, id, name)| (id.clone(), name.clone()))
                            .unwrap_or_default();
                        ChatEvent::ToolCallDelta {
                            index,
                            id,
                            name,
                            fragment: f.into_owned(),
                        }
                    }
                    ContentBlockDelta::ReasoningText(t) => ChatEvent::ReasoningDelta {
                        index,
                        text: t.into_owned(),
                    },
                    ContentBlockDelta::ReasoningSignature(s) => ChatEvent::ReasoningSignature {
                        index,
                        signature: s.into_owned(),
                    },
                    ContentBlockDelta::ReasoningRedacted(data) => {
                        ChatEvent::ReasoningRedacted { index, data }
                    }
                    ContentBlockDelta::Citation(_) => ChatEvent::Other {
                        index: Some(index),
                        kind: "citation".into(),
                    },
                    ContentBlockDelta::Unknown { kind, .. } => ChatEvent::Other {
                        index: Some(index),
                        kind: kind.into_owned(),
                    },
                };
                self.pending.push_back(ev);
            }
            StreamEvent::ContentBlockStop { index } => {
                if let Some(pos) = self.tools.iter().position(|(i, _, _)| *i == index) {
                    let (_, id, name) = self.tools.swap_remove(pos);
                    let raw = assembler.tool_input_raw(index).unwrap_or_default();
                    // The assembler already checked the JSON at this stop.
                    let input = if raw.trim().is_empty() {
                        Value::Object(serde_json::Map::new())
                    } else {
                        serde_json::from_str(raw).unwrap_or(Value::String(raw.to_string()))
                    };
                    self.pending.push_back(ChatEvent::ToolCall {
                        index,
                        call: ToolCall { id, name, input },
                    });
                }
                self.pending.push_back(ChatEvent::BlockStop { index });
            }
            StreamEvent::MessageStop { stop_reason, .. } => {
                tracing::debug!(stop_reason = %stop_reason, "messageStop");
                self.pending.push_back(ChatEvent::MessageStop { stop_reason });
            }
            StreamEvent::Metadata { usage, metrics, .. } => {
                if let Some(u) = &usage {
                    tracing::debug!(
                        input_tokens = u.input_tokens,
                        output_tokens = u.output_tokens,
                        total_tokens = u.total_tokens,
                        "token usage"
                    );
                }
                self.pending.push_back(ChatEvent::Metadata { usage, metrics });
            }
            StreamEvent::Unknown { event_type, .. } => self.pending.push_back(ChatEvent::Other {
                index: None,
                kind: event_type.to_string(),
            }),
        }
        Ok(())
    }

    /// The body ended: finish the assembler.
    fn on_end(&mut self) -> Result<ConverseResponse, ClientError> {
        let Some(assembler) = self.assembler.take() else {
            return Err(ClientError::Truncated);
        };
        if !self.buf.is_empty() {
            tracing::debug!(leftover = self.buf.len(), "body ended inside a frame");
            self.finished = Some(assembler.into_partial());
            return Err(ClientError::Truncated);
        }
        match assembler.finish() {
            Ok(r) => {
                self.finished = Some(r.clone());
                Ok(r)
            }
            Err(StreamError::Incomplete(inc)) => {
                self.finished = Some(inc.partial.clone());
                if inc.exception.is_none() {
                    Err(ClientError::Truncated)
                } else {
                    Err(ClientError::Stream(StreamError::Incomplete(inc)))
                }
            }
            Err(e) => Err(ClientError::Stream(e)),
        }
    }
}

impl Stream for ConverseStream {
    type Item = Result<ChatEvent, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(ev) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(ev)));
            }
            if matches!(this.state, State::Finished) {
                return Poll::Ready(None);
            }
            // Whole frames already buffered first.
            match this.codec.decode(&mut this.buf) {
                Ok(Some(msg)) => {
                    if let Err(e) = this.on_message(&msg) {
                        return this.fail(ClientError::Stream(e));
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => return this.fail(ClientError::EventStream(e)),
            }
            if let Some((after, timer)) = this.total.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    let after = *after;
                    return this.fail(ClientError::Timeout {
                        kind: TimeoutKind::Total,
                        after,
                    });
                }
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.buf.is_empty() {
                        this.buf = BytesMut::from(chunk);
                    } else {
                        this.buf.extend_from_slice(&chunk);
                    }
                    let deadline = Instant::now() + this.idle;
                    this.idle_timer.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Err(e))) => {
                    // Keep what was assembled for `partial()`.
                    return this.fail(ClientError::Body(e));
                }
                Poll::Ready(None) => match this.on_end() {
                    Ok(r) => {
                        this.state = State::Finished;
                        return Poll::Ready(Some(Ok(ChatEvent::Done(Box::new(r)))));
                    }
                    Err(e) => return this.fail(e),
                },
                Poll::Pending => {
                    if this.idle_timer.as_mut().poll(cx).is_ready() {
                        let after = this.idle;
                        return this.fail(ClientError::Timeout {
                            kind: TimeoutKind::Idle,
                            after,
                        });
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
