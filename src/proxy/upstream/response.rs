//! An upstream response: its head, and a body that drives its HTTP/1 connection as it
//! is read (see `pool.rs`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{header, HeaderMap, Response, StatusCode};
use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Body as _, Incoming};

use super::pool::{UpstreamClient, H1};

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
    /// A new connection closed before the request could be written.
    #[error("the connection closed before the request was sent")]
    Closed,
    /// HTTP failed: the request, the response head or the body.
    #[error("{}", chain(.0))]
    Http(#[source] hyper::Error),
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
    pub(super) fn new(response: Response<Incoming>, mut body: UpstreamBody) -> UpstreamResponse {
        let (head, incoming) = response.into_parts();
        body.incoming = Some(incoming);
        UpstreamResponse { head, body }
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
    /// [`UpstreamError::Http`] when the body broke off.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_next(cx))
            .await
            .transpose()
    }
}

/// An upstream response body. Over HTTP/1 it owns its connection and polls it as it is
/// read (one task: the reader's); at the end of the body the connection goes back to
/// the pool. Dropped before its end, it closes the connection (and so cancels the
/// upstream request).
pub(crate) struct UpstreamBody {
    incoming: Option<Incoming>,
    /// The HTTP/1 connection, while it is open.
    driver: Option<Driver>,
    /// The connection failed (its error, for a body that would otherwise look ended).
    failed: Option<hyper::Error>,
}

struct Driver {
    h1: Box<H1>,
    client: UpstreamClient,
}

impl UpstreamBody {
    /// The body of a response on an HTTP/1 connection (`None`: the connection already
    /// closed after sending the response).
    pub(super) fn h1(h1: Option<Box<H1>>, client: UpstreamClient) -> UpstreamBody {
        UpstreamBody {
            incoming: None,
            driver: h1.map(|h1| Driver { h1, client }),
            failed: None,
        }
    }

    /// The body of a response on an HTTP/2 connection (its own task drives it).
    pub(super) fn h2() -> UpstreamBody {
        UpstreamBody {
            incoming: None,
            driver: None,
            failed: None,
        }
    }

    /// Whether reading this body drives its connection: `Pending` then means upstream
    /// sent nothing more yet, not that another task has bytes still to pass on.
    pub(crate) fn drives_connection(&self) -> bool {
        self.driver.is_some()
    }

    /// The body ended: the connection goes back to the pool if it can take another
    /// request.
    fn ended(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, UpstreamError>>> {
        self.incoming = None;
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Some(Err(UpstreamError::Http(e))));
        }
        if let Some(Driver { h1, client }) = self.driver.take() {
            client.release(h1, cx);
        }
        Poll::Ready(None)
    }
}

impl Stream for UpstreamBody {
    type Item = Result<Bytes, UpstreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // The connection is polled once per call at most: after it, the body is looked
        // at again, and then the call returns.
        let mut driven = false;
        loop {
            let Some(incoming) = this.incoming.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
                    // An empty chunk, or trailers (nothing the gateway forwards).
                    _ => continue,
                },
                Poll::Ready(Some(Err(e))) => {
                    this.incoming = None;
                    this.driver = None;
                    return Poll::Ready(Some(Err(UpstreamError::Http(e))));
                }
                Poll::Ready(None) => return this.ended(cx),
                Poll::Pending => {}
            }
            if driven {
                return Poll::Pending;
            }
            let Some(driver) = this.driver.as_mut() else {
                return Poll::Pending;
            };
            driven = true;
            if let Poll::Ready(result) = Pin::new(&mut driver.h1.conn).poll(cx) {
                // Closed (its body, if whole, is in `incoming`) or failed.
                this.driver = None;
                this.failed = result.err();
            }
        }
    }
}
