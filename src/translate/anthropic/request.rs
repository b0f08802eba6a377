//! Anthropic Messages request → Converse request.

use serde_json::{Map, Value};

use crate::converse::{
    ContentBlock, DocumentBlock, Extra, ImageBlock, MediaSource, ReasoningContentBlock, ReasoningTextBlock,
    Role, ToolResultBlock, ToolResultContentBlock, ToolUseBlock,
};
use crate::translate::error::TranslateError;
use crate::translate::request::{
    as_f32, as_u32, base64_blob, document_format, document_name, image_format, inference, push_message,
    CachePoints, ConverseRequest, EmptyObject, InferenceConfiguration, SpecificToolChoice,
    SystemContentBlock, Tool, ToolChoice, ToolConfiguration, ToolInputSchema, ToolSpecification, Translated,
};

/// Translates a `POST /v1/messages` body into a Converse request.
///
/// # Errors
///
/// [`TranslateError`] when the body is not a Messages request or asks for something
/// Bedrock cannot do; the error names the field.
///
/// # Examples
///
/// ```
/// use bedrock_converse::translate::anthropic;
///
/// let t = anthropic::translate_request(br#"{"model": "claude", "max_tokens": 1024,
///     "thinking": {"type": "enabled", "budget_tokens": 512},
///     "messages": [{"role": "user", "content": "Hi"}]}"#)?;
/// let extra = t.converse.additional_model_request_fields.unwrap();
/// assert_eq!(extra["thinking"]["budget_tokens"], 512);
/// # Ok::<(), bedrock_converse::translate::TranslateError>(())
/// ```
pub fn translate_request(body: &[u8]) -> Result<Translated, TranslateError> {
    let req: Map<String, Value> =
        serde_json::from_slice(body).map_err(|source| TranslateError::InvalidJson { source })?;
    for field in ["mcp_servers", "container"] {
        if req.get(field).is_some_and(|v| !v.is_null()) {
            return Err(TranslateError::unsupported(
                field,
                "not supported by Bedrock's Converse API",
            ));
        }
    }
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(TranslateError::invalid("model", "required: a model name")),
    };
    let stream = match req.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(TranslateError::invalid("stream", "must be a boolean")),
    };
    let max_tokens = req
        .get("max_tokens")
        .ok_or_else(|| TranslateError::invalid("max_tokens", "required"))
        .and_then(|v| as_u32(v, "max_tokens"))?;
    let mut inference_config = InferenceConfiguration {
        max_tokens: Some(max_tokens),
        ..Default::default()
    };
    if let Some(v) = req.get("temperature").filter(|v| !v.is_null()) {
        inference_config.temperature = Some(as_f32(v, "temperature")?);
    }
    if let Some(v) = req.get("top_p").filter(|v| !v.is_null()) {
        inference_config.top_p = Some(as_f32(v, "top_p")?);
    }
    match req.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, s) in list.iter().enumerate() {
                let s = s.as_str().ok_or_else(|| {
                    TranslateError::invalid(format!("stop_sequences[{i}]"), "must be a string")
                })?;
                inference_config.stop_sequences.push(s.to_owned());
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "stop_sequences",
                "must be an array of strings",
            ))
        }
    }

    let mut additional = Map::new();
    if let Some(v) = req.get("top_k").filter(|v| !v.is_null()) {
        additional.insert("top_k".into(), Value::from(as_u32(v, "top_k")?));
    }
    match req.get("thinking") {
        None | Some(Value::Null) => {}
        Some(t @ Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("enabled") => {
                let budget = o
                    .get("budget_tokens")
                    .ok_or_else(|| TranslateError::invalid("thinking.budget_tokens", "required"))
                    .and_then(|v| as_u32(v, "thinking.budget_tokens"))?;
                if budget >= max_tokens {
                    return Err(TranslateError::invalid(
                        "thinking.budget_tokens",
                        "must be less than max_tokens",
                    ));
                }
                additional.insert("thinking".into(), t.clone());
            }
            Some("disabled") => {}
            Some("adaptive") => {
                additional.insert("thinking".into(), t.clone());
            }
            _ => {
                return Err(TranslateError::invalid(
                    "thinking.type",
                    "must be enabled, disabled or adaptive",
                ))
            }
        },
        Some(_) => return Err(TranslateError::invalid("thinking", "must be an object")),
    }

    let mut cache = CachePoints::default();
    let tools = tools(&req, &mut cache)?;
    let system = system(req.get("system"), &mut cache)?;
    let messages = messages(&req, &mut cache)?;

    let mut converse = ConverseRequest {
        messages,
        system,
        inference_config: inference(inference_config),
        tool_config: None,
        additional_model_request_fields: (!additional.is_empty()).then_some(additional),
        output_config: None,
    };
    let choice = match req.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            if o.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
                return Err(TranslateError::unsupported(
                    "tool_choice.disable_parallel_tool_use",
                    "Bedrock cannot forbid parallel tool calls",
                ));
            }
            match o.get("type").and_then(Value::as_str) {
                Some("auto") => Some(Some(ToolChoice::Auto(EmptyObject {}))),
                Some("any") => Some(Some(ToolChoice::Any(EmptyObject {}))),
                Some("tool") => {
                    let name = o
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| TranslateError::invalid("tool_choice.name", "required: a string"))?;
                    Some(Some(ToolChoice::Tool(SpecificToolChoice {
                        name: name.to_owned(),
                    })))
                }
                Some("none") => Some(None),
                _ => {
                    return Err(TranslateError::invalid(
                        "tool_choice.type",
                        "must be auto, any, tool or none",
                    ))
                }
            }
        }
        Some(_) => return Err(TranslateError::invalid("tool_choice", "must be an object")),
    };
    match choice {
        Some(None) => {
            if converse.has_tool_blocks() {
                return Err(TranslateError::unsupported(
                    "tool_choice",
                    "\"none\" cannot be honoured on Bedrock when the messages hold tool calls (Converse then needs its tools)",
                ));
            }
        }
        choice => {
            let choice = choice.flatten();
            if !tools.is_empty() {
                converse.tool_config = Some(ToolConfiguration {
                    tools,
                    tool_choice: choice,
                });
            } else if choice.is_some() {
                return Err(TranslateError::invalid("tool_choice", "requires tools"));
            }
        }
    }
    Ok(Translated {
        model,
        stream,
        include_usage: true,
        converse,
    })
}

fn tools(req: &Map<String, Value>, cache: &mut CachePoints) -> Result<Vec<Tool>, TranslateError> {
    let list = match req.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(TranslateError::invalid("tools", "must be an array")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let field = format!("tools[{i}]");
        let obj = tool
            .as_object()
            .ok_or_else(|| TranslateError::invalid(&field, "must be an object"))?;
        match obj.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(_) => {
                return Err(TranslateError::unsupported(
                    format!("{field}.type"),
                    "server and client tools of Anthropic's own types are not supported; use custom tools",
                ))
            }
        }
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| TranslateError::invalid(format!("{field}.name"), "required: a string"))?;
        let schema = obj
            .get("input_schema")
            .filter(|s| s.is_object())
            .ok_or_else(|| TranslateError::invalid(format!("{field}.input_schema"), "required: an object"))?;
        out.push(Tool::ToolSpec(ToolSpecification {
            name: name.to_owned(),
            description: obj
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            input_schema: ToolInputSchema { json: schema.clone() },
            strict: obj.get("strict").and_then(Value::as_bool),
        }));
        if let Some(cc) = obj.get("cache_control").filter(|v| !v.is_null()) {
            out.push(Tool::CachePoint(
                cache.point(cc, &format!("{field}.cache_control"))?,
            ));
        }
    }
    Ok(out)
}

fn system(
    system: Option<&Value>,
    cache: &mut CachePoints,
) -> Result<Vec<SystemContentBlock>, TranslateError> {
    let mut out = Vec::new();
    match system {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.is_empty() {
                out.push(SystemContentBlock::Text(s.clone()));
            }
        }
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                let field = format!("system[{i}]");
                if b.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(TranslateError::invalid(
                        format!("{field}.type"),
                        "must be \"text\"",
                    ));
                }
                let t = b
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| TranslateError::invalid(format!("{field}.text"), "required: a string"))?;
                if !t.is_empty() {
                    out.push(SystemContentBlock::Text(t.to_owned()));
                }
                if let Some(cc) = b.get("cache_control").filter(|v| !v.is_null()) {
                    out.push(SystemContentBlock::CachePoint(
                        cache.point(cc, &format!("{field}.cache_control"))?,
                    ));
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "system",
                "must be a string or an array of text blocks",
            ))
        }
    }
    Ok(out)
}

fn messages(
    req: &Map<String, Value>,
    cache: &mut CachePoints,
) -> Result<Vec<crate::converse::Message>, TranslateError> {
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
        let cf = format!("{field}.content");
        let mut content = Vec::new();
        match m.get("content") {
            Some(Value::String(s)) => {
                if !s.is_empty() {
                    content.push(ContentBlock::Text(s.clone()));
                }
            }
            Some(Value::Array(blocks)) => {
                for (j, b) in blocks.iter().enumerate() {
                    let bf = format!("{cf}[{j}]");
                    content.push(block(b, &bf, &mut documents)?);
                    if let Some(cc) = b.get("cache_control").filter(|v| !v.is_null()) {
                        content.push(ContentBlock::CachePoint(
                            cache.point(cc, &format!("{bf}.cache_control"))?,
                        ));
                    }
                }
            }
            _ => {
                return Err(TranslateError::invalid(
                    cf,
                    "required: a string or an array of blocks",
                ))
            }
        }
        content.retain(|b| !matches!(b, ContentBlock::Text(t) if t.is_empty()));
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

fn str_field<'v>(b: &'v Value, key: &str, field: &str) -> Result<&'v str, TranslateError> {
    b.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::invalid(format!("{field}.{key}"), "required: a string"))
}

fn block(b: &Value, field: &str, documents: &mut usize) -> Result<ContentBlock, TranslateError> {
    Ok(match b.get("type").and_then(Value::as_str) {
        Some("text") => ContentBlock::Text(str_field(b, "text", field)?.to_owned()),
        Some("image") => image(b, field)?,
        Some("document") => {
            let doc = document(b, field, *documents)?;
            *documents += 1;
            doc
        }
        Some("tool_use") => {
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
            ContentBlock::ToolUse(ToolUseBlock {
                tool_use_id: str_field(b, "id", field)?.to_owned(),
                name: str_field(b, "name", field)?.to_owned(),
                input: input.into(),
                r#type: None,
                extra: Extra::new(),
            })
        }
        Some("tool_result") => {
            let mut content = Vec::new();
            match b.get("content") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => content.push(ToolResultContentBlock::Text(s.clone())),
                Some(Value::Array(parts)) => {
                    for (k, p) in parts.iter().enumerate() {
                        let pf = format!("{field}.content[{k}]");
                        match block(p, &pf, documents)? {
                            ContentBlock::Text(t) => content.push(ToolResultContentBlock::Text(t)),
                            ContentBlock::Image(i) => content.push(ToolResultContentBlock::Image(i)),
                            ContentBlock::Document(d) => content.push(ToolResultContentBlock::Document(d)),
                            _ => {
                                return Err(TranslateError::unsupported(
                                    format!("{pf}.type"),
                                    "a tool result holds text, images and documents",
                                ))
                            }
                        }
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
            ContentBlock::ToolResult(ToolResultBlock {
                tool_use_id: str_field(b, "tool_use_id", field)?.to_owned(),
                content,
                status: is_error.then(|| "error".to_owned()),
                extra: Extra::new(),
            })
        }
        Some("thinking") => {
            ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(ReasoningTextBlock {
                text: str_field(b, "thinking", field)?.to_owned(),
                signature: b
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            }))
        }
        Some("redacted_thinking") => ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(
            base64_blob(str_field(b, "data", field)?, &format!("{field}.data"))?,
        )),
        Some(other) => {
            let _ = other;
            return Err(TranslateError::unsupported(
                format!("{field}.type"),
                "supported blocks: text, image, document, tool_use, tool_result, thinking, redacted_thinking",
            ));
        }
        None => return Err(TranslateError::invalid(format!("{field}.type"), "required")),
    })
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
    let media_type = str_field(source, "media_type", &sf)?;
    let data = str_field(source, "data", &sf)?;
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
            let media_type = str_field(source, "media_type", &sf)?;
            let data = str_field(source, "data", &sf)?;
            (
                document_format(media_type, &format!("{sf}.media_type"))?,
                MediaSource::Bytes(base64_blob(data, &format!("{sf}.data"))?),
            )
        }
        Some("text") => (
            "txt",
            MediaSource::Text(str_field(source, "data", &sf)?.to_owned()),
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
