//! The HTTP/1 response reader on good and hostile bytes, in every split.

use super::*;

fn head_of(text: &[u8]) -> Result<Option<Head>, Malformed> {
    Head::parse(&mut BytesMut::from(text), &mut 0)
}

/// The body of `wire` (after its head) decoded with `framing`, fed `split` bytes at a
/// time; the error if it is malformed; `Ok(None)` if it ended early.
fn body_of(framing: Framing, wire: &[u8], split: usize) -> Result<Option<Vec<u8>>, Malformed> {
    let mut decoder = Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    // Nothing at first: a body that is empty ends before any byte is read.
    for piece in std::iter::once(&[][..]).chain(wire.chunks(split.max(1))) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(bytes) => {
                    assert!(!bytes.is_empty());
                    out.extend_from_slice(&bytes);
                }
                Decoded::NeedMore => break,
                Decoded::End => return Ok(Some(out)),
            }
        }
    }
    Ok(None)
}

#[test]
fn a_head_is_parsed_once_it_is_all_there() {
    let wire = b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\nX-Amzn-RequestId:  abc \r\ntransfer-encoding: chunked\r\n\r\nrest";
    for cut in 0..wire.len() - 4 {
        let mut buf = BytesMut::from(&wire[..cut]);
        assert!(Head::parse(&mut buf, &mut 0).unwrap().is_none(), "cut {cut}");
    }
    // Read a byte at a time, each byte looked at once.
    let mut buf = BytesMut::new();
    let mut scanned = 0;
    let mut parsed = None;
    for &b in wire.iter() {
        buf.extend_from_slice(&[b]);
        if let Some(head) = Head::parse(&mut buf, &mut scanned).unwrap() {
            parsed = Some(head);
            break;
        }
    }
    let head = parsed.unwrap();
    buf.extend_from_slice(b"rest");
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.headers["x-amzn-requestid"], "abc");
    assert_eq!(Framing::of(&head), Ok(Framing::Chunked));
    assert_eq!(&buf[..], b"rest");
}

#[test]
fn hostile_heads_are_errors() {
    for bad in [
        b"HTTP/2 200 OK\r\n\r\n".as_slice(),
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx: a\x01b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
    ] {
        assert!(head_of(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    // A bare LF ends a line as RFC 9112 (section 2.2) lets a recipient take it, and as
    // hyper (the same head parser, httparse) does.
    let lf = head_of(b"HTTP/1.1 200 OK\nx: y\r\n\r\n").unwrap().unwrap();
    assert_eq!(lf.headers["x"], "y");
    let long = [
        b"HTTP/1.1 200 OK\r\nx: ".as_slice(),
        &vec![b'a'; MAX_HEAD],
        b"\r\n",
    ]
    .concat();
    assert!(head_of(&long).is_err(), "an unended head past the limit");
    let many: Vec<u8> = std::iter::once(b"HTTP/1.1 200 OK\r\n".to_vec())
        .chain((0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n").into_bytes()))
        .chain(std::iter::once(b"\r\n".to_vec()))
        .flatten()
        .collect();
    assert_eq!(
        head_of(&many).unwrap_err(),
        Malformed("too many response headers")
    );
}

#[test]
fn framing_follows_rfc_9112() {
    let framing = |text: &str| Framing::of(&head_of(text.as_bytes()).unwrap().unwrap());
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
        Ok(Framing::Length(5))
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\ncontent-length: 5\r\n\r\n"),
        Ok(Framing::Length(5))
    );
    assert_eq!(framing("HTTP/1.1 204 No Content\r\n\r\n"), Ok(Framing::Empty));
    assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::UntilClose));
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\ncontent-length: 9\r\n\r\n"),
        Ok(Framing::Chunked)
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n"),
        Ok(Framing::UntilClose)
    );
    for bad in ["5, 6", "-1", "+5", "", "99999999999999999999", "0x5"] {
        let text = format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n");
        assert!(framing(&text).is_err(), "{bad:?}");
    }
}

#[test]
fn chunked_bodies_decode_in_every_split() {
    let wire = b"5\r\nhello\r\n1;name=\"v\"\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
    for split in 1..=wire.len() {
        let body = body_of(Framing::Chunked, wire, split).unwrap();
        assert_eq!(
            body.as_deref(),
            Some(b"hello 0123456789".as_slice()),
            "split {split}"
        );
    }
    let length = body_of(Framing::Length(4), b"abcdef", 1).unwrap();
    assert_eq!(length.as_deref(), Some(b"abcd".as_slice()));
    assert_eq!(body_of(Framing::Empty, b"", 1), Ok(Some(Vec::new())));
}

#[test]
fn a_chunked_body_cut_short_has_not_ended() {
    let wire = b"5\r\nhello\r\n0\r\n\r\n";
    for cut in 0..wire.len() {
        assert_eq!(body_of(Framing::Chunked, &wire[..cut], 3), Ok(None), "cut {cut}");
    }
}

#[test]
fn hostile_chunked_bodies_are_errors() {
    let extensions = [b"1;".as_slice(), &vec![b'x'; MAX_CHUNK_EXTRAS + 1]].concat();
    let trailers = [b"0\r\nx: ".as_slice(), &vec![b'y'; MAX_CHUNK_EXTRAS + 1]].concat();
    for bad in [
        b"g\r\n".as_slice(),
        b"\r\n",
        b"11111111111111111\r\n",
        b"5\r\nhelloXX",
        b"5\rhello",
        b"5\r\nhello\r\r",
        b"0\r\n\r\r",
        &extensions,
        &trailers,
    ] {
        for split in [1, 7, bad.len()] {
            assert!(
                body_of(Framing::Chunked, bad, split).is_err(),
                "{:?} split {split}",
                String::from_utf8_lossy(&bad[..bad.len().min(40)])
            );
        }
    }
    // The largest size that fits is read whole, without overflow.
    let huge = body_of(Framing::Chunked, b"ffffffffffffffff\r\nabc", 2).unwrap();
    assert_eq!(huge, None);
}

#[test]
fn a_request_head_carries_its_headers_and_length() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("h:9"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let head = request_head("/model/m/converse", &headers, 12);
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "POST /model/m/converse HTTP/1.1\r\nhost: h:9\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n"
    );
}

proptest::proptest! {
    /// Any body, cut into any chunks (sizes in any hex case, with or without
    /// extensions), read in any split, decodes to itself and ends.
    #[test]
    fn any_chunked_body_decodes_to_itself(
        chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 1..40), 0..8),
        upper in proptest::bool::ANY,
        extension in proptest::bool::ANY,
        split in 1usize..64,
    ) {
        let mut wire = Vec::new();
        for chunk in &chunks {
            let size = if upper { format!("{:X}", chunk.len()) } else { format!("{:x}", chunk.len()) };
            wire.extend_from_slice(size.as_bytes());
            if extension {
                wire.extend_from_slice(b";ext=1");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let body = body_of(Framing::Chunked, &wire, split).unwrap();
        proptest::prop_assert_eq!(body, Some(chunks.concat()));
    }

    /// Any bytes at all, as a head and then as a chunked body, in any split: an answer
    /// or an error, never a panic, and every call returns.
    #[test]
    fn hostile_bytes_never_panic(
        wire in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        split in 1usize..64,
    ) {
        let mut head = BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..]);
        head.extend_from_slice(&wire);
        let _ = Head::parse(&mut head, &mut 0);
        let _ = body_of(Framing::Chunked, &wire, split);
        let _ = body_of(Framing::Length(wire.len() as u64 / 2), &wire, split);
    }
}
