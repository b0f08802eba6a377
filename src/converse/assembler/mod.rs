//! [`StreamAssembler`]: event-stream messages in, [`StreamEvent`]s out, and the
//! finished [`ConverseResponse`] at the end.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::error::{BlockKind, Incomplete, OrderProblem, ServiceException, StreamError};
use super::event::{
    BlockDeltaWire, BlockStartWire, BlockStopWire, ContentBlockDelta, ContentBlockStart, IndexOnly,
    MessageStartWire, MessageStopWire, MetadataWire, StreamEvent,
};
use super::json::{self, FastDelta, FastKind};
use super::json_check::ValueCheck;
use super::types::{ConverseMetrics, ConverseResponse, Extra, Role, StopReason, TokenUsage};
use crate::eventstream::{Frame, FrameKind, Message as EventMessage};

mod block;
mod query;

use block::{check_json, Block, BlockContent, DeltaKind};
pub use query::{BlockState, ToolUseState};

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

/// The sans-IO ConverseStream assembler.
///
/// Feed it every decoded [`Message`](crate::eventstream::Message) in order with
/// [`push`](Self::push); each call returns the typed event (borrowing from the
/// message, or from the assembler for decoded escapes) and updates the response
/// being assembled. At the end call [`finish`](Self::finish).
///
/// What it does for you:
///
/// - stitches deltas per content block index (blocks may interleave, as with parallel
///   tool calls); text blocks may start without `contentBlockStart`;
/// - decodes escaped strings straight into the block's buffer (no allocation per
///   delta: allocations grow with blocks, not deltas);
/// - concatenates tool-input fragments and checks that they form one JSON value,
///   without building a tree: the check reads the input as it arrives (a KiB
///   at a time, resuming wherever a fragment was cut), so `contentBlockStop`
///   reads at most the last batch; the input is kept as the text the model wrote
///   ([`ToolInput`](super::ToolInput); an empty input becomes `{}`);
/// - keeps reasoning text together with its signature, redacted reasoning as bytes,
///   citations together with the text they cite, server tool results
///   (`toolResult` blocks with their items and status) and generated images;
/// - accepts `metadata` before or after `messageStop`, and a stream without it;
/// - turns exception and error frames into [`StreamError`]s;
/// - keeps event types, start and delta members it does not know: unknown events
///   are passed through, unknown members are kept in the assembled block as they came.
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
    /// Returns the typed event, or `None` for frames that carry nothing for the caller
    /// (an `initial-response` event). The event borrows from `message` and, for
    /// decoded escapes, from the assembler (drop it before the next `push`).
    ///
    /// # Errors
    ///
    /// [`StreamError::Service`] for an exception frame, [`StreamError::ErrorFrame`] for
    /// an error frame, and the protocol errors: missing headers, invalid payloads,
    /// events out of order, a delta of the wrong kind for its block, invalid tool
    /// input JSON (at `contentBlockStop`). A rejected event changes nothing.
    #[inline]
    pub fn push<'a>(&'a mut self, message: &'a EventMessage) -> Result<Option<StreamEvent<'a>>, StreamError> {
        self.push_frame(message.as_frame())
    }

    /// [`push`](Self::push) for a frame borrowed from the caller's buffer (see
    /// [`decode_frame`](crate::eventstream::decode_frame)).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn push_frame<'a>(&'a mut self, frame: Frame<'a>) -> Result<Option<StreamEvent<'a>>, StreamError> {
        match frame.kind() {
            FrameKind::Event { event_type } => self.on_event(event_type, frame.payload()),
            FrameKind::Exception { exception_type } => {
                Err(self.exception_frame(exception_type, frame.payload()))
            }
            FrameKind::Error { code, message } => Err(StreamError::ErrorFrame {
                code: code.unwrap_or_default().to_owned(),
                message: message.unwrap_or_default().to_owned(),
            }),
            FrameKind::Other {
                message_type: Some("event"),
            } => Err(StreamError::MissingHeader {
                header: ":event-type",
                message_type: Some("event".to_owned()),
            }),
            FrameKind::Other {
                message_type: Some(other),
            } => Err(StreamError::UnknownMessageType {
                message_type: other.to_owned(),
            }),
            _ => Err(StreamError::MissingHeader {
                header: ":message-type",
                message_type: None,
            }),
        }
    }

    /// Handles an event message by its `:event-type`. Always inlined into its one
    /// caller: the event it returns is moved once fewer.
    #[inline(always)]
    fn on_event<'a>(
        &'a mut self,
        event_type: &'a str,
        payload: &'a [u8],
    ) -> Result<Option<StreamEvent<'a>>, StreamError> {
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
    /// A stream is complete when it had `messageStart`, `messageStop`, and a
    /// `contentBlockStop` for every block (accepted only when a tool call's input is
    /// one JSON value). `metadata` is optional (usage and metrics are then `None`).
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

    // ===== event handlers =====
    //
    // Each handler reads and checks everything first and changes the state only once
    // nothing can fail any more.

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

    /// Checks that content may arrive now (between start and stop). Changes nothing:
    /// [`enter_streaming`](Self::enter_streaming) does, once the event is accepted.
    fn check_streaming(&self, event_type: &'static str, index: Option<u32>) -> Result<(), StreamError> {
        match self.phase {
            Phase::Streaming => Ok(()),
            Phase::BeforeStart if self.allow_missing_message_start => Ok(()),
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

    /// After [`check_streaming`](Self::check_streaming) passed and the event is accepted.
    fn enter_streaming(&mut self) {
        if self.phase == Phase::BeforeStart {
            self.phase = Phase::Streaming;
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
            return Err(out_of_order(ET, Some(index), OrderProblem::BlockAlreadyStarted));
        };
        self.check_block_limit(index)?;
        let mut unknown = None;
        let content = match &wire.start.0 {
            ContentBlockStart::ToolUse {
                tool_use_id,
                name,
                r#type,
            } => BlockContent::ToolUse {
                tool_use_id: tool_use_id.as_ref().to_owned(),
                name: name.as_ref().to_owned(),
                r#type: r#type.as_deref().map(str::to_owned),
                input: String::with_capacity(TOOL_INPUT_CAPACITY),
                check: ValueCheck::new(),
                checked: false,
            },
            ContentBlockStart::ToolResult {
                tool_use_id,
                r#type,
                status,
            } => BlockContent::ToolResult {
                tool_use_id: tool_use_id.as_ref().to_owned(),
                r#type: r#type.as_deref().map(str::to_owned),
                status: status.as_deref().map(str::to_owned),
                content: Vec::new(),
            },
            ContentBlockStart::Image { format } => BlockContent::Image {
                format: format.as_ref().to_owned(),
                bytes: Vec::new(),
                source: None,
                error: None,
            },
            ContentBlockStart::Unknown { kind, value } => {
                unknown = Some((kind, raw_value(ET, index, value)?));
                BlockContent::Empty
            }
            ContentBlockStart::Empty => BlockContent::Empty,
        };
        self.enter_streaming();
        if self.blocks.capacity() == 0 {
            self.blocks.reserve(BLOCKS_CAPACITY);
        }
        let mut block = Block::new(index, content);
        if let Some((kind, value)) = unknown {
            block.keep_unknown(kind, value);
        }
        self.blocks.insert(pos, block);
        Ok(StreamEvent::ContentBlockStart {
            index,
            start: wire.start.0,
        })
    }

    /// The block a delta of `kind` for `index` goes to: its position, and whether it
    /// has to be created there. Changes nothing. Always inlined: returned by value, its
    /// `Result` (the size of a `StreamError`) cost more to move than the checks.
    #[inline(always)]
    fn delta_target(&self, index: u32, kind: DeltaKind) -> Result<(usize, bool), StreamError> {
        const ET: &str = "contentBlockDelta";
        self.check_streaming(ET, Some(index))?;
        match self.find(index) {
            Ok(pos) => {
                let Some(block) = self.blocks.get(pos) else {
                    return Err(out_of_order(ET, Some(index), OrderProblem::UnknownBlock));
                };
                if block.stopped {
                    return Err(out_of_order(ET, Some(index), OrderProblem::BlockAlreadyStopped));
                }
                if !block.content.accepts(kind) {
                    return Err(StreamError::DeltaKindMismatch {
                        index,
                        block: block.content.kind(),
                        delta: kind.block_kind(),
                    });
                }
                Ok((pos, false))
            }
            Err(pos) => {
                if kind == DeltaKind::ToolInput {
                    return Err(out_of_order(ET, Some(index), OrderProblem::ToolInputWithoutStart));
                }
                self.check_block_limit(index)?;
                Ok((pos, true))
            }
        }
    }

    /// The block at `pos`, created first when `create` says so (after
    /// [`delta_target`](Self::delta_target) accepted the delta).
    #[inline(always)]
    fn target_block(&mut self, index: u32, pos: usize, create: bool) -> Option<&mut Block> {
        self.enter_streaming();
        if create {
            if self.blocks.capacity() == 0 {
                self.blocks.reserve(BLOCKS_CAPACITY);
            }
            self.blocks.insert(pos, Block::new(index, BlockContent::Empty));
        }
        self.blocks.get_mut(pos)
    }

    fn on_delta<'a>(&'a mut self, payload: &'a [u8]) -> Result<Option<StreamEvent<'a>>, StreamError> {
        const ET: &str = "contentBlockDelta";
        if let Some((index, fast)) = json::delta_event(payload) {
            if let Some(at) = self.apply_fast_delta(index, fast)? {
                return Ok(Some(self.fast_event(index, fast, at)));
            }
        }
        let wire: BlockDeltaWire<'a> = parse(ET, payload)?;
        let (index, delta) = (wire.index, wire.delta.0);
        let kind = DeltaKind::of(&delta);
        let unknown = match &delta {
            ContentBlockDelta::Unknown { kind, value } => Some((kind.clone(), raw_value(ET, index, value)?)),
            _ => None,
        };
        let (pos, create) = self.delta_target(index, kind)?;
        if let Some(block) = self.target_block(index, pos, create) {
            match unknown {
                Some((kind, value)) => block.keep_unknown(&kind, value),
                None => block.content.apply(&delta),
            }
        }
        Ok(Some(StreamEvent::ContentBlockDelta { index, delta }))
    }

    /// A string delta read by the fast path, decoded straight into its block's buffer
    /// (its escapes checked in that same pass). Returns where it went (the block's
    /// position and where the appended text starts in its buffer), or `None` when the
    /// string turned out invalid: the state is then as it was, and the caller goes to
    /// serde_json for the error.
    fn apply_fast_delta(
        &mut self,
        index: u32,
        fast: FastDelta<'_>,
    ) -> Result<Option<(usize, usize)>, StreamError> {
        let (pos, create) = match self.delta_target(index, DeltaKind::fast(fast.kind)) {
            Ok(target) => target,
            // An invalid string is reported as serde_json reports it, before anything
            // about the stream's order (as the serde_json path does).
            Err(_) if !fast.text.is_valid() => return Ok(None),
            Err(e) => return Err(e),
        };
        let phase = self.phase;
        let was_empty =
            !create && matches!(self.blocks.get(pos), Some(b) if b.content.kind() == BlockKind::Empty);
        let buffer = self
            .target_block(index, pos, create)
            .and_then(|b| b.content.buffer(fast.kind));
        if let Some(buf) = buffer {
            let start = buf.len();
            if fast.text.decode_into(buf).is_some() {
                if fast.kind == FastKind::ToolInput {
                    if let Some(block) = self.blocks.get_mut(pos) {
                        block.content.catch_up_check();
                    }
                }
                return Ok(Some((pos, start)));
            }
        }
        // Undo what `target_block` and `buffer` did (`decode_into` left the text as it was).
        self.phase = phase;
        if create {
            self.blocks.remove(pos);
        } else if let Some(block) = self.blocks.get_mut(pos).filter(|_| was_empty) {
            block.content = BlockContent::Empty;
        }
        Ok(None)
    }

    /// The event of a delta [`apply_fast_delta`](Self::apply_fast_delta) took: it
    /// borrows the payload (no escapes) or the decoded text in the block's buffer.
    fn fast_event<'a>(
        &'a self,
        index: u32,
        fast: FastDelta<'a>,
        (pos, start): (usize, usize),
    ) -> StreamEvent<'a> {
        let text = match fast.text.plain() {
            Some(plain) => plain,
            None => self
                .blocks
                .get(pos)
                .and_then(|b| b.content.buffer_ref(fast.kind))
                .and_then(|buf| buf.get(start..))
                .unwrap_or_default(),
        };
        StreamEvent::ContentBlockDelta {
            index,
            delta: json::typed_delta(fast.kind, Cow::Borrowed(text)),
        }
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
            Ok(pos) => self.blocks.get(pos).map(|b| (pos, b)),
            Err(_) => None,
        };
        let Some((pos, block)) = block else {
            return Err(out_of_order(ET, Some(index), OrderProblem::UnknownBlock));
        };
        if block.stopped {
            return Err(out_of_order(ET, Some(index), OrderProblem::BlockAlreadyStopped));
        }
        if let BlockContent::ToolUse {
            tool_use_id,
            name,
            input,
            check,
            ..
        } = &block.content
        {
            // The check read the input as it came, but for its last KiB or less:
            // serde_json is asked only when it does not accept (for the error, or for
            // what it leaves to serde_json).
            if let Err(source) = if check.accepts_all(input) {
                Ok(())
            } else {
                check_json(input)
            } {
                return Err(StreamError::InvalidToolInput {
                    index,
                    name: name.clone(),
                    tool_use_id: tool_use_id.clone(),
                    raw: input.clone(),
                    source,
                });
            }
        }
        self.enter_streaming();
        if let Some(block) = self.blocks.get_mut(pos) {
            block.stopped = true;
            if let BlockContent::ToolUse { checked, .. } = &mut block.content {
                *checked = true;
            }
        }
        Ok(Some(StreamEvent::ContentBlockStop { index }))
    }

    fn on_message_stop<'m>(&mut self, payload: &'m [u8]) -> Result<StreamEvent<'m>, StreamError> {
        const ET: &str = "messageStop";
        let wire: MessageStopWire<'m> = parse(ET, payload)?;
        if self.phase == Phase::Stopped {
            return Err(out_of_order(ET, None, OrderProblem::Duplicate));
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

    fn exception_frame(&mut self, exception_type: Option<&str>, payload: &[u8]) -> StreamError {
        let Some(name) = exception_type else {
            return StreamError::MissingHeader {
                header: ":exception-type",
                message_type: Some("exception".to_owned()),
            };
        };
        let exception = ServiceException::from_wire(name, payload);
        self.exception = Some(exception.clone());
        StreamError::Service(exception)
    }
}

/// Parses a payload, naming the event (and the block index, when readable) on error.
fn parse<'m, T: Deserialize<'m>>(event_type: &'static str, payload: &'m [u8]) -> Result<T, StreamError> {
    serde_json::from_slice(payload).map_err(|source| StreamError::InvalidPayload {
        event_type,
        index: serde_json::from_slice::<IndexOnly>(payload).ok().map(|i| i.index),
        source,
    })
}

/// An unknown member's value, kept as a JSON value.
fn raw_value(
    event_type: &'static str,
    index: u32,
    raw: &serde_json::value::RawValue,
) -> Result<Value, StreamError> {
    serde_json::from_str(raw.get()).map_err(|source| StreamError::InvalidPayload {
        event_type,
        index: Some(index),
        source,
    })
}

/// The capacity a block's text starts with: most are longer than one delta, so this
/// saves the first few doublings.
pub(super) const BLOCK_CAPACITY: usize = 512;

/// The capacity a tool call's input starts with: inputs of a few KiB are common, and
/// each doubling is a reallocation.
const TOOL_INPUT_CAPACITY: usize = 4096;

/// The block list's first capacity (most messages have a handful of blocks).
const BLOCKS_CAPACITY: usize = 16;

/// [`StreamError::OutOfOrder`] for an `event_type` event (of block `index`, for block
/// events).
fn out_of_order(event_type: &'static str, index: Option<u32>, problem: OrderProblem) -> StreamError {
    StreamError::OutOfOrder {
        event_type,
        index,
        problem,
    }
}
