//! Load through the signing gateway: 64 concurrent long ConverseStream responses on
//! loopback, fetched directly from the built-in Bedrock server and through
//! `bedrock-converse proxy` (run as its own process, so its memory is its own), side by
//! side: frames/s, bytes/s, time to first byte (p50, p99) and the proxy's peak RSS.
//!
//! `cargo bench --bench proxy` (set `PROXY_BENCH_STREAMS`, `PROXY_BENCH_ROUNDS`,
//! `PROXY_BENCH_DELTAS` to change the load).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use bedrock_converse::eventstream::EventStreamCodec;
use bedrock_converse::server::MockBedrock;

use support::{env_usize, percentile, status_kib as rss_kib};

const UPSTREAM_KEY: &str = "bench-upstream-key";
const CLIENT_KEY: &str = "bench-client-key";

#[derive(Default)]
struct Round {
    frames: u64,
    bytes: u64,
    ttfb: Vec<Duration>,
    elapsed: Duration,
}

async fn one_stream(client: &reqwest::Client, url: &str, key: &str) -> (u64, u64, Duration) {
    let body = r#"{"messages":[{"role":"user","content":[{"text":"load"}]}]}"#;
    let started = Instant::now();
    let mut resp = client
        .post(url)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "{url}");
    let mut ttfb = None;
    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::new();
    let (mut frames, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = resp.chunk().await.expect("body") {
        ttfb.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len() as u64;
        buf.extend_from_slice(&chunk);
        while let Some(_m) = codec.decode(&mut buf).expect("valid frames") {
            frames += 1;
        }
    }
    (frames, bytes, ttfb.unwrap_or_default())
}

async fn run(url: Arc<String>, key: &'static str, streams: usize, rounds: usize) -> Round {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(streams)
        .build()
        .expect("client");
    let mut round = Round::default();
    let started = Instant::now();
    for _ in 0..rounds {
        let tasks: Vec<_> = (0..streams)
            .map(|_| {
                let client = client.clone();
                let url = url.clone();
                tokio::spawn(async move { one_stream(&client, &url, key).await })
            })
            .collect();
        for t in tasks {
            let (f, b, ttfb) = t.await.expect("task");
            round.frames += f;
            round.bytes += b;
            round.ttfb.push(ttfb);
        }
    }
    round.elapsed = started.elapsed();
    round.ttfb.sort();
    round
}

struct Measured {
    direct: Round,
    proxied: Round,
    /// One request at a time: the latency the proxy adds, without queueing.
    direct_alone: Round,
    proxied_alone: Round,
    idle_rss: u64,
    peak_rss: u64,
}

/// Runs the load directly against a fresh built-in server and through a fresh proxy
/// process in front of it.
fn measure(
    rt: &tokio::runtime::Runtime,
    streams: usize,
    rounds: usize,
    deltas: usize,
    frame_delay: Duration,
    alone: usize,
) -> Measured {
    let server = rt.block_on(async {
        MockBedrock::builder()
            .bearer_key(UPSTREAM_KEY)
            .long_deltas(deltas)
            .frame_delay(frame_delay)
            .start()
            .await
            .expect("mock server")
    });
    let config = std::env::temp_dir().join(format!(
        "bedrock-converse-proxy-bench-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &config,
        serde_json::json!({
            "providers": { "bedrock": {
                "api": "bedrock", "key": UPSTREAM_KEY, "url": server.url(), "region": "us-east-1"
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
    let (proxy, proxy_base) = support::start_gateway(env!("CARGO_BIN_EXE_bedrock-converse"), &config, &[]);
    let pid = proxy.pid();
    let idle_rss = rss_kib(pid, "VmRSS:").unwrap_or(0);

    let model = "us-east-1.mock.long";
    let direct_url = Arc::new(format!("{}{model}/converse-stream", server.url()));
    let proxy_url = Arc::new(format!("{proxy_base}{model}/converse-stream"));

    // Warm both paths at full concurrency (connection pools, the server's frame cache,
    // allocators), then measure.
    rt.block_on(run(direct_url.clone(), UPSTREAM_KEY, streams, 1));
    rt.block_on(run(proxy_url.clone(), CLIENT_KEY, streams, 1));
    let direct_alone = rt.block_on(run(direct_url.clone(), UPSTREAM_KEY, 1, alone));
    let proxied_alone = rt.block_on(run(proxy_url.clone(), CLIENT_KEY, 1, alone));
    let direct = rt.block_on(run(direct_url, UPSTREAM_KEY, streams, rounds));
    let proxied = rt.block_on(run(proxy_url, CLIENT_KEY, streams, rounds));
    let peak_rss = rss_kib(pid, "VmHWM:").unwrap_or(0);
    drop(proxy);
    let _ = std::fs::remove_file(&config);
    let _ = rt.block_on(server.shutdown());
    assert_eq!(
        direct.frames, proxied.frames,
        "the proxy must forward every frame"
    );
    Measured {
        direct,
        proxied,
        direct_alone,
        proxied_alone,
        idle_rss,
        peak_rss,
    }
}

fn report(title: &str, m: &Measured) {
    println!("\n{title}\n");
    println!("| path | frames/s | MiB/s | TTFB p50 | TTFB p99 |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, r) in [("direct", &m.direct), ("through proxy", &m.proxied)] {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "| {name} | {:.0} | {:.1} | {:.3} ms | {:.3} ms |",
            r.frames as f64 / secs,
            r.bytes as f64 / secs / (1024.0 * 1024.0),
            percentile(&r.ttfb, 0.5).as_secs_f64() * 1e3,
            percentile(&r.ttfb, 0.99).as_secs_f64() * 1e3,
        );
    }
    let rate = |r: &Round| r.bytes as f64 / r.elapsed.as_secs_f64();
    let added = |p| {
        (percentile(&m.proxied.ttfb, p).as_secs_f64() - percentile(&m.direct.ttfb, p).as_secs_f64()) * 1e3
    };
    let alone = |r: &Round, p| percentile(&r.ttfb, p).as_secs_f64() * 1e3;
    println!(
        "\nproxy throughput / direct: {:.1}%; TTFB under load, added: p50 {:.3} ms, p99 {:.3} ms; proxy RSS idle {} KiB, peak {} KiB",
        rate(&m.proxied) / rate(&m.direct) * 100.0,
        added(0.5),
        added(0.99),
        m.idle_rss,
        m.peak_rss
    );
    if m.direct_alone.ttfb.is_empty() {
        return;
    }
    println!(
        "one request at a time ({} each): TTFB direct p50 {:.3} ms p99 {:.3} ms, through proxy p50 {:.3} ms p99 {:.3} ms: added p50 {:.3} ms, p99 {:.3} ms",
        m.direct_alone.ttfb.len(),
        alone(&m.direct_alone, 0.5),
        alone(&m.direct_alone, 0.99),
        alone(&m.proxied_alone, 0.5),
        alone(&m.proxied_alone, 0.99),
        alone(&m.proxied_alone, 0.5) - alone(&m.direct_alone, 0.5),
        alone(&m.proxied_alone, 0.99) - alone(&m.direct_alone, 0.99),
    );
}

fn main() {
    let streams = env_usize("PROXY_BENCH_STREAMS", 64);
    let rounds = env_usize("PROXY_BENCH_ROUNDS", 3);
    let deltas = env_usize("PROXY_BENCH_DELTAS", 2_000);
    let paced_deltas = env_usize("PROXY_BENCH_PACED_DELTAS", 500);
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let flat_out = measure(
        &rt,
        streams,
        rounds,
        deltas,
        Duration::ZERO,
        env_usize("PROXY_BENCH_ALONE", 200),
    );
    report(
        &format!(
            "Flat out: {streams} concurrent streams x {rounds} rounds, {deltas} deltas each, pre-encoded 16 KiB writes; \
             client, server and proxy share 2 cores"
        ),
        &flat_out,
    );
    let paced = measure(&rt, streams, 1, paced_deltas, Duration::from_millis(1), 0);
    report(
        &format!(
            "Paced like a model: {streams} concurrent streams, {paced_deltas} deltas each, one frame per ms per stream"
        ),
        &paced,
    );
}
