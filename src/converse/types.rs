//! The Converse API's JSON shapes: [`ConverseResponse`], [`Message`], [`ContentBlock`] and
//! the blocks inside it, with serde names exactly as Bedrock spells them.
//!
//! The same types serve responses (what the assembler builds) and requests (what a
//! client sends). Members Bedrock adds that this crate does not model are kept in the
//! `extra` map of the nearest struct and written back unchanged, so a response parses
//! and re-serializes to the same JSON.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use base64::Engine as _;

/// JSON members this crate does not model, kept so nothing is lost.
pub type Extra = Map<String, Value>;

// ===== Blob =====

/// Binary data, written as standard base64 in JSON (Bedrock's `Blob`).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Bytes);

impl Blob {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The base64 text Bedrock puts in JSON.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }

    /// Decodes standard base64 (padded or not); `None` if `text` is not base64.
    pub fn from_base64(text: &str) -> Option<Blob> {
        BASE64.decode(text).ok().map(Blob::from)
    }
}

/// Standard base64; decoding accepts padded and unpadded text.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(Bytes::from(v))
    }
}

impl From<Bytes> for Blob {
    fn from(v: Bytes) -> Self {
        Blob(v)
    }
}

impl From<&[u8]> for Blob {
    fn from(v: &[u8]) -> Self {
        Blob(Bytes::copy_from_slice(v))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl Visitor<'_> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
                Blob::from_base64(v).ok_or_else(|| E::custom("invalid base64"))
            }
        }
        d.deserialize_str(BlobVisitor)
    }
}

// ===== Role, StopReason =====

/// Who wrote a message (`ConversationRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `user`
    User,
    /// `assistant`
    Assistant,
    /// `system`
    System,
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

/// Why the model stopped (`StopReason`). Values this crate does not know are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// `end_turn`
    EndTurn,
    /// `tool_use`
    ToolUse,
    /// `max_tokens`
    MaxTokens,
    /// `stop_sequence`
    StopSequence,
    /// `guardrail_intervened`
    GuardrailIntervened,
    /// `content_filtered`
    ContentFiltered,
    /// `malformed_model_output`
    MalformedModelOutput,
    /// `malformed_tool_use`
    MalformedToolUse,
    /// `model_context_window_exceeded`
    ModelContextWindowExceeded,
    /// A value added to the service after this crate was written.
    Other(String),
}

impl StopReason {
    /// Parses the wire name (never fails: unknown names become [`StopReason::Other`]).
    pub fn from_wire(s: &str) -> StopReason {
        match s {
            "end_turn" => StopReason::EndTurn,
            "tool_use" => StopReason::ToolUse,
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            "guardrail_intervened" => StopReason::GuardrailIntervened,
            "content_filtered" => StopReason::ContentFiltered,
            "malformed_model_output" => StopReason::MalformedModelOutput,
            "malformed_tool_use" => StopReason::MalformedToolUse,
            "model_context_window_exceeded" => StopReason::ModelContextWindowExceeded,
            other => StopReason::Other(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::GuardrailIntervened => "guardrail_intervened",
            StopReason::ContentFiltered => "content_filtered",
            StopReason::MalformedModelOutput => "malformed_model_output",
            StopReason::MalformedToolUse => "malformed_tool_use",
            StopReason::ModelContextWindowExceeded => "model_context_window_exceeded",
            StopReason::Other(s) => s,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StopReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StopReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StopVisitor;
        impl Visitor<'_> for StopVisitor {
            type Value = StopReason;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stop reason string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StopReason, E> {
                Ok(StopReason::from_wire(v))
            }
        }
        d.deserialize_str(StopVisitor)
    }
}

// ===== ConverseResponse =====

/// The body of a Converse response, and what [`StreamAssembler`](super::StreamAssembler)
/// builds from a ConverseStream.
///
/// Fields Bedrock requires are `Option` here because a stream cut short still yields a
/// partial response; a complete response has all of them (except `usage` and `metrics`,
/// which a stream carries in its optional `metadata` event).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    /// `output`: the assistant's message.
    pub output: ConverseOutput,
    /// `stopReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// `metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ConverseMetrics>,
    /// `additionalModelResponseFields`: model-specific, as the model sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_response_fields: Option<Value>,
    /// `trace` (guardrail and prompt-router traces), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Value>,
    /// Other members (`performanceConfig`, `serviceTier`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ConverseResponse {
    /// The assistant message's content blocks (empty if there is no message).
    pub fn content(&self) -> &[ContentBlock] {
        self.output.message.as_ref().map_or(&[], |m| &m.content)
    }

    /// All text blocks joined (what a chat UI shows).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for block in self.content() {
            match block {
                ContentBlock::Text(t) => out.push_str(t),
                ContentBlock::CitationsContent(c) => {
                    for part in &c.content {
                        if let Some(t) = &part.text {
                            out.push_str(t);
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The tool calls, in block order.
    pub fn tool_uses(&self) -> impl Iterator<Item = &ToolUseBlock> {
        self.content().iter().filter_map(|b| match b {
            ContentBlock::ToolUse(t) => Some(t),
            _ => None,
        })
    }
}

/// `ConverseOutput` (a union with one member today: `message`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConverseOutput {
    /// `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `TokenUsage`.
///
/// Deserialized by hand (see `members`): serde's derive with a flattened map buffers
/// every member first, a dozen allocations per `metadata` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// `inputTokens`.
    pub input_tokens: u64,
    /// `outputTokens`.
    pub output_tokens: u64,
    /// `totalTokens`.
    pub total_tokens: u64,
    /// `cacheReadInputTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// `cacheWriteInputTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
    /// `cacheDetails`: cache writes by TTL (`1h` before `5m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_details: Option<Vec<CacheDetail>>,
    /// Other members (`serverToolUsage`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `CacheDetail`: the cache writes of one TTL (deserialized by hand, as [`TokenUsage`]
/// is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheDetail {
    /// `ttl` (`5m`, `1h`).
    pub ttl: String,
    /// `inputTokens`.
    pub input_tokens: u64,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ConverseMetrics` / `ConverseStreamMetrics` (deserialized by hand, as
/// [`TokenUsage`] is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseMetrics {
    /// `latencyMs`.
    pub latency_ms: u64,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

impl<'de> Deserialize<'de> for TokenUsage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(members::UsageVisitor)
    }
}

impl<'de> Deserialize<'de> for CacheDetail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(members::CacheDetailVisitor)
    }
}

impl<'de> Deserialize<'de> for ConverseMetrics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(members::MetricsVisitor)
    }
}

/// The hand-written readers of [`TokenUsage`] and [`ConverseMetrics`]: known members
/// typed, names compared without allocating, the rest kept in `extra` as sent.
mod members {
    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde_json::Value;

    use super::{CacheDetail, ConverseMetrics, TokenUsage};

    struct NameVisitor(&'static [&'static str]);

    impl Visitor<'_> for NameVisitor {
        type Value = Result<usize, String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a member name")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(self.0.iter().position(|n| *n == v).ok_or_else(|| v.to_owned()))
        }
    }

    /// Reads the next member name of `map`: its position in `names`, or the other
    /// name, owned (for `extra`).
    fn next_name<'de, A: MapAccess<'de>>(
        map: &mut A,
        names: &'static [&'static str],
    ) -> Result<Option<Result<usize, String>>, A::Error> {
        struct Seed(&'static [&'static str]);
        impl<'de> de::DeserializeSeed<'de> for Seed {
            type Value = Result<usize, String>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_identifier(NameVisitor(self.0))
            }
        }
        map.next_key_seed(Seed(names))
    }

    /// Fails on a second occurrence of known member `i`.
    fn once<E: de::Error>(seen: &mut u32, i: usize, names: &[&'static str]) -> Result<(), E> {
        let bit = 1u32 << i;
        if *seen & bit != 0 {
            return Err(E::duplicate_field(names[i]));
        }
        *seen |= bit;
        Ok(())
    }

    const USAGE: &[&str] = &[
        "inputTokens",
        "outputTokens",
        "totalTokens",
        "cacheReadInputTokens",
        "cacheWriteInputTokens",
        "cacheDetails",
    ];

    pub(super) struct UsageVisitor;

    impl<'de> Visitor<'de> for UsageVisitor {
        type Value = TokenUsage;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a TokenUsage object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TokenUsage, A::Error> {
            let mut usage = TokenUsage::default();
            let mut seen = 0u32;
            while let Some(name) = next_name(&mut map, USAGE)? {
                match name {
                    Ok(i) => {
                        once(&mut seen, i, USAGE)?;
                        match i {
                            0 => usage.input_tokens = map.next_value()?,
                            1 => usage.output_tokens = map.next_value()?,
                            2 => usage.total_tokens = map.next_value()?,
                            3 => usage.cache_read_input_tokens = map.next_value()?,
                            4 => usage.cache_write_input_tokens = map.next_value()?,
                            _ => usage.cache_details = map.next_value()?,
                        }
                    }
                    Err(other) => {
                        let value: Value = map.next_value()?;
                        usage.extra.insert(other, value);
                    }
                }
            }
            Ok(usage)
        }
    }

    const CACHE_DETAIL: &[&str] = &["ttl", "inputTokens"];

    pub(super) struct CacheDetailVisitor;

    impl<'de> Visitor<'de> for CacheDetailVisitor {
        type Value = CacheDetail;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a CacheDetail object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CacheDetail, A::Error> {
            let mut detail = CacheDetail::default();
            let mut seen = 0u32;
            while let Some(name) = next_name(&mut map, CACHE_DETAIL)? {
                match name {
                    Ok(i) => {
                        once(&mut seen, i, CACHE_DETAIL)?;
                        match i {
                            0 => detail.ttl = map.next_value()?,
                            _ => detail.input_tokens = map.next_value()?,
                        }
                    }
                    Err(other) => {
                        let value: Value = map.next_value()?;
                        detail.extra.insert(other, value);
                    }
                }
            }
            Ok(detail)
        }
    }

    const METRICS: &[&str] = &["latencyMs"];

    pub(super) struct MetricsVisitor;

    impl<'de> Visitor<'de> for MetricsVisitor {
        type Value = ConverseMetrics;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a ConverseMetrics object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConverseMetrics, A::Error> {
            let mut metrics = ConverseMetrics::default();
            let mut seen = 0u32;
            while let Some(name) = next_name(&mut map, METRICS)? {
                match name {
                    Ok(i) => {
                        once(&mut seen, i, METRICS)?;
                        metrics.latency_ms = map.next_value()?;
                    }
                    Err(other) => {
                        let value: Value = map.next_value()?;
                        metrics.extra.insert(other, value);
                    }
                }
            }
            Ok(metrics)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::{ConverseMetrics, TokenUsage};

        #[test]
        fn usage_reads_known_members_and_keeps_the_rest() {
            let u: TokenUsage = serde_json::from_str(
                r#"{"inputTokens":1,"outputTokens":2,"totalTokens":3,"cacheReadInputTokens":4,"cacheDetails":[{"ttl":"5m","inputTokens":4}]}"#,
            )
            .unwrap();
            assert_eq!((u.input_tokens, u.output_tokens, u.total_tokens), (1, 2, 3));
            assert_eq!(u.cache_read_input_tokens, Some(4));
            assert_eq!(u.cache_write_input_tokens, None);
            let details = u.cache_details.as_deref().unwrap();
            assert_eq!((details[0].ttl.as_str(), details[0].input_tokens), ("5m", 4));
            assert!(u.extra.is_empty());
            let again: TokenUsage = serde_json::from_value(serde_json::to_value(&u).unwrap()).unwrap();
            assert_eq!(again, u);
            assert_eq!(
                serde_json::from_str::<TokenUsage>("{}").unwrap(),
                TokenUsage::default()
            );
        }

        #[test]
        fn duplicates_and_wrong_types_are_errors() {
            assert!(serde_json::from_str::<TokenUsage>(r#"{"inputTokens":1,"inputTokens":2}"#).is_err());
            assert!(serde_json::from_str::<TokenUsage>(r#"{"inputTokens":"1"}"#).is_err());
            assert!(serde_json::from_str::<TokenUsage>(r#"{"inputTokens":-1}"#).is_err());
            assert!(serde_json::from_str::<TokenUsage>("[]").is_err());
            assert!(serde_json::from_str::<ConverseMetrics>(r#"{"latencyMs":1,"latencyMs":1}"#).is_err());
        }

        #[test]
        fn metrics_keep_unknown_members() {
            let m: ConverseMetrics = serde_json::from_str(r#"{"latencyMs":7,"x":{"y":1}}"#).unwrap();
            assert_eq!(m.latency_ms, 7);
            assert_eq!(m.extra["x"]["y"], 1);
        }
    }
}

// ===== Message and content blocks =====

/// A conversation message (`Message`): used in requests and as the response's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `role`.
    pub role: Role,
    /// `content`.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message with one text block.
    pub fn user(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: vec![ContentBlock::Text(text.into())],
        }
    }

    /// An assistant message with one text block.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![ContentBlock::Text(text.into())],
        }
    }
}

/// One block of a message's content (the `ContentBlock` union): one JSON key naming the
/// kind, e.g. `{"text": "..."}` or `{"toolUse": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ContentBlock {
    /// `text`.
    Text(String),
    /// `image`.
    Image(ImageBlock),
    /// `document`.
    Document(DocumentBlock),
    /// `toolUse`: a tool call by the model.
    ToolUse(ToolUseBlock),
    /// `toolResult`: the caller's answer to a tool call.
    ToolResult(ToolResultBlock),
    /// `reasoningContent`: the model's reasoning.
    ReasoningContent(ReasoningContentBlock),
    /// `citationsContent`: generated text with its citations.
    CitationsContent(CitationsContentBlock),
    /// `cachePoint`: a prompt-cache checkpoint (requests).
    CachePoint(CachePointBlock),
    /// Any other kind (`video`, `audio`, `guardContent`, `searchResult`, ...), as sent:
    /// a JSON object with one member.
    #[serde(untagged)]
    Other(Extra),
}

impl ContentBlock {
    /// A `text` block.
    pub fn text(text: impl Into<String>) -> ContentBlock {
        ContentBlock::Text(text.into())
    }

    /// A `toolResult` block with one JSON content item and no status.
    pub fn tool_result_json(tool_use_id: impl Into<String>, json: Value) -> ContentBlock {
        ContentBlock::ToolResult(ToolResultBlock {
            tool_use_id: tool_use_id.into(),
            content: vec![ToolResultContentBlock::Json(json)],
            status: None,
            extra: Extra::new(),
        })
    }

    /// A `toolResult` block with one text content item and no status.
    pub fn tool_result_text(tool_use_id: impl Into<String>, text: impl Into<String>) -> ContentBlock {
        ContentBlock::ToolResult(ToolResultBlock {
            tool_use_id: tool_use_id.into(),
            content: vec![ToolResultContentBlock::Text(text.into())],
            status: None,
            extra: Extra::new(),
        })
    }

    /// A `cachePoint` block of type `default`.
    pub fn cache_point() -> ContentBlock {
        ContentBlock::CachePoint(CachePointBlock {
            r#type: "default".to_owned(),
            extra: Extra::new(),
        })
    }
}

/// `ToolUseBlock`: a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseBlock {
    /// `toolUseId`.
    pub tool_use_id: String,
    /// `name`.
    pub name: String,
    /// `input`: the arguments, a JSON document, kept as the text the model wrote.
    pub input: ToolInput,
    /// `type` (e.g. `server_tool_use`; Claude also sends `tool_use`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ToolUseBlock {
    /// The arguments deserialized into `T` (parsed on each call).
    ///
    /// # Errors
    ///
    /// When the input does not have the shape of `T`.
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.input.parse()
    }
}

/// A tool call's `input`: one JSON value, kept as the text it arrived as (checked to be
/// valid JSON, no tree built). [`parse`](Self::parse) or [`to_value`](Self::to_value)
/// read it when asked; serialized with serde_json it is written back byte for byte.
///
/// # Examples
///
/// ```
/// use bedrock_converse::converse::ToolInput;
///
/// let input = ToolInput::from_json(r#"{"city": "Oslo", "days": 3}"#.to_owned())?;
/// assert_eq!(input.as_str(), r#"{"city": "Oslo", "days": 3}"#);
/// assert_eq!(input, serde_json::json!({"city": "Oslo", "days": 3}));
/// #[derive(serde::Deserialize)]
/// struct Args { city: String }
/// assert_eq!(input.parse::<Args>()?.city, "Oslo");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct ToolInput(String);

/// Equal when the JSON values are equal (`{"a":1}` equals `{ "a": 1 }`): the same text
/// is compared as text, different texts are parsed.
impl PartialEq for ToolInput {
    fn eq(&self, other: &ToolInput) -> bool {
        self.0 == other.0 || self.to_value() == other.to_value()
    }
}

impl ToolInput {
    /// Checks that `text` is one JSON value (no tree is built) and keeps it.
    ///
    /// # Errors
    ///
    /// What serde_json says when it is not.
    pub fn from_json(text: String) -> Result<ToolInput, serde_json::Error> {
        serde_json::from_str::<de::IgnoredAny>(&text)?;
        Ok(ToolInput(text))
    }

    /// Text already checked to be one JSON value.
    pub(crate) fn checked(text: String) -> ToolInput {
        ToolInput(text)
    }

    /// `{}`: no arguments.
    pub fn empty_object() -> ToolInput {
        ToolInput("{}".to_owned())
    }

    /// The JSON text, as the model wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Parses the input into `T`.
    ///
    /// # Errors
    ///
    /// When the input does not have the shape of `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Parses the input into a [`Value`] tree.
    pub fn to_value(&self) -> Value {
        // The text was checked when this was made; `Null` cannot happen.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for ToolInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToolInput({})", self.0)
    }
}

impl fmt::Display for ToolInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Value> for ToolInput {
    fn from(v: Value) -> ToolInput {
        ToolInput(v.to_string())
    }
}

impl From<&Value> for ToolInput {
    fn from(v: &Value) -> ToolInput {
        ToolInput(v.to_string())
    }
}

/// Compares the parsed values (`{"a":1}` equals `{ "a": 1 }`).
impl PartialEq<Value> for ToolInput {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl Serialize for ToolInput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// Rebuilds the JSON text from whatever deserializer it comes through (serde's own
/// buffering, used by `flatten` and untagged variants, cannot carry a `RawValue`),
/// keeping the members in their order.
impl<'de> Deserialize<'de> for ToolInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        de::DeserializeSeed::deserialize(Transcode(&mut out), d)?;
        String::from_utf8(out)
            .map(ToolInput)
            .map_err(|_| de::Error::custom("tool input is not UTF-8"))
    }
}

/// Writes the JSON value it deserializes into a buffer.
struct Transcode<'o>(&'o mut Vec<u8>);

impl<'de> de::DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Transcode<'_> {
    fn write<T: Serialize + ?Sized, E: de::Error>(self, v: &T) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, v).map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.write(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Transcode(&mut *self.0))?.is_none() {
                if !first {
                    // Take back the comma written before the end was known.
                    self.0.pop();
                }
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !first {
                self.0.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *self.0, &*key).map_err(de::Error::custom)?;
            self.0.push(b':');
            map.next_value_seed(Transcode(&mut *self.0))?;
        }
        self.0.push(b'}');
        Ok(())
    }
}

/// `ToolResultBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultBlock {
    /// `toolUseId` of the call this answers.
    pub tool_use_id: String,
    /// `content`.
    pub content: Vec<ToolResultContentBlock>,
    /// `status`: `success` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Other members (`type`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One item of a tool result (`ToolResultContentBlock`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ToolResultContentBlock {
    /// `json`: a JSON document.
    Json(Value),
    /// `text`.
    Text(String),
    /// `image`.
    Image(ImageBlock),
    /// `document`.
    Document(DocumentBlock),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Extra),
}

/// `ImageBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    /// `format`: `png`, `jpeg`, `gif` or `webp`.
    pub format: String,
    /// `source`.
    pub source: MediaSource,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `DocumentBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentBlock {
    /// `format`: `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt` or `md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `name`.
    pub name: String,
    /// `source`.
    pub source: MediaSource,
    /// Other members (`context`, `citations`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ImageSource` / `DocumentSource`: where the bytes come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum MediaSource {
    /// `bytes`: inline data (base64 in JSON).
    Bytes(Blob),
    /// `s3Location`.
    S3Location(S3Location),
    /// `text` (documents only).
    Text(String),
    /// Any other kind (`content`, ...), as sent.
    #[serde(untagged)]
    Other(Extra),
}

/// `S3Location`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// `uri`.
    pub uri: String,
    /// `bucketOwner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_owner: Option<String>,
}

/// `ReasoningContentBlock`: reasoning text with its signature, or redacted reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ReasoningContentBlock {
    /// `reasoningText`.
    ReasoningText(ReasoningTextBlock),
    /// `redactedContent`: encrypted reasoning (base64 in JSON).
    RedactedContent(Blob),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Extra),
}

/// `ReasoningTextBlock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasoningTextBlock {
    /// `text`.
    pub text: String,
    /// `signature`: send it back unchanged in the next request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// `CitationsContentBlock`: generated text and the sources it cites.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CitationsContentBlock {
    /// `content`: the generated text.
    #[serde(default)]
    pub content: Vec<CitationGeneratedContent>,
    /// `citations`.
    #[serde(default)]
    pub citations: Vec<Citation>,
}

/// `CitationGeneratedContent` (a union with one member today: `text`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CitationGeneratedContent {
    /// `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Citation` (also the payload of a streamed `citation` delta).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    /// `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `sourceContent`: the cited passages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_content: Vec<CitationSourceContent>,
    /// `location` (a `CitationLocation` union such as `documentPage`), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Value>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `CitationSourceContent` (a union with one member today: `text`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CitationSourceContent {
    /// `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `CachePointBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachePointBlock {
    /// `type`: `default`.
    pub r#type: String,
    /// Other members (`ttl`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_blocks_serialize_to_bedrock_names() {
        let msg = Message {
            role: Role::User,
            content: vec![
                ContentBlock::text("hi"),
                ContentBlock::Image(ImageBlock {
                    format: "png".into(),
                    source: MediaSource::Bytes(Blob::from(&b"\x89PNG"[..])),
                    extra: Extra::new(),
                }),
                ContentBlock::tool_result_json("t1", json!({"ok": true})),
                ContentBlock::tool_result_text("t2", "done"),
                ContentBlock::cache_point(),
                ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(Blob::from(
                    &b"abc"[..],
                ))),
            ],
        };
        let v = serde_json::to_value(&msg).unwrap();
        assert_eq!(
            v,
            json!({"role": "user", "content": [
                {"text": "hi"},
                {"image": {"format": "png", "source": {"bytes": "iVBORw=="}}},
                {"toolResult": {"toolUseId": "t1", "content": [{"json": {"ok": true}}]}},
                {"toolResult": {"toolUseId": "t2", "content": [{"text": "done"}]}},
                {"cachePoint": {"type": "default"}},
                {"reasoningContent": {"redactedContent": "YWJj"}},
            ]})
        );
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn unknown_blocks_and_members_survive() {
        let v = json!({"role": "assistant", "content": [
            {"video": {"format": "mp4"}},
            {"toolUse": {"toolUseId": "a", "name": "n", "input": {}, "type": "tool_use", "zzz": 1}},
        ]});
        let msg: Message = serde_json::from_value(v.clone()).unwrap();
        assert!(matches!(msg.content[0], ContentBlock::Other(_)));
        assert_eq!(serde_json::to_value(&msg).unwrap(), v);
    }
}
