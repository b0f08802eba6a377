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

mod content;
mod response;

pub use content::{
    CachePointBlock, Citation, CitationGeneratedContent, CitationSourceContent, CitationsContentBlock,
    ContentBlock, DocumentBlock, ImageBlock, MediaSource, Message, ReasoningContentBlock, ReasoningTextBlock,
    S3Location, ToolInput, ToolResultBlock, ToolResultContentBlock, ToolUseBlock,
};
pub use response::{CacheDetail, ConverseMetrics, ConverseOutput, ConverseResponse, TokenUsage};

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
