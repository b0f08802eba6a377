//! Allocation budget of the assembler on a long text-only stream: the deltas borrow
//! from the frames, so the only allocations are the growth of the assembled text and
//! the finished response. And on the hard streams of `tests/common/corpus.rs`
//! (escape-heavy text, tool input cut inside escapes, mixed): decode + push + finish
//! in 16 KiB reads, reallocations counted.

use std::alloc::System;

use bedrock_converse::converse::{StreamAssembler, StreamEvent};
use bedrock_converse::eventstream::{EventStreamCodec, Message};
use bytes::BytesMut;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio_util::codec::Decoder;

mod common;
use common::{corpus, event_frame};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The counts are process-wide: the tests of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A stream like Claude's: `messageStart`, `deltas` text deltas with `"p"` padding,
/// `contentBlockStop`, `messageStop`, `metadata`.
fn text_stream(deltas: usize, escaped_every: usize) -> Vec<Message> {
    const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456";
    let mut out = vec![event_frame(
        "messageStart",
        r#"{"p":"abcdefghijklmnopqrstuvwxyzABCD","role":"assistant"}"#,
    )];
    for i in 0..deltas {
        let text = if escaped_every > 0 && i % escaped_every == 0 {
            format!("line {i} ends\\n\\n\\\"quoted\\\" caf\\u00e9")
        } else {
            format!(" word{i} and some more text, café ü")
        };
        let pad = &PAD[..(i * 7) % PAD.len()];
        out.push(event_frame(
            "contentBlockDelta",
            format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"{text}"}},"p":"{pad}"}}"#),
        ));
    }
    out.push(event_frame(
        "contentBlockStop",
        r#"{"contentBlockIndex":0,"p":"abcdefgh"}"#,
    ));
    out.push(event_frame(
        "messageStop",
        r#"{"p":"abcd","stopReason":"end_turn","additionalModelResponseFields":{"delta":{"stop_sequence":null}}}"#,
    ));
    out.push(event_frame(
        "metadata",
        r#"{"metrics":{"latencyMs":2040},"p":"ab","usage":{"inputTokens":22,"outputTokens":55,"serverToolUsage":{},"totalTokens":77}}"#,
    ));
    out
}

/// Allocations (including reallocations) made while assembling `messages`.
fn allocations(messages: &[Message]) -> (usize, usize) {
    let region = Region::new(GLOBAL);
    let mut asm = StreamAssembler::new();
    let mut deltas = 0usize;
    for m in messages {
        if let Ok(Some(StreamEvent::ContentBlockDelta { .. })) = asm.push(m) {
            deltas += 1;
        }
    }
    let response = asm.finish().expect("complete");
    let change = region.change();
    assert_eq!(deltas + 4, messages.len());
    assert!(!response.text().is_empty());
    drop(response);
    (change.allocations + change.reallocations, messages.len())
}

#[test]
fn text_stream_allocations_per_event() {
    let _turn = one_at_a_time();
    let messages = text_stream(20_000, 0);
    let (allocs, events) = allocations(&messages);
    let per_event = allocs as f64 / events as f64;
    println!(
        "text-only stream, no escapes: {allocs} allocations for {events} events = {per_event:.4} per event"
    );

    // For information: with an escaped string in every 10th delta, each of those costs
    // one allocation, the decoded string (`Cow::Owned`).
    let escaped = text_stream(20_000, 10);
    let (e_allocs, e_events) = allocations(&escaped);
    println!(
        "text-only stream, every 10th delta escaped: {e_allocs} allocations for {e_events} events = {:.4} per event",
        e_allocs as f64 / e_events as f64
    );

    assert!(per_event <= 0.05, "{per_event} allocations per event");
}

/// Allocations and reallocations made decoding `wire` in 16 KiB reads, pushing every
/// message and finishing; and the number of events.
fn decode_and_assemble(wire: &[u8]) -> (usize, usize, usize) {
    // The read buffer a body reader reuses, sized for one read and a frame.
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let region = Region::new(GLOBAL);
    let mut codec = EventStreamCodec::default();
    let mut asm = StreamAssembler::new();
    let mut events = 0usize;
    for chunk in wire.chunks(16 * 1024) {
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(&mut buf).expect("valid") {
            asm.push(&m).expect("event");
            events += 1;
        }
    }
    let response = asm.finish().expect("complete");
    let change = region.change();
    drop(response);
    let decode = Region::new(GLOBAL);
    let mut codec = EventStreamCodec::default();
    for chunk in wire.chunks(16 * 1024) {
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(&mut buf).expect("valid") {
            drop(m);
        }
    }
    let d = decode.change();
    println!(
        "  (of which decoding alone: {} + {})",
        d.allocations, d.reallocations
    );
    (change.allocations, change.reallocations, events)
}

fn per_event(name: &str, events: &[corpus::Event]) -> f64 {
    let (allocs, reallocs, n) = decode_and_assemble(&corpus::wire(events));
    assert_eq!(n, events.len());
    let per = (allocs + reallocs) as f64 / n as f64;
    println!("{name}: {allocs} allocations + {reallocs} reallocations for {n} events = {per:.4} per event");
    per
}

#[test]
fn hard_streams_allocations_per_event() {
    let _turn = one_at_a_time();
    let text = per_event("hard text (escape-heavy)", &corpus::text_stream(21, 2000));
    let tool = per_event(
        "hard tool (fragments cut inside escapes)",
        &corpus::tool_stream(22),
    );
    let mixed = per_event("hard mixed", &corpus::mixed_stream(23));
    assert!(text <= 0.05, "text: {text} allocations per event");
    // Its 12 tool calls take three allocations each (id, name, input buffer): the input
    // is checked without an allocation (`converse/json_check.rs`), and `metadata`
    // (usage with `cacheDetails`, metrics) is read without serde's flatten buffering.
    assert!(tool <= 0.1, "tool: {tool} allocations per event");
    assert!(mixed <= 0.1, "mixed: {mixed} allocations per event");
}

#[test]
fn allocations_do_not_grow_with_deltas() {
    let _turn = one_at_a_time();
    let count = |deltas: usize| {
        let (allocs, reallocs, _) = decode_and_assemble(&corpus::wire(&corpus::text_stream(31, deltas)));
        println!("{deltas} escape-heavy text deltas: {allocs} allocations + {reallocs} reallocations");
        (allocs, reallocs)
    };
    // The counts are process-wide and the test harness's own threads allocate now and
    // then (collecting another test's result): the least of three runs is this code's.
    let least = |deltas: usize| (0..3).map(|_| count(deltas)).min().expect("three runs");
    let (small, small_re) = least(10);
    let (large, large_re) = least(10_000);
    // The same allocations for 10 deltas as for 10,000; only the block's text buffer
    // (and the read buffer) grow, by doubling: a few reallocations, not one per delta.
    assert_eq!(small, large);
    assert!(large_re <= small_re + 24, "{small_re} -> {large_re}");
}
