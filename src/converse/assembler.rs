//! [`StreamAssembler`]: event-stream messages in, [`StreamEvent`]s out, and the
//! finished [`ConverseResponse`] at the end.

use serde::Deserialize;
use serde_json::Value;

use super::error::{
    BlockKind, ExceptionKind, Incomplete, Missing, OrderProblem, ServiceException, StreamError,
};
use super::event::{
    BlockDeltaWire, BlockStartWire, BlockStopWire, ContentBlockDelta, ContentBlockStart, IndexOnly,
    MessageStartWire, MessageStopWire, MetadataWire, StreamEvent,
};
use super::json;
use super::types::{
    Blob, Citation, CitationGeneratedContent, CitationsContentBlock, ContentBlock, ConverseMetrics,
    ConverseOutput, ConverseResponse, Extra, Message, ReasoningContentBlock, ReasoningTextBlock, Role,
    StopReason, TokenUsage, ToolUseBlock,
};
use crate::eventstream::{Frame, Message as EventMessage, PRELUDE_LEN};

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No `messageStart` yet.
    BeforeStart,
    /// Between `messageStart` and `messageStop`.
    Streaming,
    /// After `messageStop` (only `metadata` may follow).
    Stopped,
}

/// One content block being assembled.
#[derive(Debug, Clone)]
struct Block {
    index: u32,
    stopped: bool,
    content: BlockContent,
}

#[derive(Debug, Clone)]
enum BlockContent {
    /// Started with an empty or unknown `start`, no assembled delta yet.
    Empty,
    Text(String),
    ToolUse {
        tool_use_id: String,
        name: String,
        r#type: Option<String>,
        /// The concatenated input fragments.
        input: String,
        /// The parsed input, set at `contentBlockStop` when it is valid JSON.
        parsed: Option<Value>,
    },
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    Redacted(Vec<u8>),
    Citations {
        text: String,
        citations: Vec<Citation>,
    },
}

impl BlockContent {
    fn kind(&self) -> BlockKind {
        match self {
            BlockContent::Empty => BlockKind::Empty,
            BlockContent::Text(_) => BlockKind::Text,
            BlockContent::ToolUse { .. } => BlockKind::ToolUse,
            BlockContent::Reasoning { .. } => BlockKind::ReasoningText,
            BlockContent::Redacted(_) => BlockKind::RedactedReasoning,
            BlockContent::Citations { .. } => BlockKind::Citations,
        }
    }

    /// The content block this becomes in a response (`None` for an empty block).
    fn into_content_block(self) -> Option<ContentBlock> {
        Some(match self {
            BlockContent::Empty => return None,
            BlockContent::Text(text) => ContentBlock::Text(text),
            BlockContent::ToolUse {
                tool_use_id,
                name,
                r#type,
                input,
                parsed,
            } => ContentBlock::ToolUse(ToolUseBlock {
                tool_use_id,
                name,
                // An unfinished or invalid input is kept as its raw text.
                input: parsed.unwrap_or_else(|| parse_tool_input(&input).unwrap_or(Value::String(input))),
                r#type,
                extra: Extra::new(),
            }),
            BlockContent::Reasoning { text, signature } => {
                ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(ReasoningTextBlock {
                    text,
                    signature,
                }))
            }
            BlockContent::Redacted(bytes) => {
                ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(Blob::from(bytes)))
            }
            BlockContent::Citations { text, citations } => {
                ContentBlock::CitationsContent(CitationsContentBlock {
                    content: vec![CitationGeneratedContent {
                        text: Some(text),
                        extra: Extra::new(),
                    }],
                    citations,
                })
            }
        })
    }
}

/// Parses a tool call's concatenated input; an empty input means no arguments (`{}`).
fn parse_tool_input(input: &str) -> Result<Value, serde_json::Error> {
    if input.trim_start().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(input)
}

/// The sans-IO ConverseStream assembler.
///
/// Feed it every decoded [`Message`](crate::eventstream::Message) in order with
/// [`push`](Self::push); each call returns the typed event (borrowing from the
/// message) and updates the response being assembled. At the end call
/// [`finish`](Self::finish).
///
/// What it does for you:
///
/// - stitches deltas per content block index (blocks may interleave, as with parallel
///   tool calls); text blocks may start without `contentBlockStart`;
/// - concatenates tool-input fragments and parses them as JSON at `contentBlockStop`
///   (an empty input becomes `{}`);
/// - keeps reasoning text together with its signature, redacted reasoning as bytes,
///   and citations together with the text they cite;
/// - accepts `metadata` before or after `messageStop`, and a stream without it;
/// - turns exception and error frames into [`StreamError`]s;
/// - passes unknown event types, delta kinds and JSON members through.
///
/// After any error the assembler keeps everything assembled so far:
/// [`partial`](Self::partial) / [`into_partial`](Self::into_partial) return it, and a
/// [`finish`](Self::finish) that fails returns it inside [`StreamError::Incomplete`].
/// Events are checked before they change anything, so a rejected event leaves the
/// state as it was and the caller may keep pushing.
///
/// # Examples
///
/// ```
/// use bedrock_converse::converse::{StreamAssembler, StreamEvent};
/// use bedrock_converse::eventstream::MessageBuilder;
///
/// let event = |ty: &str, json: &str| {
///     MessageBuilder::new()
///         .string_header(":event-type", ty)
///         .string_header(":content-type", "application/json")
///         .string_header(":message-type", "event")
///         .build(json.as_bytes())
/// };
/// let mut asm = StreamAssembler::new();
/// asm.push(&event("messageStart", r#"{"role":"assistant"}"#)?)?;
/// let delta = event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#)?;
/// assert!(matches!(asm.push(&delta)?, Some(StreamEvent::ContentBlockDelta { index: 0, .. })));
/// asm.push(&event("contentBlockStop", r#"{"contentBlockIndex":0}"#)?)?;
/// asm.push(&event("messageStop", r#"{"stopReason":"end_turn"}"#)?)?;
/// let response = asm.finish()?;
/// assert_eq!(response.text(), "Hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamAssembler {
    phase: Phase,
    allow_missing_message_start: bool,
    role: Option<Role>,
    /// Sorted by index; usually appended at the end.
    blocks: Vec<Block>,
    stop_reason: Option<StopReason>,
    additional_model_response_fields: Option<Value>,
    usage: Option<TokenUsage>,
    metrics: Option<ConverseMetrics>,
    trace: Option<Value>,
    extra: Extra,
    exception: Option<ServiceException>,
}

impl Default for StreamAssembler {
    fn default() -> Self {
        StreamAssembler::new()
    }
}

// ===== impl StreamAssembler =====

impl StreamAssembler {
    /// The most content blocks one message may have; a block beyond it is refused with
    /// [`StreamError::TooManyBlocks`].
    pub const MAX_BLOCKS: usize = 4096;

    /// A new assembler, expecting `messageStart` first.
    pub fn new() -> StreamAssembler {
        StreamAssembler {
            phase: Phase::BeforeStart,
            allow_missing_message_start: false,
            role: None,
            blocks: Vec::new(),
            stop_reason: None,
            additional_model_response_fields: None,
            usage: None,
            metrics: None,
            trace: None,
            extra: Extra::new(),
            exception: None,
        }
    }

    /// Accepts streams that begin without `messageStart` (the role is then
    /// `assistant`). Bedrock always sends it; some hand-written fixtures and proxies
    /// do not. Off by default.
    #[must_use]
    pub fn allow_missing_message_start(mut self, allow: bool) -> StreamAssembler {
        self.allow_missing_message_start = allow;
        self
    }

    /// Feeds one decoded message.
    ///
    /// Returns the typed event, borrowing from `message`, or `None` for frames that
    /// carry nothing for the caller (an `initial-response` event).
    ///
    /// # Errors
    ///
    /// [`StreamError::Service`] for an exception frame, [`StreamError::ErrorFrame`] for
    /// an error frame, and the protocol errors: missing headers, invalid payloads,
    /// events out of order, a delta of the wrong kind for its block, invalid tool
    /// input JSON (at `contentBlockStop`). The assembled state is kept in every case.
    pub fn push<'m>(&mut self, message: &'m EventMessage) -> Result<Option<StreamEvent<'m>>, StreamError> {
        self.push_frame(message.as_frame())
    }

    /// [`push`](Self::push) for a frame borrowed from the caller's buffer (see
    /// [`decode_frame`](crate::eventstream::decode_frame)).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn push_frame<'m>(&mut self, frame: Frame<'m>) -> Result<Option<StreamEvent<'m>>, StreamError> {
        match bedrock_event_type(frame.as_bytes()) {
            Some(BedrockEvent::Delta) => return self.on_delta(frame.payload()),
            Some(BedrockEvent::Stop) => return self.on_block_stop(frame.payload()),
            Some(BedrockEvent::Other(event_type)) => return self.on_event(event_type, frame.payload()),
            None => {}
        }
        let (message_type, event_type) = message_and_event_type(&frame);
        match message_type {
            Some("event") => {}
            Some("exception") => return Err(self.exception_frame(frame)),
            Some("error") => {
                return Err(StreamError::ErrorFrame {
                    code: frame.error_code().unwrap_or_default().to_owned(),
                    message: frame.error_message().unwrap_or_default().to_owned(),
                })
            }
            Some(other) => {
                return Err(StreamError::UnknownMessageType {
                    message_type: other.to_owned(),
                })
            }
            None => {
                return Err(StreamError::MissingHeader {
                    header: ":message-type",
                    message_type: None,
                })
            }
        }
        let Some(event_type) = event_type else {
            return Err(StreamError::MissingHeader {
                header: ":event-type",
                message_type: Some("event".to_owned()),
            });
        };
        self.on_event(event_type, frame.payload())
    }

    /// Handles an event message by its `:event-type`.
    fn on_event<'m>(
        &mut self,
        event_type: &'m str,
        payload: &'m [u8],
    ) -> Result<Option<StreamEvent<'m>>, StreamError> {
        match event_type {
            "contentBlockDelta" => self.on_delta(payload),
            "contentBlockStart" => self.on_block_start(payload).map(Some),
            "contentBlockStop" => self.on_block_stop(payload),
            "messageStart" => self.on_message_start(payload).map(Some),
            "messageStop" => self.on_message_stop(payload).map(Some),
            "metadata" => self.on_metadata(payload).map(Some),
            "initial-response" => Ok(None),
            _ => Ok(Some(StreamEvent::Unknown { event_type, payload })),
        }
    }

    /// Ends the stream and returns the assembled response.
    ///
    /// A stream is complete when it had `messageStart`, `messageStop`, a
    /// `contentBlockStop` for every block, and valid input JSON for every tool call.
    /// `metadata` is optional (usage and metrics are then `None`).
    ///
    /// # Errors
    ///
    /// [`StreamError::Incomplete`], listing what was missing, with the exception the
    /// stream ended with (if any) and the partial response.
    pub fn finish(self) -> Result<ConverseResponse, StreamError> {
        let missing = self.missing();
        if missing.is_empty() && self.exception.is_none() {
            return Ok(self.into_partial());
        }
        let exception = self.exception.clone();
        Err(StreamError::Incomplete(Box::new(Incomplete {
            missing,
            exception,
            partial: self.into_partial(),
        })))
    }

    /// What the stream still lacks to be complete (empty when [`finish`](Self::finish)
    /// would succeed, unless an exception was received).
    pub fn missing(&self) -> Vec<Missing> {
        let mut missing = Vec::new();
        if self.phase == Phase::BeforeStart {
            missing.push(Missing::MessageStart);
        }
        for block in &self.blocks {
            if !block.stopped {
                missing.push(Missing::ContentBlockStop { index: block.index });
            } else if let BlockContent::ToolUse {
                name, parsed: None, ..
            } = &block.content
            {
                missing.push(Missing::ToolInput {
                    index: block.index,
                    name: name.clone(),
                });
            }
        }
        if self.phase != Phase::Stopped {
            missing.push(Missing::MessageStop);
        }
        missing
    }

    /// Everything assembled so far, as a response (clones it; the assembler goes on).
    ///
    /// Unstopped blocks are included as they are; a tool call whose input is not
    /// (yet) valid JSON has its raw input text as a JSON string.
    pub fn partial(&self) -> ConverseResponse {
        self.clone().into_partial()
    }

    /// Everything assembled so far, as a response, without copying.
    pub fn into_partial(self) -> ConverseResponse {
        let content: Vec<ContentBlock> = self
            .blocks
            .into_iter()
            .filter_map(|b| b.content.into_content_block())
            .collect();
        let message = if self.role.is_none() && content.is_empty() && self.phase == Phase::BeforeStart {
            None
        } else {
            Some(Message {
                role: self.role.unwrap_or(Role::Assistant),
                content,
            })
        };
        ConverseResponse {
            output: ConverseOutput {
                message,
                extra: Extra::new(),
            },
            stop_reason: self.stop_reason,
            usage: self.usage,
            metrics: self.metrics,
            additional_model_response_fields: self.additional_model_response_fields,
            trace: self.trace,
            extra: self.extra,
        }
    }

    /// Whether `messageStop` has arrived.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// The stop reason, once `messageStop` has arrived.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop_reason.as_ref()
    }

    /// The usage, once `metadata` has arrived.
    pub fn usage(&self) -> Option<&TokenUsage> {
        self.usage.as_ref()
    }

    /// The exception the stream ended with, if it did.
    pub fn exception(&self) -> Option<&ServiceException> {
        self.exception.as_ref()
    }

    /// The raw (concatenated) input text of the tool call in block `index`.
    pub fn tool_input_raw(&self, index: u32) -> Option<&str> {
        let pos = self.find(index).ok()?;
        match &self.blocks.get(pos)?.content {
            BlockContent::ToolUse { input, .. } => Some(input),
            _ => None,
        }
    }

    // ===== event handlers =====

    /// Checks that one more block is allowed.
    fn check_block_limit(&self, index: u32) -> Result<(), StreamError> {
        if self.blocks.len() >= Self::MAX_BLOCKS {
            return Err(StreamError::TooManyBlocks {
                index,
                max: Self::MAX_BLOCKS,
            });
        }
        Ok(())
    }

    fn find(&self, index: u32) -> Result<usize, usize> {
        match self.blocks.last() {
            Some(last) if last.index == index => Ok(self.blocks.len() - 1),
            Some(last) if last.index < index => Err(self.blocks.len()),
            None => Err(0),
            Some(_) => self.blocks.binary_search_by_key(&index, |b| b.index),
        }
    }

    /// Checks that content may arrive now (between start and stop).
    fn check_streaming(&mut self, event_type: &'static str, index: Option<u32>) -> Result<(), StreamError> {
        match self.phase {
            Phase::Streaming => Ok(()),
            Phase::BeforeStart if self.allow_missing_message_start => {
                self.phase = Phase::Streaming;
                Ok(())
            }
            Phase::BeforeStart => Err(StreamError::OutOfOrder {
                event_type,
                index,
                problem: OrderProblem::BeforeMessageStart,
            }),
            Phase::Stopped => Err(StreamError::OutOfOrder {
                event_type,
                index,
                problem: OrderProblem::AfterMessageStop,
            }),
        }
    }

    fn on_message_start<'m>(&mut self, payload: &'m [u8]) -> Result<StreamEvent<'m>, StreamError> {
        const ET: &str = "messageStart";
        let wire: MessageStartWire = parse(ET, payload)?;
        if self.phase != Phase::BeforeStart || self.role.is_some() {
            let problem = if self.phase == Phase::Stopped {
                OrderProblem::AfterMessageStop
            } else {
                OrderProblem::Duplicate
            };
            return Err(StreamError::OutOfOrder {
                event_type: ET,
                index: None,
                problem,
            });
        }
        self.phase = Phase::Streaming;
        self.role = Some(wire.role);
        Ok(StreamEvent::MessageStart { role: wire.role })
    }

    fn on_block_start<'m>(&mut self, payload: &'m [u8]) -> Result<StreamEvent<'m>, StreamError> {
        const ET: &str = "contentBlockStart";
        let wire: BlockStartWire<'m> = parse(ET, payload)?;
        let index = wire.index;
        self.check_streaming(ET, Some(index))?;
        let Err(pos) = self.find(index) else {
            return Err(StreamError::OutOfOrder {
                event_type: ET,
                index: Some(index),
                problem: OrderProblem::BlockAlreadyStarted,
            });
        };
        self.check_block_limit(index)?;
        let content = match &wire.start.0 {
            ContentBlockStart::ToolUse {
                tool_use_id,
                name,
                r#type,
            } => BlockContent::ToolUse {
                tool_use_id: tool_use_id.as_ref().to_owned(),
                name: name.as_ref().to_owned(),
                r#type: r#type.as_deref().map(str::to_owned),
                input: String::with_capacity(BLOCK_CAPACITY),
                parsed: None,
            },
            _ => BlockContent::Empty,
        };
        self.blocks.insert(
            pos,
            Block {
                index,
                stopped: false,
                content,
            },
        );
        Ok(StreamEvent::ContentBlockStart {
            index,
            start: wire.start.0,
        })
    }

    /// Returns the event already wrapped, so the (large) result is built in place.
    fn on_delta<'m>(&mut self, payload: &'m [u8]) -> Result<Option<StreamEvent<'m>>, StreamError> {
        const ET: &str = "contentBlockDelta";
        let (index, delta) = match json::delta_event(payload) {
            Some(fast) => fast,
            None => {
                let wire: BlockDeltaWire<'m> = parse(ET, payload)?;
                (wire.index, wire.delta.0)
            }
        };
        self.check_streaming(ET, Some(index))?;
        let pos = match self.find(index) {
            Ok(pos) => pos,
            Err(pos) => {
                match delta {
                    ContentBlockDelta::ToolUseInput(_) => {
                        return Err(StreamError::OutOfOrder {
                            event_type: ET,
                            index: Some(index),
                            problem: OrderProblem::ToolInputWithoutStart,
                        })
                    }
                    // Not assembled: no block for it.
                    ContentBlockDelta::Unknown { .. } => {
                        return Ok(Some(StreamEvent::ContentBlockDelta { index, delta }))
                    }
                    _ => {}
                }
                self.check_block_limit(index)?;
                self.blocks.insert(
                    pos,
                    Block {
                        index,
                        stopped: false,
                        content: BlockContent::Empty,
                    },
                );
                pos
            }
        };
        let Some(block) = self.blocks.get_mut(pos) else {
            // `find` returned a valid position.
            return Ok(Some(StreamEvent::ContentBlockDelta { index, delta }));
        };
        if block.stopped {
            return Err(StreamError::OutOfOrder {
                event_type: ET,
                index: Some(index),
                problem: OrderProblem::BlockAlreadyStopped,
            });
        }
        apply_delta(index, &mut block.content, &delta)?;
        Ok(Some(StreamEvent::ContentBlockDelta { index, delta }))
    }

    /// Returns the event already wrapped, as [`on_delta`](Self::on_delta).
    fn on_block_stop<'m>(&mut self, payload: &'m [u8]) -> Result<Option<StreamEvent<'m>>, StreamError> {
        const ET: &str = "contentBlockStop";
        let index = match json::stop_event(payload) {
            Some(index) => index,
            None => parse::<BlockStopWire>(ET, payload)?.index,
        };
        self.check_streaming(ET, Some(index))?;
        let block = match self.find(index) {
            Ok(pos) => self.blocks.get_mut(pos),
            Err(_) => None,
        };
        let Some(block) = block else {
            return Err(StreamError::OutOfOrder {
                event_type: ET,
                index: Some(index),
                problem: OrderProblem::UnknownBlock,
            });
        };
        if block.stopped {
            return Err(StreamError::OutOfOrder {
                event_type: ET,
                index: Some(index),
                problem: OrderProblem::BlockAlreadyStopped,
            });
        }
        block.stopped = true;
        if let BlockContent::ToolUse {
            tool_use_id,
            name,
            input,
            parsed,
            ..
        } = &mut block.content
        {
            match parse_tool_input(input) {
                Ok(v) => *parsed = Some(v),
                Err(source) => {
                    return Err(StreamError::InvalidToolInput {
                        index,
                        name: name.clone(),
                        tool_use_id: tool_use_id.clone(),
                        raw: input.clone(),
                        source,
                    })
                }
            }
        }
        Ok(Some(StreamEvent::ContentBlockStop { index }))
    }

    fn on_message_stop<'m>(&mut self, payload: &'m [u8]) -> Result<StreamEvent<'m>, StreamError> {
        const ET: &str = "messageStop";
        let wire: MessageStopWire<'m> = parse(ET, payload)?;
        if self.phase == Phase::Stopped {
            return Err(StreamError::OutOfOrder {
                event_type: ET,
                index: None,
                problem: OrderProblem::Duplicate,
            });
        }
        let additional = match wire.additional_model_response_fields {
            Some(raw) => Some(serde_json::from_str::<Value>(raw.get()).map_err(|source| {
                StreamError::InvalidPayload {
                    event_type: ET,
                    index: None,
                    source,
                }
            })?),
            None => None,
        };
        self.check_streaming(ET, None)?;
        self.phase = Phase::Stopped;
        self.stop_reason = Some(wire.stop_reason.clone());
        self.additional_model_response_fields = additional;
        Ok(StreamEvent::MessageStop {
            stop_reason: wire.stop_reason,
            additional_model_response_fields: wire.additional_model_response_fields,
        })
    }

    fn on_metadata<'m>(&mut self, payload: &'m [u8]) -> Result<StreamEvent<'m>, StreamError> {
        const ET: &str = "metadata";
        let wire: MetadataWire<'m> = parse(ET, payload)?;
        let to_value = |raw: Option<&serde_json::value::RawValue>| -> Result<Option<Value>, StreamError> {
            raw.map(|r| serde_json::from_str::<Value>(r.get()))
                .transpose()
                .map_err(|source| StreamError::InvalidPayload {
                    event_type: ET,
                    index: None,
                    source,
                })
        };
        let trace = to_value(wire.trace)?;
        let performance_config = to_value(wire.performance_config)?;
        let service_tier = to_value(wire.service_tier)?;
        if wire.usage.is_some() {
            self.usage.clone_from(&wire.usage);
        }
        if wire.metrics.is_some() {
            self.metrics.clone_from(&wire.metrics);
        }
        if trace.is_some() {
            self.trace = trace;
        }
        if let Some(v) = performance_config {
            self.extra.insert("performanceConfig".to_owned(), v);
        }
        if let Some(v) = service_tier {
            self.extra.insert("serviceTier".to_owned(), v);
        }
        Ok(StreamEvent::Metadata {
            usage: wire.usage,
            metrics: wire.metrics,
            trace: wire.trace,
        })
    }

    fn exception_frame(&mut self, frame: Frame<'_>) -> StreamError {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ExceptionWire {
            #[serde(default, alias = "Message")]
            message: Option<String>,
            #[serde(default)]
            original_status_code: Option<u16>,
            #[serde(default)]
            original_message: Option<String>,
        }
        let Some(name) = frame.exception_type() else {
            return StreamError::MissingHeader {
                header: ":exception-type",
                message_type: Some("exception".to_owned()),
            };
        };
        let payload = frame.payload();
        let wire = serde_json::from_slice::<ExceptionWire>(payload).ok();
        let (message, original_status_code, original_message) = match wire {
            Some(w) => (w.message, w.original_status_code, w.original_message),
            // Not the JSON we expect: keep the text as the message.
            None if !payload.is_empty() => (Some(String::from_utf8_lossy(payload).into_owned()), None, None),
            None => (None, None, None),
        };
        let exception = ServiceException {
            kind: ExceptionKind::from_wire(name),
            message,
            original_status_code,
            original_message,
            payload: bytes::Bytes::copy_from_slice(payload),
        };
        self.exception = Some(exception.clone());
        StreamError::Service(exception)
    }
}

/// The `:message-type` and `:event-type` string headers of a frame, read straight
/// from its header section (the frame was validated when it was decoded). Cheaper than
/// [`Frame::headers`], which decodes every header; falls back to it when the section
/// does not parse.
fn message_and_event_type<'m>(frame: &Frame<'m>) -> (Option<&'m str>, Option<&'m str>) {
    /// The raw values of `:message-type` and `:event-type`.
    type TypeValues<'b> = (Option<&'b [u8]>, Option<&'b [u8]>);
    fn scan(bytes: &[u8]) -> Option<TypeValues<'_>> {
        let headers_len = u32::from_be_bytes(*bytes.get(4..8)?.first_chunk::<4>()?);
        // A u32 always fits in usize on the 32- and 64-bit targets this crate supports.
        let mut rest = bytes.get(PRELUDE_LEN..PRELUDE_LEN.checked_add(headers_len as usize)?)?;
        let (mut message_type, mut event_type) = (None, None);
        while let Some((&name_len, tail)) = rest.split_first() {
            let name = tail.get(..usize::from(name_len))?;
            let (&ty, tail) = tail.get(usize::from(name_len)..)?.split_first()?;
            let value_len = match ty {
                0 | 1 => 0,
                2 => 1,
                3 => 2,
                4 => 4,
                5 | 8 => 8,
                9 => 16,
                6 | 7 => 2 + usize::from(u16::from_be_bytes(*tail.first_chunk::<2>()?)),
                _ => return None,
            };
            let value = tail.get(..value_len)?;
            if ty == 7 {
                let text = value.get(2..);
                match name {
                    b":message-type" if message_type.is_none() => message_type = text,
                    b":event-type" if event_type.is_none() => event_type = text,
                    _ => {}
                }
            }
            rest = tail.get(value_len..)?;
        }
        Some((message_type, event_type))
    }
    let Some((message_type, event_type)) = scan(frame.as_bytes()) else {
        return (frame_str(frame, ":message-type"), frame_str(frame, ":event-type"));
    };
    // The common names are ASCII literals; anything else is checked.
    let message_type = message_type.and_then(|v| match v {
        b"event" => Some("event"),
        b"exception" => Some("exception"),
        b"error" => Some("error"),
        other => std::str::from_utf8(other).ok(),
    });
    let event_type = event_type.and_then(|v| match v {
        b"contentBlockDelta" => Some("contentBlockDelta"),
        b"contentBlockStop" => Some("contentBlockStop"),
        other => std::str::from_utf8(other).ok(),
    });
    (message_type, event_type)
}

/// The `:event-type` of a frame whose headers are exactly what Bedrock sends for an
/// event: `:event-type`, `:content-type: application/json`, `:message-type: event`, in
/// that order. One comparison instead of a walk over the headers; `None` for any
/// other header section.
fn bedrock_event_type(bytes: &[u8]) -> Option<BedrockEvent<'_>> {
    const EVENT_TYPE: &[u8] = b"\x0b:event-type\x07\x00";
    const REST: &[u8] = b"\x0d:content-type\x07\x00\x10application/json\x0d:message-type\x07\x00\x05event";
    let headers_len = u32::from_be_bytes(*bytes.get(4..8)?.first_chunk::<4>()?);
    // A u32 always fits in usize on the 32- and 64-bit targets this crate supports.
    let headers = bytes.get(PRELUDE_LEN..PRELUDE_LEN.checked_add(headers_len as usize)?)?;
    let (&len, rest) = headers.strip_prefix(EVENT_TYPE)?.split_first()?;
    let (name, rest) = rest.split_at_checked(usize::from(len))?;
    if rest != REST {
        return None;
    }
    Some(match name {
        b"contentBlockDelta" => BedrockEvent::Delta,
        b"contentBlockStop" => BedrockEvent::Stop,
        other => BedrockEvent::Other(std::str::from_utf8(other).ok()?),
    })
}

/// The event type of a frame with Bedrock's usual headers (see [`bedrock_event_type`]).
enum BedrockEvent<'m> {
    /// `contentBlockDelta`.
    Delta,
    /// `contentBlockStop`.
    Stop,
    /// Any other event type.
    Other(&'m str),
}

fn frame_str<'m>(frame: &Frame<'m>, name: &str) -> Option<&'m str> {
    frame.headers().get_str(name)
}

/// Parses a payload, naming the event (and the block index, when readable) on error.
fn parse<'m, T: Deserialize<'m>>(event_type: &'static str, payload: &'m [u8]) -> Result<T, StreamError> {
    serde_json::from_slice(payload).map_err(|source| StreamError::InvalidPayload {
        event_type,
        index: serde_json::from_slice::<IndexOnly>(payload).ok().map(|i| i.index),
        source,
    })
}

/// The capacity a block's text or tool input starts with: most are longer than one
/// delta, so this saves the first few doublings.
const BLOCK_CAPACITY: usize = 512;

/// A block's text, starting with its first delta.
fn block_string(first: &str) -> String {
    let mut s = String::with_capacity(first.len().max(BLOCK_CAPACITY));
    s.push_str(first);
    s
}

/// Adds one delta to its block, after checking its kind.
fn apply_delta(
    index: u32,
    content: &mut BlockContent,
    delta: &ContentBlockDelta<'_>,
) -> Result<(), StreamError> {
    let mismatch = |content: &BlockContent, delta: BlockKind| StreamError::DeltaKindMismatch {
        index,
        block: content.kind(),
        delta,
    };
    match delta {
        ContentBlockDelta::Text(t) => match content {
            BlockContent::Text(s) | BlockContent::Citations { text: s, .. } => s.push_str(t),
            BlockContent::Empty => *content = BlockContent::Text(block_string(t)),
            _ => return Err(mismatch(content, BlockKind::Text)),
        },
        ContentBlockDelta::ToolUseInput(t) => match content {
            BlockContent::ToolUse { input, .. } => input.push_str(t),
            _ => return Err(mismatch(content, BlockKind::ToolUse)),
        },
        ContentBlockDelta::ReasoningText(t) => match content {
            BlockContent::Reasoning { text, .. } => text.push_str(t),
            BlockContent::Empty => {
                *content = BlockContent::Reasoning {
                    text: block_string(t),
                    signature: None,
                }
            }
            _ => return Err(mismatch(content, BlockKind::ReasoningText)),
        },
        ContentBlockDelta::ReasoningSignature(t) => match content {
            BlockContent::Reasoning { signature, .. } => {
                signature.get_or_insert_with(String::new).push_str(t);
            }
            BlockContent::Empty => {
                *content = BlockContent::Reasoning {
                    text: String::new(),
                    signature: Some(t.as_ref().to_owned()),
                }
            }
            _ => return Err(mismatch(content, BlockKind::ReasoningText)),
        },
        ContentBlockDelta::ReasoningRedacted(b) => match content {
            BlockContent::Redacted(v) => v.extend_from_slice(b.as_bytes()),
            BlockContent::Empty => *content = BlockContent::Redacted(b.as_bytes().to_vec()),
            _ => return Err(mismatch(content, BlockKind::RedactedReasoning)),
        },
        ContentBlockDelta::Citation(c) => match content {
            BlockContent::Citations { citations, .. } => citations.push(Citation::clone(c)),
            BlockContent::Text(s) => {
                *content = BlockContent::Citations {
                    text: std::mem::take(s),
                    citations: vec![Citation::clone(c)],
                }
            }
            BlockContent::Empty => {
                *content = BlockContent::Citations {
                    text: String::new(),
                    citations: vec![Citation::clone(c)],
                }
            }
            _ => return Err(mismatch(content, BlockKind::Citations)),
        },
        ContentBlockDelta::Unknown { .. } => {}
    }
    Ok(())
}
