//! OpenAI Chat Completions request → Converse request.

use serde_json::{Map, Value};

use super::messages::messages;
use super::tools::{response_format, tool_choice, tools};
use crate::translate::error::TranslateError;
use crate::translate::request::{
    as_f32, as_u32, inference, tool_config, CachePoints, ConverseRequest, InferenceConfiguration, Translated,
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
    let include_usage = include_usage(&req)?;
    let mut cache = CachePoints::default();
    let tools = tools(&req, &mut cache)?;
    let (system, messages) = messages(&req, &mut cache)?;
    let mut converse = ConverseRequest {
        messages,
        system,
        inference_config: inference(inference_config(&req)?),
        tool_config: None,
        additional_model_request_fields: None,
        output_config: response_format(&req)?,
    };
    converse.tool_config = tool_config(
        tools,
        tool_choice(&req)?,
        converse.has_tool_blocks(),
        Some("tool_choice.function.name"),
    )?;
    Ok(Translated {
        model,
        stream,
        include_usage,
        converse,
    })
}

/// `stream_options.include_usage`.
fn include_usage(req: &Map<String, Value>) -> Result<bool, TranslateError> {
    match req.get("stream_options") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(TranslateError::invalid(
                "stream_options.include_usage",
                "must be a boolean",
            )),
        },
        Some(_) => Err(TranslateError::invalid("stream_options", "must be an object")),
    }
}

/// `max_completion_tokens` (or the older `max_tokens`), `temperature`, `top_p`, `stop`.
fn inference_config(req: &Map<String, Value>) -> Result<InferenceConfiguration, TranslateError> {
    let mut config = InferenceConfiguration::default();
    let max = match req.get("max_completion_tokens") {
        None | Some(Value::Null) => req
            .get("max_tokens")
            .filter(|v| !v.is_null())
            .map(|v| (v, "max_tokens")),
        Some(v) => Some((v, "max_completion_tokens")),
    };
    if let Some((v, field)) = max {
        config.max_tokens = Some(as_u32(v, field)?);
    }
    if let Some(v) = req.get("temperature").filter(|v| !v.is_null()) {
        config.temperature = Some(as_f32(v, "temperature")?);
    }
    if let Some(v) = req.get("top_p").filter(|v| !v.is_null()) {
        config.top_p = Some(as_f32(v, "top_p")?);
    }
    match req.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => config.stop_sequences.push(s.clone()),
        Some(Value::Array(list)) => {
            for (i, s) in list.iter().enumerate() {
                match s {
                    Value::String(s) => config.stop_sequences.push(s.clone()),
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
    Ok(config)
}

/// When a request field changes the meaning of a request in a way Bedrock cannot
/// honour.
#[derive(Clone, Copy)]
enum Refuse {
    /// Any value but `null`.
    Set,
    /// `true`.
    True,
    /// `false`.
    False,
    /// A number other than 1.
    NotOne,
    /// A non-empty object.
    NonEmptyObject,
    /// A number other than 0.
    NonZero,
    /// An array naming anything but `"text"`.
    NotOnlyText,
}

impl Refuse {
    fn applies(self, v: &Value) -> bool {
        match self {
            Refuse::Set => !v.is_null(),
            Refuse::True => v.as_bool() == Some(true),
            Refuse::False => v.as_bool() == Some(false),
            Refuse::NotOne => !v.is_null() && v.as_u64() != Some(1),
            Refuse::NonEmptyObject => v.as_object().is_some_and(|o| !o.is_empty()),
            Refuse::NonZero => v.as_f64().is_some_and(|f| f != 0.0),
            Refuse::NotOnlyText => v
                .as_array()
                .is_some_and(|m| m.iter().any(|v| v.as_str() != Some("text"))),
        }
    }
}

/// The fields refused, in the order they are checked, and why.
const REFUSED: &[(&str, Refuse, &str)] = &[
    (
        "n",
        Refuse::NotOne,
        "only n = 1 is supported: Bedrock returns one choice",
    ),
    (
        "logprobs",
        Refuse::True,
        "Bedrock does not return log probabilities",
    ),
    (
        "top_logprobs",
        Refuse::Set,
        "Bedrock does not return log probabilities",
    ),
    ("audio", Refuse::Set, "audio output is not supported"),
    ("modalities", Refuse::NotOnlyText, "only text output is supported"),
    ("prediction", Refuse::Set, "predicted outputs are not supported"),
    ("logit_bias", Refuse::NonEmptyObject, "Bedrock has no logit bias"),
    (
        "presence_penalty",
        Refuse::NonZero,
        "Bedrock's Converse API has no penalties",
    ),
    (
        "frequency_penalty",
        Refuse::NonZero,
        "Bedrock's Converse API has no penalties",
    ),
    (
        "functions",
        Refuse::Set,
        "the legacy functions API is not supported; use tools",
    ),
    (
        "function_call",
        Refuse::Set,
        "the legacy functions API is not supported; use tools",
    ),
    ("web_search_options", Refuse::Set, "web search is not supported"),
    (
        "reasoning_effort",
        Refuse::Set,
        "not supported; use the Anthropic Messages route with `thinking`",
    ),
    (
        "parallel_tool_calls",
        Refuse::False,
        "Bedrock cannot forbid parallel tool calls",
    ),
];

/// Fields whose meaning Bedrock cannot honour: refused, naming the field.
fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), TranslateError> {
    for &(field, refuse, why) in REFUSED {
        if req.get(field).is_some_and(|v| refuse.applies(v)) {
            return Err(TranslateError::unsupported(field, why));
        }
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
