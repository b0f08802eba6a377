//! A check that a text is exactly one JSON value, with no allocation: the test the
//! assembler runs on a finished tool input.
//!
//! serde_json's `IgnoredAny` builds no tree but keeps its nesting stack in a `Vec`, one
//! allocation per tool call. This checker keeps the stack in a `u128` (one bit per open
//! container, object or array), so it handles 128 levels, serde_json's own recursion
//! limit. Like the fast path in `json.rs`, it only has to be right about what it
//! accepts: when it says no (a deeper document, a lone surrogate escape, or real
//! garbage), the caller asks serde_json, which gives the same answer or the error.

use super::json::special_at;

/// Whether `text` is one JSON value with optional whitespace around it. `false` may
/// also mean "not sure" (nesting deeper than 128, a lone surrogate escape): ask
/// serde_json then.
pub(crate) fn is_one_value(text: &str) -> bool {
    Checker {
        b: text.as_bytes(),
        i: 0,
        stack: 0,
        depth: 0,
    }
    .run()
    .is_some()
}

/// The most containers open at once; bit `n` of `stack` says whether container `n` is
/// an object.
const MAX_DEPTH: u32 = 128;

struct Checker<'a> {
    b: &'a [u8],
    i: usize,
    stack: u128,
    depth: u32,
}

impl Checker<'_> {
    /// Reads values and their separators until the top-level value ends.
    fn run(&mut self) -> Option<()> {
        self.ws();
        loop {
            self.value_start()?;
            // After a value: close containers, or find the next member or element.
            loop {
                self.ws();
                if self.depth == 0 {
                    return (self.i == self.b.len()).then_some(());
                }
                let in_object = self.top_is_object();
                match self.next()? {
                    b',' => {
                        self.ws();
                        if in_object {
                            self.key()?;
                        }
                        break;
                    }
                    b'}' if in_object => self.pop(),
                    b']' if !in_object => self.pop(),
                    _ => return None,
                }
            }
        }
    }

    /// Reads a scalar, or opens a container (and reads an empty one whole). On return,
    /// either a value has ended or the first value inside a container is next.
    fn value_start(&mut self) -> Option<()> {
        loop {
            match self.next()? {
                b'{' => {
                    self.push(true)?;
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        self.pop();
                        return Some(());
                    }
                    self.key()?;
                }
                b'[' => {
                    self.push(false)?;
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        self.pop();
                        return Some(());
                    }
                }
                b'"' => return self.string_rest(),
                b't' => return self.literal(b"rue"),
                b'f' => return self.literal(b"alse"),
                b'n' => return self.literal(b"ull"),
                b'-' => return self.number_rest(None),
                d @ b'0'..=b'9' => return self.number_rest(Some(d)),
                _ => return None,
            }
        }
    }

    /// A member name, the colon, and the whitespace before its value.
    fn key(&mut self) -> Option<()> {
        if self.next()? != b'"' {
            return None;
        }
        self.string_rest()?;
        self.ws();
        if self.next()? != b':' {
            return None;
        }
        self.ws();
        Some(())
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn push(&mut self, object: bool) -> Option<()> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        if object {
            self.stack |= 1u128 << self.depth;
        } else {
            self.stack &= !(1u128 << self.depth);
        }
        self.depth += 1;
        Some(())
    }

    fn pop(&mut self) {
        self.depth -= 1;
    }

    fn top_is_object(&self) -> bool {
        self.stack & (1u128 << (self.depth - 1)) != 0
    }

    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.i.checked_add(rest.len())?;
        if self.b.get(self.i..end)? != rest {
            return None;
        }
        self.i = end;
        Some(())
    }

    /// The rest of a string after its opening quote. The text is `&str`, so its UTF-8 is
    /// already valid; what is left to check is control characters and escapes. The
    /// next quote, backslash or control character is found sixteen bytes at a time
    /// (the scanner's `special_at`), not by a `memchr2` call and a second loop for
    /// control characters: most strings of a tool input are short keys.
    fn string_rest(&mut self) -> Option<()> {
        loop {
            let rest = self.b.get(self.i..)?;
            let at = special_at(rest);
            self.i += at + 1;
            match rest.get(at)? {
                b'"' => return Some(()),
                b'\\' => self.escape()?,
                _ => return None,
            }
        }
    }

    /// The escape after a backslash.
    fn escape(&mut self) -> Option<()> {
        match self.next()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    // A high surrogate must be followed by an escaped low one.
                    0xD800..=0xDBFF => {
                        self.literal(b"\\u")?;
                        let low = self.hex4()?;
                        (0xDC00..=0xDFFF).contains(&low).then_some(())
                    }
                    // A lone low surrogate: serde_json decides.
                    0xDC00..=0xDFFF => None,
                    _ => Some(()),
                }
            }
            _ => None,
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let end = self.i.checked_add(4)?;
        let digits = self.b.get(self.i..end)?;
        let mut n = 0u32;
        for &d in digits {
            n = n * 16 + char::from(d).to_digit(16)?;
        }
        self.i = end;
        Some(n)
    }

    /// The rest of a number after its first byte (`first` is the digit, or `None` after
    /// a minus sign). `None` also for a number that may be beyond `f64`'s range (below
    /// `10^B` with `B` = integer digits + exponent, `B` over 308): serde_json's syntax
    /// check (`IgnoredAny`) accepts `1e400`, but a parse into a value refuses it, so the
    /// caller decides with that parse (see `check_json`).
    fn number_rest(&mut self, first: Option<u8>) -> Option<()> {
        let lead = match first {
            Some(d) => d,
            None => match self.next()? {
                d @ b'0'..=b'9' => d,
                _ => return None,
            },
        };
        // Digits of the integer part (a lone `0` counts as none: the value is below 1).
        let int_digits = if lead == b'0' { 0 } else { 1 + self.digits() };
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        let mut exponent: i64 = 0;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            let negative = self.peek() == Some(b'-');
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let start = self.i;
            if self.digits() == 0 {
                return None;
            }
            // Saturating: only whether it is above 308 matters.
            let magnitude = self.b.get(start..self.i)?.iter().fold(0i64, |e, &d| {
                e.saturating_mul(10)
                    .saturating_add(i64::from(d - b'0'))
                    .min(1 << 40)
            });
            exponent = if negative { -magnitude } else { magnitude };
        }
        // `int_digits` is at most the text's length, far below i64::MAX.
        let bound = i64::try_from(int_digits)
            .unwrap_or(i64::MAX)
            .saturating_add(exponent);
        (bound <= 308).then_some(())
    }

    /// Skips digits and says how many.
    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }
}

#[cfg(test)]
mod tests {
    use super::is_one_value;

    fn serde_accepts(s: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
    }

    #[test]
    fn accepts_values() {
        for s in [
            "{}",
            "[]",
            " {\"a\" : [1, -2.5e+3, 0, 0.0, true, false, null, \"x\\n\\u00e9\\uD83D\\uDE00\"]} ",
            "\"\"",
            "0",
            "-0.1E-9",
            "[[[[{}]]],{\"k\":{\"k\":[]}}]",
            "{\"a\":1,\"b\":{\"c\":\"d\"}}",
            "\t\r\n[1]\n",
            "\"héllo 😀\"",
        ] {
            assert!(is_one_value(s), "{s}");
            assert!(serde_accepts(s), "{s}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for s in [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{\"a\":}",
            "{1:2}",
            "[1 2]",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "\"abc",
            "\"a\\x\"",
            "\"a\\u12\"",
            "\"tab\there\"",
            "{} {}",
            "[1]]",
            "[}",
            "{]",
            "\"\\uD83D\"",
            "NaN",
        ] {
            assert!(!is_one_value(s), "{s:?}");
        }
    }

    #[test]
    fn numbers_beyond_f64_defer_to_serde_json() {
        for (text, in_range) in [
            ("1e307", true),
            ("-9.5e307", true),
            ("0.5e308", true),
            ("1e-400", true),
            ("123E305", true),
            // Left to serde_json (which accepts this one): the bound is conservative.
            ("1e308", false),
            ("1e400", false),
            ("1111111E11111111111", false),
            ("[0e999]", false),
            ("{\"a\":10e308}", false),
        ] {
            assert_eq!(is_one_value(text), in_range, "{text}");
            // What the checker accepts, a parse into a value accepts too.
            if in_range {
                assert!(serde_json::from_str::<serde_json::Value>(text).is_ok(), "{text}");
            }
        }
        let long = "9".repeat(400);
        assert!(!is_one_value(&long));
        assert!(serde_json::from_str::<serde_json::Value>(&long).is_err());
    }

    #[test]
    fn depth_limit_defers_to_serde_json() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(!is_one_value(&deep));
        let ok = "[".repeat(128) + &"]".repeat(128);
        assert!(is_one_value(&ok));
    }

    /// Every prefix, and every one-byte change, of a set of values: whenever the checker
    /// accepts, serde_json accepts too; and it accepts every value serde_json accepts
    /// that has no lone surrogate and is not too deep.
    #[test]
    fn agrees_with_serde_json_on_mutations() {
        let seeds = [
            "{\"location\":\"Paris\",\"unit\":\"c\",\"days\":[1,2,3],\"opts\":{\"a\":null,\"b\":true}}",
            "[\"\\\"q\\\"\",\"\\\\\",\"\\/\",\"\\b\\f\\n\\r\\t\",\"\\u0000\",\"\\uD83D\\uDE00\",-1.5e-7,0]",
            " { \"k\" : [ { } , [ ] , \"v\" ] } ",
        ];
        let alphabet = b"{}[]\":,\\ 0123456789-+.eEtrufalsn\tu\x1fD8";
        for seed in seeds {
            let bytes = seed.as_bytes();
            for end in 0..=bytes.len() {
                let Ok(prefix) = std::str::from_utf8(&bytes[..end]) else {
                    continue;
                };
                check(prefix);
            }
            for at in 0..bytes.len() {
                for &c in alphabet {
                    let mut m = bytes.to_vec();
                    m[at] = c;
                    if let Ok(s) = std::str::from_utf8(&m) {
                        check(s);
                    }
                    let mut m = bytes.to_vec();
                    m.insert(at, c);
                    if let Ok(s) = std::str::from_utf8(&m) {
                        check(s);
                    }
                    let mut m = bytes.to_vec();
                    m.remove(at);
                    if let Ok(s) = std::str::from_utf8(&m) {
                        check(s);
                    }
                }
            }
        }
    }

    fn check(s: &str) {
        let ours = is_one_value(s);
        let serde = serde_accepts(s);
        if ours {
            assert!(serde, "accepted what serde_json refuses: {s:?}");
        }
        let lone_surrogate = s.contains("\\uD") || s.contains("\\ud");
        if serde && !lone_surrogate {
            assert!(ours, "refused what serde_json accepts: {s:?}");
        }
    }
}
