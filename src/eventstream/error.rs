//! The errors of the event-stream layer: [`EventStreamError`] wrapping [`DecodeError`]
//! and [`EncodeError`].

use std::fmt;

/// What a byte sequence that is plainly not an event stream looks like.
///
/// Reported by [`DecodeError::NotAnEventStream`] so that a user who pointed the
/// decoder at a JSON error body, an HTTP response or server-sent events sees that,
/// instead of a baffling CRC mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LooksLike {
    /// Starts with `{` or `[`: a JSON document (often an HTTP error body).
    Json,
    /// Starts with `HTTP/`: a raw HTTP response.
    Http,
    /// Starts with `data:` or `event:`: server-sent events.
    ServerSentEvents,
    /// Starts with `<`: XML or HTML.
    Markup,
}

impl fmt::Display for LooksLike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LooksLike::Json => "JSON",
            LooksLike::Http => "an HTTP response",
            LooksLike::ServerSentEvents => "server-sent events",
            LooksLike::Markup => "XML or HTML",
        })
    }
}

impl LooksLike {
    /// Classifies the first bytes of a would-be frame, if they are plainly text of a
    /// known kind. Leading ASCII whitespace is skipped.
    pub fn sniff(bytes: &[u8]) -> Option<LooksLike> {
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &bytes[start..];
        match rest.first()? {
            b'{' | b'[' => Some(LooksLike::Json),
            b'<' => Some(LooksLike::Markup),
            _ if rest.starts_with(b"HTTP/") => Some(LooksLike::Http),
            _ if rest.starts_with(b"data:") || rest.starts_with(b"event:") => {
                Some(LooksLike::ServerSentEvents)
            }
            _ => None,
        }
    }
}

/// Errors of the event-stream layer, in the rustls shape: a top enum whose variants
/// wrap focused sub-enums, so that what the peer sent wrong ([`DecodeError`]) stays
/// apart from what the caller asked for that cannot be written ([`EncodeError`]).
///
/// Every public function of the layer returns this type; match the sub-enum for the
/// details:
///
/// ```
/// use bedrock_converse::eventstream::{decode_frame, DecodeError, EventStreamError, Limits};
///
/// let err = decode_frame(b"{\"message\":\"denied\"}", &Limits::default()).unwrap_err();
/// assert!(matches!(err, EventStreamError::Decode(DecodeError::NotAnEventStream { .. })));
/// assert!(err.as_decode().is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventStreamError {
    /// The bytes read are not a valid event stream (or the decoder failed earlier).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A message could not be encoded as asked.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// An I/O error from the underlying reader (as `tokio_util::codec::Decoder`
    /// requires).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl EventStreamError {
    /// The decode error, if this is one.
    pub fn as_decode(&self) -> Option<&DecodeError> {
        match self {
            EventStreamError::Decode(e) => Some(e),
            _ => None,
        }
    }

    /// The encode error, if this is one.
    pub fn as_encode(&self) -> Option<&EncodeError> {
        match self {
            EventStreamError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

/// What is wrong with bytes read as an event stream: malformed or hostile frames, the
/// limits, the end of the input inside a frame.
///
/// Offsets are byte offsets from the start of the frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is plainly not `application/vnd.amazon.eventstream`.
    #[error("input is not an AWS event stream: it looks like {looks_like} (first bytes {prefix:?})")]
    NotAnEventStream {
        /// What the bytes look like.
        looks_like: LooksLike,
        /// Up to the first 16 bytes, lossily decoded, for the error message.
        prefix: String,
    },
    /// The CRC-32 of the first 8 bytes does not match bytes 8..12.
    #[error("prelude checksum mismatch: computed {expected:#010x}, frame says {actual:#010x}")]
    PreludeCrcMismatch {
        /// The CRC computed over the prelude.
        expected: u32,
        /// The CRC the frame carries.
        actual: u32,
    },
    /// The CRC-32 of the whole frame does not match its last 4 bytes.
    #[error("message checksum mismatch: computed {expected:#010x}, frame says {actual:#010x}")]
    MessageCrcMismatch {
        /// The CRC computed over the frame.
        expected: u32,
        /// The CRC the frame carries.
        actual: u32,
    },
    /// The total length is below the 16-byte minimum (prelude and message CRC).
    #[error("message length {len} is shorter than the 16-byte minimum")]
    MessageTooShort {
        /// The total length the prelude claims.
        len: u32,
    },
    /// The total length exceeds the configured maximum.
    #[error("message length {len} exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The total length the prelude claims.
        len: u64,
        /// The largest frame the limits allow.
        max: u64,
    },
    /// The headers section exceeds the configured maximum.
    #[error("headers length {len} exceeds the maximum of {max} bytes")]
    HeadersTooLarge {
        /// The headers length the prelude claims.
        len: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The payload exceeds the configured maximum.
    #[error("payload length {len} exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The payload length implied by the prelude.
        len: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The headers length does not fit in the frame (`headers_len > total_len - 16`).
    #[error("headers length {headers_len} does not fit in a message of {total_len} bytes")]
    HeadersLengthOutOfRange {
        /// The headers length the prelude claims.
        headers_len: u32,
        /// The total length the prelude claims.
        total_len: u32,
    },
    /// A header name is empty or runs past the end of the headers section.
    #[error("header name length {len} at offset {offset} is invalid or runs past the headers section")]
    InvalidHeaderNameLength {
        /// The name length byte.
        len: u8,
        /// Offset of the name length byte.
        offset: usize,
    },
    /// A header's type byte is not one of the ten defined types.
    #[error("invalid header value type {0:#04x}")]
    InvalidHeaderType(u8),
    /// A header value (or its length field) runs past the end of the headers section.
    #[error("header value at offset {offset} needs {needed} bytes but only {available} remain in the headers section")]
    HeaderValueOverrun {
        /// Offset of the value (after the type byte).
        offset: usize,
        /// Bytes the value needs, length field included.
        needed: usize,
        /// Bytes left in the headers section.
        available: usize,
    },
    /// A header name or string value is not valid UTF-8.
    #[error("invalid UTF-8 in header {what} at offset {offset}")]
    InvalidUtf8 {
        /// `"name"` or `"string value"`.
        what: &'static str,
        /// Offset of the offending bytes.
        offset: usize,
    },
    /// The input ended inside a frame.
    #[error("input ended inside a frame: {buffered} bytes buffered, {missing} more needed")]
    Truncated {
        /// Bytes of the incomplete frame that arrived.
        buffered: usize,
        /// Bytes still missing (at least; for a partial prelude, up to the prelude's end).
        missing: usize,
    },
    /// A buffer said to hold exactly one frame
    /// ([`Message::from_bytes`](super::Message::from_bytes)) holds more.
    #[error("{len} bytes hold a frame of {frame_len} bytes and {} bytes more", len - frame_len)]
    TrailingBytes {
        /// The buffer's length.
        len: usize,
        /// The length of the frame at its start.
        frame_len: usize,
    },
    /// The decoder already failed; the format has no resync marker, so it cannot
    /// find the next frame boundary. Call [`EventStreamCodec::reset`] for a new stream.
    ///
    /// [`EventStreamCodec::reset`]: crate::eventstream::EventStreamCodec::reset
    #[error("the event-stream decoder failed earlier and cannot resynchronise")]
    Poisoned,
}

impl DecodeError {
    pub(crate) fn not_an_event_stream(looks_like: LooksLike, bytes: &[u8]) -> Self {
        let prefix = &bytes[..bytes.len().min(16)];
        DecodeError::NotAnEventStream {
            looks_like,
            prefix: String::from_utf8_lossy(prefix).into_owned(),
        }
    }
}

/// What cannot be encoded: the caller's mistakes, found before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A header name is empty.
    #[error("a header name cannot be empty")]
    EmptyHeaderName,
    /// A header name is longer than 255 bytes.
    #[error("header name of {len} bytes cannot be encoded (at most 255)")]
    HeaderNameTooLong {
        /// The name length.
        len: usize,
    },
    /// A byte-array or string header value is longer than 65535 bytes.
    #[error("header value of {len} bytes cannot be encoded (at most 65535)")]
    HeaderValueTooLong {
        /// The value length.
        len: usize,
    },
    /// The frame would be longer than its `u32` length field can say.
    #[error("a frame of {len} bytes cannot be encoded (at most {max})")]
    FrameTooLarge {
        /// The length the frame would have.
        len: u64,
        /// The largest frame the format can carry (`u32::MAX`).
        max: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::LooksLike;

    #[test]
    fn sniffs_common_non_eventstream_bodies() {
        assert_eq!(LooksLike::sniff(b"{\"message\":\"x\"}"), Some(LooksLike::Json));
        assert_eq!(LooksLike::sniff(b"  \n[1]"), Some(LooksLike::Json));
        assert_eq!(LooksLike::sniff(b"HTTP/1.1 200 OK"), Some(LooksLike::Http));
        assert_eq!(LooksLike::sniff(b"data: {}"), Some(LooksLike::ServerSentEvents));
        assert_eq!(LooksLike::sniff(b"<html>"), Some(LooksLike::Markup));
        assert_eq!(LooksLike::sniff(b"\x00\x00\x00\x10"), None);
        assert_eq!(LooksLike::sniff(b""), None);
    }
}
