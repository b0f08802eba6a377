//! [`JsonStr`]: the raw text of a JSON string as the scanner found it, and its
//! one-pass decoding into the block's buffer (escapes checked on the way).

#[cfg(test)]
use std::borrow::Cow;

#[cfg(test)]
use super::special_at;
use super::{any_special16, special_bytes_exact};

/// The text between the quotes of a JSON string, valid UTF-8. Either known to be a
/// plain string (no escapes, no control characters: the general reader checked it), or
/// still to be checked, which [`decode_into`](Self::decode_into) does in the same pass
/// that decodes it (the compact path finds the string's end from the payload's end
/// and leaves every check to that pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonStr<'a> {
    pub(super) raw: &'a str,
    pub(super) plain: bool,
}

impl<'a> JsonStr<'a> {
    /// The string itself when it is known to have no escapes.
    pub(crate) fn plain(&self) -> Option<&'a str> {
        self.plain.then_some(self.raw)
    }

    /// Appends the decoded string to `out`, checking it on the way (one pass: runs
    /// between escapes are copied, each escape is decoded in place; an unescaped `"`,
    /// a control character or a bad escape stops it). Reserves at most the raw length
    /// (decoding never makes a string longer). `None` for an invalid string, with
    /// `out` as it was. Always inlined into the assembler's delta handler (one call
    /// fewer per delta, about 2% of decode + push per event in callgrind).
    #[inline(always)]
    pub(crate) fn decode_into(&self, out: &mut String) -> Option<()> {
        if self.plain {
            out.push_str(self.raw);
            return Some(());
        }
        let start = out.len();
        out.reserve(self.raw.len());
        let decoded = decode_checked(self.raw, out);
        if decoded.is_none() {
            out.truncate(start);
        }
        decoded
    }

    /// Whether [`decode_into`](Self::decode_into) would accept it (for the error path).
    pub(crate) fn is_valid(&self) -> bool {
        self.plain || decode_checked(self.raw, &mut String::new()).is_some()
    }

    /// The decoded string: borrowed when it has no escapes (allocates otherwise);
    /// `None` for an invalid string.
    #[cfg(test)]
    pub(crate) fn to_cow(self) -> Option<Cow<'a, str>> {
        if self.plain || special_at(self.raw.as_bytes()) == self.raw.len() {
            return Some(Cow::Borrowed(self.raw));
        }
        let mut s = String::with_capacity(self.raw.len());
        self.decode_into(&mut s)?;
        Some(Cow::Owned(s))
    }
}

/// Decodes `raw` (valid UTF-8, the text between the quotes of a string) onto `out`;
/// `None` at the first unescaped `"`, control character or invalid escape.
///
/// The special bytes of each 64-byte window are found at once, as a bit mask
/// ([`special_mask`]), and visited lowest first: the word scan runs once per window,
/// not once per run between escapes, and its loop does not exit at a data-dependent
/// place for every escape.
///
/// `\"`, `\\` and `\/` stand for the byte after their backslash, so the run to copy
/// simply restarts at that byte (one copy for `a\"b`, not three pieces): the common
/// case in tool inputs, whose every key is quoted that way. The other two-byte escapes
/// are one table lookup ([`SIMPLE_ESCAPE`]), not a branch per kind: on text whose
/// escapes come in any order, a `match` over the escape letter mispredicts most of the
/// time.
fn decode_checked(raw: &str, out: &mut String) -> Option<()> {
    let bytes = raw.as_bytes();
    // The start of the run still to copy, where the next special byte may be, and the
    // start of the current window.
    let (mut run, mut from, mut base) = (0, 0, 0);
    // The bits of `mask` at or above `from`.
    let above = |mask: u64, from: usize, base: usize| match from.saturating_sub(base) {
        skip @ 0..=63 => mask & (!0u64 << skip),
        _ => 0,
    };
    while base < bytes.len() {
        let mut mask = above(special_mask(bytes, base), from, base);
        while mask != 0 {
            // trailing_zeros of a non-zero u64 is below 64.
            let at = base + mask.trailing_zeros() as usize;
            // `run` and `at` are at ASCII bytes: character boundaries.
            out.push_str(raw.get(run..at)?);
            if bytes.get(at) != Some(&b'\\') {
                return None;
            }
            let next = *bytes.get(at + 1)?;
            match SIMPLE_ESCAPE[usize::from(next)] {
                // `\"`, `\\`, `\/`: the escaped byte starts the next run.
                SELF => {
                    run = at + 1;
                    from = at + 2;
                }
                NONE => {
                    let (ch, used) = unicode_escape(bytes.get(at..)?)?;
                    out.push(ch);
                    run = at + used;
                    from = run;
                }
                // Below 0x20: a control character.
                ch => {
                    out.push(char::from(ch));
                    run = at + 2;
                    from = run;
                }
            }
            mask = above(mask, from, base);
        }
        base += 64;
    }
    out.push_str(raw.get(run..)?);
    Some(())
}

/// Bit `k` is set when `bytes[at + k]` is `"`, `\\` or a control character, for the
/// (up to) 64 bytes from `at`. Each 16-byte block is first checked as a whole
/// ([`any_special16`], a few vector instructions); only a block that has a special
/// byte is read word by word. The last few bytes are read as one overlapping block or
/// word.
fn special_mask(bytes: &[u8], at: usize) -> u64 {
    let window = bytes.get(at..).unwrap_or_default();
    let window = window.get(..64).unwrap_or(window);
    let word_mask = |w: &[u8; 8]| byte_mask(special_bytes_exact(u64::from_le_bytes(*w)));
    let mut mask = 0;
    let mut i = 0;
    while let Some(block) = window.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        mask |= block_mask(block) << i;
        i += 16;
    }
    // `left` is below 16 (and `i` at most 48).
    let left = window.len() - i;
    if left == 0 {
        return mask;
    }
    if let Some(last) = window.last_chunk::<16>() {
        // Its first `16 - left` bytes were counted above: shifted out.
        return mask | (block_mask(last) >> (16 - left)) << i;
    }
    // A window shorter than 16 bytes (so `i` is 0).
    while let Some(w) = window.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        mask |= word_mask(w) << i;
        i += 8;
    }
    let left = window.len() - i;
    if left > 0 {
        match window.last_chunk::<8>() {
            // Its first `8 - left` bytes were counted above: shifted out.
            Some(w) => mask |= (word_mask(w) >> (8 - left)) << i,
            None => {
                for (k, &b) in window.iter().enumerate() {
                    if b == b'"' || b == b'\\' || b < 0x20 {
                        mask |= 1 << k;
                    }
                }
            }
        }
    }
    mask
}

/// The bits of [`special_mask`] for one 16-byte block: none when [`any_special16`]
/// says so, else each of its two words read exactly.
#[inline(always)]
fn block_mask(block: &[u8; 16]) -> u64 {
    if !any_special16(block) {
        return 0;
    }
    let word = |w: u64| byte_mask(special_bytes_exact(w));
    let x = u128::from_le_bytes(*block);
    // The low and high halves of the block, as words (truncation intended).
    word(x as u64) | word((x >> 64) as u64) << 8
}

/// The high bits of the eight bytes of `flags` (each 0x80 or 0) as the eight low bits
/// of the result, byte `k` at bit `k`: one multiplication gathers them into the top
/// byte without carries (each product bit lands on its own position).
fn byte_mask(flags: u64) -> u64 {
    ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// [`SIMPLE_ESCAPE`]: the escape stands for the byte after the backslash.
const SELF: u8 = 0xFF;
/// [`SIMPLE_ESCAPE`]: not a two-byte escape (`u`, or invalid).
const NONE: u8 = 0;

/// For each byte after a backslash: the control character a two-byte escape stands for
/// (`\b` `\f` `\n` `\r` `\t`), [`SELF`] for `"` `\\` `/`, [`NONE`] otherwise.
const SIMPLE_ESCAPE: [u8; 256] = {
    let mut t = [NONE; 256];
    t[b'"' as usize] = SELF;
    t[b'\\' as usize] = SELF;
    t[b'/' as usize] = SELF;
    t[b'b' as usize] = 0x08;
    t[b'f' as usize] = 0x0C;
    t[b'n' as usize] = b'\n';
    t[b'r' as usize] = b'\r';
    t[b't' as usize] = b'\t';
    t
};

/// A `\\uXXXX` escape, or a surrogate pair of two.
fn unicode_escape(bytes: &[u8]) -> Option<(char, usize)> {
    if bytes.get(1) != Some(&b'u') {
        return None;
    }
    let hi = hex4(bytes.get(2..6))?;
    if (0xD800..0xDC00).contains(&hi) {
        if bytes.get(6..8)? != b"\\u" {
            return None;
        }
        let lo = hex4(bytes.get(8..12))?;
        if !(0xDC00..0xE000).contains(&lo) {
            return None;
        }
        let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return Some((char::from_u32(code)?, 12));
    }
    // A lone trailing surrogate is no character: from_u32 refuses it.
    Some((char::from_u32(hi)?, 6))
}

/// Four hex digits.
fn hex4(digits: Option<&[u8]>) -> Option<u32> {
    let [a, b, c, d] = digits?.first_chunk::<4>()?.map(|x| HEX[usize::from(x)]);
    // Valid digits are below 16; an invalid one (0xFF) sets a high bit.
    if (a | b | c | d) & 0xF0 != 0 {
        return None;
    }
    Some(u32::from(a) << 12 | u32::from(b) << 8 | u32::from(c) << 4 | u32::from(d))
}

/// The value of each byte as a hex digit, 0xFF for a byte that is none.
const HEX: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The position of the closing quote of a string whose first `\\` is at `first`:
/// memchr2 from escape to escape, stepping over the character after each backslash.
/// The escapes themselves are checked when the string is decoded.
pub(super) fn string_end(bytes: &[u8], first: usize) -> Option<usize> {
    let mut i = first;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i),
            // `\\` and the byte it escapes (a multi-byte character there is refused
            // when the escape is decoded).
            _ => i += 2,
        }
        i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of JSON string text, valid and not, for strings across several windows
    /// (also the strings of the tool-input checker's tests).
    pub(crate) fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a",
            "word ",
            "é",
            "😀",
            "\\\"",
            "\\\\",
            "\\/",
            "\\b",
            "\\f",
            "\\n",
            "\\r",
            "\\t",
            "\\u0000",
            "\\u00e9",
            "\\uD83D\\uDE00",
            "\\uD83D",
            "\\uDE00",
            "\\x",
            "\\",
            "\"",
            "\u{1}",
            "\\u12",
            "0123456789abcdef",
        ])
    }

    proptest! {
        #[test]
        fn decodes_as_serde_json(pieces in prop::collection::vec(piece(), 0..60)) {
            let raw: String = pieces.concat();
            let serde = serde_json::from_str::<String>(&format!("\"{raw}\"")).ok();
            let mut out = String::from("kept");
            match (JsonStr { raw: &raw, plain: false }).decode_into(&mut out) {
                Some(()) => prop_assert_eq!(Some(out), serde.map(|s| format!("kept{s}")), "{}", raw),
                // Refused: serde_json refuses it too, and `out` is as it was.
                None => {
                    prop_assert_eq!(serde, None, "{}", raw);
                    prop_assert_eq!(out, "kept");
                }
            }
        }

        #[test]
        fn mask_matches_naive(bytes in prop::collection::vec(
            prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff], 0..80), at in 0usize..20) {
            let naive = bytes.iter().skip(at).take(64).enumerate().fold(0u64, |m, (k, &b)| {
                if b == b'"' || b == b'\\' || b < 0x20 { m | 1 << k } else { m }
            });
            prop_assert_eq!(special_mask(&bytes, at), naive);
        }
    }
}
