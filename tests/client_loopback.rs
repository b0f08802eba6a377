//! The real client over TCP against the built-in server, for every scenario: typed
//! errors, retries only where allowed, the idle timeout, partial output on failure,
//! SigV4 (compared with the official SDK's signature) and no secrets in logs.

#![cfg(all(feature = "client", feature = "server"))]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bedrock_converse::client::{
    append_tool_results, tools_to_call, Auth, AuthError, AwsCredentials, BedrockClient, BedrockClientBuilder,
    BlockDelta, BlockStart, ChatEvent, ClientError, Config, ConfigError, ConverseStream, Endpoint,
    RequestParams, RequestToSign, ResponseError, RetryPolicy, Secret, ServiceError, TimeoutKind, Timeouts,
    TransportError,
};
use bedrock_converse::converse::{
    ContentBlock, ConverseResponse, ExceptionKind, Message, StopReason, StreamError,
};
use bedrock_converse::server::{MockBedrock, MockBedrockBuilder, MockBedrockHandle};
use futures_util::StreamExt;
use serde_json::json;

mod common;
use common::loopback::{config_for, isolated_builder, quick_retry};
use common::Capture;

const KEY: &str = "loopback-test-key-5f2a";

/// The built-in server with the test key, and a client of it.
async fn start_client() -> (MockBedrockHandle, BedrockClient) {
    let server = start().await;
    let client = client_for(&server);
    (server, client)
}

/// [`stream_hello`] of `model`, which must answer with a stream, drained.
async fn stream_drained(
    client: &BedrockClient,
    model: &str,
) -> (
    Vec<ChatEvent>,
    Result<ConverseResponse, ClientError>,
    ConverseStream,
) {
    let stream = stream_hello(client, model).await.expect("head");
    drain(stream).await
}

fn client_for(server: &MockBedrockHandle) -> BedrockClient {
    isolated_builder(config_for(server, Some(KEY)))
        .build()
        .expect("client")
}

/// A client of `server` that signs with `credentials` (SigV4, `us-east-1`).
fn sigv4_builder(server: &MockBedrockHandle, credentials: AwsCredentials) -> BedrockClientBuilder {
    isolated_builder(config_for(server, None)).auth(
        "bedrock",
        Auth::SigV4 {
            credentials,
            region: "us-east-1".into(),
        },
    )
}

async fn start() -> MockBedrockHandle {
    start_with(MockBedrock::builder()).await
}

async fn start_with(builder: MockBedrockBuilder) -> MockBedrockHandle {
    builder.bearer_key(KEY).start().await.expect("server")
}

fn hello() -> Vec<Message> {
    vec![Message::user("Hello there")]
}

/// `converse` of [`hello`] with default parameters.
async fn converse_hello(client: &BedrockClient, model: &str) -> Result<ConverseResponse, ClientError> {
    client.converse(model, &hello(), &RequestParams::default()).await
}

/// `converse` of [`hello`] to `model`, which must fail with HTTP `status` and the
/// service error `error_type`; the error, for further checks.
async fn converse_refused(client: &BedrockClient, model: &str, status: u16, error_type: &str) -> ClientError {
    let err = converse_hello(client, model).await.expect_err("a service error");
    assert_eq!(err.status(), Some(status), "{err:?}");
    assert_eq!(err.error_type(), Some(error_type), "{err:?}");
    err
}

/// `converse_stream` of [`hello`] with default parameters.
async fn stream_hello(client: &BedrockClient, model: &str) -> Result<ConverseStream, ClientError> {
    client
        .converse_stream(model, &hello(), &RequestParams::default())
        .await
}

/// A client of `server` with the test key and these timeouts.
fn client_with_timeouts(server: &MockBedrockHandle, timeouts: Timeouts) -> BedrockClient {
    isolated_builder(config_for(server, Some(KEY)))
        .timeouts(timeouts)
        .build()
        .expect("client")
}

/// Collects a stream: the events, and the final response or the error.
async fn drain(
    mut stream: ConverseStream,
) -> (
    Vec<ChatEvent>,
    Result<ConverseResponse, ClientError>,
    ConverseStream,
) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(ChatEvent::Done(r)) => {
                assert!(stream.next().await.is_none(), "nothing after Done");
                return (events, Ok(*r), stream);
            }
            Ok(ev) => events.push(ev),
            Err(e) => {
                assert!(stream.next().await.is_none(), "nothing after an error");
                return (events, Err(e), stream);
            }
        }
    }
    panic!("stream ended without Done or an error");
}

fn text_of(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ContentBlockDelta {
                delta: BlockDelta::Text(text),
                ..
            } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

// ===== success paths =====

#[tokio::test]
async fn text_stream_and_converse() {
    let (server, client) = start_client().await;
    let (events, result, _) = stream_drained(&client, "bedrock/mock.text").await;
    let response = result.expect("complete");
    assert!(matches!(events.first(), Some(ChatEvent::MessageStart { .. })));
    let streamed = text_of(&events);
    assert!(!streamed.is_empty());
    assert_eq!(response.text(), streamed);
    assert_eq!(response.stop_reason, Some(StopReason::EndTurn));
    assert!(events.iter().any(|e| matches!(e, ChatEvent::MessageStop { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, ChatEvent::Metadata { usage: Some(_), .. })));
    assert!(response.usage.as_ref().is_some_and(|u| u.output_tokens > 0));

    let sync = converse_hello(&client, "bedrock/mock.text")
        .await
        .expect("converse");
    assert_eq!(sync.text(), response.text());
    assert_eq!(sync.stop_reason, Some(StopReason::EndTurn));

    // What went on the wire: the percent-encoded path, the Bearer key, the body.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].uri, "/model/us-east-1.mock.text/converse-stream");
    assert_eq!(reqs[1].uri, "/model/us-east-1.mock.text/converse");
    assert_eq!(reqs[0].headers["authorization"], format!("Bearer {KEY}").as_str());
    let body = reqs[0].json().expect("json body");
    assert_eq!(body["inferenceConfig"]["maxTokens"], 1024);
    assert_eq!(body["messages"][0]["content"][0]["text"], "Hello there");
    server.shutdown().await.expect("shutdown");
}

/// Timeouts a caller may configure as "never": `Duration::MAX` everywhere. Adding it to
/// the clock overflows; the client treats that as no deadline instead of panicking.
#[tokio::test]
async fn duration_max_timeouts_work_and_do_not_panic() {
    let server = start().await;
    let client = client_with_timeouts(
        &server,
        Timeouts {
            connect: Duration::MAX,
            first_byte: Duration::MAX,
            idle: Duration::MAX,
            total: Some(Duration::MAX),
        },
    );
    let (events, result, _) = stream_drained(&client, "bedrock/mock.text").await;
    let response = result.expect("complete");
    assert!(!text_of(&events).is_empty());
    assert_eq!(response.text(), text_of(&events));
    assert_eq!(response.stop_reason, Some(StopReason::EndTurn));
    let sync = converse_hello(&client, "bedrock/mock.text")
        .await
        .expect("converse");
    assert_eq!(sync.text(), response.text());
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn model_id_with_colon_is_percent_encoded_on_the_wire() {
    let (server, client) = start_client().await;
    let r = converse_hello(&client, "bedrock/anthropic.claude-3-haiku-20240307-v1:0")
        .await
        .expect("converse");
    assert!(!r.text().is_empty());
    let req = server.last_request().expect("request");
    assert_eq!(
        req.uri,
        "/model/us-east-1.anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(
        req.model_id.as_deref(),
        Some("us-east-1.anthropic.claude-3-haiku-20240307-v1:0")
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn trickle_one_byte_per_write_assembles() {
    let (server, client) = start_client().await;
    let (events, result, _) = stream_drained(&client, "bedrock/mock.trickle").await;
    let r = result.expect("complete");
    assert_eq!(r.text(), text_of(&events));
    assert!(!r.text().is_empty());
    let sync = converse_hello(&client, "bedrock/mock.trickle")
        .await
        .expect("converse");
    assert_eq!(sync.text(), r.text());
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn reasoning_stream() {
    let (server, client) = start_client().await;
    let (events, result, _) = stream_drained(&client, "bedrock/mock.reasoning").await;
    let r = result.expect("complete");
    assert!(events.iter().any(|e| matches!(
        e,
        ChatEvent::ContentBlockDelta {
            delta: BlockDelta::ReasoningText(_),
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        ChatEvent::ContentBlockDelta {
            delta: BlockDelta::ReasoningSignature(_),
            ..
        }
    )));
    assert!(matches!(
        r.content().first(),
        Some(ContentBlock::ReasoningContent(_))
    ));
    assert!(!r.text().is_empty());
    server.shutdown().await.expect("shutdown");
}

/// Streamed citations reach the caller with their data (not only a name), and the
/// assembled response keeps them with the text they cite.
#[tokio::test]
async fn citations_stream_carries_the_citation() {
    let (server, client) = start_client().await;
    let (events, result, _) = stream_drained(&client, "bedrock/mock.citations").await;
    let r = result.expect("complete");
    let streamed: Vec<serde_json::Value> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ContentBlockDelta {
                delta: BlockDelta::Citation(citation),
                ..
            } => Some(serde_json::to_value(citation).expect("json")),
            _ => None,
        })
        .collect();
    assert!(!streamed.is_empty(), "{events:?}");
    let assembled = serde_json::to_value(&r).expect("json").to_string();
    for c in &streamed {
        let title = c
            .pointer("/title")
            .or_else(|| c.pointer("/location"))
            .expect("a citation member");
        assert!(assembled.contains(&title.to_string()), "{c} not in {assembled}");
    }
    server.shutdown().await.expect("shutdown");
}

fn tool_params() -> RequestParams {
    RequestParams {
        tools: vec![
            json!({"name": "get_weather", "description": "Weather of a city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}),
            json!({"name": "add", "description": "Adds numbers",
                   "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}),
        ],
        ..RequestParams::default()
    }
}

#[tokio::test]
async fn tools_stream_round_trip() {
    let (server, client) = start_client().await;
    let params = tool_params();
    let mut messages = vec![Message::user("What is the weather in Oslo, and 2 + 3?")];
    let stream = client
        .converse_stream("bedrock/mock.tools", &messages, &params)
        .await
        .expect("head");
    let (events, result, _) = drain(stream).await;
    let response = result.expect("complete");
    assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
    let calls = tools_to_call(&response);
    assert!(calls.len() >= 2, "{calls:?}");
    // Streamed: start, fragments (on-prepare-tool-call), then each complete call.
    let streamed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCall { call, .. } => Some(call.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, calls);
    for call in &calls {
        assert!(events
            .iter()
            .any(|e| matches!(e, ChatEvent::ContentBlockStart { start: BlockStart::ToolUse { tool_use_id, .. }, .. } if *tool_use_id == call.id)));
        let fragments: String = events
            .iter()
            .filter_map(|e| match e {
                ChatEvent::ContentBlockDelta {
                    delta:
                        BlockDelta::ToolUseInput {
                            tool_use_id,
                            name,
                            input,
                        },
                    ..
                } if *tool_use_id == call.id => {
                    assert_eq!(*name, call.name, "the fragment names its call");
                    Some(input.as_str())
                }
                _ => None,
            })
            .collect();
        let parsed: serde_json::Value = serde_json::from_str(&fragments).expect("fragments form the input");
        assert_eq!(parsed, call.input);
    }
    // All results in one user message; the server validates that as Bedrock does.
    let results = calls
        .iter()
        .map(|c| ContentBlock::tool_result_json(&c.id, json!({"result": format!("ran {}", c.name)})))
        .collect();
    append_tool_results(&mut messages, &response, results).expect("append");
    assert_eq!(messages.len(), 3);
    let stream = client
        .converse_stream("bedrock/mock.tools", &messages, &params)
        .await
        .expect("second turn");
    let (_, result, _) = drain(stream).await;
    let answer = result.expect("answer");
    assert_eq!(answer.stop_reason, Some(StopReason::EndTurn));
    assert!(!answer.text().is_empty());
    // A missing result is refused before sending.
    let mut m2 = vec![Message::user("x")];
    let err = append_tool_results(&mut m2, &response, vec![]).expect_err("missing results");
    assert!(matches!(
        err,
        ClientError::Config(ConfigError::InvalidParameter { .. })
    ));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn tools_converse_round_trip() {
    let (server, client) = start_client().await;
    let params = RequestParams {
        stream: Some(false),
        ..tool_params()
    };
    let mut messages = vec![Message::user("Weather in Oslo?")];
    assert!(!client.streams("bedrock/mock.tools", &params).expect("model"));
    let response = client
        .send_request("bedrock/mock.tools", &messages, &params)
        .await
        .expect("converse");
    let calls = tools_to_call(&response);
    assert!(!calls.is_empty());
    let results = calls
        .iter()
        .map(|c| ContentBlock::tool_result_text(&c.id, "sunny"))
        .collect();
    append_tool_results(&mut messages, &response, results).expect("append");
    let answer = client
        .send_request("bedrock/mock.tools", &messages, &params)
        .await
        .expect("answer");
    assert_eq!(answer.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.uri.ends_with("/converse"))
            .count(),
        2
    );
    server.shutdown().await.expect("shutdown");
}

// ===== errors and retries =====

#[tokio::test]
async fn http_error_is_typed_and_not_retried() {
    let (server, client) = start_client().await;
    for stream in [true, false] {
        server.reset();
        let err = if stream {
            stream_hello(&client, "bedrock/mock.http-error").await.map(|_| ())
        } else {
            converse_hello(&client, "bedrock/mock.http-error")
                .await
                .map(|_| ())
        }
        .expect_err("400");
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.error_type(), Some("ValidationException"));
        assert!(
            matches!(&err, ClientError::Service(ServiceError { message: Some(m), .. }) if !m.is_empty()),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(server.request_count(), 1, "4xx is not retried");
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn wrong_key_is_access_denied_and_not_retried() {
    let server = start().await;
    let client = isolated_builder(config_for(&server, Some("wrong-key")))
        .build()
        .expect("client");
    let err = converse_refused(&client, "bedrock/mock.text", 403, "AccessDeniedException").await;
    assert!(err.to_string().contains("Authentication failed"), "{err}");
    assert_eq!(server.request_count(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn throttle_then_ok_succeeds_after_retries() {
    let (server, client) = start_client().await;
    let (_, result, _) = stream_drained(&client, "bedrock/mock.throttle-then-ok").await;
    assert!(!result.expect("complete").text().is_empty());
    assert_eq!(server.request_count(), 3, "two 429s, then success");
    // With one attempt only, the 429 surfaces.
    server.reset();
    let client1 = isolated_builder(config_for(&server, Some(KEY)))
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    let err = converse_refused(
        &client1,
        "bedrock/mock.throttle-then-ok",
        429,
        "ThrottlingException",
    )
    .await;
    assert!(err.is_retryable());
    assert_eq!(server.request_count(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn not_ready_is_retried() {
    let (server, client) = start_client().await;
    let r = converse_hello(&client, "bedrock/mock.not-ready")
        .await
        .expect("ok");
    assert!(!r.text().is_empty());
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200]);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn server_error_exhausts_retries() {
    let (server, client) = start_client().await;
    converse_refused(
        &client,
        "bedrock/mock.server-error",
        500,
        "InternalServerException",
    )
    .await;
    assert_eq!(server.request_count(), 3, "3 attempts by default");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn stream_exception_keeps_partial_and_is_not_retried() {
    let (server, client) = start_client().await;
    for (model, kind) in [
        ("bedrock/mock.exception", ExceptionKind::ModelStreamError),
        ("bedrock/mock.throttling-exception", ExceptionKind::Throttling),
    ] {
        server.reset();
        let (events, result, stream) = stream_drained(&client, model).await;
        let err = result.expect_err("exception");
        match &err {
            ClientError::Stream(StreamError::Service(e)) => assert_eq!(e.kind, kind),
            other => panic!("{model}: {other:?}"),
        }
        let streamed = text_of(&events);
        assert!(
            !streamed.is_empty(),
            "text reached the caller before the exception"
        );
        assert_eq!(stream.partial().text(), streamed, "partial output kept");
        assert_eq!(
            server.request_count(),
            1,
            "nothing is retried once stream data reached the caller"
        );
    }
    // Non-streaming: HTTP 424 ModelErrorException.
    server.reset();
    converse_refused(&client, "bedrock/mock.exception", 424, "ModelErrorException").await;
    assert_eq!(server.request_count(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn stall_is_cut_by_the_idle_timeout() {
    let server = start().await;
    let timeouts = Timeouts {
        idle: Duration::from_millis(500),
        ..Timeouts::default()
    };
    let client = client_with_timeouts(&server, timeouts);
    let (events, result, stream) = stream_drained(&client, "bedrock/mock.stall").await;
    let err = result.expect_err("stalled");
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Idle), "{err:?}");
    assert!(!err.is_retryable());
    assert!(matches!(events.first(), Some(ChatEvent::MessageStart { .. })));
    assert_eq!(stream.partial().text(), text_of(&events));
    assert_eq!(server.request_count(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn stalled_converse_hits_first_byte_timeout_and_total_timeout() {
    let server = start().await;
    let timeouts = Timeouts {
        first_byte: Duration::from_millis(200),
        ..Timeouts::default()
    };
    let client = client_with_timeouts(&server, timeouts);
    let err = converse_hello(&client, "bedrock/mock.stall")
        .await
        .expect_err("timeout");
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::FirstByte), "{err:?}");

    server.reset();
    let timeouts = Timeouts {
        total: Some(Duration::from_secs(1)),
        ..Timeouts::default()
    };
    let client = client_with_timeouts(&server, timeouts);
    let err = converse_hello(&client, "bedrock/mock.stall")
        .await
        .expect_err("timeout");
    assert_eq!(err.timeout_kind(), Some(TimeoutKind::Total), "{err:?}");
    let (_, result, _) = stream_drained(&client, "bedrock/mock.stall").await;
    assert!(
        matches!(
            result,
            Err(ClientError::Transport(TransportError::Timeout {
                kind: TimeoutKind::Total,
                ..
            }))
        ),
        "{result:?}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn truncated_body_is_typed_with_partial() {
    let (server, client) = start_client().await;
    let (events, result, stream) = stream_drained(&client, "bedrock/mock.truncated").await;
    let err = result.expect_err("truncated");
    assert!(
        matches!(err, ClientError::Response(ResponseError::Truncated)),
        "{err:?}"
    );
    assert_eq!(stream.partial().text(), text_of(&events));
    assert_eq!(server.request_count(), 1);
    let err = converse_hello(&client, "bedrock/mock.truncated")
        .await
        .expect_err("cut");
    assert!(
        matches!(err, ClientError::Response(ResponseError::Json(_))),
        "{err:?}"
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn corrupt_crc_is_an_event_stream_error_with_partial() {
    let (server, client) = start_client().await;
    let (events, result, stream) = stream_drained(&client, "bedrock/mock.corrupt-crc").await;
    let err = result.expect_err("crc");
    assert!(matches!(err, ClientError::EventStream(_)), "{err:?}");
    assert!(matches!(events.first(), Some(ChatEvent::MessageStart { .. })));
    assert_eq!(stream.partial().text(), text_of(&events));
    assert_eq!(server.request_count(), 1);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn connection_refused_is_retried_then_typed() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let text = json!({"providers": {"bedrock": {"api": "bedrock", "key": KEY, "region": "us-east-1",
        "url": format!("http://127.0.0.1:{port}/model/")}}})
    .to_string();
    let client = isolated_builder(Config::parse_with_env(&text, &|_| None).expect("config"))
        .build()
        .expect("client");
    let err = converse_hello(&client, "bedrock/mock.text")
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ClientError::Transport(TransportError::Connect { .. })),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn missing_credentials_is_typed() {
    let server = start().await;
    let client = isolated_builder(config_for(&server, None))
        .retry(RetryPolicy::default())
        .build()
        .expect("client");
    let err = converse_hello(&client, "bedrock/mock.text")
        .await
        .expect_err("no creds");
    assert!(
        matches!(err, ClientError::Auth(AuthError::MissingCredentials { .. })),
        "{err:?}"
    );
    assert_eq!(server.request_count(), 0);
    server.shutdown().await.expect("shutdown");
}

// ===== SigV4 =====

const AKID: &str = "AKIDLOOPBACKTEST";
const SECRET: &str = "loopback/secret+key/EXAMPLEKEY0123456789";
const TOKEN: &str = "loopback-session-token-abc";

fn creds(token: bool) -> AwsCredentials {
    AwsCredentials {
        access_key_id: AKID.into(),
        secret_access_key: Secret::new(SECRET),
        session_token: token.then(|| Secret::new(TOKEN)),
    }
}

#[tokio::test]
async fn sigv4_requests_verify_at_the_server() {
    let server = MockBedrock::builder()
        .sigv4_credentials(AKID, SECRET)
        .start()
        .await
        .expect("server");
    for token in [false, true] {
        let client = sigv4_builder(&server, creds(token))
            .retry(RetryPolicy::none())
            .build()
            .expect("client");
        let r = converse_hello(&client, "bedrock/anthropic.claude-3-haiku-20240307-v1:0")
            .await
            .expect("signed request accepted");
        assert!(!r.text().is_empty());
        let stream = stream_hello(&client, "bedrock/mock.text").await.expect("ok");
        drain(stream).await.1.expect("complete");
    }
    // Credentials from the environment getter work the same.
    let client = isolated_builder(config_for(&server, None))
        .env(|n| match n {
            "AWS_ACCESS_KEY_ID" => Some(AKID.to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some(SECRET.to_string()),
            _ => None,
        })
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    converse_hello(&client, "bedrock/mock.text")
        .await
        .expect("env credentials");
    // A wrong secret is refused.
    let bad = AwsCredentials {
        secret_access_key: Secret::new("wrong"),
        ..creds(false)
    };
    let client = sigv4_builder(&server, bad)
        .retry(quick_retry())
        .build()
        .expect("client");
    converse_refused(&client, "bedrock/mock.text", 403, "InvalidSignatureException").await;
    server.shutdown().await.expect("shutdown");
}

/// The official SDK signs a Converse call; we sign the same request (same path, body,
/// signed headers, time and credentials) and must produce the same `Authorization`.
///
/// The SDK signs headers our client does not send (`x-amz-user-agent`,
/// `amz-sdk-invocation-id`, `amz-sdk-request`, `content-length`), so the comparison
/// feeds our signer the SDK's signed header set; our own client's request is checked
/// separately (same encoded path as the SDK, signature verified by the server).
#[tokio::test]
async fn sigv4_matches_the_official_sdk() {
    use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_bedrockruntime::types::{ContentBlock as SdkBlock, ConversationRole, Message as SdkMessage};

    let server = MockBedrock::builder()
        .sigv4_credentials(AKID, SECRET)
        .start()
        .await
        .expect("server");
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    let model_id = "us-east-1.anthropic.claude-3-haiku-20240307-v1:0";
    for token in [false, true] {
        server.reset();
        let sdk_config = aws_sdk_bedrockruntime::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .credentials_provider(Credentials::new(
                AKID,
                SECRET,
                token.then(|| TOKEN.to_string()),
                None,
                "test",
            ))
            .time_source(aws_smithy_async::time::StaticTimeSource::new(time))
            .build();
        let sdk = aws_sdk_bedrockruntime::Client::from_conf(sdk_config);
        let msg = SdkMessage::builder()
            .role(ConversationRole::User)
            .content(SdkBlock::Text("Hello there".into()))
            .build()
            .expect("message");
        sdk.converse()
            .model_id(model_id)
            .messages(msg)
            .send()
            .await
            .expect("SDK call");
        let sdk_req = server.last_request().expect("recorded");

        let header = |name: &str| {
            sdk_req
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("SDK sent no {name}"))
        };
        let sdk_auth = header("authorization").to_string();
        let signed_list = sdk_auth
            .split("SignedHeaders=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .expect("SignedHeaders")
            .to_string();
        let signed: Vec<(&str, &str)> = signed_list
            .split(';')
            .filter(|n| !matches!(*n, "x-amz-date" | "x-amz-security-token" | "authorization"))
            .map(|n| (n, header(n)))
            .collect();
        let url = format!("{}{}", server.endpoint(), sdk_req.uri);
        let auth = Auth::SigV4 {
            credentials: creds(token),
            region: "us-east-1".into(),
        };
        let ours = auth
            .headers(&RequestToSign {
                method: "POST",
                url: &url,
                headers: &signed,
                body: &sdk_req.body,
                time,
            })
            .expect("sign");
        let get = |n: &str| ours.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(
            get("authorization"),
            Some(sdk_auth.as_str()),
            "Authorization differs (token: {token})"
        );
        assert_eq!(get("x-amz-date"), Some(header("x-amz-date")));
        assert_eq!(
            get("x-amz-security-token"),
            sdk_req
                .headers
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok())
        );
        assert_eq!(
            get("x-amz-content-sha256"),
            sdk_req
                .headers
                .get("x-amz-content-sha256")
                .and_then(|v| v.to_str().ok()),
            "x-amz-content-sha256 sent by one side only"
        );

        // Our client's request: the same encoded path as the SDK's, and a signature
        // the server verifies (same time).
        let client = sigv4_builder(&server, creds(token))
            .clock(move || time)
            .retry(RetryPolicy::none())
            .build()
            .expect("client");
        converse_hello(&client, "bedrock/anthropic.claude-3-haiku-20240307-v1:0")
            .await
            .expect("our signed request");
        let our_req = server.last_request().expect("recorded");
        assert_eq!(our_req.uri, sdk_req.uri, "path encoding matches the SDK");
        assert_eq!(our_req.status, 200);
        let our_auth = our_req.headers["authorization"].to_str().expect("ascii");
        assert!(our_auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDLOOPBACKTEST/20251124/us-east-1/bedrock/aws4_request, SignedHeaders="
        ));
        assert_eq!(our_req.headers["x-amz-date"], header("x-amz-date"));
        let endpoint = client
            .endpoint("bedrock/anthropic.claude-3-haiku-20240307-v1:0", false)
            .expect("endpoint");
        assert_eq!(endpoint, Endpoint { ..endpoint.clone() });
        assert!(endpoint.wire.ends_with(&sdk_req.uri));
    }
    server.shutdown().await.expect("shutdown");
}

// ===== logging =====

#[tokio::test]
async fn no_secret_in_logs() {
    // A global subscriber (a thread-scoped one races with the callsite interest cache
    // when tests run in parallel): every test of this binary then logs into `capture`,
    // which only widens the check. Everything of the client stack at TRACE (our crate,
    // reqwest, hyper, h2), as `RUST_LOG=trace` would, except `aws_sigv4`, which the CLI
    // switches off too: its TRACE output names the access key id (AWS does not count the
    // key id as secret; we keep it out all the same), and the built-in server.
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "bedrock_converse=trace,bedrock_converse::server=off,reqwest=trace,hyper=trace,\
             hyper_util=trace,h2=trace,client_loopback=trace",
        ))
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets the global subscriber");

    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .sigv4_credentials(AKID, SECRET)
        .start()
        .await
        .expect("server");
    // Bearer: stream and converse, including a failure.
    let client = client_for(&server);
    let stream = client
        .converse_stream("bedrock/mock.tools", &hello(), &tool_params())
        .await
        .expect("head");
    drain(stream).await.1.expect("complete");
    converse_hello(&client, "bedrock/mock.text")
        .await
        .expect("converse");
    converse_hello(&client, "bedrock/mock.http-error")
        .await
        .expect_err("400");
    tracing::debug!(client = ?client, "client debug output");
    // SigV4 with a session token.
    let sig_client = sigv4_builder(&server, creds(true))
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    converse_hello(&sig_client, "bedrock/mock.text")
        .await
        .expect("signed");
    let stream = stream_hello(&sig_client, "bedrock/mock.text").await.expect("ok");
    drain(stream).await.1.expect("complete");
    let signatures: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("authorization")?
                .to_str()
                .ok()?
                .split("Signature=")
                .nth(1)
                .map(str::to_string)
        })
        .collect();
    assert_eq!(signatures.len(), 2);
    server.shutdown().await.expect("shutdown");

    let logs = capture.text();
    // Debug logging did happen: endpoint, payload, status, usage.
    assert!(
        logs.contains("/model/us-east-1.mock.tools/converse-stream"),
        "endpoint logged"
    );
    assert!(logs.contains("Hello there"), "payload logged");
    assert!(logs.contains("status=200"), "status logged");
    assert!(logs.contains("output_tokens"), "usage logged");
    for secret in [KEY, SECRET, TOKEN, AKID] {
        assert!(!logs.contains(secret), "secret {secret:?} in logs");
    }
    for sig in &signatures {
        assert!(!logs.contains(sig.as_str()), "signature in logs");
    }
    assert!(!logs.contains("AWS4-HMAC-SHA256"), "Authorization in logs");
    assert!(
        !logs.to_ascii_lowercase().contains("bearer "),
        "Authorization in logs"
    );
}

#[test]
fn public_types_are_send_and_sync() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<ConverseStream>();
    send_sync::<BedrockClient>();
    send_sync::<ClientError>();
    send_sync::<ChatEvent>();
}

// ===== failures before the first event =====

fn frame(message_type: &str, kind: &str, json: &str) -> bytes::Bytes {
    use tokio_util::codec::Encoder;
    let kind_header = if message_type == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    let msg = bedrock_converse::eventstream::MessageBuilder::new()
        .string_header(kind_header, kind)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", message_type)
        .build(json.as_bytes())
        .expect("frame");
    let mut out = bytes::BytesMut::new();
    bedrock_converse::eventstream::EventStreamCodec::new()
        .encode(&msg, &mut out)
        .expect("encode");
    out.freeze()
}

fn good_stream() -> bytes::Bytes {
    let mut out = Vec::new();
    for (ty, json) in [
        ("messageStart", r#"{"role":"assistant"}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"after retry"}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        ("messageStop", r#"{"stopReason":"end_turn"}"#),
    ] {
        out.extend_from_slice(&frame("event", ty, json));
    }
    out.into()
}

/// A loopback server answering `/converse-stream` with 200 and these bodies in turn
/// (the last one repeats). Returns its `.../model/` URL and the request counter.
async fn sequence_server(bodies: Vec<bytes::Bytes>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let app = axum::Router::new().fallback(move |_body: axum::body::Bytes| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let body = bodies.get(n).or(bodies.last()).cloned().unwrap_or_default();
        async move {
            axum::http::Response::builder()
                .header("content-type", "application/vnd.amazon.eventstream")
                .body(axum::body::Body::from(body))
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/model/"), count)
}

fn client_at(url: &str, retry: RetryPolicy) -> BedrockClient {
    let text =
        json!({"providers": {"bedrock": {"api": "bedrock", "key": KEY, "region": "us-east-1", "url": url}}})
            .to_string();
    isolated_builder(Config::parse_with_env(&text, &|_| None).expect("config"))
        .retry(retry)
        .build()
        .expect("client")
}

#[tokio::test]
async fn stream_failing_before_its_first_event_is_retried() {
    use std::sync::atomic::Ordering;
    let throttled = frame(
        "exception",
        "throttlingException",
        r#"{"message":"Too many requests"}"#,
    );
    // 1: a throttling exception as the first frame; 2: an empty body; 3: a good stream.
    let (url, count) = sequence_server(vec![throttled.clone(), bytes::Bytes::new(), good_stream()]).await;
    let stream = client_at(&url, quick_retry())
        .converse_stream("bedrock/mock.text", &hello(), &RequestParams::default())
        .await
        .expect("retried to success");
    let (events, result, _) = drain(stream).await;
    assert!(
        matches!(events.first(), Some(ChatEvent::MessageStart { .. })),
        "the first event is kept"
    );
    assert_eq!(result.expect("complete").text(), "after retry");
    assert_eq!(count.load(Ordering::SeqCst), 3);

    // Without retries the exception is the error of the call itself.
    let (url, count) = sequence_server(vec![throttled]).await;
    let err = client_at(&url, RetryPolicy::none())
        .converse_stream("bedrock/mock.text", &hello(), &RequestParams::default())
        .await
        .expect_err("throttled");
    assert!(
        matches!(&err, ClientError::Stream(StreamError::Service(e)) if e.kind == ExceptionKind::Throttling),
        "{err:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // A validation exception is not retried.
    let invalid = frame("exception", "validationException", r#"{"message":"bad"}"#);
    let (url, count) = sequence_server(vec![invalid, good_stream()]).await;
    let err = client_at(&url, quick_retry())
        .converse_stream("bedrock/mock.text", &hello(), &RequestParams::default())
        .await
        .expect_err("invalid");
    assert_eq!(err.error_type(), Some("validationException"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}
