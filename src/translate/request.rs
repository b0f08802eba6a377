//! The Converse request body ([`ConverseRequest`]) that both dialects translate into, with
//! Bedrock's member names from the service model's `ConverseRequest`, and the pieces of
//! request translation the dialects share (media types, cache points, message merging).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::TranslateError;
use crate::converse::{Blob, CachePointBlock, ContentBlock, Extra, Message, Role};

/// The body of a `Converse` / `ConverseStream` request (the model id goes in the URL).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    /// `messages`.
    pub messages: Vec<Message>,
    /// `system`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemContentBlock>,
    /// `inferenceConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfiguration>,
    /// `toolConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfiguration>,
    /// `additionalModelRequestFields`: model-specific fields (`thinking`, `top_k`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<Map<String, Value>>,
    /// `outputConfig`: structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
}

impl ConverseRequest {
    /// The request as the JSON body Bedrock takes.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether any message holds a tool call or a tool result (Bedrock then requires a
    /// `toolConfig`).
    pub fn has_tool_blocks(&self) -> bool {
        self.messages.iter().any(|m| {
            m.content
                .iter()
                .any(|b| matches!(b, ContentBlock::ToolUse(_) | ContentBlock::ToolResult(_)))
        })
    }
}

/// One block of the `system` prompt (`SystemContentBlock`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum SystemContentBlock {
    /// `text`.
    Text(String),
    /// `cachePoint`.
    CachePoint(CachePointBlock),
}

/// `InferenceConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfiguration {
    /// `maxTokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// `temperature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// `topP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// `stopSequences`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

impl InferenceConfiguration {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

/// `ToolConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfiguration {
    /// `tools`.
    pub tools: Vec<Tool>,
    /// `toolChoice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// One entry of `toolConfig.tools` (`Tool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Tool {
    /// `toolSpec`.
    ToolSpec(ToolSpecification),
    /// `cachePoint`.
    CachePoint(CachePointBlock),
}

/// `ToolSpecification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpecification {
    /// `name`.
    pub name: String,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `inputSchema`.
    pub input_schema: ToolInputSchema,
    /// `strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `ToolInputSchema` (a union with one member: `json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInputSchema {
    /// `json`: a JSON Schema.
    pub json: Value,
}

/// `ToolChoice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ToolChoice {
    /// `auto`: the model decides.
    Auto(EmptyObject),
    /// `any`: the model must call at least one tool.
    Any(EmptyObject),
    /// `tool`: the model must call this tool.
    Tool(SpecificToolChoice),
}

/// `{}` (`AutoToolChoice`, `AnyToolChoice`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyObject {}

/// `SpecificToolChoice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecificToolChoice {
    /// `name`.
    pub name: String,
}

/// `OutputConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputConfig {
    /// `textFormat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_format: Option<OutputFormat>,
}

/// `OutputFormat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFormat {
    /// `type`: `json_schema`.
    pub r#type: String,
    /// `structure`.
    pub structure: OutputFormatStructure,
}

/// `OutputFormatStructure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputFormatStructure {
    /// `jsonSchema`.
    pub json_schema: JsonSchemaDefinition,
}

/// `JsonSchemaDefinition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaDefinition {
    /// `schema`: the JSON Schema, as JSON text.
    pub schema: String,
    /// `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl OutputConfig {
    /// Structured output that must match `schema`.
    pub fn json_schema(schema: &Value, name: Option<String>, description: Option<String>) -> OutputConfig {
        OutputConfig {
            text_format: Some(OutputFormat {
                r#type: "json_schema".to_owned(),
                structure: OutputFormatStructure {
                    json_schema: JsonSchemaDefinition {
                        schema: schema.to_string(),
                        name,
                        description,
                    },
                },
            }),
        }
    }
}

/// A dialect request translated for Bedrock.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The model the client named, as written (the caller resolves it to a Bedrock id).
    pub model: String,
    /// Whether the client asked for a stream (`ConverseStream`) or one response (`Converse`).
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: end the stream with a usage chunk.
    pub include_usage: bool,
    /// The Converse request body.
    pub converse: ConverseRequest,
}

// ===== shared request pieces =====

/// Text content in either form the dialects accept.
pub(crate) enum TextOrParts<'a> {
    /// Absent or `null`.
    Empty,
    /// A string (possibly empty).
    Text(&'a str),
    /// An array of content parts.
    Parts(&'a [Value]),
}

/// Reads content that is a string or an array of parts; anything else is the error
/// `expected` naming `field`.
pub(crate) fn text_or_parts<'a>(
    content: Option<&'a Value>,
    field: &str,
    expected: &str,
) -> Result<TextOrParts<'a>, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(TextOrParts::Empty),
        Some(Value::String(s)) => Ok(TextOrParts::Text(s)),
        Some(Value::Array(parts)) => Ok(TextOrParts::Parts(parts)),
        Some(_) => Err(TranslateError::invalid(field, expected)),
    }
}

/// `obj[key]` as a string, or the error naming `{field}.{key}`.
pub(crate) fn required_str<'a>(obj: &'a Value, key: &str, field: &str) -> Result<&'a str, TranslateError> {
    obj.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::invalid(format!("{field}.{key}"), "required: a string"))
}

/// An object of a request array and its field name (`tools[2]`).
pub(crate) type Named<'a> = (String, &'a Map<String, Value>);

/// The objects of the optional array `req[key]` (`tools`), each with its field name.
pub(crate) fn objects_of<'a>(
    req: &'a Map<String, Value>,
    key: &str,
) -> Result<Vec<Named<'a>>, TranslateError> {
    let list = match req.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(TranslateError::invalid(key, "must be an array")),
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let field = format!("{key}[{i}]");
            match v.as_object() {
                Some(obj) => Ok((field, obj)),
                None => Err(TranslateError::invalid(field, "must be an object")),
            }
        })
        .collect()
}

/// A tool's Converse spec: its `name` and input `schema`, the `description` and `strict`
/// of `spec`.
pub(crate) fn tool_spec(name: &str, schema: Value, spec: &Map<String, Value>) -> Tool {
    Tool::ToolSpec(ToolSpecification {
        name: name.to_owned(),
        description: spec
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        input_schema: ToolInputSchema { json: schema },
        strict: spec.get("strict").and_then(Value::as_bool),
    })
}

/// The cache point `obj.cache_control` asks for after a tool, if any.
pub(crate) fn tool_cache_point(
    obj: &Map<String, Value>,
    field: &str,
    cache: &mut CachePoints,
) -> Result<Option<Tool>, TranslateError> {
    match obj.get("cache_control").filter(|v| !v.is_null()) {
        Some(cc) => Ok(Some(Tool::CachePoint(
            cache.point(cc, &format!("{field}.cache_control"))?,
        ))),
        None => Ok(None),
    }
}

/// A request's `tool_choice`, in Converse terms.
pub(crate) enum Choice {
    /// Absent: Converse's default.
    Default,
    /// `none`: no tools offered.
    None,
    /// `auto`, any tool, or a named one.
    Converse(ToolChoice),
}

/// The Converse tool configuration for `tools` and `choice`: `None` without tools or
/// for `none`, which Bedrock can honour only while no message holds tool blocks (it then
/// needs the tools). With `name_field`, a named choice must name one of the tools.
pub(crate) fn tool_config(
    tools: Vec<Tool>,
    choice: Choice,
    has_tool_blocks: bool,
    name_field: Option<&str>,
) -> Result<Option<ToolConfiguration>, TranslateError> {
    let tool_choice = match choice {
        Choice::None if has_tool_blocks => {
            return Err(TranslateError::unsupported(
                "tool_choice",
                "\"none\" cannot be honoured on Bedrock when the messages hold tool calls (Converse then needs its tools)",
            ));
        }
        Choice::None => return Ok(None),
        Choice::Default => None,
        Choice::Converse(c) => Some(c),
    };
    if tools.is_empty() {
        return match tool_choice {
            Some(_) => Err(TranslateError::invalid("tool_choice", "requires tools")),
            None => Ok(None),
        };
    }
    if let (Some(field), Some(ToolChoice::Tool(SpecificToolChoice { name }))) = (name_field, &tool_choice) {
        let known = tools
            .iter()
            .any(|t| matches!(t, Tool::ToolSpec(s) if &s.name == name));
        if !known {
            return Err(TranslateError::invalid(field, format!("no tool named {name:?}")));
        }
    }
    Ok(Some(ToolConfiguration { tools, tool_choice }))
}

/// Converse image `format` for a media type (`image/png` → `png`).
pub(crate) fn image_format(media_type: &str, field: &str) -> Result<&'static str, TranslateError> {
    match media_type.trim().to_ascii_lowercase().as_str() {
        "image/png" => Ok("png"),
        "image/jpeg" | "image/jpg" => Ok("jpeg"),
        "image/gif" => Ok("gif"),
        "image/webp" => Ok("webp"),
        _ => Err(TranslateError::invalid(
            field,
            format!(
                "image media type {media_type:?} is not one of image/png, image/jpeg, image/gif, image/webp"
            ),
        )),
    }
}

/// Converse document `format` for a media type.
pub(crate) fn document_format(media_type: &str, field: &str) -> Result<&'static str, TranslateError> {
    match media_type.trim().to_ascii_lowercase().as_str() {
        "application/pdf" => Ok("pdf"),
        "text/plain" => Ok("txt"),
        "text/csv" => Ok("csv"),
        "text/html" => Ok("html"),
        "text/markdown" => Ok("md"),
        "application/msword" => Ok("doc"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Ok("docx"),
        "application/vnd.ms-excel" => Ok("xls"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Ok("xlsx"),
        _ => Err(TranslateError::invalid(
            field,
            format!("document media type {media_type:?} is not supported"),
        )),
    }
}

/// Splits a `data:<media type>;base64,<data>` URL and decodes the data.
pub(crate) fn data_url(url: &str, field: &str) -> Result<(String, Blob), TranslateError> {
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        TranslateError::unsupported(
            field,
            "only data: URLs are accepted (the gateway fetches nothing)",
        )
    })?;
    let (head, data) = rest
        .split_once(',')
        .ok_or_else(|| TranslateError::invalid(field, "a data: URL needs a comma"))?;
    let media_type = head
        .strip_suffix(";base64")
        .ok_or_else(|| TranslateError::invalid(field, "a data: URL must be base64 (`;base64,`)"))?;
    Ok((media_type.to_owned(), base64_blob(data, field)?))
}

/// Decodes base64 data from a request.
pub(crate) fn base64_blob(data: &str, field: &str) -> Result<Blob, TranslateError> {
    Blob::from_base64(data.trim()).ok_or_else(|| TranslateError::invalid(field, "data is not valid base64"))
}

/// A Converse document name from a file name or title: Bedrock allows letters, digits,
/// single spaces, hyphens, parentheses and square brackets.
pub(crate) fn document_name(name: Option<&str>, fallback_index: usize) -> String {
    let mut out = String::new();
    for c in name.unwrap_or_default().chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
            c
        } else {
            ' '
        };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    let trimmed = out.trim_end().to_owned();
    if trimmed.is_empty() {
        format!("document-{fallback_index}")
    } else {
        trimmed
    }
}

/// Cache points of one request, checked as they are made: Bedrock reads them in the
/// order `toolConfig`, `system`, `messages` and refuses a longer TTL after a shorter one
/// (`1h` after `5m`); a point without a TTL is `5m`.
#[derive(Debug, Default)]
pub(crate) struct CachePoints {
    seen_short: bool,
}

impl CachePoints {
    /// A `cachePoint` for a `cache_control` object (`{"type": "ephemeral", "ttl": "1h"}`).
    pub(crate) fn point(
        &mut self,
        cache_control: &Value,
        field: &str,
    ) -> Result<CachePointBlock, TranslateError> {
        let obj = cache_control
            .as_object()
            .ok_or_else(|| TranslateError::invalid(field, "cache_control must be an object"))?;
        match obj.get("type").and_then(Value::as_str) {
            Some("ephemeral") => {}
            _ => {
                return Err(TranslateError::invalid(
                    field,
                    "cache_control.type must be \"ephemeral\"",
                ))
            }
        }
        let ttl = match obj.get("ttl") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t == "5m" || t == "1h" => Some(t.clone()),
            Some(_) => {
                return Err(TranslateError::invalid(
                    field,
                    "cache_control.ttl must be \"5m\" or \"1h\"",
                ))
            }
        };
        if ttl.as_deref() == Some("1h") {
            if self.seen_short {
                return Err(TranslateError::invalid(
                    field,
                    "a ttl=\"1h\" cache_control block must not come after a ttl=\"5m\" one \
                     (order: tools, system, messages)",
                ));
            }
        } else {
            self.seen_short = true;
        }
        let mut extra = Extra::new();
        if let Some(ttl) = ttl {
            extra.insert("ttl".to_owned(), Value::String(ttl));
        }
        Ok(CachePointBlock {
            r#type: "default".to_owned(),
            extra,
        })
    }
}

/// Appends `content` as a message of `role`, joining it to the last message when that
/// has the same role (Bedrock wants the roles to alternate; several OpenAI `tool`
/// messages in a row become one user message of `toolResult` blocks this way).
pub(crate) fn push_message(messages: &mut Vec<Message>, role: Role, content: Vec<ContentBlock>) {
    if content.is_empty() {
        return;
    }
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.extend(content),
        _ => messages.push(Message { role, content }),
    }
}

/// `inferenceConfig` when any of its members is set.
pub(crate) fn inference(config: InferenceConfiguration) -> Option<InferenceConfiguration> {
    (!config.is_empty()).then_some(config)
}

/// A JSON number as `u32` (token counts).
pub(crate) fn as_u32(v: &Value, field: &str) -> Result<u32, TranslateError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| TranslateError::invalid(field, "must be a non-negative integer"))
}

/// A JSON number as `f32` (sampling parameters).
pub(crate) fn as_f32(v: &Value, field: &str) -> Result<f32, TranslateError> {
    // Sampling values are small; `f32` is what Bedrock's model takes.
    v.as_f64()
        .map(|f| f as f32)
        .ok_or_else(|| TranslateError::invalid(field, "must be a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_serializes_with_bedrock_names() {
        let req = ConverseRequest {
            messages: vec![Message::user("hi")],
            system: vec![
                SystemContentBlock::Text("be brief".into()),
                SystemContentBlock::CachePoint(
                    CachePoints::default()
                        .point(&json!({"type": "ephemeral", "ttl": "1h"}), "system")
                        .unwrap(),
                ),
            ],
            inference_config: inference(InferenceConfiguration {
                max_tokens: Some(10),
                ..Default::default()
            }),
            tool_config: Some(ToolConfiguration {
                tools: vec![Tool::ToolSpec(ToolSpecification {
                    name: "f".into(),
                    description: None,
                    input_schema: ToolInputSchema {
                        json: json!({"type": "object"}),
                    },
                    strict: None,
                })],
                tool_choice: Some(ToolChoice::Any(EmptyObject {})),
            }),
            additional_model_request_fields: None,
            output_config: Some(OutputConfig::json_schema(
                &json!({"type": "object"}),
                Some("o".into()),
                None,
            )),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "system": [{"text": "be brief"}, {"cachePoint": {"type": "default", "ttl": "1h"}}],
                "inferenceConfig": {"maxTokens": 10},
                "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
                               "toolChoice": {"any": {}}},
                "outputConfig": {"textFormat": {"type": "json_schema",
                                 "structure": {"jsonSchema": {"schema": "{\"type\":\"object\"}", "name": "o"}}}},
            })
        );
    }

    #[test]
    fn cache_ttl_order_is_checked() {
        let mut points = CachePoints::default();
        points
            .point(&json!({"type": "ephemeral", "ttl": "1h"}), "a")
            .unwrap();
        points.point(&json!({"type": "ephemeral"}), "b").unwrap();
        let err = points
            .point(&json!({"type": "ephemeral", "ttl": "1h"}), "c")
            .unwrap_err();
        assert_eq!(err.field(), Some("c"));
    }

    #[test]
    fn data_urls_and_names() {
        let (mt, blob) = data_url("data:image/png;base64,iVBORw==", "f").unwrap();
        assert_eq!((mt.as_str(), blob.as_bytes()), ("image/png", &b"\x89PNG"[..]));
        assert!(data_url("https://example.com/a.png", "f").is_err());
        assert_eq!(
            document_name(Some("report_2024.final.pdf"), 0),
            "report 2024 final pdf"
        );
        assert_eq!(document_name(Some("***"), 3), "document-3");
    }
}
