//! Anthropic Messages request → Converse request.

use serde_json::{Map, Value};

use super::blocks::messages;
use crate::translate::error::TranslateError;
use crate::translate::request::{
    as_f32, as_u32, inference, objects_of, required_str, text_or_parts, tool_cache_point, tool_config,
    tool_spec, CachePoints, Choice, ConverseRequest, EmptyObject, InferenceConfiguration, SpecificToolChoice,
    SystemContentBlock, TextOrParts, Tool, ToolChoice, Translated,
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
    let inference_config = inference_config(&req)?;
    let additional = additional_fields(&req, inference_config.max_tokens.unwrap_or(0))?;
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
    converse.tool_config = tool_config(tools, tool_choice(&req)?, converse.has_tool_blocks(), None)?;
    Ok(Translated {
        model,
        stream,
        include_usage: true,
        converse,
    })
}

/// `max_tokens` (required), `temperature`, `top_p`, `stop_sequences`.
fn inference_config(req: &Map<String, Value>) -> Result<InferenceConfiguration, TranslateError> {
    let max_tokens = req
        .get("max_tokens")
        .ok_or_else(|| TranslateError::invalid("max_tokens", "required"))
        .and_then(|v| as_u32(v, "max_tokens"))?;
    let mut config = InferenceConfiguration {
        max_tokens: Some(max_tokens),
        ..Default::default()
    };
    if let Some(v) = req.get("temperature").filter(|v| !v.is_null()) {
        config.temperature = Some(as_f32(v, "temperature")?);
    }
    if let Some(v) = req.get("top_p").filter(|v| !v.is_null()) {
        config.top_p = Some(as_f32(v, "top_p")?);
    }
    match req.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, s) in list.iter().enumerate() {
                let s = s.as_str().ok_or_else(|| {
                    TranslateError::invalid(format!("stop_sequences[{i}]"), "must be a string")
                })?;
                config.stop_sequences.push(s.to_owned());
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "stop_sequences",
                "must be an array of strings",
            ))
        }
    }
    Ok(config)
}

/// The model's own fields: `top_k`, and `thinking` (its budget below `max_tokens`).
fn additional_fields(
    req: &Map<String, Value>,
    max_tokens: u32,
) -> Result<Map<String, Value>, TranslateError> {
    let mut additional = Map::new();
    if let Some(v) = req.get("top_k").filter(|v| !v.is_null()) {
        additional.insert("top_k".into(), Value::from(as_u32(v, "top_k")?));
    }
    let (thinking, o) = match req.get("thinking") {
        None | Some(Value::Null) => return Ok(additional),
        Some(t @ Value::Object(o)) => (t, o),
        Some(_) => return Err(TranslateError::invalid("thinking", "must be an object")),
    };
    match o.get("type").and_then(Value::as_str) {
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
            additional.insert("thinking".into(), thinking.clone());
        }
        Some("disabled") => {}
        Some("adaptive") => {
            additional.insert("thinking".into(), thinking.clone());
        }
        _ => {
            return Err(TranslateError::invalid(
                "thinking.type",
                "must be enabled, disabled or adaptive",
            ))
        }
    }
    Ok(additional)
}

fn tool_choice(req: &Map<String, Value>) -> Result<Choice, TranslateError> {
    let o = match req.get("tool_choice") {
        None | Some(Value::Null) => return Ok(Choice::Default),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(TranslateError::invalid("tool_choice", "must be an object")),
    };
    if o.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
        return Err(TranslateError::unsupported(
            "tool_choice.disable_parallel_tool_use",
            "Bedrock cannot forbid parallel tool calls",
        ));
    }
    Ok(match o.get("type").and_then(Value::as_str) {
        Some("auto") => Choice::Converse(ToolChoice::Auto(EmptyObject {})),
        Some("any") => Choice::Converse(ToolChoice::Any(EmptyObject {})),
        Some("tool") => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::invalid("tool_choice.name", "required: a string"))?;
            Choice::Converse(ToolChoice::Tool(SpecificToolChoice {
                name: name.to_owned(),
            }))
        }
        Some("none") => Choice::None,
        _ => {
            return Err(TranslateError::invalid(
                "tool_choice.type",
                "must be auto, any, tool or none",
            ))
        }
    })
}

/// `tools`: custom tools only.
fn tools(req: &Map<String, Value>, cache: &mut CachePoints) -> Result<Vec<Tool>, TranslateError> {
    let mut out = Vec::new();
    for (field, obj) in objects_of(req, "tools")? {
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
        out.push(tool_spec(name, schema.clone(), obj));
        out.extend(tool_cache_point(obj, &field, cache)?);
    }
    Ok(out)
}

/// `system`: a string, or text blocks each optionally followed by its cache point.
fn system(
    system: Option<&Value>,
    cache: &mut CachePoints,
) -> Result<Vec<SystemContentBlock>, TranslateError> {
    let mut out = Vec::new();
    let blocks = match text_or_parts(system, "system", "must be a string or an array of text blocks")? {
        TextOrParts::Empty => return Ok(out),
        TextOrParts::Text(s) => {
            if !s.is_empty() {
                out.push(SystemContentBlock::Text(s.to_owned()));
            }
            return Ok(out);
        }
        TextOrParts::Parts(blocks) => blocks,
    };
    for (i, b) in blocks.iter().enumerate() {
        let field = format!("system[{i}]");
        if b.get("type").and_then(Value::as_str) != Some("text") {
            return Err(TranslateError::invalid(
                format!("{field}.type"),
                "must be \"text\"",
            ));
        }
        let t = required_str(b, "text", &field)?;
        if !t.is_empty() {
            out.push(SystemContentBlock::Text(t.to_owned()));
        }
        if let Some(cc) = b.get("cache_control").filter(|v| !v.is_null()) {
            out.push(SystemContentBlock::CachePoint(
                cache.point(cc, &format!("{field}.cache_control"))?,
            ));
        }
    }
    Ok(out)
}
