//! The client's native-body calls (`invoke_model`, `invoke_model_with_response_stream`,
//! `count_tokens`) over TCP against the built-in server: text, tools with a second turn,
//! thinking with its signature, usage and invocation metrics, the request and response
//! headers, validation, and every fault scenario with its typed error and partial output.

#![cfg(all(feature = "client", feature = "server"))]

use std::time::Duration;

use bedrock_converse::client::{
    Auth, AwsCredentials, BedrockClient, ClientError, InvokeStream, ResponseError, Secret, TimeoutKind,
    Timeouts, TransportError,
};
use bedrock_converse::converse::{Blob, ExceptionKind};
use bedrock_converse::invoke::{
    AnthropicContentBlock, AnthropicMessage, CountTokensInput, InvokeError, InvokeModelRequest,
    PerformanceConfigLatency, ServiceTierType,
};
use bedrock_converse::server::{MockBedrock, MockBedrockBuilder, MockBedrockHandle, Operation, Scenario};
use serde_json::{json, Value};

mod common;
use common::loopback::{config_for, isolated_builder};

const KEY: &str = "invoke-loopback-key-81c3";

async fn start_with(builder: MockBedrockBuilder) -> MockBedrockHandle {
    builder.bearer_key(KEY).start().await.expect("server")
}

async fn start() -> MockBedrockHandle {
    start_with(MockBedrock::builder()).await
}

/// The built-in server with the test key, and a client of it.
async fn start_client() -> (MockBedrockHandle, BedrockClient) {
    let server = start().await;
    let client = client_for(&server);
    (server, client)
}

/// The Anthropic message `req` answers with: streamed (`invoke_model_with_response_stream`,
/// assembled) or whole (`invoke_model`).
async fn message_of(client: &BedrockClient, req: &InvokeModelRequest, streaming: bool) -> AnthropicMessage {
    if streaming {
        client
            .invoke_model_with_response_stream(req)
            .await
            .expect("stream")
            .into_message()
            .await
            .expect("message")
    } else {
        client
            .invoke_model(req)
            .await
            .expect("invoke")
            .anthropic_message()
            .expect("message")
    }
}

fn client_for(server: &MockBedrockHandle) -> BedrockClient {
    isolated_builder(config_for(server, Some(KEY)))
        .build()
        .expect("client")
}

/// An Anthropic Messages body as the Anthropic SDKs send it to Bedrock.
fn native_body(messages: Value) -> Value {
    json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 512,
        "messages": messages,
    })
}

fn hello_body() -> Value {
    native_body(json!([{ "role": "user", "content": "Hello there" }]))
}

/// A request for the configured `bedrock` provider's `anthropic.mock.{scenario}` model.
fn request(scenario: &str, body: &Value) -> InvokeModelRequest {
    InvokeModelRequest::new(
        format!("bedrock/anthropic.mock.{scenario}"),
        body.to_string().into_bytes(),
    )
}

/// Every chunk of `stream`, parsed, then the error it ended with (if any).
async fn drain(stream: &mut InvokeStream) -> (Vec<Value>, Option<ClientError>) {
    let mut events = Vec::new();
    // Bounded: the server's longest scenario here sends well under 10,000 chunks.
    for _ in 0..10_000 {
        match stream.next_chunk().await {
            Some(Ok(chunk)) => {
                events.push(serde_json::from_slice(&chunk).expect("a chunk is one JSON event"))
            }
            Some(Err(e)) => return (events, Some(e)),
            None => return (events, None),
        }
    }
    panic!("stream did not end");
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.get("type").and_then(Value::as_str).unwrap_or("?"))
        .collect()
}

fn thinking_of(message: &AnthropicMessage) -> Option<(&str, &str)> {
    message.content.iter().find_map(|b| match b {
        AnthropicContentBlock::Thinking { thinking, signature } => {
            Some((thinking.as_str(), signature.as_str()))
        }
        _ => None,
    })
}

fn stream_exception(err: &ClientError) -> Option<&ExceptionKind> {
    match err {
        ClientError::Invoke(InvokeError::Service(e)) => Some(&e.kind),
        _ => None,
    }
}

#[tokio::test]
async fn invoke_model_answers_an_anthropic_message_with_usage_headers() {
    let (server, client) = start_client().await;
    let response = client
        .invoke_model(&request("text", &hello_body()))
        .await
        .expect("invoke");
    let message = response.anthropic_message().expect("an Anthropic message");
    assert!(
        message.text().starts_with("You said: \"Hello there\"."),
        "{}",
        message.text()
    );
    assert_eq!(message.stop_reason.as_deref(), Some("end_turn"));
    assert!(message.id.starts_with("msg_bdrk_"));
    assert_eq!(response.headers.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        response.headers.input_token_count,
        Some(message.usage.input_tokens)
    );
    assert_eq!(
        response.headers.output_token_count,
        Some(message.usage.output_tokens)
    );
    assert!(response.headers.invocation_latency_ms.is_some());
    let recorded = server.last_request().expect("recorded");
    assert_eq!(recorded.operation, Some(Operation::InvokeModel));
    assert_eq!(
        recorded.model_id.as_deref(),
        Some("us-east-1.anthropic.mock.text")
    );
    assert_eq!(recorded.json(), Some(hello_body()), "the body is sent as is");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_stream_yields_native_events_and_assembles_the_same_message() {
    let (server, client) = start_client().await;
    let unary = client
        .invoke_model(&request("text", &hello_body()))
        .await
        .expect("invoke")
        .anthropic_message()
        .expect("message");
    let mut stream = client
        .invoke_model_with_response_stream(&request("text", &hello_body()))
        .await
        .expect("stream");
    assert_eq!(stream.headers().content_type.as_deref(), Some("application/json"));
    let (events, error) = drain(&mut stream).await;
    assert!(error.is_none(), "{error:?}");
    let kinds = types(&events);
    assert_eq!(kinds.first(), Some(&"message_start"));
    assert_eq!(kinds.get(1), Some(&"content_block_start"));
    assert!(kinds.iter().filter(|k| **k == "content_block_delta").count() > 10);
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let metrics = events
        .last()
        .and_then(|e| e.get("amazon-bedrock-invocationMetrics"))
        .expect("invocation metrics on message_stop");
    for member in [
        "inputTokenCount",
        "outputTokenCount",
        "invocationLatency",
        "firstByteLatency",
    ] {
        assert!(metrics.get(member).is_some_and(Value::is_u64), "{member}");
    }
    assert_eq!(stream.chunks(), events.len() as u64);
    let message = stream.into_message().await.expect("message");
    assert_eq!(message.text(), unary.text());
    assert_eq!(message.usage, unary.usage);
    let metrics = message.invocation_metrics.expect("metrics");
    assert_eq!(metrics.input_token_count, message.usage.input_tokens);
    assert_eq!(metrics.output_token_count, message.usage.output_tokens);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn tools_stream_input_json_fragments_and_a_second_turn_gets_an_answer() {
    let (server, client) = start_client().await;
    let mut body = native_body(json!([{ "role": "user", "content": "Weather in Paris?" }]));
    body["tools"] = json!([{
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } } },
    }]);
    let mut stream = client
        .invoke_model_with_response_stream(&request("tools", &body))
        .await
        .expect("stream");
    let (events, error) = drain(&mut stream).await;
    assert!(error.is_none(), "{error:?}");
    let fragments: Vec<&str> = events
        .iter()
        .filter_map(|e| e.pointer("/delta/partial_json").and_then(Value::as_str))
        .collect();
    assert!(
        fragments.len() > 1,
        "the input comes in several fragments: {fragments:?}"
    );
    assert_eq!(fragments.concat(), r#"{"city":"Paris"}"#);
    let message = stream.into_message().await.expect("message");
    assert_eq!(message.stop_reason.as_deref(), Some("tool_use"));
    let (id, name, input) = message.tool_uses().next().expect("a tool call");
    assert_eq!((name, input), ("get_weather", &json!({ "city": "Paris" })));
    assert!(id.starts_with("toolu_bdrk_"), "{id}");

    // The second turn: the assistant's content as it came, then the tool result.
    let assistant = serde_json::to_value(&message.content).expect("content");
    let second = native_body(json!([
        { "role": "user", "content": "Weather in Paris?" },
        { "role": "assistant", "content": assistant },
        { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": id, "content": "18 degrees and sunny" }] },
    ]));
    let mut second_body = second;
    second_body["tools"] = body["tools"].clone();
    let answer = client
        .invoke_model_with_response_stream(&request("tools", &second_body))
        .await
        .expect("stream")
        .into_message()
        .await
        .expect("answer");
    assert_eq!(answer.stop_reason.as_deref(), Some("end_turn"));
    assert!(
        answer
            .text()
            .contains("`get_weather` returned 18 degrees and sunny"),
        "{}",
        answer.text()
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn thinking_streams_with_its_signature() {
    let (server, client) = start_client().await;
    let mut body = hello_body();
    body["thinking"] = json!({ "type": "enabled", "budget_tokens": 1024 });
    let mut stream = client
        .invoke_model_with_response_stream(&request("reasoning", &body))
        .await
        .expect("stream");
    let (events, error) = drain(&mut stream).await;
    assert!(error.is_none(), "{error:?}");
    let delta_types: Vec<&str> = events
        .iter()
        .filter_map(|e| e.pointer("/delta/type").and_then(Value::as_str))
        .collect();
    assert!(delta_types.contains(&"thinking_delta"));
    assert!(delta_types.contains(&"signature_delta"));
    let streamed = stream.into_message().await.expect("message");
    let (thinking, signature) = thinking_of(&streamed).expect("a thinking block");
    assert!(thinking.contains("Hello there"), "{thinking}");
    assert!(!signature.is_empty());
    assert!(streamed.text().contains("reasoning scenario"));

    let unary = client
        .invoke_model(&request("reasoning", &body))
        .await
        .expect("invoke")
        .anthropic_message()
        .expect("message");
    assert_eq!(thinking_of(&unary), Some((thinking, signature)));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn count_tokens_counts_what_invoke_reports() {
    let (server, client) = start_client().await;
    let body = hello_body();
    let bytes = body.to_string().into_bytes();
    let counted = client
        .count_tokens(
            "bedrock/anthropic.mock.text",
            CountTokensInput::InvokeModel {
                body: Blob(bytes.clone().into()),
            },
        )
        .await
        .expect("count");
    let invoked = client
        .invoke_model(&request("text", &body))
        .await
        .expect("invoke")
        .anthropic_message()
        .expect("message");
    assert_eq!(counted.input_tokens, invoked.usage.input_tokens);
    assert_eq!(counted.input_tokens, (bytes.len() / 4) as u64);
    let recorded = server.requests();
    let count_request = recorded
        .iter()
        .find(|r| r.operation == Some(Operation::CountTokens))
        .expect("count-tokens request");
    assert!(count_request
        .json()
        .and_then(|j| j.pointer("/input/invokeModel/body").cloned())
        .is_some());

    let converse = json!({ "messages": [{ "role": "user", "content": [{ "text": "Hello there" }] }] });
    let Value::Object(map) = converse.clone() else {
        unreachable!()
    };
    let counted = client
        .count_tokens("bedrock/anthropic.mock.text", CountTokensInput::Converse(map))
        .await
        .expect("count converse");
    assert_eq!(counted.input_tokens, (converse.to_string().len() / 4) as u64);

    // A bad native body inside count-tokens is refused as invoke would refuse it.
    let err = client
        .count_tokens(
            "bedrock/anthropic.mock.text",
            CountTokensInput::InvokeModel {
                body: Blob(br#"{"messages":[]}"#.to_vec().into()),
            },
        )
        .await
        .expect_err("invalid body");
    assert_eq!(err.error_type(), Some("ValidationException"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn bedrock_validation_names_the_field() {
    let (server, client) = start_client().await;
    let cases = [
        ("max_tokens", {
            let mut b = hello_body();
            b.as_object_mut().map(|m| m.remove("max_tokens"));
            b
        }),
        ("anthropic_version", {
            let mut b = hello_body();
            b.as_object_mut().map(|m| m.remove("anthropic_version"));
            b
        }),
        ("at least one message", native_body(json!([]))),
        ("extraneous key [model]", {
            let mut b = hello_body();
            b["model"] = json!("claude");
            b
        }),
    ];
    for (needle, body) in cases {
        for streaming in [false, true] {
            let req = request("text", &body);
            let err = if streaming {
                client
                    .invoke_model_with_response_stream(&req)
                    .await
                    .expect_err("refused")
            } else {
                client.invoke_model(&req).await.expect_err("refused")
            };
            assert_eq!(err.status(), Some(400), "{err}");
            assert_eq!(err.error_type(), Some("ValidationException"));
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
    let err = client
        .invoke_model(&InvokeModelRequest::new(
            "bedrock/amazon.nova-pro-v1:0",
            hello_body().to_string().into_bytes(),
        ))
        .await
        .expect_err("not anthropic");
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("anthropic.* models only"), "{err}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn request_headers_are_sent_and_echoed() {
    let (server, client) = start_client().await;
    let mut req = request("text", &hello_body());
    req.service_tier = Some(ServiceTierType::Flex);
    req.performance_config_latency = Some(PerformanceConfigLatency::Optimized);
    req.guardrail_identifier = Some("gr-1".into());
    req.guardrail_version = Some("2".into());
    let stream = client
        .invoke_model_with_response_stream(&req)
        .await
        .expect("stream");
    assert_eq!(stream.headers().service_tier, Some(ServiceTierType::Flex));
    assert_eq!(
        stream.headers().performance_config_latency,
        Some(PerformanceConfigLatency::Optimized)
    );
    stream.into_message().await.expect("message");
    let recorded = server.last_request().expect("recorded");
    let header = |name: &str| {
        recorded
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("x-amzn-bedrock-service-tier").as_deref(), Some("flex"));
    assert_eq!(
        header("x-amzn-bedrock-guardrailidentifier").as_deref(),
        Some("gr-1")
    );
    assert_eq!(header("x-amzn-bedrock-guardrailversion").as_deref(), Some("2"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        header("authorization").as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sigv4_signed_invoke_is_verified() {
    let server = MockBedrock::builder()
        .sigv4_credentials("AKIDINVOKETEST", "invoke-secret")
        .start()
        .await
        .expect("server");
    let client = isolated_builder(config_for(&server, None))
        .auth(
            "bedrock",
            Auth::SigV4 {
                credentials: AwsCredentials {
                    access_key_id: "AKIDINVOKETEST".into(),
                    secret_access_key: Secret::new("invoke-secret"),
                    session_token: None,
                },
                region: "us-east-1".into(),
            },
        )
        .build()
        .expect("client");
    for streaming in [false, true] {
        let req = request("tools", &hello_body());
        let message = message_of(&client, &req, streaming).await;
        assert_eq!(message.tool_uses().count(), 2);
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_mid_stream_exception_is_typed_and_keeps_the_partial_message() {
    let (server, client) = start_client().await;
    for (scenario, kind) in [
        ("exception", ExceptionKind::ModelStreamError),
        ("throttling-exception", ExceptionKind::Throttling),
    ] {
        let mut stream = client
            .invoke_model_with_response_stream(&request(scenario, &hello_body()))
            .await
            .expect("stream");
        let (events, error) = drain(&mut stream).await;
        let error = error.expect("the stream fails");
        assert_eq!(stream_exception(&error), Some(&kind), "{scenario}: {error}");
        assert!(types(&events).contains(&"content_block_delta"));
        assert!(stream.exception().is_some());
        let partial = stream.partial();
        assert!(
            partial.text().starts_with("Let me start answering"),
            "{}",
            partial.text()
        );
        assert!(stream.next_chunk().await.is_none(), "nothing after the error");
    }
    // `into_message` gives the error with the partial message.
    let stream = client
        .invoke_model_with_response_stream(&request("exception", &hello_body()))
        .await
        .expect("stream");
    let (err, partial) = stream.into_message().await.expect_err("fails");
    assert_eq!(err.error_type(), Some("modelStreamErrorException"));
    assert!(!partial.text().is_empty());
    // Data had reached the caller: no retry.
    assert_eq!(server.scenario_count(Scenario::Exception), 2);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn unary_faults_are_http_errors() {
    let (server, client) = start_client().await;
    let err = client
        .invoke_model(&request("exception", &hello_body()))
        .await
        .expect_err("424");
    assert_eq!(
        (err.status(), err.error_type()),
        (Some(424), Some("ModelErrorException"))
    );
    let err = client
        .invoke_model(&request("throttling-exception", &hello_body()))
        .await
        .expect_err("429");
    assert_eq!(
        (err.status(), err.error_type()),
        (Some(429), Some("ThrottlingException"))
    );
    assert_eq!(server.scenario_count(Scenario::ThrottlingException), 3, "retried");
    let err = client
        .invoke_model(&request("truncated", &hello_body()))
        .await
        .expect("the body is cut, the status is 200")
        .anthropic_message()
        .expect_err("half a JSON body");
    assert!(err.is_eof(), "{err}");
    let trickled = client
        .invoke_model(&request("trickle", &hello_body()))
        .await
        .expect("trickle")
        .anthropic_message()
        .expect("whole body");
    assert!(trickled.text().starts_with("You said"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn throttling_before_data_is_retried() {
    let (server, client) = start_client().await;
    for streaming in [false, true] {
        server.reset();
        let req = request("throttle-then-ok", &hello_body());
        let message = message_of(&client, &req, streaming).await;
        assert!(message.text().starts_with("You said"));
        assert_eq!(server.scenario_count(Scenario::ThrottleThenOk), 3);
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn broken_streams_are_typed_errors_with_partial_output() {
    let (server, client) = start_client().await;

    let mut stream = client
        .invoke_model_with_response_stream(&request("truncated", &hello_body()))
        .await
        .expect("stream");
    let (events, error) = drain(&mut stream).await;
    assert!(
        matches!(error, Some(ClientError::Response(ResponseError::Truncated))),
        "{error:?}"
    );
    assert!(!events.is_empty());
    assert!(!stream.partial().text().is_empty());

    let mut stream = client
        .invoke_model_with_response_stream(&request("corrupt-crc", &hello_body()))
        .await
        .expect("stream");
    let (events, error) = drain(&mut stream).await;
    assert!(matches!(error, Some(ClientError::EventStream(_))), "{error:?}");
    assert_eq!(events.len(), 2, "the two frames before the corrupt one");

    let trickled = client
        .invoke_model_with_response_stream(&request("trickle", &hello_body()))
        .await
        .expect("stream")
        .into_message()
        .await
        .expect("a trickled stream is whole");
    assert!(trickled.text().starts_with("You said"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let server = start_with(MockBedrock::builder().stall_duration(Duration::from_secs(3_600))).await;
    let client = isolated_builder(config_for(&server, Some(KEY)))
        .timeouts(Timeouts {
            idle: Duration::from_millis(300),
            ..Timeouts::default()
        })
        .build()
        .expect("client");
    let mut stream = client
        .invoke_model_with_response_stream(&request("stall", &hello_body()))
        .await
        .expect("stream");
    let (events, error) = drain(&mut stream).await;
    assert!(
        matches!(
            error,
            Some(ClientError::Transport(TransportError::Timeout {
                kind: TimeoutKind::Idle,
                ..
            }))
        ),
        "{error:?}"
    );
    assert_eq!(events.len(), 3, "the frames before the stall");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_server_answers_404_for_other_native_paths() {
    let server = start().await;
    let url = server.operation_url("anthropic.mock.text", Operation::InvokeModel);
    assert!(url.ends_with("/model/anthropic.mock.text/invoke"), "{url}");
    let async_url = url.replace("/invoke", "/async-invoke");
    let response = reqwest::Client::new()
        .post(&async_url)
        .bearer_auth(KEY)
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 404);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn borrowed_events_are_the_same_as_chunks() {
    let (server, client) = start_client().await;
    let mut stream = client
        .invoke_model_with_response_stream(&request("reasoning", &hello_body()))
        .await
        .expect("stream");
    let mut borrowed: Vec<Value> = Vec::new();
    for _ in 0..10_000 {
        match stream.next_event().await {
            Some(Ok(event)) => borrowed.push(serde_json::from_slice(event).expect("JSON event")),
            Some(Err(e)) => panic!("{e}"),
            None => break,
        }
    }
    let mut again = client
        .invoke_model_with_response_stream(&request("reasoning", &hello_body()))
        .await
        .expect("stream");
    let (copied, error) = drain(&mut again).await;
    assert!(error.is_none(), "{error:?}");
    // Message ids differ per answer; the rest is the same.
    let strip = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .skip(1)
            .take(events.len().saturating_sub(2))
            .cloned()
            .collect()
    };
    assert_eq!(borrowed.len(), copied.len());
    assert_eq!(strip(&borrowed), strip(&copied));
    assert_eq!(types(&borrowed), types(&copied));
    let message = stream.into_message().await.expect("message");
    assert!(thinking_of(&message).is_some());
    server.shutdown().await.expect("shutdown");
}
