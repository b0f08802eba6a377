//! `InvokeModelWithResponseStream` decode + assemble throughput: this crate
//! (`EventStreamCodec` + `AnthropicAssembler`, whose `ChunkDecoder` base64-decodes each
//! `chunk` into one reused buffer) against the SDK-style baseline (`aws-smithy-eventstream`'s
//! `MessageFrameDecoder`, each payload deserialized by serde_json into an owned
//! `{"bytes": String}`, `base64` into a new `Vec`, the native event parsed into a
//! `serde_json::Value` and accumulated the way the Anthropic SDKs accumulate events),
//! both producing the same [`AnthropicMessage`]. The baseline parses each tool input
//! once at `content_block_stop` (the Python SDK re-parses the partial JSON on every
//! fragment, which is slower).
//!
//! A second group, `invoke_usage`, is a gateway's path: decode every frame and read
//! the token counts (ours: `ChunkDecoder` + `UsageReader`, no allocation per chunk;
//! baseline: smithy + serde_json + base64 + a `Value` per event).
//!
//! Both sides are fed the same way: the wire bytes copied into one `BytesMut` in 16 KiB
//! chunks, every complete frame taken out after each chunk. Throughput is in wire bytes.
//!
//! Streams (deterministic): `text` (about 2000 `text_delta`s of English-like words),
//! `tool` (12 tool calls with ~1.5 KiB JSON inputs in 4 to 12 byte `input_json_delta`
//! fragments), `mixed` (thinking with signature, text, two tool calls, text).

use std::collections::BTreeMap;
use std::hint::black_box;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use base64::Engine as _;
use bedrock_converse::eventstream::EventStreamCodec;
use bedrock_converse::invoke::{
    chunk_frames, AnthropicAssembler, AnthropicContentBlock, AnthropicMessage, AnthropicUsage, ChunkDecoder,
    InvocationMetrics, UsageReader,
};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::codec::{Decoder, Encoder};

const CHUNK: usize = 16 * 1024;

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> usize {
        // `n` is small; the result fits in usize.
        (self.next() % n) as usize
    }

    fn words(&mut self, n: usize) -> String {
        const WORDS: [&str; 12] = [
            "the", "stream", "of", "events", "carries", "tokens", "model", "café", "über", "data", "fast",
            "bytes",
        ];
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len() as u64)])
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn tool_input(&mut self, fields: usize) -> Value {
        let mut m = serde_json::Map::new();
        for i in 0..fields {
            let v = match self.below(3) {
                0 => json!(self.words(4)),
                1 => json!(self.next() % 100_000),
                _ => json!([self.words(2), self.next() % 10, true]),
            };
            m.insert(format!("field_{i}"), v);
        }
        Value::Object(m)
    }
}

fn message(content: Vec<AnthropicContentBlock>, stop: &str) -> AnthropicMessage {
    AnthropicMessage {
        id: "msg_bdrk_01".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        content,
        stop_reason: Some(stop.into()),
        usage: AnthropicUsage {
            input_tokens: 472,
            output_tokens: 2000,
            ..Default::default()
        },
        invocation_metrics: Some(InvocationMetrics {
            input_token_count: 472,
            output_token_count: 2000,
            invocation_latency: 9000,
            first_byte_latency: 400,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The wire body of a message streamed in fragments of `fragment_len` bytes.
fn wire(message: &AnthropicMessage, fragment_len: usize) -> (Vec<u8>, usize) {
    let frames = chunk_frames(message, fragment_len).expect("frames");
    let mut codec = EventStreamCodec::default();
    let mut body = BytesMut::new();
    for f in &frames {
        codec.encode(f, &mut body).expect("encode");
    }
    (body.to_vec(), frames.len())
}

fn text_stream() -> AnthropicMessage {
    let mut rng = Lcg(1);
    let text = rng.words(12_000);
    message(
        vec![AnthropicContentBlock::Text {
            text,
            citations: vec![],
        }],
        "end_turn",
    )
}

fn tool_stream() -> AnthropicMessage {
    let mut rng = Lcg(2);
    let content = (0..12)
        .map(|i| AnthropicContentBlock::ToolUse {
            id: format!("toolu_bdrk_{i:02}"),
            name: format!("tool_{i}"),
            input: rng.tool_input(40),
        })
        .collect();
    message(content, "tool_use")
}

fn mixed_stream() -> AnthropicMessage {
    let mut rng = Lcg(3);
    message(
        vec![
            AnthropicContentBlock::Thinking {
                thinking: rng.words(1500),
                signature: "EqQBCkgIARABGAIiQL".repeat(20),
            },
            AnthropicContentBlock::Text {
                text: rng.words(1500),
                citations: vec![],
            },
            AnthropicContentBlock::ToolUse {
                id: "toolu_1".into(),
                name: "a".into(),
                input: rng.tool_input(20),
            },
            AnthropicContentBlock::ToolUse {
                id: "toolu_2".into(),
                name: "b".into(),
                input: rng.tool_input(20),
            },
            AnthropicContentBlock::Text {
                text: rng.words(500),
                citations: vec![],
            },
        ],
        "tool_use",
    )
}

/// The streams and the fragment length of each (text ~ a word or two per delta).
fn streams() -> Vec<(&'static str, AnthropicMessage, usize)> {
    vec![
        ("text", text_stream(), 30),
        ("tool", tool_stream(), 8),
        ("mixed", mixed_stream(), 24),
    ]
}

// ===== ours =====

fn ours(body: &[u8], buf: &mut BytesMut) -> AnthropicMessage {
    let mut codec = EventStreamCodec::default();
    let mut asm = AnthropicAssembler::new();
    buf.clear();
    for chunk in body.chunks(CHUNK) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(buf).expect("valid") {
            asm.push_frame(m.as_frame()).expect("event");
        }
    }
    asm.finish().expect("complete")
}

fn ours_usage(body: &[u8], buf: &mut BytesMut, decoder: &mut ChunkDecoder) -> (u64, u64) {
    let mut codec = EventStreamCodec::default();
    let mut usage = UsageReader::new();
    buf.clear();
    for chunk in body.chunks(CHUNK) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(buf).expect("valid") {
            if let Some(event) = decoder.decode_message(&m).expect("chunk") {
                usage.observe(event);
            }
        }
    }
    let u = usage.usage();
    (u.input_tokens, u.output_tokens)
}

// ===== the SDK-style baseline =====

#[derive(Deserialize)]
struct PayloadPart {
    bytes: String,
}

/// Every native event of the body, as the SDKs get them: smithy frame, owned JSON
/// wrapper, base64 into a new `Vec`, the event parsed into a `Value`.
fn baseline_events(body: &[u8], buf: &mut BytesMut, mut each: impl FnMut(Value)) {
    let mut decoder = MessageFrameDecoder::new();
    buf.clear();
    for chunk in body.chunks(CHUNK) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        while let DecodedFrame::Complete(msg) = decoder.decode_frame(&mut *buf).expect("valid") {
            let event_type = msg
                .headers()
                .iter()
                .find(|h| h.name().as_str() == ":event-type")
                .and_then(|h| h.value().as_string().ok())
                .map(|s| s.as_str().to_owned());
            if event_type.as_deref() != Some("chunk") {
                continue;
            }
            let part: PayloadPart = serde_json::from_slice(msg.payload()).expect("part");
            let native = base64::engine::general_purpose::STANDARD
                .decode(part.bytes)
                .expect("base64");
            each(serde_json::from_slice::<Value>(&native).expect("event"));
        }
    }
}

fn baseline(body: &[u8], buf: &mut BytesMut) -> AnthropicMessage {
    let mut message = Value::Null;
    let mut blocks: Vec<Value> = Vec::new();
    let mut json_bufs: BTreeMap<usize, String> = BTreeMap::new();
    let mut metrics = Value::Null;
    baseline_events(body, buf, |mut e| {
        let index = e["index"].as_u64().map(|i| i as usize);
        match e["type"].as_str().unwrap_or_default() {
            "message_start" => message = e["message"].take(),
            "content_block_start" => blocks.push(e["content_block"].take()),
            "content_block_delta" => {
                let (Some(i), delta) = (index, &e["delta"]) else {
                    return;
                };
                let block = &mut blocks[i];
                let append = |block: &mut Value, field: &str, s: &str| {
                    let mut old = block[field].as_str().unwrap_or_default().to_owned();
                    old.push_str(s);
                    block[field] = Value::String(old);
                };
                match delta["type"].as_str().unwrap_or_default() {
                    "text_delta" => append(block, "text", delta["text"].as_str().unwrap_or_default()),
                    "thinking_delta" => {
                        append(block, "thinking", delta["thinking"].as_str().unwrap_or_default())
                    }
                    "signature_delta" => append(
                        block,
                        "signature",
                        delta["signature"].as_str().unwrap_or_default(),
                    ),
                    "input_json_delta" => json_bufs
                        .entry(i)
                        .or_default()
                        .push_str(delta["partial_json"].as_str().unwrap_or_default()),
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(json) = index.and_then(|i| json_bufs.remove(&i)) {
                    blocks[index.unwrap_or_default()]["input"] = serde_json::from_str(&json).expect("input");
                }
            }
            "message_delta" => {
                message["stop_reason"] = e["delta"]["stop_reason"].take();
                message["stop_sequence"] = e["delta"]["stop_sequence"].take();
                if let Some(n) = e["usage"]["output_tokens"].as_u64() {
                    message["usage"]["output_tokens"] = json!(n);
                }
            }
            "message_stop" => metrics = e["amazon-bedrock-invocationMetrics"].take(),
            _ => {}
        }
    });
    message["content"] = Value::Array(blocks);
    message["amazon-bedrock-invocationMetrics"] = metrics;
    serde_json::from_value(message).expect("a message")
}

fn baseline_usage(body: &[u8], buf: &mut BytesMut) -> (u64, u64) {
    let (mut input, mut output) = (0, 0);
    baseline_events(body, buf, |e| {
        if let Some(m) = e.get("amazon-bedrock-invocationMetrics") {
            input = m["inputTokenCount"].as_u64().unwrap_or(input);
            output = m["outputTokenCount"].as_u64().unwrap_or(output);
        }
    });
    (input, output)
}

fn invoke_assemble(c: &mut Criterion) {
    let mut group = c.benchmark_group("invoke_assemble");
    for (name, expected, fragment_len) in streams() {
        let (body, events) = wire(&expected, fragment_len);
        let mut buf = BytesMut::new();
        // Both sides must build the same message, the one that was encoded.
        assert_eq!(ours(&body, &mut buf), expected, "{name}");
        assert_eq!(baseline(&body, &mut buf), expected, "{name}");
        eprintln!("{name}: {events} chunks, {} bytes", body.len());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("ours", name), &body, |b, body| {
            let mut buf = BytesMut::new();
            b.iter(|| black_box(ours(body, &mut buf)));
        });
        group.bench_with_input(BenchmarkId::new("smithy_serde_base64", name), &body, |b, body| {
            let mut buf = BytesMut::new();
            b.iter(|| black_box(baseline(body, &mut buf)));
        });
    }
    group.finish();
}

fn invoke_usage(c: &mut Criterion) {
    let mut group = c.benchmark_group("invoke_usage");
    for (name, expected, fragment_len) in streams() {
        let (body, _) = wire(&expected, fragment_len);
        let mut buf = BytesMut::new();
        let mut decoder = ChunkDecoder::new();
        assert_eq!(ours_usage(&body, &mut buf, &mut decoder), (472, 2000));
        assert_eq!(baseline_usage(&body, &mut buf), (472, 2000));
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("ours", name), &body, |b, body| {
            let mut buf = BytesMut::new();
            let mut decoder = ChunkDecoder::new();
            b.iter(|| black_box(ours_usage(body, &mut buf, &mut decoder)));
        });
        group.bench_with_input(BenchmarkId::new("smithy_serde_base64", name), &body, |b, body| {
            let mut buf = BytesMut::new();
            b.iter(|| black_box(baseline_usage(body, &mut buf)));
        });
    }
    group.finish();
}

criterion_group!(benches, invoke_assemble, invoke_usage);
criterion_main!(benches);
