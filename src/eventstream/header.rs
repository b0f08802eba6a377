//! Header values, and validation, iteration and encoding of a frame's headers section.
//!
//! ```text
//! +-------------+------------------+-----------+----------------------------------+
//! | name length |  name (UTF-8)    | type byte | value (fixed size, or u16 length |
//! |    u8       |  1..=255 bytes   |   0..=9   |  + bytes for types 6 and 7)      |
//! +-------------+------------------+-----------+----------------------------------+
//! ```

use bytes::BufMut;

use super::error::{DecodeError, EncodeError};

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

/// The names of the headers the event-stream protocol defines, and the values of
/// `:message-type`.
///
/// Every layer that looks for one of these headers spells it with these constants;
/// the fast paths below compare whole encoded headers built from the same names (a
/// unit test checks that the two agree).
pub mod names {
    /// `:event-type`: which event of the stream's union this frame carries.
    pub const EVENT_TYPE: &str = ":event-type";
    /// `:message-type`: [`EVENT`], [`EXCEPTION`] or [`ERROR`].
    pub const MESSAGE_TYPE: &str = ":message-type";
    /// `:exception-type`: the modelled exception an `exception` frame carries.
    pub const EXCEPTION_TYPE: &str = ":exception-type";
    /// `:content-type`: the payload's media type.
    pub const CONTENT_TYPE: &str = ":content-type";
    /// `:error-code`: the code of an `error` frame.
    pub const ERROR_CODE: &str = ":error-code";
    /// `:error-message`: the message of an `error` frame.
    pub const ERROR_MESSAGE: &str = ":error-message";
    /// `:message-type` of an event frame.
    pub const EVENT: &str = "event";
    /// `:message-type` of a modelled exception frame.
    pub const EXCEPTION: &str = "exception";
    /// `:message-type` of an unmodelled error frame.
    pub const ERROR: &str = "error";
    /// The `:content-type` of every Bedrock frame.
    pub const APPLICATION_JSON: &str = "application/json";
}

/// The headers of a Bedrock (and most AWS) event frame start with this: the name
/// `:event-type`, the string type byte and the high byte of the value's length...
const EVENT_HEAD: &[u8] = b"\x0b:event-type\x07\x00";
/// ...and, after the event type's value, end with this: `:content-type:
/// application/json`, `:message-type: event`.
const EVENT_TAIL: &[u8] = b"\x0d:content-type\x07\x00\x10application/json\x0d:message-type\x07\x00\x05event";

/// How long a header value of a given type is on the wire, after its type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueLen {
    /// Always this many bytes (0 for the two booleans).
    Fixed(usize),
    /// A big-endian `u16` length, then that many bytes (byte arrays and strings).
    Prefixed,
}

impl ValueLen {
    /// The length rule of type byte `ty`; `None` for a type this format does not have.
    #[inline(always)]
    fn of(ty: u8) -> Option<ValueLen> {
        Some(match ty {
            type_byte::BOOL_TRUE | type_byte::BOOL_FALSE => ValueLen::Fixed(0),
            type_byte::BYTE => ValueLen::Fixed(1),
            type_byte::INT16 => ValueLen::Fixed(2),
            type_byte::INT32 => ValueLen::Fixed(4),
            type_byte::INT64 | type_byte::TIMESTAMP => ValueLen::Fixed(8),
            type_byte::UUID => ValueLen::Fixed(16),
            type_byte::BYTE_ARRAY | type_byte::STRING => ValueLen::Prefixed,
            _ => return None,
        })
    }
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
pub(crate) fn check_encodable(name: &str, value: &HeaderValue<'_>) -> Result<(), EncodeError> {
    if name.is_empty() {
        return Err(EncodeError::EmptyHeaderName);
    }
    if name.len() > usize::from(u8::MAX) {
        return Err(EncodeError::HeaderNameTooLong { len: name.len() });
    }
    let len = match value {
        HeaderValue::ByteArray(b) => b.len(),
        HeaderValue::String(s) => s.len(),
        _ => 0,
    };
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::HeaderValueTooLong { len });
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

/// Whether `section` is exactly `:event-type` (an ASCII string),
/// `:content-type: application/json`, `:message-type: event`: every event frame of a
/// Converse stream. Two comparisons with constants and an ASCII check of the event
/// type, instead of a walk whose every step waits on the length before it.
#[inline]
fn is_common_event_section(section: &[u8]) -> bool {
    common_event_type_bytes(section).is_some_and(is_ascii)
}

/// The raw `:event-type` value of a section laid out as every Bedrock event frame is
/// (see [`is_common_event_section`]), without checking the value's bytes.
#[inline(always)]
fn common_event_type_bytes(section: &[u8]) -> Option<&[u8]> {
    let (&len, rest) = section.strip_prefix(EVENT_HEAD)?.split_first()?;
    let (event_type, tail) = split_at_checked(rest, usize::from(len))?;
    equal(tail, EVENT_TAIL).then_some(event_type)
}

/// The `:event-type` of a *validated* section with Bedrock's usual event layout:
/// `:event-type`, `:content-type: application/json`, `:message-type: event`, in that
/// order. Two comparisons with constants; `None` for any other layout.
#[inline]
pub(crate) fn common_event_type(section: &[u8]) -> Option<&str> {
    common_event_type_bytes(section).and_then(known_str)
}

/// `bytes` as a `str`: the event and message type names Bedrock sends are matched as
/// literals (a length switch and one comparison), anything else is checked.
#[inline(always)]
fn known_str(bytes: &[u8]) -> Option<&str> {
    Some(match bytes {
        b"contentBlockDelta" => "contentBlockDelta",
        b"contentBlockStop" => "contentBlockStop",
        b"contentBlockStart" => "contentBlockStart",
        b"messageStart" => "messageStart",
        b"messageStop" => "messageStop",
        b"metadata" => "metadata",
        b"event" => names::EVENT,
        b"exception" => names::EXCEPTION,
        b"error" => names::ERROR,
        other => return std::str::from_utf8(other).ok(),
    })
}

/// What a frame is, by its `:message-type` (see [`FrameKind`]), read from a validated
/// headers section: the common event layout by two comparisons, anything else by one
/// walk over the raw headers that decodes only the values it needs.
#[inline]
pub(crate) fn kind(section: &[u8]) -> FrameKind<'_> {
    match common_event_type(section) {
        Some(event_type) => FrameKind::Event { event_type },
        None => kind_walk(section),
    }
}

#[inline(never)]
fn kind_walk(section: &[u8]) -> FrameKind<'_> {
    let (mut message_type, mut event_type, mut exception_type, mut code, mut message) =
        (None, None, None, None, None);
    for (name, ty, value) in RawHeaders(section) {
        if ty != type_byte::STRING {
            continue;
        }
        let slot = match name {
            b":message-type" => &mut message_type,
            b":event-type" => &mut event_type,
            b":exception-type" => &mut exception_type,
            b":error-code" => &mut code,
            b":error-message" => &mut message,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    fn text(v: Option<&[u8]>) -> Option<&str> {
        v.and_then(|v| v.get(2..)).and_then(known_str)
    }
    match text(message_type) {
        Some(names::EVENT) => match text(event_type) {
            Some(event_type) => FrameKind::Event { event_type },
            None => FrameKind::Other {
                message_type: Some(names::EVENT),
            },
        },
        Some(names::EXCEPTION) => FrameKind::Exception {
            exception_type: text(exception_type),
        },
        Some(names::ERROR) => FrameKind::Error {
            code: text(code),
            message: text(message),
        },
        message_type => FrameKind::Other { message_type },
    }
}

/// The string value of the first header called `name` in a validated section, if it
/// is a string: the common event layout answers `:event-type`, `:message-type` and
/// `:content-type` by two comparisons, anything else by a walk comparing raw names.
#[inline]
pub(crate) fn find_str<'a>(section: &'a [u8], name: &str) -> Option<&'a str> {
    if let Some(event_type) = common_event_type(section) {
        return match name {
            names::EVENT_TYPE => Some(event_type),
            names::MESSAGE_TYPE => Some(names::EVENT),
            names::CONTENT_TYPE => Some(names::APPLICATION_JSON),
            _ => None,
        };
    }
    let (ty, value) = RawHeaders(section).find_map(|(n, ty, v)| (n == name.as_bytes()).then_some((ty, v)))?;
    (ty == type_byte::STRING)
        .then(|| value.get(2..).and_then(known_str))
        .flatten()
}

/// What kind of frame this is, by its `:message-type` header.
///
/// Returned by [`Frame::kind`](super::Frame::kind) and
/// [`Message::kind`](super::Message::kind); the strings borrow from the frame.
///
/// # Examples
///
/// ```
/// use bedrock_converse::eventstream::{FrameKind, MessageBuilder};
///
/// let msg = MessageBuilder::new()
///     .string_header(":event-type", "contentBlockDelta")
///     .string_header(":content-type", "application/json")
///     .string_header(":message-type", "event")
///     .build(b"{}")?;
/// assert_eq!(msg.kind(), FrameKind::Event { event_type: "contentBlockDelta" });
///
/// let msg = MessageBuilder::new()
///     .string_header(":exception-type", "throttlingException")
///     .string_header(":message-type", "exception")
///     .build(b"{}")?;
/// assert_eq!(msg.kind(), FrameKind::Exception { exception_type: Some("throttlingException") });
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameKind<'a> {
    /// `:message-type: event` with an `:event-type` string header.
    Event {
        /// The `:event-type` (for example `contentBlockDelta`).
        event_type: &'a str,
    },
    /// `:message-type: exception`: a modelled service exception.
    Exception {
        /// The `:exception-type` (for example `throttlingException`), if present.
        exception_type: Option<&'a str>,
    },
    /// `:message-type: error`: an unmodelled error.
    Error {
        /// The `:error-code`, if present.
        code: Option<&'a str>,
        /// The `:error-message`, if present.
        message: Option<&'a str>,
    },
    /// Anything else: no `:message-type`, one this layer does not know, or an `event`
    /// without an `:event-type` (then `message_type` is `Some("event")`).
    Other {
        /// The `:message-type` string, if present.
        message_type: Option<&'a str>,
    },
}

/// Iterator over the raw headers of a validated section: `(name, type byte, value
/// bytes)`, the value with its length field for types 6 and 7. Ends at the first
/// header that does not parse (a validated section has none).
struct RawHeaders<'a>(&'a [u8]);

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
fn validate_detailed(section: &[u8], base: usize) -> Result<(), DecodeError> {
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
    fn layout_literals_spell_the_names() {
        let event = encode(&[
            (names::EVENT_TYPE, HeaderValue::String("x")),
            (names::CONTENT_TYPE, HeaderValue::String(names::APPLICATION_JSON)),
            (names::MESSAGE_TYPE, HeaderValue::String(names::EVENT)),
        ]);
        assert_eq!(&event[..EVENT_HEAD.len()], EVENT_HEAD);
        assert_eq!(&event[EVENT_HEAD.len() + 2..], EVENT_TAIL);
        assert_eq!(event[EVENT_HEAD.len()], 1);
    }

    #[test]
    fn kind_fast_path_agrees_with_the_walk() {
        let common = encode(&[
            (names::EVENT_TYPE, HeaderValue::String("contentBlockDelta")),
            (names::CONTENT_TYPE, HeaderValue::String(names::APPLICATION_JSON)),
            (names::MESSAGE_TYPE, HeaderValue::String(names::EVENT)),
        ]);
        let want = FrameKind::Event {
            event_type: "contentBlockDelta",
        };
        assert_eq!(kind(&common), want);
        assert_eq!(kind_walk(&common), want);
        assert_eq!(find_str(&common, names::CONTENT_TYPE), Some("application/json"));
        assert_eq!(find_str(&common, names::EXCEPTION_TYPE), None);
        // Every single-byte change the validator accepts: the fast path answers as the
        // walk does, or not at all.
        for at in 0..common.len() {
            for byte in [0u8, 7, b'a', b'e', 0x7f] {
                let mut other = common.clone();
                other[at] = byte;
                if validate_detailed(&other, 0).is_err() {
                    continue;
                }
                assert_eq!(kind(&other), kind_walk(&other), "byte {byte:#x} at {at}");
                for name in [names::EVENT_TYPE, names::MESSAGE_TYPE, names::CONTENT_TYPE] {
                    let slow = Headers::new(&other).find_map(|(n, v)| (n == name).then_some(v));
                    assert_eq!(
                        find_str(&other, name),
                        slow.and_then(|v| v.as_str()),
                        "{name}, at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn kinds_of_other_frames() {
        let section = |headers: &[(&str, HeaderValue<'_>)]| encode(headers);
        let s = section(&[
            (names::MESSAGE_TYPE, HeaderValue::String(names::EXCEPTION)),
            (names::EXCEPTION_TYPE, HeaderValue::String("throttlingException")),
        ]);
        assert_eq!(
            kind(&s),
            FrameKind::Exception {
                exception_type: Some("throttlingException")
            }
        );
        let s = section(&[
            (names::ERROR_MESSAGE, HeaderValue::String("boom")),
            (names::ERROR_CODE, HeaderValue::String("InternalError")),
            (names::MESSAGE_TYPE, HeaderValue::String(names::ERROR)),
        ]);
        assert_eq!(
            kind(&s),
            FrameKind::Error {
                code: Some("InternalError"),
                message: Some("boom")
            }
        );
        let s = section(&[(names::MESSAGE_TYPE, HeaderValue::String(names::EVENT))]);
        assert_eq!(
            kind(&s),
            FrameKind::Other {
                message_type: Some("event")
            }
        );
        // A non-string `:event-type` is no event type; the first of two counts.
        let s = section(&[
            (names::EVENT_TYPE, HeaderValue::Int32(1)),
            (names::MESSAGE_TYPE, HeaderValue::String("ping")),
            (names::MESSAGE_TYPE, HeaderValue::String(names::EVENT)),
        ]);
        assert_eq!(
            kind(&s),
            FrameKind::Other {
                message_type: Some("ping")
            }
        );
        assert_eq!(find_str(&s, names::EVENT_TYPE), None);
        assert_eq!(
            Headers::new(&s).get(names::EVENT_TYPE),
            Some(HeaderValue::Int32(1))
        );
        assert_eq!(kind(&[]), FrameKind::Other { message_type: None });
    }

    #[test]
    fn encoding_limits() {
        assert_eq!(
            check_encodable("", &HeaderValue::Bool(true)),
            Err(EncodeError::EmptyHeaderName)
        );
        assert_eq!(
            check_encodable(&"x".repeat(256), &HeaderValue::Bool(true)),
            Err(EncodeError::HeaderNameTooLong { len: 256 })
        );
        let big = vec![0u8; 65536];
        assert_eq!(
            check_encodable("x", &HeaderValue::ByteArray(&big)),
            Err(EncodeError::HeaderValueTooLong { len: 65536 })
        );
        assert!(check_encodable("x", &HeaderValue::ByteArray(&big[1..])).is_ok());
    }
}
