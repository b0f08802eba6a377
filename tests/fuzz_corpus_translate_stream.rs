//! Replays the stream-translation fuzz logic
//! (`fuzz/fuzz_targets/translate_stream_logic.rs`: each dialect's SSE writer by the
//! assembler's events and by `push_frame`, which must agree) under `cargo test`: on the
//! seeds below and on every file in `fuzz/corpus/translate_stream/` and
//! `fuzz/artifacts/translate_stream/`.
//!
//! Write the seeds into the corpus with
//! `BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS=1 cargo test --features translate --test fuzz_corpus_translate_stream`.

mod common;
use common::{crate_dir, files_in};

include!("../fuzz/fuzz_targets/translate_stream_logic.rs");

use translate_stream_logic::{frames, run, Outcome};

/// The byte of one operation: `kind` (0 messageStart, 1 and 2 text delta, 3 reasoning
/// delta, 4 contentBlockStop, 5 tool start, 6 tool delta, 7 messageStop, 8 metadata, 9
/// raw payload), its block index, and padding on a text delta.
fn op(kind: u8, index: u8, padded: bool) -> u8 {
    kind + 10 * index + if padded { 30 } else { 0 }
}

/// An operation with a string argument.
fn with_string(out: &mut Vec<u8>, op: u8, raw: &[u8]) {
    out.push(op);
    out.push(u8::try_from(raw.len()).expect("short"));
    out.extend_from_slice(raw);
}

/// Bytes from 0xF5 stand for escapes in the logic's strings.
const NEWLINE: u8 = 0xF5;
const QUOTE: u8 = 0xF6;
const BACKSLASH: u8 = 0xF7;
const SLASH: u8 = 0xF8;
const E_ACUTE_ESCAPED: u8 = 0xF9;
const EMOJI_PAIR: u8 = 0xFA;
const NUL_ESCAPED: u8 = 0xFB;
const E_ACUTE: u8 = 0xFC;
const CRAB: u8 = 0xFD;
const LONE_SURROGATE: u8 = 0xFF;

fn seeds() -> Vec<(&'static str, Vec<u8>, Outcome)> {
    let end = |v: &mut Vec<u8>| v.extend_from_slice(&[op(7, 0, false), op(8, 0, false)]);
    let mut text = vec![op(0, 0, false)];
    with_string(&mut text, op(1, 0, false), b"hello");
    with_string(
        &mut text,
        op(1, 0, true),
        &[
            NEWLINE,
            b'a',
            QUOTE,
            BACKSLASH,
            SLASH,
            E_ACUTE_ESCAPED,
            EMOJI_PAIR,
            NUL_ESCAPED,
            E_ACUTE,
            CRAB,
        ],
    );
    with_string(&mut text, op(2, 0, false), b" world");
    text.push(op(4, 0, false));
    end(&mut text);

    let mut reasoning_then_text = vec![op(0, 0, false)];
    with_string(&mut reasoning_then_text, op(3, 0, false), b"think");
    with_string(&mut reasoning_then_text, op(3, 0, false), &[QUOTE, b'x', NEWLINE]);
    reasoning_then_text.push(op(4, 0, false));
    with_string(&mut reasoning_then_text, op(1, 1, false), b"answer");
    with_string(&mut reasoning_then_text, op(1, 1, true), &[CRAB, E_ACUTE]);
    reasoning_then_text.push(op(4, 1, false));
    end(&mut reasoning_then_text);

    let mut tool = vec![op(0, 0, false), op(5, 0, false)];
    with_string(&mut tool, op(6, 0, false), &[b'{', QUOTE, b'a', QUOTE, b':']);
    with_string(&mut tool, op(6, 0, false), b"1}");
    tool.push(op(4, 0, false));
    end(&mut tool);

    let mut bad_utf8 = vec![op(0, 0, false)];
    with_string(&mut bad_utf8, op(1, 0, false), b"ok");
    with_string(&mut bad_utf8, op(1, 0, false), &[b'a', 0xC3, 0x28]);
    end(&mut bad_utf8);

    let mut raw_control = vec![op(0, 0, false)];
    with_string(&mut raw_control, op(1, 0, false), b"ok");
    with_string(&mut raw_control, op(1, 0, true), b"a\nb");
    end(&mut raw_control);

    let mut lone_surrogate = vec![op(0, 0, false)];
    with_string(&mut lone_surrogate, op(1, 0, false), b"ok");
    with_string(&mut lone_surrogate, op(1, 0, false), &[LONE_SURROGATE]);
    end(&mut lone_surrogate);

    let mut after_stop = vec![op(0, 0, false)];
    with_string(&mut after_stop, op(1, 2, false), b"a");
    after_stop.push(op(4, 2, false));
    with_string(&mut after_stop, op(1, 2, false), b"late");
    end(&mut after_stop);

    let mut raw_payload = vec![op(0, 0, false)];
    with_string(&mut raw_payload, op(1, 0, false), b"ok");
    with_string(
        &mut raw_payload,
        op(9, 0, false),
        br#"{"contentBlockIndex":0,"delta":{"text":"x"}"#,
    );
    end(&mut raw_payload);

    vec![
        ("text-escapes-padding", text, Outcome::Finished),
        ("reasoning-then-text", reasoning_then_text, Outcome::Finished),
        ("tool-fragments", tool, Outcome::Finished),
        ("invalid-utf8-in-forwarded-delta", bad_utf8, Outcome::Failed),
        ("raw-control-character", raw_control, Outcome::Failed),
        ("lone-surrogate", lone_surrogate, Outcome::Failed),
        ("delta-after-block-stop", after_stop, Outcome::Failed),
        ("truncated-payload", raw_payload, Outcome::Failed),
    ]
}

#[test]
fn seeds_behave() {
    let write = std::env::var_os("BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS").is_some();
    let corpus = crate_dir().join("fuzz/corpus/translate_stream");
    for (name, data, want) in seeds() {
        assert_eq!(run(&data), want, "{name}");
        if write {
            std::fs::create_dir_all(&corpus).expect("corpus dir");
            std::fs::write(corpus.join(format!("seed-{name}")), &data).expect("write seed");
        }
    }
}

#[test]
fn seeds_build_the_frames_they_name() {
    // start, three deltas, stop, messageStop, metadata: the input decodes as its
    // operations say (a seed that builds fewer frames tests less than it claims).
    let (_, text, _) = &seeds()[0];
    assert_eq!(frames(text).len(), 7);
}

#[test]
fn every_byte_prefix_of_a_seed() {
    // Cut anywhere: both paths agree, never a panic.
    for (_, data, _) in seeds() {
        for end in 0..data.len() {
            run(&data[..end]);
        }
    }
}

#[test]
fn corpus_and_artifacts_replay() {
    let mut n = 0;
    for dir in ["fuzz/corpus/translate_stream", "fuzz/artifacts/translate_stream"] {
        for file in files_in(&crate_dir().join(dir)) {
            run(&std::fs::read(&file).expect("read"));
            n += 1;
        }
    }
    println!("replayed {n} corpus and artifact files");
}
