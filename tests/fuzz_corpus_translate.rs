//! Replays the request-translation fuzz logic
//! (`fuzz/fuzz_targets/translate_request_logic.rs`) under `cargo test`: on the seeds
//! below and on every file in `fuzz/corpus/translate_request/` and
//! `fuzz/artifacts/translate_request/`.
//!
//! Write the seeds into the corpus with
//! `BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS=1 cargo test --features translate --test fuzz_corpus_translate`.

mod common;
use common::{crate_dir, files_in};

include!("../fuzz/fuzz_targets/translate_request_logic.rs");

use translate_request_logic::{run, Outcome};

/// (name, selector: 0 OpenAI / 1 Anthropic, body, expected outcome)
fn seeds() -> Vec<(&'static str, u8, serde_json::Value, Outcome)> {
    use serde_json::json;
    let tools =
        json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    vec![
        (
            "openai-text",
            0,
            json!({"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
            "max_tokens": 5, "temperature": 0.2, "top_p": 0.5, "stop": ["x"], "stream": true, "stream_options": {"include_usage": true}}),
            Outcome::Translated,
        ),
        (
            "openai-tools",
            0,
            json!({"model": "m", "tools": tools, "tool_choice": "required", "messages": [
            {"role": "user", "content": "w?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"c\":1}"}},
                                                 {"id": "c2", "type": "function", "function": {"name": "weather", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "a"},
            {"role": "tool", "tool_call_id": "c2", "content": "b"}]}),
            Outcome::Translated,
        ),
        (
            "openai-image-schema",
            0,
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}]}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": {"type": "object"}}}}),
            Outcome::Translated,
        ),
        (
            "openai-n",
            0,
            json!({"model": "m", "n": 3, "messages": [{"role": "user", "content": "x"}]}),
            Outcome::Refused,
        ),
        (
            "openai-bad-args",
            0,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]}),
            Outcome::Refused,
        ),
        (
            "anthropic-full",
            1,
            json!({"model": "c", "max_tokens": 100, "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "thinking": {"type": "enabled", "budget_tokens": 50}, "top_k": 3,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "tool", "name": "f"},
            "messages": [{"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "redacted_thinking", "data": "YQ=="},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "r"}]},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}, "citations": {"enabled": true}}]}]}),
            Outcome::Translated,
        ),
        (
            "anthropic-ttl-order",
            1,
            json!({"model": "c", "max_tokens": 10, "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]}),
            Outcome::Refused,
        ),
        (
            "anthropic-no-max",
            1,
            json!({"model": "c", "messages": [{"role": "user", "content": "q"}]}),
            Outcome::Refused,
        ),
    ]
}

fn input(selector: u8, body: &serde_json::Value) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend_from_slice(body.to_string().as_bytes());
    v
}

#[test]
fn seeds_behave() {
    let write = std::env::var_os("BEDROCK_CONVERSE_WRITE_FUZZ_SEEDS").is_some();
    let corpus = crate_dir().join("fuzz/corpus/translate_request");
    for (name, selector, body, want) in seeds() {
        let data = input(selector, &body);
        assert_eq!(run(&data), Some(want), "{name}");
        if write {
            std::fs::create_dir_all(&corpus).expect("corpus dir");
            std::fs::write(corpus.join(format!("seed-{name}")), &data).expect("write seed");
        }
    }
}

#[test]
fn every_byte_prefix_of_a_seed() {
    // Cut anywhere: a typed refusal, never a panic.
    for (_, selector, body, _) in seeds() {
        let data = input(selector, &body);
        for end in 0..data.len() {
            run(&data[..end]);
        }
    }
}

#[test]
fn corpus_and_artifacts_replay() {
    let mut n = 0;
    for dir in [
        "fuzz/corpus/translate_request",
        "fuzz/artifacts/translate_request",
    ] {
        for file in files_in(&crate_dir().join(dir)) {
            run(&std::fs::read(&file).expect("read"));
            n += 1;
        }
    }
    println!("replayed {n} corpus and artifact files");
}
