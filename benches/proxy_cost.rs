//! The gateway's cost beside nginx's, in one run, in front of the same built-in server
//! (`bedrock-converse serve`, its own process) with the same loads:
//!
//! - the gateway, `bedrock-converse proxy` as its own process, validating every frame and
//!   signing every request with SigV4 (static AWS credentials in its environment);
//! - nginx as a plain reverse proxy (`proxy_buffering off`, `proxy_request_buffering
//!   off`, upstream keepalive, the bearer key forwarded untouched, no access log), when
//!   `nginx` is on the `PATH`; otherwise the bench says so and leaves that column out.
//!
//! What is measured is CPU time of the proxy processes (per-thread `schedstat` of the
//! gateway, of nginx's master and workers), not wall time:
//!
//! | load | figure |
//! | --- | --- |
//! | 64 concurrent long ConverseStream responses | CPU s per GB forwarded; peak RSS (`VmHWM`) |
//! | 1,000 rounds of one `converse` per path, one request at a time, the paths taking turns | CPU µs per request; latency added over direct, p50 / p99 |
//! | 32 concurrent short ConverseStream requests | CPU µs per request; requests/s |
//!
//! `cargo bench --bench proxy_cost`. The load is bounded and set by `PROXY_COST_STREAMS`
//! (64), `PROXY_COST_ROUNDS` (2), `PROXY_COST_DELTAS` (text deltas of a long stream,
//! 20,000), `PROXY_COST_SEQUENTIAL` (rounds, 1,000), `PROXY_COST_CONCURRENT` (32) and
//! `PROXY_COST_PER_TASK` (short requests per concurrent task, 40).

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{children_of, cpu_time, env_usize, percentile, status_kib, ChildProcess};

const BINARY: &str = env!("CARGO_BIN_EXE_bedrock-converse");
const UPSTREAM_KEY: &str = "bench-upstream-key";
const CLIENT_KEY: &str = "bench-client-key";
const REQUEST: &str = r#"{"messages":[{"role":"user","content":[{"text":"load"}]}]}"#;

/// One way to the server: its base URL (`.../model/`), the key it takes and the
/// processes whose CPU it costs (none for direct).
struct Path {
    name: &'static str,
    base: String,
    key: &'static str,
    pids: Vec<u32>,
    client: reqwest::Client,
}

impl Path {
    fn new(name: &'static str, base: String, key: &'static str, pids: Vec<u32>) -> Path {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .http1_only()
            .build()
            .expect("client");
        Path {
            name,
            base,
            key,
            pids,
            client,
        }
    }

    fn cpu(&self) -> Duration {
        cpu_time(&self.pids)
    }

    /// The peak resident memory of the path's processes (KiB, summed).
    fn peak_rss_kib(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|&pid| status_kib(pid, "VmHWM:"))
            .sum()
    }
}

/// One request; the bytes of the response body and the time to its last byte.
async fn one(path: &Path, model_op: &str) -> (u64, Duration) {
    let started = Instant::now();
    let mut resp = path
        .client
        .post(format!("{}{model_op}", path.base))
        .bearer_auth(path.key)
        .header("content-type", "application/json")
        .body(REQUEST)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "{} {model_op}", path.name);
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.expect("body") {
        bytes += chunk.len() as u64;
    }
    (bytes, started.elapsed())
}

/// `tasks` concurrent tasks, each making `each` requests one after another; the bytes
/// of every response.
async fn concurrent(path: &Arc<Path>, model_op: &'static str, tasks: usize, each: usize) -> Vec<u64> {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut sizes = Vec::with_capacity(each);
                for _ in 0..each {
                    sizes.push(one(&path, model_op).await.0);
                }
                sizes
            })
        })
        .collect();
    let mut sizes = Vec::with_capacity(tasks * each);
    for h in handles {
        sizes.extend(h.await.expect("task"));
    }
    sizes
}

/// What one path cost under one load.
#[derive(Default, Clone)]
struct Cost {
    cpu: Duration,
    wall: Duration,
    requests: u64,
    bytes: u64,
    latencies: Vec<Duration>,
}

impl Cost {
    fn cpu_per_gb(&self) -> f64 {
        self.cpu.as_secs_f64() / (self.bytes as f64 / 1e9)
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests as f64
    }

    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.wall.as_secs_f64()
    }

    fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn latency_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).as_secs_f64() * 1e3
    }
}

/// Runs `load` once on `path` and returns its cost (CPU of the path's processes).
fn measure<F, Fut>(rt: &tokio::runtime::Runtime, path: &Arc<Path>, load: F) -> Cost
where
    F: FnOnce(Arc<Path>) -> Fut,
    Fut: std::future::Future<Output = Cost>,
{
    let before = path.cpu();
    let started = Instant::now();
    let mut cost = rt.block_on(load(path.clone()));
    cost.wall = started.elapsed();
    cost.cpu = path.cpu().saturating_sub(before);
    cost
}

async fn long_streams(path: Arc<Path>, streams: usize, rounds: usize) -> Cost {
    let mut cost = Cost::default();
    for _ in 0..rounds {
        let sizes = concurrent(&path, "us-east-1.mock.long/converse-stream", streams, 1).await;
        cost.requests += sizes.len() as u64;
        cost.bytes += sizes.iter().sum::<u64>();
    }
    cost
}

/// `n` rounds of one `converse` on each path in turn, one request at a time (the first
/// path of a round rotates): every path sees the same moments of the shared machine, so a
/// slow stretch (another process waking, a frequency step) falls on all of them alike
/// instead of on whichever path was running then. Per path: its latencies, and the CPU of
/// its own processes over the whole run (only its own requests reach them).
fn sequential(rt: &tokio::runtime::Runtime, paths: &[&Arc<Path>], n: usize) -> Vec<Cost> {
    let before: Vec<Duration> = paths.iter().map(|p| p.cpu()).collect();
    let started = Instant::now();
    let mut costs = vec![Cost::default(); paths.len()];
    rt.block_on(async {
        for round in 0..n {
            for k in 0..paths.len() {
                let i = (round + k) % paths.len();
                let (bytes, took) = one(paths[i], "us-east-1.mock.text/converse").await;
                costs[i].requests += 1;
                costs[i].bytes += bytes;
                costs[i].latencies.push(took);
            }
        }
    });
    let wall = started.elapsed();
    for ((cost, path), before) in costs.iter_mut().zip(paths).zip(before) {
        cost.latencies.sort();
        cost.wall = wall;
        cost.cpu = path.cpu().saturating_sub(before);
    }
    costs
}

async fn short_streams(path: Arc<Path>, tasks: usize, each: usize) -> Cost {
    let sizes = concurrent(&path, "us-east-1.mock.text/converse-stream", tasks, each).await;
    Cost {
        requests: sizes.len() as u64,
        bytes: sizes.iter().sum(),
        ..Cost::default()
    }
}

/// A load to run on a path.
type Load = dyn Fn(Arc<Path>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Cost>>>;

// ===== the processes =====

/// `bedrock-converse serve`: bearer key or any SigV4 signature; its base URL.
fn start_server(deltas: usize) -> (ChildProcess, String) {
    let mut server = ChildProcess::spawn(Command::new(BINARY).args([
        "serve",
        "--quiet",
        "--sigv4",
        "--key",
        UPSTREAM_KEY,
        "--long-deltas",
        &deltas.to_string(),
    ]));
    let url = server.word_in_banner("http://", "/model/", 10);
    (server, url)
}

/// The gateway in front of `upstream`, signing with static credentials (SigV4).
fn start_gateway(upstream: &str, dir: &std::path::Path) -> (ChildProcess, String) {
    let config = dir.join("gateway.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "providers": { "bedrock": { "api": "bedrock", "url": upstream, "region": "us-east-1" } },
            "proxy": {
                "listen": "127.0.0.1:0",
                "clientKeys": { "bench": CLIENT_KEY },
                "maxConcurrentStreams": 4096
            }
        })
        .to_string(),
    )
    .expect("gateway config");
    support::start_gateway(
        BINARY,
        &config,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDBENCHEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "bench/secret/key/EXAMPLE"),
            ("AWS_SESSION_TOKEN", ""),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    )
}

/// nginx as a plain reverse proxy in front of `upstream`, or why not.
fn start_nginx(upstream: &str, dir: &std::path::Path) -> Result<(ChildProcess, String), String> {
    let installed = Command::new("nginx").arg("-v").output();
    if !installed.is_ok_and(|o| o.status.success()) {
        return Err("nginx is not installed (apt-get install -y nginx)".into());
    }
    let upstream_addr = upstream
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let d = dir.display();
    let workers = nginx_workers();
    let conf = format!(
        "worker_processes {workers};\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 upstream bedrock {{ server {upstream_addr}; keepalive 256; }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
         \x20     proxy_pass http://bedrock;\n      proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n      proxy_buffering off;\n\
         \x20     proxy_request_buffering off;\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| format!("nginx config: {e}"))?;
    let nginx = ChildProcess::spawn(
        Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&path),
    );
    // Up to 5 s for it to listen.
    for _ in 0..500 {
        let forked = children_of(nginx.pid()).len() >= workers;
        if forked && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((nginx, format!("http://127.0.0.1:{port}/model/")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!(
        "nginx did not listen: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    ))
}

/// One nginx worker per core, as `worker_processes auto` would start.
fn nginx_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ===== the report =====

struct Row {
    load: String,
    direct: String,
    nginx: Option<f64>,
    ours: f64,
    unit: &'static str,
    /// The target as a bound on ours, from nginx's figure.
    target: Option<(&'static str, Bound)>,
}

/// Whether our figure (first) meets the target given nginx's (second).
type Bound = fn(f64, f64) -> bool;

fn print_table(rows: &[Row], nginx_missing: Option<&str>) {
    println!("\n| load | direct | nginx | bedrock-converse proxy | ours / nginx | target | met |");
    println!("| --- | ---: | ---: | ---: | ---: | --- | --- |");
    for r in rows {
        let nginx = r.nginx.map_or("-".to_owned(), |n| format!("{n:.3} {}", r.unit));
        let ratio = r
            .nginx
            .filter(|n| *n > 0.0)
            .map_or("-".to_owned(), |n| format!("{:.2}x", r.ours / n));
        let (target, met) = match r.target {
            None => ("".to_owned(), "".to_owned()),
            Some((label, check)) => {
                let met = match r.nginx {
                    Some(n) => if check(r.ours, n) { "yes" } else { "no" }.to_owned(),
                    None if label.contains("nginx") => "-".to_owned(),
                    None => if check(r.ours, 0.0) { "yes" } else { "no" }.to_owned(),
                };
                (label.to_owned(), met)
            }
        };
        println!(
            "| {} | {} | {nginx} | {:.3} {} | {ratio} | {target} | {met} |",
            r.load, r.direct, r.ours, r.unit
        );
    }
    if let Some(why) = nginx_missing {
        println!("\nnginx column skipped: {why}");
    }
}

fn main() {
    let streams = env_usize("PROXY_COST_STREAMS", 64);
    let rounds = env_usize("PROXY_COST_ROUNDS", 2);
    let deltas = env_usize("PROXY_COST_DELTAS", 20_000);
    let sequential_n = env_usize("PROXY_COST_SEQUENTIAL", 1000);
    let tasks = env_usize("PROXY_COST_CONCURRENT", 32);
    let each = env_usize("PROXY_COST_PER_TASK", 40);
    let dir = std::env::temp_dir().join(format!("bedrock-converse-proxy-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let (server, server_url) = start_server(deltas);
    let (gateway, gateway_url) = start_gateway(&server_url, &dir);
    let nginx = start_nginx(&server_url, &dir);
    let direct = Arc::new(Path::new("direct", server_url.clone(), UPSTREAM_KEY, vec![]));
    let ours = Arc::new(Path::new("gateway", gateway_url, CLIENT_KEY, vec![gateway.pid()]));
    let (nginx_path, nginx_missing) = match &nginx {
        Ok((process, url)) => {
            let mut pids = vec![process.pid()];
            pids.extend(children_of(process.pid()));
            (
                Some(Arc::new(Path::new("nginx", url.clone(), UPSTREAM_KEY, pids))),
                None,
            )
        }
        Err(why) => (None, Some(why.clone())),
    };
    let paths: Vec<&Arc<Path>> = [Some(&direct), nginx_path.as_ref(), Some(&ours)]
        .into_iter()
        .flatten()
        .collect();
    println!(
        "server pid {}, gateway pid {}, nginx pids {:?}",
        server.pid(),
        gateway.pid(),
        nginx_path.as_ref().map(|p| p.pids.clone())
    );

    // Each load: a warm-up at full concurrency on every path, then the measured run.
    let run_all = |load: &Load, warm: bool| -> Vec<Cost> {
        paths
            .iter()
            .map(|p| {
                if warm {
                    rt.block_on(load((*p).clone()));
                }
                measure(&rt, p, load)
            })
            .collect()
    };
    let long = run_all(&move |p| Box::pin(long_streams(p, streams, rounds)), true);
    let peak: Vec<u64> = paths.iter().map(|p| p.peak_rss_kib()).collect();
    // Warm-up: a tenth of the rounds.
    sequential(&rt, &paths, sequential_n / 10);
    let seq = sequential(&rt, &paths, sequential_n);
    let short = run_all(&move |p| Box::pin(short_streams(p, tasks, each)), true);
    for costs in [&long, &short] {
        // The same streams (the mock's latency figures may differ by a digit or two).
        let first = costs[0].bytes;
        assert!(
            costs.iter().all(|c| c.bytes.abs_diff(first) <= first / 1000),
            "every path forwards the same streams: {:?}",
            costs.iter().map(|c| c.bytes).collect::<Vec<_>>()
        );
    }

    let at = |costs: &[Cost], name: &str| {
        paths
            .iter()
            .position(|p| p.name == name)
            .map(|i| costs[i].clone())
    };
    let (ln, lo, ld) = (at(&long, "nginx"), at(&long, "gateway").expect("ours"), &long[0]);
    let (sn, so, sd) = (at(&seq, "nginx"), at(&seq, "gateway").expect("ours"), &seq[0]);
    let (hn, ho, hd) = (
        at(&short, "nginx"),
        at(&short, "gateway").expect("ours"),
        &short[0],
    );
    let added = |c: &Cost, p| c.latency_ms(p) - sd.latency_ms(p);
    let nginx_peak = nginx_path.as_ref().map(|_| peak[1] as f64 / 1024.0);
    let ours_peak = *peak.last().expect("ours") as f64 / 1024.0;

    println!(
        "\n{streams} long streams x {rounds} rounds ({:.1} MB each), {sequential_n} sequential converse per path (the paths taking turns), \
         {tasks} x {each} short streams; client, server and proxies share {} cores",
        ld.bytes as f64 / ld.requests as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rows = vec![
        Row {
            load: format!("{streams} long streams: CPU per GB forwarded"),
            direct: "".into(),
            nginx: ln.as_ref().map(Cost::cpu_per_gb),
            ours: lo.cpu_per_gb(),
            unit: "s",
            target: Some(("<= 1.1x nginx", |o, n| o <= 1.1 * n)),
        },
        Row {
            load: format!("{streams} long streams: throughput"),
            direct: format!("{:.0} MiB/s", ld.mib_per_s()),
            nginx: ln.as_ref().map(Cost::mib_per_s),
            ours: lo.mib_per_s(),
            unit: "MiB/s",
            target: None,
        },
        Row {
            load: format!("{streams} long streams: peak RSS (VmHWM)"),
            direct: "".into(),
            nginx: nginx_peak,
            ours: ours_peak,
            unit: "MiB",
            target: Some(("< 32 MiB", |o, _| o < 32.0)),
        },
        Row {
            load: format!("{sequential_n} sequential converse: CPU per request"),
            direct: "".into(),
            nginx: sn.as_ref().map(Cost::cpu_us_per_request),
            ours: so.cpu_us_per_request(),
            unit: "µs",
            target: None,
        },
        Row {
            load: format!("{sequential_n} sequential converse: added p50"),
            direct: format!("{:.3} ms", sd.latency_ms(0.5)),
            nginx: sn.as_ref().map(|c| added(c, 0.5)),
            ours: added(&so, 0.5),
            unit: "ms",
            target: None,
        },
        Row {
            load: format!("{sequential_n} sequential converse: added p99"),
            direct: format!("{:.3} ms", sd.latency_ms(0.99)),
            nginx: sn.as_ref().map(|c| added(c, 0.99)),
            ours: added(&so, 0.99),
            unit: "ms",
            target: Some(("<= nginx + 0.1 ms", |o, n| o <= n + 0.1)),
        },
        Row {
            load: format!("{tasks} concurrent short streams: CPU per request"),
            direct: "".into(),
            nginx: hn.as_ref().map(Cost::cpu_us_per_request),
            ours: ho.cpu_us_per_request(),
            unit: "µs",
            target: Some(("<= 1.5x nginx", |o, n| o <= 1.5 * n)),
        },
        Row {
            load: format!("{tasks} concurrent short streams: throughput"),
            direct: format!("{:.0} req/s", hd.requests_per_s()),
            nginx: hn.as_ref().map(Cost::requests_per_s),
            ours: ho.requests_per_s(),
            unit: "req/s",
            target: None,
        },
    ];
    print_table(&rows, nginx_missing.as_deref());
    drop(nginx);
    drop(gateway);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
