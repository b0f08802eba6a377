//! The signing gateway over real loopback TCP: byte-exact forwarding, key checks,
//! limits, upstream corruption, stalls and client disconnects.

#![cfg(feature = "proxy")]

mod common;
/// The official SDK client (its own file: only the tests that use it compile the SDK).
#[path = "common/sdk.rs"]
mod sdk;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use bedrock_converse::client::Secret;
use bedrock_converse::eventstream::{EventStreamCodec, Message, MessageBuilder};
use bedrock_converse::proxy::{ProxyConfig, Rejection};
use bedrock_converse::server::{MockBedrock, MockBedrockHandle};

const CLIENT_KEY: &str = "client-secret-1";
const UPSTREAM_KEY: &str = "upstream-secret";

use common::Gateway;

fn config_for(upstream: &str) -> ProxyConfig {
    let mut c = common::gateway_config(upstream, UPSTREAM_KEY, CLIENT_KEY);
    c.timeouts.idle = Duration::from_millis(300);
    c
}

async fn mock() -> MockBedrockHandle {
    common::mock_from(
        MockBedrock::builder().stall_duration(Duration::from_secs(30)),
        UPSTREAM_KEY,
    )
    .await
}

fn request_body(text: &str) -> String {
    serde_json::json!({
        "messages": [{ "role": "user", "content": [{ "text": text }] }],
        "inferenceConfig": { "maxTokens": 256 }
    })
    .to_string()
}

async fn post(url: &str, key: Option<&str>, body: String) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    req.send().await.expect("request")
}

fn decode_all(body: &[u8]) -> (Vec<Message>, Option<String>) {
    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::from(body);
    let mut out = Vec::new();
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

/// A fixed upstream answering every converse-stream with `body`, recording the
/// `Authorization` it saw.
async fn fixed_upstream(body: Bytes) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use axum::routing::post;
    let (seen_tx, seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/model/{id}/converse-stream",
        post(move |headers: axum::http::HeaderMap| {
            let body = body.clone();
            let seen_tx = seen_tx.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let _ = seen_tx.send(auth);
                ([("content-type", "application/vnd.amazon.eventstream")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen_rx)
}

fn capture(name: &str) -> Option<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/captures")
        .join(name);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if std::env::var_os("CI").is_some() => panic!("{} is needed in CI: {e}", path.display()),
        Err(_) => {
            eprintln!("skipping: {} not found", path.display());
            None
        }
    }
}

#[tokio::test]
async fn real_capture_passes_through_byte_for_byte() {
    let Some(wire) = capture("envoy-ai-gateway_claude-cosine-tool-use.bin") else {
        return;
    };
    let (upstream, mut seen) = fixed_upstream(Bytes::from(wire.clone())).await;
    let gw = Gateway::start(config_for(&format!("http://{upstream}/model/"))).await;
    let resp = post(
        &gw.url(
            "us.anthropic.claude-3-5-sonnet-20241022-v2%3A0",
            "converse-stream",
        ),
        Some(CLIENT_KEY),
        request_body("hi"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/vnd.amazon.eventstream"
    );
    let body = resp.bytes().await.unwrap();
    assert_eq!(
        body.as_ref(),
        wire.as_slice(),
        "the proxy must forward the same bytes"
    );
    // The client's key never goes upstream; the configured upstream key does.
    assert_eq!(seen.recv().await.unwrap(), format!("Bearer {UPSTREAM_KEY}"));
    assert_eq!(gw.proxy.metrics().frames(), 25);
}

#[tokio::test]
async fn streams_and_json_match_the_direct_answer() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    for op in ["converse-stream", "converse"] {
        let direct = post(
            &format!("{}us-east-1.mock.text/{op}", server.url()),
            Some(UPSTREAM_KEY),
            request_body("compare me"),
        )
        .await;
        let proxied = post(
            &gw.url("us-east-1.mock.text", op),
            Some(CLIENT_KEY),
            request_body("compare me"),
        )
        .await;
        assert_eq!(direct.status(), 200);
        assert_eq!(proxied.status(), 200);
        assert_eq!(
            direct.headers().get("content-type"),
            proxied.headers().get("content-type")
        );
        let (direct, proxied) = (direct.bytes().await.unwrap(), proxied.bytes().await.unwrap());
        if op == "converse" {
            let strip = |b: &[u8]| {
                let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["metrics"].take();
                v
            };
            assert_eq!(strip(&direct), strip(&proxied));
        } else {
            let (d, derr) = decode_all(&direct);
            let (p, perr) = decode_all(&proxied);
            assert_eq!((derr, perr), (None, None));
            assert_eq!(d.len(), p.len());
            for (d, p) in d.iter().zip(&p) {
                assert_eq!(d.event_type(), p.event_type());
                if d.event_type() != Some("metadata") {
                    assert_eq!(d.as_bytes(), p.as_bytes());
                }
            }
        }
    }
    let metrics = gw.metrics_text(CLIENT_KEY).await;
    assert!(metrics.contains("bedrock_proxy_requests_total{operation=\"converse-stream\"} 1"));
    assert!(metrics.contains("bedrock_proxy_tokens_total{kind=\"input\"}"));
}

#[tokio::test]
async fn keys_paths_and_body_size_are_enforced() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.max_body_bytes = 1024;
    let gw = Gateway::start(config).await;
    let url = gw.url("us-east-1.mock.text", "converse-stream");

    let missing = post(&url, None, request_body("x")).await;
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().get("x-amzn-errortype").is_some());
    let body: serde_json::Value = serde_json::from_slice(&missing.bytes().await.unwrap()).unwrap();
    assert!(body["message"].as_str().unwrap().contains("Bearer"));

    let wrong = post(&url, Some("client-secret-2"), request_body("x")).await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(wrong.headers()["x-amzn-errortype"], "AccessDeniedException");

    let other = post(
        &format!("http://{}/model/x/start-async-invoke", gw.addr),
        Some(CLIENT_KEY),
        request_body("x"),
    )
    .await;
    assert_eq!(other.status(), 404);
    let get = reqwest::get(&url).await.unwrap();
    assert_eq!(get.status(), 404);

    let big = post(&url, Some(CLIENT_KEY), request_body(&"y".repeat(4096))).await;
    assert_eq!(big.status(), 413);

    assert_eq!(server.request_count(), 0, "nothing refused may reach upstream");
    let m = gw.proxy.metrics();
    assert_eq!(m.rejected(Rejection::MissingKey), 1);
    assert_eq!(m.rejected(Rejection::UnknownKey), 1);
    assert_eq!(m.rejected(Rejection::NotFound), 2);
    assert_eq!(m.rejected(Rejection::BodyTooLarge), 1);
}

#[tokio::test]
async fn stream_cap_answers_429_throttling() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.max_concurrent_streams = 1;
    config.timeouts.idle = Duration::from_secs(20);
    let gw = Gateway::start(config).await;
    let held = post(
        &gw.url("us-east-1.mock.stall", "converse-stream"),
        Some(CLIENT_KEY),
        request_body("hold"),
    )
    .await;
    assert_eq!(held.status(), 200);
    let second = post(
        &gw.url("us-east-1.mock.text", "converse-stream"),
        Some(CLIENT_KEY),
        request_body("x"),
    )
    .await;
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["x-amzn-errortype"], "ThrottlingException");
    drop(held);
    // Once the first stream is gone, the slot is free again.
    let mut status = 0;
    for _ in 0..100 {
        let r = post(
            &gw.url("us-east-1.mock.text", "converse-stream"),
            Some(CLIENT_KEY),
            request_body("x"),
        )
        .await;
        status = r.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn corrupt_upstream_frame_ends_with_an_exception_frame() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let resp = post(
        &gw.url("us-east-1.mock.corrupt-crc", "converse-stream"),
        Some(CLIENT_KEY),
        request_body("x"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (frames, err) = decode_all(&resp.bytes().await.unwrap());
    assert_eq!(err, None, "the client must get a well-formed stream");
    assert_eq!(frames.len(), 3, "two good frames, then the exception frame");
    let last = frames.last().unwrap();
    assert_eq!(last.message_type(), Some("exception"));
    assert_eq!(last.exception_type(), Some("internalServerException"));
    let msg: serde_json::Value = serde_json::from_slice(last.payload()).unwrap();
    assert!(msg["message"].as_str().unwrap().contains("checksum"), "{msg}");
}

#[tokio::test]
async fn truncated_and_stalled_upstreams_end_with_exception_frames() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    for (scenario, exception) in [
        ("truncated", "internalServerException"),
        ("stall", "serviceUnavailableException"),
    ] {
        let resp = post(
            &gw.url(&format!("us-east-1.mock.{scenario}"), "converse-stream"),
            Some(CLIENT_KEY),
            request_body("x"),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let (frames, err) = decode_all(&resp.bytes().await.unwrap());
        assert_eq!(err, None, "{scenario}: well-formed stream");
        assert!(
            frames.len() >= 2,
            "{scenario}: frames before the failure are kept"
        );
        let last = frames.last().unwrap();
        assert_eq!(last.message_type(), Some("exception"), "{scenario}");
        assert_eq!(last.exception_type(), Some(exception), "{scenario}");
    }
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.timeouts.idle = Duration::from_secs(20);
    let gw = Gateway::start(config).await;
    let mut resp = post(
        &gw.url("us-east-1.mock.stall", "converse-stream"),
        Some(CLIENT_KEY),
        request_body("x"),
    )
    .await;
    assert!(resp.chunk().await.unwrap().is_some(), "some frames arrive");
    assert_eq!(gw.proxy.metrics().streams_in_flight(), 1);
    drop(resp);
    let mut in_flight = 1;
    for _ in 0..200 {
        in_flight = gw.proxy.metrics().streams_in_flight();
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        in_flight, 0,
        "the upstream request must be dropped with the client"
    );
}

#[tokio::test]
async fn upstream_http_errors_pass_through_with_their_type() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let resp = post(
        &gw.url("us-east-1.mock.http-error", "converse-stream"),
        Some(CLIENT_KEY),
        request_body("x"),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let t = resp.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
    assert!(t.starts_with("ValidationException"), "{t}");
    assert_eq!(gw.proxy.metrics().upstream_errors("ValidationException"), 1);
}

#[test]
fn exception_frames_are_what_the_codec_reads() {
    let frame = bedrock_converse::proxy::exception_frame("throttlingException", "slow down");
    let again = MessageBuilder::new()
        .string_header(":exception-type", "throttlingException")
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "exception")
        .build(br#"{"message":"slow down"}"#)
        .unwrap();
    assert_eq!(frame, again);
}

/// The one user message the SDK tests send.
fn sdk_prompt() -> aws_sdk_bedrockruntime::types::Message {
    use aws_sdk_bedrockruntime::types::{ContentBlock, ConversationRole, Message};
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text("through the gateway".into()))
        .build()
        .expect("a valid message")
}

/// What the official SDK read from one ConverseStream call: the text, the event kinds
/// and the stop reason.
async fn sdk_stream(endpoint: String, key: &str, model: &str) -> (String, Vec<String>, Option<String>) {
    use aws_sdk_bedrockruntime::types::{ContentBlockDelta, ConverseStreamOutput};
    let client = sdk::bearer_client(endpoint, key);
    let mut out = client
        .converse_stream()
        .model_id(model)
        .messages(sdk_prompt())
        .send()
        .await
        .expect("converse_stream");
    let (mut text, mut kinds, mut stop) = (String::new(), Vec::new(), None);
    while let Some(event) = out.stream.recv().await.expect("event") {
        let kind = match &event {
            ConverseStreamOutput::MessageStart(_) => "messageStart",
            ConverseStreamOutput::ContentBlockStart(_) => "contentBlockStart",
            ConverseStreamOutput::ContentBlockDelta(d) => {
                if let Some(ContentBlockDelta::Text(t)) = d.delta() {
                    text.push_str(t);
                }
                "contentBlockDelta"
            }
            ConverseStreamOutput::ContentBlockStop(_) => "contentBlockStop",
            ConverseStreamOutput::MessageStop(s) => {
                stop = Some(s.stop_reason().as_str().to_owned());
                "messageStop"
            }
            ConverseStreamOutput::Metadata(_) => "metadata",
            _ => "other",
        };
        kinds.push(kind.to_owned());
    }
    (text, kinds, stop)
}

#[tokio::test]
async fn official_sdk_gets_through_the_proxy_what_it_gets_directly() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let direct = sdk_stream(server.endpoint(), UPSTREAM_KEY, "us-east-1.mock.text").await;
    let proxied = sdk_stream(format!("http://{}", gw.addr), CLIENT_KEY, "us-east-1.mock.text").await;
    assert!(!direct.0.is_empty());
    assert_eq!(direct, proxied);
    assert_eq!(direct.2.as_deref(), Some("end_turn"));
}

#[tokio::test]
async fn upstream_requests_are_sigv4_signed_when_no_upstream_key_is_set() {
    use bedrock_converse::client::{Auth, AwsCredentials};
    let server = MockBedrock::builder()
        .sigv4_credentials("AKIDPROXYTEST", "proxy-test-secret")
        .start()
        .await
        .unwrap();
    let mut config = config_for(&server.url());
    config.upstream_auth = Auth::SigV4 {
        credentials: AwsCredentials {
            access_key_id: "AKIDPROXYTEST".to_owned(),
            secret_access_key: Secret::new("proxy-test-secret"),
            session_token: None,
        },
        region: "us-east-1".to_owned(),
    };
    let gw = Gateway::start(config).await;
    for op in ["converse-stream", "converse"] {
        let resp = post(
            &gw.url("us.anthropic.claude-3-5-sonnet-20241022-v2%3A0", op),
            Some(CLIENT_KEY),
            request_body("signed"),
        )
        .await;
        assert_eq!(resp.status(), 200, "{op}: the mock server verified the signature");
        let _ = resp.bytes().await.unwrap();
    }
    let seen = server.last_request().expect("recorded");
    let auth = seen
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDPROXYTEST/"),
        "{auth}"
    );
    assert!(!auth.contains(CLIENT_KEY));
}

#[tokio::test]
async fn oversized_json_answers_are_refused_not_buffered() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.limits = bedrock_converse::eventstream::Limits::default()
        .with_max_headers_len(0)
        .with_max_payload_len(64);
    let gw = Gateway::start(config).await;
    let resp = post(
        &gw.url("us-east-1.mock.text", "converse"),
        Some(CLIENT_KEY),
        request_body("a long answer"),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert_eq!(gw.proxy.metrics().upstream_errors("ReadFailed"), 1);
}

#[tokio::test]
async fn a_trickled_request_body_times_out_and_frees_its_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.max_concurrent_streams = 1;
    config.timeouts.first_byte = Duration::from_millis(200);
    config.timeouts.request_body = Duration::from_millis(200);
    let gw = Gateway::start(config).await;
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /model/us-east-1.mock.text/converse HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {CLIENT_KEY}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
        gw.addr
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer))
        .await
        .expect("an answer, not a hang")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(server.request_count(), 0);
    // The slot is free again.
    let ok = post(
        &gw.url("us-east-1.mock.text", "converse"),
        Some(CLIENT_KEY),
        request_body("x"),
    )
    .await;
    assert_eq!(ok.status(), 200);
}

/// Our own client, through the gateway and directly: the same assembled answers.
#[tokio::test]
async fn our_client_gets_through_the_proxy_what_it_gets_directly() {
    use bedrock_converse::client::{BedrockClient, ChatEvent, Config, RequestParams};
    use bedrock_converse::converse::{ConverseResponse, Message as ChatMessage};
    use futures_util::StreamExt;

    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let client = |url: String, key: &str| {
        let text = serde_json::json!({ "providers": { "bedrock": {
            "api": "bedrock", "url": url, "key": key, "region": "us-east-1"
        } } })
        .to_string();
        let config = Config::parse_with_env(&text, &|_| None).expect("config");
        BedrockClient::builder(config)
            .env(|_| None)
            .home(None)
            .build()
            .expect("client")
    };
    let direct = client(server.url(), UPSTREAM_KEY);
    let proxied = client(format!("http://{}/model/", gw.addr), CLIENT_KEY);
    let messages = [ChatMessage::user("the same, please")];
    let params = RequestParams::default();
    let normalise = |mut r: ConverseResponse| {
        r.metrics = None;
        serde_json::to_value(r).unwrap()
    };
    for model in ["bedrock/mock.text", "bedrock/mock.reasoning"] {
        let a = direct.converse(model, &messages, &params).await.expect("direct");
        let b = proxied
            .converse(model, &messages, &params)
            .await
            .expect("proxied");
        assert_eq!(normalise(a), normalise(b), "{model} /converse");

        let mut finals = Vec::new();
        for c in [&direct, &proxied] {
            let mut stream = c
                .converse_stream(model, &messages, &params)
                .await
                .expect("stream");
            let mut done = None;
            while let Some(event) = stream.next().await {
                if let ChatEvent::Done(r) = event.expect("event") {
                    done = Some(normalise(*r));
                }
            }
            finals.push(done.expect("a final response"));
        }
        assert_eq!(finals[0], finals[1], "{model} /converse-stream");
    }
}

/// The official SDK's non-streaming `converse`: the text and the stop reason.
async fn sdk_converse(endpoint: String, key: &str, model: &str) -> (String, String) {
    use aws_sdk_bedrockruntime::types::ConverseOutput;
    let out = sdk::bearer_client(endpoint, key)
        .converse()
        .model_id(model)
        .messages(sdk_prompt())
        .send()
        .await
        .expect("converse");
    let text = match out.output() {
        Some(ConverseOutput::Message(m)) => m
            .content()
            .iter()
            .filter_map(|b| b.as_text().ok().cloned())
            .collect::<String>(),
        _ => String::new(),
    };
    (text, out.stop_reason().as_str().to_owned())
}

#[tokio::test]
async fn official_sdk_converse_is_the_same_through_the_proxy() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let direct = sdk_converse(server.endpoint(), UPSTREAM_KEY, "us-east-1.mock.text").await;
    let proxied = sdk_converse(format!("http://{}", gw.addr), CLIENT_KEY, "us-east-1.mock.text").await;
    assert!(!direct.0.is_empty());
    assert_eq!(direct, proxied);
}
