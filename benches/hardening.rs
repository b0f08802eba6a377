//! The gateway under attack, measured: what each hole of the hardening issue looked like
//! from outside, on loopback, against `bedrock-converse proxy` running as its own process
//! (release build, so its file descriptors and memory are its own) in front of the
//! built-in server.
//!
//! Each attack prints what it measured: connections still open on the attacker's side,
//! the gateway's open file descriptors (`/proc/<pid>/fd`), its resident memory
//! (`VmRSS`, `VmHWM`), its `/metrics`, and whether the upstream (or another listener)
//! saw anything it should not have.
//!
//! `cargo bench --bench hardening` (about a minute and a half; every loop is bounded).
//! The idle-connection attack opens 4,000 sockets: raise the open-files limit first
//! (`ulimit -n 16384`); with a lower limit it opens what the limit allows and says so.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use bedrock_converse::server::{MockBedrock, MockBedrockHandle};

mod support;

const UPSTREAM_KEY: &str = "hardening-upstream-key";
const CLIENT_KEY: &str = "hardening-client-key";

/// A `bedrock-converse proxy` child process, killed on drop.
struct Gateway {
    child: support::ChildProcess,
    /// `http://127.0.0.1:port`.
    base: String,
    config: PathBuf,
}

impl Gateway {
    /// Starts the gateway with `proxy` as its `proxy` config block, in front of `upstream`.
    fn start(upstream: &str, proxy: serde_json::Value) -> Gateway {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let config = std::env::temp_dir().join(format!(
            "bedrock-converse-hardening-{}-{}.json",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut block = serde_json::json!({
            "listen": "127.0.0.1:0",
            "clientKeys": { "bench": CLIENT_KEY },
        });
        for (k, v) in proxy.as_object().expect("an object") {
            block[k] = v.clone();
        }
        let text = serde_json::json!({
            "providers": { "bedrock": {
                "api": "bedrock", "key": UPSTREAM_KEY, "url": upstream, "region": "us-east-1"
            } },
            "proxy": block,
        });
        std::fs::write(&config, text.to_string()).expect("config");
        let (child, url) = support::start_gateway(env!("CARGO_BIN_EXE_bedrock-converse"), &config, &[]);
        let base = url.trim_end_matches("/model/").to_owned();
        Gateway { child, base, config }
    }

    fn addr(&self) -> SocketAddr {
        self.base.trim_start_matches("http://").parse().expect("address")
    }

    fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Open file descriptors of the gateway process.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// `field` of `/proc/<pid>/status` in MiB (`VmRSS:`, `VmHWM:`).
    fn mib(&self, field: &str) -> f64 {
        support::status_kib(self.pid(), field).unwrap_or(0) as f64 / 1024.0
    }

    /// One sample of `/metrics` (`name` with its labels, as printed), 0 when absent.
    async fn metric(&self, http: &reqwest::Client, sample: &str) -> u64 {
        let Ok(response) = http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(CLIENT_KEY)
            .send()
            .await
        else {
            return 0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// POSTs a small Converse request for `model` to `op`: the status, 0 when refused.
    async fn post(&self, http: &reqwest::Client, model: &str, op: &str) -> u16 {
        http.post(format!("{}/model/{model}/{op}", self.base))
            .bearer_auth(CLIENT_KEY)
            .header("content-type", "application/json")
            .body(r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// The soft open-files limit of this process (the gateway child inherits it).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))?
                .split_whitespace()
                .nth(3)?
                .parse()
                .ok()
        })
        .unwrap_or(1024)
}

/// Whether the peer has closed `conn` (a read returns end-of-file or an error within a
/// moment); a connection that is merely quiet is still open.
async fn closed(conn: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(1), conn.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// How many of `conns` the gateway still holds open.
async fn still_open(conns: &mut [TcpStream]) -> usize {
    let mut open = 0;
    for c in conns.iter_mut() {
        if !closed(c).await {
            open += 1;
        }
    }
    open
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// 200 connections sending a request head one byte per second.
async fn slowloris(gateway: &Gateway) {
    const N: usize = 200;
    let head = b"POST /model/mock.text/converse HTTP/1.1\r\nHost: x\r\n";
    let mut conns = Vec::with_capacity(N);
    for _ in 0..N {
        if let Ok(c) = TcpStream::connect(gateway.addr()).await {
            conns.push(c);
        }
    }
    let opened = conns.len();
    let started = Instant::now();
    let mut open_at_5 = 0;
    let mut max_fds = 0;
    for (second, byte) in head.iter().cycle().enumerate().take(15) {
        for c in &mut conns {
            let _ = c.write_all(std::slice::from_ref(byte)).await;
        }
        max_fds = max_fds.max(gateway.fds());
        if second == 5 {
            open_at_5 = still_open(&mut conns).await;
        }
        tokio::time::sleep_until((started + Duration::from_secs(second as u64 + 1)).into()).await;
    }
    let open_at_15 = still_open(&mut conns).await;
    println!(
        "slowloris: {opened} connections, one byte per second: {open_at_5} open at 5 s, {open_at_15} open at 15 s; \
         gateway at {max_fds} fds at most, {} now",
        gateway.fds()
    );
}

/// 4,000 connections that connect and send nothing.
async fn idle_connections(gateway: &Gateway) {
    let limit = open_files_limit();
    let n = 4_000.min(limit.saturating_sub(64));
    if n < 4_000 {
        println!(
            "idle: the open-files limit is {limit}; opening {n} connections (ulimit -n 16384 for 4,000)"
        );
    }
    let mut conns = Vec::with_capacity(n);
    let mut max_fds = 0;
    for i in 0..n {
        match TcpStream::connect(gateway.addr()).await {
            Ok(c) => conns.push(c),
            Err(_) => break,
        }
        if i % 250 == 0 {
            max_fds = max_fds.max(gateway.fds());
        }
    }
    let opened = conns.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    max_fds = max_fds.max(gateway.fds());
    let open_at_1 = still_open(&mut conns).await;
    let good = gateway.post(&http(), "mock.text", "converse").await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let open_at_12 = still_open(&mut conns).await;
    let good_after = gateway.post(&http(), "mock.text", "converse").await;
    println!(
        "idle: {opened} connections: {open_at_1} open after 1 s, {open_at_12} at 12 s; a good request at 1 s: {good} \
         (0: refused, the cap is full), at 12 s: {good_after}; \
         gateway at {max_fds} fds at most, {} now",
        gateway.fds()
    );
}

/// 32 clients that start a long stream and never read it (32 slots, 8 s idle).
async fn non_reading_clients(gateway: &Gateway) {
    let http = http();
    let body = r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let request = format!(
        "POST /model/mock.long/converse-stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conns = Vec::new();
    for _ in 0..32 {
        let mut c = TcpStream::connect(gateway.addr()).await.expect("connect");
        c.write_all(request.as_bytes()).await.expect("request");
        conns.push(c);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let in_flight_2 = gateway.metric(&http, "bedrock_proxy_streams_in_flight").await;
    let other_2 = gateway.post(&http, "mock.text", "converse").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let in_flight_12 = gateway.metric(&http, "bedrock_proxy_streams_in_flight").await;
    let cut = gateway
        .metric(&http, "bedrock_proxy_streams_cut_total{reason=\"slow_reader\"}")
        .await;
    let other_12 = gateway.post(&http, "mock.text", "converse").await;
    println!(
        "non-reading: 32 clients never read (32 slots, 8 s idle): {in_flight_2} in flight and another request {other_2} at 2 s; \
         at 12 s {in_flight_12} in flight, {cut} cut as slow readers, another request {other_12}; RSS {:.1} MiB",
        gateway.mib("VmRSS:")
    );
    drop(conns);
}

/// One upload that declares 1 MiB and sends a byte a second (5 s body timeout).
async fn slow_upload(gateway: &Gateway) {
    let http = http();
    let mut c = TcpStream::connect(gateway.addr()).await.expect("connect");
    let head = format!(
        "POST /model/mock.text/converse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{"
    );
    c.write_all(head.as_bytes()).await.expect("head");
    let started = Instant::now();
    let mut in_flight_seen = 0;
    let mut answer = String::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        in_flight_seen = in_flight_seen.max(gateway.metric(&http, "bedrock_proxy_streams_in_flight").await);
        let _ = c.write_all(b" ").await;
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(5), c.read(&mut buf)).await {
            answer = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("closed")
                .to_owned();
            break;
        }
    }
    let timeouts = gateway
        .metric(&http, "bedrock_proxy_rejected_total{reason=\"body_timeout\"}")
        .await;
    println!(
        "slow upload: 1 MiB declared, a byte a second: in flight while uploading: {in_flight_seen}; answered after {:.1} s: \
         {answer:?}; body_timeout refusals counted: {timeouts}",
        started.elapsed().as_secs_f64()
    );
}

/// Model ids made of dot segments: the statuses, and how many reached the upstream.
async fn dot_segments(gateway: &Gateway, upstream: &MockBedrockHandle) {
    let before = upstream.request_count();
    let mut statuses = Vec::new();
    for id in ["%2e%2e", "%2E%2e", "..", ".", "%2e", ""] {
        let request = format!(
            "POST /model/{id}/converse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CLIENT_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let mut c = TcpStream::connect(gateway.addr()).await.expect("connect");
        c.write_all(request.as_bytes()).await.expect("request");
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut reply)).await;
        let status = String::from_utf8_lossy(&reply)
            .split_whitespace()
            .nth(1)
            .unwrap_or("none")
            .to_owned();
        statuses.push(format!("{id:?} {status}"));
    }
    println!(
        "dot segments: {}; requests that reached the upstream: {}",
        statuses.join(", "),
        upstream.request_count() - before
    );
}

/// An upstream that answers every request with a 307 to another loopback listener: what
/// the client saw, and how many connections (and session tokens) that listener got.
async fn redirect() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let elsewhere_addr = elsewhere.local_addr().expect("addr");
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = elsewhere.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let redirector = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let redirector_url = format!("http://{}/model/", redirector.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = redirector.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = conn.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{elsewhere_addr}/steal\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    let gateway = Gateway::start(&redirector_url, serde_json::json!({}));
    let status = gateway.post(&http(), "mock.text", "converse").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "redirect: upstream answers 307 to another listener: the client got {status}; connections to the other listener: {}",
        reached.load(Ordering::Relaxed)
    );
}

/// 16 concurrent 19 MB bodies: the gateway's memory before and at its peak.
async fn big_bodies(upstream: &str, budget: Option<u64>) {
    let mut proxy = serde_json::json!({});
    if let Some(b) = budget {
        proxy["maxBufferedBytes"] = b.into();
    }
    let gateway = Arc::new(Gateway::start(upstream, proxy));
    let before = gateway.mib("VmRSS:");
    let text = "x".repeat(19_000_000);
    let body = Arc::new(format!(
        r#"{{"messages":[{{"role":"user","content":[{{"text":"{text}"}}]}}]}}"#
    ));
    let http = http();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (http, body, base) = (http.clone(), body.clone(), gateway.base.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/model/mock.text/converse"))
                .bearer_auth(CLIENT_KEY)
                .header("content-type", "application/json")
                .body(body.as_bytes().to_vec())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap_or(0)).or_default() += 1;
    }
    let label = budget.map_or("default 256 MiB".to_owned(), |b| format!("{} MiB", b >> 20));
    println!(
        "big bodies ({label} budget): 16 concurrent 19 MB bodies: RSS {before:.1} MiB before, {:.1} MiB peak; \
         statuses {statuses:?} (0: the connection was closed while the client was still writing)",
        gateway.mib("VmHWM:")
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let upstream = MockBedrock::builder()
            .bearer_key(UPSTREAM_KEY)
            .long_deltas(400_000)
            .start()
            .await
            .expect("mock server");
        let gateway = Gateway::start(
            &upstream.url(),
            serde_json::json!({
                "maxConcurrentStreams": 32,
                "timeouts": { "idleMs": 8000, "firstByteMs": 8000, "requestBodyMs": 5000 },
            }),
        );
        println!(
            "gateway: {} fds and {:.1} MiB RSS idle (32 slots, 8 s idle, 5 s body timeout, other limits default)",
            gateway.fds(),
            gateway.mib("VmRSS:")
        );
        slowloris(&gateway).await;
        idle_connections(&gateway).await;
        non_reading_clients(&gateway).await;
        slow_upload(&gateway).await;
        dot_segments(&gateway, &upstream).await;
        drop(gateway);
        redirect().await;
        big_bodies(&upstream.url(), None).await;
        big_bodies(&upstream.url(), Some(64 << 20)).await;
        let _ = upstream.shutdown().await;
    });
}
