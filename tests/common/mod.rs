//! What the test files share: a deterministic random generator, event frames and the
//! hard-stream generator ([`corpus`]), a body decoder, a log-capture writer, and a client
//! set up against the built-in server. Each test file takes it with `mod common;`.
//!
//! Each test file is its own crate and uses only some of these, hence the `allow`.
#![allow(dead_code)]

// ===== random input =====

/// A small xorshift generator: deterministic, no dependency.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        // The remainder is below `n`, a `usize`: it fits back.
        (self.next() % n as u64) as usize
    }

    /// Fills `out` with random bytes.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

// ===== bodies =====

/// Decodes a whole event-stream body: the frames, then the error that stopped decoding,
/// if any.
pub(crate) fn decode_body(
    body: &[u8],
) -> (
    Vec<bedrock_converse::eventstream::Message>,
    Option<bedrock_converse::eventstream::EventStreamError>,
) {
    use tokio_util::codec::Decoder;

    let mut codec = bedrock_converse::eventstream::EventStreamCodec::new();
    let mut buf = bytes::BytesMut::from(body);
    let mut out = Vec::new();
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

// ===== logs =====

/// A `tracing_subscriber` writer that keeps everything written, for tests that read the
/// logs (`.with_writer(capture.clone())`, then [`Capture::text`]).
#[cfg(feature = "client")]
#[derive(Clone, Default)]
pub(crate) struct Capture(pub(crate) std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(feature = "client")]
impl Capture {
    /// Everything written so far, as text.
    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8 logs")
    }
}

#[cfg(feature = "client")]
impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "client")]
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// The seed document's config examples.
pub(crate) mod seed;

// ===== event-stream frames =====

/// The hard-stream generator of the assembler tests and bench.
pub(crate) mod corpus;

pub(crate) use corpus::event_frame;

/// [`event_frame`] as wire bytes, with a text payload.
pub(crate) fn event_bytes(event_type: &str, payload: &str) -> Vec<u8> {
    event_frame(event_type, payload).as_bytes().to_vec()
}

/// An error frame (`:message-type` `error`) with this code and message, no payload.
pub(crate) fn error_frame(code: &str, message: &str) -> bedrock_converse::eventstream::Message {
    bedrock_converse::eventstream::MessageBuilder::new()
        .string_header(":message-type", "error")
        .string_header(":error-code", code)
        .string_header(":error-message", message)
        .build(b"")
        .expect("an error frame within the limits")
}

/// Decodes `wire` through `EventStreamCodec`, fed in reads of the given sizes (cycled;
/// 0 is read as 1), then `decode_eof`; every byte must be consumed.
pub(crate) fn decode_in_reads(
    wire: &[u8],
    sizes: &[usize],
) -> Result<Vec<bedrock_converse::eventstream::Message>, bedrock_converse::eventstream::EventStreamError> {
    use tokio_util::codec::Decoder;
    let mut codec = bedrock_converse::eventstream::EventStreamCodec::new();
    let mut buf = bytes::BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1)
            .min(rest.len());
        i += 1;
        let (head, tail) = rest.split_at(n);
        buf.extend_from_slice(head);
        rest = tail;
        while let Some(m) = codec.decode(&mut buf)? {
            out.push(m);
        }
    }
    while let Some(m) = codec.decode_eof(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty());
    Ok(out)
}

// ===== a client of the built-in server =====

#[cfg(all(feature = "client", feature = "server"))]
pub(crate) mod loopback {
    use std::time::Duration;

    use bedrock_converse::client::{BedrockClient, BedrockClientBuilder, Config, RetryPolicy};
    use bedrock_converse::server::MockBedrockHandle;
    use serde_json::json;

    /// A config with one provider `bedrock` pointed at `server`, with `key` as its Bearer
    /// key (`None`: SigV4).
    pub(crate) fn config_for(server: &MockBedrockHandle, key: Option<&str>) -> Config {
        let mut provider = json!({"api": "bedrock", "url": server.url(), "region": "us-east-1"});
        if let Some(k) = key {
            provider["key"] = json!(k);
        }
        let text = json!({"providers": {"bedrock": provider}}).to_string();
        Config::parse_with_env(&text, &|_| None).expect("config")
    }

    /// Three attempts, milliseconds apart.
    pub(crate) fn quick_retry() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    /// A builder for `config` that reads nothing of this machine (no environment, no home
    /// directory) and retries quickly; a test sets the rest before `build`.
    pub(crate) fn isolated_builder(config: Config) -> BedrockClientBuilder {
        BedrockClient::builder(config)
            .retry(quick_retry())
            .env(|_| None)
            .home(None)
    }
}

// ===== a gateway on loopback =====

/// A gateway serving on 127.0.0.1 until dropped.
#[cfg(feature = "proxy")]
pub(crate) struct Gateway {
    /// Where it listens.
    pub(crate) addr: std::net::SocketAddr,
    /// The gateway (for its metrics).
    pub(crate) proxy: bedrock_converse::proxy::Proxy,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[cfg(feature = "proxy")]
impl Gateway {
    /// Starts `config` on a port the OS chose.
    pub(crate) async fn start(config: bedrock_converse::proxy::ProxyConfig) -> Gateway {
        let proxy = bedrock_converse::proxy::Proxy::new(config).expect("proxy");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = proxy.clone();
        tokio::spawn(async move {
            let _ = serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Gateway {
            addr,
            proxy,
            stop: Some(stop),
        }
    }

    /// The URL of `op` for `model`.
    pub(crate) fn url(&self, model: &str, op: &str) -> String {
        format!("http://{}/model/{model}/{op}", self.addr)
    }

    /// The text of `GET /metrics` on the client port, asked with the client key `key`.
    pub(crate) async fn metrics_text(&self, key: &str) -> String {
        reqwest::Client::new()
            .get(format!("http://{}/metrics", self.addr))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[cfg(feature = "proxy")]
impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A gateway config forwarding to `upstream` with the Bearer key `upstream_key`, and one
/// client key `team-a` / `client_key`; the rest as `ProxyConfig::new` sets it.
#[cfg(feature = "proxy")]
pub(crate) fn gateway_config(
    upstream: &str,
    upstream_key: &str,
    client_key: &str,
) -> bedrock_converse::proxy::ProxyConfig {
    use bedrock_converse::client::{Auth, Secret};
    use bedrock_converse::proxy::{ClientKey, ProxyConfig};
    ProxyConfig::new(
        upstream,
        Auth::Bearer(Secret::new(upstream_key)),
        vec![ClientKey {
            id: "team-a".to_owned(),
            secret: client_key.to_owned(),
        }],
    )
}

/// The built-in server that accepts the Bearer key `key`, on a free port.
#[cfg(feature = "server")]
pub(crate) async fn mock_with_key(key: &str) -> bedrock_converse::server::MockBedrockHandle {
    mock_from(bedrock_converse::server::MockBedrock::builder(), key).await
}

/// `builder` with the Bearer key `key`, started on a free port.
#[cfg(feature = "server")]
pub(crate) async fn mock_from(
    builder: bedrock_converse::server::MockBedrockBuilder,
    key: &str,
) -> bedrock_converse::server::MockBedrockHandle {
    builder.bearer_key(key).start().await.expect("mock server")
}

/// Polls `check` every 20 ms, at most `tries` times: whether it came true.
#[cfg(feature = "proxy")]
pub(crate) async fn eventually(tries: usize, mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    check()
}

// ===== endpoints that misbehave =====

/// A listener on 127.0.0.1 that counts the connections it gets (and answers nothing).
#[cfg(any(feature = "server", feature = "proxy"))]
pub(crate) async fn witness() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let contacts = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = contacts.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(tcp);
        }
    });
    (addr, contacts)
}

/// An endpoint answering everything with `status` and `Location: to`, counting requests.
#[cfg(any(feature = "server", feature = "proxy"))]
pub(crate) async fn redirecting(
    status: u16,
    to: String,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let to = to.clone();
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("location", to)],
                "",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

// ===== fuzz corpora =====

/// The crate's root directory (where `fuzz/` is).
pub(crate) fn crate_dir() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files directly in `dir`, sorted; none when it does not exist.
pub(crate) fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Every regular file under `dir` (recursively), sorted, skipping dot files such as
/// `.keep`; none when `dir` does not exist.
pub(crate) fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `[index, text...]`: the payload of a fuzz-input template record (the template
/// generators of `fuzz/fuzz_targets/*_logic.rs` read the index, then the text).
pub(crate) fn at(index: u8, text: &str) -> Vec<u8> {
    let mut v = vec![index];
    v.extend_from_slice(text.as_bytes());
    v
}

/// `(selector, payload)` records borrowed, as the fuzz targets' `encode` takes them.
pub(crate) fn borrowed(records: &[(u8, Vec<u8>)]) -> Vec<(u8, &[u8])> {
    records.iter().map(|(s, p)| (*s, p.as_slice())).collect()
}

/// Runs `run` on every file of the fuzz target `target`'s corpus and artifacts
/// (`fuzz/corpus/<target>`, `fuzz/artifacts/<target>`); returns how many.
pub(crate) fn replay_fuzz_target<R>(target: &str, mut run: impl FnMut(&[u8]) -> R) -> usize {
    let mut replayed = 0;
    for dir in ["corpus", "artifacts"] {
        for path in files_under(&crate_dir().join("fuzz").join(dir).join(target)) {
            let data = std::fs::read(&path).expect("read corpus file");
            let _ = run(&data);
            replayed += 1;
        }
    }
    println!("replayed {replayed} corpus and artifact files of {target}");
    replayed
}

/// Runs `run` on every byte prefix of every seed: a good input cut anywhere still gives
/// typed errors only.
pub(crate) fn every_byte_prefix<N, R>(seeds: Vec<(N, Vec<u8>)>, mut run: impl FnMut(&[u8]) -> R) {
    for (_, input) in seeds {
        for end in 0..input.len() {
            let _ = run(&input[..end]);
        }
    }
}

// ===== official Python SDKs =====

/// The Python interpreter that has the official `openai`, `anthropic` and `boto3`
/// packages (`.ci/run` installs them into `target/pyvenv` and sets
/// `BEDROCK_CONVERSE_PYTHON`). `None` (after saying why) when they are not installed
/// and `CI` is not set; a panic when `CI` is set, so that CI cannot skip the cross-checks.
pub(crate) fn python_with_sdks() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var_os("BEDROCK_CONVERSE_PYTHON").map(std::path::PathBuf::from),
        Some(std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/pyvenv/bin/python"
        ))),
    ];
    for python in candidates.into_iter().flatten() {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import openai, anthropic, boto3"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(python);
        }
    }
    let why = "the official Python SDKs are not installed: run `bash .ci/run`, or \
               `python3 -m venv target/pyvenv && target/pyvenv/bin/pip install -r .ci/python-requirements.txt`";
    if std::env::var_os("CI").is_some() {
        panic!("CI is set and {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// Runs `script` with the SDK interpreter, `env` added, and returns its stdout; panics
/// with its stderr when it fails.
pub(crate) fn run_python(python: &std::path::Path, script: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .envs(env.iter().copied())
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("ALL_PROXY")
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}
