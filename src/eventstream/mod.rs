//! Layer 1: the `application/vnd.amazon.eventstream` wire format.
//!
//! Frames, headers of all ten value types, CRCs and limits; a zero-copy
//! [`tokio_util::codec::Decoder`] and [`Encoder`](tokio_util::codec::Encoder)
//! ([`EventStreamCodec`]), a borrowing entry point for callers that only validate and
//! forward ([`decode_frame`]), and [`MessageBuilder`] for writing frames. No runtime,
//! no JSON, and nothing of the layers above.
//!
//! One incremental [`Framer`] owns the prelude, the limits and the frame-length state;
//! the codec is built on it, and so are callers that gather frames from their own
//! buffers or validate chunks as they forward them. "Which event is this frame?" is
//! answered here too ([`Frame::kind`], [`Message::event_type`]), with the header names
//! spelled once ([`names`]). Errors ([`EventStreamError`]) keep what the peer sent
//! wrong ([`DecodeError`]) apart from what cannot be encoded ([`EncodeError`]).
//!
//! ```text
//!  0               4               8               12
//! +---------------+---------------+---------------+--------------------+---------+---------------+
//! | total length  | headers length|  prelude CRC  | headers            | payload |  message CRC  |
//! |    u32 BE     |    u32 BE     | CRC-32(0..8)  | (headers length)   |         | CRC-32(0..-4) |
//! +---------------+---------------+---------------+--------------------+---------+---------------+
//!
//! header: | name len u8 | name (UTF-8) | type u8 | value |
//! types:  0 true, 1 false (no value), 2 i8, 3 i16, 4 i32, 5 i64,
//!         6 bytes and 7 string (u16 length + data), 8 timestamp (i64 ms), 9 uuid (16 bytes)
//! ```
//!
//! CRCs are CRC-32/IEEE (as zlib). All integers are big-endian.

mod codec;
mod error;
mod frame;
mod framer;
mod header;
mod message;
mod prelude;

pub use codec::EventStreamCodec;
pub use error::{DecodeError, EncodeError, EventStreamError, LooksLike};
pub use frame::{decode_frame, Frame};
pub use framer::{Fed, Framer};
pub use header::{names, FrameKind, HeaderValue, Headers};
pub use message::{Message, MessageBuilder};
pub use prelude::{Limits, MESSAGE_CRC_LEN, MIN_FRAME_LEN, PRELUDE_LEN};
