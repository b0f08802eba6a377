//! [`BlockState`]: one content block while it is being assembled, which deltas it
//! accepts, and the finished block it becomes.

use serde_json::Value;

use super::event::NativeDelta;
use super::message::{AnthropicContentBlock, BlockType};
/// One content block being assembled.
#[derive(Debug, Clone)]
pub(super) enum BlockState {
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
    pub(super) fn block_type(&self) -> BlockType {
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
    pub(super) fn accepts(&self, delta: &NativeDelta<'_>) -> bool {
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
    pub(super) fn apply(&mut self, delta: &NativeDelta<'_>) {
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
    pub(super) fn to_block(&self) -> (AnthropicContentBlock, Option<serde_json::Error>) {
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
