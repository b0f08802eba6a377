//! The client's body of a forwarded event stream: validated inline as hyper pulls it.
//!
//! ```text
//! hyper's connection task ──poll_frame──► RelayBody ──poll──► ValidatedStream ──► upstream body
//!                                          │ total deadline: exception frame, then end
//!                                          └ dropped on a stalled connection: cut (slow_reader)
//! ```
//!
//! No task and no channel between the upstream body and the client's connection: a
//! frame is checked and handed to hyper in the same poll, and backpressure is hyper's
//! own (a body is polled only when the connection can take more). A client that reads
//! nothing is caught where it shows, at the connection (`listener::StallGuard`): its
//! writes stay pending, the connection fails, and the body, dropped, counts the cut.
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
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::Sleep;

use super::listener::WriteStall;
use super::metrics::StreamCut;
use super::passthrough::{exception_frame, StreamSummary, ValidatedStream};
use super::{cut_message, queued_body, Proxy, STREAM_QUEUE};

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
    log: CutLog,
    /// Set by the listener when the client's connection stalled.
    stall: Option<WriteStall>,
}

impl<S, E, F> RelayBody<S, F>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
    F: FnOnce(StreamSummary) + Unpin,
{
    /// The body of `stream`, cut at `deadline`.
    pub(super) fn new(
        stream: ValidatedStream<S, F>,
        deadline: Option<tokio::time::Instant>,
        log: CutLog,
        stall: Option<WriteStall>,
    ) -> Self {
        RelayBody {
            stream: Some(stream),
            total: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            tail: None,
            log,
            stall,
        }
    }

    /// Cuts the stream (dropping the upstream body and the slot), counts and logs the
    /// cut, and gives the exception frame to end the client's stream with.
    fn cut(&mut self, why: StreamCut) -> Bytes {
        self.stream = None;
        let proxy = &self.log.proxy;
        proxy.inner.metrics.cut(why);
        let idle = proxy.inner.config.timeouts.idle;
        let (key_id, model_id) = (&self.log.key_id, &self.log.model_id);
        tracing::warn!(key_id, model_id, reason = ?why, "stream cut");
        exception_frame("serviceUnavailableException", &cut_message(why, idle)).into_bytes()
    }

    /// The next run of validated bytes, the exception frame of a cut, or the end.
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
            return Poll::Ready(Some(self.cut(StreamCut::Total)));
        }
        match stream.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(bytes)),
            Poll::Ready(None) => {
                self.stream = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

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
        self.stream.is_none() && self.tail.is_none()
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
