//! The prelude and its checks, the size limits, and the message CRC.
//!
//! ```text
//!  0               4               8               12
//! +---------------+---------------+---------------+--------------------+---------+---------------+
//! | total length  | headers length|  prelude CRC  | headers            | payload |  message CRC  |
//! |    u32 BE     |    u32 BE     | CRC-32(0..8)  | (headers length)   |         | CRC-32(0..-4) |
//! +---------------+---------------+---------------+--------------------+---------+---------------+
//! |<------------------------------------- total length ------------------------------------------>|
//! ```

use std::sync::OnceLock;

use super::error::DecodeError;
use super::header;

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
    #[inline]
    pub fn max_payload_len(&self) -> u32 {
        self.max_payload_len
    }

    /// The largest headers section accepted.
    #[inline]
    pub fn max_headers_len(&self) -> u32 {
        self.max_headers_len
    }

    /// The largest whole frame these limits accept.
    #[inline]
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

    /// Checks the 12 prelude bytes as `Prelude::parse` does (the CRC first, then the
    /// lengths against each other and against `limits`), also returning the CRC hasher
    /// after bytes 0..8, to continue over the rest of the frame with
    /// [`Prelude::check_body_after_prelude`].
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
    /// [`Prelude::parse_hashed`]: headers first (so errors name the broken header, as
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
