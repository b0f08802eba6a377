//! Encoding one header: its name, type byte and value.

use bytes::BufMut;

use super::value::HeaderValue;
use crate::eventstream::error::EncodeError;

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

/// The encoding of `headers`, for the tests of this folder.
#[cfg(test)]
pub(super) fn encode(headers: &[(&str, HeaderValue<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in headers {
        check_encodable(n, v).unwrap();
        write_header(&mut out, n, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
