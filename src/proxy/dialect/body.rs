//! [`SseBody`]: the rest of a translated stream, read, translated and handed out by
//! the response body itself.
//!
//! ```text
//! hyper polls SseBody ─► upstream chunk ready? ─► Translation::feed ─► SSE gathered (up to 4 KiB)
//!                     └► not ready: gathered bytes handed on after a few turns, else the
//!                        idle timer (and, for Anthropic, the next ping)
//! dialect stream ended before upstream's (Anthropic: at `metadata`) ─► upstream read to its
//!                     end and dropped, so its connection goes back to the pool
//! HTTP/1: a client that stops reading ─► listener's StallGuard fails the connection
//!         ─► body dropped with WriteStall set: cut (slow reader), logged, slot freed
//! HTTP/2: watchdog (one timer per stream, woken once per idle interval) ─► a body nobody
//!         polled since the last look, bytes handed out: cut (slow reader, or the total timeout)
//! ```
//!
//! No task or queue sits between upstream and the client: each poll reads what upstream
//! has ready and returns its SSE bytes. A body is polled only while the client takes
//! bytes. Over HTTP/1 the client that stops reading is caught where it shows, at the
//! connection, as on the native routes (`listener::StallGuard`): its writes stay
//! pending for the write stall timeout, the connection fails, and the body, dropped,
//! counts the cut, logs the stream and frees its slot. An HTTP/2 stream can stall on its
//! own flow-control window while its connection keeps moving, so there the
//! [`watchdog`] covers it: it counts the cut, logs the stream and frees its slot; the
//! body, if polled again, ends with the dialect's error event. A slow HTTP/2 reader is
//! cut between one and two idle intervals after its last read.
//!
//! As on the native routes, what upstream has ready is gathered before it is handed on
//! (when nothing more is ready the body gives way for a few turns, so the upstream
//! connection can pass on what it already read): one write for a burst of small events,
//! not one each.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::{Instant, Sleep};

use super::stream::{quiet_for, upstream_failed, Chunks};
use super::translation::Translation;
use super::{Call, Dialect};
use crate::converse::TokenUsage;
use crate::proxy::listener::WriteStall;
use crate::proxy::operation::Operation;
use crate::proxy::relay::{GATHER_BYTES, GATHER_YIELDS};
use crate::proxy::Admitted;
use crate::proxy::{cut_message, far_future, StreamCut};
use crate::translate::{ApiError, ErrorClass};

/// The longest quiet spell before an Anthropic client gets `event: ping`.
const PING_EVERY: Duration = Duration::from_secs(10);

// ===== impl Watch =====

/// What a body and its watchdog share (over HTTP/2; over HTTP/1, where there is no
/// watchdog, the body alone keeps its call and cut here).
struct Watch {
    /// Polls of the body so far (written by the body only).
    polls: AtomicU64,
    /// Whether the last poll handed bytes out, so that the next waits on the client.
    handed_out: AtomicBool,
    /// Frames translated so far, for the log line of a stream the watchdog cuts.
    frames: AtomicU64,
    /// Why the stream was cut ([`Watch::NOT_CUT`] while it was not); whoever sets it
    /// counts the cut.
    cut: AtomicU8,
    /// The call until the stream is logged: dropping it frees the slot.
    call: Mutex<Option<Call>>,
}

impl Watch {
    const NOT_CUT: u8 = 0;

    fn code(why: StreamCut) -> u8 {
        match why {
            StreamCut::SlowReader => 1,
            StreamCut::Total => 2,
        }
    }

    fn cut_reason(&self) -> Option<StreamCut> {
        match self.cut.load(Relaxed) {
            1 => Some(StreamCut::SlowReader),
            2 => Some(StreamCut::Total),
            _ => None,
        }
    }

    /// Marks the stream cut for `why`; whether this call did it (and so counts it).
    fn mark_cut(&self, why: StreamCut) -> bool {
        self.cut
            .compare_exchange(Self::NOT_CUT, Self::code(why), Relaxed, Relaxed)
            .is_ok()
    }

    /// Takes the call, to log the stream's end (once) and free its slot.
    fn take_call(&self) -> Option<Call> {
        self.call.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn is_settled(&self) -> bool {
        self.call.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }
}

// ===== impl SseBody =====

/// The most bytes of upstream read and dropped after the dialect's stream ended, so that
/// the connection can be reused (Bedrock sends nothing after `metadata`; a stream that
/// goes on is dropped, closing its connection).
const MAX_DRAINED: usize = 64 * 1024;

/// The response body of a translated stream (see the [module docs](self)).
pub(super) struct SseBody {
    t: Translation,
    chunks: Chunks,
    watch: Arc<Watch>,
    dialect: Dialect,
    idle: Duration,
    ping_every: Duration,
    /// The idle timer (or the next ping), armed when the body starts waiting on upstream.
    quiet: Pin<Box<Sleep>>,
    /// Since when upstream has been quiet, as of the last arming.
    quiet_since: Instant,
    /// Upstream chunks read so far, and how many there were when `quiet` was armed.
    chunks_in: u64,
    armed_at: Option<u64>,
    deadline: Pin<Box<Sleep>>,
    /// The last bytes were handed out: nothing more comes.
    done: bool,
    /// Upstream's body ended (or failed): it is not polled again.
    upstream_done: bool,
    /// Bytes of upstream read and dropped after the dialect's stream ended.
    drained: usize,
    /// Set by the listener when it gave up the client's connection for not reading.
    stall: Option<WriteStall>,
    /// Turns the body gave way since the last upstream chunk, with SSE gathered.
    yields: u8,
    /// Turns it gives way before handing on what it gathered: none when reading the
    /// upstream body drives its connection (pending means upstream sent nothing more),
    /// [`GATHER_YIELDS`] when a connection task passes the body on (as `relay.rs`).
    max_yields: u8,
}

impl SseBody {
    /// The body for a stream whose first bytes `t` holds (and, over HTTP/2, its
    /// watchdog); `inline`: reading `chunks` drives its upstream connection.
    pub(super) fn start(call: Call, t: Translation, chunks: Chunks, inline: bool) -> Body {
        let idle = call.proxy.inner.config.timeouts.idle;
        let deadline = call.admitted.total_deadline.unwrap_or_else(far_future);
        let dialect = call.dialect;
        let stall = call.stall.clone();
        let http2 = call.http2;
        let watch = Arc::new(Watch {
            polls: AtomicU64::new(0),
            handed_out: AtomicBool::new(false),
            frames: AtomicU64::new(0),
            cut: AtomicU8::new(Watch::NOT_CUT),
            call: Mutex::new(Some(call)),
        });
        if http2 {
            tokio::spawn(watchdog(watch.clone(), idle, deadline));
        }
        let now = Instant::now();
        Body::new(SseBody {
            t,
            chunks,
            watch,
            dialect,
            idle,
            ping_every: PING_EVERY.min(idle / 2),
            quiet: Box::pin(tokio::time::sleep_until(now)),
            quiet_since: now,
            chunks_in: 0,
            armed_at: None,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            done: false,
            upstream_done: false,
            drained: 0,
            stall,
            // What `first_bytes` read goes out at the first poll, without waiting for
            // more: the client's time to first byte.
            yields: GATHER_YIELDS,
            max_yields: if inline { 0 } else { GATHER_YIELDS },
        })
    }

    /// Reads, translates and fails until there are bytes to hand out (a gathering's
    /// worth, or what there is when upstream has nothing more ready), the stream is
    /// over, or upstream has nothing ready and nothing is gathered.
    fn poll_bytes(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if self.t.is_ended() && !self.t.has_out() && !self.upstream_done && self.t.is_complete() {
                ready!(self.poll_drain(cx));
                self.upstream_done = true;
            }
            if self.t.is_ended() || self.t.out_len() >= GATHER_BYTES {
                return Poll::Ready(self.hand_on());
            }
            if let Some(why) = self.watch.cut_reason() {
                self.fail_cut(why);
                continue;
            }
            if self.deadline.as_mut().poll(cx).is_ready() {
                if self.watch.mark_cut(StreamCut::Total) {
                    self.count_cut(StreamCut::Total);
                }
                self.fail_cut(StreamCut::Total);
                continue;
            }
            match self.chunks.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.chunks_in += 1;
                    self.yields = 0;
                    if let Err(err) = self.t.feed(&chunk) {
                        self.t.fail(&err);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.upstream_done = true;
                    self.t.fail(&upstream_failed(e));
                }
                Poll::Ready(None) => {
                    self.upstream_done = true;
                    if let Err(err) = self.t.end() {
                        self.t.fail(&err);
                    }
                }
                Poll::Pending if self.t.has_out() && self.yields < self.max_yields => {
                    self.yields += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending if self.t.has_out() => return Poll::Ready(self.hand_on()),
                Poll::Pending => ready!(self.poll_quiet(cx)),
            }
        }
    }

    /// Reads what is left of a complete upstream stream after the dialect's stream
    /// ended before it (Anthropic's ends at `metadata`) and drops it, so that its
    /// connection goes back to the pool (a body dropped unread closes it, and the next
    /// request pays a new connection before its first byte). Ready once upstream
    /// ended or failed, was quiet for the idle timeout, or sent more than
    /// [`MAX_DRAINED`] bytes (an upstream that goes on past its stop is dropped, not
    /// waited for: the client's body ends either way).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.chunks.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.chunks_in += 1;
                    self.drained = self.drained.saturating_add(chunk.len());
                    if self.drained > MAX_DRAINED {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {
                    if self.armed_at != Some(self.chunks_in) {
                        self.quiet_since = Instant::now();
                        self.armed_at = Some(self.chunks_in);
                        let until = self.quiet_until();
                        self.quiet.as_mut().reset(until);
                    }
                    ready!(self.quiet.as_mut().poll(cx));
                    return Poll::Ready(());
                }
            }
        }
    }

    /// What was gathered, as one chunk (`None`: the stream is over).
    fn hand_on(&mut self) -> Option<Bytes> {
        self.yields = 0;
        self.t.take_out()
    }

    /// While upstream is quiet: the idle timeout (the dialect's error event) and, for
    /// an Anthropic client, a ping every `ping_every`. Ready when either was written.
    fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.armed_at != Some(self.chunks_in) {
            // Something arrived since the timer was armed: the quiet spell starts now.
            let now = Instant::now();
            self.quiet_since = now;
            self.armed_at = Some(self.chunks_in);
            let wake = self.next_wake(now);
            self.quiet.as_mut().reset(wake);
        }
        ready!(self.quiet.as_mut().poll(cx));
        let now = Instant::now();
        if now >= self.quiet_until() {
            self.t.fail(&quiet_for(self.idle));
        } else {
            self.t.ping();
            let wake = self.next_wake(now);
            self.quiet.as_mut().reset(wake);
        }
        Poll::Ready(())
    }

    fn quiet_until(&self) -> Instant {
        self.quiet_since.checked_add(self.idle).unwrap_or_else(far_future)
    }

    /// The idle deadline, or the next ping when it comes first.
    fn next_wake(&self, now: Instant) -> Instant {
        let quiet_until = self.quiet_until();
        match self.dialect {
            Dialect::Anthropic => now
                .checked_add(self.ping_every)
                .map_or(quiet_until, |p| p.min(quiet_until)),
            Dialect::OpenAi => quiet_until,
        }
    }

    /// Ends the client's stream with the dialect's error event for a cut.
    fn fail_cut(&mut self, why: StreamCut) {
        self.t
            .fail(&ApiError::new(ErrorClass::Timeout, cut_message(why, self.idle)));
    }

    fn count_cut(&self, why: StreamCut) {
        if let Some(call) = self
            .watch
            .call
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            call.proxy.inner.metrics.cut(why);
        }
    }

    /// Logs the stream's end and frees its slot, unless the watchdog did.
    fn settle(&mut self) {
        if let Some(call) = self.watch.take_call() {
            let end = StreamStats {
                frames: self.t.frames,
                usage: self.t.usage(),
                complete: self.t.is_complete(),
                ended: self.done,
            };
            log_end(&call, &end);
        }
    }
}

impl HttpBody for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let watch = &this.watch;
        watch
            .polls
            .store(watch.polls.load(Relaxed).wrapping_add(1), Relaxed);
        match this.poll_bytes(cx) {
            Poll::Ready(Some(bytes)) => {
                this.watch.handed_out.store(true, Relaxed);
                this.watch.frames.store(this.t.frames, Relaxed);
                Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes))))
            }
            Poll::Ready(None) => {
                this.done = true;
                this.settle();
                Poll::Ready(None)
            }
            Poll::Pending => {
                this.watch.handed_out.store(false, Relaxed);
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        // The client went away mid-stream (or the body ended: then this does nothing).
        // When the listener gave its connection up for not reading, that is a
        // slow-reader cut, counted once (an HTTP/2 watchdog may have counted it first).
        let stalled = self.stall.as_ref().is_some_and(WriteStall::is_set);
        if !self.done && stalled && self.watch.mark_cut(StreamCut::SlowReader) {
            self.count_cut(StreamCut::SlowReader);
        }
        self.settle();
    }
}

// ===== watchdog =====

/// Cuts an HTTP/2 stream whose body nobody polled since the last look while it waited
/// on the client: a slow reader, or, at the total deadline, a stream that cannot end
/// itself. Returns once the stream is logged.
async fn watchdog(watch: Arc<Watch>, idle: Duration, deadline: Instant) {
    let mut seen = watch.polls.load(Relaxed);
    loop {
        let now = Instant::now();
        let next = now.checked_add(idle).unwrap_or_else(far_future);
        let wake = if now < deadline { next.min(deadline) } else { next };
        tokio::time::sleep_until(wake).await;
        if watch.is_settled() {
            return;
        }
        let polls = watch.polls.load(Relaxed);
        let stuck = polls == seen && watch.handed_out.load(Relaxed);
        seen = polls;
        if !stuck {
            continue;
        }
        let why = if Instant::now() >= deadline {
            StreamCut::Total
        } else {
            StreamCut::SlowReader
        };
        if !watch.mark_cut(why) {
            continue;
        }
        if let Some(call) = watch.take_call() {
            call.proxy.inner.metrics.cut(why);
            let end = StreamStats {
                frames: watch.frames.load(Relaxed),
                usage: None,
                complete: false,
                ended: false,
            };
            log_end(&call, &end);
        }
        return;
    }
}

// ===== the log line =====

/// What a finished stream's log line reports.
struct StreamStats<'a> {
    frames: u64,
    usage: Option<&'a TokenUsage>,
    /// Upstream reached `messageStop` without an exception.
    complete: bool,
    /// The dialect's stream ended (cleanly, or with its error event) and went out.
    ended: bool,
}

/// The usage log line and the token counters of a finished stream.
fn log_end(call: &Call, end: &StreamStats<'_>) {
    let metrics = &call.proxy.inner.metrics;
    let Admitted {
        key_id,
        model_id,
        started,
        ..
    } = &call.admitted;
    metrics.forwarded(end.frames, 0);
    let usage = end.usage;
    if let Some(u) = usage {
        metrics.tokens(key_id, Operation::ConverseStream, u.input_tokens, u.output_tokens);
    }
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let complete = end.ended && end.complete;
    if !complete {
        metrics.upstream_error("StreamInterrupted");
    }
    tracing::info!(
        key_id,
        model_id,
        route = call.dialect.route().path(),
        frames = end.frames,
        input_tokens = usage.map(|u| u.input_tokens),
        output_tokens = usage.map(|u| u.output_tokens),
        cache_read_tokens = usage.and_then(|u| u.cache_read_input_tokens),
        cache_write_tokens = usage.and_then(|u| u.cache_write_input_tokens),
        latency_ms,
        complete,
        "dialect stream translated"
    );
}
