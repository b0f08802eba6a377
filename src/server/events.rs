//! ConverseStream events as the server writes them: frames with Bedrock's header layout
//! and `"p"` padding, or the same content folded into a Converse JSON response.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::eventstream::{EventStreamError, Message, MessageBuilder};
use crate::invoke::{AnthropicContentBlock, AnthropicMessage, AnthropicUsage, InvocationMetrics};

/// The padding alphabet of real streams; `"p"` is a prefix of it.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// One event of a scripted response, named as layer 2 names it
/// ([`StreamEvent`](crate::converse::StreamEvent)), owned.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// `messageStart` (role `assistant`).
    MessageStart,
    /// `contentBlockStart`.
    ContentBlockStart { index: u32, start: ContentBlockStart },
    /// `contentBlockDelta`.
    ContentBlockDelta { index: u32, delta: ContentBlockDelta },
    /// `contentBlockStop`.
    ContentBlockStop { index: u32 },
    /// `messageStop`.
    MessageStop { stop_reason: &'static str },
    /// `metadata`.
    Metadata(Usage),
    /// An exception frame (`:message-type` exception) with this payload.
    Exception {
        exception_type: &'static str,
        payload: Value,
    },
}

/// The `start` of a `contentBlockStart` event, as
/// [`converse::ContentBlockStart`](crate::converse::ContentBlockStart) names it.
#[derive(Debug, Clone)]
pub(crate) enum ContentBlockStart {
    /// `toolUse`: a tool call begins.
    ToolUse { tool_use_id: String, name: String },
}

/// The `delta` of a `contentBlockDelta` event, as
/// [`converse::ContentBlockDelta`](crate::converse::ContentBlockDelta) names it.
#[derive(Debug, Clone)]
pub(crate) enum ContentBlockDelta {
    /// `text`.
    Text(String),
    /// `toolUse.input`: a fragment of the tool call's JSON input.
    ToolUseInput(String),
    /// `reasoningContent.text`.
    ReasoningText(String),
    /// `reasoningContent.signature`.
    ReasoningSignature(String),
    /// `reasoningContent.redactedContent`: these bytes, sent as base64.
    ReasoningRedacted(Vec<u8>),
    /// `citation`: a `CitationsDelta` object (`title`, `sourceContent`, `location`).
    Citation(Value),
}

impl ContentBlockDelta {
    /// The delta's JSON, as ConverseStream writes it.
    fn to_json(&self) -> Value {
        match self {
            ContentBlockDelta::Text(t) => json!({ "text": t }),
            ContentBlockDelta::ToolUseInput(f) => json!({ "toolUse": { "input": f } }),
            ContentBlockDelta::ReasoningText(t) => json!({ "reasoningContent": { "text": t } }),
            ContentBlockDelta::ReasoningSignature(s) => json!({ "reasoningContent": { "signature": s } }),
            ContentBlockDelta::ReasoningRedacted(b) => {
                json!({ "reasoningContent": { "redactedContent": BASE64.encode(b) } })
            }
            ContentBlockDelta::Citation(c) => json!({ "citation": c }),
        }
    }
}

/// Token counts of the `metadata` event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    /// `cacheReadInputTokens` (left out when 0).
    pub(crate) cache_read: u64,
    /// `cacheWriteInputTokens` (left out when 0).
    pub(crate) cache_write: u64,
}

impl Usage {
    pub(crate) fn new(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            cache_read: 0,
            cache_write: 0,
        }
    }

    fn to_json(self) -> Value {
        // Bedrock's `inputTokens` leaves the cached tokens out; `totalTokens` counts them.
        let total = self
            .input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write);
        let mut usage = json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": total,
        });
        if self.cache_read > 0 {
            usage["cacheReadInputTokens"] = json!(self.cache_read);
        }
        if self.cache_write > 0 {
            usage["cacheWriteInputTokens"] = json!(self.cache_write);
        }
        usage
    }
}

/// The events of one response.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) events: Vec<Event>,
}

/// A payload object with members in sorted order (whether or not serde_json keeps
/// insertion order), plus `"p"` padding of `pad` bytes.
fn padded(mut members: Vec<(&str, Value)>, pad: usize) -> Value {
    let pad = PADDING.get(..pad.clamp(1, PADDING.len())).unwrap_or("a");
    members.push(("p", Value::String(pad.to_owned())));
    members.sort_by(|a, b| a.0.cmp(b.0));
    let mut map = Map::new();
    for (k, v) in members {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

/// Padding length of the `seq`-th frame: varies between 1 and 59 like real streams.
fn pad_len(seq: usize) -> usize {
    1 + (seq.wrapping_mul(23).wrapping_add(7)) % 59
}

impl Event {
    /// The frame of this event, `seq` being its position in the stream (for padding) and
    /// `latency_ms` the value written in `metadata`.
    pub(crate) fn to_frame(&self, seq: usize, latency_ms: u64) -> Result<Message, EventStreamError> {
        let pad = pad_len(seq);
        let (event_type, payload) = match self {
            Event::MessageStart => ("messageStart", padded(vec![("role", json!("assistant"))], pad)),
            Event::ContentBlockStart {
                index,
                start: ContentBlockStart::ToolUse { tool_use_id, name },
            } => (
                "contentBlockStart",
                padded(
                    vec![
                        ("contentBlockIndex", json!(index)),
                        (
                            "start",
                            json!({ "toolUse": { "name": name, "toolUseId": tool_use_id } }),
                        ),
                    ],
                    pad,
                ),
            ),
            Event::ContentBlockDelta { index, delta } => (
                "contentBlockDelta",
                padded(
                    vec![("contentBlockIndex", json!(index)), ("delta", delta.to_json())],
                    pad,
                ),
            ),
            Event::ContentBlockStop { index } => (
                "contentBlockStop",
                padded(vec![("contentBlockIndex", json!(index))], pad),
            ),
            Event::MessageStop { stop_reason } => (
                "messageStop",
                padded(vec![("stopReason", json!(stop_reason))], pad),
            ),
            Event::Metadata(usage) => (
                "metadata",
                padded(
                    vec![
                        ("metrics", json!({ "latencyMs": latency_ms })),
                        ("usage", usage.to_json()),
                    ],
                    pad,
                ),
            ),
            Event::Exception {
                exception_type,
                payload,
            } => {
                return MessageBuilder::new()
                    .string_header(":message-type", "exception")
                    .string_header(":exception-type", exception_type)
                    .string_header(":content-type", "application/json")
                    .build(payload.to_string().as_bytes());
            }
        };
        MessageBuilder::new()
            .string_header(":event-type", event_type)
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "event")
            .build(payload.to_string().as_bytes())
    }
}

/// One content block being folded, as the assembler folds it.
enum Block {
    Text(String),
    Tool { id: String, name: String, input: String },
    Reasoning { text: String, signature: String },
    Redacted(Vec<u8>),
    Citations { text: String, citations: Vec<Value> },
}

impl Block {
    /// The block a first delta opens.
    fn opened_by(delta: &ContentBlockDelta) -> Block {
        match delta {
            ContentBlockDelta::ReasoningText(_) | ContentBlockDelta::ReasoningSignature(_) => {
                Block::Reasoning {
                    text: String::new(),
                    signature: String::new(),
                }
            }
            ContentBlockDelta::ReasoningRedacted(_) => Block::Redacted(Vec::new()),
            _ => Block::Text(String::new()),
        }
    }

    /// Adds a delta; a delta of another kind is ignored, except that a citation turns a
    /// text block into a cited one.
    fn push(&mut self, delta: &ContentBlockDelta) {
        match (self, delta) {
            (Block::Text(s) | Block::Citations { text: s, .. }, ContentBlockDelta::Text(t)) => s.push_str(t),
            (Block::Tool { input, .. }, ContentBlockDelta::ToolUseInput(f)) => input.push_str(f),
            (Block::Reasoning { text, .. }, ContentBlockDelta::ReasoningText(t)) => text.push_str(t),
            (Block::Reasoning { signature, .. }, ContentBlockDelta::ReasoningSignature(s)) => {
                signature.push_str(s)
            }
            (Block::Redacted(bytes), ContentBlockDelta::ReasoningRedacted(b)) => bytes.extend_from_slice(b),
            (Block::Citations { citations, .. }, ContentBlockDelta::Citation(c)) => citations.push(c.clone()),
            (block @ Block::Text(_), ContentBlockDelta::Citation(c)) => {
                let text = match block {
                    Block::Text(s) => std::mem::take(s),
                    _ => String::new(),
                };
                *block = Block::Citations {
                    text,
                    citations: vec![c.clone()],
                };
            }
            _ => {}
        }
    }

    /// The block's Converse JSON.
    fn into_json(self) -> Value {
        match self {
            Block::Text(text) => json!({ "text": text }),
            Block::Tool { id, name, input } => {
                let input: Value = if input.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&input).unwrap_or(Value::String(input))
                };
                json!({ "toolUse": { "input": input, "name": name, "toolUseId": id } })
            }
            Block::Reasoning { text, signature } => json!({
                "reasoningContent": { "reasoningText": { "signature": signature, "text": text } }
            }),
            Block::Redacted(bytes) => {
                json!({ "reasoningContent": { "redactedContent": BASE64.encode(bytes) } })
            }
            Block::Citations { text, citations } => json!({
                "citationsContent": { "citations": citations, "content": [{ "text": text }] }
            }),
        }
    }
}

impl Block {
    /// The block as an Anthropic content block. Tool ids `tooluse_X` become
    /// `toolu_bdrk_X`, the form Bedrock gives Anthropic models' calls.
    fn into_anthropic(self) -> AnthropicContentBlock {
        match self {
            Block::Text(text) => AnthropicContentBlock::Text {
                text,
                citations: Vec::new(),
            },
            Block::Tool { id, name, input } => AnthropicContentBlock::ToolUse {
                id: format!("toolu_bdrk_{}", id.strip_prefix("tooluse_").unwrap_or(&id)),
                name,
                input: if input.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&input).unwrap_or(Value::String(input))
                },
            },
            Block::Reasoning { text, signature } => AnthropicContentBlock::Thinking {
                thinking: text,
                signature,
            },
            Block::Redacted(bytes) => AnthropicContentBlock::RedactedThinking {
                data: BASE64.encode(bytes),
            },
            Block::Citations { text, citations } => AnthropicContentBlock::Text {
                text,
                citations: citations.iter().map(anthropic_citation).collect(),
            },
        }
    }
}

/// A Converse `CitationsDelta` (`location.documentChar`, `sourceContent`, `title`) as an
/// Anthropic `char_location` citation.
fn anthropic_citation(citation: &Value) -> Value {
    let at = |key: &str| {
        citation
            .pointer(&format!("/location/documentChar/{key}"))
            .cloned()
    };
    json!({
        "type": "char_location",
        "cited_text": citation.pointer("/sourceContent/0/text").cloned().unwrap_or(json!("")),
        "document_index": at("documentIndex").unwrap_or(json!(0)),
        "document_title": citation.get("title").cloned().unwrap_or(Value::Null),
        "start_char_index": at("start").unwrap_or(json!(0)),
        "end_char_index": at("end").unwrap_or(json!(0)),
    })
}

impl Script {
    /// The exception of the script, if it has one.
    pub(crate) fn exception(&self) -> Option<(&'static str, &Value)> {
        self.events.iter().find_map(|e| match e {
            Event::Exception {
                exception_type,
                payload,
            } => Some((*exception_type, payload)),
            _ => None,
        })
    }

    /// The content blocks in index order, the stop reason and the usage, folded from
    /// the events (one fold for the Converse and the Anthropic answer).
    fn fold(&self) -> (Vec<Block>, &'static str, Usage) {
        let mut blocks: Vec<(u32, Block)> = Vec::new();
        let mut stop_reason = "end_turn";
        let mut usage = Usage::new(0, 0);
        for event in &self.events {
            match event {
                Event::ContentBlockStart {
                    index,
                    start: ContentBlockStart::ToolUse { tool_use_id, name },
                } => blocks.push((
                    *index,
                    Block::Tool {
                        id: tool_use_id.clone(),
                        name: name.clone(),
                        input: String::new(),
                    },
                )),
                Event::ContentBlockDelta { index, delta } => {
                    match blocks.iter_mut().find(|(i, _)| i == index) {
                        Some((_, block)) => block.push(delta),
                        None => {
                            let mut block = Block::opened_by(delta);
                            block.push(delta);
                            blocks.push((*index, block));
                        }
                    }
                }
                Event::MessageStop { stop_reason: r } => stop_reason = r,
                Event::Metadata(u) => usage = *u,
                _ => {}
            }
        }
        (
            blocks.into_iter().map(|(_, block)| block).collect(),
            stop_reason,
            usage,
        )
    }

    /// The Converse (non-streaming) response with the same content.
    pub(crate) fn to_converse_json(&self, latency_ms: u64) -> Value {
        let (blocks, stop_reason, usage) = self.fold();
        let content: Vec<Value> = blocks.into_iter().map(Block::into_json).collect();
        json!({
            "metrics": { "latencyMs": latency_ms },
            "output": { "message": { "content": content, "role": "assistant" } },
            "stopReason": stop_reason,
            "usage": usage.to_json(),
        })
    }

    /// The same content as an Anthropic Messages response (what `InvokeModel` returns
    /// for `anthropic.*` models): reasoning becomes `thinking` with its signature,
    /// redacted reasoning `redacted_thinking`, cited text a text block with
    /// `citations`. A script that ends in an exception gives the content before it,
    /// with no stop reason. `latency_ms` goes into the invocation metrics.
    pub(crate) fn to_anthropic(&self, id: &str, model: &str, latency_ms: u64) -> AnthropicMessage {
        let (blocks, stop_reason, usage) = self.fold();
        let finished = self.exception().is_none();
        AnthropicMessage {
            id: id.to_owned(),
            model: model.to_owned(),
            content: blocks.into_iter().map(Block::into_anthropic).collect(),
            stop_reason: finished.then(|| stop_reason.to_owned()),
            usage: AnthropicUsage {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                ..AnthropicUsage::default()
            },
            invocation_metrics: finished.then_some(InvocationMetrics {
                input_token_count: usage.input_tokens,
                output_token_count: usage.output_tokens,
                invocation_latency: latency_ms,
                first_byte_latency: latency_ms,
                ..InvocationMetrics::default()
            }),
            ..AnthropicMessage::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_sorted_and_varies() {
        let a = padded(vec![("role", json!("assistant"))], 3).to_string();
        assert_eq!(a, r#"{"p":"abc","role":"assistant"}"#);
        let b = padded(vec![("contentBlockIndex", json!(0))], 60).to_string();
        assert!(b.starts_with(
            r#"{"contentBlockIndex":0,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"#
        ));
        let lens: std::collections::HashSet<usize> = (0..20).map(pad_len).collect();
        assert!(lens.len() > 10);
        assert!((0..1000).map(pad_len).all(|n| (1..=59).contains(&n)));
    }

    #[test]
    fn anthropic_fold_keeps_thinking_tools_and_usage() {
        let script = Script {
            events: vec![
                Event::MessageStart,
                Event::ContentBlockDelta {
                    index: 0,
                    delta: ContentBlockDelta::ReasoningText("hm".into()),
                },
                Event::ContentBlockDelta {
                    index: 0,
                    delta: ContentBlockDelta::ReasoningSignature("sig".into()),
                },
                Event::ContentBlockStart {
                    index: 1,
                    start: ContentBlockStart::ToolUse {
                        tool_use_id: "tooluse_abc".into(),
                        name: "add".into(),
                    },
                },
                Event::ContentBlockDelta {
                    index: 1,
                    delta: ContentBlockDelta::ToolUseInput(r#"{"a":1}"#.into()),
                },
                Event::MessageStop {
                    stop_reason: "tool_use",
                },
                Event::Metadata(Usage::new(5, 7)),
            ],
        };
        let m = script.to_anthropic("msg_bdrk_1", "anthropic.mock.tools", 3);
        assert_eq!(
            m.content,
            [
                AnthropicContentBlock::Thinking {
                    thinking: "hm".into(),
                    signature: "sig".into()
                },
                AnthropicContentBlock::ToolUse {
                    id: "toolu_bdrk_abc".into(),
                    name: "add".into(),
                    input: json!({"a": 1})
                },
            ]
        );
        assert_eq!(m.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!((m.usage.input_tokens, m.usage.output_tokens), (5, 7));
        assert_eq!(m.invocation_metrics.map(|x| x.invocation_latency), Some(3));
    }

    #[test]
    fn frame_headers_in_order() {
        let msg = Event::MessageStart.to_frame(0, 0).expect("frame");
        let names: Vec<&str> = msg.headers().map(|(n, _)| n).collect();
        assert_eq!(names, [":event-type", ":content-type", ":message-type"]);
    }
}
