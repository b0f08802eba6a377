//! [`InvokeError`]: everything that can go wrong while reading an
//! `InvokeModelWithResponseStream` body, from the `chunk` wrapper to the native
//! Anthropic events inside it.

use std::fmt;

use crate::converse::{index_suffix, ServiceException};

use super::anthropic::{AnthropicMessage, BlockType};

/// Errors of the invoke layer.
///
/// None of them loses data: after any error the [`AnthropicAssembler`](super::AnthropicAssembler)
/// still holds what it assembled, and [`InvokeError::Incomplete`] carries the partial
/// message itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The service sent an exception frame (`:message-type` `exception`), for example
    /// `throttlingException` or `modelTimeoutException`.
    #[error("service exception in the invoke stream: {0}")]
    Service(ServiceException),
    /// The service sent an error frame (`:message-type` `error`).
    #[error("error frame in the invoke stream: {code}: {message}")]
    ErrorFrame {
        /// The `:error-code` header.
        code: String,
        /// The `:error-message` header.
        message: String,
    },
    /// A frame lacks a header the protocol requires.
    #[error("frame has no {header} header")]
    MissingHeader {
        /// The missing header, e.g. `:message-type`.
        header: &'static str,
    },
    /// A frame's `:message-type` is none of `event`, `exception`, `error`.
    #[error("unknown message type {message_type:?}")]
    UnknownMessageType {
        /// The `:message-type` header.
        message_type: String,
    },
    /// A `chunk` event's payload is not `{"bytes":"<base64>"}`.
    #[error("invalid chunk payload: {0}")]
    InvalidChunk(ChunkProblem),
    /// A native model event is not JSON of the shape its `type` requires.
    #[error("invalid {event_type} event: {source}")]
    InvalidEvent {
        /// The event's `type` (`"unknown"` when it could not be read).
        event_type: &'static str,
        /// What serde_json says.
        #[source]
        source: serde_json::Error,
    },
    /// The model sent an `error` event (for example `overloaded_error`).
    #[error("model error event {error_type}: {message}")]
    ModelError {
        /// `error.type`.
        error_type: String,
        /// `error.message`.
        message: String,
    },
    /// The events arrived in an order the Messages stream does not allow.
    #[error("{event_type} event {problem}{}", index_suffix(*.index))]
    OutOfOrder {
        /// The offending event's `type`.
        event_type: &'static str,
        /// The content block index, for block events.
        index: Option<u32>,
        /// What is wrong.
        problem: EventOrder,
    },
    /// A delta's kind does not match its content block (e.g. `text_delta` for a
    /// `tool_use` block).
    #[error("content block {index} is a {block} block but got a {delta} delta")]
    DeltaKindMismatch {
        /// The content block index.
        index: u32,
        /// The block's type.
        block: BlockType,
        /// The delta's `type` as sent.
        delta: &'static str,
    },
    /// The concatenated `input_json_delta` fragments of a tool call are not valid JSON.
    /// The block is kept, with the raw text as its `input` (a JSON string).
    #[error("tool {name:?} ({id}) in content block {index} has invalid input JSON: {source}")]
    InvalidToolInput {
        /// The content block index.
        index: u32,
        /// The tool's name.
        name: String,
        /// The tool call id.
        id: String,
        /// What serde_json says.
        #[source]
        source: serde_json::Error,
    },
    /// A new content block would exceed [`AnthropicAssembler::MAX_BLOCKS`](super::AnthropicAssembler::MAX_BLOCKS).
    #[error("content_block_start for index {index} would exceed the limit of {max} content blocks")]
    TooManyBlocks {
        /// The index that was refused.
        index: u32,
        /// The limit.
        max: usize,
    },
    /// The stream ended before `message_stop`; carries the partial message.
    #[error("{0}")]
    Incomplete(Box<IncompleteMessage>),
}

/// What is wrong with a `chunk` payload (see [`InvokeError::InvalidChunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkProblem {
    /// The payload is not a JSON object with a string member `bytes`.
    NotPayloadPart {
        /// serde_json's message.
        reason: String,
    },
    /// `bytes` is not valid base64.
    InvalidBase64 {
        /// The base64 crate's message.
        reason: String,
    },
    /// The decoded part would be larger than the decoder's limit.
    TooLarge {
        /// The decoded length (an upper estimate from the base64 length).
        len: usize,
        /// The limit ([`ChunkDecoder::max_part_len`](super::ChunkDecoder::max_part_len)).
        max: usize,
    },
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkProblem::NotPayloadPart { reason } => write!(f, "not {{\"bytes\": <base64>}}: {reason}"),
            ChunkProblem::InvalidBase64 { reason } => write!(f, "bytes is not base64: {reason}"),
            ChunkProblem::TooLarge { len, max } => {
                write!(f, "decoded part of about {len} bytes exceeds the limit of {max}")
            }
        }
    }
}

/// What is wrong with the order of native events (see [`InvokeError::OutOfOrder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventOrder {
    /// The event came before `message_start`.
    BeforeMessageStart,
    /// `content_block_start` for an index that already has a block.
    BlockAlreadyStarted,
    /// `content_block_start` skipping indices (Anthropic numbers blocks 0, 1, 2, ...).
    IndexGap,
    /// A delta or stop for an index that never had a `content_block_start`.
    UnknownBlock,
    /// A delta or stop for a block that was already stopped.
    BlockAlreadyStopped,
    /// `message_stop` while a content block is still open.
    BlockStillOpen,
    /// A second `message_start` or `message_stop`.
    Duplicate,
    /// The event came after `message_stop`.
    AfterMessageStop,
}

impl fmt::Display for EventOrder {
    // In the order a Messages stream meets them: message start, blocks, message stop.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventOrder::BeforeMessageStart => "came before message_start",
            EventOrder::BlockAlreadyStarted => "starts a block that already exists",
            EventOrder::IndexGap => "skips a content block index",
            EventOrder::UnknownBlock => "targets a block that never started",
            EventOrder::BlockAlreadyStopped => "targets a block that was already stopped",
            EventOrder::BlockStillOpen => "came while a content block was still open",
            EventOrder::Duplicate => "came twice",
            EventOrder::AfterMessageStop => "came after message_stop",
        })
    }
}

/// A stream that ended unfinished (see [`InvokeError::Incomplete`]).
#[derive(Debug, Clone)]
pub struct IncompleteMessage {
    /// Everything assembled before the end.
    pub partial: AnthropicMessage,
    /// Whether `message_start` was seen.
    pub started: bool,
    /// Content blocks that had no `content_block_stop`.
    pub open_blocks: Vec<u32>,
    /// The exception or model error the stream ended with, if any (its display text).
    pub ended_with: Option<String>,
    /// The exception frame the stream ended with, if it ended with one.
    pub exception: Option<ServiceException>,
}

impl fmt::Display for IncompleteMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invoke stream ended before message_stop")?;
        if !self.started {
            f.write_str(" (no message_start)")?;
        }
        if !self.open_blocks.is_empty() {
            write!(f, "; open content blocks {:?}", self.open_blocks)?;
        }
        if let Some(e) = &self.ended_with {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}
