//! A small deterministic generator of hard ConverseStream bodies, shared by
//! `benches/assemble.rs` (included by path) and the tests (as `common::corpus`); and
//! [`event_frame`], the Bedrock event frame every test builds its streams from.
//!
//! What makes its streams hard, as in the independent corpus of issue 10: text with
//! every JSON escape (`\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t`, `\u00XX` control
//! characters including `\u0000`, `\uD83D\uDE00` surrogate pairs) next to raw
//! multi-byte UTF-8; one payload in eight with its members shuffled and the `"p"`
//! padding member anywhere; tool-input fragments of 1 to 64 bytes cut anywhere
//! (inside strings, right after a backslash, on character boundaries); reasoning with
//! signatures; parallel tool blocks interleaved.

#![allow(dead_code)] // Each including crate uses a part.

use bedrock_converse::eventstream::{Message, MessageBuilder};

/// A 64-bit LCG.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        // `n` is small and non-zero where called; the result fits in usize.
        (self.next() % n.max(1) as u64) as usize
    }

    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456";

const WORDS: &[&str] = &[
    "the", "model", "stream", "returns", "tokens", "and", "Bedrock", "frames", "them", "naïve", "JSON",
    "payload", "with", "padding", "is", "to", "in", "that", "café", "it’s", "—", "中文", "😀", "Grüße",
    "for", "a", "of", "answer", "value",
];

/// Characters that must or may be escaped, mixed into the text.
const SPECIAL: &[char] = &[
    '"', '\\', '/', '\u{8}', '\u{c}', '\n', '\r', '\t', '\u{0}', '\u{1}', '\u{1f}', '😀', 'é', '€',
];

/// Some text: words, spaces and, in about one piece in four, special characters.
pub(crate) fn text(rng: &mut Lcg, words: usize) -> String {
    let mut t = String::new();
    for _ in 0..words {
        t.push(' ');
        t.push_str(WORDS[rng.below(WORDS.len())]);
        if rng.one_in(4) {
            t.push(SPECIAL[rng.below(SPECIAL.len())]);
        }
    }
    t
}

/// `s` as a JSON string (with quotes), choosing among the legal spellings: `\/` or
/// `/`, `\uXXXX` (surrogate pairs for astral characters) or raw UTF-8.
pub(crate) fn json_string(rng: &mut Lcg, s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if rng.one_in(2) => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if !c.is_ascii() && rng.one_in(3) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04X}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One event: its type and its payload text.
pub(crate) type Event = (&'static str, String);

/// Builds the payload of an event from its members (`(name, JSON text)`): in order,
/// with the padding last, or (one in eight) shuffled with the padding anywhere.
pub(crate) fn payload(rng: &mut Lcg, members: Vec<(&str, String)>) -> String {
    let mut members: Vec<(String, String)> = members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let pad = format!("\"{}\"", &PAD[..rng.below(PAD.len())]);
    if rng.one_in(8) {
        for i in (1..members.len()).rev() {
            let j = rng.below(i + 1);
            members.swap(i, j);
        }
        let at = rng.below(members.len() + 1);
        members.insert(at, ("p".to_owned(), pad));
    } else if !rng.one_in(4) {
        members.push(("p".to_owned(), pad));
    }
    let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

/// Builds a stream's events.
pub(crate) struct Stream {
    pub(crate) rng: Lcg,
    pub(crate) events: Vec<Event>,
}

impl Stream {
    pub(crate) fn new(seed: u64) -> Stream {
        let mut rng = Lcg(seed);
        let start = payload(&mut rng, vec![("role", "\"assistant\"".to_owned())]);
        Stream {
            rng,
            events: vec![("messageStart", start)],
        }
    }

    fn delta(&mut self, index: u32, delta: String) {
        let p = payload(
            &mut self.rng,
            vec![("contentBlockIndex", index.to_string()), ("delta", delta)],
        );
        self.events.push(("contentBlockDelta", p));
    }

    pub(crate) fn stop(&mut self, index: u32) {
        let p = payload(&mut self.rng, vec![("contentBlockIndex", index.to_string())]);
        self.events.push(("contentBlockStop", p));
    }

    /// A text block of `deltas` deltas (no `contentBlockStart`, as Bedrock sends them).
    pub(crate) fn text_block(&mut self, index: u32, deltas: usize) {
        for _ in 0..deltas {
            let n = 1 + self.rng.below(8);
            let t = text(&mut self.rng, n);
            let s = json_string(&mut self.rng, &t);
            self.delta(index, format!("{{\"text\":{s}}}"));
        }
        self.stop(index);
    }

    /// A tool input document with escapes in its strings, written compactly.
    pub(crate) fn tool_input(&mut self, fields: usize) -> String {
        let mut parts = Vec::new();
        for i in 0..fields {
            let v = match i % 4 {
                0 => {
                    let n = 1 + self.rng.below(4);
                    let t = text(&mut self.rng, n);
                    json_string(&mut self.rng, &t)
                }
                1 => self.rng.below(100_000).to_string(),
                2 => {
                    let t = text(&mut self.rng, 1);
                    format!(
                        "[{},{},true,null]",
                        self.rng.below(10),
                        json_string(&mut self.rng, &t)
                    )
                }
                _ => {
                    let t = text(&mut self.rng, 2);
                    format!("{{\"nested\":{},\"n\":1.5e3}}", json_string(&mut self.rng, &t))
                }
            };
            parts.push(format!("\"field_{i}\":{v}"));
        }
        format!("{{{}}}", parts.join(","))
    }

    /// `input` cut into fragments of 1 to 64 bytes, on character boundaries.
    pub(crate) fn fragments(&mut self, input: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut rest = input;
        while !rest.is_empty() {
            let mut n = (1 + self.rng.below(64)).min(rest.len());
            while !rest.is_char_boundary(n) {
                n += 1;
            }
            let (piece, tail) = rest.split_at(n);
            out.push(piece.to_owned());
            rest = tail;
        }
        out
    }

    pub(crate) fn tool_start(&mut self, index: u32, name: &str) {
        let start = format!("{{\"toolUse\":{{\"toolUseId\":\"tooluse_{index:022}\",\"name\":\"{name}\"}}}}");
        let p = payload(
            &mut self.rng,
            vec![("contentBlockIndex", index.to_string()), ("start", start)],
        );
        self.events.push(("contentBlockStart", p));
    }

    /// `count` tool calls whose deltas interleave round-robin; returns their inputs.
    pub(crate) fn parallel_tools(&mut self, first: u32, count: u32, fields: usize) -> Vec<String> {
        let mut frags = Vec::new();
        let mut inputs = Vec::new();
        for k in 0..count {
            self.tool_start(first + k, "lookup_weather");
            let input = self.tool_input(fields);
            frags.push(self.fragments(&input));
            inputs.push(input);
        }
        let rounds = frags.iter().map(Vec::len).max().unwrap_or(0);
        for r in 0..rounds {
            for (k, f) in frags.clone().iter().enumerate() {
                if let Some(piece) = f.get(r) {
                    let s = json_string(&mut self.rng, piece);
                    self.delta(first + k as u32, format!("{{\"toolUse\":{{\"input\":{s}}}}}"));
                }
            }
        }
        for k in 0..count {
            self.stop(first + k);
        }
        inputs
    }

    /// A reasoning block: text deltas, then a signature.
    pub(crate) fn reasoning_block(&mut self, index: u32, deltas: usize) {
        for _ in 0..deltas {
            let n = 1 + self.rng.below(6);
            let t = text(&mut self.rng, n);
            let s = json_string(&mut self.rng, &t);
            self.delta(index, format!("{{\"reasoningContent\":{{\"text\":{s}}}}}"));
        }
        self.delta(
            index,
            "{\"reasoningContent\":{\"signature\":\"Ep0CCkgICxABGAIqQOWPB6/PmA5SW9jC6FvaNq3E+U9ev4FMWcFWuAho+VGLCtazKc5WDjQ5i0MuxsY0o5pKDSVWVKii8KJDusXH4eASDK7jyzuk8iij7fJNihoM\"}}".to_owned(),
        );
        self.stop(index);
    }

    /// `messageStop` and `metadata`; the events.
    pub(crate) fn finish(mut self, stop: &str) -> Vec<Event> {
        let p = payload(
            &mut self.rng,
            vec![
                ("stopReason", format!("\"{stop}\"")),
                (
                    "additionalModelResponseFields",
                    "{\"delta\":{\"stop_sequence\":null}}".to_owned(),
                ),
            ],
        );
        self.events.push(("messageStop", p));
        let p = payload(
            &mut self.rng,
            vec![
                ("usage", "{\"inputTokens\":22,\"outputTokens\":55,\"totalTokens\":77,\"cacheReadInputTokens\":3,\"cacheWriteInputTokens\":4,\"cacheDetails\":[{\"ttl\":\"5m\",\"inputTokens\":4}]}".to_owned()),
                ("metrics", "{\"latencyMs\":2040}".to_owned()),
            ],
        );
        self.events.push(("metadata", p));
        self.events
    }
}

/// A text stream: one block of `deltas` escape-heavy deltas.
pub(crate) fn text_stream(seed: u64, deltas: usize) -> Vec<Event> {
    let mut s = Stream::new(seed);
    s.text_block(0, deltas);
    s.finish("end_turn")
}

/// A tool-heavy stream: a short text, two interleaved tool calls, then ten more.
pub(crate) fn tool_stream(seed: u64) -> Vec<Event> {
    let mut s = Stream::new(seed);
    s.text_block(0, 5);
    s.parallel_tools(1, 2, 40);
    for i in 3..13 {
        s.parallel_tools(i, 1, 40);
    }
    s.finish("tool_use")
}

/// A mixed stream: reasoning with a signature, text, two parallel tool calls, text.
pub(crate) fn mixed_stream(seed: u64) -> Vec<Event> {
    let mut s = Stream::new(seed);
    s.reasoning_block(0, 300);
    s.text_block(1, 300);
    s.parallel_tools(2, 2, 24);
    s.text_block(4, 100);
    s.finish("tool_use")
}

/// A Bedrock event frame: `:event-type` `event_type`, JSON content, this payload (bytes
/// or text).
pub(crate) fn event_frame(event_type: &str, payload: impl AsRef<[u8]>) -> Message {
    MessageBuilder::new()
        .string_header(":event-type", event_type)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(payload.as_ref())
        .expect("an event frame within the limits")
}

/// The events as Bedrock frames ([`event_frame`]), concatenated.
pub(crate) fn wire(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ty, payload) in events {
        out.extend_from_slice(event_frame(ty, payload).as_bytes());
    }
    out
}
