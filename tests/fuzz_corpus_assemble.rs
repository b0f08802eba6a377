//! Replays the assemble fuzz target's logic (`fuzz/fuzz_targets/assemble_logic.rs`)
//! under `cargo test`: on the seeds this file generates, on every file in
//! `fuzz/corpus/assemble/` and `fuzz/artifacts/assemble/`, and on the recorded event
//! sequences in `../shared` when it is there.
//!
//!
//!
//! Write the seeds into the corpus with
//! `BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_corpus_assemble`.

use std::collections::BTreeMap;

mod common;
use common::{at, borrowed, crate_dir};

use serde_json::value::RawValue;

include!("../fuzz/fuzz_targets/assemble_logic.rs");

use assemble_logic::{encode, run, Raw, RAW_KINDS, TEMPLATES};

/// The selector of a template by event type and a distinctive part of its payload.
fn t(event_type: &str, contains: &str) -> u8 {
    let i = TEMPLATES
        .iter()
        .position(|(ty, body)| *ty == event_type && body.contains(contains))
        .expect("template");
    0x80 | u8::try_from(i).expect("few templates")
}

fn raw(kind: &str) -> u8 {
    let i = RAW_KINDS
        .iter()
        .position(|k| match k {
            Raw::Event(ty) | Raw::Exception(ty) => *ty == kind,
            Raw::Error => kind == "error",
            Raw::NoMessageType => kind == "no-message-type",
            Raw::OddMessageType => kind == "odd-message-type",
            Raw::NoEventType => kind == "no-event-type",
        })
        .expect("raw kind");
    u8::try_from(i).expect("few kinds")
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let start = (t("messageStart", "role"), at(0, ""));
    let text = |i: u8, s: &str| (t("contentBlockDelta", "\"text\":{s}},\"p\""), at(i, s));
    let stop = |i: u8| (t("contentBlockStop", "contentBlockIndex"), at(i, ""));
    let message_stop = |s: &str| (t("messageStop", "additionalModelResponseFields"), at(0, s));
    let metadata = (t("metadata", "usage"), at(0, ""));
    let tool_start = |i: u8, name: &str| (t("contentBlockStart", "toolUse"), at(i, name));
    let tool_input = |i: u8, s: &str| (t("contentBlockDelta", "toolUse"), at(i, s));
    let owned = |records: Vec<(u8, Vec<u8>)>, flags: u8| encode(flags, &borrowed(&records));
    vec![
        (
            "text",
            owned(
                vec![
                    start.clone(),
                    text(0, "Hello"),
                    text(0, ", \"world\"\n é 😀"),
                    stop(0),
                    message_stop("end_turn"),
                    metadata.clone(),
                ],
                0,
            ),
        ),
        (
            "tool",
            owned(
                vec![
                    start.clone(),
                    text(0, "Let me compute."),
                    stop(0),
                    tool_start(1, "cosine"),
                    tool_input(1, ""),
                    tool_input(1, "{\"x\": "),
                    tool_input(1, "7}"),
                    stop(1),
                    message_stop("tool_use"),
                    metadata.clone(),
                ],
                2,
            ),
        ),
        (
            "parallel-tools",
            owned(
                vec![
                    start.clone(),
                    tool_start(0, "a"),
                    tool_start(1, "b"),
                    tool_input(0, "{\"q\":"),
                    tool_input(1, "{}"),
                    tool_input(0, "[1,2]}"),
                    stop(1),
                    stop(0),
                    message_stop("tool_use"),
                    metadata.clone(),
                ],
                0,
            ),
        ),
        (
            "reasoning",
            owned(
                vec![
                    start.clone(),
                    (
                        t("contentBlockDelta", "reasoningContent\":{\"text"),
                        at(0, "thinking"),
                    ),
                    (t("contentBlockDelta", "signature"), at(0, "Ep0CCkgICxAB")),
                    stop(0),
                    (t("contentBlockDelta", "redactedContent"), at(1, "YWJjZA==")),
                    stop(1),
                    (t("contentBlockDelta", "citation"), at(2, "document")),
                    text(2, "cited"),
                    stop(2),
                    (t("contentBlockStart", "start\":{}"), at(3, "")),
                    (t("contentBlockDelta", "image"), at(3, "x")),
                    stop(3),
                    message_stop("end_turn"),
                    metadata.clone(),
                ],
                2,
            ),
        ),
        (
            "exception",
            owned(
                vec![
                    start.clone(),
                    text(0, "partial"),
                    (
                        raw("modelStreamErrorException"),
                        br#"{"message":"Model Stream Error","originalStatusCode":500,"originalMessage":"x"}"#
                            .to_vec(),
                    ),
                ],
                0,
            ),
        ),
        (
            "odd-frames",
            owned(
                vec![
                    (raw("no-message-type"), b"{}".to_vec()),
                    (raw("odd-message-type"), b"{}".to_vec()),
                    (raw("no-event-type"), b"{}".to_vec()),
                    (raw("error"), b"boom".to_vec()),
                    (raw("somethingNew"), b"\xff\xfe".to_vec()),
                    (raw("initial-response"), b"{}".to_vec()),
                    (
                        raw("contentBlockDelta"),
                        br#"{"contentBlockIndex":0,"delta":{"text":"no start"}}"#.to_vec(),
                    ),
                    (raw("throttlingException"), b"not json".to_vec()),
                ],
                1,
            ),
        ),
    ]
}

/// Recorded event sequences as raw-mode inputs.
/// Recorded event sequences as raw-mode inputs, and whether every event fit in a
/// record (payloads over 255 bytes are left out).
fn capture_inputs() -> Vec<(String, Vec<u8>, bool)> {
    let dir = crate_dir().join("../shared/reference/captures/vercel-ai-chunks");
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing", dir.display());
        eprintln!("note: {} is missing; skipping the captures", dir.display());
        return Vec::new();
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let mut records = Vec::new();
        let mut complete = true;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(line).expect("json line");
            for (ty, payload) in map {
                let bytes = payload.get().as_bytes().to_vec();
                if bytes.len() <= 255 {
                    records.push((raw(&ty), bytes));
                } else {
                    complete = false;
                }
            }
        }
        let refs: Vec<(u8, &[u8])> = records.iter().map(|(s, p)| (*s, p.as_slice())).collect();
        out.push((path.display().to_string(), encode(1, &refs), complete));
    }
    out
}

#[test]
fn seeds_behave() {
    let write = std::env::var_os("BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS").is_some();
    let corpus = crate_dir().join("fuzz/corpus/assemble");
    for (name, input) in seeds() {
        let outcome = run(&input);
        match name {
            "text" | "tool" | "parallel-tools" | "reasoning" => {
                assert!(outcome.finished, "{name}: {outcome:?}");
                assert_eq!(outcome.errors, 0, "{name}");
            }
            "exception" => assert!(!outcome.finished && outcome.errors == 1, "{outcome:?}"),
            _ => assert!(outcome.errors > 0, "{name}: {outcome:?}"),
        }
        if write {
            std::fs::create_dir_all(&corpus).expect("corpus dir");
            std::fs::write(corpus.join(format!("seed-{name}")), &input).expect("write seed");
        }
    }
}

#[test]
fn captures_behave() {
    for (name, input, complete) in capture_inputs() {
        let outcome = run(&input);
        if complete {
            assert!(outcome.finished && outcome.errors == 0, "{name}: {outcome:?}");
        }
    }
}

#[test]
fn corpus_and_artifacts_replay() {
    common::replay_fuzz_target("assemble", run);
}

#[test]
fn every_byte_prefix_of_a_seed() {
    common::every_byte_prefix(seeds(), run);
}
