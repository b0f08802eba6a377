//! `bedrock-converse chat` against the built-in server, started in-process.

#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Output};

use bedrock_converse::client::{BedrockClient, Config, RequestParams};
use bedrock_converse::converse::Message;
use bedrock_converse::server::{MockBedrock, MockBedrockHandle};

const BIN: &str = env!("CARGO_BIN_EXE_bedrock-converse");
const KEY: &str = "cli-chat-test-key";

fn write_config(server: &MockBedrockHandle, name: &str) -> PathBuf {
    // JSON with comments, the key from the environment, as an ECA config would be.
    let text = format!(
        r#"{{
  "providers": {{
    "bedrock": {{
      "api": "bedrock",
      "key": "${{env:CLI_CHAT_KEY}}",
      "url": "{url}", // the in-process server
      "region": "us-east-1",
      "models": {{
        "text": {{ "modelName": "mock.text" }},
        "sync": {{ "modelName": "mock.text", "extraPayload": {{ "stream": false }} }},
        "tools": {{ "modelName": "mock.tools" }},
        "native": {{ "modelName": "anthropic.mock.text", "api": "invoke" }},
        "native-tools": {{ "modelName": "anthropic.mock.tools", "api": "invoke" }},
      }}
    }}
  }}
}}"#,
        url = server.url()
    );
    let dir = std::env::temp_dir().join(format!("bedrock-converse-cli-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("chat")
            .args(&args)
            .env("CLI_CHAT_KEY", KEY)
            .env_remove("RUST_LOG")
            .env_remove("ECA_LOG_LEVEL")
            .output()
            .expect("run binary")
    })
    .await
    .expect("join")
}

async fn expected_text(server: &MockBedrockHandle, prompt: &str) -> String {
    let text = format!(
        r#"{{"providers": {{"bedrock": {{"api": "bedrock", "key": "{KEY}", "url": "{}", "region": "us-east-1"}}}}}}"#,
        server.url()
    );
    let client =
        BedrockClient::new(Config::parse_with_env(&text, &|_| None).expect("config")).expect("client");
    client
        .converse(
            "bedrock/mock.text",
            &[Message::user(prompt)],
            &RequestParams::default(),
        )
        .await
        .expect("ok")
        .text()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_text_and_usage() {
    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .start()
        .await
        .expect("server");
    let config = write_config(&server, "stream.json");
    let prompt = "Tell me about the sea";
    let want = expected_text(&server, prompt).await;
    server.reset();
    let config_arg = config.to_str().expect("utf-8").to_string();
    let out = run(vec![
        s("--config"),
        config_arg.clone(),
        s("--model"),
        s("bedrock/text"),
        s(prompt),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert_eq!(stdout.trim_end(), want.trim_end());
    assert!(stderr.contains("waiting for"), "progress shown: {stderr}");
    assert!(
        stderr.contains("usage:") && stderr.contains("stop: end_turn"),
        "{stderr}"
    );
    let req = server.last_request().expect("request");
    assert!(req.uri.ends_with("/converse-stream"), "{}", req.uri);

    // Options reach the request body.
    let out = run(vec![
        s("--config"),
        config_arg,
        s("--model"),
        s("bedrock/text"),
        s("--temperature"),
        s("0.2"),
        s("--max-tokens"),
        s("77"),
        s("--system"),
        s("Be brief."),
        s(prompt),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body = server.last_request().and_then(|r| r.json()).expect("json");
    assert_eq!(body["inferenceConfig"]["temperature"], 0.2);
    assert_eq!(body["inferenceConfig"]["maxTokens"], 77);
    assert_eq!(body["system"][0]["text"], "Be brief.");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_no_stream_and_stream_false_use_converse() {
    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .start()
        .await
        .expect("server");
    let config = write_config(&server, "sync.json");
    let config_arg = config.to_str().expect("utf-8").to_string();
    let prompt = "Hello";
    let want = expected_text(&server, prompt).await;
    for model in ["bedrock/text", "bedrock/sync"] {
        server.reset();
        let mut args = vec![s("--config"), config_arg.clone(), s("--model"), s(model)];
        if model == "bedrock/text" {
            args.push(s("--no-stream"));
        }
        args.push(s(prompt));
        let out = run(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), want.trim_end());
        assert!(stderr.contains("usage:"), "{stderr}");
        let req = server.last_request().expect("request");
        assert!(req.uri.ends_with("/converse"), "{model}: {}", req.uri);
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_shows_tool_calls() {
    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .start()
        .await
        .expect("server");
    let config = write_config(&server, "tools.json");
    let out = run(vec![
        s("--config"),
        config.to_str().expect("utf-8").to_string(),
        s("--model"),
        s("bedrock/tools"),
        s("Weather in Oslo?"),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("[tool call] "), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop: tool_use"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reports_errors_and_keeps_partial_text() {
    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .start()
        .await
        .expect("server");
    let config = write_config(&server, "errors.json");
    let config_arg = config.to_str().expect("utf-8").to_string();
    // A stream that fails midway: text printed, then the exception, exit 1.
    let out = run(vec![
        s("--config"),
        config_arg.clone(),
        s("--model"),
        s("bedrock/mock.exception"),
        s("Hi"),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!out.stdout.is_empty(), "partial text printed");
    assert!(stderr.contains("modelStreamErrorException"), "{stderr}");
    // An HTTP error.
    let out = run(vec![
        s("--config"),
        config_arg,
        s("--model"),
        s("bedrock/mock.http-error"),
        s("Hi"),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("HTTP 400 ValidationException"), "{stderr}");
    // A wrong key in the environment.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args([
                "chat",
                "--config",
                config.to_str().unwrap_or_default(),
                "--model",
                "bedrock/text",
                "Hi",
            ])
            .env("CLI_CHAT_KEY", "wrong")
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDeniedException"));
    server.shutdown().await.expect("shutdown");
}

#[test]
fn chat_usage_errors_exit_2() {
    let out = Command::new(BIN)
        .args(["chat", "--config", "/nonexistent/bedrock-converse.json", "Hi"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_api_invoke_streams_through_the_native_route() {
    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .start()
        .await
        .expect("server");
    let config = write_config(&server, "invoke.json");
    let config_arg = config.to_str().expect("utf-8").to_string();
    let prompt = "Tell me about the sea";
    let want = expected_text(&server, prompt).await;

    // The model config's `"api": "invoke"`.
    server.reset();
    let out = run(vec![
        s("--config"),
        config_arg.clone(),
        s("--model"),
        s("bedrock/native"),
        s(prompt),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), want.trim_end());
    assert!(
        stderr.contains("/invoke-with-response-stream"),
        "progress names the route: {stderr}"
    );
    assert!(stderr.contains("stop: end_turn"), "{stderr}");
    let req = server.last_request().expect("request");
    assert!(req.uri.ends_with("/invoke-with-response-stream"), "{}", req.uri);
    let body = req.json().expect("json");
    assert_eq!(body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["messages"][0]["content"], prompt);

    // `--api invoke` on a raw id: thinking on stderr, the answer on stdout.
    let out = run(vec![
        s("--config"),
        config_arg.clone(),
        s("--api"),
        s("invoke"),
        s("--model"),
        s("bedrock/anthropic.mock.reasoning"),
        s("--max-tokens"),
        s("99"),
        s(prompt),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[reasoning] The user wrote"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("reasoning scenario"));
    assert_eq!(
        server.last_request().and_then(|r| r.json()).expect("json")["max_tokens"],
        99
    );

    // Not streamed: `/invoke`, tool calls printed.
    let out = run(vec![
        s("--config"),
        config_arg,
        s("--no-stream"),
        s("--model"),
        s("bedrock/native-tools"),
        s("Weather in Oslo?"),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("[tool call] get_weather {\"city\":\"Paris\"}"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop: tool_use"));
    assert!(server.last_request().expect("request").uri.ends_with("/invoke"));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_api_invoke_reports_a_mid_stream_exception_and_keeps_the_text() {
    let server = MockBedrock::builder()
        .bearer_key(KEY)
        .start()
        .await
        .expect("server");
    let config = write_config(&server, "invoke-errors.json");
    let out = run(vec![
        s("--config"),
        config.to_str().expect("utf-8").to_string(),
        s("--api"),
        s("invoke"),
        s("--model"),
        s("bedrock/anthropic.mock.exception"),
        s("Hello"),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Let me start answering"));
    assert!(stderr.contains("modelStreamErrorException"), "{stderr}");
    assert!(stderr.contains("partial answer kept"), "{stderr}");
    server.shutdown().await.expect("shutdown");
}
