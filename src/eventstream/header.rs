//! Header values, and validation, iteration and encoding of a frame's headers section.
//!
//! ```text
//! +-------------+------------------+-----------+----------------------------------+
//! | name length |  name (UTF-8)    | type byte | value (fixed size, or u16 length |
//! |    u8       |  1..=255 bytes   |   0..=9   |  + bytes for types 6 and 7)      |
//! +-------------+------------------+-----------+----------------------------------+
//! ```

use bytes::BufMut;

use super::error::EventStreamError;

/// Wire type byte of each header value type.
mod type_byte {
    pub(super) const BOOL_TRUE: u8 = 0;
    pub(super) const BOOL_FALSE: u8 = 1;
    pub(super) const BYTE: u8 = 2;
    pub(super) const INT16: u8 = 3;
    pub(super) const INT32: u8 = 4;
    pub(super) const INT64: u8 = 5;
    pub(super) const BYTE_ARRAY: u8 = 6;
    pub(super) const STRING: u8 = 7;
    pub(super) const TIMESTAMP: u8 = 8;
    pub(super) const UUID: u8 = 9;
}

/// A header value, borrowed from the frame it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderValue<'a> {
    /// Type 0 (`true`) or 1 (`false`); no value bytes on the wire.
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: big-endian `i16`.
    Int16(i16),
    /// Type 4: big-endian `i32`.
    Int32(i32),
    /// Type 5: big-endian `i64`.
    Int64(i64),
    /// Type 6: `u16` length, then the bytes.
    ByteArray(&'a [u8]),
    /// Type 7: `u16` length, then UTF-8.
    String(&'a str),
    /// Type 8: big-endian `i64` milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl<'a> HeaderValue<'a> {
    /// The wire type byte of this value (0 to 9).
    pub fn type_byte(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => type_byte::BOOL_TRUE,
            HeaderValue::Bool(false) => type_byte::BOOL_FALSE,
            HeaderValue::Byte(_) => type_byte::BYTE,
            HeaderValue::Int16(_) => type_byte::INT16,
            HeaderValue::Int32(_) => type_byte::INT32,
            HeaderValue::Int64(_) => type_byte::INT64,
            HeaderValue::ByteArray(_) => type_byte::BYTE_ARRAY,
            HeaderValue::String(_) => type_byte::STRING,
            HeaderValue::Timestamp(_) => type_byte::TIMESTAMP,
            HeaderValue::Uuid(_) => type_byte::UUID,
        }
    }

    /// A short name of the value's type, as the AWS SDKs spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            HeaderValue::Bool(_) => "bool",
            HeaderValue::Byte(_) => "byte",
            HeaderValue::Int16(_) => "short",
            HeaderValue::Int32(_) => "integer",
            HeaderValue::Int64(_) => "long",
            HeaderValue::ByteArray(_) => "byte_array",
            HeaderValue::String(_) => "string",
            HeaderValue::Timestamp(_) => "timestamp",
            HeaderValue::Uuid(_) => "uuid",
        }
    }

    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Bytes this value takes on the wire after the type byte.
    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            HeaderValue::Bool(_) => 0,
            HeaderValue::Byte(_) => 1,
            HeaderValue::Int16(_) => 2,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) | HeaderValue::Timestamp(_) => 8,
            HeaderValue::ByteArray(b) => 2 + b.len(),
            HeaderValue::String(s) => 2 + s.len(),
            HeaderValue::Uuid(_) => 16,
        }
    }
}

/// Checks one header name and value for encoding.
pub(crate) fn check_encodable(name: &str, value: &HeaderValue<'_>) -> Result<(), EventStreamError> {
    if name.is_empty() || name.len() > usize::from(u8::MAX) {
        return Err(EventStreamError::HeaderNameTooLong { len: name.len() });
    }
    let len = match value {
        HeaderValue::ByteArray(b) => b.len(),
        HeaderValue::String(s) => s.len(),
        _ => 0,
    };
    if len > usize::from(u16::MAX) {
        return Err(EventStreamError::HeaderValueTooLong { len });
    }
    Ok(())
}

/// Writes one header. The caller has checked it with [`check_encodable`].
pub(crate) fn write_header(dst: &mut impl BufMut, name: &str, value: &HeaderValue<'_>) {
    // Checked by `check_encodable`: 1..=255 bytes.
    dst.put_u8(name.len() as u8);
    dst.put_slice(name.as_bytes());
    dst.put_u8(value.type_byte());
    match *value {
        HeaderValue::Bool(_) => {}
        HeaderValue::Byte(v) => dst.put_i8(v),
        HeaderValue::Int16(v) => dst.put_i16(v),
        HeaderValue::Int32(v) => dst.put_i32(v),
        HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => dst.put_i64(v),
        HeaderValue::ByteArray(b) => {
            // Checked by `check_encodable`: at most u16::MAX.
            dst.put_u16(b.len() as u16);
            dst.put_slice(b);
        }
        HeaderValue::String(s) => {
            // Checked by `check_encodable`: at most u16::MAX.
            dst.put_u16(s.len() as u16);
            dst.put_slice(s.as_bytes());
        }
        HeaderValue::Uuid(u) => dst.put_slice(&u),
    }
}

/// Validates a whole headers section: every name length in range and UTF-8, every type
/// byte known, every value inside the section, every string value UTF-8.
///
/// `base` is the offset of the section in the frame (12), used only for error offsets.
/// This runs once per decoded frame; afterwards [`Headers`] iterates without checks
/// that could fail.
///
/// Two fast paths, which can only accept, never reject. First, the three headers of
/// every event frame of a Converse stream (see [`is_common_event_section`]). Then,
/// when every byte of the section is ASCII (true of what AWS services send: short
/// names, short ASCII values), every name and string value is valid UTF-8 without
/// looking at it again, so one word-at-a-time ASCII pass and a walk over the lengths
/// and type bytes decide. Anything else, and every error, goes through the detailed
/// walk, which names the offending header.
#[inline]
pub(crate) fn validate(section: &[u8], base: usize) -> Result<(), EventStreamError> {
    if is_common_event_section(section) {
        return Ok(());
    }
    validate_other(section, base)
}

/// [`validate`] for sections other than the common event headers.
#[inline(never)]
fn validate_other(section: &[u8], base: usize) -> Result<(), EventStreamError> {
    if is_ascii(section) && ascii_structure_ok(section) {
        return Ok(());
    }
    validate_detailed(section, base)
}

/// The headers of a Bedrock (and most AWS) event frame start with this, the event
/// type's name, string type byte and the high byte of its length...
const EVENT_HEAD: &[u8] = b"\x0b:event-type\x07\x00";
/// ...and, after the event type's value, end with this.
const EVENT_TAIL: &[u8] = b"\x0d:content-type\x07\x00\x10application/json\x0d:message-type\x07\x00\x05event";

/// Whether `section` is exactly `:event-type` (an ASCII string),
/// `:content-type: application/json`, `:message-type: event`: every event frame of a
/// Converse stream. Two comparisons with constants and an ASCII check of the event
/// type, instead of a walk whose every step waits on the length before it.
#[inline]
fn is_common_event_section(section: &[u8]) -> bool {
    let Some((&len, rest)) = section.strip_prefix(EVENT_HEAD).and_then(<[u8]>::split_first) else {
        return false;
    };
    match split_at_checked(rest, usize::from(len)) {
        Some((event_type, tail)) => equal(tail, EVENT_TAIL) && is_ascii(event_type),
        None => false,
    }
}

/// `a == b`, eight bytes at a time and inline. With `b` a constant this unrolls into a
/// few loads and XORs, where `==` on slices calls `bcmp`.
#[inline(always)]
fn equal(a: &[u8], b: &[u8]) -> bool {
    let (Some(a_last), Some(b_last)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) else {
        return a == b;
    };
    if a.len() != b.len() {
        return false;
    }
    let word = |w: &[u8]| w.first_chunk::<8>().map_or(0, |w| u64::from_ne_bytes(*w));
    // The last eight bytes cover what `chunks_exact` leaves over.
    let mut diff = u64::from_ne_bytes(*a_last) ^ u64::from_ne_bytes(*b_last);
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        diff |= word(x) ^ word(y);
    }
    diff == 0
}

/// `<[u8]>::is_ascii`, a word at a time: for sections of a hundred bytes or so this is
/// several times fewer instructions than the standard library's version.
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.iter().all(u8::is_ascii);
    };
    // The last eight bytes cover what `chunks_exact` leaves over.
    let mut seen = u64::from_ne_bytes(*last);
    for word in bytes.chunks_exact(8) {
        // `chunks_exact(8)` yields 8-byte slices, so this never takes the `0`.
        seen |= word.first_chunk::<8>().map_or(0, |w| u64::from_ne_bytes(*w));
    }
    seen & 0x8080_8080_8080_8080 == 0
}

/// The layout checks of [`validate`] for a section already known to be ASCII: names
/// of 1 to 255 bytes followed by a type byte, known types, values inside the section.
/// `false` sends the section through [`validate_detailed`] for a precise error.
#[inline]
fn ascii_structure_ok(section: &[u8]) -> bool {
    let mut rest = section;
    while let Some((&name_len, after_len)) = rest.split_first() {
        let name_len = usize::from(name_len);
        let Some((&ty, value)) = after_len.get(name_len..).and_then(<[u8]>::split_first) else {
            return false;
        };
        let value_len = match ty {
            type_byte::BOOL_TRUE | type_byte::BOOL_FALSE => 0,
            type_byte::BYTE => 1,
            type_byte::INT16 => 2,
            type_byte::INT32 => 4,
            type_byte::INT64 | type_byte::TIMESTAMP => 8,
            type_byte::UUID => 16,
            type_byte::BYTE_ARRAY | type_byte::STRING => match value.first_chunk::<2>() {
                Some(len) => 2 + usize::from(u16::from_be_bytes(*len)),
                None => return false,
            },
            _ => return false,
        };
        match value.get(value_len..) {
            Some(next) if name_len != 0 => rest = next,
            _ => return false,
        }
    }
    true
}

/// [`validate`] header by header, with the offset of whatever is wrong.
fn validate_detailed(section: &[u8], base: usize) -> Result<(), EventStreamError> {
    let mut pos = 0usize;
    while pos < section.len() {
        let name_len = section[pos];
        let name_start = pos + 1;
        let name_end = name_start + usize::from(name_len);
        // The type byte must follow the name inside the section too.
        if name_len == 0 || name_end >= section.len() {
            return Err(EventStreamError::InvalidHeaderNameLength {
                len: name_len,
                offset: base + pos,
            });
        }
        let name = &section[name_start..name_end];
        if !name.is_ascii() && std::str::from_utf8(name).is_err() {
            return Err(EventStreamError::InvalidUtf8 {
                what: "name",
                offset: base + name_start,
            });
        }
        let ty = section[name_end];
        let value_start = name_end + 1;
        let available = section.len() - value_start;
        let fixed = match ty {
            type_byte::BOOL_TRUE | type_byte::BOOL_FALSE => 0,
            type_byte::BYTE => 1,
            type_byte::INT16 => 2,
            type_byte::INT32 => 4,
            type_byte::INT64 | type_byte::TIMESTAMP => 8,
            type_byte::UUID => 16,
            type_byte::BYTE_ARRAY | type_byte::STRING => {
                let Some(len_bytes) = section.get(value_start..value_start + 2) else {
                    return Err(EventStreamError::HeaderValueOverrun {
                        offset: base + value_start,
                        needed: 2,
                        available,
                    });
                };
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                let data_start = value_start + 2;
                let Some(data) = section.get(data_start..data_start + len) else {
                    return Err(EventStreamError::HeaderValueOverrun {
                        offset: base + value_start,
                        needed: 2 + len,
                        available,
                    });
                };
                if ty == type_byte::STRING && !data.is_ascii() && std::str::from_utf8(data).is_err() {
                    return Err(EventStreamError::InvalidUtf8 {
                        what: "string value",
                        offset: base + data_start,
                    });
                }
                pos = data_start + len;
                continue;
            }
            other => return Err(EventStreamError::InvalidHeaderType(other)),
        };
        if fixed > available {
            return Err(EventStreamError::HeaderValueOverrun {
                offset: base + value_start,
                needed: fixed,
                available,
            });
        }
        pos = value_start + fixed;
    }
    Ok(())
}

/// Iterator over a validated headers section, in wire order.
///
/// Created by [`Message::headers`](super::Message::headers) and
/// [`Frame::headers`](super::Frame::headers). Yields `(name, value)`; both borrow
/// from the frame.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Headers<'a> {
    /// Iterates over a section that [`validate`] accepted.
    pub(crate) fn new(section: &'a [u8]) -> Self {
        Headers { rest: section }
    }

    /// Parses the next header. The section was validated when the frame was decoded, so
    /// `None` here only means the end; a section that somehow fails a check simply ends
    /// iteration instead of panicking.
    fn parse_next(&mut self) -> Option<(&'a str, HeaderValue<'a>)> {
        let rest = self.rest;
        let (&name_len, rest) = rest.split_first()?;
        let (name, rest) = split_at_checked(rest, usize::from(name_len))?;
        let name = std::str::from_utf8(name).ok()?;
        let (&ty, rest) = rest.split_first()?;
        let (value, rest) = match ty {
            type_byte::BOOL_TRUE => (HeaderValue::Bool(true), rest),
            type_byte::BOOL_FALSE => (HeaderValue::Bool(false), rest),
            type_byte::BYTE => {
                let (v, rest) = take_array::<1>(rest)?;
                (HeaderValue::Byte(i8::from_be_bytes(v)), rest)
            }
            type_byte::INT16 => {
                let (v, rest) = take_array::<2>(rest)?;
                (HeaderValue::Int16(i16::from_be_bytes(v)), rest)
            }
            type_byte::INT32 => {
                let (v, rest) = take_array::<4>(rest)?;
                (HeaderValue::Int32(i32::from_be_bytes(v)), rest)
            }
            type_byte::INT64 => {
                let (v, rest) = take_array::<8>(rest)?;
                (HeaderValue::Int64(i64::from_be_bytes(v)), rest)
            }
            type_byte::TIMESTAMP => {
                let (v, rest) = take_array::<8>(rest)?;
                (HeaderValue::Timestamp(i64::from_be_bytes(v)), rest)
            }
            type_byte::UUID => {
                let (v, rest) = take_array::<16>(rest)?;
                (HeaderValue::Uuid(v), rest)
            }
            type_byte::BYTE_ARRAY | type_byte::STRING => {
                let (len, rest) = take_array::<2>(rest)?;
                let (data, rest) = split_at_checked(rest, usize::from(u16::from_be_bytes(len)))?;
                if ty == type_byte::STRING {
                    (HeaderValue::String(std::str::from_utf8(data).ok()?), rest)
                } else {
                    (HeaderValue::ByteArray(data), rest)
                }
            }
            _ => return None,
        };
        self.rest = rest;
        Some((name, value))
    }

    /// Finds the first header with this name.
    pub fn get(mut self, name: &str) -> Option<HeaderValue<'a>> {
        self.find_map(|(n, v)| (n == name).then_some(v))
    }

    /// The string value of the first header with this name, if it is a string.
    pub fn get_str(self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(|v| v.as_str())
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, HeaderValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.parse_next();
        if item.is_none() {
            self.rest = &[];
        }
        item
    }
}

impl std::iter::FusedIterator for Headers<'_> {}

#[inline]
fn split_at_checked(bytes: &[u8], mid: usize) -> Option<(&[u8], &[u8])> {
    (mid <= bytes.len()).then(|| bytes.split_at(mid))
}

#[inline]
fn take_array<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = split_at_checked(bytes, N)?;
    Some((head.try_into().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(headers: &[(&str, HeaderValue<'_>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in headers {
            check_encodable(n, v).unwrap();
            write_header(&mut out, n, v);
        }
        out
    }

    #[test]
    fn all_types_round_trip() {
        let headers = [
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-49)),
            ("s", HeaderValue::Int16(-2)),
            ("i", HeaderValue::Int32(40972)),
            ("l", HeaderValue::Int64(-1)),
            ("a", HeaderValue::ByteArray(b"\x00\xff")),
            ("str", HeaderValue::String("héllo")),
            ("ts", HeaderValue::Timestamp(8675309)),
            ("u", HeaderValue::Uuid([7; 16])),
        ];
        let bytes = encode(&headers);
        let len: usize = headers.iter().map(|(n, v)| 2 + n.len() + v.encoded_len()).sum();
        assert_eq!(bytes.len(), len);
        validate(&bytes, 12).unwrap();
        let decoded: Vec<_> = Headers::new(&bytes).collect();
        assert_eq!(decoded, headers);
        assert_eq!(Headers::new(&bytes).get_str("str"), Some("héllo"));
        assert_eq!(Headers::new(&bytes).get("nope"), None);
    }

    #[test]
    fn rejects_overruns_and_bad_types() {
        let bytes = encode(&[("name", HeaderValue::String("value"))]);
        for cut in 1..bytes.len() {
            assert!(validate(&bytes[..cut], 0).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[5] = 10;
        assert!(matches!(
            validate(&bad, 0),
            Err(EventStreamError::InvalidHeaderType(10))
        ));
        assert!(matches!(
            validate(&[0, 0], 0),
            Err(EventStreamError::InvalidHeaderNameLength { len: 0, .. })
        ));
        let mut bad_utf8 = bytes;
        bad_utf8[8] = 0xff;
        assert!(matches!(
            validate(&bad_utf8, 0),
            Err(EventStreamError::InvalidUtf8 {
                what: "string value",
                ..
            })
        ));
    }

    #[test]
    fn word_at_a_time_ascii_check() {
        for len in 0..40 {
            let mut bytes = vec![b'a'; len];
            assert!(is_ascii(&bytes));
            for at in 0..len {
                bytes[at] = 0x80;
                assert!(!is_ascii(&bytes), "len {len}, non-ASCII at {at}");
                bytes[at] = 0x7f;
                assert!(is_ascii(&bytes));
            }
        }
    }

    #[test]
    fn word_at_a_time_equality() {
        let a: Vec<u8> = (0..40).collect();
        for len in 0..a.len() {
            assert!(equal(&a[..len], &a[..len]));
            assert!(!equal(&a[..len], &a[1..=len]) || len == 0);
            for at in 0..len {
                let mut b = a[..len].to_vec();
                b[at] ^= 0x40;
                assert!(!equal(&a[..len], &b), "len {len}, at {at}");
            }
            if len > 0 {
                assert!(!equal(&a[..len], &a[..len - 1]));
            }
        }
    }

    #[test]
    fn fast_path_agrees_with_detailed_walk() {
        let section = encode(&[
            (":event-type", HeaderValue::String("contentBlockDelta")),
            (":content-type", HeaderValue::String("application/json")),
            ("n", HeaderValue::Int32(7)),
            ("u", HeaderValue::Uuid([1; 16])),
            ("b", HeaderValue::Bool(false)),
        ]);
        let event = encode(&[
            (":event-type", HeaderValue::String("contentBlockDelta")),
            (":content-type", HeaderValue::String("application/json")),
            (":message-type", HeaderValue::String("event")),
        ]);
        assert!(is_common_event_section(&event));
        assert!(!is_common_event_section(&section));
        for section in [section, event] {
            check_fast_paths_agree(&section);
        }
    }

    fn check_fast_paths_agree(section: &[u8]) {
        // Every single-byte change and every cut: the fast paths may only accept what
        // the detailed walk accepts.
        for at in 0..section.len() {
            for byte in [0u8, 1, 2, 6, 7, 9, 10, 0x3a, 0x7f, 0x80, 0xff] {
                let mut bad = section.to_vec();
                bad[at] = byte;
                for cut in [bad.len(), at + 1] {
                    let bad = &bad[..cut];
                    assert_eq!(
                        validate(bad, 0).is_ok(),
                        validate_detailed(bad, 0).is_ok(),
                        "byte {byte:#x} at {at}, cut {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn encoding_limits() {
        assert!(check_encodable("", &HeaderValue::Bool(true)).is_err());
        assert!(check_encodable(&"x".repeat(256), &HeaderValue::Bool(true)).is_err());
        let big = vec![0u8; 65536];
        assert!(check_encodable("x", &HeaderValue::ByteArray(&big)).is_err());
        assert!(check_encodable("x", &HeaderValue::ByteArray(&big[1..])).is_ok());
    }
}
