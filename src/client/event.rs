//! [`ChatEvent`]: the events of a streamed reply, owned, in layer 2's vocabulary.
//!
//! Each variant is the owned form of a [`StreamEvent`] of the same name (the start and
//! delta unions as [`BlockStart`] and [`BlockDelta`]), plus two of the client's own:
//! [`ChatEvent::ToolCall`] (a tool block's input, checked and parsed, just before its
//! `ContentBlockStop`) and [`ChatEvent::Done`] (the assembled response). Nothing of the
//! layer-2 event is dropped: unknown events, starts and deltas keep their name and value.

use bytes::Bytes;
use serde_json::Value;

use crate::converse::{
    Blob, Citation, ContentBlockDelta, ContentBlockStart, ConverseMetrics, ConverseResponse, ImageDelta,
    Role, StopReason, StreamEvent, TokenUsage, ToolResultContentBlock,
};

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

/// One event of a streamed reply, owned: [`StreamEvent`]'s variants by the same names,
/// then the client's [`ToolCall`](ChatEvent::ToolCall) and [`Done`](ChatEvent::Done).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChatEvent {
    /// `messageStart`: the reply began.
    MessageStart {
        /// Always `assistant` in practice.
        role: Role,
    },
    /// `contentBlockStart`: a tool call (where the ECA provider's `on-prepare-tool-call`
    /// starts), a server tool's result, an image, ...
    ContentBlockStart {
        /// `contentBlockIndex`.
        index: u32,
        /// `start`.
        start: BlockStart,
    },
    /// `contentBlockDelta`: a piece of text, reasoning, tool input, ...
    ContentBlockDelta {
        /// `contentBlockIndex`.
        index: u32,
        /// `delta`.
        delta: BlockDelta,
    },
    /// A tool block is complete: its input checked and parsed (sent just before the
    /// block's [`ContentBlockStop`](ChatEvent::ContentBlockStop)).
    ToolCall {
        /// The content block.
        index: u32,
        /// The call.
        call: ToolCall,
    },
    /// `contentBlockStop`: a content block ended.
    ContentBlockStop {
        /// `contentBlockIndex`.
        index: u32,
    },
    /// `messageStop`: the model stopped.
    MessageStop {
        /// `stopReason`.
        stop_reason: StopReason,
        /// `additionalModelResponseFields`, when sent.
        additional_model_response_fields: Option<Value>,
    },
    /// `metadata`: token usage and latency (after `MessageStop`).
    Metadata {
        /// `usage` (boxed: it would double the size of every event, and each event is
        /// moved a few times on its way to the caller).
        usage: Option<Box<TokenUsage>>,
        /// `metrics`.
        metrics: Option<ConverseMetrics>,
        /// `trace`, when sent.
        trace: Option<Value>,
    },
    /// An event type this crate does not know, passed through.
    Unknown {
        /// The `:event-type` header.
        event_type: String,
        /// The payload.
        payload: Bytes,
    },
    /// The end: the assembled response (the same shape `/converse` returns).
    Done(Box<ConverseResponse>),
}

/// The `start` of a [`ChatEvent::ContentBlockStart`]: [`ContentBlockStart`], owned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BlockStart {
    /// `toolUse`: a tool call begins; its input follows as deltas.
    ToolUse {
        /// `toolUseId`.
        tool_use_id: String,
        /// `name`.
        name: String,
        /// `type` (e.g. `server_tool_use`).
        r#type: Option<String>,
    },
    /// `toolResult`: the result of a server-side tool begins.
    ToolResult {
        /// `toolUseId` of the call it answers.
        tool_use_id: String,
        /// `type`.
        r#type: Option<String>,
        /// `status`: `success` or `error`.
        status: Option<String>,
    },
    /// `image`: a generated image begins.
    Image {
        /// `format`: `png`, `jpeg`, `gif` or `webp`.
        format: String,
    },
    /// An empty `start` (`{}`).
    Empty,
    /// Another kind, as sent.
    Unknown {
        /// The member's name.
        kind: String,
        /// The member's value.
        value: Value,
    },
}

/// The `delta` of a [`ChatEvent::ContentBlockDelta`]: [`ContentBlockDelta`], owned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BlockDelta {
    /// `text`: a piece of answer text.
    Text(String),
    /// `toolUse.input`: a fragment of a tool call's JSON input (`on-prepare-tool-call`),
    /// with the call's id and name (from its `contentBlockStart`).
    ToolUseInput {
        /// `toolUseId`.
        tool_use_id: String,
        /// The tool's name.
        name: String,
        /// This fragment of the input JSON text.
        input: String,
    },
    /// `reasoningContent.text`: a piece of the model's reasoning.
    ReasoningText(String),
    /// `reasoningContent.signature`.
    ReasoningSignature(String),
    /// `reasoningContent.redactedContent`: redacted (encrypted) reasoning.
    ReasoningRedacted(Blob),
    /// `citation`: a citation for the block's text (also kept in the assembled
    /// response's `citationsContent` block).
    Citation(Box<Citation>),
    /// `toolResult`: content items of a server tool's result.
    ToolResult(Vec<ToolResultContentBlock>),
    /// `image`: the image's `source` or an `error`.
    Image(Box<ImageDelta>),
    /// Another kind, as sent.
    Unknown {
        /// The member's name.
        kind: String,
        /// The member's value.
        value: Value,
    },
}

// ===== impl ChatEvent =====

impl ChatEvent {
    /// The answer text of a [`BlockDelta::Text`] delta.
    pub fn text(&self) -> Option<&str> {
        match self {
            ChatEvent::ContentBlockDelta {
                delta: BlockDelta::Text(t),
                ..
            } => Some(t),
            _ => None,
        }
    }

    /// The owned event of a layer-2 event. `None` for a `contentBlockDelta` of an empty
    /// tool-input fragment (it carries nothing). A tool fragment's id and name are left
    /// empty here: the stream fills them in from the assembler.
    #[inline] // Into the stream's `on_message`: the layer-2 event is not moved again.
    pub(crate) fn from_stream_event(event: StreamEvent<'_>) -> Option<ChatEvent> {
        Some(match event {
            StreamEvent::MessageStart { role } => ChatEvent::MessageStart { role },
            StreamEvent::ContentBlockStart { index, start } => ChatEvent::ContentBlockStart {
                index,
                start: BlockStart::from(start),
            },
            StreamEvent::ContentBlockDelta { index, delta } => ChatEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::from_delta(delta)?,
            },
            StreamEvent::ContentBlockStop { index } => ChatEvent::ContentBlockStop { index },
            StreamEvent::MessageStop {
                stop_reason,
                additional_model_response_fields,
            } => ChatEvent::MessageStop {
                stop_reason,
                additional_model_response_fields: additional_model_response_fields.map(raw_value),
            },
            StreamEvent::Metadata {
                usage,
                metrics,
                trace,
            } => ChatEvent::Metadata {
                usage: usage.map(Box::new),
                metrics,
                trace: trace.map(raw_value),
            },
            StreamEvent::Unknown { event_type, payload } => ChatEvent::Unknown {
                event_type: event_type.to_owned(),
                payload: Bytes::copy_from_slice(payload),
            },
        })
    }
}

// ===== impl BlockStart, BlockDelta =====

impl From<ContentBlockStart<'_>> for BlockStart {
    fn from(start: ContentBlockStart<'_>) -> BlockStart {
        match start {
            ContentBlockStart::ToolUse {
                tool_use_id,
                name,
                r#type,
            } => BlockStart::ToolUse {
                tool_use_id: tool_use_id.into_owned(),
                name: name.into_owned(),
                r#type: r#type.map(|t| t.into_owned()),
            },
            ContentBlockStart::ToolResult {
                tool_use_id,
                r#type,
                status,
            } => BlockStart::ToolResult {
                tool_use_id: tool_use_id.into_owned(),
                r#type: r#type.map(|t| t.into_owned()),
                status: status.map(|s| s.into_owned()),
            },
            ContentBlockStart::Image { format } => BlockStart::Image {
                format: format.into_owned(),
            },
            ContentBlockStart::Unknown { kind, value } => BlockStart::Unknown {
                kind: kind.into_owned(),
                value: raw_value(value),
            },
            ContentBlockStart::Empty => BlockStart::Empty,
        }
    }
}

impl BlockDelta {
    /// The owned delta; `None` for an empty tool-input fragment (a tool fragment's id and
    /// name are left empty, as in [`ChatEvent::from_stream_event`]).
    #[inline] // Into the stream's `on_message`, where nearly every frame is a delta.
    pub(crate) fn from_delta(delta: ContentBlockDelta<'_>) -> Option<BlockDelta> {
        Some(match delta {
            ContentBlockDelta::Text(t) => BlockDelta::Text(t.into_owned()),
            ContentBlockDelta::ToolUseInput(f) if f.is_empty() => return None,
            ContentBlockDelta::ToolUseInput(f) => BlockDelta::ToolUseInput {
                tool_use_id: String::new(),
                name: String::new(),
                input: f.into_owned(),
            },
            ContentBlockDelta::ReasoningText(t) => BlockDelta::ReasoningText(t.into_owned()),
            ContentBlockDelta::ReasoningSignature(s) => BlockDelta::ReasoningSignature(s.into_owned()),
            ContentBlockDelta::ReasoningRedacted(data) => BlockDelta::ReasoningRedacted(data),
            ContentBlockDelta::Citation(c) => BlockDelta::Citation(c),
            ContentBlockDelta::ToolResult(items) => BlockDelta::ToolResult(items),
            ContentBlockDelta::Image(image) => BlockDelta::Image(image),
            ContentBlockDelta::Unknown { kind, value } => BlockDelta::Unknown {
                kind: kind.into_owned(),
                value: raw_value(value),
            },
        })
    }
}

/// A raw JSON value the assembler has already checked, as a [`Value`] (`null` if it
/// were not JSON after all).
fn raw_value(raw: &serde_json::value::RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn unknown_events_starts_and_deltas_keep_their_data() {
        let unknown = StreamEvent::Unknown {
            event_type: "futureEvent",
            payload: br#"{"a":1}"#,
        };
        assert_eq!(
            ChatEvent::from_stream_event(unknown),
            Some(ChatEvent::Unknown {
                event_type: "futureEvent".into(),
                payload: Bytes::from_static(br#"{"a":1}"#),
            })
        );
        let raw = serde_json::value::RawValue::from_string(r#"{"x":[1,2]}"#.into()).unwrap();
        let start = StreamEvent::ContentBlockStart {
            index: 3,
            start: ContentBlockStart::Unknown {
                kind: Cow::Borrowed("video"),
                value: &raw,
            },
        };
        assert_eq!(
            ChatEvent::from_stream_event(start),
            Some(ChatEvent::ContentBlockStart {
                index: 3,
                start: BlockStart::Unknown {
                    kind: "video".into(),
                    value: serde_json::json!({"x": [1, 2]}),
                },
            })
        );
        let result = StreamEvent::ContentBlockStart {
            index: 1,
            start: ContentBlockStart::ToolResult {
                tool_use_id: Cow::Borrowed("t1"),
                r#type: None,
                status: Some(Cow::Borrowed("error")),
            },
        };
        assert!(matches!(
            ChatEvent::from_stream_event(result),
            Some(ChatEvent::ContentBlockStart {
                index: 1,
                start: BlockStart::ToolResult { tool_use_id, status: Some(status), .. },
            }) if tool_use_id == "t1" && status == "error"
        ));
        let empty_fragment = StreamEvent::ContentBlockDelta {
            index: 0,
            delta: ContentBlockDelta::ToolUseInput(Cow::Borrowed("")),
        };
        assert_eq!(ChatEvent::from_stream_event(empty_fragment), None);
    }

    #[test]
    fn text_reads_only_text_deltas() {
        let text = ChatEvent::ContentBlockDelta {
            index: 0,
            delta: BlockDelta::Text("hi".into()),
        };
        assert_eq!(text.text(), Some("hi"));
        let reasoning = ChatEvent::ContentBlockDelta {
            index: 0,
            delta: BlockDelta::ReasoningText("hm".into()),
        };
        assert_eq!(reasoning.text(), None);
    }
}
