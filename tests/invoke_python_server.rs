//! The official `anthropic` Python SDK's `AnthropicBedrock` client (and boto3 for
//! `count_tokens`, which that client does not offer on Bedrock) pointed at the built-in
//! server: streaming and not, text, tool use with a second turn, thinking with its
//! signature, a mid-stream exception, throttling. The client signs with SigV4 and the
//! server verifies the signature.
//!
//! Needs the SDKs (`python_with_sdks()`): skipped with a message without them, a failure
//! when `CI` is set.

#![cfg(feature = "server")]

use bedrock_converse::server::{MockBedrock, MockBedrockHandle, Operation, Scenario};
use serde_json::Value;

mod common;
use common::{python_with_sdks, run_python};

const AKID: &str = "AKIDPYTHONINVOKE";
const SECRET: &str = "python-invoke-secret";

/// The `AnthropicBedrock` client of every script, from the environment.
const PRELUDE: &str = r#"
import json, os, sys
import anthropic
from anthropic import AnthropicBedrock

client = AnthropicBedrock(
    base_url=os.environ["BASE_URL"],
    aws_access_key=os.environ["AKID"],
    aws_secret_key=os.environ["SECRET"],
    aws_region="us-east-1",
    max_retries=int(os.environ.get("MAX_RETRIES", "0")),
)
USER = [{"role": "user", "content": "Hello from Python"}]

def out(value):
    print(json.dumps(value))
"#;

async fn start() -> MockBedrockHandle {
    MockBedrock::builder()
        .sigv4_credentials(AKID, SECRET)
        .start()
        .await
        .expect("server")
}

/// Runs `PRELUDE` + `script` against `server` (off the runtime's threads, which serve
/// the requests) and parses the JSON it prints last.
async fn python(
    server: &MockBedrockHandle,
    script: &str,
    extra: &[(&'static str, &'static str)],
) -> Option<Value> {
    let interpreter = python_with_sdks()?;
    let base = server.endpoint();
    let script = format!("{PRELUDE}\n{script}");
    let extra = extra.to_vec();
    let stdout = tokio::task::spawn_blocking(move || {
        let mut env = vec![("BASE_URL", base.as_str()), ("AKID", AKID), ("SECRET", SECRET)];
        env.extend(extra.iter().copied());
        run_python(&interpreter, &script, &env)
    })
    .await
    .expect("python task");
    let last = stdout.lines().last().expect("the script prints its result");
    Some(serde_json::from_str(last).expect("JSON result"))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_unary_and_streaming() {
    let server = start().await;
    let script = r#"
m = client.messages.create(model="anthropic.mock.text", max_tokens=256, messages=USER)
pieces = []
with client.messages.stream(model="us.anthropic.mock.text", max_tokens=256, messages=USER) as s:
    for text in s.text_stream:
        pieces.append(text)
    final = s.get_final_message()
out({"unary": m.model_dump(), "pieces": pieces, "final": final.model_dump()})
"#;
    let Some(result) = python(&server, script, &[]).await else {
        return;
    };
    let unary_text = str_at(&result, "/unary/content/0/text");
    assert!(
        unary_text.starts_with("You said: \"Hello from Python\"."),
        "{result}"
    );
    assert_eq!(str_at(&result, "/unary/stop_reason"), "end_turn");
    assert!(u64_at(&result, "/unary/usage/input_tokens") > 0);
    assert!(str_at(&result, "/unary/id").starts_with("msg_bdrk_"));
    let pieces: Vec<&str> = result["pieces"]
        .as_array()
        .expect("pieces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(pieces.len() > 10, "the text arrives in pieces: {pieces:?}");
    assert_eq!(pieces.concat(), unary_text);
    assert_eq!(str_at(&result, "/final/content/0/text"), unary_text);
    assert_eq!(str_at(&result, "/final/stop_reason"), "end_turn");
    assert_eq!(
        u64_at(&result, "/final/usage/output_tokens"),
        u64_at(&result, "/unary/usage/output_tokens")
    );
    let ops: Vec<Option<Operation>> = server.requests().iter().map(|r| r.operation).collect();
    assert_eq!(
        ops,
        [
            Some(Operation::InvokeModel),
            Some(Operation::InvokeModelWithResponseStream)
        ]
    );
    let first = server.requests().into_iter().next().expect("recorded");
    assert_eq!(first.status, 200, "the SigV4 signature verified");
    let body = first.json().expect("json body");
    assert!(
        body["anthropic_version"].is_string(),
        "the SDK sets anthropic_version"
    );
    assert!(body.get("model").is_none());
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_use_with_a_second_turn() {
    let server = start().await;
    let script = r#"
tools = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
messages = [{"role": "user", "content": "Weather in Paris?"}]
fragments = []
with client.messages.stream(model="anthropic.mock.tools", max_tokens=256, messages=messages, tools=tools) as s:
    for event in s:
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            fragments.append(event.delta.partial_json)
    first = s.get_final_message()
calls = [b for b in first.content if b.type == "tool_use"]
messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
messages.append({"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": c.id, "content": "21 degrees"} for c in calls]})
second = client.messages.create(model="anthropic.mock.tools", max_tokens=256, messages=messages, tools=tools)
out({"first": first.model_dump(), "fragments": fragments,
     "calls": [{"id": c.id, "name": c.name, "input": c.input} for c in calls],
     "second": second.model_dump()})
"#;
    let Some(result) = python(&server, script, &[]).await else {
        return;
    };
    assert_eq!(str_at(&result, "/first/stop_reason"), "tool_use");
    assert_eq!(str_at(&result, "/calls/0/name"), "get_weather");
    assert_eq!(
        result.pointer("/calls/0/input"),
        Some(&serde_json::json!({"city": "Paris"}))
    );
    assert!(str_at(&result, "/calls/0/id").starts_with("toolu_bdrk_"));
    assert!(
        result["fragments"].as_array().is_some_and(|f| f.len() > 1),
        "{result}"
    );
    assert_eq!(str_at(&result, "/second/stop_reason"), "end_turn");
    let answer = str_at(&result, "/second/content/0/text");
    assert!(answer.contains("`get_weather` returned 21 degrees"), "{answer}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thinking_with_signature() {
    let server = start().await;
    let script = r#"
kinds = []
with client.messages.stream(model="anthropic.mock.reasoning", max_tokens=2048, messages=USER,
                            thinking={"type": "enabled", "budget_tokens": 1024}) as s:
    for event in s:
        if event.type == "content_block_delta":
            kinds.append(event.delta.type)
    final = s.get_final_message()
# The thinking block goes back with its signature in the next turn.
follow = USER + [{"role": "assistant", "content": [b.model_dump() for b in final.content]},
                 {"role": "user", "content": "And then?"}]
again = client.messages.create(model="anthropic.mock.reasoning", max_tokens=2048, messages=follow,
                               thinking={"type": "enabled", "budget_tokens": 1024})
out({"kinds": sorted(set(kinds)), "final": final.model_dump(), "again": again.model_dump()})
"#;
    let Some(result) = python(&server, script, &[]).await else {
        return;
    };
    let kinds: Vec<&str> = result["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(kinds, ["signature_delta", "text_delta", "thinking_delta"]);
    assert_eq!(str_at(&result, "/final/content/0/type"), "thinking");
    assert!(str_at(&result, "/final/content/0/thinking").contains("Hello from Python"));
    assert!(!str_at(&result, "/final/content/0/signature").is_empty());
    assert_eq!(str_at(&result, "/final/content/1/type"), "text");
    assert_eq!(str_at(&result, "/again/content/0/type"), "thinking");
    assert!(str_at(&result, "/again/content/0/thinking").contains("And then?"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_through_boto3_matches_invoke() {
    let server = start().await;
    // `AnthropicBedrock` has no token counting on Bedrock ("not supported in Bedrock
    // yet"): boto3's `count_tokens` is the official client of the route.
    let script = r#"
import boto3
try:
    client.messages.count_tokens(model="anthropic.mock.text", messages=USER)
    sdk = "supported"
except anthropic.AnthropicError as e:
    sdk = str(e)
rt = boto3.client("bedrock-runtime", endpoint_url=os.environ["BASE_URL"], region_name="us-east-1",
                  aws_access_key_id=os.environ["AKID"], aws_secret_access_key=os.environ["SECRET"])
body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": USER}).encode()
counted = rt.count_tokens(modelId="anthropic.mock.text", input={"invokeModel": {"body": body}})
invoked = rt.invoke_model(modelId="anthropic.mock.text", body=body)
message = json.loads(invoked["body"].read())
headers = invoked["ResponseMetadata"]["HTTPHeaders"]
converse = rt.count_tokens(modelId="anthropic.mock.text",
                           input={"converse": {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}})
out({"sdk": sdk, "counted": counted["inputTokens"], "usage": message["usage"],
     "header": headers.get("x-amzn-bedrock-input-token-count"), "converse": converse["inputTokens"],
     "body_len": len(body)})
"#;
    let Some(result) = python(&server, script, &[]).await else {
        return;
    };
    let counted = u64_at(&result, "/counted");
    assert_eq!(counted, u64_at(&result, "/usage/input_tokens"), "{result}");
    assert_eq!(counted, u64_at(&result, "/body_len") / 4);
    assert_eq!(str_at(&result, "/header"), counted.to_string());
    assert!(u64_at(&result, "/converse") >= 1);
    assert!(
        str_at(&result, "/sdk") == "supported" || str_at(&result, "/sdk").contains("not supported"),
        "{result}"
    );
    assert!(server
        .requests()
        .iter()
        .any(|r| r.operation == Some(Operation::CountTokens) && r.status == 200));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mid_stream_exception_reaches_the_sdk_after_the_text() {
    let server = start().await;
    let script = r#"
pieces, error = [], None
try:
    with client.messages.stream(model="anthropic.mock.exception", max_tokens=256, messages=USER) as s:
        for text in s.text_stream:
            pieces.append(text)
except anthropic.APIError as e:
    error = {"class": type(e).__name__, "message": str(e), "body": getattr(e, "body", None)}
out({"pieces": pieces, "error": error})
"#;
    let Some(result) = python(&server, script, &[]).await else {
        return;
    };
    let text: String = result["pieces"]
        .as_array()
        .expect("pieces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(text.starts_with("Let me start answering"), "{result}");
    let error = &result["error"];
    assert!(error.is_object(), "the SDK raised: {result}");
    assert_eq!(
        str_at(error, "/body/error/type"),
        "modelStreamErrorException",
        "{result}"
    );
    assert!(str_at(error, "/message").contains("unexpected error"), "{result}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_a_rate_limit_error_and_the_sdk_retries_it() {
    let server = start().await;
    let script = r#"
results = {}
try:
    client.messages.create(model="anthropic.mock.throttling-exception", max_tokens=64, messages=USER)
except anthropic.RateLimitError as e:
    results["unary"] = {"status": e.status_code, "message": str(e)}
try:
    with client.messages.stream(model="anthropic.mock.throttling-exception", max_tokens=64, messages=USER) as s:
        for _ in s.text_stream:
            pass
except anthropic.APIError as e:
    results["stream"] = getattr(e, "body", None)
retrying = client.with_options(max_retries=2)
ok = retrying.messages.create(model="anthropic.mock.throttle-then-ok", max_tokens=64, messages=USER)
results["retried"] = ok.content[0].text
out(results)
"#;
    let Some(result) = python(&server, script, &[]).await else {
        return;
    };
    assert_eq!(u64_at(&result, "/unary/status"), 429, "{result}");
    assert!(
        str_at(&result, "/unary/message").contains("Too many tokens"),
        "{result}"
    );
    assert_eq!(
        str_at(&result, "/stream/error/type"),
        "throttlingException",
        "{result}"
    );
    assert!(str_at(&result, "/retried").starts_with("You said"), "{result}");
    assert_eq!(
        server.scenario_count(Scenario::ThrottleThenOk),
        3,
        "two 429s, then the answer"
    );
    server.shutdown().await.expect("shutdown");
}
