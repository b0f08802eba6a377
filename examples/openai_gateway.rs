//! An OpenAI-style client through the gateway: the built-in mock Bedrock server, the
//! gateway in front of it with an alias `weather`, and a plain HTTP client speaking
//! OpenAI Chat Completions (`POST /v1/chat/completions`, `stream: true`) to it. The
//! model calls two tools in parallel; the client folds the `tool_calls` chunks by
//! `index`, answers with two `role: "tool"` messages, and prints the final answer as it
//! streams.
//!
//! ```text
//! cargo run --example openai_gateway --features proxy,server
//! ```
//!
//! Any OpenAI SDK works the same way: `base_url = http://<gateway>/v1`, the client key as
//! the API key, and a configured alias (or a Bedrock model id) as the model.

use std::io::Write;

use bedrock_converse::client::Auth;
use bedrock_converse::client::{Config, ModelConfig, ProviderConfig, Secret};
use bedrock_converse::proxy::{ClientKey, Proxy, ProxyConfig};
use bedrock_converse::server::MockBedrock;
use futures_util::StreamExt;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CLIENT_KEY: &str = "team-a-key";

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Upstream: the mock Bedrock server (`mock.tools` runs its tool-calling scenario).
    let bedrock = MockBedrock::builder().bearer_key("upstream-key").start().await?;
    let mut config = ProxyConfig::new(
        bedrock.url(),
        Auth::Bearer(Secret::new("upstream-key")),
        vec![ClientKey {
            id: "team-a".to_owned(),
            secret: CLIENT_KEY.to_owned(),
        }],
    );
    let mut provider = ProviderConfig::new("bedrock", "us-east-1").with_url(bedrock.url());
    provider.models.insert(
        "weather".to_owned(),
        ModelConfig {
            model_name: "mock.tools".to_owned(),
            extra_payload: Default::default(),
            region_prefix: None,
            api: Default::default(),
        },
    );
    config.models = Config::with_provider(provider);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = format!("http://{}/v1", listener.local_addr()?);
    tokio::spawn(Proxy::new(config)?.serve(listener, std::future::pending()));
    println!("gateway: {gateway} -> {}", bedrock.url());

    let tools = json!([
        {"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "add",
            "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}},
    ]);
    let mut messages =
        vec![json!({"role": "user", "content": "What's the weather in Paris, and what is 2 + 3?"})];
    for turn in 1..=2 {
        print!("turn {turn}: ");
        let reply = chat(&gateway, &messages, &tools).await?;
        println!("\n  finish_reason: {}", reply.finish_reason);
        if reply.calls.is_empty() {
            break;
        }
        let calls: Vec<Value> = reply
            .calls
            .iter()
            .map(|(id, name, args)| {
                println!("  tool call {id}: {name}({args})");
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
            })
            .collect();
        messages.push(json!({"role": "assistant", "content": reply.text, "tool_calls": calls}));
        for (id, name, _) in &reply.calls {
            let result = if name == "add" { "5" } else { "sunny, 21 C" };
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
        }
    }
    bedrock.shutdown().await?;
    Ok(())
}

/// What one streamed turn said.
struct Reply {
    text: String,
    /// (id, name, arguments) by `index`.
    calls: Vec<(String, String, String)>,
    finish_reason: String,
}

/// One streamed Chat Completions request; text is printed as it arrives.
async fn chat(gateway: &str, messages: &[Value], tools: &Value) -> Result<Reply, Error> {
    let body = json!({"model": "weather", "stream": true, "messages": messages, "tools": tools});
    let response = reqwest::Client::new()
        .post(format!("{gateway}/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}: {}", response.status(), response.text().await?).into());
    }
    let mut reply = Reply {
        text: String::new(),
        calls: Vec::new(),
        finish_reason: String::new(),
    };
    let mut pending = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk?);
        // Whole SSE events end with a blank line.
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            let line = String::from_utf8_lossy(&event);
            let Some(data) = line.trim().strip_prefix("data: ") else {
                continue;
            };
            if data != "[DONE]" {
                fold(&mut reply, &serde_json::from_str(data)?)?;
            }
        }
    }
    Ok(reply)
}

/// Folds one `chat.completion.chunk` into the reply.
fn fold(reply: &mut Reply, chunk: &Value) -> Result<(), Error> {
    if let Some(err) = chunk.get("error") {
        return Err(format!("stream error: {err}").into());
    }
    let choice = &chunk["choices"][0];
    if let Some(text) = choice["delta"]["content"].as_str() {
        print!("{text}");
        std::io::stdout().flush()?;
        reply.text.push_str(text);
    }
    for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
        let index = call["index"].as_u64().unwrap_or(0) as usize;
        if index == reply.calls.len() {
            let id = call["id"].as_str().unwrap_or_default().to_owned();
            let name = call["function"]["name"].as_str().unwrap_or_default().to_owned();
            reply.calls.push((id, name, String::new()));
        }
        if let (Some(slot), Some(args)) = (reply.calls.get_mut(index), call["function"]["arguments"].as_str())
        {
            slot.2.push_str(args);
        }
    }
    if let Some(reason) = choice["finish_reason"].as_str() {
        reply.finish_reason = reason.to_owned();
    }
    Ok(())
}
