// The request-translation fuzz logic, shared by `fuzz_targets/translate_request.rs`
// (libFuzzer) and `tests/fuzz_corpus_translate.rs` (replays the corpus under `cargo
// test`). Both `include!` this file, so it is one inline module and nothing else.

/// Translates an arbitrary body as an OpenAI (first byte even) or Anthropic (odd)
/// request and checks that it never panics: a refusal is a 400 in the dialect's error
/// JSON, and an accepted request serializes to a Converse body that parses back to the
/// same request.
///
/// Input: one selector byte, then the request body.
#[allow(dead_code)] // Each includer uses a different subset.
mod translate_request_logic {
    use bedrock_converse::translate::{anthropic, openai, ApiError, ConverseRequest};

    /// What one input did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Outcome {
        /// Translated (the Converse body round-tripped).
        Translated,
        /// Refused with a 400.
        Refused,
    }

    pub(crate) fn run(data: &[u8]) -> Option<Outcome> {
        let (&selector, body) = data.split_first()?;
        let anthropic_dialect = selector % 2 == 1;
        let result = if anthropic_dialect {
            anthropic::translate_request(body)
        } else {
            openai::translate_request(body)
        };
        match result {
            Ok(t) => {
                assert!(!t.model.is_empty());
                let json = t.converse.to_json();
                let back: ConverseRequest = serde_json::from_slice(&json).expect("our own body parses");
                assert_eq!(back.to_json(), json, "the Converse body round-trips");
                Some(Outcome::Translated)
            }
            Err(e) => {
                let err = ApiError::from(&e);
                let (status, body) = if anthropic_dialect {
                    anthropic::error_json(&err)
                } else {
                    openai::error_json(&err)
                };
                assert_eq!(status, 400);
                let v: serde_json::Value = serde_json::from_slice(&body).expect("error JSON");
                let message = v["error"]["message"].as_str().expect("a message");
                if let Some(field) = e.field() {
                    assert!(message.contains(field), "{message} names {field}");
                }
                Some(Outcome::Refused)
            }
        }
    }
}
