//! Hostile input: lying length prefixes, headers that overrun their section behind
//! valid CRCs, truncation at every byte, megabytes of random bytes in random reads,
//! bodies that are not event streams at all, and the poisoned state after an error.

use std::collections::BTreeMap;

use bedrock_converse::eventstream::{
    decode_frame, DecodeError, EventStreamCodec, EventStreamError, Limits, LooksLike, Message,
    MessageBuilder, MIN_FRAME_LEN, PRELUDE_LEN,
};
use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// A small xorshift generator: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A prelude with these lengths and a valid CRC.
fn prelude(total: u32, headers: u32) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&total.to_be_bytes());
    p[4..8].copy_from_slice(&headers.to_be_bytes());
    let crc = crc32fast::hash(&p[..8]);
    p[8..].copy_from_slice(&crc.to_be_bytes());
    p
}

/// A frame whose prelude claims `headers_len` for the headers section, with `body`
/// (headers bytes then payload) after it, and both CRCs valid: only the deliberate
/// defect in the body is left.
fn frame_with_valid_crcs(headers_len: u32, body: &[u8]) -> Vec<u8> {
    let total = u32::try_from(MIN_FRAME_LEN + body.len()).expect("small frame");
    let mut f = prelude(total, headers_len).to_vec();
    f.extend_from_slice(body);
    let crc = crc32fast::hash(&f);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

/// Decodes `wire` given whole to the codec, then `decode_eof`; the first error.
fn codec_error(wire: &[u8]) -> EventStreamError {
    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::from(wire);
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {wire:02x?}"),
            Err(e) => return e,
        }
    }
}

/// Both entry points reject `wire` with the same error; returns it.
fn rejected(wire: &[u8]) -> EventStreamError {
    let by_codec = codec_error(wire);
    let by_frame = decode_frame(wire, &Limits::default()).expect_err("decode_frame must fail");
    assert_eq!(format!("{by_codec:?}"), format!("{by_frame:?}"));
    by_codec
}

// ===== lying lengths =====

#[test]
fn four_gib_prelude_fails_at_once_and_reserves_nothing() {
    let p = prelude(u32::MAX, 0);
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&p);
    let cap = buf.capacity();
    let mut codec = EventStreamCodec::new();
    match codec.decode(&mut buf) {
        Err(EventStreamError::Decode(DecodeError::MessageTooLarge { len, max })) => {
            assert_eq!(len, u64::from(u32::MAX));
            assert_eq!(max, Limits::default().max_frame_len());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(buf.capacity(), cap, "nothing reserved for the claimed body");
    assert_eq!(buf.len(), PRELUDE_LEN, "the failed bytes stay for inspection");
    assert!(matches!(
        decode_frame(&p, &Limits::default()),
        Err(EventStreamError::Decode(DecodeError::MessageTooLarge { .. }))
    ));

    // One byte over the largest frame the limits allow is refused the same way; one
    // byte under it passes the prelude checks and waits for the body.
    let limits = Limits::default()
        .with_max_payload_len(1000)
        .with_max_headers_len(100);
    let max = limits.max_frame_len();
    assert_eq!(max, 16 + 100 + 1000);
    let over = prelude(u32::try_from(max).expect("small") + 1, 0);
    let mut buf = BytesMut::from(&over[..]);
    let cap = buf.capacity();
    assert!(matches!(
        EventStreamCodec::with_limits(limits).decode(&mut buf),
        Err(EventStreamError::Decode(DecodeError::MessageTooLarge {
            len: 1117,
            max: 1116
        }))
    ));
    assert_eq!(buf.capacity(), cap);
    let at = prelude(u32::try_from(max).expect("small"), 100);
    let mut buf = BytesMut::from(&at[..]);
    let mut codec = EventStreamCodec::with_limits(limits);
    assert!(codec.decode(&mut buf).expect("within limits").is_none());
    assert!(buf.capacity() >= 1116, "reserved only after the limits passed");
}

#[test]
fn other_length_lies_are_typed_errors() {
    // Shorter than the 16-byte minimum.
    for total in [0, 1, 12, 15] {
        let err = rejected(&prelude(total, 0));
        assert!(
            matches!(err, EventStreamError::Decode(DecodeError::MessageTooShort { len }) if len == total),
            "{err:?}"
        );
    }
    // Headers length larger than the frame: 17 bytes of headers in a 32-byte frame
    // (room for 16), and botocore's 0xFF000102.
    let err = rejected(&frame_with_valid_crcs(17, &[0; 16]));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::HeadersLengthOutOfRange {
            headers_len: 17,
            total_len: 32
        })
    ));
    let err = rejected(&frame_with_valid_crcs(0xFF00_0102, &[0; 16]));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::HeadersLengthOutOfRange {
            headers_len: 0xFF00_0102,
            total_len: 32
        })
    ));
    // A headers length that fits the frame but exceeds the limit, and a payload that
    // exceeds its limit; both at the prelude, before the body arrives.
    let limits = Limits::default()
        .with_max_headers_len(8)
        .with_max_payload_len(1024);
    let mut codec = EventStreamCodec::with_limits(limits);
    let mut buf = BytesMut::from(&prelude(16 + 9, 9)[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(EventStreamError::Decode(DecodeError::HeadersTooLarge {
            len: 9,
            max: 8
        }))
    ));
    let mut codec = EventStreamCodec::with_limits(limits);
    let mut buf = BytesMut::from(&prelude(16 + 1025, 0)[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(EventStreamError::Decode(DecodeError::PayloadTooLarge {
            len: 1025,
            max: 1024
        }))
    ));
    // A buffer longer than its frame is not a message.
    let mut long = MessageBuilder::new()
        .build(b"x")
        .expect("frame")
        .as_bytes()
        .to_vec();
    long.push(0);
    assert!(matches!(
        Message::from_bytes(Bytes::from(long), &Limits::default()),
        Err(EventStreamError::Decode(DecodeError::TrailingBytes {
            len: 18,
            frame_len: 17
        }))
    ));
}

// ===== headers that lie, behind valid CRCs =====

#[test]
fn header_defects_behind_valid_crcs_are_named() {
    // An int32 header "x" needs 1 + 1 + 1 + 4 = 7 bytes; the prelude gives the section
    // only 5, so the value runs 2 bytes into the payload.
    let body = [&[1, b'x', 4, 0, 0, 0xA0, 0x0C][..], b"payload"].concat();
    let err = rejected(&frame_with_valid_crcs(5, &body));
    assert!(
        matches!(
            err,
            EventStreamError::Decode(DecodeError::HeaderValueOverrun {
                offset: 15,
                needed: 4,
                available: 2
            })
        ),
        "{err:?}"
    );

    // A string header whose length (300) runs past the section into the payload, which
    // has more than 300 bytes: the decoder never reads headers out of the payload.
    let mut body = vec![1, b's', 7, 0x01, 0x2C, b'a', b'b'];
    let headers_len = u32::try_from(body.len()).expect("small");
    body.extend_from_slice(&[b'z'; 400]);
    let err = rejected(&frame_with_valid_crcs(headers_len, &body));
    assert!(
        matches!(
            err,
            EventStreamError::Decode(DecodeError::HeaderValueOverrun {
                offset: 15,
                needed: 302,
                available: 4
            })
        ),
        "{err:?}"
    );

    // The u16 length itself cut by the section's end.
    let err = rejected(&frame_with_valid_crcs(4, &[1, b's', 7, 0x00, 0x01]));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::HeaderValueOverrun {
            needed: 2,
            available: 1,
            ..
        })
    ));

    // A name running past the section, a zero-length name, a name with no room for its
    // type byte.
    let err = rejected(&frame_with_valid_crcs(3, &[5, b'a', b'b', b'c', 0, 0]));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::InvalidHeaderNameLength { len: 5, offset: 12 })
    ));
    let err = rejected(&frame_with_valid_crcs(2, &[0, 0]));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::InvalidHeaderNameLength { len: 0, offset: 12 })
    ));
    let err = rejected(&frame_with_valid_crcs(2, &[1, b'a']));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::InvalidHeaderNameLength { len: 1, offset: 12 })
    ));

    // Unknown type bytes.
    for ty in [10u8, 0x60, 0xFF] {
        let err = rejected(&frame_with_valid_crcs(3, &[1, b'a', ty]));
        assert!(matches!(err, EventStreamError::Decode(DecodeError::InvalidHeaderType(t)) if t == ty));
    }

    // Invalid UTF-8 in a name and in a string value; a byte array may hold anything.
    let err = rejected(&frame_with_valid_crcs(3, &[1, 0xFF, 0]));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::InvalidUtf8 {
            what: "name",
            offset: 13
        })
    ));
    let err = rejected(&frame_with_valid_crcs(6, &[1, b'a', 7, 0, 1, 0xC0]));
    assert!(matches!(
        err,
        EventStreamError::Decode(DecodeError::InvalidUtf8 {
            what: "string value",
            offset: 17
        })
    ));
    let ok = frame_with_valid_crcs(6, &[1, b'a', 6, 0, 1, 0xC0]);
    let (frame, _) = decode_frame(&ok, &Limits::default()).expect("ok").expect("whole");
    assert_eq!(frame.headers().count(), 1);
}

// ===== truncation =====

#[test]
fn truncation_at_every_cut_point_reports_what_is_missing() {
    let first = MessageBuilder::new()
        .string_header(":event-type", "contentBlockDelta")
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "event")
        .build(br#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abc"}"#)
        .expect("frame");
    let second = MessageBuilder::new().build(b"").expect("empty frame");
    let wire = [first.as_bytes(), second.as_bytes()].concat();
    let len1 = first.as_bytes().len();

    for cut in 1..wire.len() {
        if cut == len1 {
            continue; // A clean frame boundary.
        }
        let mut codec = EventStreamCodec::new();
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut decoded = Vec::new();
        let err = loop {
            match codec.decode_eof(&mut buf) {
                Ok(Some(m)) => decoded.push(m),
                Ok(None) => panic!("cut {cut}: no error"),
                Err(e) => break e,
            }
        };
        let (frame_start, frame_len) = if cut > len1 { (len1, 16) } else { (0, len1) };
        assert_eq!(decoded.len(), usize::from(cut > len1), "cut {cut}");
        let buffered_want = cut - frame_start;
        // With the whole prelude the decoder knows the frame's length; before that,
        // what it can know is missing is the rest of the prelude.
        let missing_want = if buffered_want >= PRELUDE_LEN {
            frame_len - buffered_want
        } else {
            PRELUDE_LEN - buffered_want
        };
        match err {
            EventStreamError::Decode(DecodeError::Truncated { buffered, missing }) => {
                assert_eq!((buffered, missing), (buffered_want, missing_want), "cut {cut}");
            }
            other => panic!("cut {cut}: {other:?}"),
        }
        assert!(codec.is_poisoned());
        // decode_frame agrees that the input is incomplete (not an error).
        let rest = &wire[frame_start..cut];
        assert_eq!(decode_frame(rest, &Limits::default()).expect("incomplete"), None);
    }
    // The same stream fed one byte at a time decodes both frames.
    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &b in &wire {
        buf.extend_from_slice(&[b]);
        got.extend(codec.decode(&mut buf).expect("valid"));
    }
    assert_eq!(codec.decode_eof(&mut buf).expect("clean end"), None);
    assert_eq!(got, [first, second]);
}

// ===== random bytes =====

fn variant(e: &EventStreamError) -> &'static str {
    match e {
        EventStreamError::Decode(DecodeError::NotAnEventStream { .. }) => "NotAnEventStream",
        EventStreamError::Decode(DecodeError::PreludeCrcMismatch { .. }) => "PreludeCrcMismatch",
        EventStreamError::Decode(DecodeError::MessageCrcMismatch { .. }) => "MessageCrcMismatch",
        EventStreamError::Decode(DecodeError::MessageTooShort { .. }) => "MessageTooShort",
        EventStreamError::Decode(DecodeError::MessageTooLarge { .. }) => "MessageTooLarge",
        EventStreamError::Decode(DecodeError::HeadersTooLarge { .. }) => "HeadersTooLarge",
        EventStreamError::Decode(DecodeError::PayloadTooLarge { .. }) => "PayloadTooLarge",
        EventStreamError::Decode(DecodeError::HeadersLengthOutOfRange { .. }) => "HeadersLengthOutOfRange",
        EventStreamError::Decode(DecodeError::InvalidHeaderNameLength { .. }) => "InvalidHeaderNameLength",
        EventStreamError::Decode(DecodeError::InvalidHeaderType(_)) => "InvalidHeaderType",
        EventStreamError::Decode(DecodeError::HeaderValueOverrun { .. }) => "HeaderValueOverrun",
        EventStreamError::Decode(DecodeError::InvalidUtf8 { .. }) => "InvalidUtf8",
        EventStreamError::Decode(DecodeError::Truncated { .. }) => "Truncated",
        EventStreamError::Decode(DecodeError::Poisoned) => "Poisoned",
        other => panic!("unexpected error from random input: {other:?}"),
    }
}

/// 10 MB of random bytes in random reads. Pure noise fails at its first prelude, so the
/// stream also carries, at random places, frames with a valid prelude and a random
/// body (so that header and message checks see noise) and valid frames. After every
/// error the codec must be poisoned; the test then resets it, drops one byte and goes
/// on, so that the whole 10 MB passes through the decoder.
#[test]
fn ten_megabytes_of_random_bytes_give_typed_errors() {
    const TOTAL: usize = 10 * 1000 * 1000;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut wire = Vec::with_capacity(TOTAL + 4096);
    let valid = MessageBuilder::new()
        .string_header(":event-type", "ping")
        .build(b"{}")
        .expect("frame");
    while wire.len() < TOTAL {
        match rng.below(4) {
            0 => {
                // A valid prelude with a random body of a random (sane) length.
                let body_len = rng.below(600) + 4;
                let headers_len = rng.below(body_len - 3);
                let total = u32::try_from(12 + body_len).expect("small");
                wire.extend_from_slice(&prelude(total, u32::try_from(headers_len).expect("small")));
                let start = wire.len();
                wire.resize(start + body_len, 0);
                rng.fill(&mut wire[start..]);
                if headers_len >= 3 && rng.below(2) == 0 {
                    // A plausible first header ("a" of a known type), so that the
                    // value checks, not only the name checks, see noise.
                    let ty = u8::try_from(rng.below(10)).expect("small");
                    wire[start..start + 3].copy_from_slice(&[1, b'a', ty]);
                }
            }
            1 => wire.extend_from_slice(valid.as_bytes()),
            _ => {
                let n = rng.below(4096) + 1;
                let start = wire.len();
                wire.resize(start + n, 0);
                rng.fill(&mut wire[start..]);
            }
        }
    }

    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::new();
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut messages = 0usize;
    let mut rest = &wire[..];
    loop {
        let at_eof = rest.is_empty();
        if !at_eof {
            let n = (rng.below(8192) + 1).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        loop {
            let step = if at_eof {
                codec.decode_eof(&mut buf)
            } else {
                codec.decode(&mut buf)
            };
            match step {
                Ok(Some(m)) => {
                    messages += 1;
                    let _ = (m.event_type(), m.headers().count(), m.payload().len());
                }
                Ok(None) => break,
                Err(e) => {
                    *seen.entry(variant(&e)).or_default() += 1;
                    let _ = e.to_string();
                    assert!(
                        !matches!(e, EventStreamError::Decode(DecodeError::Poisoned)),
                        "first error is never Poisoned"
                    );
                    assert!(matches!(
                        codec.decode(&mut buf),
                        Err(EventStreamError::Decode(DecodeError::Poisoned))
                    ));
                    codec.reset();
                    if buf.is_empty() {
                        break;
                    }
                    buf.advance(1);
                }
            }
        }
        if at_eof && buf.is_empty() {
            break;
        }
        assert!(!at_eof, "decode_eof left {} bytes without an error", buf.len());
    }
    println!(
        "{} bytes: {messages} messages decoded; errors: {seen:?}",
        wire.len()
    );
    assert!(messages > 0);
    for expected in [
        "PreludeCrcMismatch",
        "MessageCrcMismatch",
        "InvalidHeaderType",
        "InvalidHeaderNameLength",
        "HeaderValueOverrun",
    ] {
        assert!(seen.contains_key(expected), "never saw {expected}: {seen:?}");
    }
}

// ===== bodies that are not event streams =====

#[test]
fn text_bodies_are_not_an_event_stream() {
    let cases: [(&[u8], LooksLike); 10] = [
        (
            br#"{"message":"The security token included in the request is invalid."}"#,
            LooksLike::Json,
        ),
        (b"{}", LooksLike::Json),
        (b"  \r\n[{\"a\":1}]", LooksLike::Json),
        (
            b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n\r\n{}",
            LooksLike::Http,
        ),
        (b"HTTP/1.1", LooksLike::Http),
        (
            b"data: {\"type\":\"message_start\"}\n\n",
            LooksLike::ServerSentEvents,
        ),
        (b"data:", LooksLike::ServerSentEvents),
        (b"event: ping\ndata: {}\n\n", LooksLike::ServerSentEvents),
        (
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            LooksLike::Markup,
        ),
        (b"<html>", LooksLike::Markup),
    ];
    for (body, want) in cases {
        let err = codec_error(body);
        match &err {
            EventStreamError::Decode(DecodeError::NotAnEventStream { looks_like, prefix }) => {
                assert_eq!(*looks_like, want, "{}", String::from_utf8_lossy(body));
                assert!(body.starts_with(prefix.as_bytes()));
                assert!(prefix.len() <= 16);
            }
            other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
        }
        assert!(err.to_string().contains("not an AWS event stream"));
        // The same through decode_frame once a prelude's worth has arrived; before that
        // it only says "not enough yet".
        match decode_frame(body, &Limits::default()) {
            Err(EventStreamError::Decode(DecodeError::NotAnEventStream { looks_like, .. })) => {
                assert_eq!(looks_like, want)
            }
            Ok(None) => assert!(body.len() < PRELUDE_LEN),
            other => panic!("{other:?}"),
        }
        // And byte by byte, the codec names it as soon as it has 12 bytes (or at EOF).
        let mut codec = EventStreamCodec::new();
        let mut buf = BytesMut::new();
        let mut err = None;
        for &b in body {
            buf.extend_from_slice(&[b]);
            if let Err(e) = codec.decode(&mut buf) {
                assert_eq!(buf.len(), PRELUDE_LEN);
                err = Some(e);
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => codec
                .decode_eof(&mut buf)
                .expect_err("EOF inside a would-be prelude"),
        };
        assert!(
            matches!(err, EventStreamError::Decode(DecodeError::NotAnEventStream { looks_like, .. }) if looks_like == want)
        );
    }
}

// ===== poisoned until reset =====

#[test]
fn codec_stays_poisoned_until_reset() {
    let good = MessageBuilder::new()
        .string_header(":event-type", "messageStop")
        .build(br#"{"stopReason":"end_turn"}"#)
        .expect("frame");
    let mut bad = good.as_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0xFF;

    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(good.as_bytes());
    buf.extend_from_slice(&bad);
    buf.extend_from_slice(good.as_bytes());
    assert_eq!(codec.decode(&mut buf).expect("first frame"), Some(good.clone()));
    assert!(matches!(
        codec.decode(&mut buf),
        Err(EventStreamError::Decode(DecodeError::MessageCrcMismatch { .. }))
    ));
    let left = buf.len();
    assert_eq!(
        left,
        2 * good.as_bytes().len(),
        "the failed frame stays in the buffer"
    );
    for _ in 0..3 {
        assert!(codec.is_poisoned());
        assert!(matches!(
            codec.decode(&mut buf),
            Err(EventStreamError::Decode(DecodeError::Poisoned))
        ));
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(EventStreamError::Decode(DecodeError::Poisoned))
        ));
        assert_eq!(buf.len(), left);
    }
    // A fresh, valid stream in a cleared buffer still fails until reset.
    buf.clear();
    buf.extend_from_slice(good.as_bytes());
    assert!(matches!(
        codec.decode(&mut buf),
        Err(EventStreamError::Decode(DecodeError::Poisoned))
    ));
    let mut empty = BytesMut::new();
    assert!(matches!(
        codec.decode_eof(&mut empty),
        Err(EventStreamError::Decode(DecodeError::Poisoned))
    ));
    codec.reset();
    assert!(!codec.is_poisoned());
    assert_eq!(codec.decode(&mut buf).expect("after reset"), Some(good));
    assert_eq!(codec.decode_eof(&mut buf).expect("clean end"), None);

    // Poisoned in the middle of a frame too (EOF inside the body), and reset mid-frame
    // forgets the half-read prelude.
    let mut codec = EventStreamCodec::new();
    let mut buf = BytesMut::from(&bad[..20]);
    assert!(codec.decode(&mut buf).expect("waiting").is_none());
    assert!(matches!(
        codec.decode_eof(&mut buf),
        Err(EventStreamError::Decode(DecodeError::Truncated { .. }))
    ));
    assert!(matches!(
        codec.decode(&mut buf),
        Err(EventStreamError::Decode(DecodeError::Poisoned))
    ));
    codec.reset();
    buf.clear();
    let fresh = MessageBuilder::new().build(b"").expect("empty");
    buf.extend_from_slice(fresh.as_bytes());
    assert_eq!(codec.decode(&mut buf).expect("fresh"), Some(fresh));
}
