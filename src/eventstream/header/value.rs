//! [`HeaderValue`]: the ten value types of a header, and how long each is on the wire.

use super::type_byte;

/// How long a header value of a given type is on the wire, after its type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueLen {
    /// Always this many bytes (0 for the two booleans).
    Fixed(usize),
    /// A big-endian `u16` length, then that many bytes (byte arrays and strings).
    Prefixed,
}

impl ValueLen {
    /// The length rule of type byte `ty`; `None` for a type this format does not have.
    #[inline(always)]
    pub(super) fn of(ty: u8) -> Option<ValueLen> {
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

    /// Bytes this value takes on the wire after its type byte: the fixed width of a
    /// number, boolean (0), timestamp or UUID; the `u16` length plus the bytes of a
    /// byte array or string. A whole header is `2 + name.len() + encoded_len()` bytes
    /// (name length byte, name, type byte, value).
    ///
    /// # Examples
    ///
    /// ```
    /// use bedrock_converse::eventstream::HeaderValue;
    ///
    /// assert_eq!(HeaderValue::Bool(true).encoded_len(), 0);
    /// assert_eq!(HeaderValue::Int32(7).encoded_len(), 4);
    /// assert_eq!(HeaderValue::String("event").encoded_len(), 2 + 5);
    /// ```
    pub fn encoded_len(&self) -> usize {
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
