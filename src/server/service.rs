//! The HTTP side: routing, Bedrock-style responses and the streaming body writer.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::{header, HeaderValue, Method, StatusCode};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::events::Script;
use super::scenario::{self, ConverseRequest, RequestView, Scenario};
use super::{auth, invoke, validate, wait_for_shutdown, Operation, RecordedRequest, Shared};
use crate::eventstream::{EventStreamError, Message};
use crate::invoke::Route;

/// Largest request body read (Bedrock's own limit is in the same range).
const MAX_BODY: usize = 25 * 1024 * 1024;

/// Namespace suffix of Bedrock's `x-amzn-errortype`.
const BEDROCK_NS: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";
/// Namespace suffix of the front door's authentication errors.
const CORAL_NS: &str = "http://internal.amazon.com/coral/com.amazon.coral.service/";

/// Number of frames the `stall` scenario sends before going quiet.
const STALL_AFTER_FRAMES: usize = 3;
/// Chunk size of the `long` scenario's body (when there is no frame delay).
const BATCH_BYTES: usize = 16 * 1024;
/// The frame whose payload byte `corrupt-crc` flips.
const CORRUPT_FRAME: usize = 2;

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

/// A response with Bedrock's common headers.
fn response(status: StatusCode, content_type: &'static str, rid: &str, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// An error response: `x-amzn-errortype: Type:namespace`, body `{"message": ...}`.
fn error(status: StatusCode, error_type: &str, message: &str, rid: &str) -> Response {
    error_with_body(
        status,
        error_type,
        BEDROCK_NS,
        json!({ "message": message }).to_string(),
        rid,
    )
}

fn error_with_body(status: StatusCode, error_type: &str, ns: &str, body: String, rid: &str) -> Response {
    let mut resp = response(status, "application/json", rid, Body::from(body));
    if let Ok(v) = HeaderValue::from_str(&format!("{error_type}:{ns}")) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
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

/// The `/count-tokens` answer.
fn count_tokens(json: &Value, model_id: &str, rid: &str) -> Response {
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
async fn invoke_model(
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

/// The `/invoke-with-response-stream` answer.
fn invoke_stream(call: &Call<'_>, script: &Script, model_id: &str, headers: &::http::HeaderMap) -> Response {
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

/// The `/converse` answer.
async fn converse(call: &Call<'_>, script: &Script) -> Response {
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

type Chunk = Result<Bytes, io::Error>;

fn half_body(half: Bytes) -> impl futures_util::Stream<Item = Chunk> + Send {
    futures_util::stream::iter([Ok(half)])
}

fn stream_body<S>(stream: S) -> Body
where
    S: futures_util::Stream<Item = Chunk> + Send + 'static,
{
    Body::from_stream(stream)
}

fn receiver_body(rx: mpsc::Receiver<Chunk>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
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
enum Frames {
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
fn stream(call: &Call<'_>, frames: Frames) -> Response {
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
async fn trickle(tx: &mpsc::Sender<Chunk>, shutdown: &mut watch::Receiver<bool>, bytes: &Bytes) -> bool {
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
