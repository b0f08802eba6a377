//! Decode + assemble throughput: this crate (`EventStreamCodec` + `StreamAssembler`)
//! against the straightforward baseline an SDK user gets (`aws-smithy-eventstream`'s
//! `MessageFrameDecoder`, then each payload deserialized by serde_json into owned
//! structs and the `String`s pushed into per-block buffers), both producing the same
//! [`ConverseResponse`].
//!
//! Both sides are fed the same way: the wire bytes copied into one `BytesMut` in 16 KiB
//! chunks, every complete frame taken out after each chunk (what a `FramedRead` over an
//! HTTP body does). Throughput is in events (frames).
//!
//! Streams (deterministic; English-like words, about 1 in 18 non-ASCII): `text` (2000
//! text deltas, every 8th with escapes, Claude-like
//! `"p"` padding), `tool` (12 tool calls, 2 of them interleaved, with ~1.5 KiB JSON
//! inputs in 4 to 12 byte fragments), `mixed` (reasoning with signature, text, two
//! parallel tool calls, text).
//!
//! The `hard_*` streams come from `tests/common/corpus.rs` (included by path; the
//! tests use the same generator): every JSON escape, surrogate pairs and raw UTF-8,
//! one payload in eight with shuffled members and the `"p"` padding anywhere, tool
//! input fragments of 1 to 64 bytes cut anywhere (also right after a backslash),
//! reasoning with signatures, parallel tool calls interleaved: `hard_text` (2000
//! text deltas), `hard_tool` (12 tool calls with ~1.5 KiB inputs), `hard_mixed`.
//!
//! The baseline parses each tool input into a `serde_json::Value` tree, as the SDK
//! does into its `Document`; this crate keeps the checked text. The two responses are
//! compared as JSON values.
//!
//! A second group, `tool_input_parse`, compares serde_json and simd-json on tool-input
//! sized documents (the assembler parses each tool input once, at `contentBlockStop`).
//!
//! ```text
//! cargo bench --no-default-features --bench assemble                 # criterion
//! ASSEMBLE_BEST_OF=1 cargo bench --no-default-features --bench assemble
//!     # ours and the baseline in alternating turns; each one's fastest iteration
//! ASSEMBLE_ONLY=hard_text cargo bench --no-default-features --bench assemble
//!     # `ours` alone on one stream, 2,000 times (for perf or callgrind), fastest shown
//! ```

#[path = "../tests/common/corpus.rs"]
mod corpus;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bedrock_converse::converse::{
    ContentBlock, ConverseMetrics, ConverseOutput, ConverseResponse, Extra, Message, ReasoningContentBlock,
    ReasoningTextBlock, Role, StopReason, StreamAssembler, TokenUsage, ToolInput, ToolUseBlock,
};
use bedrock_converse::eventstream::{EventStreamCodec, MessageBuilder};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::codec::Decoder;

const CHUNK: usize = 16 * 1024;
const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456";

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

    fn pad(&mut self) -> &'static str {
        &PAD[..self.below(PAD.len() as u64)]
    }
}

/// English-like text: mostly ASCII, with the occasional non-ASCII word.
const WORDS: &[&str] = &[
    "the", "model", "stream", "returns", "tokens", "quickly", "and", "Bedrock", "frames", "them", "so",
    "naïve", "data", "of", "a", "JSON", "payload", "with", "padding", "is", "to", "in", "that", "it", "for",
    "on", "as", "are", "this", "we", "can", "be", "or", "by", "an", "at", "from", "which", "our", "will",
    "all", "one", "each", "token", "answer", "question", "result", "value", "field", "request", "response",
    "—", "café", "it’s",
];

struct StreamBuilder {
    events: Vec<(&'static str, String)>,
}

impl StreamBuilder {
    fn new() -> Self {
        StreamBuilder {
            events: vec![(
                "messageStart",
                r#"{"p":"abcdefghijklmnopqrstuvwxyzABCD","role":"assistant"}"#.into(),
            )],
        }
    }

    fn push(&mut self, ty: &'static str, payload: Value) {
        self.events.push((ty, payload.to_string()));
    }

    fn text_block(&mut self, rng: &mut Lcg, index: u32, deltas: usize) {
        for i in 0..deltas {
            let mut t = String::new();
            for _ in 0..1 + rng.below(8) {
                t.push(' ');
                t.push_str(WORDS[rng.below(WORDS.len() as u64)]);
            }
            if i % 8 == 7 {
                t.push_str("\n\n\"quoted\"");
            }
            self.push(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"text": t}, "p": rng.pad()}),
            );
        }
        self.push(
            "contentBlockStop",
            json!({"contentBlockIndex": index, "p": rng.pad()}),
        );
    }

    fn tool_input(rng: &mut Lcg, fields: usize) -> String {
        let mut m = serde_json::Map::new();
        for i in 0..fields {
            let v = match i % 4 {
                0 => json!(WORDS[rng.below(WORDS.len() as u64)].repeat(1 + rng.below(4))),
                1 => json!(rng.below(100_000)),
                2 => json!([rng.below(10), WORDS[rng.below(WORDS.len() as u64)], true]),
                _ => json!({"nested": WORDS[rng.below(WORDS.len() as u64)], "n": 1.5}),
            };
            m.insert(format!("field_{i}"), v);
        }
        Value::Object(m).to_string()
    }

    fn fragments(rng: &mut Lcg, input: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        let chars: Vec<char> = input.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let n = (4 + rng.below(9)).min(chars.len() - i);
            out.push(chars[i..i + n].iter().collect());
            i += n;
        }
        out
    }

    fn tool_start(&mut self, index: u32, name: &str) {
        self.push(
            "contentBlockStart",
            json!({"contentBlockIndex": index, "start": {"toolUse": {"name": name, "toolUseId": format!("tooluse_{index:022}")}}, "p": "abc"}),
        );
    }

    /// Tool calls whose deltas interleave round-robin.
    fn parallel_tools(&mut self, rng: &mut Lcg, first: u32, count: u32, fields: usize) {
        let mut frags = Vec::new();
        for k in 0..count {
            self.tool_start(first + k, "lookup_weather");
            let input = Self::tool_input(rng, fields);
            frags.push(Self::fragments(rng, &input));
        }
        let rounds = frags.iter().map(Vec::len).max().unwrap_or(0);
        for r in 0..rounds {
            for (k, f) in frags.iter().enumerate() {
                if let Some(piece) = f.get(r) {
                    self.push(
                        "contentBlockDelta",
                        json!({"contentBlockIndex": first + k as u32, "delta": {"toolUse": {"input": piece}}, "p": rng.pad()}),
                    );
                }
            }
        }
        for k in 0..count {
            self.push("contentBlockStop", json!({"contentBlockIndex": first + k}));
        }
    }

    fn reasoning_block(&mut self, rng: &mut Lcg, index: u32, deltas: usize) {
        for _ in 0..deltas {
            let t: Vec<&str> = (0..1 + rng.below(6))
                .map(|_| WORDS[rng.below(WORDS.len() as u64)])
                .collect();
            self.push(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"text": t.join(" ")}}}),
            );
        }
        self.push(
            "contentBlockDelta",
            json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": "Ep0CCkgICxABGAIqQOWPB6/PmA5SW9jC6FvaNq3E+U9ev4FMWcFWuAho+VGLCtazKc5WDjQ5i0MuxsY0o5pKDSVWVKii8KJDusXH4eASDK7jyzuk8iij7fJNihoM"}}}),
        );
        self.push("contentBlockStop", json!({"contentBlockIndex": index}));
    }

    fn finish(mut self, stop: &str) -> (Vec<u8>, usize) {
        self.push(
            "messageStop",
            json!({"additionalModelResponseFields": {"delta": {"stop_sequence": null}}, "p": "abcd", "stopReason": stop}),
        );
        self.push(
            "metadata",
            json!({"metrics": {"latencyMs": 2040}, "p": "ab", "usage": {"inputTokens": 22, "outputTokens": 55, "serverToolUsage": {}, "totalTokens": 77}}),
        );
        let mut out = Vec::new();
        for (ty, payload) in &self.events {
            let m = MessageBuilder::new()
                .string_header(":event-type", ty)
                .string_header(":content-type", "application/json")
                .string_header(":message-type", "event")
                .build(payload.as_bytes())
                .expect("frame");
            out.extend_from_slice(m.as_bytes());
        }
        (out, self.events.len())
    }
}

fn text_stream() -> (Vec<u8>, usize) {
    let mut rng = Lcg(1);
    let mut s = StreamBuilder::new();
    s.text_block(&mut rng, 0, 2000);
    s.finish("end_turn")
}

fn tool_stream() -> (Vec<u8>, usize) {
    let mut rng = Lcg(2);
    let mut s = StreamBuilder::new();
    s.text_block(&mut rng, 0, 5);
    s.parallel_tools(&mut rng, 1, 2, 40);
    for i in 3..13 {
        s.parallel_tools(&mut rng, i, 1, 40);
    }
    s.finish("tool_use")
}

fn mixed_stream() -> (Vec<u8>, usize) {
    let mut rng = Lcg(3);
    let mut s = StreamBuilder::new();
    s.reasoning_block(&mut rng, 0, 300);
    s.text_block(&mut rng, 1, 300);
    s.parallel_tools(&mut rng, 2, 2, 24);
    s.text_block(&mut rng, 4, 100);
    s.finish("tool_use")
}

// ===== ours =====

fn ours(body: &[u8], buf: &mut BytesMut) -> ConverseResponse {
    let mut codec = EventStreamCodec::default();
    let mut asm = StreamAssembler::new();
    buf.clear();
    for chunk in body.chunks(CHUNK) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(buf).expect("valid") {
            black_box(asm.push(&m).expect("event"));
        }
    }
    asm.finish().expect("complete")
}

// ===== baseline: official decoder + owned serde structs =====

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BDelta {
    content_block_index: u32,
    delta: BDeltaBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BDeltaBody {
    text: Option<String>,
    tool_use: Option<BToolDelta>,
    reasoning_content: Option<BReasoning>,
}

#[derive(Deserialize)]
struct BToolDelta {
    input: String,
}

#[derive(Deserialize)]
struct BReasoning {
    text: Option<String>,
    signature: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BStart {
    content_block_index: u32,
    start: BStartBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BStartBody {
    tool_use: Option<BToolStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BToolStart {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BStop {
    #[allow(dead_code)] // Read to mirror the SDK; the baseline does not need it.
    content_block_index: u32,
}

#[derive(Deserialize)]
struct BMessageStart {
    role: Role,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BMessageStop {
    stop_reason: String,
    additional_model_response_fields: Option<Value>,
}

#[derive(Deserialize)]
struct BMetadata {
    usage: Option<TokenUsage>,
    metrics: Option<ConverseMetrics>,
}

#[derive(Default)]
struct BBlock {
    text: Option<String>,
    tool: Option<(String, String, String)>,
    reasoning: Option<(String, Option<String>)>,
}

/// The baseline's response (tool inputs left as `{}`) and its tool inputs, parsed.
fn baseline(body: &[u8], buf: &mut BytesMut) -> (ConverseResponse, Vec<Value>) {
    let mut tool_inputs = Vec::new();
    let mut decoder = MessageFrameDecoder::new();
    let mut blocks: BTreeMap<u32, BBlock> = BTreeMap::new();
    let mut role = Role::Assistant;
    let mut stop = None;
    let mut additional = None;
    let mut usage = None;
    let mut metrics = None;
    buf.clear();
    for chunk in body.chunks(CHUNK) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        while let DecodedFrame::Complete(msg) = decoder.decode_frame(&mut *buf).expect("valid") {
            let header = |name: &str| {
                msg.headers()
                    .iter()
                    .find(|h| h.name().as_str() == name)
                    .and_then(|h| h.value().as_string().ok())
                    .map(|s| s.as_str().to_owned())
            };
            assert_eq!(header(":message-type").as_deref(), Some("event"));
            let ty = header(":event-type").expect("event type");
            let payload = msg.payload();
            match ty.as_str() {
                "messageStart" => {
                    role = serde_json::from_slice::<BMessageStart>(payload)
                        .expect("json")
                        .role
                }
                "contentBlockStart" => {
                    let e: BStart = serde_json::from_slice(payload).expect("json");
                    let b = blocks.entry(e.content_block_index).or_default();
                    if let Some(t) = e.start.tool_use {
                        b.tool = Some((t.tool_use_id, t.name, String::new()));
                    }
                }
                "contentBlockDelta" => {
                    let e: BDelta = serde_json::from_slice(payload).expect("json");
                    let b = blocks.entry(e.content_block_index).or_default();
                    if let Some(t) = e.delta.text {
                        b.text.get_or_insert_with(String::new).push_str(&t);
                    }
                    if let Some(t) = e.delta.tool_use {
                        b.tool.as_mut().expect("tool").2.push_str(&t.input);
                    }
                    if let Some(r) = e.delta.reasoning_content {
                        let acc = b.reasoning.get_or_insert_with(Default::default);
                        if let Some(t) = r.text {
                            acc.0.push_str(&t);
                        }
                        if let Some(s) = r.signature {
                            acc.1.get_or_insert_with(String::new).push_str(&s);
                        }
                    }
                }
                "contentBlockStop" => {
                    black_box(serde_json::from_slice::<BStop>(payload).expect("json"));
                }
                "messageStop" => {
                    let e: BMessageStop = serde_json::from_slice(payload).expect("json");
                    stop = Some(StopReason::from_wire(&e.stop_reason));
                    additional = e.additional_model_response_fields;
                }
                "metadata" => {
                    let e: BMetadata = serde_json::from_slice(payload).expect("json");
                    usage = e.usage;
                    metrics = e.metrics;
                }
                _ => {}
            }
        }
    }
    let content = blocks
        .into_values()
        .map(|b| {
            if let Some((tool_use_id, name, raw)) = b.tool {
                let input: Value = if raw.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&raw).expect("input")
                };
                tool_inputs.push(input);
                ContentBlock::ToolUse(ToolUseBlock {
                    tool_use_id,
                    name,
                    input: ToolInput::empty_object(),
                    r#type: None,
                    extra: Extra::new(),
                })
            } else if let Some((text, signature)) = b.reasoning {
                ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(ReasoningTextBlock {
                    text,
                    signature,
                }))
            } else {
                ContentBlock::Text(b.text.unwrap_or_default())
            }
        })
        .collect();
    let response = ConverseResponse {
        output: ConverseOutput {
            message: Some(Message { role, content }),
            extra: Extra::new(),
        },
        stop_reason: stop,
        usage,
        metrics,
        additional_model_response_fields: additional,
        trace: None,
        extra: Extra::new(),
    };
    (response, tool_inputs)
}

/// The baseline's response with its parsed tool inputs put in, as a JSON value.
fn baseline_value((mut response, inputs): (ConverseResponse, Vec<Value>)) -> Value {
    let mut inputs = inputs.into_iter();
    if let Some(m) = response.output.message.as_mut() {
        for block in &mut m.content {
            if let ContentBlock::ToolUse(t) = block {
                t.input = ToolInput::from(inputs.next().expect("input"));
            }
        }
    }
    serde_json::to_value(&response).expect("json")
}

/// The benchmarked streams: name, wire bytes, number of events.
fn streams() -> Vec<(&'static str, Vec<u8>, usize)> {
    let hard = |events: Vec<corpus::Event>| {
        let n = events.len();
        (corpus::wire(&events), n)
    };
    [
        ("text", text_stream()),
        ("tool", tool_stream()),
        ("mixed", mixed_stream()),
        ("hard_text", hard(corpus::text_stream(11, 2000))),
        ("hard_tool", hard(corpus::tool_stream(12))),
        ("hard_mixed", hard(corpus::mixed_stream(13))),
    ]
    .into_iter()
    .map(|(name, (body, events))| (name, body, events))
    .collect()
}

/// Checks that both sides build the same response from `body`.
fn check_same(name: &str, body: &[u8]) {
    let mut buf = BytesMut::new();
    let expected = baseline_value(baseline(body, &mut buf));
    assert_eq!(
        serde_json::to_value(ours(body, &mut buf)).expect("json"),
        expected,
        "{name}"
    );
}

/// `ASSEMBLE_BEST_OF=1`: instead of criterion, runs `ours` and the baseline in
/// alternating turns of 20 iterations (40 turns) on each stream and prints each one's
/// fastest iteration and their ratio. Load from other processes can only slow an
/// iteration down, so on a busy machine the minimum is the steadier figure.
fn best_of() {
    println!("| stream | events | ours (best) | baseline (best) | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, body, events) in streams() {
        check_same(name, &body);
        let mut best = [Duration::MAX; 2];
        let mut buf = BytesMut::new();
        for turn in 0..40 {
            for _ in 0..20 {
                let start = Instant::now();
                if turn % 2 == 0 {
                    black_box(ours(&body, &mut buf));
                } else {
                    black_box(baseline(&body, &mut buf));
                }
                let side = turn % 2;
                best[side] = best[side].min(start.elapsed());
            }
        }
        let [us, base] = best.map(|d| d.as_secs_f64() * 1e6);
        println!(
            "| {name} | {events} | {us:.1} µs | {base:.1} µs | {:.2}x |",
            base / us
        );
    }
}

/// `ASSEMBLE_ONLY=<stream>`: `ours` on that stream 2,000 times (`ASSEMBLE_RUNS`),
/// nothing else (a steady loop for `perf record` or `valgrind --tool=callgrind`); prints
/// the fastest iteration.
fn only(which: &str) {
    let Some((_, body, _)) = streams().into_iter().find(|(name, _, _)| *name == which) else {
        panic!("no stream called {which}");
    };
    let mut buf = BytesMut::new();
    let runs = std::env::var("ASSEMBLE_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        black_box(ours(&body, &mut buf));
        best = best.min(start.elapsed());
    }
    println!("{which}: ours best of {runs}: {:.1} µs", best.as_secs_f64() * 1e6);
}

fn assemble(c: &mut Criterion) {
    if std::env::var_os("ASSEMBLE_BEST_OF").is_some() {
        return best_of();
    }
    if let Ok(which) = std::env::var("ASSEMBLE_ONLY") {
        return only(&which);
    }
    let mut group = c.benchmark_group("assemble");
    for (name, body, events) in streams() {
        check_same(name, &body);
        eprintln!("{name}: {events} events, {} bytes", body.len());
        group.throughput(Throughput::Elements(events as u64));
        group.bench_with_input(BenchmarkId::new("ours", name), &body, |b, body| {
            let mut buf = BytesMut::new();
            b.iter(|| black_box(ours(body, &mut buf)));
        });
        // The decode share of `ours`: the same loop without the assembler.
        group.bench_with_input(BenchmarkId::new("ours_decode_only", name), &body, |b, body| {
            let mut buf = BytesMut::new();
            b.iter(|| {
                let mut codec = EventStreamCodec::default();
                buf.clear();
                for chunk in body.chunks(CHUNK) {
                    buf.reserve(chunk.len());
                    buf.extend_from_slice(chunk);
                    while let Some(m) = codec.decode(&mut buf).expect("valid") {
                        black_box(m.payload().len());
                    }
                }
            });
        });
        group.bench_with_input(BenchmarkId::new("smithy_serde", name), &body, |b, body| {
            let mut buf = BytesMut::new();
            b.iter(|| black_box(baseline(body, &mut buf)));
        });
    }
    group.finish();
}

fn tool_input_parse(c: &mut Criterion) {
    if std::env::var_os("ASSEMBLE_BEST_OF").is_some() || std::env::var_os("ASSEMBLE_ONLY").is_some() {
        return;
    }
    let mut group = c.benchmark_group("tool_input_parse");
    let mut rng = Lcg(4);
    for fields in [1usize, 8, 40, 200] {
        let input = StreamBuilder::tool_input(&mut rng, fields);
        let expected: Value = serde_json::from_str(&input).expect("json");
        let mut scratch = input.as_bytes().to_vec();
        assert_eq!(
            simd_json::serde::from_slice::<Value>(&mut scratch).expect("simd"),
            expected
        );
        group.throughput(Throughput::Bytes(input.len() as u64));
        let label = format!("{}B", input.len());
        group.bench_with_input(BenchmarkId::new("serde_json", &label), &input, |b, input| {
            b.iter(|| black_box(serde_json::from_str::<Value>(input).expect("json")));
        });
        // simd-json parses in place, so it needs its own mutable copy of the text.
        group.bench_with_input(BenchmarkId::new("simd_json", &label), &input, |b, input| {
            let mut scratch = Vec::with_capacity(input.len());
            b.iter(|| {
                scratch.clear();
                scratch.extend_from_slice(input.as_bytes());
                black_box(simd_json::serde::from_slice::<Value>(&mut scratch).expect("json"))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, assemble, tool_input_parse);
criterion_main!(benches);
