//! [`JsonStr`]: the raw text of a JSON string as the scanner found it, and its
//! one-pass decoding into the block's buffer (escapes checked on the way).

#[cfg(test)]
use std::borrow::Cow;

use super::special_at;

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
    /// `out` as it was.
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
/// `\"`, `\\` and `\/` stand for the byte after their backslash, so the run to copy
/// simply restarts at that byte (one copy for `a\"b`, not three pieces): the common
/// case in tool inputs, whose every key is quoted that way. The other two-byte escapes
/// are one table lookup ([`SIMPLE_ESCAPE`]), not a branch per kind: on text whose
/// escapes come in any order, a `match` over the escape letter mispredicts most of the
/// time.
fn decode_checked(raw: &str, out: &mut String) -> Option<()> {
    let bytes = raw.as_bytes();
    // The start of the run still to copy, and where to look for the next special byte.
    let (mut run, mut from) = (0, 0);
    loop {
        let at = from + special_at(bytes.get(from..)?);
        // `run` and `at` are at ASCII bytes (or the end): character boundaries.
        out.push_str(raw.get(run..at)?);
        match bytes.get(at) {
            None => return Some(()),
            Some(b'\\') => {
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
            }
            Some(_) => return None,
        }
    }
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
