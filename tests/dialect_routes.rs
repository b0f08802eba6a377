//! The gateway's OpenAI and Anthropic routes over loopback TCP, in front of the built-in
//! server: keys, 400s naming the field, `/v1/models`, streams and their failures,
//! retries before the first byte, pings, metrics.

#![cfg(all(feature = "proxy", feature = "server"))]

mod common;
#[path = "common/socket.rs"]
mod socket;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bedrock_converse::client::{Config, ModelConfig, ProviderConfig};
use bedrock_converse::proxy::{
    ConnectionClose, DialectRoute, ProxyConfig, Rejection, StreamCut, DIALECT_ATTEMPTS,
};
use bedrock_converse::server::{MockBedrock, MockBedrockHandle};
use serde_json::{json, Value};

use common::Gateway;

const CLIENT_KEY: &str = "client-secret-1";
const UPSTREAM_KEY: &str = "upstream-secret";

async fn mock() -> MockBedrockHandle {
    MockBedrock::builder()
        .bearer_key(UPSTREAM_KEY)
        .stall_duration(Duration::from_secs(30))
        .start()
        .await
        .expect("mock server")
}

/// A gateway in front of `server` with the aliases `text` (`mock.text`) and `tools`
/// (`mock.tools`), region prefix on (as a client config has it).
async fn gateway(server: &MockBedrockHandle, idle: Duration) -> Gateway {
    gateway_with(server, idle, &[]).await
}

/// [`gateway`] with more aliases: `(alias, model id, extraPayload)`.
async fn gateway_with(server: &MockBedrockHandle, idle: Duration, more: &[(&str, &str, Value)]) -> Gateway {
    gateway_at(&server.url(), idle, more).await
}

/// [`gateway_with`] in front of the server at `upstream` (its `/model/` URL).
async fn gateway_at(upstream: &str, idle: Duration, more: &[(&str, &str, Value)]) -> Gateway {
    let mut c = common::gateway_config(upstream, UPSTREAM_KEY, CLIENT_KEY);
    c.timeouts.idle = idle;
    let mut provider = ProviderConfig::new("bedrock", "us-east-1").with_url(upstream);
    let usual = [
        ("text", "mock.text", json!({})),
        ("tools", "mock.tools", json!({})),
    ];
    for (alias, id, extra) in usual.iter().chain(more) {
        let Value::Object(extra) = extra.clone() else {
            panic!("an extraPayload is an object")
        };
        provider.models.insert(
            (*alias).to_owned(),
            ModelConfig {
                model_name: (*id).to_owned(),
                extra_payload: extra,
                region_prefix: None,
                api: Default::default(),
            },
        );
    }
    c.models = Config::with_provider(provider);
    Gateway::start(c).await
}

/// The gateway config in front of `server`: its upstream key, the client key `team-a`.
fn config_for(server: &MockBedrockHandle) -> ProxyConfig {
    common::gateway_config(&server.url(), UPSTREAM_KEY, CLIENT_KEY)
}

fn url(gw: &Gateway, path: &str) -> String {
    format!("http://{}{path}", gw.addr)
}

async fn post_openai(gw: &Gateway, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url(gw, "/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.expect("request")
}

async fn post_anthropic(gw: &Gateway, headers: &[(&str, &str)], body: Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url(gw, "/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("request")
}

fn chat(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hello there"}],
    })
}

fn message(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello there"}],
    })
}

/// A response body as JSON.
async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON body")
}

/// The JSON payloads of `data:` lines (not `[DONE]`).
fn data_events(sse: &str) -> Vec<Value> {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("data is JSON"))
        .collect()
}

/// The `event:` names in order.
fn event_names(sse: &str) -> Vec<&str> {
    sse.lines().filter_map(|l| l.strip_prefix("event: ")).collect()
}

#[tokio::test]
async fn openai_keys_are_checked_in_openai_shape() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    let missing = post_openai(&gw, None, chat("text", false)).await;
    assert_eq!(missing.status(), 401);
    let body: Value = json_of(missing).await;
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    let unknown = post_openai(&gw, Some("nope"), chat("text", false)).await;
    assert_eq!(unknown.status(), 403);
    let body: Value = json_of(unknown).await;
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    assert_eq!(gw.proxy.metrics().rejected(Rejection::MissingKey), 1);
    assert_eq!(gw.proxy.metrics().rejected(Rejection::UnknownKey), 1);
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn anthropic_takes_x_api_key_or_bearer() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    let bearer = format!("Bearer {CLIENT_KEY}");
    for headers in [[("x-api-key", CLIENT_KEY)], [("authorization", bearer.as_str())]] {
        let r = post_anthropic(&gw, &headers, message("text", false)).await;
        assert_eq!(r.status(), 200);
        let body: Value = json_of(r).await;
        assert_eq!(body["type"], "message", "{body}");
        assert!(body["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Hello there"));
    }
    let r = post_anthropic(&gw, &[("x-api-key", "wrong")], message("text", false)).await;
    assert_eq!(r.status(), 403);
    let body: Value = json_of(r).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error");
    let r = post_anthropic(&gw, &[], message("text", false)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(gw.proxy.metrics().dialect_requests(DialectRoute::Messages), 2);
}

#[tokio::test]
async fn unhonourable_fields_are_400s_naming_the_field() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    let mut body = chat("text", false);
    body["n"] = json!(2);
    let r = post_openai(&gw, Some(CLIENT_KEY), body).await;
    assert_eq!(r.status(), 400);
    let err: Value = json_of(r).await;
    assert_eq!(err["error"]["param"], "n", "{err}");
    assert_eq!(err["error"]["type"], "invalid_request_error");

    let mut body = message("text", false);
    body["mcp_servers"] = json!([{"type": "url", "url": "https://x", "name": "x"}]);
    let r = post_anthropic(&gw, &[("x-api-key", CLIENT_KEY)], body).await;
    assert_eq!(r.status(), 400);
    let err: Value = json_of(r).await;
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("mcp_servers"),
        "{err}"
    );

    let r = post_openai(&gw, Some(CLIENT_KEY), chat("", false)).await;
    assert_eq!(r.status(), 400);
    let err: Value = json_of(r).await;
    assert_eq!(err["error"]["param"], "model", "{err}");
    assert_eq!(gw.proxy.metrics().rejected(Rejection::Untranslatable), 3);
    assert_eq!(server.request_count(), 0, "nothing went upstream");
}

#[tokio::test]
async fn models_lists_the_aliases_in_either_shape() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    let client = reqwest::Client::new();
    let r = client
        .get(url(&gw, "/v1/models"))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = json_of(r).await;
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bedrock/text", "bedrock/tools"]);
    let r = client
        .get(url(&gw, "/v1/models"))
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let body: Value = json_of(r).await;
    assert_eq!(body["data"][1]["type"], "model");
    assert_eq!(body["last_id"], "bedrock/tools");
    let r = client.get(url(&gw, "/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn aliases_and_raw_ids_resolve_as_the_client_does() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    for model in ["bedrock/tools", "tools", "mock.tools", "us.mock.tools"] {
        let r = post_openai(&gw, Some(CLIENT_KEY), chat(model, false)).await;
        assert_eq!(r.status(), 200, "{model}");
        let body: Value = json_of(r).await;
        assert_eq!(body["model"], model);
        assert_eq!(
            body["choices"][0]["finish_reason"], "tool_calls",
            "{model}: {body}"
        );
    }
}

#[tokio::test]
async fn openai_stream_carries_text_then_done() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    let mut body = chat("text", true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post_openai(&gw, Some(CLIENT_KEY), body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let sse = r.text().await.unwrap();
    assert!(sse.ends_with("data: [DONE]\n\n"), "{sse}");
    let events = data_events(&sse);
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(text.contains("You said: \"Hello there\""), "{text}");
    let usage = events.last().unwrap();
    assert!(usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(
        gw.proxy.metrics().dialect_requests(DialectRoute::ChatCompletions),
        1
    );
    assert!(gw
        .proxy
        .metrics()
        .render()
        .contains("route=\"/v1/chat/completions\"} 1"));
}

/// A TCP relay to `to` that counts the connections it accepted; its address.
async fn counting_relay(to: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, accepted)
}

/// Both dialects' streams leave their upstream connection to the next request: the
/// Anthropic stream ends at `metadata`, before upstream's body does, and its last bytes
/// are still read (a body dropped unread closes its connection, and every request paid
/// a new one before its first byte).
#[tokio::test]
async fn translated_streams_reuse_their_upstream_connection() {
    let server = mock().await;
    let (relay, accepted) = counting_relay(server.addr()).await;
    let gw = gateway_at(&format!("http://{relay}/model/"), Duration::from_secs(5), &[]).await;
    for _ in 0..3 {
        let r = post_anthropic(&gw, &[("x-api-key", CLIENT_KEY)], message("text", true)).await;
        assert_eq!(r.status(), 200);
        let sse = r.text().await.unwrap();
        assert_eq!(event_names(&sse).last(), Some(&"message_stop"), "{sse}");
        let r = post_openai(&gw, Some(CLIENT_KEY), chat("text", true)).await;
        assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    }
    assert_eq!(server.request_count(), 6);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection for six streams"
    );
}

#[tokio::test]
async fn a_mid_stream_exception_follows_what_came_before() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    let r = post_openai(&gw, Some(CLIENT_KEY), chat("mock.exception", true)).await;
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    let events = data_events(&sse);
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(text.starts_with("Let me start answering"), "{sse}");
    let last = events.last().unwrap();
    assert!(last["error"]["message"].is_string(), "{sse}");

    let r = post_anthropic(
        &gw,
        &[("x-api-key", CLIENT_KEY)],
        message("mock.throttling-exception", true),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    let names = event_names(&sse);
    assert_eq!(names.first(), Some(&"message_start"), "{sse}");
    assert_eq!(names.last(), Some(&"error"), "{sse}");
    assert!(names.contains(&"content_block_delta"));
    assert!(!names.contains(&"message_stop"));
    // Bytes had reached the client: no retry.
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn http_errors_map_to_the_dialect_and_retries_stop_at_the_limit() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    let r = post_openai(&gw, Some(CLIENT_KEY), chat("mock.http-error", true)).await;
    assert_eq!(r.status(), 400);
    let err: Value = json_of(r).await;
    assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
    assert_eq!(server.request_count(), 1, "a 400 is not retried");

    let r = post_anthropic(
        &gw,
        &[("x-api-key", CLIENT_KEY)],
        message("mock.server-error", false),
    )
    .await;
    assert_eq!(r.status(), 500);
    let err: Value = json_of(r).await;
    assert_eq!(err["error"]["type"], "api_error", "{err}");
    assert_eq!(server.request_count(), 1 + DIALECT_ATTEMPTS as usize);
}

#[tokio::test]
async fn throttling_before_the_first_byte_is_retried() {
    let server = mock().await;
    let gw = gateway(&server, Duration::from_secs(5)).await;
    // `throttle-then-ok`: two 429s, then the text.
    let r = post_anthropic(
        &gw,
        &[("x-api-key", CLIENT_KEY)],
        message("mock.throttle-then-ok", true),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    assert_eq!(event_names(&sse).last(), Some(&"message_stop"), "{sse}");
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn a_quiet_upstream_gets_pings_then_an_error_event() {
    let server = mock().await;
    // `stall`: a few frames, then silence; pings every half idle timeout.
    let gw = gateway(&server, Duration::from_millis(400)).await;
    let r = post_anthropic(&gw, &[("x-api-key", CLIENT_KEY)], message("mock.stall", true)).await;
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    let names = event_names(&sse);
    let first_error = names.iter().position(|n| *n == "error").expect("an error event");
    assert_eq!(first_error, names.len() - 1, "{sse}");
    // One ping after message_start, at least one more while upstream was quiet.
    assert!(names.iter().filter(|n| **n == "ping").count() >= 2, "{sse}");
    let error = data_events(&sse).pop().unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error", "{error}");
}

#[tokio::test]
async fn an_alias_extra_payload_reaches_upstream_under_the_request() {
    let server = mock().await;
    let extra = json!({"temperature": 0.2, "top_k": 7, "stream": false,
        "additionalModelRequestFields": {"x": 1}});
    let gw = gateway_with(&server, Duration::from_secs(5), &[("tuned", "mock.text", extra)]).await;
    for stream in [false, true] {
        let mut body = chat("bedrock/tuned", stream);
        body["temperature"] = json!(0.5);
        let r = post_openai(&gw, Some(CLIENT_KEY), body).await;
        assert_eq!(r.status(), 200, "stream {stream}");
        r.text().await.unwrap();
        let sent: Value = serde_json::from_slice(&server.last_request().unwrap().body).unwrap();
        // The request's temperature wins; the alias's keys are merged in Converse shape.
        assert_eq!(sent["inferenceConfig"]["temperature"], 0.5, "{sent}");
        assert_eq!(
            sent["additionalModelRequestFields"],
            json!({"x": 1, "top_k": 7}),
            "{sent}"
        );
        assert!(sent.get("stream").is_none(), "{sent}");
        assert_eq!(sent["messages"][0]["role"], "user", "{sent}");
        let op = if stream { "converse-stream" } else { "converse" };
        assert!(
            server.last_request().unwrap().uri.ends_with(op),
            "stream {stream}"
        );
    }
    // Anthropic clients get the same merge.
    let r = post_anthropic(&gw, &[("x-api-key", CLIENT_KEY)], message("tuned", true)).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let sent: Value = serde_json::from_slice(&server.last_request().unwrap().body).unwrap();
    assert_eq!(sent["inferenceConfig"]["temperature"], 0.2, "{sent}");
    assert_eq!(sent["additionalModelRequestFields"]["top_k"], 7, "{sent}");
    // An alias without one sends the translated request as it is.
    let r = post_openai(&gw, Some(CLIENT_KEY), chat("text", false)).await;
    assert_eq!(r.status(), 200);
    let sent: Value = serde_json::from_slice(&server.last_request().unwrap().body).unwrap();
    assert!(sent.get("additionalModelRequestFields").is_none(), "{sent}");
}

/// A gateway in front of `server` (raw model ids only) with its stream cap and timeouts.
async fn gateway_limited(
    server: &MockBedrockHandle,
    streams: usize,
    idle: Duration,
    total: Duration,
) -> Gateway {
    let mut c = config_for(server);
    c.timeouts.idle = idle;
    c.timeouts.total = total;
    c.max_concurrent_streams = streams;
    Gateway::start(c).await
}

/// A server whose `long` stream is far more SSE than the socket buffers hold, and a
/// gateway for two streams with a 300 ms idle (and write stall) timeout in front of it.
async fn long_stream_gateway() -> (MockBedrockHandle, Gateway) {
    let server = MockBedrock::builder()
        .bearer_key(UPSTREAM_KEY)
        .long_deltas(200_000)
        .start()
        .await
        .expect("mock server");
    let gw = gateway_limited(&server, 2, Duration::from_millis(300), Duration::from_secs(60)).await;
    (server, gw)
}

/// Waits until `n` streams were cut for a slow reader and no stream holds a slot.
/// Under a loaded machine the gateway fills the socket buffers slowly (a debug build
/// streaming megabytes of SSE), so the wait allows up to 30 s; a healthy run takes under one.
async fn slow_readers_cut(gw: &Gateway, n: u64) {
    let m = gw.proxy.metrics();
    assert!(
        common::eventually(1500, || m.cuts(StreamCut::SlowReader) == n).await,
        "every client that stopped reading is cut (so far: {})",
        m.cuts(StreamCut::SlowReader)
    );
    assert!(common::eventually(250, || m.streams_in_flight() == 0).await);
}

/// The response body is read by the connection itself: a client that stops reading
/// would hold its slot for ever if nothing else watched it.
#[tokio::test]
async fn clients_that_stop_reading_a_translated_stream_lose_their_slot() {
    let (_server, gw) = long_stream_gateway().await;
    let body = chat("mock.long", true).to_string();
    let request = socket::post_request("/v1/chat/completions", CLIENT_KEY, &body);
    let mut readers = Vec::new();
    for _ in 0..2 {
        readers.push(socket::send_and_never_read(gw.addr, &request).await);
    }
    slow_readers_cut(&gw, 2).await;
    // Caught where the native routes catch it: at the connection, given up once each.
    let m = gw.proxy.metrics();
    assert_eq!(m.connections_closed(ConnectionClose::SlowReader), 2);
    // The slots are free: a client that reads is served, whole.
    let r = post_openai(&gw, Some(CLIENT_KEY), chat("mock.text", true)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    drop(readers);
}

/// HTTP/2 clients that take the response head of a translated stream and never read its
/// body: each stream's window stays shut while the connection stays healthy, so the
/// connection-level watch cannot see it; each stream is still cut and its slot freed.
#[tokio::test]
async fn http2_translated_streams_left_unread_lose_their_slot() {
    let (_server, gw) = long_stream_gateway().await;
    let h2 = socket::http2_small_stream_windows();
    let send = |model: &str| {
        h2.post(url(&gw, "/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .body(chat(model, true).to_string())
            .send()
    };
    let mut unread = Vec::new();
    for _ in 0..2 {
        let resp = send("mock.long").await.unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        // Never read.
        unread.push(resp);
    }
    slow_readers_cut(&gw, 2).await;
    // The same connection serves a stream that is read, whole.
    let ok = send("mock.text").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    drop(unread);
}

/// A reading client of a stream that runs past the total timeout gets the dialect's
/// error event after what came before it, and the slot is freed.
#[tokio::test]
async fn a_translated_stream_past_the_total_timeout_ends_with_an_error_event() {
    let slow = MockBedrock::builder().frame_delay(Duration::from_millis(100));
    let server = common::mock_from(slow, UPSTREAM_KEY).await;
    let gw = gateway_limited(&server, 4, Duration::from_secs(5), Duration::from_millis(400)).await;
    let r = post_openai(&gw, Some(CLIENT_KEY), chat("mock.text", true)).await;
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    let events = data_events(&sse);
    assert!(events.len() >= 2, "{sse}");
    let last = events.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("total timeout"),
        "{sse}"
    );
    assert!(!sse.contains("[DONE]"), "{sse}");
    let m = gw.proxy.metrics();
    assert_eq!(m.cuts(StreamCut::Total), 1);
    assert!(common::eventually(250, || m.streams_in_flight() == 0).await);
}
