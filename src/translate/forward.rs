//! Forwarding a text delta's JSON string as it came: the escaped bytes of
//! `delta.text` (or `delta.reasoningContent.text`) in a `contentBlockDelta` payload are
//! already the contents of a JSON string, so a writer can copy them into its SSE event
//! as they are, instead of the assembler decoding them into its block and the writer
//! escaping them again.
//!
//! [`raw_text_delta`] recognises only the exact compact shape Bedrock writes, with
//! optional `"p"` padding last:
//!
//! ```text
//! {"contentBlockIndex":N,"delta":{"text":"<escaped>"},"p":"<plain>"}
//! {"contentBlockIndex":N,"delta":{"reasoningContent":{"text":"<escaped>"}}}
//! ```
//!
//! and checks the string as a JSON parser would: UTF-8, no raw control character,
//! only JSON's escapes. Anything else (another member order, whitespace, another delta
//! kind, an escaped key, a number that is not a plain `u32`, a `\u` escape of a
//! surrogate, escaped padding) is `None`, and the caller goes through the assembler,
//! which gives the event or the error. So this only has to be right about what it
//! accepts; the tests check it against serde_json.
//!
//! Tool-input fragments (`delta.toolUse.input`) are not forwarded: the assembler must
//! still decode each one (it keeps the input, to check that it is one JSON value when
//! its block stops), and copying the fragment from the frame instead of re-escaping the
//! decoded one was measured no cheaper: locating the string again costs what the
//! escaping saves, on fragments of a few bytes each (callgrind, `benches/dialect.rs`).

use bytes::BufMut;

use super::events::{route, EventSink};
use crate::converse::json::{special_bytes, HI};
use crate::converse::{BlockKind, StreamAssembler, StreamError};
use crate::eventstream::{Frame, FrameKind};

/// Which string of a delta was forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    /// `delta.text`.
    Text,
    /// `delta.reasoningContent.text`.
    Reasoning,
}

impl TextKind {
    /// The kind of block the assembler must already have open for the delta to be
    /// forwarded (its first delta went through the assembler and opened it).
    fn block_kind(self) -> BlockKind {
        match self {
            TextKind::Text => BlockKind::Text,
            TextKind::Reasoning => BlockKind::ReasoningText,
        }
    }
}

/// A text delta whose string is forwarded as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTextDelta<'a> {
    /// `contentBlockIndex`.
    pub(crate) block: u32,
    pub(crate) kind: TextKind,
    /// The string's contents between its quotes, still escaped: valid JSON string
    /// contents (UTF-8, JSON's escapes only, no lone surrogate).
    pub(crate) escaped: &'a [u8],
}

/// What a dialect's SSE writer adds to its [`EventSink`] for [`push_frame`]: how it
/// writes a forwarded delta. `pub` in this private module, as `EventSink` is: the
/// supertrait of the public [`SseWriter`](super::SseWriter).
pub trait ForwardingWriter: EventSink {
    /// Writes `delta` as it came, as [`route`] would write the delta's event; `false`
    /// when this writer cannot (the assembler then takes the frame).
    fn forward<B: BufMut>(&mut self, delta: RawTextDelta<'_>, buf: &mut B) -> bool;
}

/// Feeds `frame` to `writer`: a forwardable text delta straight from the frame, any
/// other frame through `assembler` and the event it gives (the writers' `push_frame`).
pub(crate) fn push_frame<W: ForwardingWriter + ?Sized, B: BufMut>(
    writer: &mut W,
    assembler: &mut StreamAssembler,
    frame: Frame<'_>,
    buf: &mut B,
) -> Result<(), StreamError> {
    if !writer.ended() {
        if let Some(delta) = forwardable(assembler, &frame) {
            if writer.forward(delta, buf) {
                return Ok(());
            }
        }
    }
    if let Some(event) = assembler.push_frame(frame)? {
        route(writer, &event, buf);
    }
    Ok(())
}

/// The text delta in `frame`, when it has the compact shape and the assembler would
/// take it as one more delta of a block it has open (streaming, the block open and of
/// the delta's kind): the assembler then adds nothing a dialect writer needs, and the
/// delta can go straight to the writer.
fn forwardable<'a>(assembler: &StreamAssembler, frame: &Frame<'a>) -> Option<RawTextDelta<'a>> {
    // The header block of a Bedrock delta, byte for byte, compares in one go; headers
    // in another order or with others are read (a validated header block equal to it
    // has exactly these three headers).
    let is_delta = frame.header_bytes() == DELTA_HEADERS
        || matches!(
            frame.kind(),
            FrameKind::Event {
                event_type: "contentBlockDelta"
            }
        );
    if !is_delta {
        return None;
    }
    let delta = raw_text_delta(frame.payload())?;
    if assembler.is_stopped() {
        return None;
    }
    let state = assembler.block(delta.block)?;
    (!state.stopped && state.kind == delta.kind.block_kind()).then_some(delta)
}

/// The headers Bedrock writes on a `contentBlockDelta` frame, in its order, encoded:
/// each a name length, the name, type 7 (string), a big-endian u16 length, the value.
const DELTA_HEADERS: &[u8] = b"\x0b:event-type\x07\x00\x11contentBlockDelta\
    \x0d:content-type\x07\x00\x10application/json\
    \x0d:message-type\x07\x00\x05event";

/// What Bedrock's padding is cut from: its `"p"` value is always a prefix of this.
const PAD_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Reads a `contentBlockDelta` payload of the compact text shape (see the
/// [module docs](self)).
pub(crate) fn raw_text_delta(payload: &[u8]) -> Option<RawTextDelta<'_>> {
    let rest = payload.strip_prefix(b"{\"contentBlockIndex\":")?;
    let (block, rest) = index(rest)?;
    let rest = rest.strip_prefix(b",\"delta\":{\"")?;
    let (kind, rest, close): (_, _, &[u8]) = if let Some(r) = rest.strip_prefix(b"text\":\"") {
        (TextKind::Text, r, b"\"}")
    } else if let Some(r) = rest.strip_prefix(b"reasoningContent\":{\"text\":\"") {
        (TextKind::Reasoning, r, b"\"}}")
    } else {
        return None;
    };
    let len = string_len(rest)?;
    let (escaped, rest) = rest.split_at_checked(len)?;
    let rest = rest.strip_prefix(close)?;
    if rest != b"}" {
        padding_last(rest)?;
    }
    Some(RawTextDelta { block, kind, escaped })
}

/// A `u32` in JSON's form (no leading zero, no sign) and what follows it.
fn index(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, rest) = bytes.split_at_checked(digits)?;
    if digits == 0 || digits > 10 || (digits > 1 && number.first() == Some(&b'0')) {
        return None;
    }
    let mut n: u32 = 0;
    for &d in number {
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    Some((n, rest))
}

/// `,"p":"<plain string>"}` and nothing after: Bedrock's padding as the last member.
fn padding_last(bytes: &[u8]) -> Option<()> {
    let rest = bytes.strip_prefix(b",\"p\":\"")?;
    // Bedrock's padding, a prefix of the alphabet (no quote in it: the closing quote
    // is the one before `}`), in one comparison.
    if let Some(pad) = rest.strip_suffix(b"\"}") {
        if PAD_ALPHABET.starts_with(pad) {
            return Some(());
        }
    }
    let (end, non_ascii) = next_special(rest, 0);
    if rest.get(end..)? != b"\"}" {
        return None;
    }
    if non_ascii {
        simdutf8::basic::from_utf8(rest.get(..end)?).ok()?;
    }
    Some(())
}

/// Whether a byte ends or breaks a plain string.
fn is_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The position of the first `"`, `\\` or control character in `bytes` at or after
/// `from` (`bytes.len()` if none), and whether a byte at or above 0x80 may sit before
/// it (exact when `false`; when `true`, the caller checks UTF-8).
///
/// Eight bytes at a time: a word may reach past the special byte into what follows
/// the string (the rest of the payload), which only flags it as maybe non-ASCII.
fn next_special(bytes: &[u8], from: usize) -> (usize, bool) {
    let mut at = from;
    let mut high = 0u64;
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        high |= w;
        let flags = special_bytes(w);
        if flags != 0 {
            // trailing_zeros of a non-zero u64 is below 64; / 8 is a byte offset below 8.
            return (at + (flags.trailing_zeros() / 8) as usize, high & HI != 0);
        }
        at += 8;
    }
    let mut non_ascii = high & HI != 0;
    for (i, &b) in bytes.get(at..).unwrap_or_default().iter().enumerate() {
        if is_special(b) {
            return (at + i, non_ascii);
        }
        non_ascii |= b >= 0x80;
    }
    (bytes.len(), non_ascii)
}

/// The length of the JSON string contents at the start of `bytes` (up to its closing
/// quote), checked: UTF-8, no raw control character, only JSON's escapes, no `\u`
/// escape of a surrogate (the assembler's reader decides what a surrogate pair or a
/// lone one becomes). `None` if it is not such a string.
fn string_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut non_ascii = false;
    let end = loop {
        let (special, high) = next_special(bytes, at);
        non_ascii |= high;
        match *bytes.get(special)? {
            b'"' => break special,
            b'\\' => at = special + escape_len(bytes.get(special + 1..)?)?,
            _ => return None,
        }
    };
    if non_ascii {
        simdutf8::basic::from_utf8(bytes.get(..end)?).ok()?;
    }
    Some(end)
}

/// The length of the escape whose backslash precedes `after` (the backslash
/// included), or `None` if JSON has no such escape or it is a `\u` escape of a
/// surrogate.
fn escape_len(after: &[u8]) -> Option<usize> {
    match *after.first()? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let hex = after.get(1..5)?;
            let mut n: u32 = 0;
            for &h in hex {
                n = n * 16 + char::from(h).to_digit(16)?;
            }
            (!(0xd800..=0xdfff).contains(&n)).then_some(6)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json reads from a payload of the shapes here: the block index, the
    /// kind and the decoded string; `None` if it is not valid JSON of that shape.
    fn serde_reading(payload: &[u8]) -> Option<(u32, TextKind, String)> {
        let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
        let block = u32::try_from(v.get("contentBlockIndex")?.as_u64()?).ok()?;
        let delta = v.get("delta")?;
        if let Some(t) = delta.get("text") {
            return Some((block, TextKind::Text, t.as_str()?.to_owned()));
        }
        let t = delta.get("reasoningContent")?.get("text")?.as_str()?;
        Some((block, TextKind::Reasoning, t.to_owned()))
    }

    /// Checks that an accepted payload reads as serde_json reads it.
    fn check(payload: &[u8]) -> bool {
        let Some(raw) = raw_text_delta(payload) else {
            return false;
        };
        let (block, kind, text) = serde_reading(payload).unwrap_or_else(|| {
            panic!(
                "accepted what serde_json refuses: {:?}",
                String::from_utf8_lossy(payload)
            )
        });
        assert_eq!((raw.block, raw.kind), (block, kind));
        let mut quoted = b"\"".to_vec();
        quoted.extend_from_slice(raw.escaped);
        quoted.push(b'"');
        let decoded: String = serde_json::from_slice(&quoted).expect("the escaped bytes are a JSON string");
        assert_eq!(decoded, text, "{:?}", String::from_utf8_lossy(payload));
        true
    }

    fn frame(headers: &[(&str, &str)], payload: &str) -> crate::eventstream::Message {
        let mut b = crate::eventstream::MessageBuilder::new();
        for (name, value) in headers {
            b = b.string_header(name, value);
        }
        b.build(payload.as_bytes()).expect("frame")
    }

    const BEDROCK: [(&str, &str); 3] = [
        (":event-type", "contentBlockDelta"),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ];

    #[test]
    fn forwards_deltas_to_open_blocks_of_their_kind_only() {
        let delta = r#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"abc"}"#;
        let bedrock = frame(&BEDROCK, delta);
        assert_eq!(bedrock.as_frame().header_bytes(), DELTA_HEADERS);
        let mut asm = StreamAssembler::new();
        // No message, then no block yet: the assembler's (it opens the block).
        assert!(forwardable(&asm, &bedrock.as_frame()).is_none());
        let start = frame(
            &[(":event-type", "messageStart"), (":message-type", "event")],
            r#"{"role":"assistant"}"#,
        );
        asm.push(&start).expect("start");
        assert!(forwardable(&asm, &bedrock.as_frame()).is_none());
        asm.push(&bedrock).expect("first delta");
        let got = forwardable(&asm, &bedrock.as_frame()).expect("an open text block");
        assert_eq!((got.block, got.kind, got.escaped), (0, TextKind::Text, &b"a"[..]));
        // Other header orders are read; other kinds of frame are not deltas.
        let reordered = frame(&[BEDROCK[2], BEDROCK[0]], delta);
        assert!(forwardable(&asm, &reordered.as_frame()).is_some());
        let exception = frame(
            &[
                (":message-type", "exception"),
                (":exception-type", "contentBlockDelta"),
            ],
            delta,
        );
        assert!(forwardable(&asm, &exception.as_frame()).is_none());
        let other = frame(
            &[(":event-type", "contentBlockStart"), (":message-type", "event")],
            delta,
        );
        assert!(forwardable(&asm, &other.as_frame()).is_none());
        // A reasoning delta to a text block, a delta to another block: the assembler's.
        let reasoning = frame(
            &BEDROCK,
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"a"}}}"#,
        );
        assert!(forwardable(&asm, &reasoning.as_frame()).is_none());
        let elsewhere = frame(&BEDROCK, r#"{"contentBlockIndex":1,"delta":{"text":"a"}}"#);
        assert!(forwardable(&asm, &elsewhere.as_frame()).is_none());
        // A stopped block.
        let stop = frame(
            &[(":event-type", "contentBlockStop"), (":message-type", "event")],
            r#"{"contentBlockIndex":0}"#,
        );
        asm.push(&stop).expect("stop");
        assert!(forwardable(&asm, &bedrock.as_frame()).is_none());
    }

    fn text_payload(index: &str, string: &str, padding: &str) -> Vec<u8> {
        format!("{{\"contentBlockIndex\":{index},\"delta\":{{\"text\":\"{string}\"}}{padding}}}").into_bytes()
    }

    #[test]
    fn accepts_bedrock_text_deltas_as_serde_json_reads_them() {
        for string in [
            "",
            "OK",
            " calculate the cosine",
            r#" \""#,
            r#"strawberry\":\n\ns-t-"#,
            r"a\\b\/c\b\f\r\t",
            r"\u00e9t\u00E9 \u0000 \u001f \u2028",
            "é✓🦀 and some more text after it",
            "exactly8",
            "seven b",
        ] {
            for padding in [
                "",
                r#","p":"abcdefghijklmnopqrstuvwx""#,
                r#","p":"ab""#,
                r#","p":"""#,
                r#","p":"é""#,
                r#","p":"not the alphabet""#,
            ] {
                for index in ["0", "7", "12", "4294967295"] {
                    let payload = text_payload(index, string, padding);
                    assert!(check(&payload), "{}", String::from_utf8_lossy(&payload));
                }
            }
        }
        let reasoning =
            br#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Let me \"think\""}},"p":"abc"}"#;
        assert!(check(reasoning));
    }

    #[test]
    fn refuses_what_it_does_not_know_or_serde_json_refuses() {
        let cases: &[&[u8]] = &[
            br#"{"contentBlockIndex":01,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":4294967296,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":-1,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":,"delta":{"text":"a"}}"#,
            br#"{"contentBlockIndex":0, "delta":{"text":"a"}}"#,
            br#"{"delta":{"text":"a"},"contentBlockIndex":0}"#,
            br#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{}"}}}"#,
            br#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{}","x":1}}}"#,
            br#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":{}}}}"#,
            br#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"x"}}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a","p":"x"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x","q":1}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x\"y"}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"ab","q":"abc"}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"ab"}"}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x"} "#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"},"p":"x"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a"}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a\x"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a\u12"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a\u12g4"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"\ud83e\udd80"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"\ud800"}}"#,
            br#"{"contentBlockIndex":0,"delta":{"text":"a\"}}"#,
            b"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"a\nb\"}}",
            b"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"\xff\"}}",
            b"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"ab\xc3\"}}",
            b"{\"contentBlockIndex\":0,\"delta\":{\"text\":\"a\"},\"p\":\"\xe2\x82\"}",
            b"",
            b"{",
        ];
        for payload in cases {
            assert!(!check(payload), "{}", String::from_utf8_lossy(payload));
        }
    }

    /// Every byte in every position of a string: what is accepted reads as serde_json
    /// reads it, and every plain printable string is accepted.
    #[test]
    fn any_byte_anywhere_agrees_with_serde_json() {
        let base = "plain text, long enough to span words";
        for byte in 0u8..=255 {
            for at in [0usize, 1, 7, 8, 9, 15, 16, base.len()] {
                let mut string = base.as_bytes().to_vec();
                string.insert(at, byte);
                for escape in [false, true] {
                    let mut s = string.clone();
                    if escape {
                        s.insert(at, b'\\');
                    }
                    let mut payload = b"{\"contentBlockIndex\":3,\"delta\":{\"text\":\"".to_vec();
                    payload.extend_from_slice(&s);
                    payload.extend_from_slice(b"\"},\"p\":\"abc\"}");
                    let accepted = check(&payload);
                    if !escape && (0x20..0x80).contains(&byte) && byte != b'"' && byte != b'\\' {
                        assert!(accepted, "{byte:#x} at {at}");
                    }
                }
            }
        }
    }
}
