//! The owned zero-copy [`Message`], and [`MessageBuilder`] for writing frames.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError, EventStreamError};
use super::frame::{header_shortcuts, DebugHeaders, Frame};
use super::header::{self, names, FrameKind, HeaderValue, Headers};
use super::prelude::{Limits, Prelude, MESSAGE_CRC_LEN, PRELUDE_LEN};

/// One decoded event-stream message.
///
/// It owns exactly one [`Bytes`]: the frame as it was split off the read buffer. The
/// payload and every header name and value are views into it; nothing is copied and
/// nothing is allocated per message. Headers were validated when the frame was
/// decoded, so every accessor is infallible.
///
/// # Examples
///
/// ```
/// use bedrock_converse::eventstream::{HeaderValue, Message, MessageBuilder};
///
/// let msg: Message = MessageBuilder::new()
///     .string_header(":event-type", "messageStart")
///     .string_header(":content-type", "application/json")
///     .string_header(":message-type", "event")
///     .build(br#"{"role":"assistant"}"#)?;
/// assert_eq!(msg.event_type(), Some("messageStart"));
/// assert_eq!(msg.payload().len(), 20);
/// let names: Vec<&str> = msg.headers().map(|(name, _)| name).collect();
/// assert_eq!(names, [":event-type", ":content-type", ":message-type"]);
/// assert_eq!(msg.header(":message-type"), Some(HeaderValue::String("event")));
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    frame: Bytes,
    headers_end: usize,
}

impl Message {
    /// Wraps a buffer that holds exactly one frame, checking it completely.
    ///
    /// # Errors
    ///
    /// Every frame-level [`DecodeError`], and [`DecodeError::Truncated`] if `frame` is
    /// shorter than its prelude claims, or [`DecodeError::TrailingBytes`] if it is
    /// longer.
    pub fn from_bytes(frame: Bytes, limits: &Limits) -> Result<Message, EventStreamError> {
        let Some(prelude) = frame.first_chunk::<PRELUDE_LEN>() else {
            return Err(DecodeError::Truncated {
                buffered: frame.len(),
                missing: PRELUDE_LEN - frame.len(),
            }
            .into());
        };
        let (prelude, hasher) = Prelude::parse_hashed(prelude, limits)?;
        if frame.len() < prelude.total_len {
            return Err(DecodeError::Truncated {
                buffered: frame.len(),
                missing: prelude.total_len - frame.len(),
            }
            .into());
        }
        if frame.len() > prelude.total_len {
            return Err(DecodeError::TrailingBytes {
                len: frame.len(),
                frame_len: prelude.total_len,
            }
            .into());
        }
        prelude.check_body_after_prelude(&frame, hasher)?;
        Ok(Message::from_checked(frame, prelude.headers_len))
    }

    /// A frame that passed [`Prelude::check_body`].
    #[inline]
    pub(crate) fn from_checked(frame: Bytes, headers_len: usize) -> Message {
        Message {
            frame,
            headers_end: PRELUDE_LEN + headers_len,
        }
    }

    /// A frame that passed [`Prelude::check_body`], its headers ending at `headers_end`.
    #[inline]
    pub(super) fn from_checked_end(frame: Bytes, headers_end: usize) -> Message {
        Message { frame, headers_end }
    }

    /// This message as a borrowed [`Frame`].
    pub fn as_frame(&self) -> Frame<'_> {
        Frame::from_checked_end(&self.frame, self.headers_end)
    }

    /// The headers in wire order, borrowed from the frame.
    pub fn headers(&self) -> Headers<'_> {
        self.as_frame().headers()
    }

    /// The payload, borrowed from the frame.
    pub fn payload(&self) -> &[u8] {
        self.as_frame().payload()
    }

    /// The payload as its own [`Bytes`] (a view into the frame: no copy, one reference
    /// count increment).
    pub fn payload_bytes(&self) -> Bytes {
        let end = self.frame.len().saturating_sub(MESSAGE_CRC_LEN);
        self.frame.slice(self.headers_end.min(end)..end)
    }

    /// The whole frame as it was on the wire, CRCs included: forward it as is.
    pub fn as_bytes(&self) -> &[u8] {
        &self.frame
    }

    /// The whole frame as it was on the wire, CRCs included.
    pub fn into_bytes(self) -> Bytes {
        self.frame
    }

    /// The raw headers section (validated).
    #[inline]
    pub fn header_bytes(&self) -> &[u8] {
        self.frame.get(PRELUDE_LEN..self.headers_end).unwrap_or_default()
    }

    header_shortcuts!('_);
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("headers", &DebugHeaders(self.headers()))
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

/// Writes one frame: headers in the order given, then the payload, with both CRCs.
///
/// Headers are written straight into one buffer as they are added; [`build`] fills in
/// the prelude and the CRCs. The bytes are exactly those the official encoders write.
///
/// [`build`]: MessageBuilder::build
///
/// # Examples
///
/// ```
/// use bedrock_converse::eventstream::{HeaderValue, MessageBuilder};
///
/// let msg = MessageBuilder::new()
///     .header("event-type", HeaderValue::Int32(40972))
///     .build(b"")?;
/// assert_eq!(msg.as_bytes().len(), 16 + 1 + 10 + 1 + 4);
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
#[derive(Debug)]
pub struct MessageBuilder {
    buf: BytesMut,
    error: Option<EncodeError>,
}

impl Default for MessageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageBuilder {
    /// An empty frame: no headers yet.
    pub fn new() -> Self {
        let mut buf = BytesMut::with_capacity(128);
        buf.put_bytes(0, PRELUDE_LEN);
        MessageBuilder { buf, error: None }
    }

    /// Appends a header. A name that is empty ([`EncodeError::EmptyHeaderName`]) or
    /// over 255 bytes ([`EncodeError::HeaderNameTooLong`]), or a value over 65535 bytes
    /// ([`EncodeError::HeaderValueTooLong`]), makes [`build`](Self::build) fail.
    pub fn header(mut self, name: &str, value: HeaderValue<'_>) -> Self {
        if self.error.is_none() {
            match header::check_encodable(name, &value) {
                Ok(()) => {
                    self.buf.reserve(2 + name.len() + value.encoded_len());
                    header::write_header(&mut self.buf, name, &value);
                }
                Err(e) => self.error = Some(e),
            }
        }
        self
    }

    /// Appends a string header.
    pub fn string_header(self, name: &str, value: &str) -> Self {
        self.header(name, HeaderValue::String(value))
    }

    /// Appends the payload and finishes the frame.
    ///
    /// # Errors
    ///
    /// [`EventStreamError::Encode`]: the first header that could not be encoded, or
    /// [`EncodeError::FrameTooLarge`] if the frame would not fit a `u32` length.
    pub fn build(mut self, payload: &[u8]) -> Result<Message, EventStreamError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        let headers_len = self.buf.len() - PRELUDE_LEN;
        let total = self.buf.len() + payload.len() + MESSAGE_CRC_LEN;
        let (Ok(total32), Ok(headers32)) = (u32::try_from(total), u32::try_from(headers_len)) else {
            return Err(EncodeError::FrameTooLarge {
                // usize fits in u64 on every supported target.
                len: total as u64,
                max: u64::from(u32::MAX),
            }
            .into());
        };
        self.buf.reserve(payload.len() + MESSAGE_CRC_LEN);
        self.buf[0..4].copy_from_slice(&total32.to_be_bytes());
        self.buf[4..8].copy_from_slice(&headers32.to_be_bytes());
        let prelude_crc = crc32fast::hash(&self.buf[0..8]);
        self.buf[8..12].copy_from_slice(&prelude_crc.to_be_bytes());
        self.buf.put_slice(payload);
        let message_crc = crc32fast::hash(&self.buf);
        self.buf.put_u32(message_crc);
        Ok(Message::from_checked(self.buf.freeze(), headers_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_message_is_16_bytes_with_known_crc() {
        let msg = MessageBuilder::new().build(b"").unwrap();
        let b = msg.as_bytes();
        assert_eq!(b.len(), 16);
        assert_eq!(&b[8..12], &0x05C2_48EBu32.to_be_bytes());
    }

    #[test]
    fn from_bytes_rejects_short_and_long() {
        let msg = MessageBuilder::new()
            .string_header("a", "b")
            .build(b"xyz")
            .unwrap();
        let wire = msg.clone().into_bytes();
        assert_eq!(
            Message::from_bytes(wire.clone(), &Limits::default()).unwrap(),
            msg
        );
        assert!(matches!(
            Message::from_bytes(wire.slice(..wire.len() - 1), &Limits::default()),
            Err(EventStreamError::Decode(DecodeError::Truncated {
                missing: 1,
                ..
            }))
        ));
        let mut long = BytesMut::from(&wire[..]);
        long.put_u8(0);
        let len = wire.len() + 1;
        assert!(matches!(
            Message::from_bytes(long.freeze(), &Limits::default()),
            Err(EventStreamError::Decode(DecodeError::TrailingBytes { len: l, frame_len }))
                if l == len && frame_len == len - 1
        ));
        assert_eq!(msg.payload_bytes(), Bytes::from_static(b"xyz"));
    }
}
