//! [`Framer`]: the one incremental state machine that finds frame boundaries, checks
//! each prelude (CRC, then lengths against [`Limits`]) before anything is reserved, and
//! validates each frame. The codec, the client's stream and the gateway's validator all
//! use it.
//!
//! It reads in one of two modes, chosen per stream by the methods called:
//!
//! - **buffer mode** ([`Framer::decode`]): the caller keeps the bytes of the frame in
//!   progress in one buffer (a `BytesMut`) and hands its start in on each call. The
//!   prelude is parsed once; [`Framer::frame_len`] then says how much to reserve or
//!   gather, and the whole frame comes back as a borrowed [`Frame`].
//! - **chunk mode** ([`Framer::feed`]): the caller forwards chunks as they come and the
//!   framer keeps nothing of them but the frame's headers section (for
//!   [`Framer::last_kind`]): the message CRC runs across chunk boundaries, and each call
//!   says where in the chunk a frame ended.
//!
//! ```text
//!                 prelude passed              all `total length` bytes in
//!   +------+  (limits checked, then  +-------------+   (headers, message CRC)
//!   | Head | ----------------------> | Data(total) | --------------------------> frame,
//!   +------+  reserve what remains)  +-------------+                              back to Head
//!        \                                  |
//!         +--------- any error -------------+----> Failed (every later call: Poisoned)
//! ```

use bytes::Bytes;

use super::error::{DecodeError, EventStreamError, LooksLike};
use super::frame::Frame;
use super::header::{self, FrameKind, Headers};
use super::message::Message;
use super::prelude::{new_hasher, Limits, Prelude, MESSAGE_CRC_LEN, PRELUDE_LEN};

/// Where the framer is inside the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the 12 bytes of the next prelude.
    Head,
    /// The prelude was checked; waiting for the rest of the frame.
    Data(Prelude),
    /// A frame failed; there is no resync marker, so every later call fails.
    Failed,
}

/// What chunk mode keeps of the frame in progress.
#[derive(Debug, Clone)]
struct Scan {
    /// The prelude, while it arrives.
    prelude: [u8; PRELUDE_LEN],
    /// Bytes of the frame in progress seen so far.
    seen: usize,
    /// The message CRC over those bytes.
    hasher: crc32fast::Hasher,
    /// The headers section of the frame in progress (or of the last whole frame, after
    /// [`Fed::Frame`]). Its capacity is reused: no allocation in steady state.
    headers: Vec<u8>,
    /// The trailing message CRC, while it arrives.
    crc: [u8; MESSAGE_CRC_LEN],
}

/// What [`Framer::feed`] found in a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Fed {
    /// Every byte of the chunk belongs to the frame in progress, which is not complete.
    Partial,
    /// A frame ended `end` bytes into the chunk (`chunk[..end]` is its last part) and
    /// passed every check; [`Framer::last_kind`] and [`Framer::last_headers`] describe
    /// it. Feed `chunk[end..]` next.
    Frame {
        /// Offset in the chunk just past the frame's last byte.
        end: usize,
    },
}

/// The incremental event-stream framer: it finds frame boundaries, checks each prelude
/// (CRC, then lengths against [`Limits`]) before anything is reserved, and validates
/// each frame. It reads in one of two modes, chosen per stream by the methods called:
///
/// - **buffer mode** ([`decode`](Self::decode), [`decode_bytes`](Self::decode_bytes)):
///   the caller keeps the bytes of the frame in progress in one buffer and hands its
///   start in on each call. The prelude is parsed once; [`frame_len`](Self::frame_len)
///   then says how much to reserve or gather, and the whole frame comes back borrowed.
/// - **chunk mode** ([`feed`](Self::feed)): the caller forwards chunks as they come and
///   the framer keeps nothing of them but the frame's headers section (for
///   [`last_kind`](Self::last_kind)); the message CRC runs across chunk boundaries, and
///   each call says where in the chunk a frame ended.
///
/// # After an error
///
/// The format has no resync marker, so after any error the framer is *poisoned*: every
/// later call returns [`DecodeError::Poisoned`]. [`reset`](Self::reset) makes it ready
/// for a new stream.
///
/// # Examples
///
/// Buffer mode, with the frame arriving in two reads:
///
/// ```
/// use bedrock_converse::eventstream::{Framer, FrameKind, Limits, MessageBuilder};
///
/// let msg = MessageBuilder::new().string_header(":event-type", "ping").build(b"{}")?;
/// let wire = msg.as_bytes();
/// let mut framer = Framer::new(Limits::default());
/// assert!(framer.decode(&wire[..14])?.is_none()); // the prelude is checked...
/// assert_eq!(framer.frame_len(), Some(wire.len())); // ...so the caller can reserve
/// let frame = framer.decode(wire)?.expect("the whole frame");
/// assert_eq!(frame.event_type(), Some("ping"));
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
///
/// Chunk mode, forwarding chunks without gathering them:
///
/// ```
/// use bedrock_converse::eventstream::{Fed, Framer, FrameKind, Limits, MessageBuilder};
///
/// let msg = MessageBuilder::new()
///     .string_header(":event-type", "contentBlockDelta")
///     .string_header(":content-type", "application/json")
///     .string_header(":message-type", "event")
///     .build(b"{}")?;
/// let wire = msg.as_bytes();
/// let mut framer = Framer::new(Limits::default());
/// assert_eq!(framer.feed(&wire[..30])?, Fed::Partial);
/// assert_eq!(framer.feed(&wire[30..])?, Fed::Frame { end: wire.len() - 30 });
/// assert_eq!(framer.last_kind(), FrameKind::Event { event_type: "contentBlockDelta" });
/// framer.feed_eof()?;
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Framer {
    limits: Limits,
    state: State,
    scan: Scan,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Framer {
    /// A framer applying these limits to every frame.
    pub fn new(limits: Limits) -> Self {
        Framer {
            limits,
            state: State::Head,
            scan: Scan {
                prelude: [0; PRELUDE_LEN],
                seen: 0,
                hasher: new_hasher(),
                headers: Vec::new(),
                crc: [0; MESSAGE_CRC_LEN],
            },
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether an error has poisoned the framer.
    pub fn is_poisoned(&self) -> bool {
        self.state == State::Failed
    }

    /// Forgets any partial frame and any earlier error, ready for a new stream.
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.scan.seen = 0;
        self.scan.headers.clear();
    }

    /// The total length of the frame in progress, once its prelude has passed its
    /// checks: how much a caller gathering the frame should reserve. `None` while the
    /// prelude is incomplete (or after an error).
    pub fn frame_len(&self) -> Option<usize> {
        match self.state {
            State::Data(prelude) => Some(prelude.total_len),
            State::Head | State::Failed => None,
        }
    }

    /// Poisons the framer with `e`.
    #[cold]
    fn fail(&mut self, e: DecodeError) -> EventStreamError {
        self.state = State::Failed;
        e.into()
    }

    // ===== buffer mode =====

    /// Reads the frame at the start of `buf`: `Ok(None)` until all of it is there
    /// (short input is not an error), then the validated frame, borrowed from `buf`.
    /// The caller advances past `frame.as_bytes().len()` bytes before the next call;
    /// until then it hands in the same frame start, with more bytes after it.
    ///
    /// The prelude is checked as soon as its 12 bytes are in and is not parsed again;
    /// from then on [`frame_len`](Self::frame_len) says how long the frame is.
    ///
    /// # Errors
    ///
    /// Every frame-level [`DecodeError`] (CRCs, lengths, limits, headers), or
    /// [`DecodeError::Poisoned`] after an earlier error.
    #[inline]
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Option<Frame<'a>>, EventStreamError> {
        let checked = match self.state {
            State::Head => {
                let Some(head) = buf.first_chunk::<PRELUDE_LEN>() else {
                    return Ok(None);
                };
                let (prelude, hasher) = match Prelude::parse_hashed(head, &self.limits) {
                    Ok(p) => p,
                    Err(e) => return Err(self.fail(e)),
                };
                let Some(frame) = buf.get(..prelude.total_len) else {
                    self.state = State::Data(prelude);
                    return Ok(None);
                };
                // The common case: the whole frame is here, and the CRC continues from
                // the prelude's hasher.
                prelude
                    .check_body_after_prelude(frame, hasher)
                    .map(|()| (prelude, frame))
            }
            State::Data(prelude) => {
                let Some(frame) = buf.get(..prelude.total_len) else {
                    return Ok(None);
                };
                prelude.check_body(frame).map(|()| (prelude, frame))
            }
            State::Failed => return Err(DecodeError::Poisoned.into()),
        };
        match checked {
            Ok((prelude, frame)) => {
                self.state = State::Head;
                Ok(Some(Frame::from_checked(frame, prelude.headers_len)))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// [`decode`](Self::decode) for a frame at the start of a [`Bytes`]: once it is
    /// whole, it is split off `buf` as a [`Message`] (zero-copy: one reference count,
    /// no bytes copied). `buf` is left as it was while the frame is incomplete.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    #[inline]
    pub fn decode_bytes(&mut self, buf: &mut Bytes) -> Result<Option<Message>, EventStreamError> {
        let (total, headers_end) = match self.decode(buf)? {
            Some(frame) => (frame.as_bytes().len(), frame.headers_end()),
            None => return Ok(None),
        };
        Ok(Some(Message::from_checked_end(buf.split_to(total), headers_end)))
    }

    /// [`decode`](Self::decode) at the end of the input: a frame if one is whole,
    /// `Ok(None)` if `buf` is empty, otherwise an error.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode); [`DecodeError::NotAnEventStream`] if the leftover
    /// bytes are plainly text of a known kind, else [`DecodeError::Truncated`].
    pub fn decode_eof<'a>(&mut self, buf: &'a [u8]) -> Result<Option<Frame<'a>>, EventStreamError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let e = match self.state {
            State::Head => match LooksLike::sniff(buf) {
                Some(looks_like) => DecodeError::not_an_event_stream(looks_like, buf),
                None => DecodeError::Truncated {
                    buffered: buf.len(),
                    missing: PRELUDE_LEN.saturating_sub(buf.len()),
                },
            },
            State::Data(prelude) => DecodeError::Truncated {
                buffered: buf.len(),
                missing: prelude.total_len.saturating_sub(buf.len()),
            },
            State::Failed => DecodeError::Poisoned,
        };
        Err(self.fail(e))
    }

    // ===== chunk mode =====

    /// Feeds the next bytes of the stream, consuming them up to the end of the frame in
    /// progress. Nothing of the chunk is kept but the frame's headers section; the
    /// message CRC continues across chunk boundaries.
    ///
    /// Call it again with `chunk[end..]` after [`Fed::Frame`]; an empty chunk gives
    /// [`Fed::Partial`].
    ///
    /// # Errors
    ///
    /// Every frame-level [`DecodeError`], reported at the same point of the stream and
    /// with the same fields as [`decode`](Self::decode) would (a prelude error once the
    /// prelude is in, every other error once the frame is), or
    /// [`DecodeError::Poisoned`] after an earlier error.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Fed, EventStreamError> {
        let mut used = 0;
        loop {
            let rest = chunk.get(used..).unwrap_or_default();
            let prelude = match self.state {
                State::Failed => return Err(DecodeError::Poisoned.into()),
                State::Data(prelude) => prelude,
                State::Head => {
                    // `seen < PRELUDE_LEN` in this state.
                    let seen = self.scan.seen;
                    let take = (PRELUDE_LEN - seen).min(rest.len());
                    self.scan.prelude[seen..seen + take].copy_from_slice(&rest[..take]);
                    self.scan.seen += take;
                    used += take;
                    if self.scan.seen < PRELUDE_LEN {
                        return Ok(Fed::Partial);
                    }
                    let (prelude, mut hasher) = match Prelude::parse_hashed(&self.scan.prelude, &self.limits)
                    {
                        Ok(p) => p,
                        Err(e) => return Err(self.fail(e)),
                    };
                    hasher.update(&self.scan.prelude[8..]);
                    self.scan.hasher = hasher;
                    self.scan.headers.clear();
                    // Bounded by the limits just checked.
                    self.scan.headers.reserve(prelude.headers_len);
                    self.state = State::Data(prelude);
                    continue;
                }
            };
            let end = self.take_body(prelude, rest);
            used += end;
            if self.scan.seen < prelude.total_len {
                return Ok(Fed::Partial);
            }
            return match self.finish_frame(prelude) {
                Ok(()) => Ok(Fed::Frame { end: used }),
                Err(e) => Err(self.fail(e)),
            };
        }
    }

    /// Takes what `rest` holds of the frame after its prelude: hashes it, keeps the
    /// headers and the trailing CRC. Returns the bytes taken.
    fn take_body(&mut self, prelude: Prelude, rest: &[u8]) -> usize {
        let scan = &mut self.scan;
        let take = (prelude.total_len - scan.seen).min(rest.len());
        let part = &rest[..take];
        let (start, end) = (scan.seen, scan.seen + take);
        let crc_start = prelude.total_len - MESSAGE_CRC_LEN;
        // The headers: frame bytes PRELUDE_LEN .. PRELUDE_LEN + headers_len.
        let headers_end = PRELUDE_LEN + prelude.headers_len;
        if start < headers_end {
            let upto = headers_end.min(end);
            scan.headers.extend_from_slice(&part[..upto - start]);
        }
        // Everything but the trailing CRC is hashed.
        if start < crc_start {
            scan.hasher.update(&part[..crc_start.min(end) - start]);
        }
        if end > crc_start {
            let from = start.max(crc_start);
            scan.crc[from - crc_start..end - crc_start].copy_from_slice(&part[from - start..]);
        }
        scan.seen = end;
        take
    }

    /// Checks a frame whose last byte chunk mode just took: headers, then the message
    /// CRC (the order of buffer mode).
    fn finish_frame(&mut self, prelude: Prelude) -> Result<(), DecodeError> {
        header::validate(&self.scan.headers, PRELUDE_LEN)?;
        let expected = std::mem::replace(&mut self.scan.hasher, new_hasher()).finalize();
        let actual = u32::from_be_bytes(self.scan.crc);
        if expected != actual {
            return Err(DecodeError::MessageCrcMismatch { expected, actual });
        }
        debug_assert_eq!(self.scan.seen, prelude.total_len);
        self.scan.seen = 0;
        self.state = State::Head;
        Ok(())
    }

    /// The kind of the last frame [`feed`](Self::feed) completed (of a frame in
    /// progress: of the headers that arrived so far, unvalidated; best not asked).
    pub fn last_kind(&self) -> FrameKind<'_> {
        header::kind(&self.scan.headers)
    }

    /// The headers of the last frame [`feed`](Self::feed) completed, in wire order.
    pub fn last_headers(&self) -> Headers<'_> {
        Headers::new(&self.scan.headers)
    }

    /// Ends a stream read in chunk mode.
    ///
    /// # Errors
    ///
    /// [`DecodeError::NotAnEventStream`] or [`DecodeError::Truncated`] if it ended
    /// inside a frame, [`DecodeError::Poisoned`] after an earlier error.
    pub fn feed_eof(&mut self) -> Result<(), EventStreamError> {
        let seen = self.scan.seen;
        let e = match self.state {
            State::Head if seen == 0 => return Ok(()),
            State::Head => {
                let buffered = &self.scan.prelude[..seen];
                match LooksLike::sniff(buffered) {
                    Some(looks_like) => DecodeError::not_an_event_stream(looks_like, buffered),
                    None => DecodeError::Truncated {
                        buffered: seen,
                        missing: PRELUDE_LEN - seen,
                    },
                }
            }
            State::Data(prelude) => DecodeError::Truncated {
                buffered: seen,
                missing: prelude.total_len - seen,
            },
            State::Failed => DecodeError::Poisoned,
        };
        Err(self.fail(e))
    }
}
