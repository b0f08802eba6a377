//! The native events as [`AnthropicAssembler::push`](super::AnthropicAssembler::push)
//! reads them: [`AnthropicEvent`] and its [`NativeDelta`].

use std::borrow::Cow;

use super::message::{BlockType, InvocationMetrics};

/// One native event, as [`AnthropicAssembler::push`](super::AnthropicAssembler::push) read it. Strings borrow from the
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
    /// `citations_delta`: one citation of the text block, as its raw JSON text.
    Citation(&'a str),
    /// `input_json_delta`: a fragment of a tool call's input JSON.
    InputJson(Cow<'a, str>),
    /// `thinking_delta`.
    Thinking(Cow<'a, str>),
    /// `signature_delta`.
    Signature(Cow<'a, str>),
}

impl NativeDelta<'_> {
    pub(super) fn wire_name(&self) -> &'static str {
        match self {
            NativeDelta::Text(_) => "text_delta",
            NativeDelta::InputJson(_) => "input_json_delta",
            NativeDelta::Thinking(_) => "thinking_delta",
            NativeDelta::Signature(_) => "signature_delta",
            NativeDelta::Citation(_) => "citations_delta",
        }
    }
}
