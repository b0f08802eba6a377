//! [`ChatStreamWriter`]: ConverseStream events → OpenAI `chat.completion.chunk` SSE.

use bytes::BufMut;

use super::response::{error_type_and_code, finish_reason, Usage};
use serde_json::value::RawValue;

use crate::converse::{ContentBlockDelta, StopReason, TokenUsage};
use crate::translate::error::{ApiError, ErrorClass};
use crate::translate::events::{EventSink, ToolStart};
use crate::translate::forward::{ForwardingWriter, RawTextDelta, TextKind};
use crate::translate::write::{json_str, json_str_body, uint};
use crate::translate::SseWriter;

/// Writes the OpenAI Chat Completions stream for one ConverseStream, through its
/// [`SseWriter`] methods: feed it each [`StreamEvent`](crate::converse::StreamEvent) in
/// order ([`push`](SseWriter::push) or [`push_frame`](SseWriter::push_frame)), then
/// [`finish`](SseWriter::finish) after the last, or [`error`](SseWriter::error) if the
/// stream failed. Each call appends whole SSE events (`data: {...}\n\n`) to the
/// caller's buffer and allocates nothing once the buffer and the writer's small tool
/// table have grown.
///
/// What a client sees:
/// - a first chunk with `role: "assistant"` (at `messageStart`);
/// - text as `delta.content`, reasoning text as `delta.reasoning_content`;
/// - each tool call under one stable `index` (0, 1, ... in the order the calls start,
///   whatever Converse block index they have and however their deltas interleave):
///   `id`, `type` and `function.name` in its first chunk, then `function.arguments`
///   fragments as they arrive, and `"{}"` when the call had no arguments;
/// - a chunk with `finish_reason` (at `messageStop`);
/// - with `include_usage`, a last chunk with `choices: []` and `usage` (at
///   [`finish`](SseWriter::finish)); then `data: [DONE]`.
///
/// # Examples
///
/// ```
/// use bedrock_converse::converse::{ContentBlockDelta, Role, StopReason, StreamEvent};
/// use bedrock_converse::translate::openai::ChatStreamWriter;
/// use bedrock_converse::translate::SseWriter;
///
/// let mut w = ChatStreamWriter::new("chatcmpl-1", "claude", 1_700_000_000, false);
/// let mut sse = Vec::new();
/// w.push(&StreamEvent::MessageStart { role: Role::Assistant }, &mut sse);
/// w.push(&StreamEvent::ContentBlockDelta { index: 0, delta: ContentBlockDelta::Text("Hi".into()) }, &mut sse);
/// w.push(&StreamEvent::MessageStop { stop_reason: StopReason::EndTurn, additional_model_response_fields: None }, &mut sse);
/// w.finish(&mut sse);
/// let text = String::from_utf8(sse).unwrap();
/// assert!(text.contains(r#""delta":{"content":"Hi"}"#));
/// assert!(text.contains(r#""finish_reason":"stop""#));
/// assert!(text.ends_with("data: [DONE]\n\n"));
/// ```
#[derive(Debug, Clone)]
pub struct ChatStreamWriter {
    /// `data: {"id":...,"object":"chat.completion.chunk","created":...,"model":...,"choices":[`
    prefix: Vec<u8>,
    /// The prefix, then `{"index":0,"delta":{`: how every delta chunk starts.
    delta_head: Vec<u8>,
    /// The delta head, then `"content":"`: a text chunk up to its text (built once per
    /// stream, so that a text delta is this, the escaped text and [`TEXT_TAIL`]).
    content_head: Vec<u8>,
    /// The same for `"reasoning_content":"`.
    reasoning_head: Vec<u8>,
    include_usage: bool,
    /// Tool calls: (Converse block index, OpenAI index, any arguments written).
    tools: Vec<(u32, u32, bool)>,
    started: bool,
    usage: Option<Usage>,
    ended: bool,
}

impl ChatStreamWriter {
    /// A writer for one response: the chunk `id`, the `model` to report, the `created`
    /// time (Unix seconds; the caller owns the clock) and whether the client asked for
    /// `stream_options.include_usage`.
    pub fn new(id: &str, model: &str, created: u64, include_usage: bool) -> ChatStreamWriter {
        let mut prefix = Vec::with_capacity(96 + id.len() + model.len());
        prefix.extend_from_slice(b"data: {\"id\":");
        json_str(&mut prefix, id);
        prefix.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        uint(&mut prefix, created);
        prefix.extend_from_slice(b",\"model\":");
        json_str(&mut prefix, model);
        prefix.extend_from_slice(b",\"choices\":[");
        let mut delta_head = Vec::with_capacity(prefix.len() + 24);
        delta_head.extend_from_slice(&prefix);
        delta_head.extend_from_slice(b"{\"index\":0,\"delta\":{");
        let head_with = |key: &[u8]| {
            let mut head = Vec::with_capacity(delta_head.len() + key.len());
            head.extend_from_slice(&delta_head);
            head.extend_from_slice(key);
            head
        };
        let content_head = head_with(b"\"content\":\"");
        let reasoning_head = head_with(b"\"reasoning_content\":\"");
        ChatStreamWriter {
            prefix,
            delta_head,
            content_head,
            reasoning_head,
            include_usage,
            tools: Vec::with_capacity(4),
            started: false,
            usage: None,
            ended: false,
        }
    }

    /// An `arguments` fragment of the call in Converse block `block`.
    fn tool_call_arguments<B: BufMut>(&mut self, block: u32, fragment: &str, buf: &mut B) {
        if fragment.is_empty() {
            return;
        }
        let Some(slot) = self.tools.iter_mut().find(|t| t.0 == block) else {
            return;
        };
        slot.2 = true;
        let oai = slot.1;
        self.arguments(buf, oai, fragment);
    }

    fn start<B: BufMut>(&mut self, buf: &mut B) {
        if !self.started {
            self.started = true;
            self.open_delta(buf);
            buf.put_slice(b"\"role\":\"assistant\",\"content\":\"\"");
            self.close_delta(buf);
        }
    }

    fn stop<B: BufMut>(&mut self, reason: &StopReason, buf: &mut B) {
        self.start(buf);
        match finish_reason(reason) {
            Some(finish) => {
                buf.put_slice(&self.prefix);
                buf.put_slice(b"{\"index\":0,\"delta\":{},\"finish_reason\":\"");
                buf.put_slice(finish.as_bytes());
                buf.put_slice(b"\"}]}\n\n");
            }
            None => {
                let err = ApiError::new(ErrorClass::ModelError, format!("the model stopped with {reason}"));
                self.error(&err, buf);
            }
        }
    }

    /// A text (or reasoning text) chunk: `head` (one of the heads built in
    /// [`new`](Self::new)), the escaped text, [`TEXT_TAIL`]; three writes.
    fn text_delta<B: BufMut>(&mut self, buf: &mut B, reasoning: bool, text: &str) {
        self.start(buf);
        let head = if reasoning {
            &self.reasoning_head
        } else {
            &self.content_head
        };
        buf.put_slice(head);
        json_str_body(buf, text);
        buf.put_slice(TEXT_TAIL);
    }

    fn arguments<B: BufMut>(&self, buf: &mut B, oai: u32, fragment: &str) {
        self.open_tool_call(buf, oai);
        buf.put_slice(b",\"function\":{\"arguments\":\"");
        json_str_body(buf, fragment);
        buf.put_slice(b"\"}}]");
        self.close_delta(buf);
    }

    /// A delta chunk up to `"tool_calls":[{"index":<oai>`.
    fn open_tool_call<B: BufMut>(&self, buf: &mut B, oai: u32) {
        self.open_delta(buf);
        buf.put_slice(b"\"tool_calls\":[{\"index\":");
        uint(buf, u64::from(oai));
    }

    fn open_delta<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(&self.delta_head);
    }

    fn close_delta<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(b"},\"finish_reason\":null}]}\n\n");
    }
}

/// What follows a text chunk's text: the string, the delta and the chunk closed.
const TEXT_TAIL: &[u8] = b"\"},\"finish_reason\":null}]}\n\n";

// ===== impl EventSink for ChatStreamWriter =====

impl EventSink for ChatStreamWriter {
    fn ended(&self) -> bool {
        self.ended
    }

    fn message_start<B: BufMut>(&mut self, buf: &mut B) {
        self.start(buf);
    }

    /// A tool call's first chunk: its stable `index`, `id`, `type` and `function.name`.
    fn tool_use_start<B: BufMut>(&mut self, tool: ToolStart<'_>, buf: &mut B) {
        let ToolStart { block, id, name, .. } = tool;
        self.start(buf);
        if self.tools.iter().any(|t| t.0 == block) {
            return;
        }
        // At most `MAX_BLOCKS` calls: the count fits in u32.
        let oai = self.tools.len() as u32;
        self.tools.push((block, oai, false));
        self.open_tool_call(buf, oai);
        buf.put_slice(b",\"id\":");
        json_str(buf, id);
        buf.put_slice(b",\"type\":\"function\",\"function\":{\"name\":");
        json_str(buf, name);
        buf.put_slice(b",\"arguments\":\"\"}}]");
        self.close_delta(buf);
    }

    fn block_delta<B: BufMut>(&mut self, block: u32, delta: &ContentBlockDelta<'_>, buf: &mut B) {
        match delta {
            ContentBlockDelta::Text(t) => self.text_delta(buf, false, t),
            ContentBlockDelta::ReasoningText(t) => self.text_delta(buf, true, t),
            ContentBlockDelta::ToolUseInput(fragment) => self.tool_call_arguments(block, fragment, buf),
            _ => {}
        }
    }

    /// A call whose block stopped without arguments gets `"{}"`.
    fn block_stop<B: BufMut>(&mut self, block: u32, buf: &mut B) {
        if let Some(slot) = self.tools.iter_mut().find(|t| t.0 == block) {
            if !slot.2 {
                slot.2 = true;
                let oai = slot.1;
                self.arguments(buf, oai, "{}");
            }
        }
    }

    fn message_stop<B: BufMut>(&mut self, reason: &StopReason, _fields: Option<&RawValue>, buf: &mut B) {
        self.stop(reason, buf);
    }

    fn metadata<B: BufMut>(&mut self, usage: Option<&TokenUsage>, _buf: &mut B) {
        if let Some(u) = usage {
            self.usage = Some(Usage::from(u));
        }
    }
}

/// `{"error":{"message":...,"type":...,"param":...,"code":...}}`
pub(super) fn write_error_object<B: BufMut>(err: &ApiError, buf: &mut B) {
    let (r#type, code) = error_type_and_code(err.class);
    buf.put_slice(b"{\"error\":{\"message\":");
    json_str(buf, &err.message);
    buf.put_slice(b",\"type\":");
    json_str(buf, r#type);
    buf.put_slice(b",\"param\":");
    match &err.param {
        Some(p) => json_str(buf, p),
        None => buf.put_slice(b"null"),
    }
    buf.put_slice(b",\"code\":");
    match code {
        Some(c) => json_str(buf, c),
        None => buf.put_slice(b"null"),
    }
    buf.put_slice(b"}}");
}

// ===== impl SseWriter for ChatStreamWriter =====

impl ForwardingWriter for ChatStreamWriter {
    fn forward<B: BufMut>(&mut self, delta: RawTextDelta<'_>, buf: &mut B) -> bool {
        self.start(buf);
        let head = match delta.kind {
            TextKind::Text => &self.content_head,
            TextKind::Reasoning => &self.reasoning_head,
        };
        buf.put_slice(head);
        buf.put_slice(delta.escaped);
        buf.put_slice(TEXT_TAIL);
        true
    }
}

impl SseWriter for ChatStreamWriter {
    fn set_usage(&mut self, usage: &TokenUsage) {
        self.usage = Some(Usage::from(usage));
    }

    fn finish<B: BufMut>(&mut self, buf: &mut B) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.include_usage {
            if let Some(u) = self.usage {
                buf.put_slice(&self.prefix);
                buf.put_slice(b"],\"usage\":");
                u.write(buf);
                buf.put_slice(b"}\n\n");
            }
        }
        buf.put_slice(b"data: [DONE]\n\n");
    }

    fn error<B: BufMut>(&mut self, err: &ApiError, buf: &mut B) {
        if self.ended {
            return;
        }
        self.ended = true;
        buf.put_slice(b"data: ");
        write_error_object(err, buf);
        buf.put_slice(b"\n\n");
    }
}
