//! A ConverseStream translated into the client's SSE as it arrives.
//!
//! ```text
//! /converse-stream ─► Translation (Framer ─► StreamAssembler ─► dialect writer) ─► SseBody ─► client
//! ```
//!
//! The response head waits for the first translated bytes ([`Call::stream`]): a failure
//! before them can still be retried or answered with an HTTP error. Then the response
//! body itself ([`SseBody`]) reads, translates and hands out the rest, what upstream has
//! ready gathered into one `Bytes`, with no task or queue in between.

use std::pin::Pin;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::body::SseBody;
use super::translation::Translation;
use super::{backoff, sse_response, Attempt, Call, ATTEMPTS};
use crate::proxy::upstream::UpstreamError;
use crate::proxy::EVENT_STREAM;
use crate::translate::{ApiError, ErrorClass, Translated};

/// Upstream body chunks.
pub(super) type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>>;

// ===== the request =====

impl Call {
    /// `stream: true`: `/converse-stream`, retried while nothing has reached the client
    /// and the failure is retryable; then the translated stream.
    pub(super) async fn stream(self, body: Bytes, translated: &Translated) -> Response {
        let config = &self.proxy.inner.config;
        let id = self.dialect.new_id();
        let mut tries = 0;
        loop {
            tries += 1;
            let failure = match self.attempt(body.clone(), EVENT_STREAM).await {
                Attempt::Ok(upstream) => {
                    let mut t =
                        Translation::new(self.dialect, &id, super::unix_now(), translated, config.limits);
                    let upstream = upstream.bytes_stream();
                    let inline = upstream.drives_connection();
                    let mut chunks: Chunks = Box::pin(upstream);
                    match first_bytes(&mut t, &mut chunks, config.timeouts.idle).await {
                        Ok(()) => return sse_response(SseBody::start(self, t, chunks, inline)),
                        Err(err) => err,
                    }
                }
                Attempt::Failed(err) => err,
            };
            if failure.is_retryable() && tries < ATTEMPTS {
                tracing::info!(
                    key_id = self.admitted.key_id,
                    model_id = self.admitted.model_id,
                    tries,
                    error = %failure,
                    "retrying: nothing reached the client yet"
                );
                backoff(tries).await;
                continue;
            }
            return self.dialect.error_response(&failure);
        }
    }
}

/// Reads upstream until the translation has bytes for the client. A failure after some
/// bytes were written ends the stream (the error event follows them); a failure before
/// any is returned, for a retry or an HTTP error.
async fn first_bytes(t: &mut Translation, chunks: &mut Chunks, idle: Duration) -> Result<(), ApiError> {
    while !t.has_out() {
        let step = match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(chunk))) => t.feed(&chunk),
            Ok(Some(Err(e))) => Err(upstream_failed(e)),
            Ok(None) => t.end(),
            Err(_) => Err(quiet_for(idle)),
        };
        match step {
            Ok(()) if t.is_ended() && !t.has_out() => {
                return Err(ApiError::new(ErrorClass::Server, "the upstream stream was empty"))
            }
            Ok(()) => {}
            Err(err) if !t.has_out() => return Err(err),
            Err(err) => t.fail(&err),
        }
    }
    Ok(())
}

pub(super) fn upstream_failed(e: UpstreamError) -> ApiError {
    ApiError::new(ErrorClass::Overloaded, format!("the upstream stream failed: {e}"))
}

pub(super) fn quiet_for(idle: Duration) -> ApiError {
    ApiError::new(
        ErrorClass::Overloaded,
        format!("upstream sent nothing for {} ms", idle.as_millis()),
    )
}
