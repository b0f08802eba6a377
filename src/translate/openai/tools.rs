//! OpenAI `tools`, `tool_choice` and `response_format` → Converse tool configuration
//! and structured output.

use serde_json::{Map, Value};

use crate::translate::error::TranslateError;
use crate::translate::request::{
    CachePoints, EmptyObject, OutputConfig, SpecificToolChoice, Tool, ToolChoice, ToolConfiguration,
    ToolInputSchema, ToolSpecification,
};

pub(super) fn tools(req: &Map<String, Value>, cache: &mut CachePoints) -> Result<Vec<Tool>, TranslateError> {
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

/// `tool_choice`, read.
pub(super) enum Choice {
    Default,
    Auto,
    Required,
    None,
    Named(String),
}

pub(super) fn tool_choice(req: &Map<String, Value>) -> Result<Choice, TranslateError> {
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

pub(super) fn response_format(req: &Map<String, Value>) -> Result<Option<OutputConfig>, TranslateError> {
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

/// The Converse tool configuration for `tools` and `choice`: `None` without tools or
/// with `"none"`, which Bedrock can honour only while no message holds tool blocks.
pub(super) fn tool_config(
    tools: Vec<Tool>,
    choice: Choice,
    has_tool_blocks: bool,
) -> Result<Option<ToolConfiguration>, TranslateError> {
    let tool_choice = match choice {
        Choice::None if has_tool_blocks => {
            return Err(TranslateError::unsupported(
                "tool_choice",
                "\"none\" cannot be honoured on Bedrock when the messages hold tool calls (Converse then needs its tools)",
            ));
        }
        Choice::None => return Ok(None),
        Choice::Required | Choice::Named(_) if tools.is_empty() => {
            return Err(TranslateError::invalid("tool_choice", "requires tools"));
        }
        _ if tools.is_empty() => return Ok(None),
        Choice::Default => None,
        Choice::Auto => Some(ToolChoice::Auto(EmptyObject {})),
        Choice::Required => Some(ToolChoice::Any(EmptyObject {})),
        Choice::Named(name) => {
            let known = tools
                .iter()
                .any(|t| matches!(t, Tool::ToolSpec(s) if s.name == name));
            if !known {
                return Err(TranslateError::invalid(
                    "tool_choice.function.name",
                    format!("no tool named {name:?}"),
                ));
            }
            Some(ToolChoice::Tool(SpecificToolChoice { name }))
        }
    };
    Ok(Some(ToolConfiguration { tools, tool_choice }))
}
