//! The state machine keeps its promise: a rejected event leaves the assembler exactly
//! as it was (`partial()` and `missing()` just before and just after are equal), and
//! the stream can continue to the same response as if the bad event never came.

use bedrock_converse::converse::{ConverseResponse, Missing, StreamAssembler, StreamError};
use bedrock_converse::eventstream::Message;
use proptest::prelude::*;

mod common;
use common::{corpus, event_frame};

/// A small valid stream: text, two interleaved tool calls, reasoning.
fn stream(seed: u64, text_deltas: usize) -> Vec<corpus::Event> {
    let mut s = corpus::Stream::new(seed);
    s.text_block(0, text_deltas);
    s.parallel_tools(1, 2, 3);
    s.reasoning_block(3, 2);
    s.finish("tool_use")
}

fn assemble(events: &[corpus::Event]) -> ConverseResponse {
    let mut asm = StreamAssembler::new();
    for (ty, p) in events {
        asm.push(&event_frame(ty, p))
            .unwrap_or_else(|e| panic!("{ty} {p}: {e}"));
    }
    asm.finish().expect("complete")
}

/// Ways to spoil event `at` of a stream.
fn corrupt(events: &[corpus::Event], at: usize, how: u8, cut: usize) -> Option<Message> {
    let (ty, p) = events.get(at)?;
    Some(match how % 6 {
        // A payload cut short.
        0 => event_frame(ty, p.get(..cut % p.len().max(1)).unwrap_or_default()),
        // A second messageStart.
        1 => event_frame("messageStart", r#"{"role":"assistant"}"#),
        // Tool input for the text block.
        2 => event_frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{"}}}"#,
        ),
        // A stop for a block that never started.
        3 => event_frame("contentBlockStop", r#"{"contentBlockIndex":77}"#),
        // Text for the reasoning block, once it exists.
        4 => event_frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":3,"delta":{"text":"x"}}"#,
        ),
        // A start for a block that exists.
        _ => event_frame(
            "contentBlockStart",
            r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"a","name":"b"}}}"#,
        ),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_rejected_event_changes_nothing(
        seed in 1u64..1_000_000,
        deltas in 1usize..6,
        at_pick in 0usize..1000,
        how in 0u8..6,
        cut in 0usize..400,
        lenient in any::<bool>(),
    ) {
        let events = stream(seed, deltas);
        let expected = assemble(&events);
        let at = at_pick % events.len();
        let bad = corrupt(&events, at, how, cut).expect("event");
        let mut asm = StreamAssembler::new().allow_missing_message_start(lenient);
        for (ty, p) in &events[..at] {
            asm.push(&event_frame(ty, p)).expect("valid prefix");
        }
        let (before, missing_before) = (asm.partial(), asm.missing());
        match asm.push(&bad) {
            // Some spoilings are valid at some points (a second messageStart before the
            // first, a text delta before the reasoning block exists).
            Ok(_) => {}
            Err(_) => {
                prop_assert_eq!(&asm.partial(), &before);
                prop_assert_eq!(asm.missing(), missing_before);
                // And the stream goes on to the response it would have had.
                for (ty, p) in &events[at..] {
                    asm.push(&event_frame(ty, p)).expect("the rest");
                }
                prop_assert_eq!(asm.finish().expect("complete"), expected);
            }
        }
    }
}

#[test]
fn a_rejected_tool_stop_leaves_the_block_open() {
    let mut asm = StreamAssembler::new();
    for (ty, p) in [
        ("messageStart", r#"{"role":"assistant"}"#),
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"a\":"}}}"#,
        ),
    ] {
        asm.push(&event_frame(ty, p)).expect("valid");
    }
    let before = asm.partial();
    let stop = event_frame("contentBlockStop", r#"{"contentBlockIndex":0}"#);
    assert!(matches!(
        asm.push(&stop),
        Err(StreamError::InvalidToolInput { index: 0, .. })
    ));
    assert_eq!(asm.partial(), before);
    assert!(!asm.block(0).expect("block").stopped);
    // The rest of the input arrives after all: the stop is accepted now.
    asm.push(&event_frame(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"1}"}}}"#,
    ))
    .expect("fragment");
    asm.push(&stop).expect("stop");
    asm.push(&event_frame("messageStop", r#"{"stopReason":"tool_use"}"#))
        .expect("stop");
    let r = asm.finish().expect("complete");
    assert_eq!(r.tool_uses().next().map(|t| t.input.as_str()), Some("{\"a\":1}"));
}

#[test]
fn a_rejected_event_does_not_start_a_lenient_stream() {
    let mut asm = StreamAssembler::new().allow_missing_message_start(true);
    let missing = asm.missing();
    assert!(missing.contains(&Missing::MessageStart));
    assert!(asm
        .push(&event_frame("contentBlockStop", r#"{"contentBlockIndex":9}"#))
        .is_err());
    assert_eq!(asm.missing(), missing);
    assert!(asm
        .push(&event_frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"toolUse":{"input":"x"}}}"#
        ))
        .is_err());
    assert_eq!(asm.missing(), missing);
}

/// A string whose escape turns out invalid only when it is decoded into the block's
/// buffer: the block it would have opened, the empty block it would have turned into
/// text, the text already there and the phase are all as they were.
#[test]
fn an_invalid_escape_found_while_decoding_changes_nothing() {
    let mut asm = StreamAssembler::new().allow_missing_message_start(true);
    let bad = |index: u32, delta: &str| {
        event_frame(
            "contentBlockDelta",
            format!(r#"{{"contentBlockIndex":{index},"delta":{delta}}}"#),
        )
    };
    // Before messageStart (lenient): a new block, and the phase, stay as they were.
    let before = (asm.partial(), asm.missing());
    assert!(asm.push(&bad(0, r#"{"text":"ok\q"}"#)).is_err());
    assert_eq!((asm.partial(), asm.missing()), before);
    assert!(asm.block(0).is_none());
    asm.push(&event_frame("messageStart", r#"{"role":"assistant"}"#))
        .expect("start after the rejected delta");
    asm.push(&event_frame(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"a\nb"}}"#,
    ))
    .expect("text");
    asm.push(&event_frame(
        "contentBlockStart",
        r#"{"contentBlockIndex":1,"start":{}}"#,
    ))
    .expect("empty start");
    for (index, delta) in [
        (0, r#"{"text":"c\ud800 lone"}"#),
        (0, "{\"text\":\"c\\n\u{1}\"}"),
        (1, r#"{"reasoningContent":{"text":"x\u12G4"}}"#),
        (1, r#"{"reasoningContent":{"signature":"s\"\x"}}"#),
        (2, r#"{"text":"\ud83d\u0041"}"#),
    ] {
        let before = (asm.partial(), asm.missing());
        assert!(matches!(
            asm.push(&bad(index, delta)),
            Err(StreamError::InvalidPayload { .. })
        ));
        assert_eq!((asm.partial(), asm.missing()), before, "{delta}");
    }
    assert_eq!(
        asm.block(1).map(|b| b.kind),
        Some(bedrock_converse::converse::BlockKind::Empty)
    );
    assert!(asm.block(2).is_none());
    asm.push(&event_frame(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"\"d\""}}"#,
    ))
    .expect("text continues");
    assert_eq!(asm.partial().text(), "a\nb\"d\"");
}

/// A tool call whose input (valid or spoiled by one byte) arrives in fragments cut
/// anywhere, longer than the check's batches: `contentBlockStop` is accepted exactly
/// when serde_json parses the input into a value (or it is empty), a rejected stop
/// changes nothing, and an accepted one keeps the input as it was written.
fn tool_stop_case(input: &str, cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut asm = StreamAssembler::new();
    let start = r#"{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#;
    for (ty, p) in [
        ("messageStart", r#"{"role":"assistant"}"#),
        ("contentBlockStart", start),
    ] {
        asm.push(&event_frame(ty, p)).expect("valid");
    }
    let mut from = 0;
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain([input.len()]) {
        let mut cut = cut.min(input.len());
        while !input.is_char_boundary(cut) {
            cut += 1;
        }
        if cut > from {
            let fragment = serde_json::to_string(&input[from..cut]).expect("json");
            let p = format!(r#"{{"contentBlockIndex":0,"delta":{{"toolUse":{{"input":{fragment}}}}}}}"#);
            asm.push(&event_frame("contentBlockDelta", p)).expect("fragment");
            from = cut;
        }
    }
    let expected = input.trim().is_empty() || serde_json::from_str::<serde_json::Value>(input).is_ok();
    let before = (asm.partial(), asm.missing());
    match asm.push(&event_frame("contentBlockStop", r#"{"contentBlockIndex":0}"#)) {
        Ok(_) => {
            prop_assert!(expected, "accepted {:?}", input);
            let tool = asm.tool_use(0).expect("tool");
            prop_assert_eq!(tool.input_text, input);
        }
        Err(StreamError::InvalidToolInput { .. }) => {
            prop_assert!(!expected, "refused {:?}", input);
            prop_assert_eq!((asm.partial(), asm.missing()), before);
        }
        Err(e) => prop_assert!(false, "{}", e),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_tool_stop_agrees_with_serde_json(
        seed in 1u64..1_000_000,
        fields in 0usize..100,
        spoil in any::<Option<(usize, u8)>>(),
        cuts in prop::collection::vec(0usize..4096, 0..80),
    ) {
        let mut s = corpus::Stream::new(seed);
        let mut input = s.tool_input(fields).into_bytes();
        if let Some((at, byte)) = spoil {
            let at = at % input.len().max(1);
            let bytes = b"{}[]\",:\\ 0-.eEu";
            if let Some(b) = input.get_mut(at) {
                *b = bytes[usize::from(byte) % bytes.len()];
            }
        }
        let input = String::from_utf8(input).unwrap_or_default();
        tool_stop_case(&input, &cuts)?;
    }
}
