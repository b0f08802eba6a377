//! Sans-IO translation between the clients' dialects (OpenAI Chat Completions,
//! Anthropic Messages) and Bedrock's Converse API (feature `translate`).
//!
//! ```text
//! dialect request body ──► openai::translate_request / anthropic::translate_request ──► Translated { model, stream, ConverseRequest }
//!
//! ConverseStream bytes ──► EventStreamCodec ──► StreamAssembler ──► StreamEvent ──► ChatStreamWriter / MessagesStreamWriter ──► SSE bytes
//!                                                                                   (both SseWriter; appended to the caller's buffer)
//! ConverseResponse ──► openai::chat_completion_json / anthropic::message_json ──► JSON body
//! Bedrock HTTP error / StreamError ──► ApiError ──► error_json (status, body) / writer.error (SSE event)
//! ```
//!
//! No I/O, no runtime, no clock, no randomness: ids and the `created` time come from the
//! caller, so the same events always give the same bytes. An HTTP shell parses the
//! request with `translate_request`, resolves [`Translated::model`] to a Bedrock model
//! id, sends [`ConverseRequest::to_json`] to `/converse` or `/converse-stream`, and feeds
//! each [`StreamEvent`](crate::converse::StreamEvent) the assembler returns to the
//! dialect's writer (or each whole frame to its [`SseWriter::push_frame`], which copies
//! the deltas' JSON strings as they came). Both writers are an [`SseWriter`], so a shell
//! can be generic over the dialect. Until a writer has written anything, a failure can still be retried
//! or answered with [`error_json`](openai::error_json); after that it ends the stream with
//! the writer's `error` event.
//!
//! # Example
//!
//! ```
//! use bedrock_converse::converse::{ContentBlockDelta, ContentBlockStart, Role, StopReason, StreamEvent};
//! use bedrock_converse::translate::{openai, SseWriter};
//!
//! let t = openai::translate_request(br#"{"model": "bedrock/claude", "stream": true,
//!     "messages": [{"role": "user", "content": "Weather in Oslo?"}],
//!     "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]}"#)?;
//! assert_eq!(t.model, "bedrock/claude");
//! let body = t.converse.to_json(); // POST to /model/<id>/converse-stream
//! assert!(body.starts_with(br#"{"messages":[{"role":"user","content":[{"text":"Weather in Oslo?"}]}]"#));
//!
//! let mut writer = openai::ChatStreamWriter::new("chatcmpl-1", "bedrock/claude", 1_700_000_000, false);
//! let mut sse = Vec::new();
//! for event in [
//!     StreamEvent::MessageStart { role: Role::Assistant },
//!     StreamEvent::ContentBlockStart {
//!         index: 0,
//!         start: ContentBlockStart::ToolUse { tool_use_id: "t1".into(), name: "weather".into(), r#type: None },
//!     },
//!     StreamEvent::ContentBlockDelta { index: 0, delta: ContentBlockDelta::ToolUseInput(r#"{"city":"Oslo"}"#.into()) },
//!     StreamEvent::ContentBlockStop { index: 0 },
//!     StreamEvent::MessageStop { stop_reason: StopReason::ToolUse, additional_model_response_fields: None },
//! ] {
//!     writer.push(&event, &mut sse);
//! }
//! writer.finish(&mut sse);
//! let sse = String::from_utf8(sse).unwrap();
//! assert!(sse.contains(r#""tool_calls":[{"index":0,"id":"t1","type":"function","function":{"name":"weather","arguments":""}}]"#));
//! assert!(sse.contains(r#""finish_reason":"tool_calls""#));
//! # Ok::<(), bedrock_converse::translate::TranslateError>(())
//! ```

pub mod anthropic;
pub mod openai;

mod error;
mod events;
mod forward;
mod request;
mod sse;
mod write;

pub use error::{ApiError, ErrorClass, TranslateError};
pub use request::{
    ConverseRequest, EmptyObject, InferenceConfiguration, JsonSchemaDefinition, OutputConfig, OutputFormat,
    OutputFormatStructure, SpecificToolChoice, SystemContentBlock, Tool, ToolChoice, ToolConfiguration,
    ToolInputSchema, ToolSpecification, Translated,
};
pub use sse::SseWriter;
