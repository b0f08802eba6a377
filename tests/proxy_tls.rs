//! The gateway over HTTPS (`proxy.tls`): boto3 with a bearer token and our own client
//! reach it with a test certificate, streaming and not; HTTP/2 (ALPN `h2`) and
//! HTTP/1.1 over TLS get the same answers; the certificate is reloaded when its files
//! change and on SIGHUP (new connections see the new one, open ones keep working); bad
//! files are a typed error naming the file. Also `MockBedrockBuilder::tls`.

#![cfg(all(feature = "proxy", feature = "server"))]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bedrock_converse::client::Auth;
use bedrock_converse::client::Secret;
use bedrock_converse::client::{
    BedrockClient, ClientError, Config, ConfigError, RequestParams, TransportError,
};
use bedrock_converse::converse::Message;
use bedrock_converse::proxy::{
    ClientKey, ConnectionClose, Proxy, ProxyConfig, TlsCertificate, TlsError, TlsSettings,
};
use bedrock_converse::server::{self_signed_pem, MockBedrock, MockBedrockHandle};

use common::{python_with_sdks, run_python, Gateway};

const CLIENT_KEY: &str = "tls-client-secret-1";
const UPSTREAM_KEY: &str = "tls-upstream-secret";

/// A directory of its own under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bc-proxy-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh self-signed certificate for `localhost` and `127.0.0.1`, written as
/// `{stem}.pem` (what a client trusts) and `{stem}.key`.
fn write_cert(dir: &TempDir, stem: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = self_signed_pem().expect("generate");
    let (cert_path, key_path) = (dir.path(&format!("{stem}.pem")), dir.path(&format!("{stem}.key")));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (cert_path, key_path)
}

/// Replaces the served files with `from`'s (written beside, then renamed: a reload
/// never reads half a file).
fn replace_served(dir: &TempDir, from: (&Path, &Path)) {
    for (src, dst) in [(from.0, "served.pem"), (from.1, "served.key")] {
        let tmp = dir.path(&format!("{dst}.new"));
        std::fs::copy(src, &tmp).unwrap();
        std::fs::rename(&tmp, dir.path(dst)).unwrap();
    }
}

async fn mock() -> MockBedrockHandle {
    MockBedrock::builder()
        .bearer_key(UPSTREAM_KEY)
        .start()
        .await
        .expect("mock server")
}

fn config_for(upstream: &str, tls: TlsSettings) -> ProxyConfig {
    let mut c = ProxyConfig::new(
        upstream,
        Auth::Bearer(Secret::new(UPSTREAM_KEY)),
        vec![ClientKey {
            id: "team-a".to_owned(),
            secret: CLIENT_KEY.to_owned(),
        }],
    );
    c.tls = Some(tls);
    c
}

/// The mock upstream and an HTTPS gateway serving `served.pem` / `served.key` of `dir`.
async fn start(dir: &TempDir, reload_interval: Duration) -> (MockBedrockHandle, Gateway) {
    let (cert, key) = write_cert(dir, "first");
    replace_served(dir, (&cert, &key));
    let mut tls = TlsSettings::new(dir.path("served.pem"), dir.path("served.key"));
    tls.reload_interval = reload_interval;
    let upstream = mock().await;
    let gateway = Gateway::start(config_for(&upstream.url(), tls)).await;
    (upstream, gateway)
}

fn body(text: &str) -> String {
    serde_json::json!({ "messages": [{ "role": "user", "content": [{ "text": text }] }] }).to_string()
}

/// A reqwest client that trusts only `ca` (besides the webpki roots, which do not
/// vouch for a self-signed certificate).
fn https_client(ca: &Path, version: Option<reqwest::Version>) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .no_proxy();
    builder = match version {
        Some(reqwest::Version::HTTP_2) => builder.http2_prior_knowledge(),
        Some(_) => builder.http1_only(),
        None => builder,
    };
    builder.build().unwrap()
}

/// POSTs `op` of `mock.text` to the gateway: the status, HTTP version and body.
async fn call(
    client: &reqwest::Client,
    gateway: &Gateway,
    op: &str,
) -> Result<(u16, reqwest::Version, bytes::Bytes), reqwest::Error> {
    let url = format!("https://127.0.0.1:{}/model/mock.text/{op}", gateway.addr.port());
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .body(body("over TLS"))
        .send()
        .await?;
    let (status, version) = (response.status().as_u16(), response.version());
    Ok((status, version, response.bytes().await?))
}

/// Our client, configured to reach `gateway` over HTTPS and trust `ca`.
fn our_client(gateway: &Gateway, ca: &Path) -> BedrockClient {
    let url = format!("https://127.0.0.1:{}/model/", gateway.addr.port());
    let text = serde_json::json!({"providers": {"gw": {
        "api": "bedrock", "url": url, "region": "us-east-1", "key": CLIENT_KEY
    }}})
    .to_string();
    let config = Config::parse_with_env(&text, &|_| None).expect("config");
    BedrockClient::builder(config)
        .env(|_| None)
        .home(None)
        .ca_file(ca)
        .build()
        .expect("client")
}

#[tokio::test]
async fn our_client_streams_and_converses_over_https() {
    let dir = TempDir::new("ours");
    let (upstream, gateway) = start(&dir, Duration::from_secs(3600)).await;
    let client = our_client(&gateway, &dir.path("first.pem"));
    let messages = [Message::user("Hello over TLS")];
    let params = RequestParams::default();
    let streamed = client
        .converse_stream("gw/mock.text", &messages, &params)
        .await
        .expect("stream head")
        .into_response()
        .await
        .map_err(|(e, _)| e)
        .expect("whole stream");
    let whole = client
        .converse("gw/mock.text", &messages, &params)
        .await
        .expect("converse");
    assert!(!streamed.text().is_empty());
    assert_eq!(streamed.text(), whole.text());
    assert!(streamed.text().contains("Hello over TLS"), "{}", streamed.text());
    // Both went through the gateway, which forwarded with its own key.
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}").as_str()
    );
    assert_eq!(
        gateway
            .proxy
            .metrics()
            .connections_closed(ConnectionClose::TlsHandshake),
        0
    );

    // Without the CA the certificate is not trusted: a connect error, not an answer.
    let url = format!("https://127.0.0.1:{}/model/", gateway.addr.port());
    let text = serde_json::json!({"providers": {"gw": {
        "api": "bedrock", "url": url, "region": "us-east-1", "key": CLIENT_KEY
    }}})
    .to_string();
    let untrusting = BedrockClient::builder(Config::parse_with_env(&text, &|_| None).unwrap())
        .env(|_| None)
        .home(None)
        .retry(bedrock_converse::client::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        })
        .build()
        .unwrap();
    let err = untrusting
        .converse("gw/mock.text", &messages, &params)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Transport(TransportError::Connect { .. })),
        "{err:?}"
    );
    assert_eq!(upstream.request_count(), 2);

    // The CA named in the config (`caFile`) instead of the builder.
    let ca = dir.path("first.pem");
    let text = serde_json::json!({"providers": {"gw": {
        "api": "bedrock", "url": url, "region": "us-east-1", "key": CLIENT_KEY, "caFile": ca
    }}})
    .to_string();
    let configured = BedrockClient::builder(Config::parse_with_env(&text, &|_| None).unwrap())
        .env(|_| None)
        .home(None)
        .build()
        .unwrap();
    let answer = configured
        .converse("gw/mock.text", &messages, &params)
        .await
        .expect("converse with caFile");
    assert_eq!(answer.text(), whole.text());
    assert_eq!(upstream.request_count(), 3);
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_a_typed_error() {
    let dir = TempDir::new("badca");
    let ca = dir.path("empty.pem");
    std::fs::write(&ca, "no certificates here\n").unwrap();
    let text = r#"{"providers": {"gw": {"api": "bedrock", "url": "https://127.0.0.1:9/model/", "region": "us-east-1", "key": "k"}}}"#;
    let config = Config::parse_with_env(text, &|_| None).unwrap();
    let err = BedrockClient::builder(config.clone())
        .env(|_| None)
        .home(None)
        .ca_file(&ca)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Config(ConfigError::Invalid { field, .. }) if field.contains("empty.pem")),
        "{err:?}"
    );
    let missing = dir.path("missing.pem");
    let err = BedrockClient::builder(config)
        .env(|_| None)
        .home(None)
        .ca_file(&missing)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Config(ConfigError::Read { path, .. }) if *path == missing),
        "{err:?}"
    );
}

#[tokio::test]
async fn http2_and_http1_over_tls_get_the_same_answers() {
    let dir = TempDir::new("h2");
    let (_upstream, gateway) = start(&dir, Duration::from_secs(3600)).await;
    let ca = dir.path("first.pem");
    let h2 = https_client(&ca, Some(reqwest::Version::HTTP_2));
    let h1 = https_client(&ca, Some(reqwest::Version::HTTP_11));
    // Whatever the client prefers: ALPN offers h2 first, so reqwest takes it.
    let negotiated = https_client(&ca, None);
    for op in ["converse", "converse-stream"] {
        let (s2, v2, b2) = call(&h2, &gateway, op).await.expect("h2");
        let (s1, v1, b1) = call(&h1, &gateway, op).await.expect("http/1.1");
        let (sn, vn, bn) = call(&negotiated, &gateway, op).await.expect("negotiated");
        assert_eq!((s2, s1, sn), (200, 200, 200), "{op}");
        assert_eq!(v2, reqwest::Version::HTTP_2);
        assert_eq!(v1, reqwest::Version::HTTP_11);
        assert_eq!(vn, reqwest::Version::HTTP_2);
        let answer = answer_of(op, &b2);
        assert!(op == "converse" || answer.len() > 2, "{op}: {answer:?}");
        assert_eq!(
            answer,
            answer_of(op, &b1),
            "{op}: the same answer over h2 and http/1.1"
        );
        assert_eq!(answer, answer_of(op, &bn), "{op}");
    }
}

/// What an answer says, without the latency the mock reports (the one part that varies
/// between two calls): the JSON of `/converse`, or each frame's event type and JSON
/// payload of `/converse-stream`.
fn answer_of(op: &str, body: &[u8]) -> Vec<(String, serde_json::Value)> {
    let without_latency = |payload: &[u8]| {
        let mut json: serde_json::Value = serde_json::from_slice(payload).expect("json");
        if let Some(object) = json.as_object_mut() {
            object.remove("metrics");
        }
        json
    };
    if op == "converse" {
        return vec![("converse".to_owned(), without_latency(body))];
    }
    let (frames, error) = common::decode_body(body);
    assert!(error.is_none(), "{error:?}");
    frames
        .iter()
        .map(|f| {
            (
                f.event_type().unwrap_or_default().to_owned(),
                without_latency(f.payload()),
            )
        })
        .collect()
}

/// Calls with a fresh client trusting `ca` until one succeeds (the watcher has swapped
/// the certificate); at most `tries` attempts, `pause` apart.
async fn wait_until_trusted(gateway: &Gateway, ca: &Path, tries: usize, pause: Duration) -> bool {
    for _ in 0..tries {
        let fresh = https_client(ca, Some(reqwest::Version::HTTP_11));
        if let Ok((200, _, _)) = call(&fresh, gateway, "converse").await {
            return true;
        }
        tokio::time::sleep(pause).await;
    }
    false
}

#[tokio::test]
async fn changed_files_are_reloaded_and_open_connections_keep_working() {
    let dir = TempDir::new("reload");
    let (_upstream, gateway) = start(&dir, Duration::from_millis(20)).await;
    let first = dir.path("first.pem");
    // One connection opened with the first certificate, kept alive (HTTP/2: one
    // connection for every request of this client).
    let old = https_client(&first, Some(reqwest::Version::HTTP_2));
    assert_eq!(call(&old, &gateway, "converse").await.expect("first").0, 200);

    let (second, second_key) = write_cert(&dir, "second");
    replace_served(&dir, (&second, &second_key));
    assert!(
        wait_until_trusted(&gateway, &second, 500, Duration::from_millis(20)).await,
        "the new certificate was never served"
    );
    // New connections: the first certificate is gone.
    let fresh_first = https_client(&first, Some(reqwest::Version::HTTP_11));
    assert!(call(&fresh_first, &gateway, "converse").await.is_err());
    // The connection opened before the reload still works (a new handshake would have
    // failed: this client trusts only the first certificate).
    let (status, _, body) = call(&old, &gateway, "converse-stream")
        .await
        .expect("old connection");
    assert_eq!(status, 200);
    assert!(common::decode_body(&body).1.is_none());

    // A broken replacement is refused and the second certificate stays in use.
    std::fs::write(dir.path("served.pem"), "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    // Past a few reload intervals, the second certificate is still the one served.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fresh_second = https_client(&second, Some(reqwest::Version::HTTP_11));
        assert_eq!(
            call(&fresh_second, &gateway, "converse").await.expect("kept").0,
            200
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_at_once() {
    let dir = TempDir::new("hup");
    // No polling to speak of: only the signal can trigger the reload.
    let (_upstream, gateway) = start(&dir, Duration::from_secs(3600)).await;
    assert!(wait_until_trusted(&gateway, &dir.path("first.pem"), 1, Duration::ZERO).await);
    let (second, second_key) = write_cert(&dir, "second");
    replace_served(&dir, (&second, &second_key));
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(
        wait_until_trusted(&gateway, &second, 500, Duration::from_millis(20)).await,
        "SIGHUP did not reload"
    );
}

#[test]
fn bad_files_are_typed_errors_naming_the_file() {
    let dir = TempDir::new("bad");
    let (cert, key) = write_cert(&dir, "a");
    let (_, other_key) = write_cert(&dir, "b");
    let garbage = dir.path("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let missing = dir.path("missing.pem");

    assert!(TlsCertificate::load(&TlsSettings::new(&cert, &key)).is_ok());
    let err = TlsCertificate::load(&TlsSettings::new(&missing, &key)).unwrap_err();
    assert!(
        matches!(&err, TlsError::Read { path, .. } if *path == missing),
        "{err}"
    );
    assert!(err.to_string().contains("missing.pem"));
    let err = TlsCertificate::load(&TlsSettings::new(&garbage, &key)).unwrap_err();
    assert!(
        matches!(&err, TlsError::Certificate { path, .. } if *path == garbage),
        "{err}"
    );
    let err = TlsCertificate::load(&TlsSettings::new(&cert, &garbage)).unwrap_err();
    assert!(
        matches!(&err, TlsError::PrivateKey { path, .. } if *path == garbage),
        "{err}"
    );
    // A key that is not the certificate's.
    let err = TlsCertificate::load(&TlsSettings::new(&cert, &other_key)).unwrap_err();
    assert!(
        matches!(&err, TlsError::Mismatch { cert: c, key: k, .. } if *c == cert && *k == other_key),
        "{err}"
    );
    // A key file holding a certificate is not a key.
    let err = TlsCertificate::load(&TlsSettings::new(&cert, &cert)).unwrap_err();
    assert!(matches!(&err, TlsError::PrivateKey { .. }), "{err}");
}

#[tokio::test]
async fn serve_with_bad_tls_files_fails_before_listening() {
    let dir = TempDir::new("badserve");
    let garbage = dir.path("garbage.pem");
    std::fs::write(&garbage, "hello\n").unwrap();
    let proxy = Proxy::new(config_for(
        "http://127.0.0.1:9/model/",
        TlsSettings::new(&garbage, &garbage),
    ))
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = proxy.serve(listener, std::future::pending()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<TlsError>());
    assert!(
        matches!(inner, Some(TlsError::Certificate { path, .. }) if *path == garbage),
        "{err}"
    );
}

#[tokio::test]
async fn a_plain_http_client_does_not_get_an_answer() {
    let dir = TempDir::new("plain");
    let (upstream, gateway) = start(&dir, Duration::from_secs(3600)).await;
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!(
        "http://127.0.0.1:{}/model/mock.text/converse",
        gateway.addr.port()
    );
    let result = plain
        .post(url)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .body(body("plain"))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(upstream.request_count(), 0);
    assert_eq!(
        gateway
            .proxy
            .metrics()
            .connections_closed(ConnectionClose::TlsHandshake),
        1
    );
}

#[tokio::test]
async fn the_mock_server_serves_https_too() {
    let (cert, key) = self_signed_pem().unwrap();
    let server = MockBedrock::builder()
        .tls(TlsCertificate::from_pem(cert.as_bytes(), key.as_bytes()).unwrap())
        .start()
        .await
        .unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let response = client
        .post(format!("{}mock.text/converse", server.url()))
        .header("content-type", "application/json")
        .body(body("mock over TLS"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let json: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(json["output"]["message"]["content"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("mock over TLS")));
}

const BOTO3_SCRIPT: &str = r#"
import json, os, boto3
client = boto3.client(
    "bedrock-runtime",
    region_name="us-east-1",
    endpoint_url=os.environ["GATEWAY"],
    verify=os.environ["CA"],
)
messages = [{"role": "user", "content": [{"text": "boto3 over TLS"}]}]
whole = client.converse(modelId="mock.text", messages=messages)
text = "".join(b.get("text", "") for b in whole["output"]["message"]["content"])
streamed = []
stop = None
for event in client.converse_stream(modelId="mock.text", messages=messages)["stream"]:
    if "contentBlockDelta" in event:
        streamed.append(event["contentBlockDelta"]["delta"].get("text", ""))
    if "messageStop" in event:
        stop = event["messageStop"]["stopReason"]
print(json.dumps({"converse": text, "stream": "".join(streamed), "stop": stop}))
"#;

#[test]
fn boto3_with_a_bearer_token_reaches_the_gateway_over_https() {
    let Some(python) = python_with_sdks() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("boto3");
    let (upstream, gateway) = runtime.block_on(start(&dir, Duration::from_secs(3600)));
    let endpoint = format!("https://127.0.0.1:{}", gateway.addr.port());
    let ca = dir.path("first.pem");
    let out = run_python(
        &python,
        BOTO3_SCRIPT,
        &[
            ("GATEWAY", endpoint.as_str()),
            ("CA", ca.to_str().unwrap()),
            ("AWS_BEARER_TOKEN_BEDROCK", CLIENT_KEY),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ],
    );
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("json from python");
    let text = answer["converse"].as_str().unwrap();
    assert!(text.contains("boto3 over TLS"), "{answer}");
    assert_eq!(answer["stream"].as_str(), Some(text), "{answer}");
    assert_eq!(answer["stop"], "end_turn");
    assert_eq!(upstream.request_count(), 2);
    drop(gateway);
}
