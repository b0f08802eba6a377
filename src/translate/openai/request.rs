//! OpenAI Chat Completions request → Converse request.

use serde_json::{Map, Value};

use crate::converse::{
    ContentBlock, DocumentBlock, Extra, ImageBlock, MediaSource, Role, ToolResultBlock,
    ToolResultContentBlock, ToolUseBlock,
};
use crate::translate::error::TranslateError;
use crate::translate::request::{
    as_f32, as_u32, data_url, document_format, document_name, image_format, inference, push_message,
    CachePoints, ConverseRequest, EmptyObject, InferenceConfiguration, OutputConfig, SpecificToolChoice,
    SystemContentBlock, Tool, ToolChoice, ToolConfiguration, ToolInputSchema, ToolSpecification, Translated,
};

/// Translates a `POST /v1/chat/completions` body into a Converse request.
///
/// # Errors
///
/// [`TranslateError`] when the body is not a chat completion request, or asks for
/// something Bedrock cannot do (`n > 1`, `logprobs`, audio, ...); the error names the field.
///
/// # Examples
///
/// ```
/// use bedrock_converse::translate::openai;
///
/// let t = openai::translate_request(br#"{"model": "claude", "stream": true,
///     "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}"#)?;
/// assert_eq!((t.model.as_str(), t.stream), ("claude", true));
/// assert_eq!(t.converse.system.len(), 1);
/// assert_eq!(t.converse.messages.len(), 1);
/// # Ok::<(), bedrock_converse::translate::TranslateError>(())
/// ```
pub fn translate_request(body: &[u8]) -> Result<Translated, TranslateError> {
    let req: Map<String, Value> =
        serde_json::from_slice(body).map_err(|source| TranslateError::InvalidJson { source })?;
    refuse_unsupported(&req)?;

    let model = match req.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(TranslateError::invalid("model", "required: a model name")),
    };
    let stream = opt_bool(&req, "stream")?.unwrap_or(false);
    let include_usage = match req.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(TranslateError::invalid(
                    "stream_options.include_usage",
                    "must be a boolean",
                ))
            }
        },
        Some(_) => return Err(TranslateError::invalid("stream_options", "must be an object")),
    };

    let mut cache = CachePoints::default();
    let tools = tools(&req, &mut cache)?;
    let (system, messages) = messages(&req, &mut cache)?;

    let mut inference_config = InferenceConfiguration::default();
    let max = match req.get("max_completion_tokens") {
        None | Some(Value::Null) => req
            .get("max_tokens")
            .filter(|v| !v.is_null())
            .map(|v| (v, "max_tokens")),
        Some(v) => Some((v, "max_completion_tokens")),
    };
    if let Some((v, field)) = max {
        inference_config.max_tokens = Some(as_u32(v, field)?);
    }
    if let Some(v) = req.get("temperature").filter(|v| !v.is_null()) {
        inference_config.temperature = Some(as_f32(v, "temperature")?);
    }
    if let Some(v) = req.get("top_p").filter(|v| !v.is_null()) {
        inference_config.top_p = Some(as_f32(v, "top_p")?);
    }
    match req.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => inference_config.stop_sequences.push(s.clone()),
        Some(Value::Array(list)) => {
            for (i, s) in list.iter().enumerate() {
                match s {
                    Value::String(s) => inference_config.stop_sequences.push(s.clone()),
                    _ => return Err(TranslateError::invalid(format!("stop[{i}]"), "must be a string")),
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "stop",
                "must be a string or an array of strings",
            ))
        }
    }

    let mut converse = ConverseRequest {
        messages,
        system,
        inference_config: inference(inference_config),
        tool_config: None,
        additional_model_request_fields: None,
        output_config: response_format(&req)?,
    };
    let choice = tool_choice(&req)?;
    match (tools, choice) {
        (_, Choice::None) if converse.has_tool_blocks() => {
            return Err(TranslateError::unsupported(
                "tool_choice",
                "\"none\" cannot be honoured on Bedrock when the messages hold tool calls (Converse then needs its tools)",
            ));
        }
        (_, Choice::None) => {}
        (tools, choice) if !tools.is_empty() => {
            if let Choice::Named(name) = &choice {
                let known = tools
                    .iter()
                    .any(|t| matches!(t, Tool::ToolSpec(s) if &s.name == name));
                if !known {
                    return Err(TranslateError::invalid(
                        "tool_choice.function.name",
                        format!("no tool named {name:?}"),
                    ));
                }
            }
            converse.tool_config = Some(ToolConfiguration {
                tools,
                tool_choice: match choice {
                    Choice::Default => None,
                    Choice::Auto => Some(ToolChoice::Auto(EmptyObject {})),
                    Choice::Required => Some(ToolChoice::Any(EmptyObject {})),
                    Choice::Named(name) => Some(ToolChoice::Tool(SpecificToolChoice { name })),
                    Choice::None => None,
                },
            });
        }
        (_, Choice::Required | Choice::Named(_)) => {
            return Err(TranslateError::invalid("tool_choice", "requires tools"));
        }
        _ => {}
    }
    Ok(Translated {
        model,
        stream,
        include_usage,
        converse,
    })
}

/// Fields whose meaning Bedrock cannot honour: refused, naming the field.
fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), TranslateError> {
    let set = |name: &str| req.get(name).is_some_and(|v| !v.is_null());
    if let Some(n) = req.get("n").filter(|v| !v.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(TranslateError::unsupported(
                "n",
                "only n = 1 is supported: Bedrock returns one choice",
            ));
        }
    }
    if req.get("logprobs").is_some_and(|v| v.as_bool() == Some(true)) {
        return Err(TranslateError::unsupported(
            "logprobs",
            "Bedrock does not return log probabilities",
        ));
    }
    if set("top_logprobs") {
        return Err(TranslateError::unsupported(
            "top_logprobs",
            "Bedrock does not return log probabilities",
        ));
    }
    if set("audio") {
        return Err(TranslateError::unsupported(
            "audio",
            "audio output is not supported",
        ));
    }
    if let Some(Value::Array(m)) = req.get("modalities") {
        if m.iter().any(|v| v.as_str() != Some("text")) {
            return Err(TranslateError::unsupported(
                "modalities",
                "only text output is supported",
            ));
        }
    }
    if set("prediction") {
        return Err(TranslateError::unsupported(
            "prediction",
            "predicted outputs are not supported",
        ));
    }
    if req
        .get("logit_bias")
        .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    {
        return Err(TranslateError::unsupported(
            "logit_bias",
            "Bedrock has no logit bias",
        ));
    }
    for field in ["presence_penalty", "frequency_penalty"] {
        if req
            .get(field)
            .is_some_and(|v| v.as_f64().is_some_and(|f| f != 0.0))
        {
            return Err(TranslateError::unsupported(
                field,
                "Bedrock's Converse API has no penalties",
            ));
        }
    }
    for field in ["functions", "function_call"] {
        if set(field) {
            return Err(TranslateError::unsupported(
                field,
                "the legacy functions API is not supported; use tools",
            ));
        }
    }
    if set("web_search_options") {
        return Err(TranslateError::unsupported(
            "web_search_options",
            "web search is not supported",
        ));
    }
    if set("reasoning_effort") {
        return Err(TranslateError::unsupported(
            "reasoning_effort",
            "not supported; use the Anthropic Messages route with `thinking`",
        ));
    }
    if req
        .get("parallel_tool_calls")
        .is_some_and(|v| v.as_bool() == Some(false))
    {
        return Err(TranslateError::unsupported(
            "parallel_tool_calls",
            "Bedrock cannot forbid parallel tool calls",
        ));
    }
    Ok(())
}

fn opt_bool(req: &Map<String, Value>, field: &str) -> Result<Option<bool>, TranslateError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(TranslateError::invalid(field, "must be a boolean")),
    }
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
        if obj.get("type").and_then(Value::as_str) != Some("function") {
            return Err(TranslateError::unsupported(
                format!("{field}.type"),
                "only \"function\" tools are supported",
            ));
        }
        let func = obj
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| TranslateError::invalid(format!("{field}.function"), "required: an object"))?;
        let name = func
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| TranslateError::invalid(format!("{field}.function.name"), "required: a string"))?;
        let schema = match func.get("parameters") {
            None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => {
                return Err(TranslateError::invalid(
                    format!("{field}.function.parameters"),
                    "must be an object",
                ))
            }
        };
        out.push(Tool::ToolSpec(ToolSpecification {
            name: name.to_owned(),
            description: func
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
            input_schema: ToolInputSchema { json: schema },
            strict: func.get("strict").and_then(Value::as_bool),
        }));
        if let Some(cc) = obj.get("cache_control").filter(|v| !v.is_null()) {
            out.push(Tool::CachePoint(
                cache.point(cc, &format!("{field}.cache_control"))?,
            ));
        }
    }
    Ok(out)
}

enum Choice {
    Default,
    Auto,
    Required,
    None,
    Named(String),
}

fn tool_choice(req: &Map<String, Value>) -> Result<Choice, TranslateError> {
    Ok(match req.get("tool_choice") {
        None | Some(Value::Null) => Choice::Default,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Choice::Auto,
            "required" => Choice::Required,
            "none" => Choice::None,
            _ => {
                return Err(TranslateError::invalid(
                    "tool_choice",
                    "must be auto, required, none or a named function",
                ))
            }
        },
        Some(Value::Object(o)) => {
            match o.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some("allowed_tools") | Some("custom") => {
                    return Err(TranslateError::unsupported(
                        "tool_choice.type",
                        "only \"function\" is supported",
                    ))
                }
                _ => {
                    return Err(TranslateError::invalid(
                        "tool_choice.type",
                        "must be \"function\"",
                    ))
                }
            }
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::invalid("tool_choice.function.name", "required: a string"))?;
            Choice::Named(name.to_owned())
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "tool_choice",
                "must be a string or an object",
            ))
        }
    })
}

fn response_format(req: &Map<String, Value>) -> Result<Option<OutputConfig>, TranslateError> {
    let rf = match req.get("response_format") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(TranslateError::invalid("response_format", "must be an object")),
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        // Any JSON object: the schema that says exactly that.
        Some("json_object") => Ok(Some(OutputConfig::json_schema(
            &serde_json::json!({"type": "object"}),
            None,
            None,
        ))),
        Some("json_schema") => {
            let js = rf.get("json_schema").and_then(Value::as_object).ok_or_else(|| {
                TranslateError::invalid("response_format.json_schema", "required: an object")
            })?;
            let schema = js.get("schema").filter(|s| s.is_object()).ok_or_else(|| {
                TranslateError::invalid("response_format.json_schema.schema", "required: an object")
            })?;
            let text = |k: &str| js.get(k).and_then(Value::as_str).map(str::to_owned);
            Ok(Some(OutputConfig::json_schema(
                schema,
                text("name"),
                text("description"),
            )))
        }
        _ => Err(TranslateError::invalid(
            "response_format.type",
            "must be text, json_object or json_schema",
        )),
    }
}

type Messages = (Vec<SystemContentBlock>, Vec<crate::converse::Message>);

fn messages(req: &Map<String, Value>, cache: &mut CachePoints) -> Result<Messages, TranslateError> {
    let list = match req.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => return Err(TranslateError::invalid("messages", "required: a non-empty array")),
    };
    // System prompts first: Bedrock reads cache points in the order tools, system, messages.
    let mut system = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let field = format!("messages[{i}]");
        let role = m.get("role").and_then(Value::as_str);
        if matches!(role, Some("system") | Some("developer")) {
            for part in text_parts(m.get("content"), &format!("{field}.content"), cache)? {
                match part {
                    ContentBlock::Text(t) => system.push(SystemContentBlock::Text(t)),
                    ContentBlock::CachePoint(c) => system.push(SystemContentBlock::CachePoint(c)),
                    _ => {}
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut documents = 0usize;
    for (i, m) in list.iter().enumerate() {
        let field = format!("messages[{i}]");
        let obj = m
            .as_object()
            .ok_or_else(|| TranslateError::invalid(&field, "must be an object"))?;
        match obj.get("role").and_then(Value::as_str) {
            Some("system") | Some("developer") => {}
            Some("user") => {
                let content = user_content(
                    obj.get("content"),
                    &format!("{field}.content"),
                    cache,
                    &mut documents,
                )?;
                if content.is_empty() {
                    return Err(TranslateError::invalid(
                        format!("{field}.content"),
                        "must not be empty",
                    ));
                }
                push_message(&mut out, Role::User, content);
            }
            Some("assistant") => {
                if obj.get("audio").is_some_and(|v| !v.is_null()) {
                    return Err(TranslateError::unsupported(
                        format!("{field}.audio"),
                        "audio is not supported",
                    ));
                }
                let mut content = text_parts(obj.get("content"), &format!("{field}.content"), cache)?;
                if let Some(calls) = obj.get("tool_calls").filter(|v| !v.is_null()) {
                    let calls = calls.as_array().ok_or_else(|| {
                        TranslateError::invalid(format!("{field}.tool_calls"), "must be an array")
                    })?;
                    for (j, call) in calls.iter().enumerate() {
                        content.push(tool_call(call, &format!("{field}.tool_calls[{j}]"))?);
                    }
                }
                push_message(&mut out, Role::Assistant, content);
            }
            Some("tool") => {
                let id = obj.get("tool_call_id").and_then(Value::as_str).ok_or_else(|| {
                    TranslateError::invalid(format!("{field}.tool_call_id"), "required: a string")
                })?;
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
                push_message(&mut out, Role::User, blocks);
            }
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
        }
    }
    if out.is_empty() {
        return Err(TranslateError::invalid(
            "messages",
            "needs at least one user message",
        ));
    }
    Ok((system, out))
}

fn tool_call(call: &Value, field: &str) -> Result<ContentBlock, TranslateError> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::invalid(format!("{field}.id"), "required: a string"))?;
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
    let name = func
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::invalid(format!("{field}.function.name"), "required: a string"))?;
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
    match content {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.is_empty() {
                out.push(ContentBlock::Text(s.clone()));
            }
        }
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let pf = format!("{field}[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = part.get("text").and_then(Value::as_str).ok_or_else(|| {
                            TranslateError::invalid(format!("{pf}.text"), "required: a string")
                        })?;
                        if !t.is_empty() {
                            out.push(ContentBlock::Text(t.to_owned()));
                        }
                    }
                    Some("refusal") => {
                        if let Some(t) = part
                            .get("refusal")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(ContentBlock::Text(t.to_owned()));
                        }
                    }
                    _ => {
                        return Err(TranslateError::unsupported(
                            format!("{pf}.type"),
                            "only text parts are accepted here",
                        ))
                    }
                }
                cache_after(part, &pf, cache, &mut out)?;
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                field,
                "must be a string or an array of parts",
            ))
        }
    }
    Ok(out)
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
            Some("text") => {
                let t = part
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| TranslateError::invalid(format!("{pf}.text"), "required: a string"))?;
                if !t.is_empty() {
                    out.push(ContentBlock::Text(t.to_owned()));
                }
            }
            Some("image_url") => {
                let uf = format!("{pf}.image_url.url");
                let url = part
                    .get("image_url")
                    .and_then(|i| i.get("url"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| TranslateError::invalid(&uf, "required: a string"))?;
                let (media_type, bytes) = data_url(url, &uf)?;
                out.push(ContentBlock::Image(ImageBlock {
                    format: image_format(&media_type, &uf)?.to_owned(),
                    source: MediaSource::Bytes(bytes),
                    extra: Extra::new(),
                }));
            }
            Some("file") => {
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
                out.push(ContentBlock::Document(DocumentBlock {
                    format: Some(document_format(&media_type, &ff)?.to_owned()),
                    name: document_name(name, *documents),
                    source: MediaSource::Bytes(bytes),
                    extra: Extra::new(),
                }));
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
