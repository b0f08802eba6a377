//! Bedrock's response shapes: the common headers, `x-amzn-errortype`, and the bodies.

use std::io;

use ::http::{header, HeaderValue, StatusCode};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

/// Namespace suffix of Bedrock's `x-amzn-errortype`.
pub(super) const BEDROCK_NS: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";

/// Namespace suffix of the front door's authentication errors.
pub(super) const CORAL_NS: &str = "http://internal.amazon.com/coral/com.amazon.coral.service/";

/// A response with Bedrock's common headers.
pub(super) fn response(status: StatusCode, content_type: &'static str, rid: &str, body: Body) -> Response {
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
pub(super) fn error(status: StatusCode, error_type: &str, message: &str, rid: &str) -> Response {
    error_with_body(
        status,
        error_type,
        BEDROCK_NS,
        json!({ "message": message }).to_string(),
        rid,
    )
}

pub(super) fn error_with_body(
    status: StatusCode,
    error_type: &str,
    ns: &str,
    body: String,
    rid: &str,
) -> Response {
    let mut resp = response(status, "application/json", rid, Body::from(body));
    if let Ok(v) = HeaderValue::from_str(&format!("{error_type}:{ns}")) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

pub(super) type Chunk = Result<Bytes, io::Error>;

pub(super) fn half_body(half: Bytes) -> impl futures_util::Stream<Item = Chunk> + Send {
    futures_util::stream::iter([Ok(half)])
}

pub(super) fn stream_body<S>(stream: S) -> Body
where
    S: futures_util::Stream<Item = Chunk> + Send + 'static,
{
    Body::from_stream(stream)
}

pub(super) fn receiver_body(rx: mpsc::Receiver<Chunk>) -> Body {
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
