//! Property tests of the event-stream codec: encode/decode round trips over headers of
//! all ten types, chunk-boundary independence of the streaming decoder, and detection
//! of every single-bit error.

use bedrock_converse::eventstream::{
    decode_frame, DecodeError, EncodeError, EventStreamError, HeaderValue, Limits, Message, MessageBuilder,
};
use bytes::Bytes;
use proptest::prelude::*;

mod common;
use common::decode_in_reads;

/// An owned header value of any of the ten wire types.
#[derive(Debug, Clone)]
enum Value {
    Bool(bool),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    ByteArray(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl Value {
    fn borrow(&self) -> HeaderValue<'_> {
        match self {
            Value::Bool(v) => HeaderValue::Bool(*v),
            Value::Byte(v) => HeaderValue::Byte(*v),
            Value::Int16(v) => HeaderValue::Int16(*v),
            Value::Int32(v) => HeaderValue::Int32(*v),
            Value::Int64(v) => HeaderValue::Int64(*v),
            Value::ByteArray(v) => HeaderValue::ByteArray(v),
            Value::String(v) => HeaderValue::String(v),
            Value::Timestamp(v) => HeaderValue::Timestamp(*v),
            Value::Uuid(v) => HeaderValue::Uuid(*v),
        }
    }
}

/// A UTF-8 string of at most `max` bytes, cut at a character boundary.
fn cap_bytes(chars: Vec<char>, max: usize) -> String {
    let mut s = String::new();
    for c in chars {
        if s.len() + c.len_utf8() > max {
            break;
        }
        s.push(c);
    }
    s
}

/// Header names of 1 to 255 bytes: ASCII (as on the wire), any Unicode, and names of
/// exactly 255 bytes.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z:-]{1,40}",
        prop::collection::vec(any::<char>(), 1..=255).prop_map(|c| cap_bytes(c, 255)),
        "[a-z]{255}",
        // 85 three-byte characters: 255 bytes.
        Just("\u{20ac}".repeat(85)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i8>().prop_map(Value::Byte),
        any::<i16>().prop_map(Value::Int16),
        any::<i32>().prop_map(Value::Int32),
        any::<i64>().prop_map(Value::Int64),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::ByteArray),
        prop::collection::vec(any::<char>(), 0..100).prop_map(|c| Value::String(c.into_iter().collect())),
        any::<i64>().prop_map(Value::Timestamp),
        any::<[u8; 16]>().prop_map(Value::Uuid),
    ]
}

#[derive(Debug, Clone)]
struct Spec {
    headers: Vec<(String, Value)>,
    payload: Vec<u8>,
}

impl Spec {
    fn build(&self) -> Message {
        let mut b = MessageBuilder::new();
        for (n, v) in &self.headers {
            b = b.header(n, v.borrow());
        }
        b.build(&self.payload)
            .expect("every generated message is encodable")
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec((name(), value()), 0..10),
        prop::collection::vec(any::<u8>(), 0..2000),
    )
        .prop_map(|(headers, payload)| Spec { headers, payload })
}

/// Decodes a stream given whole.
fn decode_whole(wire: &[u8]) -> Result<Vec<Message>, EventStreamError> {
    decode_in_reads(wire, &[wire.len()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// encode → decode gives back the headers (names, types, values, order) and the
    /// payload, through every entry point.
    #[test]
    fn encode_then_decode_round_trips(spec in spec()) {
        let msg = spec.build();
        let wire = msg.as_bytes().to_vec();

        let decoded = decode_whole(&wire).expect("decodes");
        prop_assert_eq!(decoded.len(), 1);
        let got = &decoded[0];
        prop_assert_eq!(got, &msg);
        let got_headers: Vec<(&str, HeaderValue<'_>)> = got.headers().collect();
        let want_headers: Vec<(&str, HeaderValue<'_>)> =
            spec.headers.iter().map(|(n, v)| (n.as_str(), v.borrow())).collect();
        prop_assert_eq!(&got_headers, &want_headers);
        for (n, v) in &want_headers {
            // `header(name)` finds the first header of that name.
            let first = want_headers.iter().find(|(m, _)| m == n).map(|(_, v)| *v);
            prop_assert_eq!(got.header(n), first);
            prop_assert_eq!(v.type_byte() <= 9, true);
        }
        prop_assert_eq!(got.payload(), &spec.payload[..]);
        prop_assert_eq!(&got.payload_bytes()[..], &spec.payload[..]);

        let (frame, used) = decode_frame(&wire, &Limits::default()).expect("ok").expect("whole");
        prop_assert_eq!(used, wire.len());
        prop_assert!(frame.headers().eq(got.headers()));
        prop_assert_eq!(frame.payload(), &spec.payload[..]);

        let owned = Message::from_bytes(Bytes::from(wire.clone()), &Limits::default()).expect("from_bytes");
        prop_assert_eq!(&owned, &msg);

        // Re-encoding what was decoded gives the same bytes.
        let mut b = MessageBuilder::new();
        for (n, v) in got.headers() {
            b = b.header(n, v);
        }
        let rebuilt = b.build(got.payload()).expect("build");
        prop_assert_eq!(rebuilt.as_bytes(), &wire[..]);
    }

    /// Cutting a multi-message stream into reads anywhere, including one byte at a time,
    /// gives the same messages as decoding it whole.
    #[test]
    fn chunk_boundaries_do_not_matter(
        specs in prop::collection::vec(spec(), 1..6),
        sizes in prop::collection::vec(1usize..300, 1..20),
    ) {
        let msgs: Vec<Message> = specs.iter().map(Spec::build).collect();
        let wire: Vec<u8> = msgs.iter().flat_map(|m| m.as_bytes().iter().copied()).collect();
        let whole = decode_whole(&wire).expect("whole");
        prop_assert_eq!(&whole, &msgs);
        prop_assert_eq!(&decode_in_reads(&wire, &sizes).expect("chunked"), &msgs);
        prop_assert_eq!(&decode_in_reads(&wire, &[1]).expect("bytewise"), &msgs);
    }

    /// Reads split at arbitrary absolute offsets (not only at regular sizes).
    #[test]
    fn arbitrary_split_points(
        specs in prop::collection::vec(spec(), 2..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let msgs: Vec<Message> = specs.iter().map(Spec::build).collect();
        let wire: Vec<u8> = msgs.iter().flat_map(|m| m.as_bytes().iter().copied()).collect();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        points.dedup();
        let sizes: Vec<usize> = points.windows(2).map(|w| w[1] - w[0]).collect();
        prop_assert_eq!(&decode_in_reads(&wire, &sizes).expect("split"), &msgs);
    }

    /// CRC-32 detects every single-bit error, so every single-bit flip anywhere in a
    /// frame is an error (and never a panic), through every entry point.
    #[test]
    fn every_single_bit_flip_is_detected(spec in spec(), bit in any::<prop::sample::Index>()) {
        let msg = spec.build();
        let mut wire = msg.as_bytes().to_vec();
        let bit = bit.index(wire.len() * 8);
        wire[bit / 8] ^= 1 << (bit % 8);
        let by_frame = decode_frame(&wire, &Limits::default());
        prop_assert!(by_frame.is_err(), "bit {} flipped: decode_frame gave {:?}", bit, by_frame);
        prop_assert!(decode_whole(&wire).is_err(), "bit {}", bit);
        prop_assert!(decode_in_reads(&wire, &[1]).is_err(), "bit {}", bit);
        prop_assert!(Message::from_bytes(Bytes::from(wire), &Limits::default()).is_err());
    }
}

/// Every bit of a few representative frames, exhaustively (the property above samples).
#[test]
fn every_bit_of_small_frames_is_checked() {
    let frames = [
        MessageBuilder::new().build(b"").expect("empty"),
        MessageBuilder::new()
            .string_header(":event-type", "contentBlockDelta")
            .string_header(":content-type", "application/json")
            .string_header(":message-type", "event")
            .build(br#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcdef"}"#)
            .expect("bedrock frame"),
        MessageBuilder::new()
            .header("b", HeaderValue::Bool(true))
            .header("i", HeaderValue::Int64(-1))
            .header("u", HeaderValue::Uuid([0xAB; 16]))
            .header("a", HeaderValue::ByteArray(&[]))
            .build(b"x")
            .expect("mixed frame"),
    ];
    let mut flips = 0;
    for msg in &frames {
        let wire = msg.as_bytes();
        for bit in 0..wire.len() * 8 {
            let mut w = wire.to_vec();
            w[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_frame(&w, &Limits::default()).is_err(), "bit {bit}");
            assert!(decode_whole(&w).is_err(), "bit {bit}");
            flips += 1;
        }
    }
    println!("{flips} single-bit flips, all rejected");
}

/// The largest encodable header value and name, and the 255-byte name boundary.
#[test]
fn largest_values_round_trip() {
    let big = vec![0x5a_u8; usize::from(u16::MAX)];
    let big_str = "z".repeat(usize::from(u16::MAX));
    let name = "n".repeat(255);
    let msg = MessageBuilder::new()
        .header(&name, HeaderValue::ByteArray(&big))
        .header("s", HeaderValue::String(&big_str))
        .build(b"p")
        .expect("encodable");
    // Two maximal values make a 131,334-byte headers section: over the default 128 KiB
    // limit (which is checked at the prelude), under a raised one.
    let headers_len = (2 + 255 + 2 + 65535) + (2 + 1 + 2 + 65535);
    assert!(matches!(
        decode_whole(msg.as_bytes()),
        Err(EventStreamError::Decode(DecodeError::HeadersTooLarge { len, max: 131_072 })) if len as usize == headers_len
    ));
    let limits = Limits::default().with_max_headers_len(1 << 20);
    let (frame, used) = decode_frame(msg.as_bytes(), &limits).expect("ok").expect("whole");
    assert_eq!(used, msg.as_bytes().len());
    assert_eq!(
        Message::from_bytes(msg.clone().into_bytes(), &limits).expect("decodes"),
        msg
    );
    assert!(frame.headers().eq(msg.headers()));
    let headers: Vec<_> = msg.headers().collect();
    assert_eq!(headers[0], (name.as_str(), HeaderValue::ByteArray(&big)));
    assert_eq!(headers[1], ("s", HeaderValue::String(&big_str)));

    assert!(matches!(
        MessageBuilder::new()
            .header(&"n".repeat(256), HeaderValue::Bool(true))
            .build(b""),
        Err(EventStreamError::Encode(EncodeError::HeaderNameTooLong {
            len: 256
        }))
    ));
    assert!(matches!(
        MessageBuilder::new()
            .header("", HeaderValue::Bool(true))
            .build(b""),
        Err(EventStreamError::Encode(EncodeError::EmptyHeaderName))
    ));
    let too_big = vec![0u8; usize::from(u16::MAX) + 1];
    assert!(matches!(
        MessageBuilder::new()
            .header("x", HeaderValue::ByteArray(&too_big))
            .build(b""),
        Err(EventStreamError::Encode(EncodeError::HeaderValueTooLong {
            len: 65536
        }))
    ));
}
