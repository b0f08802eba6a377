//! Event-stream decoding throughput: our zero-copy codec against the official
//! `aws-smithy-eventstream` decoder and against a CRC-only walk over the same frames.
//!
//! Every line is fed the same way: the pre-built wire bytes are copied into one
//! `BytesMut` in 16 KiB chunks (`reserve` + `extend_from_slice`, the buffer reused
//! across iterations), and after each chunk every complete frame is taken out. This is
//! what a `FramedRead` over an HTTP body does.
//!
//! - `official`: `aws_smithy_eventstream::frame::MessageFrameDecoder::decode_frame`.
//! - `codec`: [`EventStreamCodec`] as a `tokio_util` `Decoder`; each message is dropped
//!   after reading `payload().len()`.
//! - `decode_frame`: the borrowing entry point over the same buffer, advancing past
//!   each frame (how a validating forwarder uses it).
//! - `crc_walk`: the floor any validating decoder pays: per frame, read the prelude,
//!   `crc32fast` its 8 bytes, `crc32fast` the frame minus its last 4 bytes, compare both.
//!   It reserves like our codec (the whole frame once its prelude is seen).
//!
//! Inputs: `small` (Bedrock `contentBlockDelta`-like frames: three string headers and
//! 100 to 300 byte JSON payloads, about 2 MiB per iteration) and `large` (payloads of
//! 64 KiB to 1 MiB, about 4 MiB per iteration).
//!
//! The `kind` group times the question every upper layer asks of each frame ("which
//! event is this?") over 4,096 decoded Bedrock-like frames of six event types:
//! [`Frame::kind`], [`Frame::event_type`], and, as the baseline, the byte comparison the
//! assembler carried before layer 1 answered it (`assembler_copy`, copied here).
//!
//! ```text
//! cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3
//! CODEC_BEST_OF=1 cargo bench --bench codec     # fastest iteration of each line instead
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bedrock_converse::eventstream::{
    decode_frame, EventStreamCodec, Frame, FrameKind, Limits, MessageBuilder, PRELUDE_LEN,
};
use bytes::{Buf, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio_util::codec::Decoder;

const CHUNK: usize = 16 * 1024;

/// A small deterministic generator (64-bit LCG), so every run decodes the same bytes.
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
}

fn frame(payload: &[u8]) -> Vec<u8> {
    typed_frame("contentBlockDelta", payload)
}

fn typed_frame(event_type: &str, payload: &[u8]) -> Vec<u8> {
    MessageBuilder::new()
        .string_header(":event-type", event_type)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(payload)
        .expect("encodable frame")
        .as_bytes()
        .to_vec()
}

/// Bedrock-like `contentBlockDelta` frames, JSON payloads of 100 to 300 bytes (with the
/// `"p"` padding field real streams carry), about 2 MiB in all.
fn small_frames() -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "the ", "model ", "streams ", "tokens, ", "one ", "delta ", "at ", "a time. ",
    ];
    const PAD: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = Lcg(0x5eed);
    let mut wire = Vec::with_capacity(2 << 20);
    while wire.len() < 2 << 20 {
        let target = 100 + rng.below(201);
        let mut text = String::new();
        for _ in 0..1 + rng.below(6) {
            text.push_str(WORDS[rng.below(WORDS.len() as u64)]);
        }
        let mut payload =
            format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"{text}"}},"p":""#).into_bytes();
        let pad = target.saturating_sub(payload.len() + 2);
        payload.extend(PAD.iter().cycle().take(pad));
        payload.extend_from_slice(b"\"}");
        wire.extend_from_slice(&frame(&payload));
    }
    wire
}

/// Frames with payloads of 64 KiB to 1 MiB, about 4 MiB in all.
fn large_frames() -> Vec<u8> {
    let mut rng = Lcg(0xb16);
    let mut wire = Vec::new();
    for kib in [64, 1024, 96, 512, 128, 768, 256, 192, 1000, 80] {
        let payload: Vec<u8> = (0..kib * 1024).map(|_| rng.next() as u8).collect();
        wire.extend_from_slice(&frame(&payload));
    }
    wire
}

/// Feeds `wire` into `buf` in 16 KiB chunks and calls `drain` after each chunk.
fn feed(wire: &[u8], buf: &mut BytesMut, mut drain: impl FnMut(&mut BytesMut)) {
    for chunk in wire.chunks(CHUNK) {
        buf.reserve(chunk.len());
        buf.extend_from_slice(chunk);
        drain(buf);
    }
    assert!(buf.is_empty(), "every frame decoded");
}

fn crc_walk(buf: &mut BytesMut) -> usize {
    let mut frames = 0;
    loop {
        let Some(prelude) = buf.first_chunk::<12>() else {
            return frames;
        };
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
        let prelude_crc = u32::from_be_bytes([prelude[8], prelude[9], prelude[10], prelude[11]]);
        assert_eq!(crc32fast::hash(&prelude[..8]), prelude_crc, "prelude CRC");
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return frames;
        }
        let frame = &buf[..total];
        let (body, tail) = frame.split_at(total - 4);
        let message_crc = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        assert_eq!(crc32fast::hash(body), message_crc, "message CRC");
        buf.advance(total);
        frames += 1;
    }
}

/// The four ways of reading the stream, one iteration each over all of `wire`.
#[derive(Clone, Copy)]
enum Line {
    Official,
    Codec,
    DecodeFrame,
    CrcWalk,
}

impl Line {
    const ALL: [Line; 4] = [Line::Official, Line::Codec, Line::DecodeFrame, Line::CrcWalk];

    fn name(self) -> &'static str {
        match self {
            Line::Official => "official",
            Line::Codec => "codec",
            Line::DecodeFrame => "decode_frame",
            Line::CrcWalk => "crc_walk",
        }
    }

    /// Decodes all of `wire`, fed through `buf` (empty before and after).
    fn run(self, wire: &[u8], buf: &mut BytesMut) {
        match self {
            Line::Official => {
                let mut decoder = MessageFrameDecoder::new();
                feed(wire, buf, |buf| {
                    while let DecodedFrame::Complete(msg) = decoder.decode_frame(&mut *buf).expect("valid") {
                        black_box(msg.payload().len());
                    }
                });
            }
            Line::Codec => {
                let mut codec = EventStreamCodec::new();
                feed(wire, buf, |buf| {
                    while let Some(msg) = codec.decode(buf).expect("valid") {
                        black_box(msg.payload().len());
                    }
                });
            }
            Line::DecodeFrame => {
                let limits = Limits::default();
                feed(wire, buf, |buf| {
                    let mut used = 0;
                    while let Some((frame, len)) = decode_frame(&buf[used..], &limits).expect("valid") {
                        black_box(frame.payload().len());
                        used += len;
                    }
                    buf.advance(used);
                    // Like the codec: once a prelude is in (`decode_frame` checked it before
                    // returning `None`), make room for the whole frame.
                    if let Some(prelude) = buf.first_chunk::<12>() {
                        let total =
                            u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
                        buf.reserve(total.saturating_sub(buf.len()));
                    }
                });
            }
            Line::CrcWalk => feed(wire, buf, |buf| {
                black_box(crc_walk(buf));
            }),
        }
    }
}

fn bench_input(c: &mut Criterion, name: &str, wire: &[u8]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(wire.len() as u64));
    for line in Line::ALL {
        let mut buf = BytesMut::new();
        group.bench_function(line.name(), |b| b.iter(|| line.run(wire, &mut buf)));
    }
    group.finish();
}

/// `CODEC_BEST_OF=1`: instead of criterion, runs the lines in turns of 50 iterations
/// (16 turns) and prints each line's fastest iteration. Load from other processes can
/// only slow an iteration down, so on a busy machine the minimum is the steadier figure.
fn best_of(name: &str, wire: &[u8]) {
    let mut best = [Duration::MAX; 4];
    let mut buf = BytesMut::new();
    for turn in 0..16 {
        let i = turn % Line::ALL.len();
        for _ in 0..50 {
            let start = Instant::now();
            Line::ALL[i].run(wire, &mut buf);
            best[i] = best[i].min(start.elapsed());
        }
    }
    let mib_s = |d: Duration| wire.len() as f64 / d.as_secs_f64() / f64::from(1 << 20);
    let [official, codec, frame, walk] = best.map(mib_s);
    println!(
        "{name}: official {official:.0} MiB/s | codec {codec:.0} MiB/s ({:.2}x official, {:.0}% of walk) | \
         decode_frame {frame:.0} MiB/s ({:.2}x, {:.0}%) | crc_walk {walk:.0} MiB/s",
        codec / official,
        100.0 * codec / walk,
        frame / official,
        100.0 * frame / walk,
    );
}

/// The assembler's `bedrock_event_type` as it was before `Frame::kind` (the baseline).
fn assembler_copy(bytes: &[u8]) -> Option<&str> {
    const EVENT_TYPE: &[u8] = b"\x0b:event-type\x07\x00";
    const REST: &[u8] = b"\x0d:content-type\x07\x00\x10application/json\x0d:message-type\x07\x00\x05event";
    let headers_len = u32::from_be_bytes(*bytes.get(4..8)?.first_chunk::<4>()?);
    // A u32 fits in usize on the targets this crate supports.
    let headers = bytes.get(PRELUDE_LEN..PRELUDE_LEN.checked_add(headers_len as usize)?)?;
    let (&len, rest) = headers.strip_prefix(EVENT_TYPE)?.split_first()?;
    let (name, rest) = rest.split_at_checked(usize::from(len))?;
    if rest != REST {
        return None;
    }
    Some(match name {
        b"contentBlockDelta" => "contentBlockDelta",
        b"contentBlockStop" => "contentBlockStop",
        other => std::str::from_utf8(other).ok()?,
    })
}

/// 4,096 frames cycling through a Bedrock stream's event types (deltas most often).
fn kind_frames() -> Vec<u8> {
    const TYPES: [&str; 8] = [
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ];
    let mut wire = Vec::new();
    for i in 0..4096 {
        wire.extend_from_slice(&typed_frame(
            TYPES[i % TYPES.len()],
            br#"{"contentBlockIndex":0}"#,
        ));
    }
    wire
}

fn bench_kind(c: &mut Criterion) {
    let wire = kind_frames();
    let mut frames: Vec<Frame<'_>> = Vec::new();
    let mut rest = &wire[..];
    while let Some((frame, used)) = decode_frame(rest, &Limits::default()).expect("valid") {
        frames.push(frame);
        rest = &rest[used..];
    }
    let mut group = c.benchmark_group("kind");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("assembler_copy", |b| {
        b.iter(|| {
            for f in black_box(&frames) {
                black_box(assembler_copy(f.as_bytes()));
            }
        })
    });
    group.bench_function("frame_kind", |b| {
        b.iter(|| {
            for f in black_box(&frames) {
                if let FrameKind::Event { event_type } = f.kind() {
                    black_box(event_type);
                }
            }
        })
    });
    group.bench_function("event_type", |b| {
        b.iter(|| {
            for f in black_box(&frames) {
                black_box(f.event_type());
            }
        })
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let (small, large) = (small_frames(), large_frames());
    if std::env::var_os("CODEC_BEST_OF").is_some() {
        best_of("small", &small);
        best_of("large", &large);
        return;
    }
    bench_input(c, "small", &small);
    bench_input(c, "large", &large);
    bench_kind(c);
}

criterion_group!(benches, codec);
criterion_main!(benches);
