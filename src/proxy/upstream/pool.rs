//! The upstream HTTP client: HTTP/1 of our own (`h1.rs`), HTTP/2 by hyper's
//! connection-level API, and a pool of our own.
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
//!         HTTP/1: request written (one vectored write) and response head read by the
//!         caller; the response body (UpstreamBody) then owns the connection and reads
//!         it as it is read; at the body's end the connection goes back to the pool
//! ```
//!
//! An HTTP/1 connection has no task of its own: whoever reads the response body drives
//! it, so a chunk read from the socket is validated and handed to the client's
//! connection in the same poll, with no hand-off between tasks and no cross-task
//! wake-up. Its read buffer holds a head of 64 KiB at most and one read of the body
//! (32 KiB) besides what is left of the last. Redirects are never followed: the
//! response is the caller's.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, Version};
use bytes::Bytes;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::h1::{request_head, H1};
use super::response::{UpstreamError, UpstreamResponse};
use super::target::{Origin, Target};

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
    h2: http2::Builder<TokioExecutor>,
    /// HTTP/1 connections at rest, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// HTTP/2 connections, one per origin as a rule (each driven by its own task).
    shared: Mutex<Vec<(Origin, http2::SendRequest<Body>)>>,
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
    /// Writing the request on a reused connection failed (the peer closed it while it
    /// was idle): the request can go on another.
    NotSent,
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
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new());
        UpstreamClient {
            inner: Arc::new(ClientInner {
                connect_timeout,
                tls: tls_connector(extra),
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
        if let Some(send) = self.shared(origin) {
            return self.send_h2(send, target, path, headers, body).await;
        }
        headers.insert(header::HOST, target.host_value());
        let head = request_head(&path, &headers, body.len());
        while let Some(h1) = self.checkout(origin).await {
            match self.send_h1(h1, &head, &body, true).await {
                Ok(response) => return Ok(response),
                Err(H1Failure::NotSent) => {}
                Err(H1Failure::Failed(e)) => return Err(e),
            }
        }
        match self.connect(origin).await? {
            Fresh::H2(send) => {
                headers.remove(header::HOST);
                self.send_h2(send, target, path, headers, body).await
            }
            Fresh::H1(h1) => match self.send_h1(h1, &head, &body, false).await {
                Ok(response) => Ok(response),
                Err(H1Failure::NotSent) => Err(UpstreamError::Incomplete),
                Err(H1Failure::Failed(e)) => Err(e),
            },
        }
    }

    /// Writes the request (`head`, `body`) on `h1` and reads the response head; the
    /// response body takes the connection over.
    async fn send_h1(
        &self,
        mut h1: Box<H1>,
        head: &[u8],
        body: &[u8],
        reused: bool,
    ) -> Result<UpstreamResponse, H1Failure> {
        if let Err(e) = h1.write_request(head, body).await {
            return Err(if reused {
                H1Failure::NotSent
            } else {
                H1Failure::Failed(UpstreamError::Io(e))
            });
        }
        let response = h1.read_head().await.map_err(H1Failure::Failed)?;
        UpstreamResponse::h1(response, h1, self.clone()).map_err(H1Failure::Failed)
    }

    /// Sends `POST path` to `target` on an HTTP/2 connection (`:authority` from the
    /// target, no `host`).
    async fn send_h2(
        &self,
        mut send: http2::SendRequest<Body>,
        target: &Target,
        path: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = target.absolute(Target::path_and_query(path)?)?;
        *request.version_mut() = Version::HTTP_2;
        *request.headers_mut() = headers;
        send.ready().await.map_err(UpstreamError::Http)?;
        let response = send.send_request(request).await.map_err(UpstreamError::Http)?;
        Ok(UpstreamResponse::h2(response))
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
            let alive = std::future::poll_fn(|cx| Poll::Ready(h1.poll_idle(cx))).await;
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

    /// Opens a connection to `origin` within the connect timeout.
    async fn connect(&self, origin: &Origin) -> Result<Fresh, UpstreamError> {
        let inner = &self.inner;
        let stream = tokio::time::timeout(inner.connect_timeout, self.open(origin))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout(inner.connect_timeout))??;
        if stream.negotiated_h2() {
            let io = TokioIo::new(stream);
            let (send, conn) = inner.h2.handshake(io).await.map_err(UpstreamError::Http)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
                }
            });
            lock(&inner.shared).push((origin.clone(), send.clone()));
            return Ok(Fresh::H2(send));
        }
        Ok(Fresh::H1(Box::new(H1::new(origin.clone(), stream))))
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
