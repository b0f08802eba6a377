//! LiteLLM's proxy (`litellm --config ...`) in front of the built-in server, for the
//! dialect benches to measure beside our gateway: found through `LITELLM_BIN`, else
//! `target/litellm-venv/bin/litellm`, else `PATH`; the bench says which, or why none.
//!
//! Included by `#[path = "dialect_litellm/mod.rs"] mod dialect_litellm;`: a bench is its
//! own crate, so not every bench uses every item.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::ChildProcess;

/// A running LiteLLM proxy, stopped when dropped; its model name is `mock`.
pub(crate) struct LiteLlm {
    child: ChildProcess,
    port: u16,
    dir: PathBuf,
}

impl LiteLlm {
    /// Its OpenAI route.
    pub(crate) fn chat_completions_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/chat/completions", self.port)
    }

    /// The process id (its workers are its children).
    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }
}

impl Drop for LiteLlm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `litellm` command: `LITELLM_BIN`, else the venv under `target/`, else `PATH`;
/// says which (or that none runs).
fn litellm_bin() -> Option<PathBuf> {
    let runs = |bin: &PathBuf| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let from_env = std::env::var_os("LITELLM_BIN").map(PathBuf::from);
    match &from_env {
        Some(bin) if runs(bin) => {
            eprintln!("litellm: {} (LITELLM_BIN)", bin.display());
            return from_env;
        }
        Some(bin) => eprintln!("litellm: LITELLM_BIN={} does not run", bin.display()),
        None => eprintln!("litellm: LITELLM_BIN is not set"),
    }
    let fallbacks = [
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/litellm-venv/bin/litellm"
        )),
        PathBuf::from("litellm"),
    ];
    let found = fallbacks.into_iter().find(runs);
    match &found {
        Some(bin) => eprintln!("litellm: using {}", bin.display()),
        None => eprintln!(
            "litellm: skipped (no `litellm` command: pip install 'litellm[proxy]' and set LITELLM_BIN)"
        ),
    }
    found
}

/// Starts LiteLLM with one model, `mock`, served by `bedrock/converse/<model_id>` at
/// `upstream` (the built-in server, which must accept SigV4), behind `master_key`;
/// `None` (said why) when there is no `litellm` or it does not become ready.
pub(crate) async fn start(upstream: &str, model_id: &str, master_key: &str) -> Option<LiteLlm> {
    let bin = litellm_bin()?;
    let port = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let dir = std::env::temp_dir().join(format!("bedrock-converse-bench-litellm-{port}"));
    std::fs::create_dir_all(&dir).ok()?;
    let config = dir.join("config.yaml");
    let endpoint = upstream.trim_end_matches('/').trim_end_matches("/model");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: mock\n    litellm_params:\n      model: bedrock/converse/{model_id}\n      \
             aws_bedrock_runtime_endpoint: {endpoint}\n      aws_access_key_id: AKIDBENCH\n      \
             aws_secret_access_key: bench-secret\n      aws_region_name: us-east-1\n\
             general_settings:\n  master_key: {master_key}\n"
        ),
    )
    .ok()?;
    let mut command = Command::new(&bin);
    command
        .arg("--config")
        .arg(&config)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--num_workers",
            "1",
        ])
        .env("LITELLM_LOG", "ERROR");
    let proxy = LiteLlm {
        child: ChildProcess::spawn(&mut command),
        port,
        dir,
    };
    // Wait (bounded) for it to answer.
    let client = reqwest::Client::new();
    for _ in 0..600 {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/health/readiness"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Some(proxy);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("litellm: skipped (it did not become ready within 60 s)");
    None
}
