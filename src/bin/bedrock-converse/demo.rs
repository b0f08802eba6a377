//! `bedrock-converse demo`: the built-in server and the client, end to end.
//!
//! Starts the mock Bedrock server on a free loopback port, then runs a streamed
//! conversation through [`BedrockClient`]: the model asks for two tools in parallel
//! (`get_weather` and `add`), the demo runs them, sends both results back in one user
//! message, and the model answers with them. Text is printed as it arrives. The last line
//! gives the frames and bytes of the conversation and the decode throughput of the codec
//! and assembler on a long stream.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bedrock_converse::client::{
    append_tool_results, BedrockClient, BlockDelta, ChatEvent, ClientError, Config, RequestParams,
    ResponseError, ToolCall,
};
use bedrock_converse::converse::{ContentBlock, ConverseResponse, Message, StreamAssembler};
use bedrock_converse::eventstream::EventStreamCodec;
use bedrock_converse::server::{MockBedrock, MockBedrockHandle, Operation};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_util::codec::Decoder;

/// The key the demo's server requires and its client sends.
const DEMO_KEY: &str = "demo-key";

/// Arguments of `bedrock-converse demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The question to ask.
    #[arg(long, default_value = "What's the weather in Paris, and what is 2 + 3?")]
    prompt: String,
    /// Pause between frames, in milliseconds, so the text visibly streams.
    #[arg(long, default_value_t = 8)]
    frame_delay_ms: u64,
    /// Text deltas of the stream used to measure decode throughput.
    #[arg(long, default_value_t = 20_000)]
    bench_deltas: usize,
}

/// Runs the subcommand.
pub(crate) fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bedrock-converse demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bedrock-converse demo: {e}");
            ExitCode::FAILURE
        }
    }
}

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The demo tools, as Converse `toolSpec`s.
fn tool_specs() -> Vec<Value> {
    vec![
        json!({"toolSpec": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "inputSchema": {"json": {"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"]}}
        }}),
        json!({"toolSpec": {
            "name": "add",
            "description": "Adds two numbers.",
            "inputSchema": {"json": {"type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}
        }}),
    ]
}

/// Runs one demo tool.
fn run_tool(call: &ToolCall) -> ContentBlock {
    match call.name.as_str() {
        "get_weather" => {
            let city = call
                .input
                .get("city")
                .and_then(Value::as_str)
                .unwrap_or("somewhere");
            ContentBlock::tool_result_json(
                &call.id,
                json!({"city": city, "conditions": "sunny", "tempC": 21}),
            )
        }
        "add" => {
            let num = |k: &str| call.input.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let sum = num("a") + num("b");
            ContentBlock::tool_result_text(&call.id, format_number(sum))
        }
        other => ContentBlock::tool_result_text(&call.id, format!("unknown tool {other}")),
    }
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        x.to_string()
    }
}

/// What a result block says, for printing.
fn describe_result(block: &ContentBlock) -> String {
    serde_json::to_value(block)
        .ok()
        .and_then(|v| v.pointer("/toolResult/content/0").cloned())
        .map(|c| match (c.get("text"), c.get("json")) {
            (Some(Value::String(t)), _) => t.clone(),
            (_, Some(j)) => j.to_string(),
            _ => c.to_string(),
        })
        .unwrap_or_default()
}

async fn demo(args: Args) -> DemoResult<()> {
    let server = MockBedrock::builder()
        .bearer_key(DEMO_KEY)
        .frame_delay(Duration::from_millis(args.frame_delay_ms))
        .start()
        .await?;
    let result = conversation(&server, &args).await;
    let bench = match &result {
        Ok(_) => Some(decode_throughput(args.bench_deltas).await),
        Err(_) => None,
    };
    let frames = server.frames_streamed();
    let bytes = server.bytes_streamed();
    let requests = server.request_count();
    server.shutdown().await?;
    let turns = result?;
    let bench = bench.transpose()?;
    print!("done: {turns} turns, {requests} requests, {frames} frames, {bytes} bytes received");
    if let Some(b) = bench {
        print!(
            "; decode: {} frames / {} bytes in {:.2} ms = {:.0} MB/s, {:.2} M frames/s",
            b.frames,
            b.bytes,
            b.elapsed.as_secs_f64() * 1e3,
            b.bytes as f64 / b.elapsed.as_secs_f64() / 1e6,
            b.frames as f64 / b.elapsed.as_secs_f64() / 1e6,
        );
    }
    println!();
    Ok(())
}

/// The conversation; returns the number of model turns.
async fn conversation(server: &MockBedrockHandle, args: &Args) -> DemoResult<usize> {
    let config = Config::parse(
        &json!({"providers": {"mock": {
            "api": "bedrock",
            "url": server.url(),
            "key": DEMO_KEY,
            "region": "us-east-1",
            "models": {"demo": {"modelName": "mock.tools"}}
        }}})
        .to_string(),
    )?;
    let client = BedrockClient::new(config)?;
    let model = "mock/demo";
    let endpoint = client.endpoint(model, true)?;
    println!("mock Bedrock server on {}", server.endpoint());
    println!("POST {} (Authorization: Bearer {DEMO_KEY})", endpoint.display);
    println!();
    println!("user: {}", args.prompt);

    let params = RequestParams {
        tools: tool_specs(),
        ..RequestParams::default()
    };
    let mut messages = vec![Message::user(args.prompt.clone())];
    let mut turns = 0;
    loop {
        turns += 1;
        let (response, calls) = stream_turn(&client, model, &messages, &params).await?;
        if calls.is_empty() {
            break;
        }
        if turns >= 4 {
            return Err("the model kept asking for tools".into());
        }
        let results: Vec<ContentBlock> = calls.iter().map(run_tool).collect();
        for (call, result) in calls.iter().zip(&results) {
            println!("  result {} = {}", call.name, describe_result(result));
        }
        append_tool_results(&mut messages, &response, results)?;
        println!("  (sending {} results back in one user message)", calls.len());
    }
    Ok(turns)
}

/// Streams one model turn, printing as it goes; returns the response and its tool calls.
async fn stream_turn(
    client: &BedrockClient,
    model: &str,
    messages: &[Message],
    params: &RequestParams,
) -> Result<(ConverseResponse, Vec<ToolCall>), ClientError> {
    let mut stream = client.converse_stream(model, messages, params).await?;
    let mut out = std::io::stdout();
    let mut calls = Vec::new();
    let mut in_text = false;
    while let Some(event) = stream.next().await {
        match event? {
            ChatEvent::ContentBlockDelta {
                delta: BlockDelta::Text(text),
                ..
            } => {
                if !in_text {
                    print!("assistant: ");
                    in_text = true;
                }
                print!("{text}");
                let _ = out.flush();
            }
            ChatEvent::ToolCall { call, .. } => {
                if in_text {
                    println!();
                    in_text = false;
                }
                println!("  tool call {} {} [{}]", call.name, call.input, call.id);
                calls.push(call);
            }
            ChatEvent::Done(response) => {
                if in_text {
                    println!();
                }
                let stop = response.stop_reason.as_ref().map_or("?", |s| s.as_str());
                let usage = response.usage.as_ref().map_or_else(
                    || "no usage".to_owned(),
                    |u| {
                        format!(
                            "{} in + {} out = {} tokens",
                            u.input_tokens, u.output_tokens, u.total_tokens
                        )
                    },
                );
                let latency = response.metrics.as_ref().map_or(0, |m| m.latency_ms);
                println!(
                    "  [stop: {stop}; usage: {usage}; latency {latency} ms; {} frames]",
                    stream.frames()
                );
                return Ok((*response, calls));
            }
            _ => {}
        }
    }
    Err(ClientError::Response(ResponseError::Truncated))
}

/// Decode throughput of the codec and the assembler on one long stream.
struct Bench {
    frames: u64,
    bytes: usize,
    elapsed: Duration,
}

/// Fetches a `long` stream once (raw bytes), then decodes and assembles it in memory.
async fn decode_throughput(deltas: usize) -> DemoResult<Bench> {
    // A second server without the frame delay, so fetching is quick.
    let fast = MockBedrock::builder().long_deltas(deltas).start().await?;
    let url = fast.operation_url("mock.long", Operation::ConverseStream);
    let body = json!({"messages": [{"role": "user", "content": [{"text": "benchmark"}]}]});
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?
        .error_for_status()?;
    let raw = resp.bytes().await?;
    fast.shutdown().await?;

    let mut best: Option<Bench> = None;
    for _ in 0..5 {
        let start = Instant::now();
        let mut buf = BytesMut::from(raw.as_ref());
        let mut codec = EventStreamCodec::new();
        let mut assembler = StreamAssembler::new();
        let mut frames = 0u64;
        while let Some(message) = codec.decode_eof(&mut buf)? {
            assembler.push(&message)?;
            frames += 1;
        }
        let response = assembler.finish()?;
        let elapsed = start.elapsed();
        std::hint::black_box(response);
        if best.as_ref().map_or(true, |b| elapsed < b.elapsed) {
            best = Some(Bench {
                frames,
                bytes: raw.len(),
                elapsed,
            });
        }
    }
    best.ok_or_else(|| "no measurement".into())
}
