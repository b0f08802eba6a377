//! [`EventStreamCodec`]: the `tokio_util` [`Decoder`] and [`Encoder`] for event-stream
//! messages.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::EventStreamError;
use super::framer::Framer;
use super::message::Message;
use super::prelude::Limits;

/// Decoder and encoder of `application/vnd.amazon.eventstream` messages.
///
/// Decoding is zero-copy: each [`Message`] is one frame split off the read buffer.
/// The [`Framer`] underneath checks the prelude (CRC first, then lengths against
/// [`Limits`]) as soon as its 12 bytes arrive, before anything is reserved for the
/// frame's body, so a hostile length prefix fails at once. A half-received frame is
/// never re-parsed.
///
/// # After an error
///
/// The format has no resync marker, so after any decode error the codec is *poisoned*:
/// the bytes of the failed frame stay in the buffer untouched (for inspection), and
/// every later `decode` or `decode_eof` returns
/// [`DecodeError::Poisoned`](super::DecodeError::Poisoned).
/// [`reset`](Self::reset) makes it ready for a new stream.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use tokio_util::codec::{Decoder, Encoder};
/// use bedrock_converse::eventstream::{EventStreamCodec, MessageBuilder};
///
/// let mut codec = EventStreamCodec::default();
/// let msg = MessageBuilder::new().string_header(":event-type", "messageStop").build(b"{}")?;
/// let mut wire = BytesMut::new();
/// codec.encode(&msg, &mut wire)?;
///
/// let mut partial = wire.split_to(5);
/// assert!(codec.decode(&mut partial)?.is_none()); // short input is not an error
/// partial.unsplit(wire);
/// let decoded = codec.decode(&mut partial)?.expect("a whole frame");
/// assert_eq!(decoded.event_type(), Some("messageStop"));
/// assert_eq!(decoded.payload(), b"{}");
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
///
/// With a `FramedRead` over any `AsyncRead`:
///
/// ```ignore
/// use futures_util::StreamExt;
/// use tokio_util::codec::FramedRead;
///
/// let mut frames = FramedRead::new(body_reader, EventStreamCodec::default());
/// while let Some(message) = frames.next().await {
///     let message = message?;
///     println!("{:?} {} bytes", message.event_type(), message.payload().len());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct EventStreamCodec {
    framer: Framer,
}

impl Default for EventStreamCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl EventStreamCodec {
    /// A codec with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A codec with these limits.
    pub fn with_limits(limits: Limits) -> Self {
        EventStreamCodec {
            framer: Framer::new(limits),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.framer.limits()
    }

    /// The framer underneath (its state is the codec's decode state).
    pub fn framer(&self) -> &Framer {
        &self.framer
    }

    /// The framer underneath, for a caller that takes whole frames out of its own
    /// buffers between calls to `decode` (as [`Framer::decode_bytes`] does) with the
    /// same state.
    pub fn framer_mut(&mut self) -> &mut Framer {
        &mut self.framer
    }

    /// Whether a decode error has poisoned the codec (see the type's docs).
    pub fn is_poisoned(&self) -> bool {
        self.framer.is_poisoned()
    }

    /// Forgets any partial frame and any earlier error, ready for a new stream. The
    /// caller clears its buffer.
    pub fn reset(&mut self) {
        self.framer.reset();
    }
}

impl Decoder for EventStreamCodec {
    type Item = Message;
    type Error = EventStreamError;

    #[inline]
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, EventStreamError> {
        let (total, headers_end) = match self.framer.decode(src)? {
            Some(frame) => (frame.as_bytes().len(), frame.headers_end()),
            None => {
                // Reserve only after the prelude passed its checks and limits.
                if let Some(total) = self.framer.frame_len() {
                    src.reserve(total.saturating_sub(src.len()));
                }
                return Ok(None);
            }
        };
        let frame = src.split_to(total).freeze();
        Ok(Some(Message::from_checked_end(frame, headers_end)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, EventStreamError> {
        let (total, headers_end) = match self.framer.decode_eof(buf)? {
            Some(frame) => (frame.as_bytes().len(), frame.headers_end()),
            None => return Ok(None),
        };
        let frame = buf.split_to(total).freeze();
        Ok(Some(Message::from_checked_end(frame, headers_end)))
    }
}

impl Encoder<&Message> for EventStreamCodec {
    type Error = EventStreamError;

    /// Writes the message's frame as it is (it was encoded, or checked, when it was
    /// made).
    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), EventStreamError> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Encoder<Message> for EventStreamCodec {
    type Error = EventStreamError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), EventStreamError> {
        self.encode(&item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::{DecodeError, LooksLike, MessageBuilder, PRELUDE_LEN};

    #[test]
    fn poisoned_after_error_and_reset_recovers() {
        let mut codec = EventStreamCodec::new();
        let mut buf = BytesMut::from(&b"{\"message\":\"no\"}"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            EventStreamError::Decode(DecodeError::NotAnEventStream {
                looks_like: LooksLike::Json,
                ..
            })
        ));
        assert!(codec.is_poisoned());
        assert!(matches!(
            codec.decode(&mut buf),
            Err(EventStreamError::Decode(DecodeError::Poisoned))
        ));
        assert_eq!(buf.len(), 16, "the failed bytes stay for inspection");
        codec.reset();
        let msg = MessageBuilder::new().build(b"x").unwrap();
        let mut buf = BytesMut::from(msg.as_bytes());
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
    }

    #[test]
    fn eof_inside_frame_is_truncated() {
        let msg = MessageBuilder::new()
            .string_header("a", "b")
            .build(b"payload")
            .unwrap();
        let wire = msg.as_bytes();
        for cut in 1..wire.len() {
            let mut codec = EventStreamCodec::new();
            let mut buf = BytesMut::from(&wire[..cut]);
            match codec.decode_eof(&mut buf) {
                Err(EventStreamError::Decode(DecodeError::Truncated { buffered, missing })) => {
                    assert_eq!(buffered, cut);
                    if cut >= PRELUDE_LEN {
                        assert_eq!(missing, wire.len() - cut);
                    }
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn short_json_body_at_eof_is_named() {
        let mut codec = EventStreamCodec::new();
        let mut buf = BytesMut::from(&b"{}"[..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(EventStreamError::Decode(DecodeError::NotAnEventStream {
                looks_like: LooksLike::Json,
                ..
            }))
        ));
    }

    #[test]
    fn hostile_length_reserves_nothing() {
        let mut p = [0u8; 12];
        p[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let crc = crc32fast::hash(&p[..8]);
        p[8..].copy_from_slice(&crc.to_be_bytes());
        let mut buf = BytesMut::with_capacity(12);
        buf.extend_from_slice(&p);
        let cap = buf.capacity();
        let mut codec = EventStreamCodec::new();
        assert!(matches!(
            codec.decode(&mut buf),
            Err(EventStreamError::Decode(DecodeError::MessageTooLarge { .. }))
        ));
        assert_eq!(buf.capacity(), cap);
    }
}
