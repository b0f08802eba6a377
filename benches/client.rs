//! Our client vs the official `aws-sdk-bedrockruntime` client, both calling the same
//! loopback server with the same bytes on the wire.
//!
//! The bytes come from the built-in server (captured once per kind of reply); a small
//! replay server then serves them with `TCP_NODELAY`, so that the measurement is of the
//! clients: the built-in server generates every frame per request (CPU shared with the
//! clients on a 2-core machine) and its sockets keep Nagle's algorithm, which costs a
//! ~40 ms delayed-ACK stall per streamed reply.
//!
//!
//! - events/s on long ConverseStream replies (`mock.long`, 2,000 text deltas);
//! - requests/s on short Converse and ConverseStream calls (`mock.text`), and the
//!   per-request overhead over a bare reqwest POST that reads the body and parses
//!   nothing (the server's and the network's share).
//!
//! Both clients sign with SigV4 (static credentials). Criterion runs the comparisons;
//! a plain timing pass then writes the summary table to `../notes/client-bench.md`
//! (or `$CLIENT_BENCH_OUT`).

use std::time::{Duration, Instant};

use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockruntime::types::{ContentBlock as SdkBlock, ConversationRole, Message as SdkMessage};
use bedrock_converse::client::{
    Auth, AwsCredentials, BedrockClient, ChatEvent, Config, RequestParams, Secret,
};
use bedrock_converse::converse::Message;
use bedrock_converse::server::{MockBedrock, MockBedrockHandle};
use criterion::{Criterion, Throughput};
use futures_util::StreamExt;
use tokio::runtime::Runtime;

const LONG_DELTAS: usize = 2_000;
const PROMPT: &str = "Tell me a long story about the sea.";
const AKID: &str = "AKIDBENCH";
const SECRET: &str = "bench-secret";

struct Setup {
    rt: Runtime,
    /// The built-in server (the source of the bytes).
    server: MockBedrockHandle,
    /// The replay server's `.../model/` URL.
    replay_url: String,
    /// The long reply's body, as captured.
    long_body: bytes::Bytes,
    ours: BedrockClient,
    sdk: aws_sdk_bedrockruntime::Client,
    raw: reqwest::Client,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt.block_on(async {
        MockBedrock::builder()
            .long_deltas(LONG_DELTAS)
            .start()
            .await
            .expect("server")
    });
    let (replay_url, long_body) = rt.block_on(start_replay(&server));
    let text = serde_json::json!({"providers": {"bedrock": {"api": "bedrock", "url": replay_url, "region": "us-east-1"}}})
        .to_string();
    let config = Config::parse_with_env(&text, &|_| None).expect("config");
    let credentials = AwsCredentials {
        access_key_id: AKID.into(),
        secret_access_key: Secret::new(SECRET),
        session_token: None,
    };
    let ours = rt.block_on(async {
        BedrockClient::builder(config)
            .auth(
                "bedrock",
                Auth::SigV4 {
                    credentials,
                    region: "us-east-1".into(),
                },
            )
            .build()
            .expect("client")
    });
    let sdk_config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(replay_url.trim_end_matches("/model/"))
        .credentials_provider(Credentials::new(AKID, SECRET, None, None, "bench"))
        .build();
    let sdk = aws_sdk_bedrockruntime::Client::from_conf(sdk_config);
    Setup {
        rt,
        server,
        replay_url,
        long_body,
        ours,
        sdk,
        raw: reqwest::Client::new(),
    }
}

/// Captures the built-in server's replies once, then serves them from a replay server
/// (`TCP_NODELAY` on). Returns its `http://127.0.0.1:PORT/model/` URL.
async fn start_replay(server: &MockBedrockHandle) -> (String, bytes::Bytes) {
    use axum::serve::ListenerExt;

    let raw = reqwest::Client::new();
    let fetch = |model: &'static str, op: &'static str| {
        let url = format!("{}us-east-1.{model}/{op}", server.url());
        let raw = raw.clone();
        async move {
            let r = raw
                .post(url)
                .header("content-type", "application/json")
                .body(raw_body())
                .send()
                .await;
            let r = r.expect("capture request");
            assert!(r.status().is_success(), "capture failed: {}", r.status());
            r.bytes().await.expect("capture body")
        }
    };
    let long = fetch("mock.long", "converse-stream").await;
    let long_body = long.clone();
    let short = fetch("mock.text", "converse-stream").await;
    let json = fetch("mock.text", "converse").await;
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, _body: axum::body::Bytes| {
        let (long, short, json) = (long.clone(), short.clone(), json.clone());
        async move {
            let path = uri.path();
            let (body, content_type) = if path.ends_with("/converse-stream") {
                (
                    if path.contains("long") { long } else { short },
                    "application/vnd.amazon.eventstream",
                )
            } else {
                (json, "application/json")
            };
            axum::http::Response::builder()
                .header("content-type", content_type)
                .header("x-amzn-requestid", "replay")
                .body(axum::body::Body::from(body))
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/model/"), long_body)
}

/// Layers 1 and 2 alone on the same bytes: decode every frame from one buffer and feed
/// the assembler. No HTTP, no owned events. Returns the number of events.
fn decode_and_assemble(body: &bytes::Bytes) -> u64 {
    use tokio_util::codec::Decoder;
    let mut buf = bytes::BytesMut::from(&body[..]);
    let mut codec = bedrock_converse::eventstream::EventStreamCodec::new();
    let mut asm = bedrock_converse::converse::StreamAssembler::new();
    let mut n = 0u64;
    while let Some(msg) = codec.decode(&mut buf).expect("frame") {
        if asm.push(&msg).expect("event").is_some() {
            n += 1;
        }
    }
    let r = asm.finish().expect("complete");
    std::hint::black_box(r);
    n
}

fn sdk_message() -> SdkMessage {
    SdkMessage::builder()
        .role(ConversationRole::User)
        .content(SdkBlock::Text(PROMPT.into()))
        .build()
        .expect("message")
}

// ===== one call of each kind; each returns the number of events seen =====

async fn ours_stream(c: &BedrockClient, model: &str) -> u64 {
    let mut stream = c
        .converse_stream(model, &[Message::user(PROMPT)], &RequestParams::default())
        .await
        .expect("stream");
    let mut n = 0u64;
    while let Some(ev) = stream.next().await {
        match ev.expect("event") {
            ChatEvent::Done(_) => break,
            _ => n += 1,
        }
    }
    n
}

async fn ours_converse(c: &BedrockClient, model: &str) -> u64 {
    let r = c
        .converse(model, &[Message::user(PROMPT)], &RequestParams::default())
        .await
        .expect("converse");
    u64::from(!r.text().is_empty())
}

async fn sdk_stream(c: &aws_sdk_bedrockruntime::Client, model: &str) -> u64 {
    let mut out = c
        .converse_stream()
        .model_id(model)
        .messages(sdk_message())
        .send()
        .await
        .expect("send");
    let mut n = 0u64;
    while let Some(_ev) = out.stream.recv().await.expect("event") {
        n += 1;
    }
    n
}

async fn sdk_converse(c: &aws_sdk_bedrockruntime::Client, model: &str) -> u64 {
    let r = c
        .converse()
        .model_id(model)
        .messages(sdk_message())
        .send()
        .await
        .expect("converse");
    u64::from(r.output.is_some())
}

/// The floor: POST the same body, read the response body, parse nothing, sign nothing.
async fn raw_post(c: &reqwest::Client, url: &str, body: &'static [u8]) -> u64 {
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    let b = r.bytes().await.expect("body");
    u64::from(!b.is_empty())
}

fn raw_body() -> &'static [u8] {
    let body = serde_json::json!({"messages": [{"role": "user", "content": [{"text": PROMPT}]}],
                                  "inferenceConfig": {"maxTokens": 1024}});
    Box::leak(serde_json::to_vec(&body).expect("json").into_boxed_slice())
}

// ===== criterion =====

fn benches(c: &mut Criterion, s: &Setup) {
    let events = s.rt.block_on(ours_stream(&s.ours, "mock.long"));
    let mut g = c.benchmark_group("long_stream");
    g.throughput(Throughput::Elements(events));
    g.sample_size(20);
    g.bench_function("bedrock_converse", |b| {
        b.iter(|| s.rt.block_on(ours_stream(&s.ours, "mock.long")))
    });
    g.bench_function("aws_sdk", |b| {
        b.iter(|| s.rt.block_on(sdk_stream(&s.sdk, "mock.long")))
    });
    g.finish();

    let url = format!("{}us-east-1.mock.text/converse", s.replay_url);
    let body = raw_body();
    let mut g = c.benchmark_group("short_request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("converse/bedrock_converse", |b| {
        b.iter(|| s.rt.block_on(ours_converse(&s.ours, "mock.text")))
    });
    g.bench_function("converse/aws_sdk", |b| {
        b.iter(|| s.rt.block_on(sdk_converse(&s.sdk, "mock.text")))
    });
    g.bench_function("converse/raw_reqwest", |b| {
        b.iter(|| s.rt.block_on(raw_post(&s.raw, &url, body)))
    });
    g.bench_function("stream/bedrock_converse", |b| {
        b.iter(|| s.rt.block_on(ours_stream(&s.ours, "mock.text")))
    });
    g.bench_function("stream/aws_sdk", |b| {
        b.iter(|| s.rt.block_on(sdk_stream(&s.sdk, "mock.text")))
    });
    g.finish();
}

// ===== summary table =====

/// Runs `f` repeatedly for about `budget` (after a warm-up) and returns (calls, events, elapsed).
fn measure<F: FnMut() -> u64>(budget: Duration, mut f: F) -> (u64, u64, Duration) {
    let warm = Instant::now();
    while warm.elapsed() < budget / 5 {
        f();
    }
    let start = Instant::now();
    let (mut calls, mut events) = (0u64, 0u64);
    while start.elapsed() < budget {
        events += f();
        calls += 1;
    }
    (calls, events, start.elapsed())
}

fn summary(s: &Setup) -> String {
    let budget = Duration::from_secs(3);
    let rt = &s.rt;
    let per = |d: Duration, n: u64| d.as_secs_f64() / n.max(1) as f64;

    let (c_ours, ev_ours, t_ours) = measure(budget, || rt.block_on(ours_stream(&s.ours, "mock.long")));
    let (c_sdk, ev_sdk, t_sdk) = measure(budget, || rt.block_on(sdk_stream(&s.sdk, "mock.long")));
    let (_, ev_l12, t_l12) = measure(budget, || decode_and_assemble(&s.long_body));
    let eps_l12 = ev_l12 as f64 / t_l12.as_secs_f64();
    let eps_ours = ev_ours as f64 / t_ours.as_secs_f64();
    let eps_sdk = ev_sdk as f64 / t_sdk.as_secs_f64();

    let url = format!("{}us-east-1.mock.text/converse", s.replay_url);
    let body = raw_body();
    let (n_raw, _, t_raw) = measure(budget, || rt.block_on(raw_post(&s.raw, &url, body)));
    let (n_oc, _, t_oc) = measure(budget, || rt.block_on(ours_converse(&s.ours, "mock.text")));
    let (n_sc, _, t_sc) = measure(budget, || rt.block_on(sdk_converse(&s.sdk, "mock.text")));
    let (n_os, _, t_os) = measure(budget, || rt.block_on(ours_stream(&s.ours, "mock.text")));
    let (n_ss, _, t_ss) = measure(budget, || rt.block_on(sdk_stream(&s.sdk, "mock.text")));
    let floor = per(t_raw, n_raw);
    let row = |name: &str, n: u64, t: Duration| {
        let p = per(t, n);
        format!(
            "| {name} | {:.0} | {:.1} | {:.1} |\n",
            1.0 / p,
            p * 1e6,
            (p - floor) * 1e6
        )
    };
    let over = |n: u64, t: Duration| (per(t, n) - floor).max(f64::MIN_POSITIVE);

    let mut out = String::new();
    out.push_str("# Client benchmark: bedrock-converse vs aws-sdk-bedrockruntime\n\n");
    out.push_str(
        "Written by `cargo bench --bench client` (benches/client.rs). Both clients call the same\n\
         loopback server over TCP, sign with SigV4, and read the same bytes: replies captured once\n\
         from the built-in server and replayed with TCP_NODELAY (the built-in server builds frames\n\
         per request on the same 2 cores, and without TCP_NODELAY every streamed reply waits ~40 ms\n\
         for a delayed ACK, which hides the clients' cost). Each figure is a ~3 s timing pass after a\n\
         warm-up; treat differences under ~10% as noise.\n\n",
    );
    out.push_str(&format!(
        "## Long streams (`mock.long`, {LONG_DELTAS} text deltas)\n\n"
    ));
    out.push_str("| client | events/s | events per stream |\n|---|---:|---:|\n");
    out.push_str(&format!(
        "| bedrock-converse | {eps_ours:.0} | {} |\n| aws-sdk-bedrockruntime | {eps_sdk:.0} | {} |\n\n",
        ev_ours / c_ours.max(1),
        ev_sdk / c_sdk.max(1),
    ));
    out.push_str(&format!(
        "Ratio: **{:.1}x** events/s (target >= 5x).\n\n",
        eps_ours / eps_sdk
    ));
    out.push_str(&format!(
        "For scale: layers 1 and 2 alone on the same bytes (decode from one buffer + assemble, no\n\
         HTTP, no owned events): {eps_l12:.0} events/s, {:.2} us per event; the whole client\n\
         {:.2} us per event; the SDK {:.2} us per event.\n\n",
        1e6 / eps_l12,
        1e6 / eps_ours,
        1e6 / eps_sdk,
    ));
    out.push_str("## Short requests (`mock.text`)\n\n");
    out.push_str(
        "Overhead = time per request minus the floor (a bare reqwest POST of the same body that\n\
         reads the response and parses nothing: the server's and the network's share).\n\n",
    );
    out.push_str("| call | requests/s | us/request | overhead us |\n|---|---:|---:|---:|\n");
    out.push_str(&row("floor: raw reqwest POST /converse", n_raw, t_raw));
    out.push_str(&row("bedrock-converse converse", n_oc, t_oc));
    out.push_str(&row("aws-sdk converse", n_sc, t_sc));
    out.push_str(&row("bedrock-converse converse_stream (whole reply)", n_os, t_os));
    out.push_str(&row("aws-sdk converse_stream (whole reply)", n_ss, t_ss));
    out.push_str(&format!(
        "\nOverhead ratio (ours / SDK): converse **{:.2}**, converse_stream **{:.2}** (target <= 0.33).\n",
        over(n_oc, t_oc) / over(n_sc, t_sc),
        over(n_os, t_os) / over(n_ss, t_ss),
    ));
    out
}

fn main() {
    let s = setup();
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3));
    benches(&mut c, &s);
    c.final_summary();
    if std::env::var("CLIENT_BENCH_SUMMARY").is_ok_and(|v| v == "0") {
        return;
    }
    let table = summary(&s);
    println!("{table}");
    let path = std::env::var("CLIENT_BENCH_OUT").unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../notes/client-bench.md")
            .display()
            .to_string()
    });
    match std::fs::write(&path, &table) {
        Ok(()) => eprintln!("wrote {path}"),
        Err(e) => eprintln!("cannot write {path}: {e}"),
    }
    let Setup { rt, server, .. } = s;
    let _ = rt.block_on(server.shutdown());
}
