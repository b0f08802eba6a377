//! Every `ContentBlockStart` and `ContentBlockDelta` member of the service model
//! (botocore 1.44.8), assembled from hand-made frames into the block a non-streaming
//! Converse response carries for it; unknown members kept; all nine stop reasons;
//! `metadata` with everything it may carry.

use std::borrow::Cow;

use bedrock_converse::converse::{
    BlockKind, ContentBlockDelta, ConverseResponse, StopReason, StreamAssembler, StreamEvent,
};
use serde_json::{json, Value};

mod common;
use common::event_frame;

/// Assembles `events` between a `messageStart` and a `messageStop` (`end_turn`).
fn assemble(events: &[(&str, Value)]) -> ConverseResponse {
    let mut asm = StreamAssembler::new();
    asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
        .expect("start");
    for (ty, payload) in events {
        let m = event_frame(ty, payload.to_string());
        asm.push(&m).unwrap_or_else(|e| panic!("{ty} {payload}: {e}"));
    }
    asm.push(&event_frame("messageStop", r#"{"stopReason":"end_turn"}"#))
        .expect("stop");
    asm.finish().expect("complete")
}

fn content(r: &ConverseResponse) -> Value {
    serde_json::to_value(r).expect("json")["output"]["message"]["content"].clone()
}

#[test]
fn server_tool_use_and_its_result() {
    let r = assemble(&[
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "srv_1", "name": "web_search", "type": "server_tool_use"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"query\": \"rust"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": " 2026\"}"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolResult": {"toolUseId": "srv_1", "type": "web_search_result", "status": "success"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolResult": [{"text": "Found "}]}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolResult": [{"text": "two pages"}]}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolResult": [{"json": {"url": "https://example.com", "rank": 1}}, {"json": {"url": "https://example.org", "rank": 2}}]}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1, "p": "abc"})),
    ]);
    assert_eq!(
        content(&r),
        json!([
            {"toolUse": {"toolUseId": "srv_1", "name": "web_search", "input": {"query": "rust 2026"}, "type": "server_tool_use"}},
            {"toolResult": {"toolUseId": "srv_1", "status": "success", "type": "web_search_result", "content": [
                {"text": "Found two pages"},
                {"json": {"url": "https://example.com", "rank": 1}},
                {"json": {"url": "https://example.org", "rank": 2}},
            ]}},
        ])
    );
    // The input is kept as the model wrote it, byte for byte.
    let call = r.tool_uses().next().expect("call");
    assert_eq!(call.input.as_str(), "{\"query\": \"rust 2026\"}");
    let text = serde_json::to_string(&r).expect("json");
    assert!(text.contains(r#""input":{"query": "rust 2026"}"#), "{text}");
    #[derive(serde::Deserialize)]
    struct Args {
        query: String,
    }
    assert_eq!(call.input::<Args>().expect("args").query, "rust 2026");
}

#[test]
fn image_start_and_deltas() {
    // "iVBORw0KGgo=" is the PNG signature; two deltas of bytes are concatenated.
    let r = assemble(&[
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"image": {"format": "png"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"image": {"source": {"bytes": "iVBORw=="}}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"image": {"source": {"bytes": "DQoaCg=="}}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"image": {"format": "jpeg"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"image": {"source": {"s3Location": {"uri": "s3://b/k.jpg"}}}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 2, "start": {"image": {"format": "webp"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"image": {"error": {"message": "blocked by policy"}}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 2})),
    ]);
    assert_eq!(
        content(&r),
        json!([
            {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
            {"image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://b/k.jpg"}}}},
            {"image": {"format": "webp", "source": {"bytes": ""}, "error": {"message": "blocked by policy"}}},
        ])
    );
}

#[test]
fn citations_stay_with_their_text() {
    let r = assemble(&[
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Rust is "}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"citation": {"title": "The Book", "source": "doc-1", "sourceContent": [{"text": "Rust is fast"}], "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": 12}}}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "fast."}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
    ]);
    assert_eq!(
        content(&r),
        json!([{"citationsContent": {
            "content": [{"text": "Rust is fast."}],
            "citations": [{"title": "The Book", "source": "doc-1", "sourceContent": [{"text": "Rust is fast"}], "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": 12}}}],
        }}])
    );
}

#[test]
fn reasoning_text_signature_only_and_redacted() {
    let r = assemble(&[
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Let me think\n"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig-A"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        // Signature-only reasoning (no text delta at all) is kept.
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"reasoningContent": {"signature": "sig-B"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"reasoningContent": {"redactedContent": "YWJj"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"reasoningContent": {"redactedContent": "ZGVm"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 2})),
    ]);
    assert_eq!(
        content(&r),
        json!([
            {"reasoningContent": {"reasoningText": {"text": "Let me think\n", "signature": "sig-A"}}},
            {"reasoningContent": {"reasoningText": {"text": "", "signature": "sig-B"}}},
            {"reasoningContent": {"redactedContent": "YWJjZGVm"}},
        ])
    );
}

#[test]
fn unknown_members_are_kept_and_never_fail_the_stream() {
    let mut asm = StreamAssembler::new();
    asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
        .expect("start");
    for (ty, p) in [
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        // An unknown delta member opening a new block, as text blocks do.
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"video":{"chunk":"AAAA","seq":0}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"video":{"chunk":"BBBB","seq":1}}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":1}"#),
        // An unknown start member.
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":2,"start":{"audio":{"format":"mp3"}}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":2}"#),
        // An unknown delta member on a tool call goes to its other members.
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":3,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":3,"delta":{"progress":{"pct":50}}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":3}"#),
        ("messageStop", r#"{"stopReason":"end_turn"}"#),
        (
            "metadata",
            r#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#,
        ),
    ] {
        asm.push(&event_frame(ty, p))
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }
    assert_eq!(asm.block(1).map(|b| b.kind), Some(BlockKind::Empty));
    let r = asm.finish().expect("complete");
    assert_eq!(r.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(r.usage.as_ref().map(|u| u.total_tokens), Some(3));
    assert_eq!(
        content(&r),
        json!([
            {"text": "hi"},
            {"video": [{"chunk": "AAAA", "seq": 0}, {"chunk": "BBBB", "seq": 1}]},
            {"audio": {"format": "mp3"}},
            {"toolUse": {"toolUseId": "t", "name": "f", "input": {}, "progress": {"pct": 50}}},
        ])
    );
}

#[test]
fn all_nine_stop_reasons() {
    let reasons = [
        ("end_turn", StopReason::EndTurn),
        ("tool_use", StopReason::ToolUse),
        ("max_tokens", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("guardrail_intervened", StopReason::GuardrailIntervened),
        ("content_filtered", StopReason::ContentFiltered),
        ("malformed_model_output", StopReason::MalformedModelOutput),
        ("malformed_tool_use", StopReason::MalformedToolUse),
        (
            "model_context_window_exceeded",
            StopReason::ModelContextWindowExceeded,
        ),
    ];
    for (wire, reason) in reasons {
        let mut asm = StreamAssembler::new();
        asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
            .expect("start");
        let stop = event_frame("messageStop", format!(r#"{{"stopReason":"{wire}"}}"#));
        assert!(
            matches!(asm.push(&stop), Ok(Some(StreamEvent::MessageStop { stop_reason, .. })) if stop_reason == reason)
        );
        let r = asm.finish().expect("complete");
        assert_eq!(r.stop_reason.as_ref(), Some(&reason));
        assert_eq!(serde_json::to_value(&r).expect("json")["stopReason"], json!(wire));
    }
    // A reason added later is kept as sent.
    let mut asm = StreamAssembler::new();
    asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
        .expect("start");
    asm.push(&event_frame("messageStop", r#"{"stopReason":"new_reason"}"#))
        .expect("stop");
    assert_eq!(asm.stop_reason(), Some(&StopReason::Other("new_reason".into())));
}

#[test]
fn metadata_keeps_everything() {
    let mut asm = StreamAssembler::new();
    asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
        .expect("start");
    asm.push(&event_frame("messageStop", r#"{"stopReason":"end_turn"}"#))
        .expect("stop");
    let metadata = json!({
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, "cacheReadInputTokens": 7,
                  "cacheWriteInputTokens": 3, "cacheDetails": [{"ttl": "5m", "inputTokens": 3}]},
        "metrics": {"latencyMs": 42},
        "trace": {"guardrail": {"modelOutput": ["x"]}, "promptRouter": {"invokedModelId": "m"}},
        "performanceConfig": {"latency": "optimized"},
        "serviceTier": {"type": "priority"},
        "p": "abcdef",
    });
    asm.push(&event_frame("metadata", metadata.to_string()))
        .expect("metadata");
    let r = serde_json::to_value(asm.finish().expect("complete")).expect("json");
    for key in ["usage", "metrics", "trace", "performanceConfig", "serviceTier"] {
        assert_eq!(r[key], metadata[key], "{key}");
    }
}

#[test]
fn escaped_deltas_borrow_from_the_assembler() {
    let mut asm = StreamAssembler::new();
    asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
        .expect("start");
    let m = event_frame(
        "contentBlockDelta",
        r#"{"p":"ab","delta":{"text":"a\"b\\c\/d\b\f\n\r\t\u0000\u001f\uD83D\uDE00é"},"contentBlockIndex":0}"#,
    );
    match asm.push(&m).expect("delta") {
        Some(StreamEvent::ContentBlockDelta {
            delta: ContentBlockDelta::Text(Cow::Borrowed(t)),
            ..
        }) => assert_eq!(t, "a\"b\\c/d\u{8}\u{c}\n\r\t\u{0}\u{1f}😀é"),
        other => panic!("{other:?}"),
    }
    let m = event_frame(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":" and \"more\""}}"#,
    );
    assert!(matches!(
        asm.push(&m),
        Ok(Some(StreamEvent::ContentBlockDelta {
            delta: ContentBlockDelta::Text(Cow::Borrowed(" and \"more\"")),
            ..
        }))
    ));
    assert_eq!(
        asm.partial().text(),
        "a\"b\\c/d\u{8}\u{c}\n\r\t\u{0}\u{1f}😀é and \"more\""
    );
}

#[test]
fn tool_state_for_the_client_layer() {
    let mut asm = StreamAssembler::new();
    asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
        .expect("start");
    asm.push(&event_frame(
        "contentBlockStart",
        r#"{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t1","name":"f"}}}"#,
    ))
    .expect("tool start");
    asm.push(&event_frame(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"a\":"}}}"#,
    ))
    .expect("fragment");
    let t = asm.tool_use(0).expect("a tool block");
    assert_eq!(
        (t.tool_use_id, t.name, t.input_text, t.stopped),
        ("t1", "f", "{\"a\":", false)
    );
    assert!(t.input().is_none());
    asm.push(&event_frame(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"[1, 2]}"}}}"#,
    ))
    .expect("fragment");
    asm.push(&event_frame("contentBlockStop", r#"{"contentBlockIndex":0}"#))
        .expect("stop");
    let t = asm.tool_use(0).expect("a tool block");
    assert_eq!(t.input().map(|i| i.to_value()), Some(json!({"a": [1, 2]})));
    assert_eq!(
        asm.block(0).map(|b| (b.kind, b.stopped)),
        Some((BlockKind::ToolUse, true))
    );
    assert!(asm.tool_use(1).is_none());
}

/// An unknown delta member on a block that is already text or reasoning: kept as it
/// arrived, as a block of its own right after the block it came on (a `ContentBlock` is
/// a union, one member per block, so the text block stays exactly what `/converse`
/// returns and the unknown member keeps its name and value); a member unknown inside
/// `reasoningContent` keeps that nesting. The text around it stays one block.
#[test]
fn unknown_members_on_text_and_reasoning_blocks_are_kept() {
    let r = assemble(&[
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"textFormat": {"bold": [0, 5]}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": " world"}, "p": "ab"}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"reasoningContent": {"text": "think"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"reasoningContent": {"summary": "brief"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"confidence": 0.5}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"reasoningContent": {"signature": "sig"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
    ]);
    assert_eq!(
        content(&r),
        json!([
            {"text": "Hello world"},
            {"textFormat": {"bold": [0, 5]}},
            {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}},
            {"reasoningContent": {"summary": "brief"}},
            {"confidence": 0.5},
        ])
    );
}
