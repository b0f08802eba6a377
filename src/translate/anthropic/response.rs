//! `ConverseResponse` → Anthropic `message` JSON; errors → Anthropic error JSON.

use bytes::BufMut;
use serde_json::{json, Map, Value};

use crate::converse::{
    Citation, ContentBlock, ConverseResponse, ReasoningContentBlock, StopReason, TokenUsage,
};
use crate::translate::error::{ApiError, ErrorClass};
use crate::translate::write::{json_str, uint};

/// Anthropic's usage numbers, the same streaming and not: `input_tokens` is the
/// uncached input, with cache reads and writes counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Usage {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
}

impl From<&TokenUsage> for Usage {
    fn from(u: &TokenUsage) -> Usage {
        Usage {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens.unwrap_or(0),
            cache_write: u.cache_write_input_tokens.unwrap_or(0),
        }
    }
}

impl Usage {
    pub(super) fn write<B: BufMut>(&self, buf: &mut B) {
        buf.put_slice(b"{\"input_tokens\":");
        uint(buf, self.input);
        buf.put_slice(b",\"output_tokens\":");
        uint(buf, self.output);
        buf.put_slice(b",\"cache_read_input_tokens\":");
        uint(buf, self.cache_read);
        buf.put_slice(b",\"cache_creation_input_tokens\":");
        uint(buf, self.cache_write);
        buf.put_u8(b'}');
    }

    fn to_value(self) -> Value {
        json!({
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_write,
        })
    }
}

/// Anthropic's `stop_reason` for a Converse stop reason; `None` for the reasons that
/// are errors (`malformed_model_output`, `malformed_tool_use`).
pub fn stop_reason(reason: &StopReason) -> Option<&'static str> {
    Some(match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::ToolUse => "tool_use",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::GuardrailIntervened | StopReason::ContentFiltered => "refusal",
        StopReason::ModelContextWindowExceeded => "model_context_window_exceeded",
        StopReason::MalformedModelOutput | StopReason::MalformedToolUse => return None,
        _ => "end_turn",
    })
}

/// The HTTP status and error `type` Anthropic uses for an error class.
pub fn error_status(class: ErrorClass) -> (u16, &'static str) {
    match class {
        ErrorClass::InvalidRequest => (400, "invalid_request_error"),
        ErrorClass::Authentication => (401, "authentication_error"),
        ErrorClass::PermissionDenied => (403, "permission_error"),
        ErrorClass::NotFound => (404, "not_found_error"),
        ErrorClass::RequestTooLarge => (413, "request_too_large"),
        ErrorClass::RateLimited => (429, "rate_limit_error"),
        ErrorClass::Overloaded => (529, "overloaded_error"),
        ErrorClass::Timeout => (504, "timeout_error"),
        _ => (500, "api_error"),
    }
}

/// `{"type":"error","error":{"type":...,"message":...}}`
pub(super) fn write_error_object<B: BufMut>(err: &ApiError, buf: &mut B) {
    buf.put_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
    buf.put_slice(error_status(err.class).1.as_bytes());
    buf.put_slice(b"\",\"message\":");
    json_str(buf, &err.message);
    buf.put_slice(b"}}");
}

/// An error as Anthropic answers it: the HTTP status and the body
/// `{"type": "error", "error": {"type", "message"}}`.
///
/// # Examples
///
/// ```
/// use bedrock_converse::translate::{anthropic, ApiError};
///
/// let err = ApiError::from_bedrock(429, Some("ThrottlingException"), br#"{"message":"slow down"}"#);
/// let (status, body) = anthropic::error_json(&err);
/// assert_eq!(status, 429);
/// assert_eq!(body, br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#);
/// ```
pub fn error_json(err: &ApiError) -> (u16, Vec<u8>) {
    let mut body = Vec::with_capacity(64 + err.message.len());
    write_error_object(err, &mut body);
    (error_status(err.class).0, body)
}

/// A Converse citation as an Anthropic citation object (`char_location`,
/// `page_location`, `content_block_location`, `web_search_result_location`,
/// `search_result_location`).
pub(super) fn citation(c: &Citation) -> Value {
    let cited_text: String = c
        .source_content
        .iter()
        .filter_map(|s| s.text.as_deref())
        .collect();
    let title = c.title.clone();
    let loc = c.location.as_ref().and_then(Value::as_object);
    let (kind, body) = match loc.and_then(|l| l.iter().next()) {
        Some((k, v)) => (k.as_str(), v),
        None => ("", &Value::Null),
    };
    let n = |key: &str| body.get(key).and_then(Value::as_u64).unwrap_or(0);
    let mut out = Map::new();
    match kind {
        "documentPage" => {
            out.insert("type".into(), json!("page_location"));
            out.insert("document_index".into(), json!(n("documentIndex")));
            out.insert("document_title".into(), json!(title));
            out.insert("start_page_number".into(), json!(n("start")));
            out.insert("end_page_number".into(), json!(n("end")));
        }
        "documentChunk" => {
            out.insert("type".into(), json!("content_block_location"));
            out.insert("document_index".into(), json!(n("documentIndex")));
            out.insert("document_title".into(), json!(title));
            out.insert("start_block_index".into(), json!(n("start")));
            out.insert("end_block_index".into(), json!(n("end")));
        }
        "web" => {
            out.insert("type".into(), json!("web_search_result_location"));
            out.insert(
                "url".into(),
                json!(body.get("url").and_then(Value::as_str).unwrap_or_default()),
            );
            out.insert("title".into(), json!(title));
            out.insert("encrypted_index".into(), json!(""));
        }
        "searchResultLocation" => {
            out.insert("type".into(), json!("search_result_location"));
            out.insert("search_result_index".into(), json!(n("searchResultIndex")));
            out.insert("source".into(), json!(c.source.clone().unwrap_or_default()));
            out.insert("title".into(), json!(title));
            out.insert("start_block_index".into(), json!(n("start")));
            out.insert("end_block_index".into(), json!(n("end")));
        }
        _ => {
            out.insert("type".into(), json!("char_location"));
            out.insert("document_index".into(), json!(n("documentIndex")));
            out.insert("document_title".into(), json!(title));
            out.insert("start_char_index".into(), json!(n("start")));
            out.insert("end_char_index".into(), json!(n("end")));
        }
    }
    out.insert("cited_text".into(), Value::String(cited_text));
    Value::Object(out)
}

/// The `stop_sequence` Claude reports in `additionalModelResponseFields`, if any.
pub(super) fn stop_sequence(fields: Option<&Value>) -> Option<String> {
    fields?.get("stop_sequence")?.as_str().map(str::to_owned)
}

/// A `ConverseResponse` as an Anthropic `message` object, for `stream: false`.
///
/// # Errors
///
/// An [`ApiError`] of class [`ErrorClass::ModelError`] when the model stopped with an
/// error reason (`malformed_model_output`, `malformed_tool_use`).
pub fn message_json(response: &ConverseResponse, id: &str, model: &str) -> Result<Vec<u8>, ApiError> {
    let reason = response.stop_reason.clone().unwrap_or(StopReason::EndTurn);
    let stop = stop_reason(&reason)
        .ok_or_else(|| ApiError::new(ErrorClass::ModelError, format!("the model stopped with {reason}")))?;
    let mut content = Vec::new();
    for block in response.content() {
        match block {
            ContentBlock::Text(t) => content.push(json!({"type": "text", "text": t})),
            ContentBlock::CitationsContent(c) => {
                let text: String = c.content.iter().filter_map(|p| p.text.as_deref()).collect();
                let citations: Vec<Value> = c.citations.iter().map(citation).collect();
                content.push(json!({"type": "text", "text": text, "citations": citations}));
            }
            ContentBlock::ToolUse(t) => {
                let input = serde_json::to_value(&t.input).unwrap_or_else(|_| json!({}));
                let kind = if t.r#type.as_deref() == Some("server_tool_use") {
                    "server_tool_use"
                } else {
                    "tool_use"
                };
                content.push(json!({"type": kind, "id": t.tool_use_id, "name": t.name, "input": input}));
            }
            ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(r)) => content.push(json!({
                "type": "thinking",
                "thinking": r.text,
                "signature": r.signature.clone().unwrap_or_default(),
            })),
            ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(b)) => {
                content.push(json!({"type": "redacted_thinking", "data": b.to_base64()}))
            }
            _ => {}
        }
    }
    let usage = response.usage.as_ref().map(Usage::from).unwrap_or_default();
    let stop_sequence = if reason == StopReason::StopSequence {
        stop_sequence(response.additional_model_response_fields.as_ref())
    } else {
        None
    };
    let out = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": stop_sequence,
        "usage": usage.to_value(),
    });
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}
