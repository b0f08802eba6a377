#![no_main]
//! Translates arbitrary OpenAI Chat Completions and Anthropic Messages request bodies
//! into Converse requests and checks that nothing panics: refusals are 400s in the
//! dialect's error JSON, and accepted requests give a Converse body that round-trips.
//! The logic lives in `translate_request_logic.rs` so that
//! `tests/fuzz_corpus_translate.rs` replays the corpus under `cargo test`.
use libfuzzer_sys::fuzz_target;

include!("translate_request_logic.rs");

fuzz_target!(|data: &[u8]| {
    translate_request_logic::run(data);
});
