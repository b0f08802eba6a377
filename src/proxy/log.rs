//! The lines logged per request (key id, model, operation, tokens, latency; never a
//! key, a credential or a signature), and the counters moved with them.

use super::admission::Admitted;
use super::operation::Operation;
use super::{StreamCut, StreamEnd, StreamSummary};
use crate::converse::TokenUsage;

/// Counts and logs a forwarded stream once it has ended, then frees its slot.
pub(super) fn on_stream_end(admitted: Admitted) -> impl FnOnce(StreamSummary) + Send + 'static {
    move |summary: StreamSummary| {
        let Admitted {
            key_id,
            model_id,
            operation,
            guard,
            started,
            ..
        } = admitted;
        let metrics = &guard.proxy.inner.metrics;
        metrics.forwarded(summary.frames, summary.bytes);
        if let Some(u) = &summary.usage {
            metrics.tokens(&key_id, operation, u.input_tokens, u.output_tokens);
        }
        let latency_ms = started.elapsed().as_millis() as u64;
        let operation = operation.path_suffix();
        let usage = summary.usage.as_ref();
        // One line a stream, the same fields either way (the tokens a failed stream
        // used before it broke are billed too); a failure at `warn`, with how it ended.
        macro_rules! stream_line {
            ($level:expr, $message:literal) => {
                tracing::event!(
                    $level,
                    key_id,
                    model_id,
                    operation,
                    frames = summary.frames,
                    bytes = summary.bytes,
                    input_tokens = usage.map(|u| u.input_tokens),
                    output_tokens = usage.map(|u| u.output_tokens),
                    latency_ms,
                    end = ?summary.end,
                    $message
                )
            };
        }
        if summary.end == StreamEnd::Complete {
            stream_line!(tracing::Level::INFO, "stream forwarded");
        } else {
            metrics.upstream_error("StreamInterrupted");
            stream_line!(tracing::Level::WARN, "stream failed");
        }
        drop(guard);
    }
}

/// Logs a buffered answer (one line: key, model, operation, tokens, latency) and
/// counts its tokens for the key: a native route's, or a dialect route's `/converse`
/// answer. A `count-tokens` answer is logged with the count it gave, but counts
/// nothing: no tokens were spent.
pub(super) fn log_buffered(admitted: &Admitted, usage: Option<&TokenUsage>) {
    let operation = admitted.operation;
    if let (Some(u), false) = (
        usage,
        operation == Operation::Invoke(crate::invoke::Route::CountTokens),
    ) {
        admitted.guard.proxy.inner.metrics.tokens(
            &admitted.key_id,
            operation,
            u.input_tokens,
            u.output_tokens,
        );
    }
    let operation = operation.path_suffix();
    tracing::info!(
        key_id = admitted.key_id,
        model_id = admitted.model_id,
        operation,
        input_tokens = usage.map(|u| u.input_tokens),
        output_tokens = usage.map(|u| u.output_tokens),
        latency_ms = admitted.started.elapsed().as_millis() as u64,
        "{operation} forwarded"
    );
}

/// Counts an upstream fault under `kind` and logs it, with `detail`, for the request's
/// key and model. Each route then answers in its own dialect.
pub(super) fn upstream_fault(admitted: &Admitted, kind: &str, detail: &str) {
    admitted.guard.proxy.inner.metrics.upstream_error(kind);
    tracing::warn!(
        key_id = admitted.key_id,
        model_id = admitted.model_id,
        kind,
        detail,
        "upstream fault"
    );
}

/// The message a client is told when the gateway cuts its stream.
pub(super) fn cut_message(why: StreamCut, idle: std::time::Duration) -> String {
    match why {
        StreamCut::SlowReader => format!("the client read nothing for {} ms", idle.as_millis()),
        StreamCut::Total => "the request exceeded this gateway's total timeout".to_owned(),
    }
}
