//! `bedrock-converse proxy` under a 1,024 open-files limit (set by `ulimit -n` in a
//! shell that then `exec`s the gateway, so the limit is the gateway's alone) keeps
//! serving a well-behaved client while 1,100 idle connections are open.
//!
//! Old code: no connection cap and no idle timeout; the idle sockets took every file
//! descriptor, `accept` failed with EMFILE, and 0 of 5 good requests were served.

#![cfg(all(feature = "cli", target_os = "linux"))]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bedrock_converse::server::MockBedrock;

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-converse");
const UPSTREAM_KEY: &str = "fd-limit-upstream";
const CLIENT_KEY: &str = "fd-limit-client";

/// Kills the gateway (the child this test started) when the test ends.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_a_good_client_with_1100_idle_connections_under_1024_open_files() {
    let server = MockBedrock::builder()
        .bearer_key(UPSTREAM_KEY)
        .start()
        .await
        .expect("mock server");
    let config = format!(
        r#"{{
  "providers": {{ "bedrock": {{ "api": "bedrock", "key": "{UPSTREAM_KEY}", "url": "{url}", "region": "us-east-1" }} }},
  "proxy": {{
    "listen": "127.0.0.1:0",
    "clientKeys": {{ "good": "{CLIENT_KEY}" }},
    "connections": {{ "max": 256, "headerReadTimeoutMs": 1000, "keepAliveIdleMs": 1000 }}
  }}
}}"#,
        url = server.url()
    );
    let dir = std::env::temp_dir().join(format!("bedrock-converse-fd-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.json");
    std::fs::write(&path, config).unwrap();

    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 1024 && exec "$0" proxy --config "$1""#)
        .arg(BIN)
        .arg(&path)
        .env_remove("RUST_LOG")
        .env("ECA_LOG_LEVEL", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway");
    let mut gateway = Gateway(child);
    let pid = gateway.0.id();
    let stdout = gateway.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("the gateway starts")
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default()
        .split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(open_files, "1024", "the limit is the gateway's: {limits}");

    // 1,100 idle connections, held open by the test until it ends.
    let mut idle = Vec::with_capacity(1100);
    for _ in 0..1100 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.expect("connect"));
    }

    // A well-behaved client: 5 requests served, each retried while the cap is full
    // (a connection past the cap is closed at once; idle ones time out after 1 s).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://{addr}/model/us-east-1.mock.text/converse");
    let body = r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let mut served = 0;
    for _ in 0..200 {
        let answer = http
            .post(&url)
            .bearer_auth(CLIENT_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        if let Ok(r) = answer {
            if r.status() == 200 && r.bytes().await.is_ok() {
                served += 1;
                if served == 5 {
                    break;
                }
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, 5, "good requests served with 1,100 idle connections open");
    assert!(
        gateway.0.try_wait().unwrap().is_none(),
        "the gateway is still running"
    );
    assert_eq!(idle.len(), 1100);
}
