//! The assembler against real and recorded ConverseStream data in
//! `../shared/reference/captures` (see its README).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bedrock_converse::converse::{
    BlockKind, ContentBlock, ConverseResponse, ExceptionKind, Missing, OrderProblem, ReasoningContentBlock,
    StopReason, StreamAssembler, StreamError, StreamEvent,
};
use bedrock_converse::eventstream::{EventStreamCodec, Message, MessageBuilder};
use bytes::BytesMut;
use serde_json::{json, value::RawValue, Value};
use tokio_util::codec::Decoder;

fn captures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/captures");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "{} is missing", dir.display());
    eprintln!("note: {} is missing; skipping", dir.display());
    None
}

fn decode_all(bytes: &[u8]) -> Vec<Message> {
    let mut buf = BytesMut::from(bytes);
    let mut codec = EventStreamCodec::default();
    let mut out = Vec::new();
    while let Some(m) = codec.decode(&mut buf).expect("valid frames") {
        out.push(m);
    }
    assert!(buf.is_empty(), "trailing bytes");
    out
}

/// Turns a `{"<eventType>": payload}` JSON line into a frame with the three string headers
/// real streams carry, keeping the payload bytes verbatim.
fn frame_from_line(line: &str) -> Message {
    let map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(line).expect("JSON line");
    assert_eq!(map.len(), 1, "{line}");
    let (ty, payload) = map.into_iter().next().expect("one member");
    MessageBuilder::new()
        .string_header(":event-type", &ty)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(payload.get().as_bytes())
        .expect("frame")
}

fn assemble(messages: &[Message], assembler: StreamAssembler) -> ConverseResponse {
    let mut asm = assembler;
    for m in messages {
        asm.push(m).unwrap_or_else(|e| panic!("{e} at {m:?}"));
    }
    asm.finish().unwrap_or_else(|e| panic!("{e}"))
}

fn chunks(dir: &Path, name: &str) -> Vec<Message> {
    let text = std::fs::read_to_string(dir.join("vercel-ai-chunks").join(name)).expect("read");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(frame_from_line)
        .collect()
}

#[test]
fn cosine_tool_use_capture() {
    let Some(dir) = captures() else { return };
    let bytes = std::fs::read(dir.join("envoy-ai-gateway_claude-cosine-tool-use.bin")).expect("read");
    let messages = decode_all(&bytes);
    assert_eq!(messages.len(), 25);

    // Events borrow from the frames when nothing needs unescaping.
    let mut asm = StreamAssembler::new();
    let mut borrowed = 0;
    for m in &messages {
        use bedrock_converse::converse::ContentBlockDelta as D;
        use std::borrow::Cow::Borrowed;
        if let Some(StreamEvent::ContentBlockDelta {
            delta: D::Text(Borrowed(_)) | D::ToolUseInput(Borrowed(_)),
            ..
        }) = asm.push(m).expect("push")
        {
            borrowed += 1;
        }
    }
    assert!(borrowed > 0);
    let r = asm.finish().expect("complete");

    let content = r.content();
    assert_eq!(content.len(), 2, "{content:?}");
    let ContentBlock::Text(text) = &content[0] else {
        panic!("{:?}", content[0])
    };
    assert!(!text.is_empty());
    let ContentBlock::ToolUse(tool) = &content[1] else {
        panic!("{:?}", content[1])
    };
    assert_eq!(tool.name, "cosine");
    assert!(!tool.tool_use_id.is_empty());
    assert_eq!(tool.input, json!({"x": 7}));
    assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
    let usage = r.usage.as_ref().expect("usage");
    assert_eq!(usage.input_tokens + usage.output_tokens, usage.total_tokens);
    assert!(r.metrics.is_some());
    println!("{}", serde_json::to_string_pretty(&r).expect("json"));
}

#[test]
fn live_ok_capture() {
    let Some(dir) = captures() else { return };
    let bytes = std::fs::read(dir.join("vercel-ai_issue-18994-live-converse-stream.bin")).expect("read");
    let messages = decode_all(&bytes);
    assert_eq!(messages.len(), 6);
    let r = assemble(&messages, StreamAssembler::new());
    assert_eq!(r.text(), "OK.");
    assert_eq!(r.stop_reason, Some(StopReason::EndTurn));
    assert!(r.usage.is_some());
    // Unknown members of the metadata event are kept at the top level; padding is not.
    let v = serde_json::to_value(&r).expect("json");
    assert!(v.get("p").is_none());
    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
}

#[test]
fn model_stream_error_capture() {
    let Some(dir) = captures() else { return };
    let bytes =
        std::fs::read(dir.join("vercel-ai_model-stream-error-exception.synthetic.bin")).expect("read");
    let messages = decode_all(&bytes);
    assert_eq!(messages.len(), 1);

    // The exception after some text: the text is not lost.
    let mut asm = StreamAssembler::new();
    for line in [
        r#"{"messageStart":{"role":"assistant"}}"#,
        r#"{"contentBlockDelta":{"contentBlockIndex":0,"delta":{"text":"partial answer"}}}"#,
    ] {
        asm.push(&frame_from_line(line)).expect("push");
    }
    let err = asm.push(&messages[0]).expect_err("exception");
    let StreamError::Service(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.kind, ExceptionKind::ModelStreamError);
    assert_eq!(e.message.as_deref(), Some("Model Stream Error"));
    assert_eq!(e.original_status_code, Some(500));
    assert_eq!(e.original_message.as_deref(), Some("The model stream failed."));
    assert!(!e.is_retryable());
    assert_eq!(asm.partial().text(), "partial answer");

    let err = asm.finish().expect_err("incomplete");
    let StreamError::Incomplete(inc) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        inc.missing,
        vec![Missing::ContentBlockStop { index: 0 }, Missing::MessageStop]
    );
    assert_eq!(
        inc.exception.as_ref().map(|e| &e.kind),
        Some(&ExceptionKind::ModelStreamError)
    );
    assert_eq!(inc.partial.text(), "partial answer");
}

#[test]
fn chunks_text() {
    let Some(dir) = captures() else { return };
    let r = assemble(
        &chunks(&dir, "amazon-bedrock-text.chunks.txt"),
        StreamAssembler::new(),
    );
    assert_eq!(
        r.text(),
        "Let me count the \"r\"s in \"strawberry\":\n\ns-t-**r**-a-w-b-e-**r**-**r**-y\n\nThere are **3** r's in \"strawberry.\""
    );
    assert_eq!(r.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(
        r.additional_model_response_fields,
        Some(json!({"delta": {"stop_sequence": null}}))
    );
    let usage = r.usage.expect("usage");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.total_tokens),
        (22, 55, 77)
    );
    assert_eq!(usage.extra.get("serverToolUsage"), Some(&json!({})));
    assert_eq!(r.metrics.map(|m| m.latency_ms), Some(2040));
}

#[test]
fn chunks_reasoning_with_signature() {
    let Some(dir) = captures() else { return };
    let r = assemble(
        &chunks(&dir, "amazon-bedrock-reasoning.chunks.txt"),
        StreamAssembler::new(),
    );
    let content = r.content();
    assert_eq!(content.len(), 2);
    let ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(rt)) = &content[0] else {
        panic!("{:?}", content[0])
    };
    assert!(rt.text.starts_with("Let me count the r's in \"strawberry\":"));
    assert!(rt.text.ends_with("So there are 3 r's."));
    assert!(rt
        .signature
        .as_deref()
        .is_some_and(|s| s.starts_with("Ep0CCkgICxABGAIq") && s.ends_with("GAE=")));
    assert!(r.text().starts_with("There are **3** r's"));
    let v = serde_json::to_value(&r).expect("json");
    assert!(
        v["output"]["message"]["content"][0]["reasoningContent"]["reasoningText"]["signature"].is_string()
    );
}

#[test]
fn chunks_redacted_then_tool() {
    let Some(dir) = captures() else { return };
    let r = assemble(
        &chunks(&dir, "amazon-bedrock-redacted-content.chunks.txt"),
        StreamAssembler::new(),
    );
    let content = r.content();
    assert_eq!(content.len(), 2);
    let ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(blob)) = &content[0] else {
        panic!("{:?}", content[0])
    };
    assert!(blob
        .as_bytes()
        .starts_with(b"rsn_pUPh16to4VKYDgJAPymbEAIFeBLZsJmySzA0atuINcHa5QkCF2SwPaNoz+tM2ro7QdacAF8AAQAV"));
    let v = serde_json::to_value(&r).expect("json");
    assert!(
        v["output"]["message"]["content"][0]["reasoningContent"]["redactedContent"]
            .as_str()
            .is_some_and(|s| s.starts_with("cnNuX3BVUGgxNnRv"))
    );
    let ContentBlock::ToolUse(tool) = &content[1] else {
        panic!("{:?}", content[1])
    };
    assert_eq!(tool.name, "propose");
    assert_eq!(tool.tool_use_id, "call_61f8fcbe423a58699163c53e076f1a06");
    let input = tool.input.to_value();
    assert!(input["groups"].is_array(), "{}", tool.input);
    assert_eq!(
        input["groups"][0],
        json!({"name": "Sales", "parentGroupName": ""})
    );
    assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
}

#[test]
fn chunks_citations() {
    let Some(dir) = captures() else { return };
    let r = assemble(
        &chunks(&dir, "amazon-bedrock-document-citations.chunks.txt"),
        StreamAssembler::new(),
    );
    let content = r.content();
    assert_eq!(content.len(), 13);
    let ContentBlock::CitationsContent(c) = &content[1] else {
        panic!("{:?}", content[1])
    };
    assert_eq!(c.citations.len(), 1);
    assert_eq!(c.citations[0].title.as_deref(), Some("document"));
    assert_eq!(
        c.citations[0].location,
        Some(json!({"documentPage": {"documentIndex": 0, "end": 2, "start": 1}}))
    );
    assert!(c.citations[0].source_content[0]
        .text
        .as_deref()
        .is_some_and(|t| t.starts_with("AI 1\r\n")));
    assert_eq!(
        c.content[0].text.as_deref(),
        Some(
            "generative artificial intelligence refers to models that predict and generate various types of \
             outputs (such as text, images, or audio) based on what's statistically likely, pulling from \
             patterns they've learned from their training data"
        )
    );
    assert!(matches!(content[0], ContentBlock::Text(_)));
    assert!(r.text().starts_with("Based on the supplied document, generative"));
    let v = serde_json::to_value(&r).expect("json");
    assert!(v.get("p").is_none());
    assert!(
        v["output"]["message"]["content"][1]["citationsContent"]["citations"][0]["sourceContent"][0]["text"]
            .is_string()
    );
    assert_eq!(r.usage.map(|u| u.total_tokens), Some(3084));
}

#[test]
fn chunks_tool_call_hand_written() {
    let Some(dir) = captures() else { return };
    let messages = chunks(&dir, "amazon-bedrock-tool-call.1.chunks.txt");
    // Hand-written: no messageStart. Strict by default...
    let mut strict = StreamAssembler::new();
    let err = strict.push(&messages[0]).expect_err("strict");
    assert!(matches!(
        err,
        StreamError::OutOfOrder {
            event_type: "contentBlockStart",
            index: Some(0),
            problem: OrderProblem::BeforeMessageStart
        }
    ));
    // ...lenient on request. Metadata comes before messageStop here.
    let r = assemble(
        &messages,
        StreamAssembler::new().allow_missing_message_start(true),
    );
    let tool = r.tool_uses().next().expect("tool");
    assert_eq!(
        (tool.tool_use_id.as_str(), tool.name.as_str()),
        ("tool-use-id", "test-tool")
    );
    assert_eq!(tool.input, json!({"value": "Sparkle Day"}));
    assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(r.usage.map(|u| u.total_tokens), Some(170));
}

#[test]
fn chunks_tool_no_args() {
    let Some(dir) = captures() else { return };
    let messages = chunks(&dir, "amazon-bedrock-tool-no-args.chunks.txt");
    let r = assemble(
        &messages,
        StreamAssembler::new().allow_missing_message_start(true),
    );
    let content = r.content();
    assert_eq!(content.len(), 2);
    assert_eq!(
        content[0],
        ContentBlock::Text("I'll update the issue list for you.".into())
    );
    let ContentBlock::ToolUse(tool) = &content[1] else {
        panic!("{:?}", content[1])
    };
    assert_eq!(tool.name, "updateIssueList");
    assert_eq!(tool.input, json!({}));
}

#[test]
fn chunks_max_tokens() {
    let Some(dir) = captures() else { return };
    let r = assemble(
        &chunks(&dir, "issue-17523-max-tokens.chunks.txt"),
        StreamAssembler::new(),
    );
    assert_eq!(r.text(), "Hello! How can I assist you today? If");
    assert_eq!(r.stop_reason, Some(StopReason::MaxTokens));
    assert_eq!(r.usage.map(|u| u.total_tokens), Some(12));
}

#[test]
fn every_chunk_file_assembles() {
    let Some(dir) = captures() else { return };
    let mut n = 0;
    for entry in std::fs::read_dir(dir.join("vercel-ai-chunks")).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let r = assemble(
            &chunks(&dir, &name),
            StreamAssembler::new().allow_missing_message_start(true),
        );
        assert!(r.stop_reason.is_some(), "{name}");
        // The assembled response round-trips through its JSON form.
        let json = serde_json::to_string(&r).expect("json");
        let back: ConverseResponse = serde_json::from_str(&json).expect("parse back");
        assert_eq!(back, r, "{name}");
        n += 1;
    }
    assert_eq!(n, 7);
}

#[test]
fn converse_json_round_trips() {
    let Some(dir) = captures() else { return };
    let text =
        std::fs::read_to_string(dir.join("vercel-ai_converse-response_opus-4-7-strict-tool-live.json"))
            .expect("read");
    let original: Value = serde_json::from_str(&text).expect("json");
    let r: ConverseResponse = serde_json::from_str(&text).expect("ConverseResponse");
    let tool = r.tool_uses().next().expect("tool");
    assert_eq!(tool.name, "report_result");
    assert_eq!(tool.r#type.as_deref(), Some("tool_use"));
    assert_eq!(tool.input, json!({"value": "ok"}));
    assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
    let usage = r.usage.as_ref().expect("usage");
    assert_eq!(usage.cache_read_input_tokens, Some(0));
    assert_eq!(usage.extra.get("cacheReadInputTokenCount"), Some(&json!(0)));
    assert_eq!(serde_json::to_value(&r).expect("json"), original);
}

#[test]
fn protocol_errors_are_typed_and_keep_state() {
    let push = |asm: &mut StreamAssembler, line: &str| asm.push(&frame_from_line(line)).map(|_| ());
    let mut asm = StreamAssembler::new();
    let err = push(
        &mut asm,
        r#"{"contentBlockDelta":{"contentBlockIndex":0,"delta":{"text":"x"}}}"#,
    );
    assert!(matches!(
        err,
        Err(StreamError::OutOfOrder {
            problem: OrderProblem::BeforeMessageStart,
            ..
        })
    ));
    push(&mut asm, r#"{"messageStart":{"role":"assistant"}}"#).expect("start");
    push(
        &mut asm,
        r#"{"contentBlockStart":{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"a","name":"f"}}}}"#,
    )
    .expect("tool start");
    push(
        &mut asm,
        r#"{"contentBlockDelta":{"contentBlockIndex":0,"delta":{"text":"hello"}}}"#,
    )
    .expect("text");
    let err = push(
        &mut asm,
        r#"{"contentBlockDelta":{"contentBlockIndex":1,"delta":{"text":"x"}}}"#,
    );
    assert!(matches!(
        err,
        Err(StreamError::DeltaKindMismatch {
            index: 1,
            block: BlockKind::ToolUse,
            delta: BlockKind::Text
        })
    ));
    push(
        &mut asm,
        r#"{"contentBlockDelta":{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":"}}}}"#,
    )
    .expect("input");
    let err = push(&mut asm, r#"{"contentBlockStop":{"contentBlockIndex":1}}"#).expect_err("invalid input");
    let StreamError::InvalidToolInput { index, name, raw, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*index, name.as_str(), raw.as_str()), (1, "f", "{\"a\":"));
    assert!(err.to_string().contains("\"f\""), "{err}");
    // The raw input is kept in the partial response as a JSON string.
    let partial = asm.partial();
    assert_eq!(
        partial.tool_uses().next().map(|t| t.input.to_value()),
        Some(json!("{\"a\":"))
    );
    let err =
        push(&mut asm, r#"{"contentBlockDelta":{"contentBlockIndex":"zero"}}"#).expect_err("bad payload");
    assert!(matches!(
        err,
        StreamError::InvalidPayload {
            event_type: "contentBlockDelta",
            ..
        }
    ));
    // Unknown event types and delta kinds pass through.
    let m = frame_from_line(r#"{"somethingNew":{"a":1}}"#);
    assert!(matches!(
        asm.push(&m),
        Ok(Some(StreamEvent::Unknown {
            event_type: "somethingNew",
            ..
        }))
    ));
    push(
        &mut asm,
        r#"{"contentBlockDelta":{"contentBlockIndex":5,"delta":{"video":{"x":1}}}}"#,
    )
    .expect("unknown");
    let err = asm.finish().expect_err("incomplete");
    let StreamError::Incomplete(inc) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        inc.missing,
        vec![
            Missing::ContentBlockStop { index: 0 },
            // The rejected stop left the tool block open.
            Missing::ContentBlockStop { index: 1 },
            Missing::ToolInput {
                index: 1,
                name: "f".into()
            },
            // The unknown delta member opened a block, kept as it arrived.
            Missing::ContentBlockStop { index: 5 },
            Missing::MessageStop
        ]
    );
    assert_eq!(inc.partial.text(), "hello");
}

#[test]
fn exception_and_error_frames() {
    let exc = |ty: &str, payload: &str| {
        MessageBuilder::new()
            .string_header(":exception-type", ty)
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "exception")
            .build(payload.as_bytes())
            .expect("frame")
    };
    for (ty, kind) in [
        ("throttlingException", ExceptionKind::Throttling),
        ("validationException", ExceptionKind::Validation),
        ("internalServerException", ExceptionKind::InternalServer),
        ("serviceUnavailableException", ExceptionKind::ServiceUnavailable),
        ("somethingElse", ExceptionKind::Other("somethingElse".into())),
    ] {
        let mut asm = StreamAssembler::new();
        let err = asm
            .push(&exc(ty, r#"{"message":"slow down"}"#))
            .expect_err("exception");
        let StreamError::Service(e) = err else {
            panic!("{err:?}")
        };
        assert_eq!(e.kind, kind);
        assert_eq!(e.message.as_deref(), Some("slow down"));
    }
    let m = MessageBuilder::new()
        .string_header(":message-type", "error")
        .string_header(":error-code", "InternalFailure")
        .string_header(":error-message", "boom")
        .build(b"")
        .expect("frame");
    let err = StreamAssembler::new().push(&m).expect_err("error frame");
    assert!(
        matches!(err, StreamError::ErrorFrame { ref code, ref message } if code == "InternalFailure" && message == "boom")
    );
}

/// Strips the `"p"` padding from each event's payload.
fn without_padding(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        for payload in obj.values_mut() {
            if let Some(p) = payload.as_object_mut() {
                p.remove("p");
            }
        }
    }
    v
}

#[test]
fn events_serialize_back_to_their_lines() {
    let Some(dir) = captures() else { return };
    for entry in std::fs::read_dir(dir.join("vercel-ai-chunks")).expect("dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let mut asm = StreamAssembler::new().allow_missing_message_start(true);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let m = frame_from_line(line);
            let event = asm.push(&m).expect("push").expect("event");
            let original: Value = serde_json::from_str(line).expect("json");
            let ours = serde_json::to_value(&event).expect("serialize");
            assert_eq!(ours, without_padding(original), "{}", path.display());
        }
    }
}

#[test]
fn block_count_is_limited() {
    let mut asm = StreamAssembler::new();
    asm.push(&frame_from_line(r#"{"messageStart":{"role":"assistant"}}"#))
        .expect("start");
    // Descending indices: the worst case for keeping blocks sorted.
    for i in (0..StreamAssembler::MAX_BLOCKS as u32).rev() {
        let line = format!(
            r#"{{"contentBlockDelta":{{"contentBlockIndex":{},"delta":{{"text":"x"}}}}}}"#,
            i + 10
        );
        asm.push(&frame_from_line(&line)).expect("within the limit");
    }
    let err = asm
        .push(&frame_from_line(
            r#"{"contentBlockDelta":{"contentBlockIndex":0,"delta":{"text":"x"}}}"#,
        ))
        .expect_err("over the limit");
    assert!(
        matches!(err, StreamError::TooManyBlocks { index: 0, max: 4096 }),
        "{err:?}"
    );
    assert_eq!(asm.partial().content().len(), StreamAssembler::MAX_BLOCKS);
}
