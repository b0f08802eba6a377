#![no_main]
//! Runs arbitrary ConverseStreams (built from the input by `translate_stream_logic.rs`)
//! through each dialect's SSE writer by the assembler's events and by the writer's
//! `push_frame`, which forwards text deltas as their JSON strings came: the two must
//! give the same SSE events and end the same way, and nothing may panic.
//! `tests/fuzz_corpus_translate.rs` replays the corpus under `cargo test`.
use libfuzzer_sys::fuzz_target;

include!("translate_stream_logic.rs");

fuzz_target!(|data: &[u8]| {
    translate_stream_logic::run(data);
});
