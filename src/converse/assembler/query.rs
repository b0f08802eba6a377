//! What a caller may ask the assembler between events: what is missing, the partial
//! response, the stop reason, usage, and the state of one block or tool call.

use super::super::error::{BlockKind, Missing, ServiceException};
use super::super::types::{
    ContentBlock, ConverseOutput, ConverseResponse, Extra, Message, Role, StopReason, TokenUsage, ToolInput,
};
use super::block::{check_json, tool_input, Block, BlockContent};
use super::{Phase, StreamAssembler};

/// The state of one content block, as [`StreamAssembler::block`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockState {
    /// The block's kind so far.
    pub kind: BlockKind,
    /// Whether its `contentBlockStop` has arrived.
    pub stopped: bool,
}

/// A tool call being assembled, as [`StreamAssembler::tool_use`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolUseState<'s> {
    /// `toolUseId`.
    pub tool_use_id: &'s str,
    /// `name`.
    pub name: &'s str,
    /// `type`, when the start had one.
    pub r#type: Option<&'s str>,
    /// The input text received so far.
    pub input_text: &'s str,
    /// Whether its `contentBlockStop` arrived (the input is then one JSON value).
    pub stopped: bool,
}

impl ToolUseState<'_> {
    /// The finished input (`{}` when empty), once the block is stopped; parse it with
    /// [`ToolInput::parse`] or [`ToolInput::to_value`].
    pub fn input(&self) -> Option<ToolInput> {
        self.stopped.then(|| tool_input(self.input_text.to_owned(), true))
    }
}

impl StreamAssembler {
    /// What the stream still lacks to be complete (empty when [`finish`](Self::finish)
    /// would succeed, unless an exception was received).
    pub fn missing(&self) -> Vec<Missing> {
        let mut missing = Vec::new();
        if self.phase == Phase::BeforeStart {
            missing.push(Missing::MessageStart);
        }
        for block in &self.blocks {
            if block.stopped {
                continue;
            }
            missing.push(Missing::ContentBlockStop { index: block.index });
            if let BlockContent::ToolUse { name, input, .. } = &block.content {
                if !block.content.tool_input_ok() && check_json(input).is_err() {
                    missing.push(Missing::ToolInput {
                        index: block.index,
                        name: name.clone(),
                    });
                }
            }
        }
        if self.phase != Phase::Stopped {
            missing.push(Missing::MessageStop);
        }
        missing
    }

    /// Everything assembled so far, as a response (clones it; the assembler goes on).
    ///
    /// Unstopped blocks are included as they are; a tool call whose input is not
    /// (yet) valid JSON has its raw input text as a JSON string.
    pub fn partial(&self) -> ConverseResponse {
        self.clone().into_partial()
    }

    /// Everything assembled so far, as a response, without copying.
    pub fn into_partial(self) -> ConverseResponse {
        let mut content: Vec<ContentBlock> = Vec::with_capacity(self.blocks.len());
        for block in self.blocks {
            block.into_content_blocks(&mut content);
        }
        let message = if self.role.is_none() && content.is_empty() && self.phase == Phase::BeforeStart {
            None
        } else {
            Some(Message {
                role: self.role.unwrap_or(Role::Assistant),
                content,
            })
        };
        ConverseResponse {
            output: ConverseOutput {
                message,
                extra: Extra::new(),
            },
            stop_reason: self.stop_reason,
            usage: self.usage,
            metrics: self.metrics,
            additional_model_response_fields: self.additional_model_response_fields,
            trace: self.trace,
            extra: self.extra,
        }
    }

    /// Whether `messageStop` has arrived.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// The stop reason, once `messageStop` has arrived.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop_reason.as_ref()
    }

    /// The usage, once `metadata` has arrived.
    pub fn usage(&self) -> Option<&TokenUsage> {
        self.usage.as_ref()
    }

    /// The exception the stream ended with, if it did.
    pub fn exception(&self) -> Option<&ServiceException> {
        self.exception.as_ref()
    }

    /// The kind of block `index` and whether it is stopped; `None` if no event
    /// opened it.
    pub fn block(&self, index: u32) -> Option<BlockState> {
        let block = self.blocks.get(self.find(index).ok()?)?;
        Some(BlockState {
            kind: block.content.kind(),
            stopped: block.stopped,
        })
    }

    /// The tool call in block `index` (its id, name and the input so far), or `None`
    /// if that block is not a tool call. A client layer asks this instead of tracking
    /// tool blocks itself; after the block's `contentBlockStop`,
    /// [`ToolUseState::input`] is the checked input.
    pub fn tool_use(&self, index: u32) -> Option<ToolUseState<'_>> {
        match &self.blocks.get(self.find(index).ok()?)? {
            Block {
                content:
                    BlockContent::ToolUse {
                        tool_use_id,
                        name,
                        r#type,
                        input,
                        ..
                    },
                stopped,
                ..
            } => Some(ToolUseState {
                tool_use_id,
                name,
                r#type: r#type.as_deref(),
                input_text: input,
                stopped: *stopped,
            }),
            _ => None,
        }
    }

    /// The raw (concatenated) input text of the tool call in block `index`.
    pub fn tool_input_raw(&self, index: u32) -> Option<&str> {
        self.tool_use(index).map(|t| t.input_text)
    }
}
