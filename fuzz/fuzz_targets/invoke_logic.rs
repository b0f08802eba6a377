/// The logic of the `invoke` fuzz target, shared with `tests/fuzz_corpus_invoke.rs`.
///
/// Input: one flags byte, then records `[selector, len, payload[len]]`. A selector
/// `>= 0x80` picks a native Anthropic event template (filled with the payload's first
/// byte as block index and the rest as a JSON string), wrapped in a `chunk` frame;
/// below, it picks a raw frame kind: a `chunk` frame whose JSON payload is the bytes,
/// a `chunk` carrying the bytes as the native event, an exception, an error frame, an
/// unknown event type, or a frame without `:message-type`.
#[allow(dead_code)]
mod invoke_logic {
    use bedrock_converse::converse::ExceptionKind;
    use bedrock_converse::eventstream::{Message, MessageBuilder};
    use bedrock_converse::invoke::{
        chunk_frame, exception_frame, AnthropicAssembler, AnthropicMessage, ChunkDecoder, InvokeError,
        UsageReader, STREAM_EXCEPTION_TYPES,
    };

    /// Native event templates: `{i}` is a block index, `{s}` a JSON string.
    pub(crate) const TEMPLATES: &[&str] = &[
        r#"{"type":"message_start","message":{"id":{s},"type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":{i},"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":{i},"content_block":{"type":"text","text":{s}}}"#,
        r#"{"type":"content_block_start","index":{i},"content_block":{"type":"tool_use","id":"toolu_1","name":{s},"input":{}}}"#,
        r#"{"type":"content_block_start","index":{i},"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        r#"{"type":"content_block_start","index":{i},"content_block":{"type":"redacted_thinking","data":{s}}}"#,
        r#"{"type":"content_block_start","index":{i},"content_block":{"type":"server_tool_use","id":"srv","name":{s},"input":{}}}"#,
        r#"{"type":"content_block_delta","index":{i},"delta":{"type":"text_delta","text":{s}}}"#,
        r#"{"type":"content_block_delta","index":{i},"delta":{"type":"input_json_delta","partial_json":{s}}}"#,
        r#"{"type":"content_block_delta","index":{i},"delta":{"type":"thinking_delta","thinking":{s}}}"#,
        r#"{"type":"content_block_delta","index":{i},"delta":{"type":"signature_delta","signature":{s}}}"#,
        r#"{"type":"content_block_delta","index":{i},"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":{s}}}}"#,
        r#"{"type":"content_block_stop","index":{i}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":{s},"stop_sequence":null},"usage":{"output_tokens":{i}}}"#,
        r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":{i},"outputTokenCount":{i},"invocationLatency":10,"firstByteLatency":5}}"#,
        r#"{"type":"message_stop"}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":{s}}}"#,
    ];

    /// The raw frame kinds (selectors below 0x80, modulo their count).
    pub(crate) const RAW_KINDS: usize = 6 + STREAM_EXCEPTION_TYPES.len();

    fn frame(selector: u8, payload: &[u8]) -> Option<Message> {
        let event = |ty: &str, body: &[u8]| {
            MessageBuilder::new()
                .string_header(":event-type", ty)
                .string_header(":content-type", "application/json")
                .string_header(":message-type", "event")
                .build(body)
                .ok()
        };
        if selector >= 0x80 {
            let template = TEMPLATES[usize::from(selector & 0x7f) % TEMPLATES.len()];
            let (index, text) = payload.split_first().map_or((0, &[][..]), |(i, t)| (*i % 4, t));
            let s = serde_json::to_string(&String::from_utf8_lossy(text)).ok()?;
            let body = template.replace("{i}", &index.to_string()).replace("{s}", &s);
            return chunk_frame(body.as_bytes()).ok();
        }
        match usize::from(selector) % RAW_KINDS {
            0 => event("chunk", payload),
            1 => chunk_frame(payload).ok(),
            2 => MessageBuilder::new()
                .string_header(":message-type", "error")
                .string_header(":error-code", "InternalFailure")
                .string_header(":error-message", &String::from_utf8_lossy(payload))
                .build(b"")
                .ok(),
            3 => event("initial-response", payload),
            4 => MessageBuilder::new().string_header(":event-type", "chunk").build(payload).ok(),
            5 => MessageBuilder::new()
                .string_header(":message-type", "exception")
                .build(payload)
                .ok(),
            k => {
                let name = STREAM_EXCEPTION_TYPES[(k - 6) % STREAM_EXCEPTION_TYPES.len()];
                let text = String::from_utf8_lossy(payload);
                exception_frame(&ExceptionKind::from_wire(name), &text, Some(500)).ok()
            }
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

    /// Encodes `(selector, payload)` records as an input (for seeds).
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

    fn round_trips(m: &AnthropicMessage) {
        let json = serde_json::to_string(m).expect("a message serializes");
        let back: AnthropicMessage = serde_json::from_str(&json).expect("and parses back");
        assert_eq!(&back, m, "{json}");
    }

    /// What happened, for tests.
    #[derive(Debug, Default)]
    pub(crate) struct Outcome {
        pub(crate) events: usize,
        pub(crate) errors: usize,
        pub(crate) exceptions: usize,
        pub(crate) finished: bool,
    }

    /// Runs one input: every frame through the assembler, and through a separate
    /// chunk decoder and usage reader (as a gateway reads the stream).
    pub(crate) fn run(data: &[u8]) -> Outcome {
        let (flags, frames) = parse(data);
        let mut asm = AnthropicAssembler::new();
        let mut decoder = ChunkDecoder::with_max_part_len(if flags & 4 != 0 { 64 } else { 1_000_000 });
        let mut usage = UsageReader::new();
        let mut outcome = Outcome::default();
        for m in &frames {
            if let Ok(Some(event)) = decoder.decode_message(m) {
                usage.observe(event);
            }
            match asm.push_frame(m.as_frame()) {
                Ok(_) => outcome.events += 1,
                Err(e) => {
                    outcome.errors += 1;
                    if matches!(e, InvokeError::Service(_)) {
                        outcome.exceptions += 1;
                    }
                    let _ = e.to_string();
                }
            }
            if flags & 2 != 0 {
                round_trips(&asm.partial());
            }
        }
        let _ = usage.usage();
        match asm.finish() {
            Ok(m) => {
                outcome.finished = true;
                round_trips(&m);
            }
            Err(InvokeError::Incomplete(inc)) => {
                let _ = inc.to_string();
            }
            Err(other) => panic!("finish returned {other:?}"),
        }
        outcome
    }
}
