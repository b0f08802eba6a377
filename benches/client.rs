//! Our client vs the official `aws-sdk-bedrockruntime` client, both calling the same
//! loopback server with the same bytes on the wire.
//!
//! The bytes come from the built-in server (captured once per kind of reply); a small
//! replay server then serves them with `TCP_NODELAY`, so that the measurement is of the
//! clients: the built-in server generates every frame per request (CPU shared with the
//! clients on a 2-core machine) and its sockets keep Nagle's algorithm, which costs a
//! ~40 ms delayed-ACK stall per streamed reply.
//!
//! Measured:
//!
//! - events/s on long ConverseStream replies (`mock.long`, 2,000 text deltas);
//! - requests/s on short Converse and ConverseStream calls (`mock.text`), and the
//!   per-request overhead over a bare reqwest POST that reads the body and parses
//!   nothing (the server's and the network's share).
//!
//! Both clients sign with SigV4 (static credentials). Everything runs on one
//! current-thread tokio runtime: CPU cost per event or request, not wake-up latency.
//! Criterion runs the comparisons; a plain timing pass then prints the summary table
//! (also written to `$CLIENT_BENCH_OUT` when set; `CLIENT_BENCH_SUMMARY=0` skips it).
//!
//! Two knobs for profiling and for before/after runs (both skip criterion):
//!
//! - `CLIENT_ONLY=ours|sdk|l12`: only that side's long stream (`l12`: layers 1+2 alone on
//!   the same bytes), `CLIENT_RUNS` times (default 40), nothing printed but the event
//!   count. For callgrind on our side only:
//!   `valgrind --tool=callgrind --toggle-collect='client::ours_stream::*' target/release/deps/client-*`
//!   with `CLIENT_ONLY=ours`.
//! - `CLIENT_LONG_ONLY=1`: the summary's long-stream table alone (three 3 s passes).

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
    let rt = tokio::runtime::Builder::new_current_thread()
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

/// The calling thread's CPU time (user + system), from `/proc/thread-self/stat`
/// (Linux; clock ticks of 10 ms). `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // After the command: state(3) ... utime(14), stime(15).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// One timing pass.
struct Sample {
    calls: u64,
    events: u64,
    wall: Duration,
    /// CPU time of the one runtime thread (client, connection task and replay server).
    cpu: Option<Duration>,
}

impl Sample {
    /// Seconds per call (or per event with `per_event`), by CPU time when known.
    fn cost(&self, per_event: bool) -> f64 {
        let t = self.cpu.unwrap_or(self.wall).as_secs_f64();
        let n = if per_event { self.events } else { self.calls };
        t / n.max(1) as f64
    }

    fn wall_rate(&self, per_event: bool) -> f64 {
        let n = if per_event { self.events } else { self.calls };
        n as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `f` repeatedly for about `budget` (after a warm-up).
fn measure<F: FnMut() -> u64>(budget: Duration, mut f: F) -> Sample {
    let warm = Instant::now();
    while warm.elapsed() < budget / 5 {
        f();
    }
    let cpu0 = thread_cpu();
    let start = Instant::now();
    let (mut calls, mut events) = (0u64, 0u64);
    while start.elapsed() < budget {
        events += f();
        calls += 1;
    }
    let wall = start.elapsed();
    let cpu = match (cpu0, thread_cpu()) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };
    Sample {
        calls,
        events,
        wall,
        cpu,
    }
}

fn summary(s: &Setup) -> String {
    let budget = Duration::from_secs(3);
    let rt = &s.rt;

    let ours_long = measure(budget, || rt.block_on(ours_stream(&s.ours, "mock.long")));
    let sdk_long = measure(budget, || rt.block_on(sdk_stream(&s.sdk, "mock.long")));
    let l12 = measure(budget, || decode_and_assemble(&s.long_body));

    let url = format!("{}us-east-1.mock.text/converse", s.replay_url);
    let body = raw_body();
    let raw = measure(budget, || rt.block_on(raw_post(&s.raw, &url, body)));
    let oc = measure(budget, || rt.block_on(ours_converse(&s.ours, "mock.text")));
    let sc = measure(budget, || rt.block_on(sdk_converse(&s.sdk, "mock.text")));
    let os = measure(budget, || rt.block_on(ours_stream(&s.ours, "mock.text")));
    let ss = measure(budget, || rt.block_on(sdk_stream(&s.sdk, "mock.text")));
    let by = if raw.cpu.is_some() { "CPU" } else { "wall" };

    let mut out = String::new();
    out.push_str("# Client benchmark: bedrock-converse vs aws-sdk-bedrockruntime\n\n");
    out.push_str(
        "Written by `cargo bench --bench client` (benches/client.rs). Both clients call the same\n\
         loopback server over TCP, sign with SigV4, and read the same bytes: replies captured once\n\
         from the built-in server and replayed with TCP_NODELAY (the built-in server builds frames\n\
         per request on the same 2 cores, and without TCP_NODELAY every streamed reply waits ~40 ms\n\
         for a delayed ACK, which hides the clients' cost). One single-threaded tokio runtime runs\n\
         the client, its connection task and the replay server. Each pass runs ~3 s after a warm-up.\n\
         The machine (2 cores) is shared, so wall-clock rates vary by 20% or more between runs; the\n\
         ratios use the runtime thread's CPU time (`/proc/thread-self/stat`), which other processes\n\
         disturb much less. The replay server's share is in both sides' figures.\n\n",
    );
    out.push_str(&format!(
        "## Long streams (`mock.long`, {LONG_DELTAS} text deltas)\n\n"
    ));
    out.push_str(
        "| client | events/s (wall) | {by} us/event | events per stream |\n|---|---:|---:|---:|\n"
            .replace("{by}", by)
            .as_str(),
    );
    for (name, m) in [
        ("bedrock-converse", &ours_long),
        ("aws-sdk-bedrockruntime", &sdk_long),
    ] {
        out.push_str(&format!(
            "| {name} | {:.0} | {:.3} | {} |\n",
            m.wall_rate(true),
            m.cost(true) * 1e6,
            m.events / m.calls.max(1),
        ));
    }
    out.push_str(&format!(
        "| layers 1+2 alone (decode + assemble from one buffer, no HTTP, no owned events) | {:.0} | {:.3} | {} |\n\n",
        l12.wall_rate(true),
        l12.cost(true) * 1e6,
        l12.events / l12.calls.max(1),
    ));
    out.push_str(&format!(
        "Ratio: **{:.1}x** events per {by} second (wall clock: {:.1}x; target >= 5x).\n\n",
        sdk_long.cost(true) / ours_long.cost(true),
        ours_long.wall_rate(true) / sdk_long.wall_rate(true),
    ));
    out.push_str("## Short requests (`mock.text`)\n\n");
    out.push_str(
        "Overhead = cost per request minus the floor (a bare reqwest POST of the same body that\n\
         reads the response and parses nothing: the server's, the network's and HTTP's share).\n\n",
    );
    out.push_str(
        "| call | requests/s (wall) | {by} us/request | overhead us |\n|---|---:|---:|---:|\n"
            .replace("{by}", by)
            .as_str(),
    );
    let floor = raw.cost(false);
    let over = |m: &Sample| (m.cost(false) - floor).max(f64::MIN_POSITIVE);
    for (name, m) in [
        ("floor: raw reqwest POST /converse", &raw),
        ("bedrock-converse converse", &oc),
        ("aws-sdk converse", &sc),
        ("bedrock-converse converse_stream (whole reply)", &os),
        ("aws-sdk converse_stream (whole reply)", &ss),
    ] {
        out.push_str(&format!(
            "| {name} | {:.0} | {:.1} | {:.1} |\n",
            m.wall_rate(false),
            m.cost(false) * 1e6,
            (m.cost(false) - floor) * 1e6
        ));
    }
    out.push_str(&format!(
        "\nOverhead ratio (ours / SDK): converse **{:.2}**, converse_stream **{:.2}** (target <= 0.33).\n",
        over(&oc) / over(&sc),
        over(&os) / over(&ss),
    ));
    out
}

/// `CLIENT_ONLY`: one side's long stream, [`only_runs`] times, for a profiler.
fn only(s: &Setup, which: &str) {
    let runs = only_runs();
    let mut events = 0u64;
    for _ in 0..runs {
        events += match which {
            "ours" => s.rt.block_on(ours_stream(&s.ours, "mock.long")),
            "sdk" => s.rt.block_on(sdk_stream(&s.sdk, "mock.long")),
            "l12" => decode_and_assemble(&s.long_body),
            other => panic!("CLIENT_ONLY is ours, sdk or l12, not {other:?}"),
        };
    }
    println!("{which}: {runs} long streams, {events} events");
}

/// `CLIENT_RUNS` (default 40).
fn only_runs() -> u64 {
    std::env::var("CLIENT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// `CLIENT_LONG_ONLY`: the long-stream lines of the summary, nothing else.
fn long_only(s: &Setup) -> String {
    let budget = Duration::from_secs(3);
    let rt = &s.rt;
    let ours = measure(budget, || rt.block_on(ours_stream(&s.ours, "mock.long")));
    let sdk = measure(budget, || rt.block_on(sdk_stream(&s.sdk, "mock.long")));
    let l12 = measure(budget, || decode_and_assemble(&s.long_body));
    format!(
        "long stream us/event ({by}): bedrock-converse {:.3}, aws-sdk {:.3}, layers 1+2 {:.3}; ratio {:.2}x\n",
        ours.cost(true) * 1e6,
        sdk.cost(true) * 1e6,
        l12.cost(true) * 1e6,
        sdk.cost(true) / ours.cost(true),
        by = if ours.cpu.is_some() { "CPU" } else { "wall" },
    )
}

fn main() {
    let s = setup();
    if let Ok(which) = std::env::var("CLIENT_ONLY") {
        only(&s, &which);
        return;
    }
    if std::env::var_os("CLIENT_LONG_ONLY").is_some() {
        print!("{}", long_only(&s));
        return;
    }
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
    if let Ok(path) = std::env::var("CLIENT_BENCH_OUT") {
        match std::fs::write(&path, &table) {
            Ok(()) => eprintln!("wrote {path}"),
            Err(e) => eprintln!("cannot write {path}: {e}"),
        }
    }
    let Setup { rt, server, .. } = s;
    let _ = rt.block_on(server.shutdown());
}
