//! "Which event is this frame?": the fast paths over Bedrock's usual event layout, and
//! the walk that answers for any other.

use super::names;
use super::read::{split_at_checked, RawHeaders};
use super::scan::{equal, is_ascii};
use super::type_byte;

/// The headers of a Bedrock (and most AWS) event frame start with this: the name
/// `:event-type`, the string type byte and the high byte of the value's length...
const EVENT_HEAD: &[u8] = b"\x0b:event-type\x07\x00";

/// ...and, after the event type's value, end with this: `:content-type:
/// application/json`, `:message-type: event`.
const EVENT_TAIL: &[u8] = b"\x0d:content-type\x07\x00\x10application/json\x0d:message-type\x07\x00\x05event";

/// Whether `section` is exactly `:event-type` (an ASCII string),
/// `:content-type: application/json`, `:message-type: event`: every event frame of a
/// Converse stream. Two comparisons with constants and an ASCII check of the event
/// type, instead of a walk whose every step waits on the length before it.
#[inline]
pub(super) fn is_common_event_section(section: &[u8]) -> bool {
    common_event_type_bytes(section).is_some_and(is_ascii)
}

/// The raw `:event-type` value of a section laid out as every Bedrock event frame is
/// (see [`is_common_event_section`]), without checking the value's bytes.
#[inline(always)]
fn common_event_type_bytes(section: &[u8]) -> Option<&[u8]> {
    let (&len, rest) = section.strip_prefix(EVENT_HEAD)?.split_first()?;
    let (event_type, tail) = split_at_checked(rest, usize::from(len))?;
    equal(tail, EVENT_TAIL).then_some(event_type)
}

/// The `:event-type` of a *validated* section with Bedrock's usual event layout:
/// `:event-type`, `:content-type: application/json`, `:message-type: event`, in that
/// order. Two comparisons with constants; `None` for any other layout.
#[inline]
fn common_event_type(section: &[u8]) -> Option<&str> {
    common_event_type_bytes(section).and_then(known_str)
}

/// `bytes` as a `str`: the event and message type names Bedrock sends are matched as
/// literals (a length switch and one comparison), anything else is checked.
#[inline(always)]
fn known_str(bytes: &[u8]) -> Option<&str> {
    Some(match bytes {
        b"contentBlockDelta" => "contentBlockDelta",
        b"contentBlockStop" => "contentBlockStop",
        b"contentBlockStart" => "contentBlockStart",
        b"messageStart" => "messageStart",
        b"messageStop" => "messageStop",
        b"metadata" => "metadata",
        b"event" => names::EVENT,
        b"exception" => names::EXCEPTION,
        b"error" => names::ERROR,
        other => return std::str::from_utf8(other).ok(),
    })
}

/// What a frame is, by its `:message-type` (see [`FrameKind`]), read from a validated
/// headers section: the common event layout by two comparisons, anything else by one
/// walk over the raw headers that decodes only the values it needs.
#[inline]
pub(crate) fn kind(section: &[u8]) -> FrameKind<'_> {
    match common_event_type(section) {
        Some(event_type) => FrameKind::Event { event_type },
        None => kind_walk(section),
    }
}

#[inline(never)]
fn kind_walk(section: &[u8]) -> FrameKind<'_> {
    let (mut message_type, mut event_type, mut exception_type, mut code, mut message) =
        (None, None, None, None, None);
    for (name, ty, value) in RawHeaders(section) {
        if ty != type_byte::STRING {
            continue;
        }
        let slot = match name {
            b":message-type" => &mut message_type,
            b":event-type" => &mut event_type,
            b":exception-type" => &mut exception_type,
            b":error-code" => &mut code,
            b":error-message" => &mut message,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    fn text(v: Option<&[u8]>) -> Option<&str> {
        v.and_then(|v| v.get(2..)).and_then(known_str)
    }
    match text(message_type) {
        Some(names::EVENT) => match text(event_type) {
            Some(event_type) => FrameKind::Event { event_type },
            None => FrameKind::Other {
                message_type: Some(names::EVENT),
            },
        },
        Some(names::EXCEPTION) => FrameKind::Exception {
            exception_type: text(exception_type),
        },
        Some(names::ERROR) => FrameKind::Error {
            code: text(code),
            message: text(message),
        },
        message_type => FrameKind::Other { message_type },
    }
}

/// The string value of the first header called `name` in a validated section, if it
/// is a string: the common event layout answers `:event-type`, `:message-type` and
/// `:content-type` by two comparisons, anything else by a walk comparing raw names.
#[inline]
pub(crate) fn find_str<'a>(section: &'a [u8], name: &str) -> Option<&'a str> {
    if let Some(event_type) = common_event_type(section) {
        return match name {
            names::EVENT_TYPE => Some(event_type),
            names::MESSAGE_TYPE => Some(names::EVENT),
            names::CONTENT_TYPE => Some(names::APPLICATION_JSON),
            _ => None,
        };
    }
    let (ty, value) = RawHeaders(section).find_map(|(n, ty, v)| (n == name.as_bytes()).then_some((ty, v)))?;
    (ty == type_byte::STRING)
        .then(|| value.get(2..).and_then(known_str))
        .flatten()
}

/// What kind of frame this is, by its `:message-type` header.
///
/// Returned by [`Frame::kind`](crate::eventstream::Frame::kind) and
/// [`Message::kind`](crate::eventstream::Message::kind); the strings borrow from the frame.
///
/// # Examples
///
/// ```
/// use bedrock_converse::eventstream::{FrameKind, MessageBuilder};
///
/// let msg = MessageBuilder::new()
///     .string_header(":event-type", "contentBlockDelta")
///     .string_header(":content-type", "application/json")
///     .string_header(":message-type", "event")
///     .build(b"{}")?;
/// assert_eq!(msg.kind(), FrameKind::Event { event_type: "contentBlockDelta" });
///
/// let msg = MessageBuilder::new()
///     .string_header(":exception-type", "throttlingException")
///     .string_header(":message-type", "exception")
///     .build(b"{}")?;
/// assert_eq!(msg.kind(), FrameKind::Exception { exception_type: Some("throttlingException") });
/// # Ok::<(), bedrock_converse::eventstream::EventStreamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameKind<'a> {
    /// `:message-type: event` with an `:event-type` string header.
    Event {
        /// The `:event-type` (for example `contentBlockDelta`).
        event_type: &'a str,
    },
    /// `:message-type: exception`: a modelled service exception.
    Exception {
        /// The `:exception-type` (for example `throttlingException`), if present.
        exception_type: Option<&'a str>,
    },
    /// `:message-type: error`: an unmodelled error.
    Error {
        /// The `:error-code`, if present.
        code: Option<&'a str>,
        /// The `:error-message`, if present.
        message: Option<&'a str>,
    },
    /// Anything else: no `:message-type`, one this layer does not know, or an `event`
    /// without an `:event-type` (then `message_type` is `Some("event")`).
    Other {
        /// The `:message-type` string, if present.
        message_type: Option<&'a str>,
    },
}

#[cfg(test)]
mod tests {
    use super::super::read::{validate_detailed, Headers};
    use super::super::value::HeaderValue;
    use super::super::write::encode;
    use super::*;

    #[test]
    fn layout_literals_spell_the_names() {
        let event = encode(&[
            (names::EVENT_TYPE, HeaderValue::String("x")),
            (names::CONTENT_TYPE, HeaderValue::String(names::APPLICATION_JSON)),
            (names::MESSAGE_TYPE, HeaderValue::String(names::EVENT)),
        ]);
        assert_eq!(&event[..EVENT_HEAD.len()], EVENT_HEAD);
        assert_eq!(&event[EVENT_HEAD.len() + 2..], EVENT_TAIL);
        assert_eq!(event[EVENT_HEAD.len()], 1);
    }

    #[test]
    fn kind_fast_path_agrees_with_the_walk() {
        let common = encode(&[
            (names::EVENT_TYPE, HeaderValue::String("contentBlockDelta")),
            (names::CONTENT_TYPE, HeaderValue::String(names::APPLICATION_JSON)),
            (names::MESSAGE_TYPE, HeaderValue::String(names::EVENT)),
        ]);
        let want = FrameKind::Event {
            event_type: "contentBlockDelta",
        };
        assert_eq!(kind(&common), want);
        assert_eq!(kind_walk(&common), want);
        assert_eq!(find_str(&common, names::CONTENT_TYPE), Some("application/json"));
        assert_eq!(find_str(&common, names::EXCEPTION_TYPE), None);
        // Every single-byte change the validator accepts: the fast path answers as the
        // walk does, or not at all.
        for at in 0..common.len() {
            for byte in [0u8, 7, b'a', b'e', 0x7f] {
                let mut other = common.clone();
                other[at] = byte;
                if validate_detailed(&other, 0).is_err() {
                    continue;
                }
                assert_eq!(kind(&other), kind_walk(&other), "byte {byte:#x} at {at}");
                for name in [names::EVENT_TYPE, names::MESSAGE_TYPE, names::CONTENT_TYPE] {
                    let slow = Headers::new(&other).find_map(|(n, v)| (n == name).then_some(v));
                    assert_eq!(
                        find_str(&other, name),
                        slow.and_then(|v| v.as_str()),
                        "{name}, at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn kinds_of_other_frames() {
        let section = |headers: &[(&str, HeaderValue<'_>)]| encode(headers);
        let s = section(&[
            (names::MESSAGE_TYPE, HeaderValue::String(names::EXCEPTION)),
            (names::EXCEPTION_TYPE, HeaderValue::String("throttlingException")),
        ]);
        assert_eq!(
            kind(&s),
            FrameKind::Exception {
                exception_type: Some("throttlingException")
            }
        );
        let s = section(&[
            (names::ERROR_MESSAGE, HeaderValue::String("boom")),
            (names::ERROR_CODE, HeaderValue::String("InternalError")),
            (names::MESSAGE_TYPE, HeaderValue::String(names::ERROR)),
        ]);
        assert_eq!(
            kind(&s),
            FrameKind::Error {
                code: Some("InternalError"),
                message: Some("boom")
            }
        );
        let s = section(&[(names::MESSAGE_TYPE, HeaderValue::String(names::EVENT))]);
        assert_eq!(
            kind(&s),
            FrameKind::Other {
                message_type: Some("event")
            }
        );
        // A non-string `:event-type` is no event type; the first of two counts.
        let s = section(&[
            (names::EVENT_TYPE, HeaderValue::Int32(1)),
            (names::MESSAGE_TYPE, HeaderValue::String("ping")),
            (names::MESSAGE_TYPE, HeaderValue::String(names::EVENT)),
        ]);
        assert_eq!(
            kind(&s),
            FrameKind::Other {
                message_type: Some("ping")
            }
        );
        assert_eq!(find_str(&s, names::EVENT_TYPE), None);
        assert_eq!(
            Headers::new(&s).get(names::EVENT_TYPE),
            Some(HeaderValue::Int32(1))
        );
        assert_eq!(kind(&[]), FrameKind::Other { message_type: None });
    }
}
