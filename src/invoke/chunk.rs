//! [`ChunkDecoder`]: one `InvokeModelWithResponseStream` frame in, the native model
//! event it carries out, as bytes borrowed from a buffer the decoder reuses.

use std::borrow::Cow;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::Deserialize;

use crate::converse::ServiceException;
use crate::eventstream::{Frame, Message};

use super::error::{ChunkProblem, InvokeError};

/// The `:event-type` of the frames that carry model output.
pub const CHUNK_EVENT_TYPE: &str = "chunk";

/// The exception members of the service model's `ResponseStream` union, as they
/// appear in `:exception-type`.
pub const STREAM_EXCEPTION_TYPES: [&str; 6] = [
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "modelTimeoutException",
    "serviceUnavailableException",
];

/// Standard alphabet; padding accepted whether present or not (the service pads).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The `PayloadPart` JSON: `{"bytes":"<base64>"}`. The string borrows from the frame
/// unless it holds JSON escapes.
#[derive(Deserialize)]
struct PayloadPartWire<'a> {
    #[serde(borrow)]
    bytes: Cow<'a, str>,
}

/// Decodes the frames of an `InvokeModelWithResponseStream` body.
///
/// A `chunk` event's payload is `{"bytes":"<base64>"}`; the decoder base64-decodes it
/// into a buffer it keeps, and returns the native model event (for Anthropic models,
/// one Messages stream event as JSON) borrowed from that buffer. Once the buffer has
/// grown to the largest part, decoding allocates nothing.
///
/// ```text
/// frame  :message-type event      :event-type chunk      payload {"bytes":"eyJ0eXBlIjoi..."}
///                                                                     │ base64
///                                                                     ▼
/// native {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}
/// frame  :message-type exception  :exception-type throttlingException ─► InvokeError::Service
/// ```
///
/// # Example
///
/// ```
/// use bedrock_converse::invoke::{chunk_frame, ChunkDecoder};
///
/// let frame = chunk_frame(br#"{"type":"ping"}"#)?;
/// let mut decoder = ChunkDecoder::new();
/// let event = decoder.decode(frame.as_frame())?;
/// assert_eq!(event, Some(&br#"{"type":"ping"}"#[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkDecoder {
    buf: Vec<u8>,
    max_part_len: usize,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkDecoder {
    /// The service model's limit on a `PayloadPart` (`PartBody`, 1,000,000 bytes).
    pub const DEFAULT_MAX_PART_LEN: usize = 1_000_000;

    /// A decoder with the default part limit and an empty buffer.
    pub fn new() -> Self {
        Self::with_max_part_len(Self::DEFAULT_MAX_PART_LEN)
    }

    /// A decoder that refuses parts larger than `max` decoded bytes.
    pub fn with_max_part_len(max: usize) -> Self {
        ChunkDecoder {
            buf: Vec::new(),
            max_part_len: max,
        }
    }

    /// The largest decoded part accepted.
    pub fn max_part_len(&self) -> usize {
        self.max_part_len
    }

    /// Decodes one frame of the response stream.
    ///
    /// Returns `Some(event)` for a `chunk`, `None` for an event type this decoder does
    /// not know (skipped, as the AWS SDKs skip unknown union members).
    ///
    /// # Errors
    ///
    /// [`InvokeError::Service`] for an exception frame (the six `ResponseStream`
    /// exceptions, and any other `:exception-type`), [`InvokeError::ErrorFrame`] for an
    /// error frame, [`InvokeError::MissingHeader`] / [`InvokeError::UnknownMessageType`]
    /// for frames that are neither, [`InvokeError::InvalidChunk`] for a bad payload.
    pub fn decode<'s>(&'s mut self, frame: Frame<'_>) -> Result<Option<&'s [u8]>, InvokeError> {
        match frame.message_type() {
            Some("event") => match frame.event_type() {
                Some(CHUNK_EVENT_TYPE) => self.decode_payload(frame.payload()).map(Some),
                Some(_) => Ok(None),
                None => Err(InvokeError::MissingHeader {
                    header: ":event-type",
                }),
            },
            Some("exception") => Err(service_exception(&frame)),
            Some("error") => Err(InvokeError::ErrorFrame {
                code: frame.error_code().unwrap_or_default().to_owned(),
                message: frame.error_message().unwrap_or_default().to_owned(),
            }),
            Some(other) => Err(InvokeError::UnknownMessageType {
                message_type: other.to_owned(),
            }),
            None => Err(InvokeError::MissingHeader {
                header: ":message-type",
            }),
        }
    }

    /// [`decode`](Self::decode) for a decoded [`Message`].
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    pub fn decode_message<'s>(&'s mut self, message: &Message) -> Result<Option<&'s [u8]>, InvokeError> {
        self.decode(message.as_frame())
    }

    /// Decodes a `chunk` event's JSON payload, `{"bytes":"<base64>"}`, into the
    /// native event it carries.
    ///
    /// # Errors
    ///
    /// [`InvokeError::InvalidChunk`] when the payload is not that JSON, the base64 is
    /// invalid, or the part exceeds [`max_part_len`](Self::max_part_len). The check
    /// against the limit comes before the buffer grows.
    pub fn decode_payload(&mut self, payload: &[u8]) -> Result<&[u8], InvokeError> {
        let part: PayloadPartWire<'_> = serde_json::from_slice(payload).map_err(|e| {
            InvokeError::InvalidChunk(ChunkProblem::NotPayloadPart {
                reason: e.to_string(),
            })
        })?;
        let encoded = part.bytes.as_bytes();
        // An upper bound of the decoded length: 3 bytes per 4 characters, rounded up.
        let estimate = encoded.len().div_ceil(4).saturating_mul(3);
        if estimate > self.max_part_len.saturating_add(2) {
            return Err(InvokeError::InvalidChunk(ChunkProblem::TooLarge {
                len: estimate,
                max: self.max_part_len,
            }));
        }
        self.buf.clear();
        if let Err(e) = BASE64.decode_vec(encoded, &mut self.buf) {
            self.buf.clear();
            return Err(InvokeError::InvalidChunk(ChunkProblem::InvalidBase64 {
                reason: e.to_string(),
            }));
        }
        if self.buf.len() > self.max_part_len {
            let len = self.buf.len();
            self.buf.clear();
            return Err(InvokeError::InvalidChunk(ChunkProblem::TooLarge {
                len,
                max: self.max_part_len,
            }));
        }
        Ok(&self.buf)
    }

    /// The last part decoded (empty after an error).
    pub fn last(&self) -> &[u8] {
        &self.buf
    }

    /// The capacity of the reused buffer (for tests and metrics).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Reads an exception frame into [`InvokeError::Service`] (or a missing-header error).
fn service_exception(frame: &Frame<'_>) -> InvokeError {
    let Some(name) = frame.exception_type() else {
        return InvokeError::MissingHeader {
            header: ":exception-type",
        };
    };
    InvokeError::Service(ServiceException::from_wire(name, frame.payload()))
}
