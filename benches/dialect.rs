//! What translating a ConverseStream into a client's dialect costs, against the native
//! pass-through of the same stream.
//!
//! One long, Claude-like stream (deterministic): reasoning with a signature (200
//! deltas), text (2000 deltas of a few words, every 8th with quotes or a newline,
//! Bedrock's `"p"` padding on every event), two parallel tool calls with interleaved
//! input fragments (400 deltas), stop and usage metadata. The wire bytes are fed in
//! 16 KiB chunks into one `BytesMut`, every complete frame taken out after each chunk.
//!
//! - `passthrough`: decode each frame (CRCs checked) and copy its bytes to the output,
//!   as the gateway's native routes do;
//! - `assemble`: decode and assemble, no output (what translation costs before writing);
//! - `openai_sse` / `anthropic_sse`: decode, and write the dialect's SSE into one reused
//!   output buffer (cleared after each chunk, as a server does once sent) with the
//!   writer's `push_frame`, as the gateway does: text deltas to open blocks straight from
//!   the frame, everything else through the assembler;
//! - `openai_events`: decode, assemble, and write every assembler event with `push` (the
//!   path for a caller that also wants the assembled response).
//!
//! Throughput is in events (frames). The ratio `openai_sse / passthrough` is the figure
//! in the README.

use std::hint::black_box;

use bedrock_converse::converse::StreamAssembler;
use bedrock_converse::eventstream::{EventStreamCodec, MessageBuilder};
use bedrock_converse::translate::{anthropic, openai, SseWriter};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use tokio_util::codec::Decoder;

const CHUNK: usize = 16 * 1024;
const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456";

const WORDS: &[&str] = &[
    "the ",
    "model ",
    "streams ",
    "tokens ",
    "quickly ",
    "and ",
    "gateways ",
    "translate ",
    "each ",
    "event ",
    "into ",
    "server-sent ",
    "events ",
    "for ",
    "their ",
    "clients ",
];

fn frame(event_type: &str, mut payload: serde_json::Value, n: usize) -> Vec<u8> {
    payload["p"] = json!(&PAD[..(n * 7) % PAD.len()]);
    MessageBuilder::new()
        .string_header(":event-type", event_type)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(payload.to_string().as_bytes())
        .expect("frame")
        .as_bytes()
        .to_vec()
}

fn long_stream() -> (Vec<u8>, usize) {
    let mut wire = Vec::new();
    let mut n = 0;
    let mut push = |wire: &mut Vec<u8>, t: &str, p: serde_json::Value| {
        wire.extend(frame(t, p, n));
        n += 1;
    };
    let text = |i: usize| {
        let mut s = String::new();
        for k in 0..3 {
            s.push_str(WORDS[(i * 3 + k) % WORDS.len()]);
        }
        match i % 8 {
            3 => s.push_str("\"quoted\" "),
            6 => s.push('\n'),
            _ => {}
        }
        s
    };
    push(&mut wire, "messageStart", json!({"role": "assistant"}));
    for i in 0..200 {
        push(
            &mut wire,
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": text(i)}}}),
        );
    }
    push(
        &mut wire,
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "EqQBCkgIARABGAIiQL".repeat(8)}}}),
    );
    push(&mut wire, "contentBlockStop", json!({"contentBlockIndex": 0}));
    for i in 0..2000 {
        push(
            &mut wire,
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"text": text(i)}}),
        );
    }
    push(&mut wire, "contentBlockStop", json!({"contentBlockIndex": 1}));
    for (i, id) in [(2, "tooluse_a1"), (3, "tooluse_b2")] {
        push(
            &mut wire,
            "contentBlockStart",
            json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": "search"}}}),
        );
    }
    // Two JSON inputs of 200 fragments each, interleaved.
    let input = |tag: &str| {
        let items: Vec<String> = (0..150).map(|k| format!("\"{tag}{k}\"")).collect();
        format!("{{\"queries\":[{}],\"limit\":10}}", items.join(","))
    };
    let (a, b) = (input("a"), input("b"));
    let cut = |s: &str| -> Vec<String> {
        let step = s.len().div_ceil(200);
        s.as_bytes()
            .chunks(step)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect()
    };
    for (fa, fb) in cut(&a).into_iter().zip(cut(&b)) {
        push(
            &mut wire,
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": fa}}}),
        );
        push(
            &mut wire,
            "contentBlockDelta",
            json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": fb}}}),
        );
    }
    push(&mut wire, "contentBlockStop", json!({"contentBlockIndex": 2}));
    push(&mut wire, "contentBlockStop", json!({"contentBlockIndex": 3}));
    push(&mut wire, "messageStop", json!({"stopReason": "tool_use"}));
    push(
        &mut wire,
        "metadata",
        json!({"usage": {"inputTokens": 1200, "outputTokens": 2600, "totalTokens": 3800,
        "cacheReadInputTokens": 900}, "metrics": {"latencyMs": 4000}}),
    );
    (wire, n)
}

#[derive(Clone, Copy)]
enum Mode {
    Passthrough,
    Assemble,
    OpenAi,
    Anthropic,
    OpenAiEvents,
}

/// Runs the whole stream once; returns the bytes written to the client.
#[inline(never)]
fn run(wire: &[u8], mode: Mode, buf: &mut BytesMut, out: &mut Vec<u8>) -> usize {
    let mut codec = EventStreamCodec::default();
    let mut asm = StreamAssembler::new();
    let mut oai = openai::ChatStreamWriter::new("chatcmpl-bench", "claude", 1_700_000_000, true);
    let mut ant = anthropic::MessagesStreamWriter::new("msg_bench", "claude");
    let mut written = 0;
    buf.clear();
    for chunk in wire.chunks(CHUNK) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        while let Some(msg) = codec.decode(buf).expect("valid stream") {
            match mode {
                Mode::Passthrough => out.extend_from_slice(msg.as_bytes()),
                Mode::Assemble => {
                    black_box(asm.push(&msg).expect("valid stream"));
                }
                Mode::OpenAi => oai
                    .push_frame(&mut asm, msg.as_frame(), out)
                    .expect("valid stream"),
                Mode::Anthropic => ant
                    .push_frame(&mut asm, msg.as_frame(), out)
                    .expect("valid stream"),
                Mode::OpenAiEvents => {
                    if let Some(ev) = asm.push(&msg).expect("valid stream") {
                        oai.push(&ev, out);
                    }
                }
            }
        }
        written += out.len();
        black_box(&out[..]);
        out.clear();
    }
    match mode {
        Mode::OpenAi | Mode::OpenAiEvents => oai.finish(out),
        Mode::Anthropic => ant.finish(out),
        _ => {}
    }
    written += out.len();
    out.clear();
    match mode {
        Mode::Passthrough => {}
        // The forwarded text is not in the assembler's blocks: only its state is kept.
        Mode::OpenAi | Mode::Anthropic => assert!(asm.is_stopped() && asm.usage().is_some()),
        _ => {
            black_box(asm.finish().expect("complete stream"));
        }
    }
    written
}

const MODES: [(&str, Mode); 5] = [
    ("passthrough", Mode::Passthrough),
    ("assemble", Mode::Assemble),
    ("openai_sse", Mode::OpenAi),
    ("anthropic_sse", Mode::Anthropic),
    ("openai_events", Mode::OpenAiEvents),
];

/// With `DIALECT_ONLY=<mode name>`: the whole stream [`ONLY_RUNS`] times in that mode and no
/// timing loop, a fixed amount of work to count instructions of (`valgrind
/// --tool=callgrind`, then the inclusive cost of `run` divided by its calls).
const ONLY_RUNS: usize = 10;

fn bench(c: &mut Criterion) {
    let (wire, frames) = long_stream();
    let mut buf = BytesMut::with_capacity(2 * CHUNK);
    let mut out = Vec::with_capacity(4 * CHUNK);
    if let Ok(only) = std::env::var("DIALECT_ONLY") {
        let (_, mode) = MODES
            .into_iter()
            .find(|(name, _)| *name == only)
            .expect("DIALECT_ONLY names a mode");
        for _ in 0..ONLY_RUNS {
            black_box(run(black_box(&wire), mode, &mut buf, &mut out));
        }
        return;
    }
    for (name, mode) in MODES {
        let bytes = run(&wire, mode, &mut buf, &mut out);
        println!(
            "dialect/{name}: {frames} frames, {} wire bytes in, {bytes} bytes out",
            wire.len()
        );
    }
    let mut g = c.benchmark_group("dialect");
    g.throughput(Throughput::Elements(frames as u64));
    for (name, mode) in MODES {
        g.bench_function(name, |b| {
            b.iter(|| run(black_box(&wire), mode, &mut buf, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
