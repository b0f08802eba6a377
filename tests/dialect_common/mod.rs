//! Shared by the `dialect_*` tests: ConverseStream frames, the assembler-to-writer loop,
//! and an SSE parser.

#![allow(dead_code)] // each test file uses its own subset

use bedrock_converse::converse::StreamAssembler;
use bedrock_converse::eventstream::{Message, MessageBuilder};
use bedrock_converse::translate::{anthropic, openai, ApiError, SseWriter};
use serde_json::Value;

/// One event frame.
pub(crate) fn event(event_type: &str, payload: Value) -> Message {
    event_json(event_type, &payload.to_string())
}

/// One event frame whose payload is `json` as written (e.g. with escapes serde_json
/// would not write).
pub(crate) fn event_json(event_type: &str, json: &str) -> Message {
    MessageBuilder::new()
        .string_header(":event-type", event_type)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(json.as_bytes())
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

/// How [`sse`] feeds a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// The assembler's events into `push`.
    Events,
    /// Whole frames into `push_frame` (deltas' JSON strings copied as they came).
    Frames,
}

/// Runs frames into `w` by `path`; a stream error ends the SSE with the error event.
/// Returns the SSE text.
pub(crate) fn sse(messages: &[Message], mut w: impl SseWriter, path: Path) -> String {
    let mut asm = StreamAssembler::new();
    let mut buf = Vec::new();
    for m in messages {
        let pushed = match path {
            Path::Events => asm.push(m).map(|ev| {
                if let Some(ev) = ev {
                    w.push(&ev, &mut buf);
                }
            }),
            Path::Frames => w.push_frame(&mut asm, m.as_frame(), &mut buf),
        };
        if let Err(e) = pushed {
            w.error(&ApiError::from_stream_error(&e), &mut buf);
            return String::from_utf8(buf).expect("utf-8");
        }
    }
    w.finish(&mut buf);
    String::from_utf8(buf).expect("utf-8")
}

/// The OpenAI writer the tests use.
pub(crate) fn openai_writer(include_usage: bool) -> openai::ChatStreamWriter {
    openai::ChatStreamWriter::new("chatcmpl-test", "test-model", 1_700_000_000, include_usage)
}

/// The Anthropic writer the tests use.
pub(crate) fn anthropic_writer() -> anthropic::MessagesStreamWriter {
    anthropic::MessagesStreamWriter::new("msg_test", "test-model")
}

/// Runs frames through the assembler into the OpenAI writer; a stream error ends the
/// SSE with the error event. Returns the SSE text.
pub(crate) fn openai_sse(messages: &[Message], include_usage: bool) -> String {
    sse(messages, openai_writer(include_usage), Path::Events)
}

/// As [`openai_sse`], for the Anthropic writer.
pub(crate) fn anthropic_sse(messages: &[Message]) -> String {
    sse(messages, anthropic_writer(), Path::Events)
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

/// Rebuilds the message from SSE events the way the `anthropic` SDK's accumulator does,
/// checking the event grammar on the way.
pub(crate) fn accumulate(events: &[Sse]) -> Value {
    let mut message = Value::Null;
    let mut partial_json: Vec<String> = Vec::new();
    let mut open: Vec<bool> = Vec::new();
    let mut stopped = false;
    for (n, e) in events.iter().enumerate() {
        let name = e.event.as_deref().expect("named events");
        assert_eq!(e.data["type"], name, "event name matches the data's type");
        assert!(!stopped, "nothing after message_stop");
        match name {
            "message_start" => {
                assert_eq!(n, 0);
                message = e.data["message"].clone();
            }
            "ping" => {}
            "content_block_start" => {
                let i = e.data["index"].as_u64().unwrap() as usize;
                let content = message["content"].as_array_mut().unwrap();
                assert_eq!(i, content.len(), "blocks start in index order");
                content.push(e.data["content_block"].clone());
                partial_json.push(String::new());
                open.push(true);
            }
            "content_block_delta" => {
                let i = e.data["index"].as_u64().unwrap() as usize;
                assert!(open[i], "delta for an open block");
                let block = &mut message["content"][i];
                let d = &e.data["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        let t = format!(
                            "{}{}",
                            block["text"].as_str().unwrap(),
                            d["text"].as_str().unwrap()
                        );
                        block["text"] = serde_json::json!(t);
                    }
                    "thinking_delta" => {
                        assert!(d.get("signature").is_none(), "no signature on thinking_delta");
                        let t = format!(
                            "{}{}",
                            block["thinking"].as_str().unwrap(),
                            d["thinking"].as_str().unwrap()
                        );
                        block["thinking"] = serde_json::json!(t);
                    }
                    "signature_delta" => block["signature"] = d["signature"].clone(),
                    "input_json_delta" => partial_json[i].push_str(d["partial_json"].as_str().unwrap()),
                    "citations_delta" => {
                        if block.get("citations").is_none() {
                            block["citations"] = serde_json::json!([]);
                        }
                        block["citations"]
                            .as_array_mut()
                            .unwrap()
                            .push(d["citation"].clone());
                    }
                    other => panic!("unknown delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = e.data["index"].as_u64().unwrap() as usize;
                assert!(open[i]);
                open[i] = false;
                if !partial_json[i].is_empty() {
                    message["content"][i]["input"] = serde_json::from_str(&partial_json[i]).unwrap();
                }
            }
            "message_delta" => {
                assert!(open.iter().all(|o| !o), "blocks closed before message_delta");
                message["stop_reason"] = e.data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = e.data["delta"]["stop_sequence"].clone();
                message["usage"] = e.data["usage"].clone();
            }
            "message_stop" => stopped = true,
            "error" => {
                message["error"] = e.data["error"].clone();
                stopped = true;
            }
            other => panic!("unknown event {other}"),
        }
    }
    message
}
