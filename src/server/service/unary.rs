//! The non-streaming answers: `/converse`, `/invoke` and `/count-tokens`.

use ::http::StatusCode;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::super::events::Script;
use super::super::scenario::Scenario;
use super::super::{invoke, wait_for_shutdown};
use super::reply::{error, error_with_body, half_body, receiver_body, response, stream_body, BEDROCK_NS};
use super::stream::trickle;
use super::{latency_ms, Call};

/// The `/count-tokens` answer.
pub(super) fn count_tokens(json: &Value, model_id: &str, rid: &str) -> Response {
    match invoke::count_tokens(json, model_id) {
        Ok(count) => response(
            StatusCode::OK,
            "application/json",
            rid,
            Body::from(json!(count).to_string()),
        ),
        Err(message) => error(StatusCode::BAD_REQUEST, "ValidationException", &message, rid),
    }
}

/// The `/invoke` answer: the script's Anthropic message, with the usage headers.
pub(super) async fn invoke_model(
    call: &Call<'_>,
    script: &Script,
    model_id: &str,
    headers: &::http::HeaderMap,
) -> Response {
    let mut message = None;
    let render = |latency| {
        let m = script.to_anthropic(&invoke::message_id(), model_id, latency);
        let body = invoke::invoke_body(&m);
        message = Some((m, latency));
        body
    };
    let body = match unary(call, script, render).await {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let mut resp = unary_body(call, body);
    if let Some((m, latency)) = &message {
        invoke::add_usage_headers(&mut resp, m, *latency);
    }
    invoke::add_route_headers(&mut resp, headers, false);
    resp
}

/// The `/converse` answer.
pub(super) async fn converse(call: &Call<'_>, script: &Script) -> Response {
    let render = |latency| Bytes::from(script.to_converse_json(latency).to_string());
    match unary(call, script, render).await {
        Ok(body) => unary_body(call, body),
        Err(refused) => *refused,
    }
}

/// The body of a non-streaming answer, `render`ed with the latency once the scenario's
/// faults are past: a script that ends in an exception is answered with the HTTP error
/// of that exception (429 `ThrottlingException` or 424 `ModelErrorException`), and
/// `stall` waits first (503 if the server stops meanwhile).
async fn unary(
    call: &Call<'_>,
    script: &Script,
    render: impl FnOnce(u64) -> Bytes,
) -> Result<Bytes, Box<Response>> {
    let rid = call.rid;
    if let Some((exception_type, _)) = script.exception() {
        return Err(Box::new(if exception_type == "throttlingException" {
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many tokens, please wait before trying again.",
                rid,
            )
        } else {
            error_with_body(
                StatusCode::FAILED_DEPENDENCY,
                "ModelErrorException",
                BEDROCK_NS,
                json!({
                    "message": "The system encountered an unexpected error during processing. Try your request again.",
                    "originalStatusCode": 500,
                })
                .to_string(),
                rid,
            )
        }));
    }
    if call.scenario == Scenario::Stall {
        let mut shutdown = call.shared.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(call.shared.config.stall) => {}
            () = wait_for_shutdown(&mut shutdown) => {
                return Err(Box::new(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    "The server is shutting down.",
                    rid,
                )));
            }
        }
    }
    Ok(render(latency_ms(call.start)))
}

/// A JSON body delivered as the scenario says: cut in half (`truncated`), one byte per
/// write (`trickle`) or whole.
fn unary_body(call: &Call<'_>, body: Bytes) -> Response {
    let rid = call.rid;
    match call.scenario {
        Scenario::Truncated => {
            let half = body.slice(..body.len() / 2);
            response(
                StatusCode::OK,
                "application/json",
                rid,
                stream_body(half_body(half)),
            )
        }
        Scenario::Trickle => {
            let (tx, rx) = mpsc::channel(1);
            let shutdown = call.shared.shutdown.clone();
            tokio::spawn(async move {
                let mut shutdown = shutdown;
                trickle(&tx, &mut shutdown, &body).await;
            });
            response(StatusCode::OK, "application/json", rid, receiver_body(rx))
        }
        _ => response(StatusCode::OK, "application/json", rid, Body::from(body)),
    }
}
