// The decode fuzz logic, shared by `fuzz_targets/decode.rs` (libFuzzer) and
// `tests/fuzz_corpus_decode.rs` (replays the corpus and artifacts under `cargo test`).
// Both `include!` this file, so it is one inline module and nothing else.

/// Runs the decoder's two entry points over fuzz input and checks that they agree.
#[allow(dead_code)] // Each includer uses a different subset.
mod decode_logic {
    use bedrock_converse::eventstream::{
        decode_frame, DecodeError, EventStreamCodec, EventStreamError, Fed, Framer, Limits, Message,
        MessageBuilder, PRELUDE_LEN,
    };
    use bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};

    /// How the input is cut into reads.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Chunking {
        /// One read with everything.
        Whole,
        /// One byte per read.
        Bytewise,
        /// Reads of this many bytes (at least 1).
        Fixed(usize),
        /// Reads of 1 to 64 bytes from an xorshift generator with this seed.
        Random(u32),
    }

    impl Chunking {
        fn chunks(self, input: &[u8]) -> Vec<&[u8]> {
            match self {
                Chunking::Whole => vec![input],
                Chunking::Bytewise => input.chunks(1).collect(),
                Chunking::Fixed(n) => input.chunks(n.max(1)).collect(),
                Chunking::Random(seed) => {
                    let mut state = seed | 1;
                    let mut out = Vec::new();
                    let mut rest = input;
                    while !rest.is_empty() {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        // 1..=64, then clamp to what is left.
                        let n = ((state % 64) as usize + 1).min(rest.len());
                        let (head, tail) = rest.split_at(n);
                        out.push(head);
                        rest = tail;
                    }
                    out
                }
            }
        }
    }

    /// Small limits, so that the limit checks are reachable by small inputs.
    pub(crate) fn small_limits() -> Limits {
        Limits::default().with_max_payload_len(256).with_max_headers_len(128)
    }

    /// Rewrites both CRCs of every frame in `input` whose length fits, and the prelude
    /// CRC of a last frame that does not, so that the decoder's checks behind the CRCs
    /// (lengths, limits, headers) see the fuzzer's bytes: the fuzzer cannot forge CRCs.
    pub(crate) fn repair_crcs(input: &mut [u8]) {
        let mut off = 0;
        while let Some(p) = input.get(off..).and_then(|r| r.first_chunk::<PRELUDE_LEN>()) {
            let total = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
            let crc = crc32(&p[..8]);
            input[off + 8..off + 12].copy_from_slice(&crc.to_be_bytes());
            if total < 16 || total > input.len() - off {
                return;
            }
            let end = off + total - 4;
            let crc = crc32(&input[off..end]);
            input[end..end + 4].copy_from_slice(&crc.to_be_bytes());
            off += total;
        }
    }

    /// CRC-32/IEEE, bitwise (so that the fuzz crate needs no CRC dependency).
    pub(crate) fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            }
        }
        !crc
    }

    /// The fuzz entry point: byte 0 picks the chunking (bits 0..2), the limits (bit 2)
    /// and whether to repair the CRCs first (bit 3); byte 1 is the chunking's parameter;
    /// the rest is the stream.
    pub(crate) fn run(data: &[u8]) {
        let [sel, param, input @ ..] = data else {
            return;
        };
        let mut repaired;
        let input = if sel & 8 == 0 {
            input
        } else {
            repaired = input.to_vec();
            repair_crcs(&mut repaired);
            &repaired[..]
        };
        let chunking = match sel & 3 {
            0 => Chunking::Whole,
            1 => Chunking::Bytewise,
            2 => Chunking::Fixed(usize::from(*param) + 1),
            _ => Chunking::Random(u32::from(*param)),
        };
        let limits = if sel & 4 == 0 {
            Limits::default()
        } else {
            small_limits()
        };
        check_stream(input, chunking, limits);
    }

    /// What one entry point made of a stream.
    #[derive(Debug)]
    pub(crate) struct Outcome {
        /// The frames it accepted, in order.
        pub(crate) messages: Vec<Message>,
        /// The error it stopped with, if any.
        pub(crate) error: Option<EventStreamError>,
    }

    /// Feeds `input` through [`EventStreamCodec`] in reads cut by `chunking`, then
    /// `decode_eof` until the end.
    pub(crate) fn via_codec(input: &[u8], chunking: Chunking, limits: Limits) -> Outcome {
        let mut codec = EventStreamCodec::with_limits(limits);
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        for chunk in chunking.chunks(input) {
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(m)) => messages.push(m),
                    Ok(None) => break,
                    Err(e) => return poisoned_after(codec, buf, messages, e),
                }
            }
        }
        loop {
            match codec.decode_eof(&mut buf) {
                Ok(Some(m)) => messages.push(m),
                Ok(None) => break,
                Err(e) => return poisoned_after(codec, buf, messages, e),
            }
        }
        assert!(
            buf.is_empty(),
            "decode_eof returned None with {} bytes left",
            buf.len()
        );
        assert!(!codec.is_poisoned());
        Outcome {
            messages,
            error: None,
        }
    }

    /// Checks that the codec stays poisoned after `error`, and keeps the failed bytes.
    fn poisoned_after(
        mut codec: EventStreamCodec,
        mut buf: BytesMut,
        messages: Vec<Message>,
        error: EventStreamError,
    ) -> Outcome {
        assert!(
            !matches!(error, EventStreamError::Decode(DecodeError::Poisoned)),
            "first error is Poisoned"
        );
        assert!(codec.is_poisoned());
        let len = buf.len();
        assert!(matches!(codec.decode(&mut buf), Err(EventStreamError::Decode(DecodeError::Poisoned))));
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(EventStreamError::Decode(DecodeError::Poisoned))
        ));
        assert_eq!(buf.len(), len, "a poisoned codec must not consume bytes");
        Outcome {
            messages,
            error: Some(error),
        }
    }

    /// Walks `input` with [`decode_frame`]. Returns the accepted frames (as owned
    /// messages, for comparison), the error if any, and the offset where it stopped.
    pub(crate) fn via_decode_frame(input: &[u8], limits: Limits) -> (Outcome, usize) {
        let mut messages = Vec::new();
        let mut off = 0;
        loop {
            let rest = &input[off..];
            match decode_frame(rest, &limits) {
                Ok(Some((frame, used))) => {
                    assert_eq!(used, frame.as_bytes().len());
                    assert!(used >= 16 && used <= rest.len());
                    assert_eq!(frame.as_bytes(), &rest[..used]);
                    let owned = Message::from_bytes(bytes::Bytes::copy_from_slice(frame.as_bytes()), &limits)
                        .expect("from_bytes must accept what decode_frame accepted");
                    // The borrowed and the owned views agree.
                    assert!(frame.headers().eq(owned.headers()));
                    assert_eq!(frame.payload(), owned.payload());
                    assert_eq!(frame.event_type(), owned.event_type());
                    messages.push(owned);
                    off += used;
                }
                Ok(None) => {
                    return (
                        Outcome {
                            messages,
                            error: None,
                        },
                        off,
                    )
                }
                Err(e) => {
                    return (
                        Outcome {
                            messages,
                            error: Some(e),
                        },
                        off,
                    )
                }
            }
        }
    }

    /// Feeds `input` to a [`Framer`] in chunk mode, in reads cut by `chunking`, then
    /// `feed_eof`. Returns the frames' byte ranges in `input` and, for each, the kind
    /// and headers the framer kept (rendered), and the error if any.
    pub(crate) fn via_feed(
        input: &[u8],
        chunking: Chunking,
        limits: Limits,
    ) -> (Vec<(std::ops::Range<usize>, String)>, Option<EventStreamError>) {
        let mut framer = Framer::new(limits);
        let mut frames = Vec::new();
        let (mut start, mut pos) = (0, 0);
        for chunk in chunking.chunks(input) {
            let mut rest = chunk;
            // Each round ends a frame or uses the chunk up; a frame is at least 16 bytes.
            for _ in 0..=chunk.len() / 16 + 1 {
                match framer.feed(rest) {
                    Ok(Fed::Frame { end }) => {
                        assert!(end > 0 && end <= rest.len());
                        pos += end;
                        let seen = format!("{:?} {:?}", framer.last_kind(), framer.last_headers().collect::<Vec<_>>());
                        frames.push((start..pos, seen));
                        start = pos;
                        rest = &rest[end..];
                    }
                    Ok(Fed::Partial) => {
                        pos += rest.len();
                        break;
                    }
                    Err(e) => {
                        assert!(framer.is_poisoned());
                        assert!(matches!(framer.feed(b"x"), Err(EventStreamError::Decode(DecodeError::Poisoned))));
                        return (frames, Some(e));
                    }
                }
            }
        }
        assert_eq!(pos, input.len());
        (frames, framer.feed_eof().err())
    }

    /// Checks one accepted message: every accessor works, and rebuilding it from its
    /// headers and payload with [`MessageBuilder`] (and the encoder) gives the same bytes.
    pub(crate) fn check_message(m: &Message, limits: Limits) {
        let mut b = MessageBuilder::new();
        for (name, value) in m.headers() {
            assert!(!name.is_empty() && name.len() <= 255);
            let _ = (value.type_byte(), value.type_name(), value.as_str());
            b = b.header(name, value);
        }
        let rebuilt = b.build(m.payload()).expect("an accepted message re-encodes");
        assert_eq!(rebuilt.as_bytes(), m.as_bytes(), "re-encoding changed the bytes");
        assert_eq!(&rebuilt, m);
        let mut out = BytesMut::new();
        EventStreamCodec::with_limits(limits)
            .encode(m, &mut out)
            .expect("encoding never fails");
        assert_eq!(&out[..], m.as_bytes());
        assert_eq!(&m.payload_bytes()[..], m.payload());
        let _ = (
            m.event_type(),
            m.message_type(),
            m.exception_type(),
            m.content_type(),
            m.error_code(),
            m.error_message(),
            format!("{m:?}"),
        );
    }

    /// Runs both entry points over `input` and checks that they agree.
    pub(crate) fn check_stream(input: &[u8], chunking: Chunking, limits: Limits) -> Outcome {
        let codec = via_codec(input, chunking, limits);
        let (frames, stopped_at) = via_decode_frame(input, limits);
        assert_eq!(
            codec.messages, frames.messages,
            "the codec and decode_frame accepted different frames"
        );
        for m in &codec.messages {
            check_message(m, limits);
        }
        let rest = &input[stopped_at..];
        match (&frames.error, &codec.error) {
            // The same checks on the same bytes: the same error, numbers included.
            (Some(a), Some(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
            (Some(a), None) => panic!("decode_frame failed with {a:?}, the codec did not"),
            (None, None) => assert!(rest.is_empty(), "the codec accepted a truncated tail"),
            (None, Some(e)) => match e {
                EventStreamError::Decode(DecodeError::Truncated { buffered, missing }) => {
                    assert_eq!(*buffered, rest.len());
                    let want = match rest.first_chunk::<PRELUDE_LEN>() {
                        Some(p) => u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize - rest.len(),
                        None => PRELUDE_LEN - rest.len(),
                    };
                    assert_eq!(*missing, want);
                }
                EventStreamError::Decode(DecodeError::NotAnEventStream { .. }) => {
                    assert!(!rest.is_empty() && rest.len() < PRELUDE_LEN)
                }
                other => panic!("decode_frame stopped cleanly, the codec failed with {other:?}"),
            },
        }
        // The framer's chunk mode finds the same frames and the same error, without
        // gathering the frames.
        let (fed, fed_error) = via_feed(input, chunking, limits);
        assert_eq!(fed.len(), codec.messages.len(), "chunk mode found other frames");
        for ((range, seen), m) in fed.iter().zip(&codec.messages) {
            assert_eq!(&input[range.clone()], m.as_bytes());
            let want = format!("{:?} {:?}", m.kind(), m.headers().collect::<Vec<_>>());
            assert_eq!(seen, &want);
        }
        assert_eq!(
            format!("{fed_error:?}"),
            format!("{:?}", codec.error),
            "chunk mode failed otherwise"
        );
        if let Some(e) = &codec.error {
            // Every error renders.
            let _ = e.to_string();
        }
        codec
    }
}
