//! Admission: who the client is (the bearer key, compared in constant time), whether
//! the gateway takes the request (a stream slot, the memory budget, the body's size and
//! upload time), and the answer when it does not, in Bedrock's shape.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::operation::Operation;
use super::{error_response, Proxy, ProxyConfig, Rejection};

/// Compares two byte strings in time that depends only on their lengths.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of the one `Authorization: Bearer <token>` header (RFC 9110 §11: the
/// scheme is case-insensitive, one or more spaces before a token68). None, two, or a
/// malformed one is [`Rejection::MissingKey`].
pub(super) fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Rejection::MissingKey);
    };
    let value = value.to_str().map_err(|_| Rejection::MissingKey)?;
    let (scheme, rest) = value.split_once(' ').ok_or(Rejection::MissingKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::MissingKey);
    }
    let token = rest.trim_start_matches(' ');
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    if token.is_empty() || !token.bytes().all(token68) {
        return Err(Rejection::MissingKey);
    }
    Ok(token)
}

/// The id of the client key `presented`, or [`Rejection::UnknownKey`].
pub(super) fn find_key<'a>(proxy: &'a Proxy, presented: &str) -> Result<&'a str, Rejection> {
    // Check every key (no early exit), so timing does not tell which key matched.
    let mut found = None;
    for key in &proxy.inner.config.client_keys {
        if constant_time_eq(presented.as_bytes(), key.secret.as_bytes()) && found.is_none() {
            found = Some(key.id.as_str());
        }
    }
    found.ok_or(Rejection::UnknownKey)
}

/// The id of the client key in `headers`, or why the request is refused.
pub(super) fn authenticate<'a>(proxy: &'a Proxy, headers: &HeaderMap) -> Result<&'a str, Rejection> {
    find_key(proxy, bearer_token(headers)?)
}

/// What the gateway answers when it refuses a request itself: the status, the
/// Bedrock error type and a message naming the cause. Each route writes it in its own
/// dialect.
pub(super) fn refusal(config: &ProxyConfig, why: Rejection) -> (StatusCode, &'static str, String) {
    let (status, error_type, message) = match why {
        Rejection::MissingKey => (
            StatusCode::UNAUTHORIZED,
            "UnrecognizedClientException",
            "missing Authorization: Bearer <key> (exactly one)",
        ),
        Rejection::UnknownKey => (
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the key in Authorization is not allowed to use this gateway",
        ),
        Rejection::NotFound => (
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "only POST /model/{modelId}/ converse, converse-stream, invoke, invoke-with-response-stream and count-tokens are served",
        ),
        Rejection::BodyTooLarge => {
            let max = config.max_body_bytes;
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                format!("request body exceeds this gateway's limit of {max} bytes"),
            );
        }
        Rejection::TooManyStreams => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "too many concurrent requests through this gateway; retry later",
        ),
        Rejection::BodyTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "ValidationException",
            "the request body did not arrive in time",
        ),
        Rejection::BodyReadFailed => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the request body could not be read",
        ),
        Rejection::InvalidModelId => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the model identifier must not be empty, `.` or `..`",
        ),
        Rejection::MemoryBudget => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "this gateway is buffering too much right now; retry later",
        ),
        Rejection::Untranslatable => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the request cannot be translated to Converse",
        ),
        Rejection::InvalidHeader => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "a request header cannot be forwarded",
        ),
    };
    (status, error_type, message.to_owned())
}

/// The Bedrock-shaped answer to a request the gateway refuses itself, counted.
pub(super) fn refuse(proxy: &Proxy, why: Rejection) -> Response {
    proxy.inner.metrics.reject(why);
    let (status, error_type, message) = refusal(&proxy.inner.config, why);
    error_response(status, error_type, &message)
}

/// Why a request body could not be read.
pub(super) enum BodyError {
    TooLarge,
    Timeout,
    Broken,
    Budget,
}

/// Bytes of the memory budget, taken without waiting.
pub(super) fn reserve(budget: &Arc<Semaphore>, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let Ok(n) = u32::try_from(n) else {
        return false;
    };
    match budget.clone().try_acquire_many_owned(n) {
        Ok(permit) => {
            match held {
                Some(h) => h.merge(permit),
                None => *held = Some(permit),
            }
            true
        }
        Err(_) => false,
    }
}

/// Reads a request body within `max` bytes, the budget and `deadline`.
pub(super) async fn read_request_body(
    proxy: &Proxy,
    body: Body,
    declared: Option<usize>,
    deadline: tokio::time::Instant,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError> {
    let inner = &proxy.inner;
    let max = inner.config.max_body_bytes;
    let mut held = None;
    // A declared length is reserved before the first byte is read.
    if let Some(len) = declared {
        if !reserve(&inner.budget, &mut held, len) {
            return Err(BodyError::Budget);
        }
    }
    let mut reserved = declared.unwrap_or(0);
    let read = async {
        let mut stream = body.into_data_stream();
        let mut out = BytesMut::with_capacity(reserved.min(max));
        while let Some(chunk) = stream.next().await {
            // A client that went away or sent a bad chunk size.
            let chunk = chunk.map_err(|_| BodyError::Broken)?;
            let grown = out.len().saturating_add(chunk.len());
            if grown > max {
                return Err(BodyError::TooLarge);
            }
            if grown > reserved {
                if !reserve(&inner.budget, &mut held, grown - reserved) {
                    return Err(BodyError::Budget);
                }
                reserved = grown;
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(body)) => Ok((body, held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Timeout),
    }
}

/// A request past the gateway's own checks: whose it is, where it goes, its slot and
/// its clock.
pub(super) struct Admitted {
    pub(super) key_id: String,
    pub(super) model_id: String,
    pub(super) operation: Operation,
    pub(super) guard: InFlight,
    pub(super) started: Instant,
    pub(super) total_deadline: Option<tokio::time::Instant>,
    pub(super) body_deadline: tokio::time::Instant,
}

/// A stream slot for a request of `key_id` (429 past the cap: [`Rejection::TooManyStreams`])
/// and its clock: the total deadline, and the request body's. The shared admission of
/// every forwarding route; the caller answers a refusal in its own dialect.
pub(super) fn admit(
    proxy: &Proxy,
    key_id: String,
    model_id: String,
    operation: Operation,
    started: Instant,
) -> Result<Admitted, Rejection> {
    let inner = &proxy.inner;
    let Ok(permit) = inner.streams.clone().try_acquire_owned() else {
        return Err(Rejection::TooManyStreams);
    };
    // The slot is taken: the gauge moves now, and the upload runs on the slot's clock.
    let guard = InFlight::new(proxy.clone(), permit);
    let now = tokio::time::Instant::now();
    let total_deadline = now.checked_add(inner.config.timeouts.total);
    let body_deadline = now
        .checked_add(inner.config.timeouts.request_body)
        .or(total_deadline)
        .unwrap_or_else(far_future);
    Ok(Admitted {
        key_id,
        model_id,
        operation,
        guard,
        started,
        total_deadline,
        body_deadline,
    })
}

/// The request body, within the size cap, the memory budget and `deadline`, or why
/// it is refused (not yet counted: the caller answers in its own dialect).
pub(super) async fn read_client_body(
    proxy: &Proxy,
    headers: &HeaderMap,
    body: Body,
    deadline: tokio::time::Instant,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Rejection> {
    let max_body = proxy.inner.config.max_body_bytes;
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|len| len > max_body) {
        return Err(Rejection::BodyTooLarge);
    }
    read_request_body(proxy, body, declared_len, deadline)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Rejection::BodyTooLarge,
            BodyError::Timeout => Rejection::BodyTimeout,
            BodyError::Broken => Rejection::BodyReadFailed,
            BodyError::Budget => Rejection::MemoryBudget,
        })
}

/// An instant no deadline reaches (about 30 years on).
pub(super) fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(86400 * 365 * 30)
}

/// Holds the stream permit and the in-flight gauge for one forwarded request.
pub(super) struct InFlight {
    pub(super) proxy: Proxy,
    pub(super) _permit: OwnedSemaphorePermit,
}

impl InFlight {
    fn new(proxy: Proxy, permit: OwnedSemaphorePermit) -> InFlight {
        proxy.inner.metrics.stream_started();
        InFlight {
            proxy,
            _permit: permit,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.proxy.inner.metrics.stream_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn constant_time_eq_matches_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_parsing_follows_rfc_9110() {
        // Old code: `BEARER k` was refused, the first of two headers won, and the
        // token was trimmed.
        for ok in ["Bearer k1", "bearer k1", "BEARER k1", "bEaReR   k1"] {
            assert_eq!(bearer_token(&headers(&[ok])), Ok("k1"), "{ok}");
        }
        assert_eq!(bearer_token(&headers(&["Bearer abc+/=="])), Ok("abc+/=="));
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic k1",
            "Bearerk1",
            "Bearer k1 k2",
            "Bearer k\t1",
        ] {
            assert_eq!(
                bearer_token(&headers(&[bad])),
                Err(Rejection::MissingKey),
                "{bad:?}"
            );
        }
        assert_eq!(
            bearer_token(&headers(&["Bearer k1", "Bearer k2"])),
            Err(Rejection::MissingKey)
        );
        assert_eq!(bearer_token(&HeaderMap::new()), Err(Rejection::MissingKey));
    }

    #[test]
    fn dot_segments_are_not_model_ids() {
        for bad in ["", ".", ".."] {
            assert!(!ProxyConfig::model_id_allowed(bad), "{bad:?}");
        }
        for ok in ["...", ".a", "a..b", "us.anthropic.claude-v2:0", "a/b"] {
            assert!(ProxyConfig::model_id_allowed(ok), "{ok:?}");
        }
    }
}
