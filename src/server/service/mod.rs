//! The HTTP side: routing, Bedrock-style responses and the streaming body writer.
//!
//! - this module: the route, authentication, validation, and the scenario's choice;
//! - [`reply`]: Bedrock's response shapes (headers, error types, bodies);
//! - [`unary`]: the non-streaming answers (`/converse`, `/invoke`, `/count-tokens`);
//! - [`stream`](mod@stream): the streaming answers and the writer task that delivers their frames.

mod reply;
mod stream;
mod unary;

use std::sync::Arc;
use std::time::Instant;

use ::http::{Method, StatusCode};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};

use super::events::Script;
use super::scenario::{self, ConverseRequest, RequestView, Scenario};
use super::{auth, invoke, validate, Operation, RecordedRequest, Shared};
use crate::invoke::Route;
use reply::{error, error_with_body, BEDROCK_NS, CORAL_NS};
use stream::{invoke_stream, stream, Frames};
use unary::{converse, count_tokens, invoke_model};

/// Largest request body read (Bedrock's own limit is in the same range).
const MAX_BODY: usize = 25 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// A request id shaped like Bedrock's (a random UUID).
fn request_id() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Splits `/model/{id}/{op}` into the decoded id and the operation.
fn parse_route(path: &str) -> Option<(String, Operation)> {
    let rest = path.strip_prefix("/model/")?;
    let (raw_id, op) = rest.rsplit_once('/')?;
    let op = match op {
        "converse" => Operation::Converse,
        "converse-stream" => Operation::ConverseStream,
        _ => match Route::from_path(path)?.1 {
            Route::InvokeModel => Operation::InvokeModel,
            Route::InvokeModelWithResponseStream => Operation::InvokeModelWithResponseStream,
            _ => Operation::CountTokens,
        },
    };
    if raw_id.is_empty() {
        return None;
    }
    let id = percent_encoding::percent_decode_str(raw_id)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some((id, op))
}

/// What was learnt about the request, for the recording.
#[derive(Default)]
struct Seen {
    model_id: Option<String>,
    operation: Option<Operation>,
    scenario: Option<Scenario>,
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let start = Instant::now();
    let rid = request_id();
    let (parts, body) = req.into_parts();
    let mut seen = Seen::default();
    let (body, resp) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => {
            let resp = respond(&shared, &parts, &body, &rid, start, &mut seen).await;
            (body, resp)
        }
        Err(_) => (
            Bytes::new(),
            error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                "The request body could not be read or is larger than 25 MB.",
                &rid,
            ),
        ),
    };
    tracing::debug!(
        method = %parts.method,
        uri = %parts.uri,
        status = resp.status().as_u16(),
        scenario = seen.scenario.map(Scenario::name),
        "mock Bedrock request"
    );
    let record = RecordedRequest {
        method: parts.method,
        uri: parts.uri.to_string(),
        model_id: seen.model_id,
        operation: seen.operation,
        scenario: seen.scenario,
        headers: parts.headers,
        body,
        status: resp.status().as_u16(),
    };
    let max = shared.config.max_recorded;
    let mut state = shared.lock();
    state.total += 1;
    if max > 0 {
        while state.requests.len() >= max {
            state.requests.pop_front();
        }
        state.requests.push_back(record);
    }
    drop(state);
    resp
}

async fn respond(
    shared: &Arc<Shared>,
    parts: &::http::request::Parts,
    body: &Bytes,
    rid: &str,
    start: Instant,
    seen: &mut Seen,
) -> Response {
    let Some((model_id, operation)) = parse_route(parts.uri.path()).filter(|_| parts.method == Method::POST)
    else {
        return error_with_body(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            CORAL_NS,
            json!({ "message": null }).to_string(),
            rid,
        );
    };
    let scenario = Scenario::from_model_id(&model_id);
    seen.model_id = Some(model_id);
    seen.operation = Some(operation);
    seen.scenario = Some(scenario);
    let json = match admit(shared, parts, body, rid) {
        Ok(json) => json,
        Err(refused) => return *refused,
    };
    if let Err(message) = validate_for(operation, seen.model_id.as_deref().unwrap_or_default(), &json) {
        return error(StatusCode::BAD_REQUEST, "ValidationException", &message, rid);
    }
    let count = {
        let mut state = shared.lock();
        let n = state.per_scenario.entry(scenario).or_insert(0);
        *n += 1;
        *n
    };
    if let Some(failure) = scenario_failure(scenario, count, rid) {
        return failure;
    }
    let model_id = seen.model_id.as_deref().unwrap_or_default();
    let view = match operation {
        Operation::Converse | Operation::ConverseStream => {
            RequestView::read::<ConverseRequest>(&json, body.len())
        }
        Operation::CountTokens => return count_tokens(&json, model_id, rid),
        _ => RequestView::read::<invoke::MessagesRequest>(&json, body.len()),
    };
    let script = script_of(scenario, &view, shared.config.long_deltas);
    let call = Call {
        shared,
        scenario,
        rid,
        start,
    };
    match operation {
        Operation::Converse => converse(&call, &script).await,
        Operation::ConverseStream => stream(&call, Frames::Script(script)),
        Operation::InvokeModel => invoke_model(&call, &script, model_id, &parts.headers).await,
        _ => invoke_stream(&call, &script, model_id, &parts.headers),
    }
}

/// A request being answered, as every answer needs it.
struct Call<'a> {
    shared: &'a Arc<Shared>,
    /// The scenario the model id chose.
    scenario: Scenario,
    /// The request id.
    rid: &'a str,
    /// When the request arrived (for the latency the answer reports).
    start: Instant,
}

/// The operation's own checks of a request's JSON: Converse's, or for the native
/// routes an `anthropic.*` model and an Anthropic Messages body. `Err` holds the
/// message of the 400 `ValidationException`. (`CountTokens` is checked as it is read.)
fn validate_for(operation: Operation, model_id: &str, json: &Value) -> Result<(), String> {
    match operation {
        Operation::Converse | Operation::ConverseStream => validate::validate(json),
        Operation::CountTokens => Ok(()),
        _ if !invoke::is_anthropic(model_id) => Err(invoke::not_anthropic(model_id)),
        _ => invoke::validate_native(json),
    }
}

/// Authentication, then the body as JSON: the request's JSON, or the
/// 403 or 400 response that refuses it (boxed: a response is large, and refusals rare).
fn admit(
    shared: &Shared,
    parts: &::http::request::Parts,
    body: &Bytes,
    rid: &str,
) -> Result<Value, Box<Response>> {
    if let Err(denied) = auth::check(&shared.config, &parts.method, &parts.uri, &parts.headers, body) {
        let ns = if denied.error_type == "AccessDeniedException" {
            BEDROCK_NS
        } else {
            CORAL_NS
        };
        return Err(Box::new(error_with_body(
            StatusCode::FORBIDDEN,
            denied.error_type,
            ns,
            denied.body,
            rid,
        )));
    }
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &format!("Malformed input request: {e}, please reformat your input and try again."),
            rid,
        ))
    })?;
    Ok(json)
}

/// The HTTP error a scenario answers with instead of content, `count` being this
/// request's number among the scenario's requests.
fn scenario_failure(scenario: Scenario, count: u64, rid: &str) -> Option<Response> {
    let (status, error_type, message) = match scenario {
        Scenario::HttpError => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "The model returned the following errors: the mock scenario `http-error` rejects every request. Pick another scenario and try again.",
        ),
        Scenario::ThrottleThenOk if count <= 2 => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        Scenario::NotReady if count <= 1 => (
            StatusCode::TOO_MANY_REQUESTS,
            "ModelNotReadyException",
            "Model is not ready for inference. Wait and try your request again.",
        ),
        Scenario::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "The system encountered an unexpected error during processing. Try your request again.",
        ),
        _ => return None,
    };
    Some(error(status, error_type, message, rid))
}

/// The events a scenario answers with (`long_deltas` for [`Scenario::Long`]).
fn script_of(scenario: Scenario, view: &RequestView, long_deltas: usize) -> Script {
    match scenario {
        Scenario::Long => scenario::long_script(long_deltas, view),
        Scenario::Tools => scenario::tools_script(view),
        Scenario::Reasoning => scenario::reasoning_script(view),
        Scenario::Citations => scenario::citations_script(view),
        Scenario::Exception => scenario::exception_script(
            "modelStreamErrorException",
            json!({
                "message": "The system encountered an unexpected error during processing. Try your request again.",
                "originalMessage": "The model stream failed (mock scenario `exception`).",
                "originalStatusCode": 500,
            }),
        ),
        Scenario::ThrottlingException => scenario::exception_script(
            "throttlingException",
            json!({ "message": "Too many tokens, please wait before trying again." }),
        ),
        _ => scenario::text_script(&scenario::text_answer(view), view),
    }
}

fn latency_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            parse_route("/model/us-east-1.mock.tools/converse-stream"),
            Some(("us-east-1.mock.tools".to_owned(), Operation::ConverseStream))
        );
        assert_eq!(
            parse_route("/model/arn%3Aaws%3Abedrock%2Fx.text/converse"),
            Some(("arn:aws:bedrock/x.text".to_owned(), Operation::Converse))
        );
        assert_eq!(parse_route("/model//converse"), None);
        assert_eq!(
            parse_route("/model/anthropic.x/invoke"),
            Some(("anthropic.x".to_owned(), Operation::InvokeModel))
        );
        assert_eq!(
            parse_route("/model/us.anthropic.x%3A0/invoke-with-response-stream"),
            Some((
                "us.anthropic.x:0".to_owned(),
                Operation::InvokeModelWithResponseStream
            ))
        );
        assert_eq!(
            parse_route("/model/x/count-tokens"),
            Some(("x".to_owned(), Operation::CountTokens))
        );
        assert_eq!(parse_route("/model/x/invoke-async"), None);
        assert_eq!(parse_route("/other"), None);
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
