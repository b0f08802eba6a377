//! Reading a headers section: one validation per frame ([`validate`]), then iteration
//! without checks that could fail ([`Headers`]).

use super::kind::{find_str, is_common_event_section};
use super::scan::is_ascii;
use super::type_byte;
use super::value::{HeaderValue, ValueLen};
use crate::eventstream::error::DecodeError;

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
pub(crate) fn validate(section: &[u8], base: usize) -> Result<(), DecodeError> {
    if is_common_event_section(section) {
        return Ok(());
    }
    validate_other(section, base)
}

/// [`validate`] for sections other than the common event headers.
#[inline(never)]
fn validate_other(section: &[u8], base: usize) -> Result<(), DecodeError> {
    if is_ascii(section) && ascii_structure_ok(section) {
        return Ok(());
    }
    validate_detailed(section, base)
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
        let value_len = match ValueLen::of(ty) {
            Some(ValueLen::Fixed(len)) => len,
            Some(ValueLen::Prefixed) => match value.first_chunk::<2>() {
                Some(len) => 2 + usize::from(u16::from_be_bytes(*len)),
                None => return false,
            },
            None => return false,
        };
        match value.get(value_len..) {
            Some(next) if name_len != 0 => rest = next,
            _ => return false,
        }
    }
    true
}

/// [`validate`] header by header, with the offset of whatever is wrong.
pub(super) fn validate_detailed(section: &[u8], base: usize) -> Result<(), DecodeError> {
    let mut pos = 0usize;
    while pos < section.len() {
        let name_len = section[pos];
        let name_start = pos + 1;
        let name_end = name_start + usize::from(name_len);
        // The type byte must follow the name inside the section too.
        if name_len == 0 || name_end >= section.len() {
            return Err(DecodeError::InvalidHeaderNameLength {
                len: name_len,
                offset: base + pos,
            });
        }
        let name = &section[name_start..name_end];
        if !name.is_ascii() && std::str::from_utf8(name).is_err() {
            return Err(DecodeError::InvalidUtf8 {
                what: "name",
                offset: base + name_start,
            });
        }
        let ty = section[name_end];
        let value_start = name_end + 1;
        let available = section.len() - value_start;
        let fixed = match ValueLen::of(ty) {
            Some(ValueLen::Fixed(len)) => len,
            Some(ValueLen::Prefixed) => {
                let Some(len_bytes) = section.get(value_start..value_start + 2) else {
                    return Err(DecodeError::HeaderValueOverrun {
                        offset: base + value_start,
                        needed: 2,
                        available,
                    });
                };
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                let data_start = value_start + 2;
                let Some(data) = section.get(data_start..data_start + len) else {
                    return Err(DecodeError::HeaderValueOverrun {
                        offset: base + value_start,
                        needed: 2 + len,
                        available,
                    });
                };
                if ty == type_byte::STRING && !data.is_ascii() && std::str::from_utf8(data).is_err() {
                    return Err(DecodeError::InvalidUtf8 {
                        what: "string value",
                        offset: base + data_start,
                    });
                }
                pos = data_start + len;
                continue;
            }
            None => return Err(DecodeError::InvalidHeaderType(ty)),
        };
        if fixed > available {
            return Err(DecodeError::HeaderValueOverrun {
                offset: base + value_start,
                needed: fixed,
                available,
            });
        }
        pos = value_start + fixed;
    }
    Ok(())
}

/// Iterator over the raw headers of a validated section: `(name, type byte, value
/// bytes)`, the value with its length field for types 6 and 7. Ends at the first
/// header that does not parse (a validated section has none).
pub(super) struct RawHeaders<'a>(pub(super) &'a [u8]);

impl<'a> Iterator for RawHeaders<'a> {
    type Item = (&'a [u8], u8, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let Some(item) = next_raw(self.0) else {
            self.0 = &[];
            return None;
        };
        self.0 = item.3;
        Some((item.0, item.1, item.2))
    }
}

/// One raw header and what follows it: `(name, type byte, value, rest)`.
type RawHeader<'a> = (&'a [u8], u8, &'a [u8], &'a [u8]);

/// The first header of `bytes` and what follows it.
#[inline]
fn next_raw(bytes: &[u8]) -> Option<RawHeader<'_>> {
    let (&name_len, rest) = bytes.split_first()?;
    let (name, rest) = split_at_checked(rest, usize::from(name_len))?;
    let (&ty, rest) = rest.split_first()?;
    let value_len = match ValueLen::of(ty)? {
        ValueLen::Fixed(len) => len,
        ValueLen::Prefixed => 2 + usize::from(u16::from_be_bytes(*rest.first_chunk::<2>()?)),
    };
    let (value, rest) = split_at_checked(rest, value_len)?;
    Some((name, ty, value, rest))
}

/// Iterator over a validated headers section, in wire order.
///
/// Created by [`Message::headers`](crate::eventstream::Message::headers) and
/// [`Frame::headers`](crate::eventstream::Frame::headers). Yields `(name, value)`; both borrow
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
        let (name, ty, value, rest) = next_raw(self.rest)?;
        let item = (std::str::from_utf8(name).ok()?, decode_value(ty, value)?);
        self.rest = rest;
        Some(item)
    }

    /// Finds the first header with this name (comparing raw names: only the value
    /// found is decoded).
    pub fn get(self, name: &str) -> Option<HeaderValue<'a>> {
        let (_, ty, value) = RawHeaders(self.rest).find(|(n, _, _)| *n == name.as_bytes())?;
        decode_value(ty, value)
    }

    /// The string value of the first header with this name, if it is a string.
    pub fn get_str(self, name: &str) -> Option<&'a str> {
        find_str(self.rest, name)
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

/// A header value from its type byte and its value bytes (as [`next_raw`] cut them).
fn decode_value(ty: u8, value: &[u8]) -> Option<HeaderValue<'_>> {
    Some(match ty {
        type_byte::BOOL_TRUE => HeaderValue::Bool(true),
        type_byte::BOOL_FALSE => HeaderValue::Bool(false),
        type_byte::BYTE => HeaderValue::Byte(i8::from_be_bytes(take_array::<1>(value)?.0)),
        type_byte::INT16 => HeaderValue::Int16(i16::from_be_bytes(take_array::<2>(value)?.0)),
        type_byte::INT32 => HeaderValue::Int32(i32::from_be_bytes(take_array::<4>(value)?.0)),
        type_byte::INT64 => HeaderValue::Int64(i64::from_be_bytes(take_array::<8>(value)?.0)),
        type_byte::TIMESTAMP => HeaderValue::Timestamp(i64::from_be_bytes(take_array::<8>(value)?.0)),
        type_byte::UUID => HeaderValue::Uuid(take_array::<16>(value)?.0),
        type_byte::BYTE_ARRAY => HeaderValue::ByteArray(value.get(2..)?),
        type_byte::STRING => HeaderValue::String(std::str::from_utf8(value.get(2..)?).ok()?),
        _ => return None,
    })
}

#[inline]
pub(super) fn split_at_checked(bytes: &[u8], mid: usize) -> Option<(&[u8], &[u8])> {
    (mid <= bytes.len()).then(|| bytes.split_at(mid))
}

#[inline]
fn take_array<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = split_at_checked(bytes, N)?;
    Some((head.try_into().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::super::write::encode;
    use super::*;

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
            Err(DecodeError::InvalidHeaderType(10))
        ));
        assert!(matches!(
            validate(&[0, 0], 0),
            Err(DecodeError::InvalidHeaderNameLength { len: 0, .. })
        ));
        let mut bad_utf8 = bytes;
        bad_utf8[8] = 0xff;
        assert!(matches!(
            validate(&bad_utf8, 0),
            Err(DecodeError::InvalidUtf8 {
                what: "string value",
                ..
            })
        ));
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
}
