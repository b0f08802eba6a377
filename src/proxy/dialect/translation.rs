//! The sans-IO part of a translated stream: upstream bytes in, the dialect's SSE bytes
//! out.
//!
//! ```text
//! upstream chunk ─► Framer (CRCs, limits; frames decoded where they lie)
//!                ─► ChatStreamWriter / MessagesStreamWriter::push_frame ─► one BytesMut, split per chunk
//!                   (StreamAssembler for order, usage and the events; a text delta to an
//!                    open block goes straight to the writer, its JSON string as it came)
//! ```

use bytes::{Bytes, BytesMut};

use super::Dialect;
use crate::converse::{StreamAssembler, TokenUsage};
use crate::eventstream::{Frame, Framer, Limits, PRELUDE_LEN};
use crate::translate::{anthropic, openai, ApiError, ErrorClass, SseWriter, Translated};

// ===== DialectWriter =====

/// The dialect's SSE writer.
enum DialectWriter {
    OpenAi(openai::ChatStreamWriter),
    Anthropic(anthropic::MessagesStreamWriter),
}

/// `$body` with `$w` bound to the writer inside `$writer`, whichever dialect it is
/// (each is an [`SseWriter`]).
macro_rules! each_writer {
    ($writer:expr, $w:ident => $body:expr) => {
        match $writer {
            DialectWriter::OpenAi($w) => $body,
            DialectWriter::Anthropic($w) => $body,
        }
    };
}

// ===== impl Translation =====

/// The sans-IO part: upstream bytes in, the dialect's SSE bytes out.
pub(super) struct Translation {
    framer: Framer,
    /// The start of a frame whose end has not arrived.
    pending: BytesMut,
    assembler: StreamAssembler,
    writer: DialectWriter,
    /// SSE bytes written and not yet sent.
    out: BytesMut,
    /// Frames decoded so far.
    pub(super) frames: u64,
}

impl Translation {
    /// A translation for response `id`, created at `created` (Unix seconds).
    pub(super) fn new(
        dialect: Dialect,
        id: &str,
        created: u64,
        translated: &Translated,
        limits: Limits,
    ) -> Translation {
        let writer = match dialect {
            Dialect::OpenAi => DialectWriter::OpenAi(openai::ChatStreamWriter::new(
                id,
                &translated.model,
                created,
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
    pub(super) fn feed(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        // Room for the SSE of the whole chunk, reserved once: the buffer handed on last
        // time left `out` with little or no room, and growing it event by event copies
        // what is already written.
        self.out.reserve(sse_room(chunk.len()));
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
    pub(super) fn end(&mut self) -> Result<(), ApiError> {
        self.framer.decode_eof(&self.pending).map_err(|e| corrupt(&e))?;
        if !self.assembler.is_stopped() {
            return Err(ApiError::new(
                ErrorClass::Server,
                "the upstream stream ended before messageStop",
            ));
        }
        each_writer!(&mut self.writer, w => w.finish(&mut self.out));
        Ok(())
    }

    /// Ends the client's stream with the dialect's error event.
    pub(super) fn fail(&mut self, err: &ApiError) {
        each_writer!(&mut self.writer, w => w.error(err, &mut self.out));
    }

    /// `event: ping` for an Anthropic client (nothing for OpenAI ones).
    pub(super) fn ping(&mut self) {
        if let DialectWriter::Anthropic(w) = &mut self.writer {
            w.ping(&mut self.out);
        }
    }

    pub(super) fn is_ended(&self) -> bool {
        each_writer!(&self.writer, w => w.is_ended())
    }

    /// The bytes to send now (none: `None`).
    pub(super) fn take_out(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            return None;
        }
        Some(self.out.split().freeze())
    }

    /// Whether bytes are written and not yet taken.
    pub(super) fn has_out(&self) -> bool {
        !self.out.is_empty()
    }

    /// How many bytes are written and not yet taken.
    pub(super) fn out_len(&self) -> usize {
        self.out.len()
    }

    pub(super) fn usage(&self) -> Option<&TokenUsage> {
        self.assembler.usage()
    }

    /// Whether upstream's stream reached `messageStop` without an exception.
    pub(super) fn is_complete(&self) -> bool {
        self.assembler.is_stopped() && self.assembler.exception().is_none()
    }
}

/// The SSE room to reserve for an upstream chunk of `len` bytes: a text delta's SSE
/// event is about as long as its frame (the chunk prefix repeats what the frame's
/// headers spell), a little longer for the shortest deltas; a quarter more and an
/// event's worth over that covers them without growing mid-chunk.
fn sse_room(len: usize) -> usize {
    len.saturating_add(len / 4).saturating_add(256)
}

/// One whole frame through the assembler and the writer (a text delta to an open
/// block straight to the writer, its JSON string as it came: the translated stream
/// never needs the assembled text).
fn translate_frame(
    assembler: &mut StreamAssembler,
    writer: &mut DialectWriter,
    out: &mut BytesMut,
    frame: Frame<'_>,
) -> Result<(), ApiError> {
    each_writer!(writer, w => w.push_frame(assembler, frame, out))
        .map_err(|e| ApiError::from_stream_error(&e))
}

fn corrupt(e: &crate::eventstream::EventStreamError) -> ApiError {
    ApiError::new(
        ErrorClass::Server,
        format!("upstream sent an invalid event-stream frame: {e}"),
    )
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
        Translation::new(
            Dialect::OpenAi,
            "chatcmpl-1",
            1_700_000_000,
            &translated,
            Limits::default(),
        )
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
