//! The client's body of a forwarded event stream: validated inline as hyper pulls it.
//!
//! ```text
//! client connection's task ──poll_frame──► RelayBody ──poll──► ValidatedStream ──► UpstreamBody
//!                                            │ total deadline: exception frame,     (polls the upstream
//!                                            │ then end                              HTTP/1 connection)
//!                                            └ dropped on a stalled connection: cut (slow_reader)
//! ```
//!
//! No task and no channel between the upstream socket and the client's connection: a
//! chunk is read, checked and handed to hyper in the same poll, and backpressure is hyper's
//! own (a body is polled only when the connection can take more). A client that reads
//! nothing is caught where it shows, at the connection (`listener::StallGuard`): its
//! writes stay pending, the connection fails, and the body, dropped, counts the cut.
//!
//! A burst of frames the upstream connection already read is gathered (up to 4 KiB)
//! and handed on as one chunk, so that it goes out in one write, not one per frame.
//!
//! HTTP/2 is the exception: a stream can stall on its flow-control window while the
//! connection keeps moving, so an HTTP/2 stream is pumped from a task of its own
//! through a bounded queue whose sends time out ([`pumped`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::time::Sleep;

use axum::http::{header, StatusCode};
use axum::response::Response;
use tokio::sync::OwnedSemaphorePermit;

use super::admission::{refuse, Admitted};
use super::listener::WriteStall;
use super::log::{cut_message, log_buffered, on_stream_end};
use super::metrics::StreamCut;
use super::operation::Operation;
use super::passthrough::{exception_frame, FrameValidator, StreamSummary, ValidatedStream};
use super::upstream::{bad_gateway, read_capped, ReadError, UpstreamResponse};
use super::{error_response, invoke, Proxy, Refused, Rejection, EVENT_STREAM, STREAM_QUEUE};
use crate::converse::TokenUsage;
use crate::invoke::InvokeResponseHeaders;

/// Whose stream it is, for the line logged when the gateway cuts it.
pub(super) struct CutLog {
    pub(super) proxy: Proxy,
    pub(super) key_id: String,
    pub(super) model_id: String,
}

/// A validated event stream as a response body (see the module doc).
pub(super) struct RelayBody<S, F> {
    /// `None` once it ended or was cut (the upstream body, and the slot, dropped).
    stream: Option<ValidatedStream<S, F>>,
    /// The total deadline, when there is one.
    total: Option<Pin<Box<Sleep>>>,
    /// The exception frame of a cut, still to be written.
    tail: Option<Bytes>,
    /// Chunks validated and not yet handed on.
    gathered: Gathered,
    log: CutLog,
    /// Set by the listener when the client's connection stalled.
    stall: Option<WriteStall>,
    /// Turns the body gives way with something gathered before it hands that on: none
    /// when reading the upstream body drives its connection (nothing more is ready
    /// when it is pending), [`GATHER_YIELDS`] when a connection task passes it on.
    max_yields: u8,
}

impl<S, E, F> RelayBody<S, F>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
    F: FnOnce(StreamSummary) + Unpin,
{
    /// The body of `stream`, cut at `deadline`; `inline`: reading `stream` drives its
    /// upstream connection.
    pub(super) fn new(
        stream: ValidatedStream<S, F>,
        deadline: Option<tokio::time::Instant>,
        log: CutLog,
        stall: Option<WriteStall>,
        inline: bool,
    ) -> Self {
        RelayBody {
            stream: Some(stream),
            total: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            tail: None,
            gathered: Gathered::default(),
            log,
            stall,
            max_yields: if inline { 0 } else { GATHER_YIELDS },
        }
    }

    /// Cuts the stream (dropping the upstream body and the slot), counts and logs the
    /// cut, and gives the exception frame to end the client's stream with.
    fn cut(&mut self, why: StreamCut) -> Bytes {
        self.stream = None;
        if why == StreamCut::SlowReader {
            self.gathered.clear();
        }
        let proxy = &self.log.proxy;
        proxy.inner.metrics.cut(why);
        let idle = proxy.inner.config.timeouts.idle;
        let (key_id, model_id) = (&self.log.key_id, &self.log.model_id);
        tracing::warn!(key_id, model_id, reason = ?why, "stream cut");
        exception_frame("serviceUnavailableException", &cut_message(why, idle)).into_bytes()
    }

    /// The next run of validated bytes, the exception frame of a cut, or the end.
    ///
    /// What upstream has ready is gathered before any of it is handed on: one `writev`
    /// for a burst of frames instead of one per frame. Over an HTTP/1 upstream, reading
    /// the body drives its connection (`upstream/pool.rs`), so a pending read means
    /// upstream sent nothing more, and what was gathered goes at once. Over HTTP/2 the
    /// connection's own task passes the body on one chunk at a time (one Bedrock frame,
    /// as a rule), so the body first gives way for a few turns (it wakes itself and
    /// returns pending, which lets that task pass on what it has already read), and
    /// hands on what it gathered when those turns brought nothing more. No timer.
    fn poll_bytes(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if let Some(tail) = self.tail.take() {
            return Poll::Ready(Some(tail));
        }
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        if self
            .total
            .as_mut()
            .is_some_and(|total| total.as_mut().poll(cx).is_ready())
        {
            // What was gathered goes first, then the cut's exception frame.
            self.tail = Some(self.cut(StreamCut::Total));
            return self.hand_on();
        }
        loop {
            match stream.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    self.gathered.yields = 0;
                    if self.gathered.add(bytes) {
                        return self.hand_on();
                    }
                }
                Poll::Ready(None) => {
                    self.stream = None;
                    return self.hand_on();
                }
                Poll::Pending if self.gathered.is_empty() => return Poll::Pending,
                Poll::Pending if self.gathered.yields < self.max_yields => {
                    self.gathered.yields += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending => return self.hand_on(),
            }
        }
    }

    /// Hands on what was gathered, else the tail (a cut's exception frame), else ends.
    fn hand_on(&mut self) -> Poll<Option<Bytes>> {
        Poll::Ready(self.gathered.take().or_else(|| self.tail.take()))
    }
}

/// Validated chunks gathered to be handed on as one: a lone chunk as it came, two or
/// more copied into one buffer (small frames: the copy costs less than a write each,
/// and releases the upstream connection's read buffer).
#[derive(Default)]
struct Gathered {
    first: Option<Bytes>,
    joined: BytesMut,
    /// Turns the body gave way since the last chunk arrived.
    yields: u8,
}

impl Gathered {
    /// Adds a chunk; whether enough is gathered to hand it on now.
    fn add(&mut self, chunk: Bytes) -> bool {
        if self.first.is_none() && self.joined.is_empty() {
            let len = chunk.len();
            self.first = Some(chunk);
            return len >= GATHER_BYTES;
        }
        if let Some(first) = self.first.take() {
            self.joined.reserve(GATHER_BYTES.max(first.len() + chunk.len()));
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(&chunk);
        self.joined.len() >= GATHER_BYTES
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.joined.is_empty()
    }

    /// What was gathered, as one chunk.
    fn take(&mut self) -> Option<Bytes> {
        self.yields = 0;
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        (!self.joined.is_empty()).then(|| self.joined.split().freeze())
    }

    fn clear(&mut self) {
        self.first = None;
        self.joined.clear();
    }
}

/// Turns the body gives way, with something gathered, before it hands that on: the
/// upstream connection needs more than one turn to pass on its next chunk.
pub(super) const GATHER_YIELDS: u8 = 3;

/// Bytes gathered before they are handed on without waiting for more (small: what
/// hyper queues per connection is up to 16 such chunks, and memory counts per stream).
pub(super) const GATHER_BYTES: usize = 4 * 1024;

impl<S, E, F> HttpBody for RelayBody<S, F>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
    F: FnOnce(StreamSummary) + Unpin,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.poll_bytes(cx)
            .map(|bytes| bytes.map(|b| Ok(hyper::body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_none() && self.tail.is_none() && self.gathered.is_empty()
    }
}

impl<S, F> Drop for RelayBody<S, F> {
    fn drop(&mut self) {
        // Dropped before its end: the client went away, or its connection stalled.
        if self.stream.is_none() || !self.stall.as_ref().is_some_and(WriteStall::is_set) {
            return;
        }
        self.stream = None;
        self.log.proxy.inner.metrics.cut(StreamCut::SlowReader);
        let (key_id, model_id) = (&self.log.key_id, &self.log.model_id);
        tracing::warn!(key_id, model_id, reason = ?StreamCut::SlowReader, "stream cut");
    }
}

/// An HTTP/2 stream's body: `body` pumped from a task of its own through a bounded
/// queue, so that a stream whose window stays shut for the idle timeout is cut (its
/// slot freed) even while its connection carries other streams. A cut stream ends with
/// an `exception` frame when the queue has room for it; otherwise the stream is broken
/// off, so the client never takes a cut stream for a whole one.
pub(super) fn pumped<S, E, F>(mut body: RelayBody<S, F>, idle: Duration) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
    E: std::fmt::Display,
    F: FnOnce(StreamSummary) + Unpin + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(STREAM_QUEUE);
    let clean = Arc::new(AtomicBool::new(false));
    let done = clean.clone();
    tokio::spawn(async move {
        loop {
            // A client that goes away while upstream is quiet ends the stream too.
            let next = tokio::select! {
                next = std::future::poll_fn(|cx| body.poll_bytes(cx)) => next,
                () = tx.closed() => return,
            };
            let Some(bytes) = next else { break };
            match tokio::time::timeout(idle, tx.send(bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    let frame = body.cut(StreamCut::SlowReader);
                    if tx.try_send(frame).is_ok() {
                        done.store(true, Ordering::Release);
                    }
                    return;
                }
            }
        }
        // The stream ended (with its own exception frame if it failed or was cut).
        done.store(true, Ordering::Release);
    });
    queued_body(rx, clean)
}

// ===== relaying an upstream answer =====

/// Slices a buffered `/converse` answer is written in, so its budget share is held
/// until the client has taken (nearly) all of it.
const REPLY_SLICE: usize = 64 * 1024;

/// Relays the upstream answer: a validated event stream, or a buffered body.
pub(super) async fn relay(
    proxy: Proxy,
    admitted: Admitted,
    upstream: UpstreamResponse,
    client: ClientSide,
) -> Response {
    let status = upstream.status();
    let operation = admitted.operation;
    let mut builder = Response::builder().status(status.as_u16());
    for name in operation.returned_response_headers() {
        if let Some(v) = upstream.headers().get(name) {
            builder = builder.header(name, v.as_bytes());
        }
    }
    let is_event_stream = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(EVENT_STREAM));
    let body = if operation.is_streaming() && status.is_success() && is_event_stream {
        let limits = proxy.inner.config.limits;
        let validator = match operation {
            Operation::Invoke(_) => FrameValidator::for_invoke_stream(limits),
            _ => FrameValidator::new(limits),
        };
        stream_body(admitted, upstream, validator, client)
    } else {
        match buffered(&proxy, admitted, upstream).await {
            Ok(body) => body,
            Err(failed) => return *failed,
        }
    };
    builder.body(body).unwrap_or_else(|_| {
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "the response could not be built",
        )
    })
}

/// A JSON answer (or an error body), read whole within the same cap as a frame and the
/// memory budget, to check it and log its usage.
pub(super) async fn buffered(
    proxy: &Proxy,
    admitted: Admitted,
    upstream: UpstreamResponse,
) -> Result<Body, Refused> {
    let inner = &proxy.inner;
    let status = upstream.status();
    let is_json = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let usage_headers = InvokeResponseHeaders::from_headers(
        crate::invoke::Route::InvokeModel,
        upstream
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    let cap = usize::try_from(inner.config.limits.max_frame_len()).unwrap_or(usize::MAX);
    let read = read_capped(proxy, upstream, cap);
    let read = match admitted.total_deadline {
        Some(at) => tokio::time::timeout_at(at, read)
            .await
            .unwrap_or(Err(ReadError::Broken("the total timeout passed".to_owned()))),
        None => read.await,
    };
    let (bytes, budget) = match read {
        Ok(read) => read,
        Err(ReadError::Budget) => return Err(Box::new(refuse(proxy, Rejection::MemoryBudget))),
        Err(ReadError::Broken(why)) => {
            return Err(bad_gateway(
                &admitted,
                "ReadFailed",
                &why,
                "reading the upstream response failed",
            ))
        }
    };
    // A 200 JSON answer that is not one complete JSON value (cut short upstream) would
    // reach SDKs as an empty success. The Converse and CountTokens answers are JSON
    // whatever their content type says; an InvokeModel body is the model's own.
    let must_be_json = is_json
        || matches!(
            admitted.operation,
            Operation::Converse | Operation::Invoke(crate::invoke::Route::CountTokens)
        );
    if status.is_success() {
        // A Converse answer read for its usage is one parse: one that succeeds is also
        // one complete JSON value, so only a failed one is checked again.
        let converse = (admitted.operation == Operation::Converse).then(|| converse_body(&bytes));
        let parsed = matches!(converse, Some(Ok(_)));
        if must_be_json && !parsed && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
            let detail = format!("{} bytes, not one complete JSON value", bytes.len());
            return Err(bad_gateway(
                &admitted,
                "IncompleteJson",
                &detail,
                "the upstream answer was cut short",
            ));
        }
        let usage = match (admitted.operation, converse) {
            (Operation::Invoke(route), _) => invoke::buffered_usage(route, &usage_headers, &bytes),
            (_, Some(body)) => body.ok().and_then(|b| b.usage),
            _ => converse_usage(&bytes),
        };
        log_buffered(&admitted, usage.as_ref());
    }
    drop(admitted);
    Ok(budgeted_body(bytes, budget))
}

/// The client's body of a validated event stream: pulled inline by hyper, except over
/// HTTP/2 where a task of its own pumps it (see `relay.rs`).
pub(super) fn stream_body(
    admitted: Admitted,
    upstream: UpstreamResponse,
    validator: FrameValidator,
    client: ClientSide,
) -> Body {
    let proxy = admitted.guard.proxy.clone();
    let idle = proxy.inner.config.timeouts.idle;
    let log = CutLog {
        proxy,
        key_id: admitted.key_id.clone(),
        model_id: admitted.model_id.clone(),
    };
    let deadline = admitted.total_deadline;
    let upstream = upstream.bytes_stream();
    let inline = upstream.drives_connection();
    let stream = ValidatedStream::new(upstream, validator, idle, on_stream_end(admitted));
    let body = RelayBody::new(stream, deadline, log, client.stall, inline);
    if client.http2 {
        pumped(body, idle)
    } else {
        Body::new(body)
    }
}

/// What the handler knows of the client's connection.
pub(super) struct ClientSide {
    /// HTTP/2: a stream can stall on its own window.
    http2: bool,
    /// Set by the listener when the connection stalled (absent outside it).
    pub(super) stall: Option<WriteStall>,
}

impl ClientSide {
    pub(super) fn of(parts: &axum::http::request::Parts) -> ClientSide {
        ClientSide {
            http2: parts.version == axum::http::Version::HTTP_2,
            stall: parts.extensions.get::<WriteStall>().cloned(),
        }
    }
}

/// The client's body of a stream pumped through `rx`: it ends cleanly when the pump
/// set `clean` before closing the queue, and with an error (the connection broken
/// off, so a cut stream is never taken for a whole one) otherwise.
fn queued_body(rx: tokio::sync::mpsc::Receiver<Bytes>, clean: Arc<AtomicBool>) -> Body {
    let stream = futures_util::stream::unfold(Some((rx, clean)), |state| async move {
        let (mut rx, clean) = state?;
        match rx.recv().await {
            Some(bytes) => Some((Ok(bytes), Some((rx, clean)))),
            None if clean.load(Ordering::Acquire) => None,
            None => Some((Err(std::io::Error::other("stream cut by the gateway")), None)),
        }
    });
    Body::from_stream(stream)
}

/// A buffered answer written in slices; its share of the budget is given back once the
/// last slice is taken (or the client goes away).
pub(super) fn budgeted_body(bytes: Bytes, budget: Option<OwnedSemaphorePermit>) -> Body {
    if budget.is_none() || bytes.len() <= REPLY_SLICE {
        return Body::from(bytes);
    }
    let slices = futures_util::stream::unfold((bytes, budget), |(mut rest, budget)| async move {
        if rest.is_empty() {
            return None;
        }
        let slice = rest.split_to(rest.len().min(REPLY_SLICE));
        Some((Ok::<_, std::convert::Infallible>(slice), (rest, budget)))
    });
    Body::from_stream(slices)
}

/// A Converse answer, as far as the gateway reads it: its `usage`.
#[derive(serde::Deserialize)]
struct ConverseBody {
    usage: Option<TokenUsage>,
}

/// A Converse answer parsed for its usage (an error: not a JSON object with a
/// well-formed `usage`, or not JSON at all).
fn converse_body(body: &[u8]) -> Result<ConverseBody, serde_json::Error> {
    serde_json::from_slice::<ConverseBody>(body)
}

/// The `usage` of a Converse answer.
pub(super) fn converse_usage(body: &[u8]) -> Option<TokenUsage> {
    converse_body(body).ok().and_then(|b| b.usage)
}
