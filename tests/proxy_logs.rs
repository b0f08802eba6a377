//! The gateway logs one line per forwarded request (key id, model, tokens, latency) and
//! never a client key, an upstream key, AWS credentials or a signature.

#![cfg(feature = "proxy")]

mod common;

use bedrock_converse::client::Auth;
use bedrock_converse::client::{AwsCredentials, Secret};
use bedrock_converse::proxy::{ClientKey, Proxy, ProxyConfig};
use bedrock_converse::server::MockBedrock;
use common::Capture;

const CLIENT_KEY: &str = "client-key-6b1f0e";
const AKID: &str = "AKIDLOGTEST7788";
const SECRET: &str = "secret-access-key-9c2d";
const TOKEN: &str = "session-token-4a7e";

#[tokio::test]
async fn logs_usage_per_request_and_no_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "bedrock_converse=trace,bedrock_converse::server=off,reqwest=trace,hyper=trace,\
             hyper_util=trace,axum=trace,proxy_logs=trace",
        ))
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let server = MockBedrock::builder()
        .sigv4_credentials(AKID, SECRET)
        .start()
        .await
        .expect("server");
    let config = ProxyConfig::new(
        server.url(),
        Auth::SigV4 {
            credentials: AwsCredentials {
                access_key_id: AKID.to_owned(),
                secret_access_key: Secret::new(SECRET),
                session_token: Some(Secret::new(TOKEN)),
            },
            region: "us-east-1".to_owned(),
        },
        vec![ClientKey {
            id: "team-a".to_owned(),
            secret: CLIENT_KEY.to_owned(),
        }],
    );
    let proxy = Proxy::new(config).expect("proxy");
    tracing::debug!(proxy = ?proxy, "proxy debug output");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy.serve(listener, std::future::pending()));

    let http = reqwest::Client::new();
    let body = r#"{"messages":[{"role":"user","content":[{"text":"log me"}]}]}"#;
    for (op, key) in [
        ("converse-stream", CLIENT_KEY),
        ("converse", CLIENT_KEY),
        ("converse-stream", "wrong-key-123"),
        ("converse-stream", "http-error"),
    ] {
        let model = if key == "http-error" {
            "us-east-1.mock.http-error"
        } else {
            "us-east-1.mock.text"
        };
        let key = if key == "http-error" { CLIENT_KEY } else { key };
        let resp = http
            .post(format!("http://{addr}/model/{model}/{op}"))
            .bearer_auth(key)
            .body(body)
            .send()
            .await
            .expect("request");
        let _ = resp.bytes().await;
    }
    let signatures: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| {
            let auth = r.headers.get("authorization")?.to_str().ok()?;
            auth.split("Signature=").nth(1).map(str::to_owned)
        })
        .collect();
    assert!(!signatures.is_empty(), "upstream requests were signed");

    let logs = capture.text();
    assert!(logs.contains("stream forwarded"), "{logs}");
    assert!(logs.contains("converse forwarded"), "{logs}");
    assert!(
        logs.contains("key_id=\"team-a\"") || logs.contains("key_id=team-a"),
        "{logs}"
    );
    assert!(logs.contains("output_tokens"), "{logs}");
    for secret in [CLIENT_KEY, "wrong-key-123", AKID, SECRET, TOKEN]
        .into_iter()
        .chain(signatures.iter().map(String::as_str))
    {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }
}

/// `bedrock-converse proxy` as a process, its stderr a file: every request's line is
/// written, in the formatter's shape, by the time SIGTERM has stopped it (the batched
/// writer's last batch is flushed on the way out, not lost).
#[cfg(all(feature = "cli", unix))]
#[tokio::test]
async fn the_gateway_process_writes_every_line_before_sigterm_stops_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const UPSTREAM_KEY: &str = "logs-upstream-key";
    const REQUESTS: usize = 40;
    let server = MockBedrock::builder()
        .bearer_key(UPSTREAM_KEY)
        .start()
        .await
        .expect("server");
    let dir = std::env::temp_dir().join(format!("bedrock-converse-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.json");
    let stderr = dir.join("stderr.log");
    std::fs::write(
        &config,
        format!(
            r#"{{"providers": {{"bedrock": {{"api": "bedrock", "key": "{UPSTREAM_KEY}", "url": "{}", "region": "us-east-1"}}}},
                "proxy": {{"listen": "127.0.0.1:0", "clientKeys": {{"team-a": "{CLIENT_KEY}"}}}}}}"#,
            server.url()
        ),
    )
    .unwrap();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_bedrock-converse"))
        .args(["proxy", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .env_remove("ECA_LOG_LEVEL")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start the gateway");
    let mut banner = String::new();
    BufReader::new(gateway.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let base = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_owned();

    let http = reqwest::Client::new();
    let body = r#"{"messages":[{"role":"user","content":[{"text":"log me"}]}]}"#;
    for i in 0..REQUESTS {
        let op = if i % 2 == 0 { "converse" } else { "converse-stream" };
        let resp = http
            .post(format!("{base}us-east-1.mock.text/{op}"))
            .bearer_auth(CLIENT_KEY)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(gateway.wait().unwrap().success(), "SIGTERM is a clean stop");

    let logs = std::fs::read_to_string(&stderr).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let forwarded: Vec<&str> = logs.lines().filter(|l| l.contains(" forwarded ")).collect();
    assert_eq!(forwarded.len(), REQUESTS, "{logs}");
    // `tracing_subscriber::fmt`'s line after its timestamp (the level padded to five),
    // no colour codes in a file.
    let converse = r#" INFO bedrock_converse::proxy::log: converse forwarded key_id="team-a" model_id="us-east-1.mock.text" operation="converse" input_tokens="#;
    let stream = r#" INFO bedrock_converse::proxy::log: stream forwarded key_id="team-a" model_id="us-east-1.mock.text" operation="converse-stream" frames="#;
    for (i, line) in forwarded.iter().enumerate() {
        let (_time, rest) = line.split_once(' ').unwrap();
        let shape = if i % 2 == 0 { converse } else { stream };
        assert!(rest.starts_with(shape), "{line}");
    }
}
