//! The mock Bedrock server over raw HTTP: frame layout and padding, every scenario,
//! authentication and request validation. reqwest (of the `client` feature) is the HTTP
//! client here.

#![cfg(all(feature = "server", feature = "client"))]

use std::time::{Duration, SystemTime};

use bedrock_converse::eventstream::{DecodeError, EventStreamCodec, EventStreamError, HeaderValue, Message};
use bedrock_converse::server::{MockBedrock, MockBedrockHandle, Operation, Scenario};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_util::codec::Decoder;

mod common;
use common::decode_body;

const KEY: &str = "test-key";
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

async fn server() -> MockBedrockHandle {
    MockBedrock::builder()
        .bearer_key(KEY)
        .long_deltas(50)
        .start()
        .await
        .expect("start mock server")
}

fn user_body(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": [{"text": text}]}]})
}

fn tools_config() -> Value {
    json!({"tools": [
        {"toolSpec": {"name": "get_weather", "description": "Weather of a city",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}},
        {"toolSpec": {"name": "add", "description": "Adds two numbers",
            "inputSchema": {"json": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}}}
    ]})
}

async fn post(url: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    req.send().await.expect("send request")
}

/// `reqwest` is built without its `json` feature.
trait JsonBody {
    async fn json_value(self) -> Value;
}

impl JsonBody for reqwest::Response {
    async fn json_value(self) -> Value {
        let bytes = self.bytes().await.expect("body");
        serde_json::from_slice(&bytes).expect("JSON body")
    }
}

fn url(server: &MockBedrockHandle, model: &str, op: &str) -> String {
    format!("{}{model}/{op}", server.url())
}

fn payload(m: &Message) -> Value {
    serde_json::from_slice(m.payload()).expect("JSON payload")
}

/// Every event frame: exactly three string headers in Bedrock's order, JSON with `"p"`.
fn check_layout(frames: &[Message]) -> Vec<usize> {
    let mut pads = Vec::new();
    for m in frames.iter().filter(|m| m.message_type() == Some("event")) {
        let headers: Vec<(&str, HeaderValue<'_>)> = m.headers().collect();
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [":event-type", ":content-type", ":message-type"]);
        assert!(headers.iter().all(|(_, v)| matches!(v, HeaderValue::String(_))));
        assert_eq!(m.content_type(), Some("application/json"));
        let p = payload(m);
        let pad = p["p"].as_str().expect("padding member");
        assert!(!pad.is_empty() && PADDING.starts_with(pad), "{pad}");
        pads.push(pad.len());
    }
    pads
}

async fn stream(server: &MockBedrockHandle, model: &str, body: &Value) -> Vec<Message> {
    let resp = post(&url(server, model, "converse-stream"), Some(KEY), body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let bytes = resp.bytes().await.expect("body");
    let (frames, err) = decode_body(&bytes);
    assert!(err.is_none(), "{err:?}");
    check_layout(&frames);
    frames
}

fn event_types(frames: &[Message]) -> Vec<&str> {
    frames.iter().map(|m| m.event_type().unwrap_or("?")).collect()
}

fn text_of(frames: &[Message], index: u64) -> String {
    frames
        .iter()
        .filter(|m| m.event_type() == Some("contentBlockDelta"))
        .map(payload)
        .filter(|p| p["contentBlockIndex"] == index)
        .filter_map(|p| p["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn text_stream_has_bedrock_layout() {
    let server = server().await;
    let frames = stream(&server, "us-east-1.mock.text", &user_body("What is Rust?")).await;
    let types = event_types(&frames);
    assert_eq!(types.first(), Some(&"messageStart"));
    assert_eq!(payload(&frames[0])["role"], "assistant");
    assert!(!types.contains(&"contentBlockStart"), "text gets no start");
    let n = types.len();
    assert_eq!(&types[n - 3..], ["contentBlockStop", "messageStop", "metadata"]);
    assert!(types[1..n - 3].iter().all(|t| *t == "contentBlockDelta"));
    assert!(n > 20, "many small deltas: {n}");
    let text = text_of(&frames, 0);
    assert!(text.contains("What is Rust?"), "{text}");
    assert!(text.matches(". ").count() >= 2, "several sentences");
    assert_eq!(payload(&frames[n - 2])["stopReason"], "end_turn");
    let meta = payload(&frames[n - 1]);
    let usage = &meta["usage"];
    assert_eq!(
        usage["totalTokens"].as_u64(),
        Some(usage["inputTokens"].as_u64().unwrap() + usage["outputTokens"].as_u64().unwrap())
    );
    assert!(meta["metrics"]["latencyMs"].is_u64());
    // Padding length varies like on the wire.
    let pads = check_layout(&frames);
    let distinct: std::collections::HashSet<_> = pads.iter().collect();
    assert!(distinct.len() > 5, "{pads:?}");
    // Members are sorted, so `"p"` is not always first.
    let raw = std::str::from_utf8(frames[1].payload()).unwrap();
    assert!(raw.starts_with(r#"{"contentBlockIndex":0,"delta":"#), "{raw}");
}

#[tokio::test]
async fn converse_json_has_the_same_content() {
    let server = server().await;
    let body = user_body("hello there");
    let frames = stream(&server, "mock.text", &body).await;
    let resp = post(&url(&server, "mock.text", "converse"), Some(KEY), &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let json: Value = resp.json_value().await;
    assert_eq!(json["output"]["message"]["role"], "assistant");
    assert_eq!(
        json["output"]["message"]["content"][0]["text"],
        text_of(&frames, 0)
    );
    assert_eq!(json["stopReason"], "end_turn");
    assert!(json["usage"]["totalTokens"].is_u64());
    assert!(json["metrics"]["latencyMs"].is_u64());
}

#[tokio::test]
async fn unknown_scenario_is_text_and_ids_are_percent_decoded() {
    let server = server().await;
    // `anthropic.claude-3-haiku-20240307-v1:0` -> last part `0` -> text.
    let model = "us-east-1.anthropic.claude-3-haiku-20240307-v1%3A0";
    let frames = stream(&server, model, &user_body("hi")).await;
    assert!(text_of(&frames, 0).contains("hi"));
    let rec = server.last_request().unwrap();
    assert_eq!(
        rec.model_id.as_deref(),
        Some("us-east-1.anthropic.claude-3-haiku-20240307-v1:0")
    );
    assert_eq!(rec.scenario, Some(Scenario::Text));
    assert_eq!(rec.operation, Some(Operation::ConverseStream));
    assert_eq!(rec.status, 200);
    assert_eq!(rec.json().unwrap(), user_body("hi"));
    assert_eq!(rec.headers["authorization"], format!("Bearer {KEY}"));
    // `%2E` is a dot once decoded.
    let frames = stream(&server, "us-east-1.mock%2Etools", &user_body("hi")).await;
    assert!(event_types(&frames).contains(&"contentBlockStart"));
    assert_eq!(server.request_count(), 2);
    assert_eq!(
        server.operation_url("a b.tools", Operation::Converse),
        format!("http://{}/model/a%20b.tools/converse", server.addr())
    );
}

#[tokio::test]
async fn tools_round_trip() {
    let server = server().await;
    let mut body = user_body("Weather in Paris, and 2+3?");
    body["toolConfig"] = tools_config();
    let frames = stream(&server, "us-east-1.mock.tools", &body).await;
    let n = frames.len();
    assert_eq!(payload(&frames[n - 2])["stopReason"], "tool_use");
    let starts: Vec<Value> = frames
        .iter()
        .filter(|m| m.event_type() == Some("contentBlockStart"))
        .map(payload)
        .collect();
    assert_eq!(starts.len(), 2, "parallel tool calls");
    let mut calls = Vec::new();
    for start in &starts {
        let index = start["contentBlockIndex"].as_u64().unwrap();
        let tool = &start["start"]["toolUse"];
        let id = tool["toolUseId"].as_str().unwrap().to_owned();
        assert!(id.starts_with("tooluse_"));
        let inputs: Vec<String> = frames
            .iter()
            .filter(|m| m.event_type() == Some("contentBlockDelta"))
            .map(payload)
            .filter(|p| p["contentBlockIndex"] == index)
            .map(|p| p["delta"]["toolUse"]["input"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(inputs[0], "", "first input delta is empty");
        assert!(inputs.len() > 3, "fragmented input");
        let input: Value = serde_json::from_str(&inputs.concat()).unwrap();
        calls.push((id, tool["name"].as_str().unwrap().to_owned(), input));
    }
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(calls[0].2["city"], "Paris");
    assert_eq!(calls[1].1, "add");
    assert_eq!(calls[1].2, json!({"a": 2, "b": 3}));

    // Second turn: the assistant's tool calls, then the results in one user message.
    let assistant = json!({"role": "assistant", "content": [
        {"text": "I will call them."},
        {"toolUse": {"toolUseId": calls[0].0, "name": "get_weather", "input": calls[0].2}},
        {"toolUse": {"toolUseId": calls[1].0, "name": "add", "input": calls[1].2}},
    ]});
    let results = json!({"role": "user", "content": [
        {"toolResult": {"toolUseId": calls[0].0, "content": [{"json": {"tempC": 21}}]}},
        {"toolResult": {"toolUseId": calls[1].0, "content": [{"text": "5"}]}},
    ]});
    body["messages"]
        .as_array_mut()
        .unwrap()
        .extend([assistant, results]);
    let frames = stream(&server, "us-east-1.mock.tools", &body).await;
    let n = frames.len();
    assert_eq!(payload(&frames[n - 2])["stopReason"], "end_turn");
    let text = text_of(&frames, 0);
    assert!(
        text.contains(r#"{"tempC":21}"#) && text.contains("returned 5"),
        "{text}"
    );

    // The same first turn without /converse-stream.
    body["messages"].as_array_mut().unwrap().truncate(1);
    let json: Value = post(&url(&server, "mock.tools", "converse"), Some(KEY), &body)
        .await
        .json_value()
        .await;
    assert_eq!(json["stopReason"], "tool_use");
    let content = json["output"]["message"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 3);
    assert_eq!(content[2]["toolUse"]["input"], json!({"a": 2, "b": 3}));
}

#[tokio::test]
async fn tools_without_tool_config_uses_demo_tools() {
    let server = server().await;
    let frames = stream(&server, "mock.tools", &user_body("go")).await;
    let names: Vec<String> = frames
        .iter()
        .filter(|m| m.event_type() == Some("contentBlockStart"))
        .map(|m| {
            payload(m)["start"]["toolUse"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["get_weather", "add"]);
}

#[tokio::test]
async fn reasoning_then_text() {
    let server = server().await;
    let frames = stream(&server, "mock.reasoning", &user_body("think")).await;
    let deltas: Vec<Value> = frames
        .iter()
        .filter(|m| m.event_type() == Some("contentBlockDelta"))
        .map(payload)
        .collect();
    let first = &deltas[0];
    assert_eq!(first["contentBlockIndex"], 0);
    assert!(first["delta"]["reasoningContent"]["text"].is_string());
    assert!(deltas
        .iter()
        .any(|d| d["delta"]["reasoningContent"]["signature"].is_string()));
    assert!(deltas
        .iter()
        .any(|d| d["delta"]["reasoningContent"]["text"] == ""));
    assert!(!text_of(&frames, 1).is_empty());
    let json: Value = post(
        &url(&server, "mock.reasoning", "converse"),
        Some(KEY),
        &user_body("think"),
    )
    .await
    .json_value()
    .await;
    let content = &json["output"]["message"]["content"];
    assert!(content[0]["reasoningContent"]["reasoningText"]["signature"].is_string());
    assert!(content[1]["text"].is_string());
}

#[tokio::test]
async fn citations_and_redacted_reasoning_lose_nothing() {
    use bedrock_converse::converse::{
        ContentBlock, ConverseResponse, ReasoningContentBlock, StreamAssembler,
    };

    let server = server().await;
    let body = user_body("What does the contract say?");
    let frames = stream(&server, "mock.citations", &body).await;
    let deltas: Vec<Value> = frames
        .iter()
        .filter(|m| m.event_type() == Some("contentBlockDelta"))
        .map(payload)
        .collect();
    assert!(deltas[0]["delta"]["reasoningContent"]["redactedContent"].is_string());
    let citation = deltas
        .iter()
        .find_map(|d| d["delta"].get("citation"))
        .expect("a citation delta");
    assert_eq!(
        citation["sourceContent"][0]["text"],
        "What does the contract say?"
    );
    assert_eq!(citation["location"]["documentChar"]["end"], 27);

    // Streamed and assembled, or answered whole: the same content, citation and redacted
    // bytes included.
    let mut assembler = StreamAssembler::new();
    for frame in &frames {
        assembler.push(frame).expect("valid event");
    }
    let streamed = assembler.finish().expect("complete stream");
    let json: Value = post(&url(&server, "mock.citations", "converse"), Some(KEY), &body)
        .await
        .json_value()
        .await;
    let whole: ConverseResponse = serde_json::from_value(json).expect("a Converse response");
    assert_eq!(streamed.content(), whole.content());
    let [ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(redacted)), ContentBlock::CitationsContent(cited)] =
        streamed.content()
    else {
        panic!("{:?}", streamed.content());
    };
    assert_eq!(redacted.as_bytes(), b"mock redacted reasoning \x00\x01\x02\xff");
    assert_eq!(cited.citations.len(), 1);
    assert_eq!(
        cited.citations[0].source_content[0].text.as_deref(),
        Some("What does the contract say?")
    );
    assert_eq!(
        cited.content[0].text.as_deref(),
        Some(text_of(&frames, 1).as_str())
    );
}

#[tokio::test]
async fn long_stream_has_configured_deltas() {
    let server = server().await;
    let frames = stream(&server, "mock.long", &user_body("go")).await;
    let deltas = event_types(&frames)
        .iter()
        .filter(|t| **t == "contentBlockDelta")
        .count();
    assert_eq!(deltas, 50);
}

async fn exception_frame(model: &str) -> (Vec<Message>, Message) {
    let server = server().await;
    let resp = post(
        &url(&server, model, "converse-stream"),
        Some(KEY),
        &user_body("x"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    let (frames, err) = decode_body(&bytes);
    assert!(err.is_none());
    let last = frames.last().unwrap().clone();
    assert_eq!(last.message_type(), Some("exception"));
    assert_eq!(frames[0].event_type(), Some("messageStart"));
    assert!(!text_of(&frames, 0).is_empty(), "some text first");
    check_layout(&frames);
    (frames, last)
}

#[tokio::test]
async fn exception_mid_stream() {
    let (_, frame) = exception_frame("us-east-1.mock.exception").await;
    assert_eq!(frame.exception_type(), Some("modelStreamErrorException"));
    let names: Vec<&str> = frame.headers().map(|(n, _)| n).collect();
    assert_eq!(names, [":message-type", ":exception-type", ":content-type"]);
    assert_eq!(frame.content_type(), Some("application/json"));
    let p = payload(&frame);
    assert!(p["message"].is_string());
    assert_eq!(p["originalStatusCode"], 500);
    assert!(p["originalMessage"].is_string());

    let server = server().await;
    let resp = post(
        &url(&server, "mock.exception", "converse"),
        Some(KEY),
        &user_body("x"),
    )
    .await;
    assert_eq!(resp.status(), 424);
    assert!(resp.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .starts_with("ModelErrorException:"));
}

#[tokio::test]
async fn throttling_exception_mid_stream() {
    let (_, frame) = exception_frame("mock.throttling-exception").await;
    assert_eq!(frame.exception_type(), Some("throttlingException"));
    assert!(payload(&frame)["message"].is_string());
}

async fn error_of(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    assert_eq!(resp.headers()["content-type"], "application/json");
    (status, kind, resp.json_value().await)
}

#[tokio::test]
async fn http_error_is_a_validation_exception() {
    let server = server().await;
    for op in ["converse-stream", "converse"] {
        let resp = post(&url(&server, "mock.http-error", op), Some(KEY), &user_body("x")).await;
        let (status, kind, body) = error_of(resp).await;
        assert_eq!(status, 400);
        assert_eq!(
            kind,
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        );
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn throttle_then_ok_and_not_ready_count_per_server() {
    let server = server().await;
    let u = url(&server, "us-east-1.mock.throttle-then-ok", "converse-stream");
    for _ in 0..2 {
        let (status, kind, body) = error_of(post(&u, Some(KEY), &user_body("x")).await).await;
        assert_eq!(status, 429);
        assert!(kind.starts_with("ThrottlingException:"));
        assert!(body["message"].is_string());
    }
    assert_eq!(post(&u, Some(KEY), &user_body("x")).await.status(), 200);
    assert_eq!(server.scenario_count(Scenario::ThrottleThenOk), 3);

    let u = url(&server, "mock.not-ready", "converse");
    let (status, kind, _) = error_of(post(&u, Some(KEY), &user_body("x")).await).await;
    assert_eq!(
        (status, kind.split(':').next().unwrap()),
        (429, "ModelNotReadyException")
    );
    assert_eq!(post(&u, Some(KEY), &user_body("x")).await.status(), 200);

    // A fresh server counts from zero.
    let other = self::server().await;
    let u = url(&other, "mock.throttle-then-ok", "converse");
    assert_eq!(post(&u, Some(KEY), &user_body("x")).await.status(), 429);
    server.reset();
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn server_error_always() {
    let server = server().await;
    for _ in 0..2 {
        let resp = post(
            &url(&server, "mock.server-error", "converse-stream"),
            Some(KEY),
            &user_body("x"),
        )
        .await;
        let (status, kind, _) = error_of(resp).await;
        assert_eq!(status, 500);
        assert!(kind.starts_with("InternalServerException:"));
    }
}

#[tokio::test]
async fn stall_keeps_the_connection_open_until_shutdown() {
    let server = MockBedrock::builder()
        .stall_duration(Duration::from_secs(3_600))
        .start()
        .await
        .unwrap();
    let resp = post(
        &url(&server, "mock.stall", "converse-stream"),
        None,
        &user_body("x"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut buf = BytesMut::new();
    let mut codec = EventStreamCodec::new();
    let mut frames = 0;
    while frames < 3 {
        let chunk = body.next().await.expect("more bytes").expect("chunk");
        buf.extend_from_slice(&chunk);
        while codec.decode(&mut buf).unwrap().is_some() {
            frames += 1;
        }
    }
    assert_eq!(frames, 3);
    // The stall must not hold the shutdown up: it ends the stream.
    let reader = tokio::spawn(async move {
        let mut rest = 0;
        while let Some(Ok(chunk)) = body.next().await {
            rest += chunk.len();
        }
        rest
    });
    server.shutdown().await.expect("clean shutdown");
    assert_eq!(reader.await.unwrap(), 0, "no bytes after the stall");
}

#[tokio::test]
async fn converse_stall_answers_503_on_shutdown() {
    let server = MockBedrock::builder().start().await.unwrap();
    let u = url(&server, "mock.stall", "converse");
    let call = tokio::spawn(async move { post(&u, None, &user_body("x")).await.status() });
    // Wait until the request is inside the stall (counted, not answered).
    while server.scenario_count(Scenario::Stall) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.shutdown().await.expect("clean shutdown");
    assert_eq!(call.await.unwrap(), 503);
}

#[tokio::test]
async fn truncated_ends_mid_frame() {
    let server = server().await;
    let resp = post(
        &url(&server, "mock.truncated", "converse-stream"),
        Some(KEY),
        &user_body("x"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.expect("clean end of body");
    let (frames, err) = decode_body(&bytes);
    assert!(frames.len() > 3);
    assert!(
        matches!(err, Some(EventStreamError::Decode(DecodeError::Truncated { .. }))),
        "{err:?}"
    );
    let resp = post(
        &url(&server, "mock.truncated", "converse"),
        Some(KEY),
        &user_body("x"),
    )
    .await;
    let bytes = resp.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
}

#[tokio::test]
async fn corrupt_crc_flips_one_payload_byte() {
    let server = server().await;
    let resp = post(
        &url(&server, "mock.corrupt-crc", "converse-stream"),
        Some(KEY),
        &user_body("x"),
    )
    .await;
    let bytes = resp.bytes().await.unwrap();
    let (frames, err) = decode_body(&bytes);
    assert_eq!(frames.len(), 2);
    assert!(
        matches!(
            err,
            Some(EventStreamError::Decode(DecodeError::MessageCrcMismatch { .. }))
        ),
        "{err:?}"
    );
    // Skip the bad frame: the rest of the stream is valid.
    let first_two: usize = frames.iter().map(|m| m.as_bytes().len()).sum();
    let bad_len = u32::from_be_bytes(bytes[first_two..first_two + 4].try_into().unwrap()) as usize;
    let (rest, err) = decode_body(&bytes[first_two + bad_len..]);
    assert!(err.is_none());
    assert_eq!(rest.last().unwrap().event_type(), Some("metadata"));
}

#[tokio::test]
async fn trickle_is_the_whole_valid_stream() {
    let server = server().await;
    let frames = stream(&server, "mock.trickle", &user_body("slowly")).await;
    let types = event_types(&frames);
    assert_eq!(types.first(), Some(&"messageStart"));
    assert_eq!(types.last(), Some(&"metadata"));
    assert!(text_of(&frames, 0).contains("slowly"));
    let json: Value = post(
        &url(&server, "mock.trickle", "converse"),
        Some(KEY),
        &user_body("slowly"),
    )
    .await
    .json_value()
    .await;
    assert_eq!(json["stopReason"], "end_turn");
}

#[tokio::test]
async fn bearer_auth() {
    let server = server().await;
    let u = url(&server, "mock.text", "converse-stream");
    let (status, kind, body) = error_of(post(&u, None, &user_body("x")).await).await;
    assert_eq!(status, 403);
    assert!(kind.starts_with("MissingAuthenticationTokenException"));
    assert_eq!(body["message"], "Missing Authentication Token");
    let (status, kind, body) = error_of(post(&u, Some("wrong"), &user_body("x")).await).await;
    assert_eq!(status, 403);
    assert!(kind.starts_with("AccessDeniedException:"));
    assert!(body["Message"].as_str().unwrap().contains("API Key"));
    // SigV4 is refused unless configured.
    let resp = reqwest::Client::new()
        .post(&u)
        .header("authorization", format!("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature={}", "0".repeat(64)))
        .body(user_body("x").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(server.requests().iter().filter(|r| r.status == 403).count(), 3);
}

/// Signs a request with aws-sigv4 as a client would.
fn sigv4_headers(url: &str, body: &[u8], akid: &str, secret: &str) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = aws_credential_types::Credentials::new(akid, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        [("content-type", "application/json")].into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let out = sign(request, &params).unwrap();
    out.output()
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn sigv4_auth() {
    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .sigv4_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        .start()
        .await
        .unwrap();
    let u = server.operation_url(
        "us-east-1.anthropic.claude-3-haiku-20240307-v1:0",
        Operation::Converse,
    );
    assert!(u.contains("v1%3A0"));
    let body = user_body("signed").to_string();
    let send = |headers: Vec<(String, String)>| {
        let mut req = reqwest::Client::new()
            .post(&u)
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let ok = send(sigv4_headers(
        &u,
        body.as_bytes(),
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    ))
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let bad = send(sigv4_headers(&u, body.as_bytes(), "AKIDEXAMPLE", "wrong-secret"))
        .await
        .unwrap();
    let (status, kind, _) = error_of(bad).await;
    assert_eq!(
        (status, kind.split(':').next().unwrap()),
        (403, "InvalidSignatureException")
    );
    let other = send(sigv4_headers(&u, body.as_bytes(), "AKIDOTHER", "x"))
        .await
        .unwrap();
    let (status, kind, _) = error_of(other).await;
    assert_eq!(
        (status, kind.split(':').next().unwrap()),
        (403, "UnrecognizedClientException")
    );
    // A body changed after signing no longer verifies.
    let headers = sigv4_headers(
        &u,
        body.as_bytes(),
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    );
    let mut req = reqwest::Client::new()
        .post(&u)
        .header("content-type", "application/json")
        .body(user_body("tampered").to_string());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 403);
    // Bearer still works next to SigV4.
    assert_eq!(post(&u, Some(KEY), &user_body("x")).await.status(), 200);
}

#[tokio::test]
async fn accept_any_sigv4() {
    let server = MockBedrock::builder().accept_sigv4().start().await.unwrap();
    let u = url(&server, "mock.text", "converse");
    let headers = sigv4_headers(&u, b"{}", "ANYKEY", "any");
    let mut req = reqwest::Client::new().post(&u).body(user_body("x").to_string());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
    // Without auth configured... it is configured here, so a bare request is refused.
    assert_eq!(post(&u, None, &user_body("x")).await.status(), 403);
}

#[tokio::test]
async fn validation_errors() {
    let server = server().await;
    let u = url(&server, "mock.text", "converse-stream");
    let tool_use = json!({"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "tooluse_a", "name": "add", "input": {}}},
        {"toolUse": {"toolUseId": "tooluse_b", "name": "add", "input": {}}}]});
    let partial = json!({"role": "user", "content": [
        {"toolResult": {"toolUseId": "tooluse_a", "content": [{"text": "1"}]}}]});
    let cases = [
        (json!({}), "must start with a user message"),
        (json!({"messages": []}), "must start with a user message"),
        (json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}), "start with a user message"),
        (json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}), "alternate"),
        (json!({"messages": [{"role": "user", "content": []}]}), "The content field in the Message object at messages.0 is empty"),
        (json!({"messages": [{"role": "user", "content": [{"sound": "x"}]}]}), "unknown member 'sound'"),
        (json!({"messages": [{"role": "system", "content": [{"text": "x"}]}]}), "Member must satisfy enum value set: [user, assistant]"),
        (json!({"messages": [{"role": "user", "content": [{"text": "q"}]}, tool_use, partial], "toolConfig": tools_config()}),
            "Expected toolResult blocks at messages.2.content for the following Ids: tooluse_b"),
        (json!({"messages": [{"role": "user", "content": [{"text": "q"}]}], "inferenceConfig": {"temperature": 1.2}}),
            "Value '1.2' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1"),
        (json!({"messages": [{"role": "user", "content": [{"text": "q"}]}], "inferenceConfig": {"temperature": -0.5}}),
            "greater than or equal to 0"),
        (json!({"messages": [{"role": "user", "content": [{"text": "q"}]}], "inferenceConfig": {"maxTokens": 0}}),
            "'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1"),
    ];
    for (body, needle) in cases {
        let (status, kind, err) = error_of(post(&u, Some(KEY), &body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            kind,
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        );
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message} / {needle}");
    }
    // Not JSON at all.
    let resp = reqwest::Client::new()
        .post(&u)
        .header("authorization", format!("Bearer {KEY}"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, _, err) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("Malformed input request"));
    // Validation happens before the scenario: a failing request does not count.
    assert_eq!(server.scenario_count(Scenario::Text), 0);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = server().await;
    // `/invoke`, `/invoke-with-response-stream` and `/count-tokens` are routes now.
    for path in [
        "model/x/async-invoke",
        "model/x/invoke-stream",
        "other",
        "model//converse",
    ] {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/{path}", server.addr()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        assert!(resp.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("UnknownOperationException"));
    }
    let resp = reqwest::get(url(&server, "mock.text", "converse")).await.unwrap();
    assert_eq!(resp.status(), 404, "GET is not an operation");
}

#[tokio::test]
async fn shutdown_with_idle_and_dropped_handles() {
    let server = server().await;
    let addr = server.addr();
    assert_eq!(
        post(&url(&server, "mock.text", "converse"), Some(KEY), &user_body("x"))
            .await
            .status(),
        200
    );
    server.shutdown().await.unwrap();
    assert!(reqwest::Client::new()
        .post(format!("http://{addr}/model/mock.text/converse"))
        .send()
        .await
        .is_err());
    // Dropping a handle stops the server too (no panic, no hang).
    drop(self::server().await);
}

#[tokio::test]
async fn recording_is_bounded() {
    let server = MockBedrock::builder().max_recorded(2).start().await.unwrap();
    for text in ["one", "two", "three"] {
        let resp = post(&url(&server, "mock.text", "converse"), None, &user_body(text)).await;
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(server.request_count(), 3);
    let kept: Vec<Value> = server.requests().iter().filter_map(|r| r.json()).collect();
    assert_eq!(kept, [user_body("two"), user_body("three")]);
}

/// The official AWS SDK, pointed at the mock: it decodes our streams, reads our error
/// types, and its SigV4 signatures verify.
#[tokio::test]
async fn official_sdk_reads_the_mock() {
    use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_bedrockruntime::types::{
        ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseStreamOutput,
        Message as SdkMessage,
    };
    let server = MockBedrock::builder()
        .sigv4_credentials("AKIDEXAMPLE", "secret-example")
        .start()
        .await
        .unwrap();
    let conf = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(server.endpoint())
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "secret-example",
            None,
            None,
            "test",
        ))
        .build();
    let sdk = aws_sdk_bedrockruntime::Client::from_conf(conf);
    let message = SdkMessage::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text("Weather and a sum, please".into()))
        .build()
        .unwrap();

    let mut out = sdk
        .converse_stream()
        .model_id("us-east-1.mock.tools")
        .messages(message.clone())
        .send()
        .await
        .expect("converse_stream");
    let (mut tools, mut inputs, mut stop, mut usage) = (Vec::new(), String::new(), None, None);
    while let Some(event) = out.stream.recv().await.expect("event") {
        match event {
            ConverseStreamOutput::ContentBlockStart(s) => {
                if let Some(ContentBlockStart::ToolUse(t)) = s.start() {
                    tools.push(t.name().to_owned());
                }
            }
            ConverseStreamOutput::ContentBlockDelta(d) => {
                if let Some(ContentBlockDelta::ToolUse(t)) = d.delta() {
                    inputs.push_str(t.input());
                }
            }
            ConverseStreamOutput::MessageStop(s) => stop = Some(s.stop_reason().as_str().to_owned()),
            ConverseStreamOutput::Metadata(m) => usage = m.usage().map(|u| u.total_tokens()),
            _ => {}
        }
    }
    assert_eq!(tools, ["get_weather", "add"]);
    assert_eq!(inputs, r#"{"city":"Paris"}{"a":2,"b":3}"#);
    assert_eq!(stop.as_deref(), Some("tool_use"));
    assert!(usage.is_some_and(|t| t > 0));

    // An exception frame mid-stream is the SDK's typed error.
    let mut out = sdk
        .converse_stream()
        .model_id("mock.exception")
        .messages(message.clone())
        .send()
        .await
        .expect("converse_stream");
    let err = loop {
        match out.stream.recv().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("no exception"),
            Err(e) => break e,
        }
    };
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_model_stream_error_exception()),
        "{err:?}"
    );

    // HTTP errors are typed by `x-amzn-errortype`.
    let err = sdk
        .converse()
        .model_id("mock.http-error")
        .messages(message.clone())
        .send()
        .await
        .expect_err("400");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_validation_exception()),
        "{err:?}"
    );
    let err = sdk
        .converse()
        .model_id("mock.not-ready")
        .messages(message.clone())
        .send()
        .await;
    // The SDK retries throttling-class errors; either way it ends well or typed.
    if let Err(e) = err {
        assert!(
            e.as_service_error()
                .is_some_and(|e| e.is_model_not_ready_exception()),
            "{e:?}"
        );
    }

    // Converse JSON parses into the SDK's types.
    let out = sdk
        .converse()
        .model_id("mock.reasoning")
        .messages(message)
        .send()
        .await
        .expect("converse");
    let content = out.output().unwrap().as_message().unwrap().content();
    assert!(matches!(content[0], ContentBlock::ReasoningContent(_)));
    assert!(matches!(content[1], ContentBlock::Text(_)));
    assert_eq!(out.stop_reason().as_str(), "end_turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_streams() {
    let server = server().await;
    let u = url(&server, "us-east-1.mock.tools", "converse-stream");
    let calls: Vec<_> = (0..32)
        .map(|i| {
            let u = u.clone();
            tokio::spawn(async move {
                let resp = post(&u, Some(KEY), &user_body(&format!("call {i}"))).await;
                let bytes = resp.bytes().await.expect("body");
                let (frames, err) = decode_body(&bytes);
                assert!(err.is_none(), "{err:?}");
                frames.last().and_then(|m| m.event_type().map(str::to_owned))
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().as_deref(), Some("metadata"));
    }
    assert_eq!(server.request_count(), 32);
    assert_eq!(server.scenario_count(Scenario::Tools), 32);
    assert!(server.frames_streamed() >= 32 * 10);
    assert!(server.bytes_streamed() > 0);
}

#[tokio::test]
async fn undecodable_model_ids_are_404() {
    let server = server().await;
    let resp = reqwest::Client::new()
        .post(format!("http://{}/model/mock%FF.text/converse", server.addr()))
        .header("authorization", format!("Bearer {KEY}"))
        .body(user_body("x").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
