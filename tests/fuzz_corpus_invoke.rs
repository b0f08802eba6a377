//! Replays the invoke fuzz target's logic (`fuzz/fuzz_targets/invoke_logic.rs`) under
//! `cargo test`: on the seeds this file generates, on every file in
//! `fuzz/corpus/invoke/` and `fuzz/artifacts/invoke/`, and on every byte prefix of
//! the seeds.
//!
//! Write the seeds into the corpus with
//! `BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_corpus_invoke`.

mod common;
use common::{at, borrowed, crate_dir};

include!("../fuzz/fuzz_targets/invoke_logic.rs");

use invoke_logic::{encode, run, RAW_KINDS, TEMPLATES};

/// The selector of the template that starts with `prefix` (the rest of the template
/// after `"type":"..."` disambiguates).
fn t(contains: &str) -> u8 {
    let i = TEMPLATES
        .iter()
        .position(|body| body.contains(contains))
        .expect("template");
    0x80 | u8::try_from(i).expect("few templates")
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let start = (t("message_start"), at(3, "msg_bdrk_1"));
    let text_start = |i: u8| (t(r#""type":"text","text""#), at(i, ""));
    let text = |i: u8, s: &str| (t("text_delta"), at(i, s));
    let stop = |i: u8| (t("content_block_stop"), at(i, ""));
    let message_delta = |s: &str| (t("message_delta"), at(2, s));
    let message_stop = (t("invocationMetrics"), at(3, ""));
    let owned = |records: Vec<(u8, Vec<u8>)>, flags: u8| encode(flags, &borrowed(&records));
    vec![
        (
            "text",
            owned(
                vec![
                    (t("ping"), vec![]),
                    start.clone(),
                    text_start(0),
                    text(0, "Hello"),
                    text(0, ", \"world\"\n é 😀"),
                    stop(0),
                    message_delta("end_turn"),
                    message_stop.clone(),
                ],
                2,
            ),
        ),
        (
            "tool-thinking",
            owned(
                vec![
                    start.clone(),
                    (t(r#""type":"thinking""#), at(0, "")),
                    (t("thinking_delta"), at(0, "Let me think")),
                    (t("signature_delta"), at(0, "EqQBCkgIARAB")),
                    stop(0),
                    (t("redacted_thinking"), at(1, "EmwKAhgB")),
                    stop(1),
                    (t(r#""type":"tool_use""#), at(2, "get_weather")),
                    (t("input_json_delta"), at(2, "{\"city\": ")),
                    (t("input_json_delta"), at(2, "\"Oslo\"}")),
                    stop(2),
                    (t("server_tool_use"), at(3, "web_search")),
                    (t("input_json_delta"), at(3, "{}")),
                    stop(3),
                    message_delta("tool_use"),
                    message_stop.clone(),
                ],
                2,
            ),
        ),
        (
            "citations",
            owned(
                vec![
                    start.clone(),
                    text_start(0),
                    (t("citations_delta"), at(0, "quoted")),
                    text(0, "cited"),
                    stop(0),
                    message_delta("end_turn"),
                    (t(r#"{"type":"message_stop"}"#), vec![]),
                ],
                0,
            ),
        ),
        (
            "exception",
            owned(
                vec![
                    start.clone(),
                    text_start(0),
                    text(0, "partial"),
                    // The modelStreamErrorException selector (raw kinds 6..).
                    (7, b"Model Stream Error".to_vec()),
                ],
                0,
            ),
        ),
        (
            "odd-frames",
            owned(
                vec![
                    (0, br#"{"bytes":"****"}"#.to_vec()),
                    (0, b"not json".to_vec()),
                    (1, b"\xff\xfe".to_vec()),
                    (2, b"boom".to_vec()),
                    (3, b"{}".to_vec()),
                    (4, b"{}".to_vec()),
                    (5, b"{}".to_vec()),
                    (t("overloaded_error"), at(0, "Overloaded")),
                    text(0, "no start"),
                    (u8::try_from(RAW_KINDS - 1).expect("few"), b"slow down".to_vec()),
                ],
                4,
            ),
        ),
    ]
}

#[test]
fn seeds_behave() {
    let write = std::env::var_os("BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS").is_some();
    let corpus = crate_dir().join("fuzz/corpus/invoke");
    for (name, input) in seeds() {
        let outcome = run(&input);
        match name {
            "text" | "tool-thinking" | "citations" => {
                assert!(outcome.finished, "{name}: {outcome:?}");
                assert_eq!(outcome.errors, 0, "{name}");
            }
            "exception" => {
                assert!(
                    !outcome.finished && outcome.errors == 1 && outcome.exceptions == 1,
                    "{outcome:?}"
                )
            }
            _ => assert!(
                outcome.errors >= 9 && outcome.exceptions >= 1,
                "{name}: {outcome:?}"
            ),
        }
        if write {
            std::fs::create_dir_all(&corpus).expect("corpus dir");
            std::fs::write(corpus.join(format!("seed-{name}")), &input).expect("write seed");
        }
    }
}

#[test]
fn corpus_and_artifacts_replay() {
    common::replay_fuzz_target("invoke", run);
}

#[test]
fn every_byte_prefix_of_a_seed() {
    common::every_byte_prefix(seeds(), run);
}
