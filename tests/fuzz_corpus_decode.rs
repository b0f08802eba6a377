//! Replays the decode fuzz target's logic (`fuzz/fuzz_targets/decode_logic.rs`) under
//! `cargo test`: on the seeds this file generates, on every file in
//! `fuzz/corpus/decode/` and `fuzz/artifacts/decode/`, and on every public vector and
//! capture in `../shared` when it is there.
//!
//! The seeds in `fuzz/corpus/decode/seed-*` are written by this file (never copied from
//! the vectors, whose README forbids committing them):
//! `BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS=1 cargo test --all-features --test fuzz_corpus_decode`.

mod common;
use common::{crate_dir, event_bytes, files_under};

use bedrock_converse::eventstream::{HeaderValue, Limits, MessageBuilder};

include!("../fuzz/fuzz_targets/decode_logic.rs");

use decode_logic::{check_stream, run, small_limits, Chunking};

/// Recomputes both CRCs of a frame whose lengths are right, so that only the
/// deliberate defect is left.
fn fix_crcs(frame: &mut [u8]) {
    let crc = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&crc.to_be_bytes());
    let end = frame.len() - 4;
    let crc = crc32fast::hash(&frame[..end]);
    frame[end..].copy_from_slice(&crc.to_be_bytes());
}

fn bedrock_stream() -> Vec<u8> {
    [
        event_bytes("messageStart", r#"{"p":"abcdefghij","role":"assistant"}"#),
        event_bytes(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hello"},"p":"abcdefghijklmnop"}"#,
        ),
        event_bytes("contentBlockStop", r#"{"contentBlockIndex":0,"p":"abcd"}"#),
        event_bytes("messageStop", r#"{"p":"abcdefgh","stopReason":"end_turn"}"#),
        event_bytes(
            "metadata",
            r#"{"metrics":{"latencyMs":312},"p":"ab","usage":{"inputTokens":12,"outputTokens":3,"totalTokens":15}}"#,
        ),
    ]
    .concat()
}

fn all_header_types() -> Vec<u8> {
    MessageBuilder::new()
        .header("bool true", HeaderValue::Bool(true))
        .header("bool false", HeaderValue::Bool(false))
        .header("byte", HeaderValue::Byte(-49))
        .header("int16", HeaderValue::Int16(-2))
        .header("int32", HeaderValue::Int32(40972))
        .header("int64", HeaderValue::Int64(i64::MIN))
        .header("byte buf", HeaderValue::ByteArray(b"\x00\xffbytes"))
        .header("string", HeaderValue::String("h\u{e9}llo"))
        .header("timestamp", HeaderValue::Timestamp(8_675_309))
        .header("uuid", HeaderValue::Uuid(*b"0123456789abcdef"))
        .header("empty", HeaderValue::String(""))
        .build(b"{\"x\":1}")
        .expect("valid frame")
        .as_bytes()
        .to_vec()
}

fn exception_frame() -> Vec<u8> {
    MessageBuilder::new()
        .string_header(":exception-type", "throttlingException")
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "exception")
        .build(br#"{"message":"Too many requests, please wait before trying again."}"#)
        .expect("valid frame")
        .as_bytes()
        .to_vec()
}

fn with_selector(sel: u8, param: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![sel, param];
    v.extend_from_slice(body);
    v
}

/// The seed inputs (selector bytes included), by file name.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let stream = bedrock_stream();
    let empty = MessageBuilder::new()
        .build(b"")
        .expect("valid")
        .as_bytes()
        .to_vec();

    let mut message_crc = stream.clone();
    let last = message_crc.len() - 1;
    message_crc[last] ^= 0x01;

    let mut prelude_crc = all_header_types();
    prelude_crc[9] ^= 0x80;

    // A string header whose length runs past the headers section, with valid CRCs.
    let mut value_overrun = event_bytes("ping", "{}");
    // Bytes 12.. are: 11 ":event-type" 7 <u16 len> "ping"; the length is at 12+1+11+1.
    value_overrun[25..27].copy_from_slice(&0x0100u16.to_be_bytes());
    fix_crcs(&mut value_overrun);

    let mut bad_type = all_header_types();
    // The first header: 9 "bool true" then its type byte at 12+1+9.
    bad_type[22] = 0x60;
    fix_crcs(&mut bad_type);

    // The same defect without fixing the CRCs, for the repairing mode.
    let mut stale_bad_type = all_header_types();
    stale_bad_type[22] = 0x0A;
    let mut stale_headers_len = exception_frame();
    stale_headers_len[7] = stale_headers_len[7].wrapping_add(3);
    let mut stale_stream = stream.clone();
    // The first frame's first header name length (":event-type", 11) becomes 12.
    stale_stream[12] = 12;

    let big_payload = event_bytes("contentBlockDelta", &format!(r#"{{"p":"{}"}}"#, "x".repeat(300)));

    vec![
        ("seed-bedrock-whole", with_selector(0, 0, &stream)),
        ("seed-bedrock-bytewise", with_selector(1, 0, &stream)),
        ("seed-bedrock-fixed-13", with_selector(2, 12, &stream)),
        ("seed-bedrock-random", with_selector(3, 7, &stream)),
        ("seed-all-header-types", with_selector(2, 9, &all_header_types())),
        ("seed-exception", with_selector(0, 0, &exception_frame())),
        ("seed-empty-message", with_selector(0, 0, &empty)),
        ("seed-empty-input", with_selector(0, 0, &[])),
        (
            "seed-truncated",
            with_selector(3, 1, &stream[..stream.len() - 20]),
        ),
        ("seed-corrupt-message-crc", with_selector(1, 0, &message_crc)),
        ("seed-corrupt-prelude-crc", with_selector(0, 0, &prelude_crc)),
        ("seed-header-value-overrun", with_selector(2, 3, &value_overrun)),
        ("seed-bad-header-type", with_selector(0, 0, &bad_type)),
        ("seed-small-limits", with_selector(4, 0, &big_payload)),
        (
            "seed-json-body",
            with_selector(0, 0, br#"{"message":"The security token is invalid."}"#),
        ),
        ("seed-sse-body", with_selector(1, 0, b"data: {}\n\n")),
        // Selector bit 3: the logic repairs the CRCs, so these stale ones do not matter.
        (
            "seed-repair-bad-header-type",
            with_selector(8, 0, &stale_bad_type),
        ),
        (
            "seed-repair-headers-length",
            with_selector(9, 0, &stale_headers_len),
        ),
        ("seed-repair-stream", with_selector(11, 5, &stale_stream)),
    ]
}

#[test]
fn generated_seeds_hold() {
    let write = std::env::var_os("BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS").is_some();
    let dir = crate_dir().join("fuzz/corpus/decode");
    for (name, data) in seeds() {
        run(&data);
        if write {
            std::fs::write(dir.join(name), &data).expect("write seed");
        }
    }
    // The logic's own CRC (for repairing) is CRC-32/IEEE.
    for data in [&b""[..], b"123456789", &bedrock_stream()] {
        assert_eq!(decode_logic::crc32(data), crc32fast::hash(data));
    }
    let mut repaired = all_header_types();
    repaired[8] ^= 0xFF;
    let last = repaired.len() - 1;
    repaired[last] ^= 0xFF;
    decode_logic::repair_crcs(&mut repaired);
    assert_eq!(repaired, all_header_types());
    // The well-formed seeds decode to the frames they were made of.
    let stream = bedrock_stream();
    for chunking in [Chunking::Whole, Chunking::Bytewise, Chunking::Random(7)] {
        let out = check_stream(&stream, chunking, Limits::default());
        assert!(out.error.is_none());
        assert_eq!(out.messages.len(), 5);
    }
}

#[test]
fn corpus_and_artifacts_replay() {
    common::replay_fuzz_target("decode", run);
}

/// Runs the logic on `bytes` as a raw stream with several chunkings and both limits,
/// and as fuzz input (its first two bytes taken as the selector).
fn exercise(bytes: &[u8]) {
    for limits in [Limits::default(), small_limits()] {
        for chunking in [
            Chunking::Whole,
            Chunking::Bytewise,
            Chunking::Fixed(7),
            Chunking::Fixed(4096),
            Chunking::Random(0x9e37_79b9),
        ] {
            check_stream(bytes, chunking, limits);
        }
    }
    run(bytes);
}

#[test]
fn public_vectors_and_captures() {
    let shared = crate_dir().join("../shared");
    if !shared.is_dir() {
        if std::env::var_os("CI").is_some() {
            panic!("../shared is missing");
        }
        println!("note: ../shared is missing; skipping the public vectors");
        return;
    }
    let mut files = files_under(&shared.join("vectors"));
    files.extend(files_under(&shared.join("reference/captures")));
    assert!(
        files.len() >= 30,
        "expected the vectors and captures, found {}",
        files.len()
    );
    for path in &files {
        let bytes = std::fs::read(path).expect("read vector");
        exercise(&bytes);
    }
    println!("ran the decode logic on {} public files", files.len());
}
