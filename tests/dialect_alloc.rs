//! Allocations of the dialect SSE writers in steady state, counted by a global
//! allocator (`stats_alloc`; our own code forbids the `unsafe` a `GlobalAlloc` needs).
//! One `#[test]` in this file, so that nothing else runs on another thread meanwhile.
//!
//! The events are built before counting (borrowed strings, as the assembler returns
//! them for unescaped frames); the writers then translate them into one reused buffer,
//! cleared after each event as a server clears its write buffer once sent.
//!
//! Then whole frames through `push_frame` (what the gateway does): a stream of 10,000
//! text and reasoning deltas costs exactly the allocations of the same stream with 100
//! (the blocks' own, nothing per delta).

use std::alloc::System;
use std::borrow::Cow;

use bedrock_converse::converse::{
    ContentBlockDelta, ContentBlockStart, Role, StopReason, StreamAssembler, StreamEvent, TokenUsage,
};
use bedrock_converse::eventstream::{Message, MessageBuilder};
use bedrock_converse::translate::{anthropic, openai, SseWriter};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const DELTAS: usize = 10_000;

/// A long stream: reasoning with its signature, text with quotes and newlines, and two
/// parallel tool calls whose input fragments interleave.
fn events(texts: &[String]) -> Vec<StreamEvent<'_>> {
    let mut out = vec![StreamEvent::MessageStart {
        role: Role::Assistant,
    }];
    let third = texts.len() / 3;
    for t in &texts[..third] {
        out.push(StreamEvent::ContentBlockDelta {
            index: 0,
            delta: ContentBlockDelta::ReasoningText(Cow::Borrowed(t)),
        });
    }
    out.push(StreamEvent::ContentBlockDelta {
        index: 0,
        delta: ContentBlockDelta::ReasoningSignature(Cow::Borrowed("c2lnbmF0dXJl")),
    });
    out.push(StreamEvent::ContentBlockStop { index: 0 });
    for t in &texts[third..2 * third] {
        out.push(StreamEvent::ContentBlockDelta {
            index: 1,
            delta: ContentBlockDelta::Text(Cow::Borrowed(t)),
        });
    }
    out.push(StreamEvent::ContentBlockStop { index: 1 });
    for i in [2, 3] {
        out.push(StreamEvent::ContentBlockStart {
            index: i,
            start: ContentBlockStart::ToolUse {
                tool_use_id: Cow::Borrowed("tooluse_abcdefghij"),
                name: Cow::Borrowed("get_weather"),
                r#type: None,
            },
        });
    }
    for (k, t) in texts[2 * third..].iter().enumerate() {
        out.push(StreamEvent::ContentBlockDelta {
            index: 2 + (k % 2) as u32,
            delta: ContentBlockDelta::ToolUseInput(Cow::Borrowed(t)),
        });
    }
    out.push(StreamEvent::ContentBlockStop { index: 2 });
    out.push(StreamEvent::ContentBlockStop { index: 3 });
    out.push(StreamEvent::MessageStop {
        stop_reason: StopReason::ToolUse,
        additional_model_response_fields: None,
    });
    out
}

/// Translates `events` twice with each writer (the first pass grows the buffer) and
/// returns the allocations of the second pass: (OpenAI, Anthropic, bytes written).
fn count(events: &[StreamEvent<'_>], usage: &StreamEvent<'_>) -> (usize, usize, usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut written = 0;
    let mut results = [0usize; 2];
    for (dialect, result) in results.iter_mut().enumerate() {
        for pass in 0..2 {
            // Made outside the counted region: one per response, not per event.
            let mut oai =
                openai::ChatStreamWriter::new("chatcmpl-0123456789", "claude-sonnet", 1_700_000_000, true);
            let mut ant = anthropic::MessagesStreamWriter::new("msg_0123456789", "claude-sonnet");
            let region = Region::new(GLOBAL);
            for e in events.iter().chain([usage]) {
                if dialect == 0 {
                    oai.push(e, &mut buf);
                } else {
                    ant.push(e, &mut buf);
                }
                written += buf.len();
                buf.clear();
            }
            if dialect == 0 {
                oai.finish(&mut buf);
            } else {
                ant.finish(&mut buf);
            }
            buf.clear();
            let change = region.change();
            if pass == 1 {
                *result = change.allocations + change.reallocations;
            }
        }
    }
    (results[0], results[1], written)
}

/// A Bedrock-like stream of frames: `deltas` reasoning deltas, a signature, then
/// `deltas` text deltas (quotes, newlines and non-ASCII among them), `"p"` padding on
/// each, stop and metadata.
fn text_frames(deltas: usize) -> Vec<Message> {
    let frame = |ty: &str, json: String| {
        MessageBuilder::new()
            .string_header(":event-type", ty)
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "event")
            .build(json.as_bytes())
            .expect("frame")
    };
    let text = |i: usize| match i % 4 {
        0 => format!("token {i} "),
        1 => format!("\\\"quoted\\\" {i}\\n"),
        2 => "\\u00e9t\\u00e9 ".to_owned(),
        _ => "é✓ tab\\t".to_owned(),
    };
    let mut out = vec![frame("messageStart", r#"{"role":"assistant"}"#.to_owned())];
    for i in 0..deltas {
        out.push(frame(
            "contentBlockDelta",
            format!(
                r#"{{"contentBlockIndex":0,"delta":{{"reasoningContent":{{"text":"{}"}}}},"p":"abcdefgh"}}"#,
                text(i)
            ),
        ));
    }
    out.push(frame(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"c2ln"}}}"#.to_owned(),
    ));
    out.push(frame("contentBlockStop", r#"{"contentBlockIndex":0}"#.to_owned()));
    for i in 0..deltas {
        out.push(frame(
            "contentBlockDelta",
            format!(
                r#"{{"contentBlockIndex":1,"delta":{{"text":"{}"}},"p":"abcdefghijklmn"}}"#,
                text(i)
            ),
        ));
    }
    out.push(frame("contentBlockStop", r#"{"contentBlockIndex":1}"#.to_owned()));
    out.push(frame("messageStop", r#"{"stopReason":"end_turn"}"#.to_owned()));
    out.push(frame(
        "metadata",
        r#"{"usage":{"inputTokens":10,"outputTokens":20,"totalTokens":30}}"#.to_owned(),
    ));
    out
}

/// Allocations while `frames` go through a fresh assembler and each writer's
/// `push_frame` into a reused buffer (cleared per frame): (OpenAI, Anthropic).
fn frame_allocations(frames: &[Message]) -> (usize, usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut results = [0usize; 2];
    for (dialect, result) in results.iter_mut().enumerate() {
        let mut asm = StreamAssembler::new();
        let mut oai =
            openai::ChatStreamWriter::new("chatcmpl-0123456789", "claude-sonnet", 1_700_000_000, true);
        let mut ant = anthropic::MessagesStreamWriter::new("msg_0123456789", "claude-sonnet");
        let region = Region::new(GLOBAL);
        for m in frames {
            let pushed = if dialect == 0 {
                oai.push_frame(&mut asm, m.as_frame(), &mut buf)
            } else {
                ant.push_frame(&mut asm, m.as_frame(), &mut buf)
            };
            pushed.expect("valid stream");
            buf.clear();
        }
        let change = region.change();
        *result = change.allocations + change.reallocations;
        assert!(asm.is_stopped() && asm.usage().is_some());
    }
    (results[0], results[1])
}

#[test]
fn writers_allocate_nothing_per_event() {
    let texts: Vec<String> = (0..DELTAS)
        .map(|i| match i % 4 {
            0 => format!("token {i} "),
            1 => format!("\"quoted\" {i}\n"),
            2 => format!("{{\"k{i}\":"),
            _ => "é✓ tab\t".to_owned(),
        })
        .collect();
    let events = events(&texts);
    let usage = StreamEvent::Metadata {
        usage: Some(TokenUsage {
            input_tokens: 10,
            output_tokens: 20,
            total_tokens: 30,
            cache_read_input_tokens: Some(5),
            cache_write_input_tokens: None,
            ..Default::default()
        }),
        metrics: None,
        trace: None,
    };
    let (oai, ant, bytes) = count(&events, &usage);
    println!(
        "{} events: OpenAI writer {oai} allocations, Anthropic writer {ant} allocations ({bytes} SSE bytes)",
        events.len() + 1
    );
    // The writers' block tables are sized at construction for a handful of blocks.
    assert_eq!(
        oai,
        0,
        "OpenAI writer: {oai} allocations for {} events",
        events.len()
    );
    assert_eq!(
        ant,
        0,
        "Anthropic writer: {ant} allocations for {} events",
        events.len()
    );

    let (short, long) = (text_frames(100), text_frames(DELTAS));
    let (short, long) = (frame_allocations(&short), frame_allocations(&long));
    println!(
        "push_frame, {DELTAS} text and reasoning deltas each: {long:?} allocations (OpenAI, \
         Anthropic); with 100: {short:?}"
    );
    assert_eq!(long, short, "push_frame allocates per forwarded delta");
}
