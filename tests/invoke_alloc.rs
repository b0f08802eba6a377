//! Allocation budget of the invoke stream readers: in steady state the chunk decoder
//! (base64 into its reused buffer) and the usage reader make no allocation per chunk;
//! the assembler's allocations are the growth of the assembled text.

use std::alloc::System;

use bedrock_converse::eventstream::Message;
use bedrock_converse::invoke::{
    chunk_frame, chunk_frames, AnthropicAssembler, AnthropicContentBlock, AnthropicMessage, AnthropicUsage,
    ChunkDecoder, InvocationMetrics, UsageReader,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The counters are process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A Claude-like stream: `deltas` text deltas of varied length, then a tool call in
/// small fragments, usage and metrics.
fn stream(deltas: usize) -> Vec<Message> {
    let text: String = (0..deltas).map(|i| format!(" word{i} and more, café")).collect();
    let message = AnthropicMessage {
        id: "msg_bdrk_01".into(),
        model: "claude-sonnet-4-5".into(),
        content: vec![
            AnthropicContentBlock::Text {
                text,
                citations: vec![],
            },
            AnthropicContentBlock::ToolUse {
                id: "toolu_1".into(),
                name: "search".into(),
                input: serde_json::json!({"query": "rust event stream", "limit": 10}),
            },
        ],
        stop_reason: Some("tool_use".into()),
        usage: AnthropicUsage {
            input_tokens: 100,
            output_tokens: 2000,
            ..Default::default()
        },
        invocation_metrics: Some(InvocationMetrics {
            input_token_count: 100,
            output_token_count: 2000,
            invocation_latency: 3000,
            first_byte_latency: 400,
            ..Default::default()
        }),
        ..Default::default()
    };
    // 23 bytes per fragment: one delta per word, about.
    chunk_frames(&message, 23).expect("frames")
}

#[test]
fn chunk_decoder_and_usage_reader_allocate_nothing_per_chunk() {
    let _turn = serial();
    let frames = stream(5_000);
    let mut decoder = ChunkDecoder::new();
    let mut usage = UsageReader::new();
    // Warm-up: the buffer grows to the largest part.
    for f in &frames {
        if let Some(event) = decoder.decode_message(f).expect("chunk") {
            usage.observe(event);
        }
    }
    let mut usage = UsageReader::new();
    let region = Region::new(GLOBAL);
    let mut bytes = 0usize;
    for f in &frames {
        if let Some(event) = decoder.decode_message(f).expect("chunk") {
            bytes += event.len();
            usage.observe(event);
        }
    }
    let change = region.change();
    println!(
        "{} chunks, {bytes} native bytes: {} allocations, {} reallocations",
        frames.len(),
        change.allocations,
        change.reallocations
    );
    assert_eq!(change.allocations + change.reallocations, 0, "{change:?}");
    let u = usage.usage();
    assert_eq!(
        (u.input_tokens, u.output_tokens, u.invocation_latency_ms),
        (100, 2000, Some(3000))
    );
}

#[test]
fn chunk_decoder_allocates_only_to_grow() {
    let _turn = serial();
    // Parts of growing size: the buffer reallocates a bounded number of times
    // (doubling), never once per chunk.
    let frames: Vec<Message> = (0..2_000)
        .map(|i| chunk_frame("x".repeat(1 + i % 300).as_bytes()).expect("frame"))
        .collect();
    let mut decoder = ChunkDecoder::new();
    let region = Region::new(GLOBAL);
    for f in &frames {
        decoder.decode_message(f).expect("chunk");
    }
    let change = region.change();
    println!("{} chunks: {change:?}", frames.len());
    assert!(change.allocations + change.reallocations <= 12, "{change:?}");
}

#[test]
fn assembler_allocations_per_event() {
    let _turn = serial();
    let frames = stream(5_000);
    let region = Region::new(GLOBAL);
    let mut asm = AnthropicAssembler::new();
    for f in &frames {
        asm.push_frame(f.as_frame()).expect("event");
    }
    let message = asm.finish().expect("complete");
    let change = region.change();
    let per_event = (change.allocations + change.reallocations) as f64 / frames.len() as f64;
    println!(
        "{} events: {change:?}, {per_event:.3} allocations per event",
        frames.len()
    );
    assert!(message.text().len() > 100_000);
    // The text grows by doubling, and each JSON string with an escape ("café" is
    // plain UTF-8, so none here) would cost one; 0.1 per event is a loose bound.
    assert!(per_event < 0.1, "{per_event}");
}
