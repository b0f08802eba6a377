//! [`Message`] and its content blocks: text, tool use (its input kept as JSON text,
//! [`ToolInput`]), tool results, images, documents, reasoning, citations, cache points.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::{Blob, Extra, Role};

// ===== Message and content blocks =====

/// A conversation message (`Message`): used in requests and as the response's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `role`.
    pub role: Role,
    /// `content`.
    pub content: Vec<ContentBlock>,
}

impl Message {
    /// A user message with one text block.
    pub fn user(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: vec![ContentBlock::Text(text.into())],
        }
    }

    /// An assistant message with one text block.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![ContentBlock::Text(text.into())],
        }
    }
}

/// One block of a message's content (the `ContentBlock` union): one JSON key naming the
/// kind, e.g. `{"text": "..."}` or `{"toolUse": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ContentBlock {
    /// `text`.
    Text(String),
    /// `image`.
    Image(ImageBlock),
    /// `document`.
    Document(DocumentBlock),
    /// `toolUse`: a tool call by the model.
    ToolUse(ToolUseBlock),
    /// `toolResult`: the caller's answer to a tool call.
    ToolResult(ToolResultBlock),
    /// `reasoningContent`: the model's reasoning.
    ReasoningContent(ReasoningContentBlock),
    /// `citationsContent`: generated text with its citations.
    CitationsContent(CitationsContentBlock),
    /// `cachePoint`: a prompt-cache checkpoint (requests).
    CachePoint(CachePointBlock),
    /// Any other kind (`video`, `audio`, `guardContent`, `searchResult`, ...), as sent:
    /// a JSON object with one member.
    #[serde(untagged)]
    Other(Extra),
}

impl ContentBlock {
    /// A `text` block.
    pub fn text(text: impl Into<String>) -> ContentBlock {
        ContentBlock::Text(text.into())
    }

    /// A `toolResult` block with one JSON content item and no status.
    pub fn tool_result_json(tool_use_id: impl Into<String>, json: Value) -> ContentBlock {
        ContentBlock::ToolResult(ToolResultBlock {
            tool_use_id: tool_use_id.into(),
            content: vec![ToolResultContentBlock::Json(json)],
            status: None,
            extra: Extra::new(),
        })
    }

    /// A `toolResult` block with one text content item and no status.
    pub fn tool_result_text(tool_use_id: impl Into<String>, text: impl Into<String>) -> ContentBlock {
        ContentBlock::ToolResult(ToolResultBlock {
            tool_use_id: tool_use_id.into(),
            content: vec![ToolResultContentBlock::Text(text.into())],
            status: None,
            extra: Extra::new(),
        })
    }

    /// A `cachePoint` block of type `default`.
    pub fn cache_point() -> ContentBlock {
        ContentBlock::CachePoint(CachePointBlock {
            r#type: "default".to_owned(),
            extra: Extra::new(),
        })
    }
}

/// `ToolUseBlock`: a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseBlock {
    /// `toolUseId`.
    pub tool_use_id: String,
    /// `name`.
    pub name: String,
    /// `input`: the arguments, a JSON document, kept as the text the model wrote.
    pub input: ToolInput,
    /// `type` (e.g. `server_tool_use`; Claude also sends `tool_use`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ToolUseBlock {
    /// The arguments deserialized into `T` (parsed on each call).
    ///
    /// # Errors
    ///
    /// When the input does not have the shape of `T`.
    pub fn input<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.input.parse()
    }
}

/// A tool call's `input`: one JSON value, kept as the text it arrived as (checked to be
/// valid JSON, no tree built). [`parse`](Self::parse) or [`to_value`](Self::to_value)
/// read it when asked; serialized with serde_json it is written back byte for byte.
///
/// # Examples
///
/// ```
/// use bedrock_converse::converse::ToolInput;
///
/// let input = ToolInput::from_json(r#"{"city": "Oslo", "days": 3}"#.to_owned())?;
/// assert_eq!(input.as_str(), r#"{"city": "Oslo", "days": 3}"#);
/// assert_eq!(input, serde_json::json!({"city": "Oslo", "days": 3}));
/// #[derive(serde::Deserialize)]
/// struct Args { city: String }
/// assert_eq!(input.parse::<Args>()?.city, "Oslo");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct ToolInput(String);

/// Equal when the JSON values are equal (`{"a":1}` equals `{ "a": 1 }`): the same text
/// is compared as text, different texts are parsed.
impl PartialEq for ToolInput {
    fn eq(&self, other: &ToolInput) -> bool {
        self.0 == other.0 || self.to_value() == other.to_value()
    }
}

impl ToolInput {
    /// Checks that `text` is one JSON value (no tree is built) and keeps it.
    ///
    /// # Errors
    ///
    /// What serde_json says when it is not.
    pub fn from_json(text: String) -> Result<ToolInput, serde_json::Error> {
        serde_json::from_str::<de::IgnoredAny>(&text)?;
        Ok(ToolInput(text))
    }

    /// Text already checked to be one JSON value.
    pub(crate) fn checked(text: String) -> ToolInput {
        ToolInput(text)
    }

    /// `{}`: no arguments.
    pub fn empty_object() -> ToolInput {
        ToolInput("{}".to_owned())
    }

    /// The JSON text, as the model wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Parses the input into `T`.
    ///
    /// # Errors
    ///
    /// When the input does not have the shape of `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Parses the input into a [`Value`] tree.
    pub fn to_value(&self) -> Value {
        // The text was checked when this was made; `Null` cannot happen.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for ToolInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToolInput({})", self.0)
    }
}

impl fmt::Display for ToolInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Value> for ToolInput {
    fn from(v: Value) -> ToolInput {
        ToolInput(v.to_string())
    }
}

impl From<&Value> for ToolInput {
    fn from(v: &Value) -> ToolInput {
        ToolInput(v.to_string())
    }
}

/// Compares the parsed values (`{"a":1}` equals `{ "a": 1 }`).
impl PartialEq<Value> for ToolInput {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl Serialize for ToolInput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// Rebuilds the JSON text from whatever deserializer it comes through (serde's own
/// buffering, used by `flatten` and untagged variants, cannot carry a `RawValue`),
/// keeping the members in their order.
impl<'de> Deserialize<'de> for ToolInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        de::DeserializeSeed::deserialize(Transcode(&mut out), d)?;
        String::from_utf8(out)
            .map(ToolInput)
            .map_err(|_| de::Error::custom("tool input is not UTF-8"))
    }
}

/// Writes the JSON value it deserializes into a buffer.
struct Transcode<'o>(&'o mut Vec<u8>);

impl<'de> de::DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Transcode<'_> {
    fn write<T: Serialize + ?Sized, E: de::Error>(self, v: &T) -> Result<(), E> {
        serde_json::to_writer(&mut *self.0, v).map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.write(&v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.write(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Transcode(&mut *self.0))?.is_none() {
                if !first {
                    // Take back the comma written before the end was known.
                    self.0.pop();
                }
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !first {
                self.0.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *self.0, &*key).map_err(de::Error::custom)?;
            self.0.push(b':');
            map.next_value_seed(Transcode(&mut *self.0))?;
        }
        self.0.push(b'}');
        Ok(())
    }
}

/// `ToolResultBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultBlock {
    /// `toolUseId` of the call this answers.
    pub tool_use_id: String,
    /// `content`.
    pub content: Vec<ToolResultContentBlock>,
    /// `status`: `success` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Other members (`type`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One item of a tool result (`ToolResultContentBlock`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ToolResultContentBlock {
    /// `json`: a JSON document.
    Json(Value),
    /// `text`.
    Text(String),
    /// `image`.
    Image(ImageBlock),
    /// `document`.
    Document(DocumentBlock),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Extra),
}

/// `ImageBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    /// `format`: `png`, `jpeg`, `gif` or `webp`.
    pub format: String,
    /// `source`.
    pub source: MediaSource,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `DocumentBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentBlock {
    /// `format`: `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt` or `md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `name`.
    pub name: String,
    /// `source`.
    pub source: MediaSource,
    /// Other members (`context`, `citations`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ImageSource` / `DocumentSource`: where the bytes come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum MediaSource {
    /// `bytes`: inline data (base64 in JSON).
    Bytes(Blob),
    /// `s3Location`.
    S3Location(S3Location),
    /// `text` (documents only).
    Text(String),
    /// Any other kind (`content`, ...), as sent.
    #[serde(untagged)]
    Other(Extra),
}

/// `S3Location`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// `uri`.
    pub uri: String,
    /// `bucketOwner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_owner: Option<String>,
}

/// `ReasoningContentBlock`: reasoning text with its signature, or redacted reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ReasoningContentBlock {
    /// `reasoningText`.
    ReasoningText(ReasoningTextBlock),
    /// `redactedContent`: encrypted reasoning (base64 in JSON).
    RedactedContent(Blob),
    /// Any other kind, as sent.
    #[serde(untagged)]
    Other(Extra),
}

/// `ReasoningTextBlock`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasoningTextBlock {
    /// `text`.
    pub text: String,
    /// `signature`: send it back unchanged in the next request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// `CitationsContentBlock`: generated text and the sources it cites.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CitationsContentBlock {
    /// `content`: the generated text.
    #[serde(default)]
    pub content: Vec<CitationGeneratedContent>,
    /// `citations`.
    #[serde(default)]
    pub citations: Vec<Citation>,
}

/// `CitationGeneratedContent` (a union with one member today: `text`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CitationGeneratedContent {
    /// `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Citation` (also the payload of a streamed `citation` delta).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Citation {
    /// `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `sourceContent`: the cited passages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_content: Vec<CitationSourceContent>,
    /// `location` (a `CitationLocation` union such as `documentPage`), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Value>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `CitationSourceContent` (a union with one member today: `text`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CitationSourceContent {
    /// `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `CachePointBlock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachePointBlock {
    /// `type`: `default`.
    pub r#type: String,
    /// Other members (`ttl`, ...), as sent.
    #[serde(flatten)]
    pub extra: Extra,
}
