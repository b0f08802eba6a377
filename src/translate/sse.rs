//! [`SseWriter`]: what both dialects' stream writers do, in one trait.

use bytes::BufMut;

use super::error::ApiError;
use super::events::route;
use super::forward::{self, ForwardingWriter};
use crate::converse::{StreamAssembler, StreamError, StreamEvent, TokenUsage};
use crate::eventstream::Frame;

/// A dialect's SSE writer: ConverseStream events (or whole frames) in, the dialect's
/// SSE events appended to the caller's buffer. Implemented by
/// [`openai::ChatStreamWriter`](super::openai::ChatStreamWriter) and
/// [`anthropic::MessagesStreamWriter`](super::anthropic::MessagesStreamWriter); sealed
/// (its supertrait is the crate's own), so a shell can be generic over the dialect
/// without this crate's writers changing under it.
///
/// The order to call it in: [`push`](Self::push) (or [`push_frame`](Self::push_frame))
/// for each event as it arrives, then [`finish`](Self::finish) after the last, or
/// [`error`](Self::error) if the stream failed. Once [`is_ended`](Self::is_ended), every
/// call writes nothing.
///
/// # Examples
///
/// ```
/// use bedrock_converse::converse::{ContentBlockDelta, Role, StopReason, StreamEvent};
/// use bedrock_converse::translate::{anthropic, openai, SseWriter};
///
/// /// The SSE text of one short answer, in either dialect.
/// fn answer(mut w: impl SseWriter) -> String {
///     let mut sse = Vec::new();
///     w.push(&StreamEvent::MessageStart { role: Role::Assistant }, &mut sse);
///     w.push(&StreamEvent::ContentBlockDelta { index: 0, delta: ContentBlockDelta::Text("Hi".into()) }, &mut sse);
///     w.push(&StreamEvent::MessageStop { stop_reason: StopReason::EndTurn, additional_model_response_fields: None }, &mut sse);
///     w.finish(&mut sse);
///     assert!(w.is_ended());
///     String::from_utf8(sse).unwrap()
/// }
/// assert!(answer(openai::ChatStreamWriter::new("chatcmpl-1", "claude", 1_700_000_000, false))
///     .contains(r#""delta":{"content":"Hi"}"#));
/// assert!(answer(anthropic::MessagesStreamWriter::new("msg_1", "claude"))
///     .contains(r#"{"type":"text_delta","text":"Hi"}"#));
/// ```
pub trait SseWriter: ForwardingWriter {
    /// Whether the stream has ended ([`finish`](Self::finish), [`error`](Self::error), or
    /// an event that ends it, such as a `messageStop` whose reason is an error); later
    /// calls write nothing.
    fn is_ended(&self) -> bool {
        self.ended()
    }

    /// Appends the SSE events for one Converse event (often one, sometimes none).
    fn push<B: BufMut>(&mut self, event: &StreamEvent<'_>, buf: &mut B) {
        route(self, event, buf);
    }

    /// Feeds one whole ConverseStream frame through `assembler` and appends its SSE
    /// events, as [`StreamAssembler::push_frame`] then [`push`](Self::push) would, except
    /// that a text or reasoning-text delta to a block already open on both sides, in the
    /// compact shape Bedrock writes, goes straight from the frame to the writer: its JSON
    /// string is copied as it came (its escapes checked, not decoded and re-escaped), and
    /// the assembler does not see it.
    ///
    /// The assembler still checks the stream's order and keeps its stop reason, usage
    /// and exception, but the text of forwarded deltas is not in its blocks: use this
    /// when the stream is only translated, not when the assembled response is needed
    /// (call [`push`](Self::push) with the assembler's events then). The events are the
    /// same JSON either way; a forwarded string keeps its `\uXXXX` escapes, where
    /// [`push`](Self::push) writes the characters.
    ///
    /// # Errors
    ///
    /// What [`StreamAssembler::push_frame`] returns for the frame (nothing is written
    /// then).
    ///
    /// # Examples
    ///
    /// ```
    /// use bedrock_converse::converse::StreamAssembler;
    /// use bedrock_converse::eventstream::MessageBuilder;
    /// use bedrock_converse::translate::openai::ChatStreamWriter;
    /// use bedrock_converse::translate::SseWriter;
    ///
    /// let event = |ty: &str, json: &str| {
    ///     MessageBuilder::new()
    ///         .string_header(":event-type", ty)
    ///         .string_header(":message-type", "event")
    ///         .build(json.as_bytes())
    /// };
    /// let mut asm = StreamAssembler::new();
    /// let mut w = ChatStreamWriter::new("chatcmpl-1", "claude", 1_700_000_000, false);
    /// let mut sse = Vec::new();
    /// for (ty, json) in [
    ///     ("messageStart", r#"{"role":"assistant"}"#),
    ///     ("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Say "}}"#),
    ///     ("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"\"hi\"\n"},"p":"abc"}"#),
    ///     ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
    ///     ("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"f"}}}"#),
    ///     ("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":"}}}"#),
    ///     ("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"1}"}}}"#),
    ///     ("contentBlockStop", r#"{"contentBlockIndex":1}"#),
    ///     ("messageStop", r#"{"stopReason":"tool_use"}"#),
    /// ] {
    ///     w.push_frame(&mut asm, event(ty, json)?.as_frame(), &mut sse)?;
    /// }
    /// w.finish(&mut sse);
    /// let text = String::from_utf8(sse).unwrap();
    /// assert!(text.contains(r#""delta":{"content":"\"hi\"\n"}"#));
    /// assert!(text.contains(r#""function":{"arguments":"{\"a\":"}"#));
    /// assert!(text.contains(r#""finish_reason":"tool_calls""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn push_frame<B: BufMut>(
        &mut self,
        assembler: &mut StreamAssembler,
        frame: Frame<'_>,
        buf: &mut B,
    ) -> Result<(), StreamError> {
        forward::push_frame(self, assembler, frame, buf)
    }

    /// Records usage that came some other way than a `metadata` event (e.g. the
    /// assembler's finished response); the stream's end reports it.
    fn set_usage(&mut self, usage: &TokenUsage);

    /// Ends the stream: what the dialect writes after the last event (OpenAI: the
    /// usage chunk when asked for, then `data: [DONE]`; Anthropic: `message_delta` and
    /// `message_stop` unless `metadata` already wrote them).
    fn finish<B: BufMut>(&mut self, buf: &mut B);

    /// Ends the stream with the dialect's error event, after everything written before
    /// it (OpenAI: `data: {"error": {...}}`, which the `openai` SDK raises as
    /// `APIError`; Anthropic: `event: error`, which the `anthropic` SDK raises as an
    /// `APIStatusError` of the error's type).
    fn error<B: BufMut>(&mut self, err: &ApiError, buf: &mut B);
}
