//! CPU per MB through the gateway: `invoke-with-response-stream` pass-through beside
//! the ConverseStream pass-through. The gateway runs as its own process (`bedrock-converse
//! proxy`) in front of an upstream in this process that answers both routes with
//! pre-encoded bodies of about the same size (the invoke one from
//! `bedrock_converse::invoke::chunk_frames`), written in 16 KiB slices. What is measured
//! is the gateway process's CPU time (per-thread `schedstat`, see `support/mod.rs`), not
//! wall time, divided by the bytes it forwarded; the two routes alternate round by round.
//!
//! `cargo bench --bench proxy_invoke` (set `INVOKE_BENCH_STREAMS`, `INVOKE_BENCH_ROUNDS`,
//! `INVOKE_BENCH_DELTAS` to change the load).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use bedrock_converse::eventstream::MessageBuilder;
use bedrock_converse::invoke::{chunk_frames, AnthropicContentBlock, AnthropicMessage, AnthropicUsage};

use support::{cpu_time, env_usize, ChildProcess};

const UPSTREAM_KEY: &str = "bench-upstream-key";
const CLIENT_KEY: &str = "bench-client-key";
/// The text of one delta, in both streams.
const FRAGMENT: &str = "the quick brown fox jumps";

/// A ConverseStream body: `messageStart`, `deltas` text deltas, `messageStop`, `metadata`.
fn converse_body(deltas: usize) -> Bytes {
    let frame = |event: &str, payload: String| {
        MessageBuilder::new()
            .string_header(":event-type", event)
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "event")
            .build(payload.as_bytes())
            .expect("frame")
            .into_bytes()
    };
    let mut out = Vec::new();
    out.extend_from_slice(&frame(
        "messageStart",
        r#"{"role":"assistant","p":"abcd"}"#.into(),
    ));
    for _ in 0..deltas {
        let p = format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"{FRAGMENT}"}},"p":"abcdefghijkl"}}"#);
        out.extend_from_slice(&frame("contentBlockDelta", p));
    }
    out.extend_from_slice(&frame(
        "messageStop",
        r#"{"stopReason":"end_turn","p":"ab"}"#.into(),
    ));
    out.extend_from_slice(&frame(
        "metadata",
        r#"{"usage":{"inputTokens":10,"outputTokens":2000,"totalTokens":2010},"metrics":{"latencyMs":100}}"#
            .into(),
    ));
    Bytes::from(out)
}

/// An `InvokeModelWithResponseStream` body with `deltas` text deltas of the same text.
fn invoke_body(deltas: usize) -> Bytes {
    let message = AnthropicMessage {
        id: "msg_bench".into(),
        content: vec![AnthropicContentBlock::Text {
            text: FRAGMENT.repeat(deltas),
            citations: vec![],
        }],
        stop_reason: Some("end_turn".into()),
        usage: AnthropicUsage {
            input_tokens: 10,
            output_tokens: 2000,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut out = Vec::new();
    for frame in chunk_frames(&message, FRAGMENT.len()).expect("frames") {
        out.extend_from_slice(frame.as_bytes());
    }
    Bytes::from(out)
}

/// The body in 16 KiB slices, as a server writes a long stream.
fn sliced(body: Bytes) -> axum::body::Body {
    let slices: Vec<Result<Bytes, std::convert::Infallible>> = (0..body.len())
        .step_by(16 * 1024)
        .map(|at| Ok(body.slice(at..body.len().min(at + 16 * 1024))))
        .collect();
    axum::body::Body::from_stream(futures_util::stream::iter(slices))
}

async fn start_upstream(converse: Bytes, invoke: Bytes) -> String {
    use axum::routing::post;
    let eventstream = [("content-type", "application/vnd.amazon.eventstream")];
    let app = axum::Router::new()
        .route(
            "/model/{id}/converse-stream",
            post(move || {
                let body = converse.clone();
                async move { (eventstream, sliced(body)) }
            }),
        )
        .route(
            "/model/{id}/invoke-with-response-stream",
            post(move || {
                let body = invoke.clone();
                async move { (eventstream, sliced(body)) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/model/")
}

fn start_proxy(upstream: &str) -> (ChildProcess, String, std::path::PathBuf) {
    let config = std::env::temp_dir().join(format!(
        "bedrock-converse-invoke-bench-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &config,
        serde_json::json!({
            "providers": { "bedrock": {
                "api": "bedrock", "key": UPSTREAM_KEY, "url": upstream, "region": "us-east-1"
            } },
            "proxy": {
                "listen": "127.0.0.1:0",
                "clientKeys": { "bench": CLIENT_KEY },
                "maxConcurrentStreams": 4096
            }
        })
        .to_string(),
    )
    .expect("config");
    let (proxy, base) = support::start_gateway(env!("CARGO_BIN_EXE_bedrock-converse"), &config, &[]);
    (proxy, base, config)
}

/// `streams` concurrent requests to `url`; the bytes received.
async fn load(client: &reqwest::Client, url: Arc<String>, streams: usize, expected: usize) -> u64 {
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut resp = client
                    .post(url.as_str())
                    .bearer_auth(CLIENT_KEY)
                    .header("content-type", "application/json")
                    .body(r#"{"messages":[]}"#)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), 200);
                let mut n = 0u64;
                while let Some(chunk) = resp.chunk().await.expect("body") {
                    n += chunk.len() as u64;
                }
                assert_eq!(n, expected as u64, "the whole stream, unchanged in length");
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total
}

fn main() {
    let streams = env_usize("INVOKE_BENCH_STREAMS", 32);
    let rounds = env_usize("INVOKE_BENCH_ROUNDS", 6);
    let deltas = env_usize("INVOKE_BENCH_DELTAS", 4_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (converse, invoke) = (converse_body(deltas), invoke_body(deltas));
    let (converse_len, invoke_len) = (converse.len(), invoke.len());
    let upstream = rt.block_on(start_upstream(converse, invoke));
    let (proxy, base, config) = start_proxy(&upstream);
    let pid = proxy.pid();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(streams)
        .build()
        .expect("client");
    let model = "anthropic.claude-bench-v1%3A0";
    let routes = [
        ("converse-stream", converse_len),
        ("invoke-with-response-stream", invoke_len),
    ];
    // Warm both paths (pools, allocators), then alternate the routes round by round.
    for (op, len) in routes {
        rt.block_on(load(
            &client,
            Arc::new(format!("{base}{model}/{op}")),
            streams,
            len,
        ));
    }
    let mut totals = [(Duration::ZERO, 0u64); 2];
    for _ in 0..rounds {
        for (i, (op, len)) in routes.into_iter().enumerate() {
            let before = cpu_time(&[pid]);
            let bytes = rt.block_on(load(
                &client,
                Arc::new(format!("{base}{model}/{op}")),
                streams,
                len,
            ));
            totals[i].0 += cpu_time(&[pid]).saturating_sub(before);
            totals[i].1 += bytes;
        }
    }
    drop(proxy);
    let _ = std::fs::remove_file(&config);
    println!(
        "\n{streams} concurrent streams x {rounds} rounds per route, {deltas} text deltas each \
         (ConverseStream body {converse_len} B, invoke body {invoke_len} B); gateway process CPU\n"
    );
    println!("| route | MiB forwarded | gateway CPU | CPU ms per MiB |");
    println!("| --- | ---: | ---: | ---: |");
    let mut per_mib = [0f64; 2];
    for (i, (op, _)) in routes.iter().enumerate() {
        let (cpu, bytes) = totals[i];
        let mib = bytes as f64 / (1024.0 * 1024.0);
        let cpu_ms = cpu.as_secs_f64() * 1e3;
        per_mib[i] = cpu_ms / mib;
        println!("| {op} | {mib:.1} | {cpu_ms:.0} ms | {:.3} |", per_mib[i]);
    }
    println!(
        "\ninvoke-stream / ConverseStream CPU per MiB: {:.1}% (target: within 110%)",
        per_mib[1] / per_mib[0] * 100.0
    );
}
