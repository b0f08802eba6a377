//! The official `openai` and `anthropic` Python SDKs drive the gateway's
//! `/v1/chat/completions` and `/v1/messages` in front of the built-in mock server:
//! streaming and not, text, parallel tool calls and a second turn of results, a call
//! with no arguments, reasoning with its signature (replayed next turn), citations,
//! cache usage, a mid-stream exception and HTTP errors. Each check is an `assert` in
//! the scripts under `tests/python/`; these tests also look at what went upstream.
//!
//! The SDKs come from `python_with_sdks()` (a skip with a message without them, a
//! failure when `CI` is set).

#![cfg(all(feature = "proxy", feature = "server"))]

mod common;

use std::time::Duration;

use bedrock_converse::client::Auth;
use bedrock_converse::client::Secret;
use bedrock_converse::client::{Config, ModelConfig, ProviderConfig};
use bedrock_converse::proxy::{ClientKey, ProxyConfig};
use bedrock_converse::server::{MockBedrock, MockBedrockHandle};
use serde_json::Value;

use common::{python_with_sdks, run_python, Gateway};

const OPENAI_SCRIPT: &str = include_str!("python/openai_sdk.py");
const ANTHROPIC_SCRIPT: &str = include_str!("python/anthropic_sdk.py");
const CLIENT_KEY: &str = "sdk-client-key";
const UPSTREAM_KEY: &str = "upstream-secret";

/// The mock server and the gateway in front of it (alias `text` for `mock.text`).
async fn stack() -> (MockBedrockHandle, Gateway) {
    let server = MockBedrock::builder()
        .bearer_key(UPSTREAM_KEY)
        .start()
        .await
        .expect("mock server");
    let mut config = ProxyConfig::new(
        server.url(),
        Auth::Bearer(Secret::new(UPSTREAM_KEY)),
        vec![ClientKey {
            id: "sdk".to_owned(),
            secret: CLIENT_KEY.to_owned(),
        }],
    );
    config.timeouts.idle = Duration::from_secs(10);
    let mut provider = ProviderConfig::new("bedrock", "us-east-1").with_url(server.url());
    provider.models.insert(
        "text".to_owned(),
        ModelConfig {
            model_name: "mock.text".to_owned(),
            extra_payload: Default::default(),
            region_prefix: None,
            api: Default::default(),
        },
    );
    config.models = Config::with_provider(provider);
    let gateway = Gateway::start(config).await;
    (server, gateway)
}

/// Runs `script` for `scenario` against a fresh stack; the stdout lines and the
/// upstream request bodies. `None` when the SDKs are not installed.
fn run(script: &'static str, base_path: &str, scenario: &str) -> Option<(String, Vec<Value>)> {
    let python = python_with_sdks()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, gateway) = runtime.block_on(stack());
    let base_url = format!("http://{}{base_path}", gateway.addr);
    let out = run_python(
        &python,
        script,
        &[
            ("BASE_URL", &base_url),
            ("API_KEY", CLIENT_KEY),
            ("SCENARIO", scenario),
        ],
    );
    assert!(out.contains(&format!("ok {scenario}")), "{out}");
    let upstream = server.requests().iter().filter_map(|r| r.json()).collect();
    drop(gateway);
    Some((out, upstream))
}

fn openai(scenario: &str) -> Option<(String, Vec<Value>)> {
    run(OPENAI_SCRIPT, "/v1", scenario)
}

fn anthropic(scenario: &str) -> Option<(String, Vec<Value>)> {
    run(ANTHROPIC_SCRIPT, "", scenario)
}

#[test]
fn openai_text() {
    let Some((_, upstream)) = openai("text") else {
        return;
    };
    assert_eq!(upstream.len(), 2);
}

#[test]
fn openai_parallel_tools_and_results() {
    let Some((_, upstream)) = openai("tools") else {
        return;
    };
    // The second turn: both `role: "tool"` messages became ONE user message.
    let second = &upstream[1];
    let last = second["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user");
    let results: Vec<&Value> = last["content"].as_array().unwrap().iter().collect();
    assert_eq!(results.len(), 2, "{last}");
    assert!(results.iter().all(|b| b.get("toolResult").is_some()), "{last}");
    // `tool_choice: "required"` is Converse `any`.
    assert!(
        upstream[2]["toolConfig"]["toolChoice"].get("any").is_some(),
        "{}",
        upstream[2]
    );
}

#[test]
fn openai_zero_argument_tool() {
    openai("zero-arg");
}

#[test]
fn openai_reasoning() {
    openai("reasoning");
}

#[test]
fn openai_citations() {
    openai("citations");
}

#[test]
fn openai_cache_usage() {
    let Some((_, upstream)) = openai("cache") else {
        return;
    };
    let system = upstream[0]["system"].as_array().unwrap();
    assert!(system[1].get("cachePoint").is_some(), "{system:?}");
}

#[test]
fn openai_mid_stream_exception() {
    let Some((out, upstream)) = openai("exception") else {
        return;
    };
    assert!(out.contains("error:"), "{out}");
    assert_eq!(upstream.len(), 1, "bytes had reached the client: no retry");
}

#[test]
fn openai_http_errors() {
    let Some((_, upstream)) = openai("http-error") else {
        return;
    };
    // http-error once (not retryable), n=2 never sent, server-error tried 3 times.
    assert_eq!(upstream.len(), 1 + 3);
}

#[test]
fn anthropic_text() {
    anthropic("text");
}

#[test]
fn anthropic_parallel_tools_and_results() {
    let Some((_, upstream)) = anthropic("tools") else {
        return;
    };
    let second = &upstream[1];
    let last = second["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["content"].as_array().unwrap().len(), 2, "{last}");
}

#[test]
fn anthropic_zero_argument_tool() {
    anthropic("zero-arg");
}

#[test]
fn anthropic_reasoning_signature_is_replayed() {
    let Some((_, upstream)) = anthropic("reasoning") else {
        return;
    };
    assert_eq!(
        upstream[0]["additionalModelRequestFields"]["thinking"]["budget_tokens"],
        1024
    );
    let replay = &upstream[2];
    let assistant = &replay["messages"][1];
    let reasoning = &assistant["content"][0]["reasoningContent"]["reasoningText"];
    assert!(
        reasoning["signature"]
            .as_str()
            .unwrap()
            .starts_with("EqQBCkgIARAB"),
        "{assistant}"
    );
    assert!(reasoning["text"].as_str().unwrap().starts_with("The user wrote"));
}

#[test]
fn anthropic_citations_and_redacted_thinking() {
    anthropic("citations");
}

#[test]
fn anthropic_cache_usage() {
    let Some((_, upstream)) = anthropic("cache") else {
        return;
    };
    let system = upstream[0]["system"].as_array().unwrap();
    assert!(system[1].get("cachePoint").is_some(), "{system:?}");
}

#[test]
fn anthropic_mid_stream_exception() {
    let Some((out, upstream)) = anthropic("exception") else {
        return;
    };
    assert!(out.contains("error:"), "{out}");
    assert_eq!(upstream.len(), 1);
}

#[test]
fn anthropic_http_errors() {
    anthropic("http-error");
}
