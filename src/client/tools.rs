//! Tool calls: what the model asked for, and continuing the conversation with the
//! results.

use crate::converse::{ContentBlock, ConverseResponse, Message, Role};

use super::error::{ClientError, ConfigError};
use super::event::ToolCall;

/// The complete tool calls of a response (`:tools-to-call` in the ECA editor's Bedrock
/// provider, whose config format [`config`](super::config) describes), in order.
pub fn tools_to_call(response: &ConverseResponse) -> Vec<ToolCall> {
    response
        .tool_uses()
        .map(|t| ToolCall {
            id: t.tool_use_id.clone(),
            name: t.name.clone(),
            input: t.input.to_value(),
        })
        .collect()
}

/// Appends the assistant turn of `response` and then ONE user message holding all
/// `results` (Bedrock rejects tool results split over several messages, and every
/// `toolUse` must be answered in the next user message).
///
/// # Errors
///
/// [`ConfigError::InvalidParameter`] when `response` has no message, a result is not a
/// `toolResult` block, or a tool call has no result.
///
/// # Examples
///
/// ```
/// use bedrock_converse::client::{append_tool_results, tools_to_call};
/// use bedrock_converse::converse::{ContentBlock, ConverseResponse, Message};
/// let response: ConverseResponse = serde_json::from_value(serde_json::json!({
///     "output": {"message": {"role": "assistant", "content": [
///         {"toolUse": {"toolUseId": "t1", "name": "add", "input": {"a": 1, "b": 2}}},
///         {"toolUse": {"toolUseId": "t2", "name": "add", "input": {"a": 3, "b": 4}}}]}},
///     "stopReason": "tool_use"}))?;
/// let mut messages = vec![Message::user("add things")];
/// let results = tools_to_call(&response)
///     .iter()
///     .map(|c| ContentBlock::tool_result_json(&c.id, serde_json::json!({"sum": 0})))
///     .collect();
/// append_tool_results(&mut messages, &response, results)?;
/// assert_eq!(messages.len(), 3);
/// assert_eq!(messages[2].content.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn append_tool_results(
    messages: &mut Vec<Message>,
    response: &ConverseResponse,
    results: Vec<ContentBlock>,
) -> Result<(), ClientError> {
    let bad = |reason: String| {
        ClientError::Config(ConfigError::InvalidParameter {
            name: "tool results".into(),
            reason,
        })
    };
    let assistant = response
        .output
        .message
        .clone()
        .ok_or_else(|| bad("the response has no message".into()))?;
    for block in &results {
        if !matches!(block, ContentBlock::ToolResult(_)) {
            return Err(bad("every result must be a toolResult block".into()));
        }
    }
    for call in response.tool_uses() {
        let answered = results
            .iter()
            .any(|b| matches!(b, ContentBlock::ToolResult(r) if r.tool_use_id == call.tool_use_id));
        if !answered {
            return Err(bad(format!(
                "tool call {} ({}) has no result",
                call.tool_use_id, call.name
            )));
        }
    }
    messages.push(assistant);
    messages.push(Message {
        role: Role::User,
        content: results,
    });
    Ok(())
}
