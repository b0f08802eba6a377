//! HTTP/1.1 to the upstream, sans-IO where it can be: the request head written into
//! one buffer, the response head parsed from the read buffer, and the body's framing
//! (`content-length`, chunked, or to the end of the connection) decoded in place.
//!
//! ```text
//! read buffer ─► Head::parse ─► Framing::of(head) ─► Decoder::decode ─► Bytes (a slice
//!                (status line,   (RFC 9112 §6.3)     (chunk sizes read   of the read
//!                 headers)                             in one pass)        buffer)
//! ```
//!
//! What this replaces is hyper's HTTP/1 client: its dispatch hands the request and the
//! response across a channel, and its chunked decoder takes a chunk-size line one byte
//! at a time, each byte split off the read buffer as a `Bytes` of its own. Here a chunk's
//! data is one slice, and everything else is a pass over bytes already read.
//!
//! Hostile bytes end in an [`Malformed`] error, never a panic or an unbounded buffer: a
//! head is at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] lines, chunk sizes at most 16
//! hex digits (no overflow), chunk extensions and trailers bounded.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::pool::Stream;
use super::response::UpstreamError;
use super::target::Origin;

/// The largest response head read (Bedrock's are under 2 KiB).
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// The most header lines in a response head.
pub(super) const MAX_HEADERS: usize = 128;

/// The most bytes of chunk extensions, or of trailers, in one body.
const MAX_CHUNK_EXTRAS: usize = 16 * 1024;

/// What is wrong with the upstream's HTTP/1 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed HTTP/1 response from the upstream: {0}")]
pub(crate) struct Malformed(pub(crate) &'static str);

// ===== the request =====

/// The head of `POST path` with `headers` and a body of `body_len` bytes.
pub(super) fn request_head(path: &str, headers: &HeaderMap, body_len: usize) -> Vec<u8> {
    let size: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    let mut head = Vec::with_capacity(path.len() + size + 64);
    head.extend_from_slice(b"POST ");
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"content-length: ");
    head.extend_from_slice(body_len.to_string().as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
    head
}

// ===== the response head =====

/// A parsed response head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) status: StatusCode,
    pub(super) version: Version,
    pub(super) headers: HeaderMap,
}

impl Head {
    /// Takes a whole head off the front of `buf`: `Ok(None)` while it is not all there.
    /// `scanned` is how much of `buf` earlier calls looked at (0 at first), so that a
    /// head read a little at a time is scanned once.
    ///
    /// # Errors
    ///
    /// [`Malformed`] for a head that is not HTTP/1.x, or too large.
    pub(super) fn parse(buf: &mut BytesMut, scanned: &mut usize) -> Result<Option<Head>, Malformed> {
        let Some(end) = find_head_end(buf, scanned.saturating_sub(3)) else {
            if buf.len() > MAX_HEAD {
                return Err(Malformed("response head too large"));
            }
            *scanned = buf.len();
            return Ok(None);
        };
        *scanned = 0;
        if end > MAX_HEAD {
            return Err(Malformed("response head too large"));
        }
        let head = buf.split_to(end + 4);
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            // `\r\n\r\n` was found, so httparse saw a whole head: a partial one is bad.
            Ok(httparse::Status::Partial) => return Err(Malformed("an incomplete response head")),
            Err(httparse::Error::TooManyHeaders) => return Err(Malformed("too many response headers")),
            Err(e) => return Err(Malformed(head_error(e))),
        }
        let version = match response.version {
            Some(1) => Version::HTTP_11,
            _ => Version::HTTP_10,
        };
        let status = response
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or(Malformed("invalid status code"))?;
        let mut headers = HeaderMap::with_capacity(response.headers.len());
        for h in response.headers.iter() {
            let name =
                HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| Malformed("invalid header name"))?;
            let value = HeaderValue::from_bytes(h.value).map_err(|_| Malformed("invalid header value"))?;
            headers.append(name, value);
        }
        Ok(Some(Head {
            status,
            version,
            headers,
        }))
    }
}

/// Where the blank line that ends a head starts (`\r\n\r\n`), looking from `from`:
/// a head read a little at a time is scanned once, and parsed once it is whole.
fn find_head_end(buf: &[u8], mut from: usize) -> Option<usize> {
    while let Some(at) = buf.get(from..).and_then(|rest| memchr::memchr(b'\n', rest)) {
        let lf = from + at;
        if lf >= 3 && buf.get(lf - 3..=lf) == Some(b"\r\n\r\n".as_slice()) {
            return Some(lf - 3);
        }
        from = lf + 1;
    }
    None
}

/// What httparse found wrong with a head, in words.
fn head_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "a head line does not end with CRLF",
        httparse::Error::Status => "invalid status code",
        httparse::Error::Version => "not an HTTP/1.x status line",
        _ => "malformed response head",
    }
}

// ===== the body's framing =====

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (`204`, `304`).
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// To the end of the connection (which then cannot be reused).
    UntilClose,
}

impl Framing {
    /// The framing of `head`'s body.
    ///
    /// # Errors
    ///
    /// [`Malformed`] for a `content-length` that is not one number.
    pub(super) fn of(head: &Head) -> Result<Framing, Malformed> {
        if head.status == StatusCode::NO_CONTENT || head.status == StatusCode::NOT_MODIFIED {
            return Ok(Framing::Empty);
        }
        // The last coding of the last `transfer-encoding` decides.
        if let Some(last) = head.headers.get_all(header::TRANSFER_ENCODING).iter().next_back() {
            let chunked = last
                .as_bytes()
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            return Ok(if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            });
        }
        let mut length = None;
        for value in head.headers.get_all(header::CONTENT_LENGTH) {
            for part in value.as_bytes().split(|&b| b == b',') {
                let n = parse_length(part.trim_ascii())?;
                if length.is_some_and(|l| l != n) {
                    return Err(Malformed("conflicting content-length values"));
                }
                length = Some(n);
            }
        }
        Ok(length.map_or(Framing::UntilClose, Framing::Length))
    }
}

/// A `content-length`: 1 to 19 digits (no sign, no overflow).
fn parse_length(digits: &[u8]) -> Result<u64, Malformed> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Malformed("invalid content-length"));
    }
    let mut n = 0u64;
    for d in digits {
        n = n * 10 + u64::from(d - b'0');
    }
    Ok(n)
}

// ===== the body's decoder =====

/// What [`Decoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    /// Body bytes (a slice of the read buffer).
    Data(Bytes),
    /// More bytes must be read first.
    NeedMore,
    /// The body ended.
    End,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line: the size so far and its hex digits.
    Size {
        size: u64,
        digits: u8,
    },
    /// In the extensions after a size, until its `\r`.
    Extension {
        size: u64,
    },
    /// After the size line's `\r`.
    SizeLf {
        size: u64,
    },
    /// In a chunk's data.
    Data(u64),
    /// After a chunk's data: its `\r`, then `\n`.
    DataCr,
    DataLf,
    /// In the trailers: the length of the current line.
    Trailer {
        line: usize,
    },
    /// After a trailer line's `\r`.
    TrailerLf {
        line: usize,
    },
    Done,
}

/// The decoder of one response body.
#[derive(Debug)]
pub(super) struct Decoder {
    state: DecoderState,
    /// Bytes of chunk extensions and trailers seen (bounded).
    extras: usize,
}

#[derive(Debug)]
enum DecoderState {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

impl Decoder {
    /// A decoder for a body framed so.
    pub(super) fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Empty => DecoderState::Length(0),
            Framing::Length(n) => DecoderState::Length(n),
            Framing::Chunked => DecoderState::Chunked(Chunk::Size { size: 0, digits: 0 }),
            Framing::UntilClose => DecoderState::UntilClose,
        };
        Decoder { state, extras: 0 }
    }

    /// Whether the body ends only with the connection.
    pub(super) fn until_close(&self) -> bool {
        matches!(self.state, DecoderState::UntilClose)
    }

    /// The next body bytes in `buf` (taken off it), the end, or a call for more.
    ///
    /// # Errors
    ///
    /// [`Malformed`] for chunked framing that is not RFC 9112's.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Malformed> {
        match &mut self.state {
            DecoderState::Length(0) => Ok(Decoded::End),
            DecoderState::Length(left) => Ok(take_data(buf, left)),
            DecoderState::UntilClose if buf.is_empty() => Ok(Decoded::NeedMore),
            DecoderState::UntilClose => Ok(Decoded::Data(buf.split().freeze())),
            DecoderState::Chunked(_) => self.decode_chunked(buf),
        }
    }

    fn decode_chunked(&mut self, buf: &mut BytesMut) -> Result<Decoded, Malformed> {
        let DecoderState::Chunked(state) = &mut self.state else {
            return Ok(Decoded::End);
        };
        loop {
            if let Chunk::Data(left) = state {
                let got = take_data(buf, left);
                if *left == 0 {
                    *state = Chunk::DataCr;
                }
                if got != Decoded::NeedMore {
                    return Ok(got);
                }
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
            }
            if *state == Chunk::Done {
                return Ok(Decoded::End);
            }
            if buf.is_empty() {
                return Ok(Decoded::NeedMore);
            }
            if let Some((next, used)) = size_line(*state, buf) {
                // The usual framing, whole in the buffer: the end of a chunk's data and
                // the next size line without extensions.
                *state = next;
                buf.advance(used);
                continue;
            }
            // The framing up to the next data (or the end), taken off the buffer at once.
            let mut used = 0;
            for &byte in buf.iter() {
                *state = step(*state, byte, &mut self.extras)?;
                used += 1;
                if matches!(*state, Chunk::Data(_) | Chunk::Done) {
                    break;
                }
            }
            buf.advance(used);
        }
    }
}

/// Up to `left` bytes of `buf`, as data.
fn take_data(buf: &mut BytesMut, left: &mut u64) -> Decoded {
    if buf.is_empty() {
        return Decoded::NeedMore;
    }
    // At most `buf.len()`, a `usize`.
    let n = usize::try_from(*left).map_or(buf.len(), |l| l.min(buf.len()));
    *left -= n as u64;
    Decoded::Data(buf.split_to(n).freeze())
}

/// The state after the usual framing at the start of `buf`, read at once: after a
/// chunk's data its `\r\n` (if it is there), then a size line of hex digits and `\r\n`
/// only; and how many bytes that was. `None` when the buffer starts otherwise (the
/// byte-by-byte reader takes it then).
fn size_line(state: Chunk, buf: &[u8]) -> Option<(Chunk, usize)> {
    let at = match state {
        Chunk::DataCr if buf.starts_with(b"\r\n") => 2,
        Chunk::Size { size: 0, digits: 0 } => 0,
        _ => return None,
    };
    let line = buf.get(at..)?;
    let digits = line.iter().take(17).take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 || line.get(digits..digits + 2) != Some(b"\r\n".as_slice()) {
        return None;
    }
    let mut size = 0u64;
    for &b in line.get(..digits)? {
        // A hex digit's value: below 16.
        size = size << 4 | u64::from((b as char).to_digit(16).unwrap_or(0));
    }
    let next = if size == 0 {
        Chunk::Trailer { line: 0 }
    } else {
        Chunk::Data(size)
    };
    Some((next, at + digits + 2))
}

/// The chunked decoder's next state after `byte` (any state but `Data` and `Done`).
fn step(state: Chunk, byte: u8, extras: &mut usize) -> Result<Chunk, Malformed> {
    let mut extra = || {
        *extras += 1;
        if *extras > MAX_CHUNK_EXTRAS {
            return Err(Malformed("chunk extensions or trailers too long"));
        }
        Ok(())
    };
    Ok(match (state, byte) {
        (Chunk::Size { size, digits }, b) if b.is_ascii_hexdigit() => {
            if digits >= 16 {
                return Err(Malformed("chunk size too large"));
            }
            // A hex digit's value: below 16.
            let digit = (b as char).to_digit(16).unwrap_or(0);
            Chunk::Size {
                size: size << 4 | u64::from(digit),
                digits: digits + 1,
            }
        }
        (Chunk::Size { digits: 0, .. }, _) => return Err(Malformed("chunk size has no digits")),
        (Chunk::Size { size, .. }, b'\r') => Chunk::SizeLf { size },
        (Chunk::Size { size, .. }, b';' | b' ' | b'\t') | (Chunk::Extension { size }, _)
            if byte != b'\r' && byte != b'\n' =>
        {
            extra()?;
            Chunk::Extension { size }
        }
        (Chunk::Extension { size }, b'\r') => Chunk::SizeLf { size },
        (Chunk::SizeLf { size: 0 }, b'\n') => Chunk::Trailer { line: 0 },
        (Chunk::SizeLf { size }, b'\n') => Chunk::Data(size),
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataLf, b'\n') => Chunk::Size { size: 0, digits: 0 },
        (Chunk::Trailer { line }, b'\r') => Chunk::TrailerLf { line },
        (Chunk::Trailer { line }, _) => {
            extra()?;
            Chunk::Trailer { line: line + 1 }
        }
        (Chunk::TrailerLf { line: 0 }, b'\n') => Chunk::Done,
        (Chunk::TrailerLf { .. }, b'\n') => Chunk::Trailer { line: 0 },
        _ => return Err(Malformed("invalid chunked framing")),
    })
}

// ===== the connection =====

/// Room made in the read buffer before each read: a short answer is one read, a long
/// stream's 16 KiB writes are taken whole.
const READ_RESERVE: usize = 32 * 1024;

/// Informational (`1xx`) heads skipped before a response at most.
const MAX_INFORMATIONAL: usize = 8;

/// An upstream HTTP/1 connection, driven by whoever holds it: the request's future
/// until the response head, then the response body as it is read.
pub(super) struct H1 {
    pub(super) origin: Origin,
    io: Stream,
    /// Bytes read and not yet taken (a head, body bytes not yet decoded).
    pub(super) buf: BytesMut,
}

impl H1 {
    /// A fresh connection to `origin`.
    pub(super) fn new(origin: Origin, io: Stream) -> H1 {
        H1 {
            origin,
            io,
            buf: BytesMut::new(),
        }
    }

    /// Whether an idle connection can take a request: nothing read since its last
    /// response, and a read would wait (the peer neither closed it nor sent anything).
    pub(super) fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        Pin::new(&mut self.io).poll_read(cx, &mut probe).is_pending()
    }

    /// Writes the request's `head` and `body` (one vectored write as a rule).
    ///
    /// # Errors
    ///
    /// The write failed (on a reused connection: the peer closed it meanwhile).
    pub(super) async fn write_request(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let (mut head, mut body) = (head, body);
        while !head.is_empty() || !body.is_empty() {
            let n = self
                .io
                .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let from_head = n.min(head.len());
            head = head.get(from_head..).unwrap_or_default();
            body = body.get(n - from_head..).unwrap_or_default();
        }
        self.io.flush().await
    }

    /// Reads the response head (informational ones skipped).
    ///
    /// # Errors
    ///
    /// [`UpstreamError`] when the head is malformed or the connection fails or closes
    /// first.
    pub(super) async fn read_head(&mut self) -> Result<Head, UpstreamError> {
        let mut scanned = 0;
        let mut informational = 0;
        loop {
            if let Some(head) = Head::parse(&mut self.buf, &mut scanned)? {
                if !head.status.is_informational() {
                    return Ok(head);
                }
                informational += 1;
                if head.status == StatusCode::SWITCHING_PROTOCOLS || informational > MAX_INFORMATIONAL {
                    return Err(Malformed("unexpected informational response").into());
                }
                continue;
            }
            if std::future::poll_fn(|cx| self.poll_read_more(cx)).await? == 0 {
                return Err(UpstreamError::Incomplete);
            }
        }
    }

    /// Reads what the socket has into the buffer: the bytes read, 0 at its end.
    pub(super) fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<Result<usize, UpstreamError>> {
        self.buf.reserve(READ_RESERVE);
        let read = self.io.read_buf(&mut self.buf);
        std::pin::pin!(read).poll(cx).map_err(UpstreamError::Io)
    }
}

/// Whether a connection whose response had `head` can carry another request after it
/// (HTTP/1.1, no `connection: close`).
pub(super) fn keeps_alive(head: &Head) -> bool {
    head.version == Version::HTTP_11
        && !head
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

#[cfg(test)]
mod tests;
