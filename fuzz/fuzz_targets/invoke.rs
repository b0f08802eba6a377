#![no_main]
//! Drives the invoke stream readers (`ChunkDecoder`, `AnthropicAssembler`,
//! `UsageReader`) with arbitrary sequences of well-formed event-stream frames (chunk
//! payloads, Anthropic-shaped native events, exceptions, error frames chosen by the
//! input) and checks that they never panic: every problem is a typed error, the
//! partial message is always available, and messages round-trip through JSON. The
//! logic lives in `invoke_logic.rs` so that `tests/fuzz_corpus_invoke.rs` replays the
//! corpus under `cargo test`.
use libfuzzer_sys::fuzz_target;

include!("invoke_logic.rs");

fuzz_target!(|data: &[u8]| {
    invoke_logic::run(data);
});
