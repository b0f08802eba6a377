#![no_main]
//! Drives the ConverseStream assembler with arbitrary sequences of well-formed frames
//! (event types, exceptions, error frames and Bedrock-shaped JSON chosen by the input)
//! and checks that it never panics: every problem is a typed error, the partial
//! response is always available, and responses round-trip through JSON. The logic
//! lives in `assemble_logic.rs` so that `tests/fuzz_corpus_assemble.rs` replays the
//! corpus under `cargo test`.
use libfuzzer_sys::fuzz_target;

include!("assemble_logic.rs");

fuzz_target!(|data: &[u8]| {
    assemble_logic::run(data);
});
