//! Anthropic `messages` → Converse messages: text, images and documents (base64 or
//! text sources), tool use and tool results, thinking (with its signature) and
//! redacted thinking, each block optionally followed by its `cache_control` point.

use serde_json::{Map, Value};

use crate::converse::{
    ContentBlock, DocumentBlock, Extra, ImageBlock, MediaSource, Message, ReasoningContentBlock,
    ReasoningTextBlock, Role, ToolResultBlock, ToolResultContentBlock, ToolUseBlock,
};
use crate::translate::error::TranslateError;
use crate::translate::request::{
    base64_blob, document_format, document_name, image_format, push_message, required_str, CachePoints,
};

pub(super) fn messages(
    req: &Map<String, Value>,
    cache: &mut CachePoints,
) -> Result<Vec<Message>, TranslateError> {
    let list = match req.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return Err(TranslateError::invalid("messages", "required: a non-empty array")),
    };
    let mut out = Vec::new();
    let mut documents = 0usize;
    for (i, m) in list.iter().enumerate() {
        let field = format!("messages[{i}]");
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                return Err(TranslateError::invalid(
                    format!("{field}.role"),
                    "must be user or assistant",
                ))
            }
        };
        let content = message_content(
            m.get("content"),
            &format!("{field}.content"),
            cache,
            &mut documents,
        )?;
        push_message(&mut out, role, content);
    }
    if out.is_empty() {
        return Err(TranslateError::invalid(
            "messages",
            "needs at least one non-empty message",
        ));
    }
    Ok(out)
}

/// One content block of a message (or of a tool result).
fn block(b: &Value, field: &str, documents: &mut usize) -> Result<ContentBlock, TranslateError> {
    Ok(match b.get("type").and_then(Value::as_str) {
        Some("text") => ContentBlock::Text(required_str(b, "text", field)?.to_owned()),
        Some("image") => image(b, field)?,
        Some("document") => {
            let doc = document(b, field, *documents)?;
            *documents += 1;
            doc
        }
        Some("tool_use") => tool_use(b, field)?,
        Some("tool_result") => tool_result(b, field, documents)?,
        Some("thinking") => {
            ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(ReasoningTextBlock {
                text: required_str(b, "thinking", field)?.to_owned(),
                signature: b
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            }))
        }
        Some("redacted_thinking") => ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(
            base64_blob(required_str(b, "data", field)?, &format!("{field}.data"))?,
        )),
        Some(_) => {
            return Err(TranslateError::unsupported(
                format!("{field}.type"),
                "supported blocks: text, image, document, tool_use, tool_result, thinking, redacted_thinking",
            ));
        }
        None => return Err(TranslateError::invalid(format!("{field}.type"), "required")),
    })
}

/// A message's `content`: a string, or blocks each optionally followed by its cache
/// point; empty text dropped.
fn message_content(
    content: Option<&Value>,
    field: &str,
    cache: &mut CachePoints,
    documents: &mut usize,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut out = Vec::new();
    match content {
        Some(Value::String(s)) => out.push(ContentBlock::Text(s.clone())),
        Some(Value::Array(blocks)) => {
            for (j, b) in blocks.iter().enumerate() {
                let bf = format!("{field}[{j}]");
                out.push(block(b, &bf, documents)?);
                if let Some(cc) = b.get("cache_control").filter(|v| !v.is_null()) {
                    out.push(ContentBlock::CachePoint(
                        cache.point(cc, &format!("{bf}.cache_control"))?,
                    ));
                }
            }
        }
        _ => {
            return Err(TranslateError::invalid(
                field,
                "required: a string or an array of blocks",
            ))
        }
    }
    out.retain(|b| !matches!(b, ContentBlock::Text(t) if t.is_empty()));
    Ok(out)
}

fn tool_use(b: &Value, field: &str) -> Result<ContentBlock, TranslateError> {
    let input = b
        .get("input")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if !input.is_object() {
        return Err(TranslateError::invalid(
            format!("{field}.input"),
            "must be an object",
        ));
    }
    Ok(ContentBlock::ToolUse(ToolUseBlock {
        tool_use_id: required_str(b, "id", field)?.to_owned(),
        name: required_str(b, "name", field)?.to_owned(),
        input: input.into(),
        r#type: None,
        extra: Extra::new(),
    }))
}

/// A `tool_result`: text, images and documents (an empty result is an empty text).
fn tool_result(b: &Value, field: &str, documents: &mut usize) -> Result<ContentBlock, TranslateError> {
    let mut content = Vec::new();
    match b.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => content.push(ToolResultContentBlock::Text(s.clone())),
        Some(Value::Array(parts)) => {
            for (k, p) in parts.iter().enumerate() {
                let pf = format!("{field}.content[{k}]");
                content.push(tool_result_part(block(p, &pf, documents)?, &pf)?);
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{field}.content"),
                "must be a string or an array",
            ))
        }
    }
    if content.is_empty() {
        content.push(ToolResultContentBlock::Text(String::new()));
    }
    let is_error = b.get("is_error").and_then(Value::as_bool) == Some(true);
    Ok(ContentBlock::ToolResult(ToolResultBlock {
        tool_use_id: required_str(b, "tool_use_id", field)?.to_owned(),
        content,
        status: is_error.then(|| "error".to_owned()),
        extra: Extra::new(),
    }))
}

fn tool_result_part(block: ContentBlock, pf: &str) -> Result<ToolResultContentBlock, TranslateError> {
    match block {
        ContentBlock::Text(t) => Ok(ToolResultContentBlock::Text(t)),
        ContentBlock::Image(i) => Ok(ToolResultContentBlock::Image(i)),
        ContentBlock::Document(d) => Ok(ToolResultContentBlock::Document(d)),
        _ => Err(TranslateError::unsupported(
            format!("{pf}.type"),
            "a tool result holds text, images and documents",
        )),
    }
}

fn image(b: &Value, field: &str) -> Result<ContentBlock, TranslateError> {
    let sf = format!("{field}.source");
    let source = b
        .get("source")
        .ok_or_else(|| TranslateError::invalid(&sf, "required"))?;
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {}
        Some("url") | Some("file") => {
            return Err(TranslateError::unsupported(
                format!("{sf}.type"),
                "only base64 images are accepted (the gateway fetches nothing)",
            ))
        }
        _ => {
            return Err(TranslateError::invalid(
                format!("{sf}.type"),
                "must be \"base64\"",
            ))
        }
    }
    let media_type = required_str(source, "media_type", &sf)?;
    let data = required_str(source, "data", &sf)?;
    Ok(ContentBlock::Image(ImageBlock {
        format: image_format(media_type, &format!("{sf}.media_type"))?.to_owned(),
        source: MediaSource::Bytes(base64_blob(data, &format!("{sf}.data"))?),
        extra: Extra::new(),
    }))
}

fn document(b: &Value, field: &str, index: usize) -> Result<ContentBlock, TranslateError> {
    let sf = format!("{field}.source");
    let source = b
        .get("source")
        .ok_or_else(|| TranslateError::invalid(&sf, "required"))?;
    let (format, source) = match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media_type = required_str(source, "media_type", &sf)?;
            let data = required_str(source, "data", &sf)?;
            (
                document_format(media_type, &format!("{sf}.media_type"))?,
                MediaSource::Bytes(base64_blob(data, &format!("{sf}.data"))?),
            )
        }
        Some("text") => (
            "txt",
            MediaSource::Text(required_str(source, "data", &sf)?.to_owned()),
        ),
        _ => {
            return Err(TranslateError::unsupported(
                format!("{sf}.type"),
                "only base64 and text documents are accepted",
            ))
        }
    };
    let mut extra = Extra::new();
    if let Some(context) = b.get("context").and_then(Value::as_str) {
        extra.insert("context".into(), Value::String(context.to_owned()));
    }
    if let Some(c) = b.get("citations").filter(|v| !v.is_null()) {
        let enabled = c.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        extra.insert("citations".into(), serde_json::json!({"enabled": enabled}));
    }
    Ok(ContentBlock::Document(DocumentBlock {
        format: Some(format.to_owned()),
        name: document_name(b.get("title").and_then(Value::as_str), index),
        source,
        extra,
    }))
}
