//! Time to first byte added by the dialect routes, one request at a time on loopback:
//! the same `text` stream of the built-in Bedrock server fetched
//!
//! - `direct`: from the mock server itself (`/model/mock.text/converse-stream`);
//! - `native`: through the gateway's pass-through (`/model/{id}/converse-stream`);
//! - `openai`: through `POST /v1/chat/completions` (`stream: true`);
//! - `anthropic`: through `POST /v1/messages` (`stream: true`);
//! - `litellm`: through LiteLLM's proxy (`/v1/chat/completions`, model
//!   `bedrock/converse/mock.text` at the same mock server, SigV4-signed), when its
//!   `litellm` command is found: `LITELLM_BIN` (e.g. `/work/litellm-venv/bin/litellm`),
//!   else `target/litellm-venv/bin/litellm`, else `PATH`; the bench says which it
//!   used, or that it found none and skipped the row.
//!
//! TTFB is from sending the request to the first body chunk; p50 and p99 over
//! `DIALECT_TTFB_REQUESTS` requests (default 1000) after 50 warm-up requests. "Added"
//! is a route's percentile minus `direct`'s (what the gateway in front of the server
//! costs); for our dialect routes also minus `native`'s (what translation costs).
//! LiteLLM starts only after our routes are measured (so its Python process, starting
//! or idle, shares no core with them), and `direct` is measured again beside it.
//!
//! `cargo bench --bench dialect_ttfb --features proxy,server`

use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

#[path = "dialect_litellm/mod.rs"]
mod dialect_litellm;

use support::{env_usize, percentile};

use bedrock_converse::client::{Auth, Secret};
use bedrock_converse::proxy::{ClientKey, Proxy, ProxyConfig};
use bedrock_converse::server::MockBedrock;

const UPSTREAM_KEY: &str = "bench-upstream-key";
const CLIENT_KEY: &str = "bench-client-key";
const WARMUP: usize = 50;

/// One route to measure: URL, headers, body.
struct Route {
    name: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: String,
}

const PROMPT: &str = "How fast is the first byte?";

fn converse_body() -> String {
    format!(r#"{{"messages":[{{"role":"user","content":[{{"text":"{PROMPT}"}}]}}]}}"#)
}

fn chat_body(model: &str) -> String {
    format!(r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"{PROMPT}"}}]}}"#)
}

fn messages_body() -> String {
    format!(
        r#"{{"model":"mock.text","stream":true,"max_tokens":256,"messages":[{{"role":"user","content":"{PROMPT}"}}]}}"#
    )
}

/// The TTFB of one request; the rest of the body is read (and must be there).
async fn ttfb(client: &reqwest::Client, route: &Route) -> Duration {
    let mut request = client.post(&route.url).header("content-type", "application/json");
    for (name, value) in &route.headers {
        request = request.header(*name, value);
    }
    let started = Instant::now();
    let mut response = request.body(route.body.clone()).send().await.expect("send");
    assert!(
        response.status().is_success(),
        "{}: {}",
        route.name,
        response.status()
    );
    let mut first = None;
    let mut bytes = 0;
    while let Some(chunk) = response.chunk().await.expect("body") {
        first.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len();
    }
    assert!(bytes > 0, "{}: empty body", route.name);
    first.unwrap_or_default()
}

async fn measure(client: &reqwest::Client, route: &Route, n: usize) -> (Duration, Duration) {
    for _ in 0..WARMUP {
        ttfb(client, route).await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(ttfb(client, route).await);
    }
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// p50 and p99 of one route.
struct Row {
    name: &'static str,
    p50: Duration,
    p99: Duration,
}

/// Prints the table: each route's percentiles, and what it adds over `direct` (and,
/// for the dialect routes, over `native`).
fn print_table(rows: &[Row], n: usize) {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    let added = |x: Duration, base: Duration| micros(x) - micros(base);
    println!("\nTTFB, one request at a time, {n} requests per route (after {WARMUP} warm-up)\n");
    println!("| route | p50 µs | p99 µs | added p50 / p99 vs direct | added p50 / p99 vs native |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in rows {
        // LiteLLM is compared with the `direct` row measured beside it.
        let direct = if row.name == "litellm" {
            find("direct (again)")
        } else {
            find("direct")
        };
        let vs = |base: Option<&Row>| match base {
            Some(b) if !row.name.starts_with("direct") && b.name != row.name => {
                format!("{:+.0} / {:+.0} µs", added(row.p50, b.p50), added(row.p99, b.p99))
            }
            _ => String::new(),
        };
        let vs_native = match row.name {
            "openai" | "anthropic" => vs(find("native")),
            _ => String::new(),
        };
        println!(
            "| {} | {:.0} | {:.0} | {} | {} |",
            row.name,
            micros(row.p50),
            micros(row.p99),
            vs(direct),
            vs_native
        );
    }
}

fn main() {
    let n = env_usize("DIALECT_TTFB_REQUESTS", 1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let server = MockBedrock::builder()
            .bearer_key(UPSTREAM_KEY)
            .accept_sigv4()
            .start()
            .await
            .expect("mock server");
        let config = ProxyConfig::new(
            server.url(),
            Auth::Bearer(Secret::new(UPSTREAM_KEY)),
            vec![ClientKey {
                id: "bench".to_owned(),
                secret: CLIENT_KEY.to_owned(),
            }],
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gateway = listener.local_addr().expect("addr");
        tokio::spawn(
            Proxy::new(config)
                .expect("proxy")
                .serve(listener, std::future::pending()),
        );
        let bearer = |key: &str| vec![("authorization", format!("Bearer {key}"))];
        let mut routes = vec![
            Route {
                name: "direct",
                url: format!("{}mock.text/converse-stream", server.url()),
                headers: bearer(UPSTREAM_KEY),
                body: converse_body(),
            },
            Route {
                name: "native",
                url: format!("http://{gateway}/model/mock.text/converse-stream"),
                headers: bearer(CLIENT_KEY),
                body: converse_body(),
            },
            Route {
                name: "openai",
                url: format!("http://{gateway}/v1/chat/completions"),
                headers: bearer(CLIENT_KEY),
                body: chat_body("mock.text"),
            },
            Route {
                name: "anthropic",
                url: format!("http://{gateway}/v1/messages"),
                headers: vec![
                    ("x-api-key", CLIENT_KEY.to_owned()),
                    ("anthropic-version", "2023-06-01".to_owned()),
                ],
                body: messages_body(),
            },
        ];
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("client");
        let mut rows = Vec::new();
        for route in &routes {
            let (p50, p99) = measure(&client, route, n).await;
            rows.push(Row {
                name: route.name,
                p50,
                p99,
            });
        }
        let litellm = dialect_litellm::start(&server.url(), "mock.text", CLIENT_KEY).await;
        if let Some(l) = &litellm {
            let beside = [
                Route {
                    name: "direct (again)",
                    ..routes.remove(0)
                },
                Route {
                    name: "litellm",
                    url: l.chat_completions_url(),
                    headers: bearer(CLIENT_KEY),
                    body: chat_body("mock"),
                },
            ];
            for route in &beside {
                let (p50, p99) = measure(&client, route, n).await;
                rows.push(Row {
                    name: route.name,
                    p50,
                    p99,
                });
            }
        }
        print_table(&rows, n);
        drop(litellm);
    });
}
