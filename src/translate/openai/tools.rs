//! OpenAI `tools`, `tool_choice` and `response_format` → Converse tool configuration
//! and structured output.

use serde_json::{Map, Value};

use crate::translate::error::TranslateError;
use crate::translate::request::{
    objects_of, tool_cache_point, tool_spec, CachePoints, Choice, EmptyObject, OutputConfig,
    SpecificToolChoice, Tool, ToolChoice,
};

/// `tools`: function tools only.
pub(super) fn tools(req: &Map<String, Value>, cache: &mut CachePoints) -> Result<Vec<Tool>, TranslateError> {
    let mut out = Vec::new();
    for (field, obj) in objects_of(req, "tools")? {
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
        out.push(tool_spec(name, schema, func));
        out.extend(tool_cache_point(obj, &field, cache)?);
    }
    Ok(out)
}

pub(super) fn tool_choice(req: &Map<String, Value>) -> Result<Choice, TranslateError> {
    Ok(match req.get("tool_choice") {
        None | Some(Value::Null) => Choice::Default,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Choice::Converse(ToolChoice::Auto(EmptyObject {})),
            "required" => Choice::Converse(ToolChoice::Any(EmptyObject {})),
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
            Choice::Converse(ToolChoice::Tool(SpecificToolChoice {
                name: name.to_owned(),
            }))
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
