// The stream-translation fuzz logic, shared by `fuzz_targets/translate_stream.rs`
// (libFuzzer) and `tests/fuzz_corpus_translate.rs` (replays the corpus under `cargo
// test`). Both `include!` this file, so it is one inline module and nothing else.

/// Builds a ConverseStream from arbitrary bytes and runs it through each dialect's
/// writer twice: once through the assembler's events (`push`), once through the
/// writer's `push_frame`, which forwards text deltas to open blocks as their JSON
/// strings came. The two SSE streams must be UTF-8, well formed, and the same events
/// as JSON, and they must end the same way (finished, or cut by the same error).
///
/// Input: a sequence of operations, each one byte (`op % 10`: which event; `op / 10 % 3`:
/// its block index; `op / 30 % 2`: padding on a text or tool-input delta) and, for events with a
/// string, a length byte (0 to 31) and that many raw string bytes (a byte from 0xF5 up, never in UTF-8,
/// stands for one of a few escapes and multi-byte characters, so that valid strings
/// are common; every other byte goes into the string as it is).
#[allow(dead_code)] // Each includer uses a different subset.
mod translate_stream_logic {
    use bedrock_converse::converse::StreamAssembler;
    use bedrock_converse::eventstream::{Message, MessageBuilder};
    use bedrock_converse::translate::{anthropic, openai, ApiError, SseWriter};
    use serde_json::Value;

    /// What one input did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Outcome {
        /// Both paths finished the stream.
        Finished,
        /// Both paths ended it with the same error event.
        Failed,
    }

    /// What a byte from 0xF5 up stands for inside a string.
    const TOKENS: [&[u8]; 11] = [
        br"\n",
        br#"\""#,
        br"\\",
        br"\/",
        br"\u00e9",
        br"\ud83d\ude00",
        br"\u0000",
        "é".as_bytes(),
        "🦀".as_bytes(),
        br"\t",
        br"\ud800",
    ];

    /// A cursor over the input.
    struct Input<'a>(&'a [u8]);

    impl Input<'_> {
        fn byte(&mut self) -> Option<u8> {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            Some(b)
        }

        /// A string's raw contents: a length byte (0 to 31), then that many bytes.
        fn string(&mut self) -> Vec<u8> {
            let len = usize::from(self.byte().unwrap_or(0) % 32).min(self.0.len());
            let (raw, rest) = self.0.split_at(len);
            self.0 = rest;
            let mut out = Vec::with_capacity(len * 2);
            for &b in raw {
                match b.checked_sub(0xF5) {
                    Some(t) => out.extend_from_slice(TOKENS[usize::from(t)]),
                    None => out.push(b),
                }
            }
            out
        }
    }

    fn frame(event_type: &str, payload: &[u8]) -> Option<Message> {
        MessageBuilder::new()
            .string_header(":event-type", event_type)
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "event")
            .build(payload)
            .ok()
    }

    fn joined(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// The frames the input describes.
    pub(crate) fn frames(data: &[u8]) -> Vec<Message> {
        let mut input = Input(data);
        let mut out = Vec::new();
        while let Some(op) = input.byte() {
            let index = (op / 10) % 3;
            let i = index.to_string();
            let i = i.as_bytes();
            // Bedrock's padding, on a text or tool-input delta.
            let pad: &[u8] = if (op / 30) % 2 == 1 { br#","p":"abcdefgh""# } else { b"" };
            let message = match op % 10 {
                0 => frame("messageStart", br#"{"role":"assistant"}"#),
                1 | 2 => {
                    let s = input.string();
                    frame(
                        "contentBlockDelta",
                        &joined(&[br#"{"contentBlockIndex":"#, i, br#","delta":{"text":""#, &s, b"\"}", pad, b"}"]),
                    )
                }
                3 => {
                    let s = input.string();
                    frame(
                        "contentBlockDelta",
                        &joined(&[
                            br#"{"contentBlockIndex":"#,
                            i,
                            br#","delta":{"reasoningContent":{"text":""#,
                            &s,
                            b"\"}}}",
                        ]),
                    )
                }
                4 => frame("contentBlockStop", &joined(&[br#"{"contentBlockIndex":"#, i, b"}"])),
                5 => frame(
                    "contentBlockStart",
                    &joined(&[
                        br#"{"contentBlockIndex":"#,
                        i,
                        br#","start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#,
                    ]),
                ),
                6 => {
                    let s = input.string();
                    frame(
                        "contentBlockDelta",
                        &joined(&[br#"{"contentBlockIndex":"#, i, br#","delta":{"toolUse":{"input":""#, &s, b"\"}}", pad, b"}"]),
                    )
                }
                7 => frame("messageStop", br#"{"stopReason":"end_turn"}"#),
                8 => frame(
                    "metadata",
                    br#"{"usage":{"inputTokens":3,"outputTokens":5,"totalTokens":8,"cacheReadInputTokens":1},"metrics":{"latencyMs":9}}"#,
                ),
                _ => {
                    // A payload of raw bytes, for an event type chosen by the index.
                    let s = input.string();
                    let ty = ["contentBlockDelta", "contentBlockStart", "signature"][usize::from(index)];
                    frame(ty, &s)
                }
            };
            out.extend(message);
        }
        out
    }

    /// The SSE events of `sse` as (event name, data as JSON or the `[DONE]` marker).
    fn parse_sse(sse: &[u8]) -> Vec<(Option<String>, Value)> {
        let text = std::str::from_utf8(sse).expect("SSE is UTF-8");
        assert!(text.is_empty() || text.ends_with("\n\n"), "every SSE event ends with a blank line");
        text.split_terminator("\n\n")
            .map(|event| {
                let mut name = None;
                let mut data = None;
                for line in event.split('\n') {
                    if let Some(n) = line.strip_prefix("event: ") {
                        assert!(name.replace(n.to_owned()).is_none(), "one event line: {event}");
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        let v = if d == "[DONE]" {
                            Value::String("[DONE]".to_owned())
                        } else {
                            serde_json::from_str(d).unwrap_or_else(|e| panic!("data is JSON ({e}): {d}"))
                        };
                        assert!(data.replace(v).is_none(), "one data line: {event}");
                    } else {
                        panic!("an SSE line we do not write: {line:?}");
                    }
                }
                (name, data.expect("a data line"))
            })
            .collect()
    }

    /// Checks that the two runs of one stream (by events, by frames: SSE bytes and
    /// whether it failed) agree.
    fn same_sse(by_events: (Vec<u8>, bool), by_frames: (Vec<u8>, bool)) -> Outcome {
        assert_eq!(
            by_events.1,
            by_frames.1,
            "both paths end the same way:\n{}\n----\n{}",
            String::from_utf8_lossy(&by_events.0),
            String::from_utf8_lossy(&by_frames.0)
        );
        assert_eq!(parse_sse(&by_events.0), parse_sse(&by_frames.0), "the same SSE events");
        if by_events.1 {
            Outcome::Failed
        } else {
            Outcome::Finished
        }
    }

    /// The assembler's events into `w`: its SSE bytes, and whether the stream failed.
    fn through_events(messages: &[Message], w: &mut impl SseWriter) -> (Vec<u8>, bool) {
        let mut asm = StreamAssembler::new();
        let mut buf = Vec::new();
        for m in messages {
            match asm.push(m) {
                Ok(Some(ev)) => w.push(&ev, &mut buf),
                Ok(None) => {}
                Err(e) => {
                    w.error(&ApiError::from_stream_error(&e), &mut buf);
                    return (buf, true);
                }
            }
        }
        w.finish(&mut buf);
        (buf, false)
    }

    /// The frames into `w`'s `push_frame`: its SSE bytes, and whether the stream failed.
    fn through_frames(messages: &[Message], w: &mut impl SseWriter) -> (Vec<u8>, bool) {
        let mut asm = StreamAssembler::new();
        let mut buf = Vec::new();
        for m in messages {
            if let Err(e) = w.push_frame(&mut asm, m.as_frame(), &mut buf) {
                w.error(&ApiError::from_stream_error(&e), &mut buf);
                return (buf, true);
            }
        }
        w.finish(&mut buf);
        (buf, false)
    }

    /// Runs the input's stream through both dialects' writers, by events and by frames.
    pub(crate) fn run(data: &[u8]) -> Outcome {
        let messages = frames(data);
        let openai = || openai::ChatStreamWriter::new("chatcmpl-fuzz", "m", 1_700_000_000, true);
        let chat = same_sse(through_events(&messages, &mut openai()), through_frames(&messages, &mut openai()));
        let anthropic = || anthropic::MessagesStreamWriter::new("msg_fuzz", "m");
        let messages_api = same_sse(
            through_events(&messages, &mut anthropic()),
            through_frames(&messages, &mut anthropic()),
        );
        assert_eq!(chat, messages_api, "both dialects end the stream the same way");
        chat
    }
}
