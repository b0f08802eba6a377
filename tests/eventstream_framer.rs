//! The [`Framer`]'s two modes: buffer mode (the codec's state, exposed) and chunk mode
//! (frames validated across chunk boundaries without gathering them), against
//! `decode_frame` on the same bytes; and [`FrameKind`] on every kind of frame.

use bedrock_converse::eventstream::{
    decode_frame, DecodeError, EventStreamError, Fed, FrameKind, Framer, HeaderValue, Limits, MessageBuilder,
};
use bytes::Bytes;
use proptest::prelude::*;

mod common;
use common::{error_frame, event_frame};

/// Feeds `wire` cut at `cuts` (sorted offsets); returns each frame's end offset and
/// rendered kind, and the error, if any.
fn feed_cut(wire: &[u8], cuts: &[usize], limits: Limits) -> (Vec<(usize, String)>, Option<EventStreamError>) {
    let mut framer = Framer::new(limits);
    let mut frames = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < wire.len()).collect();
    bounds.push(wire.len());
    let mut start = 0;
    for end in bounds {
        let mut rest = &wire[start..end.max(start)];
        let mut pos = start;
        for _ in 0..=rest.len() / 16 + 1 {
            match framer.feed(rest) {
                Ok(Fed::Frame { end }) => {
                    pos += end;
                    frames.push((pos, format!("{:?}", framer.last_kind())));
                    rest = &rest[end..];
                }
                Ok(Fed::Partial) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
        start = end.max(start);
    }
    (frames, framer.feed_eof().err())
}

/// The same through `decode_frame`, as the reference.
fn walk(wire: &[u8], limits: Limits) -> (Vec<(usize, String)>, Option<String>) {
    let (mut off, mut frames) = (0, Vec::new());
    loop {
        match decode_frame(&wire[off..], &limits) {
            Ok(Some((frame, used))) => {
                off += used;
                frames.push((off, format!("{:?}", frame.kind())));
            }
            Ok(None) => return (frames, (off < wire.len()).then(|| "truncated".to_owned())),
            Err(e) => return (frames, Some(format!("{e:?}"))),
        }
    }
}

fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
    let one = (0u8..6, proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(kind, payload)| {
        let m = match kind {
            0 => event_frame("contentBlockDelta", &payload),
            1 => event_frame("messageStart", &payload),
            2 => MessageBuilder::new()
                .string_header(":exception-type", "throttlingException")
                .string_header(":content-type", "application/json")
                .string_header(":message-type", "exception")
                .build(&payload)
                .expect("frame"),
            3 => MessageBuilder::new()
                .string_header(":message-type", "error")
                .string_header(":error-code", "InternalFailure")
                .build(&payload)
                .expect("frame"),
            4 => MessageBuilder::new()
                .header("n", HeaderValue::Int64(-7))
                .header("u", HeaderValue::Uuid([3; 16]))
                .string_header(":event-type", "metadata")
                .string_header(":message-type", "event")
                .build(&payload)
                .expect("frame"),
            _ => MessageBuilder::new().build(&payload).expect("frame"),
        };
        m.as_bytes().to_vec()
    });
    proptest::collection::vec(one, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Chunk mode, cut anywhere, finds the frames `decode_frame` finds, with the same
    /// kinds; on a cut tail it reports `Truncated` with what `decode_frame` left.
    #[test]
    fn chunk_mode_agrees_with_decode_frame(
        wire in stream_strategy(),
        cuts in proptest::collection::vec(0usize..2000, 0..12),
        drop_tail in 0usize..20,
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let wire = &wire[..wire.len().saturating_sub(drop_tail)];
        let (fed, fed_err) = feed_cut(wire, &cuts, Limits::default());
        let (walked, walk_err) = walk(wire, Limits::default());
        prop_assert_eq!(&fed, &walked);
        match (fed_err, walk_err) {
            (None, None) => {}
            (Some(EventStreamError::Decode(DecodeError::Truncated { buffered, .. })), Some(_)) => {
                let last = walked.last().map_or(0, |(end, _)| *end);
                prop_assert_eq!(buffered, wire.len() - last);
            }
            (a, b) => prop_assert!(false, "chunk mode {a:?}, decode_frame {b:?}"),
        }
    }

    /// One flipped bit anywhere in a frame: chunk mode, cut anywhere, fails with
    /// exactly the error `decode_frame` gives (CRC numbers included).
    #[test]
    fn chunk_mode_corruption_matches_decode_frame(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        bit in any::<prop::sample::Index>(),
        cuts in proptest::collection::vec(0usize..400, 0..6),
    ) {
        let mut wire = event_frame("contentBlockDelta", &payload).as_bytes().to_vec();
        let bit = bit.index(wire.len() * 8);
        wire[bit / 8] ^= 1 << (bit % 8);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let (fed, fed_err) = feed_cut(&wire, &cuts, Limits::default());
        let (walked, walk_err) = walk(&wire, Limits::default());
        prop_assert_eq!(fed, walked);
        // A length bit can make the frame longer than the input: decode_frame then waits
        // for more, and chunk mode says Truncated at the end.
        match (fed_err, walk_err) {
            (Some(EventStreamError::Decode(DecodeError::Truncated { .. })), Some(w)) => {
                prop_assert_eq!(w, "truncated")
            }
            (Some(f), Some(w)) => prop_assert_eq!(format!("{f:?}"), w),
            (f, w) => prop_assert!(false, "chunk mode {f:?}, decode_frame {w:?}"),
        }
    }
}

#[test]
fn buffer_mode_parses_the_prelude_once_and_says_how_much_to_gather() {
    let msg = event_frame("contentBlockDelta", b"{\"x\":1}");
    let wire = msg.as_bytes();
    let mut framer = Framer::default();
    for cut in 0..12 {
        assert!(framer.decode(&wire[..cut]).expect("short").is_none());
        assert_eq!(framer.frame_len(), None, "no length before the prelude is in");
    }
    for cut in 12..wire.len() {
        assert!(framer.decode(&wire[..cut]).expect("short").is_none());
        assert_eq!(framer.frame_len(), Some(wire.len()));
    }
    let frame = framer.decode(wire).expect("valid").expect("whole");
    assert_eq!(frame.as_bytes(), wire);
    assert_eq!(framer.frame_len(), None, "back to the head");

    // decode_bytes splits the frame off a Bytes, zero-copy, and leaves the rest.
    let mut two = Bytes::from([wire, wire].concat());
    let first = framer.decode_bytes(&mut two).expect("valid").expect("whole");
    assert_eq!(first, msg);
    assert_eq!(two.len(), wire.len());
    let mut half = two.slice(..20);
    assert_eq!(framer.decode_bytes(&mut half).expect("short"), None);
    assert_eq!(half.len(), 20, "an incomplete frame stays where it was");
}

#[test]
fn a_hostile_prelude_fails_in_both_modes_before_any_body_arrives() {
    let limits = Limits::default()
        .with_max_payload_len(64)
        .with_max_headers_len(64);
    let mut prelude = [0u8; 12];
    prelude[..4].copy_from_slice(&1_000_000u32.to_be_bytes());
    let crc = crc32fast::hash(&prelude[..8]);
    prelude[8..].copy_from_slice(&crc.to_be_bytes());
    let want = DecodeError::MessageTooLarge {
        len: 1_000_000,
        max: 16 + 64 + 64,
    };

    let mut framer = Framer::new(limits);
    let err = framer.decode(&prelude).expect_err("too large");
    assert_eq!(err.as_decode(), Some(&want));
    assert!(framer.is_poisoned());
    assert_eq!(framer.frame_len(), None);

    let mut framer = Framer::new(limits);
    assert_eq!(framer.feed(&prelude[..5]).expect("partial"), Fed::Partial);
    let err = framer.feed(&prelude[5..]).expect_err("too large");
    assert_eq!(err.as_decode(), Some(&want));
    assert!(matches!(
        framer.feed(b"more"),
        Err(EventStreamError::Decode(DecodeError::Poisoned))
    ));
    assert!(matches!(
        framer.feed_eof(),
        Err(EventStreamError::Decode(DecodeError::Poisoned))
    ));
    framer.reset();
    let ok = MessageBuilder::new().build(b"{}").expect("frame");
    assert_eq!(
        framer.feed(ok.as_bytes()).expect("valid after reset"),
        Fed::Frame {
            end: ok.as_bytes().len()
        }
    );
}

#[test]
fn chunk_mode_at_the_end_names_text_and_counts_what_is_missing() {
    let mut framer = Framer::default();
    assert_eq!(framer.feed(b"{\"message\"").expect("partial"), Fed::Partial);
    assert!(matches!(
        framer.feed_eof(),
        Err(EventStreamError::Decode(DecodeError::NotAnEventStream { .. }))
    ));

    let wire = event_frame("contentBlockDelta", b"{}");
    let wire = wire.as_bytes();
    let mut framer = Framer::default();
    assert_eq!(framer.feed(&wire[..30]).expect("partial"), Fed::Partial);
    assert!(matches!(
        framer.feed_eof(),
        Err(EventStreamError::Decode(DecodeError::Truncated { buffered: 30, missing }))
            if missing == wire.len() - 30
    ));
    let mut framer = Framer::default();
    framer.feed_eof().expect("an empty stream is complete");
}

#[test]
fn kind_and_shortcuts_on_every_kind_of_frame() {
    let delta = event_frame("contentBlockDelta", b"{}");
    assert_eq!(
        delta.kind(),
        FrameKind::Event {
            event_type: "contentBlockDelta"
        }
    );
    assert_eq!(delta.message_type(), Some("event"));
    assert_eq!(delta.content_type(), Some("application/json"));
    assert_eq!(delta.exception_type(), None);

    // Another header order takes the walk, with the same answers.
    let reordered = MessageBuilder::new()
        .string_header(":message-type", "event")
        .string_header(":event-type", "contentBlockDelta")
        .build(b"{}")
        .expect("frame");
    assert_eq!(reordered.kind(), delta.kind());
    assert_eq!(reordered.event_type(), Some("contentBlockDelta"));

    let exception = MessageBuilder::new()
        .string_header(":exception-type", "validationException")
        .string_header(":content-type", "application/json")
        .string_header(":message-type", "exception")
        .build(br#"{"message":"bad"}"#)
        .expect("frame");
    assert_eq!(
        exception.kind(),
        FrameKind::Exception {
            exception_type: Some("validationException")
        }
    );
    assert_eq!(exception.event_type(), None);

    let error = error_frame("InternalFailure", "boom");
    assert_eq!(
        error.kind(),
        FrameKind::Error {
            code: Some("InternalFailure"),
            message: Some("boom")
        }
    );

    let untyped = MessageBuilder::new()
        .string_header(":message-type", "event")
        .build(b"")
        .expect("frame");
    assert_eq!(
        untyped.kind(),
        FrameKind::Other {
            message_type: Some("event")
        }
    );
    let bare = MessageBuilder::new().build(b"").expect("frame");
    assert_eq!(bare.kind(), FrameKind::Other { message_type: None });
    // The borrowed frame answers with the frame's lifetime.
    let (frame, _) = decode_frame(delta.as_bytes(), &Limits::default())
        .expect("valid")
        .expect("whole");
    let event_type: &str = frame.event_type().expect("typed");
    assert_eq!(event_type, "contentBlockDelta");
}
