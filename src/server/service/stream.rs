//! The streaming answers (`/converse-stream`, `/invoke-with-response-stream`) and the
//! writer task that delivers their frames as the scenario says.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::StatusCode;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};

use super::super::events::Script;
use super::super::scenario::Scenario;
use super::super::{invoke, wait_for_shutdown, Shared};
use super::reply::{error, receiver_body, response, Chunk};
use super::{latency_ms, Call};
use crate::eventstream::{EventStreamError, Message};

/// Number of frames the `stall` scenario sends before going quiet.
const STALL_AFTER_FRAMES: usize = 3;

/// Chunk size of the `long` scenario's body (when there is no frame delay).
const BATCH_BYTES: usize = 16 * 1024;

/// The frame whose payload byte `corrupt-crc` flips.
const CORRUPT_FRAME: usize = 2;

/// The `/invoke-with-response-stream` answer.
pub(super) fn invoke_stream(
    call: &Call<'_>,
    script: &Script,
    model_id: &str,
    headers: &::http::HeaderMap,
) -> Response {
    let message = script.to_anthropic(&invoke::message_id(), model_id, latency_ms(call.start));
    let frames = match invoke::stream_frames(script, &message) {
        Ok(frames) => frames,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                &format!("The mock server could not encode its answer: {e}"),
                call.rid,
            )
        }
    };
    let mut resp = stream(call, Frames::Encoded(frames));
    invoke::add_route_headers(&mut resp, headers, true);
    resp
}

/// How a stream's bytes are delivered.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    Normal,
    Batched,
    Stall,
    Truncated,
    CorruptCrc,
    Trickle,
}

/// The frames of one stream: a Converse script, encoded as the frames go out (the
/// `metadata` latency is the one at that moment), or frames encoded beforehand.
pub(super) enum Frames {
    Script(Script),
    Encoded(Vec<Message>),
}

impl Frames {
    fn len(&self) -> usize {
        match self {
            Frames::Script(script) => script.events.len(),
            Frames::Encoded(frames) => frames.len(),
        }
    }

    /// The `seq`-th frame's bytes (`None` past the end).
    fn frame(&self, seq: usize, latency_ms: u64) -> Option<Result<Bytes, EventStreamError>> {
        match self {
            Frames::Script(script) => script
                .events
                .get(seq)
                .map(|e| e.to_frame(seq, latency_ms).map(Message::into_bytes)),
            Frames::Encoded(frames) => frames.get(seq).map(|m| Ok(m.clone().into_bytes())),
        }
    }
}

/// A streaming answer (`/converse-stream`, `/invoke-with-response-stream`): headers
/// now, frames from a writer task, delivered as the scenario says.
pub(super) fn stream(call: &Call<'_>, frames: Frames) -> Response {
    let Call {
        shared,
        scenario,
        rid,
        start,
    } = *call;
    let delivery = match scenario {
        Scenario::Stall => Delivery::Stall,
        Scenario::Truncated => Delivery::Truncated,
        Scenario::CorruptCrc => Delivery::CorruptCrc,
        Scenario::Trickle => Delivery::Trickle,
        // Benchmarks: many frames per chunk, so the server is not the bottleneck.
        Scenario::Long if shared.config.frame_delay.is_zero() && matches!(frames, Frames::Script(_)) => {
            Delivery::Batched
        }
        _ => Delivery::Normal,
    };
    let capacity = if matches!(delivery, Delivery::Trickle) {
        1
    } else {
        16
    };
    let (tx, rx) = mpsc::channel(capacity);
    let writer = Writer {
        shared: Arc::clone(shared),
        tx,
        shutdown: shared.shutdown.clone(),
        frame_delay: shared.config.frame_delay,
        stall: shared.config.stall,
        start,
    };
    tokio::spawn(writer.run(frames, delivery));
    response(
        StatusCode::OK,
        "application/vnd.amazon.eventstream",
        rid,
        receiver_body(rx),
    )
}

/// Sends one chunk unless the client went away or the server is stopping.
async fn send(tx: &mpsc::Sender<Chunk>, shutdown: &mut watch::Receiver<bool>, bytes: Bytes) -> bool {
    tokio::select! {
        r = tx.send(Ok(bytes)) => r.is_ok(),
        () = wait_for_shutdown(shutdown) => {
            abort(tx);
            false
        }
    }
}

/// Makes the body fail, so the connection is cut rather than ended cleanly.
fn abort(tx: &mpsc::Sender<Chunk>) {
    let _ = tx.try_send(Err(io::Error::other("mock Bedrock server shutting down")));
}

/// Sleeps unless the server is stopping; `false` if it is.
async fn pause(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if d.is_zero() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = wait_for_shutdown(shutdown) => false,
    }
}

/// Writes `bytes` one byte per chunk, yielding between chunks.
pub(super) async fn trickle(
    tx: &mpsc::Sender<Chunk>,
    shutdown: &mut watch::Receiver<bool>,
    bytes: &Bytes,
) -> bool {
    for i in 0..bytes.len() {
        if !send(tx, shutdown, bytes.slice(i..i + 1)).await {
            return false;
        }
        tokio::task::yield_now().await;
    }
    true
}

struct Writer {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Chunk>,
    shutdown: watch::Receiver<bool>,
    frame_delay: Duration,
    stall: Duration,
    start: Instant,
}

impl Writer {
    async fn run(mut self, frames: Frames, delivery: Delivery) {
        let frames = match (frames, delivery) {
            (Frames::Script(script), Delivery::Batched) => return self.run_batched(script).await,
            (frames, _) => frames,
        };
        let n = frames.len();
        let cut_at = n / 2;
        for seq in 0..n {
            let Some(frame) = frames.frame(seq, latency_ms(self.start)) else {
                return;
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    let _ = self.tx.send(Err(io::Error::other(e))).await;
                    return;
                }
            };
            self.shared.frames_sent.fetch_add(1, Ordering::Relaxed);
            let sent = match delivery {
                Delivery::Truncated if seq == cut_at => frame.len() / 2,
                _ => frame.len(),
            };
            self.shared
                .bytes_sent
                .fetch_add(u64::try_from(sent).unwrap_or(u64::MAX), Ordering::Relaxed);
            let ok = match delivery {
                Delivery::Trickle => trickle(&self.tx, &mut self.shutdown, &frame).await,
                Delivery::Truncated if seq == cut_at => {
                    // Half of this frame, then a clean end of body.
                    let half = frame.slice(..frame.len() / 2);
                    let _ = send(&self.tx, &mut self.shutdown, half).await;
                    return;
                }
                Delivery::CorruptCrc if seq == CORRUPT_FRAME => {
                    send(&self.tx, &mut self.shutdown, corrupt(&frame)).await
                }
                _ => send(&self.tx, &mut self.shutdown, frame).await,
            };
            if !ok {
                return;
            }
            if matches!(delivery, Delivery::Stall) && seq + 1 == STALL_AFTER_FRAMES {
                if !pause(&mut self.shutdown, self.stall).await {
                    abort(&self.tx);
                    return;
                }
            } else if !pause(&mut self.shutdown, self.frame_delay).await {
                abort(&self.tx);
                return;
            }
        }
    }
}

impl Writer {
    /// Writes the frames in chunks of about [`BATCH_BYTES`]. Every frame but the last
    /// (`metadata`, whose latency and usage vary) is encoded once per server and reused.
    async fn run_batched(mut self, script: Script) {
        let Some((last, head)) = script.events.split_last() else {
            return;
        };
        // `long_deltas` is fixed per server, so the cached frames fit every `long` script.
        let cached = self.shared.long_frames.get_or_init(|| {
            let mut buf = BytesMut::new();
            for (seq, event) in head.iter().enumerate() {
                if let Ok(frame) = event.to_frame(seq, 0) {
                    buf.extend_from_slice(frame.as_bytes());
                }
            }
            buf.freeze()
        });
        let metadata = match last.to_frame(head.len(), latency_ms(self.start)) {
            Ok(frame) => frame.into_bytes(),
            Err(e) => {
                let _ = self.tx.send(Err(io::Error::other(e))).await;
                return;
            }
        };
        self.shared.frames_sent.fetch_add(
            u64::try_from(script.events.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let mut body = cached.clone();
        while !body.is_empty() {
            // Zero-copy views of the cached frames.
            let chunk = body.split_to(BATCH_BYTES.min(body.len()));
            if !self.send_counted(chunk).await {
                return;
            }
        }
        let _ = self.send_counted(metadata).await;
    }

    async fn send_counted(&mut self, chunk: Bytes) -> bool {
        self.shared
            .bytes_sent
            .fetch_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX), Ordering::Relaxed);
        send(&self.tx, &mut self.shutdown, chunk).await
    }
}

/// A copy of the frame with the middle payload byte's ASCII case flipped: the prelude
/// stays valid, the message CRC no longer matches.
fn corrupt(frame: &Bytes) -> Bytes {
    let headers_len = frame
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b: [u8; 4]| u32::from_be_bytes(b) as usize);
    let payload_start = 12 + headers_len;
    let payload_end = frame.len().saturating_sub(4);
    let mut out = BytesMut::from(frame.as_ref());
    let mid = payload_start + payload_end.saturating_sub(payload_start) / 2;
    if let Some(b) = out.get_mut(mid.min(payload_end.saturating_sub(1))) {
        *b ^= 0x20;
    }
    out.freeze()
}
