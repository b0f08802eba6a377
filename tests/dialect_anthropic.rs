//! The Anthropic Messages dialect on its own: requests to Converse, ConverseStream events
//! to Messages SSE, responses and errors to Anthropic JSON.

mod dialect_common;

use bedrock_converse::converse::{ContentBlock, ReasoningContentBlock, StopReason};
use bedrock_converse::translate::{anthropic, ApiError, ToolChoice, TranslateError};
use dialect_common::{accumulate, anthropic_sse, assembled, exception, frames, parse_sse};
use serde_json::{json, Value};

fn translate(v: Value) -> Result<bedrock_converse::translate::Translated, TranslateError> {
    anthropic::translate_request(v.to_string().as_bytes())
}

fn refused_field(v: Value) -> String {
    let err = translate(v).expect_err("refused");
    let (status, body) = anthropic::error_json(&ApiError::from(&err));
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    err.field().expect("names the field").to_owned()
}

#[test]
fn request_cache_control_thinking_and_sampling() {
    let t = translate(json!({
        "model": "claude", "max_tokens": 2048, "stream": true, "temperature": 1, "top_k": 40,
        "stop_sequences": ["###"],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"},
                   "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Long document...", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Question?"},
        ]}],
    }))
    .unwrap();
    assert!(t.stream);
    let body: Value = serde_json::from_slice(&t.converse.to_json()).unwrap();
    assert_eq!(
        body["toolConfig"]["tools"],
        json!([
            {"toolSpec": {"name": "lookup", "description": "Look up", "inputSchema": {"json": {"type": "object"}}}},
            {"cachePoint": {"type": "default", "ttl": "1h"}},
        ])
    );
    assert_eq!(
        body["system"],
        json!([{"text": "You are terse."}, {"cachePoint": {"type": "default", "ttl": "1h"}}])
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"text": "Long document..."}, {"cachePoint": {"type": "default"}}, {"text": "Question?"}])
    );
    assert_eq!(
        body["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 40})
    );
    assert_eq!(
        body["inferenceConfig"],
        json!({"maxTokens": 2048, "temperature": 1.0, "stopSequences": ["###"]})
    );

    // A 1h point after a (default) 5m one: refused, as Bedrock would, naming it.
    let f = refused_field(json!({
        "model": "claude", "max_tokens": 10,
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}],
    }));
    assert_eq!(f, "messages[0].content[0].cache_control");
    assert_eq!(
        refused_field(json!({"model": "c", "messages": [{"role": "user", "content": "x"}]})),
        "max_tokens"
    );
    assert_eq!(
        refused_field(
            json!({"model": "c", "max_tokens": 10, "thinking": {"type": "enabled", "budget_tokens": 10},
                             "messages": [{"role": "user", "content": "x"}]})
        ),
        "thinking.budget_tokens"
    );
}

#[test]
fn reasoning_tool_calls_and_results_replay() {
    let t = translate(json!({
        "model": "claude", "max_tokens": 100,
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}},
                {"type": "document", "title": "Report 2024.pdf", "citations": {"enabled": true},
                 "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."}},
                {"type": "text", "text": "Weather?"},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Need the tool.", "signature": "sig-abc"},
                {"type": "redacted_thinking", "data": "YWJj"},
                {"type": "tool_use", "id": "tu1", "name": "weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "tu1", "content": "rain", "is_error": true},
            ]},
        ],
    }))
    .unwrap();
    let body: Value = serde_json::from_slice(&t.converse.to_json()).unwrap();
    let m = &body["messages"];
    assert_eq!(
        m[0]["content"][0],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw=="}}})
    );
    assert_eq!(
        m[0]["content"][1],
        json!({"document": {"format": "txt", "name": "Report 2024 pdf", "source": {"text": "The sky is blue."},
                            "citations": {"enabled": true}}})
    );
    assert_eq!(
        m[1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "Need the tool.", "signature": "sig-abc"}}},
            {"reasoningContent": {"redactedContent": "YWJj"}},
            {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Oslo"}}},
        ])
    );
    assert_eq!(
        m[2]["content"],
        json!([{"toolResult": {"toolUseId": "tu1", "content": [{"text": "rain"}], "status": "error"}}])
    );
    assert!(matches!(
        t.converse.tool_config.unwrap().tool_choice,
        Some(ToolChoice::Any(_))
    ));

    assert_eq!(
        refused_field(
            json!({"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/x.png"}}]}]})
        ),
        "messages[0].content[0].source.type"
    );
    assert_eq!(
        refused_field(
            json!({"model": "c", "max_tokens": 10, "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                             "messages": [{"role": "user", "content": "x"}]})
        ),
        "tools[0].type"
    );
    assert_eq!(
        refused_field(
            json!({"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}})
        ),
        "tool_choice.disable_parallel_tool_use"
    );
}

fn rich_stream() -> Vec<bedrock_converse::eventstream::Message> {
    frames(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Think "}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hard."}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "c2lnbmF0dXJl"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"text": "The sky "}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"citation": {
            "title": "Report", "sourceContent": [{"text": "The sky is blue."}],
            "location": {"documentChar": {"documentIndex": 0, "start": 0, "end": 16}}}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"text": "is blue."}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 2})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "tu1", "name": "weather"}}}),
        ),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 4, "start": {"toolUse": {"toolUseId": "tu2", "name": "now"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 4})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "\"Oslo\"}"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 3})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 12, "outputTokens": 30, "totalTokens": 242,
                                       "cacheReadInputTokens": 150, "cacheWriteInputTokens": 50}}),
        ),
    ])
}

#[test]
fn rich_stream_accumulates_like_the_sdk_and_matches_the_response() {
    let sse = anthropic_sse(&rich_stream());
    let events = parse_sse(&sse);
    assert_eq!(events[1].event.as_deref(), Some("ping"));
    let streamed = accumulate(&events);
    assert_eq!(events.last().unwrap().event.as_deref(), Some("message_stop"));
    assert_eq!(
        streamed["content"],
        json!([
            {"type": "thinking", "thinking": "Think hard.", "signature": "c2lnbmF0dXJl"},
            {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
            {"type": "text", "text": "The sky is blue.", "citations": [{
                "type": "char_location", "cited_text": "The sky is blue.", "document_index": 0,
                "document_title": "Report", "start_char_index": 0, "end_char_index": 16}]},
            {"type": "tool_use", "id": "tu1", "name": "weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "tu2", "name": "now", "input": {}},
        ])
    );
    assert_eq!(streamed["stop_reason"], "tool_use");
    assert_eq!(
        streamed["usage"],
        json!({"input_tokens": 12, "output_tokens": 30, "cache_read_input_tokens": 150, "cache_creation_input_tokens": 50})
    );

    // Not streaming: the same message.
    let body = anthropic::message_json(&assembled(&rich_stream()), "msg_test", "test-model").unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["content"], streamed["content"]);
    assert_eq!(body["usage"], streamed["usage"]);
    assert_eq!(
        (body["id"].as_str(), body["type"].as_str(), body["role"].as_str()),
        (Some("msg_test"), Some("message"), Some("assistant"))
    );
    assert_eq!(body["stop_reason"], "tool_use");
}

#[test]
fn exception_mid_stream_ends_with_an_error_event() {
    let mut msgs = frames(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Partial"}}),
        ),
    ]);
    msgs.push(exception("serviceUnavailableException", "Bedrock is busy"));
    let events = parse_sse(&anthropic_sse(&msgs));
    let m = accumulate(&events);
    assert_eq!(m["content"][0]["text"], "Partial");
    assert_eq!(
        m["error"],
        json!({"type": "overloaded_error", "message": "serviceUnavailableException: Bedrock is busy"})
    );
    assert_eq!(events.last().unwrap().event.as_deref(), Some("error"));
}

#[test]
fn stop_reasons_map() {
    let cases = [
        ("end_turn", Some("end_turn")),
        ("tool_use", Some("tool_use")),
        ("max_tokens", Some("max_tokens")),
        ("stop_sequence", Some("stop_sequence")),
        ("guardrail_intervened", Some("refusal")),
        ("content_filtered", Some("refusal")),
        (
            "model_context_window_exceeded",
            Some("model_context_window_exceeded"),
        ),
        ("malformed_model_output", None),
        ("malformed_tool_use", None),
    ];
    for (wire, want) in cases {
        assert_eq!(
            anthropic::stop_reason(&StopReason::from_wire(wire)),
            want,
            "{wire}"
        );
        let msgs = frames(&[
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "x ###"}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            (
                "messageStop",
                json!({"stopReason": wire, "additionalModelResponseFields": {"stop_sequence": "###"}}),
            ),
            (
                "metadata",
                json!({"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}),
            ),
        ]);
        let m = accumulate(&parse_sse(&anthropic_sse(&msgs)));
        let nonstream = anthropic::message_json(&assembled(&msgs), "id", "m");
        match want {
            Some(r) => {
                assert_eq!(m["stop_reason"], r, "{wire}");
                let body: Value = serde_json::from_slice(&nonstream.unwrap()).unwrap();
                assert_eq!(body["stop_reason"], r);
                let seq = if wire == "stop_sequence" {
                    json!("###")
                } else {
                    Value::Null
                };
                assert_eq!(
                    (&m["stop_sequence"], &body["stop_sequence"]),
                    (&seq, &seq),
                    "{wire}"
                );
            }
            None => {
                assert_eq!(m["error"]["type"], "api_error", "{wire}");
                assert!(nonstream.is_err());
            }
        }
    }
}

#[test]
fn bedrock_http_errors_map_to_anthropic_statuses() {
    let cases = [
        (400, "ValidationException", 400, "invalid_request_error"),
        (403, "AccessDeniedException", 403, "permission_error"),
        (404, "ResourceNotFoundException", 404, "not_found_error"),
        (429, "ThrottlingException", 429, "rate_limit_error"),
        (503, "ServiceUnavailableException", 529, "overloaded_error"),
        (408, "ModelTimeoutException", 504, "timeout_error"),
        (500, "InternalServerException", 500, "api_error"),
    ];
    for (status, kind, want_status, want_type) in cases {
        let err = ApiError::from_bedrock(status, Some(kind), br#"{"message":"nope"}"#);
        let (got, body) = anthropic::error_json(&err);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (got, body["error"]["type"].as_str().unwrap()),
            (want_status, want_type),
            "{kind}"
        );
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": want_type, "message": "nope"}})
        );
    }
}

#[test]
fn converse_reasoning_blocks_are_typed() {
    // The response types this dialect writes from: a guard that the assembled blocks are
    // the reasoning kinds the writer maps.
    let r = assembled(&rich_stream());
    assert!(matches!(
        r.content()[0],
        ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(_))
    ));
    assert!(matches!(
        r.content()[1],
        ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(_))
    ));
}
