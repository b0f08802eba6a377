//! A ConverseStream translated into the client's SSE as it arrives.
//!
//! ```text
//! upstream chunks ─► Framer (CRCs, limits) ─► StreamAssembler ─► ChatStreamWriter / MessagesStreamWriter
//!                                                                   └─► BytesMut ─► bounded queue ─► client
//! ```
//!
//! The response head waits for the first translated bytes ([`Call::stream`]): a failure
//! before them can still be retried or answered with an HTTP error. Then a task of its
//! own ([`pump`]) carries the rest, so the idle and total timeouts hold whether or not
//! the client reads; every chunk's bytes go out as soon as they are written.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{backoff, sse_response, Attempt, Call, Dialect, ATTEMPTS};
use crate::converse::{StreamAssembler, StreamEvent, TokenUsage};
use crate::eventstream::{Frame, Framer, Limits, PRELUDE_LEN};
use crate::proxy::operation::Operation;
use crate::proxy::Admitted;
use crate::proxy::{cut_message, far_future, queued_body, StreamCut, EVENT_STREAM, STREAM_QUEUE};
use crate::translate::{anthropic, openai, ApiError, ErrorClass, Translated};

/// The longest quiet spell before an Anthropic client gets `event: ping`.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Upstream body chunks.
type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

// ===== impl DialectWriter =====

/// The dialect's SSE writer.
enum DialectWriter {
    OpenAi(openai::ChatStreamWriter),
    Anthropic(anthropic::MessagesStreamWriter),
}

impl DialectWriter {
    fn push(&mut self, event: &StreamEvent<'_>, out: &mut BytesMut) {
        match self {
            DialectWriter::OpenAi(w) => w.push(event, out),
            DialectWriter::Anthropic(w) => w.push(event, out),
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        match self {
            DialectWriter::OpenAi(w) => w.finish(out),
            DialectWriter::Anthropic(w) => w.finish(out),
        }
    }

    fn error(&mut self, err: &ApiError, out: &mut BytesMut) {
        match self {
            DialectWriter::OpenAi(w) => w.error(err, out),
            DialectWriter::Anthropic(w) => w.error(err, out),
        }
    }

    fn is_ended(&self) -> bool {
        match self {
            DialectWriter::OpenAi(w) => w.is_ended(),
            DialectWriter::Anthropic(w) => w.is_ended(),
        }
    }
}

// ===== impl Translation =====

/// The sans-IO part: upstream bytes in, the dialect's SSE bytes out.
struct Translation {
    framer: Framer,
    /// The start of a frame whose end has not arrived.
    pending: BytesMut,
    assembler: StreamAssembler,
    writer: DialectWriter,
    /// SSE bytes written and not yet sent.
    out: BytesMut,
    /// Whether any SSE bytes were handed to the client.
    sent_any: bool,
    frames: u64,
}

impl Translation {
    fn new(dialect: Dialect, id: &str, translated: &Translated, limits: Limits) -> Translation {
        let writer = match dialect {
            Dialect::OpenAi => DialectWriter::OpenAi(openai::ChatStreamWriter::new(
                id,
                &translated.model,
                super::unix_now(),
                translated.include_usage,
            )),
            Dialect::Anthropic => {
                DialectWriter::Anthropic(anthropic::MessagesStreamWriter::new(id, &translated.model))
            }
        };
        Translation {
            framer: Framer::new(limits),
            pending: BytesMut::new(),
            assembler: StreamAssembler::new(),
            writer,
            out: BytesMut::with_capacity(4096),
            sent_any: false,
            frames: 0,
        }
    }

    /// Feeds one upstream chunk: every whole frame is assembled and written.
    ///
    /// Frames wholly inside the chunk are decoded where they are; only a frame split
    /// across chunks is gathered (in `pending`, just the bytes it still needs).
    ///
    /// # Errors
    ///
    /// The stream's failure (an exception frame, a corrupt frame, events out of order),
    /// not yet written: the caller retries, answers it, or [`fail`](Self::fail)s.
    fn feed(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        let mut rest = chunk;
        while !self.pending.is_empty() && !rest.is_empty() {
            rest = self.complete_pending(rest)?;
        }
        let mut used = 0;
        while let Some(frame) = self
            .framer
            .decode(rest.get(used..).unwrap_or_default())
            .map_err(|e| corrupt(&e))?
        {
            used += frame.as_bytes().len();
            self.frames += 1;
            translate_frame(&mut self.assembler, &mut self.writer, &mut self.out, frame)?;
        }
        self.pending
            .extend_from_slice(rest.get(used..).unwrap_or_default());
        Ok(())
    }

    /// Moves into `pending` what the split frame there still needs from `rest` (its
    /// prelude first, then the rest of the frame once its length is known), and
    /// translates the frame once it is whole; the bytes of `rest` left over.
    fn complete_pending<'c>(&mut self, rest: &'c [u8]) -> Result<&'c [u8], ApiError> {
        let want = self.framer.frame_len().unwrap_or(PRELUDE_LEN);
        let take = want.saturating_sub(self.pending.len()).min(rest.len());
        let (head, tail) = rest.split_at(take);
        self.pending.extend_from_slice(head);
        if let Some(frame) = self.framer.decode(&self.pending).map_err(|e| corrupt(&e))? {
            self.frames += 1;
            translate_frame(&mut self.assembler, &mut self.writer, &mut self.out, frame)?;
            self.pending.clear();
        }
        Ok(tail)
    }

    /// The upstream body ended.
    ///
    /// # Errors
    ///
    /// A body cut inside a frame or before `messageStop`.
    fn end(&mut self) -> Result<(), ApiError> {
        self.framer.decode_eof(&self.pending).map_err(|e| corrupt(&e))?;
        if !self.assembler.is_stopped() {
            return Err(ApiError::new(
                ErrorClass::Server,
                "the upstream stream ended before messageStop",
            ));
        }
        self.writer.finish(&mut self.out);
        Ok(())
    }

    /// Ends the client's stream with the dialect's error event.
    fn fail(&mut self, err: &ApiError) {
        self.writer.error(err, &mut self.out);
    }

    /// `event: ping` for an Anthropic client (nothing for OpenAI ones).
    fn ping(&mut self) {
        if let DialectWriter::Anthropic(w) = &mut self.writer {
            w.ping(&mut self.out);
        }
    }

    fn is_ended(&self) -> bool {
        self.writer.is_ended()
    }

    /// The bytes to send now (none: `None`).
    fn take_out(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            return None;
        }
        self.sent_any = true;
        Some(self.out.split().freeze())
    }

    fn usage(&self) -> Option<&TokenUsage> {
        self.assembler.usage()
    }
}

/// One whole frame through the assembler and the writer.
fn translate_frame(
    assembler: &mut StreamAssembler,
    writer: &mut DialectWriter,
    out: &mut BytesMut,
    frame: Frame<'_>,
) -> Result<(), ApiError> {
    match assembler.push_frame(frame) {
        Ok(Some(event)) => writer.push(&event, out),
        Ok(None) => {}
        Err(e) => return Err(ApiError::from_stream_error(&e)),
    }
    Ok(())
}

fn corrupt(e: &crate::eventstream::EventStreamError) -> ApiError {
    ApiError::new(
        ErrorClass::Server,
        format!("upstream sent an invalid event-stream frame: {e}"),
    )
}

// ===== the request =====

impl Call {
    /// `stream: true`: `/converse-stream`, retried while nothing has reached the client
    /// and the failure is retryable; then the translated stream.
    pub(super) async fn stream(self, body: Bytes, translated: &Translated) -> Response {
        let config = &self.proxy.inner.config;
        let id = self.dialect.new_id();
        let mut tries = 0;
        loop {
            tries += 1;
            let failure = match self.attempt(body.clone(), EVENT_STREAM).await {
                Attempt::Ok(upstream) => {
                    let mut t = Translation::new(self.dialect, &id, translated, config.limits);
                    let mut chunks: Chunks = Box::pin(upstream.bytes_stream());
                    match first_bytes(&mut t, &mut chunks, config.timeouts.idle).await {
                        Ok(()) => return sse_response(pump(self, t, chunks)),
                        Err(err) => err,
                    }
                }
                Attempt::Failed(err) => err,
            };
            if failure.is_retryable() && tries < ATTEMPTS {
                tracing::info!(
                    key_id = self.admitted.key_id,
                    model_id = self.admitted.model_id,
                    tries,
                    error = %failure,
                    "retrying: nothing reached the client yet"
                );
                backoff(tries).await;
                continue;
            }
            return self.dialect.error_response(&failure);
        }
    }
}

/// Reads upstream until the translation has bytes for the client. A failure after some
/// bytes were written ends the stream (the error event follows them); a failure before
/// any is returned, for a retry or an HTTP error.
async fn first_bytes(t: &mut Translation, chunks: &mut Chunks, idle: Duration) -> Result<(), ApiError> {
    while t.out.is_empty() {
        let step = match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(chunk))) => t.feed(&chunk),
            Ok(Some(Err(e))) => Err(upstream_failed(e)),
            Ok(None) => t.end(),
            Err(_) => Err(quiet_for(idle)),
        };
        match step {
            Ok(()) if t.is_ended() && t.out.is_empty() => {
                return Err(ApiError::new(ErrorClass::Server, "the upstream stream was empty"))
            }
            Ok(()) => {}
            Err(err) if t.out.is_empty() => return Err(err),
            Err(err) => t.fail(&err),
        }
    }
    Ok(())
}

fn upstream_failed(e: reqwest::Error) -> ApiError {
    ApiError::new(
        ErrorClass::Overloaded,
        format!("the upstream stream failed: {}", e.without_url()),
    )
}

fn quiet_for(idle: Duration) -> ApiError {
    ApiError::new(
        ErrorClass::Overloaded,
        format!("upstream sent nothing for {} ms", idle.as_millis()),
    )
}

// ===== pump =====

/// How a pumped stream ended.
enum PumpEnd {
    /// The dialect's stream ended (cleanly, or with its error event).
    Ended,
    /// The client went away.
    Gone,
    /// The gateway cut it.
    Cut(StreamCut),
}

/// Carries the rest of a translated stream to the client from a task of its own.
fn pump(call: Call, mut t: Translation, chunks: Chunks) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_QUEUE);
    let clean = Arc::new(AtomicBool::new(false));
    let done = clean.clone();
    tokio::spawn(async move {
        let idle = call.proxy.inner.config.timeouts.idle;
        let deadline = call.admitted.total_deadline.unwrap_or_else(far_future);
        let relay = relay(&mut t, chunks, &tx, idle, call.dialect);
        let end = tokio::time::timeout_at(deadline, relay)
            .await
            .unwrap_or(PumpEnd::Cut(StreamCut::Total));
        let ended = match end {
            PumpEnd::Ended => true,
            PumpEnd::Gone => false,
            PumpEnd::Cut(why) => {
                call.proxy.inner.metrics.cut(why);
                t.fail(&ApiError::new(ErrorClass::Timeout, cut_message(why, idle)));
                t.take_out().is_some_and(|b| tx.try_send(b).is_ok())
            }
        };
        done.store(ended, Ordering::Release);
        log_end(&call, &t, ended);
        // Dropping the call frees the slot.
    });
    queued_body(rx, clean)
}

/// Sends what is written, then reads, translates and sends until the dialect's stream
/// ends; pings an Anthropic client while upstream is quiet.
async fn relay(
    t: &mut Translation,
    mut chunks: Chunks,
    tx: &mpsc::Sender<Bytes>,
    idle: Duration,
    dialect: Dialect,
) -> PumpEnd {
    let ping_every = PING_EVERY.min(idle / 2);
    loop {
        if let Some(bytes) = t.take_out() {
            match tokio::time::timeout(idle, tx.send(bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return PumpEnd::Gone,
                Err(_) => return PumpEnd::Cut(StreamCut::SlowReader),
            }
        }
        if t.is_ended() {
            return PumpEnd::Ended;
        }
        let quiet_until = Instant::now().checked_add(idle).unwrap_or_else(far_future);
        let step = loop {
            let now = Instant::now();
            let wake = match dialect {
                Dialect::Anthropic => now
                    .checked_add(ping_every)
                    .unwrap_or(quiet_until)
                    .min(quiet_until),
                Dialect::OpenAi => quiet_until,
            };
            tokio::select! {
                item = chunks.next() => break match item {
                    Some(Ok(chunk)) => t.feed(&chunk),
                    Some(Err(e)) => Err(upstream_failed(e)),
                    None => t.end(),
                },
                () = tokio::time::sleep_until(wake) => {
                    if wake >= quiet_until {
                        break Err(quiet_for(idle));
                    }
                    t.ping();
                    if let Some(bytes) = t.take_out() {
                        if tx.send(bytes).await.is_err() {
                            return PumpEnd::Gone;
                        }
                    }
                }
                () = tx.closed() => return PumpEnd::Gone,
            }
        };
        if let Err(err) = step {
            t.fail(&err);
        }
    }
}

/// The usage log line and the token counters of a finished stream.
fn log_end(call: &Call, t: &Translation, ended: bool) {
    let metrics = &call.proxy.inner.metrics;
    let Admitted {
        key_id,
        model_id,
        started,
        ..
    } = &call.admitted;
    metrics.forwarded(t.frames, 0);
    let usage = t.usage();
    if let Some(u) = usage {
        metrics.tokens(key_id, Operation::ConverseStream, u.input_tokens, u.output_tokens);
    }
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let complete = ended && t.assembler.is_stopped() && t.assembler.exception().is_none();
    if !complete {
        metrics.upstream_error("StreamInterrupted");
    }
    tracing::info!(
        key_id,
        model_id,
        route = call.dialect.route().path(),
        frames = t.frames,
        input_tokens = usage.map(|u| u.input_tokens),
        output_tokens = usage.map(|u| u.output_tokens),
        cache_read_tokens = usage.and_then(|u| u.cache_read_input_tokens),
        cache_write_tokens = usage.and_then(|u| u.cache_write_input_tokens),
        latency_ms,
        complete,
        "dialect stream translated"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventstream::MessageBuilder;

    fn event(event_type: &str, payload: &str) -> Vec<u8> {
        MessageBuilder::new()
            .string_header(":event-type", event_type)
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "event")
            .build(payload.as_bytes())
            .expect("frame")
            .as_bytes()
            .to_vec()
    }

    fn wire() -> Vec<u8> {
        let mut wire = event("messageStart", r#"{"role":"assistant"}"#);
        for text in ["Hel", "lo, ", "\"world\"\n"] {
            let delta = format!(
                r#"{{"contentBlockIndex":0,"delta":{{"text":{}}}}}"#,
                serde_json::json!(text)
            );
            wire.extend(event("contentBlockDelta", &delta));
        }
        wire.extend(event("contentBlockStop", r#"{"contentBlockIndex":0}"#));
        wire.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#));
        wire
    }

    fn translation() -> Translation {
        let translated = crate::translate::openai::translate_request(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
        )
        .expect("request");
        Translation::new(Dialect::OpenAi, "chatcmpl-1", &translated, Limits::default())
    }

    /// Feeds `wire` in pieces of `size` bytes; the SSE out and the frames counted.
    fn translate_in_pieces(wire: &[u8], size: usize) -> (Vec<u8>, u64) {
        let mut t = translation();
        let mut out = Vec::new();
        for piece in wire.chunks(size) {
            t.feed(piece).expect("valid stream");
            out.extend(t.take_out().unwrap_or_default());
        }
        t.end().expect("whole stream");
        out.extend(t.take_out().unwrap_or_default());
        (out, t.frames)
    }

    #[test]
    fn frames_split_anywhere_translate_as_whole_ones() {
        let wire = wire();
        let (whole, frames) = translate_in_pieces(&wire, wire.len());
        assert_eq!(frames, 6);
        let text = String::from_utf8(whole.clone()).expect("utf-8");
        assert!(text.contains(r#""delta":{"content":"Hel"}"#), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        for size in 1..=wire.len() {
            assert_eq!(
                translate_in_pieces(&wire, size),
                (whole.clone(), 6),
                "pieces of {size} bytes"
            );
        }
    }

    #[test]
    fn a_body_cut_inside_a_frame_is_an_error_after_what_came_before() {
        let wire = wire();
        let mut t = translation();
        t.feed(&wire[..wire.len() - 5]).expect("valid so far");
        let before = t.take_out().expect("the deltas before the cut");
        assert!(std::str::from_utf8(&before).expect("utf-8").contains("world"));
        assert!(t.end().is_err());
    }
}
