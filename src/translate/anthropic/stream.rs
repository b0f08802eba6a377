//! [`MessagesStreamWriter`]: ConverseStream events → Anthropic Messages SSE.

use bytes::BufMut;
use serde_json::value::RawValue;

use super::response::{citation, stop_reason, Usage};
use crate::converse::{ContentBlockDelta, StopReason, TokenUsage};
use crate::translate::error::{ApiError, ErrorClass};
use crate::translate::events::{EventSink, ToolStart};
use crate::translate::forward::{ForwardingWriter, RawTextDelta, TextKind};
use crate::translate::write::{base64_str, json_str, json_str_body, json_value, uint};
use crate::translate::SseWriter;

/// The kind of an open Anthropic content block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Redacted,
    ToolUse,
}

/// The string field of a text-like delta: which `delta.type` it is and its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Text,
    PartialJson,
    Thinking,
    Signature,
}

impl Field {
    /// `{"type":...,"<key>":"`: the delta object up to its string's contents.
    fn head(self) -> &'static [u8] {
        match self {
            Field::Text => b"{\"type\":\"text_delta\",\"text\":\"",
            Field::PartialJson => b"{\"type\":\"input_json_delta\",\"partial_json\":\"",
            Field::Thinking => b"{\"type\":\"thinking_delta\",\"thinking\":\"",
            Field::Signature => b"{\"type\":\"signature_delta\",\"signature\":\"",
        }
    }
}

/// What follows a text-like delta's contents: the string, the delta and the event closed.
const TEXT_TAIL: &[u8] = b"\"}}\n\n";

/// One Converse block: its Converse index, its Anthropic index, its kind, open or not.
#[derive(Debug, Clone, Copy)]
struct Slot {
    block: u32,
    index: u32,
    kind: Kind,
    open: bool,
}

/// Writes the Anthropic Messages stream for one ConverseStream, through its
/// [`SseWriter`] methods: feed it each [`StreamEvent`](crate::converse::StreamEvent) in
/// order ([`push`](SseWriter::push) or [`push_frame`](SseWriter::push_frame)), then
/// [`finish`](SseWriter::finish), or [`error`](SseWriter::error) if the stream failed. Each call appends whole SSE events
/// (`event: ...\ndata: {...}\n\n`) to the caller's buffer; text, tool-input, thinking
/// and signature deltas allocate nothing once the buffer and the block table have grown.
///
/// What a client sees:
/// - `message_start` (usage zero: Bedrock counts tokens at the end), then a `ping`;
/// - per content block, in the order blocks start (Converse block indexes map to
///   Anthropic's 0, 1, ... even when blocks interleave): `content_block_start`, its
///   deltas (`text_delta`, `citations_delta`, `input_json_delta`, `thinking_delta`,
///   `signature_delta` — the signature only ever on a `signature_delta`), and
///   `content_block_stop`; redacted reasoning as a `redacted_thinking` block whose
///   `data` comes whole in its start (the pieces of one Converse block joined and
///   written at its `contentBlockStop`, or when another block starts first: a client
///   replays the block as one);
/// - `message_delta` with `stop_reason`, `stop_sequence` and the usage
///   (`input_tokens`, `output_tokens`, `cache_read_input_tokens`,
///   `cache_creation_input_tokens`), then `message_stop` — at `metadata`, or at
///   [`finish`](SseWriter::finish) if the stream had none.
///
/// [`ping`](Self::ping) writes a `ping` whenever the caller's timer says so (this type
/// has no clock).
///
/// # Examples
///
/// ```
/// use bedrock_converse::converse::{ContentBlockDelta, Role, StopReason, StreamEvent};
/// use bedrock_converse::translate::anthropic::MessagesStreamWriter;
/// use bedrock_converse::translate::SseWriter;
///
/// let mut w = MessagesStreamWriter::new("msg_1", "claude");
/// let mut sse = Vec::new();
/// w.push(&StreamEvent::MessageStart { role: Role::Assistant }, &mut sse);
/// w.push(&StreamEvent::ContentBlockDelta { index: 0, delta: ContentBlockDelta::Text("Hi".into()) }, &mut sse);
/// w.push(&StreamEvent::ContentBlockStop { index: 0 }, &mut sse);
/// w.push(&StreamEvent::MessageStop { stop_reason: StopReason::EndTurn, additional_model_response_fields: None }, &mut sse);
/// w.finish(&mut sse);
/// let text = String::from_utf8(sse).unwrap();
/// assert!(text.contains(r#"{"type":"text_delta","text":"Hi"}"#));
/// assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
/// ```
#[derive(Debug, Clone)]
pub struct MessagesStreamWriter {
    id: String,
    model: String,
    slots: Vec<Slot>,
    next_index: u32,
    started: bool,
    stop: Option<(&'static str, Option<String>)>,
    usage: Option<Usage>,
    ended: bool,
    /// Redacted reasoning gathered until its block stops: (Converse block index, bytes).
    redacted: Vec<(u32, Vec<u8>)>,
    /// A text-like delta event up to its string's contents
    /// (`event: content_block_delta\ndata: {...,"index":N,"delta":{"type":"text_delta","text":"`),
    /// for the block and field in `head_for`: built once per run of deltas to one block
    /// (a text block's thousands of deltas share it), so that such a delta is this head,
    /// the escaped text and [`TEXT_TAIL`].
    text_head: Vec<u8>,
    /// The (Anthropic index, field) `text_head` is for; `None` before the first delta.
    head_for: Option<(u32, Field)>,
}

impl MessagesStreamWriter {
    /// A writer for one response: the message `id` and the `model` to report.
    pub fn new(id: &str, model: &str) -> MessagesStreamWriter {
        MessagesStreamWriter {
            id: id.to_owned(),
            model: model.to_owned(),
            slots: Vec::with_capacity(8),
            next_index: 0,
            started: false,
            stop: None,
            usage: None,
            ended: false,
            redacted: Vec::new(),
            text_head: Vec::with_capacity(128),
            head_for: None,
        }
    }

    /// Writes `delta` as it came when its block is open here with its kind (what
    /// [`delta`](Self::delta) would write then); whether it did.
    fn forward_text<B: BufMut>(&mut self, delta: RawTextDelta<'_>, buf: &mut B) -> bool {
        let (want, field) = match delta.kind {
            TextKind::Text => (Kind::Text, Field::Text),
            TextKind::Reasoning => (Kind::Thinking, Field::Thinking),
        };
        let Some(slot) = self.slot(delta.block).and_then(|i| self.slots.get(i)).copied() else {
            return false;
        };
        if !slot.open || slot.kind != want {
            return false;
        }
        self.text_head_for(slot.index, field);
        buf.put_slice(&self.text_head);
        buf.put_slice(delta.escaped);
        buf.put_slice(TEXT_TAIL);
        true
    }

    /// Writes `event: ping` (call it while waiting on the model, on the caller's timer).
    pub fn ping<B: BufMut>(&mut self, buf: &mut B) {
        if !self.ended {
            buf.put_slice(b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
        }
    }

    fn start<B: BufMut>(&mut self, buf: &mut B) {
        if self.started {
            return;
        }
        self.started = true;
        buf.put_slice(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":");
        json_str(buf, &self.id);
        buf.put_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        json_str(buf, &self.model);
        buf.put_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n",
        );
        self.ping(buf);
    }

    fn end<B: BufMut>(&mut self, buf: &mut B) {
        self.flush_redacted(buf);
        self.ended = true;
        for i in 0..self.slots.len() {
            if self.slots[i].open {
                self.slots[i].open = false;
                block_stop(self.slots[i].index, buf);
            }
        }
        let (reason, seq) = match &self.stop {
            Some((r, s)) => (*r, s.as_deref()),
            None => ("end_turn", None),
        };
        buf.put_slice(
            b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"",
        );
        buf.put_slice(reason.as_bytes());
        buf.put_slice(b"\",\"stop_sequence\":");
        match seq {
            Some(s) => json_str(buf, s),
            None => buf.put_slice(b"null"),
        }
        buf.put_slice(b"},\"usage\":");
        self.usage.unwrap_or_default().write(buf);
        buf.put_slice(b"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }

    /// Writes every gathered redacted block, before another block starts: content
    /// blocks reach the client in the order they started.
    fn flush_redacted<B: BufMut>(&mut self, buf: &mut B) {
        while let Some(&(block, _)) = self.redacted.first() {
            self.write_redacted(block, buf);
        }
    }

    /// Writes the gathered redacted reasoning of Converse block `block`, if any, as one
    /// whole `redacted_thinking` block (start and stop).
    fn write_redacted<B: BufMut>(&mut self, block: u32, buf: &mut B) {
        let Some(i) = self.redacted.iter().position(|(b, _)| *b == block) else {
            return;
        };
        let (_, data) = self.redacted.remove(i);
        let at = self.open(block, Kind::Redacted, buf);
        buf.put_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
        base64_str(buf, &data);
        buf.put_u8(b'}');
        end_start(buf);
        if let Some(i) = self.slot(block) {
            self.slots[i].open = false;
        }
        block_stop(at, buf);
    }

    fn slot(&self, block: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.block == block)
    }

    /// Registers the block and writes the head of its `content_block_start`, up to
    /// `"content_block":`.
    fn open<B: BufMut>(&mut self, block: u32, kind: Kind, buf: &mut B) -> u32 {
        let at = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        let slot = Slot {
            block,
            index: at,
            kind,
            open: true,
        };
        match self.slot(block) {
            Some(i) => self.slots[i] = slot,
            None => self.slots.push(slot),
        }
        buf.put_slice(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":");
        uint(buf, u64::from(at));
        buf.put_slice(b",\"content_block\":");
        at
    }

    fn delta<B: BufMut>(&mut self, block: u32, delta: &ContentBlockDelta<'_>, buf: &mut B) {
        self.start(buf);
        let want = match delta {
            ContentBlockDelta::Text(_) | ContentBlockDelta::Citation(_) => Kind::Text,
            ContentBlockDelta::ReasoningText(_) | ContentBlockDelta::ReasoningSignature(_) => Kind::Thinking,
            ContentBlockDelta::ReasoningRedacted(blob) => {
                return self.gather_redacted(block, blob.as_bytes())
            }
            ContentBlockDelta::ToolUseInput(_) => Kind::ToolUse,
            _ => return,
        };
        let Some(at) = self.delta_target(block, want, delta, buf) else {
            return;
        };
        let (field, text): (Field, &str) = match delta {
            ContentBlockDelta::Text(t) => (Field::Text, t),
            ContentBlockDelta::ToolUseInput(t) => (Field::PartialJson, t),
            ContentBlockDelta::ReasoningText(t) => (Field::Thinking, t),
            ContentBlockDelta::ReasoningSignature(t) => (Field::Signature, t),
            ContentBlockDelta::Citation(c) => {
                delta_head(at, buf);
                buf.put_slice(b"{\"type\":\"citations_delta\",\"citation\":");
                json_value(buf, &citation(c));
                delta_tail(buf);
                return;
            }
            _ => return,
        };
        self.text_delta(at, field, text, buf);
    }

    /// A text-like delta to the client's block `at`: the head for (`at`, `field`), built
    /// now if the last one was for another, the escaped text, [`TEXT_TAIL`]; three writes.
    fn text_delta<B: BufMut>(&mut self, at: u32, field: Field, text: &str, buf: &mut B) {
        self.text_head_for(at, field);
        buf.put_slice(&self.text_head);
        json_str_body(buf, text);
        buf.put_slice(TEXT_TAIL);
    }

    /// Makes `text_head` the head for (`at`, `field`), unless it already is.
    fn text_head_for(&mut self, at: u32, field: Field) {
        if self.head_for != Some((at, field)) {
            self.head_for = Some((at, field));
            self.text_head.clear();
            delta_head(at, &mut self.text_head);
            self.text_head.extend_from_slice(field.head());
        }
    }

    /// Gathers a piece of redacted reasoning until its block stops (no slot before:
    /// another kind's slot for this block means a delta of the wrong kind, which the
    /// assembler refuses).
    fn gather_redacted(&mut self, block: u32, blob: &[u8]) {
        let gather = match self.slot(block) {
            None => true,
            // A piece after the block was written (another block started in between):
            // a block of its own.
            Some(i) => self.slots[i].kind == Kind::Redacted,
        };
        if gather {
            match self.redacted.iter_mut().find(|(b, _)| *b == block) {
                Some((_, data)) => data.extend_from_slice(blob),
                None => self.redacted.push((block, blob.to_vec())),
            }
        }
    }

    /// The client's index for a delta of kind `want` to Converse block `block`: its open
    /// block, or a block started now (text and thinking blocks start implicitly);
    /// `None` for a delta to drop.
    fn delta_target<B: BufMut>(
        &mut self,
        block: u32,
        want: Kind,
        delta: &ContentBlockDelta<'_>,
        buf: &mut B,
    ) -> Option<u32> {
        match self.slot(block) {
            Some(i) if !self.slots[i].open => None,
            // A delta of another kind than its block (the assembler refuses these).
            Some(i) if self.slots[i].kind != want => None,
            Some(i) => Some(self.slots[i].index),
            None if want == Kind::ToolUse => None,
            None => {
                self.flush_redacted(buf);
                let at = self.open(block, want, buf);
                let content: &[u8] = match delta {
                    ContentBlockDelta::Citation(_) => b"{\"type\":\"text\",\"text\":\"\",\"citations\":[]}",
                    _ if want == Kind::Thinking => {
                        b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}"
                    }
                    _ => b"{\"type\":\"text\",\"text\":\"\"}",
                };
                buf.put_slice(content);
                end_start(buf);
                Some(at)
            }
        }
    }
}

// ===== impl EventSink for MessagesStreamWriter =====

impl EventSink for MessagesStreamWriter {
    fn ended(&self) -> bool {
        self.ended
    }

    fn message_start<B: BufMut>(&mut self, buf: &mut B) {
        self.start(buf);
    }

    /// `content_block_start` of a `tool_use` (or `server_tool_use`) block.
    fn tool_use_start<B: BufMut>(&mut self, tool: ToolStart<'_>, buf: &mut B) {
        let ToolStart {
            block,
            id,
            name,
            r#type,
        } = tool;
        self.start(buf);
        if self.slot(block).is_some() {
            return;
        }
        self.flush_redacted(buf);
        self.open(block, Kind::ToolUse, buf);
        let kind: &[u8] = if r#type == Some("server_tool_use") {
            b"server_tool_use"
        } else {
            b"tool_use"
        };
        buf.put_slice(b"{\"type\":\"");
        buf.put_slice(kind);
        buf.put_slice(b"\",\"id\":");
        json_str(buf, id);
        buf.put_slice(b",\"name\":");
        json_str(buf, name);
        buf.put_slice(b",\"input\":{}}");
        end_start(buf);
    }

    fn block_delta<B: BufMut>(&mut self, block: u32, delta: &ContentBlockDelta<'_>, buf: &mut B) {
        self.delta(block, delta, buf);
    }

    /// `content_block_stop` for a Converse block (its redacted reasoning first, if any).
    fn block_stop<B: BufMut>(&mut self, block: u32, buf: &mut B) {
        self.write_redacted(block, buf);
        if let Some(i) = self.slot(block) {
            if self.slots[i].open {
                self.slots[i].open = false;
                let at = self.slots[i].index;
                block_stop(at, buf);
            }
        }
    }

    /// Records the stop reason (written with the usage, at `metadata` or
    /// [`finish`](SseWriter::finish)); an error reason ends the stream with an
    /// error event.
    fn message_stop<B: BufMut>(&mut self, reason: &StopReason, fields: Option<&RawValue>, buf: &mut B) {
        self.start(buf);
        let Some(r) = stop_reason(reason) else {
            let err = ApiError::new(ErrorClass::ModelError, format!("the model stopped with {reason}"));
            self.error(&err, buf);
            return;
        };
        let seq = if *reason == StopReason::StopSequence {
            fields
                .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok())
                .and_then(|v| super::response::stop_sequence(Some(&v)))
        } else {
            None
        };
        self.stop = Some((r, seq));
    }

    fn metadata<B: BufMut>(&mut self, usage: Option<&TokenUsage>, buf: &mut B) {
        if let Some(u) = usage {
            self.usage = Some(Usage::from(u));
        }
        if self.stop.is_some() {
            self.end(buf);
        }
    }
}

fn end_start<B: BufMut>(buf: &mut B) {
    buf.put_slice(b"}\n\n");
}

fn block_stop<B: BufMut>(at: u32, buf: &mut B) {
    buf.put_slice(b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":");
    uint(buf, u64::from(at));
    buf.put_slice(b"}\n\n");
}

fn delta_head<B: BufMut>(at: u32, buf: &mut B) {
    buf.put_slice(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":");
    uint(buf, u64::from(at));
    buf.put_slice(b",\"delta\":");
}

fn delta_tail<B: BufMut>(buf: &mut B) {
    buf.put_slice(b"}}\n\n");
}

// ===== impl SseWriter for MessagesStreamWriter =====

impl ForwardingWriter for MessagesStreamWriter {
    fn forward<B: BufMut>(&mut self, delta: RawTextDelta<'_>, buf: &mut B) -> bool {
        self.forward_text(delta, buf)
    }
}

impl SseWriter for MessagesStreamWriter {
    fn set_usage(&mut self, usage: &TokenUsage) {
        self.usage = Some(Usage::from(usage));
    }

    fn finish<B: BufMut>(&mut self, buf: &mut B) {
        if !self.ended {
            self.start(buf);
            self.end(buf);
        }
    }

    fn error<B: BufMut>(&mut self, err: &ApiError, buf: &mut B) {
        if self.ended {
            return;
        }
        self.ended = true;
        buf.put_slice(b"event: error\ndata: ");
        super::response::write_error_object(err, buf);
        buf.put_slice(b"\n\n");
    }
}
