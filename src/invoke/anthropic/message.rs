//! The finished message: [`AnthropicMessage`], its content blocks and usage, the
//! JSON a non-streaming `InvokeModel` returns for `anthropic.*` models.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire::UsageDeltaWire;

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
