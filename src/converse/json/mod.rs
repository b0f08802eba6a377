//! The fast path for the hot events: a hand-written scanner for the exact shapes of
//! `contentBlockDelta` (text, tool input, reasoning text or signature) and
//! `contentBlockStop` payloads, with `"p"` padding anywhere at the top level or inside
//! the delta, members in any order.
//!
//! It finds the end of each string (eight bytes at a time for a plain string, memchr2
//! from escape to escape once there is one) and checks it is UTF-8 (simdutf8), without
//! decoding it: a [`JsonStr`] is the raw text between the quotes, which the assembler
//! later decodes straight into the block's own buffer ([`JsonStr::decode_into`]),
//! checking the escapes in that same pass, so an escaped delta costs no allocation and
//! one walk. A string whose escapes turn out invalid there leaves the buffer as it was
//! and the payload goes to serde_json for the error. Anything it does not recognise (another member, another delta kind, a
//! duplicate key, an escaped key, a number that is not a plain `u32`, a control
//! character, a lone surrogate, ...) makes it return `None`, and the caller parses the
//! payload with serde_json instead, which gives the same result or the error. So the
//! scanner only has to be right about what it accepts; the unit tests below check it
//! against serde_json on generated payloads.
//!
//! In front of it sits a cheaper path for the exact compact text Bedrock writes
//! (`{"contentBlockIndex":N,"delta":{...},"p":"..."}`, no whitespace, that member
//! order): literal prefixes are compared instead of keys being read, and the padding is
//! only checked to be a plain string (one backward scan from the payload's end). It
//! falls back to the general reader for anything else.

use std::borrow::Cow;

use super::event::ContentBlockDelta;

mod string;

use string::string_end;
#[cfg(test)]
pub(crate) use string::tests::piece as string_piece;
pub(crate) use string::JsonStr;

const LO: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;

/// Sets the high bit of every byte of `x` that is zero. Borrows can also flag bytes
/// above a zero byte, never below one, so the lowest flag is always exact.
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Flags the bytes of `x` that end or break a plain string: `"`, `\\`, or a control
/// character (below 0x20). The lowest flag is exact, as in [`zero_bytes`].
pub(crate) fn special_bytes(x: u64) -> u64 {
    zero_bytes(x ^ (LO * u64::from(b'"')))
        | zero_bytes(x ^ (LO * u64::from(b'\\')))
        | (x.wrapping_sub(LO * 0x20) & !x & HI)
}

/// Whether any of the 16 bytes of `block` is `"`, `\\` or a control character. Written
/// as an OR over the bytes so that the compiler makes it a few vector compares and
/// one `pmovmskb` (baseline SSE2 on x86-64; the word scans below cost about twice as
/// much per byte). It gates the exact scans: on the usual clean block, nothing else
/// is done with its bytes.
#[inline(always)]
fn any_special16(block: &[u8; 16]) -> bool {
    let mut any = 0u8;
    for &b in block {
        any |= u8::from((b == b'"') | (b == b'\\') | (b < 0x20));
    }
    any != 0
}

/// The position of the first byte of `rest` that ends or breaks a plain string (`"`,
/// `\\` or a control character), or `rest.len()` when there is none. Sixteen bytes at
/// a time ([`any_special16`]), eight in the block that has one; the last few bytes
/// are read as one overlapping word, not byte by byte.
#[inline]
pub(super) fn special_at(rest: &[u8]) -> usize {
    let mut i = 0;
    while let Some(block) = rest.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        if any_special16(block) {
            break;
        }
        i += 16;
    }
    while let Some(chunk) = rest.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let flags = special_bytes(u64::from_le_bytes(*chunk));
        if flags != 0 {
            // trailing_zeros of a non-zero u64 is below 64; /8 is a byte offset below 8.
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    if i == rest.len() {
        return i;
    }
    let Some(last) = rest.last_chunk::<8>() else {
        // Shorter than one word.
        return rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(rest.len());
    };
    // The word ending at the end overlaps the bytes already checked (none special, so
    // they raise no flag and no borrow); `seen` (below 8) of them are masked off.
    let base = rest.len() - 8;
    let seen = i - base;
    let flags = special_bytes(u64::from_le_bytes(*last)) & (!0u64 << (8 * seen));
    if flags == 0 {
        return rest.len();
    }
    // As above: a byte offset below 8.
    base + (flags.trailing_zeros() / 8) as usize
}

/// [`special_at`] for text that is usually a short string (a member name, a word or
/// two): the first eight bytes are read as one word first, which decides most
/// member names without the sixteen-byte block test and its second look.
#[inline(always)]
pub(super) fn special_at_short(rest: &[u8]) -> usize {
    match rest.first_chunk::<8>() {
        Some(word) => match special_bytes(u64::from_le_bytes(*word)) {
            // trailing_zeros of a non-zero u64 is below 64; /8 is a byte offset below 8.
            0 => 8 + special_at(rest.get(8..).unwrap_or_default()),
            flags => (flags.trailing_zeros() / 8) as usize,
        },
        None => special_at(rest),
    }
}

/// The position of the first `"` or `\\` in `rest`; `None` if a control character
/// comes first (JSON forbids it; serde_json will report it) or there is none.
fn scan(rest: &[u8]) -> Option<usize> {
    let at = special_at_short(rest);
    match rest.get(at)? {
        b'"' | b'\\' => Some(at),
        _ => None,
    }
}

/// The kind of a delta the fast path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastKind {
    /// `text`.
    Text,
    /// `toolUse.input`.
    ToolInput,
    /// `reasoningContent.text`.
    ReasoningText,
    /// `reasoningContent.signature`.
    ReasoningSignature,
}

/// A delta read by the fast path: its kind and its (undecoded) string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FastDelta<'a> {
    pub(crate) kind: FastKind,
    pub(crate) text: JsonStr<'a>,
}

impl<'a> FastDelta<'a> {
    /// The typed delta, with the string decoded (allocates when it has escapes).
    #[cfg(test)]
    pub(crate) fn to_delta(self) -> Option<ContentBlockDelta<'a>> {
        Some(typed_delta(self.kind, self.text.to_cow()?))
    }
}

/// Wraps a decoded string as the delta of `kind`.
pub(crate) fn typed_delta(kind: FastKind, s: Cow<'_, str>) -> ContentBlockDelta<'_> {
    match kind {
        FastKind::Text => ContentBlockDelta::Text(s),
        FastKind::ToolInput => ContentBlockDelta::ToolUseInput(s),
        FastKind::ReasoningText => ContentBlockDelta::ReasoningText(s),
        FastKind::ReasoningSignature => ContentBlockDelta::ReasoningSignature(s),
    }
}

/// Reads a payload. Keys are compared with ASCII names and the padding is skipped,
/// as serde_json does; the strings it returns are slices of `text`, the payload
/// checked for UTF-8 once (when it has strings to return).
struct Cursor<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A reader of a payload whose strings are not read (only keys and padding).
    fn new(bytes: &'a [u8]) -> Self {
        Cursor {
            bytes,
            text: None,
            pos: 0,
        }
    }

    /// A reader of a payload checked to be UTF-8, whose strings can be read.
    fn with_text(text: &'a str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            text: Some(text),
            pos: 0,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.bytes.len()
    }

    /// A JSON string, checked, not decoded.
    fn string(&mut self) -> Option<JsonStr<'a>> {
        self.eat(b'"')?;
        self.string_rest()
    }

    /// The rest of a JSON string whose opening quote is consumed.
    fn string_rest(&mut self) -> Option<JsonStr<'a>> {
        let start = self.pos;
        let first = start + scan(self.bytes.get(start..)?)?;
        let (end, escaped) = match self.bytes.get(first) {
            Some(b'"') => (first, false),
            _ => (string_end(self.bytes, first)?, true),
        };
        // `start` and `end` are next to ASCII quotes: character boundaries.
        let raw = self.text?.get(start..end)?;
        self.pos = end + 1;
        Some(JsonStr { raw, plain: !escaped })
    }

    /// One of `names` as an object key, and the `:` after it; `None` for any other key.
    fn key(&mut self, names: &[&'static [u8]]) -> Option<&'static [u8]> {
        self.eat(b'"')?;
        let rest = self.bytes.get(self.pos..)?;
        let name = names
            .iter()
            .copied()
            // The first byte and the closing quote rule out most names before comparing.
            .find(|n| rest.first() == n.first() && rest.get(n.len()) == Some(&b'"') && rest.starts_with(n))?;
        self.pos += name.len() + 1;
        self.eat(b':')?;
        Some(name)
    }

    /// One of `names`, or `p` (Bedrock's padding), as an object key and its `:`. The
    /// key is read once: `p"` is checked right after the opening quote, before the
    /// names are compared.
    fn key_or_padding(&mut self, names: &[&'static [u8]]) -> Option<&'static [u8]> {
        self.eat(b'"')?;
        let rest = self.bytes.get(self.pos..)?;
        let name: &'static [u8] = if rest.starts_with(b"p\"") {
            b"p"
        } else {
            names.iter().copied().find(|n| {
                rest.first() == n.first() && rest.get(n.len()) == Some(&b'"') && rest.starts_with(n)
            })?
        };
        self.pos += name.len() + 1;
        self.eat(b':')?;
        Some(name)
    }

    /// Skips a string without escapes (the `"p"` padding).
    fn padding(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let end = self.pos + scan(self.bytes.get(self.pos..)?)?;
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        Some(())
    }

    /// Reads a whole JSON object of the members `names` and Bedrock's `"p"` padding (at
    /// most once, anywhere), handing each named member's value to `member`; `None` for
    /// any other member or shape.
    fn padded_object(
        &mut self,
        names: &[&'static [u8]],
        mut member: impl FnMut(&mut Self, &'static [u8]) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        let mut padding = false;
        loop {
            let key = self.key_or_padding(names)?;
            if key == b"p" {
                if padding {
                    return None;
                }
                padding = true;
                self.padding()?;
            } else {
                member(self, key)?;
            }
            if !self.next_member()? {
                break;
            }
        }
        self.at_end().then_some(())
    }

    /// A plain non-negative integer that fits in `u32` (no sign, fraction or exponent).
    fn u32(&mut self) -> Option<u32> {
        self.skip_ws();
        let (v, n) = leading_u32(self.bytes.get(self.pos..)?)?;
        self.pos += n;
        if let Some(b'.' | b'e' | b'E') = self.bytes.get(self.pos) {
            return None;
        }
        Some(v)
    }

    /// After a member: `,` (more follow: `true`) or `}` (the end: `false`).
    fn next_member(&mut self) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Some(true)
            }
            b'}' => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// An object with exactly one of `names` (a string) and at most one `"p"` padding
    /// member, in any order.
    fn string_member(&mut self, names: &[&'static [u8]]) -> Option<(&'static [u8], JsonStr<'a>)> {
        self.eat(b'{')?;
        let mut found = None;
        let mut padding = false;
        loop {
            match self.key(names)? {
                b"p" if !padding => {
                    padding = true;
                    self.padding()?;
                }
                b"p" => return None,
                name if found.is_none() => found = Some((name, self.string()?)),
                _ => return None,
            }
            if !self.next_member()? {
                return found;
            }
        }
    }

    fn delta(&mut self) -> Option<FastDelta<'a>> {
        self.eat(b'{')?;
        let mut found = None;
        let mut padding = false;
        loop {
            let kind = match self.key(&[b"text", b"toolUse", b"reasoningContent", b"p"])? {
                b"p" if !padding => {
                    padding = true;
                    self.padding()?;
                    None
                }
                _ if found.is_some() => return None,
                b"text" => Some((FastKind::Text, self.string()?)),
                b"toolUse" => match self.string_member(&[b"input", b"p"])? {
                    (b"input", s) => Some((FastKind::ToolInput, s)),
                    _ => return None,
                },
                b"reasoningContent" => match self.string_member(&[b"text", b"signature", b"p"])? {
                    (b"text", s) => Some((FastKind::ReasoningText, s)),
                    (b"signature", s) => Some((FastKind::ReasoningSignature, s)),
                    _ => return None,
                },
                _ => return None,
            };
            if let Some(k) = kind {
                found = Some(k);
            }
            if !self.next_member()? {
                let (kind, text) = found?;
                return Some(FastDelta { kind, text });
            }
        }
    }
}

/// A `contentBlockDelta` payload of a common shape, or `None` (then use serde_json).
pub(crate) fn delta_event(payload: &[u8]) -> Option<(u32, FastDelta<'_>)> {
    if let Some(compact) = compact_delta(payload) {
        return Some(compact);
    }
    let mut c = Cursor::with_text(simdutf8::basic::from_utf8(payload).ok()?);
    let (mut index, mut delta) = (None, None);
    c.padded_object(&[b"contentBlockIndex", b"delta"], |c, key| {
        match key {
            b"contentBlockIndex" if index.is_none() => index = Some(c.u32()?),
            b"delta" if delta.is_none() => delta = Some(c.delta()?),
            _ => return None,
        }
        Some(())
    })?;
    Some((index?, delta?))
}

/// A `contentBlockStop` payload (`contentBlockIndex` and maybe `"p"`), or `None`.
pub(crate) fn stop_event(payload: &[u8]) -> Option<u32> {
    if let Some(index) = compact_stop(payload) {
        return Some(index);
    }
    let mut c = Cursor::new(payload);
    let mut index = None;
    c.padded_object(&[b"contentBlockIndex"], |c, key| {
        match key {
            b"contentBlockIndex" if index.is_none() => index = Some(c.u32()?),
            _ => return None,
        }
        Some(())
    })?;
    index
}

// ===== the compact shapes =====
//
// Bedrock writes these payloads without whitespace and with the members in one order:
// `{"contentBlockIndex":N,"delta":{...},"p":"..."}` (the padding may be absent). These
// functions accept exactly that text, comparing literal prefixes instead of reading
// keys; anything else (including whitespace) goes to the general reader above.

const INDEX_PREFIX: &[u8] = br#"{"contentBlockIndex":"#;

/// The leading decimal digits of `b` as a `u32`, and how many there are; `None` for
/// no digits, a leading zero, or a value above `u32::MAX`.
#[inline(always)]
fn leading_u32(b: &[u8]) -> Option<(u32, usize)> {
    let mut v: u64 = 0;
    let mut n = 0;
    while let Some(&d) = b.get(n) {
        if !d.is_ascii_digit() {
            break;
        }
        // Ten digits always fit in u64; an eleventh would not fit in u32 anyway.
        if n == 10 {
            return None;
        }
        v = v * 10 + u64::from(d - b'0');
        n += 1;
    }
    if n == 0 || (n > 1 && b.first() == Some(&b'0')) {
        return None;
    }
    Some((u32::try_from(v).ok()?, n))
}

/// Flags the bytes of `x` that are `"`, `\\` or a control character, exactly (no
/// borrow crosses from one byte to the next, unlike [`special_bytes`]), so the
/// highest flag is exact too.
fn special_bytes_exact(x: u64) -> u64 {
    const LOW7: u64 = LO * 0x7F;
    let zero = |y: u64| !(((y & LOW7) + LOW7) | y | LOW7);
    zero(x ^ (LO * u64::from(b'"'))) | zero(x ^ (LO * u64::from(b'\\'))) | zero(x & (LO * 0xE0))
}

/// The position of the last `"`, `\\` or control character in `b`, if any: sixteen
/// bytes at a time from the end ([`any_special16`]), then eight at a time (the first
/// few bytes are read as one overlapping word), where `memrchr` is a call with its
/// own setup for a few dozen bytes.
fn last_special(b: &[u8]) -> Option<usize> {
    // The highest flag of a word, as a byte offset in it (below 8).
    let last = |flags: u64| (63 - flags.leading_zeros()) as usize / 8;
    let mut end = b.len();
    while let Some(block) = end
        .checked_sub(16)
        .and_then(|at| b.get(at..end)?.first_chunk::<16>())
    {
        if any_special16(block) {
            break;
        }
        end -= 16;
    }
    while let Some(word) = end
        .checked_sub(8)
        .and_then(|at| b.get(at..end)?.first_chunk::<8>())
    {
        let flags = special_bytes_exact(u64::from_le_bytes(*word));
        if flags != 0 {
            return Some(end - 8 + last(flags));
        }
        end -= 8;
    }
    if end == 0 {
        return None;
    }
    match b.first_chunk::<8>() {
        // Overlaps bytes already checked, which raise no flag.
        Some(first) => {
            let flags = special_bytes_exact(u64::from_le_bytes(*first));
            (flags != 0).then(|| last(flags))
        }
        None => b
            .get(..end)?
            .iter()
            .rposition(|&c| c == b'"' || c == b'\\' || c < 0x20),
    }
}

/// Whether `b` can be the inside of a JSON string without escapes: no `"`, `\\` or
/// control character.
fn plain(b: &[u8]) -> bool {
    special_at(b) == b.len()
}

/// The end of a compact payload after its last real member: `}` or
/// `,"p":"<plain>"}`.
fn compact_end(rest: &[u8]) -> bool {
    match rest {
        [b'}'] => true,
        [b',', b'"', b'p', b'"', b':', b'"', padding @ .., b'"', b'}'] => plain(padding),
        _ => false,
    }
}

/// A `contentBlockDelta` payload in the compact shape (text, tool input, reasoning
/// text or signature), or `None`. The string is not walked here: its end is found from
/// the payload's end (the padding is the only thing after it), and its content is
/// checked while it is decoded.
fn compact_delta(payload: &[u8]) -> Option<(u32, FastDelta<'_>)> {
    let rest = payload.strip_prefix(INDEX_PREFIX)?;
    let (index, digits) = leading_u32(rest)?;
    let rest = rest.get(digits..)?.strip_prefix(br#","delta":{""#)?;
    // (kind, bytes before the string, closing braces after it)
    let (kind, skip, braces) = if rest.starts_with(br#"text":""#) {
        (FastKind::Text, 7, 1)
    } else if rest.starts_with(br#"toolUse":{"input":""#) {
        (FastKind::ToolInput, 19, 2)
    } else if rest.starts_with(br#"reasoningContent":{"text":""#) {
        (FastKind::ReasoningText, 27, 2)
    } else if rest.starts_with(br#"reasoningContent":{"signature":""#) {
        (FastKind::ReasoningSignature, 32, 2)
    } else {
        return None;
    };
    let start = (payload.len() - rest.len()).checked_add(skip)?;
    let end = compact_string_end(payload, braces)?;
    Some((
        index,
        FastDelta {
            kind,
            text: JsonStr {
                raw: utf8_span(payload, start, end)?,
                plain: false,
            },
        },
    ))
}

/// `payload[start..end]` checked to be UTF-8, where everything before `start` is
/// ASCII. simdutf8 hands inputs under 64 bytes to the standard library's much slower
/// check, and a delta's string is often that short: the span checked is widened to 64
/// bytes when the payload has them, backwards into the ASCII prefix (on a character
/// boundary) or, when the string ends before byte 64, to the whole payload (so
/// invalid UTF-8 in the padding, which serde_json would skip, sends such a payload to
/// the general reader).
fn utf8_span(payload: &[u8], start: usize, end: usize) -> Option<&str> {
    if start > end {
        return None;
    }
    let (from, to) = match end.checked_sub(64) {
        Some(back) => (start.min(back), end),
        None => (0, payload.len()),
    };
    let checked = simdutf8::basic::from_utf8(payload.get(from..to)?).ok()?;
    checked.get(start - from..end - from)
}

/// Where the one string of a compact delta payload ends (the position of its closing
/// quote), read backwards from the payload's end: `"`, `braces` closing braces, then `}` or
/// `,"p":"<plain>"}`. The string's content is not looked at: if it decodes (no
/// unescaped quote, no dangling backslash), this quote is the one a forward reader
/// stops at.
fn compact_string_end(payload: &[u8], braces: usize) -> Option<usize> {
    let body = match payload.strip_suffix(b"\"}") {
        // The last member is a string: the padding (plain, so its opening quote is
        // the last quote before its end, and nothing after that quote is special:
        // one backward scan finds the quote and checks the padding).
        Some(head) => {
            let open = last_special(head)?;
            if head.get(open) != Some(&b'"') {
                return None;
            }
            head.get(..open)?.strip_suffix(br#","p":"#)?
        }
        None => payload.strip_suffix(b"}")?,
    };
    // The closing braces and the quote before them, byte by byte (one or two braces:
    // not worth a `memcmp` call).
    let quote = body.len().checked_sub(braces + 1)?;
    let (&first, rest) = body.get(quote..)?.split_first()?;
    (first == b'"' && rest.iter().all(|&b| b == b'}')).then_some(quote)
}

/// A `contentBlockStop` payload in the compact shape, or `None`.
fn compact_stop(payload: &[u8]) -> Option<u32> {
    let rest = payload.strip_prefix(INDEX_PREFIX)?;
    let (index, digits) = leading_u32(rest)?;
    compact_end(rest.get(digits..)?).then_some(index)
}

#[cfg(test)]
mod tests;
