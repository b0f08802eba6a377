//! What translation costs where a user pays it: the gateway process's CPU per long
//! stream, `POST /v1/chat/completions` (`stream: true`, OpenAI SSE out) beside the
//! native pass-through `POST /model/{id}/converse-stream`, through the same gateway and
//! the same upstream stream.
//!
//! The gateway runs as its own process (`bedrock-converse proxy`) in front of the
//! built-in server (in this process) answering its `long` scenario with
//! `DIALECT_GATEWAY_DELTAS` text deltas (default 4,000). What is measured is the gateway
//! process's CPU time (per-thread `schedstat`, see `support/mod.rs`), not wall time, divided
//! by the streams it served; `DIALECT_GATEWAY_STREAMS` concurrent streams (default 16)
//! per round, `DIALECT_GATEWAY_ROUNDS` rounds (default 20), the two routes alternating
//! round by round after one warm-up round each.
//!
//! Then, in the same run, LiteLLM's proxy (see `dialect_litellm/mod.rs`: `LITELLM_BIN`)
//! in front of the same server on the same stream: its process and its children's CPU
//! over `DIALECT_GATEWAY_LITELLM_STREAMS` concurrent streams (default 8, once, after one
//! warm-up stream); skipped, saying why, when it is not found.
//!
//! `LITELLM_BIN=/work/litellm-venv/bin/litellm cargo bench --bench dialect_gateway`

use std::sync::Arc;
use std::time::Duration;

use bedrock_converse::server::MockBedrock;

#[path = "support/mod.rs"]
mod support;

#[path = "dialect_litellm/mod.rs"]
mod dialect_litellm;

use support::{alternating_cpu, children_of, env_usize, ChildProcess};

const UPSTREAM_KEY: &str = "bench-upstream-key";
const CLIENT_KEY: &str = "bench-client-key";

/// The gateway process in front of `upstream`, its base URL, and its config file.
fn start_proxy(upstream: &str) -> (ChildProcess, String, std::path::PathBuf) {
    let config = std::env::temp_dir().join(format!(
        "bedrock-converse-dialect-gateway-bench-{}.json",
        std::process::id()
    ));
    std::fs::write(
        &config,
        serde_json::json!({
            "providers": { "bedrock": {
                "api": "bedrock", "key": UPSTREAM_KEY, "url": upstream, "region": "us-east-1",
                "models": { "long": { "modelName": "mock.long", "regionPrefix": false } }
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
    let base = base.trim_end_matches('/').trim_end_matches("/model").to_owned();
    (proxy, base, config)
}

/// One route: its URL and request body, and what its last bytes must be.
struct Route {
    name: &'static str,
    url: String,
    body: &'static str,
    ends_with: &'static [u8],
}

/// `streams` concurrent requests of `route`, each read to its end; the bytes received.
async fn load(client: &reqwest::Client, route: Arc<Route>, streams: usize) -> u64 {
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (client, route) = (client.clone(), route.clone());
            tokio::spawn(async move {
                let mut resp = client
                    .post(route.url.as_str())
                    .bearer_auth(CLIENT_KEY)
                    .header("content-type", "application/json")
                    .body(route.body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), 200, "{}", route.name);
                let mut n = 0u64;
                let mut tail = Vec::new();
                while let Some(chunk) = resp.chunk().await.expect("body") {
                    n += chunk.len() as u64;
                    tail = chunk.to_vec();
                }
                assert!(
                    tail.ends_with(route.ends_with),
                    "{}: the whole stream",
                    route.name
                );
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

/// One route's totals: CPU of the process measured, bytes received, streams.
struct Measured {
    name: &'static str,
    cpu: Duration,
    bytes: u64,
    streams: usize,
}

impl Measured {
    fn cpu_ms_per_stream(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3 / self.streams.max(1) as f64
    }
}

/// `rounds` rounds of `streams` concurrent streams per route, the routes alternating;
/// the CPU of `pids` while each ran.
fn measure_rounds(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    routes: &[Arc<Route>],
    pids: &[u32],
    streams: usize,
    rounds: usize,
) -> Vec<Measured> {
    let totals = alternating_cpu(pids, routes.len(), rounds, |i| {
        rt.block_on(load(client, routes[i].clone(), streams))
    });
    routes
        .iter()
        .zip(totals)
        .map(|(route, (cpu, bytes))| Measured {
            name: route.name,
            cpu,
            bytes,
            streams: streams * rounds,
        })
        .collect()
}

/// LiteLLM's proxy (its process and its children) on the same stream, when found:
/// one warm-up stream, then `streams` concurrent ones.
fn measure_litellm(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    upstream: &str,
    streams: usize,
) -> Option<Measured> {
    let litellm = rt.block_on(dialect_litellm::start(upstream, "mock.long", CLIENT_KEY))?;
    let route = Arc::new(Route {
        name: "LiteLLM /v1/chat/completions (stream: true)",
        url: litellm.chat_completions_url(),
        body: r#"{"model":"mock","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell me a long story"}]}"#,
        ends_with: b"data: [DONE]\n\n",
    });
    rt.block_on(load(client, route.clone(), 1));
    let mut pids = vec![litellm.pid()];
    pids.extend(children_of(litellm.pid()));
    measure_rounds(rt, client, &[route], &pids, streams, 1).pop()
}

fn print_table(rows: &[Measured], native_ms: f64) {
    println!("| route | streams | bytes out per stream | process CPU | CPU ms per stream | vs native |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let ms = row.cpu_ms_per_stream();
        println!(
            "| {} | {} | {} | {:.0} ms | {ms:.3} | {:.2}x |",
            row.name,
            row.streams,
            row.bytes / row.streams.max(1) as u64,
            row.cpu.as_secs_f64() * 1e3,
            ms / native_ms
        );
    }
}

fn main() {
    let streams = env_usize("DIALECT_GATEWAY_STREAMS", 16);
    let rounds = env_usize("DIALECT_GATEWAY_ROUNDS", 20);
    let deltas = env_usize("DIALECT_GATEWAY_DELTAS", 4_000);
    let litellm_streams = env_usize("DIALECT_GATEWAY_LITELLM_STREAMS", 8);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(async {
        MockBedrock::builder()
            .bearer_key(UPSTREAM_KEY)
            .accept_sigv4()
            .long_deltas(deltas)
            .max_recorded(0)
            .start()
            .await
            .expect("mock server")
    });
    let (proxy, base, config) = start_proxy(&server.url());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(streams)
        .build()
        .expect("client");
    let routes = [
        Route {
            name: "native /model/mock.long/converse-stream",
            url: format!("{base}/model/mock.long/converse-stream"),
            body: r#"{"messages":[{"role":"user","content":[{"text":"Tell me a long story"}]}]}"#,
            // The last frame of a ConverseStream ends with its CRC: anything goes.
            ends_with: b"",
        },
        Route {
            name: "/v1/chat/completions (stream: true)",
            url: format!("{base}/v1/chat/completions"),
            body: r#"{"model":"bedrock/long","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell me a long story"}]}"#,
            ends_with: b"data: [DONE]\n\n",
        },
    ]
    .map(Arc::new);
    for route in &routes {
        rt.block_on(load(&client, route.clone(), streams));
    }
    let mut rows = measure_rounds(&rt, &client, &routes, &[proxy.pid()], streams, rounds);
    drop(proxy);
    let _ = std::fs::remove_file(&config);
    rows.extend(measure_litellm(&rt, &client, &server.url(), litellm_streams));
    println!(
        "\nour gateway: {streams} concurrent streams x {rounds} rounds per route; LiteLLM: \
         {litellm_streams} concurrent streams, once; the built-in server's `long` stream with \
         {deltas} text deltas; process CPU (per-thread schedstat; LiteLLM with its children)\n"
    );
    let native_ms = rows[0].cpu_ms_per_stream();
    print_table(&rows, native_ms);
    println!(
        "\n/v1/chat/completions / native CPU per stream: {:.2}x (target: at most 1.25x)",
        rows[1].cpu_ms_per_stream() / native_ms
    );
}
