//! Frames: the prelude and its checks, the limits, the borrowed [`Frame`] and the owned
//! zero-copy [`Message`], and [`MessageBuilder`] for writing frames.
//!
//! ```text
//!  0               4               8               12
//! +---------------+---------------+---------------+--------------------+---------+---------------+
//! | total length  | headers length|  prelude CRC  | headers            | payload |  message CRC  |
//! |    u32 BE     |    u32 BE     | CRC-32(0..8)  | (headers length)   |         | CRC-32(0..-4) |
//! +---------------+---------------+---------------+--------------------+---------+---------------+
//! |<------------------------------------- total length ------------------------------------------>|
//! ```

use std::fmt;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError, EventStreamError};
use super::header::{self, names, FrameKind, HeaderValue, Headers};

/// Bytes of the prelude: total length, headers length, prelude CRC.
pub const PRELUDE_LEN: usize = 12;
/// Bytes of the trailing message CRC.
pub const MESSAGE_CRC_LEN: usize = 4;
/// The smallest legal frame: a prelude and a message CRC.
pub const MIN_FRAME_LEN: usize = PRELUDE_LEN + MESSAGE_CRC_LEN;

/// Size limits applied to every decoded frame, as soon as its prelude arrives and
/// before anything is reserved for its body.
///
/// The defaults are those of the event-stream specification (and botocore): payloads
/// up to 24 MiB, headers up to 128 KiB. One naming scheme: `with_max_*` sets (by
/// value, for chaining), `max_*` gets.
///
/// # Examples
///
/// ```
/// use bedrock_converse::eventstream::{EventStreamCodec, Limits};
///
/// let limits = Limits::default().with_max_payload_len(1 << 20).with_max_headers_len(4096);
/// assert_eq!(limits.max_payload_len(), 1 << 20);
/// assert_eq!(limits.max_headers_len(), 4096);
/// let codec = EventStreamCodec::with_limits(limits);
/// assert_eq!(codec.limits().max_frame_len(), 16 + 4096 + (1 << 20));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_payload_len: u32,
    max_headers_len: u32,
}

impl Limits {
    /// The specification's payload limit: 24 MiB.
    pub const DEFAULT_MAX_PAYLOAD_LEN: u32 = 24 * 1024 * 1024;
    /// The specification's headers limit: 128 KiB.
    pub const DEFAULT_MAX_HEADERS_LEN: u32 = 128 * 1024;

    /// These limits with the largest payload accepted set to `max`.
    #[must_use]
    pub fn with_max_payload_len(mut self, max: u32) -> Self {
        self.max_payload_len = max;
        self
    }

    /// These limits with the largest headers section accepted set to `max`.
    #[must_use]
    pub fn with_max_headers_len(mut self, max: u32) -> Self {
        self.max_headers_len = max;
        self
    }

    /// The largest payload accepted.
    pub fn max_payload_len(&self) -> u32 {
        self.max_payload_len
    }

    /// The largest headers section accepted.
    pub fn max_headers_len(&self) -> u32 {
        self.max_headers_len
    }

    /// The largest whole frame these limits accept.
    pub fn max_frame_len(&self) -> u64 {
        MIN_FRAME_LEN as u64 + u64::from(self.max_headers_len) + u64::from(self.max_payload_len)
    }

    /// The largest payload accepted.
    #[deprecated(note = "use `max_payload_len`")]
    pub fn payload_limit(&self) -> u32 {
        self.max_payload_len
    }

    /// The largest headers section accepted.
    #[deprecated(note = "use `max_headers_len`")]
    pub fn headers_limit(&self) -> u32 {
        self.max_headers_len
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_len: Self::DEFAULT_MAX_PAYLOAD_LEN,
            max_headers_len: Self::DEFAULT_MAX_HEADERS_LEN,
        }
    }
}

/// A CRC-32 hasher with nothing hashed yet.
///
/// `crc32fast::Hasher::new` checks the CPU's features (to pick its PCLMULQDQ or AVX-512
/// kernel) every time; cloning one made once skips that twice per frame.
#[inline]
pub(super) fn new_hasher() -> crc32fast::Hasher {
    static HASHER: OnceLock<crc32fast::Hasher> = OnceLock::new();
    HASHER.get_or_init(crc32fast::Hasher::new).clone()
}

/// A checked prelude: the frame's lengths and its prelude CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prelude {
    pub(crate) total_len: usize,
    pub(crate) headers_len: usize,
    pub(crate) crc: u32,
}

impl Prelude {
    /// Checks the 12 prelude bytes: the CRC first, then the lengths against each other
    /// and against `limits`.
    #[cfg(test)]
    pub(crate) fn parse(bytes: &[u8; PRELUDE_LEN], limits: &Limits) -> Result<Prelude, DecodeError> {
        Self::parse_hashed(bytes, limits).map(|(prelude, _)| prelude)
    }

    /// [`Prelude::parse`], also returning the CRC hasher after bytes 0..8, to continue
    /// over the rest of the frame with [`Prelude::check_body_after_prelude`].
    // Inlined into the decoders: this runs once per frame, and the call's register
    // saves and the result's trip through memory showed in the benchmarks.
    #[inline(always)]
    pub(crate) fn parse_hashed(
        bytes: &[u8; PRELUDE_LEN],
        limits: &Limits,
    ) -> Result<(Prelude, crc32fast::Hasher), DecodeError> {
        let (head, tail) = bytes.split_at(8);
        let total = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let headers = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let actual = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let mut hasher = new_hasher();
        hasher.update(head);
        let expected = hasher.clone().finalize();
        if expected != actual {
            if let Some(looks_like) = super::LooksLike::sniff(bytes) {
                return Err(DecodeError::not_an_event_stream(looks_like, bytes));
            }
            return Err(DecodeError::PreludeCrcMismatch { expected, actual });
        }
        // MIN_FRAME_LEN is 16.
        if total < MIN_FRAME_LEN as u32 {
            return Err(DecodeError::MessageTooShort { len: total });
        }
        if u64::from(total) > limits.max_frame_len() {
            return Err(DecodeError::MessageTooLarge {
                len: u64::from(total),
                max: limits.max_frame_len(),
            });
        }
        let room = total - MIN_FRAME_LEN as u32;
        if headers > room {
            return Err(DecodeError::HeadersLengthOutOfRange {
                headers_len: headers,
                total_len: total,
            });
        }
        if headers > limits.max_headers_len {
            return Err(DecodeError::HeadersTooLarge {
                len: headers,
                max: limits.max_headers_len,
            });
        }
        let payload = room - headers;
        if payload > limits.max_payload_len {
            return Err(DecodeError::PayloadTooLarge {
                len: payload,
                max: limits.max_payload_len,
            });
        }
        let prelude = Prelude {
            // u32 fits in usize on every platform this crate supports (32 and 64 bit).
            total_len: total as usize,
            headers_len: headers as usize,
            crc: actual,
        };
        Ok((prelude, hasher))
    }

    /// Checks a whole frame (`frame.len() == self.total_len`) whose prelude passed
    /// [`Prelude::parse`]: headers first (so errors name the broken header, as
    /// smithy-rs does), then the message CRC, over bytes 0 to `total_len - 4` in one
    /// call.
    pub(crate) fn check_body(&self, frame: &[u8]) -> Result<(), DecodeError> {
        self.check_body_from(frame, new_hasher(), 0)
    }

    /// [`Prelude::check_body`] continuing the message CRC from `hasher`, the state
    /// after bytes 0..8 that [`Prelude::parse_hashed`] returned, so the prelude is
    /// hashed once.
    #[inline]
    pub(crate) fn check_body_after_prelude(
        &self,
        frame: &[u8],
        hasher: crc32fast::Hasher,
    ) -> Result<(), DecodeError> {
        self.check_body_from(frame, hasher, 8)
    }

    #[inline(always)]
    fn check_body_from(
        &self,
        frame: &[u8],
        mut hasher: crc32fast::Hasher,
        hashed: usize,
    ) -> Result<(), DecodeError> {
        // `parse` checked 16 + headers_len <= total_len; the callers pass exactly
        // `total_len` bytes, so these slices are in bounds.
        let (covered, trailer) = frame.split_at(self.total_len - MESSAGE_CRC_LEN);
        header::validate(&covered[PRELUDE_LEN..PRELUDE_LEN + self.headers_len], PRELUDE_LEN)?;
        // The message CRC covers everything but itself, the prelude CRC bytes included.
        hasher.update(&covered[hashed..]);
        let expected = hasher.finalize();
        // `trailer` is the last MESSAGE_CRC_LEN (4) bytes.
        let actual = trailer.first_chunk::<4>().map_or(0, |t| u32::from_be_bytes(*t));
        if expected != actual {
            return Err(DecodeError::MessageCrcMismatch { expected, actual });
        }
        Ok(())
    }
}

/// Reads the first frame of `bytes`, if it is all there, borrowing from `bytes`.
///
/// This is the entry point for callers that only validate and forward: nothing is
/// copied, no reference count is touched. It returns `Ok(None)` when `bytes` holds
/// less than one frame (the prelude, once it is there, is checked at once), and
/// otherwise the frame and its length, so the caller can advance.
///
/// # Errors
///
/// Every frame-level [`DecodeError`]: CRCs, lengths, limits, headers.
///
/// # Examples
///
/// ```
/// use bedrock_converse::eventstream::{decode_frame, Limits, MessageBuilder};
///
/// let msg = MessageBuilder::new().string_header(":event-type", "ping").build(b"{}")?;
/// let wire = msg.as_bytes();
/// let (frame, used) = decode_frame(wire, &Limits::default())?.expect("one whole frame");
/// assert_eq!(used, wire.len());
/// assert_eq!(frame.event_type(), Some("ping"));
/// assert_eq!(decode_frame(&wire[..10], &Limits::default())?, None);
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
// Always inlined into the caller's loop: plain `#[inline]` measured 13.4x instead of
// 14.6x the official decoder on small frames.
#[inline(always)]
pub fn decode_frame<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Frame<'a>, usize)>, EventStreamError> {
    let Some(prelude) = bytes.first_chunk::<PRELUDE_LEN>() else {
        return Ok(None);
    };
    let (prelude, hasher) = match Prelude::parse_hashed(prelude, limits) {
        Ok(p) => p,
        Err(e) => return Err(cold_error(e)),
    };
    let Some(frame) = bytes.get(..prelude.total_len) else {
        return Ok(None);
    };
    if let Err(e) = prelude.check_body_after_prelude(frame, hasher) {
        return Err(cold_error(e));
    }
    Ok(Some((
        Frame {
            bytes: frame,
            headers_end: PRELUDE_LEN + prelude.headers_len,
        },
        prelude.total_len,
    )))
}

/// Wraps a decode error, out of line. With the conversion inline, `decode_frame` on
/// small frames fell from 14.5x to 10.2x the official decoder (`CODEC_BEST_OF=1`
/// benches/codec.rs); out of line and with `decode_frame` always inlined it is back
/// at 14.6x.
#[cold]
#[inline(never)]
pub(super) fn cold_error(e: DecodeError) -> EventStreamError {
    e.into()
}

/// A validated frame borrowed from a caller's buffer (see [`decode_frame`] and
/// [`Framer::decode`](super::Framer::decode)).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    headers_end: usize,
}

impl<'a> Frame<'a> {
    /// A frame (`bytes.len() == total_len`) that passed [`Prelude::check_body`].
    #[inline]
    pub(super) fn from_checked(bytes: &'a [u8], headers_len: usize) -> Frame<'a> {
        Frame {
            bytes,
            headers_end: PRELUDE_LEN + headers_len,
        }
    }

    /// The end of the headers section: `12 + headers_len`.
    #[inline]
    pub(super) fn headers_end(&self) -> usize {
        self.headers_end
    }
}

/// The header shortcuts shared by [`Frame`] and [`Message`]. Each answers Bedrock's
/// usual event layout (`:event-type`, `:content-type: application/json`,
/// `:message-type: event`) by two comparisons with constants, anything else by one walk
/// over the raw headers.
macro_rules! header_shortcuts {
    ($lt:lifetime) => {
        /// What kind of frame this is: an event and its type, an exception, an error.
        #[inline]
        pub fn kind(&self) -> FrameKind<$lt> {
            header::kind(self.header_bytes())
        }

        /// The `:event-type` header (for example `contentBlockDelta`).
        #[inline]
        pub fn event_type(&self) -> Option<&$lt str> {
            header::find_str(self.header_bytes(), names::EVENT_TYPE)
        }

        /// The `:message-type` header: `event`, `exception` or `error`.
        #[inline]
        pub fn message_type(&self) -> Option<&$lt str> {
            header::find_str(self.header_bytes(), names::MESSAGE_TYPE)
        }

        /// The `:exception-type` header of an exception frame.
        #[inline]
        pub fn exception_type(&self) -> Option<&$lt str> {
            header::find_str(self.header_bytes(), names::EXCEPTION_TYPE)
        }

        /// The `:content-type` header (for example `application/json`).
        pub fn content_type(&self) -> Option<&$lt str> {
            header::find_str(self.header_bytes(), names::CONTENT_TYPE)
        }

        /// The `:error-code` header of an error frame.
        pub fn error_code(&self) -> Option<&$lt str> {
            header::find_str(self.header_bytes(), names::ERROR_CODE)
        }

        /// The `:error-message` header of an error frame.
        pub fn error_message(&self) -> Option<&$lt str> {
            header::find_str(self.header_bytes(), names::ERROR_MESSAGE)
        }

        /// The first header with this name.
        pub fn header(&self, name: &str) -> Option<HeaderValue<$lt>> {
            self.headers().get(name)
        }
    };
}

impl<'a> Frame<'a> {
    /// The raw headers section (validated).
    #[inline]
    pub fn header_bytes(&self) -> &'a [u8] {
        self.bytes.get(PRELUDE_LEN..self.headers_end).unwrap_or_default()
    }

    /// The headers in wire order, borrowed from the frame.
    pub fn headers(&self) -> Headers<'a> {
        Headers::new(self.bytes.get(PRELUDE_LEN..self.headers_end).unwrap_or_default())
    }

    /// The payload, borrowed from the frame.
    pub fn payload(&self) -> &'a [u8] {
        let end = self.bytes.len().saturating_sub(MESSAGE_CRC_LEN);
        self.bytes.get(self.headers_end..end).unwrap_or_default()
    }

    /// The whole frame as it was on the wire, CRCs included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    header_shortcuts!('a);
}

impl fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("headers", &DebugHeaders(self.headers()))
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

struct DebugHeaders<'a>(Headers<'a>);

impl fmt::Debug for DebugHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.clone()).finish()
    }
}

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
        Frame {
            bytes: &self.frame,
            headers_end: self.headers_end,
        }
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
    fn prelude_checks_crc_before_lengths() {
        let mut p = [0u8; 12];
        p[3] = 8; // total 8 < 16, but with a wrong CRC
        assert!(matches!(
            Prelude::parse(&p, &Limits::default()),
            Err(DecodeError::PreludeCrcMismatch { .. })
        ));
        let crc = crc32fast::hash(&p[..8]);
        p[8..].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            Prelude::parse(&p, &Limits::default()),
            Err(DecodeError::MessageTooShort { len: 8 })
        ));
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
