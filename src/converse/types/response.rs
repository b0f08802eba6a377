//! [`ConverseResponse`]: the output message, stop reason, usage and metrics, and the
//! hand-written readers of usage, cache details and metrics.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ContentBlock, Extra, Message, StopReason, ToolUseBlock};

// ===== ConverseResponse =====

/// The body of a Converse response, and what [`StreamAssembler`](crate::converse::StreamAssembler)
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
