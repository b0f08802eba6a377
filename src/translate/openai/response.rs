//! `ConverseResponse` → OpenAI `chat.completion` JSON; errors → OpenAI error JSON.

use bytes::BufMut;
use serde_json::{json, Map, Value};

use crate::converse::{ContentBlock, ConverseResponse, ReasoningContentBlock, StopReason, TokenUsage};
use crate::translate::error::{ApiError, ErrorClass};
use crate::translate::write::uint;

/// OpenAI's usage numbers, the same streaming and not: `prompt_tokens` counts the
/// uncached input plus cache reads and cache writes; `cached_tokens` the cache reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Usage {
    prompt: u64,
    completion: u64,
    cached: u64,
}

impl From<&TokenUsage> for Usage {
    fn from(u: &TokenUsage) -> Usage {
        let cached = u.cache_read_input_tokens.unwrap_or(0);
        let written = u.cache_write_input_tokens.unwrap_or(0);
        Usage {
            prompt: u.input_tokens.saturating_add(cached).saturating_add(written),
            completion: u.output_tokens,
            cached,
        }
    }
}

impl Usage {
    /// `{"prompt_tokens":..,"completion_tokens":..,"total_tokens":..,"prompt_tokens_details":{"cached_tokens":..}}`
    pub(super) fn write<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(b"{\"prompt_tokens\":");
        uint(buf, self.prompt);
        buf.put_slice(b",\"completion_tokens\":");
        uint(buf, self.completion);
        buf.put_slice(b",\"total_tokens\":");
        uint(buf, self.prompt.saturating_add(self.completion));
        buf.put_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        uint(buf, self.cached);
        buf.put_slice(b"}}");
    }

    fn to_value(self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt.saturating_add(self.completion),
            "prompt_tokens_details": {"cached_tokens": self.cached},
        })
    }
}

/// OpenAI's `finish_reason` for a Converse stop reason; `None` for the reasons that
/// are errors (`malformed_model_output`, `malformed_tool_use`).
pub fn finish_reason(reason: &StopReason) -> Option<&'static str> {
    Some(match reason {
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::ToolUse => "tool_calls",
        StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => "length",
        StopReason::GuardrailIntervened | StopReason::ContentFiltered => "content_filter",
        StopReason::MalformedModelOutput | StopReason::MalformedToolUse => return None,
        _ => "stop",
    })
}

/// The HTTP status OpenAI uses for an error class.
pub fn error_status(class: ErrorClass) -> u16 {
    match class {
        ErrorClass::InvalidRequest => 400,
        ErrorClass::Authentication => 401,
        ErrorClass::PermissionDenied => 403,
        ErrorClass::NotFound => 404,
        ErrorClass::RequestTooLarge => 413,
        ErrorClass::RateLimited => 429,
        ErrorClass::Overloaded => 503,
        ErrorClass::Timeout => 504,
        _ => 500,
    }
}

/// OpenAI's error `type` and `code` for an error class.
pub(super) fn error_type_and_code(class: ErrorClass) -> (&'static str, Option<&'static str>) {
    match class {
        ErrorClass::InvalidRequest | ErrorClass::RequestTooLarge => ("invalid_request_error", None),
        ErrorClass::Authentication => ("authentication_error", Some("invalid_api_key")),
        ErrorClass::PermissionDenied => ("permission_error", None),
        ErrorClass::NotFound => ("invalid_request_error", Some("model_not_found")),
        ErrorClass::RateLimited => ("rate_limit_error", Some("rate_limit_exceeded")),
        ErrorClass::Overloaded => ("server_error", Some("overloaded")),
        ErrorClass::Timeout => ("server_error", Some("timeout")),
        _ => ("server_error", None),
    }
}

/// An error as OpenAI answers it: the HTTP status and the body
/// `{"error": {"message", "type", "param", "code"}}`.
///
/// # Examples
///
/// ```
/// use bedrock_converse::translate::{openai, ApiError};
///
/// let err = openai::translate_request(br#"{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}"#).unwrap_err();
/// let (status, body) = openai::error_json(&ApiError::from(err));
/// assert_eq!(status, 400);
/// let v: serde_json::Value = serde_json::from_slice(&body)?;
/// assert_eq!(v["error"]["param"], "n");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn error_json(err: &ApiError) -> (u16, Vec<u8>) {
    let mut body = Vec::with_capacity(96 + err.message.len());
    super::stream::write_error_object(err, &mut body);
    (error_status(err.class), body)
}

/// A `ConverseResponse` as an OpenAI `chat.completion` object, for `stream: false`.
///
/// Text (and cited text) becomes `message.content`, tool calls `message.tool_calls`
/// (arguments as JSON text), reasoning text `message.reasoning_content`.
///
/// # Errors
///
/// An [`ApiError`] of class [`ErrorClass::ModelError`] when the model stopped with an
/// error reason (`malformed_model_output`, `malformed_tool_use`).
pub fn chat_completion_json(
    response: &ConverseResponse,
    id: &str,
    model: &str,
    created: u64,
) -> Result<Vec<u8>, ApiError> {
    let reason = response.stop_reason.clone().unwrap_or(StopReason::EndTurn);
    let finish = finish_reason(&reason)
        .ok_or_else(|| ApiError::new(ErrorClass::ModelError, format!("the model stopped with {reason}")))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in response.content() {
        match block {
            ContentBlock::Text(t) => text.push_str(t),
            ContentBlock::CitationsContent(c) => {
                for part in &c.content {
                    text.push_str(part.text.as_deref().unwrap_or_default());
                }
            }
            ContentBlock::ToolUse(t) => {
                let arguments = serde_json::to_string(&t.input).unwrap_or_else(|_| "{}".to_owned());
                calls.push(json!({
                    "id": t.tool_use_id,
                    "type": "function",
                    "function": {"name": t.name, "arguments": arguments},
                }));
            }
            ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(r)) => {
                reasoning.push_str(&r.text)
            }
            _ => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        },
    );
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
    });
    if let Some(u) = &response.usage {
        out["usage"] = Usage::from(u).to_value();
    }
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}
