//! The upstream HTTP client: hyper's connection-level API with a pool of our own.
//!
//! ```text
//! post ─► an HTTP/2 connection to the origin? ── yes ──► its SendRequest (a task drives it)
//!           │ no
//!           ▼
//!         an idle HTTP/1 connection? (polled once first: one the peer closed is dropped)
//!           │ none left
//!           ▼
//!         connect: TCP (nodelay), TLS with ALPN h2 / http/1.1 for https ─► HTTP/2 or HTTP/1
//!           ▼
//!         HTTP/1: request written and response head read, the connection polled by the
//!         caller; the response body (UpstreamBody) then owns the connection and polls it
//!         as it is read; at the body's end the connection goes back to the pool
//! ```
//!
//! An HTTP/1 connection has no task of its own: whoever reads the response body drives
//! it, so a chunk read from the socket is validated and handed to the client's
//! connection in the same poll, with no hand-off between tasks and no cross-task
//! wake-up. Its read buffer grows to [`READ_BUF_MAX`] at most (hyper's default is about
//! 400 KiB per connection). Redirects are never followed: the response is the caller's.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, uri::PathAndQuery, HeaderMap, Method, Request, Version};
use bytes::Bytes;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::response::{UpstreamBody, UpstreamError, UpstreamResponse};
use super::target::{Origin, Target};

/// The most an upstream HTTP/1 connection's read buffer grows to: a response head must
/// fit in it (Bedrock's are under 2 KiB); a body is read through it in pieces.
const READ_BUF_MAX: usize = 64 * 1024;

/// Idle HTTP/1 connections kept, all origins together.
const MAX_IDLE: usize = 256;

/// How long an idle connection is kept.
const IDLE_FOR: Duration = Duration::from_secs(90);

/// The upstream client: connection settings, TLS, and the pool. Cheap to clone.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    connect_timeout: Duration,
    tls: tokio_rustls::TlsConnector,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    /// HTTP/1 connections at rest, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// HTTP/2 connections, one per origin as a rule (each driven by its own task).
    shared: Mutex<Vec<(Origin, http2::SendRequest<Body>)>>,
}

/// An upstream HTTP/1 connection, driven by whoever holds it.
pub(super) type H1Connection = http1::Connection<TokioIo<Stream>, Body>;

/// An HTTP/1 connection and the handle that sends requests on it.
pub(super) struct H1 {
    origin: Origin,
    send: http1::SendRequest<Body>,
    pub(super) conn: H1Connection,
}

struct Idle {
    h1: Box<H1>,
    since: Instant,
}

/// A new connection, by the protocol the upstream chose.
enum Fresh {
    H1(Box<H1>),
    H2(http2::SendRequest<Body>),
}

/// Why a request on an HTTP/1 connection got no response.
enum H1Failure {
    /// The connection closed before the request was written: it can go on another.
    NotSent(Box<Request<Body>>),
    Failed(UpstreamError),
}

impl UpstreamClient {
    /// A client whose connection attempts (TCP and TLS) give up after `connect_timeout`;
    /// HTTPS with the webpki roots.
    pub(crate) fn new(connect_timeout: Duration) -> UpstreamClient {
        UpstreamClient::trusting(connect_timeout, Vec::new())
    }

    /// [`new`](Self::new), trusting `extra` roots beside the webpki ones.
    fn trusting(
        connect_timeout: Duration,
        extra: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> UpstreamClient {
        let mut h1 = http1::Builder::new();
        h1.max_buf_size(READ_BUF_MAX);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new());
        UpstreamClient {
            inner: Arc::new(ClientInner {
                connect_timeout,
                tls: tls_connector(extra),
                h1,
                h2,
                idle: Mutex::new(Vec::new()),
                shared: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends `POST url` with `headers` (no `host`: it is derived from `url`, as the
    /// signature has it) and `body`, and waits for the response head.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`] when `url` is not `http(s)://host...`, no connection could be
    /// made, or the connection failed before a response head came.
    #[cfg(test)]
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let target = Target::parse(url)?;
        let path = target.path_prefix().to_owned();
        self.post_to(&target, path, headers, body).await
    }

    /// Sends `POST path` to `target` with `headers` (no `host`: the target's is sent,
    /// as the signature has it) and `body`, and waits for the response head.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`] when `path` is not a valid request target, no connection could
    /// be made, or the connection failed before a response head came.
    pub(crate) async fn post_to(
        &self,
        target: &Target,
        path: String,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let origin = target.origin();
        headers.insert(header::HOST, target.host_value());
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Target::path_and_query(path)?.into();
        *request.headers_mut() = headers;
        if let Some(send) = self.shared(origin) {
            return self.send_h2(send, request, target).await;
        }
        while let Some(h1) = self.checkout(origin).await {
            match self.send_h1(h1, request).await {
                Ok(response) => return Ok(response),
                Err(H1Failure::NotSent(back)) => request = *back,
                Err(H1Failure::Failed(e)) => return Err(e),
            }
        }
        match self.connect(origin).await? {
            Fresh::H2(send) => self.send_h2(send, request, target).await,
            Fresh::H1(h1) => match self.send_h1(h1, request).await {
                Ok(response) => Ok(response),
                Err(H1Failure::NotSent(_)) => Err(UpstreamError::Closed),
                Err(H1Failure::Failed(e)) => Err(e),
            },
        }
    }

    /// Writes `request` on `h1` and reads the response head, driving the connection
    /// meanwhile; the response body takes the connection over.
    async fn send_h1(&self, h1: Box<H1>, request: Request<Body>) -> Result<UpstreamResponse, H1Failure> {
        let H1 {
            origin,
            mut send,
            conn,
        } = *h1;
        let sent = send.try_send_request(request);
        let mut sent = std::pin::pin!(sent);
        let mut conn = Some(conn);
        let result = std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = sent.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            if let Some(c) = conn.as_mut() {
                if Pin::new(c).poll(cx).is_ready() {
                    // Closed or failed: dropping it answers the request with an error.
                    conn = None;
                    return sent.as_mut().poll(cx);
                }
            }
            Poll::Pending
        })
        .await;
        match result {
            Ok(response) => {
                let driver = conn.map(|conn| Box::new(H1 { origin, send, conn }));
                Ok(UpstreamResponse::new(
                    response,
                    UpstreamBody::h1(driver, self.clone()),
                ))
            }
            Err(mut e) => match e.take_message() {
                Some(request) => Err(H1Failure::NotSent(Box::new(request))),
                None => Err(H1Failure::Failed(UpstreamError::Http(e.into_error()))),
            },
        }
    }

    /// Sends `request` (in HTTP/1 form) on an HTTP/2 connection.
    async fn send_h2(
        &self,
        mut send: http2::SendRequest<Body>,
        mut request: Request<Body>,
        target: &Target,
    ) -> Result<UpstreamResponse, UpstreamError> {
        // HTTP/2 carries the authority in `:authority`, from the absolute URI.
        request.headers_mut().remove(header::HOST);
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = target.absolute(path)?;
        *request.version_mut() = Version::HTTP_2;
        send.ready().await.map_err(UpstreamError::Http)?;
        let response = send.send_request(request).await.map_err(UpstreamError::Http)?;
        Ok(UpstreamResponse::new(response, UpstreamBody::h2()))
    }

    /// A live HTTP/2 connection to `origin`, if there is one (closed ones are dropped).
    fn shared(&self, origin: &Origin) -> Option<http2::SendRequest<Body>> {
        let mut shared = lock(&self.inner.shared);
        shared.retain(|(_, send)| !send.is_closed());
        shared
            .iter()
            .find(|(o, _)| o == origin)
            .map(|(_, send)| send.clone())
    }

    /// An idle HTTP/1 connection to `origin` that is still open (each is polled once:
    /// one whose peer closed it, or that is not ready for a request, is dropped).
    async fn checkout(&self, origin: &Origin) -> Option<Box<H1>> {
        loop {
            let mut h1 = self.take_idle(origin)?;
            let alive = std::future::poll_fn(|cx| {
                if Pin::new(&mut h1.conn).poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                Poll::Ready(matches!(h1.send.poll_ready(cx), Poll::Ready(Ok(()))))
            })
            .await;
            if alive {
                return Some(h1);
            }
        }
    }

    /// The most recently used idle connection to `origin` that has not been idle too
    /// long.
    fn take_idle(&self, origin: &Origin) -> Option<Box<H1>> {
        let mut idle = lock(&self.inner.idle);
        let now = Instant::now();
        while let Some(at) = idle.iter().rposition(|i| i.h1.origin == *origin) {
            let taken = idle.remove(at);
            if now.saturating_duration_since(taken.since) < IDLE_FOR {
                return Some(taken.h1);
            }
        }
        None
    }

    /// Takes back a connection whose response has been read whole.
    pub(super) fn put(&self, h1: Box<H1>) {
        let mut idle = lock(&self.inner.idle);
        let now = Instant::now();
        idle.retain(|i| now.saturating_duration_since(i.since) < IDLE_FOR);
        if idle.len() < MAX_IDLE {
            idle.push(Idle { h1, since: now });
        }
    }

    /// Whether `h1`, whose response was just read whole, can carry another request;
    /// polled once so that it sees the end of the response and turns idle.
    pub(super) fn release(&self, mut h1: Box<H1>, cx: &mut Context<'_>) {
        if Pin::new(&mut h1.conn).poll(cx).is_ready() {
            return;
        }
        if h1.send.is_ready() {
            self.put(h1);
        }
    }

    /// Opens a connection to `origin` within the connect timeout.
    async fn connect(&self, origin: &Origin) -> Result<Fresh, UpstreamError> {
        let inner = &self.inner;
        let stream = tokio::time::timeout(inner.connect_timeout, self.open(origin))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout(inner.connect_timeout))??;
        let h2 = stream.negotiated_h2();
        let io = TokioIo::new(stream);
        if h2 {
            let (send, conn) = inner.h2.handshake(io).await.map_err(UpstreamError::Http)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
                }
            });
            lock(&inner.shared).push((origin.clone(), send.clone()));
            return Ok(Fresh::H2(send));
        }
        let (send, conn) = inner.h1.handshake(io).await.map_err(UpstreamError::Http)?;
        Ok(Fresh::H1(Box::new(H1 {
            origin: origin.clone(),
            send,
            conn,
        })))
    }

    /// TCP, then TLS for `https`.
    async fn open(&self, origin: &Origin) -> Result<Stream, UpstreamError> {
        let host = origin.bare_host();
        let tcp = TcpStream::connect((host, origin.port))
            .await
            .map_err(UpstreamError::Connect)?;
        // Small writes (a request, a frame) go out at once.
        let _ = tcp.set_nodelay(true);
        if !origin.https {
            return Ok(Stream::Plain(tcp));
        }
        let name =
            rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| UpstreamError::BadUrl)?;
        let tls = self
            .inner
            .tls
            .connect(name, tcp)
            .await
            .map_err(UpstreamError::Tls)?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// rustls with ring (the provider the crate already compiles), the webpki roots (and
/// `extra`), and ALPN `h2` then `http/1.1`.
fn tls_connector(extra: Vec<rustls::pki_types::CertificateDer<'static>>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A root that does not parse is left out (the connection to its server then fails).
    let _ = roots.add_parsable_certificates(extra);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

// ===== impl Stream =====

/// A connection to the upstream, plain or TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    fn negotiated_h2(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;
