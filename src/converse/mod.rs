//! Layer 2: the sans-IO ConverseStream assembler (messages in, typed events out).
//!
//! [`StreamAssembler`] takes the decoded event-stream [`Message`](crate::eventstream::Message)s
//! of a `ConverseStream` response body one at a time and returns a typed
//! [`StreamEvent`] for each (strings borrowed from the frame when they need no
//! unescaping), while it stitches the content blocks together. At the end,
//! [`StreamAssembler::finish`] returns the same [`ConverseResponse`] the non-streaming
//! `Converse` API would have returned. No I/O, no runtime, no clock: feed it bytes
//! from anywhere.
//!
//! ```text
//! messageStart ─► contentBlockStart? ─► contentBlockDelta* ─► contentBlockStop   (per block index,
//!                                                                                  blocks may interleave)
//!              ─► messageStop ─► metadata?   (usage, metrics; real streams send it last)
//! exception / error frames ─► StreamError (the partial response stays available)
//! ```
//!
//! The JSON types ([`ConverseResponse`], [`Message`], [`ContentBlock`], ...) use
//! Bedrock's exact member names, so they also serve to build requests.
//!
//! # Example
//!
//! Decode a response body and assemble it:
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//! use bedrock_converse::converse::{ContentBlock, StreamAssembler, StreamEvent};
//! use bedrock_converse::eventstream::{EventStreamCodec, MessageBuilder};
//!
//! // A body as Bedrock would send it.
//! let mut codec = EventStreamCodec::default();
//! let mut body = BytesMut::new();
//! for (ty, json) in [
//!     ("messageStart", r#"{"role":"assistant"}"#),
//!     ("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Let me check."},"p":"abc"}"#),
//!     ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
//!     ("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"weather"}}}"#),
//!     ("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}}}"#),
//!     ("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Oslo\"}"}}}"#),
//!     ("contentBlockStop", r#"{"contentBlockIndex":1}"#),
//!     ("messageStop", r#"{"stopReason":"tool_use"}"#),
//!     ("metadata", r#"{"usage":{"inputTokens":10,"outputTokens":5,"totalTokens":15},"metrics":{"latencyMs":42}}"#),
//! ] {
//!     let frame = MessageBuilder::new()
//!         .string_header(":event-type", ty)
//!         .string_header(":content-type", "application/json")
//!         .string_header(":message-type", "event")
//!         .build(json.as_bytes())?;
//!     codec.encode(&frame, &mut body)?;
//! }
//!
//! let mut assembler = StreamAssembler::new();
//! while let Some(message) = codec.decode(&mut body)? {
//!     if let Some(StreamEvent::ContentBlockDelta { index, delta }) = assembler.push(&message)? {
//!         println!("block {index}: {delta:?}");
//!     }
//! }
//! let response = assembler.finish()?;
//! assert_eq!(response.text(), "Let me check.");
//! let call = response.tool_uses().next().expect("a tool call");
//! assert_eq!(call.name, "weather");
//! assert_eq!(call.input, serde_json::json!({"city": "Oslo"}));
//! assert_eq!(response.usage.as_ref().map(|u| u.total_tokens), Some(15));
//! assert!(matches!(response.content()[0], ContentBlock::Text(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod assembler;
mod error;
mod event;
pub(crate) mod json;
mod json_check;
mod types;

pub use assembler::{BlockState, StreamAssembler, ToolUseState};
pub(crate) use error::index_suffix;
pub use error::{BlockKind, ExceptionKind, Incomplete, Missing, OrderProblem, ServiceException, StreamError};
pub use event::{ContentBlockDelta, ContentBlockStart, ImageDelta, StreamEvent};
pub use types::{
    Blob, CacheDetail, CachePointBlock, Citation, CitationGeneratedContent, CitationSourceContent,
    CitationsContentBlock, ContentBlock, ConverseMetrics, ConverseOutput, ConverseResponse, DocumentBlock,
    Extra, ImageBlock, MediaSource, Message, ReasoningContentBlock, ReasoningTextBlock, Role, S3Location,
    StopReason, TokenUsage, ToolInput, ToolResultBlock, ToolResultContentBlock, ToolUseBlock,
};
