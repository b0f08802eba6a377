//! The `InvokeModelWithResponseStream` frame decoder: chunks, exception frames, and
//! hostile payloads (typed errors, no panic), over the real codec.

use bedrock_converse::converse::ExceptionKind;
use bedrock_converse::eventstream::{EventStreamCodec, Message, MessageBuilder};
use bedrock_converse::invoke::{
    chunk_frame, exception_frame, ChunkDecoder, ChunkProblem, InvokeError, STREAM_EXCEPTION_TYPES,
};
use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

mod common;
use common::{error_frame, event_frame};

fn through_codec(frames: &[Message]) -> Vec<Message> {
    let mut codec = EventStreamCodec::default();
    let mut body = BytesMut::new();
    for f in frames {
        codec.encode(f, &mut body).expect("encode");
    }
    let mut out = Vec::new();
    while let Some(m) = codec.decode(&mut body).expect("decode") {
        out.push(m);
    }
    out
}

#[test]
fn chunk_payload_decodes_to_the_native_event() {
    let native =
        br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \u00e9"}}"#;
    let frame = chunk_frame(native).expect("frame");
    assert_eq!(frame.event_type(), Some("chunk"));
    assert!(frame.payload().starts_with(br#"{"bytes":""#));
    let frames = through_codec(&[frame]);
    let mut dec = ChunkDecoder::new();
    assert_eq!(dec.decode_message(&frames[0]).expect("chunk"), Some(&native[..]));
    assert_eq!(dec.last(), &native[..]);
}

#[test]
fn payload_variants_the_service_may_send() {
    let mut dec = ChunkDecoder::new();
    // "eyJ0eXBlIjoicGluZyJ9" is base64 of {"type":"ping"}.
    let ping = br#"{"type":"ping"}"#;
    for payload in [
        &br#"{"bytes":"eyJ0eXBlIjoicGluZyJ9"}"#[..],
        br#"{ "bytes" : "eyJ0eXBlIjoicGluZyJ9" , "p":"abc" }"#,
        // Unpadded, and with an escaped slash-free JSON escape in the string.
        br#"{"bytes":"eyJ0eXBlIjoicGluZyJ9"}"#,
        br#"{"bytes":"eyJ0eXBlIjoicGluZyJ\u0039"}"#,
    ] {
        assert_eq!(dec.decode_payload(payload).expect("payload"), &ping[..]);
    }
    // Padding on, padding off: both accepted.
    assert_eq!(dec.decode_payload(br#"{"bytes":"YQ=="}"#).expect("padded"), b"a");
    assert_eq!(dec.decode_payload(br#"{"bytes":"YQ"}"#).expect("unpadded"), b"a");
    assert_eq!(dec.decode_payload(br#"{"bytes":""}"#).expect("empty"), b"");
}

#[test]
fn unknown_event_types_are_skipped() {
    let mut dec = ChunkDecoder::new();
    let frames = through_codec(&[
        event_frame("initial-response", b"{}"),
        event_frame("somethingNew", b"\xff"),
    ]);
    for f in &frames {
        assert_eq!(dec.decode_message(f).expect("skipped"), None);
    }
}

#[test]
fn every_stream_exception_is_typed() {
    let expected = [
        ExceptionKind::InternalServer,
        ExceptionKind::ModelStreamError,
        ExceptionKind::Validation,
        ExceptionKind::Throttling,
        ExceptionKind::ModelTimeout,
        ExceptionKind::ServiceUnavailable,
    ];
    let mut dec = ChunkDecoder::new();
    for (name, want) in STREAM_EXCEPTION_TYPES.iter().zip(expected) {
        let kind = ExceptionKind::from_wire(name);
        let code = (kind == ExceptionKind::ModelStreamError).then_some(500);
        let frame = exception_frame(&kind, "went wrong", code).expect("frame");
        let frames = through_codec(&[frame]);
        match dec.decode_message(&frames[0]) {
            Err(InvokeError::Service(e)) => {
                assert_eq!(e.kind, want, "{name}");
                assert_eq!(e.kind.as_str(), *name);
                assert_eq!(e.message.as_deref(), Some("went wrong"));
                assert_eq!(e.original_status_code, code);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn exception_with_text_payload_keeps_the_text() {
    let frame = MessageBuilder::new()
        .string_header(":exception-type", "throttlingException")
        .string_header(":message-type", "exception")
        .build(b"Too many requests")
        .expect("frame");
    match ChunkDecoder::new().decode_message(&frame) {
        Err(InvokeError::Service(e)) => {
            assert!(e.is_retryable());
            assert_eq!(e.message.as_deref(), Some("Too many requests"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_and_odd_frames_are_typed_errors() {
    let mut dec = ChunkDecoder::new();
    let error = error_frame("InternalFailure", "boom");
    assert!(matches!(
        dec.decode_message(&error),
        Err(InvokeError::ErrorFrame { code, message }) if code == "InternalFailure" && message == "boom"
    ));
    let no_type = MessageBuilder::new()
        .string_header(":event-type", "chunk")
        .build(b"{}")
        .expect("frame");
    assert!(matches!(
        dec.decode_message(&no_type),
        Err(InvokeError::MissingHeader {
            header: ":message-type"
        })
    ));
    let odd = MessageBuilder::new()
        .string_header(":message-type", "weird")
        .build(b"")
        .expect("frame");
    assert!(matches!(
        dec.decode_message(&odd),
        Err(InvokeError::UnknownMessageType { .. })
    ));
    let no_event = MessageBuilder::new()
        .string_header(":message-type", "event")
        .build(b"")
        .expect("frame");
    assert!(matches!(
        dec.decode_message(&no_event),
        Err(InvokeError::MissingHeader {
            header: ":event-type"
        })
    ));
    let no_exc = MessageBuilder::new()
        .string_header(":message-type", "exception")
        .build(b"")
        .expect("frame");
    assert!(matches!(
        dec.decode_message(&no_exc),
        Err(InvokeError::MissingHeader {
            header: ":exception-type"
        })
    ));
}

#[test]
fn hostile_payloads_are_typed_errors() {
    let mut dec = ChunkDecoder::new();
    let cases: [&[u8]; 12] = [
        b"",
        b"null",
        b"[]",
        b"{}",
        br#"{"bytes":1}"#,
        br#"{"bytes":null}"#,
        br#"{"bytes":"****"}"#,
        br#"{"bytes":"YQ=a"}"#,
        br#"{"bytes":"Y"}"#,
        br#"{"bytes":"eyJ0eXBlIjoicGluZyJ9""#,
        b"\xff\xfe\x00",
        br#"{"bytes":"\ud800"}"#,
    ];
    for payload in cases {
        match dec.decode_payload(payload) {
            Err(InvokeError::InvalidChunk(p)) => {
                let _ = p.to_string();
                assert!(dec.last().is_empty() || matches!(p, ChunkProblem::NotPayloadPart { .. }));
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(payload)),
        }
    }
}

#[test]
fn part_limit_is_checked_before_the_buffer_grows() {
    let mut dec = ChunkDecoder::with_max_part_len(16);
    assert_eq!(dec.max_part_len(), 16);
    let big = format!(r#"{{"bytes":"{}"}}"#, "QUFB".repeat(100_000));
    match dec.decode_payload(big.as_bytes()) {
        Err(InvokeError::InvalidChunk(ChunkProblem::TooLarge { len, max: 16 })) => assert!(len >= 300_000),
        other => panic!("{other:?}"),
    }
    assert_eq!(dec.buffer_capacity(), 0, "refused before reserving");
    // At the limit: accepted (16 bytes = "QUFB" x 5 + "QQ==" is 16 bytes).
    let exact = format!(r#"{{"bytes":"{}QQ=="}}"#, "QUFB".repeat(5));
    assert_eq!(dec.decode_payload(exact.as_bytes()).expect("at limit").len(), 16);
    // One over (17 decoded bytes) is refused after decoding, and nothing is kept.
    let over = format!(r#"{{"bytes":"{}QUE="}}"#, "QUFB".repeat(5));
    assert!(matches!(
        dec.decode_payload(over.as_bytes()),
        Err(InvokeError::InvalidChunk(ChunkProblem::TooLarge {
            len: 17,
            max: 16
        }))
    ));
    assert!(dec.last().is_empty());
}

#[test]
fn every_byte_string_up_to_three_bytes_inside_bytes_never_panics() {
    // A small exhaustive sweep of base64 text over a few interesting characters.
    let alphabet = b"A/+=\\\"u0 ";
    let mut dec = ChunkDecoder::new();
    let mut seen = 0;
    for a in alphabet {
        for b in alphabet {
            for c in alphabet {
                for d in alphabet {
                    let payload = [&br#"{"bytes":""#[..], &[*a, *b, *c, *d], br#""}"#].concat();
                    let _ = dec.decode_payload(&payload);
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, alphabet.len().pow(4));
}

#[test]
fn a_model_timeout_is_named_and_retryable() {
    let kind = ExceptionKind::from_wire("modelTimeoutException");
    assert_eq!(kind, ExceptionKind::ModelTimeout);
    assert_eq!(kind.as_str(), "modelTimeoutException");
    let exception = bedrock_converse::converse::ServiceException {
        kind,
        message: Some("took too long".to_owned()),
        original_status_code: None,
        original_message: None,
        payload: bytes::Bytes::new(),
    };
    assert!(exception.is_retryable());
    // A validation error is not.
    let validation = bedrock_converse::converse::ServiceException {
        kind: ExceptionKind::Validation,
        ..exception
    };
    assert!(!validation.is_retryable());
}
