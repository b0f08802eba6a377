//! The JSON shapes of the native events, read with serde (borrowing strings that
//! hold no escapes), and the fast read of an event's `type`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::message::{AnthropicMessage, InvocationMetrics};
use crate::invoke::error::{EventOrder, InvokeError};

#[derive(Deserialize)]
pub(super) struct TypeWire<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) ty: Cow<'a, str>,
}

#[derive(Deserialize)]
pub(super) struct MessageStartWire {
    pub(super) message: AnthropicMessage,
}

#[derive(Deserialize)]
pub(super) struct BlockStartWire<'a> {
    pub(super) index: u32,
    #[serde(borrow)]
    pub(super) content_block: &'a RawValue,
}

#[derive(Deserialize)]
pub(super) struct BlockFieldsWire {
    #[serde(rename = "type")]
    pub(super) ty: String,
    #[serde(default)]
    pub(super) text: String,
    #[serde(default)]
    pub(super) citations: Option<Vec<Value>>,
    #[serde(default)]
    pub(super) id: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) input: Option<Value>,
    #[serde(default)]
    pub(super) thinking: String,
    #[serde(default)]
    pub(super) signature: String,
    #[serde(default)]
    pub(super) data: String,
}

#[derive(Deserialize)]
pub(super) struct BlockDeltaWire<'a> {
    pub(super) index: u32,
    #[serde(borrow)]
    pub(super) delta: DeltaWire<'a>,
}

/// A string that borrows from the input when it has no escapes. (serde borrows a
/// `Cow` field only when the field's type is the `Cow` itself, not `Option<Cow>`.)
#[derive(Deserialize)]
pub(super) struct CowStr<'a>(#[serde(borrow)] pub(super) Cow<'a, str>);

#[derive(Deserialize)]
pub(super) struct DeltaWire<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) ty: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) text: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    pub(super) partial_json: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    pub(super) thinking: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    pub(super) signature: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    pub(super) citation: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(super) struct BlockStopWire {
    pub(super) index: u32,
}

#[derive(Deserialize)]
pub(super) struct MessageDeltaWire<'a> {
    #[serde(default, borrow)]
    pub(super) delta: StopWire<'a>,
    #[serde(default)]
    pub(super) usage: Option<UsageDeltaWire>,
}

#[derive(Deserialize, Default)]
pub(super) struct StopWire<'a> {
    #[serde(default, borrow)]
    pub(super) stop_reason: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    pub(super) stop_sequence: Option<CowStr<'a>>,
}

/// The token counts of a `usage` object; every member optional (a `message_delta`
/// may carry only `output_tokens`).
#[derive(Deserialize, Default, Clone, Copy)]
pub(crate) struct UsageDeltaWire {
    #[serde(default)]
    pub(crate) input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) output_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct MessageStopWire {
    #[serde(default, rename = "amazon-bedrock-invocationMetrics")]
    pub(super) metrics: Option<InvocationMetrics>,
}

#[derive(Deserialize)]
pub(super) struct ErrorWire {
    pub(super) error: ErrorBodyWire,
}

#[derive(Deserialize)]
pub(super) struct ErrorBodyWire {
    #[serde(rename = "type", default)]
    pub(super) ty: String,
    #[serde(default)]
    pub(super) message: String,
}

/// The `type` of a native event: read from the usual `{"type":"..."` prefix without
/// a parse, else by serde.
pub(crate) fn event_type(event: &[u8]) -> Result<Cow<'_, str>, serde_json::Error> {
    const PREFIX: &[u8] = br#"{"type":""#;
    if let Some(rest) = event.strip_prefix(PREFIX) {
        if let Some(end) = memchr::memchr2(b'"', b'\\', rest) {
            if rest.get(end) == Some(&b'"') {
                if let Ok(s) = std::str::from_utf8(rest.get(..end).unwrap_or_default()) {
                    return Ok(Cow::Borrowed(s));
                }
            }
        }
    }
    serde_json::from_slice::<TypeWire<'_>>(event).map(|w| w.ty)
}

pub(super) fn invalid(event_type: &'static str) -> impl FnOnce(serde_json::Error) -> InvokeError {
    move |source| InvokeError::InvalidEvent { event_type, source }
}

pub(super) fn order(event_type: &'static str, index: Option<u32>, problem: EventOrder) -> InvokeError {
    InvokeError::OutOfOrder {
        event_type,
        index,
        problem,
    }
}
