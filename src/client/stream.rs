//! [`ConverseStream`]: a `ConverseStream` response body as a [`Stream`] of owned
//! [`ChatEvent`]s, ending with the assembled [`ConverseResponse`].
//!
//! ```text
//! reqwest bytes_stream ─► BytesMut ─► EventStreamCodec ─► Message ─► StreamAssembler ─► ChatEvent
//!        (idle timer reset per chunk)                                  (partial kept on error)
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Decoder;

use super::error::{ClientError, ResponseError, TimeoutKind, TransportError};
use super::event::{BlockDelta, ChatEvent, ToolCall};
use crate::converse::{
    ContentBlockDelta, ConverseResponse, StreamAssembler, StreamError, StreamEvent, ToolUseState,
};
use crate::eventstream::{EventStreamCodec, EventStreamError, Message, PRELUDE_LEN};

/// Whether a stream that failed before its first event may be sent again: nothing has
/// reached the caller yet. In-stream throttling / unavailable / internal exceptions, a
/// connection closed or broken before the first frame, no frame within the idle
/// timeout, and whatever [`ClientError::is_retryable`] allows.
pub(crate) fn retryable_before_data(e: &ClientError) -> bool {
    match e {
        ClientError::Stream(StreamError::Service(ex)) => ex.is_retryable(),
        ClientError::Invoke(crate::invoke::InvokeError::Service(ex)) => ex.is_retryable(),
        ClientError::Transport(TransportError::Body(_)) | ClientError::Response(ResponseError::Truncated) => {
            true
        }
        ClientError::Transport(TransportError::Timeout {
            kind: TimeoutKind::Idle,
            ..
        }) => true,
        other => other.is_retryable(),
    }
}

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

enum State {
    Streaming,
    Finished,
}

/// A streamed reply: a [`Stream`] of [`ChatEvent`]s.
///
/// The stream yields the events as frames arrive, then [`ChatEvent::Done`] with the
/// response, then ends. On failure it yields one `Err` and ends; what had arrived stays
/// available from [`partial`](ConverseStream::partial). Nothing is retried once the
/// stream exists.
pub struct ConverseStream {
    body: BodyStream,
    /// The unread rest of the latest body chunk: whole frames are split off it without
    /// copying.
    chunk: Bytes,
    /// A frame that straddles chunks, gathered here and decoded by the codec.
    buf: BytesMut,
    codec: EventStreamCodec,
    assembler: Option<StreamAssembler>,
    /// Set when the assembler was consumed by `finish`.
    finished: Option<ConverseResponse>,
    pending: VecDeque<ChatEvent>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    total: Option<(Duration, Pin<Box<Sleep>>)>,
    state: State,
    frames: u64,
    /// Text, tool input and reasoning assembled so far, and the most allowed.
    assembled: usize,
    max_assembled: usize,
}

impl fmt::Debug for ConverseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConverseStream")
            .field("buffered", &(self.buf.len() + self.chunk.len()))
            .field("frames", &self.frames)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl ConverseStream {
    /// Wraps a response body. `idle` bounds the gap between chunks; `total` is the
    /// deadline of the whole call (`None`: none).
    pub(crate) fn new(
        body: BodyStream,
        idle: Duration,
        total: Option<(Duration, Instant)>,
        codec: EventStreamCodec,
    ) -> ConverseStream {
        ConverseStream {
            body,
            chunk: Bytes::new(),
            buf: BytesMut::new(),
            codec,
            assembler: Some(StreamAssembler::new()),
            finished: None,
            pending: VecDeque::new(),
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            total: total.map(|(d, at)| (d, Box::pin(tokio::time::sleep_until(at)))),
            state: State::Streaming,
            frames: 0,
            assembled: 0,
            max_assembled: usize::MAX,
        }
    }

    /// Caps the text, tool input and reasoning the stream assembles.
    pub(crate) fn with_max_assembled(mut self, max: usize) -> ConverseStream {
        self.max_assembled = max;
        self
    }

    /// Everything assembled so far (after a failure: up to the failure).
    pub fn partial(&self) -> ConverseResponse {
        match (&self.assembler, &self.finished) {
            (Some(a), _) => a.partial(),
            (None, Some(r)) => r.clone(),
            (None, None) => ConverseResponse::default(),
        }
    }

    /// Waits for the first event and keeps it for the caller.
    pub(crate) async fn prime(&mut self) -> Result<(), ClientError> {
        use futures_util::StreamExt;
        match self.next().await {
            Some(Ok(ev)) => {
                self.pending.push_front(ev);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Err(ClientError::Response(ResponseError::Truncated)),
        }
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Drives the stream to the end and returns the response; on failure, the error
    /// and the partial response.
    ///
    /// # Errors
    ///
    /// The stream's error, with [`partial`](Self::partial).
    pub async fn into_response(mut self) -> Result<ConverseResponse, (ClientError, ConverseResponse)> {
        use futures_util::StreamExt;
        while let Some(item) = self.next().await {
            match item {
                Ok(ChatEvent::Done(r)) => return Ok(*r),
                Ok(_) => {}
                Err(e) => return Err((e, self.partial())),
            }
        }
        Err((ClientError::Response(ResponseError::Truncated), self.partial()))
    }

    fn fail(&mut self, e: ClientError) -> Poll<Option<Result<ChatEvent, ClientError>>> {
        Poll::Ready(Some(Err(self.finish_with(e))))
    }

    /// Ends the stream with `e`: nothing queued is sent, the next poll ends it.
    #[cold]
    fn finish_with(&mut self, e: ClientError) -> ClientError {
        tracing::debug!(error = %e, frames = self.frames, "stream failed");
        self.state = State::Finished;
        self.pending.clear();
        e
    }

    /// The next whole frame from `buf` and `chunk`, or `None` when more bytes are needed
    /// (then `chunk` is used up).
    ///
    /// Frames that lie whole inside a chunk are split off it (zero-copy); a frame that
    /// straddles chunks is gathered in `buf`, only its own bytes: the rest of its
    /// prelude, then, once the prelude passed its checks and limits, the rest of the
    /// frame. The codec's [`Framer`](crate::eventstream::Framer) does both, with one
    /// state.
    fn next_frame(&mut self) -> Result<Option<Message>, EventStreamError> {
        if self.buf.is_empty() {
            if let Some(msg) = self.codec.framer_mut().decode_bytes(&mut self.chunk)? {
                return Ok(Some(msg));
            }
        }
        // Two rounds at most: the rest of the prelude, then the rest of the frame.
        for _ in 0..2 {
            let frame_len = self.codec.framer().frame_len().unwrap_or(PRELUDE_LEN);
            let n = frame_len.saturating_sub(self.buf.len()).min(self.chunk.len());
            self.buf
                .extend_from_slice(self.chunk.get(..n).unwrap_or_default());
            self.chunk.advance(n);
            if let Some(msg) = self.codec.decode(&mut self.buf)? {
                return Ok(Some(msg));
            }
            if self.chunk.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    /// Feeds one decoded message to the assembler and returns the poll's next item:
    /// `None` when the frame gives the caller nothing, else its event, or the error that
    /// ends the stream (which is then finished). A tool block's stop queues its
    /// `ContentBlockStop` behind the returned [`ChatEvent::ToolCall`].
    ///
    /// A delta (nearly every frame) is taken apart in place in the assembler's result,
    /// and the owned event is built where the poll returns it: neither the layer-2 event
    /// (over 128 bytes, so each move of it is a `memcpy` call) nor the owned one (88
    /// bytes) is moved whole on the way.
    #[inline]
    fn on_message(&mut self, msg: &Message) -> Option<Result<ChatEvent, ClientError>> {
        let assembler = self.assembler.as_mut()?;
        self.frames += 1;
        let pushed = assembler.push(msg);
        tracing::debug!(
            event_type = msg.event_type().unwrap_or("?"),
            len = msg.as_bytes().len(),
            "stream frame"
        );
        let event = match pushed {
            Ok(Some(StreamEvent::ContentBlockDelta { index, delta })) => {
                self.assembled = self.assembled.saturating_add(delta_len(&delta, msg));
                if self.assembled > self.max_assembled {
                    let limit = self.max_assembled;
                    return Some(Err(self.finish_with(ClientError::Response(
                        ResponseError::AssembledTooLarge { limit },
                    ))));
                }
                let mut delta = match delta {
                    // Nearly every delta: its text owned here, not through the general
                    // conversion (a call and one more move of the owned delta).
                    ContentBlockDelta::Text(t) => BlockDelta::Text(t.into_owned()),
                    other => BlockDelta::from_delta(other)?,
                };
                if let BlockDelta::ToolUseInput {
                    tool_use_id, name, ..
                } = &mut delta
                {
                    // The delta is owned now: the assembler names the call.
                    if let Some(tool) = assembler.tool_use(index) {
                        tool.tool_use_id.clone_into(tool_use_id);
                        tool.name.clone_into(name);
                    }
                }
                return Some(Ok(ChatEvent::ContentBlockDelta { index, delta }));
            }
            Ok(Some(event)) => event,
            Ok(None) => return None,
            Err(e) => return Some(Err(self.finish_with(ClientError::Stream(e)))),
        };
        log_event(&event);
        let stop = match event {
            StreamEvent::ContentBlockStop { index } => Some(index),
            _ => None,
        };
        let ev = ChatEvent::from_stream_event(event)?;
        if let Some(index) = stop {
            // The assembler has checked the input at this stop; it is the one source of
            // the call's id, name and input.
            if let Some(call) = assembler.tool_use(index).and_then(|t| finished_call(&t)) {
                self.pending.push_back(ev);
                return Some(Ok(ChatEvent::ToolCall { index, call }));
            }
        }
        Some(Ok(ev))
    }

    /// The body ended: finish the assembler.
    fn on_end(&mut self) -> Result<ConverseResponse, ClientError> {
        let Some(assembler) = self.assembler.take() else {
            return Err(ClientError::Response(ResponseError::Truncated));
        };
        if !self.buf.is_empty() || !self.chunk.is_empty() {
            tracing::debug!(
                leftover = self.buf.len() + self.chunk.len(),
                "body ended inside a frame"
            );
            self.finished = Some(assembler.into_partial());
            return Err(ClientError::Response(ResponseError::Truncated));
        }
        match assembler.finish() {
            Ok(r) => {
                self.finished = Some(r.clone());
                Ok(r)
            }
            Err(StreamError::Incomplete(inc)) => {
                self.finished = Some(inc.partial.clone());
                if inc.exception.is_none() {
                    Err(ClientError::Response(ResponseError::Truncated))
                } else {
                    Err(ClientError::Stream(StreamError::Incomplete(inc)))
                }
            }
            Err(e) => Err(ClientError::Stream(e)),
        }
    }
}

/// How much a delta adds to what the stream assembles (the payload's length for the
/// kinds that are not text).
fn delta_len(delta: &ContentBlockDelta<'_>, msg: &Message) -> usize {
    match delta {
        ContentBlockDelta::Text(t) | ContentBlockDelta::ReasoningText(t) => t.len(),
        ContentBlockDelta::ToolUseInput(f) => f.len(),
        ContentBlockDelta::ReasoningSignature(s) => s.len(),
        _ => msg.payload().len(),
    }
}

/// Logs the stop reason and the token usage.
fn log_event(event: &StreamEvent<'_>) {
    match event {
        StreamEvent::MessageStop { stop_reason, .. } => {
            tracing::debug!(stop_reason = %stop_reason, "messageStop");
        }
        StreamEvent::Metadata { usage: Some(u), .. } => {
            tracing::debug!(
                input_tokens = u.input_tokens,
                output_tokens = u.output_tokens,
                total_tokens = u.total_tokens,
                "token usage"
            );
        }
        _ => {}
    }
}

/// A stopped tool block as the caller's [`ToolCall`], its input parsed from the text
/// the assembler checked.
fn finished_call(tool: &ToolUseState<'_>) -> Option<ToolCall> {
    let input = tool.input()?;
    Some(ToolCall {
        id: tool.tool_use_id.to_owned(),
        name: tool.name.to_owned(),
        input: input.to_value(),
    })
}

impl Stream for ConverseStream {
    type Item = Result<ChatEvent, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(ev) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(ev)));
            }
            if matches!(this.state, State::Finished) {
                return Poll::Ready(None);
            }
            // Whole frames already received first.
            match this.next_frame() {
                Ok(Some(msg)) => {
                    // `pending` is empty here: the event goes straight to the caller.
                    match this.on_message(&msg) {
                        Some(item) => return Poll::Ready(Some(item)),
                        None => continue,
                    }
                }
                Ok(None) => {}
                Err(e) => return this.fail(ClientError::EventStream(e)),
            }
            if let Some((after, timer)) = this.total.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    let after = *after;
                    return this.fail(ClientError::Transport(TransportError::Timeout {
                        kind: TimeoutKind::Total,
                        after,
                    }));
                }
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    // `next_frame` returned `None`, so `chunk` is used up; keep any rest
                    // all the same, in order.
                    if !this.chunk.is_empty() {
                        let rest = std::mem::take(&mut this.chunk);
                        this.buf.extend_from_slice(&rest);
                    }
                    this.chunk = chunk;
                    // A gap too large to add to the clock (`Duration::MAX`) is no gap
                    // limit: the timer is set about 30 years on instead of panicking.
                    let now = Instant::now();
                    let deadline = now
                        .checked_add(this.idle)
                        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
                    this.idle_timer.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Err(e))) => {
                    // Keep what was assembled for `partial()`.
                    return this.fail(ClientError::Transport(TransportError::Body(e)));
                }
                Poll::Ready(None) => match this.on_end() {
                    Ok(r) => {
                        this.state = State::Finished;
                        return Poll::Ready(Some(Ok(ChatEvent::Done(Box::new(r)))));
                    }
                    Err(e) => return this.fail(e),
                },
                Poll::Pending => {
                    if this.idle_timer.as_mut().poll(cx).is_ready() {
                        let after = this.idle;
                        return this.fail(ClientError::Transport(TransportError::Timeout {
                            kind: TimeoutKind::Idle,
                            after,
                        }));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio_util::codec::Encoder;

    fn body() -> (Bytes, String) {
        let mut codec = EventStreamCodec::new();
        let mut out = BytesMut::new();
        let mut text = String::new();
        let mut events = vec![("messageStart", r#"{"role":"assistant"}"#.to_string())];
        for i in 0..40 {
            let piece = format!("w{i} ");
            text.push_str(&piece);
            events.push((
                "contentBlockDelta",
                format!(
                    r#"{{"contentBlockIndex":0,"delta":{{"text":"{piece}"}},"p":"{}"}}"#,
                    "x".repeat(i)
                ),
            ));
        }
        events.push(("contentBlockStop", r#"{"contentBlockIndex":0}"#.into()));
        events.push(("messageStop", r#"{"stopReason":"end_turn"}"#.into()));
        for (ty, json) in events {
            let msg = crate::eventstream::MessageBuilder::new()
                .string_header(":event-type", ty)
                .string_header(":content-type", "application/json")
                .string_header(":message-type", "event")
                .build(json.as_bytes())
                .unwrap();
            codec.encode(&msg, &mut out).unwrap();
        }
        (out.freeze(), text)
    }

    fn stream_of(chunks: Vec<Bytes>) -> ConverseStream {
        let body = futures_util::stream::iter(chunks.into_iter().map(Ok::<Bytes, reqwest::Error>));
        ConverseStream::new(
            Box::pin(body),
            Duration::from_secs(60),
            None,
            EventStreamCodec::new(),
        )
    }

    async fn collect(mut s: ConverseStream) -> Result<String, ClientError> {
        let mut text = String::new();
        while let Some(ev) = s.next().await {
            match ev? {
                ChatEvent::ContentBlockDelta {
                    delta: BlockDelta::Text(t),
                    ..
                } => text.push_str(&t),
                ChatEvent::Done(r) => {
                    assert_eq!(r.text(), text);
                    return Ok(text);
                }
                _ => {}
            }
        }
        Err(ClientError::Response(ResponseError::Truncated))
    }

    #[tokio::test]
    async fn every_chunking_assembles_the_same() {
        let (whole, text) = body();
        for size in (1..=64).chain([97, 128, 255, 1000, whole.len()]) {
            let chunks: Vec<Bytes> = whole.chunks(size).map(Bytes::copy_from_slice).collect();
            assert_eq!(
                collect(stream_of(chunks)).await.unwrap(),
                text,
                "chunk size {size}"
            );
        }
        // Uneven splits, including empty chunks.
        let mut chunks = Vec::new();
        let mut at = 0;
        let mut step = 0usize;
        while at < whole.len() {
            step = (step * 7 + 3) % 29;
            let end = (at + step).min(whole.len());
            chunks.push(whole.slice(at..end));
            at = end;
        }
        assert_eq!(collect(stream_of(chunks)).await.unwrap(), text);
    }

    #[tokio::test]
    async fn cut_and_corrupt_bodies_are_typed() {
        let (whole, _) = body();
        for cut in [1, 3, 4, 11, 12, 13, whole.len() - 1] {
            let chunks = vec![whole.slice(..cut)];
            let err = collect(stream_of(chunks)).await.unwrap_err();
            assert!(
                matches!(err, ClientError::Response(ResponseError::Truncated)),
                "cut {cut}: {err:?}"
            );
        }
        let mut bad = BytesMut::from(&whole[..]);
        if let Some(b) = bad.get_mut(40) {
            *b ^= 0x01;
        }
        for size in [7, 5000] {
            let chunks: Vec<Bytes> = bad.chunks(size).map(Bytes::copy_from_slice).collect();
            let err = collect(stream_of(chunks)).await.unwrap_err();
            assert!(matches!(err, ClientError::EventStream(_)), "{err:?}");
        }
        // A prelude announcing an impossible length.
        let chunks = vec![Bytes::from_static(&[
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ])];
        let err = collect(stream_of(chunks)).await.unwrap_err();
        assert!(matches!(err, ClientError::EventStream(_)), "{err:?}");
    }
}
