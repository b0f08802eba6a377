//! Scenario names and the content each one produces.

use std::borrow::Cow;
use std::fmt;

use serde_json::{json, Map, Value};

use super::events::{ContentBlockDelta, ContentBlockStart, Event, Script, Usage};

/// What the mock server does for a request, chosen by the model id (see the
/// [module docs](super#scenarios)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scenario {
    /// A few sentences quoting the last user text, in many small deltas.
    Text,
    /// A long text stream (configurable number of deltas).
    Long,
    /// Parallel tool calls, or an answer using tool results.
    Tools,
    /// Reasoning text and signature, then text.
    Reasoning,
    /// Redacted reasoning, then a text answer with a citation of the request.
    Citations,
    /// Some text, then a `modelStreamErrorException` frame.
    Exception,
    /// Some text, then a `throttlingException` frame.
    ThrottlingException,
    /// HTTP 400 `ValidationException`.
    HttpError,
    /// HTTP 429 `ThrottlingException` twice, then success.
    ThrottleThenOk,
    /// HTTP 429 `ModelNotReadyException` once, then success.
    NotReady,
    /// HTTP 500 `InternalServerException`, always.
    ServerError,
    /// A few frames, then silence with the connection open.
    Stall,
    /// The body ends in the middle of a frame.
    Truncated,
    /// One frame has a flipped payload byte.
    CorruptCrc,
    /// The whole valid stream, one byte per write.
    Trickle,
}

impl Scenario {
    /// Every scenario, in the order of the module docs' table.
    pub const ALL: [Scenario; 15] = [
        Scenario::Text,
        Scenario::Long,
        Scenario::Tools,
        Scenario::Reasoning,
        Scenario::Citations,
        Scenario::Exception,
        Scenario::ThrottlingException,
        Scenario::HttpError,
        Scenario::ThrottleThenOk,
        Scenario::NotReady,
        Scenario::ServerError,
        Scenario::Stall,
        Scenario::Truncated,
        Scenario::CorruptCrc,
        Scenario::Trickle,
    ];

    /// The name used in model ids, e.g. `throttle-then-ok`.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Text => "text",
            Scenario::Long => "long",
            Scenario::Tools => "tools",
            Scenario::Reasoning => "reasoning",
            Scenario::Citations => "citations",
            Scenario::Exception => "exception",
            Scenario::ThrottlingException => "throttling-exception",
            Scenario::HttpError => "http-error",
            Scenario::ThrottleThenOk => "throttle-then-ok",
            Scenario::NotReady => "not-ready",
            Scenario::ServerError => "server-error",
            Scenario::Stall => "stall",
            Scenario::Truncated => "truncated",
            Scenario::CorruptCrc => "corrupt-crc",
            Scenario::Trickle => "trickle",
        }
    }

    /// The scenario of an exact name, if it is one.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scenario a (percent-decoded) model id selects: the part after its last `.`;
    /// unknown names select [`Scenario::Text`].
    ///
    /// ```
    /// use bedrock_converse::server::Scenario;
    /// assert_eq!(Scenario::from_model_id("us-east-1.mock.tools"), Scenario::Tools);
    /// assert_eq!(Scenario::from_model_id("throttle-then-ok"), Scenario::ThrottleThenOk);
    /// assert_eq!(Scenario::from_model_id("anthropic.claude-3-haiku-20240307-v1:0"), Scenario::Text);
    /// ```
    pub fn from_model_id(model_id: &str) -> Scenario {
        let last = model_id.rsplit('.').next().unwrap_or(model_id);
        Scenario::from_name(last).unwrap_or(Scenario::Text)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ===== content =====

/// What the scenarios need to know about the request.
#[derive(Debug, Default)]
pub(crate) struct RequestView {
    /// Text of the last user message (its text blocks joined), if any.
    pub(crate) last_user_text: Option<String>,
    /// Tool results of the last user message: (toolUseId, tool name if known, status, rendered content).
    pub(crate) tool_results: Vec<ToolResultView>,
    /// Tools of `toolConfig.tools`: (name, inputSchema.json).
    pub(crate) tools: Vec<(String, Value)>,
    /// A rough token count of the request, for `usage.inputTokens`.
    pub(crate) input_tokens: u64,
    /// `cachePoint` blocks in `system`, `messages` and `toolConfig.tools`.
    pub(crate) cache_points: u64,
}

/// One `toolResult` block of the last user message.
#[derive(Debug)]
pub(crate) struct ToolResultView {
    pub(crate) tool_use_id: String,
    pub(crate) name: Option<String>,
    pub(crate) is_error: bool,
    pub(crate) content: String,
}

/// How a request body's dialect (Converse, or the Anthropic Messages body of the
/// native routes) spells the parts a [`RequestView`] reads.
pub(crate) trait RequestDialect {
    /// A message's content as blocks (a string content is one text block).
    fn blocks(message: &Value) -> Cow<'_, [Value]>;
    /// The text of a text block.
    fn block_text(block: &Value) -> Option<&str>;
    /// The tool result a block carries, the tool's name looked up among the blocks of
    /// the `previous` (assistant) message.
    fn tool_result(block: &Value, previous: &[Value]) -> Option<ToolResultView>;
    /// The tools the request declares: (name, input schema).
    fn tools(body: &Value) -> Vec<(String, Value)>;
    /// The cache points the request sets (0 where the dialect has none).
    fn cache_points(body: &Value) -> u64;
}

impl RequestView {
    /// Reads the parts of an (already validated) request the scenarios use.
    pub(crate) fn read<D: RequestDialect>(body: &Value, body_len: usize) -> RequestView {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut view = RequestView {
            input_tokens: input_tokens(body_len),
            tools: D::tools(body),
            cache_points: D::cache_points(body),
            ..RequestView::default()
        };
        let Some(last) = messages.last().filter(|m| role(m) == Some("user")) else {
            return view;
        };
        let blocks = D::blocks(last);
        let texts: Vec<&str> = blocks.iter().filter_map(D::block_text).collect();
        if !texts.is_empty() {
            view.last_user_text = Some(texts.join(" "));
        }
        let previous = messages
            .len()
            .checked_sub(2)
            .and_then(|i| messages.get(i))
            .map(D::blocks)
            .unwrap_or_default();
        view.tool_results = blocks
            .iter()
            .filter_map(|b| D::tool_result(b, &previous))
            .collect();
        view
    }
}

/// ~4 bytes per token, as a rough tokenizer would give (and as `count-tokens` answers).
pub(crate) fn input_tokens(body_len: usize) -> u64 {
    (body_len as u64 / 4).max(1)
}

/// The Converse request body.
pub(crate) struct ConverseRequest;

impl RequestDialect for ConverseRequest {
    fn blocks(message: &Value) -> Cow<'_, [Value]> {
        Cow::Borrowed(content(message))
    }

    fn block_text(block: &Value) -> Option<&str> {
        block.get("text").and_then(Value::as_str)
    }

    fn tool_result(block: &Value, previous: &[Value]) -> Option<ToolResultView> {
        let result = block.get("toolResult")?;
        let id = result
            .get("toolUseId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = previous
            .iter()
            .filter_map(|b| b.get("toolUse"))
            .find(|u| u.get("toolUseId").and_then(Value::as_str) == Some(id))
            .and_then(|u| u.get("name").and_then(Value::as_str))
            .map(str::to_owned);
        Some(ToolResultView {
            tool_use_id: id.to_owned(),
            name,
            is_error: result.get("status").and_then(Value::as_str) == Some("error"),
            content: render_tool_result(result.get("content")),
        })
    }

    fn tools(body: &Value) -> Vec<(String, Value)> {
        let tools = body.pointer("/toolConfig/tools").and_then(Value::as_array);
        tools
            .into_iter()
            .flatten()
            .filter_map(|tool| {
                let spec = tool.get("toolSpec")?;
                let name = spec.get("name").and_then(Value::as_str)?;
                let schema = spec.pointer("/inputSchema/json").cloned().unwrap_or(Value::Null);
                Some((name.to_owned(), schema))
            })
            .collect()
    }

    fn cache_points(body: &Value) -> u64 {
        count_cache_points(body)
    }
}

/// The `cachePoint` blocks of a request: in `system`, in each message's `content`, and
/// in `toolConfig.tools`.
fn count_cache_points(body: &Value) -> u64 {
    let is_point = |b: &&Value| b.get("cachePoint").is_some();
    let count = |list: Option<&Value>| -> u64 {
        let n = list
            .and_then(Value::as_array)
            .map_or(0, |l| l.iter().filter(is_point).count());
        n as u64
    };
    let in_messages: u64 = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, |m| m.iter().map(|m| count(m.get("content"))).sum());
    count(body.get("system")) + in_messages + count(body.pointer("/toolConfig/tools"))
}

fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

fn content(message: &Value) -> &[Value] {
    message
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Renders `toolResult.content` blocks as one line: text as is, JSON compact.
fn render_tool_result(content: Option<&Value>) -> String {
    let Some(blocks) = content.and_then(Value::as_array) else {
        return String::new();
    };
    let parts: Vec<String> = blocks
        .iter()
        .map(|b| {
            if let Some(text) = b.get("text").and_then(Value::as_str) {
                text.to_owned()
            } else if let Some(json) = b.get("json") {
                json.to_string()
            } else {
                "[non-text content]".to_owned()
            }
        })
        .collect();
    parts.join(" ")
}

/// Cuts `s` to at most `max` chars, adding `…` when it was cut.
fn clip(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", one_line.get(..i).unwrap_or_default()),
        None => one_line,
    }
}

/// Splits text into small deltas of one to three words (whitespace kept with the word
/// that follows it, as model tokenizers do).
pub(crate) fn split_deltas(text: &str) -> Vec<String> {
    let mut words: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' && i > start {
            if let Some(w) = text.get(start..i) {
                words.push(w);
            }
            start = i;
        }
    }
    if let Some(w) = text.get(start..) {
        if !w.is_empty() {
            words.push(w);
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut n = 0;
    while i < words.len() {
        let take = 1 + n % 3;
        let end = (i + take).min(words.len());
        out.push(words.get(i..end).unwrap_or_default().concat());
        i = end;
        n += 1;
    }
    out
}

/// Splits a JSON text into fragments of 2 to 7 bytes, on char boundaries.
fn split_fragments(json: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut n = 0usize;
    while start < json.len() {
        let mut end = (start + 2 + (n * 5) % 6).min(json.len());
        while !json.is_char_boundary(end) {
            end += 1;
        }
        out.push(json.get(start..end).unwrap_or_default().to_owned());
        start = end;
        n += 1;
    }
    out
}

fn output_tokens(chars: usize) -> u64 {
    (chars as u64 / 4).max(1)
}

/// The deltas of `text`, split as models stream it, at block `index`; `kind` makes each
/// piece a delta (`ContentBlockDelta::Text`, `ReasoningText`).
fn split_text(index: u32, text: &str, kind: fn(String) -> ContentBlockDelta) -> impl Iterator<Item = Event> {
    split_deltas(text)
        .into_iter()
        .map(move |piece| Event::ContentBlockDelta {
            index,
            delta: kind(piece),
        })
}

/// A complete stream: `events`, then `messageStop` and `metadata` (its output tokens
/// counted from `output_chars`).
fn finished(
    mut events: Vec<Event>,
    stop_reason: &'static str,
    view: &RequestView,
    output_chars: usize,
) -> Script {
    events.push(Event::MessageStop { stop_reason });
    let mut usage = Usage::new(view.input_tokens, output_tokens(output_chars));
    // A request with cache points reports cache usage: per point, 1024 tokens read
    // from the cache and 512 written to it.
    usage.cache_read = view.cache_points.saturating_mul(1024);
    usage.cache_write = view.cache_points.saturating_mul(512);
    events.push(Event::Metadata(usage));
    Script { events }
}

/// The text of the `text` scenario.
pub(crate) fn text_answer(view: &RequestView) -> String {
    let quoted = match &view.last_user_text {
        Some(t) => format!("You said: \"{}\".", clip(t, 200)),
        None => "Your last message had no text.".to_owned(),
    };
    format!(
        "{quoted} This answer comes from the built-in mock Bedrock server, not from a model. \
         It is streamed in many small pieces, the way Bedrock streams a real answer, so a client \
         can be tested without an AWS account. Pick another scenario with the last part of the \
         model id, for example `mock.tools` or `mock.reasoning`."
    )
}

/// The events of a scenario whose content is text only.
pub(crate) fn text_script(text: &str, view: &RequestView) -> Script {
    let mut events = vec![Event::MessageStart];
    events.extend(split_text(0, text, ContentBlockDelta::Text));
    events.push(Event::ContentBlockStop { index: 0 });
    finished(events, "end_turn", view, text.len())
}

/// The events of the `long` scenario: `n` text deltas.
pub(crate) fn long_script(n: usize, view: &RequestView) -> Script {
    const WORDS: [&str; 12] = [
        " stream", " of", " tokens", " from", " the", " mock", " Bedrock", " server,", " delta", " after",
        " delta,", " again.",
    ];
    let mut events = Vec::with_capacity(n + 4);
    events.push(Event::MessageStart);
    let mut chars = 0;
    for i in 0..n {
        let word = WORDS.get(i % WORDS.len()).copied().unwrap_or(" ");
        let text = if i == 0 {
            "A long".to_owned()
        } else {
            word.to_owned()
        };
        chars += text.len();
        events.push(Event::ContentBlockDelta {
            index: 0,
            delta: ContentBlockDelta::Text(text),
        });
    }
    events.push(Event::ContentBlockStop { index: 0 });
    finished(events, "end_turn", view, chars)
}

/// A `tooluse_` id of 22 random base-62 characters, like Bedrock's.
fn tool_use_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::with_capacity(30);
    id.push_str("tooluse_");
    for _ in 0..22 {
        let i = fastrand::usize(..ALPHABET.len());
        id.push(char::from(ALPHABET.get(i).copied().unwrap_or(b'x')));
    }
    id
}

/// A plausible input for a tool: canned for the demo tools, derived from the schema
/// otherwise.
fn tool_input(name: &str, schema: &Value) -> Value {
    match name {
        "get_weather" => {
            let mut input = schema_input(schema);
            input.insert("city".to_owned(), json!("Paris"));
            Value::Object(input)
        }
        "add" => json!({"a": 2, "b": 3}),
        _ => Value::Object(schema_input(schema)),
    }
}

/// One value per property of a JSON schema: `"example"`, `1`, `1.5`, `true`, `[]`, `{}`.
fn schema_input(schema: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return out;
    };
    for (i, (key, prop)) in props.iter().enumerate() {
        let value = match prop.get("type").and_then(Value::as_str) {
            Some("integer") => json!(i + 1),
            Some("number") => json!(i as f64 + 1.5),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => match prop.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
                Some(first) => first.clone(),
                None => json!("example"),
            },
        };
        out.insert(key.clone(), value);
    }
    out
}

/// The events of the `tools` scenario.
pub(crate) fn tools_script(view: &RequestView) -> Script {
    if !view.tool_results.is_empty() {
        let text = tool_results_answer(view);
        return text_script(&text, view);
    }
    let defaults = [
        (
            "get_weather".to_owned(),
            json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        ),
        (
            "add".to_owned(),
            json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}),
        ),
    ];
    let tools: Vec<&(String, Value)> = if view.tools.is_empty() {
        defaults.iter().collect()
    } else {
        view.tools.iter().take(3).collect()
    };
    let names: Vec<&str> = tools.iter().map(|(n, _)| n.as_str()).collect();
    let intro = format!(
        "I will call {} in parallel.",
        match names.as_slice() {
            [one] => format!("`{one}`"),
            [first @ .., last] => format!(
                "{} and `{last}`",
                first
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            [] => "no tools".to_owned(),
        }
    );
    let mut events = vec![Event::MessageStart];
    let mut chars = intro.len();
    events.extend(split_text(0, &intro, ContentBlockDelta::Text));
    events.push(Event::ContentBlockStop { index: 0 });
    for (i, (name, schema)) in tools.into_iter().enumerate() {
        // At most 3 tools: the index cannot overflow.
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let input = tool_input(name, schema).to_string();
        chars += input.len() + name.len();
        events.push(Event::ContentBlockStart {
            index,
            start: ContentBlockStart::ToolUse {
                tool_use_id: tool_use_id(),
                name: name.clone(),
            },
        });
        events.push(Event::ContentBlockDelta {
            index,
            delta: ContentBlockDelta::ToolUseInput(String::new()),
        });
        // A call with no arguments gets the empty delta only, as Bedrock sends it.
        let input = if input == "{}" { String::new() } else { input };
        events.extend(
            split_fragments(&input)
                .into_iter()
                .map(|f| Event::ContentBlockDelta {
                    index,
                    delta: ContentBlockDelta::ToolUseInput(f),
                }),
        );
        events.push(Event::ContentBlockStop { index });
    }
    finished(events, "tool_use", view, chars)
}

/// The text answer once tool results came back.
fn tool_results_answer(view: &RequestView) -> String {
    let mut parts = Vec::new();
    for r in &view.tool_results {
        let who = match &r.name {
            Some(name) => format!("`{name}`"),
            None => format!("the tool call {}", r.tool_use_id),
        };
        if r.is_error {
            parts.push(format!("{who} failed with: {}", clip(&r.content, 200)));
        } else {
            parts.push(format!("{who} returned {}", clip(&r.content, 200)));
        }
    }
    format!(
        "Thanks, I have the results. {}. That is everything I needed to answer.",
        parts.join("; ")
    )
}

/// The events of the `reasoning` scenario.
pub(crate) fn reasoning_script(view: &RequestView) -> Script {
    let thinking = match &view.last_user_text {
        Some(t) => format!(
            "The user wrote \"{}\". I should answer briefly and mention that this is a mock.",
            clip(t, 120)
        ),
        None => "There is no text to answer. I should say so briefly.".to_owned(),
    };
    let answer = "Here is my answer, after thinking it over: this reply comes from the mock \
                  Bedrock server's reasoning scenario.";
    let mut events = vec![Event::MessageStart];
    events.extend(split_text(0, &thinking, ContentBlockDelta::ReasoningText));
    events.push(Event::ContentBlockDelta {
        index: 0,
        delta: ContentBlockDelta::ReasoningText(String::new()),
    });
    events.push(Event::ContentBlockDelta {
        index: 0,
        delta: ContentBlockDelta::ReasoningSignature(
            "EqQBCkgIARABGAIiQMockSignatureAbcdefghijklmnopqrstuvwxyz0123456789+/Zm9vYmFy".to_owned(),
        ),
    });
    events.push(Event::ContentBlockStop { index: 0 });
    events.extend(split_text(1, answer, ContentBlockDelta::Text));
    events.push(Event::ContentBlockStop { index: 1 });
    finished(events, "end_turn", view, thinking.len() + answer.len())
}

/// The events of the `citations` scenario: a redacted reasoning block (opaque bytes, as
/// Bedrock sends when the model's thinking was flagged), then a text block that cites the
/// last user message.
pub(crate) fn citations_script(view: &RequestView) -> Script {
    let quoted = match &view.last_user_text {
        Some(t) => clip(t, 120),
        None => "(no text)".to_owned(),
    };
    let answer = "According to your message, this is what you asked about; the mock server's \
                  citations scenario cites it.";
    let redacted: Vec<u8> = b"mock redacted reasoning \x00\x01\x02\xff".to_vec();
    let (first, second) = redacted.split_at(redacted.len() / 2);
    let mut events = vec![Event::MessageStart];
    for part in [first, second] {
        events.push(Event::ContentBlockDelta {
            index: 0,
            delta: ContentBlockDelta::ReasoningRedacted(part.to_vec()),
        });
    }
    events.push(Event::ContentBlockStop { index: 0 });
    events.extend(split_text(1, answer, ContentBlockDelta::Text));
    events.push(Event::ContentBlockDelta {
        index: 1,
        delta: ContentBlockDelta::Citation(json!({
            "location": { "documentChar": { "documentIndex": 0, "end": quoted.chars().count(), "start": 0 } },
            "sourceContent": [{ "text": quoted }],
            "title": "the last user message",
        })),
    });
    events.push(Event::ContentBlockStop { index: 1 });
    finished(events, "end_turn", view, answer.len() + redacted.len())
}

/// Some text, then an exception frame instead of the rest.
pub(crate) fn exception_script(exception_type: &'static str, payload: Value) -> Script {
    let mut events = vec![Event::MessageStart];
    events.extend(split_text(
        0,
        "Let me start answering that, it will take a",
        ContentBlockDelta::Text,
    ));
    events.push(Event::Exception {
        exception_type,
        payload,
    });
    Script { events }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_rejoin() {
        let text = "Hello there, this is a test of the splitter.";
        let deltas = split_deltas(text);
        assert!(deltas.len() > 4);
        assert_eq!(deltas.concat(), text);
    }

    #[test]
    fn fragments_rejoin() {
        let json = r#"{"city":"Paris é","n":1}"#;
        let parts = split_fragments(json);
        assert!(parts.len() > 3);
        assert_eq!(parts.concat(), json);
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_name(s.name()), Some(s));
            assert_eq!(Scenario::from_model_id(&format!("eu-west-1.mock.{s}")), s);
        }
        assert_eq!(Scenario::from_model_id(""), Scenario::Text);
    }

    #[test]
    fn clip_respects_chars() {
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip("a  b\nc", 10), "a b c");
    }
}
