//! [`AnthropicAssembler`]: the native Anthropic Messages stream events of an
//! `InvokeModelWithResponseStream` body in, the finished [`AnthropicMessage`] out.
//!
//! ```text
//! message.rs  the finished message (AnthropicMessage, blocks, usage, metrics)
//! event.rs    the events push returns (AnthropicEvent, NativeDelta)
//! wire.rs     the events' JSON shapes, read with serde
//! block.rs    one block while it is assembled
//! mod.rs      the assembler: order checks, then state changes
//! ```

mod block;
mod event;
mod message;
mod wire;

use serde_json::Value;

use crate::converse::ServiceException;
use crate::eventstream::Frame;

use super::chunk::ChunkDecoder;
use super::error::{EventOrder, IncompleteMessage, InvokeError};
use block::BlockState;
pub use event::{AnthropicEvent, NativeDelta};
pub(crate) use message::apply_usage;
pub use message::{AnthropicContentBlock, AnthropicMessage, AnthropicUsage, BlockType, InvocationMetrics};
pub(crate) use wire::{event_type, UsageDeltaWire};
use wire::{
    invalid, order, BlockDeltaWire, BlockFieldsWire, BlockStartWire, BlockStopWire, ErrorWire,
    MessageDeltaWire, MessageStartWire, MessageStopWire,
};

#[derive(Debug, Clone)]
struct Slot {
    state: BlockState,
    stopped: bool,
}

/// The assembly state, apart from the chunk decoder (so that an event borrowed from
/// the decoder's buffer can be pushed into it).
#[derive(Debug, Clone, Default)]
struct Assembly {
    message: Option<AnthropicMessage>,
    blocks: Vec<Slot>,
    stopped: bool,
    exception: Option<ServiceException>,
    model_error: Option<String>,
}

/// Assembles the native Anthropic events of an `InvokeModelWithResponseStream` body
/// into the finished [`AnthropicMessage`]: the same JSON a non-streaming
/// `InvokeModel` would have returned, plus Bedrock's invocation metrics.
///
/// ```text
/// ping* ─► message_start ─► ( content_block_start ─► content_block_delta* ─► content_block_stop )*
///       ─► message_delta (stop_reason, usage) ─► message_stop (amazon-bedrock-invocationMetrics)
/// ```
///
/// Sans-IO: feed it native events ([`push`](Self::push)) or whole event-stream
/// frames ([`push_frame`](Self::push_frame), which decodes the `chunk` wrapper with
/// its own [`ChunkDecoder`]). Every event is checked before anything changes: an
/// event that is refused leaves the assembler as it was, and the partial message stays
/// available ([`partial`](Self::partial)).
///
/// # Example
///
/// ```
/// use bedrock_converse::invoke::AnthropicAssembler;
///
/// let mut asm = AnthropicAssembler::new();
/// for event in [
///     r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
///     r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}"#,
///     r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
///     r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}"#,
///     r#"{"type":"content_block_stop","index":0}"#,
///     r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}}"#,
///     r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":9,"invocationLatency":420,"firstByteLatency":180}}"#,
/// ] {
///     asm.push(event.as_bytes())?;
/// }
/// let message = asm.finish()?;
/// let (_, name, input) = message.tool_uses().next().expect("a tool call");
/// assert_eq!((name, input), ("weather", &serde_json::json!({"city": "Oslo"})));
/// assert_eq!(message.stop_reason.as_deref(), Some("tool_use"));
/// assert_eq!(message.usage.output_tokens, 9);
/// assert_eq!(message.invocation_metrics.map(|m| m.first_byte_latency), Some(180));
/// # Ok::<(), bedrock_converse::invoke::InvokeError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AnthropicAssembler {
    decoder: ChunkDecoder,
    asm: Assembly,
}

impl AnthropicAssembler {
    /// The most content blocks one message may have (a guard against hostile streams).
    pub const MAX_BLOCKS: usize = 4096;

    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// An assembler whose frame decoder is `decoder` (for its part limit).
    pub fn with_decoder(decoder: ChunkDecoder) -> Self {
        AnthropicAssembler {
            decoder,
            asm: Assembly::default(),
        }
    }

    /// Decodes one event-stream frame of the response body and pushes the native event
    /// it carries. `Ok(None)` for a frame that carries none (an unknown event type).
    ///
    /// # Errors
    ///
    /// Everything [`ChunkDecoder::decode`] and [`push`](Self::push) return. An
    /// exception frame is also kept, for [`exception`](Self::exception) and
    /// [`finish`](Self::finish).
    pub fn push_frame<'s>(&'s mut self, frame: Frame<'_>) -> Result<Option<AnthropicEvent<'s>>, InvokeError> {
        match self.decoder.decode(frame) {
            Ok(Some(event)) => self.asm.push(event).map(Some),
            Ok(None) => Ok(None),
            Err(e) => {
                if let InvokeError::Service(exception) = &e {
                    self.asm.exception = Some(exception.clone());
                }
                Err(e)
            }
        }
    }

    /// Pushes one native event (the JSON bytes of one Messages stream event).
    ///
    /// # Errors
    ///
    /// [`InvokeError::InvalidEvent`] for JSON that does not have its event's shape,
    /// [`InvokeError::OutOfOrder`], [`InvokeError::DeltaKindMismatch`] and
    /// [`InvokeError::TooManyBlocks`] for events the stream's order does not allow
    /// (nothing changes), [`InvokeError::ModelError`] for an `error` event, and
    /// [`InvokeError::InvalidToolInput`] from `content_block_stop` when a tool call's
    /// input is not JSON (the block is stopped, its input kept as the raw string).
    pub fn push<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        self.asm.push(event)
    }

    /// The exception the stream ended with, if an exception frame came through
    /// [`push_frame`](Self::push_frame).
    pub fn exception(&self) -> Option<&ServiceException> {
        self.asm.exception.as_ref()
    }

    /// Whether `message_stop` was seen.
    pub fn is_complete(&self) -> bool {
        self.asm.stopped
    }

    /// Everything assembled so far, as a message (open blocks included as they are).
    pub fn partial(&self) -> AnthropicMessage {
        self.asm.message().0
    }

    /// The finished message.
    ///
    /// # Errors
    ///
    /// [`InvokeError::Incomplete`] when `message_stop` never came (the partial message,
    /// the open blocks and the exception are in it).
    pub fn finish(self) -> Result<AnthropicMessage, InvokeError> {
        let (message, _) = self.asm.message();
        if self.asm.stopped {
            return Ok(message);
        }
        let open_blocks = self
            .asm
            .blocks
            .iter()
            .zip(0u32..)
            .filter(|(slot, _)| !slot.stopped)
            .map(|(_, i)| i)
            .collect();
        let ended_with = match (&self.asm.exception, &self.asm.model_error) {
            (Some(e), _) => Some(e.to_string()),
            (None, Some(m)) => Some(m.clone()),
            (None, None) => None,
        };
        Err(InvokeError::Incomplete(Box::new(IncompleteMessage {
            started: self.asm.message.is_some(),
            open_blocks,
            ended_with,
            exception: self.asm.exception,
            partial: message,
        })))
    }
}

impl Assembly {
    fn message(&self) -> (AnthropicMessage, Option<serde_json::Error>) {
        let mut message = self.message.clone().unwrap_or_default();
        let mut first_err = None;
        message.content.clear();
        for slot in &self.blocks {
            let (block, err) = slot.state.to_block();
            message.content.push(block);
            if first_err.is_none() {
                first_err = err;
            }
        }
        (message, first_err)
    }

    /// The common checks of every event but `ping` and `error`.
    fn check_started(&self, event_type: &'static str, index: Option<u32>) -> Result<(), InvokeError> {
        if self.message.is_none() {
            return Err(order(event_type, index, EventOrder::BeforeMessageStart));
        }
        if self.stopped {
            return Err(order(event_type, index, EventOrder::AfterMessageStop));
        }
        Ok(())
    }

    /// The open block at `index`, checked.
    fn open_block(&self, event_type: &'static str, index: u32) -> Result<usize, InvokeError> {
        self.check_started(event_type, Some(index))?;
        // A u32 always fits in usize on the 32- and 64-bit targets this crate supports.
        let i = index as usize;
        match self.blocks.get(i) {
            None => Err(order(event_type, Some(index), EventOrder::UnknownBlock)),
            Some(slot) if slot.stopped => {
                Err(order(event_type, Some(index), EventOrder::BlockAlreadyStopped))
            }
            Some(_) => Ok(i),
        }
    }

    fn push<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        let ty = event_type(event).map_err(invalid("unknown"))?;
        match &*ty {
            "content_block_delta" => self.delta(event),
            "ping" => {
                // The type came from the prefix: the rest must still be JSON.
                serde_json::from_slice::<serde::de::IgnoredAny>(event).map_err(invalid("ping"))?;
                Ok(AnthropicEvent::Ping)
            }
            "message_start" => self.message_start(event),
            "content_block_start" => self.block_start(event),
            "content_block_stop" => self.block_stop(event),
            "message_delta" => self.message_delta(event),
            "message_stop" => self.message_stop(event),
            "error" => {
                let wire: ErrorWire = serde_json::from_slice(event).map_err(invalid("error"))?;
                let error = InvokeError::ModelError {
                    error_type: wire.error.ty,
                    message: wire.error.message,
                };
                self.model_error = Some(error.to_string());
                Err(error)
            }
            _ => {
                serde_json::from_slice::<serde::de::IgnoredAny>(event).map_err(invalid("unknown"))?;
                Ok(AnthropicEvent::Unknown { event_type: ty })
            }
        }
    }

    fn message_start<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        let wire: MessageStartWire = serde_json::from_slice(event).map_err(invalid("message_start"))?;
        if self.message.is_some() {
            return Err(order("message_start", None, EventOrder::Duplicate));
        }
        let mut message = wire.message;
        // Blocks come as events; a start with content is kept as sent in `extra`-free form.
        message.content.clear();
        self.message = Some(message);
        Ok(AnthropicEvent::MessageStart)
    }

    fn block_start<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "content_block_start";
        let wire: BlockStartWire<'_> = serde_json::from_slice(event).map_err(invalid(TY))?;
        let index = wire.index;
        self.check_started(TY, Some(index))?;
        // A u32 always fits in usize on the 32- and 64-bit targets this crate supports.
        let i = index as usize;
        if i < self.blocks.len() {
            return Err(order(TY, Some(index), EventOrder::BlockAlreadyStarted));
        }
        if self.blocks.len() >= AnthropicAssembler::MAX_BLOCKS {
            return Err(InvokeError::TooManyBlocks {
                index,
                max: AnthropicAssembler::MAX_BLOCKS,
            });
        }
        if i > self.blocks.len() {
            return Err(order(TY, Some(index), EventOrder::IndexGap));
        }
        let fields: BlockFieldsWire = serde_json::from_str(wire.content_block.get()).map_err(invalid(TY))?;
        let state = match fields.ty.as_str() {
            "text" => BlockState::Text {
                text: fields.text,
                citations: fields.citations.unwrap_or_default(),
            },
            "tool_use" => BlockState::ToolUse {
                id: fields.id,
                name: fields.name,
                start_input: fields
                    .input
                    .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
                json: String::new(),
                has_delta: false,
            },
            "thinking" => BlockState::Thinking {
                thinking: fields.thinking,
                signature: fields.signature,
            },
            "redacted_thinking" => BlockState::RedactedThinking { data: fields.data },
            _ => BlockState::Other {
                value: serde_json::from_str(wire.content_block.get()).map_err(invalid(TY))?,
                json: String::new(),
                has_delta: false,
            },
        };
        let block_type = state.block_type();
        self.blocks.push(Slot {
            state,
            stopped: false,
        });
        Ok(AnthropicEvent::ContentBlockStart { index, block_type })
    }

    fn delta<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "content_block_delta";
        let wire: BlockDeltaWire<'a> = serde_json::from_slice(event).map_err(invalid(TY))?;
        let index = wire.index;
        let d = wire.delta;
        let missing = |field: &'static str| InvokeError::InvalidEvent {
            event_type: TY,
            source: serde::de::Error::missing_field(field),
        };
        let delta = match &*d.ty {
            "text_delta" => NativeDelta::Text(d.text.ok_or_else(|| missing("text"))?.0),
            "input_json_delta" => {
                NativeDelta::InputJson(d.partial_json.ok_or_else(|| missing("partial_json"))?.0)
            }
            "thinking_delta" => NativeDelta::Thinking(d.thinking.ok_or_else(|| missing("thinking"))?.0),
            "signature_delta" => NativeDelta::Signature(d.signature.ok_or_else(|| missing("signature"))?.0),
            "citations_delta" => NativeDelta::Citation(d.citation.ok_or_else(|| missing("citation"))?.get()),
            _ => {
                return Err(InvokeError::InvalidEvent {
                    event_type: TY,
                    source: serde::de::Error::unknown_variant(
                        &d.ty,
                        &[
                            "text_delta",
                            "input_json_delta",
                            "thinking_delta",
                            "signature_delta",
                            "citations_delta",
                        ],
                    ),
                })
            }
        };
        let i = self.open_block(TY, index)?;
        let slot = self.blocks.get_mut(i).ok_or(InvokeError::OutOfOrder {
            event_type: TY,
            index: Some(index),
            problem: EventOrder::UnknownBlock,
        })?;
        if !slot.state.accepts(&delta) {
            return Err(InvokeError::DeltaKindMismatch {
                index,
                block: slot.state.block_type(),
                delta: delta.wire_name(),
            });
        }
        slot.state.apply(&delta);
        Ok(AnthropicEvent::ContentBlockDelta { index, delta })
    }

    fn block_stop<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "content_block_stop";
        let wire: BlockStopWire = serde_json::from_slice(event).map_err(invalid(TY))?;
        let index = wire.index;
        let i = self.open_block(TY, index)?;
        let Some(slot) = self.blocks.get_mut(i) else {
            return Err(InvokeError::OutOfOrder {
                event_type: TY,
                index: Some(index),
                problem: EventOrder::UnknownBlock,
            });
        };
        slot.stopped = true;
        if let BlockState::ToolUse {
            json,
            has_delta: true,
            id,
            name,
            ..
        } = &slot.state
        {
            if !json.trim().is_empty() {
                if let Err(source) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
                    return Err(InvokeError::InvalidToolInput {
                        index,
                        name: name.clone(),
                        id: id.clone(),
                        source,
                    });
                }
            }
        }
        Ok(AnthropicEvent::ContentBlockStop { index })
    }

    fn message_delta<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "message_delta";
        let wire: MessageDeltaWire<'a> = serde_json::from_slice(event).map_err(invalid(TY))?;
        self.check_started(TY, None)?;
        let Some(message) = self.message.as_mut() else {
            return Err(InvokeError::OutOfOrder {
                event_type: TY,
                index: None,
                problem: EventOrder::BeforeMessageStart,
            });
        };
        if let Some(reason) = &wire.delta.stop_reason {
            message.stop_reason = Some(reason.0.clone().into_owned());
        }
        if let Some(seq) = &wire.delta.stop_sequence {
            message.stop_sequence = Some(seq.0.clone().into_owned());
        }
        let usage = wire.usage.unwrap_or_default();
        apply_usage(&mut message.usage, &usage);
        Ok(AnthropicEvent::MessageDelta {
            stop_reason: wire.delta.stop_reason.map(|s| s.0),
            output_tokens: usage.output_tokens,
        })
    }

    fn message_stop<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "message_stop";
        let wire: MessageStopWire = serde_json::from_slice(event).map_err(invalid(TY))?;
        self.check_started(TY, None)?;
        if let Some(open) = self.blocks.iter().zip(0u32..).find(|(s, _)| !s.stopped) {
            return Err(order(TY, Some(open.1), EventOrder::BlockStillOpen));
        }
        if let Some(message) = self.message.as_mut() {
            if wire.metrics.is_some() {
                message.invocation_metrics = wire.metrics;
            }
        }
        self.stopped = true;
        Ok(AnthropicEvent::MessageStop {
            metrics: wire.metrics,
        })
    }
}
