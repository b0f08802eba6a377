//! [`StreamError`]: everything that can go wrong while assembling a ConverseStream, and
//! [`ServiceException`], the exceptions Bedrock sends inside the stream.

use std::fmt;

use bytes::Bytes;

use super::types::ConverseResponse;

/// Errors of the assembler layer.
///
/// None of them loses data: after any error the assembler still holds everything it
/// assembled ([`StreamAssembler::partial`](super::StreamAssembler::partial)), and
/// [`StreamError::Incomplete`] carries the partial response itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The service sent an exception frame (`:message-type` `exception`).
    #[error("service exception: {0}")]
    Service(ServiceException),
    /// The service sent an error frame (`:message-type` `error`).
    #[error("error frame: {code}: {message}")]
    ErrorFrame {
        /// The `:error-code` header.
        code: String,
        /// The `:error-message` header.
        message: String,
    },
    /// A frame lacks a header the protocol requires.
    #[error("frame has no {header} header (message type {message_type:?})")]
    MissingHeader {
        /// The missing header, e.g. `:event-type`.
        header: &'static str,
        /// The frame's `:message-type`, if any.
        message_type: Option<String>,
    },
    /// A frame's `:message-type` is none of `event`, `exception`, `error`.
    #[error("unknown message type {message_type:?}")]
    UnknownMessageType {
        /// The `:message-type` header.
        message_type: String,
    },
    /// An event's JSON payload does not have the shape of its event type.
    #[error("invalid {event_type} payload{}: {source}", index_suffix(*.index))]
    InvalidPayload {
        /// The `:event-type`.
        event_type: &'static str,
        /// The content block index, when it could be read.
        index: Option<u32>,
        /// What serde_json says.
        #[source]
        source: serde_json::Error,
    },
    /// The events arrived in an order the protocol does not allow.
    #[error("{event_type} event {problem}{}", index_suffix(*.index))]
    OutOfOrder {
        /// The `:event-type` of the offending event.
        event_type: &'static str,
        /// The content block index, for block events.
        index: Option<u32>,
        /// What is wrong.
        problem: OrderProblem,
    },
    /// A delta's kind does not match the kind of its content block (e.g. a text delta
    /// for a tool-use block).
    #[error("content block {index} is a {block} block but got a {delta} delta")]
    DeltaKindMismatch {
        /// The content block index.
        index: u32,
        /// The block's kind so far.
        block: BlockKind,
        /// The delta's kind.
        delta: BlockKind,
    },
    /// The concatenated input of a tool call is not valid JSON, at its
    /// `contentBlockStop`. The stop is rejected, so the block stays open; partial
    /// responses carry the raw text as its `input` (a JSON string).
    #[error("tool {name:?} ({tool_use_id}) in content block {index} has invalid input JSON: {source}")]
    InvalidToolInput {
        /// The content block index.
        index: u32,
        /// The tool's name.
        name: String,
        /// The tool call id.
        tool_use_id: String,
        /// The raw input text as streamed.
        raw: String,
        /// What serde_json says.
        #[source]
        source: serde_json::Error,
    },
    /// A new content block would exceed [`StreamAssembler::MAX_BLOCKS`](super::StreamAssembler::MAX_BLOCKS)
    /// (a guard against hostile streams; Bedrock sends a handful).
    #[error("content block {index} would exceed the limit of {max} content blocks")]
    TooManyBlocks {
        /// The index of the block that was refused.
        index: u32,
        /// The limit.
        max: usize,
    },
    /// The stream ended before it was complete; carries what was missing and the
    /// partial response.
    #[error("{0}")]
    Incomplete(Box<Incomplete>),
}

/// ` (content block N)` for block events, nothing otherwise (shared by the invoke
/// layer's errors).
pub(crate) fn index_suffix(index: Option<u32>) -> String {
    index.map_or_else(String::new, |i| format!(" (content block {i})"))
}

/// What is wrong with the order of events (see [`StreamError::OutOfOrder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderProblem {
    /// The event came before `messageStart`.
    BeforeMessageStart,
    /// The event came after `messageStop` (only `metadata` may).
    AfterMessageStop,
    /// A second `messageStart` or `messageStop`.
    Duplicate,
    /// `contentBlockStart` for an index that already has a block.
    BlockAlreadyStarted,
    /// A delta or stop for a block that was already stopped.
    BlockAlreadyStopped,
    /// `contentBlockStop` for an index that never had a start or a delta.
    UnknownBlock,
    /// A tool-input delta for a block that had no `contentBlockStart` with `toolUse`.
    ToolInputWithoutStart,
}

impl fmt::Display for OrderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrderProblem::BeforeMessageStart => "came before messageStart",
            OrderProblem::AfterMessageStop => "came after messageStop",
            OrderProblem::Duplicate => "came twice",
            OrderProblem::BlockAlreadyStarted => "starts a block that already exists",
            OrderProblem::BlockAlreadyStopped => "targets a block that was already stopped",
            OrderProblem::UnknownBlock => "stops a block that never started",
            OrderProblem::ToolInputWithoutStart => "carries tool input for a block with no toolUse start",
        })
    }
}

/// The kind of a content block, or of a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockKind {
    /// Started with an empty or unknown `start`, no delta yet.
    Empty,
    /// `text`.
    Text,
    /// `toolUse`.
    ToolUse,
    /// `reasoningContent` text and signature.
    ReasoningText,
    /// `reasoningContent.redactedContent`.
    RedactedReasoning,
    /// Text with `citation` deltas.
    Citations,
    /// `toolResult`: the result of a server-side tool.
    ToolResult,
    /// `image`.
    Image,
    /// A kind this crate does not know, kept as it arrived.
    Other,
}

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockKind::Empty => "empty",
            BlockKind::Text => "text",
            BlockKind::ToolUse => "toolUse",
            BlockKind::ReasoningText => "reasoning text",
            BlockKind::RedactedReasoning => "redacted reasoning",
            BlockKind::Citations => "citation",
            BlockKind::ToolResult => "toolResult",
            BlockKind::Image => "image",
            BlockKind::Other => "unknown",
        })
    }
}

/// A stream that ended unfinished (see [`StreamError::Incomplete`]).
#[derive(Debug, Clone)]
pub struct Incomplete {
    /// What the stream lacked, in stream order.
    pub missing: Vec<Missing>,
    /// The exception the stream ended with, if it ended with one.
    pub exception: Option<ServiceException>,
    /// Everything assembled before the end.
    pub partial: ConverseResponse,
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.missing.is_empty() {
            f.write_str("stream ended with an exception")?;
        } else {
            f.write_str("stream ended incomplete: missing ")?;
            for (i, m) in self.missing.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{m}")?;
            }
        }
        if let Some(e) = &self.exception {
            write!(f, " ({e})")?;
        }
        Ok(())
    }
}

/// One thing an unfinished stream lacked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// No `messageStart` event.
    MessageStart,
    /// No `contentBlockStop` for this block.
    ContentBlockStop {
        /// The content block index.
        index: u32,
    },
    /// This tool call's input never became valid JSON.
    ToolInput {
        /// The content block index.
        index: u32,
        /// The tool's name.
        name: String,
    },
    /// No `messageStop` event.
    MessageStop,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::MessageStart => f.write_str("messageStart"),
            Missing::ContentBlockStop { index } => write!(f, "contentBlockStop for block {index}"),
            Missing::ToolInput { index, name } => {
                write!(f, "valid input JSON for tool {name:?} (block {index})")
            }
            Missing::MessageStop => f.write_str("messageStop"),
        }
    }
}

/// An exception Bedrock sent inside the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceException {
    /// Which exception (`:exception-type`).
    pub kind: ExceptionKind,
    /// `message` from the payload.
    pub message: Option<String>,
    /// `originalStatusCode` (modelStreamErrorException): the model's own status.
    pub original_status_code: Option<u16>,
    /// `originalMessage` (modelStreamErrorException): the model's own message.
    pub original_message: Option<String>,
    /// The raw payload, as sent.
    pub payload: Bytes,
}

impl ServiceException {
    /// Reads an exception frame: its `:exception-type` and its JSON payload (`message`,
    /// `originalStatusCode`, `originalMessage`). A payload that is not that JSON is kept
    /// as the message text; the raw payload is kept either way.
    pub fn from_wire(exception_type: &str, payload: &[u8]) -> ServiceException {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ExceptionWire {
            #[serde(default, alias = "Message")]
            message: Option<String>,
            #[serde(default)]
            original_status_code: Option<u16>,
            #[serde(default)]
            original_message: Option<String>,
        }
        let (message, original_status_code, original_message) =
            match serde_json::from_slice::<ExceptionWire>(payload) {
                Ok(w) => (w.message, w.original_status_code, w.original_message),
                // Not the JSON we expect: keep the text as the message.
                Err(_) if !payload.is_empty() => {
                    (Some(String::from_utf8_lossy(payload).into_owned()), None, None)
                }
                Err(_) => (None, None, None),
            };
        ServiceException {
            kind: ExceptionKind::from_wire(exception_type),
            message,
            original_status_code,
            original_message,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// Whether retrying the request later may succeed (throttling, unavailable,
    /// internal errors, a model timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ExceptionKind::Throttling
                | ExceptionKind::ServiceUnavailable
                | ExceptionKind::InternalServer
                | ExceptionKind::ModelTimeout
        )
    }
}

impl fmt::Display for ServiceException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(code) = self.original_status_code {
            write!(f, " (model status {code}")?;
            if let Some(m) = &self.original_message {
                write!(f, ": {m}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceException {}

/// The `:exception-type` of a [`ServiceException`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExceptionKind {
    /// `throttlingException`.
    Throttling,
    /// `modelStreamErrorException`: the model failed mid-stream.
    ModelStreamError,
    /// `validationException`.
    Validation,
    /// `internalServerException`.
    InternalServer,
    /// `serviceUnavailableException`.
    ServiceUnavailable,
    /// `modelTimeoutException` (InvokeModelWithResponseStream): the model took too long.
    ModelTimeout,
    /// Any other exception type, as named on the wire.
    Other(String),
}

impl ExceptionKind {
    /// Parses an `:exception-type` (either case of the first letter is accepted).
    pub fn from_wire(name: &str) -> ExceptionKind {
        let lower_first = |s: &str, want: &str| {
            s.len() == want.len()
                && s.get(1..) == want.get(1..)
                && s.get(..1).map(str::to_ascii_lowercase).as_deref() == want.get(..1)
        };
        let known = [
            ("throttlingException", ExceptionKind::Throttling),
            ("modelStreamErrorException", ExceptionKind::ModelStreamError),
            ("validationException", ExceptionKind::Validation),
            ("internalServerException", ExceptionKind::InternalServer),
            ("serviceUnavailableException", ExceptionKind::ServiceUnavailable),
            ("modelTimeoutException", ExceptionKind::ModelTimeout),
        ];
        for (wire, kind) in known {
            if lower_first(name, wire) {
                return kind;
            }
        }
        ExceptionKind::Other(name.to_owned())
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ExceptionKind::Throttling => "throttlingException",
            ExceptionKind::ModelStreamError => "modelStreamErrorException",
            ExceptionKind::Validation => "validationException",
            ExceptionKind::InternalServer => "internalServerException",
            ExceptionKind::ServiceUnavailable => "serviceUnavailableException",
            ExceptionKind::ModelTimeout => "modelTimeoutException",
            ExceptionKind::Other(s) => s,
        }
    }
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
