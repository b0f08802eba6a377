//! [`StreamEvent`]: the typed members of the `ConverseStreamOutput` union, borrowed
//! from the frame they came in, and the serde shapes of their payloads.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::types::{
    Blob, Citation, ConverseMetrics, Extra, MediaSource, Role, StopReason, TokenUsage, ToolResultContentBlock,
};

/// One event of a ConverseStream.
///
/// Strings borrow from the frame's payload when the JSON string has no escapes. The
/// text, tool-input and reasoning strings of a delta that has escapes are decoded
/// straight into the assembler's buffer for their block and borrow from there, so
/// they are [`Cow::Borrowed`] too (an event can therefore borrow the assembler until
/// it is dropped); other escaped strings are [`Cow::Owned`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StreamEvent<'a> {
    /// `messageStart`.
    MessageStart {
        /// The message's role (always `assistant` in practice).
        role: Role,
    },
    /// `contentBlockStart` (sent before tool-use blocks; text blocks usually start
    /// with their first delta instead).
    ContentBlockStart {
        /// `contentBlockIndex`.
        index: u32,
        /// `start`.
        start: ContentBlockStart<'a>,
    },
    /// `contentBlockDelta`.
    ContentBlockDelta {
        /// `contentBlockIndex`.
        index: u32,
        /// `delta`.
        delta: ContentBlockDelta<'a>,
    },
    /// `contentBlockStop`.
    ContentBlockStop {
        /// `contentBlockIndex`.
        index: u32,
    },
    /// `messageStop`.
    MessageStop {
        /// `stopReason`.
        stop_reason: StopReason,
        /// `additionalModelResponseFields`, unparsed.
        additional_model_response_fields: Option<&'a RawValue>,
    },
    /// `metadata` (real streams send it after `messageStop`).
    Metadata {
        /// `usage`.
        usage: Option<TokenUsage>,
        /// `metrics`.
        metrics: Option<ConverseMetrics>,
        /// `trace`, unparsed.
        trace: Option<&'a RawValue>,
    },
    /// An event type this crate does not know, passed through.
    Unknown {
        /// The `:event-type` header.
        event_type: &'a str,
        /// The payload.
        payload: &'a [u8],
    },
}

/// The `start` of a `contentBlockStart` event.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ContentBlockStart<'a> {
    /// `toolUse`: a tool call begins; its input follows as deltas.
    ToolUse {
        /// `toolUseId`.
        tool_use_id: Cow<'a, str>,
        /// `name`.
        name: Cow<'a, str>,
        /// `type` (e.g. `server_tool_use`).
        r#type: Option<Cow<'a, str>>,
    },
    /// `toolResult`: the result of a server-side tool (e.g. web search) begins; its
    /// content follows as deltas.
    ToolResult {
        /// `toolUseId` of the call it answers.
        tool_use_id: Cow<'a, str>,
        /// `type`.
        r#type: Option<Cow<'a, str>>,
        /// `status`: `success` or `error`.
        status: Option<Cow<'a, str>>,
    },
    /// `image`: a generated image begins; its source follows as deltas.
    Image {
        /// `format`: `png`, `jpeg`, `gif` or `webp`.
        format: Cow<'a, str>,
    },
    /// An empty `start` (`{}`).
    Empty,
    /// Another kind, unparsed (kept in the assembled block as it arrived).
    Unknown {
        /// The member's name.
        kind: Cow<'a, str>,
        /// The member's value.
        value: &'a RawValue,
    },
}

/// The `delta` of a `contentBlockDelta` event.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ContentBlockDelta<'a> {
    /// `text`.
    Text(Cow<'a, str>),
    /// `toolUse.input`: a fragment of the tool call's JSON input.
    ToolUseInput(Cow<'a, str>),
    /// `reasoningContent.text`.
    ReasoningText(Cow<'a, str>),
    /// `reasoningContent.signature`.
    ReasoningSignature(Cow<'a, str>),
    /// `reasoningContent.redactedContent`, decoded from base64.
    ReasoningRedacted(Blob),
    /// `citation`.
    Citation(Box<Citation>),
    /// `toolResult`: content items (`text`, `json`) of a server tool's result.
    ToolResult(Vec<ToolResultContentBlock>),
    /// `image`: the image's `source` or an `error`.
    Image(Box<ImageDelta>),
    /// Another kind, unparsed; kept in the assembled response as it arrived.
    Unknown {
        /// The member's name.
        kind: Cow<'a, str>,
        /// The member's value.
        value: &'a RawValue,
    },
}

/// `ImageBlockDelta`: part of a generated image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageDelta {
    /// `source`: the image bytes (base64 in JSON) or its S3 location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MediaSource>,
    /// `error` (an `ErrorBlock`: `message`), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// Other members, as sent.
    #[serde(flatten)]
    pub extra: Extra,
}

// ===== impl Serialize =====

/// Writes an event as `{"<eventType>": payload}`, the JSON-lines form of recorded
/// streams (padding and unmodelled members are not included).
impl Serialize for StreamEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            StreamEvent::MessageStart { role } => {
                map.serialize_entry("messageStart", &RoleBody { role: *role })?
            }
            StreamEvent::ContentBlockStart { index, start } => {
                map.serialize_entry("contentBlockStart", &StartBody { index: *index, start })?
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                map.serialize_entry("contentBlockDelta", &DeltaBody { index: *index, delta })?
            }
            StreamEvent::ContentBlockStop { index } => {
                map.serialize_entry("contentBlockStop", &StopBody { index: *index })?
            }
            StreamEvent::MessageStop {
                stop_reason,
                additional_model_response_fields,
            } => map.serialize_entry(
                "messageStop",
                &MessageStopBody {
                    stop_reason,
                    additional_model_response_fields: *additional_model_response_fields,
                },
            )?,
            StreamEvent::Metadata {
                usage,
                metrics,
                trace,
            } => map.serialize_entry(
                "metadata",
                &MetadataBody {
                    usage: usage.as_ref(),
                    metrics: metrics.as_ref(),
                    trace: *trace,
                },
            )?,
            StreamEvent::Unknown { event_type, payload } => {
                // The payload as JSON when it is JSON, else as (lossy) text.
                match serde_json::from_slice::<&RawValue>(payload) {
                    Ok(raw) => map.serialize_entry(event_type, raw)?,
                    Err(_) => map.serialize_entry(event_type, &String::from_utf8_lossy(payload))?,
                }
            }
        }
        map.end()
    }
}

// The JSON bodies of the events, as Bedrock writes them.

#[derive(Serialize)]
struct RoleBody {
    role: Role,
}
#[derive(Serialize)]
struct StartBody<'b, 'a> {
    #[serde(rename = "contentBlockIndex")]
    index: u32,
    start: &'b ContentBlockStart<'a>,
}
#[derive(Serialize)]
struct DeltaBody<'b, 'a> {
    #[serde(rename = "contentBlockIndex")]
    index: u32,
    delta: &'b ContentBlockDelta<'a>,
}
#[derive(Serialize)]
struct StopBody {
    #[serde(rename = "contentBlockIndex")]
    index: u32,
}
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageStopBody<'b> {
    stop_reason: &'b StopReason,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_model_response_fields: Option<&'b RawValue>,
}
#[derive(Serialize)]
struct MetadataBody<'b> {
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'b TokenUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<&'b ConverseMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'b RawValue>,
}

impl Serialize for ContentBlockStart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ToolUseBody<'b> {
            tool_use_id: &'b str,
            name: &'b str,
            #[serde(skip_serializing_if = "Option::is_none")]
            r#type: Option<&'b str>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ToolResultBody<'b> {
            tool_use_id: &'b str,
            #[serde(skip_serializing_if = "Option::is_none")]
            r#type: Option<&'b str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<&'b str>,
        }
        #[derive(Serialize)]
        struct ImageBody<'b> {
            format: &'b str,
        }
        let mut map = s.serialize_map(None)?;
        match self {
            ContentBlockStart::ToolUse {
                tool_use_id,
                name,
                r#type,
            } => map.serialize_entry(
                "toolUse",
                &ToolUseBody {
                    tool_use_id,
                    name,
                    r#type: r#type.as_deref(),
                },
            )?,
            ContentBlockStart::ToolResult {
                tool_use_id,
                r#type,
                status,
            } => map.serialize_entry(
                "toolResult",
                &ToolResultBody {
                    tool_use_id,
                    r#type: r#type.as_deref(),
                    status: status.as_deref(),
                },
            )?,
            ContentBlockStart::Image { format } => map.serialize_entry("image", &ImageBody { format })?,
            ContentBlockStart::Empty => {}
            ContentBlockStart::Unknown { kind, value } => map.serialize_entry(kind, value)?,
        }
        map.end()
    }
}

impl Serialize for ContentBlockDelta<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct InputBody<'b> {
            input: &'b str,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        enum ReasoningBody<'b> {
            Text(&'b str),
            Signature(&'b str),
            RedactedContent(&'b Blob),
        }
        let mut map = s.serialize_map(Some(1))?;
        match self {
            ContentBlockDelta::Text(t) => map.serialize_entry("text", t)?,
            ContentBlockDelta::ToolUseInput(t) => map.serialize_entry("toolUse", &InputBody { input: t })?,
            ContentBlockDelta::ReasoningText(t) => {
                map.serialize_entry("reasoningContent", &ReasoningBody::Text(t))?
            }
            ContentBlockDelta::ReasoningSignature(t) => {
                map.serialize_entry("reasoningContent", &ReasoningBody::Signature(t))?
            }
            ContentBlockDelta::ReasoningRedacted(b) => {
                map.serialize_entry("reasoningContent", &ReasoningBody::RedactedContent(b))?
            }
            ContentBlockDelta::Citation(c) => map.serialize_entry("citation", c)?,
            ContentBlockDelta::ToolResult(items) => map.serialize_entry("toolResult", items)?,
            ContentBlockDelta::Image(image) => map.serialize_entry("image", image)?,
            ContentBlockDelta::Unknown { kind, value } => map.serialize_entry(kind, value)?,
        }
        map.end()
    }
}

// ===== payload shapes =====

/// A JSON string that borrows from the input when it has no escapes.
pub(crate) struct CowStr<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

#[derive(Deserialize)]
pub(crate) struct MessageStartWire {
    pub(crate) role: Role,
}

#[derive(Deserialize)]
pub(crate) struct BlockStartWire<'a> {
    #[serde(rename = "contentBlockIndex")]
    pub(crate) index: u32,
    #[serde(borrow)]
    pub(crate) start: StartWire<'a>,
}

#[derive(Deserialize)]
pub(crate) struct BlockDeltaWire<'a> {
    #[serde(rename = "contentBlockIndex")]
    pub(crate) index: u32,
    #[serde(borrow)]
    pub(crate) delta: DeltaWire<'a>,
}

#[derive(Deserialize)]
pub(crate) struct BlockStopWire {
    #[serde(rename = "contentBlockIndex")]
    pub(crate) index: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageStopWire<'a> {
    pub(crate) stop_reason: StopReason,
    #[serde(borrow, default)]
    pub(crate) additional_model_response_fields: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetadataWire<'a> {
    #[serde(default)]
    pub(crate) usage: Option<TokenUsage>,
    #[serde(default)]
    pub(crate) metrics: Option<ConverseMetrics>,
    #[serde(borrow, default)]
    pub(crate) trace: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(crate) performance_config: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(crate) service_tier: Option<&'a RawValue>,
}

/// Reads just `contentBlockIndex` (for error context when the rest is malformed).
#[derive(Deserialize)]
pub(crate) struct IndexOnly {
    #[serde(rename = "contentBlockIndex")]
    pub(crate) index: u32,
}

/// Reads a one-member union object: calls `member` for known names; other names give
/// `unknown(name, raw)` if no known member came. Used for `start`, `delta` and
/// `reasoningContent`.
fn visit_union<'de, A, T>(
    mut map: A,
    mut member: impl FnMut(&str, &mut A) -> Result<Option<T>, A::Error>,
    unknown: impl Fn(Cow<'de, str>, &'de RawValue) -> T,
) -> Result<Option<T>, A::Error>
where
    A: MapAccess<'de>,
{
    let mut known: Option<T> = None;
    let mut other: Option<T> = None;
    while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
        match member(&key, &mut map)? {
            Some(v) => known = Some(v),
            None => {
                if other.is_none() && known.is_none() {
                    let raw: &'de RawValue = map.next_value()?;
                    other = Some(unknown(key, raw));
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
    }
    Ok(known.or(other))
}

pub(crate) struct StartWire<'a>(pub(crate) ContentBlockStart<'a>);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUseStartWire<'a> {
    #[serde(borrow)]
    tool_use_id: CowStrField<'a>,
    #[serde(borrow)]
    name: CowStrField<'a>,
    #[serde(borrow, default)]
    r#type: Option<CowStrField<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolResultStartWire<'a> {
    #[serde(borrow)]
    tool_use_id: CowStrField<'a>,
    #[serde(borrow, default)]
    r#type: Option<CowStrField<'a>>,
    #[serde(borrow, default)]
    status: Option<CowStrField<'a>>,
}

#[derive(Deserialize)]
struct ImageStartWire<'a> {
    #[serde(borrow)]
    format: CowStrField<'a>,
}

/// [`CowStr`] as a derive-friendly field.
#[derive(Deserialize)]
#[serde(transparent)]
struct CowStrField<'a>(#[serde(borrow)] CowStr<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for StartWire<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = StartWire<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ContentBlockStart object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let start = visit_union(
                    map,
                    |key, map: &mut A| {
                        Ok(Some(match key {
                            "toolUse" => {
                                let t: ToolUseStartWire<'de> = map.next_value()?;
                                ContentBlockStart::ToolUse {
                                    tool_use_id: t.tool_use_id.0 .0,
                                    name: t.name.0 .0,
                                    r#type: t.r#type.map(|t| t.0 .0),
                                }
                            }
                            "toolResult" => {
                                let t: ToolResultStartWire<'de> = map.next_value()?;
                                ContentBlockStart::ToolResult {
                                    tool_use_id: t.tool_use_id.0 .0,
                                    r#type: t.r#type.map(|t| t.0 .0),
                                    status: t.status.map(|t| t.0 .0),
                                }
                            }
                            "image" => {
                                let t: ImageStartWire<'de> = map.next_value()?;
                                ContentBlockStart::Image {
                                    format: t.format.0 .0,
                                }
                            }
                            _ => return Ok(None),
                        }))
                    },
                    |kind, value| ContentBlockStart::Unknown { kind, value },
                )?;
                Ok(StartWire(start.unwrap_or(ContentBlockStart::Empty)))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

pub(crate) struct DeltaWire<'a>(pub(crate) ContentBlockDelta<'a>);

#[derive(Deserialize)]
struct ToolUseDeltaWire<'a> {
    #[serde(borrow)]
    input: CowStrField<'a>,
}

struct ReasoningWire<'a>(ContentBlockDelta<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for ReasoningWire<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ReasoningWire<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ReasoningContentBlockDelta object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let delta = visit_union(
                    map,
                    |key, map: &mut A| {
                        Ok(Some(match key {
                            "text" => ContentBlockDelta::ReasoningText(map.next_value::<CowStr<'de>>()?.0),
                            "signature" => {
                                ContentBlockDelta::ReasoningSignature(map.next_value::<CowStr<'de>>()?.0)
                            }
                            "redactedContent" => ContentBlockDelta::ReasoningRedacted(map.next_value()?),
                            _ => return Ok(None),
                        }))
                    },
                    |kind, value| ContentBlockDelta::Unknown { kind, value },
                )?;
                delta
                    .map(ReasoningWire)
                    .ok_or_else(|| de::Error::custom("reasoningContent delta has no member"))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for DeltaWire<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = DeltaWire<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ContentBlockDelta object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let delta = visit_union(
                    map,
                    |key, map: &mut A| {
                        Ok(Some(match key {
                            "text" => ContentBlockDelta::Text(map.next_value::<CowStr<'de>>()?.0),
                            "toolUse" => {
                                let t: ToolUseDeltaWire<'de> = map.next_value()?;
                                ContentBlockDelta::ToolUseInput(t.input.0 .0)
                            }
                            "reasoningContent" => {
                                let raw: &'de RawValue = map.next_value()?;
                                match serde_json::from_str::<ReasoningWire<'de>>(raw.get())
                                    .map_err(de::Error::custom)?
                                    .0
                                {
                                    // A member unknown inside `reasoningContent` is kept
                                    // with that nesting, as it arrived.
                                    ContentBlockDelta::Unknown { .. } => ContentBlockDelta::Unknown {
                                        kind: Cow::Borrowed("reasoningContent"),
                                        value: raw,
                                    },
                                    known => known,
                                }
                            }
                            "citation" => ContentBlockDelta::Citation(Box::new(map.next_value()?)),
                            "toolResult" => ContentBlockDelta::ToolResult(map.next_value()?),
                            "image" => ContentBlockDelta::Image(Box::new(map.next_value()?)),
                            _ => return Ok(None),
                        }))
                    },
                    |kind, value| ContentBlockDelta::Unknown { kind, value },
                )?;
                delta
                    .map(DeltaWire)
                    .ok_or_else(|| de::Error::custom("delta has no member"))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_delta_borrows_unless_escaped() {
        let w: BlockDeltaWire<'_> =
            serde_json::from_slice(br#"{"p":"abc","contentBlockIndex":3,"delta":{"text":"plain"}}"#).unwrap();
        assert_eq!(w.index, 3);
        assert!(matches!(
            w.delta.0,
            ContentBlockDelta::Text(Cow::Borrowed("plain"))
        ));
        let w: BlockDeltaWire<'_> =
            serde_json::from_slice(br#"{"contentBlockIndex":0,"delta":{"text":"a\nb\u00e9"}}"#).unwrap();
        assert!(matches!(w.delta.0, ContentBlockDelta::Text(Cow::Owned(ref s)) if s == "a\nbé"));
    }

    #[test]
    fn unknown_delta_passes_through() {
        let w: BlockDeltaWire<'_> =
            serde_json::from_slice(br#"{"contentBlockIndex":0,"delta":{"video":{"x":1}}}"#).unwrap();
        match w.delta.0 {
            ContentBlockDelta::Unknown { kind, value } => {
                assert_eq!(kind, "video");
                assert_eq!(value.get(), r#"{"x":1}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_shapes() {
        let w: BlockStartWire<'_> = serde_json::from_slice(
            br#"{"contentBlockIndex":1,"start":{"toolUse":{"name":"f","toolUseId":"id","type":"server_tool_use"}}}"#,
        )
        .unwrap();
        match w.start.0 {
            ContentBlockStart::ToolUse {
                tool_use_id,
                name,
                r#type,
            } => {
                assert_eq!(
                    (&*tool_use_id, &*name, r#type.as_deref()),
                    ("id", "f", Some("server_tool_use"))
                );
            }
            other => panic!("{other:?}"),
        }
        let w: BlockStartWire<'_> = serde_json::from_slice(br#"{"contentBlockIndex":0,"start":{}}"#).unwrap();
        assert!(matches!(w.start.0, ContentBlockStart::Empty));
    }
}
