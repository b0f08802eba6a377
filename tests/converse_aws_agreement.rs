//! Agreement with the official AWS SDK: random Bedrock-like ConverseStream bodies are
//! served from a loopback HTTP/1.1 server to `aws-sdk-bedrockruntime`'s
//! `converse_stream()`, and the same bytes are decoded and assembled by this crate.
//! Text, tool calls, reasoning, server tool results, images, citations, stop reason and
//! usage must be identical (and equal to what was generated). Strings carry every JSON
//! escape, and one case in two writes each delta's members in another order.

use std::sync::{Arc, Mutex};

use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockruntime::types as aws;
use base64::Engine as _;
use bedrock_converse::converse::{
    ContentBlock, ConverseResponse, MediaSource, ReasoningContentBlock, StreamAssembler,
    ToolResultContentBlock,
};
use bedrock_converse::eventstream::EventStreamCodec;
use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::{Decoder, Encoder};

mod common;
use common::event_frame;

// ===== the normalized result both sides are compared on =====

#[derive(Debug, Clone, PartialEq)]
enum Block {
    Text(String),
    Tool {
        id: String,
        name: String,
        input: Value,
    },
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    /// A server tool's result: id, status, items as `{"text": ..}` / `{"json": ..}`.
    ToolResult {
        id: String,
        status: Option<String>,
        items: Vec<Value>,
    },
    Image {
        format: String,
        bytes: Vec<u8>,
    },
    /// Text with the citations streamed for it.
    Cited {
        text: String,
        citations: Vec<Cite>,
    },
}

/// A citation: title, source, cited passages, `documentChar` start and end.
type Cite = (Option<String>, Option<String>, Vec<String>, Option<(i64, i64)>);

#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    blocks: Vec<Block>,
    stop_reason: String,
    usage: (i64, i64, i64, Option<i64>, Option<i64>),
}

// ===== generating a response =====

/// How a string is written in JSON: each char literal or `\u` escaped, `/` maybe `\/`.
fn json_string(s: &str, escape_bits: &[bool]) -> String {
    let mut out = String::from("\"");
    let mut bits = escape_bits.iter().cycle();
    for c in s.chars() {
        let escape = *bits.next().unwrap_or(&false);
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str(if escape { "\\u000a" } else { "\\n" }),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if escape => out.push_str("\\/"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if escape && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => Just(' '),
        4 => proptest::sample::select(vec![
            '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', '\u{7f}', 'é', 'ß', '€', '中',
            '😀', '\u{2028}', '\u{feff}', '𝄞'
        ]),
        1 => any::<char>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(text_char(), 0..40).prop_map(|v| v.into_iter().collect())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1.0e6f64..1.0e6).prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Spec {
    Text(Vec<String>),
    /// id, name, input, where to cut the serialized input (fractions of its chars).
    Tool(String, String, Value, Vec<usize>),
    Reasoning(Vec<String>, String),
    /// id, status, items (text or a JSON document).
    ToolResult(String, &'static str, Vec<Value>),
    /// format, the bytes of each delta.
    Image(&'static str, Vec<Vec<u8>>),
    /// text deltas, then a citation after each of them.
    Cited(Vec<String>, Vec<Cite>),
}

#[derive(Debug, Clone)]
struct Case {
    specs: Vec<Spec>,
    stop_reason: &'static str,
    usage: (i32, i32, Option<i32>, Option<i32>),
    escape_bits: Vec<bool>,
    interleave_tools: bool,
    /// Members of each delta payload in another order, padding first.
    shuffle: bool,
}

/// JSON without floats (the SDK reads numbers into its own `Document`).
fn plain_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn cite() -> impl Strategy<Value = Cite> {
    (
        proptest::option::of(text()),
        proptest::option::of("[a-z]{1,12}"),
        proptest::collection::vec(text(), 0..3),
        proptest::option::of((0..1000i64, 0..1000i64)),
    )
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        3 => proptest::collection::vec(text(), 1..6).prop_map(Spec::Text),
        3 => (
            "tooluse_[A-Za-z0-9]{6,22}",
            "[a-z][a-z_]{0,15}",
            prop_oneof![1 => Just(json!({})), 4 => proptest::collection::btree_map("[a-z]{1,6}", json_value(), 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect()))],
            proptest::collection::vec(0usize..1000, 0..8),
        )
            .prop_map(|(id, name, input, cuts)| Spec::Tool(id, name, input, cuts)),
        1 => (proptest::collection::vec(text(), 1..4), "[A-Za-z0-9+/]{20,60}={0,2}")
            .prop_map(|(t, s)| Spec::Reasoning(t, s)),
        1 => (
            "srvtoolu_[A-Za-z0-9]{6,16}",
            proptest::sample::select(vec!["success", "error"]),
            proptest::collection::vec(
                prop_oneof![
                    text().prop_map(|t| json!({"text": t})),
                    // An object, as tool results are (the SDK reads `"json": null`
                    // as no member at all).
                    plain_json().prop_map(|v| json!({"json": {"result": v}})),
                ],
                1..4,
            ),
        )
            .prop_map(|(id, status, items)| Spec::ToolResult(id, status, items)),
        1 => (
            proptest::sample::select(vec!["png", "jpeg", "gif", "webp"]),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 1..4),
        )
            .prop_map(|(format, parts)| Spec::Image(format, parts)),
        1 => (proptest::collection::vec(text(), 1..4), proptest::collection::vec(cite(), 1..3))
            .prop_map(|(t, c)| Spec::Cited(t, c)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(spec(), 1..6),
        proptest::sample::select(vec!["end_turn", "tool_use", "max_tokens", "stop_sequence"]),
        (
            0..100_000i32,
            0..100_000i32,
            proptest::option::of(0..5000i32),
            proptest::option::of(0..5000i32),
        ),
        proptest::collection::vec(any::<bool>(), 1..17),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(specs, stop_reason, usage, escape_bits, interleave_tools, shuffle)| Case {
                specs,
                stop_reason,
                usage,
                escape_bits,
                interleave_tools,
                shuffle,
            },
        )
}

/// Cuts `s` into pieces at char boundaries picked by `cuts` (the first piece is always
/// `""`, as Bedrock sends it).
fn cut(s: &str, cuts: &[usize]) -> Vec<String> {
    let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let mut points: Vec<usize> = cuts.iter().map(|c| boundaries[c % boundaries.len()]).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = vec![String::new()];
    let mut start = 0;
    for p in points.into_iter().chain([s.len()]) {
        if p > start {
            out.push(s[start..p].to_owned());
            start = p;
        }
    }
    out
}

/// Server tool result items as a finished block holds them: a text item continues the
/// text item before it, as text deltas do (the SDK hands over each delta's items as
/// they came; the fold is the assembler's documented choice).
fn fold_items(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        match (out.last_mut().and_then(|l| l.get_mut("text")), item.get("text")) {
            (Some(Value::String(prev)), Some(Value::String(t))) => prev.push_str(t),
            _ => out.push(item),
        }
    }
    out
}

/// A `contentBlockDelta` payload: `delta` is the JSON of its one member; `shuffle` puts
/// the padding first and the index last.
fn delta_payload(index: usize, delta: &str, shuffle: bool) -> String {
    if shuffle {
        format!(r#"{{"p":"abcdefg","delta":{{{delta}}},"contentBlockIndex":{index}}}"#)
    } else {
        format!(r#"{{"contentBlockIndex":{index},"delta":{{{delta}}},"p":"abcd"}}"#)
    }
}

/// A JSON value written with `esc` for every string (keys stay plain).
fn write_json(v: &Value, esc: &dyn Fn(&str) -> String) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(|x| write_json(x, esc)).collect::<Vec<_>>().join(",")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("\"{k}\":{}", write_json(x, esc)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// The `citation` delta member of `c`.
fn citation_json(c: &Cite, esc: &dyn Fn(&str) -> String) -> String {
    let mut members = Vec::new();
    if let Some(t) = &c.0 {
        members.push(format!("\"title\":{}", esc(t)));
    }
    if let Some(s) = &c.1 {
        members.push(format!("\"source\":{}", esc(s)));
    }
    if !c.2.is_empty() {
        let parts: Vec<String> = c.2.iter().map(|t| format!("{{\"text\":{}}}", esc(t))).collect();
        members.push(format!("\"sourceContent\":[{}]", parts.join(",")));
    }
    if let Some((start, end)) = c.3 {
        members.push(format!(
            r#""location":{{"documentChar":{{"documentIndex":0,"start":{start},"end":{end}}}}}"#
        ));
    }
    format!(r#""citation":{{{}}}"#, members.join(","))
}

/// The event-stream body and the outcome both decoders must produce.
fn encode(case: &Case) -> (Vec<u8>, Outcome) {
    let esc = |s: &str| json_string(s, &case.escape_bits);
    let mut events: Vec<(&str, String)> =
        vec![("messageStart", r#"{"p":"abcdefgh","role":"assistant"}"#.into())];
    let mut blocks = Vec::new();
    let mut pending_tools: Vec<(usize, Vec<String>)> = Vec::new();
    let flush_tools = |events: &mut Vec<(&str, String)>, pending: &mut Vec<(usize, Vec<String>)>| {
        // Parallel tool calls: all starts first, then deltas round-robin, then stops.
        let max = pending.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
        for round in 0..max {
            for (index, frags) in pending.iter() {
                if let Some(f) = frags.get(round) {
                    events.push((
                        "contentBlockDelta",
                        delta_payload(
                            *index,
                            &format!(r#""toolUse":{{"input":{}}}"#, esc(f)),
                            case.shuffle,
                        ),
                    ));
                }
            }
        }
        for (index, _) in pending.drain(..) {
            events.push((
                "contentBlockStop",
                format!(r#"{{"contentBlockIndex":{index},"p":"abc"}}"#),
            ));
        }
    };
    for (index, spec) in case.specs.iter().enumerate() {
        if !matches!(spec, Spec::Tool(..)) {
            flush_tools(&mut events, &mut pending_tools);
        }
        match spec {
            Spec::Text(chunks) => {
                for c in chunks {
                    events.push((
                        "contentBlockDelta",
                        delta_payload(index, &format!(r#""text":{}"#, esc(c)), case.shuffle),
                    ));
                }
                events.push(("contentBlockStop", format!(r#"{{"contentBlockIndex":{index}}}"#)));
                blocks.push(Block::Text(chunks.concat()));
            }
            Spec::Reasoning(chunks, sig) => {
                for c in chunks {
                    events.push((
                        "contentBlockDelta",
                        delta_payload(
                            index,
                            &format!(r#""reasoningContent":{{"text":{}}}"#, esc(c)),
                            case.shuffle,
                        ),
                    ));
                }
                events.push((
                    "contentBlockDelta",
                    format!(r#"{{"contentBlockIndex":{index},"delta":{{"reasoningContent":{{"signature":"{sig}"}}}}}}"#),
                ));
                events.push(("contentBlockStop", format!(r#"{{"contentBlockIndex":{index}}}"#)));
                blocks.push(Block::Reasoning {
                    text: chunks.concat(),
                    signature: Some(sig.clone()),
                });
            }
            Spec::ToolResult(id, status, items) => {
                events.push((
                    "contentBlockStart",
                    format!(
                        r#"{{"contentBlockIndex":{index},"start":{{"toolResult":{{"toolUseId":{},"type":"web_search_result","status":"{status}"}}}}}}"#,
                        esc(id)
                    ),
                ));
                for item in items {
                    let delta = format!(r#""toolResult":[{}]"#, write_json(item, &esc));
                    events.push(("contentBlockDelta", delta_payload(index, &delta, case.shuffle)));
                }
                events.push(("contentBlockStop", format!(r#"{{"contentBlockIndex":{index}}}"#)));
                blocks.push(Block::ToolResult {
                    id: id.clone(),
                    status: Some((*status).to_owned()),
                    items: fold_items(items.clone()),
                });
            }
            Spec::Image(format, parts) => {
                events.push((
                    "contentBlockStart",
                    format!(r#"{{"contentBlockIndex":{index},"start":{{"image":{{"format":"{format}"}}}}}}"#),
                ));
                for part in parts {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(part);
                    let delta = format!(r#""image":{{"source":{{"bytes":"{b64}"}}}}"#);
                    events.push(("contentBlockDelta", delta_payload(index, &delta, case.shuffle)));
                }
                events.push(("contentBlockStop", format!(r#"{{"contentBlockIndex":{index}}}"#)));
                blocks.push(Block::Image {
                    format: (*format).to_owned(),
                    bytes: parts.concat(),
                });
            }
            Spec::Cited(chunks, cites) => {
                for (i, c) in chunks.iter().enumerate() {
                    let delta = format!(r#""text":{}"#, esc(c));
                    events.push(("contentBlockDelta", delta_payload(index, &delta, case.shuffle)));
                    if let Some(cite) = cites.get(i) {
                        let delta = citation_json(cite, &esc);
                        events.push(("contentBlockDelta", delta_payload(index, &delta, case.shuffle)));
                    }
                }
                for cite in cites.iter().skip(chunks.len()) {
                    let delta = citation_json(cite, &esc);
                    events.push(("contentBlockDelta", delta_payload(index, &delta, case.shuffle)));
                }
                events.push(("contentBlockStop", format!(r#"{{"contentBlockIndex":{index}}}"#)));
                blocks.push(Block::Cited {
                    text: chunks.concat(),
                    citations: cites.clone(),
                });
            }
            Spec::Tool(id, name, input, cuts) => {
                events.push((
                    "contentBlockStart",
                    format!(
                        r#"{{"contentBlockIndex":{index},"start":{{"toolUse":{{"name":{},"toolUseId":{}}}}}}}"#,
                        esc(name),
                        esc(id)
                    ),
                ));
                let serialized = if input == &json!({}) && cuts.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(input).expect("json")
                };
                pending_tools.push((index, cut(&serialized, cuts)));
                if !case.interleave_tools {
                    flush_tools(&mut events, &mut pending_tools);
                }
                blocks.push(Block::Tool {
                    id: id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                });
            }
        }
    }
    flush_tools(&mut events, &mut pending_tools);
    events.push((
        "messageStop",
        format!(
            r#"{{"additionalModelResponseFields":{{"delta":{{"stop_sequence":null}}}},"stopReason":"{}"}}"#,
            case.stop_reason
        ),
    ));
    let (input, output, cache_read, cache_write) = case.usage;
    let mut usage = json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output, "serverToolUsage": {}});
    if let Some(n) = cache_read {
        usage["cacheReadInputTokens"] = json!(n);
    }
    if let Some(n) = cache_write {
        usage["cacheWriteInputTokens"] = json!(n);
    }
    events.push((
        "metadata",
        json!({"metrics": {"latencyMs": 1234}, "p": "abcdefghij", "usage": usage, "serviceTier": {"type": "default"}})
            .to_string(),
    ));

    let mut body = BytesMut::new();
    let mut codec = EventStreamCodec::default();
    for (ty, payload) in &events {
        codec
            .encode(&event_frame(ty, payload), &mut body)
            .expect("encode");
    }
    let outcome = Outcome {
        blocks,
        stop_reason: case.stop_reason.to_owned(),
        usage: (
            i64::from(input),
            i64::from(output),
            i64::from(input + output),
            cache_read.map(i64::from),
            cache_write.map(i64::from),
        ),
    };
    (body.to_vec(), outcome)
}

// ===== our side =====

fn ours(body: &[u8]) -> Outcome {
    let mut buf = BytesMut::from(body);
    let mut codec = EventStreamCodec::default();
    let mut asm = StreamAssembler::new();
    while let Some(m) = codec.decode(&mut buf).expect("decode") {
        asm.push(&m).expect("push");
    }
    let r: ConverseResponse = asm.finish().expect("finish");
    let blocks = r
        .content()
        .iter()
        .map(|b| match b {
            ContentBlock::Text(t) => Block::Text(t.clone()),
            ContentBlock::ToolUse(t) => Block::Tool {
                id: t.tool_use_id.clone(),
                name: t.name.clone(),
                input: t.input.to_value(),
            },
            ContentBlock::ReasoningContent(ReasoningContentBlock::ReasoningText(t)) => Block::Reasoning {
                text: t.text.clone(),
                signature: t.signature.clone(),
            },
            ContentBlock::ToolResult(t) => Block::ToolResult {
                id: t.tool_use_id.clone(),
                status: t.status.clone(),
                items: t
                    .content
                    .iter()
                    .map(|item| match item {
                        ToolResultContentBlock::Text(s) => json!({"text": s}),
                        ToolResultContentBlock::Json(v) => json!({"json": v}),
                        other => panic!("unexpected tool result item {other:?}"),
                    })
                    .collect(),
            },
            ContentBlock::Image(i) => Block::Image {
                format: i.format.clone(),
                bytes: match &i.source {
                    MediaSource::Bytes(b) => b.as_bytes().to_vec(),
                    other => panic!("unexpected image source {other:?}"),
                },
            },
            ContentBlock::CitationsContent(c) => Block::Cited {
                text: c.content.iter().filter_map(|g| g.text.as_deref()).collect(),
                citations: c
                    .citations
                    .iter()
                    .map(|c| {
                        let at = |k: &str| {
                            c.location
                                .as_ref()
                                .and_then(|l| l.pointer(&format!("/documentChar/{k}"))?.as_i64())
                        };
                        (
                            c.title.clone(),
                            c.source.clone(),
                            c.source_content.iter().filter_map(|s| s.text.clone()).collect(),
                            at("start").zip(at("end")),
                        )
                    })
                    .collect(),
            },
            other => panic!("unexpected block {other:?}"),
        })
        .collect();
    let u = r.usage.expect("usage");
    let n = |v: u64| i64::try_from(v).expect("fits");
    Outcome {
        blocks,
        stop_reason: r.stop_reason.expect("stop").as_str().to_owned(),
        usage: (
            n(u.input_tokens),
            n(u.output_tokens),
            n(u.total_tokens),
            u.cache_read_input_tokens.map(n),
            u.cache_write_input_tokens.map(n),
        ),
    }
}

// ===== the SDK's side =====

async fn sdk(client: &aws_sdk_bedrockruntime::Client) -> Outcome {
    let message = aws::Message::builder()
        .role(aws::ConversationRole::User)
        .content(aws::ContentBlock::Text("hi".into()))
        .build()
        .expect("message");
    let out = client
        .converse_stream()
        .model_id("anthropic.claude-test")
        .messages(message)
        .send()
        .await
        .expect("send");
    let mut stream = out.stream;
    // Per index: (kind, text, signature, tool id, tool name, raw input)
    #[derive(Default)]
    struct Acc {
        text: Option<String>,
        reasoning: Option<(String, Option<String>)>,
        tool: Option<(String, String, String)>,
        tool_result: Option<(String, Option<String>, Vec<Value>)>,
        image: Option<(String, Vec<u8>)>,
        citations: Vec<Cite>,
    }
    let mut accs: Vec<Acc> = Vec::new();
    let slot = |accs: &mut Vec<Acc>, i: i32| -> usize {
        let i = usize::try_from(i).expect("index");
        if accs.len() <= i {
            accs.resize_with(i + 1, Acc::default);
        }
        i
    };
    let mut stop_reason = None;
    let mut usage = None;
    while let Some(event) = stream.recv().await.expect("recv") {
        match event {
            aws::ConverseStreamOutput::ContentBlockStart(e) => {
                let i = slot(&mut accs, e.content_block_index());
                match e.start() {
                    Some(aws::ContentBlockStart::ToolUse(t)) => {
                        accs[i].tool = Some((t.tool_use_id().to_owned(), t.name().to_owned(), String::new()))
                    }
                    Some(aws::ContentBlockStart::ToolResult(t)) => {
                        let status = t.status().map(|s| s.as_str().to_owned());
                        accs[i].tool_result = Some((t.tool_use_id().to_owned(), status, Vec::new()));
                    }
                    Some(aws::ContentBlockStart::Image(t)) => {
                        accs[i].image = Some((t.format().as_str().to_owned(), Vec::new()))
                    }
                    other => panic!("{other:?}"),
                }
            }
            aws::ConverseStreamOutput::ContentBlockDelta(e) => {
                let i = slot(&mut accs, e.content_block_index());
                match e.delta().expect("delta") {
                    aws::ContentBlockDelta::Text(t) => {
                        accs[i].text.get_or_insert_with(String::new).push_str(t)
                    }
                    aws::ContentBlockDelta::ToolUse(t) => {
                        accs[i].tool.as_mut().expect("tool start").2.push_str(t.input())
                    }
                    aws::ContentBlockDelta::ReasoningContent(r) => {
                        let acc = accs[i].reasoning.get_or_insert_with(Default::default);
                        match r {
                            aws::ReasoningContentBlockDelta::Text(t) => acc.0.push_str(t),
                            aws::ReasoningContentBlockDelta::Signature(s) => {
                                acc.1.get_or_insert_with(String::new).push_str(s)
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    aws::ContentBlockDelta::ToolResult(items) => {
                        let acc = accs[i].tool_result.as_mut().expect("tool result start");
                        for item in items {
                            acc.2.push(match item {
                                aws::ToolResultBlockDelta::Text(t) => json!({"text": t}),
                                aws::ToolResultBlockDelta::Json(d) => json!({"json": document(d)}),
                                other => panic!("{other:?}"),
                            });
                        }
                    }
                    aws::ContentBlockDelta::Image(d) => {
                        let acc = accs[i].image.as_mut().expect("image start");
                        match d.source() {
                            Some(aws::ImageSource::Bytes(b)) => acc.1.extend_from_slice(b.as_ref()),
                            other => panic!("{other:?}"),
                        }
                    }
                    aws::ContentBlockDelta::Citation(c) => {
                        let at = match c.location() {
                            Some(aws::CitationLocation::DocumentChar(d)) => {
                                d.start().map(i64::from).zip(d.end().map(i64::from))
                            }
                            None => None,
                            other => panic!("{other:?}"),
                        };
                        accs[i].citations.push((
                            c.title().map(str::to_owned),
                            c.source().map(str::to_owned),
                            c.source_content()
                                .iter()
                                .filter_map(|s| s.text().map(str::to_owned))
                                .collect(),
                            at,
                        ));
                    }
                    other => panic!("{other:?}"),
                }
            }
            aws::ConverseStreamOutput::MessageStop(e) => {
                stop_reason = Some(e.stop_reason().as_str().to_owned())
            }
            aws::ConverseStreamOutput::Metadata(e) => {
                let u = e.usage().expect("usage");
                usage = Some((
                    i64::from(u.input_tokens()),
                    i64::from(u.output_tokens()),
                    i64::from(u.total_tokens()),
                    u.cache_read_input_tokens().map(i64::from),
                    u.cache_write_input_tokens().map(i64::from),
                ));
            }
            _ => {}
        }
    }
    let blocks = accs
        .into_iter()
        .map(|a| {
            if let Some((id, name, raw)) = a.tool {
                let input = if raw.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&raw).expect("tool input")
                };
                Block::Tool { id, name, input }
            } else if let Some((text, signature)) = a.reasoning {
                Block::Reasoning { text, signature }
            } else if let Some((id, status, items)) = a.tool_result {
                Block::ToolResult {
                    id,
                    status,
                    items: fold_items(items),
                }
            } else if let Some((format, bytes)) = a.image {
                Block::Image { format, bytes }
            } else if !a.citations.is_empty() {
                Block::Cited {
                    text: a.text.unwrap_or_default(),
                    citations: a.citations,
                }
            } else {
                Block::Text(a.text.unwrap_or_default())
            }
        })
        .collect();
    Outcome {
        blocks,
        stop_reason: stop_reason.expect("stop"),
        usage: usage.expect("usage"),
    }
}

/// The SDK's `Document` as JSON.
fn document(d: &aws_smithy_types::Document) -> Value {
    use aws_smithy_types::{Document as D, Number as N};
    match d {
        D::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), document(v))).collect()),
        D::Array(a) => Value::Array(a.iter().map(document).collect()),
        D::Number(N::PosInt(n)) => json!(n),
        D::Number(N::NegInt(n)) => json!(n),
        D::Number(N::Float(f)) => json!(f),
        D::String(s) => json!(s),
        D::Bool(b) => json!(b),
        D::Null => Value::Null,
    }
}

/// Serves `body` (whatever the current case put there) to every request.
async fn serve(listener: TcpListener, body: Arc<Mutex<Vec<u8>>>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let body = Arc::clone(&body);
        tokio::spawn(async move {
            // Read the request head and its body.
            let mut req = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                req.extend_from_slice(&chunk[..n]);
                if let Some(p) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p + 4;
                }
            };
            let head = String::from_utf8_lossy(&req[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while req.len() < head_end + len {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&chunk[..n]);
            }
            let body = body.lock().expect("lock").clone();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\n\
                 x-amzn-requestid: test\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(&body).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[test]
fn agrees_with_aws_sdk() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let body = Arc::new(Mutex::new(Vec::new()));
    let (client, _server) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(serve(listener, Arc::clone(&body)));
        let conf = aws_sdk_bedrockruntime::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .build();
        (aws_sdk_bedrockruntime::Client::from_conf(conf), server)
    });

    let cases = std::env::var("AGREEMENT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let stats = std::cell::Cell::new((0usize, 0usize, 0usize, 0usize));
    runner
        .run(&case(), |case| {
            let (bytes, expected) = encode(&case);
            let mine = ours(&bytes);
            *body.lock().expect("lock") = bytes;
            let theirs = rt.block_on(sdk(&client));
            prop_assert_eq!(&mine, &theirs);
            prop_assert_eq!(&mine, &expected);
            let mut s = stats.get();
            for b in &mine.blocks {
                match b {
                    Block::Text(_) => s.0 += 1,
                    Block::Tool { .. } => s.1 += 1,
                    Block::Reasoning { .. } => s.2 += 1,
                    Block::ToolResult { .. } | Block::Image { .. } | Block::Cited { .. } => s.3 += 1,
                }
            }
            stats.set(s);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let s = stats.get();
    println!(
        "{cases} cases agree: {} text, {} tool, {} reasoning, {} tool result / image / cited blocks",
        s.0, s.1, s.2, s.3
    );
    assert!(s.3 > 0, "the generator made no tool result, image or cited block");
}
