//! The gateway's native-body routes (`/invoke`, `/invoke-with-response-stream`,
//! `/count-tokens`) in front of an upstream started here on 127.0.0.1, which answers
//! with frames from `bedrock_converse::invoke::encode` and records what it got.

#![cfg(feature = "proxy")]

mod common;
/// The official SDK client (its own file: only the tests that use it compile the SDK).
#[path = "common/sdk.rs"]
mod sdk;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use bedrock_converse::client::Auth;
use bedrock_converse::client::{sigv4_headers, AwsCredentials, Secret};
use bedrock_converse::converse::ExceptionKind;
use bedrock_converse::invoke::{
    chunk_frames, exception_frame, AnthropicContentBlock, AnthropicMessage, AnthropicUsage, ChunkDecoder,
    InvocationMetrics, FORWARDED_REQUEST_HEADERS,
};
use bedrock_converse::proxy::{ProxyConfig, Rejection};
use common::{decode_body, Gateway};

const CLIENT_KEY: &str = "client-secret-invoke";
const UPSTREAM_KEY: &str = "upstream-secret-invoke";
const AKID: &str = "AKIDINVOKETEST";
const SECRET: &str = "invoke-test-secret";
const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const NATIVE_BODY: &str = r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;
const INVOKE_ANSWER: &str = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hello"}],"usage":{"input_tokens":11,"output_tokens":7}}"#;

// ===== the upstream =====

/// One request the upstream received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    sigv4: bool,
    base: Arc<Mutex<String>>,
}

/// The message the upstream streams: 11 input and 7 output tokens.
fn message() -> AnthropicMessage {
    AnthropicMessage {
        id: "msg_bdrk_1".into(),
        content: vec![AnthropicContentBlock::Text {
            text: "Hello from the upstream, in pieces.".into(),
            citations: vec![],
        }],
        stop_reason: Some("end_turn".into()),
        usage: AnthropicUsage {
            input_tokens: 11,
            output_tokens: 7,
            ..Default::default()
        },
        invocation_metrics: Some(InvocationMetrics {
            input_token_count: 11,
            output_token_count: 7,
            invocation_latency: 120,
            first_byte_latency: 30,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The frames of [`message`], each as its wire bytes.
fn frames() -> Vec<Bytes> {
    chunk_frames(&message(), 6)
        .expect("frames")
        .into_iter()
        .map(|m| m.into_bytes())
        .collect()
}

/// Whether the request's signature is the one our signer computes for what arrived.
fn sigv4_verifies(base: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(time) = parse_amz_date(date) else {
        return false;
    };
    let signed = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_default();
    let mut names = Vec::new();
    for name in signed.split(';').filter(|n| *n != "x-amz-date") {
        let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        names.push((name, value));
    }
    let credentials = AwsCredentials {
        access_key_id: AKID.to_owned(),
        secret_access_key: Secret::new(SECRET),
        session_token: None,
    };
    let url = format!("{base}{uri}");
    let Ok(expected) = sigv4_headers(&credentials, "us-east-1", "POST", &url, &names, body, time) else {
        return false;
    };
    expected.iter().any(|(n, v)| *n == "authorization" && v == auth)
}

/// `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(9..11)?, n(11..13)?, n(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

async fn answer(
    State(up): State<Upstream>,
    Path((model, op)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorized = if up.sigv4 {
        let base = up.base.lock().unwrap().clone();
        sigv4_verifies(&base, &uri, &headers, &body)
    } else {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {UPSTREAM_KEY}"))
    };
    if !authorized {
        return (
            StatusCode::FORBIDDEN,
            [("x-amzn-errortype", "AccessDeniedException")],
            "{}",
        )
            .into_response();
    }
    up.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        headers: headers.clone(),
        body,
    });
    if model.contains("throttled") {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("content-type", "application/json"),
                (
                    "x-amzn-errortype",
                    "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                ),
            ],
            r#"{"message":"Too many requests, please wait before trying again."}"#,
        )
            .into_response();
    }
    match op.as_str() {
        "invoke" => (
            [
                ("content-type", "application/json"),
                ("x-amzn-bedrock-input-token-count", "11"),
                ("x-amzn-bedrock-output-token-count", "7"),
                ("x-amzn-bedrock-invocation-latency", "120"),
                ("x-amzn-requestid", "req-1"),
                ("x-upstream-internal", "not for clients"),
            ],
            INVOKE_ANSWER,
        )
            .into_response(),
        "count-tokens" => ([("content-type", "application/json")], r#"{"inputTokens":42}"#).into_response(),
        "invoke-with-response-stream" => stream_answer(&model),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The stream for `model`: whole, or three frames and then a fault.
fn stream_answer(model: &str) -> Response {
    let all = frames();
    let head: Vec<Bytes> = all.iter().take(3).cloned().collect();
    let fault: Vec<Bytes> = if model.contains("exception") {
        let e = exception_frame(&ExceptionKind::ModelStreamError, "the model failed", Some(500)).unwrap();
        vec![e.into_bytes()]
    } else if model.contains("truncated") {
        vec![all[3].slice(..all[3].len() / 2)]
    } else if model.contains("badcrc") {
        let mut bad = all[3].to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0x55;
        vec![Bytes::from(bad)]
    } else if model.contains("stall") {
        Vec::new()
    } else {
        all[3..].to_vec()
    };
    let items = head
        .into_iter()
        .chain(fault)
        .map(Ok::<_, std::convert::Infallible>);
    let body = futures_util::stream::iter(items);
    let body = if model.contains("stall") {
        axum::body::Body::from_stream(futures_util::StreamExt::chain(
            body,
            futures_util::stream::pending(),
        ))
    } else {
        axum::body::Body::from_stream(body)
    };
    (
        [
            ("content-type", "application/vnd.amazon.eventstream"),
            ("x-amzn-bedrock-content-type", "application/json"),
            ("x-upstream-internal", "not for clients"),
        ],
        body,
    )
        .into_response()
}

/// Starts the upstream; its base URL ends in `/model/`.
async fn start_upstream(sigv4: bool) -> (String, Upstream) {
    let up = Upstream {
        seen: Arc::default(),
        sigv4,
        base: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/model/{model}/{op}", axum::routing::post(answer))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    *up.base.lock().unwrap() = format!("http://{addr}");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/model/"), up)
}

fn config_for(upstream: &str) -> ProxyConfig {
    let mut c = common::gateway_config(upstream, UPSTREAM_KEY, CLIENT_KEY);
    c.timeouts.idle = Duration::from_millis(300);
    c.max_body_bytes = 2048;
    c
}

fn encoded(model: &str) -> String {
    model.replace(':', "%3A")
}

async fn post(url: &str, key: &str, extra: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (n, v) in extra {
        req = req.header(*n, *v);
    }
    req.send().await.expect("request")
}

// ===== tests =====

#[tokio::test]
async fn the_three_routes_pass_the_same_bytes_and_only_the_allowed_headers() {
    let (base, up) = start_upstream(false).await;
    let gw = Gateway::start(config_for(&base)).await;
    let extra = [
        ("x-amzn-bedrock-trace", "ENABLED"),
        ("x-amzn-bedrock-guardrailidentifier", "gr-1"),
        ("accept", "application/json"),
        ("x-forwarded-for", "10.1.2.3"),
        ("cookie", "session=1"),
        ("x-amz-security-token", "client-token"),
    ];
    for op in ["invoke", "invoke-with-response-stream", "count-tokens"] {
        let direct = post(
            &format!("{base}{}/{op}", encoded(MODEL)),
            UPSTREAM_KEY,
            &extra,
            NATIVE_BODY,
        )
        .await;
        let proxied = post(&gw.url(&encoded(MODEL), op), CLIENT_KEY, &extra, NATIVE_BODY).await;
        assert_eq!(
            (direct.status(), proxied.status()),
            (StatusCode::OK, StatusCode::OK),
            "{op}"
        );
        for name in [
            "content-type",
            "x-amzn-bedrock-content-type",
            "x-amzn-bedrock-input-token-count",
            "x-amzn-bedrock-output-token-count",
            "x-amzn-bedrock-invocation-latency",
            "x-amzn-requestid",
        ] {
            assert_eq!(
                direct.headers().get(name),
                proxied.headers().get(name),
                "{op}: {name}"
            );
        }
        assert!(proxied.headers().get("x-upstream-internal").is_none(), "{op}");
        let (d, p) = (direct.bytes().await.unwrap(), proxied.bytes().await.unwrap());
        assert_eq!(d, p, "{op}: the same bytes through the gateway");
    }
    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 6);
    let allowed: Vec<String> = FORWARDED_REQUEST_HEADERS
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for s in seen.iter().skip(1).step_by(2) {
        assert_eq!(
            s.body.as_ref(),
            NATIVE_BODY.as_bytes(),
            "{}: body unchanged",
            s.path
        );
        assert_eq!(s.headers["authorization"], format!("Bearer {UPSTREAM_KEY}"));
        for name in s.headers.keys() {
            let name = name.as_str();
            assert!(
                allowed.iter().any(|a| a == name)
                    || ["host", "content-length", "authorization"].contains(&name),
                "{}: {name} must not be forwarded",
                s.path
            );
        }
        assert_eq!(s.headers["x-amzn-bedrock-trace"], "ENABLED");
        assert_eq!(s.headers["x-amzn-bedrock-guardrailidentifier"], "gr-1");
        assert_eq!(s.headers["accept"], "application/json");
    }
    // The model id arrives encoded as the SDKs encode it.
    assert!(seen[1].path.contains("v1%3A0"), "{}", seen[1].path);
}

#[tokio::test]
async fn upstream_requests_are_sigv4_signed_and_verify() {
    let (base, up) = start_upstream(true).await;
    let mut config = config_for(&base);
    config.upstream_auth = Auth::SigV4 {
        credentials: AwsCredentials {
            access_key_id: AKID.to_owned(),
            secret_access_key: Secret::new(SECRET),
            session_token: None,
        },
        region: "us-east-1".to_owned(),
    };
    let gw = Gateway::start(config).await;
    for op in ["invoke", "invoke-with-response-stream", "count-tokens"] {
        let resp = post(
            &gw.url(&encoded(MODEL), op),
            CLIENT_KEY,
            &[("x-amzn-bedrock-trace", "ENABLED")],
            NATIVE_BODY,
        )
        .await;
        assert_eq!(resp.status(), 200, "{op}: the upstream verified the signature");
        let _ = resp.bytes().await.unwrap();
    }
    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let auth = seen[0].headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDINVOKETEST/"),
        "{auth}"
    );
    assert!(
        auth.contains("x-amzn-bedrock-trace"),
        "forwarded headers are signed: {auth}"
    );
}

#[tokio::test]
async fn keys_and_body_size_are_enforced_before_upstream() {
    let (base, up) = start_upstream(false).await;
    let gw = Gateway::start(config_for(&base)).await;
    let url = gw.url(&encoded(MODEL), "invoke-with-response-stream");
    let wrong = post(&url, "not-a-key", &[], NATIVE_BODY).await;
    assert_eq!(wrong.status(), 403);
    assert_eq!(wrong.headers()["x-amzn-errortype"], "AccessDeniedException");
    let missing = reqwest::Client::new()
        .post(&url)
        .body(NATIVE_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let big = post(
        &gw.url(&encoded(MODEL), "invoke"),
        CLIENT_KEY,
        &[],
        &"y".repeat(4096),
    )
    .await;
    assert_eq!(big.status(), 413);
    assert_eq!(big.headers()["x-amzn-errortype"], "ValidationException");
    let twice = reqwest::Client::new()
        .post(gw.url(&encoded(MODEL), "count-tokens"))
        .bearer_auth(CLIENT_KEY)
        .header("accept", "a")
        .header("x-amzn-bedrock-trace", "ENABLED")
        .header("x-amzn-bedrock-trace", "DISABLED")
        .body(NATIVE_BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    let text = twice.text().await.unwrap();
    assert!(text.contains("X-Amzn-Bedrock-Trace"), "{text}");
    assert!(
        up.seen.lock().unwrap().is_empty(),
        "nothing refused may reach upstream"
    );
    let m = gw.proxy.metrics();
    assert_eq!(m.rejected(Rejection::UnknownKey), 1);
    assert_eq!(m.rejected(Rejection::MissingKey), 1);
    assert_eq!(m.rejected(Rejection::BodyTooLarge), 1);
    assert_eq!(m.rejected(Rejection::InvalidHeader), 1);
}

#[tokio::test]
async fn upstream_faults_end_the_stream_with_an_exception_frame() {
    let (base, _up) = start_upstream(false).await;
    let gw = Gateway::start(config_for(&base)).await;
    let sent = frames();
    for (model, expected) in [
        ("anthropic.exception", "modelStreamErrorException"),
        ("anthropic.truncated", "internalServerException"),
        ("anthropic.badcrc", "internalServerException"),
        ("anthropic.stall", "serviceUnavailableException"),
    ] {
        let resp = post(
            &gw.url(model, "invoke-with-response-stream"),
            CLIENT_KEY,
            &[],
            NATIVE_BODY,
        )
        .await;
        assert_eq!(resp.status(), 200, "{model}");
        let body = resp.bytes().await.expect("a body that ends cleanly");
        let (got, err) = decode_body(&body);
        assert!(err.is_none(), "{model}: every frame is well formed: {err:?}");
        assert_eq!(
            got.len(),
            4,
            "{model}: the three frames before the fault, then the exception"
        );
        for (g, s) in got.iter().zip(&sent).take(3) {
            assert_eq!(g.as_bytes(), s.as_ref(), "{model}: what came before is kept");
        }
        let last = &got[3];
        assert_eq!(last.message_type(), Some("exception"), "{model}");
        assert_eq!(last.exception_type(), Some(expected), "{model}");
        // Our decoder reads it as the typed service exception.
        let mut decoder = ChunkDecoder::new();
        assert!(decoder.decode(last.as_frame()).is_err(), "{model}");
    }
    assert!(gw.proxy.metrics().upstream_errors("StreamInterrupted") >= 3);
}

#[tokio::test]
async fn throttling_passes_through_with_its_type() {
    let (base, _up) = start_upstream(false).await;
    let gw = Gateway::start(config_for(&base)).await;
    for op in ["invoke", "invoke-with-response-stream"] {
        let resp = post(&gw.url("anthropic.throttled", op), CLIENT_KEY, &[], NATIVE_BODY).await;
        assert_eq!(resp.status(), 429, "{op}");
        assert!(resp.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .starts_with("ThrottlingException"));
        assert!(resp.text().await.unwrap().contains("Too many requests"));
    }
    assert_eq!(gw.proxy.metrics().upstream_errors("ThrottlingException"), 2);
}

#[tokio::test]
async fn usage_is_counted_per_key_and_route() {
    let (base, _up) = start_upstream(false).await;
    let gw = Gateway::start(config_for(&base)).await;
    for op in [
        "invoke",
        "invoke-with-response-stream",
        "invoke-with-response-stream",
        "count-tokens",
    ] {
        let resp = post(&gw.url(&encoded(MODEL), op), CLIENT_KEY, &[], NATIVE_BODY).await;
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await.unwrap();
    }
    let m = gw.proxy.metrics();
    // The stream's slot (and its accounting) ends when the last frame is taken.
    let mut settled = false;
    for _ in 0..200 {
        if m.streams_in_flight() == 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(settled);
    assert_eq!(m.key_tokens("team-a", "invoke"), (11, 7));
    assert_eq!(m.key_tokens("team-a", "invoke-with-response-stream"), (22, 14));
    assert_eq!(
        m.key_tokens("team-a", "count-tokens"),
        (0, 0),
        "counting spends nothing"
    );
    assert_eq!(m.requests("invoke-with-response-stream"), 2);
    assert_eq!(m.requests("count-tokens"), 1);
    let text = gw.metrics_text(CLIENT_KEY).await;
    assert!(
        text.contains(
            "bedrock_proxy_key_tokens_total{key=\"team-a\",operation=\"invoke-with-response-stream\",kind=\"output\"} 14\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("bedrock_proxy_requests_total{operation=\"invoke\"} 1\n"),
        "{text}"
    );
}

// ===== the official Rust SDK =====

/// The chunks the SDK read from one `InvokeModelWithResponseStream`, and the body of
/// one `InvokeModel`.
async fn sdk_calls(endpoint: String, key: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
    use aws_sdk_bedrockruntime::primitives::Blob;
    use aws_sdk_bedrockruntime::types::ResponseStream;
    let client = sdk::bearer_client(endpoint, key);
    let mut out = client
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .content_type("application/json")
        .body(Blob::new(NATIVE_BODY))
        .send()
        .await
        .expect("invoke_model_with_response_stream");
    let mut chunks = Vec::new();
    while let Some(event) = out.body.recv().await.expect("event") {
        if let ResponseStream::Chunk(part) = event {
            chunks.push(part.bytes().map(|b| b.as_ref().to_vec()).unwrap_or_default());
        }
    }
    let answer = client
        .invoke_model()
        .model_id(MODEL)
        .content_type("application/json")
        .body(Blob::new(NATIVE_BODY))
        .send()
        .await
        .expect("invoke_model");
    (chunks, answer.body.into_inner())
}

#[tokio::test]
async fn official_sdk_gets_the_same_chunks_through_the_gateway() {
    let (base, _up) = start_upstream(false).await;
    let gw = Gateway::start(config_for(&base)).await;
    let direct = sdk_calls(base.trim_end_matches("/model/").to_owned(), UPSTREAM_KEY).await;
    let proxied = sdk_calls(format!("http://{}", gw.addr), CLIENT_KEY).await;
    let expected: Vec<Vec<u8>> = bedrock_converse::invoke::native_events(&message(), 6);
    assert_eq!(direct.0, expected);
    assert_eq!(direct, proxied);
    assert_eq!(proxied.1, INVOKE_ANSWER.as_bytes());
}
