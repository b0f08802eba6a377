//! One content block while it is assembled: what it holds, which deltas it accepts,
//! how a delta applies, and the finished blocks it becomes.

use serde::de::IgnoredAny;
use serde_json::Value;

use super::super::error::BlockKind;
use super::super::event::ContentBlockDelta;
use super::super::json::FastKind;
use super::super::json_check::{self, ValueCheck};
use super::super::types::{
    Blob, Citation, CitationGeneratedContent, CitationsContentBlock, ContentBlock, Extra, ImageBlock,
    MediaSource, ReasoningContentBlock, ReasoningTextBlock, ToolInput, ToolResultBlock,
    ToolResultContentBlock, ToolUseBlock,
};
use super::BLOCK_CAPACITY;

/// How many new bytes of a tool call's input are checked at once: the check then
/// resumes a few times per call, not once per fragment, and `contentBlockStop` reads
/// at most this much (plus a token cut at the end of the last batch).
const TOOL_CHECK_BATCH: usize = 1024;

/// One content block being assembled.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Block {
    pub(super) index: u32,
    pub(super) stopped: bool,
    pub(super) content: BlockContent,
    /// Start and delta members this crate does not know, by name, in arrival order.
    pub(super) unknown: Vec<(String, Vec<Value>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum BlockContent {
    /// Started with an empty or unknown `start`, no assembled delta yet.
    Empty,
    Text(String),
    ToolUse {
        tool_use_id: String,
        name: String,
        r#type: Option<String>,
        /// The concatenated input fragments.
        input: String,
        /// The JSON check of `input`, fed each fragment as it is appended, so that
        /// `contentBlockStop` does not walk the input again.
        check: ValueCheck,
        /// Set at `contentBlockStop`, once `input` is known to be one JSON value.
        checked: bool,
    },
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    Redacted(Vec<u8>),
    Citations {
        text: String,
        citations: Vec<Citation>,
    },
    ToolResult {
        tool_use_id: String,
        r#type: Option<String>,
        status: Option<String>,
        content: Vec<ToolResultContentBlock>,
    },
    Image {
        format: String,
        /// Concatenated `source.bytes`.
        bytes: Vec<u8>,
        /// A `source` other than bytes (`s3Location`, ...).
        source: Option<MediaSource>,
        error: Option<Value>,
    },
}

/// What a delta is, for the kind checks done before anything changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeltaKind {
    Text,
    ToolInput,
    ReasoningText,
    ReasoningSignature,
    Redacted,
    Citation,
    ToolResult,
    Image,
    Unknown,
}

impl DeltaKind {
    #[inline]
    pub(super) fn of(delta: &ContentBlockDelta<'_>) -> DeltaKind {
        match delta {
            ContentBlockDelta::Text(_) => DeltaKind::Text,
            ContentBlockDelta::ToolUseInput(_) => DeltaKind::ToolInput,
            ContentBlockDelta::ReasoningText(_) => DeltaKind::ReasoningText,
            ContentBlockDelta::ReasoningSignature(_) => DeltaKind::ReasoningSignature,
            ContentBlockDelta::ReasoningRedacted(_) => DeltaKind::Redacted,
            ContentBlockDelta::Citation(_) => DeltaKind::Citation,
            ContentBlockDelta::ToolResult(_) => DeltaKind::ToolResult,
            ContentBlockDelta::Image(_) => DeltaKind::Image,
            ContentBlockDelta::Unknown { .. } => DeltaKind::Unknown,
        }
    }

    #[inline]
    pub(super) fn fast(kind: FastKind) -> DeltaKind {
        match kind {
            FastKind::Text => DeltaKind::Text,
            FastKind::ToolInput => DeltaKind::ToolInput,
            FastKind::ReasoningText => DeltaKind::ReasoningText,
            FastKind::ReasoningSignature => DeltaKind::ReasoningSignature,
        }
    }

    /// The block kind this delta builds (for error messages).
    #[inline]
    pub(super) fn block_kind(self) -> BlockKind {
        match self {
            DeltaKind::Text => BlockKind::Text,
            DeltaKind::ToolInput => BlockKind::ToolUse,
            DeltaKind::ReasoningText | DeltaKind::ReasoningSignature => BlockKind::ReasoningText,
            DeltaKind::Redacted => BlockKind::RedactedReasoning,
            DeltaKind::Citation => BlockKind::Citations,
            DeltaKind::ToolResult => BlockKind::ToolResult,
            DeltaKind::Image => BlockKind::Image,
            DeltaKind::Unknown => BlockKind::Other,
        }
    }
}

impl BlockContent {
    #[inline]
    pub(super) fn kind(&self) -> BlockKind {
        match self {
            BlockContent::Empty => BlockKind::Empty,
            BlockContent::Text(_) => BlockKind::Text,
            BlockContent::ToolUse { .. } => BlockKind::ToolUse,
            BlockContent::Reasoning { .. } => BlockKind::ReasoningText,
            BlockContent::Redacted(_) => BlockKind::RedactedReasoning,
            BlockContent::Citations { .. } => BlockKind::Citations,
            BlockContent::ToolResult { .. } => BlockKind::ToolResult,
            BlockContent::Image { .. } => BlockKind::Image,
        }
    }

    /// Whether a delta of `kind` may be added to this block.
    #[inline]
    pub(super) fn accepts(&self, kind: DeltaKind) -> bool {
        matches!(
            (self, kind),
            (_, DeltaKind::Unknown)
                | (
                    BlockContent::Empty,
                    DeltaKind::Text
                        | DeltaKind::ReasoningText
                        | DeltaKind::ReasoningSignature
                        | DeltaKind::Redacted
                        | DeltaKind::Citation
                        | DeltaKind::ToolResult
                        | DeltaKind::Image
                )
                | (
                    BlockContent::Text(_) | BlockContent::Citations { .. },
                    DeltaKind::Text | DeltaKind::Citation
                )
                | (BlockContent::ToolUse { .. }, DeltaKind::ToolInput)
                | (
                    BlockContent::Reasoning { .. },
                    DeltaKind::ReasoningText | DeltaKind::ReasoningSignature
                )
                | (BlockContent::Redacted(_), DeltaKind::Redacted)
                | (BlockContent::ToolResult { .. }, DeltaKind::ToolResult)
                | (BlockContent::Image { .. }, DeltaKind::Image)
        )
    }

    /// The string buffer a string delta of `kind` appends to, turning an empty block
    /// into the right kind first. `None` if the block does not take such a delta
    /// (checked with [`accepts`](Self::accepts) before).
    #[inline]
    pub(super) fn buffer(&mut self, kind: FastKind) -> Option<&mut String> {
        if matches!(self, BlockContent::Empty) {
            *self = match kind {
                FastKind::Text => BlockContent::Text(String::with_capacity(BLOCK_CAPACITY)),
                FastKind::ReasoningText => BlockContent::Reasoning {
                    text: String::with_capacity(BLOCK_CAPACITY),
                    signature: None,
                },
                FastKind::ReasoningSignature => BlockContent::Reasoning {
                    text: String::new(),
                    signature: None,
                },
                FastKind::ToolInput => return None,
            };
        }
        match (self, kind) {
            (BlockContent::Text(s) | BlockContent::Citations { text: s, .. }, FastKind::Text)
            | (BlockContent::ToolUse { input: s, .. }, FastKind::ToolInput)
            | (BlockContent::Reasoning { text: s, .. }, FastKind::ReasoningText) => Some(s),
            (BlockContent::Reasoning { signature, .. }, FastKind::ReasoningSignature) => {
                Some(signature.get_or_insert_with(String::new))
            }
            _ => None,
        }
    }

    /// Feeds what a tool call's input has grown by to its JSON check, a batch at a
    /// time ([`TOOL_CHECK_BATCH`]). Nothing for other blocks. Not inlined: in the
    /// delta handler it would cost the text deltas that never call it (register
    /// spills: about 20 instructions per text delta in callgrind).
    #[inline(never)]
    pub(super) fn catch_up_check(&mut self) {
        if let BlockContent::ToolUse { input, check, .. } = self {
            check.catch_up(input, TOOL_CHECK_BATCH);
        }
    }

    /// Whether a tool call's input is known to be one JSON value: stopped, or its
    /// check accepts what came so far. `false` for other blocks.
    #[inline]
    pub(super) fn tool_input_ok(&self) -> bool {
        match self {
            BlockContent::ToolUse {
                input,
                check,
                checked,
                ..
            } => *checked || check.accepts_all(input),
            _ => false,
        }
    }

    /// The string buffer of a block that took string deltas of `kind`.
    #[inline]
    pub(super) fn buffer_ref(&self, kind: FastKind) -> Option<&String> {
        match (self, kind) {
            (BlockContent::Text(s) | BlockContent::Citations { text: s, .. }, FastKind::Text)
            | (BlockContent::ToolUse { input: s, .. }, FastKind::ToolInput)
            | (BlockContent::Reasoning { text: s, .. }, FastKind::ReasoningText) => Some(s),
            (BlockContent::Reasoning { signature, .. }, FastKind::ReasoningSignature) => signature.as_ref(),
            _ => None,
        }
    }

    /// Adds a delta that [`accepts`](Self::accepts) allowed (unknown members go to
    /// the block's `unknown` list instead).
    #[inline]
    pub(super) fn apply(&mut self, delta: &ContentBlockDelta<'_>) {
        let string = |kind: FastKind, content: &mut BlockContent, s: &str| {
            if let Some(buf) = content.buffer(kind) {
                buf.push_str(s);
            }
        };
        match delta {
            ContentBlockDelta::Text(t) => string(FastKind::Text, self, t),
            ContentBlockDelta::ToolUseInput(t) => {
                string(FastKind::ToolInput, self, t);
                self.catch_up_check();
            }
            ContentBlockDelta::ReasoningText(t) => string(FastKind::ReasoningText, self, t),
            ContentBlockDelta::ReasoningSignature(t) => string(FastKind::ReasoningSignature, self, t),
            ContentBlockDelta::ReasoningRedacted(b) => match self {
                BlockContent::Redacted(v) => v.extend_from_slice(b.as_bytes()),
                _ => *self = BlockContent::Redacted(b.as_bytes().to_vec()),
            },
            ContentBlockDelta::Citation(c) => match self {
                BlockContent::Citations { citations, .. } => citations.push(Citation::clone(c)),
                BlockContent::Text(s) => {
                    *self = BlockContent::Citations {
                        text: std::mem::take(s),
                        citations: vec![Citation::clone(c)],
                    }
                }
                _ => {
                    *self = BlockContent::Citations {
                        text: String::new(),
                        citations: vec![Citation::clone(c)],
                    }
                }
            },
            ContentBlockDelta::ToolResult(items) => {
                if matches!(self, BlockContent::Empty) {
                    *self = BlockContent::ToolResult {
                        tool_use_id: String::new(),
                        r#type: None,
                        status: None,
                        content: Vec::new(),
                    };
                }
                if let BlockContent::ToolResult { content, .. } = self {
                    for item in items {
                        match (content.last_mut(), item) {
                            // Text items continue the text before them, as text deltas do.
                            (Some(ToolResultContentBlock::Text(s)), ToolResultContentBlock::Text(t)) => {
                                s.push_str(t)
                            }
                            _ => content.push(item.clone()),
                        }
                    }
                }
            }
            ContentBlockDelta::Image(image) => {
                if matches!(self, BlockContent::Empty) {
                    *self = BlockContent::Image {
                        format: String::new(),
                        bytes: Vec::new(),
                        source: None,
                        error: None,
                    };
                }
                if let BlockContent::Image {
                    bytes, source, error, ..
                } = self
                {
                    match &image.source {
                        Some(MediaSource::Bytes(b)) => bytes.extend_from_slice(b.as_bytes()),
                        Some(other) => *source = Some(other.clone()),
                        None => {}
                    }
                    if image.error.is_some() {
                        error.clone_from(&image.error);
                    }
                }
            }
            ContentBlockDelta::Unknown { .. } => {}
        }
    }
}

impl Block {
    #[inline]
    pub(super) fn new(index: u32, content: BlockContent) -> Block {
        Block {
            index,
            stopped: false,
            content,
            unknown: Vec::new(),
        }
    }

    /// Keeps a member this crate does not know.
    #[inline]
    pub(super) fn keep_unknown(&mut self, kind: &str, value: Value) {
        match self.unknown.iter_mut().find(|(k, _)| k == kind) {
            Some((_, values)) => values.push(value),
            None => self.unknown.push((kind.to_owned(), vec![value])),
        }
    }

    /// The content blocks this becomes in a response (none for an empty block).
    #[inline]
    pub(super) fn into_content_blocks(self, out: &mut Vec<ContentBlock>) {
        let mut members = merged_members(self.unknown);
        out.extend(self.content.into_block(&mut members));
        // Members of a block kind with no room for them (a text, reasoning, citations or
        // empty block: `ContentBlock` is a union) follow it, each as a block of its own.
        for member in members {
            out.push(ContentBlock::Other(Extra::from_iter([member])));
        }
    }
}

/// A tool call's input as the response carries it: the text when it is one JSON value
/// (`{}` when empty), else (an unfinished or invalid input) the raw text as a JSON string.
pub(super) fn tool_input(input: String, checked: bool) -> ToolInput {
    if input.trim_start().is_empty() {
        return ToolInput::empty_object();
    }
    if checked || check_json(&input).is_ok() {
        ToolInput::checked(input)
    } else {
        ToolInput::from(Value::String(input))
    }
}

/// Checks that `text` is one JSON value, building no tree and, on the usual path,
/// allocating nothing: serde_json is asked only when the allocation-free checker says
/// no (for the error, or for what that checker leaves to it).
pub(super) fn check_json(text: &str) -> Result<(), serde_json::Error> {
    if text.trim_start().is_empty() || json_check::is_one_value(text) {
        return Ok(());
    }
    serde_json::from_str::<IgnoredAny>(text)?;
    // Valid syntax the checker refused: a number that may be beyond `f64`'s range
    // (`1e400`), which `IgnoredAny` accepts but a parse into a value refuses (and so
    // would a caller's `to_value()`, or the response read back). That parse decides;
    // it builds a tree only for such rare inputs.
    serde_json::from_str::<Value>(text).map(|_| ())
}

/// Unknown members in arrival order: one member as it came, a member sent several
/// times as the list of its values.
fn merged_members(unknown: Vec<(String, Vec<Value>)>) -> Vec<(String, Value)> {
    unknown
        .into_iter()
        .map(|(kind, mut values)| {
            let value = if values.len() == 1 {
                values.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(values)
            };
            (kind, value)
        })
        .collect()
}

impl BlockContent {
    /// The finished block (`None` for a block that never got content); a block kind
    /// that is a structure takes the unknown `members` as its other members.
    fn into_block(self, members: &mut Vec<(String, Value)>) -> Option<ContentBlock> {
        let mut extra_members = || Extra::from_iter(members.drain(..));
        let block = match self {
            BlockContent::Empty => return None,
            BlockContent::Text(text) => ContentBlock::Text(text),
            BlockContent::ToolUse {
                tool_use_id,
                name,
                input,
                check,
                checked,
                r#type,
            } => ContentBlock::ToolUse(ToolUseBlock {
                tool_use_id,
                name,
                input: {
                    let ok = checked || check.accepts_all(&input);
                    tool_input(input, ok)
                },
                r#type,
                extra: extra_members(),
            }),
            BlockContent::Reasoning { text, signature } => {
                ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(ReasoningTextBlock {
                    text,
                    signature,
                }))
            }
            BlockContent::Redacted(bytes) => {
                ContentBlock::ReasoningContent(ReasoningContentBlock::RedactedContent(Blob::from(bytes)))
            }
            BlockContent::Citations { text, citations } => {
                ContentBlock::CitationsContent(CitationsContentBlock {
                    content: vec![CitationGeneratedContent {
                        text: Some(text),
                        extra: Extra::new(),
                    }],
                    citations,
                })
            }
            BlockContent::ToolResult {
                tool_use_id,
                r#type,
                status,
                content,
            } => {
                let mut extra = extra_members();
                if let Some(t) = r#type {
                    extra.insert("type".to_owned(), Value::String(t));
                }
                ContentBlock::ToolResult(ToolResultBlock {
                    tool_use_id,
                    content,
                    status,
                    extra,
                })
            }
            BlockContent::Image {
                format,
                bytes,
                source,
                error,
            } => image_block(format, bytes, source, error, extra_members()),
        };
        Some(block)
    }
}

/// An image block: its bytes as the source (or the other `source` when no bytes came),
/// and an `error` delta kept among its other members.
fn image_block(
    format: String,
    bytes: Vec<u8>,
    source: Option<MediaSource>,
    error: Option<Value>,
    mut extra: Extra,
) -> ContentBlock {
    if let Some(e) = error {
        extra.insert("error".to_owned(), e);
    }
    let source = match source {
        Some(s) if bytes.is_empty() => s,
        _ => MediaSource::Bytes(Blob::from(bytes)),
    };
    ContentBlock::Image(ImageBlock {
        format,
        source,
        extra,
    })
}
