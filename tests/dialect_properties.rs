//! Property tests: every event sequence the assembler accepts, in any interleaving of
//! its blocks and cut by an exception anywhere, translates to a well-formed SSE stream
//! in both dialects, and a complete stream says what the non-streaming response says.
//! The writers' `push_frame` (text deltas forwarded as their JSON strings came, escapes
//! serde_json would not write included) gives the same events, as JSON, as the
//! assembler's events through `push`.

mod dialect_common;

use bedrock_converse::eventstream::Message;
use bedrock_converse::translate::{anthropic, openai};
use dialect_common::{
    accumulate, anthropic_sse, anthropic_writer, assembled, event, event_json, exception, openai_sse,
    openai_writer, parse_sse, sse, Path,
};
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
enum Block {
    Text(Vec<String>),
    Reasoning(Vec<String>, String),
    Redacted(Vec<u8>),
    Tool(String, Vec<usize>, u32),
    Cited(Vec<String>),
}

fn text_piece() -> impl Strategy<Value = String> {
    // Quotes, backslashes, control characters and non-ASCII, to exercise the escaper.
    proptest::string::string_regex("[a-zA-Z0-9 \"\\\\\n\t\u{1}é✓🦀]{0,12}").unwrap()
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        prop::collection::vec(text_piece(), 1..5).prop_map(Block::Text),
        (prop::collection::vec(text_piece(), 1..4), "[a-zA-Z0-9+/]{1,20}")
            .prop_map(|(t, s)| Block::Reasoning(t, s)),
        prop::collection::vec(any::<u8>(), 1..40).prop_map(Block::Redacted),
        (
            "[a-z_]{1,8}",
            prop::collection::vec(0usize..40, 0..4),
            any::<u32>()
        )
            .prop_map(|(name, cuts, n)| Block::Tool(name, cuts, n)),
        prop::collection::vec(text_piece(), 1..4).prop_map(Block::Cited),
    ]
}

/// The events of one block at Converse index `i`.
fn block_events(i: u32, b: &Block) -> Vec<(&'static str, Value)> {
    let delta = |d: Value| ("contentBlockDelta", json!({"contentBlockIndex": i, "delta": d}));
    let mut out = Vec::new();
    match b {
        Block::Text(parts) => out.extend(parts.iter().map(|p| delta(json!({"text": p})))),
        Block::Reasoning(parts, sig) => {
            out.extend(
                parts
                    .iter()
                    .map(|p| delta(json!({"reasoningContent": {"text": p}}))),
            );
            out.push(delta(json!({"reasoningContent": {"signature": sig}})));
        }
        Block::Redacted(bytes) => {
            let b64 = bedrock_converse::converse::Blob::from(bytes.clone()).to_base64();
            out.push(delta(json!({"reasoningContent": {"redactedContent": b64}})));
        }
        Block::Tool(name, cuts, n) => {
            out.push((
                "contentBlockStart",
                json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": format!("id{i}"), "name": name}}}),
            ));
            if !cuts.is_empty() {
                let input = json!({"n": n, "s": "a\"b", "path": "/tmp/é\n🦀\u{1}"}).to_string();
                let boundary = |mut c: usize| {
                    while !input.is_char_boundary(c) {
                        c -= 1;
                    }
                    c
                };
                let mut at: Vec<usize> = cuts.iter().map(|c| boundary(c % (input.len() + 1))).collect();
                at.sort_unstable();
                let mut prev = 0;
                for c in at.into_iter().chain([input.len()]) {
                    out.push(delta(json!({"toolUse": {"input": &input[prev..c]}})));
                    prev = c;
                }
            }
        }
        Block::Cited(parts) => {
            for (k, p) in parts.iter().enumerate() {
                out.push(delta(json!({"text": p})));
                out.push(delta(
                    json!({"citation": {"title": "doc", "sourceContent": [{"text": format!("q{k}")}],
                    "location": {"documentPage": {"documentIndex": 0, "start": k, "end": k + 1}}}}),
                ));
            }
        }
    }
    out.push(("contentBlockStop", json!({"contentBlockIndex": i})));
    out
}

#[derive(Debug, Clone)]
struct Case {
    blocks: Vec<Block>,
    order: Vec<usize>,
    stop: &'static str,
    metadata: bool,
    cut: Option<(usize, usize)>,
    /// Bedrock's `"p"` padding on every event, this long.
    pad: Option<usize>,
    /// Every payload with escapes serde_json does not write (`\/`, `\u00e9`), which
    /// `push_frame` copies as they came.
    escapes: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(block(), 0..6),
        prop::collection::vec(any::<usize>(), 0..200),
        prop::sample::select(vec![
            "end_turn",
            "tool_use",
            "max_tokens",
            "stop_sequence",
            "content_filtered",
            "malformed_tool_use",
        ]),
        any::<bool>(),
        prop::option::weighted(0.2, (any::<usize>(), 0usize..3)),
        prop::option::of(0usize..60),
        any::<bool>(),
    )
        .prop_map(|(blocks, order, stop, metadata, cut, pad, escapes)| Case {
            blocks,
            order,
            stop,
            metadata,
            cut,
            pad,
            escapes,
        })
}

/// The frames of a case: blocks interleaved as `order` picks (each block's own events in
/// order).
fn case_frames(c: &Case) -> Vec<Message> {
    let mut queues: Vec<std::collections::VecDeque<(&str, Value)>> = c
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| block_events(i as u32, b).into())
        .collect();
    let mut events = vec![("messageStart", json!({"role": "assistant"}))];
    let mut picks = c.order.iter();
    // Blocks start in index order (as Bedrock sends them); tool calls then interleave
    // freely with everything, while text-like blocks come one at a time (OpenAI has one
    // `content` string, so interleaved text could not keep its order).
    let is_tool = |i: usize| matches!(c.blocks[i], Block::Tool(..));
    let mut started = 0;
    let mut current_text: Option<usize> = None;
    while queues.iter().any(|q| !q.is_empty()) {
        let live: Vec<usize> = (0..queues.len().min(started + 1))
            .filter(|&i| !queues[i].is_empty())
            .filter(|&i| is_tool(i) || current_text.is_none() || current_text == Some(i))
            .collect();
        let pick = live[picks.next().copied().unwrap_or(0) % live.len()];
        started = started.max(pick + 1);
        events.push(queues[pick].pop_front().unwrap());
        if !is_tool(pick) {
            current_text = (!queues[pick].is_empty()).then_some(pick);
        }
    }
    events.push(("messageStop", json!({"stopReason": c.stop})));
    if c.metadata {
        events.push((
            "metadata",
            json!({"usage": {"inputTokens": 5, "outputTokens": 6, "totalTokens": 19,
            "cacheReadInputTokens": 7, "cacheWriteInputTokens": 1}}),
        ));
    }
    const PAD: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut frames: Vec<Message> = events
        .into_iter()
        .map(|(t, mut p)| {
            if let Some(n) = c.pad {
                p["p"] = json!(&PAD[..n]);
            }
            if c.escapes {
                // `/` and `é` stand only inside strings, where these escapes mean them.
                event_json(t, &p.to_string().replace('/', "\\/").replace('é', "\\u00e9"))
            } else {
                event(t, p)
            }
        })
        .collect();
    if let Some((at, kind)) = c.cut {
        // At least the last frame is lost: the exception comes before the stream's end.
        let at = at % frames.len();
        frames.truncate(at);
        let kind = [
            "throttlingException",
            "modelStreamErrorException",
            "internalServerException",
        ][kind];
        frames.push(exception(kind, "cut"));
    }
    frames
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn openai_stream_is_well_formed(c in case()) {
        let frames = case_frames(&c);
        let events = parse_sse(&openai_sse(&frames, true));
        prop_assert_eq!(&parse_sse(&sse(&frames, openai_writer(true), Path::Frames)), &events);
        let last = &events.last().expect("something written").data;
        let failed = c.cut.is_some() || c.stop.starts_with("malformed");
        if failed {
            prop_assert!(last.get("error").is_some(), "{last}");
        } else {
            prop_assert_eq!(last, &json!("[DONE]"));
        }
        // Every chunk but the end is a chat.completion.chunk with one choice or the usage chunk.
        let mut calls: Vec<(String, String)> = Vec::new();
        let mut text = String::new();
        let mut finishes = 0;
        for e in &events {
            prop_assert!(e.event.is_none());
            let d = &e.data;
            if d.get("error").is_some() || d == &json!("[DONE]") {
                continue;
            }
            prop_assert_eq!(&d["object"], "chat.completion.chunk");
            if d["choices"] == json!([]) {
                prop_assert!(d["usage"]["prompt_tokens"] == 13);
                continue;
            }
            let choice = &d["choices"][0];
            if choice["finish_reason"].is_string() {
                finishes += 1;
            }
            if let Some(t) = choice["delta"]["content"].as_str() {
                text.push_str(t);
            }
            if let Some(list) = choice["delta"]["tool_calls"].as_array() {
                let tc = &list[0];
                let i = tc["index"].as_u64().unwrap() as usize;
                if i == calls.len() {
                    calls.push((tc["id"].as_str().unwrap().to_owned(), String::new()));
                } else {
                    prop_assert!(i < calls.len());
                    prop_assert!(tc.get("id").is_none());
                }
                calls[i].1.push_str(tc["function"]["arguments"].as_str().unwrap());
            }
        }
        prop_assert!(finishes <= 1);
        if !failed {
            prop_assert_eq!(finishes, 1);
            // The stream says what the non-streaming response says.
            let body: Value = serde_json::from_slice(
                &openai::chat_completion_json(&assembled(&frames), "chatcmpl-test", "test-model", 1).unwrap()).unwrap();
            let msg = &body["choices"][0]["message"];
            prop_assert_eq!(msg["content"].as_str().unwrap_or(""), text.as_str());
            let want: Vec<(String, Value)> = msg["tool_calls"].as_array().map(|a| a.iter().map(|c| (
                c["id"].as_str().unwrap().to_owned(),
                serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap())).collect()).unwrap_or_default();
            let got: Vec<(String, Value)> = calls.iter().map(|(id, a)| (id.clone(), serde_json::from_str(a).unwrap())).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn anthropic_stream_is_well_formed(c in case()) {
        let frames = case_frames(&c);
        let events = parse_sse(&anthropic_sse(&frames));
        prop_assert_eq!(&parse_sse(&sse(&frames, anthropic_writer(), Path::Frames)), &events);
        let message = accumulate(&events);
        let last = events.last().expect("something written").event.clone();
        let failed = c.cut.is_some() || c.stop.starts_with("malformed");
        if failed {
            prop_assert_eq!(last.as_deref(), Some("error"));
        } else {
            prop_assert_eq!(last.as_deref(), Some("message_stop"));
            let body: Value = serde_json::from_slice(
                &anthropic::message_json(&assembled(&frames), "msg_test", "test-model").unwrap()).unwrap();
            prop_assert_eq!(&message["content"], &body["content"]);
            prop_assert_eq!(&message["stop_reason"], &body["stop_reason"]);
            if c.metadata {
                prop_assert_eq!(&message["usage"], &body["usage"]);
            }
        }
    }
}
