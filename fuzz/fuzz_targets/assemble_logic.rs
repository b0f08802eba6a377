// The assemble fuzz logic, shared by `fuzz_targets/assemble.rs` (libFuzzer) and
// `tests/fuzz_corpus_assemble.rs` (replays the corpus and artifacts under `cargo test`).
// Both `include!` this file, so it is one inline module and nothing else.

/// Drives `StreamAssembler` with a sequence of well-formed frames described by the
/// input, and checks that it never panics and that what it returns is consistent.
///
/// Input: one flags byte (bit 0: accept a missing `messageStart`; bit 1: take a
/// partial response after every frame; bit 2: check that a rejected frame changes
/// nothing), then records `[selector, len, payload...]`
/// (a short final record takes what is left).
///
/// - `selector < 0x80`, raw mode: the frame kind is `RAW_KINDS[selector % len]` (an
///   event type, an exception type, an error frame, or a frame with odd headers) and
///   the payload is the record's bytes as they are.
/// - `selector >= 0x80`, template mode: the payload is a Bedrock-shaped JSON event
///   (`TEMPLATES`), with the block index taken from the first payload byte and the
///   rest (lossily decoded, JSON-escaped) as its string.
#[allow(dead_code)] // Each includer uses a different subset.
mod assemble_logic {
    use bedrock_converse::converse::{ConverseResponse, StreamAssembler, StreamError};
    use bedrock_converse::eventstream::{Message, MessageBuilder};

    /// What a raw-mode record becomes.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Raw {
        /// An event of this `:event-type`.
        Event(&'static str),
        /// An exception frame of this `:exception-type`.
        Exception(&'static str),
        /// An error frame; the payload becomes `:error-message`.
        Error,
        /// No `:message-type` header.
        NoMessageType,
        /// `:message-type` of an unknown kind.
        OddMessageType,
        /// An event frame without `:event-type`.
        NoEventType,
    }

    pub(crate) const RAW_KINDS: &[Raw] = &[
        Raw::Event("messageStart"),
        Raw::Event("contentBlockStart"),
        Raw::Event("contentBlockDelta"),
        Raw::Event("contentBlockStop"),
        Raw::Event("messageStop"),
        Raw::Event("metadata"),
        Raw::Event("somethingNew"),
        Raw::Event("initial-response"),
        Raw::Exception("throttlingException"),
        Raw::Exception("modelStreamErrorException"),
        Raw::Exception("validationException"),
        Raw::Exception("internalServerException"),
        Raw::Exception("serviceUnavailableException"),
        Raw::Exception("unknownException"),
        Raw::Error,
        Raw::NoMessageType,
        Raw::OddMessageType,
        Raw::NoEventType,
    ];

    /// Template-mode events: (`:event-type`, payload with `{i}` and `{s}` holes).
    pub(crate) const TEMPLATES: &[(&str, &str)] = &[
        ("messageStart", r#"{"p":"abc","role":"assistant"}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"text":{s}},"p":"abcd"}"#,
        ),
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":{i},"start":{"toolUse":{"toolUseId":"tooluse_{i}","name":{s}}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"toolUse":{"input":{s}}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"reasoningContent":{"text":{s}}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"reasoningContent":{"signature":{s}}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"reasoningContent":{"redactedContent":{s}}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"citation":{"title":{s},"location":{"documentPage":{"documentIndex":0,"start":1,"end":2}}}}}"#,
        ),
        ("contentBlockStop", r#"{"contentBlockIndex":{i},"p":"ab"}"#),
        (
            "messageStop",
            r#"{"stopReason":{s},"additionalModelResponseFields":{"delta":{"stop_sequence":null}}}"#,
        ),
        (
            "metadata",
            r#"{"metrics":{"latencyMs":12},"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3,"serverToolUsage":{}},"serviceTier":{"type":"default"}}"#,
        ),
        ("contentBlockStart", r#"{"contentBlockIndex":{i},"start":{}}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"image":{"x":{s}}}}"#,
        ),
        ("messageStop", r#"{"stopReason":"tool_use"}"#),
        // The 2026 members: server tool results, images, unknown members.
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":{i},"start":{"toolResult":{"toolUseId":"srv_{i}","type":"web_search_result","status":"success"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"toolResult":[{"text":{s}}]}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"toolResult":[{"json":{"q":{s}}},{"text":"t"}]}}"#,
        ),
        ("contentBlockStart", r#"{"contentBlockIndex":{i},"start":{"image":{"format":"png"}}}"#),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"image":{"source":{"bytes":{s}}}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"image":{"error":{"message":{s}}}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":{i},"delta":{"video":{"chunk":{s}}}}"#,
        ),
        ("contentBlockStart", r#"{"contentBlockIndex":{i},"start":{"audio":{"format":{s}}}}"#),
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":{i},"start":{"toolUse":{"toolUseId":"s","name":"web","type":"server_tool_use"}}}"#,
        ),
        // Shuffled members, padding inside the delta, whitespace.
        (
            "contentBlockDelta",
            r#"{"p":"abc", "delta":{"p":"x","toolUse":{"input":{s},"p":"y"}}, "contentBlockIndex":{i}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"delta":{"text":{s}},"p":"a","contentBlockIndex":{i}}"#,
        ),
        ("contentBlockStop", r#"{"p":"ab","contentBlockIndex":{i}}"#),
    ];

    /// Builds the frame a record describes (`None` if the builder refuses it, e.g. a
    /// header value too long).
    pub(crate) fn frame(selector: u8, payload: &[u8]) -> Option<Message> {
        let event = |ty: &str, body: &[u8]| {
            MessageBuilder::new()
                .string_header(":event-type", ty)
                .string_header(":content-type", "application/json")
                .string_header(":message-type", "event")
                .build(body)
                .ok()
        };
        if selector >= 0x80 {
            let (ty, template) = TEMPLATES[usize::from(selector & 0x7f) % TEMPLATES.len()];
            let (index, text) = payload.split_first().map_or((0, &[][..]), |(i, t)| (*i % 4, t));
            let s = serde_json::to_string(&String::from_utf8_lossy(text)).ok()?;
            let body = template.replace("{i}", &index.to_string()).replace("{s}", &s);
            return event(ty, body.as_bytes());
        }
        match RAW_KINDS[usize::from(selector) % RAW_KINDS.len()] {
            Raw::Event(ty) => event(ty, payload),
            Raw::Exception(ty) => MessageBuilder::new()
                .string_header(":exception-type", ty)
                .string_header(":content-type", "application/json")
                .string_header(":message-type", "exception")
                .build(payload)
                .ok(),
            Raw::Error => MessageBuilder::new()
                .string_header(":message-type", "error")
                .string_header(":error-code", "InternalFailure")
                .string_header(":error-message", &String::from_utf8_lossy(payload))
                .build(b"")
                .ok(),
            Raw::NoMessageType => MessageBuilder::new()
                .string_header(":event-type", "messageStart")
                .build(payload)
                .ok(),
            Raw::OddMessageType => MessageBuilder::new()
                .string_header(":event-type", "messageStart")
                .string_header(":message-type", "weird")
                .build(payload)
                .ok(),
            Raw::NoEventType => MessageBuilder::new()
                .string_header(":message-type", "event")
                .build(payload)
                .ok(),
        }
    }

    /// Splits the input into its flags and frames.
    pub(crate) fn parse(data: &[u8]) -> (u8, Vec<Message>) {
        let Some((&flags, mut rest)) = data.split_first() else {
            return (0, Vec::new());
        };
        let mut frames = Vec::new();
        while let Some((&selector, tail)) = rest.split_first() {
            let Some((&len, tail)) = tail.split_first() else {
                break;
            };
            let n = usize::from(len).min(tail.len());
            let (payload, tail) = tail.split_at(n);
            if let Some(m) = frame(selector, payload) {
                frames.push(m);
            }
            rest = tail;
        }
        (flags, frames)
    }

    /// Encodes frames' (selector, payload) pairs as an input (for seeds).
    pub(crate) fn encode(flags: u8, records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = vec![flags];
        for (selector, payload) in records {
            let payload = &payload[..payload.len().min(255)];
            out.push(*selector);
            out.push(payload.len() as u8);
            out.extend_from_slice(payload);
        }
        out
    }

    fn round_trips(r: &ConverseResponse) {
        let json = serde_json::to_string(r).expect("a response serializes");
        let back: ConverseResponse = serde_json::from_str(&json).expect("and parses back");
        assert_eq!(&back, r, "{json}");
    }

    /// What happened, for tests.
    #[derive(Debug, Default)]
    pub(crate) struct Outcome {
        pub(crate) events: usize,
        pub(crate) errors: usize,
        pub(crate) finished: bool,
    }

    /// Runs one input.
    pub(crate) fn run(data: &[u8]) -> Outcome {
        let (flags, frames) = parse(data);
        let mut asm = StreamAssembler::new().allow_missing_message_start(flags & 1 != 0);
        let mut outcome = Outcome::default();
        for m in &frames {
            // Bit 2: a rejected event must leave the assembler as it was.
            let before = (flags & 4 != 0).then(|| (asm.partial(), asm.missing()));
            let result = asm.push(m).map(|event| event.map(|e| serde_json::to_string(&e)));
            if let (Err(_), Some((partial, missing))) = (&result, before) {
                assert_eq!(asm.partial(), partial, "a rejected event changed the response");
                assert_eq!(asm.missing(), missing, "a rejected event changed what is missing");
            }
            match result {
                Ok(Some(json)) => {
                    outcome.events += 1;
                    json.expect("an event serializes");
                }
                Ok(None) => {}
                Err(e) => {
                    outcome.errors += 1;
                    // Errors describe themselves without panicking.
                    let _ = e.to_string();
                }
            }
            if flags & 2 != 0 {
                round_trips(&asm.partial());
            }
        }
        let missing = asm.missing();
        match asm.finish() {
            Ok(r) => {
                assert!(missing.is_empty());
                outcome.finished = true;
                round_trips(&r);
            }
            Err(StreamError::Incomplete(inc)) => {
                assert_eq!(inc.missing, missing);
                assert!(!inc.missing.is_empty() || inc.exception.is_some());
                let _ = inc.to_string();
            }
            Err(other) => panic!("finish returned {other:?}"),
        }
        outcome
    }
}
