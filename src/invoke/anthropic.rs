//! [`AnthropicAssembler`]: the native Anthropic Messages stream events of an
//! `InvokeModelWithResponseStream` body in, the finished [`AnthropicMessage`] out.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::converse::ServiceException;
use crate::eventstream::Frame;

use super::chunk::ChunkDecoder;
use super::error::{EventOrder, IncompleteMessage, InvokeError};

// ===== the finished message =====

/// A finished Anthropic Messages response, the JSON `InvokeModel` returns for
/// `anthropic.*` models (and what the Anthropic SDKs' `Message` holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicMessage {
    /// `msg_bdrk_...`.
    #[serde(default)]
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type", default = "message_type")]
    pub message_type: String,
    /// Always `"assistant"` in responses.
    #[serde(default = "assistant")]
    pub role: String,
    /// The model name the service reports.
    #[serde(default)]
    pub model: String,
    /// The content blocks, in index order.
    #[serde(default)]
    pub content: Vec<AnthropicContentBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`, ...
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage (from `message_start`, updated by `message_delta`).
    #[serde(default)]
    pub usage: AnthropicUsage,
    /// Bedrock's `amazon-bedrock-invocationMetrics` (streamed on `message_stop`).
    #[serde(
        rename = "amazon-bedrock-invocationMetrics",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub invocation_metrics: Option<InvocationMetrics>,
    /// Members this crate does not model, kept as sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn message_type() -> String {
    "message".to_owned()
}

fn assistant() -> String {
    "assistant".to_owned()
}

impl Default for AnthropicMessage {
    fn default() -> Self {
        AnthropicMessage {
            id: String::new(),
            message_type: message_type(),
            role: assistant(),
            model: String::new(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: AnthropicUsage::default(),
            invocation_metrics: None,
            extra: BTreeMap::new(),
        }
    }
}

impl AnthropicMessage {
    /// The text blocks, concatenated.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                AnthropicContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The `tool_use` blocks: `(id, name, input)`.
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &Value)> {
        self.content.iter().filter_map(|b| match b {
            AnthropicContentBlock::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }
}

/// One content block of an [`AnthropicMessage`] (`type`-tagged, as in the Messages API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AnthropicContentBlock {
    /// `{"type":"text","text":...}`, with `citations` when the model cited documents.
    Text {
        /// The text.
        text: String,
        /// `citations_delta` citations, as sent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        citations: Vec<Value>,
    },
    /// `{"type":"tool_use","id":...,"name":...,"input":{...}}`.
    ToolUse {
        /// The tool call id (`toolu_...`).
        id: String,
        /// The tool's name.
        name: String,
        /// The input, parsed from the concatenated `input_json_delta` fragments.
        input: Value,
    },
    /// `{"type":"thinking","thinking":...,"signature":...}` (extended thinking).
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// The signature that must accompany the block in a later turn.
        signature: String,
    },
    /// `{"type":"redacted_thinking","data":...}`: encrypted reasoning.
    RedactedThinking {
        /// The opaque data.
        data: String,
    },
    /// Any other block type (`server_tool_use`, `web_search_tool_result`, ...), as
    /// sent; `input_json_delta` fragments set its `input`.
    #[serde(untagged)]
    Other(Value),
}

/// The `usage` object of a Messages response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnthropicUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

/// Bedrock's `amazon-bedrock-invocationMetrics`, on the last native event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationMetrics {
    /// `inputTokenCount`.
    #[serde(default)]
    pub input_token_count: u64,
    /// `outputTokenCount`.
    #[serde(default)]
    pub output_token_count: u64,
    /// `invocationLatency`, milliseconds.
    #[serde(default)]
    pub invocation_latency: u64,
    /// `firstByteLatency`, milliseconds.
    #[serde(default)]
    pub first_byte_latency: u64,
    /// `cacheReadInputTokenCount`, when the model used the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_token_count: Option<u64>,
    /// `cacheWriteInputTokenCount`, when the model wrote the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_token_count: Option<u64>,
}

/// The type of a content block, as named in `content_block_start`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockType {
    /// `text`.
    Text,
    /// `tool_use`.
    ToolUse,
    /// `thinking`.
    Thinking,
    /// `redacted_thinking`.
    RedactedThinking,
    /// Any other type, as named.
    Other(String),
}

impl fmt::Display for BlockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockType::Text => "text",
            BlockType::ToolUse => "tool_use",
            BlockType::Thinking => "thinking",
            BlockType::RedactedThinking => "redacted_thinking",
            BlockType::Other(s) => s,
        })
    }
}

// ===== the events =====

/// One native event, as [`AnthropicAssembler::push`] read it. Strings borrow from the
/// event bytes unless they hold JSON escapes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AnthropicEvent<'a> {
    /// `message_start`.
    MessageStart,
    /// `content_block_start`.
    ContentBlockStart {
        /// The block index.
        index: u32,
        /// The block's type.
        block_type: BlockType,
    },
    /// `content_block_delta`.
    ContentBlockDelta {
        /// The block index.
        index: u32,
        /// The delta.
        delta: NativeDelta<'a>,
    },
    /// `content_block_stop`.
    ContentBlockStop {
        /// The block index.
        index: u32,
    },
    /// `message_delta`: the stop reason and the final usage.
    MessageDelta {
        /// `delta.stop_reason`.
        stop_reason: Option<Cow<'a, str>>,
        /// `usage.output_tokens`.
        output_tokens: Option<u64>,
    },
    /// `message_stop`, with Bedrock's invocation metrics when present.
    MessageStop {
        /// `amazon-bedrock-invocationMetrics`.
        metrics: Option<InvocationMetrics>,
    },
    /// `ping`.
    Ping,
    /// An event type this crate does not know (ignored, as the Anthropic SDKs do).
    Unknown {
        /// Its `type`.
        event_type: Cow<'a, str>,
    },
}

/// The delta of a `content_block_delta` event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NativeDelta<'a> {
    /// `text_delta`.
    Text(Cow<'a, str>),
    /// `input_json_delta`: a fragment of a tool call's input JSON.
    InputJson(Cow<'a, str>),
    /// `thinking_delta`.
    Thinking(Cow<'a, str>),
    /// `signature_delta`.
    Signature(Cow<'a, str>),
    /// `citations_delta`: one citation, as its raw JSON text.
    Citation(&'a str),
}

impl NativeDelta<'_> {
    fn wire_name(&self) -> &'static str {
        match self {
            NativeDelta::Text(_) => "text_delta",
            NativeDelta::InputJson(_) => "input_json_delta",
            NativeDelta::Thinking(_) => "thinking_delta",
            NativeDelta::Signature(_) => "signature_delta",
            NativeDelta::Citation(_) => "citations_delta",
        }
    }
}

// ===== wire shapes =====

#[derive(Deserialize)]
struct TypeWire<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageStartWire {
    message: AnthropicMessage,
}

#[derive(Deserialize)]
struct BlockStartWire<'a> {
    index: u32,
    #[serde(borrow)]
    content_block: &'a RawValue,
}

#[derive(Deserialize)]
struct BlockFieldsWire {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    citations: Option<Vec<Value>>,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    thinking: String,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
struct BlockDeltaWire<'a> {
    index: u32,
    #[serde(borrow)]
    delta: DeltaWire<'a>,
}

/// A string that borrows from the input when it has no escapes. (serde borrows a
/// `Cow` field only when the field's type is the `Cow` itself, not `Option<Cow>`.)
#[derive(Deserialize)]
struct CowStr<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct DeltaWire<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    partial_json: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    thinking: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    signature: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    citation: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct BlockStopWire {
    index: u32,
}

#[derive(Deserialize)]
struct MessageDeltaWire<'a> {
    #[serde(default, borrow)]
    delta: StopWire<'a>,
    #[serde(default)]
    usage: Option<UsageDeltaWire>,
}

#[derive(Deserialize, Default)]
struct StopWire<'a> {
    #[serde(default, borrow)]
    stop_reason: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    stop_sequence: Option<CowStr<'a>>,
}

/// The token counts of a `usage` object; every member optional (a `message_delta`
/// may carry only `output_tokens`).
#[derive(Deserialize, Default, Clone, Copy)]
pub(crate) struct UsageDeltaWire {
    #[serde(default)]
    pub(crate) input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) output_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct MessageStopWire {
    #[serde(default, rename = "amazon-bedrock-invocationMetrics")]
    metrics: Option<InvocationMetrics>,
}

#[derive(Deserialize)]
struct ErrorWire {
    error: ErrorBodyWire,
}

#[derive(Deserialize)]
struct ErrorBodyWire {
    #[serde(rename = "type", default)]
    ty: String,
    #[serde(default)]
    message: String,
}

/// The `type` of a native event: read from the usual `{"type":"..."` prefix without
/// a parse, else by serde.
pub(crate) fn event_type(event: &[u8]) -> Result<Cow<'_, str>, serde_json::Error> {
    const PREFIX: &[u8] = br#"{"type":""#;
    if let Some(rest) = event.strip_prefix(PREFIX) {
        if let Some(end) = memchr::memchr2(b'"', b'\\', rest) {
            if rest.get(end) == Some(&b'"') {
                if let Ok(s) = std::str::from_utf8(rest.get(..end).unwrap_or_default()) {
                    return Ok(Cow::Borrowed(s));
                }
            }
        }
    }
    serde_json::from_slice::<TypeWire<'_>>(event).map(|w| w.ty)
}

fn invalid(event_type: &'static str) -> impl FnOnce(serde_json::Error) -> InvokeError {
    move |source| InvokeError::InvalidEvent { event_type, source }
}

fn order(event_type: &'static str, index: Option<u32>, problem: EventOrder) -> InvokeError {
    InvokeError::OutOfOrder {
        event_type,
        index,
        problem,
    }
}

// ===== impl AnthropicAssembler =====

/// One content block being assembled.
#[derive(Debug, Clone)]
enum BlockState {
    Text {
        text: String,
        citations: Vec<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        start_input: Value,
        json: String,
        has_delta: bool,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    Other {
        value: Value,
        json: String,
        has_delta: bool,
    },
}

impl BlockState {
    fn block_type(&self) -> BlockType {
        match self {
            BlockState::Text { .. } => BlockType::Text,
            BlockState::ToolUse { .. } => BlockType::ToolUse,
            BlockState::Thinking { .. } => BlockType::Thinking,
            BlockState::RedactedThinking { .. } => BlockType::RedactedThinking,
            BlockState::Other { value, .. } => BlockType::Other(
                value
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
            ),
        }
    }

    /// Whether `delta` may apply to this block.
    fn accepts(&self, delta: &NativeDelta<'_>) -> bool {
        matches!(
            (self, delta),
            (
                BlockState::Text { .. },
                NativeDelta::Text(_) | NativeDelta::Citation(_)
            ) | (
                BlockState::ToolUse { .. } | BlockState::Other { .. },
                NativeDelta::InputJson(_)
            ) | (
                BlockState::Thinking { .. },
                NativeDelta::Thinking(_) | NativeDelta::Signature(_)
            )
        )
    }

    /// Applies a delta [`accepts`](Self::accepts) allowed.
    fn apply(&mut self, delta: &NativeDelta<'_>) {
        match (self, delta) {
            (BlockState::Text { text, .. }, NativeDelta::Text(t)) => text.push_str(t),
            (BlockState::Text { citations, .. }, NativeDelta::Citation(c)) => {
                // The text came from a `RawValue`, valid JSON, so this parse cannot fail.
                citations.push(serde_json::from_str(c).unwrap_or(Value::Null));
            }
            (
                BlockState::ToolUse { json, has_delta, .. } | BlockState::Other { json, has_delta, .. },
                NativeDelta::InputJson(s),
            ) => {
                json.push_str(s);
                *has_delta = true;
            }
            (BlockState::Thinking { thinking, .. }, NativeDelta::Thinking(t)) => thinking.push_str(t),
            (BlockState::Thinking { signature, .. }, NativeDelta::Signature(s)) => signature.push_str(s),
            _ => {}
        }
    }

    /// The finished block. Tool input: the concatenated fragments parsed (`{}` when
    /// they are empty), or the start's `input` when no fragment came; invalid JSON
    /// becomes a JSON string of the raw text, with the parse error.
    fn to_block(&self) -> (AnthropicContentBlock, Option<serde_json::Error>) {
        fn input_of(start: &Value, json: &str, has_delta: bool) -> (Value, Option<serde_json::Error>) {
            if !has_delta {
                return (start.clone(), None);
            }
            if json.trim().is_empty() {
                return (Value::Object(serde_json::Map::new()), None);
            }
            match serde_json::from_str(json) {
                Ok(v) => (v, None),
                Err(e) => (Value::String(json.to_owned()), Some(e)),
            }
        }
        match self {
            BlockState::Text { text, citations } => (
                AnthropicContentBlock::Text {
                    text: text.clone(),
                    citations: citations.clone(),
                },
                None,
            ),
            BlockState::ToolUse {
                id,
                name,
                start_input,
                json,
                has_delta,
            } => {
                let (input, err) = input_of(start_input, json, *has_delta);
                (
                    AnthropicContentBlock::ToolUse {
                        id: id.clone(),
                        name: name.clone(),
                        input,
                    },
                    err,
                )
            }
            BlockState::Thinking { thinking, signature } => (
                AnthropicContentBlock::Thinking {
                    thinking: thinking.clone(),
                    signature: signature.clone(),
                },
                None,
            ),
            BlockState::RedactedThinking { data } => (
                AnthropicContentBlock::RedactedThinking { data: data.clone() },
                None,
            ),
            BlockState::Other {
                value,
                json,
                has_delta,
            } => {
                let mut value = value.clone();
                let start = value.get("input").cloned().unwrap_or(Value::Null);
                let (input, err) = input_of(&start, json, *has_delta);
                if *has_delta {
                    if let Some(map) = value.as_object_mut() {
                        map.insert("input".to_owned(), input);
                    }
                }
                (AnthropicContentBlock::Other(value), err)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    state: BlockState,
    stopped: bool,
}

/// The assembly state, apart from the chunk decoder (so that an event borrowed from
/// the decoder's buffer can be pushed into it).
#[derive(Debug, Clone, Default)]
struct Assembly {
    message: Option<AnthropicMessage>,
    blocks: Vec<Slot>,
    stopped: bool,
    exception: Option<ServiceException>,
    model_error: Option<String>,
}

/// Assembles the native Anthropic events of an `InvokeModelWithResponseStream` body
/// into the finished [`AnthropicMessage`]: the same JSON a non-streaming
/// `InvokeModel` would have returned, plus Bedrock's invocation metrics.
///
/// ```text
/// ping* ─► message_start ─► ( content_block_start ─► content_block_delta* ─► content_block_stop )*
///       ─► message_delta (stop_reason, usage) ─► message_stop (amazon-bedrock-invocationMetrics)
/// ```
///
/// Sans-IO: feed it native events ([`push`](Self::push)) or whole event-stream
/// frames ([`push_frame`](Self::push_frame), which decodes the `chunk` wrapper with
/// its own [`ChunkDecoder`]). Every event is checked before anything changes: an
/// event that is refused leaves the assembler as it was, and the partial message stays
/// available ([`partial`](Self::partial)).
///
/// # Example
///
/// ```
/// use bedrock_converse::invoke::AnthropicAssembler;
///
/// let mut asm = AnthropicAssembler::new();
/// for event in [
///     r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
///     r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}"#,
///     r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
///     r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}"#,
///     r#"{"type":"content_block_stop","index":0}"#,
///     r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}}"#,
///     r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":9,"invocationLatency":420,"firstByteLatency":180}}"#,
/// ] {
///     asm.push(event.as_bytes())?;
/// }
/// let message = asm.finish()?;
/// let (_, name, input) = message.tool_uses().next().expect("a tool call");
/// assert_eq!((name, input), ("weather", &serde_json::json!({"city": "Oslo"})));
/// assert_eq!(message.stop_reason.as_deref(), Some("tool_use"));
/// assert_eq!(message.usage.output_tokens, 9);
/// assert_eq!(message.invocation_metrics.map(|m| m.first_byte_latency), Some(180));
/// # Ok::<(), bedrock_converse::invoke::InvokeError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AnthropicAssembler {
    decoder: ChunkDecoder,
    asm: Assembly,
}

impl AnthropicAssembler {
    /// The most content blocks one message may have (a guard against hostile streams).
    pub const MAX_BLOCKS: usize = 4096;

    /// An empty assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// An assembler whose frame decoder is `decoder` (for its part limit).
    pub fn with_decoder(decoder: ChunkDecoder) -> Self {
        AnthropicAssembler {
            decoder,
            asm: Assembly::default(),
        }
    }

    /// Decodes one event-stream frame of the response body and pushes the native event
    /// it carries. `Ok(None)` for a frame that carries none (an unknown event type).
    ///
    /// # Errors
    ///
    /// Everything [`ChunkDecoder::decode`] and [`push`](Self::push) return. An
    /// exception frame is also kept, for [`exception`](Self::exception) and
    /// [`finish`](Self::finish).
    pub fn push_frame<'s>(&'s mut self, frame: Frame<'_>) -> Result<Option<AnthropicEvent<'s>>, InvokeError> {
        match self.decoder.decode(frame) {
            Ok(Some(event)) => self.asm.push(event).map(Some),
            Ok(None) => Ok(None),
            Err(e) => {
                if let InvokeError::Service(exception) = &e {
                    self.asm.exception = Some(exception.clone());
                }
                Err(e)
            }
        }
    }

    /// Pushes one native event (the JSON bytes of one Messages stream event).
    ///
    /// # Errors
    ///
    /// [`InvokeError::InvalidEvent`] for JSON that does not have its event's shape,
    /// [`InvokeError::OutOfOrder`], [`InvokeError::DeltaKindMismatch`] and
    /// [`InvokeError::TooManyBlocks`] for events the stream's order does not allow
    /// (nothing changes), [`InvokeError::ModelError`] for an `error` event, and
    /// [`InvokeError::InvalidToolInput`] from `content_block_stop` when a tool call's
    /// input is not JSON (the block is stopped, its input kept as the raw string).
    pub fn push<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        self.asm.push(event)
    }

    /// The exception the stream ended with, if an exception frame came through
    /// [`push_frame`](Self::push_frame).
    pub fn exception(&self) -> Option<&ServiceException> {
        self.asm.exception.as_ref()
    }

    /// Whether `message_stop` was seen.
    pub fn is_complete(&self) -> bool {
        self.asm.stopped
    }

    /// Everything assembled so far, as a message (open blocks included as they are).
    pub fn partial(&self) -> AnthropicMessage {
        self.asm.message().0
    }

    /// The finished message.
    ///
    /// # Errors
    ///
    /// [`InvokeError::Incomplete`] when `message_stop` never came (the partial message,
    /// the open blocks and the exception are in it).
    pub fn finish(self) -> Result<AnthropicMessage, InvokeError> {
        let (message, _) = self.asm.message();
        if self.asm.stopped {
            return Ok(message);
        }
        let open_blocks = self
            .asm
            .blocks
            .iter()
            .zip(0u32..)
            .filter(|(slot, _)| !slot.stopped)
            .map(|(_, i)| i)
            .collect();
        let ended_with = match (&self.asm.exception, &self.asm.model_error) {
            (Some(e), _) => Some(e.to_string()),
            (None, Some(m)) => Some(m.clone()),
            (None, None) => None,
        };
        Err(InvokeError::Incomplete(Box::new(IncompleteMessage {
            started: self.asm.message.is_some(),
            open_blocks,
            ended_with,
            exception: self.asm.exception,
            partial: message,
        })))
    }
}

impl Assembly {
    fn message(&self) -> (AnthropicMessage, Option<serde_json::Error>) {
        let mut message = self.message.clone().unwrap_or_default();
        let mut first_err = None;
        message.content.clear();
        for slot in &self.blocks {
            let (block, err) = slot.state.to_block();
            message.content.push(block);
            if first_err.is_none() {
                first_err = err;
            }
        }
        (message, first_err)
    }

    /// The common checks of every event but `ping` and `error`.
    fn check_started(&self, event_type: &'static str, index: Option<u32>) -> Result<(), InvokeError> {
        if self.message.is_none() {
            return Err(order(event_type, index, EventOrder::BeforeMessageStart));
        }
        if self.stopped {
            return Err(order(event_type, index, EventOrder::AfterMessageStop));
        }
        Ok(())
    }

    /// The open block at `index`, checked.
    fn open_block(&self, event_type: &'static str, index: u32) -> Result<usize, InvokeError> {
        self.check_started(event_type, Some(index))?;
        // A u32 always fits in usize on the 32- and 64-bit targets this crate supports.
        let i = index as usize;
        match self.blocks.get(i) {
            None => Err(order(event_type, Some(index), EventOrder::UnknownBlock)),
            Some(slot) if slot.stopped => {
                Err(order(event_type, Some(index), EventOrder::BlockAlreadyStopped))
            }
            Some(_) => Ok(i),
        }
    }

    fn push<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        let ty = event_type(event).map_err(invalid("unknown"))?;
        match &*ty {
            "content_block_delta" => self.delta(event),
            "ping" => {
                // The type came from the prefix: the rest must still be JSON.
                serde_json::from_slice::<serde::de::IgnoredAny>(event).map_err(invalid("ping"))?;
                Ok(AnthropicEvent::Ping)
            }
            "message_start" => self.message_start(event),
            "content_block_start" => self.block_start(event),
            "content_block_stop" => self.block_stop(event),
            "message_delta" => self.message_delta(event),
            "message_stop" => self.message_stop(event),
            "error" => {
                let wire: ErrorWire = serde_json::from_slice(event).map_err(invalid("error"))?;
                let error = InvokeError::ModelError {
                    error_type: wire.error.ty,
                    message: wire.error.message,
                };
                self.model_error = Some(error.to_string());
                Err(error)
            }
            _ => {
                serde_json::from_slice::<serde::de::IgnoredAny>(event).map_err(invalid("unknown"))?;
                Ok(AnthropicEvent::Unknown { event_type: ty })
            }
        }
    }

    fn message_start<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        let wire: MessageStartWire = serde_json::from_slice(event).map_err(invalid("message_start"))?;
        if self.message.is_some() {
            return Err(order("message_start", None, EventOrder::Duplicate));
        }
        let mut message = wire.message;
        // Blocks come as events; a start with content is kept as sent in `extra`-free form.
        message.content.clear();
        self.message = Some(message);
        Ok(AnthropicEvent::MessageStart)
    }

    fn block_start<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "content_block_start";
        let wire: BlockStartWire<'_> = serde_json::from_slice(event).map_err(invalid(TY))?;
        let index = wire.index;
        self.check_started(TY, Some(index))?;
        // A u32 always fits in usize on the 32- and 64-bit targets this crate supports.
        let i = index as usize;
        if i < self.blocks.len() {
            return Err(order(TY, Some(index), EventOrder::BlockAlreadyStarted));
        }
        if self.blocks.len() >= AnthropicAssembler::MAX_BLOCKS {
            return Err(InvokeError::TooManyBlocks {
                index,
                max: AnthropicAssembler::MAX_BLOCKS,
            });
        }
        if i > self.blocks.len() {
            return Err(order(TY, Some(index), EventOrder::IndexGap));
        }
        let fields: BlockFieldsWire = serde_json::from_str(wire.content_block.get()).map_err(invalid(TY))?;
        let state = match fields.ty.as_str() {
            "text" => BlockState::Text {
                text: fields.text,
                citations: fields.citations.unwrap_or_default(),
            },
            "tool_use" => BlockState::ToolUse {
                id: fields.id,
                name: fields.name,
                start_input: fields
                    .input
                    .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
                json: String::new(),
                has_delta: false,
            },
            "thinking" => BlockState::Thinking {
                thinking: fields.thinking,
                signature: fields.signature,
            },
            "redacted_thinking" => BlockState::RedactedThinking { data: fields.data },
            _ => BlockState::Other {
                value: serde_json::from_str(wire.content_block.get()).map_err(invalid(TY))?,
                json: String::new(),
                has_delta: false,
            },
        };
        let block_type = state.block_type();
        self.blocks.push(Slot {
            state,
            stopped: false,
        });
        Ok(AnthropicEvent::ContentBlockStart { index, block_type })
    }

    fn delta<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "content_block_delta";
        let wire: BlockDeltaWire<'a> = serde_json::from_slice(event).map_err(invalid(TY))?;
        let index = wire.index;
        let d = wire.delta;
        let missing = |field: &'static str| InvokeError::InvalidEvent {
            event_type: TY,
            source: serde::de::Error::missing_field(field),
        };
        let delta = match &*d.ty {
            "text_delta" => NativeDelta::Text(d.text.ok_or_else(|| missing("text"))?.0),
            "input_json_delta" => {
                NativeDelta::InputJson(d.partial_json.ok_or_else(|| missing("partial_json"))?.0)
            }
            "thinking_delta" => NativeDelta::Thinking(d.thinking.ok_or_else(|| missing("thinking"))?.0),
            "signature_delta" => NativeDelta::Signature(d.signature.ok_or_else(|| missing("signature"))?.0),
            "citations_delta" => NativeDelta::Citation(d.citation.ok_or_else(|| missing("citation"))?.get()),
            _ => {
                return Err(InvokeError::InvalidEvent {
                    event_type: TY,
                    source: serde::de::Error::unknown_variant(
                        &d.ty,
                        &[
                            "text_delta",
                            "input_json_delta",
                            "thinking_delta",
                            "signature_delta",
                            "citations_delta",
                        ],
                    ),
                })
            }
        };
        let i = self.open_block(TY, index)?;
        let slot = self.blocks.get_mut(i).ok_or(InvokeError::OutOfOrder {
            event_type: TY,
            index: Some(index),
            problem: EventOrder::UnknownBlock,
        })?;
        if !slot.state.accepts(&delta) {
            return Err(InvokeError::DeltaKindMismatch {
                index,
                block: slot.state.block_type(),
                delta: delta.wire_name(),
            });
        }
        slot.state.apply(&delta);
        Ok(AnthropicEvent::ContentBlockDelta { index, delta })
    }

    fn block_stop<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "content_block_stop";
        let wire: BlockStopWire = serde_json::from_slice(event).map_err(invalid(TY))?;
        let index = wire.index;
        let i = self.open_block(TY, index)?;
        let Some(slot) = self.blocks.get_mut(i) else {
            return Err(InvokeError::OutOfOrder {
                event_type: TY,
                index: Some(index),
                problem: EventOrder::UnknownBlock,
            });
        };
        slot.stopped = true;
        if let BlockState::ToolUse {
            json,
            has_delta: true,
            id,
            name,
            ..
        } = &slot.state
        {
            if !json.trim().is_empty() {
                if let Err(source) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
                    return Err(InvokeError::InvalidToolInput {
                        index,
                        name: name.clone(),
                        id: id.clone(),
                        source,
                    });
                }
            }
        }
        Ok(AnthropicEvent::ContentBlockStop { index })
    }

    fn message_delta<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "message_delta";
        let wire: MessageDeltaWire<'a> = serde_json::from_slice(event).map_err(invalid(TY))?;
        self.check_started(TY, None)?;
        let Some(message) = self.message.as_mut() else {
            return Err(InvokeError::OutOfOrder {
                event_type: TY,
                index: None,
                problem: EventOrder::BeforeMessageStart,
            });
        };
        if let Some(reason) = &wire.delta.stop_reason {
            message.stop_reason = Some(reason.0.clone().into_owned());
        }
        if let Some(seq) = &wire.delta.stop_sequence {
            message.stop_sequence = Some(seq.0.clone().into_owned());
        }
        let usage = wire.usage.unwrap_or_default();
        apply_usage(&mut message.usage, &usage);
        Ok(AnthropicEvent::MessageDelta {
            stop_reason: wire.delta.stop_reason.map(|s| s.0),
            output_tokens: usage.output_tokens,
        })
    }

    fn message_stop<'a>(&mut self, event: &'a [u8]) -> Result<AnthropicEvent<'a>, InvokeError> {
        const TY: &str = "message_stop";
        let wire: MessageStopWire = serde_json::from_slice(event).map_err(invalid(TY))?;
        self.check_started(TY, None)?;
        if let Some(open) = self.blocks.iter().zip(0u32..).find(|(s, _)| !s.stopped) {
            return Err(order(TY, Some(open.1), EventOrder::BlockStillOpen));
        }
        if let Some(message) = self.message.as_mut() {
            if wire.metrics.is_some() {
                message.invocation_metrics = wire.metrics;
            }
        }
        self.stopped = true;
        Ok(AnthropicEvent::MessageStop {
            metrics: wire.metrics,
        })
    }
}

/// Applies the counts a `usage` object carries (the Anthropic SDKs' rule: a count
/// that is present replaces the one before).
pub(crate) fn apply_usage(usage: &mut AnthropicUsage, delta: &UsageDeltaWire) {
    if let Some(n) = delta.input_tokens {
        usage.input_tokens = n;
    }
    if let Some(n) = delta.output_tokens {
        usage.output_tokens = n;
    }
    if delta.cache_creation_input_tokens.is_some() {
        usage.cache_creation_input_tokens = delta.cache_creation_input_tokens;
    }
    if delta.cache_read_input_tokens.is_some() {
        usage.cache_read_input_tokens = delta.cache_read_input_tokens;
    }
}
