//! The native Anthropic assembler: a Bedrock-shaped stream of every block kind, the
//! order rules (refused events change nothing), hostile input, a round trip
//! encoder → codec → decoder → assembler, and chunk-boundary / fragment-split
//! properties.

use bedrock_converse::converse::ExceptionKind;
use bedrock_converse::eventstream::EventStreamCodec;
use bedrock_converse::invoke::{
    chunk_frames, exception_frame, native_events, AnthropicAssembler, AnthropicContentBlock, AnthropicEvent,
    AnthropicMessage, AnthropicUsage, BlockType, EventOrder, InvocationMetrics, InvokeError, NativeDelta,
    UsageReader,
};
use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::json;
use tokio_util::codec::{Decoder, Encoder};

const START: &str = r#"{"type":"message_start","message":{"id":"msg_bdrk_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}}"#;

/// A stream as Bedrock sends it for Claude with thinking and a tool call.
fn claude_stream() -> Vec<String> {
    [
        START,
        r#"{"type":"ping"}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants "}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"the weather."}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkgIARABGAIiQL"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Let me check \"Oslo\"\n"}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"caf\u00e9 😀"}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_bdrk_01","name":"get_weather","input":{}}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Os"}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"lo\", \"days\": 3}"}}"#,
        r#"{"type":"content_block_stop","index":3}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
        r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":472,"outputTokenCount":89,"invocationLatency":2154,"firstByteLatency":873}}"#,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn expected_claude() -> AnthropicMessage {
    AnthropicMessage {
        id: "msg_bdrk_01".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        content: vec![
            AnthropicContentBlock::Thinking {
                thinking: "The user wants the weather.".into(),
                signature: "EqQBCkgIARABGAIiQL".into(),
            },
            AnthropicContentBlock::RedactedThinking {
                data: "EmwKAhgBEgy3va".into(),
            },
            AnthropicContentBlock::Text {
                text: "Let me check \"Oslo\"\ncafé 😀".into(),
                citations: vec![],
            },
            AnthropicContentBlock::ToolUse {
                id: "toolu_bdrk_01".into(),
                name: "get_weather".into(),
                input: json!({"city": "Oslo", "days": 3}),
            },
        ],
        stop_reason: Some("tool_use".into()),
        stop_sequence: None,
        usage: AnthropicUsage {
            input_tokens: 472,
            output_tokens: 89,
            cache_creation_input_tokens: Some(0),
            cache_read_input_tokens: Some(0),
        },
        invocation_metrics: Some(InvocationMetrics {
            input_token_count: 472,
            output_token_count: 89,
            invocation_latency: 2154,
            first_byte_latency: 873,
            cache_read_input_token_count: None,
            cache_write_input_token_count: None,
        }),
        ..Default::default()
    }
}

fn assemble(events: &[String]) -> Result<AnthropicMessage, InvokeError> {
    let mut asm = AnthropicAssembler::new();
    for e in events {
        asm.push(e.as_bytes())?;
    }
    asm.finish()
}

#[test]
fn claude_stream_assembles_every_block_kind() {
    let message = assemble(&claude_stream()).expect("complete");
    assert_eq!(message, expected_claude());
    assert_eq!(message.text(), "Let me check \"Oslo\"\ncafé 😀");
    // The JSON is the Messages API shape.
    let v = serde_json::to_value(&message).expect("json");
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][0]["signature"], "EqQBCkgIARABGAIiQL");
    assert_eq!(v["content"][1]["type"], "redacted_thinking");
    assert_eq!(v["content"][3]["type"], "tool_use");
    assert_eq!(v["content"][3]["input"]["days"], 3);
    assert_eq!(v["usage"]["output_tokens"], 89);
    assert_eq!(v["amazon-bedrock-invocationMetrics"]["firstByteLatency"], 873);
    let back: AnthropicMessage = serde_json::from_value(v).expect("parses back");
    assert_eq!(back, message);
}

#[test]
fn events_borrow_and_report_what_they_carry() {
    let mut asm = AnthropicAssembler::new();
    let events = claude_stream();
    let mut kinds = Vec::new();
    for e in &events {
        match asm.push(e.as_bytes()).expect("event") {
            AnthropicEvent::ContentBlockDelta {
                index: 2,
                delta: NativeDelta::Text(t),
            } => {
                kinds.push(format!("text:{}", t.len()));
            }
            AnthropicEvent::ContentBlockStart { block_type, .. } => kinds.push(block_type.to_string()),
            AnthropicEvent::MessageDelta {
                stop_reason,
                output_tokens,
            } => {
                assert_eq!(
                    (stop_reason.as_deref(), output_tokens),
                    (Some("tool_use"), Some(89))
                );
            }
            AnthropicEvent::MessageStop { metrics } => {
                assert_eq!(metrics.map(|m| m.invocation_latency), Some(2154))
            }
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        [
            "thinking",
            "redacted_thinking",
            "text",
            "text:20",
            "text:10",
            "tool_use"
        ]
    );
    assert!(asm.is_complete());
    // Without escapes, a delta's text is borrowed from the event bytes.
    let mut asm = AnthropicAssembler::new();
    asm.push(START.as_bytes()).expect("start");
    asm.push(br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        .expect("block");
    let event = br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"plain"}}"#;
    match asm.push(event).expect("delta") {
        AnthropicEvent::ContentBlockDelta {
            delta: NativeDelta::Text(std::borrow::Cow::Borrowed(t)),
            ..
        } => {
            assert_eq!(t, "plain");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_tool_with_no_fragments_keeps_its_start_input_and_empty_fragments_give_an_object() {
    let stream = |deltas: &[&str]| {
        let mut v = vec![
            START.to_owned(),
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{"a":1}}}"#.to_owned(),
        ];
        for d in deltas {
            v.push(format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"input_json_delta","partial_json":{}}}}}"#,
                serde_json::to_string(d).expect("json")
            ));
        }
        v.push(r#"{"type":"content_block_stop","index":0}"#.to_owned());
        v.push(r#"{"type":"message_stop"}"#.to_owned());
        v
    };
    let input = |m: AnthropicMessage| m.tool_uses().next().map(|(_, _, i)| i.clone()).expect("tool");
    assert_eq!(input(assemble(&stream(&[])).expect("ok")), json!({"a": 1}));
    assert_eq!(input(assemble(&stream(&["", " "])).expect("ok")), json!({}));
    assert_eq!(
        input(assemble(&stream(&["[1,", "2]"])).expect("ok")),
        json!([1, 2])
    );
}

#[test]
fn invalid_tool_input_is_a_typed_error_and_the_raw_text_is_kept() {
    let mut asm = AnthropicAssembler::new();
    asm.push(START.as_bytes()).expect("start");
    asm.push(br#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"calc","input":{}}}"#).expect("start");
    asm.push(br#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"x\":"}}"#).expect("delta");
    match asm.push(br#"{"type":"content_block_stop","index":0}"#) {
        Err(InvokeError::InvalidToolInput {
            index: 0, name, id, ..
        }) => assert_eq!((name.as_str(), id.as_str()), ("calc", "t1")),
        other => panic!("{other:?}"),
    }
    let partial = asm.partial();
    assert_eq!(
        partial.tool_uses().next().map(|(_, _, i)| i.clone()),
        Some(json!("{\"x\":"))
    );
}

#[test]
fn citations_and_unknown_blocks_are_kept() {
    let events = [
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x","document_index":0}}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"cited"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"rust\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"some_future_event","x":1}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5,"input_tokens":480,"cache_read_input_tokens":7}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let m = assemble(&events.map(String::from)).expect("complete");
    match &m.content[0] {
        AnthropicContentBlock::Text { text, citations } => {
            assert_eq!(text, "cited");
            assert_eq!(citations[0]["cited_text"], "x");
        }
        other => panic!("{other:?}"),
    }
    match &m.content[1] {
        AnthropicContentBlock::Other(v) => {
            assert_eq!(v["type"], "server_tool_use");
            assert_eq!(v["input"], json!({"query": "rust"}));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (
            m.usage.input_tokens,
            m.usage.output_tokens,
            m.usage.cache_read_input_tokens
        ),
        (480, 5, Some(7))
    );
    assert_eq!(m.invocation_metrics, None);
}

/// Every refused event leaves the assembler exactly as it was.
fn refused(asm: &mut AnthropicAssembler, event: &str) -> InvokeError {
    let before = format!("{:?}", asm.partial());
    let complete = asm.is_complete();
    let err = asm.push(event.as_bytes()).expect_err(event);
    assert_eq!(format!("{:?}", asm.partial()), before, "{event}");
    assert_eq!(asm.is_complete(), complete);
    let _ = err.to_string();
    err
}

#[test]
fn order_rules_refuse_without_changing_anything() {
    let mut asm = AnthropicAssembler::new();
    let order = |e: InvokeError| match e {
        InvokeError::OutOfOrder { problem, .. } => problem,
        other => panic!("{other:?}"),
    };
    // Before message_start.
    assert_eq!(
        order(refused(
            &mut asm,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
        )),
        EventOrder::BeforeMessageStart
    );
    assert_eq!(
        order(refused(&mut asm, r#"{"type":"message_stop"}"#)),
        EventOrder::BeforeMessageStart
    );
    assert!(matches!(
        asm.push(br#"{"type":"ping"}"#),
        Ok(AnthropicEvent::Ping)
    ));
    asm.push(START.as_bytes()).expect("start");
    assert_eq!(order(refused(&mut asm, START)), EventOrder::Duplicate);
    assert_eq!(
        order(refused(
            &mut asm,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#
        )),
        EventOrder::IndexGap
    );
    assert_eq!(
        order(refused(
            &mut asm,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#
        )),
        EventOrder::UnknownBlock
    );
    asm.push(br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"a"}}"#)
        .expect("block");
    assert_eq!(
        order(refused(
            &mut asm,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
        )),
        EventOrder::BlockAlreadyStarted
    );
    assert!(matches!(
        refused(
            &mut asm,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#
        ),
        InvokeError::DeltaKindMismatch {
            index: 0,
            block: BlockType::Text,
            delta: "input_json_delta"
        }
    ));
    assert!(matches!(
        refused(
            &mut asm,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"bogus_delta"}}"#
        ),
        InvokeError::InvalidEvent {
            event_type: "content_block_delta",
            ..
        }
    ));
    assert!(matches!(
        refused(
            &mut asm,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}"#
        ),
        InvokeError::InvalidEvent { .. }
    ));
    assert_eq!(
        order(refused(&mut asm, r#"{"type":"message_stop"}"#)),
        EventOrder::BlockStillOpen
    );
    asm.push(br#"{"type":"content_block_stop","index":0}"#)
        .expect("stop");
    assert_eq!(
        order(refused(&mut asm, r#"{"type":"content_block_stop","index":0}"#)),
        EventOrder::BlockAlreadyStopped
    );
    assert_eq!(
        order(refused(
            &mut asm,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#
        )),
        EventOrder::BlockAlreadyStopped
    );
    asm.push(br#"{"type":"message_stop"}"#).expect("stop");
    assert_eq!(
        order(refused(&mut asm, r#"{"type":"message_delta","delta":{}}"#)),
        EventOrder::AfterMessageStop
    );
    assert_eq!(asm.finish().expect("complete").text(), "a");
}

#[test]
fn model_error_events_and_exceptions_end_the_stream_with_the_partial_kept() {
    let mut asm = AnthropicAssembler::new();
    asm.push(START.as_bytes()).expect("start");
    asm.push(br#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        .expect("block");
    asm.push(br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial"}}"#)
        .expect("delta");
    let err = refused(
        &mut asm,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert!(
        matches!(err, InvokeError::ModelError { ref error_type, .. } if error_type == "overloaded_error")
    );
    let frame =
        exception_frame(&ExceptionKind::ModelStreamError, "Model Stream Error", Some(500)).expect("frame");
    match asm.push_frame(frame.as_frame()) {
        Err(InvokeError::Service(e)) => assert_eq!(e.original_status_code, Some(500)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        asm.exception().map(|e| e.kind.clone()),
        Some(ExceptionKind::ModelStreamError)
    );
    match asm.finish() {
        Err(InvokeError::Incomplete(inc)) => {
            assert!(inc.started);
            assert_eq!(inc.open_blocks, [0]);
            assert_eq!(inc.partial.text(), "partial");
            assert!(inc.exception.is_some());
            assert!(inc.to_string().contains("modelStreamErrorException"), "{inc}");
        }
        other => panic!("{other:?}"),
    }
    // An empty stream is incomplete too, without panicking.
    assert!(matches!(AnthropicAssembler::new().finish(), Err(InvokeError::Incomplete(i)) if !i.started));
}

#[test]
fn hostile_events_never_panic() {
    let hostile: &[&[u8]] = &[
        b"",
        b"\xff\xfe",
        b"{",
        b"null",
        b"[]",
        b"{}",
        br#"{"type":1}"#,
        br#"{"type":"content_block_start"}"#,
        br#"{"type":"content_block_start","index":-1,"content_block":{"type":"text"}}"#,
        br#"{"type":"content_block_start","index":4294967295,"content_block":{"type":"text"}}"#,
        br#"{"type":"content_block_start","index":0,"content_block":"text"}"#,
        br#"{"type":"content_block_start","index":0,"content_block":{}}"#,
        br#"{"type":"content_block_delta","index":99999999999,"delta":{"type":"text_delta","text":"x"}}"#,
        br#"{"type":"message_start","message":[]}"#,
        br#"{"type":"message_start","message":{"usage":{"input_tokens":-5}}}"#,
        br#"{"type":"message_delta","usage":{"output_tokens":"many"}}"#,
        br#"{"type":"message_stop","amazon-bedrock-invocationMetrics":[]}"#,
        br#"{"type":"error"}"#,
        br#"{"type\u0000":"ping"}"#,
        br#"{"type":"pi\u006eg"}"#,
    ];
    for prefix in [false, true] {
        let mut asm = AnthropicAssembler::new();
        if prefix {
            asm.push(START.as_bytes()).expect("start");
        }
        for e in hostile {
            let _ = asm.push(e).map_err(|e| e.to_string());
            let _ = serde_json::to_string(&asm.partial()).expect("partial serializes");
        }
        let _ = asm.finish().map_err(|e| e.to_string());
    }
    // A known prefix does not make junk valid.
    for junk in [
        &br#"{"type":"ping"junk"#[..],
        br#"{"type":"ping""#,
        br#"{"type":"new_thing",}"#,
    ] {
        assert!(matches!(
            AnthropicAssembler::new().push(junk),
            Err(InvokeError::InvalidEvent { .. })
        ));
    }
    // The escaped type is still understood.
    assert!(matches!(
        AnthropicAssembler::new().push(br#"{"type":"pi\u006eg"}"#),
        Ok(AnthropicEvent::Ping)
    ));
}

#[test]
fn too_many_blocks_is_refused() {
    let mut asm = AnthropicAssembler::new();
    asm.push(START.as_bytes()).expect("start");
    for i in 0..AnthropicAssembler::MAX_BLOCKS {
        let e = format!(
            r#"{{"type":"content_block_start","index":{i},"content_block":{{"type":"text","text":""}}}}"#
        );
        asm.push(e.as_bytes()).expect("block");
    }
    let e = format!(
        r#"{{"type":"content_block_start","index":{},"content_block":{{"type":"text","text":""}}}}"#,
        AnthropicAssembler::MAX_BLOCKS
    );
    assert!(matches!(refused(&mut asm, &e), InvokeError::TooManyBlocks { .. }));
}

/// Encodes `message` as chunk frames, concatenates the wire bytes, and feeds them to
/// the codec in the given cut sizes; returns the assembled message and the usage.
fn wire_round_trip(
    message: &AnthropicMessage,
    fragment_len: usize,
    cuts: &[usize],
) -> (AnthropicMessage, UsageReader) {
    let mut codec = EventStreamCodec::default();
    let mut wire = BytesMut::new();
    for f in chunk_frames(message, fragment_len).expect("frames") {
        codec.encode(f, &mut wire).expect("encode");
    }
    let wire = wire.freeze();
    let mut asm = AnthropicAssembler::new();
    let mut usage = UsageReader::new();
    let mut decoder = bedrock_converse::invoke::ChunkDecoder::new();
    let mut buf = BytesMut::new();
    let mut at = 0;
    let mut cut = cuts.iter().cycle();
    while at < wire.len() {
        let n = (*cut.next().unwrap_or(&1)).clamp(1, wire.len() - at);
        buf.extend_from_slice(&wire[at..at + n]);
        at += n;
        while let Some(frame) = codec.decode(&mut buf).expect("decode") {
            if let Some(event) = decoder.decode_message(&frame).expect("chunk") {
                usage.observe(event);
            }
            asm.push_frame(frame.as_frame()).expect("event");
        }
    }
    assert!(buf.is_empty());
    (asm.finish().expect("complete"), usage)
}

#[test]
fn encoder_codec_decoder_assembler_round_trip() {
    let message = expected_claude();
    for fragment_len in [1, 3, 7, 64, 10_000] {
        let (back, usage) = wire_round_trip(&message, fragment_len, &[5, 1, 300, 17]);
        assert_eq!(back, message, "fragment_len {fragment_len}");
        let u = usage.usage();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.first_byte_latency_ms),
            (472, 89, Some(873))
        );
    }
    // The encoded events assemble to the same message without the frames too.
    let events: Vec<String> = native_events(&message, 4)
        .into_iter()
        .map(|e| String::from_utf8(e).expect("utf8"))
        .collect();
    assert_eq!(assemble(&events).expect("complete"), message);
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop::string::string_regex("[a-zA-Z0-9 \"\\\\\n\téü😀{}:,\\[\\]]{0,60}").expect("regex")
}

fn json_strategy() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        (-1.0e9f64..1.0e9).prop_map(|f| json!(f)),
        text_strategy().prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn block_strategy() -> impl Strategy<Value = AnthropicContentBlock> {
    prop_oneof![
        text_strategy().prop_map(|text| AnthropicContentBlock::Text {
            text,
            citations: vec![]
        }),
        (
            "[a-z0-9_]{1,12}",
            "[a-z_]{1,12}",
            prop::collection::btree_map("[a-z]{1,6}", json_strategy(), 0..4)
        )
            .prop_map(|(id, name, m)| AnthropicContentBlock::ToolUse {
                id,
                name,
                input: serde_json::Value::Object(m.into_iter().collect()),
            }),
        (text_strategy(), "[A-Za-z0-9+/=]{0,40}")
            .prop_map(|(thinking, signature)| AnthropicContentBlock::Thinking { thinking, signature }),
        "[A-Za-z0-9+/=]{1,40}".prop_map(|data| AnthropicContentBlock::RedactedThinking { data }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any message, any fragment size, any cut of the wire bytes: the same message.
    #[test]
    fn any_split_assembles_the_same_message(
        content in prop::collection::vec(block_strategy(), 0..6),
        fragment_len in 1usize..20,
        cuts in prop::collection::vec(1usize..400, 1..8),
        output_tokens in 0u64..100_000,
        with_metrics in any::<bool>(),
    ) {
        let message = AnthropicMessage {
            id: "msg_x".into(),
            model: "claude".into(),
            content,
            stop_reason: Some("end_turn".into()),
            usage: AnthropicUsage { input_tokens: 10, output_tokens, ..Default::default() },
            invocation_metrics: with_metrics.then_some(InvocationMetrics {
                input_token_count: 10,
                output_token_count: output_tokens,
                invocation_latency: 5,
                first_byte_latency: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        let (back, usage) = wire_round_trip(&message, fragment_len, &cuts);
        prop_assert_eq!(&back, &message);
        prop_assert_eq!(usage.usage().output_tokens, output_tokens);
        prop_assert_eq!(usage.usage().input_tokens, 10);
    }

    /// Arbitrary bytes as native events: typed errors only, and the partial message
    /// always serializes.
    #[test]
    fn arbitrary_events_never_panic(events in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..12)) {
        let mut asm = AnthropicAssembler::new();
        asm.push(START.as_bytes()).expect("start");
        let mut usage = UsageReader::new();
        for e in &events {
            let _ = asm.push(e);
            usage.observe(e);
        }
        prop_assert!(serde_json::to_string(&asm.partial()).is_ok());
        let _ = asm.finish();
    }

    /// Mutations of a good stream (events dropped, duplicated or swapped): typed
    /// errors only.
    #[test]
    fn shuffled_streams_never_panic(ops in prop::collection::vec((0usize..20, 0usize..20, 0u8..3), 0..8)) {
        let mut events = claude_stream();
        for (a, b, op) in ops {
            let (a, b) = (a % events.len(), b % events.len());
            match op {
                0 => events.swap(a, b),
                1 => { let e = events[a].clone(); events.insert(b, e); }
                _ => if events.len() > 1 { events.remove(a); },
            }
        }
        let mut asm = AnthropicAssembler::new();
        for e in &events {
            let _ = asm.push(e.as_bytes()).map_err(|e| e.to_string());
        }
        let _ = asm.finish().map_err(|e| e.to_string());
    }
}
