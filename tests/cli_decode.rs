//! `bedrock-converse decode` run as a program on good and bad bodies.

#![cfg(feature = "cli")]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use bedrock_converse::eventstream::MessageBuilder;
use serde_json::Value;

mod common;
use common::event_bytes;

fn good_body() -> Vec<u8> {
    [
        event_bytes("messageStart", r#"{"p":"abc","role":"assistant"}"#),
        event_bytes(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hello, \"world\"\n"}}"#,
        ),
        event_bytes("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        event_bytes(
            "contentBlockStart",
            r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"cosine"}}}"#,
        ),
        event_bytes(
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"x\": "}}}"#,
        ),
        event_bytes(
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"7}"}}}"#,
        ),
        event_bytes("contentBlockStop", r#"{"contentBlockIndex":1}"#),
        event_bytes("messageStop", r#"{"stopReason":"tool_use"}"#),
        event_bytes(
            "metadata",
            r#"{"usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7},"metrics":{"latencyMs":9}}"#,
        ),
    ]
    .concat()
}

fn exception_body() -> Vec<u8> {
    let exception = MessageBuilder::new()
        .string_header(":exception-type", "modelStreamErrorException")
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "exception")
        .build(br#"{"message":"Model Stream Error","originalStatusCode":500,"originalMessage":"boom"}"#)
        .expect("frame");
    [
        event_bytes("messageStart", r#"{"role":"assistant"}"#),
        event_bytes(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"partial"}}"#,
        ),
        exception.as_bytes().to_vec(),
    ]
    .concat()
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "bedrock-converse-cli-decode-{}-{name}",
        std::process::id()
    ));
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

fn decode(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bedrock-converse"));
    cmd.arg("decode").args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn assembles_a_good_file() {
    let path = temp_file("good.bin", &good_body());
    let out = decode(&[path.to_str().expect("path")], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["output"]["message"]["content"][0]["text"], "Hello, \"world\"\n");
    assert_eq!(
        v["output"]["message"]["content"][1]["toolUse"]["input"],
        serde_json::json!({"x": 7})
    );
    assert_eq!(v["stopReason"], "tool_use");
    assert_eq!(v["usage"]["totalTokens"], 7);
    let _ = std::fs::remove_file(path);
}

#[test]
fn reads_stdin() {
    let out = decode(&["-"], Some(&good_body()));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["stopReason"], "tool_use");
    let out = decode(&[], Some(&good_body()));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn prints_events() {
    let out = decode(&["--events", "-"], Some(&good_body()));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(
        lines[0],
        serde_json::json!({"messageStart": {"role": "assistant"}})
    );
    assert_eq!(
        lines[4]["contentBlockDelta"]["delta"]["toolUse"]["input"],
        "{\"x\": "
    );
    assert_eq!(lines[8]["metadata"]["usage"]["totalTokens"], 7);
}

#[test]
fn prints_frames() {
    let mut body = good_body();
    body.extend(
        MessageBuilder::new()
            .header(":flag", bedrock_converse::eventstream::HeaderValue::Bool(true))
            .header(":n", bedrock_converse::eventstream::HeaderValue::Int32(-5))
            .build(&[0xff, 0x00, 0x80])
            .expect("frame")
            .as_bytes(),
    );
    let out = decode(&["--frames", "-"], Some(&body));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(
        lines[0]["headers"][0],
        serde_json::json!({"name": ":event-type", "type": "string", "value": "messageStart"})
    );
    assert_eq!(lines[0]["payload"], r#"{"p":"abc","role":"assistant"}"#);
    assert_eq!(
        lines[9]["headers"][0],
        serde_json::json!({"name": ":flag", "type": "bool", "value": true})
    );
    assert_eq!(
        lines[9]["headers"][1],
        serde_json::json!({"name": ":n", "type": "integer", "value": -5})
    );
    assert_eq!(lines[9]["payloadBase64"], "/wCA");
}

#[test]
fn exception_prints_partial_then_fails() {
    let path = temp_file("exception.bin", &exception_body());
    let out = decode(&[path.to_str().expect("path")], None);
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).expect("partial JSON");
    assert_eq!(v["output"]["message"]["content"][0]["text"], "partial");
    let err = stderr(&out);
    assert!(
        err.contains("modelStreamErrorException") && err.contains("500"),
        "{err}"
    );

    let out = decode(&["--events", path.to_str().expect("path")], None);
    assert!(!out.status.success());
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["modelStreamErrorException"]["originalStatusCode"], 500);
    let _ = std::fs::remove_file(path);
}

#[test]
fn truncated_stream_prints_partial_then_fails() {
    let body = good_body();
    let cut = &body[..body.len() - 30];
    let out = decode(&["-"], Some(cut));
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).expect("partial JSON");
    assert_eq!(v["output"]["message"]["content"][0]["text"], "Hello, \"world\"\n");
    assert!(v.get("stopReason").is_some());
    assert!(stderr(&out).contains("ends inside a frame"), "{}", stderr(&out));

    // Ends after a complete frame, but before messageStop.
    let first_three: Vec<u8> = [
        event_bytes("messageStart", r#"{"role":"assistant"}"#),
        event_bytes(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"so far"}}"#,
        ),
    ]
    .concat();
    let out = decode(&["-"], Some(&first_three));
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).expect("partial JSON");
    assert_eq!(v["output"]["message"]["content"][0]["text"], "so far");
    assert!(stderr(&out).contains("messageStop"), "{}", stderr(&out));
}

#[test]
fn not_an_event_stream() {
    let out = decode(
        &["-"],
        Some(br#"{"message":"The security token included in the request is invalid."}"#),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("JSON"), "{}", stderr(&out));
    let out = decode(&["/nonexistent/bedrock-converse-decode-input"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}

// ===== invoke streams (`chunk` events) =====

fn anthropic_message() -> bedrock_converse::invoke::AnthropicMessage {
    use bedrock_converse::invoke::{
        AnthropicContentBlock, AnthropicMessage, AnthropicUsage, InvocationMetrics,
    };
    AnthropicMessage {
        id: "msg_bdrk_decode".into(),
        model: "claude".into(),
        content: vec![
            AnthropicContentBlock::Thinking {
                thinking: "Let me think.".into(),
                signature: "c2lnbmF0dXJl".into(),
            },
            AnthropicContentBlock::Text {
                text: "Hello, \"world\"\n".into(),
                citations: vec![],
            },
            AnthropicContentBlock::ToolUse {
                id: "toolu_bdrk_1".into(),
                name: "cosine".into(),
                input: serde_json::json!({"x": 7}),
            },
        ],
        stop_reason: Some("tool_use".into()),
        usage: AnthropicUsage {
            input_tokens: 3,
            output_tokens: 4,
            ..Default::default()
        },
        invocation_metrics: Some(InvocationMetrics {
            input_token_count: 3,
            output_token_count: 4,
            invocation_latency: 9,
            first_byte_latency: 2,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn invoke_body(frames: &[bedrock_converse::eventstream::Message]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.as_bytes().to_vec()).collect()
}

#[test]
fn assembles_an_invoke_stream() {
    let message = anthropic_message();
    let frames = bedrock_converse::invoke::chunk_frames(&message, 3).expect("frames");
    let body = invoke_body(&frames);
    let out = decode(&[], Some(&body));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v, serde_json::to_value(&message).expect("json"));
    assert_eq!(v["content"][0]["signature"], "c2lnbmF0dXJl");

    let out = decode(&["--events"], Some(&body));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), frames.len(), "one native event per chunk");
    assert_eq!(lines[0]["type"], "message_start");
    assert_eq!(lines.last().expect("last")["type"], "message_stop");
    assert!(lines.iter().any(|l| l["delta"]["type"] == "input_json_delta"));
}

#[test]
fn invoke_exception_prints_partial_then_fails() {
    use bedrock_converse::converse::ExceptionKind;
    let message = anthropic_message();
    let events = bedrock_converse::invoke::native_events(&message, 5);
    let mut frames: Vec<_> = events
        .iter()
        .take(4)
        .map(|e| bedrock_converse::invoke::chunk_frame(e).expect("frame"))
        .collect();
    frames.push(
        bedrock_converse::invoke::exception_frame(&ExceptionKind::Throttling, "Too many tokens", None)
            .expect("frame"),
    );
    let body = invoke_body(&frames);
    let out = decode(&[], Some(&body));
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["content"][0]["type"], "thinking");
    assert!(v["content"][0]["thinking"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(stderr(&out).contains("throttlingException"), "{}", stderr(&out));

    let out = decode(&["--events"], Some(&body));
    assert_eq!(out.status.code(), Some(1));
    let last: Value = serde_json::from_str(stdout(&out).lines().last().expect("lines")).expect("JSON");
    assert_eq!(last["throttlingException"]["message"], "Too many tokens");
}
