//! Allocations of the decoder in steady state, counted by a global allocator.
//!
//! The crate forbids `unsafe` in its own code (test targets included), and a
//! `GlobalAlloc` impl needs it, so the counting wrapper around `System` comes from
//! `stats_alloc` (atomics, no other dependencies). It counts on every thread; this file
//! holds a single `#[test]` so that the harness has nothing else running meanwhile.

use std::alloc::System;

use bedrock_converse::eventstream::{
    decode_frame, EventStreamCodec, Fed, FrameKind, Framer, Limits, MessageBuilder,
};
use bytes::BytesMut;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio_util::codec::Decoder;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const WARM_UP_FRAMES: usize = 2_000;
const MEASURED_FRAMES: usize = 10_000;
const READ: usize = 16 * 1024;

/// A small xorshift generator: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const EVENT_TYPES: [&str; 5] = [
    "messageStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
];

/// `n` Bedrock-like frames: the three string headers real streams carry and a JSON
/// payload of 100 to 300 bytes (padded with a `"p"` member, as Bedrock does).
fn bedrock_frames(n: usize, rng: &mut XorShift) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let event_type = EVENT_TYPES[i % EVENT_TYPES.len()];
        let target = 100 + rng.below(201) as usize;
        let head = format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"token {i}"}},"p":""#);
        let pad_len = target.saturating_sub(head.len() + 2);
        let pad: String = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            .chars()
            .cycle()
            .take(pad_len)
            .collect();
        let payload = format!("{head}{pad}\"}}");
        assert!((100..=300).contains(&payload.len()), "{}", payload.len());
        let msg = MessageBuilder::new()
            .string_header(":event-type", event_type)
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "event")
            .build(payload.as_bytes())
            .expect("frame");
        out.extend_from_slice(msg.as_bytes());
    }
    out
}

/// Feeds `wire` in 16 KiB reads (reserve, then extend_from_slice) into one reused
/// buffer, decoding and dropping each message after reading its payload length.
/// Returns (frames, payload bytes).
fn pump(codec: &mut EventStreamCodec, buf: &mut BytesMut, wire: &[u8]) -> (usize, usize) {
    let mut frames = 0;
    let mut payload = 0;
    for chunk in wire.chunks(READ) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        while let Some(msg) = codec.decode(buf).expect("valid stream") {
            payload += msg.payload().len();
            frames += 1;
        }
    }
    (frames, payload)
}

#[test]
fn steady_state_decoding_does_not_allocate() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let warm_up = bedrock_frames(WARM_UP_FRAMES, &mut rng);
    let measured = bedrock_frames(MEASURED_FRAMES, &mut rng);

    // ===== EventStreamCodec over one reused BytesMut =====
    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::new();
    let region = Region::new(GLOBAL);
    let (frames, _) = pump(&mut codec, &mut buf, &warm_up);
    let warm = region.change();
    assert_eq!(frames, WARM_UP_FRAMES);
    // The counter works: the empty buffer had to allocate while warming up.
    assert!(warm.allocations >= 1, "the counting allocator saw nothing");
    println!(
        "warm-up: {frames} frames: {} allocations + {} reallocations (buffer capacity now {})",
        warm.allocations,
        warm.reallocations,
        buf.capacity()
    );

    let region = Region::new(GLOBAL);
    let (frames, payload) = pump(&mut codec, &mut buf, &measured);
    let stats = region.change();
    assert_eq!(frames, MEASURED_FRAMES);
    assert!(buf.is_empty());
    let allocs = stats.allocations + stats.reallocations;
    let per_frame = allocs as f64 / frames as f64;
    println!(
        "codec: {frames} frames, {} bytes, {payload} payload bytes: {} allocations + {} reallocations \
         = {per_frame:.5} per frame ({} bytes allocated)",
        measured.len(),
        stats.allocations,
        stats.reallocations,
        stats.bytes_allocated,
    );
    assert!(
        per_frame <= 0.001,
        "{per_frame} allocations per frame in steady state"
    );

    // ===== decode_frame: borrowing, so nothing at all =====
    let region = Region::new(GLOBAL);
    let mut off = 0;
    let mut frames = 0;
    let limits = Limits::default();
    while let Some((frame, used)) = decode_frame(&measured[off..], &limits).expect("valid") {
        assert!(frame.payload().len() >= 100);
        off += used;
        frames += 1;
    }
    let stats = region.change();
    assert_eq!(frames, MEASURED_FRAMES);
    println!(
        "decode_frame: {frames} frames: {} allocations + {} reallocations",
        stats.allocations, stats.reallocations
    );
    assert_eq!(stats.allocations + stats.reallocations, 0);

    // ===== Framer, chunk mode: the 16 KiB reads forwarded, frames spanning them =====
    let mut framer = Framer::new(Limits::default());
    // Warm-up: the headers buffer grows to the largest section once.
    let (frames, _) = feed_all(&mut framer, &warm_up);
    assert_eq!(frames, WARM_UP_FRAMES);
    let region = Region::new(GLOBAL);
    let (frames, events) = feed_all(&mut framer, &measured);
    let stats = region.change();
    assert_eq!(frames, MEASURED_FRAMES);
    assert_eq!(events, MEASURED_FRAMES, "every frame is an event with a type");
    framer.feed_eof().expect("ends at a frame boundary");
    println!(
        "framer chunk mode: {frames} frames: {} allocations + {} reallocations",
        stats.allocations, stats.reallocations
    );
    assert_eq!(stats.allocations + stats.reallocations, 0);
}

/// Feeds `wire` to `framer` in 16 KiB reads; returns (frames, event frames).
fn feed_all(framer: &mut Framer, wire: &[u8]) -> (usize, usize) {
    let (mut frames, mut events) = (0, 0);
    for chunk in wire.chunks(READ) {
        let mut rest = chunk;
        // A frame is at least 16 bytes: at most READ / 16 frames end in one read.
        for _ in 0..=READ / 16 {
            match framer.feed(rest).expect("valid stream") {
                Fed::Frame { end } => {
                    frames += 1;
                    if let FrameKind::Event { event_type } = framer.last_kind() {
                        events += usize::from(EVENT_TYPES.contains(&event_type));
                    }
                    rest = &rest[end..];
                }
                Fed::Partial => break,
            }
        }
    }
    (frames, events)
}
