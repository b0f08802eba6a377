//! The native-body routes for `anthropic.*` models: `InvokeModel`,
//! `InvokeModelWithResponseStream` and `CountTokens`.
//!
//! The scenarios are the Converse ones ([`Script`]), written as Anthropic Messages: the
//! script is folded into an [`AnthropicMessage`] ([`Script::to_anthropic`]) and streamed
//! with the invoke layer's encoder ([`native_events`] in [`chunk_frame`]s), so the
//! client's [`AnthropicAssembler`](crate::invoke::AnthropicAssembler) gets back exactly
//! that message.

use std::borrow::Cow;

use ::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use serde_json::Value;

use crate::converse::ExceptionKind;
use crate::eventstream::{EventStreamError, Message};
use crate::invoke::{
    chunk_frame, exception_frame, native_events, AnthropicMessage, CountTokensInput, CountTokensRequest,
    CountTokensResponse, BEDROCK_CONTENT_TYPE, INPUT_TOKEN_COUNT, INVOCATION_LATENCY, OUTPUT_TOKEN_COUNT,
    PERFORMANCE_CONFIG_LATENCY, SERVICE_TIER,
};

use super::events::Script;
use super::scenario::{input_tokens, RequestDialect, ToolResultView};

/// The `anthropic_version` Bedrock requires in an Anthropic Messages body.
pub(crate) const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Largest `input_json_delta` / `text_delta` / `thinking_delta` piece the stream sends.
const FRAGMENT_LEN: usize = 12;

/// Members the Anthropic SDKs keep out of a Bedrock body (the model is in the path, the
/// route says whether to stream); Bedrock refuses them as extraneous keys.
const EXTRANEOUS_KEYS: [&str; 2] = ["model", "stream"];

/// Whether the native routes answer for `model_id`: `anthropic.*`, optionally after a
/// region prefix of an inference profile (`us.`, `eu.`, `apac.`, `global.`, ...), or an
/// ARN whose resource names one.
pub(crate) fn is_anthropic(model_id: &str) -> bool {
    let resource = model_id.rsplit('/').next().unwrap_or(model_id);
    let mut parts = resource.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some("anthropic"), Some(_)) => true,
        (Some(prefix), Some("anthropic")) => !prefix.is_empty() && parts.next().is_some(),
        _ => false,
    }
}

/// The message of the 400 for a model the native routes do not answer.
pub(crate) fn not_anthropic(model_id: &str) -> String {
    format!(
        "The provided model identifier is invalid for this operation: the mock server answers \
         InvokeModel, InvokeModelWithResponseStream and CountTokens for anthropic.* models only \
         (for example `anthropic.mock.text` or `us.anthropic.claude.tools`), not `{model_id}`. \
         Use Converse for other models."
    )
}

// ===== validation =====

/// Checks an Anthropic Messages body as Bedrock does; `Err` holds the message of the
/// 400 `ValidationException` (Bedrock's JSON-schema wording for missing keys).
pub(crate) fn validate_native(body: &Value) -> Result<(), String> {
    let Some(obj) = body.as_object() else {
        return Err(malformed("#: expected type: JSONObject"));
    };
    for key in ["anthropic_version", "max_tokens", "messages"] {
        if !obj.contains_key(key) {
            return Err(malformed(&format!("#: required key [{key}] not found")));
        }
    }
    if let Some(key) = EXTRANEOUS_KEYS.iter().find(|k| obj.contains_key(**k)) {
        return Err(malformed(&format!("#: extraneous key [{key}] is not permitted")));
    }
    match obj.get("anthropic_version").and_then(Value::as_str) {
        Some(v) if is_version(v) => {}
        Some(other) => {
            return Err(format!(
                "Invalid anthropic_version `{other}`: expected a version date such as `{ANTHROPIC_VERSION}`."
            ))
        }
        None => return Err(malformed("#/anthropic_version: expected type: String")),
    }
    match obj.get("max_tokens").and_then(Value::as_u64) {
        Some(n) if n >= 1 => {}
        _ => return Err(malformed("#/max_tokens: must be an integer of at least 1")),
    }
    let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
        return Err(malformed("#/messages: expected type: JSONArray"));
    };
    check_native_messages(messages)
}

/// `bedrock-YYYY-MM-DD` or `YYYY-MM-DD`: Bedrock's own version and the API version
/// dates the Anthropic SDKs put in a Bedrock body (`anthropic` 2.x sends its own API
/// date there).
fn is_version(v: &str) -> bool {
    let date = v.strip_prefix("bedrock-").unwrap_or(v).as_bytes();
    date.len() == 10
        && date.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

fn malformed(detail: &str) -> String {
    format!("Malformed input request: {detail}, please reformat your input and try again.")
}

fn check_native_messages(messages: &[Value]) -> Result<(), String> {
    if messages.is_empty() {
        return Err("messages: at least one message is required".to_owned());
    }
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        match role {
            Some("user" | "assistant") => {}
            _ => {
                return Err(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                ))
            }
        }
        if i == 0 && role != Some("user") {
            return Err("A conversation must start with a user message. Try again with a conversation that starts with a user message.".to_owned());
        }
        match message.get("content") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(Value::String(_)) => {
                return Err(format!("messages.{i}: text content blocks must be non-empty"))
            }
            Some(Value::Array(blocks)) if !blocks.is_empty() => {
                if let Some(j) = blocks
                    .iter()
                    .position(|b| b.get("type").and_then(Value::as_str).is_none())
                {
                    return Err(format!("messages.{i}.content.{j}.type: Field required"));
                }
            }
            Some(Value::Array(_)) => {
                return Err(format!(
                    "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                ))
            }
            _ => return Err(format!("messages.{i}.content: Field required")),
        }
    }
    Ok(())
}

// ===== the request as the scenarios see it =====

/// The Anthropic Messages body of the native routes.
pub(crate) struct MessagesRequest;

impl RequestDialect for MessagesRequest {
    fn blocks(message: &Value) -> Cow<'_, [Value]> {
        match message.get("content") {
            Some(Value::String(s)) => Cow::Owned(vec![serde_json::json!({ "type": "text", "text": s })]),
            Some(Value::Array(blocks)) => Cow::Borrowed(blocks),
            _ => Cow::Borrowed(&[]),
        }
    }

    fn block_text(block: &Value) -> Option<&str> {
        block_text(block)
    }

    fn tool_result(block: &Value, previous: &[Value]) -> Option<ToolResultView> {
        (block.get("type").and_then(Value::as_str) == Some("tool_result"))
            .then(|| tool_result_view(block, previous))
    }

    fn tools(body: &Value) -> Vec<(String, Value)> {
        let tools = body.get("tools").and_then(Value::as_array);
        tools
            .into_iter()
            .flatten()
            .filter_map(|tool| {
                let name = tool.get("name").and_then(Value::as_str)?;
                let schema = tool.get("input_schema").cloned().unwrap_or(Value::Null);
                Some((name.to_owned(), schema))
            })
            .collect()
    }

    fn cache_points(_: &Value) -> u64 {
        0
    }
}

fn block_text(block: &Value) -> Option<&str> {
    (block.get("type").and_then(Value::as_str) == Some("text"))
        .then(|| block.get("text").and_then(Value::as_str))
        .flatten()
}

fn tool_result_view(block: &Value, previous: &[Value]) -> ToolResultView {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = previous
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .find(|b| b.get("id").and_then(Value::as_str) == Some(id))
        .and_then(|b| b.get("name").and_then(Value::as_str))
        .map(str::to_owned);
    let content = match block.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| block_text(p).map_or_else(|| "[non-text content]".to_owned(), str::to_owned))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    ToolResultView {
        tool_use_id: id.to_owned(),
        name,
        is_error: block.get("is_error").and_then(Value::as_bool) == Some(true),
        content,
    }
}

// ===== count-tokens =====

/// The `{"inputTokens":N}` answer of a `CountTokens` body, or the message of its 400:
/// the native body of `input.invokeModel.body` (base64) is validated as `InvokeModel`
/// would validate it (for `anthropic.*` models only), the `input.converse` request as
/// Converse would; the count is the one the invoke or converse answer reports.
pub(crate) fn count_tokens(body: &Value, model_id: &str) -> Result<CountTokensResponse, String> {
    let request: CountTokensRequest = serde_json::from_value(body.clone()).map_err(|e| {
        malformed(&format!(
            "#/input: expected {{\"invokeModel\":{{\"body\":<base64>}}}} or {{\"converse\":{{...}}}} ({e})"
        ))
    })?;
    let len = match request.input {
        CountTokensInput::InvokeModel { body } => {
            if !is_anthropic(model_id) {
                return Err(not_anthropic(model_id));
            }
            let native: Value = serde_json::from_slice(&body.0)
                .map_err(|e| malformed(&format!("#/input/invokeModel/body: {e}")))?;
            validate_native(&native)?;
            body.0.len()
        }
        CountTokensInput::Converse(map) => {
            let converse = Value::Object(map);
            super::validate::validate(&converse)?;
            converse.to_string().len()
        }
    };
    Ok(CountTokensResponse {
        input_tokens: input_tokens(len),
    })
}

// ===== the answers =====

/// A Bedrock-style `msg_bdrk_` id.
pub(crate) fn message_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::with_capacity(34);
    id.push_str("msg_bdrk_");
    for _ in 0..24 {
        let i = fastrand::usize(..ALPHABET.len());
        id.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
    }
    id
}

/// The `InvokeModel` body: the script's message as JSON.
pub(crate) fn invoke_body(message: &AnthropicMessage) -> bytes::Bytes {
    // An `AnthropicMessage` is plain data: serialising it cannot fail.
    bytes::Bytes::from(serde_json::to_vec(message).unwrap_or_default())
}

/// The frames of an `InvokeModelWithResponseStream` answer: the native events of the
/// script's message, each in a `chunk` frame. A script that ends in an exception
/// streams its message up to the last content delta (no `content_block_stop`,
/// `message_delta` or `message_stop`), then the exception frame.
pub(crate) fn stream_frames(
    script: &Script,
    message: &AnthropicMessage,
) -> Result<Vec<Message>, EventStreamError> {
    let mut events = native_events(message, FRAGMENT_LEN);
    let exception = script.exception();
    if exception.is_some() {
        // The last three events are the block's stop, `message_delta` and `message_stop`.
        events.truncate(events.len().saturating_sub(3));
    }
    let mut frames = events
        .iter()
        .map(|e| chunk_frame(e))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((exception_type, payload)) = exception {
        let text = payload.get("message").and_then(Value::as_str).unwrap_or_default();
        let status = payload
            .get("originalStatusCode")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok());
        frames.push(exception_frame(
            &ExceptionKind::from_wire(exception_type),
            text,
            status,
        )?);
    }
    Ok(frames)
}

/// Adds the `InvokeModel` usage headers (token counts and latency).
pub(crate) fn add_usage_headers(resp: &mut Response, message: &AnthropicMessage, latency_ms: u64) {
    let h = resp.headers_mut();
    for (name, value) in [
        (INPUT_TOKEN_COUNT, message.usage.input_tokens),
        (OUTPUT_TOKEN_COUNT, message.usage.output_tokens),
        (INVOCATION_LATENCY, latency_ms),
    ] {
        if let Ok(name) = HeaderName::try_from(name) {
            h.insert(name, HeaderValue::from(value));
        }
    }
}

/// Adds the stream's `X-Amzn-Bedrock-Content-Type`, and echoes the performance and
/// service-tier headers of the request (as the service reports what it applied).
pub(crate) fn add_route_headers(resp: &mut Response, request: &HeaderMap, streaming: bool) {
    let h = resp.headers_mut();
    if streaming {
        if let Ok(name) = HeaderName::try_from(BEDROCK_CONTENT_TYPE) {
            h.insert(name, HeaderValue::from_static("application/json"));
        }
    }
    for name in [PERFORMANCE_CONFIG_LATENCY, SERVICE_TIER] {
        let Ok(name) = HeaderName::try_from(name) else {
            continue;
        };
        if let Some(v) = request.get(&name).cloned() {
            h.insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scenario::RequestView;
    use super::*;
    use serde_json::json;

    #[test]
    fn anthropic_ids() {
        for ok in [
            "anthropic.claude-3-haiku-20240307-v1:0",
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "global.anthropic.mock.tools",
            "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-v2",
            "anthropic.tools",
        ] {
            assert!(is_anthropic(ok), "{ok}");
        }
        for bad in [
            "amazon.nova-pro-v1:0",
            "mock.text",
            "anthropic",
            "us.anthropic",
            "tools",
        ] {
            assert!(!is_anthropic(bad), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let ok = json!({"anthropic_version": ANTHROPIC_VERSION, "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(validate_native(&ok), Ok(()));
        let mut missing = ok.clone();
        missing.as_object_mut().map(|m| m.remove("max_tokens"));
        assert!(validate_native(&missing).unwrap_err().contains("[max_tokens]"));
        let mut zero = ok.clone();
        zero["max_tokens"] = json!(0);
        assert!(validate_native(&zero).unwrap_err().contains("max_tokens"));
        let mut model = ok.clone();
        model["model"] = json!("x");
        assert!(validate_native(&model)
            .unwrap_err()
            .contains("extraneous key [model]"));
        let mut version = ok.clone();
        version["anthropic_version"] = json!("v1");
        assert!(validate_native(&version)
            .unwrap_err()
            .contains("anthropic_version"));
        version["anthropic_version"] = json!("2026-10-21");
        assert_eq!(validate_native(&version), Ok(()));
        version["anthropic_version"] = json!("bedrock-2023-0531");
        assert!(validate_native(&version)
            .unwrap_err()
            .contains("anthropic_version"));
        let mut empty = ok;
        empty["messages"] = json!([]);
        assert!(validate_native(&empty)
            .unwrap_err()
            .contains("at least one message"));
    }

    #[test]
    fn view_reads_tool_results() {
        let body = json!({"messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]}]},
        ], "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
        let view = RequestView::read::<MessagesRequest>(&body, 400);
        assert_eq!(view.input_tokens, 100);
        assert_eq!(view.tools.len(), 1);
        let result = view.tool_results.first().expect("a result");
        assert_eq!(result.name.as_deref(), Some("get_weather"));
        assert_eq!(result.content, "sunny");
    }
}
