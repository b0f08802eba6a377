//! A check that a text is exactly one JSON value, with no allocation and no tree: the
//! test the assembler runs on a tool input.
//!
//! [`ValueCheck`] is resumable: the assembler feeds it each tool-input fragment as it
//! is appended (fragments are cut anywhere: inside a string, right after a backslash,
//! inside a number or a `\uXXXX` escape), so at `contentBlockStop` the answer is
//! already there and the input is not walked a second time.
//!
//! serde_json's `IgnoredAny` builds no tree but keeps its nesting stack in a `Vec`, one
//! allocation per tool call. This checker keeps the stack in 128 bits (one bit per open
//! container, object or array), so it handles 128 levels, serde_json's own recursion
//! limit. Like the fast path in `json.rs`, it only has to be right about what it
//! accepts: when it says no (a deeper document, a lone surrogate escape, a number
//! that may be beyond `f64`'s range, or real garbage), the caller asks serde_json,
//! which gives the same answer or the error.

use super::json::special_at_short;

/// Whether `text` is one JSON value with optional whitespace around it. `false` may
/// also mean "not sure" (nesting deeper than 128, a lone surrogate escape): ask
/// serde_json then.
pub(crate) fn is_one_value(text: &str) -> bool {
    let mut check = ValueCheck::new();
    check.feed(text);
    check.accepts()
}

/// The most containers open at once; bit `n` of `stack` says whether container `n` is
/// an object.
const MAX_DEPTH: u8 = 128;

/// Four hex digits, as a code unit.
#[inline(always)]
fn hex4(digits: Option<&[u8]>) -> Option<u32> {
    digits?
        .iter()
        .try_fold(0u32, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
}

/// The largest decimal exponent tracked (only whether a bound is above 308 matters).
const EXPONENT_CAP: u64 = 1 << 40;

/// Where the check is, between two bytes of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value is next (at the start, after `:`, after `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a member name or `}`.
    ObjectFirst,
    /// After `,` in an object: a member name.
    Key,
    /// After a member name: `:`.
    Colon,
    /// After a value: `,`, a closing bracket, or (at the top level) only whitespace.
    After,
    /// Inside a string (a member name when `in_key`).
    Str,
    /// After a backslash in a string.
    Escape,
    /// Inside the four hex digits of a `\u` escape.
    Hex,
    /// After a high surrogate escape: the `\` of its low half.
    PairBackslash,
    /// The `u` of the low half.
    PairU,
    /// Inside `true`, `false` or `null` (the bytes still to come in `literal`).
    Literal,
    /// After a number's `-`.
    Minus,
    /// After a number's leading `0`.
    Zero,
    /// In a number's integer digits.
    Int,
    /// After a number's `.`.
    Dot,
    /// In a number's fraction digits.
    Frac,
    /// After a number's `e` or `E`.
    ExpStart,
    /// After the exponent's sign.
    ExpSign,
    /// In the exponent's digits.
    Exp,
    /// Not one value (or not sure): stays so.
    Fail,
}

/// A resumable check that a text is one JSON value: [`feed`](Self::feed) it the text
/// in pieces of any size (each a `&str`, so cut on character boundaries), then ask
/// [`accepts`](Self::accepts). Feeding a text in pieces gives the same answer as
/// feeding it whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueCheck {
    state: State,
    /// Whether the string being read is a member name.
    in_key: bool,
    /// Whether the hex digits being read are the low half of a surrogate pair.
    low_half: bool,
    /// Hex digits still to come in a `\u` escape.
    hex_left: u8,
    /// Open containers.
    depth: u8,
    /// Whether the number being read has a negative exponent.
    exp_negative: bool,
    /// The code unit of the `\u` escape being read.
    unit: u32,
    /// The integer digits of the number being read (a lone `0` counts as none).
    int_digits: u64,
    /// The magnitude of the exponent of the number being read, capped.
    exponent: u64,
    /// What is left of the literal being read.
    literal: &'static [u8],
    /// Bit `n`: whether open container `n` is an object.
    /// (Two words rather than a `u128`: a `u128` would align the assembler's
    /// blocks to 16 bytes.)
    stack: [u64; 2],
    /// How many bytes of the text [`catch_up`](Self::catch_up) has read.
    fed: usize,
}

impl Default for ValueCheck {
    fn default() -> Self {
        ValueCheck::new()
    }
}

// ===== impl ValueCheck =====

impl ValueCheck {
    /// A check with nothing read yet.
    pub(crate) const fn new() -> ValueCheck {
        ValueCheck {
            state: State::Value,
            in_key: false,
            low_half: false,
            hex_left: 0,
            depth: 0,
            exp_negative: false,
            unit: 0,
            int_digits: 0,
            exponent: 0,
            literal: b"",
            stack: [0; 2],
            fed: 0,
        }
    }

    /// Reads what `text` (the same text, grown since the last call) has beyond what
    /// was read, once that is at least `batch` bytes: a KiB or so at a time
    /// cost less than each fragment on its own (fewer resumptions, fewer tokens cut
    /// by a piece's end), and leave little for [`accepts_all`](Self::accepts_all).
    #[inline]
    pub(crate) fn catch_up(&mut self, text: &str, batch: usize) {
        if text.len().saturating_sub(self.fed) >= batch {
            self.feed(text.get(self.fed..).unwrap_or_default());
            self.fed = text.len();
        }
    }

    /// Whether all of `text` (whose first bytes [`catch_up`](Self::catch_up) read) is
    /// one JSON value: the rest is read on a copy, so the check is left as it was.
    pub(crate) fn accepts_all(&self, text: &str) -> bool {
        match text.get(self.fed..) {
            Some("") => self.accepts(),
            Some(rest) => {
                let mut check = self.clone();
                check.feed(rest);
                check.accepts()
            }
            None => false,
        }
    }

    /// Whether the text fed so far is one JSON value with optional whitespace around
    /// it. `false` may also mean "not sure" (see the module docs).
    pub(crate) fn accepts(&self) -> bool {
        self.depth == 0
            && match self.state {
                State::After => true,
                State::Zero | State::Int | State::Frac | State::Exp => self.number_in_range(),
                _ => false,
            }
    }

    /// Reads the next piece of the text.
    pub(crate) fn feed(&mut self, text: &str) {
        let b = text.as_bytes();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            match self.state {
                State::Str => {
                    i = self.string(b, i);
                    continue;
                }
                State::Int | State::Frac | State::Exp if c.is_ascii_digit() => {
                    let run = b.get(i..).unwrap_or_default();
                    let n = run.iter().take_while(|d| d.is_ascii_digit()).count();
                    self.digits(run.get(..n).unwrap_or_default());
                    i += n;
                    continue;
                }
                State::Fail => return,
                State::Escape | State::Hex | State::PairBackslash | State::PairU => self.escape(c),
                State::Literal => self.literal(c),
                State::Value | State::ArrayFirst => {
                    self.value_start(c);
                    i += 1;
                    // A literal whole in the piece is read at once.
                    let rest = self.literal;
                    if self.state == State::Literal && b.get(i..i + rest.len()) == Some(rest) {
                        i += rest.len();
                        self.state = State::After;
                    }
                    continue;
                }
                // Compact text: a member name right after a comma.
                State::After if c == b',' && b.get(i + 1) == Some(&b'"') && self.in_object() => {
                    self.in_key = true;
                    self.state = State::Str;
                    i += 2;
                    continue;
                }
                State::Minus
                | State::Zero
                | State::Int
                | State::Dot
                | State::Frac
                | State::ExpStart
                | State::ExpSign
                | State::Exp => {
                    if !self.number(c) {
                        // The number ended before `c`: read `c` again, after it.
                        continue;
                    }
                }
                State::ObjectFirst | State::Key | State::Colon | State::After => self.punctuation(c),
            }
            i += 1;
        }
    }

    /// Reads string content from `b[i..]` (in `Str`) and returns where it stopped: at
    /// the end of the piece, or after the closing quote (after the `:` too when a
    /// member name is followed by one). Escapes that are whole in the piece are
    /// stepped over here; one cut by the piece's end, or a surrogate, goes through
    /// the escape states byte by byte.
    #[inline(always)]
    fn string(&mut self, b: &[u8], mut i: usize) -> usize {
        loop {
            // The next quote, backslash or control character, sixteen bytes at a time:
            // most of a tool input is inside strings.
            i += special_at_short(b.get(i..).unwrap_or_default());
            let Some(&c) = b.get(i) else { return i };
            match c {
                // Compact text (`"name":"value","name":...`) stays in this loop: a
                // string value right after a name's colon, and a name right after a
                // string member's comma.
                b'"' if self.in_key => match b.get(i + 1..i + 3) {
                    Some([b':', b'"']) => {
                        self.in_key = false;
                        i += 3;
                    }
                    Some([b':', _]) => {
                        self.state = State::Value;
                        return i + 2;
                    }
                    _ => {
                        self.state = State::Colon;
                        return i + 1;
                    }
                },
                b'"' => match b.get(i + 1..i + 3) {
                    Some([b',', b'"']) if self.in_object() => {
                        self.in_key = true;
                        i += 3;
                    }
                    _ => {
                        self.state = State::After;
                        return i + 1;
                    }
                },
                b'\\' => match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => match hex4(b.get(i + 2..i + 6)) {
                        Some(unit) if !(0xD800..=0xDFFF).contains(&unit) => i += 6,
                        _ => {
                            self.state = State::Escape;
                            return i + 1;
                        }
                    },
                    _ => {
                        self.state = State::Escape;
                        return i + 1;
                    }
                },
                _ => {
                    self.state = State::Fail;
                    return i;
                }
            }
        }
    }

    /// A byte where a value may start (in `Value` or `ArrayFirst`).
    fn value_start(&mut self, c: u8) {
        self.state = match c {
            b' ' | b'\t' | b'\n' | b'\r' => return,
            b']' if self.state == State::ArrayFirst => return self.pop(),
            b'{' => return self.push(true),
            b'[' => return self.push(false),
            b'"' => {
                self.in_key = false;
                State::Str
            }
            b't' => self.start_literal(b"rue"),
            b'f' => self.start_literal(b"alse"),
            b'n' => self.start_literal(b"ull"),
            b'-' => self.start_number(State::Minus, 0),
            b'0' => self.start_number(State::Zero, 0),
            b'1'..=b'9' => self.start_number(State::Int, 1),
            _ => State::Fail,
        };
    }

    /// A byte around member names and values (in `ObjectFirst`, `Key`, `Colon` or
    /// `After`).
    fn punctuation(&mut self, c: u8) {
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            return;
        }
        self.state = match (self.state, c) {
            (State::ObjectFirst, b'}') => return self.pop(),
            (State::ObjectFirst | State::Key, b'"') => {
                self.in_key = true;
                State::Str
            }
            (State::Colon, b':') => State::Value,
            (State::After, _) if self.depth == 0 => State::Fail,
            (State::After, b',') if self.in_object() => State::Key,
            (State::After, b',') => State::Value,
            (State::After, b'}') if self.in_object() => return self.pop(),
            (State::After, b']') if !self.in_object() => return self.pop(),
            _ => State::Fail,
        };
    }

    /// A byte of an escape (in `Escape`, `Hex`, `PairBackslash` or `PairU`).
    fn escape(&mut self, c: u8) {
        self.state = match (self.state, c) {
            (State::Escape, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => State::Str,
            (State::Escape, b'u') => self.start_hex(false),
            (State::PairBackslash, b'\\') => State::PairU,
            (State::PairU, b'u') => self.start_hex(true),
            (State::Hex, _) => match char::from(c).to_digit(16) {
                Some(d) => {
                    self.unit = self.unit * 16 + d;
                    self.hex_left -= 1;
                    if self.hex_left > 0 {
                        return;
                    }
                    match (self.low_half, self.unit) {
                        (true, 0xDC00..=0xDFFF) => State::Str,
                        (true, _) => State::Fail,
                        // A high surrogate must be followed by an escaped low one.
                        (false, 0xD800..=0xDBFF) => State::PairBackslash,
                        // A lone low surrogate: serde_json decides.
                        (false, 0xDC00..=0xDFFF) => State::Fail,
                        (false, _) => State::Str,
                    }
                }
                None => State::Fail,
            },
            _ => State::Fail,
        };
    }

    fn start_hex(&mut self, low_half: bool) -> State {
        self.low_half = low_half;
        self.hex_left = 4;
        self.unit = 0;
        State::Hex
    }

    fn start_literal(&mut self, rest: &'static [u8]) -> State {
        self.literal = rest;
        State::Literal
    }

    /// A byte of `true`, `false` or `null`.
    fn literal(&mut self, c: u8) {
        match self.literal.split_first() {
            Some((&want, rest)) if want == c => {
                self.literal = rest;
                if rest.is_empty() {
                    self.state = State::After;
                }
            }
            _ => self.state = State::Fail,
        }
    }

    fn start_number(&mut self, state: State, int_digits: u64) -> State {
        self.int_digits = int_digits;
        self.exponent = 0;
        self.exp_negative = false;
        state
    }

    /// A run of digits in `Int`, `Frac` or `Exp`.
    fn digits(&mut self, run: &[u8]) {
        match self.state {
            // A run is at most the text's length, far below u64::MAX.
            State::Int => self.int_digits = self.int_digits.saturating_add(run.len() as u64),
            State::Exp => {
                self.exponent = run.iter().fold(self.exponent, |e, &d| {
                    e.saturating_mul(10)
                        .saturating_add(u64::from(d - b'0'))
                        .min(EXPONENT_CAP)
                });
            }
            _ => {}
        }
    }

    /// A byte in a number's states. `false` when the number ended before `c` (which is
    /// then still to be read).
    fn number(&mut self, c: u8) -> bool {
        self.state = match (self.state, c) {
            (State::Minus, b'0') => State::Zero,
            (State::Minus, b'1'..=b'9') => {
                self.int_digits = 1;
                State::Int
            }
            (State::Zero | State::Int, b'.') => State::Dot,
            (State::Dot | State::Frac, b'0'..=b'9') => State::Frac,
            (State::Zero | State::Int | State::Frac, b'e' | b'E') => State::ExpStart,
            (State::ExpStart, b'+') => State::ExpSign,
            (State::ExpStart, b'-') => {
                self.exp_negative = true;
                State::ExpSign
            }
            (State::ExpStart | State::ExpSign, b'0'..=b'9') => {
                self.state = State::Exp;
                self.digits(&[c]);
                return true;
            }
            (State::Zero | State::Int | State::Frac | State::Exp, _) => {
                self.state = if self.number_in_range() {
                    State::After
                } else {
                    State::Fail
                };
                return false;
            }
            _ => State::Fail,
        };
        true
    }

    /// Whether the number just read is surely within `f64`'s range: below `10^B` with
    /// `B` = integer digits + exponent, `B` at most 308. serde_json's syntax check
    /// (`IgnoredAny`) accepts `1e400`, but a parse into a value refuses it, so for a
    /// larger bound the caller decides with that parse (see `check_json`).
    fn number_in_range(&self) -> bool {
        // Both are capped far below i64::MAX (the exponent at 2^40; the digits by the
        // text's length).
        let digits = i64::try_from(self.int_digits).unwrap_or(i64::MAX);
        let exponent = i64::try_from(self.exponent).unwrap_or(i64::MAX);
        let bound = if self.exp_negative {
            digits.saturating_sub(exponent)
        } else {
            digits.saturating_add(exponent)
        };
        bound <= 308
    }

    /// Opens a container (an object when `object`); `Fail` beyond [`MAX_DEPTH`].
    fn push(&mut self, object: bool) {
        if self.depth >= MAX_DEPTH {
            self.state = State::Fail;
            return;
        }
        if object {
            self.stack[usize::from(self.depth / 64)] |= 1u64 << (self.depth % 64);
        } else {
            self.stack[usize::from(self.depth / 64)] &= !(1u64 << (self.depth % 64));
        }
        self.depth += 1;
        self.state = if object {
            State::ObjectFirst
        } else {
            State::ArrayFirst
        };
    }

    /// Closes the innermost container (callers checked there is one).
    fn pop(&mut self) {
        self.depth -= 1;
        self.state = State::After;
    }

    /// Whether the innermost open container is an object (`false` at the top level).
    fn in_object(&self) -> bool {
        let Some(top) = self.depth.checked_sub(1) else {
            return false;
        };
        self.stack[usize::from(top / 64)] & (1u64 << (top % 64)) != 0
    }
}

#[cfg(test)]
mod tests;
