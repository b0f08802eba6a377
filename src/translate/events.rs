//! [`EventSink`]: what a dialect's stream writer does with each kind of Converse
//! stream event, and [`route`], the one place that takes an event apart for it.
//!
//! `EventSink` and [`ToolStart`] are `pub` in this private module: the supertraits of
//! the public [`SseWriter`](super::SseWriter), nameable nowhere outside the crate (so
//! that trait is sealed).

use bytes::BufMut;
use serde_json::value::RawValue;

use crate::converse::{ContentBlockDelta, ContentBlockStart, StopReason, StreamEvent, TokenUsage};

/// A tool use starting in Converse block `block`.
#[derive(Debug, Clone, Copy)]
pub struct ToolStart<'a> {
    pub(crate) block: u32,
    /// `toolUseId`.
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    /// `type` (`server_tool_use` for a server-side tool).
    pub(crate) r#type: Option<&'a str>,
}

/// A dialect's SSE writer, event kind by event kind. Kinds a dialect has nothing to
/// write for keep the default (nothing).
pub trait EventSink {
    /// Whether the stream has ended: [`route`] then writes nothing.
    fn ended(&self) -> bool;

    /// `messageStart`.
    fn message_start<B: BufMut>(&mut self, buf: &mut B);

    /// `contentBlockStart` of a tool use.
    fn tool_use_start<B: BufMut>(&mut self, tool: ToolStart<'_>, buf: &mut B);

    /// `contentBlockDelta`.
    fn block_delta<B: BufMut>(&mut self, block: u32, delta: &ContentBlockDelta<'_>, buf: &mut B);

    /// `contentBlockStop`.
    fn block_stop<B: BufMut>(&mut self, block: u32, buf: &mut B);

    /// `messageStop`.
    fn message_stop<B: BufMut>(&mut self, reason: &StopReason, fields: Option<&RawValue>, buf: &mut B);

    /// `metadata`, with its usage when it has some.
    fn metadata<B: BufMut>(&mut self, usage: Option<&TokenUsage>, buf: &mut B) {
        let _ = (usage, buf);
    }
}

/// Hands `event` to the part of `sink` for its kind (nothing once the stream ended).
pub(crate) fn route<S: EventSink + ?Sized, B: BufMut>(sink: &mut S, event: &StreamEvent<'_>, buf: &mut B) {
    if sink.ended() {
        return;
    }
    match event {
        StreamEvent::MessageStart { .. } => sink.message_start(buf),
        StreamEvent::ContentBlockStart {
            index,
            start:
                ContentBlockStart::ToolUse {
                    tool_use_id,
                    name,
                    r#type,
                },
        } => {
            let tool = ToolStart {
                block: *index,
                id: tool_use_id,
                name,
                r#type: r#type.as_deref(),
            };
            sink.tool_use_start(tool, buf);
        }
        StreamEvent::ContentBlockDelta { index, delta } => sink.block_delta(*index, delta, buf),
        StreamEvent::ContentBlockStop { index } => sink.block_stop(*index, buf),
        StreamEvent::MessageStop {
            stop_reason,
            additional_model_response_fields,
        } => sink.message_stop(stop_reason, *additional_model_response_fields, buf),
        StreamEvent::Metadata { usage, .. } => sink.metadata(usage.as_ref(), buf),
        _ => {}
    }
}
