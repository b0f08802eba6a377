//! Layer 2 for the native-body routes: `InvokeModel`, `InvokeModelWithResponseStream`
//! and `CountTokens`. Sans-IO like [`converse`](crate::converse): no runtime, no HTTP.
//!
//! An `InvokeModelWithResponseStream` body is the same `application/vnd.amazon.eventstream`
//! framing as ConverseStream, but each `chunk` event wraps one event of the model's
//! own streaming format in base64:
//!
//! ```text
//! bytes ─► EventStreamCodec ─► Message ─► ChunkDecoder ─► &[u8] native event ─► AnthropicAssembler ─► AnthropicMessage
//!                                            │   {"bytes":"<base64>"} decoded         └► UsageReader (token counts, no allocation)
//!                                            └► exception frames: InvokeError::Service(ServiceException)
//! ```
//!
//! - [`ChunkDecoder`]: a frame in, the native event out, borrowed from a buffer it
//!   reuses (no allocation per chunk once the buffer has grown).
//! - [`AnthropicAssembler`]: the Anthropic Messages stream events (`message_start`,
//!   `content_block_*` with `text_delta` / `input_json_delta` / `thinking_delta` /
//!   `signature_delta`, `message_delta`, `message_stop` with Bedrock's
//!   `amazon-bedrock-invocationMetrics`) to the finished [`AnthropicMessage`].
//! - [`UsageReader`]: token counts for accounting, without allocating.
//! - [`Route`], [`InvokeModelRequest`], [`CountTokensRequest`], ... : the three
//!   routes' paths, header bindings and shapes from the service model.
//! - [`chunk_frame`], [`native_events`], [`exception_frame`]: the encoding side, for
//!   the built-in server and tests.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use tokio_util::codec::{Decoder, Encoder};
//! use bedrock_converse::eventstream::EventStreamCodec;
//! use bedrock_converse::invoke::{chunk_frames, AnthropicAssembler, AnthropicContentBlock, AnthropicMessage};
//!
//! // A body as the service would stream it.
//! let message = AnthropicMessage {
//!     id: "msg_bdrk_1".into(),
//!     content: vec![AnthropicContentBlock::Text { text: "Hello, world".into(), citations: vec![] }],
//!     stop_reason: Some("end_turn".into()),
//!     ..Default::default()
//! };
//! let mut codec = EventStreamCodec::default();
//! let mut body = BytesMut::new();
//! for frame in chunk_frames(&message, 4)? {
//!     codec.encode(frame, &mut body)?;
//! }
//!
//! let mut asm = AnthropicAssembler::new();
//! while let Some(frame) = codec.decode(&mut body)? {
//!     asm.push_frame(frame.as_frame())?;
//! }
//! assert_eq!(asm.finish()?, message);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod anthropic;
mod chunk;
mod encode;
mod error;
mod routes;
mod usage;

pub use anthropic::{
    AnthropicAssembler, AnthropicContentBlock, AnthropicEvent, AnthropicMessage, AnthropicUsage, BlockType,
    InvocationMetrics, NativeDelta,
};
pub use chunk::{ChunkDecoder, CHUNK_EVENT_TYPE, STREAM_EXCEPTION_TYPES};
pub use encode::{chunk_frame, chunk_frames, exception_frame, native_events};
pub use error::{ChunkProblem, EventOrder, IncompleteMessage, InvokeError};
pub use routes::{
    CountTokensInput, CountTokensRequest, CountTokensResponse, InvokeModelRequest, InvokeModelResponse,
    InvokeResponseHeaders, PerformanceConfigLatency, Route, ServiceTierType, Trace, ACCEPT, BEDROCK_ACCEPT,
    BEDROCK_CONTENT_TYPE, CACHE_READ_INPUT_TOKEN_COUNT, CACHE_WRITE_INPUT_TOKEN_COUNT, CONTENT_TYPE,
    FORWARDED_REQUEST_HEADERS, GUARDRAIL_IDENTIFIER, GUARDRAIL_VERSION, INPUT_TOKEN_COUNT,
    INVOCATION_LATENCY, OUTPUT_TOKEN_COUNT, PERFORMANCE_CONFIG_LATENCY, PROJECT_IDENTIFIER, REQUEST_METADATA,
    RETURNED_RESPONSE_HEADERS, SERVICE_TIER, TRACE,
};
pub use usage::{InvokeUsage, UsageReader};
