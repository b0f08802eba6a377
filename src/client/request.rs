//! Building the Converse request body from messages, the model's `extraPayload` and
//! per-request parameters.
//!
//! Each layer (the model's `extraPayload`, then the request's parameters) is first put
//! into Converse shape, then the request's layer is deep-merged over the model's, so a
//! per-request value always wins, whichever spelling either layer used.
//!
//! | parameter (ECA spelling, aliases) | goes to |
//! |---|---|
//! | `temperature` (0..=1) | `inferenceConfig.temperature` |
//! | `top_p`, `topP` (0..=1) | `inferenceConfig.topP` |
//! | `max_tokens`, `maxTokens` (default 1024) | `inferenceConfig.maxTokens` |
//! | `stopSequences`, `stop_sequences`, `stop` | `inferenceConfig.stopSequences` |
//! | `tools`, `tool_choice`/`toolChoice` | `toolConfig.tools`, `toolConfig.toolChoice` |
//! | `system` (a string or Converse blocks) | `system` |
//! | `top_k` | `additionalModelRequestFields.top_k` |
//! | top-level Converse keys (`inferenceConfig`, `toolConfig`, `guardrailConfig`, `additionalModelRequestFields`, ...) | deep-merged as they are |
//! | `stream` | chooses `/converse-stream` or `/converse`; never sent |
//! | anything else (`thinking`, `anthropic_beta`, ...) | `additionalModelRequestFields.<key>` |
//!
//! `top_k` is only sent when configured or requested. The seed documents a default of
//! 200, but Converse has no `topK` of its own: it goes to `additionalModelRequestFields`,
//! which models other than Anthropic's reject (and newer Claude models refuse some
//! sampling combinations), so sending a default would break requests that never asked
//! for it.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::config::ResolvedModel;
use super::error::{ClientError, ConfigError};

/// Default `inferenceConfig.maxTokens` when neither the model nor the request sets one.
pub const DEFAULT_MAX_TOKENS: u64 = 1024;

/// The top-level members of a Converse request body (besides `modelId`, which is in the
/// path, and `messages`).
pub(crate) const CONVERSE_TOP_LEVEL_KEYS: &[&str] = &[
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
    "projectIdentifier",
];

/// Per-request parameters. Unset fields fall back to the model's `extraPayload`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestParams {
    /// Sampling temperature, 0.0 to 1.0.
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0.0 to 1.0.
    pub top_p: Option<f64>,
    /// Top-k sampling (sent as `additionalModelRequestFields.top_k`).
    pub top_k: Option<u64>,
    /// Maximum tokens to generate.
    pub max_tokens: Option<u64>,
    /// Sequences that stop generation.
    pub stop_sequences: Option<Vec<String>>,
    /// `Some(false)` selects `/converse`, `Some(true)` `/converse-stream`.
    pub stream: Option<bool>,
    /// A system prompt.
    pub system: Option<String>,
    /// Tool specifications: Converse `{"toolSpec": ..}` or `{name, description, parameters}`.
    pub tools: Vec<Value>,
    /// `"auto"`, `"any"`, a tool name as `{"tool": "name"}`, or Converse `toolChoice`.
    pub tool_choice: Option<Value>,
    /// Any other key, routed like an `extraPayload` key.
    pub extra: Map<String, Value>,
}

impl RequestParams {
    /// The parameters as an `extraPayload`-shaped map (ECA spellings).
    pub fn to_payload(&self) -> Map<String, Value> {
        let mut m = self.extra.clone();
        if let Some(t) = self.temperature {
            m.insert("temperature".into(), json!(t));
        }
        if let Some(p) = self.top_p {
            m.insert("top_p".into(), json!(p));
        }
        if let Some(k) = self.top_k {
            m.insert("top_k".into(), json!(k));
        }
        if let Some(n) = self.max_tokens {
            m.insert("max_tokens".into(), json!(n));
        }
        if let Some(s) = &self.stop_sequences {
            m.insert("stopSequences".into(), json!(s));
        }
        if let Some(s) = self.stream {
            m.insert("stream".into(), json!(s));
        }
        if let Some(s) = &self.system {
            m.insert("system".into(), json!(s));
        }
        if !self.tools.is_empty() {
            m.insert("tools".into(), Value::Array(self.tools.clone()));
        }
        if let Some(c) = &self.tool_choice {
            m.insert("tool_choice".into(), c.clone());
        }
        m
    }
}

/// A request body ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRequest {
    /// The Converse JSON body.
    pub body: Value,
    /// Whether to call `/converse-stream`.
    pub stream: bool,
}

/// Builds the body for `model` from `messages` (Converse JSON messages) and `params`.
///
/// # Errors
///
/// [`ConfigError::InvalidParameter`] for out-of-range or mistyped parameters.
///
/// # Examples
///
/// ```
/// use bedrock_converse::client::{config::Config, request::{build_request, RequestParams}};
/// let config = Config::parse_with_env(r#"{"providers": {"bedrock": {"api": "bedrock",
///     "region": "us-east-1", "models": {"m": {"modelName": "anthropic.x",
///     "extraPayload": {"temperature": 0.7, "top_k": 200}}}}}}"#, &|_| None)?;
/// let model = config.resolve_model("bedrock/m")?;
/// let messages = [bedrock_converse::converse::Message::user("Hi")];
/// let req = build_request(&model, &messages, &RequestParams::default())?;
/// assert_eq!(req.body["messages"][0]["content"][0]["text"], "Hi");
/// assert!(req.stream);
/// assert_eq!(req.body["inferenceConfig"]["temperature"], 0.7);
/// assert_eq!(req.body["inferenceConfig"]["maxTokens"], 1024);
/// assert_eq!(req.body["additionalModelRequestFields"]["top_k"], 200);
/// # Ok::<(), bedrock_converse::client::ClientError>(())
/// ```
pub fn build_request<M: Serialize>(
    model: &ResolvedModel<'_>,
    messages: &[M],
    params: &RequestParams,
) -> Result<PreparedRequest, ClientError> {
    let messages = serde_json::to_value(messages).map_err(|e| bad("messages", &e.to_string()))?;
    build_body(&model.extra_payload, &params.to_payload(), messages)
}

/// Builds the body from two payload layers: `base` (the model's `extraPayload`) and
/// `over` (the request's parameters, which win).
///
/// # Errors
///
/// As [`build_request`].
pub(crate) fn build_body(
    base: &Map<String, Value>,
    over: &Map<String, Value>,
    messages: Value,
) -> Result<PreparedRequest, ClientError> {
    let (mut body, base_stream) = normalize(base)?;
    let (over_body, over_stream) = normalize(over)?;
    deep_merge(&mut body, over_body);
    let stream = over_stream.or(base_stream).unwrap_or(true);

    let inference = body
        .entry("inferenceConfig")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(inference) = inference else {
        return Err(bad("inferenceConfig", "expected an object"));
    };
    inference.entry("maxTokens").or_insert(json!(DEFAULT_MAX_TOKENS));
    validate_inference(inference)?;
    if let Some(Value::Object(extra)) = body.get("additionalModelRequestFields") {
        if let Some(k) = extra.get("top_k") {
            if k.as_u64().is_none() {
                return Err(bad("top_k", "expected a non-negative integer"));
            }
        }
    }

    let mut out = Map::new();
    out.insert("messages".into(), messages);
    // Stable, readable key order: messages first, then the rest as merged.
    for (k, v) in body {
        out.insert(k, v);
    }
    Ok(PreparedRequest {
        body: Value::Object(out),
        stream,
    })
}

/// Puts one payload layer into Converse shape. Returns the body fragment and `stream`.
fn normalize(layer: &Map<String, Value>) -> Result<(Map<String, Value>, Option<bool>), ClientError> {
    let mut body = Map::new();
    let mut stream = None;
    // Explicit top-level keys first, so that shorthand keys of the same layer win.
    for (k, v) in layer {
        if k == "system" {
            body.insert("system".into(), system_blocks(v)?);
        } else if CONVERSE_TOP_LEVEL_KEYS.contains(&k.as_str()) {
            deep_merge_value(&mut body, k, v.clone());
        }
    }
    for (k, v) in layer {
        let k = k.as_str();
        match k {
            _ if CONVERSE_TOP_LEVEL_KEYS.contains(&k) => {}
            "stream" => match v {
                Value::Bool(b) => stream = Some(*b),
                Value::Null => {}
                _ => return Err(bad("stream", "expected true or false")),
            },
            "messages" | "modelId" => {
                return Err(bad(
                    k,
                    "is not a payload key (messages and model come from the call)",
                ));
            }
            "temperature" => put(&mut body, "inferenceConfig", "temperature", v.clone()),
            "top_p" | "topP" => put(&mut body, "inferenceConfig", "topP", v.clone()),
            "max_tokens" | "maxTokens" => put(&mut body, "inferenceConfig", "maxTokens", v.clone()),
            "stopSequences" | "stop_sequences" | "stop" => {
                let seqs = match v {
                    Value::String(s) => json!([s]),
                    other => other.clone(),
                };
                put(&mut body, "inferenceConfig", "stopSequences", seqs);
            }
            "tools" => {
                let Value::Array(tools) = v else {
                    return Err(bad("tools", "expected an array"));
                };
                let tools = tools.iter().map(tool_spec).collect::<Result<Vec<_>, _>>()?;
                put(&mut body, "toolConfig", "tools", Value::Array(tools));
            }
            "tool_choice" | "toolChoice" => put(&mut body, "toolConfig", "toolChoice", tool_choice(v)?),
            _ => put(&mut body, "additionalModelRequestFields", k, v.clone()),
        }
    }
    Ok((body, stream))
}

fn put(body: &mut Map<String, Value>, section: &str, key: &str, v: Value) {
    let entry = body.entry(section).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(m) = entry {
        m.insert(key.to_string(), v);
    }
}

fn system_blocks(v: &Value) -> Result<Value, ClientError> {
    match v {
        Value::String(s) => Ok(json!([{ "text": s }])),
        Value::Array(_) => Ok(v.clone()),
        Value::Object(_) => Ok(json!([v])),
        _ => Err(bad("system", "expected a string or an array of system blocks")),
    }
}

/// A tool in Converse shape: `{"toolSpec": {name, description, inputSchema: {json}}}`.
fn tool_spec(t: &Value) -> Result<Value, ClientError> {
    let Value::Object(m) = t else {
        return Err(bad("tools", "each tool must be an object"));
    };
    if m.contains_key("toolSpec") || m.contains_key("cachePoint") || m.contains_key("systemTool") {
        return Ok(t.clone());
    }
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("tools", "a tool needs a name"))?;
    let schema = m
        .get("inputSchema")
        .or_else(|| m.get("input_schema"))
        .or_else(|| m.get("parameters"))
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let schema = match schema {
        Value::Object(s) if s.len() == 1 && s.contains_key("json") => Value::Object(s),
        other => json!({ "json": other }),
    };
    let mut spec = Map::new();
    spec.insert("name".into(), json!(name));
    if let Some(d) = m.get("description") {
        spec.insert("description".into(), d.clone());
    }
    spec.insert("inputSchema".into(), schema);
    Ok(json!({ "toolSpec": spec }))
}

fn tool_choice(v: &Value) -> Result<Value, ClientError> {
    match v {
        Value::String(s) if s == "auto" => Ok(json!({"auto": {}})),
        Value::String(s) if s == "any" || s == "required" => Ok(json!({"any": {}})),
        Value::String(name) => Ok(json!({"tool": {"name": name}})),
        Value::Object(m) => match m.get("tool") {
            Some(Value::String(name)) => Ok(json!({"tool": {"name": name}})),
            _ => Ok(v.clone()),
        },
        _ => Err(bad(
            "tool_choice",
            "expected \"auto\", \"any\", a tool name or a toolChoice object",
        )),
    }
}

fn validate_inference(inference: &Map<String, Value>) -> Result<(), ClientError> {
    for (key, name) in [("temperature", "temperature"), ("topP", "top_p")] {
        if let Some(v) = inference.get(key) {
            match v.as_f64() {
                Some(x) if (0.0..=1.0).contains(&x) => {}
                Some(x) => return Err(bad(name, &format!("{x} is outside 0.0..=1.0"))),
                None => return Err(bad(name, "expected a number")),
            }
        }
    }
    if let Some(v) = inference.get("maxTokens") {
        match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => {}
            _ => return Err(bad("max_tokens", &format!("{v} is not a positive integer"))),
        }
    }
    if let Some(v) = inference.get("stopSequences") {
        let ok = v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err(bad("stopSequences", "expected an array of strings"));
        }
    }
    Ok(())
}

fn bad(name: &str, reason: &str) -> ClientError {
    ClientError::Config(ConfigError::InvalidParameter {
        name: name.to_string(),
        reason: reason.to_string(),
    })
}

/// Merges `over` into `base`: objects recursively, anything else replaced.
pub(crate) fn deep_merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        deep_merge_value(base, &k, v);
    }
}

fn deep_merge_value(base: &mut Map<String, Value>, key: &str, v: Value) {
    match (base.get_mut(key), v) {
        (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
        (_, v) => {
            base.insert(key.to_string(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn request_wins_over_explicit_inference_config() {
        let base = obj(json!({"inferenceConfig": {"temperature": 0.2, "topP": 0.9}, "temperature": 0.5}));
        let over = obj(json!({"temperature": 0.7}));
        let r = build_body(&base, &over, Value::Null).unwrap();
        assert_eq!(r.body["inferenceConfig"]["temperature"], 0.7);
        assert_eq!(r.body["inferenceConfig"]["topP"], 0.9);
        let over = obj(json!({"inferenceConfig": {"temperature": 0.1}}));
        let r = build_body(&base, &over, Value::Null).unwrap();
        assert_eq!(r.body["inferenceConfig"]["temperature"], 0.1);
    }

    #[test]
    fn validation() {
        let e = build_body(&obj(json!({"temperature": 1.5})), &Map::new(), Value::Null).unwrap_err();
        assert!(
            matches!(e, ClientError::Config(ConfigError::InvalidParameter { ref name, .. }) if name == "temperature")
        );
        assert!(build_body(&obj(json!({"temperature": "hot"})), &Map::new(), Value::Null).is_err());
        assert!(build_body(&obj(json!({"max_tokens": 0})), &Map::new(), Value::Null).is_err());
        assert!(build_body(&obj(json!({"max_tokens": 1.5})), &Map::new(), Value::Null).is_err());
        assert!(build_body(&obj(json!({"top_k": -1})), &Map::new(), Value::Null).is_err());
        assert!(build_body(&obj(json!({"stream": "yes"})), &Map::new(), Value::Null).is_err());
        assert!(build_body(&obj(json!({"stopSequences": [1]})), &Map::new(), Value::Null).is_err());
    }

    #[test]
    fn tools_and_choice() {
        let over = obj(json!({
            "tools": [{"name": "get_weather", "description": "d", "parameters": {"type": "object"}},
                      {"toolSpec": {"name": "x", "inputSchema": {"json": {}}}}],
            "tool_choice": "any",
        }));
        let r = build_body(&Map::new(), &over, Value::Null).unwrap();
        let tc = &r.body["toolConfig"];
        assert_eq!(tc["tools"][0]["toolSpec"]["name"], "get_weather");
        assert_eq!(
            tc["tools"][0]["toolSpec"]["inputSchema"]["json"]["type"],
            "object"
        );
        assert_eq!(tc["tools"][1]["toolSpec"]["name"], "x");
        assert_eq!(tc["toolChoice"], json!({"any": {}}));
    }

    #[test]
    fn unknown_keys_go_to_additional_fields_and_stream_is_not_sent() {
        let base = obj(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}, "stream": false}));
        let r = build_body(&base, &Map::new(), Value::Null).unwrap();
        assert!(!r.stream);
        assert_eq!(
            r.body["additionalModelRequestFields"]["thinking"]["budget_tokens"],
            1024
        );
        assert!(r.body.get("stream").is_none());
        assert!(!r.body.to_string().contains("stream"));
    }

    #[test]
    fn system_string_and_override() {
        let base = obj(json!({"system": [{"text": "base"}]}));
        let over = obj(json!({"system": "over"}));
        let r = build_body(&base, &over, Value::Null).unwrap();
        assert_eq!(r.body["system"], json!([{"text": "over"}]));
    }
}
