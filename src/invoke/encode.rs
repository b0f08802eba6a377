//! The encoding side, for servers and tests: a native event wrapped in a `chunk`
//! frame, stream exceptions as frames, and a finished [`AnthropicMessage`] as the
//! native events Bedrock streams for it.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::converse::ExceptionKind;
use crate::eventstream::{EventStreamError, Message, MessageBuilder};

use super::anthropic::{AnthropicContentBlock, AnthropicMessage};
use super::chunk::CHUNK_EVENT_TYPE;

/// A `chunk` event frame carrying one native event: payload `{"bytes":"<base64>"}`.
///
/// # Errors
///
/// [`EventStreamError`] when the frame would exceed the event-stream limits.
pub fn chunk_frame(native_event: &[u8]) -> Result<Message, EventStreamError> {
    let mut payload = String::with_capacity(native_event.len().div_ceil(3) * 4 + 12);
    payload.push_str(r#"{"bytes":""#);
    base64::engine::general_purpose::STANDARD.encode_string(native_event, &mut payload);
    payload.push_str(r#""}"#);
    MessageBuilder::new()
        .string_header(":event-type", CHUNK_EVENT_TYPE)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(payload.as_bytes())
}

/// An exception frame of the response stream: `:exception-type` `kind`, payload
/// `{"message":...}` (with `originalStatusCode` for `modelStreamErrorException` when
/// given).
///
/// # Errors
///
/// [`EventStreamError`] when the frame would exceed the event-stream limits.
pub fn exception_frame(
    kind: &ExceptionKind,
    message: &str,
    original_status_code: Option<u16>,
) -> Result<Message, EventStreamError> {
    let mut body = json!({ "message": message });
    if let (Some(code), Some(map)) = (original_status_code, body.as_object_mut()) {
        map.insert("originalStatusCode".to_owned(), json!(code));
    }
    MessageBuilder::new()
        .string_header(":exception-type", kind.as_str())
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "exception")
        .build(body.to_string().as_bytes())
}

/// Splits `s` into pieces of at most `max` bytes (at least one character each), at
/// character boundaries. An empty `s` gives no piece.
fn fragments(s: &str, max: usize) -> Vec<&str> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = max.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}

/// The native Anthropic events Bedrock streams for `message`, as JSON: `message_start`
/// (with the input usage), per block a `content_block_start`, deltas of at most
/// `fragment_len` bytes (text as `text_delta`, tool input as `input_json_delta`
/// fragments of its JSON, thinking as `thinking_delta` then one `signature_delta`,
/// citations as `citations_delta`; redacted thinking and other blocks whole in the
/// start) and `content_block_stop`, then `message_delta` (stop reason, output
/// tokens) and `message_stop` (with the invocation metrics when the message has them).
///
/// [`AnthropicAssembler`](super::AnthropicAssembler) turns them back into `message`.
pub fn native_events(message: &AnthropicMessage, fragment_len: usize) -> Vec<Vec<u8>> {
    let mut events = vec![message_start(message)];
    for (index, block) in message.content.iter().enumerate() {
        block_events(&mut events, index, block, fragment_len);
    }
    events.push(json!({
        "type": "message_delta",
        "delta": { "stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence },
        "usage": { "output_tokens": message.usage.output_tokens },
    }));
    let mut stop = json!({ "type": "message_stop" });
    if let (Some(m), Some(map)) = (&message.invocation_metrics, stop.as_object_mut()) {
        map.insert("amazon-bedrock-invocationMetrics".to_owned(), json!(m));
    }
    events.push(stop);
    events.into_iter().map(|e| type_first(&e)).collect()
}

/// `message_start`: the message with no content, its input usage (and at most one
/// output token, as Bedrock sends it) and its extra members.
fn message_start(message: &AnthropicMessage) -> Value {
    let mut usage = json!({
        "input_tokens": message.usage.input_tokens,
        "output_tokens": message.usage.output_tokens.min(1),
    });
    if let Some(map) = usage.as_object_mut() {
        if let Some(n) = message.usage.cache_creation_input_tokens {
            map.insert("cache_creation_input_tokens".to_owned(), json!(n));
        }
        if let Some(n) = message.usage.cache_read_input_tokens {
            map.insert("cache_read_input_tokens".to_owned(), json!(n));
        }
    }
    let mut start = json!({
        "id": message.id,
        "type": "message",
        "role": message.role,
        "model": message.model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null,
        "usage": usage,
    });
    if let Some(map) = start.as_object_mut() {
        for (k, v) in &message.extra {
            map.insert(k.clone(), v.clone());
        }
    }
    json!({ "type": "message_start", "message": start })
}

/// One block's `content_block_start`, its deltas of at most `fragment_len` bytes and
/// its `content_block_stop`, appended to `events`.
fn block_events(events: &mut Vec<Value>, index: usize, block: &AnthropicContentBlock, fragment_len: usize) {
    let start = |content_block: Value| json!({ "type": "content_block_start", "index": index, "content_block": content_block });
    let delta = |delta: Value| json!({ "type": "content_block_delta", "index": index, "delta": delta });
    match block {
        AnthropicContentBlock::Text { text, citations } => {
            events.push(start(json!({ "type": "text", "text": "" })));
            for c in citations {
                events.push(delta(json!({ "type": "citations_delta", "citation": c })));
            }
            for piece in fragments(text, fragment_len) {
                events.push(delta(json!({ "type": "text_delta", "text": piece })));
            }
        }
        AnthropicContentBlock::ToolUse { id, name, input } => {
            events.push(start(
                json!({ "type": "tool_use", "id": id, "name": name, "input": {} }),
            ));
            let text = input.to_string();
            for piece in fragments(&text, fragment_len) {
                events.push(delta(
                    json!({ "type": "input_json_delta", "partial_json": piece }),
                ));
            }
        }
        AnthropicContentBlock::Thinking { thinking, signature } => {
            events.push(start(
                json!({ "type": "thinking", "thinking": "", "signature": "" }),
            ));
            for piece in fragments(thinking, fragment_len) {
                events.push(delta(json!({ "type": "thinking_delta", "thinking": piece })));
            }
            events.push(delta(
                json!({ "type": "signature_delta", "signature": signature }),
            ));
        }
        AnthropicContentBlock::RedactedThinking { data } => {
            events.push(start(json!({ "type": "redacted_thinking", "data": data })));
        }
        AnthropicContentBlock::Other(value) => events.push(start(value.clone())),
    }
    events.push(json!({ "type": "content_block_stop", "index": index }));
}

/// `event` as JSON with its `type` member first, as Bedrock sends native events (and
/// as the readers' fast path expects); the other members follow in map order.
fn type_first(event: &Value) -> Vec<u8> {
    let Some(map) = event.as_object() else {
        return event.to_string().into_bytes();
    };
    let mut out = Vec::with_capacity(64);
    out.push(b'{');
    let mut first = true;
    let ty = map.get_key_value("type");
    for (k, v) in ty
        .into_iter()
        .chain(map.iter().filter(|(k, _)| k.as_str() != "type"))
    {
        if !first {
            out.push(b',');
        }
        first = false;
        // Keys and values are `serde_json` values: writing them cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, v);
    }
    out.push(b'}');
    out
}

/// [`native_events`], each wrapped in a [`chunk_frame`].
///
/// # Errors
///
/// [`EventStreamError`] when a frame would exceed the event-stream limits.
pub fn chunk_frames(
    message: &AnthropicMessage,
    fragment_len: usize,
) -> Result<Vec<Message>, EventStreamError> {
    native_events(message, fragment_len)
        .iter()
        .map(|e| chunk_frame(e))
        .collect()
}
