//! The validating pass-through: event-stream bytes in, the same bytes out, frame by
//! frame, each frame checked (CRCs, lengths, headers) before it is forwarded.
//!
//! Whole frames inside an upstream chunk are forwarded as slices of that chunk (no copy,
//! no re-encoding); only a frame split across two chunks is gathered in a buffer, so
//! memory per stream is bounded by the largest frame the [`Limits`] allow.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use super::quiet::QuietTimer;
use crate::converse::TokenUsage;
use crate::eventstream::{EventStreamError, Frame, Framer, Limits, Message, MessageBuilder, PRELUDE_LEN};
use crate::invoke::{ChunkDecoder, UsageReader, CHUNK_EVENT_TYPE};

#[derive(Deserialize)]
struct MetadataPayload {
    usage: Option<TokenUsage>,
}

/// Checks an event-stream body chunk by chunk and queues the validated bytes.
///
/// Feed chunks with [`push`](Self::push), take validated frame-aligned bytes with
/// [`pop_ready`](Self::pop_ready), and call [`finish`](Self::finish) at the end of the
/// body. After an error, everything validated before it is still queued; nothing
/// after it is forwarded.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use bedrock_converse::eventstream::{Limits, MessageBuilder};
/// use bedrock_converse::proxy::FrameValidator;
///
/// let frame = MessageBuilder::new().string_header(":event-type", "messageStop").build(b"{}")?;
/// let wire = frame.into_bytes();
/// let mut validator = FrameValidator::new(Limits::default());
/// validator.push(wire.slice(..7))?; // half a prelude: nothing ready yet
/// assert!(validator.pop_ready().is_none());
/// validator.push(wire.slice(7..))?;
/// assert_eq!(validator.pop_ready().as_deref(), Some(&wire[..]));
/// validator.finish()?;
/// assert_eq!(validator.frames(), 1);
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
#[derive(Debug)]
pub struct FrameValidator {
    /// The prelude, limits and frame-length state (layer 1's one framer).
    framer: Framer,
    /// The start of a frame whose end has not arrived yet.
    pending: BytesMut,
    ready: VecDeque<Bytes>,
    tally: Tally,
}

/// What passed so far.
#[derive(Debug)]
struct Tally {
    frames: u64,
    bytes: u64,
    usage: Option<TokenUsage>,
    source: UsageSource,
}

/// Where a stream's token counts are: in the ConverseStream `metadata` event, or in
/// the native events an `InvokeModelWithResponseStream` body carries in its chunks.
#[derive(Debug)]
enum UsageSource {
    ConverseMetadata,
    /// The decoder's buffer is reused, and the reader keeps counts only: no allocation
    /// per chunk once the buffer has grown.
    InvokeChunks(ChunkDecoder, UsageReader),
}

impl Tally {
    fn new(source: UsageSource) -> Self {
        Tally {
            frames: 0,
            bytes: 0,
            usage: None,
            source,
        }
    }

    fn observe(&mut self, frame: &Frame<'_>) {
        self.frames += 1;
        self.bytes += frame.as_bytes().len() as u64;
        match &mut self.source {
            UsageSource::ConverseMetadata => {
                if is_metadata(frame) {
                    if let Ok(MetadataPayload { usage: Some(u) }) = serde_json::from_slice(frame.payload()) {
                        self.usage = Some(u);
                    }
                }
            }
            UsageSource::InvokeChunks(decoder, reader) => {
                // Accounting never fails a stream: a chunk that does not decode is
                // forwarded all the same (the frame itself passed validation).
                if frame.event_type() != Some(CHUNK_EVENT_TYPE) || carries_no_usage(frame.payload()) {
                    return;
                }
                let Ok(Some(event)) = decoder.decode(*frame) else {
                    return;
                };
                let before = reader.usage();
                reader.observe(event);
                let after = reader.usage();
                if reader.has_usage() && (self.usage.is_none() || after != before) {
                    self.usage = Some(TokenUsage {
                        input_tokens: after.input_tokens,
                        output_tokens: after.output_tokens,
                        total_tokens: after.input_tokens.saturating_add(after.output_tokens),
                        cache_read_input_tokens: after.cache_read_input_tokens,
                        cache_write_input_tokens: after.cache_write_input_tokens,
                        ..TokenUsage::default()
                    });
                }
            }
        }
    }
}

impl FrameValidator {
    /// A validator applying these limits to every frame of a ConverseStream body; its
    /// [`usage`](Self::usage) comes from the `metadata` event.
    pub fn new(limits: Limits) -> Self {
        Self::with_usage(limits, UsageSource::ConverseMetadata)
    }

    /// A validator for an `InvokeModelWithResponseStream` body: the same checks, and
    /// its [`usage`](Self::usage) read from the native events in the `chunk` frames
    /// ([`UsageReader`]: `amazon-bedrock-invocationMetrics`, else the Anthropic
    /// `message_start` / `message_delta` usage), without allocating per chunk.
    ///
    /// ```
    /// use bedrock_converse::eventstream::Limits;
    /// use bedrock_converse::invoke::chunk_frame;
    /// use bedrock_converse::proxy::FrameValidator;
    ///
    /// let frame = chunk_frame(br#"{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#)?;
    /// let mut validator = FrameValidator::for_invoke_stream(Limits::default());
    /// validator.push(frame.into_bytes())?;
    /// assert_eq!(validator.usage().map(|u| u.input_tokens), Some(9));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_invoke_stream(limits: Limits) -> Self {
        Self::with_usage(
            limits,
            UsageSource::InvokeChunks(ChunkDecoder::new(), UsageReader::new()),
        )
    }

    fn with_usage(limits: Limits, usage: UsageSource) -> Self {
        FrameValidator {
            framer: Framer::new(limits),
            pending: BytesMut::new(),
            ready: VecDeque::new(),
            tally: Tally::new(usage),
        }
    }

    /// Frames validated so far.
    pub fn frames(&self) -> u64 {
        self.tally.frames
    }

    /// Bytes validated so far.
    pub fn bytes(&self) -> u64 {
        self.tally.bytes
    }

    /// Token usage from the `metadata` event (or, for an invoke stream, from the
    /// native events), once it has passed.
    pub fn usage(&self) -> Option<&TokenUsage> {
        self.tally.usage.as_ref()
    }

    /// Takes the next run of validated, frame-aligned bytes.
    pub fn pop_ready(&mut self) -> Option<Bytes> {
        self.ready.pop_front()
    }

    /// Feeds one chunk of the body.
    ///
    /// # Errors
    ///
    /// The first frame-level error; frames before it stay queued. Once an error was
    /// returned, every later call returns
    /// [`DecodeError::Poisoned`](crate::eventstream::DecodeError::Poisoned).
    pub fn push(&mut self, mut chunk: Bytes) -> Result<(), EventStreamError> {
        if !self.pending.is_empty() {
            self.complete_pending(&mut chunk)?;
            if !self.pending.is_empty() {
                return Ok(());
            }
        }
        let mut used = 0;
        let result = loop {
            match self.framer.decode(chunk.get(used..).unwrap_or_default()) {
                Ok(Some(frame)) => {
                    self.tally.observe(&frame);
                    used += frame.as_bytes().len();
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if used > 0 {
            self.ready.push_back(chunk.split_to(used));
        }
        result?;
        if !chunk.is_empty() {
            // A frame's start; its prelude, if all here, passed the limits above, so what
            // is buffered is bounded by the largest frame allowed.
            self.pending.extend_from_slice(&chunk);
        }
        Ok(())
    }

    /// Moves bytes from `chunk` into the pending frame until it is complete, then
    /// queues it: only what the frame still needs, the prelude first (checked, with the
    /// limits, before anything is gathered for the body).
    fn complete_pending(&mut self, chunk: &mut Bytes) -> Result<(), EventStreamError> {
        // Two rounds at most: the rest of the prelude, then the rest of the frame.
        for _ in 0..2 {
            let frame_len = self.framer.frame_len().unwrap_or(PRELUDE_LEN);
            let take = frame_len.saturating_sub(self.pending.len()).min(chunk.len());
            self.pending
                .extend_from_slice(chunk.get(..take).unwrap_or_default());
            chunk.advance(take);
            if let Some(frame) = self.framer.decode(&self.pending)? {
                self.tally.observe(&frame);
                let len = frame.as_bytes().len();
                let frame = self.pending.split_to(len).freeze();
                self.ready.push_back(frame);
                return Ok(());
            }
            if chunk.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Ends the body.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`](crate::eventstream::DecodeError::Truncated) if the
    /// body ended inside a frame.
    pub fn finish(&mut self) -> Result<(), EventStreamError> {
        if let Some(frame) = self.framer.decode_eof(&self.pending)? {
            // Unreachable in practice: `push` takes every whole frame out.
            self.tally.observe(&frame);
            let len = frame.as_bytes().len();
            let frame = self.pending.split_to(len).freeze();
            self.ready.push_back(frame);
        }
        Ok(())
    }
}

/// Whether a `chunk` payload surely holds a native event without token counts
/// (`content_block_*`, `ping`): read from the first 24 decoded bytes, so that only the
/// few usage events are decoded whole. Bedrock writes `type` first; anything else is
/// decoded whole, to be safe.
fn carries_no_usage(payload: &[u8]) -> bool {
    use base64::Engine as _;
    let Some(b64) = payload.strip_prefix(br#"{"bytes":""#) else {
        return false;
    };
    let Some(head) = b64.get(..32) else {
        return false;
    };
    let mut out = [0u8; 24];
    let Ok(24) = base64::engine::general_purpose::STANDARD.decode_slice(head, &mut out) else {
        return false;
    };
    out.starts_with(br#"{"type":"content_block_"#) || out.starts_with(br#"{"type":"ping""#)
}

/// Whether this is a `metadata` event (layer 1 answers Bedrock's usual header layout
/// by comparing bytes).
fn is_metadata(frame: &Frame<'_>) -> bool {
    frame.event_type() == Some("metadata")
}

/// An `exception` frame as Bedrock writes them: `:exception-type`, `:content-type`
/// `application/json` and `:message-type` `exception`, payload `{"message": ...}`.
pub fn exception_frame(exception_type: &str, message: &str) -> Message {
    let payload = serde_json::json!({ "message": message }).to_string();
    let built = MessageBuilder::new()
        .string_header(":exception-type", exception_type)
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "exception")
        .build(payload.as_bytes());
    match built {
        Ok(m) => m,
        // Only an exception type over 65535 bytes could fail; fall back to a fixed one.
        Err(_) => exception_frame("internalServerException", "exception could not be encoded"),
    }
}

/// How a validated stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The upstream body ended cleanly at a frame boundary.
    Complete,
    /// A frame failed validation; an exception frame was sent instead.
    Corrupt(String),
    /// The upstream body failed; an exception frame was sent instead.
    UpstreamFailed(String),
    /// No upstream bytes for longer than the idle timeout.
    Idle(Duration),
}

/// What a finished pass-through saw, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// Frames forwarded.
    pub frames: u64,
    /// Bytes forwarded (exception frames the proxy wrote not included).
    pub bytes: u64,
    /// Token usage from the `metadata` event, if it came.
    pub usage: Option<TokenUsage>,
    /// How the stream ended.
    pub end: StreamEnd,
}

/// The validating pass-through as a stream: upstream chunks in, validated frame-aligned
/// bytes out, polled inline by whoever reads it (no task, no channel). The idle timer
/// is armed only when upstream has nothing ready, and re-armed in place (one timer
/// entry per stream, moved forward without touching the timer wheel's lock).
pub(crate) struct ValidatedStream<S, F> {
    upstream: S,
    validator: FrameValidator,
    idle: QuietTimer,
    on_end: Option<F>,
    /// The exception frame a failed stream ends with.
    tail: Option<Bytes>,
}

impl<S, E, F> ValidatedStream<S, F>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
    F: FnOnce(StreamSummary),
{
    /// Validates `upstream` with `validator`; `on_end` is called once when it ends.
    pub(crate) fn new(upstream: S, validator: FrameValidator, idle: Duration, on_end: F) -> Self {
        ValidatedStream {
            upstream,
            validator,
            idle: QuietTimer::new(idle),
            on_end: Some(on_end),
            tail: None,
        }
    }

    /// Whether the stream has ended (its summary given to `on_end`).
    pub(crate) fn has_ended(&self) -> bool {
        self.on_end.is_none()
    }

    fn end(&mut self, end: StreamEnd) {
        self.tail = end_frame(&end).map(Message::into_bytes);
        if let Some(on_end) = self.on_end.take() {
            on_end(StreamSummary {
                frames: self.validator.frames(),
                bytes: self.validator.bytes(),
                usage: self.validator.tally.usage.take(),
                end,
            });
        }
    }

    /// Takes one upstream item into the validator.
    fn take(&mut self, item: Option<Result<Bytes, E>>) {
        match item {
            Some(Ok(chunk)) => {
                if let Err(e) = self.validator.push(chunk) {
                    self.end(StreamEnd::Corrupt(e.to_string()));
                }
            }
            Some(Err(e)) => self.end(StreamEnd::UpstreamFailed(e.to_string())),
            None => match self.validator.finish() {
                Ok(()) => self.end(StreamEnd::Complete),
                Err(e) => self.end(StreamEnd::Corrupt(e.to_string())),
            },
        }
    }
}

impl<S, E, F> Stream for ValidatedStream<S, F>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
    F: FnOnce(StreamSummary) + Unpin,
{
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.validator.pop_ready() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.has_ended() {
                // Ended: the exception frame, if any, is the last item.
                return Poll::Ready(this.tail.take().map(Ok));
            }
            match this.upstream.poll_next_unpin(cx) {
                Poll::Ready(item) => {
                    this.idle.progress();
                    this.take(item);
                }
                Poll::Pending => {
                    if !this.idle.expired(cx) {
                        return Poll::Pending;
                    }
                    let idle = this.idle.timeout();
                    this.end(StreamEnd::Idle(idle));
                }
            }
        }
    }
}

/// The exception frame a stream that ended this way closes with (none when complete).
fn end_frame(end: &StreamEnd) -> Option<Message> {
    match end {
        StreamEnd::Complete => None,
        StreamEnd::Corrupt(why) => Some(exception_frame(
            "internalServerException",
            &format!("upstream sent an invalid event-stream frame: {why}"),
        )),
        StreamEnd::UpstreamFailed(why) => Some(exception_frame(
            "serviceUnavailableException",
            &format!("upstream stream failed: {why}"),
        )),
        StreamEnd::Idle(d) => Some(exception_frame(
            "serviceUnavailableException",
            &format!("upstream sent nothing for {} ms", d.as_millis()),
        )),
    }
}

/// Turns an upstream event-stream body into a validated one for the client.
///
/// Each frame is checked and forwarded as the same bytes. A corrupt frame, an upstream
/// error, or no upstream bytes for `idle` ends the stream with a well-formed
/// `exception` frame (written by our encoder) after everything valid before it; never a
/// silent cut or a hang. `on_end` is called once with a summary (frames, bytes, usage,
/// how it ended), or not at all if the client goes away first: dropping the returned
/// stream drops `upstream`, which cancels the upstream request.
pub fn validate_body<S, E, F>(
    upstream: S,
    limits: Limits,
    idle: Duration,
    on_end: F,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send,
    F: FnOnce(StreamSummary) + Send + 'static,
{
    // Boxed: a box is `Unpin` whatever the closure holds.
    ValidatedStream::new(upstream, FrameValidator::new(limits), idle, Box::new(on_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::DecodeError;

    fn frames(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| {
                MessageBuilder::new()
                    .string_header(
                        ":event-type",
                        if i + 1 == n {
                            "metadata"
                        } else {
                            "contentBlockDelta"
                        },
                    )
                    .string_header(":content-type", "application/json")
                    .string_header(":message-type", "event")
                    .build(if i + 1 == n {
                        br#"{"usage":{"inputTokens":3,"outputTokens":5,"totalTokens":8},"p":"ab"}"#.as_slice()
                    } else {
                        br#"{"contentBlockIndex":0,"delta":{"text":"hello"}}"#.as_slice()
                    })
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn every_chunking_forwards_the_same_bytes() {
        let msgs = frames(5);
        let wire: Vec<u8> = msgs.iter().flat_map(|m| m.as_bytes().to_vec()).collect();
        for size in 1..=wire.len() {
            let mut v = FrameValidator::new(Limits::default());
            let mut out = Vec::new();
            for chunk in wire.chunks(size) {
                v.push(Bytes::copy_from_slice(chunk)).unwrap();
                while let Some(b) = v.pop_ready() {
                    out.extend_from_slice(&b);
                }
            }
            v.finish().unwrap();
            assert_eq!(out, wire, "chunk size {size}");
            assert_eq!(v.frames(), 5);
            assert_eq!(v.usage().map(|u| u.total_tokens), Some(8));
        }
    }

    #[test]
    fn corrupt_frame_keeps_what_came_before() {
        let msgs = frames(3);
        let mut wire: Vec<u8> = msgs.iter().flat_map(|m| m.as_bytes().to_vec()).collect();
        let second = msgs[0].as_bytes().len() + 20;
        wire[second] ^= 1;
        let mut v = FrameValidator::new(Limits::default());
        assert!(v.push(Bytes::from(wire)).is_err());
        assert_eq!(v.pop_ready().as_deref(), Some(msgs[0].as_bytes()));
        assert!(v.pop_ready().is_none());
        assert!(matches!(
            v.push(Bytes::new()),
            Err(EventStreamError::Decode(DecodeError::Poisoned))
        ));
    }

    #[test]
    fn truncated_body_is_reported() {
        let msgs = frames(1);
        let wire = msgs[0].clone().into_bytes();
        let mut v = FrameValidator::new(Limits::default());
        v.push(wire.slice(..wire.len() - 3)).unwrap();
        assert!(matches!(
            v.finish(),
            Err(EventStreamError::Decode(DecodeError::Truncated {
                missing: 3,
                ..
            }))
        ));
    }

    #[test]
    fn metadata_is_found_in_any_header_order() {
        let payload = br#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}"#;
        for first in [":event-type", ":message-type"] {
            let builder = MessageBuilder::new();
            let builder = if first == ":event-type" {
                builder
                    .string_header(":event-type", "metadata")
                    .string_header(":message-type", "event")
            } else {
                builder
                    .string_header(":message-type", "event")
                    .string_header(":event-type", "metadata")
            };
            let m = builder.build(payload).unwrap();
            let mut v = FrameValidator::new(Limits::default());
            v.push(m.into_bytes()).unwrap();
            assert_eq!(v.usage().map(|u| u.total_tokens), Some(3), "{first} first");
        }
        let not = MessageBuilder::new()
            .string_header(":event-type", "metadataX")
            .build(payload)
            .unwrap();
        let mut v = FrameValidator::new(Limits::default());
        v.push(not.into_bytes()).unwrap();
        assert_eq!(v.usage(), None);
    }

    #[test]
    fn exception_frame_is_well_formed() {
        let m = exception_frame("serviceUnavailableException", "idle");
        let again = Message::from_bytes(m.clone().into_bytes(), &Limits::default()).unwrap();
        assert_eq!(again.message_type(), Some("exception"));
        assert_eq!(again.exception_type(), Some("serviceUnavailableException"));
        assert_eq!(again.payload(), br#"{"message":"idle"}"#);
    }
}
