//! [`UsageReader`]: the token counts of an invoke stream, read from the native events
//! without allocating (for a gateway's per-key usage accounting).

use std::borrow::Cow;

use serde::Deserialize;

use super::anthropic::{apply_usage, event_type, AnthropicUsage, InvocationMetrics, UsageDeltaWire};

/// The counts that matter for accounting, in one place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvokeUsage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache, when reported.
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache, when reported.
    pub cache_write_input_tokens: Option<u64>,
    /// Bedrock's `invocationLatency` (ms), when `message_stop` carried the metrics.
    pub invocation_latency_ms: Option<u64>,
    /// Bedrock's `firstByteLatency` (ms), likewise.
    pub first_byte_latency_ms: Option<u64>,
}

#[derive(Deserialize)]
struct MessageUsageWire {
    #[serde(default)]
    usage: Option<UsageDeltaWire>,
}

/// Only the members that carry counts; everything else is skipped by serde without
/// being stored.
#[derive(Deserialize)]
struct UsageEventWire<'a> {
    #[serde(rename = "type", borrow)]
    #[allow(dead_code)] // Read to require the member; the type was matched before.
    ty: Cow<'a, str>,
    #[serde(default)]
    message: Option<MessageUsageWire>,
    #[serde(default)]
    usage: Option<UsageDeltaWire>,
    #[serde(default, rename = "amazon-bedrock-invocationMetrics")]
    metrics: Option<InvocationMetrics>,
}

/// Reads the token counts of an `InvokeModelWithResponseStream` body from its native
/// Anthropic events: `message_start.message.usage`, `message_delta.usage`, and
/// `message_stop`'s `amazon-bedrock-invocationMetrics` (Bedrock's own count, which
/// wins when present). Other events are recognised by their `type` prefix and skipped
/// without a parse; no event allocates.
///
/// Feed it what [`ChunkDecoder`](super::ChunkDecoder) returns. Events that are not
/// JSON, or whose counts do not parse, are ignored: accounting never fails a stream.
///
/// # Example
///
/// ```
/// use bedrock_converse::invoke::UsageReader;
///
/// let mut usage = UsageReader::new();
/// usage.observe(br#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":25,"output_tokens":1}}}"#);
/// usage.observe(br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#);
/// usage.observe(br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}"#);
/// assert_eq!((usage.usage().input_tokens, usage.usage().output_tokens), (25, 7));
/// usage.observe(br#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":25,"outputTokenCount":8,"invocationLatency":300,"firstByteLatency":90}}"#);
/// assert_eq!(usage.usage().output_tokens, 8);
/// assert_eq!(usage.usage().first_byte_latency_ms, Some(90));
/// ```
#[derive(Debug, Clone, Default)]
pub struct UsageReader {
    anthropic: AnthropicUsage,
    seen_anthropic: bool,
    metrics: Option<InvocationMetrics>,
}

impl UsageReader {
    /// A reader that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the counts an event carries, if any.
    pub fn observe(&mut self, event: &[u8]) {
        let Ok(ty) = event_type(event) else {
            return;
        };
        if !matches!(&*ty, "message_start" | "message_delta" | "message_stop") {
            return;
        }
        let Ok(wire) = serde_json::from_slice::<UsageEventWire<'_>>(event) else {
            return;
        };
        let usage = wire.usage.or_else(|| wire.message.and_then(|m| m.usage));
        if let Some(u) = usage {
            apply_usage(&mut self.anthropic, &u);
            self.seen_anthropic = true;
        }
        if wire.metrics.is_some() {
            self.metrics = wire.metrics;
        }
    }

    /// Whether any count was seen.
    pub fn has_usage(&self) -> bool {
        self.seen_anthropic || self.metrics.is_some()
    }

    /// Bedrock's invocation metrics, when `message_stop` carried them.
    pub fn invocation_metrics(&self) -> Option<InvocationMetrics> {
        self.metrics
    }

    /// The Anthropic `usage` as the events reported it.
    pub fn anthropic_usage(&self) -> &AnthropicUsage {
        &self.anthropic
    }

    /// The counts so far: Bedrock's invocation metrics when present, else the
    /// Anthropic usage.
    pub fn usage(&self) -> InvokeUsage {
        match self.metrics {
            Some(m) => InvokeUsage {
                input_tokens: m.input_token_count,
                output_tokens: m.output_token_count,
                cache_read_input_tokens: m
                    .cache_read_input_token_count
                    .or(self.anthropic.cache_read_input_tokens),
                cache_write_input_tokens: m
                    .cache_write_input_token_count
                    .or(self.anthropic.cache_creation_input_tokens),
                invocation_latency_ms: Some(m.invocation_latency),
                first_byte_latency_ms: Some(m.first_byte_latency),
            },
            None => InvokeUsage {
                input_tokens: self.anthropic.input_tokens,
                output_tokens: self.anthropic.output_tokens,
                cache_read_input_tokens: self.anthropic.cache_read_input_tokens,
                cache_write_input_tokens: self.anthropic.cache_creation_input_tokens,
                invocation_latency_ms: None,
                first_byte_latency_ms: None,
            },
        }
    }
}
