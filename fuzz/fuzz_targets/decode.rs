#![no_main]
//! Feeds arbitrary bytes through both decode entry points, in chunks chosen by the
//! input, and checks that they agree and that every accepted message re-encodes to
//! the same bytes. The logic lives in `decode_logic.rs` so that
//! `tests/fuzz_corpus_decode.rs` replays the corpus under `cargo test`.
use libfuzzer_sys::fuzz_target;

include!("decode_logic.rs");

fuzz_target!(|data: &[u8]| decode_logic::run(data));
