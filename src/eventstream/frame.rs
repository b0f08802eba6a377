//! The borrowed [`Frame`]: a validated frame in a caller's buffer, and
//! [`decode_frame`], the entry point that reads one without copying.

use std::fmt;

use super::error::{DecodeError, EventStreamError};
use super::header::{self, names, FrameKind, HeaderValue, Headers};
use super::prelude::{Limits, Prelude, MESSAGE_CRC_LEN, PRELUDE_LEN};

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
        Frame::from_checked(frame, prelude.headers_len),
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

    /// A checked frame whose headers section ends at `headers_end`.
    #[inline]
    pub(super) fn from_checked_end(bytes: &'a [u8], headers_end: usize) -> Frame<'a> {
        Frame { bytes, headers_end }
    }

    /// The end of the headers section: `12 + headers_len`.
    #[inline]
    pub(super) fn headers_end(&self) -> usize {
        self.headers_end
    }
}

/// The header shortcuts shared by [`Frame`] and [`Message`](crate::eventstream::Message). Each answers Bedrock's
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

pub(super) use header_shortcuts;

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

/// A frame's headers as a `Debug` map.
pub(super) struct DebugHeaders<'a>(pub(super) Headers<'a>);

impl fmt::Debug for DebugHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.clone()).finish()
    }
}
