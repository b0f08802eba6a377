//! The accept loop: a connection cap, hyper's HTTP/1 and HTTP/2 limits, and a watchdog
//! per connection that closes it when no request is in flight.
//!
//! ```text
//! accept ─► slot free? ── no ──► close at once (counted: over_cap)
//!              │ yes
//!              ▼
//!        TLS handshake (with `proxy.tls`; own timeout; ALPN h2 / http/1.1)
//!              ▼
//!        hyper auto (HTTP/1 or HTTP/2 by preface) ─► axum router
//!              │
//!   watchdog: no request head within header_read_timeout of accept ─► close
//!             no request in flight for keep_alive_idle             ─► close
//! ```
//!
//! A write to the client pending for longer than the write stall timeout (the proxy's
//! idle timeout: the client reads nothing) fails the connection ([`StallGuard`]);
//! response bodies are polled by hyper only when the connection can take more, so that
//! is the whole of the slow-reader defence for HTTP/1 and a stalled HTTP/2 connection.
//!
//! The watchdog counts requests, not bytes: a peer that trickles a request head or
//! keeps an idle HTTP/2 connection alive with pings is still closed. Requests in flight
//! are bounded by their own deadlines (request body, first byte, idle, total).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};

use super::config::ConnectionLimits;
use super::metrics::{ConnectionClose, Metrics};
use super::quiet::QuietTimer;
use crate::tls::TlsCertificate;

/// The period of the accept loop's timer anchor: a timer that is always due within
/// this long, so that the timers a request sets (header read, first byte, idle,
/// total: seconds, as configured) are never the runtime's earliest. tokio's time
/// driver wakes its own I/O driver (an `eventfd` write, and one more `epoll_wait`
/// return) whenever a timer is set earlier than the one it last parked for, even from
/// the thread that runs it: without the anchor, that was once per request, with it
/// once per period (callgrind and strace: 1 of the 8 system calls of a request).
const TIMER_ANCHOR: Duration = Duration::from_secs(1);

/// ALPN protocols the gateway offers, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TLS side of a listener: the acceptor and its handshake deadline.
#[derive(Clone)]
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

/// Serves `router` on `listener` with `limits` (over TLS with `tls`) until `shutdown`
/// completes, then lets open connections finish their requests.
pub(crate) async fn serve(
    router: Router,
    listener: TcpListener,
    limits: Limits,
    metrics: Arc<Metrics>,
    tls: Option<TlsCertificate>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Limits {
        connections: limits,
        write_stall,
    } = limits;
    let tls = tls.map(|cert| {
        cert.watch();
        Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(cert.server_config(&ALPN)),
            handshake_timeout: cert.handshake_timeout(),
        }
    });
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let builder = Arc::new(builder(&limits));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut anchor = tokio::time::interval(TIMER_ANCHOR);
    anchor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            _ = anchor.tick() => continue,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors (EMFILE) and the like: wait a little instead of
                // spinning; the connections that hold them are closed by their timeouts.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connection_closed(ConnectionClose::OverCap);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let stall = WriteStall::default();
        let tcp = StallGuard::new(tcp, write_stall, stall.clone());
        let connection = Connection {
            stall,
            router: router.clone(),
            builder: builder.clone(),
            metrics: metrics.clone(),
            limits,
            stop: stop_rx.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection.serve(tcp).await,
                Some(tls) => match crate::tls::accept(&tls.acceptor, tcp, tls.handshake_timeout).await {
                    Ok(stream) => connection.serve(stream).await,
                    Err(e) => {
                        connection
                            .metrics
                            .connection_closed(ConnectionClose::TlsHandshake);
                        tracing::debug!(error = %e, "TLS handshake failed");
                    }
                },
            }
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    // Every connection holds a slot: all slots back means all connections closed.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// The limits a listener applies: the connection limits, and how long a write to a
/// client may stay pending before the connection is given up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) connections: ConnectionLimits,
    pub(crate) write_stall: Duration,
}

/// What serving one accepted connection needs.
struct Connection {
    /// Set when the client stopped reading and the connection was given up.
    stall: WriteStall,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    metrics: Arc<Metrics>,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
}

impl Connection {
    /// Serves HTTP/1 or HTTP/2 on `io` until it closes, the watchdog fires, or the
    /// server stops (then gracefully).
    async fn serve<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            stall,
            router,
            builder,
            metrics,
            limits,
            mut stop,
        } = self;
        metrics.connection_opened();
        let tracker = Arc::new(Tracker::new());
        let service = {
            let tracker = tracker.clone();
            let stall = stall.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                let guard = tracker.start();
                // A forwarded stream learns through this that its client stopped reading.
                request.extensions_mut().insert(stall.clone());
                let mut router = router.clone();
                async move {
                    let response = tower_service::Service::call(&mut router, request).await;
                    response.map(|r| r.map(|body| Body::new(Tracked { body, _guard: guard })))
                }
            })
        };
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            tokio::select! {
                _ = conn.as_mut() => {
                    if stall.is_set() {
                        metrics.connection_closed(ConnectionClose::SlowReader);
                    }
                    break;
                }
                why = tracker.expired(&limits) => {
                    metrics.connection_closed(why);
                    break;
                }
                changed = stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        metrics.connection_ended();
    }
}

/// hyper's connection settings from the limits.
fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The HTTP/1 read buffer bounds a request head (hyper's minimum is 8 KiB).
    let head_buf = usize::try_from(limits.max_header_list_bytes)
        .unwrap_or(usize::MAX)
        .max(8192);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(head_buf);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.http2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.http2_max_local_error_reset_streams)
        .max_header_list_size(limits.max_header_list_bytes);
    builder
}

// ===== impl StallGuard =====

/// Set on a connection whose client left a write pending for longer than the write
/// stall timeout (it reads nothing): the connection is failed, and each stream it
/// was carrying counts itself as cut for a slow reader. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteStall(Arc<AtomicBool>);

impl WriteStall {
    /// Whether the connection was given up because its client stopped reading.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A client connection whose writes may stay pending for `timeout` at most: past that
/// the next write fails, which fails hyper's connection and drops the response bodies
/// (and with them the upstream requests and the stream slots). Backpressure is hyper's
/// own: a body is polled only when its connection can take more, so a client that does
/// not read holds at most hyper's and the socket's buffers.
///
/// The timer is armed when a write first returns pending and moved forward in place at
/// the next stall; a connection that keeps up never touches it.
struct StallGuard<IO> {
    io: IO,
    quiet: QuietTimer,
    stall: WriteStall,
}

impl<IO> StallGuard<IO> {
    fn new(io: IO, timeout: Duration, stall: WriteStall) -> Self {
        StallGuard {
            io,
            quiet: QuietTimer::new(timeout),
            stall,
        }
    }

    /// What a write that returned `result` returns: pending still, unless the writes
    /// have been pending for the whole timeout, then an error.
    fn watch<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.quiet.progress();
            return result;
        }
        if !self.quiet.expired(cx) {
            return Poll::Pending;
        }
        self.stall.set();
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for the write stall timeout",
        )))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for StallGuard<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for StallGuard<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

// ===== impl Tracker =====

/// Requests in flight on one connection, and since when it has had none.
struct Tracker {
    state: Mutex<TrackerState>,
    changed: Notify,
}

struct TrackerState {
    in_flight: usize,
    /// When `in_flight` last became 0 (or the connection was accepted).
    idle_since: Instant,
    /// Whether any request head arrived yet.
    served: bool,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            state: Mutex::new(TrackerState {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request head arrived; the request is in flight until the guard drops (with
    /// its response body).
    fn start(self: &Arc<Self>) -> RequestGuard {
        {
            let mut state = self.lock();
            state.in_flight += 1;
            state.served = true;
        }
        self.changed.notify_one();
        RequestGuard {
            tracker: self.clone(),
        }
    }

    fn end(&self) {
        {
            let mut state = self.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
            }
        }
        self.changed.notify_one();
    }

    /// Completes when the connection has been without a request for too long.
    async fn expired(&self, limits: &ConnectionLimits) -> ConnectionClose {
        loop {
            let notified = self.changed.notified();
            let deadline = {
                let state = self.lock();
                if state.in_flight > 0 {
                    None
                } else if state.served {
                    Some((
                        state.idle_since.checked_add(limits.keep_alive_idle),
                        ConnectionClose::Idle,
                    ))
                } else {
                    Some((
                        state.idle_since.checked_add(limits.header_read_timeout),
                        ConnectionClose::HeaderTimeout,
                    ))
                }
            };
            match deadline {
                // A request is in flight: wait until that changes.
                None => notified.await,
                // A deadline past the end of time: only a change can end the wait.
                Some((None, _)) => notified.await,
                Some((Some(at), why)) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {
                            let state = self.lock();
                            if state.in_flight == 0 && Instant::now() >= at {
                                return why;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One request in flight on a connection.
struct RequestGuard {
    tracker: Arc<Tracker>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.tracker.end();
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct Tracked {
    body: Body,
    _guard: RequestGuard,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
