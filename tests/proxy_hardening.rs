//! The gateway against an untrusted peer (issue 8), over loopback: slowloris and idle
//! connections, clients that never read, slow uploads, dot-segment model ids, upstream
//! redirects, the memory budget, and the open-files limit. Each test says what the
//! code before the fix did.

#![cfg(feature = "proxy")]

mod common;
#[path = "common/socket.rs"]
mod socket;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use bedrock_converse::client::Secret;
use bedrock_converse::client::{Auth, AwsCredentials};
use bedrock_converse::eventstream::MessageBuilder;
use bedrock_converse::proxy::{ConnectionClose, ProxyConfig, Rejection, StreamCut};
use bedrock_converse::server::{MockBedrock, MockBedrockHandle};

const CLIENT_KEY: &str = "client-secret-1";
const UPSTREAM_KEY: &str = "upstream-secret";
const SESSION_TOKEN: &str = "session-token-must-stay-home";

use common::{redirecting, witness, Gateway};

fn config_for(upstream: &str) -> ProxyConfig {
    common::gateway_config(upstream, UPSTREAM_KEY, CLIENT_KEY)
}

async fn mock() -> MockBedrockHandle {
    common::mock_with_key(UPSTREAM_KEY).await
}

fn request_body(text: &str) -> String {
    serde_json::json!({
        "messages": [{ "role": "user", "content": [{ "text": text }] }],
        "inferenceConfig": { "maxTokens": 64 }
    })
    .to_string()
}

async fn post(url: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .bearer_auth(CLIENT_KEY)
        .body(body)
        .send()
        .await
        .expect("request")
}

/// Sends raw bytes on a fresh connection and reads the whole answer (bounded).
async fn raw_exchange(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .expect("an answer, not a hang");
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the peer closed `tcp`: read gives 0 or an error.
async fn closed_within(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(wait, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // Some bytes (an error answer): keep reading to the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

// ===== hole 1: connection exhaustion =====

/// Old code: `axum::serve` without timers: 200 slowloris connections at one byte per
/// second were still open at 40 s, and idle connections stayed open for good.
#[tokio::test]
async fn slowloris_and_idle_connections_are_closed_by_their_timeouts() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.connections.header_read_timeout = Duration::from_millis(500);
    config.connections.keep_alive_idle = Duration::from_millis(500);
    let gw = Gateway::start(config).await;
    let addr = gw.addr;

    let mut tasks = Vec::new();
    // Slowloris: a request head trickled one byte every 50 ms, never finished.
    for _ in 0..50 {
        tasks.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let head = b"POST /model/m/converse HTTP/1.1\r\nhost: x\r\nx-pad: ".repeat(4);
            for byte in head.iter().cycle().take(400) {
                if tcp.write_all(&[*byte]).await.is_err()
                    || closed_within(&mut tcp, Duration::from_millis(50)).await
                {
                    return true;
                }
            }
            false
        }));
    }
    // Idle: connect and send nothing, over HTTP/1 and with an HTTP/2 preface only.
    for i in 0..50 {
        tasks.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            if i % 2 == 0 {
                let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
                tcp.write_all(preface).await.unwrap();
            }
            closed_within(&mut tcp, Duration::from_secs(10)).await
        }));
    }
    // An HTTP/1 keep-alive connection that served one request and then idles.
    let keep_alive = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /nothing HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        closed_within(&mut tcp, Duration::from_secs(10)).await
    });
    let mut closed = 0;
    for t in tasks {
        closed += usize::from(t.await.unwrap());
    }
    assert_eq!(closed, 100, "every slowloris and idle connection is closed");
    assert!(
        keep_alive.await.unwrap(),
        "an idle keep-alive connection is closed"
    );
    let m = gw.proxy.metrics();
    assert!(
        common::eventually(250, || m.connections_open() == 0).await,
        "{}",
        m.connections_open()
    );
    assert!(
        m.connections_closed(ConnectionClose::HeaderTimeout) + m.connections_closed(ConnectionClose::Idle)
            >= 25,
        "the preface-only HTTP/2 connections are closed by the watchdog"
    );
    // The gateway still serves.
    let ok = post(&gw.url("us-east-1.mock.text", "converse"), request_body("x")).await;
    assert_eq!(ok.status(), 200);
}

/// Old code: no cap; every accepted connection was kept. Past the cap a connection is
/// now closed as soon as it is accepted.
#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.connections.max_connections = 8;
    config.connections.header_read_timeout = Duration::from_secs(30);
    config.connections.keep_alive_idle = Duration::from_secs(30);
    let gw = Gateway::start(config).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(gw.addr).await.unwrap());
    }
    let m = gw.proxy.metrics();
    assert!(common::eventually(250, || m.connections_open() == 8).await);
    let mut extra = TcpStream::connect(gw.addr).await.unwrap();
    assert!(closed_within(&mut extra, Duration::from_secs(10)).await);
    assert_eq!(m.connections_closed(ConnectionClose::OverCap), 1);
    // A slot given back is usable again.
    drop(held.pop());
    assert!(common::eventually(250, || m.connections_open() == 7).await);
    let ok = post(&gw.url("us-east-1.mock.text", "converse"), request_body("x")).await;
    assert_eq!(ok.status(), 200);
}

// ===== hole 2: clients that stop reading =====

/// A fixed upstream: `/model/big/converse-stream` answers `big`, everything else a
/// small valid stream. Counts the requests it got.
async fn fixed_upstream(big: Bytes, small: Bytes) -> (SocketAddr, Arc<AtomicUsize>) {
    use axum::extract::Path;
    use axum::routing::post;
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().route(
        "/model/{id}/converse-stream",
        post(move |Path(id): Path<String>| {
            let body = if id == "big" { big.clone() } else { small.clone() };
            seen.fetch_add(1, Ordering::SeqCst);
            async move { ([("content-type", "application/vnd.amazon.eventstream")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

fn delta_frames(n: usize, text_len: usize) -> Bytes {
    let text = "x".repeat(text_len);
    let payload = serde_json::json!({ "contentBlockIndex": 0, "delta": { "text": text } }).to_string();
    let frame = MessageBuilder::new()
        .string_header(":event-type", "contentBlockDelta")
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(payload.as_bytes())
        .unwrap();
    let mut out = Vec::with_capacity(frame.as_bytes().len() * n);
    for _ in 0..n {
        out.extend_from_slice(frame.as_bytes());
    }
    Bytes::from(out)
}

/// Old code: the idle and total timeouts were checked only while the client polled
/// the body, so 32 clients that never read held every slot for as long as they liked
/// and everyone else got 429.
#[tokio::test]
async fn clients_that_never_read_lose_their_slot_at_the_deadline() {
    // 16 MiB of valid frames: far more than the socket buffers hold.
    let (addr, _) = fixed_upstream(delta_frames(1024, 16 * 1024), delta_frames(3, 8)).await;
    let mut config = config_for(&format!("http://{addr}/model/"));
    config.max_concurrent_streams = 4;
    config.timeouts.idle = Duration::from_millis(300);
    let gw = Gateway::start(config).await;
    let request = socket::post_request("/model/big/converse-stream", CLIENT_KEY, &request_body("x"));
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(socket::send_and_never_read(gw.addr, &request).await);
    }
    let m = gw.proxy.metrics();
    assert!(
        common::eventually(500, || m.cuts(StreamCut::SlowReader) == 4).await,
        "every non-reading client is cut (cut so far: {})",
        m.cuts(StreamCut::SlowReader)
    );
    assert!(common::eventually(250, || m.streams_in_flight() == 0).await);
    // Each stalled connection was given up, once.
    assert_eq!(m.connections_closed(ConnectionClose::SlowReader), 4);
    // The slots are free: a client that reads is served, whole.
    let ok = post(&gw.url("small", "converse-stream"), request_body("x")).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap(), delta_frames(3, 8));
    drop(readers);
}

/// HTTP/2 clients that take the response head and never read the body: each stream's
/// flow-control window stays shut while the connection itself stays healthy (it
/// answers pings, it could carry other streams), so the connection-level watch cannot
/// see it; each stream is still cut and its slot freed.
#[tokio::test]
async fn http2_streams_left_unread_lose_their_slot_at_the_deadline() {
    let (addr, _) = fixed_upstream(delta_frames(1024, 16 * 1024), delta_frames(3, 8)).await;
    let mut config = config_for(&format!("http://{addr}/model/"));
    config.max_concurrent_streams = 4;
    config.timeouts.idle = Duration::from_millis(300);
    let gw = Gateway::start(config).await;
    // Small stream windows, a large connection window: the unread streams shut their
    // own windows and leave the connection room for another stream.
    let h2 = socket::http2_small_stream_windows();
    let mut unread = Vec::new();
    for _ in 0..4 {
        let resp = h2
            .post(gw.url("big", "converse-stream"))
            .bearer_auth(CLIENT_KEY)
            .body(request_body("x"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        // Never read.
        unread.push(resp);
    }
    let m = gw.proxy.metrics();
    assert!(
        common::eventually(500, || m.cuts(StreamCut::SlowReader) == 4).await,
        "every unread stream is cut (cut so far: {})",
        m.cuts(StreamCut::SlowReader)
    );
    assert!(common::eventually(250, || m.streams_in_flight() == 0).await);
    // The same connection serves a stream that is read, whole.
    let ok = h2
        .post(gw.url("small", "converse-stream"))
        .bearer_auth(CLIENT_KEY)
        .body(request_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap(), delta_frames(3, 8));
    drop(unread);
}

/// A reading client of a stream that runs past the total timeout gets an exception
/// frame and a free slot. Old code: the total timeout was reqwest's, on the upstream
/// request only.
#[tokio::test]
async fn a_stream_past_the_total_timeout_ends_with_an_exception_frame() {
    let slow = MockBedrock::builder().frame_delay(Duration::from_millis(100));
    let server = common::mock_from(slow, UPSTREAM_KEY).await;
    let mut config = config_for(&server.url());
    config.timeouts.total = Duration::from_millis(400);
    let gw = Gateway::start(config).await;
    let resp = post(
        &gw.url("us-east-1.mock.text", "converse-stream"),
        request_body("x"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    let mut codec = bedrock_converse::eventstream::EventStreamCodec::new();
    let mut buf = bytes::BytesMut::from(&body[..]);
    let mut last = None;
    while let Ok(Some(m)) = tokio_util::codec::Decoder::decode_eof(&mut codec, &mut buf) {
        last = Some(m);
    }
    let last = last.expect("frames");
    assert_eq!(last.message_type(), Some("exception"), "{last:?}");
    let m = gw.proxy.metrics();
    assert!(common::eventually(250, || m.streams_in_flight() == 0).await);
}

// ===== hole 3: slow uploads =====

/// Old code: the permit was taken before the body was read but the in-flight gauge
/// moved only after it; the 408 was not counted anywhere.
#[tokio::test]
async fn a_slow_upload_is_visible_and_bounded() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.max_concurrent_streams = 1;
    config.timeouts.request_body = Duration::from_millis(600);
    let gw = Gateway::start(config).await;
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /model/us-east-1.mock.text/converse HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {CLIENT_KEY}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let m = gw.proxy.metrics();
    assert!(
        common::eventually(250, || m.streams_in_flight() == 1).await,
        "the upload holds a slot and shows in the gauge"
    );
    let metrics_text = gw.metrics_text(CLIENT_KEY).await;
    assert!(
        metrics_text.contains("bedrock_proxy_streams_in_flight 1\n"),
        "{metrics_text}"
    );
    // Trickle: a byte every 50 ms, until the gateway answers.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..200 {
        let _ = tcp.write_all(b" ").await;
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), tcp.read(&mut buf)).await {
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(m.rejected(Rejection::BodyTimeout), 1);
    assert!(common::eventually(250, || m.streams_in_flight() == 0).await);
    assert_eq!(server.request_count(), 0);
    let metrics_text = gw.metrics_text(CLIENT_KEY).await;
    assert!(metrics_text.contains("bedrock_proxy_rejected_total{reason=\"body_timeout\"} 1\n"));
}

/// A body that breaks off is a 400 counted as `body_read_failed`, not a 413. Old
/// code: every body-read error was a 413 counted as `body_too_large`.
#[tokio::test]
async fn body_read_errors_are_classified() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let bad_chunk = format!(
        "POST /model/us-east-1.mock.text/converse HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {CLIENT_KEY}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
    );
    let answer = raw_exchange(gw.addr, &bad_chunk).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let m = gw.proxy.metrics();
    assert_eq!(m.rejected(Rejection::BodyReadFailed), 1);
    assert_eq!(m.rejected(Rejection::BodyTooLarge), 0);
}

// ===== hole 4: dot segments =====

/// A recording upstream: every request line it gets.
async fn recording_upstream() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(uri.to_string());
            (
                [("content-type", "application/json")],
                r#"{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2}}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, seen)
}

/// Old code: `.` was not encoded and the URL parser normalised the built string:
/// `/model/%2e%2e/converse` reached the upstream as `/converse`, `.` and the empty id
/// as `/model/converse` and `/model//converse`; with a base of `/v1/model/`, `..`
/// walked to `/v1/converse`.
#[tokio::test]
async fn dot_segment_model_ids_are_refused_and_never_reach_upstream() {
    let (addr, seen) = recording_upstream().await;
    let gw = Gateway::start(config_for(&format!("http://{addr}/v1/model/"))).await;
    for id in ["%2e%2e", "%2E%2E", "%2e%2E", ".%2e", "%2e", "%2E", "."] {
        for op in ["converse", "converse-stream"] {
            let request = format!(
                "POST /model/{id}/{op} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {CLIENT_KEY}\r\n\
                 content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            );
            let answer = raw_exchange(gw.addr, &request).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{id}/{op}: {answer}");
            assert!(answer.contains("ValidationException"), "{id}/{op}: {answer}");
        }
    }
    // `..` and the empty id as written (clients normalise `..` themselves, raw TCP does not).
    for path in [
        "/model/../converse",
        "/model//converse",
        "/model/%2e%2e/../converse",
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {CLIENT_KEY}\r\n\
             content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
        );
        let answer = raw_exchange(gw.addr, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 404"),
            "{path}: {answer}"
        );
    }
    assert_eq!(
        *seen.lock().unwrap(),
        Vec::<String>::new(),
        "nothing reached the upstream"
    );
    assert!(gw.proxy.metrics().rejected(Rejection::InvalidModelId) >= 14);
    // Everything else is one segment: `/` and `:` encoded, dots inside kept.
    let ok = post(&gw.url("a..b%2Fc:0", "converse"), "{}".to_owned()).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(*seen.lock().unwrap(), ["/v1/model/a..b%2Fc%3A0/converse"]);
}

// ===== hole 5: redirects =====

/// Old code: reqwest's default policy followed the 307 to the other host, re-sending
/// the signed request with `x-amz-security-token`, the prompt and a `Referer`.
#[tokio::test]
async fn upstream_redirects_are_never_followed() {
    let (elsewhere, contacts) = witness().await;
    for status in [301u16, 302, 303, 307, 308] {
        let (upstream, _) = redirecting(status, format!("http://{elsewhere}/steal")).await;
        let mut config = config_for(&format!("http://{upstream}/model/"));
        config.upstream_auth = Auth::SigV4 {
            credentials: AwsCredentials {
                access_key_id: "AKIDEXAMPLE".to_owned(),
                secret_access_key: Secret::new("secret"),
                session_token: Some(Secret::new(SESSION_TOKEN)),
            },
            region: "us-east-1".to_owned(),
        };
        let gw = Gateway::start(config).await;
        for op in ["converse", "converse-stream"] {
            let resp = post(&gw.url("m.x", op), request_body("the secret prompt")).await;
            assert_eq!(resp.status(), 502, "{status} {op}");
            assert!(resp.headers().get("location").is_none());
            let text = resp.text().await.unwrap();
            assert!(text.contains(&format!("HTTP {status}")), "{text}");
            assert!(
                !text.contains(&upstream.to_string()),
                "no upstream address: {text}"
            );
        }
        assert_eq!(gw.proxy.metrics().upstream_errors("Redirect"), 2);
    }
    assert_eq!(
        contacts.load(Ordering::SeqCst),
        0,
        "the redirect target was never contacted"
    );
}

/// Old code: 502/503 bodies carried reqwest's error text, upstream URL included.
#[tokio::test]
async fn error_bodies_do_not_reveal_the_upstream_address() {
    // A port with nothing listening.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = free.local_addr().unwrap();
    drop(free);
    let gw = Gateway::start(config_for(&format!("http://{dead}/internal/model/"))).await;
    let resp = post(&gw.url("m.x", "converse"), request_body("x")).await;
    assert_eq!(resp.status(), 503);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(&dead.port().to_string()), "{text}");
    assert!(!text.contains("internal"), "{text}");
}

// ===== smaller ones =====

/// Old code: `/metrics` answered anyone on the client port.
#[tokio::test]
async fn metrics_need_a_key_or_their_own_address() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let url = format!("http://{}/metrics", gw.addr);
    let anon = reqwest::get(&url).await.unwrap();
    assert_eq!(anon.status(), 401);
    let keyed = reqwest::Client::new()
        .get(&url)
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);

    let mut config = config_for(&server.url());
    config.metrics_key = Some("metrics-key".to_owned());
    let gw = Gateway::start(config).await;
    let url = format!("http://{}/metrics", gw.addr);
    let client_key = reqwest::Client::new()
        .get(&url)
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(client_key.status(), 403);
    let metrics_key = reqwest::Client::new()
        .get(&url)
        .bearer_auth("metrics-key")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics_key.status(), 200);

    let mut config = config_for(&server.url());
    config.metrics_listen = Some("127.0.0.1:0".to_owned());
    let gw = Gateway::start(config).await;
    let on_client_port = reqwest::Client::new()
        .get(format!("http://{}/metrics", gw.addr))
        .bearer_auth(CLIENT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(on_client_port.status(), 404);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    tokio::spawn(gw.proxy.clone().serve_metrics(listener, std::future::pending()));
    let own = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(own
        .text()
        .await
        .unwrap()
        .contains("bedrock_proxy_connections_open"));
}

/// Old code: of two `Authorization` headers the first won, and `BEARER` was refused.
#[tokio::test]
async fn authorization_is_parsed_per_rfc_9110() {
    let server = mock().await;
    let gw = Gateway::start(config_for(&server.url())).await;
    let url = gw.url("us-east-1.mock.text", "converse");
    let upper = reqwest::Client::new()
        .post(&url)
        .header("authorization", format!("BEARER {CLIENT_KEY}"))
        .body(request_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(upper.status(), 200);
    let two = format!(
        "POST /model/us-east-1.mock.text/converse HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {CLIENT_KEY}\r\n\
         authorization: Bearer other\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
    );
    let answer = raw_exchange(gw.addr, &two).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// Old code: a truncated `/converse` JSON answer was forwarded as a 200 with half a
/// body, which botocore turned into an empty success.
#[tokio::test]
async fn a_truncated_json_answer_is_a_502() {
    let app = axum::Router::new().fallback(|| async {
        (
            [("content-type", "application/json")],
            r#"{"output":{"message":{"role":"assistant","content":[{"te"#,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let gw = Gateway::start(config_for(&format!("http://{addr}/model/"))).await;
    let resp = post(&gw.url("m.x", "converse"), request_body("x")).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(gw.proxy.metrics().upstream_errors("IncompleteJson"), 1);
}

// ===== memory budget =====

/// Old code: every request buffered its whole body with no total bound. With a
/// 4 MiB budget, a 3 MiB body passes, and two at once cannot both be buffered.
#[tokio::test]
async fn buffered_bodies_stay_within_the_memory_budget() {
    let server = mock().await;
    let mut config = config_for(&server.url());
    config.max_buffered_bytes = 4 << 20;
    config.timeouts.request_body = Duration::from_secs(10);
    let gw = Gateway::start(config).await;
    // One upload holds 3 MiB of the budget (declared, then trickled).
    let mut held = TcpStream::connect(gw.addr).await.unwrap();
    let len = 3 << 20;
    let head = format!(
        "POST /model/us-east-1.mock.text/converse HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {CLIENT_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {len}\r\n\r\n{{"
    );
    held.write_all(head.as_bytes()).await.unwrap();
    let m = gw.proxy.metrics();
    assert!(common::eventually(250, || m.streams_in_flight() == 1).await);
    // A second 3 MiB body does not fit: 503, counted, before it is read.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(len - 12));
    let refused = post(&gw.url("us-east-1.mock.text", "converse"), big.clone()).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(m.rejected(Rejection::MemoryBudget), 1);
    // A small one still fits.
    let small = post(&gw.url("us-east-1.mock.text", "converse"), request_body("x")).await;
    assert_eq!(small.status(), 200);
    drop(held);
    assert!(common::eventually(250, || m.streams_in_flight() == 0).await);
    // With the first gone, the budget is back.
    let later = post(&gw.url("us-east-1.mock.text", "converse"), big).await;
    assert_ne!(later.status(), 503);
}
