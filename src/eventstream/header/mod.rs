//! Header values, and validation, iteration and encoding of a frame's headers section.
//!
//! - [`value`]: [`HeaderValue`], the ten value types, and how long each is on the wire;
//! - [`read`]: validating a section once per frame, then iterating it ([`Headers`]);
//! - [`write`](mod@write): encoding one header;
//! - [`kind`](mod@kind): the fast paths that answer "which event is this frame?" ([`FrameKind`]);
//! - [`scan`]: the word-at-a-time byte comparisons those fast paths use.
//!
//! ```text
//! +-------------+------------------+-----------+----------------------------------+
//! | name length |  name (UTF-8)    | type byte | value (fixed size, or u16 length |
//! |    u8       |  1..=255 bytes   |   0..=9   |  + bytes for types 6 and 7)      |
//! +-------------+------------------+-----------+----------------------------------+
//! ```

/// Wire type byte of each header value type.
mod type_byte {
    pub(super) const BOOL_TRUE: u8 = 0;
    pub(super) const BOOL_FALSE: u8 = 1;
    pub(super) const BYTE: u8 = 2;
    pub(super) const INT16: u8 = 3;
    pub(super) const INT32: u8 = 4;
    pub(super) const INT64: u8 = 5;
    pub(super) const BYTE_ARRAY: u8 = 6;
    pub(super) const STRING: u8 = 7;
    pub(super) const TIMESTAMP: u8 = 8;
    pub(super) const UUID: u8 = 9;
}

/// The names of the headers the event-stream protocol defines, and the values of
/// `:message-type`.
///
/// Every layer that looks for one of these headers spells it with these constants;
/// the fast paths below compare whole encoded headers built from the same names (a
/// unit test checks that the two agree).
pub mod names {
    /// `:event-type`: which event of the stream's union this frame carries.
    pub const EVENT_TYPE: &str = ":event-type";
    /// `:message-type`: [`EVENT`], [`EXCEPTION`] or [`ERROR`].
    pub const MESSAGE_TYPE: &str = ":message-type";
    /// `:exception-type`: the modelled exception an `exception` frame carries.
    pub const EXCEPTION_TYPE: &str = ":exception-type";
    /// `:content-type`: the payload's media type.
    pub const CONTENT_TYPE: &str = ":content-type";
    /// `:error-code`: the code of an `error` frame.
    pub const ERROR_CODE: &str = ":error-code";
    /// `:error-message`: the message of an `error` frame.
    pub const ERROR_MESSAGE: &str = ":error-message";
    /// `:message-type` of an event frame.
    pub const EVENT: &str = "event";
    /// `:message-type` of a modelled exception frame.
    pub const EXCEPTION: &str = "exception";
    /// `:message-type` of an unmodelled error frame.
    pub const ERROR: &str = "error";
    /// The `:content-type` of every Bedrock frame.
    pub const APPLICATION_JSON: &str = "application/json";
}

mod kind;
mod read;
mod scan;
mod value;
mod write;

pub use kind::FrameKind;
pub(crate) use kind::{find_str, kind};
pub(crate) use read::validate;
pub use read::Headers;
pub use value::HeaderValue;
pub(crate) use write::{check_encodable, write_header};
