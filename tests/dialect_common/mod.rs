//! Shared by the `dialect_*` tests: ConverseStream frames, the assembler-to-writer loop,
//! and an SSE parser.

#![allow(dead_code)] // each test file uses its own subset

use bedrock_converse::converse::StreamAssembler;
use bedrock_converse::eventstream::{Message, MessageBuilder};
use bedrock_converse::translate::{anthropic, openai, ApiError};
use serde_json::Value;

/// One event frame.
pub(crate) fn event(event_type: &str, payload: Value) -> Message {
    MessageBuilder::new()
        .string_header(":event-type", event_type)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(payload.to_string().as_bytes())
        .expect("frame")
}

/// One exception frame.
pub(crate) fn exception(kind: &str, message: &str) -> Message {
    MessageBuilder::new()
        .string_header(":exception-type", kind)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "exception")
        .build(serde_json::json!({ "message": message }).to_string().as_bytes())
        .expect("frame")
}

/// Frames from `(event type, payload)` pairs.
pub(crate) fn frames(events: &[(&str, Value)]) -> Vec<Message> {
    events.iter().map(|(t, p)| event(t, p.clone())).collect()
}

/// Runs frames through the assembler into the OpenAI writer; a stream error ends the
/// SSE with the error event. Returns the SSE text.
pub(crate) fn openai_sse(messages: &[Message], include_usage: bool) -> String {
    let mut asm = StreamAssembler::new();
    let mut w = openai::ChatStreamWriter::new("chatcmpl-test", "test-model", 1_700_000_000, include_usage);
    let mut buf = Vec::new();
    let mut failed = false;
    for m in messages {
        match asm.push(m) {
            Ok(Some(ev)) => w.push(&ev, &mut buf),
            Ok(None) => {}
            Err(e) => {
                w.error(&ApiError::from_stream_error(&e), &mut buf);
                failed = true;
                break;
            }
        }
    }
    if !failed {
        w.finish(&mut buf);
    }
    String::from_utf8(buf).expect("utf-8")
}

/// As [`openai_sse`], for the Anthropic writer.
pub(crate) fn anthropic_sse(messages: &[Message]) -> String {
    let mut asm = StreamAssembler::new();
    let mut w = anthropic::MessagesStreamWriter::new("msg_test", "test-model");
    let mut buf = Vec::new();
    let mut failed = false;
    for m in messages {
        match asm.push(m) {
            Ok(Some(ev)) => w.push(&ev, &mut buf),
            Ok(None) => {}
            Err(e) => {
                w.error(&ApiError::from_stream_error(&e), &mut buf);
                failed = true;
                break;
            }
        }
    }
    if !failed {
        w.finish(&mut buf);
    }
    String::from_utf8(buf).expect("utf-8")
}

/// The assembled response of frames (for comparing stream and non-stream output).
pub(crate) fn assembled(messages: &[Message]) -> bedrock_converse::converse::ConverseResponse {
    let mut asm = StreamAssembler::new();
    for m in messages {
        asm.push(m).expect("valid stream");
    }
    asm.finish().expect("complete stream")
}

/// One SSE event: its `event:` name and its `data:` (JSON, or the string `[DONE]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sse {
    pub(crate) event: Option<String>,
    pub(crate) data: Value,
}

/// Parses SSE text strictly: every event ends with a blank line, has exactly one
/// `data:` line, at most one `event:` line, and its data is JSON (or `[DONE]`).
pub(crate) fn parse_sse(text: &str) -> Vec<Sse> {
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "SSE must end with a blank line: {text:?}"
    );
    let mut out = Vec::new();
    for chunk in text.split("\n\n").filter(|c| !c.is_empty()) {
        let mut event = None;
        let mut data = None;
        for line in chunk.lines() {
            if let Some(e) = line.strip_prefix("event: ") {
                assert!(event.is_none(), "two event lines in {chunk:?}");
                event = Some(e.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                assert!(data.is_none(), "two data lines in {chunk:?}");
                data = Some(if d == "[DONE]" {
                    Value::String("[DONE]".into())
                } else {
                    serde_json::from_str::<Value>(d).unwrap_or_else(|e| panic!("bad JSON {d:?}: {e}"))
                });
            } else {
                panic!("unexpected SSE line {line:?}");
            }
        }
        out.push(Sse {
            event,
            data: data.unwrap_or_else(|| panic!("no data in {chunk:?}")),
        });
    }
    out
}
