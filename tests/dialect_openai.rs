//! The OpenAI Chat Completions dialect on its own: requests to Converse, ConverseStream
//! events to `chat.completion.chunk` SSE, responses and errors to OpenAI JSON.

mod dialect_common;

use bedrock_converse::converse::{ContentBlock, Role, StopReason, ToolResultContentBlock};
use bedrock_converse::translate::{
    openai, ApiError, ErrorClass, SystemContentBlock, ToolChoice, TranslateError,
};
use dialect_common::{assembled, exception, frames, openai_sse, parse_sse};
use serde_json::{json, Value};

fn translate(v: Value) -> Result<bedrock_converse::translate::Translated, TranslateError> {
    openai::translate_request(v.to_string().as_bytes())
}

fn refused_field(v: Value) -> String {
    let err = translate(v).expect_err("refused");
    let (status, body) = openai::error_json(&ApiError::from(&err));
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(err.field().unwrap()));
    body["error"]["param"]
        .as_str()
        .expect("param names the field")
        .to_owned()
}

#[test]
fn request_system_sampling_stop_and_limits() {
    let t = translate(json!({
        "model": "bedrock/claude", "stream": true, "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Weather?"},
        ],
        "max_tokens": 50, "max_completion_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": "END",
        "user": "u-1", "seed": 7,
    }))
    .unwrap();
    assert_eq!(
        (t.model.as_str(), t.stream, t.include_usage),
        ("bedrock/claude", true, true)
    );
    assert_eq!(
        t.converse.system,
        vec![
            SystemContentBlock::Text("Be brief.".into()),
            SystemContentBlock::Text("Use metric units.".into())
        ]
    );
    let body: Value = serde_json::from_slice(&t.converse.to_json()).unwrap();
    assert_eq!(
        body["inferenceConfig"],
        json!({"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
    );
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"text": "Weather?"}]}])
    );

    let t = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 7,
                             "stop": ["a", "b"]}),
    )
    .unwrap();
    let cfg = t.converse.inference_config.unwrap();
    assert_eq!(
        (cfg.max_tokens, cfg.stop_sequences),
        (Some(7), vec!["a".to_owned(), "b".to_owned()])
    );
    assert!(!t.stream && !t.include_usage);
}

#[test]
fn consecutive_tool_results_become_one_user_message() {
    let t = translate(json!({
        "model": "m",
        "tools": [
            {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "now"}},
        ],
        "messages": [
            {"role": "user", "content": "Weather in Oslo and Bergen, and the time?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Bergen\"}"}},
                {"id": "c3", "type": "function", "function": {"name": "now", "arguments": ""}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "rain"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "sun"}]},
            {"role": "tool", "tool_call_id": "c3", "content": "12:00"},
            {"role": "user", "content": "Thanks; summarise."},
        ],
    }))
    .unwrap();
    let msgs = &t.converse.messages;
    assert_eq!(
        msgs.iter().map(|m| m.role).collect::<Vec<_>>(),
        [Role::User, Role::Assistant, Role::User]
    );
    // The assistant turn: the empty content is dropped, three tool calls remain.
    let calls: Vec<_> = msgs[1]
        .content
        .iter()
        .map(|b| match b {
            ContentBlock::ToolUse(t) => (t.tool_use_id.clone(), t.name.clone(), t.input.to_value()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("c1".into(), "weather".into(), json!({"city": "Oslo"})),
            ("c2".into(), "weather".into(), json!({"city": "Bergen"})),
            ("c3".into(), "now".into(), json!({})),
        ]
    );
    // One user message: three results in order, then the user's text.
    let results: Vec<_> = msgs[2]
        .content
        .iter()
        .map(|b| match b {
            ContentBlock::ToolResult(r) => match &r.content[..] {
                [ToolResultContentBlock::Text(t)] => format!("{}={t}", r.tool_use_id),
                other => panic!("{other:?}"),
            },
            ContentBlock::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(results, ["c1=rain", "c2=sun", "c3=12:00", "Thanks; summarise."]);
    // A tool with no parameters gets an empty object schema.
    let body: Value = serde_json::from_slice(&t.converse.to_json()).unwrap();
    assert_eq!(
        body["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"]["json"],
        json!({"type": "object", "properties": {}})
    );
    assert!(body["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn tool_choice_variants() {
    let base = |choice: Value| {
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
               "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})
    };
    let choice = |v: Value| {
        translate(base(v))
            .unwrap()
            .converse
            .tool_config
            .and_then(|c| c.tool_choice)
    };
    assert!(matches!(choice(json!("auto")), Some(ToolChoice::Auto(_))));
    assert!(matches!(choice(json!("required")), Some(ToolChoice::Any(_))));
    assert!(
        matches!(choice(json!({"type": "function", "function": {"name": "f"}})),
        Some(ToolChoice::Tool(ref t)) if t.name == "f")
    );
    // "none": no tools sent at all.
    assert!(translate(base(json!("none")))
        .unwrap()
        .converse
        .tool_config
        .is_none());
    assert_eq!(
        refused_field(base(json!({"type": "function", "function": {"name": "g"}}))),
        "tool_choice.function.name"
    );
    // "none" with tool calls in the history cannot be honoured.
    let mut v = base(json!("none"));
    v["messages"] = json!([
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]);
    assert_eq!(refused_field(v), "tool_choice");
}

#[test]
fn response_format_becomes_structured_output() {
    let schema =
        json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
    let t = translate(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": true}}}))
    .unwrap();
    let body: Value = serde_json::from_slice(&t.converse.to_json()).unwrap();
    let js = &body["outputConfig"]["textFormat"];
    assert_eq!(js["type"], "json_schema");
    assert_eq!(js["structure"]["jsonSchema"]["name"], "reply");
    let sent: Value =
        serde_json::from_str(js["structure"]["jsonSchema"]["schema"].as_str().unwrap()).unwrap();
    assert_eq!(sent, schema);
    let t = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"}}),
    )
    .unwrap();
    assert!(t.converse.output_config.is_some());
    let t = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "text"}}),
    )
    .unwrap();
    assert!(t.converse.output_config.is_none());
}

#[test]
fn images_as_data_urls() {
    let t = translate(json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
    ]}]}))
    .unwrap();
    match &t.converse.messages[0].content[1] {
        ContentBlock::Image(img) => assert_eq!(img.format, "jpeg"),
        other => panic!("{other:?}"),
    }
    let f = refused_field(json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}));
    assert_eq!(f, "messages[0].content[0].image_url.url");
}

#[test]
fn fields_that_cannot_be_honoured_are_refused_by_name() {
    let with = |k: &str, v: Value| {
        let mut r = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        r[k] = v;
        r
    };
    assert_eq!(refused_field(with("n", json!(2))), "n");
    assert_eq!(refused_field(with("logprobs", json!(true))), "logprobs");
    assert_eq!(refused_field(with("top_logprobs", json!(3))), "top_logprobs");
    assert_eq!(
        refused_field(with("audio", json!({"voice": "alloy", "format": "wav"}))),
        "audio"
    );
    assert_eq!(
        refused_field(with("modalities", json!(["text", "audio"]))),
        "modalities"
    );
    assert_eq!(
        refused_field(with("presence_penalty", json!(0.5))),
        "presence_penalty"
    );
    assert_eq!(
        refused_field(with("parallel_tool_calls", json!(false))),
        "parallel_tool_calls"
    );
    assert_eq!(
        refused_field(json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]})),
        "messages[0].content[0].type"
    );
    // Values that change nothing are accepted.
    for (k, v) in [
        ("n", json!(1)),
        ("logprobs", json!(false)),
        ("presence_penalty", json!(0)),
        ("modalities", json!(["text"])),
    ] {
        translate(with(k, v)).unwrap();
    }
    // Not JSON at all: a 400 without a param.
    let err = openai::translate_request(b"{not json").unwrap_err();
    let (status, body) = openai::error_json(&ApiError::from(err));
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"]["param"],
        Value::Null
    );
}

fn text_stream(cache: bool) -> Vec<bedrock_converse::eventstream::Message> {
    let usage = if cache {
        json!({"inputTokens": 10, "outputTokens": 7, "totalTokens": 122, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 5})
    } else {
        json!({"inputTokens": 10, "outputTokens": 7, "totalTokens": 17})
    };
    frames(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": ", \"world\"\n"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("messageStop", json!({"stopReason": "end_turn"})),
        ("metadata", json!({"usage": usage, "metrics": {"latencyMs": 5}})),
    ])
}

#[test]
fn text_stream_with_usage_chunk() {
    let events = parse_sse(&openai_sse(&text_stream(true), true));
    let datas: Vec<&Value> = events.iter().map(|e| &e.data).collect();
    assert!(events.iter().all(|e| e.event.is_none()));
    for d in &datas[..datas.len() - 1] {
        assert_eq!(d["object"], "chat.completion.chunk");
        assert_eq!(
            (d["id"].as_str(), d["model"].as_str(), d["created"].as_u64()),
            (Some("chatcmpl-test"), Some("test-model"), Some(1_700_000_000))
        );
    }
    assert_eq!(
        datas[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = datas
        .iter()
        .filter_map(|d| d["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello, \"world\"\n");
    let finish = datas
        .iter()
        .find(|d| d["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage_chunk = datas[datas.len() - 2];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({"prompt_tokens": 115, "completion_tokens": 7, "total_tokens": 122, "prompt_tokens_details": {"cached_tokens": 100}})
    );
    assert_eq!(*datas[datas.len() - 1], json!("[DONE]"));

    // The same numbers without streaming.
    let body = openai::chat_completion_json(&assembled(&text_stream(true)), "chatcmpl-test", "test-model", 1)
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["usage"], usage_chunk["usage"]);
    assert_eq!(
        body["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello, \"world\"\n"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["object"], "chat.completion");

    // Without include_usage there is no usage chunk.
    let events = parse_sse(&openai_sse(&text_stream(false), false));
    assert!(events.iter().all(|e| e.data.get("usage").is_none()));
    assert_eq!(events.last().unwrap().data, json!("[DONE]"));
}

/// Reassembles tool calls from chunks the way the `openai` SDK's stream helpers do,
/// checking that `id`, `type` and `name` come only in a call's first chunk.
fn tool_calls(events: &[dialect_common::Sse]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for e in events {
        let Some(list) = e.data["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        assert_eq!(list.len(), 1, "one call per chunk");
        let tc = &list[0];
        let i = tc["index"].as_u64().unwrap() as usize;
        if i == calls.len() {
            assert_eq!(tc["type"], "function");
            calls.push((
                tc["id"].as_str().unwrap().into(),
                tc["function"]["name"].as_str().unwrap().into(),
                String::new(),
            ));
        } else {
            assert!(i < calls.len(), "indexes appear in order");
            assert!(
                tc.get("id").is_none() && tc.get("type").is_none() && tc["function"].get("name").is_none(),
                "{tc}"
            );
        }
        calls[i].2.push_str(tc["function"]["arguments"].as_str().unwrap());
    }
    calls
}

#[test]
fn parallel_and_zero_argument_tool_calls_keep_stable_indexes() {
    let tool_start = |i: u32, id: &str, name: &str| {
        (
            "contentBlockStart",
            json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
        )
    };
    let input = |i: u32, s: &str| {
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": i, "delta": {"toolUse": {"input": s}}}),
        )
    };
    let stop = |i: u32| ("contentBlockStop", json!({"contentBlockIndex": i}));
    let msgs = frames(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
        ),
        stop(0),
        tool_start(1, "t-oslo", "weather"),
        tool_start(2, "t-bergen", "weather"),
        input(2, "{\"city\":"),
        input(1, "{\"ci"),
        input(1, "ty\":\"Oslo\"}"),
        input(2, "\"Bergen\"}"),
        stop(2),
        stop(1),
        tool_start(3, "t-now", "now"),
        stop(3),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}}),
        ),
    ]);
    let events = parse_sse(&openai_sse(&msgs, false));
    assert_eq!(
        tool_calls(&events),
        [
            ("t-oslo".into(), "weather".into(), "{\"city\":\"Oslo\"}".into()),
            (
                "t-bergen".into(),
                "weather".into(),
                "{\"city\":\"Bergen\"}".into()
            ),
            ("t-now".into(), "now".into(), "{}".into()),
        ]
    );
    let finish: Vec<_> = events
        .iter()
        .filter_map(|e| e.data["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);

    // Not streaming: the same calls, arguments as JSON text.
    let body = openai::chat_completion_json(&assembled(&msgs), "c", "m", 1).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    let msg = &body["choices"][0]["message"];
    assert_eq!(msg["content"], "Checking.");
    let calls: Vec<_> = msg["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                serde_json::from_str::<Value>(c["function"]["arguments"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("t-oslo", json!({"city": "Oslo"})),
            ("t-bergen", json!({"city": "Bergen"})),
            ("t-now", json!({}))
        ]
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn exception_mid_stream_ends_with_an_error_event_after_the_text() {
    let mut msgs = frames(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Partial"}}),
        ),
    ]);
    msgs.push(exception("throttlingException", "Too many tokens, please wait."));
    let events = parse_sse(&openai_sse(&msgs, true));
    let text: String = events
        .iter()
        .filter_map(|e| e.data["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Partial");
    let last = &events.last().unwrap().data;
    assert_eq!(last["error"]["type"], "rate_limit_error");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Too many tokens"));
    assert!(events.iter().all(|e| e.data != json!("[DONE]")));
    assert!(ApiError::new(ErrorClass::RateLimited, "").is_retryable());
}

#[test]
fn stop_reasons_map() {
    let cases = [
        ("end_turn", Some("stop")),
        ("stop_sequence", Some("stop")),
        ("tool_use", Some("tool_calls")),
        ("max_tokens", Some("length")),
        ("model_context_window_exceeded", Some("length")),
        ("guardrail_intervened", Some("content_filter")),
        ("content_filtered", Some("content_filter")),
        ("malformed_model_output", None),
        ("malformed_tool_use", None),
    ];
    for (wire, want) in cases {
        assert_eq!(
            openai::finish_reason(&StopReason::from_wire(wire)),
            want,
            "{wire}"
        );
        let msgs = frames(&[
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "x"}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            ("messageStop", json!({"stopReason": wire})),
        ]);
        let events = parse_sse(&openai_sse(&msgs, false));
        let last = &events.last().unwrap().data;
        match want {
            Some(f) => {
                let got = &events[events.len() - 2].data["choices"][0]["finish_reason"];
                assert_eq!(got, f, "{wire}");
            }
            None => assert_eq!(last["error"]["type"], "server_error", "{wire}"),
        }
        let nonstream = openai::chat_completion_json(&assembled(&msgs), "c", "m", 1);
        assert_eq!(nonstream.is_ok(), want.is_some(), "{wire}");
    }
}

#[test]
fn bedrock_http_errors_map_to_openai_statuses() {
    let cases = [
        (400, Some("ValidationException"), 400, "invalid_request_error"),
        (403, Some("AccessDeniedException"), 403, "permission_error"),
        (
            404,
            Some("ResourceNotFoundException"),
            404,
            "invalid_request_error",
        ),
        (429, Some("ThrottlingException"), 429, "rate_limit_error"),
        (503, Some("ServiceUnavailableException"), 503, "server_error"),
        (408, Some("ModelTimeoutException"), 504, "server_error"),
        (500, Some("InternalServerException"), 500, "server_error"),
        (424, Some("ModelErrorException"), 500, "server_error"),
    ];
    for (status, kind, want_status, want_type) in cases {
        let err = ApiError::from_bedrock(status, kind, br#"{"message":"upstream says no"}"#);
        let (got, body) = openai::error_json(&err);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (got, body["error"]["type"].as_str().unwrap()),
            (want_status, want_type),
            "{kind:?}"
        );
        assert_eq!(body["error"]["message"], "upstream says no");
    }
}
