//! OpenAI `messages` → Converse system blocks and messages: system and developer
//! prompts, user content (text, images as data URLs, files), assistant text and tool
//! calls, and `role: "tool"` results (several in a row become one user message).

use serde_json::{Map, Value};

use crate::converse::{
    ContentBlock, DocumentBlock, Extra, ImageBlock, MediaSource, Message, Role, ToolResultBlock,
    ToolResultContentBlock, ToolUseBlock,
};
use crate::translate::error::TranslateError;
use crate::translate::request::{
    data_url, document_format, document_name, image_format, push_message, required_str, text_or_parts,
    CachePoints, SystemContentBlock, TextOrParts,
};

/// The system blocks and the conversation.
pub(super) type Messages = (Vec<SystemContentBlock>, Vec<Message>);

/// Reads `messages`: the system prompts first (Bedrock reads cache points in the order
/// tools, system, messages), then the conversation.
pub(super) fn messages(
    req: &Map<String, Value>,
    cache: &mut CachePoints,
) -> Result<Messages, TranslateError> {
    let list = match req.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return Err(TranslateError::invalid("messages", "required: a non-empty array")),
    };
    let system = system_prompts(list, cache)?;
    let mut out = Vec::new();
    let mut documents = 0usize;
    for (i, m) in list.iter().enumerate() {
        let field = format!("messages[{i}]");
        let obj = m
            .as_object()
            .ok_or_else(|| TranslateError::invalid(&field, "must be an object"))?;
        let (role, content) = match obj.get("role").and_then(Value::as_str) {
            Some("system") | Some("developer") => continue,
            Some("user") => (Role::User, user_message(obj, &field, cache, &mut documents)?),
            Some("assistant") => (Role::Assistant, assistant_message(obj, &field, cache)?),
            Some("tool") => (Role::User, tool_message(obj, &field, cache)?),
            Some("function") => {
                return Err(TranslateError::unsupported(
                    format!("{field}.role"),
                    "the legacy \"function\" role is not supported; use \"tool\"",
                ))
            }
            _ => {
                return Err(TranslateError::invalid(
                    format!("{field}.role"),
                    "must be system, developer, user, assistant or tool",
                ))
            }
        };
        push_message(&mut out, role, content);
    }
    if out.is_empty() {
        return Err(TranslateError::invalid(
            "messages",
            "needs at least one user message",
        ));
    }
    Ok((system, out))
}

/// The `system` and `developer` messages' text, in order.
fn system_prompts(
    list: &[Value],
    cache: &mut CachePoints,
) -> Result<Vec<SystemContentBlock>, TranslateError> {
    let mut system = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(role, Some("system") | Some("developer")) {
            continue;
        }
        for part in text_parts(m.get("content"), &format!("messages[{i}].content"), cache)? {
            match part {
                ContentBlock::Text(t) => system.push(SystemContentBlock::Text(t)),
                ContentBlock::CachePoint(c) => system.push(SystemContentBlock::CachePoint(c)),
                _ => {}
            }
        }
    }
    Ok(system)
}

fn user_message(
    obj: &Map<String, Value>,
    field: &str,
    cache: &mut CachePoints,
    documents: &mut usize,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let content = user_content(obj.get("content"), &format!("{field}.content"), cache, documents)?;
    if content.is_empty() {
        return Err(TranslateError::invalid(
            format!("{field}.content"),
            "must not be empty",
        ));
    }
    Ok(content)
}

/// Assistant text, then its tool calls.
fn assistant_message(
    obj: &Map<String, Value>,
    field: &str,
    cache: &mut CachePoints,
) -> Result<Vec<ContentBlock>, TranslateError> {
    if obj.get("audio").is_some_and(|v| !v.is_null()) {
        return Err(TranslateError::unsupported(
            format!("{field}.audio"),
            "audio is not supported",
        ));
    }
    let mut content = text_parts(obj.get("content"), &format!("{field}.content"), cache)?;
    if let Some(calls) = obj.get("tool_calls").filter(|v| !v.is_null()) {
        let calls = calls
            .as_array()
            .ok_or_else(|| TranslateError::invalid(format!("{field}.tool_calls"), "must be an array"))?;
        for (j, call) in calls.iter().enumerate() {
            content.push(tool_call(call, &format!("{field}.tool_calls[{j}]"))?);
        }
    }
    Ok(content)
}

/// A `toolResult` block (then any cache points its parts asked for).
fn tool_message(
    obj: &Map<String, Value>,
    field: &str,
    cache: &mut CachePoints,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let id = obj
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::invalid(format!("{field}.tool_call_id"), "required: a string"))?;
    let parts = text_parts(obj.get("content"), &format!("{field}.content"), cache)?;
    let mut content = Vec::new();
    let mut trailing_cache = Vec::new();
    for p in parts {
        match p {
            ContentBlock::Text(t) => content.push(ToolResultContentBlock::Text(t)),
            other => trailing_cache.push(other),
        }
    }
    if content.is_empty() {
        // Bedrock needs content; an empty result is an empty text.
        content.push(ToolResultContentBlock::Text(String::new()));
    }
    let mut blocks = vec![ContentBlock::ToolResult(ToolResultBlock {
        tool_use_id: id.to_owned(),
        content,
        status: None,
        extra: Extra::new(),
    })];
    blocks.extend(trailing_cache);
    Ok(blocks)
}

fn tool_call(call: &Value, field: &str) -> Result<ContentBlock, TranslateError> {
    let id = required_str(call, "id", field)?;
    if call
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "function")
    {
        return Err(TranslateError::unsupported(
            format!("{field}.type"),
            "only \"function\" tool calls are supported",
        ));
    }
    let func = call
        .get("function")
        .ok_or_else(|| TranslateError::invalid(format!("{field}.function"), "required: an object"))?;
    let name = required_str(func, "name", &format!("{field}.function"))?;
    let input: Value = match func.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
            TranslateError::invalid(format!("{field}.function.arguments"), format!("is not JSON: {e}"))
        })?,
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{field}.function.arguments"),
                "must be a string",
            ))
        }
    };
    Ok(ContentBlock::ToolUse(ToolUseBlock {
        tool_use_id: id.to_owned(),
        name: name.to_owned(),
        input: input.into(),
        r#type: None,
        extra: Extra::new(),
    }))
}

/// Text content (a string or text parts, each optionally with `cache_control`): text
/// blocks, and cache points after the parts that asked for one. Empty text is skipped.
fn text_parts(
    content: Option<&Value>,
    field: &str,
    cache: &mut CachePoints,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut out = Vec::new();
    let parts = match text_or_parts(content, field, "must be a string or an array of parts")? {
        TextOrParts::Empty => return Ok(out),
        TextOrParts::Text(s) => {
            push_text(&mut out, s);
            return Ok(out);
        }
        TextOrParts::Parts(parts) => parts,
    };
    for (j, part) in parts.iter().enumerate() {
        let pf = format!("{field}[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => push_text(&mut out, required_str(part, "text", &pf)?),
            Some("refusal") => push_text(
                &mut out,
                part.get("refusal").and_then(Value::as_str).unwrap_or(""),
            ),
            _ => {
                return Err(TranslateError::unsupported(
                    format!("{pf}.type"),
                    "only text parts are accepted here",
                ))
            }
        }
        cache_after(part, &pf, cache, &mut out)?;
    }
    Ok(out)
}

/// A text block, unless `text` is empty.
fn push_text(out: &mut Vec<ContentBlock>, text: &str) {
    if !text.is_empty() {
        out.push(ContentBlock::Text(text.to_owned()));
    }
}

fn cache_after(
    part: &Value,
    field: &str,
    cache: &mut CachePoints,
    out: &mut Vec<ContentBlock>,
) -> Result<(), TranslateError> {
    if let Some(cc) = part.get("cache_control").filter(|v| !v.is_null()) {
        out.push(ContentBlock::CachePoint(
            cache.point(cc, &format!("{field}.cache_control"))?,
        ));
    }
    Ok(())
}

/// A user message's content: text, images (data URLs) and files.
fn user_content(
    content: Option<&Value>,
    field: &str,
    cache: &mut CachePoints,
    documents: &mut usize,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let parts = match content {
        Some(Value::Array(parts)) => parts,
        other => return text_parts(other, field, cache),
    };
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let pf = format!("{field}[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => push_text(&mut out, required_str(part, "text", &pf)?),
            Some("image_url") => out.push(image_part(part, &pf)?),
            Some("file") => {
                out.push(file_part(part, &pf, *documents)?);
                *documents += 1;
            }
            Some("input_audio") => {
                return Err(TranslateError::unsupported(
                    format!("{pf}.type"),
                    "audio input is not supported",
                ))
            }
            _ => {
                return Err(TranslateError::invalid(
                    format!("{pf}.type"),
                    "must be text, image_url or file",
                ))
            }
        }
        cache_after(part, &pf, cache, &mut out)?;
    }
    Ok(out)
}

/// `{"type": "image_url", "image_url": {"url": "data:..."}}`.
fn image_part(part: &Value, pf: &str) -> Result<ContentBlock, TranslateError> {
    let uf = format!("{pf}.image_url.url");
    let url = part
        .get("image_url")
        .and_then(|i| i.get("url"))
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::invalid(&uf, "required: a string"))?;
    let (media_type, bytes) = data_url(url, &uf)?;
    Ok(ContentBlock::Image(ImageBlock {
        format: image_format(&media_type, &uf)?.to_owned(),
        source: MediaSource::Bytes(bytes),
        extra: Extra::new(),
    }))
}

/// `{"type": "file", "file": {"file_data": "data:...", "filename": ...}}`; document
/// number `index` names it when it has no file name.
fn file_part(part: &Value, pf: &str, index: usize) -> Result<ContentBlock, TranslateError> {
    let file = part.get("file");
    let ff = format!("{pf}.file.file_data");
    if file.and_then(|f| f.get("file_id")).is_some_and(|v| !v.is_null()) {
        return Err(TranslateError::unsupported(
            format!("{pf}.file.file_id"),
            "uploaded files are not supported; send file_data",
        ));
    }
    let url = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::invalid(&ff, "required: a data: URL"))?;
    let (media_type, bytes) = data_url(url, &ff)?;
    let name = file.and_then(|f| f.get("filename")).and_then(Value::as_str);
    Ok(ContentBlock::Document(DocumentBlock {
        format: Some(document_format(&media_type, &ff)?.to_owned()),
        name: document_name(name, index),
        source: MediaSource::Bytes(bytes),
        extra: Extra::new(),
    }))
}
