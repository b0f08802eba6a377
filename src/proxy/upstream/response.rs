//! An upstream response: its head, and a body that drives its HTTP/1 connection as it
//! is read (see `pool.rs` and `h1.rs`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{header, HeaderMap, Response, StatusCode};
use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Body as _, Incoming};

use super::h1::{keeps_alive, Decoded, Decoder, Framing, Head, Malformed, H1};
use super::pool::UpstreamClient;

/// Why an upstream call or body failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// The upstream URL is not `http://` or `https://` with a host.
    #[error("the upstream URL is not http(s)://host/...")]
    BadUrl,
    /// TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    /// No connection within the connect timeout.
    #[error("no connection within {} ms", .0.as_millis())]
    ConnectTimeout(Duration),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    /// HTTP/2 failed: the request, the response head or the body.
    #[error("{}", chain(.0))]
    Http(#[source] hyper::Error),
    /// The HTTP/1 response is not well-formed.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// Reading from or writing to the HTTP/1 connection failed.
    #[error("the upstream connection failed: {0}")]
    Io(#[source] std::io::Error),
    /// The HTTP/1 connection closed before the response was complete.
    #[error("the upstream closed the connection before the response was complete")]
    Incomplete,
}

/// An error and its sources, `: `-separated.
fn chain(e: &hyper::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A response head from upstream, its body still to be read.
pub(crate) struct UpstreamResponse {
    head: axum::http::response::Parts,
    body: UpstreamBody,
}

impl UpstreamResponse {
    /// A response on an HTTP/2 connection (its own task drives it).
    pub(super) fn h2(response: Response<Incoming>) -> UpstreamResponse {
        let (head, incoming) = response.into_parts();
        UpstreamResponse {
            head,
            body: UpstreamBody {
                source: Source::H2(incoming),
            },
        }
    }

    /// A response on an HTTP/1 connection: its body reads (and drives) `conn`, and
    /// gives it back to `client` at its end when it can carry another request.
    pub(super) fn h1(
        head: Head,
        conn: Box<H1>,
        client: UpstreamClient,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let framing = Framing::of(&head)?;
        let decoder = Decoder::new(framing);
        let reusable = keeps_alive(&head) && !decoder.until_close();
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = head.status;
        parts.version = head.version;
        parts.headers = head.headers;
        let body = H1Body {
            conn,
            decoder,
            client,
            reusable,
        };
        Ok(UpstreamResponse {
            head: parts,
            body: UpstreamBody {
                source: Source::H1(Box::new(body)),
            },
        })
    }

    /// The status.
    pub(crate) fn status(&self) -> StatusCode {
        self.head.status
    }

    /// The headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The declared `content-length`, if any.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.head
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    /// The body, as a stream of chunks.
    pub(crate) fn bytes_stream(self) -> UpstreamBody {
        self.body
    }

    /// The next chunk of the body, `None` at its end.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`] when the body broke off.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_next(cx))
            .await
            .transpose()
    }
}

/// An upstream response body. Over HTTP/1 it owns its connection and reads it as it is
/// read (one task: the reader's); at the end of the body the connection goes back to
/// the pool. Dropped before its end, it closes the connection (and so cancels the
/// upstream request).
pub(crate) struct UpstreamBody {
    source: Source,
}

enum Source {
    H1(Box<H1Body>),
    H2(Incoming),
    Ended,
}

/// An HTTP/1 body: its connection and how far its framing has come.
struct H1Body {
    conn: Box<H1>,
    decoder: Decoder,
    client: UpstreamClient,
    /// Whether the connection can carry another request once the body has ended.
    reusable: bool,
}

impl UpstreamBody {
    /// Whether reading this body drives its connection: `Pending` then means upstream
    /// sent nothing more yet, not that another task has bytes still to pass on.
    pub(crate) fn drives_connection(&self) -> bool {
        matches!(self.source, Source::H1(_))
    }

    fn poll_h1(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, UpstreamError>>> {
        let Source::H1(body) = &mut self.source else {
            return Poll::Ready(None);
        };
        // Reads until the body gives bytes or the socket has none (a read that brought
        // only framing is followed by another: a pending read is what registers the
        // wake-up). Framing between data is bounded (`h1.rs`), so this ends.
        loop {
            match body.decoder.decode(&mut body.conn.buf) {
                Ok(Decoded::Data(bytes)) => return Poll::Ready(Some(Ok(bytes))),
                Ok(Decoded::End) => return self.ended(),
                Ok(Decoded::NeedMore) => {}
                Err(e) => return self.failed(e.into()),
            }
            match body.conn.poll_read_more(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) if body.decoder.until_close() => return self.ended(),
                Poll::Ready(Ok(0)) => return self.failed(UpstreamError::Incomplete),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return self.failed(e),
            }
        }
    }

    /// The body ended: the connection goes back to the pool if it can take another
    /// request (nothing more was sent after the body).
    fn ended(&mut self) -> Poll<Option<Result<Bytes, UpstreamError>>> {
        if let Source::H1(body) = std::mem::replace(&mut self.source, Source::Ended) {
            if body.reusable && body.conn.buf.is_empty() {
                body.client.put(body.conn);
            }
        }
        Poll::Ready(None)
    }

    /// The body broke off: the connection is closed.
    fn failed(&mut self, e: UpstreamError) -> Poll<Option<Result<Bytes, UpstreamError>>> {
        self.source = Source::Ended;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for UpstreamBody {
    type Item = Result<Bytes, UpstreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Source::H2(incoming) = &mut this.source else {
            return this.poll_h1(cx);
        };
        loop {
            match Pin::new(&mut *incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
                    // An empty chunk, or trailers (nothing the gateway forwards).
                    _ => continue,
                },
                Poll::Ready(Some(Err(e))) => return this.failed(UpstreamError::Http(e)),
                Poll::Ready(None) => {
                    this.source = Source::Ended;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
