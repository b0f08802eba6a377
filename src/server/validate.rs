//! Request validation, worded like Bedrock's `ValidationException` messages.

use std::collections::BTreeSet;

use serde_json::Value;

/// Members a `ContentBlock` union may have (service model 2023-09-30).
const CONTENT_BLOCK_KINDS: [&str; 14] = [
    "text",
    "image",
    "document",
    "video",
    "audio",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
    "citationsContent",
    "searchResult",
    "toolAddition",
    "toolRemoval",
];

/// A conversation that does not start with a user message.
const NOT_USER_FIRST: &str = "A conversation must start with a user message. Try again with a conversation that starts with a user message.";

/// Checks a Converse / ConverseStream request body. `Err` holds the message of the 400
/// `ValidationException`.
pub(crate) fn validate(body: &Value) -> Result<(), String> {
    let Some(obj) = body.as_object() else {
        return Err("Malformed input request: the request body must be a JSON object, please reformat your input and try again.".to_owned());
    };
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(m)) => m.as_slice(),
        Some(_) => {
            return Err(
                "1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must be a list"
                    .to_owned(),
            )
        }
    };
    let has_tool_blocks = check_messages(messages)?;
    if has_tool_blocks && obj.get("toolConfig").map_or(true, Value::is_null) {
        return Err(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                .to_owned(),
        );
    }
    if let Some(config) = obj.get("inferenceConfig") {
        check_inference_config(config)?;
    }
    Ok(())
}

/// The tool ids one message's blocks carry.
#[derive(Default)]
struct ToolIds<'a> {
    uses: Vec<&'a str>,
    results: Vec<&'a str>,
}

/// Checks the conversation: roles alternate from `user`, every message has valid blocks,
/// and tool results answer the tool calls before them. `Ok` says whether any tool block
/// was seen.
fn check_messages(messages: &[Value]) -> Result<bool, String> {
    if messages.is_empty() {
        return Err(NOT_USER_FIRST.to_owned());
    }
    let mut has_tool_blocks = false;
    let mut previous_tool_ids: Vec<&str> = Vec::new();
    let mut previous_role: Option<&str> = None;
    for (i, message) in messages.iter().enumerate() {
        let role = check_role(i, message, previous_role)?;
        previous_role = Some(role);
        let content = match message.get("content") {
            Some(Value::Array(c)) if !c.is_empty() => c,
            _ => {
                return Err(format!(
                    "The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."
                ))
            }
        };
        let mut ids = ToolIds::default();
        for (j, block) in content.iter().enumerate() {
            has_tool_blocks |= check_block(i, j, role, block, &mut ids)?;
        }
        if role == "user" {
            check_tool_results(i, &previous_tool_ids, &ids.results)?;
            previous_tool_ids.clear();
        } else {
            previous_tool_ids = ids.uses;
        }
    }
    Ok(has_tool_blocks)
}

/// The role of message `i`, checked against the enum and against the one before it.
fn check_role<'a>(i: usize, message: &'a Value, previous: Option<&str>) -> Result<&'a str, String> {
    let role = match message.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        Some(other) => {
            return Err(format!(
                "1 validation error detected: Value '{other}' at 'messages.{}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]",
                i + 1
            ))
        }
        None => {
            return Err(format!(
                "1 validation error detected: Value null at 'messages.{}.member.role' failed to satisfy constraint: Member must not be null",
                i + 1
            ))
        }
    };
    if i == 0 && role != "user" {
        return Err(NOT_USER_FIRST.to_owned());
    }
    if previous == Some(role) {
        return Err("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.".to_owned());
    }
    Ok(role)
}

/// Checks block `j` of message `i` (whose role is `role`), adding its tool ids to `ids`.
/// `Ok` says whether it is a tool block.
fn check_block<'a>(
    i: usize,
    j: usize,
    role: &str,
    block: &'a Value,
    ids: &mut ToolIds<'a>,
) -> Result<bool, String> {
    let kind = block_kind(block)
        .map_err(|why| format!("The ContentBlock object at messages.{i}.content.{j} {why}"))?;
    match kind {
        "text" => {
            let blank = block
                .get("text")
                .and_then(Value::as_str)
                .map_or(true, |t| t.trim().is_empty());
            if blank {
                return Err(format!(
                    "The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again."
                ));
            }
            Ok(false)
        }
        "toolUse" => {
            if role != "assistant" {
                return Err(format!(
                    "The toolUse block at messages.{i}.content.{j} is only allowed in an assistant message."
                ));
            }
            let tool_use = block.get("toolUse");
            let id = tool_use.and_then(|t| t.get("toolUseId")).and_then(Value::as_str);
            let name = tool_use.and_then(|t| t.get("name")).and_then(Value::as_str);
            match (id, name) {
                (Some(id), Some(_)) if !id.is_empty() => ids.uses.push(id),
                _ => {
                    return Err(format!(
                        "The toolUse block at messages.{i}.content.{j} must have a toolUseId, a name and an input."
                    ))
                }
            }
            Ok(true)
        }
        "toolResult" => {
            if role != "user" {
                return Err(format!(
                    "The toolResult block at messages.{i}.content.{j} is only allowed in a user message."
                ));
            }
            let result = block.get("toolResult");
            match result.and_then(|t| t.get("toolUseId")).and_then(Value::as_str) {
                Some(id) if !id.is_empty() => ids.results.push(id),
                _ => {
                    return Err(format!(
                        "The toolResult block at messages.{i}.content.{j} must have a toolUseId."
                    ))
                }
            }
            if !result.and_then(|t| t.get("content")).is_some_and(Value::is_array) {
                return Err(format!(
                    "1 validation error detected: Value null at 'messages.{}.member.content.{}.member.toolResult.content' failed to satisfy constraint: Member must not be null",
                    i + 1,
                    j + 1
                ));
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The one member of a `ContentBlock` union, or why it is not one.
fn block_kind(block: &Value) -> Result<&'static str, String> {
    let Some(obj) = block.as_object() else {
        return Err("must be an object.".to_owned());
    };
    let set: Vec<&String> = obj.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k).collect();
    match set.as_slice() {
        [] => Err("is empty. Set exactly one member and try again.".to_owned()),
        [one] => CONTENT_BLOCK_KINDS
            .iter()
            .find(|k| **k == one.as_str())
            .copied()
            .ok_or_else(|| {
                format!(
                    "has an unknown member '{one}'. Use one of: {}.",
                    CONTENT_BLOCK_KINDS.join(", ")
                )
            }),
        _ => Err("has more than one member set. Set exactly one member and try again.".to_owned()),
    }
}

/// A user message at `i` must answer every toolUse id of the assistant message before it,
/// in this one message, and only those.
fn check_tool_results(i: usize, expected: &[&str], got: &[&str]) -> Result<(), String> {
    if got.len() > expected.len() {
        return Err(format!(
            "The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn."
        ));
    }
    let got: BTreeSet<&str> = got.iter().copied().collect();
    let missing: Vec<&str> = expected.iter().copied().filter(|id| !got.contains(id)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "Expected toolResult blocks at messages.{i}.content for the following Ids: {}",
            missing.join(", ")
        ));
    }
    Ok(())
}

fn check_inference_config(config: &Value) -> Result<(), String> {
    if let Some(t) = config.get("temperature").filter(|v| !v.is_null()) {
        match t.as_f64() {
            Some(v) if (0.0..=1.0).contains(&v) => {}
            Some(v) if v < 0.0 => {
                return Err(format!("1 validation error detected: Value '{v}' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value greater than or equal to 0"))
            }
            _ => {
                return Err(format!("1 validation error detected: Value '{t}' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1"))
            }
        }
    }
    if let Some(p) = config.get("topP").filter(|v| !v.is_null()) {
        match p.as_f64() {
            Some(v) if (0.0..=1.0).contains(&v) => {}
            Some(v) if v < 0.0 => {
                return Err(format!("1 validation error detected: Value '{v}' at 'inferenceConfig.topP' failed to satisfy constraint: Member must have value greater than or equal to 0"))
            }
            _ => {
                return Err(format!("1 validation error detected: Value '{p}' at 'inferenceConfig.topP' failed to satisfy constraint: Member must have value less than or equal to 1"))
            }
        }
    }
    if let Some(m) = config.get("maxTokens").filter(|v| !v.is_null()) {
        if !m.as_i64().is_some_and(|v| v >= 1) {
            return Err(format!("1 validation error detected: Value '{m}' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"text": text}]})
    }

    #[test]
    fn accepts_simple() {
        assert_eq!(validate(&json!({"messages": [user("hi")]})), Ok(()));
    }

    #[test]
    fn rejects() {
        let cases = [
            (json!({}), "must start with a user message"),
            (
                json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}),
                "start with a user",
            ),
            (json!({"messages": [user("a"), user("b")]}), "alternate"),
            (
                json!({"messages": [user("a"), {"role": "assistant", "content": []}]}),
                "messages.1 is empty",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"bogus": 1}]}]}),
                "unknown member",
            ),
            (json!({"messages": [user("   ")]}), "is blank"),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"temperature": 1.5}}),
                "temperature",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"maxTokens": 0}}),
                "maxTokens",
            ),
        ];
        for (body, needle) in cases {
            let err = validate(&body).expect_err("must fail");
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn tool_results_must_answer_every_call() {
        let assistant = json!({"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t1", "name": "a", "input": {}}},
            {"toolUse": {"toolUseId": "t2", "name": "b", "input": {}}}]});
        let one = json!({"role": "user", "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "1"}]}}]});
        let both = json!({"role": "user", "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "1"}]}},
            {"toolResult": {"toolUseId": "t2", "content": [{"json": {"v": 2}}]}}]});
        let tc = json!({"tools": []});
        let err = validate(&json!({"messages": [user("q"), assistant, one], "toolConfig": tc}))
            .expect_err("missing t2");
        assert!(err.contains("following Ids: t2"), "{err}");
        assert_eq!(
            validate(&json!({"messages": [user("q"), assistant, both], "toolConfig": tc})),
            Ok(())
        );
        let err = validate(&json!({"messages": [user("q"), assistant, both]})).expect_err("no toolConfig");
        assert!(err.contains("toolConfig"), "{err}");
    }
}
